"""A goal pose toward the source, for a navigation stack.

The tracker knows the source's bearing, not its range, so the goal is a point ``distance_m``
from the robot along the bearing, facing the source: "drive this far toward the sound". A
navigation stack that gets a new goal every few seconds approaches the source step by step.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError


@dataclass(frozen=True)
class GoalPose:
    """x, y (m) and yaw (radians) in the frame of the robot position and bearing given."""

    x: float
    y: float
    yaw: float


def goal_toward(position: tuple[float, float], world_bearing: float, distance_m: float) -> GoalPose:
    """The point ``distance_m`` from ``position`` along ``world_bearing``, facing along it."""
    if not (math.isfinite(distance_m) and distance_m >= 0):
        raise ConfigError(f"goal distance must be a number >= 0 m, got {distance_m!r}")
    x, y = position
    return GoalPose(
        x + distance_m * math.cos(world_bearing),
        y + distance_m * math.sin(world_bearing),
        float(wrap_angle(world_bearing)),
    )
