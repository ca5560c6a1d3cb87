from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.iid_lr import IidLeftRight


def _level_pair(ild_db: float, samples: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    source = 0.1 * rng.standard_normal(samples)
    gain = 10 ** (-ild_db / 20)
    return np.stack([source, gain * source], axis=1).astype(np.float32)


def test_side_from_louder_channel() -> None:
    estimator = IidLeftRight()
    left = estimator.estimate(_level_pair(6.0), 16000)
    assert left.valid and left.angle == pytest.approx(math.pi / 2)
    assert left.confidence == pytest.approx(1.0)
    right = estimator.estimate(_level_pair(6.0)[:, ::-1], 16000)
    assert right.angle == pytest.approx(-math.pi / 2)


def test_confidence_follows_vote_margin() -> None:
    rng = np.random.default_rng(1)
    strong = _level_pair(6.0)
    weak = (_level_pair(0.5) + 0.05 * rng.standard_normal((16000, 2))).astype(np.float32)
    estimator = IidLeftRight()
    assert estimator.estimate(weak, 16000).confidence < estimator.estimate(strong, 16000).confidence


def test_ild_mode_scales_lateral_angle() -> None:
    estimator = IidLeftRight(mode="ild", full_scale_db=10.0)
    half = estimator.estimate(_level_pair(5.0), 48000)
    assert half.angle == pytest.approx(math.asin(0.5), abs=0.02)
    assert estimator.estimate(_level_pair(20.0)[:, ::-1], 48000).angle == pytest.approx(
        -math.pi / 2
    )


def test_invalid_cases() -> None:
    estimator = IidLeftRight()
    assert estimator.estimate(np.zeros((16000, 2), np.float32), 16000).reason == "silence"
    assert estimator.estimate(_level_pair(0.0), 16000).reason == "left/right tie"
    with pytest.raises(InputFormatError):
        estimator.estimate(np.zeros((100, 2), np.float32), 16000)
    with pytest.raises(ConfigError):
        IidLeftRight(mode="level")
