"""camera_node: a camera, stream or video file as sensor_msgs/Image (rgb8) + CameraInfo.

Publishes
    <image_topic>        sensor_msgs/Image, rgb8, reliable depth 10 (best-effort subscribers
                         such as slfm_node accept it); header.stamp = grab time of the frame
                         (for a file: the time it is read)
    <camera_info_topic>  sensor_msgs/CameraInfo with the same header, from the calibration YAML
                         (scaled to the output size) or a pinhole model of hfov_deg
    /diagnostics         diagnostic_msgs/DiagnosticArray every diagnostics_period, status
                         "camera_node: image capture" (hardware_id = the source): requested and
                         measured rate, frames published/skipped, read failures, reopens, last
                         frame age, backend, codec, image size; WARN below 80 % of the requested
                         rate or after failed reads, ERROR when no frame came for 1 s
                         (slfm_ros.core.capture_health)

Pacing: a video file is played at ``fps`` (or its own rate); a live source delivers at its own
rate and frames arriving faster than ``fps`` are skipped. At the end of a file the node exits
with status 0 (or restarts the file with ``loop``). A camera or stream that stops delivering is
reopened with backoff (REOPEN_DELAYS_S, about 15 s); when every reopen fails the node exits with
status 1, so a launch respawn can restart it. A source that cannot be opened at start fails the
node at once (status 1).

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
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from slfm_ros.core.capture_health import CaptureHealth, reopen_with_backoff
from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.core.events import EventLevel
from slfm_ros.core.video_source import (
    DEFAULT_FPS,
    CameraCalibration,
    CaptureError,
    EndOfVideo,
    SourceKind,
    VideoSource,
    load_calibration,
)
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.camera_params import CAMERA_NODE
from slfm_ros.nodes.diagnostics import StatusReport, to_diagnostic_array
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.ros_params import declare_node_params

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
        self.finished = threading.Event()
        self.exit_code = 0
        self._source = VideoSource(
            str(p["source"]),
            loop=bool(p["loop"]),
            width=cast(int, p["width"]),
            height=cast(int, p["height"]),
            fps=cast(float, p["fps"]),
            clock_ns=self._now_ns,
        )
        try:
            url = str(p["camera_info_url"])
            if url:
                calib = load_calibration(url).scaled(self._source.width, self._source.height)
            else:
                calib = CameraCalibration.from_hfov(
                    self._source.width,
                    self._source.height,
                    math.radians(cast(float, p["hfov_deg"])),
                )
        except SlfmError:
            self._source.close()
            raise
        self._calib = calib
        self._fps_param = cast(float, p["fps"])
        fps = self._fps_param or self._source.fps or DEFAULT_FPS
        self._period_s = 1.0 / fps
        self._health = CaptureHealth(self._source.source, self._source.kind.value, fps)
        self._describe_source()
        self._image_pub = self.create_publisher(Image, str(p["image_topic"]), IMAGE_QOS)
        self._info_pub = self.create_publisher(CameraInfo, str(p["camera_info_topic"]), IMAGE_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="camera_read", daemon=True)
        self._thread.start()
        self.create_timer(diag_period, self.publish_diagnostics)
        length = (
            f", {self._source.frame_count} frames{' (loop)' if self._source.loop else ''}"
            if self._source.kind is SourceKind.FILE
            else ""
        )
        self.get_logger().info(
            f"{self._source.kind.value} '{self._source.source}'{length}: "
            f"{self._source.width}x{self._source.height} rgb8 at {fps:g} fps, "
            f"hfov {math.degrees(calib.hfov_rad):.1f} deg -> {self._image_pub.topic_name} "
            f"(+ {self._info_pub.topic_name})"
        )

    def _now_ns(self) -> int:
        return self.get_clock().now().nanoseconds

    def _describe_source(self) -> None:
        src = self._source
        self._health.set_info("backend", src.backend)
        self._health.set_info("fourcc", src.fourcc)
        self._health.set_info("image_size", f"{src.width}x{src.height}")
        self._health.set_info("encoding", "rgb8")

    def _publish(self, image: npt.NDArray[np.uint8], stamp_ns: int) -> None:
        self._image_pub.publish(conv.rgb_to_image(image, stamp_ns, self._frame_id))
        self._info_pub.publish(camera_info_msg(self._calib, stamp_ns, self._frame_id))
        self._health.frame_published()

    def _reopen(self, err: CaptureError) -> bool:
        """Replaces the lost live source by a reopened one of the same output size; False when
        the node is stopping. Raises SlfmError when every attempt failed."""
        self._health.read_failed(str(err))
        self.get_logger().warning(f"{err}; reopening")
        lost = self._source
        lost.close()
        reopened = reopen_with_backoff(
            lambda: VideoSource(
                lost.source,
                loop=lost.loop,
                width=lost.width,
                height=lost.height,
                fps=self._fps_param,
                clock_ns=self._now_ns,
            ),
            self._health,
            self._stop,
            self.get_logger().warning,
        )
        if reopened is None:
            return False
        self._source = reopened
        self._describe_source()
        self.get_logger().info(f"reopened '{lost.source}'")
        return True

    def _run(self) -> None:
        paced = self._source.kind is SourceKind.FILE
        next_due = time.monotonic()
        try:
            while not self._stop.is_set():
                if paced:
                    delay = next_due - time.monotonic()
                    if delay > 0 and self._stop.wait(delay):
                        return
                try:
                    frame = self._source.read()
                except CaptureError as err:
                    if not self._reopen(err):
                        return
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

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._source.close()
        super().destroy_node()


def _spin_until_finished(node: CameraNode) -> int:
    while rclpy.ok() and not node.finished.is_set():
        rclpy.spin_once(node, timeout_sec=0.1)
    if node.finished.is_set() and rclpy.ok():
        node.publish_diagnostics()  # the reason it stopped, for whoever watches /diagnostics
    return node.exit_code


def main(args: list[str] | None = None) -> int:
    """Console script ``camera_node``: publish until the file ends, Ctrl-C or shutdown; exit 1
    for a missing device, an unreadable file or a camera that stops."""
    return run_node(CameraNode, CAMERA_NODE.name, args, spin=_spin_until_finished)


if __name__ == "__main__":
    sys.exit(main())
