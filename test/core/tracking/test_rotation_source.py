"""Rotation inputs: interpolation, the choice between inputs, and every kind of bad input."""

from __future__ import annotations

import math

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.tracking.rotation_source import RotationConfig, RotationInput

NS = 1_000_000_000
MS = NS // 1000
RAD = math.radians


def codes(events: list) -> list[str]:
    return [e.code for e in events]


def odometry(rot: RotationInput, t0: float, t1: float, yaw, rate_hz: float = 50.0) -> list:
    """Odometry samples every 1/rate_hz s in [t0, t1) with yaw(t); the events raised."""
    events = []
    n = int(round((t1 - t0) * rate_hz))
    for k in range(n):
        t = t0 + k / rate_hz
        events += rot.add_odometry(int(t * NS), yaw(t), t * 0.1, 0.0)
    return events


def test_yaw_is_interpolated_and_briefly_extrapolated() -> None:
    rot = RotationInput(RotationConfig())
    assert odometry(rot, 0.0, 2.0, lambda t: 0.5 * t) == []
    q, events = rot.query(int(1.005 * NS), int(1.99 * NS))
    assert events == [] and q.state == "ok" and q.source == "odom"
    assert q.yaw_at_window == pytest.approx(0.5025, abs=1e-6)
    assert q.yaw_now == pytest.approx(0.995, abs=1e-6)
    assert q.position == pytest.approx((0.198, 0.0), abs=1e-3)
    # 0.3 s past the newest sample: extrapolated at the recent rate.
    q, _ = rot.query(int(1.9 * NS), int(2.28 * NS))
    assert q.yaw_now == pytest.approx(0.5 * 2.28, abs=1e-3)


def test_yaw_unwraps_across_pi() -> None:
    rot = RotationInput(RotationConfig())
    wrapped = lambda t: math.atan2(math.sin(3.0 + 0.4 * t), math.cos(3.0 + 0.4 * t))  # noqa: E731
    assert odometry(rot, 0.0, 2.0, wrapped) == []
    q, _ = rot.query(int(0.5 * NS), int(1.9 * NS))
    assert q.yaw_now is not None and q.yaw_at_window is not None
    assert q.yaw_now - q.yaw_at_window == pytest.approx(0.4 * 1.4, abs=1e-6)


def test_a_stamp_going_back_is_dropped_and_a_long_way_back_restarts_the_input() -> None:
    rot = RotationInput(RotationConfig(restart_after_s=1.0))
    odometry(rot, 0.0, 2.0, lambda t: 0.2 * t)
    assert codes(rot.add_odometry(int(1.5 * NS), 5.0)) == ["rotation_backwards"]
    q, _ = rot.query(int(1.5 * NS), int(1.98 * NS))
    assert q.yaw_at_window == pytest.approx(0.3, abs=1e-6)  # the stray sample was not kept
    # A replayed recording starts again at 0 s: history cleared, joined without a turn.
    events = odometry(rot, 0.0, 1.0, lambda t: 1.0 + 0.2 * t)
    assert codes(events) == ["rotation_backwards"]
    q, _ = rot.query(int(0.5 * NS), int(0.98 * NS))
    assert q.state == "ok" and q.yaw_now is not None and q.yaw_at_window is not None
    assert q.yaw_now - q.yaw_at_window == pytest.approx(0.2 * 0.48, abs=1e-6)
    assert q.frame_shift == pytest.approx(1.0 - 0.2 * 1.98, abs=1e-3)


def test_a_jump_is_a_frame_shift_not_a_turn() -> None:
    rot = RotationInput(RotationConfig(max_yaw_rate_deg_s=360.0))
    odometry(rot, 0.0, 1.0, lambda t: 0.1 * t)
    q, _ = rot.query(int(0.5 * NS), int(0.98 * NS))
    assert q.frame_shift == 0.0
    # The odometry is reset: yaw jumps by 90 deg within one 20 ms step.
    events = odometry(rot, 1.0, 2.0, lambda t: RAD(90.0) + 0.1 * t)
    assert codes(events) == ["rotation_jump"]
    assert "jumped by" in events[0].message
    q, _ = rot.query(int(0.5 * NS), int(1.98 * NS))
    # (The robot's real turn during the 20 ms of the jump, 2 mrad, goes into the shift.)
    assert q.frame_shift == pytest.approx(RAD(90.0), abs=3e-3)
    # Continuous in the new frame: the turn across the jump is the robot's real 0.1 rad/s.
    assert q.yaw_now is not None and q.yaw_at_window is not None
    assert q.yaw_now - q.yaw_at_window == pytest.approx(0.1 * 1.48, abs=3e-3)
    q, _ = rot.query(int(1.0 * NS), int(1.98 * NS))
    assert q.frame_shift == 0.0  # taken once


