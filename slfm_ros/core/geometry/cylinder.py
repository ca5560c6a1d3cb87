"""Cylindrical reprojection of a pitched pinhole image, so that a camera yaw is a column shift.

Cylinder coordinates
    A cell (row i, column j) is the direction with azimuth ``azimuth[j]`` and elevation
    ``elevation[i]`` in the camera's level frame (REP-103: x forward, y left, z up; the yaw of
    the camera is azimuth 0, the known pitch is taken out). Both axes have the same step:
        azimuth[j]   = (n_cols - 1) / 2 * step - j * step    (column 0 is the leftmost,
                                                             azimuth decreases to the right)
        elevation[i] = top - i * step                        (row 0 is the highest)
    Column ``(n_cols - 1) / 2`` looks straight ahead; ``n_cols`` is odd.

Yaw as a shift
    Content at world azimuth w is seen by view k at azimuth ``w - yaw_k``. For two views of the
    same camera with theta = yaw_1 - yaw_0 (> 0 = turned left), cylinder 1 is cylinder 0 moved
    right by theta / step columns: ``cyl_1[:, j] = cyl_0[:, j - theta / step]``. A pure yaw
    never moves content between rows.

``cylinder_grid`` computes, for every cell, where it falls in the image (pixel centres at
integer coordinates, as OpenCV) and whether it falls inside; ``reproject_to_cylinder`` is the
numpy reference resampling (bilinear). ``torch_sampling_grid`` gives the same map in the
normalised coordinates of ``torch.nn.functional.grid_sample`` (``align_corners=False``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry.camera import OPTICAL_FROM_BODY, intrinsics_from_fov, rot_y

FloatArray = npt.NDArray[np.float32]
# Cells are kept only where their bilinear footprint lies inside the image by this margin (px),
# so no cell mixes in the zero padding beyond the border.
EDGE_MARGIN_PX = 0.5


@dataclass(frozen=True)
class CylinderGrid:
    """Where each cylinder cell samples a ``width`` x ``height`` image.

    map_x, map_y: (n_rows, n_cols) float32 pixel coordinates of each cell (column, row); cells
        outside the image hold -1 (and ``mask`` is False there).
    mask:       (n_rows, n_cols) bool, True where the cell sees the image.
    azimuth:    (n_cols,) float64 radians, see the module docstring.
    elevation:  (n_rows,) float64 radians.
    step:       cell size in radians (both axes).
    """

    map_x: FloatArray
    map_y: FloatArray
    mask: npt.NDArray[np.bool_]
    azimuth: npt.NDArray[np.float64]
    elevation: npt.NDArray[np.float64]
    step: float
    width: int
    height: int

    @property
    def shape(self) -> tuple[int, int]:
        """(n_rows, n_cols) of the cylinder."""
        return int(self.mask.shape[0]), int(self.mask.shape[1])


def _level_from_optical(pitch: float) -> npt.NDArray[np.float64]:
    return rot_y(-pitch) @ OPTICAL_FROM_BODY.T


def _check_camera(width: int, height: int, step: float) -> None:
    if width < 8 or height < 8:
        raise InputFormatError(
            f"cylinder grid: image must be at least 8x8 px; got {width}x{height}"
        )
    if not 0.0 < step <= math.radians(5.0):
        raise InputFormatError(
            f"cylinder grid: step must be in (0, 5] degrees; got {math.degrees(step):.3g} deg"
        )


def image_footprint(
    K: npt.NDArray[np.float64], width: int, height: int, pitch: float, samples: int = 64
) -> tuple[float, float, float]:
    """(max |azimuth|, lowest elevation, highest elevation) in radians of the image border."""
    u = np.concatenate(
        [
            np.linspace(-0.5, width - 0.5, samples),
            np.full(samples, width - 0.5),
            np.linspace(width - 0.5, -0.5, samples),
            np.full(samples, -0.5),
        ]
    )
    v = np.concatenate(
        [
            np.full(samples, -0.5),
            np.linspace(-0.5, height - 0.5, samples),
            np.full(samples, height - 0.5),
            np.linspace(height - 0.5, -0.5, samples),
        ]
    )
    rays = np.linalg.solve(K, np.stack([u, v, np.ones_like(u)]))  # optical, (3, n)
    level = _level_from_optical(pitch) @ rays
    level /= np.linalg.norm(level, axis=0, keepdims=True)
    azimuth = np.arctan2(level[1], level[0])
    elevation = np.arcsin(np.clip(level[2], -1.0, 1.0))
    # The image centre is included so that a camera looking straight up/down stays bounded.
    return float(np.max(np.abs(azimuth))), float(elevation.min()), float(elevation.max())


def cylinder_grid(
    width: int,
    height: int,
    pitch: float,
    step: float,
    hfov: float | None = None,
    K: npt.ArrayLike | None = None,
) -> CylinderGrid:
    """The cylinder of a ``width`` x ``height`` pinhole camera pitched by ``pitch`` radians.

    pitch: elevation of the optical axis (+ up; the project default -22.5 deg looks down).
    step:  cell size in radians (e.g. 0.5 deg = 0.00873 rad).
    hfov:  horizontal field of view in radians (square pixels, centred principal point), or
    K:     3x3 intrinsics of this image size (from CameraInfo); exactly one of the two.
    The grid covers the image's whole footprint and one cell more on every side; cells
    outside the image are masked.
    """
    _check_camera(width, height, step)
    if (hfov is None) == (K is None):
        raise InputFormatError("cylinder grid: give exactly one of hfov and K")
    if K is None:
        assert hfov is not None
        Km = intrinsics_from_fov(width, height, float(hfov))
    else:
        Km = np.asarray(K, dtype=np.float64).reshape(3, 3)
    if not abs(pitch) < math.radians(80.0):
        raise InputFormatError(
            f"cylinder grid: |pitch| must be below 80 deg; got {math.degrees(pitch):.3g} deg"
        )
    half_az, low_el, high_el = image_footprint(Km, width, height, pitch)
    if half_az >= math.radians(179.0):
        raise InputFormatError(
            "cylinder grid: the image footprint wraps around the cylinder; the camera's field "
            "of view is too wide for a cylindrical reprojection"
        )
    # One cell beyond the footprint on every side: the border of the array is then always
    # outside the image, so filters see the same zero padding as at the mask's edge.
    half_cols = int(math.ceil(half_az / step)) + 1
    n_cols = 2 * half_cols + 1
    top = (math.ceil(high_el / step) + 1) * step
    n_rows = int(math.floor((top - low_el) / step)) + 2
    azimuth = (half_cols - np.arange(n_cols, dtype=np.float64)) * step
    elevation = top - np.arange(n_rows, dtype=np.float64) * step
    ce, se = np.cos(elevation)[:, None], np.sin(elevation)[:, None]
    level = np.stack(
        np.broadcast_arrays(ce * np.cos(azimuth)[None, :], ce * np.sin(azimuth)[None, :], se),
        axis=-1,
    )
    optical = level @ _level_from_optical(pitch)  # rows: optical = R^T level
    z = optical[..., 2]
    ahead = z > 1e-6
    safe_z = np.where(ahead, z, 1.0)
    u = Km[0, 0] * optical[..., 0] / safe_z + Km[0, 1] * optical[..., 1] / safe_z + Km[0, 2]
    v = Km[1, 1] * optical[..., 1] / safe_z + Km[1, 2]
    lo = -0.5 + EDGE_MARGIN_PX
    mask = ahead & (u >= lo) & (u <= width - 1 + 0.5 - EDGE_MARGIN_PX)
    mask &= (v >= lo) & (v <= height - 1 + 0.5 - EDGE_MARGIN_PX)
    # Keep a sample inside the bilinear support of the border pixels.
    u = np.clip(u, 0.0, width - 1.0)
    v = np.clip(v, 0.0, height - 1.0)
    map_x = np.where(mask, u, -1.0).astype(np.float32)
    map_y = np.where(mask, v, -1.0).astype(np.float32)
    if not mask.any():
        raise InputFormatError("cylinder grid: no cell falls inside the image; check the camera")
    for array in (map_x, map_y, mask, azimuth, elevation):
        array.setflags(write=False)
    return CylinderGrid(map_x, map_y, mask, azimuth, elevation, float(step), width, height)


def reproject_to_cylinder(image: npt.NDArray, grid: CylinderGrid) -> FloatArray:
    """Bilinear resampling of ``image`` (H, W) or (H, W, C) onto the cylinder, float32.

    Cells outside the image are 0. The image must have the grid's size.
    """
    array = np.asarray(image)
    if array.shape[:2] != (grid.height, grid.width):
        raise InputFormatError(
            f"reproject_to_cylinder: image is {array.shape[1]}x{array.shape[0]} px, the grid was "
            f"built for {grid.width}x{grid.height}; build the grid for this camera"
        )
    out = cv2.remap(
        array.astype(np.float32),
        grid.map_x,
        grid.map_y,
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    out = np.asarray(out, dtype=np.float32)
    if out.ndim == 3:
        return np.where(grid.mask[..., None], out, 0.0).astype(np.float32)
    return np.where(grid.mask, out, 0.0).astype(np.float32)


def torch_sampling_grid(grid: CylinderGrid) -> FloatArray:
    """(n_rows, n_cols, 2) float32 (x, y) in [-1, 1] for ``grid_sample(align_corners=False)``.

    Masked cells point at the image centre (their value is multiplied by the mask anyway).
    """
    x = (2.0 * grid.map_x + 1.0) / grid.width - 1.0
    y = (2.0 * grid.map_y + 1.0) / grid.height - 1.0
    out = np.stack([np.where(grid.mask, x, 0.0), np.where(grid.mask, y, 0.0)], axis=-1)
    return out.astype(np.float32)


def shift_of_yaw(theta: float, step: float) -> float:
    """Columns by which cylinder 1 is cylinder 0 moved right for a turn theta (radians)."""
    return theta / step
