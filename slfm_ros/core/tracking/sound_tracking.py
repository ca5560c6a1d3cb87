"""Per-window sound tracking: the rotation inputs and the bearing tracker together.

``SoundTracking.on_window`` takes one window's azimuth (the pipeline's ``PendingWindow``
fields), asks the rotation inputs for the robot's yaw at the window centre and end, and
updates the tracker. slfm_node and the bag replay both run it through
``slfm_ros.nodes.message_dispatch.MessageDispatcher``, so they track the same way.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from slfm_ros.core.estimators.base import AngleEstimate
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.tracking.bearing_tracker import (
    BearingTracker,
    TrackerConfig,
    TrackerUpdate,
    TrackReport,
)
from slfm_ros.core.tracking.rotation_source import RotationConfig, RotationInput, RotationQuery

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class TrackingResult:
    """One window's tracking: the tracker's update, the rotation it used, the events."""

    update: TrackerUpdate
    rotation: RotationQuery
    events: tuple[PipelineEvent, ...]

    @property
    def stamp_ns(self) -> int:
        return self.update.stamp_ns

    @property
    def tracks(self) -> tuple[TrackReport, ...]:
        return self.update.tracks

    @property
    def primary(self) -> TrackReport | None:
        return self.update.primary


class SoundTracking:
    """Rotation inputs + bearing tracker (see module doc)."""

    def __init__(self, tracker: TrackerConfig, rotation: RotationConfig) -> None:
        self.config = tracker
        self.rotation = RotationInput(rotation)
        self.tracker = BearingTracker(tracker)
        self._in_body_frame = False  # tracks placed while there was no rotation input

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> SoundTracking:
        """Configured by slfm_node's parameters (``tracker_*``, ``rotation_*``)."""
        return cls(TrackerConfig.from_params(params), RotationConfig.from_params(params))

    def on_window(self, end_ns: int, azimuth: AngleEstimate | None) -> TrackingResult:
        """Track one window ending at ``end_ns`` (capture time, ns)."""
        heard_ns = self.heard_at(end_ns, azimuth)
        query, events = self.rotation.query(heard_ns, end_ns)
        # Without any rotation input the robot is taken to keep still (body-frame tracks);
        # once one appears, those tracks are not in its frame.
        still = query.state in ("off", "no_input")
        if query.frame_break or (self._in_body_frame and query.known):
            self.tracker.forget_frame()
        self._in_body_frame = still or (self._in_body_frame and not query.known)
        self.tracker.rebase(query.frame_shift)
        angle = None
        if azimuth is not None and azimuth.valid and math.isfinite(azimuth.angle):
            angle = azimuth.angle
        update = self.tracker.update(
            end_ns, angle, query.yaw_at_window, query.yaw_now, assume_still=still, heard_ns=heard_ns
        )
        return TrackingResult(update, query, tuple(events))

    def heard_at(self, end_ns: int, azimuth: AngleEstimate | None) -> int:
        """When the window's azimuth held: its evidence's time when the estimator says
        (``AngleEstimate.evidence_s``, from the window's start), else the window's centre. The
        rotation there is what turns the direction into the world frame: while the robot
        turns, an estimate resting on one onset early in the window describes that moment."""
        window_ns = int(round(self.config.window_s * _NS_PER_S))
        evidence = None if azimuth is None else azimuth.evidence_s
        if evidence is None or not math.isfinite(evidence):
            return end_ns - window_ns // 2
        offset = min(max(int(round(evidence * _NS_PER_S)), 0), window_ns)
        return end_ns - window_ns + offset
