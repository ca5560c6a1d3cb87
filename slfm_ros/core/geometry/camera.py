"""Pinhole camera helpers: intrinsics, body/optical frames, yaw from rotations and homographies.

Frames
    body     REP-103: x forward, y left, z up (the frame whose z axis carries the camera yaw).
    optical  z forward, x right, y down (the frame of pixel rays, ``K^-1 [u, v, 1]``).
    world    a level REP-103 frame: z up; yaw 0 looks along +x.

Orientation of a camera
    ``world_from_body = Rz(yaw) @ Ry(-pitch) @ Rx(roll)``.
    ``pitch`` is the elevation of the viewing direction: positive looks up, negative looks
    down. The project's default pitch of -22.5 deg means the camera is tilted 22.5 deg below
    the horizon. (REP-103 Euler pitch has the opposite sign: a positive rotation about +y
    lowers the nose, hence the ``-pitch`` above.) ``roll`` is a rotation about the forward axis,
    positive = counter-clockwise seen from behind the camera (left side up).

Pixel convention
    Pixel centres lie at integer coordinates (OpenCV); the principal point of a camera built
    from a field of view is the image centre ((width - 1) / 2, (height - 1) / 2).

Relative rotations
    ``R_rel_optical`` maps a direction expressed in the optical frame of camera 0 to the optical
    frame of camera 1, so pixels map as ``x1 ~ K @ R_rel_optical @ K^-1 @ x0``. A turn by theta =
    yaw_1 - yaw_0 > 0 (to the left) moves scene content to the right in image 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import InputFormatError

Matrix3 = npt.NDArray[np.float64]

# Rows are the optical axes written in body coordinates: x_opt = -y_body, y_opt = -z_body,
# z_opt = x_body. ``v_optical = OPTICAL_FROM_BODY @ v_body``.
OPTICAL_FROM_BODY: Matrix3 = np.array(
    [[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]], dtype=np.float64
)
OPTICAL_FROM_BODY.setflags(write=False)


def rot_x(angle: float) -> Matrix3:
    """Rotation by ``angle`` radians about +x (counter-clockwise looking down the axis)."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def rot_y(angle: float) -> Matrix3:
    """Rotation by ``angle`` radians about +y."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_z(angle: float) -> Matrix3:
    """Rotation by ``angle`` radians about +z."""
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def intrinsics_from_fov(width: int, height: int, hfov_rad: float) -> Matrix3:
    """3x3 intrinsics of a square-pixel pinhole camera with horizontal FOV ``hfov_rad``.

    width, height: image size in pixels. The principal point is the image centre.
    """
    if width <= 0 or height <= 0:
        raise InputFormatError(
            f"image size must be positive; got {width}x{height}. Pass the size in pixels."
        )
    if not 0.0 < hfov_rad < math.pi:
        raise InputFormatError(
            f"horizontal field of view must be in (0, pi) rad; got {hfov_rad!r}. "
            "Pass radians (60 deg = 1.047 rad)."
        )
    focal = 0.5 * width / math.tan(0.5 * hfov_rad)
    return np.array(
        [[focal, 0.0, 0.5 * (width - 1)], [0.0, focal, 0.5 * (height - 1)], [0.0, 0.0, 1.0]]
    )


def intrinsics_from_camera_info(k: Sequence[float], width: int, height: int) -> Matrix3:
    """3x3 intrinsics from a row-major ``sensor_msgs/CameraInfo.k`` (9 numbers).

    Raises InputFormatError for an uncalibrated (all-zero) or degenerate matrix.
    """
    values = np.asarray(list(k), dtype=np.float64)
    if values.shape != (9,):
        raise InputFormatError(
            f"CameraInfo.k must hold 9 numbers (row-major 3x3); got {values.size}."
        )
    if width <= 0 or height <= 0:
        raise InputFormatError(f"CameraInfo size must be positive; got {width}x{height}.")
    matrix = values.reshape(3, 3)
    fx, fy, cx, cy = matrix[0, 0], matrix[1, 1], matrix[0, 2], matrix[1, 2]
    problems = []
    if not np.all(np.isfinite(matrix)):
        problems.append("non-finite entries")
    if not (fx > 0 and fy > 0):
        problems.append(
            f"focal lengths fx={fx}, fy={fy} must be > 0 (an all-zero K is uncalibrated)"
        )
    if not np.allclose(matrix[2], [0.0, 0.0, 1.0]) or matrix[1, 0] != 0.0:
        problems.append(f"last row must be [0, 0, 1] and K[1,0] 0; got {matrix[2].tolist()}")
    if not (-width <= cx <= 2 * width and -height <= cy <= 2 * height):
        problems.append(f"principal point ({cx}, {cy}) is far outside the {width}x{height} image")
    if problems:
        raise InputFormatError(
            "degenerate camera intrinsics: " + "; ".join(problems) + ". "
            "Calibrate the camera, or set the field of view instead of using CameraInfo."
        )
    return matrix.copy()


def hfov_from_intrinsics(K: Matrix3, width: int) -> float:
    """Horizontal field of view in radians of an image ``width`` pixels wide (centred)."""
    return 2.0 * math.atan(0.5 * width / float(K[0, 0]))


def body_rotation(yaw: float, pitch: float, roll: float = 0.0) -> Matrix3:
    """``world_from_body`` of a camera with the given yaw, pitch (elevation, + up) and roll.

    See the module docstring: pitch -22.5 deg (-0.3927 rad) looks 22.5 deg below the horizon.
    """
    return rot_z(yaw) @ rot_y(-pitch) @ rot_x(roll)


def optical_rotation(yaw: float, pitch: float, roll: float = 0.0) -> Matrix3:
    """``world_from_optical`` of the camera: maps optical-frame rays to world directions."""
    return body_rotation(yaw, pitch, roll) @ OPTICAL_FROM_BODY.T


def yaw_from_rotation(R: Matrix3) -> float:
    """Yaw about +z of a body-frame rotation (Z-Y-X Euler yaw), wrapped to [-pi, pi).

    ``yaw_from_rotation(body_rotation(y, p)) == y`` for any pitch |p| < pi/2.
    """
    return wrap_angle(math.atan2(float(R[1, 0]), float(R[0, 0])))


def relative_optical_rotation(
    yaw_0: float, yaw_1: float, pitch: float, roll: float = 0.0
) -> Matrix3:
    """``R_rel_optical`` (camera 0 optical -> camera 1 optical) for two views sharing pitch."""
    return optical_rotation(yaw_1, pitch, roll).T @ optical_rotation(yaw_0, pitch, roll)


def rotation_only_homography(K: Matrix3, R_rel_optical: Matrix3) -> Matrix3:
    """Homography ``H = K R K^-1`` mapping pixels of image 0 to image 1 for a pure rotation."""
    H = K @ R_rel_optical @ np.linalg.inv(K)
    return H / H[2, 2]


def closest_rotation(M: Matrix3) -> Matrix3:
    """The rotation matrix nearest to ``M`` in the Frobenius norm (SVD projection)."""
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt))])
    return U @ D @ Vt


def yaw_from_optical_rotation(R_rel_optical: Matrix3, pitch: float) -> float:
    """theta = yaw_1 - yaw_0 from a relative optical rotation of two views with this pitch.

    The rotation is moved into the level body frame, where a pure turn is ``Rz(-theta)``; the
    angle of the nearest z-rotation (least squares) is returned, so small roll/pitch noise does
    not leak into the yaw.
    """
    level_from_optical = rot_y(-pitch) @ OPTICAL_FROM_BODY.T
    # R_rel_optical = level_from_optical^T Rz(yaw_0 - yaw_1) level_from_optical
    Rz_level = level_from_optical @ R_rel_optical @ level_from_optical.T
    turn = math.atan2(Rz_level[1, 0] - Rz_level[0, 1], Rz_level[0, 0] + Rz_level[1, 1])
    return wrap_angle(-turn)


def yaw_from_homography(H: Matrix3, K: Matrix3, pitch: float) -> float:
    """theta = yaw_1 - yaw_0 (radians, + = camera turned left) from a pixel homography 0 -> 1.

    H is taken as ``K R K^-1`` up to scale: ``K^-1 H K`` is scaled to unit determinant,
    projected onto the nearest rotation, and the yaw is read about the vertical axis of the
    level body frame, taking the camera ``pitch`` (elevation, + up) into account.
    """
    M = np.linalg.inv(K) @ np.asarray(H, dtype=np.float64) @ K
    det = float(np.linalg.det(M))
    if not math.isfinite(det) or abs(det) < 1e-12:
        raise InputFormatError(f"homography is singular (det {det:.3g}); cannot read a rotation.")
    M = M / np.cbrt(det)
    return yaw_from_optical_rotation(closest_rotation(M), pitch)
