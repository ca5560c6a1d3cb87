from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.srp import PyroomacousticsDoa
from slfm_ros.core.geometry.interaural import FreeFieldPair, SphericalHeadGeometry


def delayed_pair(azimuth: float, spacing_m: float, rate: int, seed: int = 0) -> np.ndarray:
    """White noise plus 20 dB of independent noise, free-field delay between the two mics."""
    rng = np.random.default_rng(seed)
    n = rate
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    itd = spacing_m / 343.0 * math.sin(azimuth)

    def delayed(t: float) -> np.ndarray:
        return np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * t), n)

    pair = np.stack([delayed(-itd / 2), delayed(itd / 2)], axis=1)
    return (0.1 * (pair + 0.1 * rng.standard_normal(pair.shape))).astype(np.float32)


@pytest.mark.parametrize("algorithm", ["SRP", "NormMUSIC"])
def test_recovers_azimuth(algorithm: str) -> None:
    estimator = PyroomacousticsDoa(algorithm, spacing_m=0.14)
    for degrees in (-70, -25, 10, 55, 80):
        result = estimator.estimate(delayed_pair(math.radians(degrees), 0.14, 16000), 16000)
        assert math.degrees(result.angle) == pytest.approx(degrees, abs=2.0)
        assert result.confidence > 0.3


def test_plain_music_side_and_48k() -> None:
    estimator = PyroomacousticsDoa("MUSIC", spacing_m=0.14)
    result = estimator.estimate(delayed_pair(math.radians(30), 0.14, 48000), 48000)
    assert math.degrees(result.angle) == pytest.approx(30, abs=2.0)


def test_back_source_and_head_geometry() -> None:
    head = SphericalHeadGeometry()
    estimator = PyroomacousticsDoa("SRP", geometry=head)
    assert estimator.spacing_m == pytest.approx(head.max_itd * 343.0)
    audio = delayed_pair(math.radians(140), estimator.spacing_m, 16000)
    assert math.degrees(estimator.estimate(audio, 16000).angle) == pytest.approx(40, abs=2.0)


def test_diffuse_noise_has_low_confidence_and_silence_invalid() -> None:
    rng = np.random.default_rng(5)
    estimator = PyroomacousticsDoa("SRP", geometry=FreeFieldPair(0.14))
    noise = (0.1 * rng.standard_normal((16000, 2))).astype(np.float32)
    assert estimator.estimate(noise, 16000).confidence < 0.1
    assert not estimator.estimate(np.zeros((16000, 2), np.float32), 16000).valid


def test_config_errors() -> None:
    with pytest.raises(ConfigError):
        PyroomacousticsDoa("CSSM")
    with pytest.raises(ConfigError):
        PyroomacousticsDoa("SRP", spacing_m=0.1, geometry=FreeFieldPair(0.1))
