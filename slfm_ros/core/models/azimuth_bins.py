"""Azimuth bins on the full circle: the compact audio network's config and output decoding.

Torch-free, so deployments that run the exported graph (ONNX Runtime, TensorRT) decode the
network's output without PyTorch. Bin k is centred at -pi + (k + 0.5) * 2 pi / n_bins.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError

# Receiver inputs after the cues: [known, max_itd_ms].
APERTURE_DIM = 2


@dataclass(frozen=True)
class CueNetConfig:
    """Compact audio network.

    input_dim: length of the cue vector (``CueConfig.dim``).
    hidden:    widths of the hidden layers.
    n_bins:    azimuth bins over the full circle.
    dropout:   dropout after each hidden layer while training.
    peak_lags: GCC-PHAT lags at the start of the cue vector from which the network derives the
               refined correlation peak (lag, height, and lag / max ITD when the receiver is
               known): a precise delay the MLP need not rediscover. 0 = off.
    lag_step_ms: spacing of those lags, ms.
    steered:   when the receiver is known, add to the logits the GCC-PHAT curve read at the lag
               each azimuth bin would produce (free-field sin law and Woodworth's spherical head,
               one learned gain each): GCC-PHAT's own answer as the prior the MLP corrects.
               Needs peak_lags.
    """

    input_dim: int = 353
    hidden: tuple[int, ...] = (384, 256)
    n_bins: int = 120
    dropout: float = 0.1
    peak_lags: int = 0
    lag_step_ms: float = 1.0 / 64.0
    steered: bool = False

    def __post_init__(self) -> None:
        if self.input_dim <= 0 or self.n_bins < 8 or not self.hidden:
            raise ConfigError(
                f"cue network: input_dim > 0, n_bins >= 8 and hidden layers needed, got {self}"
            )
        if any(int(h) <= 0 for h in self.hidden) or not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"cue network: bad hidden sizes or dropout in {self}")
        if not 0 <= self.peak_lags <= self.input_dim or self.lag_step_ms <= 0:
            raise ConfigError(f"cue network: peak_lags must be in [0, input_dim], got {self}")
        if self.steered and not self.peak_lags:
            raise ConfigError("cue network: steered needs peak_lags (the GCC-PHAT lags)")

    @property
    def bin_width(self) -> float:
        return 2.0 * math.pi / self.n_bins

    def bin_centers(self) -> npt.NDArray[np.float64]:
        centers = -math.pi + (np.arange(self.n_bins, dtype=np.float64) + 0.5) * self.bin_width
        return centers.astype(np.float64)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["hidden"] = list(self.hidden)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CueNetConfig:
        unknown = sorted(set(data) - set(CueNetConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"cue network: unknown key(s) {unknown}")
        values = dict(data)
        if "hidden" in values:
            values["hidden"] = tuple(int(h) for h in values["hidden"])
        return CueNetConfig(**values)


def lag_shapes(cfg: CueNetConfig) -> npt.NDArray[np.float64]:
    """(2, n_bins): the interaural lag of each bin centre as a fraction of the largest one, for
    a free-field pair (sin) and a rigid spherical head (Woodworth: (x + sin x) / (pi/2 + 1) of
    the lateral angle x)."""
    lateral = np.arcsin(np.sin(cfg.bin_centers()))
    woodworth = (lateral + np.sin(lateral)) / (math.pi / 2 + 1.0)
    return np.stack([np.sin(lateral), woodworth])


def mirror_bins(n_bins: int) -> npt.NDArray[np.int64]:
    """Index map of the left/right mirror phi -> -phi on the bin grid."""
    return np.arange(n_bins)[::-1].copy()


def front_back_bins(n_bins: int) -> npt.NDArray[np.int64]:
    """Index map of the front/back mirror phi -> pi - phi on the bin grid (n_bins even)."""
    k = np.arange(n_bins)
    return (n_bins // 2 - 1 - k) % n_bins


def softmax(logits: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = np.asarray(logits, dtype=np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    e = np.exp(x)
    return e / e.sum(axis=-1, keepdims=True)  # type: ignore[no-any-return]


def decode_azimuth(
    prob: npt.ArrayLike, cfg: CueNetConfig, fold: bool = False, neighbours: int = 2
) -> tuple[float, float]:
    """(azimuth rad, peak mass) of one distribution over the circle.

    fold: add each bin's front/back mirror first, so the answer lies in the front half
          (-pi/2..pi/2) and the mass counts both modes. The folded distribution is symmetric
          about +-pi/2, so a peak at the side is refined like any other.
    The peak is refined below the bin width by a parabola through the log-probabilities of the
    peak bin and its two neighbours (exact for a Gaussian-shaped peak; a weighted mean of the
    bins around the peak would pull the answer toward the peak bin's centre). The peak mass is
    the probability within ``neighbours`` bins of the peak bin (a calibrated confidence when
    the network is).
    """
    p = np.asarray(prob, dtype=np.float64)
    n = cfg.n_bins
    centers = cfg.bin_centers()
    total = max(float(p.sum()), 1e-12)
    if fold:
        p = p + p[front_back_bins(n)]
        search = np.where(np.abs(centers) <= math.pi / 2, p, -1.0)
    else:
        search = p
    peak = int(np.argmax(search))
    log_p = np.log(np.maximum(p[[(peak - 1) % n, peak, (peak + 1) % n]], 1e-30))
    curvature = log_p[0] - 2.0 * log_p[1] + log_p[2]
    offset = 0.0 if curvature >= 0 else 0.5 * (log_p[0] - log_p[2]) / curvature
    angle = math.remainder(
        float(centers[peak]) + float(np.clip(offset, -0.5, 0.5)) * cfg.bin_width, 2 * math.pi
    )
    if fold:
        angle = float(np.clip(angle, -math.pi / 2, math.pi / 2))
    idx = (peak + np.arange(-neighbours, neighbours + 1)) % n
    return angle, float(p[idx].sum() / total)
