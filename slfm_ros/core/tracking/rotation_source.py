"""The robot's yaw over time, from whichever rotation input the robot has.

Inputs, each stamped with its capture time (ns, the clock of the audio stamps):
    odom     yaw (and x, y) of nav_msgs/Odometry              ``RotationInput.add_odometry``
    imu      orientation yaw, or the yaw rate integrated       ``RotationInput.add_imu``
    camera   slfm_node's own integrated camera yaw             ``RotationInput.add_camera``

Each input keeps a few seconds of history (``RotationHistory``). The tracker asks
``RotationInput.query`` for the yaw at a window's centre (what the window heard) and at its
end (where the robot points when the output is published). ``source`` "auto" takes the first
of odom, imu, camera that is fresh; an explicit choice takes that input only; "none" never
gives a yaw.

World frame: the frame of the input in use. Yaws are kept unwrapped (continuous). When the
input in use changes, or an input's frame shifts (below), ``RotationQuery.frame_shift`` is the
angle to add to world bearings so they are expressed in the new frame.

Bad input never raises; it becomes a PipelineEvent (source "tracking") and a state:
    non-finite values        dropped ("rotation_invalid")
    a stamp before the previous one     dropped ("rotation_backwards"); more than
                             ``restart_after_s`` before it: the input restarted (a bag played
                             again, a driver restarted): its history is cleared
    a jump (a yaw change faster than ``max_yaw_rate_deg_s``)   taken as a shift of that input's
                             frame (an odometry reset, a relocalisation), not as a turn of the
                             robot ("rotation_jump"): the history is shifted to stay continuous
    no sample for ``timeout_s``    the input is stale ("rotation_stale"): the yaw is unknown, so
                             the tracker gathers no front/back evidence until it is back. For
                             the camera and an integrated IMU rate, whose yaw only adds up
                             measured turns, the turn across such a hole is lost: their frame
                             breaks (``RotationQuery.frame_break``) and the tracker starts its
                             bearings again; odometry keeps its frame across a pause
    an explicitly chosen input that never publishes   "rotation_no_input" once the first
                             ``timeout_s`` have passed
"""

from __future__ import annotations

import math
import threading
from collections import deque
from dataclasses import dataclass
from typing import Any

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.events import PipelineEvent

_NS_PER_S = 1_000_000_000
ROTATION_SOURCES = ("auto", "odom", "imu", "camera", "none")
# Order in which "auto" prefers the inputs: measured odometry first, the camera last.
AUTO_ORDER = ("odom", "imu", "camera")
# Rate estimates for extrapolation use about this much of the newest history.
RATE_SPAN_S = 0.3


@dataclass(frozen=True)
class RotationConfig:
    """source: one of ROTATION_SOURCES. timeout_s: an input without a sample for this long is
    stale, and so is a hole this long in its history. max_yaw_rate_deg_s: faster yaw changes
    are frame jumps. restart_after_s: a stamp this much older than the previous one restarts
    the input. history_s: how much history each input keeps. max_extrapolation_s: how far past
    its newest sample an input's yaw is extrapolated (at the recent rate)."""

    source: str = "auto"
    timeout_s: float = 1.0
    max_yaw_rate_deg_s: float = 360.0
    restart_after_s: float = 1.0
    history_s: float = 10.0
    max_extrapolation_s: float = 0.5

    def __post_init__(self) -> None:
        if self.source not in ROTATION_SOURCES:
            raise ConfigError(
                f"rotation_source must be one of {', '.join(ROTATION_SOURCES)}, got {self.source!r}"
            )
        if not self.timeout_s > 0:
            raise ConfigError(f"rotation_timeout_s must be > 0, got {self.timeout_s}")
        if not self.max_yaw_rate_deg_s > 0:
            raise ConfigError(
                f"rotation_max_yaw_rate_deg_s must be > 0, got {self.max_yaw_rate_deg_s}"
            )
        if not self.history_s > self.timeout_s:
            raise ConfigError("rotation history_s must be longer than timeout_s")
        if self.restart_after_s < 0 or self.max_extrapolation_s < 0:
            raise ConfigError("restart_after_s and max_extrapolation_s must be >= 0")

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> RotationConfig:
        """From slfm_node's parameters ``rotation_source``, ``rotation_timeout_s`` and
        ``rotation_max_yaw_rate_deg_s`` (missing ones keep their defaults)."""
        names = {
            "rotation_source": "source",
            "rotation_timeout_s": "timeout_s",
            "rotation_max_yaw_rate_deg_s": "max_yaw_rate_deg_s",
        }
        return cls(**{field: params[key] for key, field in names.items() if key in params})


