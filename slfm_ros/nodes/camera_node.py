"""camera_node: a camera, stream or video file as sensor_msgs/Image (rgb8) + CameraInfo.

Publishes
    <image_topic>        sensor_msgs/Image, rgb8, reliable depth 10 (best-effort subscribers
                         such as slfm_node accept it); header.stamp = grab time of the frame
                         (for a file: the time it is read)
    <camera_info_topic>  sensor_msgs/CameraInfo with the same header, from the calibration YAML
                         (scaled to the output size) or a pinhole model of hfov_deg; for a
                         source opened late, of the size its frames have once it opens
    /diagnostics         diagnostic_msgs/DiagnosticArray every diagnostics_period, status
                         "camera_node: image capture" (hardware_id = the source): requested and
                         measured rate, frames published/skipped, read failures, reopens, last
                         frame age, backend, codec, image size; WARN below 80 % of the requested
                         rate or after failed reads, ERROR when no frame came for 1 s or the
                         source cannot be opened (slfm_ros.core.devices.capture_health)

Pacing: a video file is played at ``fps`` (or its own rate); a live source delivers at its own
rate and frames arriving faster than ``fps`` are skipped. At the end of a file the node exits
with status 0 (or restarts the file with ``loop``). A camera or stream that stops delivering is
reopened with backoff (REOPEN_DELAYS_S, about 15 s); when every reopen fails the node exits with
status 1, so a launch respawn can restart it. A camera or stream that cannot be opened at start
(a robot that boots before its camera is plugged in or its network camera is up) is treated the
same way: the node comes up, reports ERROR on /diagnostics and retries with that backoff. A video
file that is missing or cannot be decoded fails the node at once (status 1): that is a wrong
path, not a late device.

Threading: a reader thread reads and publishes frames; the executor only runs the diagnostics
timer, so a capture that hangs still shows up on /diagnostics.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import cast

import numpy as np
import numpy.typing as npt
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from slfm_ros.core.devices.capture_health import REOPEN_DELAYS_S, CaptureHealth, reopen_with_backoff
from slfm_ros.core.devices.video_source import (
    DEFAULT_FPS,
    CameraCalibration,
    CaptureError,
    EndOfVideo,
    SourceKind,
    VideoSource,
    load_calibration,
    source_kind,
)
from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.core.events import EventLevel
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.camera_params import CAMERA_NODE
from slfm_ros.nodes.diagnostics import StatusReport, to_diagnostic_array
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.ros_params import declare_node_params

# Longest wait for /diagnostics subscribers to acknowledge the status sent on stopping [s].
FINAL_STATUS_ACK_S = 2.0

IMAGE_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)


def camera_info_msg(calib: CameraCalibration, stamp_ns: int, frame_id: str) -> CameraInfo:
    """sensor_msgs/CameraInfo of ``calib`` (K, D, R, P row-major)."""
    msg = CameraInfo()
    msg.header.stamp = conv.ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.width, msg.height = int(calib.width), int(calib.height)
    msg.distortion_model = calib.distortion_model
    msg.d = [float(v) for v in calib.D]
    msg.k = [float(v) for v in calib.K.ravel()]
    msg.r = [float(v) for v in calib.R.ravel()]
    assert calib.P is not None
    msg.p = [float(v) for v in calib.P.ravel()]
    return msg


class CameraNode(Node):
    """Opens the configured source and publishes its frames from a reader thread."""

    def __init__(self) -> None:
        super().__init__(CAMERA_NODE.name)
        p = declare_node_params(self, CAMERA_NODE)
        self._frame_id = str(p["frame_id"])
        diag_period = cast(float, p["diagnostics_period"])
        if not diag_period > 0:
            raise ConfigError(f"diagnostics_period: expected > 0 s, got {diag_period}")
        self._want = (cast(int, p["width"]), cast(int, p["height"]))
        if min(self._want) < 0:
            raise ConfigError(
                f"width/height: expected >= 0 (0 = keep), got {self._want[0]}x{self._want[1]}"
            )
        url = str(p["camera_info_url"])
        # Read before the source opens: a wrong calibration path fails at once, also for a
        # camera that is not there yet.
        self._base_calib = load_calibration(url) if url else None
        hfov_deg = cast(float, p["hfov_deg"])
        if self._base_calib is None and not 0.0 < hfov_deg < 180.0:
            raise ConfigError(f"hfov_deg: expected in (0, 180) deg, got {hfov_deg}")
        self._hfov_rad = math.radians(hfov_deg)
        self._source_name = str(p["source"])
        self._kind = source_kind(self._source_name)
        self._loop = bool(p["loop"])
        self._fps_param = cast(float, p["fps"])
        self.finished = threading.Event()
        self.exit_code = 0
        self._source: VideoSource | None = None
        self._calib: CameraCalibration | None = None
        open_error: SlfmError | None = None
        try:
            self._source = self._open(*self._want)
        except SlfmError as err:
            if self._kind is SourceKind.FILE:
                raise
            open_error = err  # a camera or stream that is not up yet: retried in _run
        fps = (
            self._fps_param
            or (self._source.fps if self._source is not None else 0.0)
            or DEFAULT_FPS
        )
        self._period_s = 1.0 / fps
        self._health = CaptureHealth(self._source_name, self._kind.value, fps)
        if self._source is not None:
            self._use(self._source)
        else:
            self._health.open_failed(str(open_error))
            self._describe_unopened()
        self._image_pub = self.create_publisher(Image, str(p["image_topic"]), IMAGE_QOS)
        self._info_pub = self.create_publisher(CameraInfo, str(p["camera_info_topic"]), IMAGE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera_read", daemon=True)
        self._thread.start()
        self.create_timer(diag_period, self.publish_diagnostics)
        if self._source is None:
            self.get_logger().warning(
                f"{open_error}; retrying {len(REOPEN_DELAYS_S)} times over "
                f"{sum(REOPEN_DELAYS_S):g} s"
            )
        else:
            self._log_opened(self._source, fps)

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _open(self, width: int, height: int) -> VideoSource:
        return VideoSource(
            self._source_name,
            loop=self._loop,
            width=width,
            height=height,
            fps=self._fps_param,
            clock_ns=self._now_ns,
        )

    def _use(self, source: VideoSource) -> None:
        """Publishes from ``source`` from now on, with intrinsics of its output size."""
        if self._base_calib is not None:
            self._calib = self._base_calib.scaled(source.width, source.height)
        else:
            self._calib = CameraCalibration.from_hfov(source.width, source.height, self._hfov_rad)
        self._source = source
        self._health.set_info("backend", source.backend)
        self._health.set_info("fourcc", source.fourcc)
        self._health.set_info("image_size", f"{source.width}x{source.height}")
        self._health.set_info("encoding", "rgb8")

    def _describe_unopened(self) -> None:
        width, height = self._want
        self._health.set_info("backend", "")
        self._health.set_info("fourcc", "")
        self._health.set_info(
            "image_size", f"{width}x{height} (requested)" if width and height else "unknown"
        )
        self._health.set_info("encoding", "rgb8")

    def _log_opened(self, source: VideoSource, fps: float) -> None:
        assert self._calib is not None
        length = (
            f", {source.frame_count} frames{' (loop)' if source.loop else ''}"
            if source.kind is SourceKind.FILE
            else ""
        )
        self.get_logger().info(
            f"{source.kind.value} '{source.source}'{length}: {source.width}x{source.height} "
            f"rgb8 at {fps:g} fps, hfov {math.degrees(self._calib.hfov_rad):.1f} deg -> "
            f"{self._image_pub.topic_name} (+ {self._info_pub.topic_name})"
        )

    def _publish(self, image: npt.NDArray[np.uint8], stamp_ns: int) -> None:
        assert self._calib is not None
        self._image_pub.publish(conv.rgb_to_image(image, stamp_ns, self._frame_id))
        self._info_pub.publish(camera_info_msg(self._calib, stamp_ns, self._frame_id))
        self._health.frame_published()

    def _open_late(self) -> VideoSource | None:
        """Retries a camera or stream that could not be opened at start; None when the node
        is stopping. Raises SlfmError when every attempt failed."""
        source = reopen_with_backoff(
            lambda: self._open(*self._want),
            self._health,
            self._stop,
            self.get_logger().warning,
        )
        if source is None:
            return None
        fps = self._fps_param or source.fps or DEFAULT_FPS
        self._period_s = 1.0 / fps
        self._health.set_requested_fps(fps)
        self._use(source)
        self._log_opened(source, fps)
        return source

    def _reopen(self, lost: VideoSource, err: CaptureError) -> VideoSource | None:
        """A reopened live source of the same output size in place of ``lost``; None when the
        node is stopping. Raises SlfmError when every attempt failed."""
        self._health.read_failed(str(err))
        self.get_logger().warning(f"{err}; reopening")
        lost.close()
        reopened = reopen_with_backoff(
            lambda: self._open(lost.width, lost.height),
            self._health,
            self._stop,
            self.get_logger().warning,
        )
        if reopened is None:
            return None
        self._use(reopened)
        self.get_logger().info(f"reopened '{lost.source}'")
        return reopened

    def _run(self) -> None:
        paced = self._kind is SourceKind.FILE
        try:
            source = self._source if self._source is not None else self._open_late()
            next_due = time.monotonic()
            while source is not None and not self._stop.is_set():
                if paced:
                    delay = next_due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                try:
                    frame = source.read()
                except CaptureError as err:
                    source = self._reopen(source, err)
                    continue
                now = time.monotonic()
                if not paced and now < next_due - 0.5 * self._period_s:
                    self._health.frame_skipped()  # the camera is faster than fps
                    continue
                # Falling behind (slow decoding) restarts the schedule instead of bursting.
                next_due = max(next_due + self._period_s, now - self._period_s)
                self._publish(frame.image, frame.stamp_ns)
        except EndOfVideo as end:
            self._health.finished(EventLevel.OK, f"{end}; stopped")
            self.get_logger().info(f"{end}; stopping")
        except SlfmError as err:
            self._health.finished(EventLevel.ERROR, f"stopped: {err}")
            self.get_logger().error(f"{type(err).__name__}: {err}")
            self.exit_code = 1
        except Exception:
            # Ctrl-C shuts the context down before destroy_node stops this thread.
            if self.context.ok():
                raise
        finally:
            self.finished.set()

    def publish_diagnostics(self) -> None:
        """The capture status on /diagnostics (the timer's callback; once more on stopping)."""
        r = self._health.report()
        report = StatusReport("image capture", r.level, r.message, r.values)
        self._diag_pub.publish(
            to_diagnostic_array(
                [report], self._now_ns(), self.get_name(), hardware_id=self._health.source
            )
        )

    def publish_last_diagnostics(self) -> None:
        """The reason it stopped, for whoever watches /diagnostics, held until subscribers
        acknowledge it (at most FINAL_STATUS_ACK_S): destroyed right after publishing, the
        node could take the message with it undelivered."""
        self.publish_diagnostics()
        self._diag_pub.wait_for_all_acked(Duration(seconds=FINAL_STATUS_ACK_S))

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        if self._source is not None:
            self._source.close()
        super().destroy_node()


def _spin_until_finished(node: CameraNode) -> int:
    while rclpy.ok() and not node.finished.is_set():
        try:
            rclpy.spin_once(node, timeout_sec=0.1)
        except RuntimeError:
            if rclpy.ok():
                raise
            # A shutdown (Ctrl-C, SIGTERM) landed while a timer was publishing: rclpy then
            # fails on the invalid context; that is the end asked for.
            break
    if node.finished.is_set() and rclpy.ok():
        node.publish_last_diagnostics()
    return node.exit_code


def main(args: list[str] | None = None) -> int:
    """Console script ``camera_node``: publish until the file ends, Ctrl-C or shutdown; exit 1
    for a missing or unreadable file, a bad parameter, or a camera or stream that cannot be
    opened or stops delivering (after the reopen attempts)."""
    return run_node(CameraNode, CAMERA_NODE.name, args, spin=_spin_until_finished)


if __name__ == "__main__":
    sys.exit(main())
