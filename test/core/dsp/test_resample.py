from __future__ import annotations

import numpy as np
import pytest

from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.errors import InputFormatError


def _peak_hz(x: np.ndarray, rate: int) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    return float(np.fft.rfftfreq(x.size, 1 / rate)[np.argmax(spectrum)])


@pytest.mark.parametrize(("src", "dst"), [(48000, 16000), (44100, 16000), (16000, 48000)])
def test_tone_frequency_preserved(src: int, dst: int) -> None:
    t = np.arange(src) / src
    tone = 0.5 * np.sin(2 * np.pi * 1000.0 * t)
    audio = np.stack([tone, -tone], axis=1).astype(np.float32)
    out = resample(audio, src, dst)
    assert out.dtype == np.float32
    assert out.shape == (dst, 2)
    for ch in range(2):
        assert abs(_peak_hz(out[:, ch], dst) - 1000.0) <= 1.0
    # Amplitude kept away from the edges (the polyphase filter's transients).
    assert np.max(np.abs(out[dst // 10 : -dst // 10, 0])) == pytest.approx(0.5, abs=0.01)


def test_same_rate_is_copy() -> None:
    audio = np.ones((10, 2), dtype=np.float32)
    out = resample(audio, 16000, 16000)
    assert out is not audio
    np.testing.assert_array_equal(out, audio)


def test_invalid_rate() -> None:
    with pytest.raises(InputFormatError):
        resample(np.zeros((10, 2)), 0, 16000)
