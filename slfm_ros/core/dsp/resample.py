"""Sample-rate conversion of multichannel audio with a polyphase filter."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from slfm_ros.core.errors import InputFormatError


def resample(audio: npt.ArrayLike, from_rate: int, to_rate: int) -> npt.NDArray[np.float32]:
    """Resample along axis 0 from ``from_rate`` to ``to_rate`` (Hz, positive integers).

    audio: (frames,) or (frames, channels). Output frames = ceil(frames * to_rate / from_rate).
    The ratio is reduced by the greatest common divisor (48000 -> 16000 is 1/3, 44100 -> 16000
    is 160/441) so the polyphase filter stays short.
    """
    if int(from_rate) != from_rate or int(to_rate) != to_rate or from_rate <= 0 or to_rate <= 0:
        raise InputFormatError(
            f"sample rates must be positive integers in Hz, got {from_rate} -> {to_rate}"
        )
    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim not in (1, 2):
        raise InputFormatError(f"audio must be (frames,) or (frames, channels), got {arr.shape}")
    if from_rate == to_rate:
        return arr.copy()
    g = math.gcd(int(from_rate), int(to_rate))
    up, down = int(to_rate) // g, int(from_rate) // g
    return np.asarray(resample_poly(arr, up, down, axis=0), dtype=np.float32)
