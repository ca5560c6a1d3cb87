"""Onset weights for interaural cues in reverberant rooms (the precedence effect).

In a room the direct sound reaches the ears first; its reflections follow within a few tens of
milliseconds and arrive from everywhere else. A cross-spectrum summed over all frames mixes
the two, and with a distant source or a long reverberation the reflections win: the GCC-PHAT
peak moves, or a second peak grows taller than the true one. Listeners solve this by trusting
the onsets, where a sound has just started and its direct part dominates. The same rule applies
to every STFT bin: a bin whose power rises well above what the recent past leaves behind is an
onset, a bin that only carries the decaying tail of earlier frames is not.

``onset_weights`` gives every (frame, bin) of a power spectrogram a weight in [0, 1]:
w = max(0, 1 - rise * past / power) ** 2, where ``past`` is an exponentially decaying average
of the earlier frames' power (``decay`` per hop; ``hop_decay`` turns a time constant into it).
The first frame has no past and gets 0, so a window cut in the middle of a sound does not
count its first frame as an onset.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import lfilter

from slfm_ros.core.errors import ConfigError

_POWER_FLOOR = 1e-20


def check_onset_settings(memory_s: float, rise: float, where: str = "onset") -> None:
    """ConfigError unless 0 < memory_s <= 1 s and rise >= 1 (``where`` names the settings)."""
    if not 0.0 < memory_s <= 1.0:
        raise ConfigError(f"{where}: onset_memory_s must be in (0, 1] s, got {memory_s}")
    _check_rise(rise, f"{where}: onset_rise")


def _check_rise(rise: float, name: str) -> None:
    if not rise >= 1.0:
        raise ConfigError(f"{name} must be >= 1 (a bin must exceed its past), got {rise}")


def hop_decay(memory_s: float, hop_s: float) -> float:
    """The per-frame decay of a past average with time constant ``memory_s`` at hop ``hop_s``."""
    return math.exp(-hop_s / memory_s)


def onset_weights(
    power: npt.ArrayLike, decay: float = 0.5, rise: float = 2.0
) -> npt.NDArray[np.float32]:
    """(T, F) weights in [0, 1] of a (T, F) power spectrogram (frames first); see the module.

    decay: how much of the smoothed past carries over per frame (0 = only the previous frame).
    rise:  how far above the smoothed past a bin's power must be to count fully.
    """
    if not 0.0 <= decay < 1.0:
        raise ConfigError(f"onset_weights: decay must be in [0, 1), got {decay}")
    _check_rise(rise, "onset_weights: rise")
    p = np.asarray(power, dtype=np.float64)
    if p.ndim != 2:
        raise ValueError(f"onset_weights: expected a (frames, bins) array, got shape {p.shape}")
    weights = np.zeros(p.shape, dtype=np.float32)
    if p.shape[0] < 2:
        return weights
    # past[t] = (1 - decay) * sum_k decay^k * p[t - 1 - k]: a one-pole filter, delayed a frame.
    smoothed = lfilter([1.0 - decay], [1.0, -decay], p, axis=0)
    past = smoothed[:-1]
    if decay > 0.0:
        # The filter starts from silence; scale the first frames as if the past were as long as
        # it is, so the second frame compares with the first one at full weight.
        filled = 1.0 - decay ** np.arange(1, p.shape[0])
        past = past / filled[:, None]
    ratio = rise * past / np.maximum(p[1:], _POWER_FLOOR)
    weights[1:] = np.square(np.clip(1.0 - ratio, 0.0, None))
    return weights
