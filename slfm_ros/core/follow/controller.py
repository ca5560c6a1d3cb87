"""Face the tracked sound source: the yaw-rate command, one control tick at a time.

Input per tick: the primary track as the tracker last reported it (its state, its bearing in
the body frame at the track's stamp, its front/back probability, how long ago it was heard) and
the robot's yaw history. The heading error is the track's body bearing minus the turn the robot
made since the track's stamp, so a slow track still points to where the source is now.

Modes (``Mode``), decided every tick:

- ``idle``: no usable track (none yet, tentative, or lost): stop.
- ``stale``: the last track is older than ``max_track_age_s`` (the tracker stopped talking),
  or its source was last heard more than ``max_unheard_s`` ago: stop.
- ``probing``: the track is ambiguous (front or back undecided). A two-ear receiver hears the
  side of a source without doubt (a source and its front/back mirror share sin(bearing)), so
  the robot turns toward that side by ``probe_angle`` at ``probe_speed``: the right way for
  both hypotheses, and the motion that lets the tracker decide. Then it holds still for
  ``probe_wait_s``; if the track is still undecided it turns back to where probing began, holds
  again, and so on (``max_probes`` turns in all), then waits. An ambiguous track never moves
  the robot more than ``probe_angle`` from where probing began: it does not commit to either
  hypothesis.
- ``turning``: the track is resolved: turn toward it at k * error, at most ``max_speed`` and
  never faster than lets it stop at the source with ``max_accel`` (sqrt(2 a |error|)).
- ``facing``: resolved and within ``deadband``: stop; turn again once the error exceeds
  ``resume``.

Every command obeys ``max_speed`` and changes by at most ``max_accel`` per second, also when
stopping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.follow.heading import YawHistory

TRACK_STATES = ("tentative", "ambiguous", "resolved", "lost")
# A side counts as heard when the source is at least this far off the front-back axis.
SIDE_MIN_SIN = math.sin(math.radians(8.0))
# A probe has reached its target yaw within this.
PROBE_TOLERANCE = math.radians(1.0)


class Mode(StrEnum):
    IDLE = "idle"
    STALE = "stale"
    PROBING = "probing"
    TURNING = "turning"
    FACING = "facing"


@dataclass(frozen=True)
class TrackObservation:
    """The primary track as reported: stamp (s, capture time of the window), state (one of
    TRACK_STATES), bearing in the body frame at the stamp and in the world (odom) frame
    (radians), bearing variance (rad^2), front probability, time since last heard (s)."""

    stamp_s: float
    state: str
    body_bearing: float
    world_bearing: float
    variance: float = 0.0
    front_probability: float = 0.5
    heard_age_s: float = 0.0

    def problem(self) -> str:
        """Why this observation cannot be used, or ""."""
        if self.state not in TRACK_STATES:
            return f"track state {self.state!r} is not one of {TRACK_STATES}"
        values = (self.stamp_s, self.body_bearing, self.world_bearing, self.heard_age_s)
        if not all(math.isfinite(v) for v in values):
            return f"track has non-finite numbers {values}"
        return ""


@dataclass(frozen=True)
class FollowerConfig:
    """Limits and thresholds (radians, seconds, rad/s, rad/s^2); see module doc."""

    max_speed: float = 1.5
    max_accel: float = 3.0
    gain: float = 2.5
    deadband: float = math.radians(3.0)
    resume: float = math.radians(6.0)
    max_track_age_s: float = 1.0
    max_unheard_s: float = 4.0
    probe: bool = True
    probe_angle: float = math.radians(35.0)
    probe_speed: float = 0.8
    probe_wait_s: float = 1.0
    max_probes: int = 4
    odom_timeout_s: float = 0.5

    def __post_init__(self) -> None:
        positive = (
            "max_speed",
            "max_accel",
            "gain",
            "max_track_age_s",
            "max_unheard_s",
            "probe_speed",
            "odom_timeout_s",
        )
        for name in positive:
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"follower {name} must be a positive number, got {value!r}")
        if not 0 <= self.deadband < self.resume < math.pi:
            raise ConfigError(
                "follower deadband must be >= 0 and smaller than resume (< 180 deg), got "
                f"{math.degrees(self.deadband):g} and {math.degrees(self.resume):g} deg"
            )
        if not 0 < self.probe_angle <= math.pi / 2:
            raise ConfigError(
                "follower probe_angle must be in (0, 90] deg, got "
                f"{math.degrees(self.probe_angle):g}"
            )
        if self.probe_speed > self.max_speed:
            raise ConfigError(
                f"follower probe_speed {self.probe_speed} exceeds max_speed {self.max_speed}"
            )
        if self.probe_wait_s < 0 or self.max_probes < 0:
            raise ConfigError("follower probe_wait_s and max_probes must be >= 0")


@dataclass(frozen=True)
class FollowCommand:
    """One tick's decision: yaw rate (rad/s), mode, heading error (radians, None without a
    usable track) and what the mode is about, in words."""

    angular_z: float
    mode: Mode
    error: float | None
    reason: str


@dataclass(frozen=True)
class Commitment:
    """The first turn made on a resolved track: when, which way (+1 left, -1 right) and the
    heading error it set out to close."""

    t: float
    direction: int
    error: float


class FollowerController:
    """Turns the robot toward the tracked source (see module doc)."""

    def __init__(self, config: FollowerConfig | None = None) -> None:
        self.config = config or FollowerConfig()
        self.mode = Mode.IDLE
        self.rate = 0.0
        self._last_t: float | None = None
        # Dead reckoning from our own commands, used while no odometry arrives.
        self._own = YawHistory(span_s=10.0, max_jump=math.pi)
        self._own_yaw = 0.0
        # Probing: the yaw where it began, the side it turns to, the current probe's target yaw.
        self._probe_origin: float | None = None
        self._probe_side = 1
        self._probe_target: float | None = None
        self._probe_done_t: float | None = None
        self.probes = 0
        self.first_commit: Commitment | None = None
        self.first_probe_direction = 0

    # ------------------------------------------------------------------ heading
    def _history(self, odom: YawHistory | None, now: float) -> tuple[YawHistory, str]:
        if odom is not None and odom.latest_time is not None:
            if now - odom.latest_time <= self.config.odom_timeout_s:
                return odom, "odom"
        return self._own, "own commands"

    def heading_error(
        self, track: TrackObservation, now: float, odom: YawHistory | None = None
    ) -> float:
        """The track's bearing brought to ``now``: body bearing minus the turn since its
        stamp (0 when the turn is unknown)."""
        history, _ = self._history(odom, now)
        turn = history.turn_since(track.stamp_s)
        return float(wrap_angle(track.body_bearing - (turn or 0.0)))

    # ------------------------------------------------------------------ control
    def update(
        self, now: float, track: TrackObservation | None, odom: YawHistory | None = None
    ) -> FollowCommand:
        """The command for time ``now`` (seconds, the clock of the track stamps)."""
        c = self.config
        dt = 0.0 if self._last_t is None else max(0.0, now - self._last_t)
        self._last_t = now
        history, source = self._history(odom, now)
        yaw_now = history.latest_yaw if history.latest_yaw is not None else self._own_yaw

        target, mode, error, reason = self._decide(now, track, odom, yaw_now, source)
        step = c.max_accel * dt
        rate = self.rate + max(-step, min(step, target - self.rate))
        rate = max(-c.max_speed, min(c.max_speed, rate))
        if mode is Mode.TURNING and self.first_commit is None and error is not None:
            self.first_commit = Commitment(now, 1 if error > 0 else -1, error)
        self.rate = rate
        self.mode = mode
        self._own_yaw += rate * dt
        self._own.add(now, self._own_yaw)
        return FollowCommand(rate, mode, error, reason)

    def _decide(
        self,
        now: float,
        track: TrackObservation | None,
        odom: YawHistory | None,
        yaw_now: float,
        source: str,
    ) -> tuple[float, Mode, float | None, str]:
        c = self.config
        if track is None:
            return self._stop(Mode.IDLE, None, "no track yet")
        problem = track.problem()
        if problem:
            return self._stop(Mode.IDLE, None, f"unusable track: {problem}")
        age = now - track.stamp_s
        if age > c.max_track_age_s:
            return self._stop(
                Mode.STALE, None, f"the last track is {age:.2f} s old (> {c.max_track_age_s:g} s)"
            )
        if age < -c.max_track_age_s:
            return self._stop(
                Mode.STALE,
                None,
                f"the track is stamped {-age:.2f} s in the future: the tracker's clock differs "
                "from this node's",
            )
        if track.state == "lost":
            return self._stop(Mode.IDLE, None, "the track was lost")
        if track.state == "tentative":
            return self._stop(Mode.IDLE, None, "the track is tentative (not confirmed yet)")
        if track.heard_age_s > c.max_unheard_s:
            return self._stop(
                Mode.STALE,
                None,
                f"the source was last heard {track.heard_age_s:.1f} s ago "
                f"(> {c.max_unheard_s:g} s)",
            )
        error = self.heading_error(track, now, odom)
        if track.state == "ambiguous":
            return self._probe(now, track, yaw_now, error, source)
        self._reset_probe()
        if self.mode is Mode.FACING and abs(error) <= c.resume:
            return 0.0, Mode.FACING, error, "facing the source"
        if abs(error) <= c.deadband:
            return 0.0, Mode.FACING, error, "facing the source"
        speed = min(c.max_speed, c.gain * abs(error), math.sqrt(2.0 * c.max_accel * abs(error)))
        return math.copysign(speed, error), Mode.TURNING, error, f"turning to the source ({source})"

    def _stop(self, mode: Mode, error: float | None, reason: str) -> tuple[float, Mode, None, str]:
        self._reset_probe()
        return 0.0, mode, None, reason

    def _probe(
        self, now: float, track: TrackObservation, yaw_now: float, error: float, source: str
    ) -> tuple[float, Mode, float | None, str]:
        c = self.config
        if not c.probe:
            return 0.0, Mode.PROBING, error, "front/back undecided; probing is off: waiting"
        if self._probe_target is None and self._probe_done_t is None:
            if self.probes >= c.max_probes:
                return (
                    0.0,
                    Mode.PROBING,
                    error,
                    f"front/back still undecided after {self.probes} probes: waiting",
                )
            self._start_probe(yaw_now, error)
        if self._probe_target is not None:
            remaining = self._probe_target - yaw_now
            # Stop commanding in time for the braking to end the turn at the target.
            toward = self.rate * remaining > 0
            braking = self.rate * self.rate / (2.0 * c.max_accel) if toward else 0.0
            if abs(remaining) > braking + PROBE_TOLERANCE:
                direction = 1 if remaining > 0 else -1
                way = "left" if direction > 0 else "right"
                return (
                    direction * c.probe_speed,
                    Mode.PROBING,
                    error,
                    f"front/back undecided: probe {self.probes} turning {way} "
                    f"({math.degrees(abs(remaining)):.0f} deg to go, {source})",
                )
            self._probe_target = None
            self._probe_done_t = now
        assert self._probe_done_t is not None
        if now - self._probe_done_t >= c.probe_wait_s:
            self._probe_done_t = None  # the next tick starts another probe (or waits)
        return 0.0, Mode.PROBING, error, f"front/back undecided: holding after probe {self.probes}"

    def _start_probe(self, yaw_now: float, error: float) -> None:
        """Odd probes turn ``probe_angle`` toward the side the source is heard on (left when it
        is on the front-back axis), even ones back to where probing began."""
        if self._probe_origin is None:
            side = math.sin(error)
            self._probe_side = -1 if side <= -SIDE_MIN_SIN else 1
            self._probe_origin = yaw_now
            if self.first_probe_direction == 0:
                self.first_probe_direction = self._probe_side
        self.probes += 1
        outward = self.probes % 2 == 1
        offset = self._probe_side * self.config.probe_angle if outward else 0.0
        self._probe_target = self._probe_origin + offset

    def _reset_probe(self) -> None:
        self._probe_origin = None
        self._probe_target = None
        self._probe_done_t = None
        self.probes = 0
