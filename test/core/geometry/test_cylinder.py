"""Cylindrical reprojection: the grid's geometry, and a yaw is a column shift."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry.camera import intrinsics_from_fov
from slfm_ros.core.geometry.cylinder import (
    cylinder_grid,
    reproject_to_cylinder,
    shift_of_yaw,
    torch_sampling_grid,
)
from slfm_ros.core.geometry.panorama import azimuth_of_column, crop_perspective, elevation_of_row

PITCH = math.radians(-22.5)
HFOV = math.radians(60.0)
STEP = math.radians(0.5)


def smooth_panorama(width: int = 2048, seed: int = 0) -> np.ndarray:
    """A panorama of a few smooth blobs and waves of direction: bilinear resampling of it is
    nearly exact, so any mismatch below comes from the geometry."""
    rng = np.random.default_rng(seed)
    az = azimuth_of_column(np.arange(width), width)[None, :]
    el = elevation_of_row(np.arange(width // 2), width // 2)[:, None]
    value = np.zeros((width // 2, width))
    for _ in range(12):
        k_az, k_el = rng.integers(1, 7), rng.uniform(1.0, 6.0)
        value += (
            rng.uniform(0.3, 1.0)
            * np.cos(k_az * az + rng.uniform(0, 6.3))
            * np.cos(k_el * el + rng.uniform(0, 6.3))
        )
    value = (value - value.min()) / (value.max() - value.min())
    return np.repeat((value * 255.0).round().astype(np.uint8)[..., None], 3, axis=2)


def test_grid_covers_the_image_with_a_centred_odd_width() -> None:
    grid = cylinder_grid(320, 240, PITCH, STEP, hfov=HFOV)
    _, cols = grid.shape
    assert cols % 2 == 1 and grid.azimuth[cols // 2] == 0.0
    assert np.all(np.diff(grid.azimuth) < 0) and np.all(np.diff(grid.elevation) < 0)
    # The border row and column of the array are outside the image (filters see zeros there).
    assert not grid.mask[[0, -1]].any() and not grid.mask[:, [0, -1]].any()
    # A 60 deg camera pitched down sees +-30 deg at the horizon row nearest its top.
    assert math.degrees(np.max(np.abs(grid.azimuth[grid.mask.any(axis=0)]))) > 30.0
    centre_row = int(np.argmin(np.abs(grid.elevation - PITCH)))
    assert grid.mask[centre_row, cols // 2]
    x, y = grid.map_x[centre_row, cols // 2], grid.map_y[centre_row, cols // 2]
    assert x == pytest.approx(159.5, abs=0.1) and y == pytest.approx(119.5, abs=2.0)
    # Intrinsics instead of a field of view give the same grid.
    same = cylinder_grid(320, 240, PITCH, STEP, K=intrinsics_from_fov(320, 240, HFOV))
    np.testing.assert_allclose(same.map_x, grid.map_x, atol=1e-4)


@pytest.mark.parametrize("turn_cells", [40, -40, 97, -113])
def test_yaw_shift_of_the_cylinder_is_a_column_shift(turn_cells: int) -> None:
    pano = smooth_panorama()
    grid = cylinder_grid(320, 240, PITCH, STEP, hfov=HFOV)
    theta = turn_cells * STEP
    assert shift_of_yaw(theta, STEP) == pytest.approx(turn_cells)
    yaw_0 = 0.7
    cyl_0 = reproject_to_cylinder(crop_perspective(pano, yaw_0, PITCH, HFOV)[..., 0], grid)
    cyl_1 = reproject_to_cylinder(crop_perspective(pano, yaw_0 + theta, PITCH, HFOV)[..., 0], grid)
    # cyl_1[:, j] = cyl_0[:, j - k]
    k = turn_cells
    cols = grid.shape[1]
    j = np.arange(max(0, k), min(cols, cols + k))
    both = grid.mask[:, j] & grid.mask[:, j - k]
    assert both.sum() > 200
    diff = np.abs(cyl_1[:, j] - cyl_0[:, j - k])[both]
    assert np.median(diff) < 0.6 and np.percentile(diff, 99) < 3.0  # grey levels of 255
    # A shift by one more cell is clearly worse: the match is specific to the turn.
    j2 = np.arange(max(0, k + 1), min(cols, cols + k + 1))
    both2 = grid.mask[:, j2] & grid.mask[:, j2 - k - 1]
    assert np.median(np.abs(cyl_1[:, j2] - cyl_0[:, j2 - k - 1])[both2]) > 3 * np.median(diff)


def test_torch_grid_addresses_the_same_pixels() -> None:
    grid = cylinder_grid(160, 120, PITCH, STEP, hfov=HFOV)
    normalised = torch_sampling_grid(grid)
    assert normalised.shape == (*grid.shape, 2) and np.all(np.abs(normalised) <= 1.0)
    x = (normalised[..., 0] + 1.0) * 160 / 2 - 0.5
    np.testing.assert_allclose(x[grid.mask], grid.map_x[grid.mask], atol=1e-4)


def test_bad_cameras_and_images_are_refused() -> None:
    with pytest.raises(InputFormatError, match="exactly one"):
        cylinder_grid(160, 120, PITCH, STEP)
    with pytest.raises(InputFormatError, match="step"):
        cylinder_grid(160, 120, PITCH, math.radians(10.0), hfov=HFOV)
    with pytest.raises(InputFormatError, match="pitch"):
        cylinder_grid(160, 120, math.radians(85.0), STEP, hfov=HFOV)
    grid = cylinder_grid(160, 120, PITCH, STEP, hfov=HFOV)
    with pytest.raises(InputFormatError, match="build the grid"):
        reproject_to_cylinder(np.zeros((240, 320), np.uint8), grid)
