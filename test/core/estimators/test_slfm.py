from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
import torch

from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.dsp.stft import binaural_features
from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.estimators.slfm import (
    SlfmAudioEstimator,
    SlfmVisualEstimator,
    agreement_estimate,
)
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.checkpoint import save_model
from slfm_ros.core.models.config import load_model_config, preset
from slfm_ros.core.models.visual_pose import VisualPoseNet, preprocess_images_numpy

torch.set_num_threads(1)
RNG = np.random.default_rng(3)
AUDIO_CFG = preset("small").audio


def level_runner(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """A hand-made direction 'network': +45 deg when the left magnitude plane is louder."""
    left, right = features[:, 0].mean(axis=(1, 2)), features[:, 2].mean(axis=(1, 2))
    return np.where(left > right, math.pi / 4, -math.pi / 4).astype(np.float32)


def louder_left(seconds: float, rate: int) -> npt.NDArray[np.float32]:
    noise = RNG.normal(0.0, 0.1, int(seconds * rate)).astype(np.float32)
    return np.stack([noise, 0.3 * noise], axis=1)


def test_audio_preprocessing_feeds_the_model_window() -> None:
    seen: list[npt.NDArray[np.float32]] = []

    def recording_runner(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        seen.append(features)
        return level_runner(features)

    estimator = SlfmAudioEstimator(AUDIO_CFG, recording_runner)
    clip = louder_left(1.0, 48000)
    estimate = estimator.estimate(clip, 48000)
    assert estimate.valid
    assert estimate.angle == pytest.approx(math.pi / 4, abs=1e-6)
    assert estimate.confidence == pytest.approx(1.0)
    (batch,) = seen
    # One window plus its channel-swapped copy, computed at the model's 16 kHz.
    assert batch.shape == (2, *AUDIO_CFG.feature_shape)
    window = resample(clip, 48000, 16000)
    np.testing.assert_allclose(batch[0], binaural_features(window, AUDIO_CFG.stft_config()))
    np.testing.assert_array_equal(batch[1], batch[0][[2, 3, 0, 1]])
    right = estimator.estimate(clip[:, ::-1].copy(), 48000)
    assert right.angle == pytest.approx(-math.pi / 4, abs=1e-6)


def test_long_clip_is_covered_by_several_windows() -> None:
    seen: list[int] = []

    def runner(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        seen.append(features.shape[0])
        return level_runner(features)

    estimator = SlfmAudioEstimator(AUDIO_CFG, runner, max_windows=3)
    assert estimator.estimate(louder_left(2.5, 16000), 16000).valid
    assert estimator.windows(louder_left(2.5, 16000), 16000).shape == (3, 16000, 2)
    assert seen == [6]
    short = estimator.windows(louder_left(0.6, 16000), 16000)
    assert short.shape == (1, 16000, 2)
    assert not short[0, :6000].any() and short[0, -100:].any()
    with pytest.raises(InputFormatError, match="shorter than half"):
        estimator.estimate(louder_left(0.3, 16000), 16000)


def test_audio_confidence_drops_when_symmetry_breaks() -> None:
    def biased_runner(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        return np.full(features.shape[0], 0.5, dtype=np.float32)

    estimate = SlfmAudioEstimator(AUDIO_CFG, biased_runner).estimate(louder_left(1.0, 16000), 16000)
    assert estimate.valid and estimate.confidence < 0.01
    plain = SlfmAudioEstimator(AUDIO_CFG, biased_runner, symmetric=False)
    assert plain.estimate(louder_left(1.0, 16000), 16000).angle == pytest.approx(0.5)


def test_audio_declines_silence_and_rejects_bad_input() -> None:
    estimator = SlfmAudioEstimator(AUDIO_CFG, level_runner)
    silent = estimator.estimate(np.zeros((16000, 2), np.float32), 16000)
    assert not silent.valid and silent.reason == "silence"
    with pytest.raises(InputFormatError, match="channel 0"):
        estimator.estimate(np.zeros((16000, 3), np.float32), 16000)


def test_agreement_estimate() -> None:
    mean, confidence, spread = agreement_estimate(np.array([math.pi - 0.01, -math.pi + 0.01]), 0.1)
    assert abs(abs(mean) - math.pi) < 1e-9 and spread == pytest.approx(0.01)
    assert confidence == pytest.approx(math.exp(-0.5 * (0.02 / 0.1) ** 2))


def test_visual_reverse_pair_symmetry_and_featureless_input() -> None:
    cfg = preset("small").visual

    def brightness_runner(
        img_0: npt.NDArray[np.float32], img_1: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        return (0.1 * (img_1.mean(axis=(1, 2, 3)) - img_0.mean(axis=(1, 2, 3)))).astype(np.float32)

    estimator = SlfmVisualEstimator(cfg, brightness_runner)
    dark = RNG.integers(0, 100, (240, 320, 3), dtype=np.uint8)
    bright = RNG.integers(100, 200, (240, 320, 3), dtype=np.uint8)
    estimate = estimator.estimate(dark, bright)
    expected = brightness_runner(*preprocess_images_numpy([dark, bright], cfg)[:, None])[0]
    assert estimate.valid and estimate.angle == pytest.approx(float(expected), abs=1e-6)
    assert estimate.confidence == pytest.approx(1.0)
    flat = np.full((240, 320, 3), 90, np.uint8)
    result = estimator.estimate(flat, bright)
    assert not result.valid and "featureless" in result.reason


def test_estimators_from_a_saved_model(tmp_path: Path) -> None:
    cfg = load_model_config(
        {"preset": "small", "visual": {"image_height": 48, "image_width": 64, "width_mult": 0.25}}
    )
    torch.manual_seed(0)
    audio_net, visual_net = AudioDirectionNet(cfg.audio), VisualPoseNet(cfg.visual)
    path = save_model(tmp_path / "model", cfg, audio_net, visual_net)
    audio_est = SlfmAudioEstimator.from_model_dir(path)
    clip = louder_left(1.0, 16000)
    estimate = audio_est.estimate(clip, 16000)
    assert estimate.valid and -math.pi <= estimate.angle < math.pi
    features = audio_est.features(clip, 16000)
    with torch.no_grad():
        direct = audio_net.eval()(torch.from_numpy(features))
    np.testing.assert_allclose(audio_est.run_audio(features), direct.numpy(), atol=1e-6)

    visual_est = SlfmVisualEstimator.from_model_dir(path)
    image = RNG.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    turned = np.roll(image, 8, axis=1)
    result = visual_est.estimate(image, turned)
    assert result.valid and abs(result.angle) < math.pi / 2
