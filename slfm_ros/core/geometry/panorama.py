"""Equirectangular panoramas and perspective crops from them.

Equirectangular convention (shared by the procedural generator and real panoramas)
    An image of W x H pixels (W = 2 H) covers all directions seen from its centre, in the level
    world frame (REP-103: x forward, y left, z up).
    Columns: column u spans azimuths [pi - 2 pi (u + 1) / W, pi - 2 pi u / W]; its centre is
        azimuth(u) = pi - 2 pi (u + 0.5) / W.
      The left edge of column 0 is azimuth +pi (straight behind), the middle of the image
      (between columns W/2 - 1 and W/2) is azimuth 0 (forward), and azimuth grows toward
      SMALLER column index: content on the left (+pi/2) is in the left half of the image, as
      seen from inside the sphere. The right edge wraps to the left edge (seam behind).
    Rows: row v is centred on elevation pi/2 - pi (v + 0.5) / H; row 0 is up (zenith).

A camera turning left by theta therefore sees content that lies theta * W / (2 pi) columns to
the left of where it looked before; rolling the panorama right by that many columns
(``np.roll(pano, k, axis=1)``) is the same as turning the camera left.
"""

from __future__ import annotations

import math
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry.camera import (
    OPTICAL_FROM_BODY,
    intrinsics_from_fov,
    rot_x,
    rot_y,
    rot_z,
)

ASPECT_TOLERANCE = 0.02


def azimuth_of_column(u: float | npt.NDArray[np.floating], width: int) -> npt.NDArray[np.float64]:
    """Azimuth (radians) of the centre of column ``u`` of a panorama ``width`` pixels wide."""
    return math.pi - 2.0 * math.pi * (np.asarray(u, dtype=np.float64) + 0.5) / width


def column_of_azimuth(
    azimuth: float | npt.NDArray[np.floating], width: int
) -> npt.NDArray[np.float64]:
    """Continuous column coordinate in [-0.5, width - 0.5) of an azimuth (radians)."""
    u = (math.pi - np.asarray(azimuth, dtype=np.float64)) * width / (2.0 * math.pi) - 0.5
    return np.mod(u + 0.5, width) - 0.5


def elevation_of_row(v: float | npt.NDArray[np.floating], height: int) -> npt.NDArray[np.float64]:
    """Elevation (radians, + up) of the centre of row ``v`` of a panorama ``height`` tall."""
    return 0.5 * math.pi - math.pi * (np.asarray(v, dtype=np.float64) + 0.5) / height


def validate_panorama(
    image: npt.NDArray[np.uint8], tolerance: float = ASPECT_TOLERANCE, source: str = "panorama"
) -> npt.NDArray[np.uint8]:
    """Check that ``image`` is an (H, W, 3) uint8 equirectangular panorama with W = 2 H.

    Returns the image unchanged; raises InputFormatError naming ``source`` otherwise.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", type(image).__name__)
        raise InputFormatError(
            f"{source}: expected an (H, W, 3) RGB image; got shape {shape}. "
            "Convert grayscale or RGBA images to 3-channel RGB."
        )
    if image.dtype != np.uint8:
        raise InputFormatError(f"{source}: expected dtype uint8; got {image.dtype}.")
    height, width = image.shape[:2]
    if height < 2 or abs(width / height - 2.0) > 2.0 * tolerance:
        raise InputFormatError(
            f"{source}: an equirectangular panorama has a 2:1 aspect ratio; got {width}x{height} "
            f"({width / max(height, 1):.3f}:1). Use full 360x180 degree panoramas."
        )
    return image


@lru_cache(maxsize=32)
def _level_rays(
    width: int, height: int, hfov: float, pitch: float, roll: float
) -> npt.NDArray[np.float64]:
    """Unit rays (height, width, 3) of every crop pixel in the camera's level frame (yaw 0)."""
    K = intrinsics_from_fov(width, height, hfov)
    xs = (np.arange(width, dtype=np.float64) - K[0, 2]) / K[0, 0]
    ys = (np.arange(height, dtype=np.float64) - K[1, 2]) / K[1, 1]
    optical = np.stack(np.broadcast_arrays(xs[None, :], ys[:, None], 1.0), axis=-1)
    level_from_optical = rot_y(-pitch) @ rot_x(roll) @ OPTICAL_FROM_BODY.T
    rays = optical @ level_from_optical.T
    rays /= np.linalg.norm(rays, axis=-1, keepdims=True)
    rays.setflags(write=False)
    return rays