@dataclass(frozen=True)
class RotationQuery:
    """The robot's yaw for one window.

    source:        the input in use ("odom", "imu", "camera") or "none".
    state:         "ok", "stale" (the input stopped), "gap" (a hole in its history at the
                   window), "starting" (its history begins after the window centre),
                   "no_input" (nothing received yet) or "off" (source "none").
    yaw_at_window: yaw (rad, unwrapped, world frame) at the window centre; None when unknown.
    yaw_now:       yaw at the window end (extrapolated up to max_extrapolation_s); None when
                   unknown.
    position:      (x, y) of the robot in the world frame (odometry only), else None.
    frame_shift:   angle (rad) to add to world bearings before using this query.
    frame_break:   the world frame was lost (an unknown turn since the last query): bearings
                   kept in it are no longer valid.
    """

    source: str
    state: str
    yaw_at_window: float | None
    yaw_now: float | None
    position: tuple[float, float] | None = None
    frame_shift: float = 0.0
    frame_break: bool = False

    @property
    def known(self) -> bool:
        return self.yaw_at_window is not None


@dataclass
class _Sample:
    stamp_ns: int
    yaw: float  # unwrapped
    x: float | None = None
    y: float | None = None


class RotationHistory:
    """Stamped yaw samples of one input, checked as they arrive (see module doc). Not
    thread-safe; ``RotationInput`` locks around it. ``holes_break_frame``: the input only adds
    up measured turns, so a hole longer than timeout_s loses its frame."""

    def __init__(self, name: str, config: RotationConfig, holes_break_frame: bool = False) -> None:
        self.name = name
        self.config = config
        self.holes_break_frame = holes_break_frame
        self._pending_break = False
        self._samples: deque[_Sample] = deque()
        self._last_raw = 0.0
        self._pending_shift = 0.0
        self._discontinuity = False
        self.received = 0

    @property
    def newest_ns(self) -> int | None:
        return self._samples[-1].stamp_ns if self._samples else None

    def mark_discontinuity(self) -> None:
        """The next sample starts a new chain (e.g. the camera yaw restarted at 0): it is
        joined to the history as a frame shift, without a warning."""
        self._discontinuity = True

    def take_frame_shift(self) -> tuple[float, bool]:
        """(frame shifts since the last call in rad, whether the frame broke meanwhile), and
        clear them."""
        shift, self._pending_shift = self._pending_shift, 0.0
        broke, self._pending_break = self._pending_break, False
        return shift, broke

    def add(
        self, stamp_ns: int, yaw: float, x: float | None = None, y: float | None = None
    ) -> list[PipelineEvent]:
        """Add one sample (yaw in radians, any wrap); returns the events it raised."""
        what = f"{self.name} rotation input"
        if not (math.isfinite(yaw) and all(v is None or math.isfinite(v) for v in (x, y))):
            return [
                PipelineEvent.warn(
                    "tracking",
                    "rotation_invalid",
                    f"{what}: non-finite yaw or position at {stamp_ns / _NS_PER_S:.3f} s: "
                    "sample dropped; check the driver",
                )
            ]
        self.received += 1
        events: list[PipelineEvent] = []
        last = self._samples[-1] if self._samples else None
        if last is None:
            self._samples.append(_Sample(stamp_ns, float(yaw), x, y))
            self._last_raw = float(yaw)
            self._discontinuity = False
            return events
        if stamp_ns <= last.stamp_ns:
            back_s = (last.stamp_ns - stamp_ns) / _NS_PER_S
            if stamp_ns == last.stamp_ns:
                return []  # the same sample again (e.g. a repeated message)
            if back_s <= self.config.restart_after_s:
                return [
                    PipelineEvent.warn(
                        "tracking",
                        "rotation_backwards",
                        f"{what}: stamp {stamp_ns / _NS_PER_S:.3f} s is {back_s:.3f} s before "
                        "the previous one: sample dropped; stamps must increase",
                    )
                ]
            events.append(
                PipelineEvent.warn(
                    "tracking",
                    "rotation_backwards",
                    f"{what}: stamps went back {back_s:.2f} s: the input restarted; its "
                    "history is cleared and its new samples are joined to the old ones without "
                    "a turn",
                )
            )
            self._samples.clear()
            self._discontinuity = True
        step = float(wrap_angle(yaw - self._last_raw))
        dt = max(0.0, (stamp_ns - last.stamp_ns) / _NS_PER_S)
        if self.holes_break_frame and dt > self.config.timeout_s:
            # The turn across the hole was never measured: the old frame is lost.
            events.append(
                PipelineEvent.warn(
                    "tracking",
                    "rotation_frame_lost",
                    f"{what}: no yaw for {dt:.2f} s, so the turn meanwhile is unknown: tracks "
                    "start their bearings and front/back decision again",
                )
            )
            self._pending_break = True
            self._samples.clear()
            self._samples.append(_Sample(stamp_ns, float(yaw), x, y))
            self._last_raw = float(yaw)
            self._discontinuity = False
            return events
        limit = math.radians(self.config.max_yaw_rate_deg_s) * dt
        joined = last.yaw + step
        if self._discontinuity or abs(step) > limit:
            if not self._discontinuity:
                events.append(
                    PipelineEvent.warn(
                        "tracking",
                        "rotation_jump",
                        f"{what}: yaw jumped by {math.degrees(step):.1f} deg in {dt:.3f} s "
                        f"(faster than {self.config.max_yaw_rate_deg_s:.0f} deg/s): taken as a "
                        "shift of its frame, not a turn of the robot",
                    )
                )
            # Shift the kept history into the new frame: no turn across the jump.
            for s in self._samples:
                s.yaw += step
            self._pending_shift += step
            self._discontinuity = False
        self._samples.append(_Sample(stamp_ns, joined, x, y))
        self._last_raw = float(yaw)
        horizon = stamp_ns - int(self.config.history_s * _NS_PER_S)
        while len(self._samples) > 2 and self._samples[0].stamp_ns < horizon:
            self._samples.popleft()
        return events

    def yaw_at(self, t_ns: int) -> tuple[float | None, str]:
        """(yaw at ``t_ns``, state): interpolated inside the history, extrapolated at the
        recent rate up to max_extrapolation_s past its end; None with the reason otherwise."""
        if not self._samples:
            return None, "no_input"
        timeout = int(self.config.timeout_s * _NS_PER_S)
        newest = self._samples[-1]
        if t_ns >= newest.stamp_ns:
            ahead = t_ns - newest.stamp_ns
            if ahead > timeout or ahead > self.config.max_extrapolation_s * _NS_PER_S:
                return None, "stale"
            return newest.yaw + self._rate() * ahead / _NS_PER_S, "ok"
        if t_ns < self._samples[0].stamp_ns:
            return None, "starting"  # before its first sample (or before the kept history)
        # Binary search for the bracketing pair.
        lo, hi = 0, len(self._samples) - 1
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if self._samples[mid].stamp_ns <= t_ns:
                lo = mid
            else:
                hi = mid
        a, b = self._samples[lo], self._samples[hi]
        if b.stamp_ns - a.stamp_ns > timeout:
            return None, "gap"
        f = (t_ns - a.stamp_ns) / max(1, b.stamp_ns - a.stamp_ns)
        return a.yaw + f * (b.yaw - a.yaw), "ok"

    def position_at(self, t_ns: int) -> tuple[float, float] | None:
        """(x, y) of the newest sample at or before ``t_ns`` that has one, else None."""
        for s in reversed(self._samples):
            if s.stamp_ns <= t_ns and s.x is not None and s.y is not None:
                return (s.x, s.y)
        return None

    def _rate(self) -> float:
        newest = self._samples[-1]
        span = int(RATE_SPAN_S * _NS_PER_S)
        ref = None
        for s in reversed(self._samples):
            ref = s
            if newest.stamp_ns - s.stamp_ns >= span:
                break
        if ref is None or ref.stamp_ns >= newest.stamp_ns:
            return 0.0
        return (newest.yaw - ref.yaw) / ((newest.stamp_ns - ref.stamp_ns) / _NS_PER_S)