def test_an_input_that_stops_is_stale_once_then_recovers() -> None:
    rot = RotationInput(RotationConfig(timeout_s=1.0))
    odometry(rot, 0.0, 2.0, lambda t: 0.0)
    q, events = rot.query(int(2.5 * NS), int(3.5 * NS))
    assert q.state == "stale" and not q.known and codes(events) == ["rotation_stale"]
    q, events = rot.query(int(2.6 * NS), int(3.6 * NS))
    assert q.state == "stale" and events == []  # reported once per episode
    odometry(rot, 2.0, 5.0, lambda t: 0.0)
    q, events = rot.query(int(4.0 * NS), int(4.9 * NS))
    assert q.state == "ok" and events == []


def test_a_hole_in_the_history_is_not_interpolated_over() -> None:
    rot = RotationInput(RotationConfig(timeout_s=0.5))
    odometry(rot, 0.0, 1.0, lambda t: 0.0)
    odometry(rot, 2.0, 3.0, lambda t: 1.0)  # 1 s without samples, then 1 rad further
    q, events = rot.query(int(1.5 * NS), int(2.9 * NS))
    assert q.state == "gap" and q.yaw_at_window is None
    assert codes(events) == ["rotation_gap"]


def test_a_chosen_input_that_never_publishes_is_reported_after_the_timeout() -> None:
    rot = RotationInput(RotationConfig(source="odom", timeout_s=1.0))
    rot.add_camera(int(0.5 * NS), 0.0)  # another input does not count
    q, events = rot.query(int(0.5 * NS), int(1.0 * NS))
    assert q.state == "no_input" and events == []  # still starting up
    q, events = rot.query(int(1.6 * NS), int(2.1 * NS))
    assert codes(events) == ["rotation_no_input"]
    assert "rotation_source is odom" in events[0].message


def test_non_finite_values_are_dropped() -> None:
    rot = RotationInput(RotationConfig())
    assert codes(rot.add_odometry(NS, float("nan"))) == ["rotation_invalid"]
    assert codes(rot.add_odometry(NS, 0.0, float("inf"), 0.0)) == ["rotation_invalid"]
    assert rot.received("odom") == 0


def test_auto_prefers_odometry_and_falls_back_to_the_camera_in_its_frame() -> None:
    rot = RotationInput(RotationConfig(source="auto", timeout_s=0.5))
    # The camera's integrated yaw starts at 0 where the odometry says 1 rad.
    for k in range(40):
        t = k * 0.1
        rot.add_camera(int(t * NS), 0.2 * t)
    odometry(rot, 0.0, 2.0, lambda t: 1.0 + 0.2 * t)
    q, _ = rot.query(int(1.0 * NS), int(1.9 * NS))
    assert q.source == "odom" and q.yaw_now == pytest.approx(1.0 + 0.2 * 1.9, abs=1e-6)
    # Odometry stops: the camera takes over, and tracks move into the camera's frame.
    q, events = rot.query(int(2.8 * NS), int(3.3 * NS))
    assert q.source == "camera" and q.state == "ok" and "rotation_switched" in codes(events)
    assert q.frame_shift == pytest.approx(-1.0, abs=1e-3)
    assert q.yaw_at_window == pytest.approx(0.2 * 2.8, abs=1e-6)


def test_imu_orientation_or_integrated_rate() -> None:
    rot = RotationInput(RotationConfig(source="imu"))
    for k in range(201):
        t = k * 0.01
        rot.add_imu(int(t * NS), None, 0.5)  # no orientation: 0.5 rad/s integrated
    q, _ = rot.query(int(0.5 * NS), int(2.0 * NS))
    assert q.yaw_now is not None and q.yaw_at_window is not None
    assert q.yaw_now - q.yaw_at_window == pytest.approx(0.75, abs=1e-6)
    rot2 = RotationInput(RotationConfig(source="imu"))
    for k in range(101):
        rot2.add_imu(int(k * 0.01 * NS), 0.3 + 0.001 * k, 5.0)  # orientation wins over rate
    q, _ = rot2.query(int(0.5 * NS), int(1.0 * NS))
    assert q.yaw_now == pytest.approx(0.4, abs=1e-6)


def test_source_none_never_gives_a_yaw() -> None:
    rot = RotationInput(RotationConfig(source="none"))
    odometry(rot, 0.0, 1.0, lambda t: 0.0)
    q, events = rot.query(int(0.5 * NS), int(0.9 * NS))
    assert (q.source, q.state, q.known, events) == ("none", "off", False, [])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigError, match="rotation_source"):
        RotationConfig(source="gps")
    with pytest.raises(ConfigError, match="rotation_timeout_s"):
        RotationConfig(timeout_s=0.0)
    cfg = RotationConfig.from_params({"rotation_source": "camera", "rotation_timeout_s": 2.0})
    assert (cfg.source, cfg.timeout_s) == ("camera", 2.0)
