"""Pins the angle conventions every module relies on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core import conventions as cv


def test_wrap_interval_is_half_open() -> None:
    assert cv.wrap_angle(math.pi) == pytest.approx(-math.pi)
    assert cv.wrap_angle(-math.pi) == pytest.approx(-math.pi)
    assert cv.wrap_angle(3 * math.pi / 2) == pytest.approx(-math.pi / 2)
    values = cv.wrap_angle(np.linspace(-10, 10, 1001))
    assert np.all(values >= -math.pi) and np.all(values < math.pi)


def test_turning_left_moves_a_static_source_right() -> None:
    phi_world = math.radians(30)
    yaw_0, yaw_1 = 0.0, math.radians(20)  # camera turns left by 20 degrees
    theta = cv.camera_turn(yaw_1, yaw_0)
    assert theta == pytest.approx(math.radians(20))
    phi_0 = cv.source_azimuth_in_view(phi_world, yaw_0)
    phi_1 = cv.source_azimuth_in_view(phi_world, yaw_1)
    assert phi_1 == pytest.approx(phi_0 - theta)
    assert phi_1 < phi_0


@pytest.mark.parametrize(
    ("phi_deg", "mirror_deg"), [(30, 150), (150, 30), (-30, -150), (-150, -30), (90, 90), (0, -180)]
)
def test_front_back_mirror(phi_deg: float, mirror_deg: float) -> None:
    got = cv.front_back_mirror(math.radians(phi_deg))
    assert cv.angular_error(got, math.radians(mirror_deg)) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("phi_deg", "folded_deg"), [(120, 60), (-120, -60), (45, 45), (-90, -90), (90, 90), (180, 0)]
)
def test_fold_to_front(phi_deg: float, folded_deg: float) -> None:
    assert math.degrees(cv.fold_to_front(math.radians(phi_deg))) == pytest.approx(folded_deg)


def test_mirror_keeps_left_right_side_and_fold_is_its_fixed_point() -> None:
    phis = np.radians(np.arange(-179, 180, 7.0))
    assert np.array_equal(cv.is_left(phis), cv.is_left(cv.front_back_mirror(phis)))
    np.testing.assert_allclose(cv.fold_to_front(phis), cv.fold_to_front(cv.front_back_mirror(phis)))


def test_angular_error_wraps() -> None:
    assert math.degrees(cv.angular_error(math.radians(179), math.radians(-179))) == pytest.approx(2)
    assert math.degrees(cv.angular_error(0.0, math.pi)) == pytest.approx(180)


def test_left_is_positive_and_quaternion_roundtrip() -> None:
    assert cv.is_left(math.radians(45)) and not cv.is_left(math.radians(-45))
    x, y, _ = cv.unit_vector(math.radians(90))
    assert x == pytest.approx(0, abs=1e-12) and y == pytest.approx(1)
    for yaw in np.radians([-179.0, -90.0, 0.0, 33.0, 179.0]):
        assert cv.angular_error(cv.yaw_from_quaternion(*cv.yaw_quaternion(yaw)), yaw) < 1e-9
