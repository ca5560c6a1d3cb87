"""ROS messages of the sound tracker's inputs and outputs (conversions only).

Inputs:  nav_msgs/Odometry and sensor_msgs/Imu -> stamp, yaw (and x, y).
Outputs:
    ~/sound_source   PoseWithCovarianceStamped in the odom frame: the primary track's world
                     bearing as a yaw quaternion, the position ``range_m`` from the robot
                     toward it, covariance[35] = bearing variance, x/y = the tip's covariance.
    ~/sound_tracks   DiagnosticArray, one status per track (state, bearings, variance,
                     front/back probability) every window; an empty one when there is none.
    ~/sound_markers  visualization_msgs/MarkerArray: an arrow per track (and a faint one for
                     the other hypothesis of an ambiguous track); DELETE for lost tracks.
                     Only where the visualization_msgs package is installed.
"""

from __future__ import annotations

import math
from typing import Any

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue
from geometry_msgs.msg import PoseWithCovarianceStamped

from slfm_ros.core.conventions import yaw_from_quaternion, yaw_quaternion
from slfm_ros.core.tracking.bearing_tracker import TrackReport
from slfm_ros.core.tracking.sound_tracking import TrackingResult
from slfm_ros.nodes.msg_conversions import FIXED_VARIANCE, ns_to_stamp, stamp_to_ns

TRACKS_STATUS_PREFIX = "sound track "
# DiagnosticStatus levels of the track states (STALE = 3 for a lost track).
STATE_LEVELS = {"resolved": 0, "ambiguous": 1, "tentative": 1, "lost": 3}
MARKER_NS = "sound_tracks"
MIRROR_MARKER_NS = "sound_tracks_mirror"
# RGBA of the arrows per state.
STATE_COLOURS = {
    "resolved": (0.1, 0.8, 0.2, 1.0),
    "ambiguous": (1.0, 0.8, 0.0, 1.0),
    "tentative": (0.6, 0.6, 0.6, 0.6),
}
MARKER_LIFETIME_S = 2.0


# --- inputs ----------------------------------------------------------------------------------


def odometry_fields(msg: Any) -> tuple[int, float, float, float]:
    """(stamp ns, yaw rad, x m, y m) of a nav_msgs/Odometry."""
    o = msg.pose.pose.orientation
    p = msg.pose.pose.position
    yaw = _yaw_or_nan(o)
    return stamp_to_ns(msg.header.stamp), yaw, float(p.x), float(p.y)


def imu_fields(msg: Any) -> tuple[int, float | None, float]:
    """(stamp ns, orientation yaw or None, yaw rate rad/s) of a sensor_msgs/Imu. The
    orientation is absent when orientation_covariance[0] is -1 (REP-145) or the quaternion is
    zero."""
    o = msg.orientation
    has_orientation = float(msg.orientation_covariance[0]) != -1.0 and (
        o.x * o.x + o.y * o.y + o.z * o.z + o.w * o.w > 0.25
    )
    yaw = _yaw_or_nan(o) if has_orientation else None
    return stamp_to_ns(msg.header.stamp), yaw, float(msg.angular_velocity.z)


def _yaw_or_nan(o: Any) -> float:
    values = (float(o.x), float(o.y), float(o.z), float(o.w))
    if not all(math.isfinite(v) for v in values) or sum(v * v for v in values) < 0.25:
        return float("nan")
    return float(yaw_from_quaternion(*values))


# --- outputs ---------------------------------------------------------------------------------


def _tip(position: tuple[float, float], bearing: float, range_m: float) -> tuple[float, float]:
    return position[0] + range_m * math.cos(bearing), position[1] + range_m * math.sin(bearing)


def sound_source_msg(
    track: TrackReport,
    position: tuple[float, float],
    range_m: float,
    stamp_ns: int,
    frame_id: str,
) -> PoseWithCovarianceStamped:
    """~/sound_source of ``track`` (see module doc); ``position`` = the robot's (x, y)."""
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    x, y = _tip(position, track.world_bearing, range_m)
    msg.pose.pose.position.x, msg.pose.pose.position.y = x, y
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = yaw_quaternion(track.world_bearing)
    # Covariance of the tip over the hypothesis mixture: each hypothesis spreads along its
    # tangent, and hypotheses apart from the published one add their offset.
    cxx = cxy = cyy = 0.0
    for bearing, weight, own in track.hypotheses:
        hx, hy = _tip(position, bearing, range_m)
        dx, dy = hx - x, hy - y
        tx, ty = -math.sin(bearing), math.cos(bearing)
        cxx += weight * (own * range_m**2 * tx * tx + dx * dx)
        cxy += weight * (own * range_m**2 * tx * ty + dx * dy)
        cyy += weight * (own * range_m**2 * ty * ty + dy * dy)
    cov = [0.0] * 36
    cov[0], cov[1], cov[6], cov[7] = cxx + FIXED_VARIANCE, cxy, cxy, cyy + FIXED_VARIANCE
    cov[14] = cov[21] = cov[28] = FIXED_VARIANCE
    cov[35] = float(track.variance)
    msg.pose.covariance = cov
    return msg


