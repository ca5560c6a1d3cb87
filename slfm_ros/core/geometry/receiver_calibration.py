"""A two-ear receiver's interaural model, calibrated from the robot's own turning recordings.

While the robot turns in place, a static source at world azimuth ``alpha`` is heard at body
azimuth ``alpha - yaw``; the GCC-PHAT peak of each window then follows the receiver's
interaural-delay curve at that azimuth. The yaws come from the robot's sensors (odometry, an
IMU, the camera), so the curve's family and size can be fitted with one unknown ``alpha`` per
stretch of recording and no direction label at all. The turns also settle front and back: a
source in front and its mirror behind give the same delay, but they move in opposite
directions as the robot turns.

The fit is a grid search over the two families the rest of the package speaks (a free-field
pair of a spacing, a rigid sphere of a radius, Woodworth's formula) and their sizes, with a
truncated squared residual: a reflection that outweighs the direct sound puts a window's peak
far off the curve, and such windows must not bend it. A measured head (pinnae, a torso) is
described by the sphere of the radius that explains its delays best.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.geometry.interaural import (
    FreeFieldPair,
    InterauralGeometry,
    SphericalHeadGeometry,
)

# Receiver families and the sizes searched (m): microphone spacing, head radius.
FAMILIES = ("free_field", "spherical_head")
_SIZE_RANGES = {"free_field": (0.02, 0.50), "spherical_head": (0.02, 0.20)}
_COARSE_SIZE_STEP_M = 0.0025
_FINE_SIZE_STEP_M = 0.00025
_COARSE_ALPHA_DEG = 1.0
_FINE_ALPHA_DEG = 0.25


class CalibrationError(InputFormatError):
    """The recordings do not determine the receiver (too little turning, too few clean
    windows, or delays no receiver of either family explains)."""


@dataclass(frozen=True)
class CalibratedReceiver:
    """The interaural model a calibration found, and how well it explained the recordings.

    receiver:        "free_field" (size_m = microphone spacing) or "spherical_head"
                     (size_m = head radius).
    windows:         windows that took part in the fit.
    stretches:       stretches of recording with one source direction each.
    inlier_fraction: windows whose peak lay within the inlier distance of the fitted curve.
    rms_residual_ms: root mean square distance of those windows' peaks from the curve.
    runner_up:       the other family's best size and its cost relative to the winner's
                     (> 1: worse), to tell how clearly the family was decided.
    """

    receiver: str
    size_m: float
    windows: int
    stretches: int
    inlier_fraction: float
    rms_residual_ms: float
    runner_up: dict[str, Any]

    def __post_init__(self) -> None:
        if self.receiver not in FAMILIES:
            raise ConfigError(f"calibrated receiver must be one of {FAMILIES}, got {self.receiver}")
        low, high = _SIZE_RANGES[self.receiver]
        if not low <= self.size_m <= high:
            raise ConfigError(
                f"calibrated {self.receiver} size {self.size_m} m is outside [{low}, {high}] m"
            )

    def geometry(self) -> InterauralGeometry:
        return _geometry(self.receiver, self.size_m)

    @property
    def max_itd_s(self) -> float:
        return self.geometry().max_itd

    def node_parameters(self) -> dict[str, Any]:
        """slfm_node's receiver parameters that describe this model."""
        key = "mic_spacing_m" if self.receiver == "free_field" else "head_radius_m"
        return {"receiver": self.receiver, key: round(self.size_m, 5)}

    def to_dict(self) -> dict[str, Any]:
        return {
            "receiver": self.receiver,
            "size_m": round(self.size_m, 5),
            "max_itd_ms": round(self.max_itd_s * 1e3, 4),
            "windows": self.windows,
            "stretches": self.stretches,
            "inlier_fraction": round(self.inlier_fraction, 4),
            "rms_residual_ms": round(self.rms_residual_ms, 5),
            "runner_up": dict(self.runner_up),
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CalibratedReceiver:
        try:
            return CalibratedReceiver(
                receiver=str(data["receiver"]),
                size_m=float(data["size_m"]),
                windows=int(data.get("windows", 0)),
                stretches=int(data.get("stretches", 0)),
                inlier_fraction=float(data.get("inlier_fraction", math.nan)),
                rms_residual_ms=float(data.get("rms_residual_ms", math.nan)),
                runner_up=dict(data.get("runner_up") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"calibrated_receiver: {exc!r} in {data!r}") from exc


def _geometry(receiver: str, size_m: float) -> InterauralGeometry:
    if receiver == "free_field":
        return FreeFieldPair(spacing_m=size_m)
    return SphericalHeadGeometry(radius_m=size_m)


def peak_lags(
    gcc: npt.ArrayLike, lag_s: npt.ArrayLike
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Each row's GCC-PHAT peak: lag (s, a parabola through the top three points) and
    height. gcc (W, L) on the lag grid ``lag_s`` (L,), evenly spaced."""
    g = np.asarray(gcc, dtype=np.float64)
    lags = np.asarray(lag_s, dtype=np.float64)
    if g.ndim != 2 or g.shape[1] != lags.size or lags.size < 3:
        raise ConfigError(f"peak_lags: gcc {g.shape} does not match {lags.size} lags")
    step = float(lags[1] - lags[0])
    k = np.clip(np.argmax(g, axis=1), 1, lags.size - 2)
    rows = np.arange(g.shape[0])
    y0, y1, y2 = g[rows, k - 1], g[rows, k], g[rows, k + 1]
    curvature = y0 - 2.0 * y1 + y2
    safe = np.where(curvature < -1e-9, curvature, -1.0)
    offset = np.where(curvature < -1e-9, np.clip(0.5 * (y0 - y2) / safe, -0.5, 0.5), 0.0)
    return lags[k] + offset * step, y1


def _stretch_costs(
    lags: npt.NDArray[np.float64],
    yaw: npt.NDArray[np.float64],
    receiver: str,
    sizes: npt.NDArray[np.float64],
    alphas: npt.NDArray[np.float64],
    inlier_s: float,
) -> npt.NDArray[np.float64]:
    """(sizes, alphas) truncated squared residuals of one stretch, summed over windows."""
    azimuth = alphas[:, None] - yaw[None, :]  # (A, W)
    # Both families' delays scale with size: compute the unit curve once.
    unit = _geometry(receiver, 1.0).itd(azimuth)
    out = np.empty((sizes.size, alphas.size))
    cap = inlier_s**2
    for i, size in enumerate(sizes):
        residual = unit * size - lags[None, :]
        out[i] = np.minimum(residual * residual, cap).sum(axis=1)
    return out


def fit_receiver(
    lags_s: npt.ArrayLike,
    yaw_rad: npt.ArrayLike,
    stretch: npt.ArrayLike,
    *,
    max_lag_s: float,
    inlier_ms: float = 0.05,
    min_turn_deg: float = 20.0,
    min_windows: int = 20,
    min_inlier_fraction: float = 0.5,
) -> CalibratedReceiver:
    """Fit the receiver's interaural model to GCC-PHAT peak lags heard while turning.

    lags_s (W,): each window's peak lag (s, positive: source on the left); yaw_rad (W,): the
    robot's yaw at each window (unwrapped, from its own sensors); stretch (W,): one id per
    stretch of recording in which one source stood still (its direction is fitted per
    stretch). Stretches that turned by less than ``min_turn_deg`` are left out; sizes whose
    largest delay exceeds ``max_lag_s`` (the front end's lag range) are not searched.
    Raises CalibrationError when the recordings do not determine the receiver.
    """
    lags = np.asarray(lags_s, dtype=np.float64).ravel()
    yaw = np.asarray(yaw_rad, dtype=np.float64).ravel()
    ids = np.asarray(stretch).ravel()
    if not lags.size == yaw.size == ids.size:
        raise ConfigError(f"fit_receiver: {lags.size} lags, {yaw.size} yaws, {ids.size} ids")
    finite = np.isfinite(lags) & np.isfinite(yaw)
    groups = []
    for sid in np.unique(ids[finite]):
        m = finite & (ids == sid)
        if math.degrees(float(np.ptp(yaw[m]))) >= min_turn_deg:
            groups.append(np.flatnonzero(m))
    used = int(sum(g.size for g in groups))
    if not groups or used < min_windows:
        raise CalibrationError(
            f"receiver calibration needs at least {min_windows} windows with sound in stretches "
            f"that turned by {min_turn_deg:g} deg or more; found {used} in {len(groups)} "
            "stretch(es): turn the robot further while the source plays"
        )
    inlier_s = inlier_ms * 1e-3
    coarse_alpha = np.radians(np.arange(0.0, 360.0, _COARSE_ALPHA_DEG))
    best: dict[str, tuple[float, float]] = {}
    for receiver in FAMILIES:
        low, high = _SIZE_RANGES[receiver]
        # The largest size whose curve stays inside the front end's lag range.
        high = min(high, max_lag_s / _geometry(receiver, 1.0).max_itd)
        sizes = np.arange(low, high + 1e-9, _COARSE_SIZE_STEP_M)
        total = np.zeros(sizes.size)
        for g in groups:
            total += _stretch_costs(lags[g], yaw[g], receiver, sizes, coarse_alpha, inlier_s).min(
                axis=1
            )
        i = int(np.argmin(total))
        # Refine size and directions around the coarse optimum.
        fine = np.arange(
            max(low, sizes[i] - 2 * _COARSE_SIZE_STEP_M),
            min(high, sizes[i] + 2 * _COARSE_SIZE_STEP_M) + 1e-9,
            _FINE_SIZE_STEP_M,
        )
        fine_total = np.zeros(fine.size)
        for g in groups:
            c = _stretch_costs(lags[g], yaw[g], receiver, sizes[i : i + 1], coarse_alpha, inlier_s)
            centre = coarse_alpha[int(np.argmin(c[0]))]
            alphas = centre + np.radians(np.arange(-2.0, 2.0 + 1e-9, _FINE_ALPHA_DEG))
            fine_total += _stretch_costs(lags[g], yaw[g], receiver, fine, alphas, inlier_s).min(
                axis=1
            )
        j = int(np.argmin(fine_total))
        best[receiver] = (float(fine[j]), float(fine_total[j]))
    winner = min(FAMILIES, key=lambda r: best[r][1])
    other = next(r for r in FAMILIES if r != winner)
    size = best[winner][0]
    residuals = []
    for g in groups:
        c = _stretch_costs(lags[g], yaw[g], winner, np.array([size]), coarse_alpha, inlier_s)
        centre = coarse_alpha[int(np.argmin(c[0]))]
        alphas = centre + np.radians(np.arange(-2.0, 2.0 + 1e-9, _FINE_ALPHA_DEG))
        c = _stretch_costs(lags[g], yaw[g], winner, np.array([size]), alphas, inlier_s)
        alpha = alphas[int(np.argmin(c[0]))]
        residuals.append(_geometry(winner, size).itd(alpha - yaw[g]) - lags[g])
    r = np.abs(np.concatenate(residuals))
    inliers = r <= inlier_s
    fraction = float(inliers.mean())
    if fraction < min_inlier_fraction:
        raise CalibrationError(
            f"receiver calibration: only {fraction:.0%} of {used} windows follow one interaural "
            f"curve (best: {winner}, {size:.4f} m); at least {min_inlier_fraction:.0%} are "
            "needed (too much reverberation, several sources, or a source that moved)"
        )
    rms = float(np.sqrt(np.mean(r[inliers] ** 2))) * 1e3
    cost_ratio = best[other][1] / max(best[winner][1], 1e-30)
    return CalibratedReceiver(
        receiver=winner,
        size_m=size,
        windows=used,
        stretches=len(groups),
        inlier_fraction=fraction,
        rms_residual_ms=rms,
        runner_up={
            "receiver": other,
            "size_m": round(best[other][0], 5),
            "cost_ratio": round(cost_ratio, 4),
        },
    )