class _ImuIntegrator:
    """Yaw from an IMU's yaw rate (trapezoidal integration from 0 at the first sample). A step
    longer than ``max_dt_s`` is not integrated: the turn across it is unknown, and the history
    then breaks its frame there (``holes_break_frame``)."""

    def __init__(self) -> None:
        self.last: tuple[int, float] | None = None  # (stamp, rate)
        self.yaw = 0.0

    def step(self, stamp_ns: int, rate: float, max_dt_s: float) -> float:
        if self.last is not None and stamp_ns > self.last[0]:
            dt = (stamp_ns - self.last[0]) / _NS_PER_S
            if dt <= max_dt_s:
                self.yaw += 0.5 * (rate + self.last[1]) * dt
        if self.last is None or stamp_ns > self.last[0]:
            self.last = (stamp_ns, rate)
        return self.yaw


class RotationInput:
    """All rotation inputs of the robot and the choice between them (see module doc).
    Thread-safe: the camera yaw may arrive on another thread than odometry and queries."""

    def __init__(self, config: RotationConfig) -> None:
        self.config = config
        self._lock = threading.Lock()
        self._inputs = {
            name: RotationHistory(name, config, holes_break_frame=name == "camera")
            for name in AUTO_ORDER
        }
        self._imu = _ImuIntegrator()
        self._in_use: str | None = None
        self._first_query_ns: int | None = None
        self._state = ""
        self._reported: set[str] = set()

    def received(self, name: str) -> int:
        """Samples accepted so far from input ``name``."""
        with self._lock:
            return self._inputs[name].received

    def add_odometry(
        self, stamp_ns: int, yaw: float, x: float | None = None, y: float | None = None
    ) -> list[PipelineEvent]:
        with self._lock:
            return self._inputs["odom"].add(stamp_ns, yaw, x, y)

    def add_imu(
        self, stamp_ns: int, orientation_yaw: float | None, yaw_rate: float | None
    ) -> list[PipelineEvent]:
        """An IMU sample: its orientation yaw when the IMU gives one, else its yaw rate."""
        with self._lock:
            history = self._inputs["imu"]
            if orientation_yaw is not None:
                return history.add(stamp_ns, orientation_yaw)
            if yaw_rate is None or not math.isfinite(yaw_rate):
                return history.add(stamp_ns, float("nan"))
            history.holes_break_frame = True  # integrated: only the measured turns add up
            yaw = self._imu.step(stamp_ns, float(yaw_rate), self.config.timeout_s)
            return history.add(stamp_ns, yaw)

    def add_camera(self, stamp_ns: int, yaw: float) -> list[PipelineEvent]:
        with self._lock:
            events = self._inputs["camera"].add(stamp_ns, yaw)
            if self._in_use != "camera":
                # The camera's chain re-anchors now and then; that matters only in use.
                events = [e for e in events if e.code != "rotation_frame_lost"]
            return events

    def camera_restarted(self) -> None:
        """The camera yaw chain started again from 0: join its next sample without a turn."""
        with self._lock:
            self._inputs["camera"].mark_discontinuity()

    def query(self, window_ns: int, now_ns: int) -> tuple[RotationQuery, list[PipelineEvent]]:
        """The yaw at ``window_ns`` (window centre) and ``now_ns`` (window end)."""
        with self._lock:
            return self._query(window_ns, now_ns)

    def _query(self, window_ns: int, now_ns: int) -> tuple[RotationQuery, list[PipelineEvent]]:
        if self._first_query_ns is None:
            self._first_query_ns = now_ns
        if self.config.source == "none":
            return RotationQuery("none", "off", None, None), []
        names = AUTO_ORDER if self.config.source == "auto" else (self.config.source,)
        chosen, state = None, "no_input"
        for name in names:
            _, s = self._inputs[name].yaw_at(now_ns)
            if s == "ok":
                chosen, state = name, "ok"
                break
            if s == "stale" and state == "no_input":
                chosen, state = name, "stale"  # the best reason to report, if none is fresh
        events: list[PipelineEvent] = []
        shift, broke = 0.0, False
        for name, history in self._inputs.items():
            taken, lost = history.take_frame_shift()
            if name == self._in_use:
                shift += taken
                broke = broke or lost
        if state != "ok" or chosen is None:
            events += self._state_events(state, chosen, now_ns)
            query = RotationQuery(
                chosen or "none", state, None, None, frame_shift=shift, frame_break=broke
            )
            return query, events
        history = self._inputs[chosen]
        if self._in_use is not None and self._in_use != chosen:
            offset = self._switch_offset(self._in_use, chosen, now_ns)
            if offset is None:
                broke = True
            else:
                shift += offset
            events.append(
                PipelineEvent.warn(
                    "tracking",
                    "rotation_switched",
                    f"rotation input changed from {self._in_use} to {chosen}; tracks are "
                    "re-expressed in its frame",
                )
            )
        self._in_use = chosen
        yaw_window, s_window = history.yaw_at(window_ns)
        yaw_now, _ = history.yaw_at(now_ns)
        position = history.position_at(now_ns)
        if yaw_window is None:
            state = s_window
        events += self._state_events(state, chosen, now_ns)
        query = RotationQuery(
            chosen,
            state,
            yaw_window,
            yaw_now,
            position=position,
            frame_shift=shift,
            frame_break=broke,
        )
        return query, events

    def _switch_offset(self, old: str, new: str, now_ns: int) -> float | None:
        """World-bearing shift that re-expresses tracks from ``old``'s frame in ``new``'s: the
        two yaws compared at the newest moment both know; None when there is none."""
        a, b = self._inputs[old], self._inputs[new]
        t = min(now_ns, a.newest_ns or now_ns)
        ya, _ = a.yaw_at(t)
        yb, _ = b.yaw_at(t)
        if ya is None or yb is None:
            return None
        return float(wrap_angle(yb - ya))

    def _state_events(self, state: str, name: str | None, now_ns: int) -> list[PipelineEvent]:
        """An event when the state changes to a bad one (once per episode)."""
        if state == "starting":
            return []  # the input has just begun: nothing is wrong
        previous, self._state = self._state, state
        if state == previous or state == "ok":
            return []
        which = name or self.config.source
        if state == "no_input":
            assert self._first_query_ns is not None
            if now_ns - self._first_query_ns < self.config.timeout_s * _NS_PER_S:
                self._state = previous  # still starting up: ask again next window
                return []
            if self.config.source == "auto":
                message = (
                    "no rotation input (no odometry, IMU or camera yaw): the robot's turns are "
                    "unknown, so front and back cannot be told apart"
                )
            else:
                message = (
                    f"rotation_source is {self.config.source} but nothing arrived on it for "
                    f"{self.config.timeout_s:.1f} s: check the topic name and remapping"
                )
            return [PipelineEvent.warn("tracking", "rotation_no_input", message)]
        if state == "stale":
            return [
                PipelineEvent.warn(
                    "tracking",
                    "rotation_stale",
                    f"{which} rotation input stopped (no sample for more than "
                    f"{self.config.timeout_s:.1f} s): front/back evidence paused until it "
                    "is back",
                )
            ]
        return [
            PipelineEvent.warn(
                "tracking",
                "rotation_gap",
                f"{which} rotation input has a hole at the window centre: no front/back "
                "evidence from this window",
            )
        ]
