"""slfm_node's handling of one received message, without ROS transport.

``MessageDispatcher`` is the single path from subscribed messages to ``StreamingLocalizer``
and from its windows to the messages slfm_node publishes; the live node
(``slfm_ros.nodes.slfm_node``) and the offline bag replay (``slfm_ros.bags.feed``) both go
through it, so the two cannot drift apart. It converts with ``slfm_ros.nodes.msg_conversions``:

- "info" (AudioInfo): ``on_audio_info``; an AudioInfo equal to the previous one is skipped,
  since the node subscribes to the info topic twice (latched and volatile) and receives a copy.
- "audio" (AudioDataStamped): ``on_audio`` with the header stamp (capture time) and the receive
  time; reports the chunk's frame count for rate statistics.
- "image" (Image): decoded to RGB and passed to ``on_image``; an unreadable encoding becomes an
  ``image_encoding`` error event and the image is dropped.
- "odom" (Odometry) and "imu" (Imu): the robot's yaw, for the sound tracker
  (``slfm_ros.core.tracking``); bad values become ``rotation_*`` events.

After each message that was not skipped, ``step_audio()`` gives the windows that became due;
``window_outputs`` tracks a window and builds everything published for it (the sound
direction as ``sound_direction_output`` says, the source in the odom frame, the track list,
the markers), ``direction_message`` the window's own front-folded direction, and
``yaw_message`` the camera yaw (``None`` when a window has no valid azimuth or no measured
yaw, which is not an error: nothing is published then). ``take_camera_yaw`` hands a finished
window's camera yaw to the tracker as a rotation input. Publishing, statistics, logging and
threads stay with the caller.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry

from slfm_ros.core.dsp.audio_format import bytes_per_sample
from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.streaming.pipeline import PendingWindow, StreamingLocalizer, WindowResult
from slfm_ros.core.tracking.sound_tracking import SoundTracking, TrackingResult
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes import track_msgs
from slfm_ros.nodes.param_spec import ParamValue

KINDS = ("info", "audio", "image", "odom", "imu")


def rotation_kinds(params: dict[str, ParamValue]) -> tuple[str, ...]:
    """The rotation inputs ("odom", "imu") slfm_node subscribes to with these parameters."""
    source = params.get("rotation_source", "auto")
    return tuple(k for k in ("odom", "imu") if source in ("auto", k))


@dataclass(frozen=True)
class FeedResult:
    """What one message did.

    events:                 the input's diagnostics (not those of the windows).
    pending_windows:        windows whose audio part became due, in order; each still needs
                            ``StreamingLocalizer.finish_window`` (empty from ``take_input``).
    audio_frames:           frames in an audio chunk (bytes / bytes per frame of the format in
                            use) for rate statistics; None for other kinds or without a format.
    skipped_duplicate_info: the message repeated the previous AudioInfo and was ignored.
    """

    events: tuple[PipelineEvent, ...] = ()
    pending_windows: tuple[PendingWindow, ...] = ()
    audio_frames: float | None = None
    skipped_duplicate_info: bool = False


@dataclass(frozen=True)
class WindowOutputs:
    """Everything published for one window (None = nothing on that topic this window).

    direction: ~/sound_direction; source: ~/sound_source; tracks: ~/sound_tracks (always);
    markers: ~/sound_markers (None also without visualization_msgs or publish_markers);
    tracking: the tracker's result, for diagnostics.
    """

    tracking: TrackingResult
    tracks: Any
    direction: PoseWithCovarianceStamped | None = None
    source: PoseWithCovarianceStamped | None = None
    markers: Any = None


class MessageDispatcher:
    """Feeds rclpy messages to ``pipeline`` and builds the output messages (see module doc).

    ``params``: slfm_node's parameter values; the frame ids ``audio_frame_id``,
    ``odom_frame_id`` and ``camera_frame_id``, ``sound_direction_output``, ``source_range_m``,
    ``publish_markers`` and the tracker's settings are read from it.
    """

    def __init__(self, pipeline: StreamingLocalizer, params: dict[str, ParamValue]) -> None:
        self.pipeline = pipeline
        self.params = params
        self._last_info: conv.AudioInfoFields | None = None
        self.tracking = SoundTracking.from_params(params)
        self.markers_enabled = bool(params.get("publish_markers", True))
        self.markers_available = self.markers_enabled and track_msgs.markers_available()

    def feed(self, kind: str, msg: Any, arrival_ns: int) -> FeedResult:
        """``take_input`` and then, unless the message was skipped, ``step``.

        kind: "info", "audio" or "image"; arrival_ns: receive time (ns, the node's clock).
        """
        result = self.take_input(kind, msg, arrival_ns)
        if result.skipped_duplicate_info:
            return result
        return dataclasses.replace(result, pending_windows=self.step())

    def take_input(self, kind: str, msg: Any, arrival_ns: int) -> FeedResult:
        """The input half of ``feed``: convert ``msg`` and hand it to the pipeline."""
        if kind == "info":
            fields = conv.audio_info_fields(msg)
            if fields == self._last_info:
                return FeedResult(skipped_duplicate_info=True)
            self._last_info = fields
            events = self.pipeline.on_audio_info(
                fields.channels, fields.sample_rate, fields.sample_format, fields.coding_format
            )
            return FeedResult(events=tuple(events))
        if kind == "audio":
            data, stamp_ns = conv.audio_payload(msg)
            events = self.pipeline.on_audio(data, stamp_ns, arrival_ns)
            fmt = self.pipeline.audio_format
            frames = None if fmt is None else len(data) / (fmt[0] * bytes_per_sample(fmt[2]))
            return FeedResult(events=tuple(events), audio_frames=frames)
        if kind == "image":
            try:
                rgb = conv.image_to_rgb(msg)
            except InputFormatError as err:
                event = PipelineEvent.error("image", "image_encoding", f"image dropped: {err}")
                return FeedResult(events=(event,))
            stamp_ns = conv.stamp_to_ns(msg.header.stamp)
            return FeedResult(events=tuple(self.pipeline.on_image(rgb, stamp_ns, arrival_ns)))
        if kind == "odom":
            stamp_ns, yaw, x, y = track_msgs.odometry_fields(msg)
            events = self.tracking.rotation.add_odometry(stamp_ns, yaw, x, y)
            return FeedResult(events=tuple(events))
        if kind == "imu":
            stamp_ns, orientation_yaw, rate = track_msgs.imu_fields(msg)
            events = self.tracking.rotation.add_imu(stamp_ns, orientation_yaw, rate)
            return FeedResult(events=tuple(events))
        raise InputFormatError(
            f"message kind must be one of {', '.join(KINDS)}, got {kind!r}: "
            "pass the kind of the topic the message came from"
        )

    def step(self) -> tuple[PendingWindow, ...]:
        """Windows whose audio part became due (``StreamingLocalizer.step_audio``)."""
        return tuple(self.pipeline.step_audio())

    def direction_message(self, pending: PendingWindow) -> PoseWithCovarianceStamped | None:
        """~/sound_direction for ``pending``, stamped with the window end; None without a
        valid azimuth."""
        azimuth = pending.azimuth
        if azimuth is None or not azimuth.valid:
            return None
        return conv.sound_direction_msg(
            azimuth.angle, azimuth.variance, pending.end_ns, str(self.params["audio_frame_id"])
        )

    def window_outputs(self, pending: PendingWindow) -> WindowOutputs:
        """Track ``pending`` and build its outputs (see ``WindowOutputs``)."""
        result = self.tracking.on_window(pending.end_ns, pending.azimuth)
        odom_frame = str(self.params["odom_frame_id"])
        position = result.rotation.position or (0.0, 0.0)
        range_m = float(self.params.get("source_range_m", 1.0))  # type: ignore[arg-type]
        primary = result.primary
        direction = self.direction_message(pending)
        if (
            self.params.get("sound_direction_output", "tracked") == "tracked"
            and primary is not None
            and primary.state == "resolved"
            and result.rotation.yaw_now is not None
        ):
            direction = conv.sound_direction_msg(
                primary.body_bearing,
                primary.variance,
                pending.end_ns,
                str(self.params["audio_frame_id"]),
            )
        source = None
        if primary is not None:
            source = track_msgs.sound_source_msg(
                primary, position, range_m, pending.end_ns, odom_frame
            )
        markers = None
        if self.markers_available:
            markers = track_msgs.markers_msg(result, position, range_m, odom_frame)
        return WindowOutputs(
            tracking=result,
            tracks=track_msgs.tracks_msg(result, odom_frame),
            direction=direction,
            source=source,
            markers=markers,
        )

    def take_camera_yaw(self, result: WindowResult, restarted: bool = False) -> list[PipelineEvent]:
        """Hand a finished window's camera yaw to the tracker's rotation inputs;
        ``restarted``: the window restarted the camera's yaw chain (``restart_tracking``)."""
        if restarted:
            self.tracking.rotation.camera_restarted()
        yaw = result.yaw
        if yaw is None or yaw.integrated is None:
            return []
        return self.tracking.rotation.add_camera(yaw.image_ns, yaw.integrated)

    def yaw_message(self, result: WindowResult) -> Odometry | None:
        """~/camera_yaw for ``result``, stamped with the measured image's capture time; None
        when the window has no integrated yaw."""
        yaw = result.yaw
        if yaw is None or yaw.integrated is None or yaw.rate is None:
            return None
        return conv.camera_yaw_msg(
            yaw.integrated,
            yaw.integrated_variance,
            yaw.rate,
            yaw.rate_variance,
            yaw.image_ns,
            str(self.params["odom_frame_id"]),
            str(self.params["camera_frame_id"]),
        )
