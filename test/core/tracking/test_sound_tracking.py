"""Sound tracking: each window's direction is placed in the world with the yaw of the moment
its evidence was heard."""

from __future__ import annotations

import math

import pytest

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.estimators.base import AngleEstimate
from slfm_ros.core.tracking.bearing_tracker import TrackerConfig
from slfm_ros.core.tracking.rotation_source import RotationConfig
from slfm_ros.core.tracking.sound_tracking import SoundTracking

NS = 1_000_000_000
RATE = math.radians(30.0)  # the robot turns left at 30 deg/s
SOURCE = math.radians(20.0)  # world bearing of a static talker


def turning_run(evidence_s: float | None, heard_s: float) -> float:
    """Final world bearing (deg) of the primary track when every window's azimuth is what the
    robot heard ``heard_s`` into the window, reported with ``evidence_s``."""
    tracking = SoundTracking(TrackerConfig(), RotationConfig())
    primary = None
    for k in range(10, 40):
        end = k * 0.1
        for j in range(5):  # 50 Hz odometry up to the window's end
            t = end - 0.1 + (j + 1) * 0.02
            tracking.rotation.add_odometry(int(round(t * NS)), RATE * t, 0.0, 0.0)
        heard = end - 1.0 + heard_s
        azimuth = float(wrap_angle(SOURCE - RATE * heard))
        estimate = AngleEstimate.from_confidence(azimuth, 0.9, evidence_s=evidence_s)
        primary = tracking.on_window(int(round(end * NS)), estimate).primary
    assert primary is not None
    return math.degrees(primary.world_bearing)


def test_an_early_evidence_time_turns_the_direction_with_the_yaw_of_that_moment() -> None:
    assert turning_run(evidence_s=0.15, heard_s=0.15) == pytest.approx(20.0, abs=0.5)
    # Taken at the window's middle, the same directions are 0.35 s x 30 deg/s off.
    assert turning_run(evidence_s=None, heard_s=0.15) == pytest.approx(20.0 + 10.5, abs=1.0)
    assert turning_run(evidence_s=None, heard_s=0.5) == pytest.approx(20.0, abs=0.5)


def test_the_heard_time_stays_inside_the_window() -> None:
    tracking = SoundTracking(TrackerConfig(window_s=1.0), RotationConfig())
    end = 5 * NS

    def at(evidence: float | None) -> int:
        return tracking.heard_at(end, AngleEstimate.from_confidence(0.1, 0.5, evidence_s=evidence))

    assert at(None) == end - NS // 2
    assert at(0.25) == end - 3 * NS // 4
    assert at(-3.0) == end - NS and at(7.0) == end
    assert at(float("nan")) == end - NS // 2
    assert tracking.heard_at(end, None) == end - NS // 2
