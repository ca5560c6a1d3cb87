"""slfm_node's message handling without ROS transport, for offline replay.

``NodeFeed`` takes the rclpy messages a subscription would deliver and does what
``SlfmNode._handle`` does with them: the same conversions (``slfm_ros.nodes.msg_conversions``),
the same ``StreamingLocalizer`` calls with the receive time, ``step_audio()`` after every
message with the direction published from each pending window, then ``finish_window()`` and
its camera yaw, with the same output messages (``sound_direction_msg``, ``camera_yaw_msg``),
which it hands to an ``OutputLog`` instead of a publisher. The node runs ``finish_window`` on a
second thread; here it follows at once, which is what the node does whenever its camera part
keeps up. AudioInfo that repeats the previous one is skipped, as the node skips the copy of
its second subscription.
"""

from __future__ import annotations

from typing import Any

from slfm_ros.bags.outputs import OutputLog
from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.pipeline import PendingWindow, StreamingLocalizer, WindowResult
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.param_spec import ParamValue


class NodeFeed:
    """Feeds one StreamingLocalizer like slfm_node does and logs what it would publish."""

    def __init__(
        self, pipeline: StreamingLocalizer, params: dict[str, ParamValue], log: OutputLog
    ) -> None:
        self.pipeline = pipeline
        self.params = params
        self.log = log
        self.windows: list[WindowResult] = []
        self._last_info: conv.AudioInfoFields | None = None
        for event in pipeline.startup_events:
            log.add_event(event.code)

    def handle(self, kind: str, msg: Any, arrival_ns: int) -> list[PipelineEvent]:
        """``kind`` is "info", "audio" or "image"; returns the input's events."""
        events: list[PipelineEvent]
        if kind == "info":
            fields = conv.audio_info_fields(msg)
            if fields == self._last_info:
                return []
            self._last_info = fields
            events = self.pipeline.on_audio_info(
                fields.channels, fields.sample_rate, fields.sample_format, fields.coding_format
            )
        elif kind == "audio":
            data, stamp_ns = conv.audio_payload(msg)
            events = self.pipeline.on_audio(data, stamp_ns, arrival_ns)
        else:
            try:
                rgb = conv.image_to_rgb(msg)
            except InputFormatError as err:
                events = [PipelineEvent.error("image", "image_encoding", f"image dropped: {err}")]
            else:
                stamp_ns = conv.stamp_to_ns(msg.header.stamp)
                events = self.pipeline.on_image(rgb, stamp_ns, arrival_ns)
        for event in events:
            self.log.add_event(event.code)
        for pending in self.pipeline.step_audio():
            self._publish_direction(pending)
            self._publish_yaw(self.pipeline.finish_window(pending))
        return events

    def _publish_direction(self, pending: PendingWindow) -> None:
        azimuth = pending.azimuth
        if azimuth is None or not azimuth.valid:
            return
        frame = str(self.params["audio_frame_id"])
        self.log.add_direction(
            conv.sound_direction_msg(azimuth.angle, azimuth.variance, pending.end_ns, frame)
        )

    def _publish_yaw(self, result: WindowResult) -> None:
        self.windows.append(result)
        for event in result.events:
            self.log.add_event(event.code)
        yaw = result.yaw
        if yaw is not None and yaw.integrated is not None and yaw.rate is not None:
            self.log.add_yaw(
                conv.camera_yaw_msg(
                    yaw.integrated,
                    yaw.integrated_variance,
                    yaw.rate,
                    yaw.rate_variance,
                    yaw.image_ns,
                    str(self.params["odom_frame_id"]),
                    str(self.params["camera_frame_id"]),
                )
            )
