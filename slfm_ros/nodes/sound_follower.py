"""sound_follower: turns the robot to face the sound source slfm_node tracks.

Subscribes
    <track_topic>   diagnostic_msgs/DiagnosticArray, slfm_node's ~/sound_tracks (reliable)
    <odom_topic>    nav_msgs/Odometry (best effort: accepts reliable publishers too)
Publishes
    <cmd_vel_topic> geometry_msgs/Twist, angular.z only, every control tick while the robot is
                    to turn, then a few zero commands when it stops, then nothing (so a
                    teleoperation or navigation node may use cmd_vel while nothing is heard)
    ~/goal_pose     geometry_msgs/PoseStamped toward a resolved source (publish_goal)
    /diagnostics    the follower's mode and why, the heading error, the first committed turn

The control law is ``slfm_ros.core.follow.controller`` (see there for the modes): it stops on
a stale, lost or tentative track and never commits to an ambiguous one, only probes toward the
side it is heard on. With nobody subscribed to cmd_vel the follower keeps running and says so
on /diagnostics (WARN).
"""

from __future__ import annotations

import math
import sys
from typing import cast

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseStamped, Twist
from nav_msgs.msg import Odometry
from rclpy.node import Node
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy

from slfm_ros.core.events import EventLevel
from slfm_ros.core.follow.controller import (
    FollowCommand,
    FollowerController,
    Mode,
    TrackObservation,
)
from slfm_ros.core.follow.goal import goal_toward
from slfm_ros.core.follow.heading import YawHistory
from slfm_ros.nodes.diagnostics import StatusReport, to_diagnostic_array
from slfm_ros.nodes.follower_msgs import goal_pose_msg, odometry_pose, primary_track, twist_msg
from slfm_ros.nodes.follower_params import SOUND_FOLLOWER, follower_config
from slfm_ros.nodes.msg_conversions import NS_PER_S
from slfm_ros.nodes.node_main import run_node
from slfm_ros.nodes.ros_params import declare_node_params

ODOM_QOS = QoSProfile(
    history=HistoryPolicy.KEEP_LAST, depth=50, reliability=ReliabilityPolicy.BEST_EFFORT
)
# Zero commands sent after a turn ends, so a robot that missed one still stops.
STOP_REPEATS = 5


