"""Tracking messages: rotation inputs in, sources, track lists and markers out (real rclpy
messages through their CDR serialisation)."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Imu

from slfm_ros.bags.outputs import OutputLog
from slfm_ros.core.conventions import yaw_from_quaternion, yaw_quaternion
from slfm_ros.core.tracking.bearing_tracker import TrackerUpdate, TrackReport
from slfm_ros.core.tracking.rotation_source import RotationQuery
from slfm_ros.core.tracking.sound_tracking import TrackingResult
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes import track_msgs

NS = 1_000_000_000
RAD = math.radians


def report(hypotheses: tuple, state: str = "ambiguous", primary: bool = True) -> TrackReport:
    best = hypotheses[0][0]
    variance = sum(w * (v + (b - best) ** 2) for b, w, v in hypotheses)
    return TrackReport(
        track_id=7,
        state=state,
        primary=primary,
        world_bearing=best,
        body_bearing=best - RAD(10.0),
        variance=variance,
        front_probability=hypotheses[0][1],
        heard_age_s=0.2,
        hypotheses=hypotheses,
    )


def result(*tracks: TrackReport) -> TrackingResult:
    query = RotationQuery("odom", "ok", RAD(10.0), RAD(10.0), position=(1.0, 2.0))
    return TrackingResult(TrackerUpdate(5 * NS, tracks), query, ())


def roundtrip(msg, cls):
    return deserialize_message(serialize_message(msg), cls)


def test_odometry_and_imu_fields() -> None:
    odom = conv.camera_yaw_msg(RAD(30.0), 0.0, 0.0, 0.0, 3 * NS + 5, "odom", "base_link")
    odom.pose.pose.position.x, odom.pose.pose.position.y = 1.5, -2.0
    stamp, yaw, x, y = track_msgs.odometry_fields(odom)
    assert (stamp, x, y) == (3 * NS + 5, 1.5, -2.0) and yaw == pytest.approx(RAD(30.0))
    odom.pose.pose.orientation.w = 0.0
    odom.pose.pose.orientation.z = 0.0
    assert math.isnan(track_msgs.odometry_fields(odom)[1])  # a zero quaternion is no yaw
    imu = Imu()
    imu.header.stamp = conv.ns_to_stamp(NS)
    imu.angular_velocity.z = 0.4
    o = imu.orientation
    o.x, o.y, o.z, o.w = yaw_quaternion(RAD(-45.0))
    assert track_msgs.imu_fields(imu)[1] == pytest.approx(RAD(-45.0))
    imu.orientation_covariance[0] = -1.0  # REP-145: no orientation
    assert track_msgs.imu_fields(imu) == (NS, None, pytest.approx(0.4))


def test_sound_source_covariance_shows_what_is_still_ambiguous() -> None:
    ambiguous = report(((RAD(30.0), 0.5, RAD(3.0) ** 2), (RAD(150.0), 0.5, RAD(3.0) ** 2)))
    resolved = report(((RAD(150.0), 0.9999, RAD(3.0) ** 2), (RAD(30.0), 1e-4, 0.01)), "resolved")
    a = roundtrip(
        track_msgs.sound_source_msg(ambiguous, (1.0, 2.0), 2.0, 5 * NS, "odom"),
        PoseWithCovarianceStamped,
    )
    r = roundtrip(
        track_msgs.sound_source_msg(resolved, (1.0, 2.0), 2.0, 5 * NS, "odom"),
        PoseWithCovarianceStamped,
    )
    assert a.header.frame_id == "odom" and conv.stamp_to_ns(a.header.stamp) == 5 * NS
    o = r.pose.pose.orientation
    assert yaw_from_quaternion(o.x, o.y, o.z, o.w) == pytest.approx(RAD(150.0))
    p = r.pose.pose.position
    assert (p.x, p.y) == pytest.approx(
        (1.0 + 2.0 * math.cos(RAD(150.0)), 2.0 + 2.0 * math.sin(RAD(150.0)))
    )
    assert r.pose.covariance[35] < RAD(4.0) ** 2 < RAD(50.0) ** 2 < a.pose.covariance[35]
    # The tip's x/y spread: along the tangent when resolved; the two candidate tips (2 m away,
    # 120 deg apart) 3.5 m apart when ambiguous.
    assert a.pose.covariance[0] + a.pose.covariance[7] > 2.0
    assert r.pose.covariance[0] + r.pose.covariance[7] < 0.05


def test_track_lists_round_trip_into_the_bag_evaluation() -> None:
    first = report(((RAD(150.0), 0.995, 0.001), (RAD(30.0), 0.005, 0.001)), "resolved")
    lost = TrackReport(3, "lost", False, 0.2, 0.1, 0.5, 0.5, 7.0, ((0.2, 1.0, 0.5),))
    msg = roundtrip(track_msgs.tracks_msg(result(first, lost), "odom"), DiagnosticArray)
    assert [s.name for s in msg.status] == ["sound track 7", "sound track 3"]
    assert [s.level for s in msg.status] == [b"\x00", b"\x03"]
    log = OutputLog("offline")
    log.add_tracks(msg)
    t = log.tracks[0]
    assert (t.stamp_ns, t.track_id, t.state, t.primary) == (5 * NS, 7, "resolved", True)
    assert t.world_bearing == pytest.approx(RAD(150.0), abs=1e-6)
    assert t.front_probability == pytest.approx(0.995)
    assert log.tracks[1].state == "lost" and not log.notes
    values = {kv.key: kv.value for kv in msg.status[0].values}
    assert values["rotation"] == "ok" and values["world_bearing_deg"] == "150.00"


@pytest.mark.skipif(not track_msgs.markers_available(), reason="visualization_msgs not installed")
def test_markers_an_arrow_per_track_a_faint_mirror_and_deletes() -> None:
    from visualization_msgs.msg import Marker, MarkerArray

    ambiguous = report(((RAD(30.0), 0.6, 0.01), (RAD(150.0), 0.4, 0.01)))
    lost = TrackReport(3, "lost", False, 0.2, 0.1, 0.5, 0.5, 7.0, ((0.2, 1.0, 0.5),))
    msg = roundtrip(
        track_msgs.markers_msg(result(ambiguous, lost), (1.0, 2.0), 1.0, "odom"), MarkerArray
    )
    by = {(m.ns, m.id): m for m in msg.markers}
    main, mirror = by[("sound_tracks", 7)], by[("sound_tracks_mirror", 7)]
    assert main.type == Marker.ARROW and main.action == Marker.ADD
    assert (main.points[0].x, main.points[0].y) == (1.0, 2.0)
    tip = main.points[1]
    assert math.atan2(tip.y - 2.0, tip.x - 1.0) == pytest.approx(RAD(30.0))
    assert mirror.action == Marker.ADD and mirror.color.a < main.color.a
    assert by[("sound_tracks", 3)].action == Marker.DELETE
