"""slfm_node: sound direction and camera yaw from a binaural microphone and a camera.

Subscribes
    <audio_topic>       audio_common_msgs/AudioDataStamped  best effort, depth 50 (a best-effort
                        subscriber also receives from reliable publishers)
    <audio_info_topic>  audio_common_msgs/AudioInfo         reliable; two subscriptions, one
                        transient-local (gets the latched info of mic_node) and one volatile
                        (matches capture nodes that publish it volatile)
    <image_topic>       sensor_msgs/Image                   best effort, depth 10
    <odom_topic>        nav_msgs/Odometry                   best effort, depth 50 (rotation_source
                        auto or odom)
    <imu_topic>         sensor_msgs/Imu                     best effort, depth 50 (rotation_source
                        auto or imu)
Publishes
    ~/sound_direction   geometry_msgs/PoseWithCovarianceStamped, stamped with the window end:
                        the window's front-folded azimuth, or (sound_direction_output tracked)
                        the primary track's resolved body-frame bearing
    ~/sound_source      geometry_msgs/PoseWithCovarianceStamped in odom_frame_id: the primary
                        track's full-circle world bearing, covariance showing what is ambiguous
    ~/sound_tracks      diagnostic_msgs/DiagnosticArray every window: one status per track
    ~/sound_markers     visualization_msgs/MarkerArray: an arrow per track (RViz)
    ~/camera_yaw        nav_msgs/Odometry, stamped with the capture time of the measured image
    /diagnostics        diagnostic_msgs/DiagnosticArray every diagnostics_period

Threading: subscription callbacks only append the message to a bounded queue (oldest dropped
and counted when full), so the executor never blocks on estimation. The audio worker feeds
the queue, in arrival order, through ``MessageDispatcher`` (slfm_ros.nodes.message_dispatch:
conversions and output messages, shared with the offline bag replay) to
``StreamingLocalizer`` (slfm_ros.core.streaming.pipeline), runs the audio part of the windows that
became due after each message (``step_audio``), tracks them (``slfm_ros.core.tracking``) and
publishes their directions, sources and tracks at once. The visual worker then finishes those
windows (``finish_window``: the camera yaw, the slow part), hands the yaw to the tracker's
rotation inputs and publishes it, so a feature-matching step never delays a direction; if it
falls MAX_VISUAL_BACKLOG windows behind, the oldest window's yaw is skipped and counted. The
diagnostics timer runs on the executor thread and reads the thread-safe ``HealthMonitor``.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import threading
import time
from collections import deque
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import Image, Imu

from slfm_ros.core.events import EventLevel, PipelineEvent
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.pipeline import PendingWindow, StreamingLocalizer, WindowResult
from slfm_ros.core.tracking.sound_tracking import TrackingResult
from slfm_ros.nodes.diagnostics import HealthMonitor, to_diagnostic_array
from slfm_ros.nodes.message_dispatch import MessageDispatcher, rotation_kinds
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.param_spec import ParamValue
from slfm_ros.nodes.ros_params import declare_node_params
from slfm_ros.nodes.slfm_params import SLFM_NODE

AUDIO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
INFO_LATCHED_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
INFO_VOLATILE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=5,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
ROTATION_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=50,
    reliability=ReliabilityPolicy.BEST_EFFORT,
    durability=DurabilityPolicy.VOLATILE,
)
OUTPUT_QOS = 10

# Minimum time between two log lines of the same event code; the rest are counted.
LOG_THROTTLE_S = 5.0
# Windows waiting for their camera part; beyond this the oldest one's yaw is skipped.
MAX_VISUAL_BACKLOG = 3


def _int(value: ParamValue) -> int:
    assert isinstance(value, int)
    return value


def _float(value: ParamValue) -> float:
    assert isinstance(value, int | float)
    return float(value)


class SlfmNode(Node):
    """ROS wrapper of StreamingLocalizer (see module doc)."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__("slfm_node", **node_kwargs)
        from audio_common_msgs.msg import AudioDataStamped, AudioInfo

        self.params = declare_node_params(self, SLFM_NODE)
        p = self.params
        self.health = HealthMonitor()
        self.pipeline = StreamingLocalizer(PipelineConfig.from_params(p))
        est = self.pipeline.estimators
        self.health.set_info("estimator", "backend", est.backend)
        self.health.set_info("estimator", "estimators", est.description)
        self.health.set_info("estimator", "fallback_reason", est.fallback_reason)
        self.health.set_info("estimator", "backend_skipped", est.backend_skipped)
        self.health.set_info("estimator", "backend_notes", est.backend_notes)
        if est.fallback_reason:
            self.health.set_condition(
                "estimator", EventLevel.WARN, f"classical fallback: {est.fallback_reason}"
            )
        self._log_times: dict[str, float] = {}
        self._log_suppressed: dict[str, int] = {}
        self._log_lock = threading.Lock()  # _report runs on the executor and both workers
        for event in self.pipeline.startup_events:
            self._report(event)

        self._queue: deque[tuple[str, Any, int]] = deque()
        self._queue_size = _int(p["queue_size"])
        self._cv = threading.Condition()
        self._stop = False
        self.dispatcher = MessageDispatcher(self.pipeline, p)

        self.direction_pub = self.create_publisher(
            PoseWithCovarianceStamped, "~/sound_direction", OUTPUT_QOS
        )
        self.yaw_pub = self.create_publisher(Odometry, "~/camera_yaw", OUTPUT_QOS)
        self.source_pub = self.create_publisher(
            PoseWithCovarianceStamped, "~/sound_source", OUTPUT_QOS
        )
        self.tracks_pub = self.create_publisher(DiagnosticArray, "~/sound_tracks", OUTPUT_QOS)
        self.marker_pub = None
        if self.dispatcher.markers_available:
            from visualization_msgs.msg import MarkerArray

            self.marker_pub = self.create_publisher(MarkerArray, "~/sound_markers", OUTPUT_QOS)
        self._note_tracking_setup()
        self.diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", OUTPUT_QOS)
        self.create_subscription(
            AudioDataStamped, str(p["audio_topic"]), self._enqueue_audio, AUDIO_QOS
        )
        for qos in (INFO_LATCHED_QOS, INFO_VOLATILE_QOS):
            self.create_subscription(AudioInfo, str(p["audio_info_topic"]), self._enqueue_info, qos)
        self.create_subscription(Image, str(p["image_topic"]), self._enqueue_image, IMAGE_QOS)
        kinds = rotation_kinds(p)
        if "odom" in kinds:
            self.create_subscription(
                Odometry, str(p["odom_topic"]), self._enqueue_odom, ROTATION_QOS
            )
        if "imu" in kinds:
            self.create_subscription(Imu, str(p["imu_topic"]), self._enqueue_imu, ROTATION_QOS)
        self.create_timer(_float(p["diagnostics_period"]), self._publish_diagnostics)

        self._visual_queue: deque[PendingWindow] = deque()
        self._visual_cv = threading.Condition()
        self._worker = threading.Thread(target=self._run, name="slfm_audio", daemon=True)
        self._visual_worker = threading.Thread(
            target=self._run_visual, name="slfm_visual", daemon=True
        )
        self._worker.start()
        self._visual_worker.start()
        if est.backend_skipped:
            self.get_logger().info(f"inference backends passed over: {est.backend_skipped}")
        self.get_logger().info(
            f"slfm_node: {est.description}; hop {p['hop_s']} s, window {p['window_s']} s; "
            f"audio '{self._resolved(p['audio_topic'])}', images "
            f"'{self._resolved(p['image_topic'])}'"
        )

    def _resolved(self, topic: Any) -> str:
        return self.resolve_topic_name(str(topic))

    # ------------------------------------------------------------------ callbacks (executor)
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _enqueue(self, kind: str, msg: Any) -> None:
        dropped = None
        with self._cv:
            if len(self._queue) >= self._queue_size:
                # The oldest sensor message goes; an AudioInfo is kept (it is rare and needed).
                i = next((j for j, item in enumerate(self._queue) if item[0] != "info"), 0)
                dropped = self._queue[i][0]
                del self._queue[i]
            self._queue.append((kind, msg, self._now_ns()))
            self._cv.notify()
        if dropped is not None:
            self.health.count("pipeline", "queue_overflows")
            self._report(
                PipelineEvent.warn(
                    "pipeline",
                    "queue_overflow",
                    f"processing queue full ({self._queue_size} messages): oldest {dropped} "
                    "message dropped; the estimators are slower than the input",
                )
            )

    def _enqueue_audio(self, msg: Any) -> None:
        self._enqueue("audio", msg)

    def _enqueue_info(self, msg: Any) -> None:
        self._enqueue("info", msg)

    def _enqueue_image(self, msg: Image) -> None:
        self._enqueue("image", msg)

    def _enqueue_odom(self, msg: Odometry) -> None:
        self._enqueue("odom", msg)

    def _enqueue_imu(self, msg: Imu) -> None:
        self._enqueue("imu", msg)

    def _publish_diagnostics(self) -> None:
        fmt = self.pipeline.audio_format
        self.health.set_info(
            "audio", "format", "none" if fmt is None else f"{fmt[0]} ch, {fmt[1]} Hz, {fmt[2]}"
        )
        with self._cv:
            self.health.set_info("pipeline", "queue_length", str(len(self._queue)))
        reports = self.health.reports()
        try:
            self.diag_pub.publish(to_diagnostic_array(reports, self._now_ns(), self.get_name()))
        except Exception:
            # Ctrl-C can shut the context down while this timer runs; that is a clean exit.
            if self.context.ok():
                raise

    # ------------------------------------------------------------------ worker thread
    def _run(self) -> None:
        while True:
            with self._cv:
                self._cv.wait_for(lambda: self._queue or self._stop, timeout=0.5)
                if self._stop:
                    return
                if not self._queue:
                    continue
                kind, msg, arrival_ns = self._queue.popleft()
            try:
                self._handle(kind, msg, arrival_ns)
            except Exception as err:  # keep the node alive; the error is reported
                self._report(
                    PipelineEvent.error(
                        "pipeline", "internal_error", f"{type(err).__name__} in {kind}: {err}"
                    )
                )

    def _handle(self, kind: str, msg: Any, arrival_ns: int) -> None:
        started = time.perf_counter()
        self.health.add_latency("pipeline", "queue", max(0, self._now_ns() - arrival_ns) / 1e9)
        if kind == "image":
            self.health.tick("image", "rate.images_per_s")
        elif kind in ("odom", "imu"):
            self.health.tick("tracking", f"rate.{kind}_per_s")
        result = self.dispatcher.take_input(kind, msg, arrival_ns)
        if result.skipped_duplicate_info:
            return  # the same info arrives on both AudioInfo subscriptions
        if kind == "audio":
            self.health.tick("audio", "rate.chunks_per_s")
            if result.audio_frames is not None:
                self.health.tick("audio", "rate.frames_per_s", result.audio_frames)
        for event in result.events:
            # AudioInfo problems come once per message and differ in detail: log each one.
            self._report(event, throttle=kind != "info")
        self.health.add_latency("pipeline", f"input_{kind}", time.perf_counter() - started)
        for pending in self.dispatcher.step():
            self._publish_window(pending)
            self._hand_to_visual(pending)

    def _publish_window(self, pending: PendingWindow) -> None:
        for event in pending.events:
            self._report(event)
        self.health.add_latency("estimator", "audio", pending.audio_s)
        out = self.dispatcher.window_outputs(pending)
        for event in out.tracking.events:
            self._report(event)
        self.tracks_pub.publish(out.tracks)
        if out.source is not None:
            self.source_pub.publish(out.source)
        if out.markers is not None and self.marker_pub is not None:
            self.marker_pub.publish(out.markers)
        self._note_tracking(out.tracking)
        if out.direction is None:
            return
        self.direction_pub.publish(out.direction)
        self.health.count("pipeline", "sound_directions_published")
        self.health.add_latency("pipeline", "end_to_end", (self._now_ns() - pending.end_ns) / 1e9)

    def _note_tracking_setup(self) -> None:
        p = self.params
        rotation = str(p["rotation_source"])
        inputs = {"auto": "odom, imu, camera yaw", "none": "none"}.get(rotation, rotation)
        self.health.set_info("tracking", "rotation_inputs", inputs)
        for kind in rotation_kinds(p):
            topic = self._resolved(p[f"{kind}_topic"])
            self.health.set_info("tracking", f"{kind}_topic", topic)
        self.health.set_info("tracking", "sound_direction_output", str(p["sound_direction_output"]))
        if not self.dispatcher.markers_enabled:
            markers = "off (publish_markers false)"
        elif self.dispatcher.markers_available:
            markers = "~/sound_markers"
        else:
            markers = "off: the visualization_msgs package is not installed"
        self.health.set_info("tracking", "markers", markers)

    def _note_tracking(self, result: TrackingResult) -> None:
        """Standing tracking state on /diagnostics (the last window's)."""
        q = result.rotation
        info = {
            "rotation_source": q.source,
            "rotation_state": q.state,
            "tracks": str(len([t for t in result.tracks if t.state != "lost"])),
        }
        primary = result.primary
        if primary is None:
            info.update(primary_id="", primary_state="none", front_probability="")
            info.update(world_bearing_deg="", body_bearing_deg="", bearing_std_deg="")
        else:
            info.update(
                primary_id=str(primary.track_id),
                primary_state=primary.state,
                front_probability=f"{primary.front_probability:.3f}",
                world_bearing_deg=f"{math.degrees(primary.world_bearing):.1f}",
                body_bearing_deg=f"{math.degrees(primary.body_bearing):.1f}",
                bearing_std_deg=f"{math.degrees(math.sqrt(primary.variance)):.1f}",
            )
        for key, value in info.items():
            self.health.set_info("tracking", key, value)
        if q.state in ("ok", "starting"):
            self.health.set_condition("tracking", EventLevel.OK, "")
        elif q.state == "off":
            self.health.set_condition(
                "tracking", EventLevel.OK, "rotation_source none: front/back stays undecided"
            )
        else:
            what = {
                "no_input": "no rotation input",
                "stale": f"rotation input {q.source} stopped",
                "gap": f"rotation input {q.source} has holes",
            }.get(q.state, q.state)
            self.health.set_condition(
                "tracking", EventLevel.WARN, f"{what}: front/back evidence paused"
            )

    def _hand_to_visual(self, pending: PendingWindow) -> None:
        with self._visual_cv:
            if len(self._visual_queue) >= MAX_VISUAL_BACKLOG:
                # The camera part fell behind: skip its oldest window (the yaw chain carries
                # on from the next one), but keep a tracking restart it asked for.
                old = self._visual_queue.popleft()
                self._count_window(old.azimuth is not None and old.azimuth.valid)
                self.health.count("pipeline", "visual_windows_skipped")
                if old.restart_tracking:
                    pending = dataclasses.replace(pending, restart_tracking=True)
            self._visual_queue.append(pending)
            self._visual_cv.notify()

    def _run_visual(self) -> None:
        while True:
            with self._visual_cv:
                self._visual_cv.wait_for(lambda: self._visual_queue or self._stop, timeout=0.5)
                if self._stop:
                    return
                if not self._visual_queue:
                    continue
                pending = self._visual_queue.popleft()
            try:
                result = self.pipeline.finish_window(pending)
                for event in self.dispatcher.take_camera_yaw(result, pending.restart_tracking):
                    self._report(event)
                self._publish_yaw(result, len(pending.events))
            except Exception as err:  # keep the node alive; the error is reported
                self._report(
                    PipelineEvent.error(
                        "pipeline", "internal_error", f"{type(err).__name__} in visual: {err}"
                    )
                )

    def _count_window(self, has_output: bool) -> None:
        if has_output:
            self.health.count("pipeline", "windows_produced")
            self.health.tick("pipeline", "rate.windows_per_s")
        else:
            self.health.count("pipeline", "windows_skipped")

    def _publish_yaw(self, result: WindowResult, reported: int) -> None:
        for event in result.events[reported:]:  # the audio part's events are already out
            self._report(event)
        self.health.add_latency("estimator", "visual", result.latencies_s["visual"])
        odometry = self.dispatcher.yaw_message(result)
        if odometry is not None and result.yaw is not None:
            self.yaw_pub.publish(odometry)
            self.health.count("pipeline", "camera_yaws_published")
            self.health.add_latency(
                "pipeline", "yaw_end_to_end", (self._now_ns() - result.yaw.image_ns) / 1e9
            )
        self._count_window(result.has_output)

    # ------------------------------------------------------------------ reporting
    def _report(self, event: PipelineEvent, throttle: bool = True) -> None:
        """Record ``event`` for /diagnostics and log it (when ``throttle``, at most once per
        LOG_THROTTLE_S per code, with the number of repeats left out)."""
        self.health.record_event(event)
        now = time.monotonic()
        with self._log_lock:
            last = self._log_times.get(event.code)
            if throttle and last is not None and now - last < LOG_THROTTLE_S:
                self._log_suppressed[event.code] = self._log_suppressed.get(event.code, 0) + 1
                return
            self._log_times[event.code] = now
            repeats = self._log_suppressed.pop(event.code, 0)
        suffix = f" (+{repeats} more since the last report)" if repeats else ""
        line = f"[{event.code}] {event.message}{suffix}"
        logger = self.get_logger()
        if event.level >= EventLevel.ERROR:
            logger.error(line)
        elif event.level >= EventLevel.WARN:
            logger.warning(line)
        else:
            logger.info(line)

    def destroy_node(self) -> None:
        for cv in (self._cv, self._visual_cv):
            with cv:
                self._stop = True
                cv.notify_all()
        for worker in (self._worker, self._visual_worker):
            if worker.is_alive():
                worker.join(timeout=5.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``slfm_node``: spin until Ctrl-C or shutdown."""
    return run_node(SlfmNode, "slfm_node", args)


if __name__ == "__main__":
    sys.exit(main())
