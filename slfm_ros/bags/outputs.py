"""The outputs of one replay, read from the messages slfm_node publishes.

Offline and live replays both fill an ``OutputLog`` from ``PoseWithCovarianceStamped``
(~/sound_direction, ~/sound_source), ``DiagnosticArray`` (~/sound_tracks) and ``Odometry``
(~/camera_yaw) messages through the same functions, so the two modes are scored by identical
code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from slfm_ros.core.conventions import yaw_from_quaternion

_NS_PER_S = 1_000_000_000
# Index of the yaw variance in a row-major 6x6 pose/twist covariance.
_YAW_VAR = 35


@dataclass(frozen=True)
class DirectionOutput:
    """A published sound direction: window end stamp (ns), azimuth (rad), variance (rad^2),
    wall-clock receive time (ns; None offline)."""

    stamp_ns: int
    azimuth: float
    variance: float
    received_ns: int | None = None


@dataclass(frozen=True)
class YawOutput:
    """A published camera yaw: image stamp (ns), integrated yaw (rad), its variance, yaw rate
    (rad/s), receive time (ns; None offline)."""

    stamp_ns: int
    yaw: float
    variance: float
    rate: float
    received_ns: int | None = None


@dataclass(frozen=True)
class SourceOutput:
    """A published ~/sound_source: stamp (ns), world bearing (rad), its variance (rad^2)."""

    stamp_ns: int
    bearing: float
    variance: float


@dataclass(frozen=True)
class TrackOutput:
    """One track of a published ~/sound_tracks (angles in rad)."""

    stamp_ns: int
    track_id: int
    state: str
    primary: bool
    world_bearing: float
    body_bearing: float
    variance: float
    front_probability: float


@dataclass
class OutputLog:
    """Everything a replay observed.

    estimators: the estimators the node ran (its /diagnostics "estimators" status, or the
    pipeline's description offline); fallback_reason: why learned models were not used.
    events: count per pipeline event code. diagnostics: the last values of each status.
    """

    mode: str
    directions: list[DirectionOutput] = field(default_factory=list)
    yaws: list[YawOutput] = field(default_factory=list)
    sources: list[SourceOutput] = field(default_factory=list)
    tracks: list[TrackOutput] = field(default_factory=list)
    estimators: str = ""
    backend: str = ""
    fallback_reason: str = ""
    events: dict[str, int] = field(default_factory=dict)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    windows_processed: int | None = None
    wall_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    def add_direction(self, msg: Any, received_ns: int | None = None) -> None:
        """Record a PoseWithCovarianceStamped published on ~/sound_direction."""
        o = msg.pose.pose.orientation
        stamp = int(msg.header.stamp.sec) * _NS_PER_S + int(msg.header.stamp.nanosec)
        azimuth = float(yaw_from_quaternion(o.x, o.y, o.z, o.w))
        variance = float(msg.pose.covariance[_YAW_VAR])
        self.directions.append(DirectionOutput(stamp, azimuth, variance, received_ns))

    def add_source(self, msg: Any) -> None:
        """Record a PoseWithCovarianceStamped published on ~/sound_source."""
        o = msg.pose.pose.orientation
        stamp = int(msg.header.stamp.sec) * _NS_PER_S + int(msg.header.stamp.nanosec)
        bearing = float(yaw_from_quaternion(o.x, o.y, o.z, o.w))
        self.sources.append(SourceOutput(stamp, bearing, float(msg.pose.covariance[_YAW_VAR])))

    def add_tracks(self, msg: Any) -> None:
        """Record the tracks of a DiagnosticArray published on ~/sound_tracks."""
        stamp = int(msg.header.stamp.sec) * _NS_PER_S + int(msg.header.stamp.nanosec)
        for status in msg.status:
            v = {kv.key: kv.value for kv in status.values}
            try:
                self.tracks.append(
                    TrackOutput(
                        stamp,
                        int(v["id"]),
                        v["state"],
                        v["primary"] == "true",
                        float(v["world_bearing_rad"]),
                        float(v["body_bearing_rad"]),
                        float(v["bearing_variance_rad2"]),
                        float(v["front_probability"]),
                    )
                )
            except (KeyError, ValueError):
                self.notes.append(f"unreadable ~/sound_tracks status {status.name!r} skipped")

    def add_yaw(self, msg: Any, received_ns: int | None = None) -> None:
        """Record an Odometry published on ~/camera_yaw."""
        o = msg.pose.pose.orientation
        stamp = int(msg.header.stamp.sec) * _NS_PER_S + int(msg.header.stamp.nanosec)
        yaw = float(yaw_from_quaternion(o.x, o.y, o.z, o.w))
        self.yaws.append(
            YawOutput(
                stamp,
                yaw,
                float(msg.pose.covariance[_YAW_VAR]),
                float(msg.twist.twist.angular.z),
                received_ns,
            )
        )

    def add_event(self, code: str, count: int = 1) -> None:
        self.events[code] = self.events.get(code, 0) + count

    def add_diagnostics(self, msg: Any, node_name: str = "slfm_node") -> None:
        """Keep the latest values of the node's statuses and its estimator description."""
        prefix = f"{node_name}: "
        for status in msg.status:
            if not status.name.startswith(prefix):
                continue
            values = {kv.key: kv.value for kv in status.values}
            level = status.level[0] if isinstance(status.level, bytes) else int(status.level)
            values["_level"] = str(level)
            values["_message"] = status.message
            self.diagnostics[status.name[len(prefix) :]] = values
            for key, value in values.items():
                # Cumulative counters of the node: the latest message has the totals.
                if key.startswith("events.") and value.isdigit():
                    self.events[key[len("events.") :]] = int(value)
            if "estimators" in values:
                self.estimators = values["estimators"]
                self.backend = values.get("backend", self.backend)
                self.fallback_reason = values.get("fallback_reason", self.fallback_reason)

    def sorted(self) -> OutputLog:
        """The log with outputs in stamp order (receive order may differ live)."""
        self.directions.sort(key=lambda d: d.stamp_ns)
        self.yaws.sort(key=lambda y: y.stamp_ns)
        self.sources.sort(key=lambda s: s.stamp_ns)
        self.tracks.sort(key=lambda t: t.stamp_ns)
        return self

    @property
    def first_direction_ns(self) -> int | None:
        return self.directions[0].stamp_ns if self.directions else None


def finite(value: float) -> float | None:
    """JSON-friendly number: None for NaN and infinities."""
    return float(value) if math.isfinite(value) else None
