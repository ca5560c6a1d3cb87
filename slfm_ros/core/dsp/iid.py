"""Interaural intensity difference (IID) left/right vote of the SLfM binaural loss.

Per STFT frame t:  r_t = log(mean_f |L(f, t)| / mean_f |R(f, t)|)   (natural log, the kept
``freq_bins`` bins of the feature STFT). vote = sign(sum_t sign(r_t)): +1 left, -1 right, 0 tie.
Training target ("source is left"): y = (vote + 1) / 2, so 1 left, 0 right, 0.5 tie.
Silent clips vote 0: with no level there is no level difference to trust.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.stft import StftConfig, binaural_stft_torch, stft
from slfm_ros.core.errors import InputFormatError

if TYPE_CHECKING:
    import torch

# Keeps the ratio finite for all-zero frames (both means 0 -> ratio 1 -> r = 0, no vote).
_EPS = 1e-10
DEFAULT_SILENCE_DBFS = -60.0


def _binaural(audio: npt.ArrayLike) -> npt.NDArray[np.float32]:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputFormatError(f"expected binaural audio (frames, 2), got shape {arr.shape}")
    return arr


def rms_dbfs(audio: npt.ArrayLike) -> float:
    """RMS level over all samples and channels in dB re full scale 1.0 (-inf for zeros)."""
    arr = np.asarray(audio, dtype=np.float64)
    if arr.size == 0:
        return -math.inf
    rms = math.sqrt(float(np.mean(arr * arr)))
    return 20.0 * math.log10(rms) if rms > 0 else -math.inf


def is_silent(audio: npt.ArrayLike, threshold_dbfs: float = DEFAULT_SILENCE_DBFS) -> bool:
    """True when the RMS level (dBFS, full-scale sine = -3 dBFS) is below ``threshold_dbfs``."""
    return rms_dbfs(audio) < threshold_dbfs


def iid_frame_ratios(
    audio: npt.ArrayLike, cfg: StftConfig | None = None, sample_rate: int = 16000
) -> npt.NDArray[np.float64]:
    """(frames, 2) audio -> (time_frames,) log level ratios r_t, positive where left is louder.

    cfg None: the reference STFT with the hop fitted to this clip's length at ``sample_rate``.
    """
    arr = _binaural(audio)
    cfg = cfg or StftConfig.for_samples(arr.shape[0], sample_rate)
    left = np.abs(stft(arr[:, 0], cfg)).mean(axis=0)
    right = np.abs(stft(arr[:, 1], cfg)).mean(axis=0)
    return np.log((left + _EPS) / (right + _EPS))


def iid_vote(
    audio: npt.ArrayLike,
    cfg: StftConfig | None = None,
    sample_rate: int = 16000,
    silence_dbfs: float = DEFAULT_SILENCE_DBFS,
) -> int:
    """+1 when the left channel is louder in most frames, -1 for right, 0 for a tie or silence."""
    arr = _binaural(audio)
    if is_silent(arr, silence_dbfs):
        return 0
    ratios = iid_frame_ratios(arr, cfg, sample_rate)
    return int(np.sign(np.sign(ratios).sum()))


def iid_target(
    audio: npt.ArrayLike,
    cfg: StftConfig | None = None,
    sample_rate: int = 16000,
    silence_dbfs: float = DEFAULT_SILENCE_DBFS,
) -> float:
    """Binary-cross-entropy target (vote + 1) / 2: 1.0 left, 0.0 right, 0.5 tie or silence."""
    return (iid_vote(audio, cfg, sample_rate, silence_dbfs) + 1) / 2.0


def iid_votes_torch(audio: torch.Tensor, cfg: StftConfig | None = None) -> torch.Tensor:
    """Batched votes for training: (B, 2, clip_samples) -> (B,) float in {-1, 0, 1}.

    Same STFT and ratio as ``iid_vote``; no silence gate (mask silent clips with the
    simulator's metadata or ``is_silent`` if needed). Target = (vote + 1) / 2.
    """
    import torch

    cfg = cfg or StftConfig()
    level = binaural_stft_torch(audio, cfg).abs().mean(dim=2)  # (B, 2, time_frames)
    ratios = torch.log((level[:, 0] + _EPS) / (level[:, 1] + _EPS))
    return torch.sign(torch.sign(ratios).sum(dim=1))