def tracks_msg(result: TrackingResult, frame_id: str) -> DiagnosticArray:
    """~/sound_tracks for one window (see module doc)."""
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(result.stamp_ns)
    msg.header.frame_id = frame_id
    for t in result.tracks:
        status = DiagnosticStatus()
        status.level = bytes([STATE_LEVELS[t.state]])
        status.name = f"{TRACKS_STATUS_PREFIX}{t.track_id}"
        status.message = t.state
        status.hardware_id = frame_id
        values = {
            "id": str(t.track_id),
            "state": t.state,
            "primary": "true" if t.primary else "false",
            "world_bearing_rad": f"{t.world_bearing:.6f}",
            "body_bearing_rad": f"{t.body_bearing:.6f}",
            "bearing_variance_rad2": f"{t.variance:.6g}",
            "front_probability": f"{t.front_probability:.6f}",
            "heard_age_s": f"{t.heard_age_s:.3f}",
            "rotation": result.rotation.state,
            "world_bearing_deg": f"{math.degrees(t.world_bearing):.2f}",
            "body_bearing_deg": f"{math.degrees(t.body_bearing):.2f}",
            "bearing_std_deg": f"{math.degrees(math.sqrt(max(t.variance, 0.0))):.2f}",
        }
        status.values = [KeyValue(key=k, value=v) for k, v in values.items()]
        msg.status.append(status)
    return msg


def markers_available() -> bool:
    """Whether visualization_msgs can be imported here."""
    try:
        import visualization_msgs.msg  # noqa: F401
    except ImportError:
        return False
    return True


def markers_msg(
    result: TrackingResult, position: tuple[float, float], range_m: float, frame_id: str
) -> Any:
    """~/sound_markers for one window (see module doc). Needs visualization_msgs."""
    from builtin_interfaces.msg import Duration
    from geometry_msgs.msg import Point
    from visualization_msgs.msg import Marker, MarkerArray

    out = MarkerArray()
    stamp = ns_to_stamp(result.stamp_ns)
    lifetime = Duration(sec=int(MARKER_LIFETIME_S), nanosec=0)

    def arrow(ns: str, track_id: int, bearing: float, rgba: tuple[float, ...]) -> Any:
        m = Marker()
        m.header.stamp, m.header.frame_id = stamp, frame_id
        m.ns, m.id = ns, track_id
        m.type, m.action = Marker.ARROW, Marker.ADD
        tip = _tip(position, bearing, range_m)
        m.points = [
            Point(x=float(position[0]), y=float(position[1]), z=0.0),
            Point(x=float(tip[0]), y=float(tip[1]), z=0.0),
        ]
        m.pose.orientation.w = 1.0
        m.scale.x, m.scale.y, m.scale.z = 0.04 * range_m, 0.1 * range_m, 0.15 * range_m
        m.color.r, m.color.g, m.color.b, m.color.a = (float(c) for c in rgba)
        m.lifetime = lifetime
        return m

    for t in result.tracks:
        if t.state == "lost":
            for ns in (MARKER_NS, MIRROR_MARKER_NS):
                gone = Marker()
                gone.header.stamp, gone.header.frame_id = stamp, frame_id
                gone.ns, gone.id, gone.action = ns, t.track_id, Marker.DELETE
                out.markers.append(gone)
            continue
        out.markers.append(arrow(MARKER_NS, t.track_id, t.world_bearing, STATE_COLOURS[t.state]))
        others = t.hypotheses[1:]
        if others and t.state != "resolved":
            bearing, weight, _ = others[0]
            r, g, b, _ = STATE_COLOURS[t.state]
            out.markers.append(
                arrow(MIRROR_MARKER_NS, t.track_id, bearing, (r, g, b, 0.2 + 0.6 * weight))
            )
        else:
            gone = Marker()
            gone.header.stamp, gone.header.frame_id = stamp, frame_id
            gone.ns, gone.id, gone.action = MIRROR_MARKER_NS, t.track_id, Marker.DELETE
            out.markers.append(gone)
    return out
