"""Photometric camera effects: strengths, determinism and validation."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.sim.camera_effects import (
    CameraEffects,
    add_noise,
    blur,
    colour_jitter,
    jpeg,
)


def textured_image(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(40, 216, (60, 80, 3), dtype=np.uint8)
    return cv2.GaussianBlur(base, (0, 0), 1.0)


def test_jitter_probability_and_determinism() -> None:
    img = textured_image()
    assert colour_jitter(img, np.random.default_rng(0), p=0.0) is img
    a = colour_jitter(img, np.random.default_rng(3), p=1.0)
    b = colour_jitter(img, np.random.default_rng(3), p=1.0)
    np.testing.assert_array_equal(a, b)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.mean(np.abs(a.astype(int) - img)) > 1.0


def test_brightness_only_scales_within_bounds() -> None:
    img = np.full((10, 10, 3), 100, np.uint8)
    for seed in range(20):
        out = colour_jitter(img, np.random.default_rng(seed), 0.2, 0.0, 0.0, 0.0, p=1.0)
        assert 79 <= out.mean() <= 121
        assert np.ptp(out) == 0


def test_hue_and_saturation_keep_grey_grey() -> None:
    img = np.stack([np.linspace(0, 255, 50).astype(np.uint8)] * 3, axis=-1)[None].repeat(5, 0)
    out = colour_jitter(img, np.random.default_rng(1), 0.0, 0.0, 0.5, 0.4, p=1.0)
    assert np.max(np.ptp(out.astype(int), axis=-1)) <= 1


def test_hue_jitter_changes_colour() -> None:
    red = np.zeros((4, 4, 3), np.uint8)
    red[..., 0] = 200
    outs = [
        colour_jitter(red, np.random.default_rng(s), 0.0, 0.0, 0.0, 0.2, p=1.0) for s in range(10)
    ]
    assert max(int(o[..., 1].max()) + int(o[..., 2].max()) for o in outs) > 50


def test_noise_has_the_requested_sigma() -> None:
    img = np.full((200, 200, 3), 128, np.uint8)
    out = add_noise(img, np.random.default_rng(0), 5.0)
    assert np.std(out.astype(float) - img) == pytest.approx(5.0, rel=0.05)
    assert add_noise(img, np.random.default_rng(0), 0.0) is img


def test_blur_removes_fine_detail() -> None:
    img = textured_image()
    sharp = np.abs(np.diff(img.astype(float), axis=1)).mean()
    blurred = [blur(img, np.random.default_rng(s), 3.0) for s in range(5)]
    assert min(np.abs(np.diff(b.astype(float), axis=1)).mean() for b in blurred) < 0.7 * sharp
    assert blur(img, np.random.default_rng(0), 0.0) is img


def test_jpeg_is_close_to_the_original() -> None:
    img = textured_image()
    out = jpeg(img, np.random.default_rng(0), 30)
    assert out.shape == img.shape
    assert 0 < np.mean(np.abs(out.astype(int) - img)) < 15


def test_camera_effects_config() -> None:
    img = textured_image()
    assert CameraEffects.none().apply(img, np.random.default_rng(0)) is img
    effects = CameraEffects(noise_sigma_max=4.0, noise_p=1.0, blur_sigma_max=1.5, blur_p=1.0)
    a = effects.apply(img, np.random.default_rng(9))
    np.testing.assert_array_equal(a, effects.apply(img, np.random.default_rng(9)))
    assert np.mean(np.abs(a.astype(int) - img)) > 2
    with pytest.raises(ConfigError):
        CameraEffects(jitter_p=1.5)
    with pytest.raises(ConfigError):
        CameraEffects(noise_sigma_max=-1)
    with pytest.raises(ConfigError):
        CameraEffects(jitter_hue=0.7)
    with pytest.raises(InputFormatError):
        add_noise(img.astype(np.float32), np.random.default_rng(0), 1.0)  # type: ignore[arg-type]
