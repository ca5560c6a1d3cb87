"""mic_node: a binaural microphone as audio_common_msgs AudioDataStamped + AudioInfo.

Publishes
    <audio_topic>  audio_common_msgs/AudioDataStamped  reliable, depth 10 (as the audio_capture
                   node of ros-drivers/audio_common); header.stamp = capture time of the chunk's
                   first frame on the node's clock; data = interleaved little-endian samples in
                   sample_format, channel 0 = left
    <info_topic>   audio_common_msgs/AudioInfo  reliable, transient-local: published once at
                   start, so late subscribers receive it (parameters are read-only)
    /diagnostics   diagnostic_msgs/DiagnosticArray every diagnostics_period: chunks, input
                   overflows, dropped chunks, capture delay; WARN while overflows or drops occur,
                   ERROR when the device stops delivering

Threading: PortAudio's callback thread stamps and queues the chunks
(slfm_ros.core.devices.audio_device); one publisher thread takes them off the queue; the
executor only runs the diagnostics timer.
"""

from __future__ import annotations

import sys
import threading
from typing import cast

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from slfm_ros.core.devices.audio_device import AudioCapture, AudioChunk, CaptureConfig, CaptureStats
from slfm_ros.core.events import EventLevel
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.diagnostics import StatusReport, to_diagnostic_array
from slfm_ros.nodes.mic_params import MIC_NODE
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.ros_params import declare_node_params

AUDIO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=10,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.VOLATILE,
)
INFO_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST,
    depth=1,
    reliability=ReliabilityPolicy.RELIABLE,
    durability=DurabilityPolicy.TRANSIENT_LOCAL,
)
OVERFLOW_HINT = (
    "input overflow: audio was lost before it was read; the machine or this process is too "
    "busy. Lower the CPU load, raise chunk_ms, or give the node a real-time priority"
)
DROP_HINT = (
    "chunks dropped: the publisher thread did not keep up with capture; lower the CPU load "
    "or raise chunk_ms"
)


def audio_msg(chunk: AudioChunk, frame_id: str) -> AudioDataStamped:
    """The AudioDataStamped of a captured chunk (its bytes as captured, no re-encoding)."""
    msg = AudioDataStamped()
    msg.header.stamp = conv.ns_to_stamp(chunk.stamp_ns)
    msg.header.frame_id = frame_id
    msg.audio.data = chunk.to_bytes()
    return msg


class MicNode(Node):
    """Captures the configured device and publishes its audio until destroyed."""

    def __init__(self) -> None:
        super().__init__(MIC_NODE.name)
        p = declare_node_params(self, MIC_NODE)
        self._frame_id = str(p["frame_id"])
        config = CaptureConfig(
            device=str(p["device"]),
            sample_rate=cast(int, p["sample_rate"]),
            channels=cast(int, p["channels"]),
            chunk_ms=cast(int, p["chunk_ms"]),
            sample_format=str(p["sample_format"]),
        )
        self._config = config
        self._capture = AudioCapture(config, clock_ns=lambda: self.get_clock().now().nanoseconds)
        self._audio_pub = self.create_publisher(AudioDataStamped, str(p["audio_topic"]), AUDIO_QOS)
        self._info_pub = self.create_publisher(AudioInfo, str(p["info_topic"]), INFO_QOS)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._published = 0
        self._error = ""
        self._last_stats: CaptureStats | None = None
        self._stop = threading.Event()
        self._info_pub.publish(
            conv.make_audio_info_msg(config.channels, config.sample_rate, config.sample_format)
        )
        self._capture.start()
        self._started_ns = self.get_clock().now().nanoseconds
        self._thread = threading.Thread(target=self._publish_loop, name="mic_publish", daemon=True)
        self._thread.start()
        self.create_timer(cast(float, p["diagnostics_period"]), self._publish_diagnostics)
        self.get_logger().info(
            f"capturing {self._capture.device.describe()}: {config.sample_rate} Hz, "
            f"{config.channels} ch, {config.sample_format}, {config.chunk_frames}-frame chunks -> "
            f"{self._audio_pub.topic_name} (+ {self._info_pub.topic_name})"
        )

    def _publish_loop(self) -> None:
        while not self._stop.is_set():
            try:
                chunk = self._capture.read(timeout=0.2)
            except TimeoutError:
                continue
            except RuntimeError as exc:
                self._error = f"capture failed: {exc.__cause__ or exc}"
                self.get_logger().error(self._error)
                return
            try:
                self._audio_pub.publish(audio_msg(chunk, self._frame_id))
            except Exception:
                # Ctrl-C shuts the context down before destroy_node stops this thread.
                if not self.context.ok():
                    return
                raise
            self._published += 1

    def _status(self, stats: CaptureStats, now_ns: int) -> tuple[int, str]:
        prev = self._last_stats
        silent_s = (now_ns - (stats.last_block_ns or self._started_ns)) / 1e9
        stall_s = max(2.0, 5 * self._config.chunk_ms / 1000.0)
        if self._error:
            return 2, self._error
        if silent_s > stall_s:
            return 2, (
                f"no audio from the device for {silent_s:.1f} s: it stopped or was unplugged; "
                "check the device and restart the node"
            )
        if prev is not None and stats.overflows > prev.overflows:
            return 1, f"{stats.overflows - prev.overflows} {OVERFLOW_HINT}"
        if prev is not None and stats.dropped_chunks > prev.dropped_chunks:
            return 1, f"{stats.dropped_chunks - prev.dropped_chunks} {DROP_HINT}"
        return 0, "capturing"

    def _publish_diagnostics(self) -> None:
        stats = self._capture.stats()
        now_ns = self.get_clock().now().nanoseconds
        level, message = self._status(stats, now_ns)
        self._last_stats = stats
        c = self._config
        values = {
            "device": self._capture.device.name,
            "sample_rate": str(c.sample_rate),
            "channels": str(c.channels),
            "sample_format": c.sample_format,
            "chunk_ms": f"{c.chunk_ms:g}",
            "chunks_published": str(self._published),
            "overflows": str(stats.overflows),
            "dropped_chunks": str(stats.dropped_chunks),
            "timeline_resyncs": str(stats.resyncs),
            "capture_delay_ms": f"{stats.capture_delay_s * 1e3:.1f}",
            "stamp_source": "driver ADC clock" if stats.stamps_from_adc else "delivery time",
        }
        report = StatusReport("audio capture", EventLevel(level), message, values)
        self._diag_pub.publish(
            to_diagnostic_array(
                [report], now_ns, self.get_name(), hardware_id=self._capture.device.name
            )
        )

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        self._capture.close()
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``mic_node``: capture until Ctrl-C or shutdown; exit 1 on a bad device or
    configuration (the log line lists the available devices)."""
    return run_node(MicNode, MIC_NODE.name, args)


if __name__ == "__main__":
    sys.exit(main())
