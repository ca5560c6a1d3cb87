"""A base that turns in place: commanded yaw rate in, yaw out.

The base behaves like a differential drive with a velocity controller and a command watchdog:
it slews its yaw rate toward the last commanded rate at most ``max_angular_accel`` rad/s^2,
never faster than ``max_angular_speed`` rad/s, and brakes to a stop when no command arrived
for ``cmd_timeout_s`` (a controller that died must not leave the robot spinning). Yaw is
REP-103 (counter-clockwise positive, radians) and is not wrapped, so turns add up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError


@dataclass(frozen=True)
class BaseLimits:
    """Actuator limits of the simulated base (rad/s, rad/s^2, s)."""

    max_angular_speed: float = 2.5
    max_angular_accel: float = 6.0
    cmd_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        for name in ("max_angular_speed", "max_angular_accel", "cmd_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name} must be a positive number, got {value!r}")


@dataclass(frozen=True)
class CommandResult:
    """What became of one command: the rate the base will aim for and why it differs."""

    accepted: bool
    target_rate: float
    problem: str = ""


class TurningBase:
    """Yaw of a base turning in place under rate commands (see module doc).

    Times are seconds on one clock (the simulation's); ``advance`` must be called with
    non-decreasing times.
    """

    def __init__(self, limits: BaseLimits | None = None, yaw: float = 0.0, t: float = 0.0):
        self.limits = limits or BaseLimits()
        self.yaw = float(yaw)
        self.yaw_rate = 0.0
        self.t = float(t)
        self._target = 0.0
        self._command_t: float | None = None
        self.commands = 0
        self.rejected = 0
        self.saturated = 0
        self.timeouts = 0
        self._timed_out = True

    @property
    def heading(self) -> float:
        """Yaw wrapped to [-pi, pi)."""
        return wrap_angle(self.yaw)

    @property
    def commanded(self) -> bool:
        """True while a command younger than the watchdog timeout is in force."""
        return not self._timed_out

    def command(self, angular_z: float, t: float) -> CommandResult:
        """A yaw-rate command (rad/s) received at time ``t``.

        Non-finite values are rejected (the base keeps its previous target); values beyond
        ``max_angular_speed`` are clipped to it.
        """
        rate = float(angular_z)
        if not math.isfinite(rate):
            self.rejected += 1
            return CommandResult(
                False, self._target, f"angular.z {rate!r} is not a finite number: ignored"
            )
        self.commands += 1
        self._command_t = float(t)
        self._timed_out = False
        limit = self.limits.max_angular_speed
        problem = ""
        if abs(rate) > limit:
            self.saturated += 1
            problem = f"angular.z {rate:.3f} rad/s exceeds the base limit {limit:g} rad/s: clipped"
            rate = math.copysign(limit, rate)
        self._target = rate
        return CommandResult(True, rate, problem)

    def advance(self, t: float) -> None:
        """Move the base to time ``t`` (seconds)."""
        dt = float(t) - self.t
        if dt < 0:
            raise ValueError(f"time runs backward: {t} < {self.t}")
        if dt == 0:
            return
        if (
            not self._timed_out
            and self._command_t is not None
            and t - self._command_t > self.limits.cmd_timeout_s
        ):
            self._timed_out = True
            self.timeouts += 1
        target = 0.0 if self._timed_out else self._target
        step = self.limits.max_angular_accel * dt
        new_rate = self.yaw_rate + max(-step, min(step, target - self.yaw_rate))
        # Trapezoidal: the rate changes linearly over the step.
        self.yaw += 0.5 * (self.yaw_rate + new_rate) * dt
        self.yaw_rate = new_rate
        self.t = float(t)
