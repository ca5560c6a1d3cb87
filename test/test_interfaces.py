"""audio_common_msgs as the nodes use it: the released field layout, and real transport of
AudioDataStamped and AudioInfo between two rclpy processes over DDS."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import rclpy
from audio_common_msgs.msg import AudioData, AudioDataStamped, AudioInfo
from rclpy.context import Context
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

# Field names and types of ros-drivers/audio_common (ROS 2), audio_common_msgs/msg.
RELEASED_FIELDS = {
    AudioData: {"data": "sequence<uint8>"},
    AudioDataStamped: {"header": "std_msgs/Header", "audio": "audio_common_msgs/AudioData"},
    AudioInfo: {
        "channels": "uint8",
        "sample_rate": "uint32",
        "sample_format": "string",
        "bitrate": "uint32",
        "coding_format": "string",
    },
}

PAYLOAD = bytes(range(256)) * 15  # 3840 bytes: 20 ms of 48 kHz S16LE stereo
STAMP = (1_700_000_000, 123_456_789)

PUBLISHER = textwrap.dedent(
    f"""
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

    rclpy.init()
    node = rclpy.create_node("audio_test_publisher")
    latched = QoSProfile(
        depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
    )
    info_pub = node.create_publisher(AudioInfo, "audio/audio_info", latched)
    audio_pub = node.create_publisher(AudioDataStamped, "audio/audio_stamped", 10)
    info_pub.publish(
        AudioInfo(channels=2, sample_rate=48000, sample_format="S16LE", bitrate=1536000,
                  coding_format="wave")
    )
    msg = AudioDataStamped()
    msg.header.stamp.sec, msg.header.stamp.nanosec = {STAMP!r}
    msg.header.frame_id = "mic"
    msg.audio.data = {PAYLOAD!r}
    print("ready", flush=True)
    while rclpy.ok():
        audio_pub.publish(msg)
        rclpy.spin_once(node, timeout_sec=0.05)
    """
)


@pytest.mark.parametrize("msg_type", list(RELEASED_FIELDS), ids=lambda t: t.__name__)
def test_fields_match_the_released_definitions(msg_type: Any) -> None:
    assert msg_type.get_fields_and_field_types() == RELEASED_FIELDS[msg_type]


@pytest.fixture
def ros_context(ros_env: dict[str, str]) -> Iterator[Context]:
    context = Context()
    rclpy.init(context=context, domain_id=int(ros_env["ROS_DOMAIN_ID"]))
    try:
        yield context
    finally:
        context.try_shutdown()


def _spin_until(
    node: Node, context: Context, done: Callable[[], bool], timeout: float, proc: Any
) -> None:
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    deadline = time.monotonic() + timeout
    try:
        while not done() and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
            if proc.poll() is not None:
                raise AssertionError(f"publisher exited early: {proc.stderr.read()}")
    finally:
        executor.remove_node(node)
        executor.shutdown()


def test_audio_messages_cross_between_processes(
    ros_env: dict[str, str], ros_context: Context
) -> None:
    node = rclpy.create_node("audio_test_subscriber", context=ros_context)
    stamped: list[AudioDataStamped] = []
    infos: list[AudioInfo] = []
    proc = subprocess.Popen(
        [sys.executable, "-c", PUBLISHER],
        env=ros_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        # Subscribed after the publisher sent AudioInfo: transient-local delivers it anyway.
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        node.create_subscription(AudioInfo, "audio/audio_info", infos.append, latched)
        node.create_subscription(AudioDataStamped, "audio/audio_stamped", stamped.append, 10)
        _spin_until(node, ros_context, lambda: bool(stamped and infos), 30.0, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        node.destroy_node()

    assert stamped, "no AudioDataStamped arrived within 30 s"
    assert infos, "the latched AudioInfo did not arrive within 30 s"
    msg = stamped[0]
    assert bytes(msg.audio.data) == PAYLOAD
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == STAMP
    assert msg.header.frame_id == "mic"
    info = infos[0]
    assert (info.channels, info.sample_rate, info.sample_format) == (2, 48000, "S16LE")
    assert (info.bitrate, info.coding_format) == (1536000, "wave")