@lru_cache(maxsize=32)
def _level_angles(
    width: int, height: int, hfov: float, pitch: float, roll: float
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    rays = _level_rays(width, height, hfov, pitch, roll)
    azimuth = np.arctan2(rays[..., 1], rays[..., 0])
    elevation = np.arcsin(np.clip(rays[..., 2], -1.0, 1.0))
    azimuth.setflags(write=False)
    elevation.setflags(write=False)
    return azimuth, elevation


def crop_perspective(
    panorama: npt.NDArray[np.uint8],
    yaw: float,
    pitch: float,
    hfov: float,
    width: int = 320,
    height: int = 240,
    roll: float = 0.0,
    translation_m: npt.ArrayLike | None = None,
    scene_radius_m: float = 3.0,
) -> npt.NDArray[np.uint8]:
    """Pinhole view (height, width, 3) uint8 of an equirectangular panorama.

    yaw:   camera yaw in radians (+ = turned left), about the world z axis.
    pitch: elevation of the optical axis in radians (+ up; -22.5 deg looks down).
    hfov:  horizontal field of view in radians; square pixels.
    roll:  rotation about the optical axis in radians (+ = left side up).
    translation_m: optional (3,) camera offset from the panorama centre in the world frame
        (metres). A panorama has no depth, so the scene is taken to be a sphere of radius
        ``scene_radius_m`` around the centre: an approximate parallax for small offsets.

    Sampling is bilinear (``cv2.remap``); columns wrap around the seam, rows are clamped.
    """
    validate_panorama(panorama)
    pano_h, pano_w = panorama.shape[:2]
    if translation_m is None:
        azimuth, elevation = _level_angles(width, height, float(hfov), float(pitch), float(roll))
        # Yaw only shifts azimuths, so it is added last; crops at yaws that differ by a whole
        # number of panorama columns sample the same sub-pixel positions.
        map_u = (math.pi - yaw - azimuth) * (pano_w / (2.0 * math.pi)) - 0.5
    else:
        offset = np.asarray(translation_m, dtype=np.float64).reshape(3)
        if np.linalg.norm(offset) >= scene_radius_m:
            raise InputFormatError(
                f"camera translation {np.linalg.norm(offset):.2f} m must stay inside the scene "
                f"radius {scene_radius_m} m; use a smaller translation."
            )
        rays = _level_rays(width, height, float(hfov), float(pitch), float(roll)) @ rot_z(yaw).T
        # Point where the ray from the offset camera meets the scene sphere |p| = radius.
        b = rays @ offset
        c = float(offset @ offset) - scene_radius_m**2
        distance = -b + np.sqrt(b * b - c)
        points = offset + distance[..., None] * rays
        azimuth = np.arctan2(points[..., 1], points[..., 0])
        elevation = np.arcsin(np.clip(points[..., 2] / scene_radius_m, -1.0, 1.0))
        map_u = (math.pi - azimuth) * (pano_w / (2.0 * math.pi)) - 0.5
    map_u = np.mod(map_u, pano_w)
    map_v = np.clip((0.5 * math.pi - elevation) * (pano_h / math.pi) - 0.5, 0.0, pano_h - 1.0)
    crop = cv2.remap(
        panorama,
        map_u.astype(np.float32),
        map_v.astype(np.float32),
        interpolation=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_WRAP,
    )
    return np.asarray(crop, dtype=np.uint8)


def match_resolution(
    panorama: npt.NDArray[np.uint8], hfov: float, width: int = 320
) -> npt.NDArray[np.uint8]:
    """Shrink a panorama whose angular resolution is much finer than the crops' (anti-aliasing).

    A 4096-pixel panorama cropped to 320 pixels over 60 deg is sampled about every two pixels,
    which aliases; area-averaging it once to the crops' resolution avoids that. Panoramas that
    are not finer than 1.25 x the crop resolution are returned unchanged.
    """
    validate_panorama(panorama)
    pano_w = panorama.shape[1]
    crop_px_per_rad = 0.5 * width / math.tan(0.5 * hfov)
    target_w = int(round(2.0 * math.pi * crop_px_per_rad / 2.0)) * 2
    if pano_w <= 1.25 * target_w:
        return panorama
    small = cv2.resize(panorama, (target_w, target_w // 2), interpolation=cv2.INTER_AREA)
    return np.asarray(small, dtype=np.uint8)
