"""sound_follower as a separate process over DDS, against tracks and odometry of a test base."""

from __future__ import annotations

import math
import time

import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue  # noqa: E402
from geometry_msgs.msg import PoseStamped, Twist  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from node_process import ListenerNode, start_node, stop  # noqa: E402

from slfm_ros.core.conventions import wrap_angle, yaw_quaternion  # noqa: E402
from slfm_ros.nodes.msg_conversions import ns_to_stamp  # noqa: E402


def tracks_msg(stamp_ns: int, state: str, body: float, world: float) -> DiagnosticArray:
    """~/sound_tracks as slfm_node publishes it: one primary track."""
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    status = DiagnosticStatus(name="sound track 1", message=state, hardware_id="odom")
    values = {
        "id": "1",
        "state": state,
        "primary": "true",
        "world_bearing_rad": f"{world:.6f}",
        "body_bearing_rad": f"{body:.6f}",
        "bearing_variance_rad2": "0.001",
        "front_probability": "0.5" if state == "ambiguous" else "1.0",
        "heard_age_s": "0.05",
    }
    status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
    msg.status.append(status)
    return msg


class BaseAndTracker(ListenerNode):
    """A base that turns as cmd_vel says, publishes its odometry, and a tracker that reports
    a source at a fixed world bearing."""

    def __init__(self, ns: str, listen: bool = True) -> None:
        super().__init__("follower_test_base")
        self.yaw = 0.0
        self.rate = 0.0
        self.commands: list[tuple[float, float]] = []
        self.goals: list[PoseStamped] = []
        self.diagnostics: list[DiagnosticArray] = []
        n = self.node
        if listen:
            n.create_subscription(Twist, f"{ns}/cmd_vel", self._on_cmd, 10)
        n.create_subscription(PoseStamped, f"{ns}/sound_follower/goal_pose", self.goals.append, 10)
        n.create_subscription(DiagnosticArray, "/diagnostics", self.diagnostics.append, 50)
        self.odom_pub = n.create_publisher(Odometry, f"{ns}/odom", 10)
        self.tracks_pub = n.create_publisher(DiagnosticArray, f"{ns}/slfm_node/sound_tracks", 10)
        self._last = time.monotonic()

    def _on_cmd(self, msg: Twist) -> None:
        self.rate = float(msg.angular.z)
        self.commands.append((time.monotonic(), self.rate))

    def now_ns(self) -> int:
        return int(self.node.get_clock().now().nanoseconds)

    def run(self, seconds: float, source: float | None, state: str = "resolved") -> None:
        """Turn, publish odometry and (unless ``source`` is None) a track every 50 ms."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            now = time.monotonic()
            self.yaw += self.rate * (now - self._last)
            self._last = now
            stamp = self.now_ns()
            odom = Odometry()
            odom.header.stamp = ns_to_stamp(stamp)
            odom.header.frame_id = "odom"
            o = odom.pose.pose.orientation
            o.x, o.y, o.z, o.w = yaw_quaternion(self.yaw)
            self.odom_pub.publish(odom)
            if source is not None:
                body = float(wrap_angle(source - self.yaw))
                self.tracks_pub.publish(tracks_msg(stamp, state, body, source))
            self.spin_until(lambda: False, 0.05)

    def status(self) -> dict[str, str]:
        for array in reversed(self.diagnostics):
            for s in array.status:
                if s.name == "sound_follower: control":
                    return {kv.key: kv.value for kv in s.values} | {"_message": s.message}
        return {}


def test_follower_faces_a_resolved_source_and_stops_when_the_track_goes_stale(ros_env) -> None:
    ns = "/follower_test"
    base = BaseAndTracker(ns)
    node = start_node(
        "slfm_ros.nodes.sound_follower",
        ros_env,
        ns,
        "max_angular_speed:=1.0",
        "publish_goal:=true",
        "goal_distance_m:=2.0",
    )
    try:
        source = math.radians(100.0)
        assert base.spin_until(lambda: base.node.count_publishers(f"{ns}/cmd_vel") > 0, 30.0)
        base.run(6.0, source)
        faced = float(wrap_angle(source - base.yaw))
        peak = max(abs(r) for _, r in base.commands)
        turning = base.status()
        base.run(1.5, None)  # the tracker goes quiet: stale
        after = len(base.commands)
        base.run(1.5, None)
        stale = base.status()
    finally:
        code, out = stop(node)
        base.close()
    assert code == 0, out
    assert abs(faced) < math.radians(8.0), math.degrees(faced)
    assert 0.9 < peak <= 1.0 + 1e-9
    assert turning["first_commit_direction"] == "left" and turning["mode"] == "facing"
    assert base.rate == 0.0 and len(base.commands) == after  # stopped, then quiet
    assert stale["mode"] == "stale" and "old" in stale["_message"]
    goal = base.goals[-1]
    assert goal.header.frame_id == "odom"
    assert (goal.pose.position.x, goal.pose.position.y) == pytest.approx(
        (2 * math.cos(source), 2 * math.sin(source)), abs=1e-6
    )


def test_an_ambiguous_track_only_gets_a_bounded_probe(ros_env) -> None:
    ns = "/follower_probe_test"
    base = BaseAndTracker(ns)
    node = start_node(
        "slfm_ros.nodes.sound_follower",
        ros_env,
        ns,
        "probe_angle_deg:=20.0",
        "max_probes:=1",
    )
    try:
        assert base.spin_until(lambda: base.node.count_publishers(f"{ns}/cmd_vel") > 0, 30.0)
        base.run(4.0, math.radians(-150.0), state="ambiguous")
        status = base.status()
    finally:
        code, out = stop(node)
        base.close()
    assert code == 0, out
    # Toward the right, where a source at -150 (or its mirror at -30) is heard, about 20 deg.
    assert math.radians(-28.0) < base.yaw < math.radians(-12.0), math.degrees(base.yaw)
    assert all(r <= 0.0 for _, r in base.commands) and base.rate == 0.0
    assert status["first_probe_direction"] == "right" and status["first_commit_direction"] == ""


def test_nobody_listening_on_cmd_vel_is_a_warning_not_a_crash(ros_env) -> None:
    ns = "/follower_alone_test"
    base = BaseAndTracker(ns, listen=False)
    node = start_node("slfm_ros.nodes.sound_follower", ros_env, ns)
    try:
        assert base.spin_until(lambda: base.node.count_publishers(f"{ns}/cmd_vel") > 0, 30.0)
        base.run(2.5, math.radians(60.0))
        status = base.status()
        alive = node.poll() is None
    finally:
        code, out = stop(node)
        base.close()
    assert alive and code == 0, out
    assert "nobody subscribes" in status["_message"]
    assert int(status["commands_without_listener"]) > 0
    assert "nobody subscribes" in out
