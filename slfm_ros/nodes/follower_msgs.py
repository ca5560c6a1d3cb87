"""Messages of sound_follower: slfm_node's track list in, Twist and the goal pose out.

``~/sound_tracks`` of slfm_node is a diagnostic_msgs/DiagnosticArray stamped with the window
end, one DiagnosticStatus per track (the primary one first, ``primary: true``) whose values
hold ``state``, ``body_bearing_rad``, ``world_bearing_rad``, ``bearing_variance_rad2``,
``front_probability`` and ``heard_age_s``; an empty array means no track.
"""

from __future__ import annotations

import math
from typing import Any

from geometry_msgs.msg import PoseStamped, Twist

from slfm_ros.core.conventions import yaw_from_quaternion, yaw_quaternion
from slfm_ros.core.follow.controller import TrackObservation
from slfm_ros.core.follow.goal import GoalPose
from slfm_ros.nodes.msg_conversions import NS_PER_S, ns_to_stamp, stamp_to_ns

TRACK_KEYS = (
    "state",
    "body_bearing_rad",
    "world_bearing_rad",
    "bearing_variance_rad2",
    "front_probability",
    "heard_age_s",
)


def primary_track(msg: Any) -> tuple[TrackObservation | None, str]:
    """(the primary track or None, "" or why the message could not be read)."""
    statuses = list(msg.status)
    if not statuses:
        return None, ""
    chosen = statuses[0]
    for status in statuses:
        values = {kv.key: kv.value for kv in status.values}
        if values.get("primary") == "true":
            chosen = status
            break
    values = {kv.key: kv.value for kv in chosen.values}
    missing = [k for k in TRACK_KEYS if k not in values]
    if missing:
        return None, f"track status {chosen.name!r} lacks {missing}"
    try:
        numbers = {k: float(values[k]) for k in TRACK_KEYS if k != "state"}
    except ValueError as err:
        return None, f"track status {chosen.name!r} holds a value that is not a number: {err}"
    track = TrackObservation(
        stamp_s=stamp_to_ns(msg.header.stamp) / NS_PER_S,
        state=values["state"],
        body_bearing=numbers["body_bearing_rad"],
        world_bearing=numbers["world_bearing_rad"],
        variance=numbers["bearing_variance_rad2"],
        front_probability=numbers["front_probability"],
        heard_age_s=numbers["heard_age_s"],
    )
    return track, ""


def odometry_pose(msg: Any) -> tuple[float, float, float, float]:
    """(stamp s, yaw rad, x m, y m) of a nav_msgs/Odometry; yaw is NaN for a quaternion that
    is not a rotation."""
    o = msg.pose.pose.orientation
    q = (float(o.x), float(o.y), float(o.z), float(o.w))
    norm = sum(v * v for v in q)
    ok = all(math.isfinite(v) for v in q) and abs(norm - 1.0) < 0.1
    yaw = yaw_from_quaternion(*q) if ok else math.nan
    p = msg.pose.pose.position
    return stamp_to_ns(msg.header.stamp) / NS_PER_S, yaw, float(p.x), float(p.y)


def twist_msg(angular_z: float) -> Twist:
    msg = Twist()
    msg.angular.z = float(angular_z)
    return msg


def goal_pose_msg(goal: GoalPose, stamp_ns: int, frame_id: str) -> PoseStamped:
    msg = PoseStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.pose.position.x, msg.pose.position.y = goal.x, goal.y
    o = msg.pose.orientation
    o.x, o.y, o.z, o.w = yaw_quaternion(goal.yaw)
    return msg
