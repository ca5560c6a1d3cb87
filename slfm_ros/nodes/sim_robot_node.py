"""sim_robot: a simulated robot in the loop, in real time over DDS.

Subscribes
    <cmd_vel_topic>     geometry_msgs/Twist, best effort (accepts reliable publishers too);
                        angular.z turns the base (it turns in place: linear velocity is
                        ignored and said so on /diagnostics)
Publishes (the topics and QoS of mic_node and camera_node, so slfm_node runs unchanged)
    <audio_topic>       audio_common_msgs/AudioDataStamped, S16LE, stamped with the capture
                        time of the first sample (reliable, depth 10)
    <info_topic>        audio_common_msgs/AudioInfo, latched
    <image_topic>       sensor_msgs/Image rgb8 + <camera_info_topic> CameraInfo (reliable)
    <odom_topic>        nav_msgs/Odometry odom_frame -> base_frame at odom_rate_hz
    <prefix>/sound_direction  PoseWithCovarianceStamped: the talker in the mic frame (truth)
    <prefix>/camera_yaw       Odometry: the camera's yaw when each image was taken (truth)
    <prefix>/sound_source     PoseStamped: the talker in the odom frame (truth, 1 Hz)
    /diagnostics        the simulation's status every diagnostics_period

The simulation (``slfm_ros.core.sim_robot``) runs on the node's clock: its time zero is when
it starts (at once, or once the audio and cmd_vel topics are connected with
``start_when_subscribed``) and every stamp is that time plus the simulated seconds. A thread
advances it every 10 ms to the current time and publishes what the sensors delivered.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from pathlib import Path
from typing import cast

from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, PoseWithCovarianceStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from slfm_ros.core.cache_dir import default_cache_dir
from slfm_ros.core.conventions import yaw_quaternion
from slfm_ros.core.devices.video_source import CameraCalibration
from slfm_ros.core.events import EventLevel
from slfm_ros.core.sim_robot.acoustics import TalkerSpec
from slfm_ros.core.sim_robot.base import BaseLimits
from slfm_ros.core.sim_robot.camera import CameraSpec
from slfm_ros.core.sim_robot.robot import SensorOutput, SimRobot, SimRobotConfig
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.camera_node import IMAGE_QOS, camera_info_msg
from slfm_ros.nodes.diagnostics import StatusReport, to_diagnostic_array
from slfm_ros.nodes.mic_node import AUDIO_QOS, INFO_QOS
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.param_spec import ParamValue
from slfm_ros.nodes.ros_params import declare_node_params
from slfm_ros.nodes.sim_robot_params import SIM_ROBOT_NODE

SAMPLE_FORMAT = "S16LE"
CMD_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=10, reliability=ReliabilityPolicy.BEST_EFFORT
)
TRUTH_QOS = 50
# Odometry of a simulated base is exact; tiny variances keep filters that invert them happy.
ODOM_VARIANCE = 1e-6
SOURCE_TRUTH_PERIOD_S = 1.0


def config_from_params(p: dict[str, ParamValue]) -> SimRobotConfig:
    """The simulation the parameters describe (ConfigError on bad values)."""

    def f(name: str) -> float:
        return float(cast(float, p[name]))

    return SimRobotConfig(
        talker=TalkerSpec(
            kind=str(p["talker_kind"]),
            bearing=math.radians(f("talker_azimuth_deg")),
            distance_m=f("talker_distance_m"),
            gain_db=f("talker_gain_db"),
        ),
        receiver=str(p["receiver"]),
        mic_spacing_m=f("mic_spacing_m"),
        head_radius_m=f("head_radius_m"),
        room=str(p["room"]),
        rt60_s=f("rt60_s"),
        sample_rate=int(cast(int, p["sample_rate"])),
        chunk_s=int(cast(int, p["chunk_ms"])) / 1000.0,
        camera=CameraSpec(
            width=int(cast(int, p["width"])),
            height=int(cast(int, p["height"])),
            hfov_deg=f("hfov_deg"),
            fps=f("fps"),
        ),
        limits=BaseLimits(f("max_angular_speed"), f("max_angular_accel"), f("cmd_timeout_s")),
        initial_yaw=math.radians(f("initial_yaw_deg")),
        noise_dbfs=f("noise_dbfs"),
        odom_rate_hz=f("odom_rate_hz"),
        max_lag_s=f("max_lag_s"),
        seed=int(cast(int, p["seed"])),
    )


def odometry_msg(
    yaw: float, yaw_rate: float, stamp_ns: int, frame_id: str, child_frame_id: str
) -> Odometry:
    """Odometry of a base turning in place at the origin (exact, tiny variances)."""
    msg = Odometry()
    msg.header.stamp = conv.ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.child_frame_id = child_frame_id
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = yaw_quaternion(yaw)
    msg.pose.covariance = [ODOM_VARIANCE if i % 7 == 0 else 0.0 for i in range(36)]
    msg.twist.twist.angular.z = float(yaw_rate)
    msg.twist.covariance = [ODOM_VARIANCE if i % 7 == 0 else 0.0 for i in range(36)]
    return msg


def default_rir_cache() -> str:
    return str(default_cache_dir() / "sim_robot_rirs")


class SimRobotNode(Node):
    """See module doc."""

    def __init__(self) -> None:
        super().__init__(SIM_ROBOT_NODE.name)
        p = declare_node_params(self, SIM_ROBOT_NODE)
        self.params = p
        config = config_from_params(p)
        cache = str(p["rir_cache_dir"]) or default_rir_cache()
        Path(cache).mkdir(parents=True, exist_ok=True)
        tic = time.perf_counter()
        self.robot = SimRobot(config, rir_cache_dir=cache)
        self._build_s = time.perf_counter() - tic
        self._lock = threading.Lock()
        self._mic_frame = str(p["mic_frame_id"])
        self._camera_frame = str(p["camera_frame_id"])
        self._odom_frame = str(p["odom_frame_id"])
        self._base_frame = str(p["base_frame_id"])
        cam = config.camera
        self._calibration = CameraCalibration.from_hfov(
            cam.width, cam.height, math.radians(cam.hfov_deg)
        )
        truth = str(p["ground_truth_prefix"]).rstrip("/")
        self._audio_pub = self.create_publisher(AudioDataStamped, str(p["audio_topic"]), AUDIO_QOS)
        self._info_pub = self.create_publisher(AudioInfo, str(p["info_topic"]), INFO_QOS)
        self._image_pub = self.create_publisher(Image, str(p["image_topic"]), IMAGE_QOS)
        self._camera_info_pub = self.create_publisher(
            CameraInfo, str(p["camera_info_topic"]), IMAGE_QOS
        )
        self._odom_pub = self.create_publisher(Odometry, str(p["odom_topic"]), 50)
        self._truth_direction_pub = self.create_publisher(
            PoseWithCovarianceStamped, f"{truth}/sound_direction", TRUTH_QOS
        )
        self._truth_yaw_pub = self.create_publisher(Odometry, f"{truth}/camera_yaw", TRUTH_QOS)
        self._truth_source_pub = self.create_publisher(
            PoseStamped, f"{truth}/sound_source", TRUTH_QOS
        )
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._cmd_sub = self.create_subscription(
            Twist, str(p["cmd_vel_topic"]), self._on_cmd_vel, CMD_QOS
        )
        self._info_pub.publish(
            conv.make_audio_info_msg(
                2, config.sample_rate, SAMPLE_FORMAT, "wave", bitrate=config.sample_rate * 32
            )
        )
        self._wait_for_peers = bool(p["start_when_subscribed"])
        self._start_ns: int | None = None
        self._last_source_truth = -math.inf
        self._published = {"audio": 0, "images": 0, "odom": 0}
        self._linear_ignored = 0
        self._last_problem = ""
        self._lag_s = 0.0
        self._stop = threading.Event()
        if not self._wait_for_peers:
            self._start_clock()
        self._thread = threading.Thread(target=self._run, name="sim_robot", daemon=True)
        self._thread.start()
        self.create_timer(cast(float, p["diagnostics_period"]), self._publish_diagnostics)
        where = "a 6 x 5 x 3 m room" if config.room == "room" else "free field"
        self.get_logger().info(
            f"sim_robot: {config.receiver} in {where}, talker ({config.talker.kind}) at "
            f"{math.degrees(self.robot.source_bearing):.1f} deg, "
            f"{self.robot.renderer.source_distance_m:.2f} m; responses ready in "
            f"{self._build_s:.1f} s; audio -> {self._audio_pub.topic_name}, images -> "
            f"{self._image_pub.topic_name}, odom -> {self._odom_pub.topic_name}, commands <- "
            f"{self._cmd_sub.topic_name}"
            + ("; waiting for subscribers" if self._wait_for_peers else "")
        )

    # ------------------------------------------------------------------ clock
    def _now_ns(self) -> int:
        return int(self.get_clock().now().nanoseconds)

    def _start_clock(self) -> None:
        self._start_ns = self._now_ns()

    def _sim_time(self, now_ns: int) -> float:
        assert self._start_ns is not None
        return (now_ns - self._start_ns) / 1e9

    def _stamp(self, t: float) -> int:
        assert self._start_ns is not None
        return self._start_ns + int(round(t * 1e9))

    def _peers_ready(self) -> bool:
        return (
            self._audio_pub.get_subscription_count() > 0 and self._cmd_sub.get_publisher_count() > 0
        )

    # ------------------------------------------------------------------ commands (executor)
    def _on_cmd_vel(self, msg: Twist) -> None:
        if self._start_ns is None:
            return
        linear = (msg.linear.x, msg.linear.y, msg.linear.z)
        if any(v != 0.0 for v in linear):
            self._linear_ignored += 1
        with self._lock:
            result = self.robot.command(float(msg.angular.z), self._sim_time(self._now_ns()))
        if result.problem:
            self._last_problem = result.problem

    # ------------------------------------------------------------------ simulation thread
    def _run(self) -> None:
        hop = self.robot.hop_s
        while not self._stop.is_set():
            if self._start_ns is None:
                if self._peers_ready():
                    self._start_clock()
                    self.get_logger().info("audio and cmd_vel connected: simulation started")
                else:
                    time.sleep(0.05)
                continue
            now = self._sim_time(self._now_ns())
            with self._lock:
                out = self.robot.advance(now)
            try:
                self._publish(out)
            except Exception:
                # Ctrl-C shuts the context down before destroy_node stops this thread.
                if not self.context.ok():
                    return
                raise
            done = self._sim_time(self._now_ns())
            self._lag_s = max(0.0, done - self.robot.t)
            self._stop.wait(max(0.0, (math.floor(done / hop) + 1) * hop - done))

    def _publish(self, out: SensorOutput) -> None:
        for chunk in out.audio:
            stamp = self._stamp(chunk.stamp_s)
            self._audio_pub.publish(
                conv.make_audio_msg(chunk.samples, stamp, SAMPLE_FORMAT, self._mic_frame)
            )
            self._truth_direction_pub.publish(
                conv.sound_direction_msg(chunk.source_azimuth, 0.0, stamp, self._mic_frame)
            )
            self._published["audio"] += 1
        for frame in out.frames:
            stamp = self._stamp(frame.stamp_s)
            self._image_pub.publish(conv.rgb_to_image(frame.image, stamp, self._camera_frame))
            self._camera_info_pub.publish(
                camera_info_msg(self._calibration, stamp, self._camera_frame)
            )
            self._truth_yaw_pub.publish(
                conv.camera_yaw_msg(
                    frame.yaw, 0.0, frame.yaw_rate, 0.0, stamp, self._odom_frame, "camera_link"
                )
            )
            self._published["images"] += 1
        for pose in out.poses:
            stamp = self._stamp(pose.stamp_s)
            self._odom_pub.publish(
                odometry_msg(pose.yaw, pose.yaw_rate, stamp, self._odom_frame, self._base_frame)
            )
            self._published["odom"] += 1
            if pose.stamp_s - self._last_source_truth >= SOURCE_TRUTH_PERIOD_S:
                self._last_source_truth = pose.stamp_s
                self._truth_source_pub.publish(self._source_truth(stamp))

    def _source_truth(self, stamp_ns: int) -> PoseStamped:
        bearing = self.robot.source_bearing
        distance = self.robot.renderer.source_distance_m
        msg = PoseStamped()
        msg.header.stamp = conv.ns_to_stamp(stamp_ns)
        msg.header.frame_id = self._odom_frame
        msg.pose.position.x = distance * math.cos(bearing)
        msg.pose.position.y = distance * math.sin(bearing)
        o = msg.pose.orientation
        o.x, o.y, o.z, o.w = yaw_quaternion(bearing)
        return msg

    # ------------------------------------------------------------------ diagnostics
    def _status(self) -> tuple[EventLevel, str]:
        if self._start_ns is None:
            return EventLevel.OK, "waiting for the audio and cmd_vel topics to connect"
        if self.robot.skipped_s > 0 and self._lag_s > 0.2:
            return EventLevel.WARN, (
                f"rendering is {self._lag_s:.2f} s behind real time and skipped "
                f"{self.robot.skipped_s:.1f} s so far: the machine is too busy; lower "
                "sample_rate, fps or the image size"
            )
        if self._cmd_sub.get_publisher_count() == 0:
            return EventLevel.OK, "simulating; nothing publishes cmd_vel, the robot stands still"
        return EventLevel.OK, "simulating"

    def _publish_diagnostics(self) -> None:
        base = self.robot.base
        c = self.robot.config
        level, message = self._status()
        values = {
            "node": self.get_fully_qualified_name(),
            "receiver": c.receiver,
            "room": c.room if c.room == "anechoic" else f"room rt60 {c.rt60_s:g} s",
            "talker_bearing_deg": f"{math.degrees(self.robot.source_bearing):.2f}",
            "sim_time_s": f"{base.t:.2f}",
            "yaw_deg": f"{math.degrees(base.heading):.2f}",
            "yaw_rate_rad_s": f"{base.yaw_rate:.3f}",
            "render_lag_s": f"{self._lag_s:.3f}",
            "skipped_s": f"{self.robot.skipped_s:.2f}",
            "clipped_samples": str(self.robot.renderer.clipped_samples),
            "commands": str(base.commands),
            "commands_rejected": str(base.rejected),
            "commands_clipped": str(base.saturated),
            "command_timeouts": str(base.timeouts),
            "linear_velocity_ignored": str(self._linear_ignored),
            "last_command_problem": self._last_problem,
            "audio_messages": str(self._published["audio"]),
            "images": str(self._published["images"]),
            "odom_messages": str(self._published["odom"]),
            "build_s": f"{self._build_s:.2f}",
        }
        if base.rejected or self._linear_ignored:
            level = max(level, EventLevel.WARN)
            if message.startswith("simulating"):
                message = (
                    "cmd_vel had unusable parts: non-finite angular.z is ignored, linear "
                    "velocity too (the robot turns in place)"
                )
        report = StatusReport("simulation", level, message, values)
        self._diag_pub.publish(
            to_diagnostic_array([report], self._now_ns(), self.get_name(), hardware_id="sim_robot")
        )

    def destroy_node(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2.0)
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``sim_robot``: simulate until Ctrl-C or shutdown; exit 1 on bad
    parameters."""
    return run_node(SimRobotNode, SIM_ROBOT_NODE.name, args)


if __name__ == "__main__":
    sys.exit(main())
