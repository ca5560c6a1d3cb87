"""Pins the equirectangular convention and the cropping geometry."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry.camera import intrinsics_from_fov
from slfm_ros.core.geometry.panorama import (
    azimuth_of_column,
    column_of_azimuth,
    crop_perspective,
    match_resolution,
    validate_panorama,
)

HFOV = math.radians(60)
PITCH = math.radians(-22.5)


def noise_panorama(width: int = 1024, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (width // 2, width, 3), dtype=np.uint8)


def marked_panorama(azimuth_deg: float, width: int = 1024) -> np.ndarray:
    """Grey panorama with a red vertical line at ``azimuth_deg``."""
    pano = np.full((width // 2, width, 3), 90, np.uint8)
    u = float(column_of_azimuth(math.radians(azimuth_deg), width))
    cols = np.arange(width)
    distance = np.abs((cols - u + width / 2) % width - width / 2)  # across the seam too
    weight = np.clip(1.5 - distance, 0.0, 1.0)
    pano[:, :, 0] = np.uint8(90 + 165 * weight)
    return pano


def red_column(image: np.ndarray, row: int) -> float:
    redness = image[row, :, 0].astype(float) - image[row, :, 1]
    assert redness.max() > 60, "the marked line is not in view"
    return float(np.sum(np.arange(image.shape[1]) * redness) / np.sum(redness))


def test_column_convention() -> None:
    width = 2048
    assert azimuth_of_column(-0.5, width) == pytest.approx(math.pi)  # left edge is behind
    assert column_of_azimuth(0.0, width) == pytest.approx(width / 2 - 0.5)  # forward in middle
    assert column_of_azimuth(math.pi / 2, width) == pytest.approx(width / 4 - 0.5)  # left half
    assert column_of_azimuth(-math.pi / 2, width) == pytest.approx(3 * width / 4 - 0.5)
    u = np.arange(width, dtype=float)
    np.testing.assert_allclose(column_of_azimuth(azimuth_of_column(u, width), width), u, atol=1e-9)


@pytest.mark.parametrize("shift", [1, 37, 256, 512, 1000])
def test_crop_at_yaw_equals_crop_of_rolled_panorama(shift: int) -> None:
    pano = noise_panorama()
    theta = 2 * math.pi * shift / pano.shape[1]
    turned = crop_perspective(pano, theta, PITCH, HFOV)
    rolled = crop_perspective(np.roll(pano, shift, axis=1), 0.0, PITCH, HFOV)
    diff = np.abs(turned.astype(int) - rolled)
    assert diff.max() <= 1
    assert np.mean(diff == 0) > 0.99


@pytest.mark.parametrize("azimuth_deg", [0.0, 30.0, -75.0, 180.0])
@pytest.mark.parametrize("pitch_deg", [0.0, -22.5])
def test_marked_column_lands_in_the_image_centre(azimuth_deg: float, pitch_deg: float) -> None:
    pano = marked_panorama(azimuth_deg)
    crop = crop_perspective(pano, math.radians(azimuth_deg), math.radians(pitch_deg), HFOV)
    for row in (0, 120, 239):
        assert red_column(crop, row) == pytest.approx(159.5, abs=0.3)


def test_left_turn_moves_content_right() -> None:
    pano = marked_panorama(10.0)
    before = red_column(crop_perspective(pano, 0.0, 0.0, HFOV), 120)
    after = red_column(crop_perspective(pano, math.radians(20), 0.0, HFOV), 120)
    assert before < 159.5 < after  # left of centre, then right of centre
    focal = intrinsics_from_fov(320, 240, HFOV)[0, 0]
    assert before == pytest.approx(159.5 - focal * math.tan(math.radians(10)), abs=0.5)
    assert after == pytest.approx(159.5 + focal * math.tan(math.radians(10)), abs=0.5)


@pytest.mark.parametrize("pitch_deg", [0.0, -22.5])
def test_horizon_row_follows_pitch(pitch_deg: float) -> None:
    pano = np.zeros((512, 1024, 3), np.uint8)
    pano[:256] = 255  # sky white, ground black
    crop = crop_perspective(pano, 0.3, math.radians(pitch_deg), HFOV)
    focal = intrinsics_from_fov(320, 240, HFOV)[0, 0]
    expected_row = 119.5 + focal * math.tan(math.radians(pitch_deg))
    bright_rows = np.sum(crop[:, 160, 0] > 127)
    assert bright_rows == pytest.approx(expected_row + 0.5, abs=1.5)


def test_zero_translation_is_the_plain_crop_and_translation_adds_parallax() -> None:
    pano = noise_panorama(seed=1)
    plain = crop_perspective(pano, 0.4, PITCH, HFOV)
    same = crop_perspective(pano, 0.4, PITCH, HFOV, translation_m=[0.0, 0.0, 0.0])
    assert np.abs(plain.astype(int) - same).max() <= 1
    moved = crop_perspective(pano, 0.4, PITCH, HFOV, translation_m=[0.3, 0.0, 0.0])
    assert np.mean(np.abs(plain.astype(int) - moved)) > 20
    with pytest.raises(InputFormatError, match="scene radius"):
        crop_perspective(pano, 0.0, PITCH, HFOV, translation_m=[5.0, 0.0, 0.0])


def test_stepping_forward_spreads_content_away_from_the_centre() -> None:
    pano = marked_panorama(10.0)
    still = red_column(crop_perspective(pano, 0.0, 0.0, HFOV), 120)
    forward = red_column(crop_perspective(pano, 0.0, 0.0, HFOV, translation_m=[0.5, 0, 0]), 120)
    # The mark sits on the 3 m scene sphere at (3 cos 10deg, 3 sin 10deg).
    expected = math.atan2(3 * math.sin(math.radians(10)), 3 * math.cos(math.radians(10)) - 0.5)
    focal = intrinsics_from_fov(320, 240, HFOV)[0, 0]
    assert forward < still
    assert forward == pytest.approx(159.5 - focal * math.tan(expected), abs=0.5)


def test_crop_size_and_dtype() -> None:
    crop = crop_perspective(noise_panorama(), 1.0, PITCH, math.radians(90), width=64, height=48)
    assert crop.shape == (48, 64, 3) and crop.dtype == np.uint8


def test_validate_panorama_rejects_wrong_formats() -> None:
    validate_panorama(np.zeros((100, 201, 3), np.uint8))  # within tolerance
    with pytest.raises(InputFormatError, match="2:1"):
        validate_panorama(np.zeros((100, 150, 3), np.uint8))
    with pytest.raises(InputFormatError, match="RGB"):
        validate_panorama(np.zeros((100, 200), np.uint8))
    with pytest.raises(InputFormatError, match="uint8"):
        validate_panorama(np.zeros((100, 200, 3), np.float32))


def test_match_resolution_shrinks_only_fine_panoramas() -> None:
    small = np.zeros((1024, 2048, 3), np.uint8)
    assert match_resolution(small, HFOV) is small
    large = np.zeros((2048, 4096, 3), np.uint8)
    shrunk = match_resolution(large, HFOV)
    assert shrunk.shape[1] == 2 * shrunk.shape[0]
    assert 1600 < shrunk.shape[1] < 1900
