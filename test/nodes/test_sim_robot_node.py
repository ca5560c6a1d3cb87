"""sim_robot as a separate process over DDS: it turns as cmd_vel says and streams its sensors."""

from __future__ import annotations

import math
import threading

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from node_process import ListenerNode, start_node, stop  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from slfm_ros.core.conventions import wrap_angle, yaw_from_quaternion  # noqa: E402
from slfm_ros.nodes.msg_conversions import audio_msg_to_array, stamp_to_ns  # noqa: E402

LATCHED = QoSProfile(
    depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL
)


class Robot(ListenerNode):
    """Drives the sim robot and records everything it publishes."""

    def __init__(self, ns: str) -> None:
        super().__init__("sim_robot_test")
        self.lock = threading.Lock()
        self.audio: list[AudioDataStamped] = []
        self.infos: list[AudioInfo] = []
        self.images: list[Image] = []
        self.camera_infos: list[CameraInfo] = []
        self.odom: list[Odometry] = []
        self.truth: list[PoseWithCovarianceStamped] = []
        self.sources: list[PoseStamped] = []
        self.diagnostics: list[DiagnosticArray] = []
        n = self.node
        n.create_subscription(AudioDataStamped, f"{ns}/audio/audio_stamped", self.audio.append, 500)
        n.create_subscription(AudioInfo, f"{ns}/audio/audio_info", self.infos.append, LATCHED)
        n.create_subscription(Image, f"{ns}/image_raw", self.images.append, 50)
        n.create_subscription(CameraInfo, f"{ns}/camera_info", self.camera_infos.append, 50)
        n.create_subscription(Odometry, f"{ns}/odom", self.odom.append, 500)
        n.create_subscription(
            PoseWithCovarianceStamped,
            f"{ns}/ground_truth/sound_direction",
            self.truth.append,
            500,
        )
        n.create_subscription(
            PoseStamped, f"{ns}/ground_truth/sound_source", self.sources.append, 10
        )
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.cmd = n.create_publisher(Twist, f"{ns}/cmd_vel", 10)

    def turn(self, rate: float) -> None:
        msg = Twist()
        msg.angular.z = float(rate)
        self.cmd.publish(msg)

    def drive(self, rate: float, seconds: float) -> None:
        """Publish ``rate`` at 20 Hz for ``seconds`` while spinning."""
        steps = int(seconds * 20)
        for _ in range(steps):
            self.turn(rate)
            self.spin_until(lambda: False, 0.05)

    def status(self) -> dict[str, str]:
        for array in reversed(self.diagnostics):
            for s in array.status:
                if s.name == "sim_robot: simulation":
                    return {kv.key: kv.value for kv in s.values} | {"_message": s.message}
        return {}


def _odom_yaw(msg: Odometry) -> float:
    o = msg.pose.pose.orientation
    return yaw_from_quaternion(o.x, o.y, o.z, o.w)


def test_sim_robot_turns_on_cmd_vel_and_streams_in_real_time(ros_env, tmp_path) -> None:
    ns = "/sim_robot_test"
    robot = Robot(ns)
    node = start_node(
        "slfm_ros.nodes.sim_robot_node",
        ros_env,
        ns,
        "room:=anechoic",
        "sample_rate:=16000",
        "width:=64",
        "height:=48",
        "fps:=5.0",
        "talker_azimuth_deg:=-120.0",
        "max_angular_accel:=20.0",
        "start_when_subscribed:=true",
        f"rir_cache_dir:={tmp_path}",
    )
    try:
        assert robot.spin_until(lambda: len(robot.odom) > 25, 60.0), stop(node)[1]
        yaw0 = _odom_yaw(robot.odom[-1])
        robot.drive(0.8, 1.5)
        yaw1 = _odom_yaw(robot.odom[-1])
        robot.drive(math.nan, 0.3)  # rejected: the base keeps its last target
        robot.spin_until(lambda: False, 1.2)  # no commands: the watchdog stops it
        stopped = len(robot.odom)
        robot.spin_until(lambda: len(robot.odom) > stopped + 25, 5.0)
        robot.spin_until(lambda: robot.status().get("commands_rejected", "0") != "0", 3.0)
        status = robot.status()
    finally:
        code, out = stop(node)
        robot.close()
    assert code == 0, out
    assert "simulation started" in out

    # Audio: as mic_node streams it, S16LE stereo chunks of 20 ms on a gap-free capture clock.
    info = robot.infos[0]
    assert (info.channels, info.sample_rate, info.sample_format) == (2, 16000, "S16LE")
    stamps = np.array([stamp_to_ns(m.header.stamp) for m in robot.audio])
    assert np.all(np.diff(stamps) == 20_000_000), np.unique(np.diff(stamps))
    chunk = audio_msg_to_array(robot.audio[-1], "S16LE", 2)
    assert chunk.shape == (320, 2)
    audio = np.concatenate([audio_msg_to_array(m, "S16LE", 2) for m in robot.audio])
    assert 20 * math.log10(np.sqrt(np.mean(audio**2))) > -40.0  # the talker is audible
    assert robot.images and robot.camera_infos and robot.camera_infos[0].width == 64

    # It turned as commanded: 0.8 rad/s for about 1.5 s, then it stopped.
    turned = float(wrap_angle(yaw1 - yaw0))
    assert 0.8 < turned < 1.5
    final = [_odom_yaw(m) for m in robot.odom[-20:]]
    assert max(final) - min(final) < 1e-6
    rates = [m.twist.twist.angular.z for m in robot.odom]
    assert max(rates) == pytest.approx(0.8, abs=1e-6) and rates[-1] == 0.0

    # Ground truth: the talker's world bearing minus the yaw at each chunk.
    truth_by_stamp = {stamp_to_ns(m.header.stamp): m for m in robot.truth}
    odom_by_stamp = {stamp_to_ns(m.header.stamp): _odom_yaw(m) for m in robot.odom}
    common = sorted(set(truth_by_stamp) & set(odom_by_stamp))
    assert len(common) > 50
    for stamp in common[::10]:
        o = truth_by_stamp[stamp].pose.pose.orientation
        azimuth = yaw_from_quaternion(o.x, o.y, o.z, o.w)
        expected = wrap_angle(math.radians(-120.0) - odom_by_stamp[stamp])
        assert abs(wrap_angle(azimuth - expected)) < 1e-4
    source = robot.sources[-1].pose.position
    assert math.degrees(math.atan2(source.y, source.x)) == pytest.approx(-120.0)

    assert int(status["commands_rejected"]) >= 1 and int(status["command_timeouts"]) >= 1
    assert "non-finite" in status["_message"]
