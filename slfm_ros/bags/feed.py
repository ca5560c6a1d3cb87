"""slfm_node's message handling without ROS transport, for offline replay.

``NodeFeed`` hands the rclpy messages a subscription would deliver to the node's own
``MessageDispatcher`` (``slfm_ros.nodes.message_dispatch``): the same conversions, the same
``StreamingLocalizer`` calls with the receive time, the same skipping of a repeated
AudioInfo, the same ``image_encoding`` event, the same sound tracking and the same output
messages. After each message every window that became due is tracked and gets its direction,
source and track list, and then, at once, ``finish_window``, whose camera yaw goes to the
tracker's rotation inputs and out; the messages and the event codes go to an ``OutputLog``
instead of publishers and /diagnostics. The node runs ``finish_window`` on a second thread;
following at once is what the node does whenever its camera part keeps up.
"""

from __future__ import annotations

from typing import Any

from slfm_ros.bags.outputs import OutputLog
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.streaming.pipeline import StreamingLocalizer, WindowResult
from slfm_ros.nodes.message_dispatch import MessageDispatcher
from slfm_ros.nodes.param_spec import ParamValue


class NodeFeed:
    """Feeds one StreamingLocalizer like slfm_node does and logs what it would publish.

    windows: every finished window, in order.
    """

    def __init__(
        self, pipeline: StreamingLocalizer, params: dict[str, ParamValue], log: OutputLog
    ) -> None:
        self.pipeline = pipeline
        self.params = params
        self.log = log
        self.dispatcher = MessageDispatcher(pipeline, params)
        self.windows: list[WindowResult] = []
        for event in pipeline.startup_events:
            log.add_event(event.code)

    def handle(self, kind: str, msg: Any, arrival_ns: int) -> list[PipelineEvent]:
        """``kind`` is "info", "audio", "image", "odom" or "imu"; returns the input's events."""
        result = self.dispatcher.feed(kind, msg, arrival_ns)
        for event in result.events:
            self.log.add_event(event.code)
        for pending in result.pending_windows:
            out = self.dispatcher.window_outputs(pending)
            for event in out.tracking.events:
                self.log.add_event(event.code)
            if out.direction is not None:
                self.log.add_direction(out.direction)
            if out.source is not None:
                self.log.add_source(out.source)
            self.log.add_tracks(out.tracks)
            window = self.pipeline.finish_window(pending)
            self.windows.append(window)
            for event in window.events:
                self.log.add_event(event.code)
            for event in self.dispatcher.take_camera_yaw(window, pending.restart_tracking):
                self.log.add_event(event.code)
            yaw = self.dispatcher.yaw_message(window)
            if yaw is not None:
                self.log.add_yaw(yaw)
        return list(result.events)
