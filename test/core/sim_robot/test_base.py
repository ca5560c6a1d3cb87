"""The turning base: rate limits, acceleration limit, watchdog, bad commands."""

from __future__ import annotations

import math

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim_robot.base import BaseLimits, TurningBase


def _run(base: TurningBase, until: float, dt: float = 0.01) -> None:
    t = base.t
    while t < until - 1e-12:
        t = min(until, t + dt)
        base.advance(t)


def test_turns_at_the_commanded_rate_after_accelerating() -> None:
    base = TurningBase(BaseLimits(max_angular_speed=2.0, max_angular_accel=4.0))
    base.command(1.0, 0.0)
    _run(base, 0.1)
    assert base.yaw_rate == pytest.approx(0.4)  # still accelerating at 4 rad/s^2
    for k in range(1, 11):
        base.command(1.0, 0.1 * k)
        _run(base, 0.1 * (k + 1))
    assert base.yaw_rate == pytest.approx(1.0)
    # 0.25 s ramp covers 0.125 rad, then 1 rad/s for the remaining 0.85 s.
    assert base.yaw == pytest.approx(0.125 + 0.85, abs=1e-6)


def test_commands_beyond_the_limit_are_clipped_and_bad_ones_ignored() -> None:
    base = TurningBase(BaseLimits(max_angular_speed=1.5))
    result = base.command(-9.0, 0.0)
    assert result.accepted and result.target_rate == -1.5 and "clipped" in result.problem
    bad = base.command(math.nan, 0.0)
    assert not bad.accepted and bad.target_rate == -1.5 and "not a finite" in bad.problem
    assert (base.saturated, base.rejected, base.commands) == (1, 1, 1)


def test_watchdog_stops_a_base_whose_commands_stopped() -> None:
    base = TurningBase(BaseLimits(max_angular_accel=10.0, cmd_timeout_s=0.3))
    base.command(1.0, 0.0)
    _run(base, 0.25)
    assert base.yaw_rate == pytest.approx(1.0) and base.commanded
    _run(base, 1.0)
    assert base.yaw_rate == 0.0 and not base.commanded and base.timeouts == 1
    yaw = base.yaw
    _run(base, 2.0)
    assert base.yaw == yaw


def test_time_must_not_run_backward_and_limits_are_checked() -> None:
    base = TurningBase()
    base.advance(1.0)
    with pytest.raises(ValueError, match="backward"):
        base.advance(0.5)
    with pytest.raises(ConfigError, match="max_angular_speed"):
        BaseLimits(max_angular_speed=0.0)
    with pytest.raises(ConfigError, match="cmd_timeout_s"):
        BaseLimits(cmd_timeout_s=math.inf)
