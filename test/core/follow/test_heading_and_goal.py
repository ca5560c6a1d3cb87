"""Yaw history (unwrapping, interpolation, bad samples) and the goal toward the source."""

from __future__ import annotations

import math

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.follow.goal import goal_toward
from slfm_ros.core.follow.heading import YawHistory


def test_yaw_history_unwraps_across_pi_and_interpolates() -> None:
    h = YawHistory()
    for k, yaw in enumerate((3.0, -3.1, -2.9)):  # crossing +-pi while turning left
        assert h.add(float(k), yaw) == ""
    assert h.latest_yaw == pytest.approx(-2.9 + 2 * math.pi)
    assert h.yaw_at(0.5) == pytest.approx(0.5 * (3.0 + (-3.1 + 2 * math.pi)))
    assert h.turn_since(0.0) == pytest.approx(-2.9 + 2 * math.pi - 3.0)
    assert h.yaw_at(-1.0) is None and h.turn_since(-1.0) is None
    assert h.yaw_at(5.0) == h.latest_yaw  # held past the newest sample


def test_bad_samples_are_refused_and_jumps_restart_the_history() -> None:
    h = YawHistory(max_jump=math.radians(45.0))
    h.add(1.0, 0.0)
    assert "older" in h.add(0.5, 0.1)
    assert "not finite" in h.add(2.0, math.nan)
    assert len(h) == 1
    assert "jumped" in h.add(2.0, 2.0)
    assert len(h) == 1 and h.restarts == 1 and h.yaw_at(1.5) is None


def test_history_keeps_its_span() -> None:
    h = YawHistory(span_s=1.0)
    for k in range(30):
        h.add(k * 0.1, 0.01 * k)
    assert h.yaw_at(1.0) is None and h.yaw_at(2.0) == pytest.approx(0.2)


def test_goal_lies_toward_the_source_and_faces_it() -> None:
    goal = goal_toward((1.0, 2.0), math.radians(90.0), 1.5)
    assert (goal.x, goal.y) == pytest.approx((1.0, 3.5))
    assert goal.yaw == pytest.approx(math.pi / 2)
    with pytest.raises(ConfigError, match="goal distance"):
        goal_toward((0.0, 0.0), 0.0, -1.0)
