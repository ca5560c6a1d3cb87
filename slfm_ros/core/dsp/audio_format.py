"""Conversion between interleaved raw audio bytes and float32 sample arrays.

Format names follow GStreamer / audio_common (``AudioInfo.sample_format``): all little-endian.
Integer formats map to float32 in [-1, 1) by dividing by 2**(bits - 1); F32LE passes through
unchanged (values outside [-1, 1] are kept, not clipped, so a loud float source stays visible).
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import InputFormatError


class SampleFormat(StrEnum):
    """Interleaved little-endian sample formats."""

    S16LE = "S16LE"
    S32LE = "S32LE"
    F32LE = "F32LE"

    @classmethod
    def parse(cls, text: str | SampleFormat) -> SampleFormat:
        """Case-insensitive lookup; also accepts ``int16``, ``int32``, ``float32``."""
        if isinstance(text, SampleFormat):
            return text
        key = str(text).strip().upper()
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            valid = ", ".join(f.value for f in cls)
            raise InputFormatError(
                f"unknown sample format {text!r}: expected one of {valid} "
                "(aliases int16, int32, float32); set sample_format to one of these"
            ) from None


_ALIASES = {"INT16": "S16LE", "INT32": "S32LE", "FLOAT32": "F32LE", "FLOAT": "F32LE"}

_DTYPES: dict[SampleFormat, np.dtype] = {
    SampleFormat.S16LE: np.dtype("<i2"),
    SampleFormat.S32LE: np.dtype("<i4"),
    SampleFormat.F32LE: np.dtype("<f4"),
}

# Full-scale value of each integer format (2**(bits-1)).
_SCALES: dict[SampleFormat, float] = {
    SampleFormat.S16LE: 32768.0,
    SampleFormat.S32LE: 2147483648.0,
}


def bytes_per_sample(fmt: SampleFormat | str) -> int:
    """Bytes of one sample of one channel."""
    return _DTYPES[SampleFormat.parse(fmt)].itemsize


def decode_interleaved(
    data: bytes | bytearray | memoryview, fmt: SampleFormat | str, channels: int
) -> npt.NDArray[np.float32]:
    """Decode interleaved bytes into a (frames, channels) float32 array.

    Raises InputFormatError when ``channels`` < 1 or the byte count is not a whole number of
    frames (frame size = channels * bytes_per_sample(fmt)).
    """
    fmt = SampleFormat.parse(fmt)
    if channels < 1:
        raise InputFormatError(f"channels must be >= 1, got {channels}")
    frame_bytes = channels * bytes_per_sample(fmt)
    n_bytes = memoryview(data).nbytes
    if n_bytes % frame_bytes:
        raise InputFormatError(
            f"{n_bytes} bytes is not a whole number of {fmt.value} frames of {channels} "
            f"channel(s) ({frame_bytes} bytes each): check sample_format and channels "
            "against the publisher's AudioInfo"
        )
    raw = np.frombuffer(data, dtype=_DTYPES[fmt]).reshape(-1, channels)
    if fmt is SampleFormat.F32LE:
        return raw.astype(np.float32, copy=True)
    # float64 intermediate keeps S32 exact before the single rounding to float32.
    return (raw.astype(np.float64) / _SCALES[fmt]).astype(np.float32)


def encode_interleaved(audio: npt.ArrayLike, fmt: SampleFormat | str) -> bytes:
    """Encode a (frames, channels) float array into interleaved bytes.

    Integer formats clip to the representable range and round to nearest.
    """
    fmt = SampleFormat.parse(fmt)
    arr = np.asarray(audio)
    if arr.ndim != 2:
        raise InputFormatError(f"audio must be (frames, channels), got shape {arr.shape}")
    if fmt is SampleFormat.F32LE:
        return arr.astype(_DTYPES[fmt]).tobytes()
    scale = _SCALES[fmt]
    ints = np.clip(np.rint(arr.astype(np.float64) * scale), -scale, scale - 1.0)
    return ints.astype(_DTYPES[fmt]).tobytes()
