"""The follower's control law against a simulated turning base, tick by tick."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import pytest

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.follow.controller import (
    FollowCommand,
    FollowerConfig,
    FollowerController,
    Mode,
    TrackObservation,
)
from slfm_ros.core.follow.heading import YawHistory
from slfm_ros.core.sim_robot.base import BaseLimits, TurningBase

DT = 0.05
# The tracker reports windows that end this long before the follower sees them.
LATENCY_S = 0.15


def run_loop(
    controller: FollowerController,
    source: float,
    seconds: float,
    state: Callable[[float, float], str] = lambda t, turned: "resolved",
    odometry: bool = True,
    stamp_lag_s: float = LATENCY_S,
) -> tuple[TurningBase, list[tuple[float, FollowCommand]]]:
    """Closed loop: the base turns as commanded; a track of the source at world bearing
    ``source`` arrives every tick, stamped ``stamp_lag_s`` ago, in the state
    ``state(t, yaw)``."""
    base = TurningBase(BaseLimits(max_angular_speed=3.0, max_angular_accel=20.0))
    odom = YawHistory()
    log = []
    t = 100.0
    odom.add(t, 0.0)
    for _ in range(int(seconds / DT)):
        t += DT
        base.advance(t)
        odom.add(t, base.yaw)
        stamp = t - stamp_lag_s
        yaw_then = odom.yaw_at(stamp)
        body = float(wrap_angle(source - (yaw_then if yaw_then is not None else 0.0)))
        track = TrackObservation(stamp, state(t, base.yaw), body, source)
        cmd = controller.update(t, track, odom if odometry else None)
        base.command(cmd.angular_z, t)
        log.append((t, cmd))
    return base, log


@pytest.mark.parametrize("source_deg", [60.0, -150.0, 170.0, -30.0])
def test_turns_to_a_resolved_source_within_the_limits_and_stops(source_deg: float) -> None:
    config = FollowerConfig()
    controller = FollowerController(config)
    source = math.radians(source_deg)
    base, log = run_loop(controller, source, 6.0)
    error = float(wrap_angle(source - base.yaw))
    assert abs(error) < config.resume
    assert controller.mode is Mode.FACING and log[-1][1].angular_z == 0.0
    rates = [cmd.angular_z for _, cmd in log]
    assert max(abs(r) for r in rates) <= config.max_speed + 1e-9
    steps = [abs(b - a) for a, b in zip([0.0, *rates], rates, strict=False)]
    assert max(steps) <= config.max_accel * DT + 1e-9
    # The short way round, and the first committed turn said so.
    assert controller.first_commit is not None
    assert controller.first_commit.direction == (1 if source_deg > 0 else -1)
    assert all(r * controller.first_commit.direction >= 0 for r in rates)


def test_latency_is_compensated_with_the_turn_since_the_stamp() -> None:
    controller = FollowerController()
    odom = YawHistory()
    odom.add(10.0, 0.0)
    odom.add(10.5, 0.3)
    track = TrackObservation(10.0, "resolved", 0.5, 0.5)
    assert controller.heading_error(track, 10.5, odom) == pytest.approx(0.2)
    # Without odometry the follower counts its own commands: none yet, so no correction.
    assert controller.heading_error(track, 10.5, None) == pytest.approx(0.5)


def test_without_odometry_its_own_commands_stand_in() -> None:
    controller = FollowerController()
    base, _ = run_loop(controller, math.radians(100.0), 6.0, odometry=False)
    assert abs(wrap_angle(math.radians(100.0) - base.yaw)) < FollowerConfig().resume


@pytest.mark.parametrize("source_deg, side", [(150.0, 1), (30.0, 1), (-120.0, -1), (180.0, 1)])
def test_an_ambiguous_track_gets_only_probes_toward_its_side_and_back(
    source_deg: float, side: int
) -> None:
    config = FollowerConfig(probe_angle=math.radians(30.0), max_probes=3, probe_wait_s=1.0)
    controller = FollowerController(config)
    yaws = []

    def ambiguous(t: float, yaw: float) -> str:
        yaws.append(yaw)
        return "ambiguous"

    base, log = run_loop(controller, math.radians(source_deg), 12.0, state=ambiguous)
    assert controller.first_commit is None
    assert {cmd.mode for _, cmd in log} == {Mode.PROBING}
    assert controller.first_probe_direction == side and controller.probes == 3
    # Out toward the side it is heard on (a source on the front-back axis: left), back, out
    # again, then it waits; never farther than the probe angle (a degree of braking aside).
    excursions = [y * side for y in yaws]
    assert min(excursions) > -math.radians(1.5)
    assert max(excursions) < math.radians(31.5)
    assert abs(base.yaw * side - math.radians(30.0)) < math.radians(2.0)
    rates = [cmd.angular_z for _, cmd in log]
    assert any(r * side < 0 for r in rates)  # it came back once
    assert rates[-1] == 0.0 and "after 3 probes" in log[-1][1].reason


def test_probing_ends_in_a_committed_turn_once_front_back_is_decided() -> None:
    controller = FollowerController()
    source = math.radians(150.0)

    def state(t: float, yaw: float) -> str:
        return "resolved" if abs(yaw) > math.radians(20.0) else "ambiguous"

    base, log = run_loop(controller, source, 8.0, state=state)
    modes = [cmd.mode for _, cmd in log]
    assert modes[0] is Mode.PROBING and Mode.TURNING in modes
    assert controller.first_commit is not None and controller.first_commit.direction == 1
    assert abs(wrap_angle(source - base.yaw)) < FollowerConfig().resume


def test_probing_can_be_switched_off() -> None:
    controller = FollowerController(FollowerConfig(probe=False))
    base, log = run_loop(controller, 2.0, 3.0, state=lambda t, y: "ambiguous")
    assert base.yaw == 0.0 and "probing is off" in log[-1][1].reason


@pytest.mark.parametrize(
    "state, lag, reason",
    [
        ("resolved", 1.3, "old"),
        ("resolved", -1.3, "future"),
        ("lost", LATENCY_S, "lost"),
        ("tentative", LATENCY_S, "tentative"),
    ],
)
def test_never_turns_on_a_stale_lost_or_tentative_track(
    state: str, lag: float, reason: str
) -> None:
    controller = FollowerController()
    base, log = run_loop(controller, 1.5, 3.0, state=lambda t, y: state, stamp_lag_s=lag)
    assert base.yaw == 0.0 and all(cmd.angular_z == 0.0 for _, cmd in log)
    assert reason in log[-1][1].reason and log[-1][1].error is None


def test_a_track_going_stale_mid_turn_brakes_to_a_stop_within_the_accel_limit() -> None:
    config = FollowerConfig()
    controller = FollowerController(config)
    odom = YawHistory()
    t, rate = 0.0, 0.0
    rates = []
    for k in range(80):
        t = k * DT
        odom.add(t, 0.0)
        stamp = t - LATENCY_S if k < 30 else 30 * DT - LATENCY_S  # the tracker goes quiet
        cmd = controller.update(t, TrackObservation(stamp, "resolved", 2.5, 2.5), odom)
        rates.append(cmd.angular_z)
        rate = cmd.angular_z
    assert max(rates) == pytest.approx(config.max_speed)
    assert rate == 0.0 and controller.mode is Mode.STALE
    steps = [abs(b - a) for a, b in itertools.pairwise(rates)]
    assert max(steps) <= config.max_accel * DT + 1e-9


def test_unheard_and_malformed_tracks_stop_it() -> None:
    controller = FollowerController()
    cmd = controller.update(1.0, TrackObservation(1.0, "resolved", 1.0, 1.0, heard_age_s=9.0))
    assert cmd.mode is Mode.STALE and "last heard" in cmd.reason
    cmd = controller.update(1.1, TrackObservation(1.1, "resolved", math.nan, 1.0))
    assert cmd.mode is Mode.IDLE and "non-finite" in cmd.reason
    cmd = controller.update(1.2, TrackObservation(1.2, "confused", 1.0, 1.0))
    assert cmd.mode is Mode.IDLE and "not one of" in cmd.reason
    assert controller.update(1.3, None).reason == "no track yet"


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="max_speed"):
        FollowerConfig(max_speed=0.0)
    with pytest.raises(ConfigError, match="deadband"):
        FollowerConfig(deadband=math.radians(10.0), resume=math.radians(8.0))
    with pytest.raises(ConfigError, match="probe_speed"):
        FollowerConfig(probe_speed=2.0, max_speed=1.0)
    with pytest.raises(ConfigError, match="probe_angle"):
        FollowerConfig(probe_angle=math.radians(120.0))
