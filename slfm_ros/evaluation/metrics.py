"""Scores of the evaluation protocol (see ``slfm_ros.core.conventions``).

Sound azimuth
    Predictions and ground truth are folded into the front half-plane [-pi/2, pi/2] before the
    wrapped error arccos(cos(pred - true)) is taken, because a two-ear receiver cannot tell a
    source from its front/back mirror. Ground truth of the protocol's test sets already lies in
    front, where folding leaves it unchanged.
Left/right
    A prediction is correct when ``is_left`` agrees for prediction and truth. Truths on the
    median plane (sin(phi) == 0, straight ahead or behind) have no side and are left out.
Camera yaw
    Wrapped error between the predicted and the true turn theta = yaw_1 - yaw_0; no folding.
Declined estimates
    An estimator may decline (``AngleEstimate.valid`` False). Every score counts such cases: the
    prediction is taken as 0 rad (no turn / straight ahead, which is what a robot without an
    estimate assumes) and a declined left/right decision counts as wrong. Scores over the valid
    estimates alone are reported next to them, with the valid fraction.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import angular_error, deg, fold_to_front, is_left

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


def _as_arrays(
    pred: Sequence[float] | FloatArray,
    true: Sequence[float] | FloatArray,
    valid: Sequence[bool] | BoolArray | None,
) -> tuple[FloatArray, FloatArray, BoolArray]:
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    v = np.ones(p.shape, dtype=bool) if valid is None else np.asarray(valid, dtype=bool).reshape(-1)
    if not (p.shape == t.shape == v.shape):
        raise ValueError(
            f"pred, true and valid must have one value per case; got {p.size}, {t.size}, {v.size}"
        )
    # A declined estimate carries NaN; scoring it as 0 rad keeps every case in the count.
    v = v & np.isfinite(p)
    return np.where(v, p, 0.0), t, v


def azimuth_errors(
    pred: Sequence[float] | FloatArray, true: Sequence[float] | FloatArray
) -> FloatArray:
    """Front-folded wrapped azimuth errors in radians, shape (n,)."""
    p = np.asarray(fold_to_front(np.asarray(pred, dtype=np.float64)), dtype=np.float64)
    t = np.asarray(fold_to_front(np.asarray(true, dtype=np.float64)), dtype=np.float64)
    return np.atleast_1d(np.asarray(angular_error(p, t), dtype=np.float64))


def yaw_errors(
    pred: Sequence[float] | FloatArray, true: Sequence[float] | FloatArray
) -> FloatArray:
    """Wrapped camera-turn errors in radians, shape (n,)."""
    p = np.asarray(pred, dtype=np.float64)
    t = np.asarray(true, dtype=np.float64)
    return np.atleast_1d(np.asarray(angular_error(p, t), dtype=np.float64))


def left_right_correct(
    pred: Sequence[float] | FloatArray, true: Sequence[float] | FloatArray
) -> tuple[BoolArray, BoolArray]:
    """(correct, scored): per case whether the side agrees, and whether the truth has a side."""
    p = np.asarray(pred, dtype=np.float64).reshape(-1)
    t = np.asarray(true, dtype=np.float64).reshape(-1)
    scored = np.abs(np.sin(t)) > 1e-9
    correct = np.asarray(is_left(p)) == np.asarray(is_left(t))
    return correct & scored, scored


def _mean_deg(errors: FloatArray) -> float:
    return float(deg(float(np.mean(errors)))) if errors.size else math.nan


def _median_deg(errors: FloatArray) -> float:
    return float(deg(float(np.median(errors)))) if errors.size else math.nan


@dataclass(frozen=True)
class AzimuthReport:
    """Sound-azimuth scores. Angles in degrees, accuracies and fractions in 0..1."""

    n: int
    azimuth_mae_deg: float
    azimuth_median_deg: float
    lr_accuracy: float
    lr_n: int
    azimuth_valid_fraction: float
    azimuth_mae_valid_deg: float
    azimuth_median_valid_deg: float

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


# Turns at least this large are scored apart (YawReport), degrees.
LARGE_TURN_DEG = 60.0


@dataclass(frozen=True)
class YawReport:
    """Camera-turn scores. Angles in degrees, fractions in 0..1."""

    n: int
    yaw_mae_deg: float
    yaw_median_deg: float
    yaw_valid_fraction: float
    yaw_mae_valid_deg: float
    yaw_median_valid_deg: float
    # Pairs turned by less than / at least LARGE_TURN_DEG: at the usual 60 deg field of view the
    # second kind share no view, and hold most of a learned estimator's error.
    yaw_mae_small_turns_deg: float = math.nan
    yaw_mae_large_turns_deg: float = math.nan
    yaw_n_large_turns: int = 0
    # Share of those large turns estimated the other way round (a declined pair is not): with no
    # shared view, the turn's sign comes from the scene's structure alone.
    yaw_wrong_sign_large_turns: float = math.nan

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


def score_azimuth(
    pred: Sequence[float] | FloatArray,
    true: Sequence[float] | FloatArray,
    valid: Sequence[bool] | BoolArray | None = None,
) -> AzimuthReport:
    """Score sound-azimuth predictions (radians, shape (n,)) against the truth (radians)."""
    p, t, v = _as_arrays(pred, true, valid)
    errors = azimuth_errors(p, t) if p.size else np.zeros(0)
    correct, scored = left_right_correct(p, t)
    correct &= v
    lr_n = int(scored.sum())
    return AzimuthReport(
        n=int(p.size),
        azimuth_mae_deg=_mean_deg(errors),
        azimuth_median_deg=_median_deg(errors),
        lr_accuracy=float(correct.sum() / lr_n) if lr_n else math.nan,
        lr_n=lr_n,
        azimuth_valid_fraction=float(v.mean()) if p.size else math.nan,
        azimuth_mae_valid_deg=_mean_deg(errors[v]),
        azimuth_median_valid_deg=_median_deg(errors[v]),
    )


def score_yaw(
    pred: Sequence[float] | FloatArray,
    true: Sequence[float] | FloatArray,
    valid: Sequence[bool] | BoolArray | None = None,
) -> YawReport:
    """Score camera-turn predictions (radians, shape (n,)) against the true turns (radians)."""
    p, t, v = _as_arrays(pred, true, valid)
    errors = yaw_errors(p, t) if p.size else np.zeros(0)
    large = np.abs(t) >= math.radians(LARGE_TURN_DEG)
    return YawReport(
        n=int(p.size),
        yaw_mae_deg=_mean_deg(errors),
        yaw_median_deg=_median_deg(errors),
        yaw_valid_fraction=float(v.mean()) if p.size else math.nan,
        yaw_mae_valid_deg=_mean_deg(errors[v]),
        yaw_median_valid_deg=_median_deg(errors[v]),
        yaw_mae_small_turns_deg=_mean_deg(errors[~large]),
        yaw_mae_large_turns_deg=_mean_deg(errors[large]),
        yaw_n_large_turns=int(large.sum()),
        yaw_wrong_sign_large_turns=(
            float(np.mean(p[large] * t[large] < 0)) if large.any() else math.nan
        ),
    )