class SoundFollowerNode(Node):
    """See module doc."""

    def __init__(self) -> None:
        super().__init__(SOUND_FOLLOWER.name)
        p = declare_node_params(self, SOUND_FOLLOWER)
        self.controller = FollowerController(follower_config(p))
        self.odom = YawHistory(span_s=5.0)
        self._position: tuple[float, float] | None = None
        self._odom_frame = ""
        self._track: TrackObservation | None = None
        self._track_problem = ""
        self._odom_problem = ""
        self._last: FollowCommand | None = None
        self._zeros_left = 0
        self._published = 0
        self._no_listener_ticks = 0
        self._publish_goal = bool(p["publish_goal"])
        self._goal_distance = float(cast(float, p["goal_distance_m"]))
        self._goal_period = float(cast(float, p["goal_period_s"]))
        self._last_goal_t = -math.inf
        self._goals = 0
        self._cmd_pub = self.create_publisher(Twist, str(p["cmd_vel_topic"]), 10)
        self._goal_pub = self.create_publisher(PoseStamped, "~/goal_pose", 10)
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._track_sub = self.create_subscription(
            DiagnosticArray, str(p["track_topic"]), self._on_tracks, 10
        )
        self._odom_sub = self.create_subscription(
            Odometry, str(p["odom_topic"]), self._on_odom, ODOM_QOS
        )
        self.create_timer(1.0 / float(cast(float, p["control_rate_hz"])), self._tick)
        self.create_timer(float(cast(float, p["diagnostics_period"])), self._publish_diagnostics)
        self._warned_no_listener = False
        self.get_logger().info(
            f"sound_follower: tracks <- {self._track_sub.topic_name}, odom <- "
            f"{self._odom_sub.topic_name}, commands -> {self._cmd_pub.topic_name}"
            + (f", goals -> {self._goal_pub.topic_name}" if self._publish_goal else "")
        )

    def _now_s(self) -> float:
        return int(self.get_clock().now().nanoseconds) / NS_PER_S

    # ------------------------------------------------------------------ inputs
    def _on_tracks(self, msg: DiagnosticArray) -> None:
        track, problem = primary_track(msg)
        self._track = track
        if problem:
            self._track_problem = problem

    def _on_odom(self, msg: Odometry) -> None:
        stamp, yaw, x, y = odometry_pose(msg)
        problem = self.odom.add(stamp, yaw)
        if problem:
            self._odom_problem = problem
        elif math.isfinite(x) and math.isfinite(y):
            self._position = (x, y)
            self._odom_frame = msg.header.frame_id

    # ------------------------------------------------------------------ control
    def _tick(self) -> None:
        now = self._now_s()
        cmd = self.controller.update(now, self._track, self.odom)
        if self._last is None or cmd.mode is not self._last.mode:
            error = (
                "" if cmd.error is None else f", heading error {math.degrees(cmd.error):.1f} deg"
            )
            self.get_logger().info(f"{cmd.mode.value}: {cmd.reason}{error}")
        self._last = cmd
        if cmd.angular_z != 0.0:
            self._zeros_left = STOP_REPEATS
            self._send(cmd.angular_z)
        elif self._zeros_left > 0:
            self._zeros_left -= 1
            self._send(0.0)
        if self._publish_goal and cmd.mode in (Mode.TURNING, Mode.FACING):
            self._maybe_goal(now)

    def _send(self, angular_z: float) -> None:
        if self._cmd_pub.get_subscription_count() == 0:
            self._no_listener_ticks += 1
            if not self._warned_no_listener:
                self._warned_no_listener = True
                self.get_logger().warning(
                    f"nobody subscribes to {self._cmd_pub.topic_name}: the robot will not move "
                    "(check the cmd_vel_topic parameter or remapping)"
                )
        self._cmd_pub.publish(twist_msg(angular_z))
        self._published += 1

    def _maybe_goal(self, now: float) -> None:
        track = self._track
        if track is None or now - self._last_goal_t < self._goal_period:
            return
        if self._position is None:
            self._track_problem = "goal_pose needs odometry for the robot position; none yet"
            return
        self._last_goal_t = now
        goal = goal_toward(self._position, track.world_bearing, self._goal_distance)
        frame = self._odom_frame or "odom"
        self._goal_pub.publish(goal_pose_msg(goal, int(now * NS_PER_S), frame))
        self._goals += 1

    # ------------------------------------------------------------------ diagnostics
    def _publish_diagnostics(self) -> None:
        cmd = self._last
        c = self.controller
        level, message = EventLevel.OK, "starting"
        values: dict[str, str] = {}
        if cmd is not None:
            message = f"{cmd.mode.value}: {cmd.reason}"
            values = {
                "mode": cmd.mode.value,
                "angular_z": f"{cmd.angular_z:.3f}",
                "heading_error_deg": "" if cmd.error is None else f"{math.degrees(cmd.error):.2f}",
            }
            if cmd.mode is Mode.STALE:
                level = EventLevel.WARN
        track = self._track
        commit = c.first_commit
        listeners = self._cmd_pub.get_subscription_count()
        values.update(
            {
                "node": self.get_fully_qualified_name(),
                "track_state": "none" if track is None else track.state,
                "front_probability": "" if track is None else f"{track.front_probability:.3f}",
                "track_age_s": "" if track is None else f"{self._now_s() - track.stamp_s:.3f}",
                "heading_source": "odom"
                if self.odom.latest_time is not None
                and self._now_s() - self.odom.latest_time <= c.config.odom_timeout_s
                else "own commands",
                "probes": str(c.probes),
                "first_probe_direction": {1: "left", -1: "right", 0: ""}[c.first_probe_direction],
                "first_commit_direction": ""
                if commit is None
                else ("left" if commit.direction > 0 else "right"),
                "first_commit_error_deg": ""
                if commit is None
                else f"{math.degrees(commit.error):.2f}",
                "first_commit_stamp_s": "" if commit is None else f"{commit.t:.3f}",
                "cmd_vel_subscribers": str(listeners),
                "commands_published": str(self._published),
                "commands_without_listener": str(self._no_listener_ticks),
                "goals_published": str(self._goals),
                "odom_history_restarts": str(self.odom.restarts),
                "last_track_problem": self._track_problem,
                "last_odom_problem": self._odom_problem,
            }
        )
        if listeners == 0:
            level = EventLevel.WARN
            message = (
                f"nobody subscribes to {self._cmd_pub.topic_name}: the robot will not move "
                f"(check the remapping); {message}"
            )
        report = StatusReport("control", level, message, values)
        now_ns = int(self.get_clock().now().nanoseconds)
        self._diag_pub.publish(
            to_diagnostic_array([report], now_ns, self.get_name(), hardware_id="sound_follower")
        )

    def destroy_node(self) -> None:
        # Leave the robot standing, not turning at the last commanded rate.
        if self.controller.rate != 0.0:
            try:
                self._cmd_pub.publish(twist_msg(0.0))
            except Exception as err:  # the context may already be shut down
                self.get_logger().debug(f"final stop command not sent: {err}")
        super().destroy_node()


def main(args: list[str] | None = None) -> int:
    """Console script ``sound_follower``: follow until Ctrl-C or shutdown; exit 1 on bad
    parameters."""
    return run_node(SoundFollowerNode, SOUND_FOLLOWER.name, args)


if __name__ == "__main__":
    sys.exit(main())
