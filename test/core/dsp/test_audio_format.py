from __future__ import annotations

import numpy as np
import pytest

from slfm_ros.core.dsp.audio_format import (
    SampleFormat,
    bytes_per_sample,
    decode_interleaved,
    encode_interleaved,
)
from slfm_ros.core.errors import InputFormatError


@pytest.mark.parametrize(
    ("fmt", "tolerance"),
    [(SampleFormat.S16LE, 1 / 32768), (SampleFormat.S32LE, 1e-7), (SampleFormat.F32LE, 0.0)],
)
def test_float_roundtrip_within_quantisation(fmt: SampleFormat, tolerance: float) -> None:
    rng = np.random.default_rng(0)
    audio = rng.uniform(-0.99, 0.99, size=(480, 2)).astype(np.float32)
    data = encode_interleaved(audio, fmt)
    assert len(data) == audio.size * bytes_per_sample(fmt)
    back = decode_interleaved(data, fmt, channels=2)
    assert back.shape == (480, 2) and back.dtype == np.float32
    np.testing.assert_allclose(back, audio, atol=tolerance, rtol=0)


def test_s16_bytes_roundtrip_exact_and_interleaving() -> None:
    ints = np.array([[0, 1], [-32768, 32767], [1000, -1000]], dtype="<i2")
    data = ints.tobytes()
    audio = decode_interleaved(data, "s16le", channels=2)
    assert audio[1, 0] == -1.0 and audio[0, 1] == pytest.approx(1 / 32768)
    assert encode_interleaved(audio, SampleFormat.S16LE) == data


def test_s32_full_scale_maps_to_unit_range() -> None:
    ints = np.array([[-(2**31), 2**31 - 1]], dtype="<i4")
    audio = decode_interleaved(ints.tobytes(), SampleFormat.S32LE, channels=2)
    assert audio[0, 0] == -1.0
    assert 0.9999 < audio[0, 1] <= 1.0


def test_encode_clips_out_of_range() -> None:
    data = encode_interleaved(np.array([[2.0, -2.0]]), SampleFormat.S16LE)
    assert np.frombuffer(data, "<i2").tolist() == [32767, -32768]


def test_byte_count_not_multiple_of_frame_size() -> None:
    with pytest.raises(InputFormatError, match="whole number"):
        decode_interleaved(b"\x00" * 6, SampleFormat.S16LE, channels=2)
    with pytest.raises(InputFormatError, match="whole number"):
        decode_interleaved(b"\x00" * 7, SampleFormat.F32LE, channels=1)


def test_memoryview_input() -> None:
    ints = np.arange(8, dtype="<i2")
    audio = decode_interleaved(memoryview(ints.tobytes()), SampleFormat.S16LE, channels=4)
    assert audio.shape == (2, 4)


def test_parse_lists_valid_formats() -> None:
    assert SampleFormat.parse("f32le") is SampleFormat.F32LE
    assert SampleFormat.parse("int16") is SampleFormat.S16LE
    with pytest.raises(InputFormatError, match="S16LE, S32LE, F32LE"):
        SampleFormat.parse("U8")
