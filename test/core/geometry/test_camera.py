"""Pins the camera frames, pitch sign and yaw recovery from rotations and homographies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry import camera as cam

PITCH = math.radians(-22.5)


def test_intrinsics_from_fov_match_the_field_of_view() -> None:
    K = cam.intrinsics_from_fov(320, 240, math.radians(60))
    assert K[0, 0] == pytest.approx(160 / math.tan(math.radians(30)))
    assert K[0, 0] == K[1, 1]
    assert (K[0, 2], K[1, 2]) == (159.5, 119.5)
    assert math.degrees(cam.hfov_from_intrinsics(K, 320)) == pytest.approx(60.0)


@pytest.mark.parametrize("hfov", [0.0, math.pi, -1.0])
def test_intrinsics_reject_impossible_fov(hfov: float) -> None:
    with pytest.raises(InputFormatError):
        cam.intrinsics_from_fov(320, 240, hfov)


def test_camera_info_intrinsics_roundtrip_and_reject_uncalibrated() -> None:
    k = [500.0, 0.0, 320.0, 0.0, 505.0, 240.0, 0.0, 0.0, 1.0]
    K = cam.intrinsics_from_camera_info(k, 640, 480)
    np.testing.assert_array_equal(K, np.reshape(k, (3, 3)))
    with pytest.raises(InputFormatError, match="uncalibrated"):
        cam.intrinsics_from_camera_info([0.0] * 9, 640, 480)
    with pytest.raises(InputFormatError, match="9 numbers"):
        cam.intrinsics_from_camera_info([1.0] * 4, 640, 480)
    with pytest.raises(InputFormatError, match="last row"):
        cam.intrinsics_from_camera_info([500, 0, 320, 0, 500, 240, 0, 1, 1], 640, 480)


def test_optical_frame_axes() -> None:
    forward, left, up = np.eye(3)
    np.testing.assert_array_equal(cam.OPTICAL_FROM_BODY @ forward, [0, 0, 1])  # z forward
    np.testing.assert_array_equal(cam.OPTICAL_FROM_BODY @ left, [-1, 0, 0])  # x right
    np.testing.assert_array_equal(cam.OPTICAL_FROM_BODY @ up, [0, -1, 0])  # y down


def test_negative_pitch_looks_down_and_positive_yaw_looks_left() -> None:
    forward = cam.body_rotation(0.0, PITCH) @ np.array([1.0, 0.0, 0.0])
    assert forward[2] == pytest.approx(math.sin(PITCH)) and forward[2] < 0
    turned = cam.body_rotation(math.radians(30), 0.0) @ np.array([1.0, 0.0, 0.0])
    assert turned[1] > 0  # +y is left


@pytest.mark.parametrize("yaw_deg", [-170, -60, -5, 0, 12, 89, 135])
@pytest.mark.parametrize("pitch_deg", [-22.5, 0.0, 30.0])
def test_yaw_from_rotation_roundtrip(yaw_deg: float, pitch_deg: float) -> None:
    R = cam.body_rotation(math.radians(yaw_deg), math.radians(pitch_deg))
    assert math.degrees(cam.yaw_from_rotation(R)) == pytest.approx(yaw_deg, abs=1e-9)


@pytest.mark.parametrize("theta_deg", [-85.0, -33.3, -10.0, 0.0, 7.5, 45.0, 89.0])
def test_pure_yaw_homography_decomposes_to_the_yaw(theta_deg: float) -> None:
    K = cam.intrinsics_from_fov(320, 240, math.radians(60))
    yaw_0 = math.radians(17.0)
    R_rel = cam.relative_optical_rotation(yaw_0, yaw_0 + math.radians(theta_deg), PITCH)
    H = cam.rotation_only_homography(K, R_rel)
    # Any scale of H is the same homography.
    theta = cam.yaw_from_homography(-3.7 * H, K, PITCH)
    assert math.degrees(theta) == pytest.approx(theta_deg, abs=0.01)


def test_left_turn_homography_moves_content_right() -> None:
    K = cam.intrinsics_from_fov(320, 240, math.radians(60))
    R_rel = cam.relative_optical_rotation(0.0, math.radians(20), PITCH)
    H = cam.rotation_only_homography(K, R_rel)
    centre = H @ np.array([159.5, 119.5, 1.0])
    assert centre[0] / centre[2] > 159.5 + 50


def test_homography_yaw_tolerates_noise() -> None:
    rng = np.random.default_rng(3)
    K = cam.intrinsics_from_fov(320, 240, math.radians(60))
    R_rel = cam.relative_optical_rotation(0.0, math.radians(25), PITCH)
    # Not a rotation any more: the SVD projection has to clean it up.
    H = K @ (R_rel + rng.normal(0, 1e-3, (3, 3))) @ np.linalg.inv(K)
    assert math.degrees(cam.yaw_from_homography(H, K, PITCH)) == pytest.approx(25.0, abs=0.2)


def test_ignoring_pitch_biases_the_yaw() -> None:
    K = cam.intrinsics_from_fov(320, 240, math.radians(60))
    H = cam.rotation_only_homography(K, cam.relative_optical_rotation(0.0, 0.6, PITCH))
    assert cam.yaw_from_homography(H, K, PITCH) == pytest.approx(0.6, abs=1e-9)
    assert abs(cam.yaw_from_homography(H, K, 0.0) - 0.6) > 0.01
