"""Left/right from the interaural intensity difference (the SLfM binaural vote).

mode "side" (default): azimuth +pi/2 for a left vote, -pi/2 for a right vote - the estimator
    only knows the side, so scoring its azimuth error says little; use left/right accuracy.
mode "ild": a lateral angle from the mean level ratio, asin(clip(ild_db / full_scale_db)),
    with the side still taken from the vote; ``full_scale_db`` is the broadband ILD of a source
    at 90 degrees for the receiver (about 10 dB for a human-sized head at 16 kHz, 0 for a
    phone-like pair without head shadow, where this mode is meaningless).
Confidence = vote margin |sum_t sign(r_t)| / T: 1 when every frame agrees.
A silent clip or a tied vote is invalid.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.iid import iid_frame_ratios, is_silent
from slfm_ros.core.dsp.stft import StftConfig
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate, AudioEstimator

IID_MODES = ("side", "ild")
_NEPER_TO_DB = 20.0 / math.log(10.0)


class IidLeftRight(AudioEstimator):
    """Azimuth sign (and optionally a lateral angle) from per-frame level ratios.

    mode:          "side" or "ild".
    full_scale_db: ILD in dB mapped to +-90 degrees in "ild" mode.
    silence_dbfs:  clips below this RMS level are invalid.
    """

    name = "iid"

    def __init__(
        self, mode: str = "side", full_scale_db: float = 10.0, silence_dbfs: float = -60.0
    ) -> None:
        if mode not in IID_MODES:
            raise ConfigError(f"mode must be one of {IID_MODES}, got {mode!r}")
        if full_scale_db <= 0:
            raise ConfigError(f"full_scale_db must be > 0, got {full_scale_db}")
        self.mode = mode
        self.full_scale_db = float(full_scale_db)
        self.silence_dbfs = float(silence_dbfs)

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio (frames, 2) float32, channel 0 left; sample_rate in Hz."""
        arr = np.asarray(audio, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InputFormatError(f"expected binaural audio (frames, 2), got {arr.shape}")
        if arr.shape[0] <= StftConfig.n_fft:
            raise InputFormatError(
                f"clip of {arr.shape[0]} frames is too short for the IID STFT "
                f"(needs more than {StftConfig.n_fft}): use a longer clip"
            )
        if not np.isfinite(arr).all():
            return AngleEstimate.invalid("non-finite samples")
        if is_silent(arr, self.silence_dbfs):
            return AngleEstimate.invalid("silence")
        cfg = StftConfig.for_samples(arr.shape[0], sample_rate)
        ratios = iid_frame_ratios(arr, cfg)
        total = float(np.sign(ratios).sum())
        if total == 0:
            return AngleEstimate.invalid("left/right tie")
        side = math.copysign(1.0, total)
        margin = abs(total) / ratios.size
        if self.mode == "side":
            return AngleEstimate.from_confidence(side * math.pi / 2, margin)
        ild_db = abs(float(np.mean(ratios))) * _NEPER_TO_DB
        lateral = math.asin(min(1.0, ild_db / self.full_scale_db))
        return AngleEstimate.from_confidence(side * lateral, margin)
