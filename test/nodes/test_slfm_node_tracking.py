"""slfm_node's sound tracking over real DDS: front/back from /odom, and bad rotation input.

A test publisher streams, in real time, the ``behind`` bag scene (a talker at 150 deg, the
robot turning +-25 deg; free-field pair, 48 kHz S16LE, 20 ms chunks) and the robot's /odom at
50 Hz to a slfm_node process (classical estimators, no camera). The script then spoils the
odometry: its yaw jumps by 90 deg (an odometry reset), one message arrives 0.5 s late (a stamp
going back) and finally it stops. The tests check ~/sound_tracks, ~/sound_source,
~/sound_direction, ~/sound_markers and /diagnostics. A second node is pointed at an odometry
topic nobody publishes.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402

from slfm_ros.bags.scenarios import render_scene  # noqa: E402
from slfm_ros.core.conventions import angular_error, yaw_from_quaternion  # noqa: E402
from slfm_ros.nodes import msg_conversions as conv  # noqa: E402
from slfm_ros.nodes.track_msgs import markers_available  # noqa: E402

NS = 1_000_000_000
REPO = Path(__file__).resolve().parents[2]
CHUNK_S = 0.02
ODOM_HZ = 50.0
SOURCE = math.radians(150.0)
# Session script (seconds after the stream start).
JUMP_AT = 6.0  # odometry yaw + 90 deg from here on (an odometry reset)
JUMP = math.radians(90.0)
LATE_AT = 7.5  # one odometry message stamped 0.5 s in the past
ODOM_STOPS_AT = 8.0
SESSION_END = 10.5


@dataclass
class Recorder:
    tracks: list[DiagnosticArray] = field(default_factory=list)
    sources: list[PoseWithCovarianceStamped] = field(default_factory=list)
    directions: list[PoseWithCovarianceStamped] = field(default_factory=list)
    markers: list[Any] = field(default_factory=list)
    diagnostics: list[tuple[int, DiagnosticArray]] = field(default_factory=list)

    def tracking_status(self, since_ns: int = 0) -> list[dict[str, Any]]:
        """'slfm_node: sound tracking' statuses received since ``since_ns`` (wall ns)."""
        out = []
        for received, arr in list(self.diagnostics):
            for st in arr.status:
                if st.name == "slfm_node: sound tracking" and received >= since_ns:
                    values = {kv.key: kv.value for kv in st.values}
                    out.append({"level": st.level[0], "message": st.message, "values": values})
        return out


class Harness:
    """Publishers of audio and odometry, recorders of the node's outputs, spun on a thread."""

    def __init__(self, ns: str, odom_topic: str = "odom") -> None:
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("tracking_test_driver", context=self.context)
        self.rec = Recorder()
        base = f"{ns}/slfm_node"
        n = self.node
        n.create_subscription(DiagnosticArray, f"{base}/sound_tracks", self._tracks, 200)
        n.create_subscription(PoseWithCovarianceStamped, f"{base}/sound_source", self._source, 200)
        n.create_subscription(
            PoseWithCovarianceStamped, f"{base}/sound_direction", self._direction, 200
        )
        n.create_subscription(DiagnosticArray, "/diagnostics", self._diag, 100)
        if markers_available():
            from visualization_msgs.msg import MarkerArray

            n.create_subscription(MarkerArray, f"{base}/sound_markers", self._markers, 200)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        self.audio_pub = n.create_publisher(AudioDataStamped, f"{ns}/audio/audio_stamped", reliable)
        self.info_pub = n.create_publisher(AudioInfo, f"{ns}/audio/audio_info", latched)
        self.odom_pub = n.create_publisher(Odometry, f"{ns}/{odom_topic}", reliable)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(n)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                return

    def _tracks(self, msg: DiagnosticArray) -> None:
        self.rec.tracks.append(msg)

    def _source(self, msg: PoseWithCovarianceStamped) -> None:
        self.rec.sources.append(msg)

    def _direction(self, msg: PoseWithCovarianceStamped) -> None:
        self.rec.directions.append(msg)

    def _markers(self, msg: Any) -> None:
        self.rec.markers.append(msg)

    def _diag(self, msg: DiagnosticArray) -> None:
        self.rec.diagnostics.append((time.time_ns(), msg))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)


def start_slfm_node(env: dict[str, str], ns: str, log: Path, **params: str) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "slfm_ros.nodes.slfm_node", "--ros-args", "-r", f"__ns:={ns}"]
    cmd += ["--params-file", str(REPO / "config" / "slfm.yaml"), "-p", "estimator:=classic"]
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return subprocess.Popen(
        cmd, stdout=open(log, "w"), stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"}
    )


def stop(proc: subprocess.Popen) -> int | None:
    """Ctrl-C; the exit code (None: it had crashed before)."""
    alive = proc.poll() is None
    if alive:
        proc.send_signal(2)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode if alive else None


def odometry_msg(stamp_ns: int, yaw: float) -> Odometry:
    msg = conv.camera_yaw_msg(yaw, 1e-6, 0.0, 1e-6, stamp_ns, "odom", "base_link")
    return msg


def _stamp(msg: Any) -> int:
    return conv.stamp_to_ns(msg.header.stamp)


def _yaw(msg: Any) -> float:
    o = msg.pose.pose.orientation
    return yaw_from_quaternion(o.x, o.y, o.z, o.w)


def _track_values(arr: DiagnosticArray) -> list[dict[str, str]]:
    return [{kv.key: kv.value for kv in st.values} for st in arr.status]


def _primary(arr: DiagnosticArray) -> dict[str, str] | None:
    return next((v for v in _track_values(arr) if v["primary"] == "true"), None)


@dataclass
class Session:
    start_ns: int
    rec: Recorder
    yaw: Callable[[float], float]  # the robot's true yaw at t s after the start
    exit_code: int | None
    log: str

    def t(self, msg: Any) -> float:
        return (_stamp(msg) - self.start_ns) / NS


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    # The test session's own ROS domain (test/conftest.py), localhost only.
    env = dict(os.environ)
    scene = render_scene("behind", SESSION_END + 0.5, seed=2)
    ns = "/track_test"
    log = tmp_path_factory.mktemp("tracking") / "node.log"
    harness = Harness(ns)
    proc = start_slfm_node(env, ns, log)
    try:
        harness.wait_for(
            lambda: (
                harness.audio_pub.get_subscription_count() >= 1
                and harness.odom_pub.get_subscription_count() >= 1
                and harness.info_pub.get_subscription_count() >= 1
            ),
            60.0,
            "slfm_node to subscribe",
        )
        time.sleep(0.5)
        start_ns = time.time_ns() + NS // 2
        start_ns -= start_ns % (NS // 10)
        harness.info_pub.publish(conv.make_audio_info_msg(2, 48000, "S16LE"))
        actions: list[tuple[float, Callable[[], None]]] = []
        chunk = int(CHUNK_S * 48000)
        for i in range(0, int(SESSION_END * 48000) - chunk, chunk):
            t = i / 48000
            msg = conv.make_audio_msg(
                scene.audio[i : i + chunk], start_ns + int(t * NS), "S16LE", "mic_link"
            )
            actions.append((t + CHUNK_S, lambda m=msg: harness.audio_pub.publish(m)))
        for k in range(int(ODOM_STOPS_AT * ODOM_HZ)):
            t = k / ODOM_HZ
            yaw = float(scene.yaw(t)) + (JUMP if t >= JUMP_AT else 0.0)
            msg = odometry_msg(start_ns + int(t * NS), yaw)
            actions.append((t + 0.002, lambda m=msg: harness.odom_pub.publish(m)))
        late = odometry_msg(start_ns + int((LATE_AT - 0.5) * NS), 0.0)
        actions.append((LATE_AT + 0.001, lambda: harness.odom_pub.publish(late)))
        actions.sort(key=lambda a: a[0])
        t0 = time.monotonic() + (start_ns - time.time_ns()) / NS
        for offset, action in actions:
            delay = t0 + offset - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            action()
        time.sleep(2.5)  # the last windows and two diagnostics periods
        code = stop(proc)
        yield Session(start_ns, harness.rec, lambda t: float(scene.yaw(t)), code, log.read_text())
    finally:
        stop(proc)
        harness.close()


def test_the_node_decides_the_talker_is_behind_within_3_s_of_the_turn(session: Session) -> None:
    assert session.exit_code == 0, session.log[-3000:]
    resolved = [
        (session.t(a), p)
        for a in session.rec.tracks
        if (p := _primary(a)) is not None and p["state"] == "resolved"
    ]
    assert resolved, "no resolved track on ~/sound_tracks"
    decided_at = resolved[0][0]
    assert decided_at <= 3.0  # the robot turns from t = 0
    # Never on the wrong side while the odometry was good; behind, where the talker is.
    for t, p in resolved:
        if t < JUMP_AT:
            assert float(p["front_probability"]) < 0.05
            assert math.cos(float(p["body_bearing_rad"])) < 0
            assert p["rotation"] == "ok"
    # Every window gets a track list, stamped on the hop grid.
    stamps = [_stamp(a) for a in session.rec.tracks]
    assert len(stamps) >= 80 and all(s % (NS // 10) == 0 for s in stamps)


def test_sound_source_is_the_full_circle_bearing_in_the_odom_frame(session: Session) -> None:
    sources = [s for s in session.rec.sources if session.t(s) < JUMP_AT]
    assert sources and all(s.header.frame_id == "odom" for s in sources)
    before = [s for s in sources if session.t(s) < 1.3]
    after = [s for s in sources if 4.0 <= session.t(s) < JUMP_AT]
    assert after
    for s in after:
        assert math.degrees(angular_error(_yaw(s), SOURCE)) < 6.0
        # Unit range toward the bearing from the robot at the odom origin.
        p = s.pose.pose.position
        assert math.hypot(p.x, p.y) == pytest.approx(1.0, abs=1e-6)
        assert math.atan2(p.y, p.x) == pytest.approx(_yaw(s), abs=1e-6)
        assert s.pose.covariance[35] < math.radians(6.0) ** 2
    # While front and back were still open, the covariance said so.
    if before:
        assert before[0].pose.covariance[35] > math.radians(30.0) ** 2


def test_sound_direction_turns_from_folded_to_resolved(session: Session) -> None:
    dirs = [(session.t(d), _yaw(d)) for d in session.rec.directions]
    early = [az for t, az in dirs if t < 1.3]
    late = [(t, az) for t, az in dirs if 4.0 <= t < JUMP_AT]
    assert early and all(abs(az) <= math.pi / 2 + 1e-6 for az in early)  # folded until decided
    assert late
    for t, az in late:
        truth = SOURCE - session.yaw(t)
        assert math.degrees(angular_error(az, truth)) < 6.0
    assert all(d.header.frame_id == "mic_link" for d in session.rec.directions)


def test_an_odometry_jump_shifts_the_frame_without_a_wrong_decision(session: Session) -> None:
    after = [s for s in session.rec.sources if JUMP_AT + 0.7 <= session.t(s) < ODOM_STOPS_AT]
    assert after
    # The odom frame turned by +90 deg: the source's bearing in it moves by the same angle ...
    for s in after:
        assert math.degrees(angular_error(_yaw(s), SOURCE + JUMP)) < 8.0
    # ... while the robot-relative direction and the decision stay right.
    for a in session.rec.tracks:
        t = session.t(a)
        p = _primary(a)
        if JUMP_AT + 0.7 <= t < ODOM_STOPS_AT and p is not None:
            assert p["state"] == "resolved" and float(p["front_probability"]) < 0.05
            truth = SOURCE - session.yaw(t)
            assert math.degrees(angular_error(float(p["body_bearing_rad"]), truth)) < 8.0


def test_bad_odometry_is_reported_on_diagnostics_and_the_node_carries_on(
    session: Session,
) -> None:
    statuses = session.rec.tracking_status()
    assert statuses, "no 'sound tracking' status on /diagnostics"
    last = statuses[-1]["values"]
    assert int(last.get("events.rotation_jump", "0")) >= 1
    assert int(last.get("events.rotation_backwards", "0")) >= 1
    assert int(last.get("events.rotation_stale", "0")) >= 1
    assert statuses[-1]["level"] == 1 and "stopped" in statuses[-1]["message"]
    assert last["rotation_state"] == "stale" and last["rotation_source"] == "odom"
    assert any(s["values"].get("rotation_source") == "odom" and s["level"] == 0 for s in statuses)
    assert "rotation_jump" in session.log and "rotation_stale" in session.log
    # With the robot's yaw unknown, ~/sound_direction goes back to the window's folded estimate.
    late = [d for d in session.rec.directions if session.t(d) > ODOM_STOPS_AT + 1.5]
    assert late and all(abs(_yaw(d)) <= math.pi / 2 + 1e-6 for d in late)


def test_rviz_gets_an_arrow_per_track_or_is_told_why_not(session: Session) -> None:
    statuses = session.rec.tracking_status()
    note = statuses[-1]["values"]["markers"]
    if not markers_available():
        assert "visualization_msgs" in note and not session.rec.markers
        pytest.skip("visualization_msgs is not installed: markers are off (said on diagnostics)")
    from visualization_msgs.msg import Marker

    assert note == "~/sound_markers"
    arrows = [
        m
        for arr in session.rec.markers
        for m in arr.markers
        if m.ns == "sound_tracks" and m.action == Marker.ADD
    ]
    assert arrows and all(m.type == Marker.ARROW and m.header.frame_id == "odom" for m in arrows)
    resolved = [m for m in arrows if 4.0 <= (_stamp(m) - session.start_ns) / NS < JUMP_AT]
    assert resolved and all(m.color.g > 0.5 and m.color.r < 0.5 for m in resolved)  # green
    tip = resolved[-1].points[1]
    assert math.degrees(angular_error(math.atan2(tip.y, tip.x), SOURCE)) < 6.0


def test_a_remapped_odometry_topic_that_never_publishes_is_reported(
    tmp_path: Path, ros_env: dict[str, str]
) -> None:
    ns = "/track_silent"
    harness = Harness(ns)
    proc = start_slfm_node(
        ros_env, ns, tmp_path / "node.log", rotation_source="odom", odom_topic="wheel/odom"
    )
    try:
        harness.wait_for(
            lambda: (
                harness.audio_pub.get_subscription_count() >= 1
                and harness.info_pub.get_subscription_count() >= 1
            ),
            60.0,
            "slfm_node to subscribe",
        )
        scene = render_scene("behind", 4.0, seed=3)
        start_ns = time.time_ns()
        start_ns -= start_ns % (NS // 10)
        harness.info_pub.publish(conv.make_audio_info_msg(2, 48000, "S16LE"))
        chunk = int(CHUNK_S * 48000)
        t0 = time.monotonic()
        for i in range(0, int(3.8 * 48000), chunk):
            t = i / 48000
            delay = t0 + t + CHUNK_S - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            harness.audio_pub.publish(
                conv.make_audio_msg(
                    scene.audio[i : i + chunk], start_ns + int(t * NS), "S16LE", "m"
                )
            )
        harness.wait_for(
            lambda: any(
                int(s["values"].get("events.rotation_no_input", "0")) >= 1
                for s in harness.rec.tracking_status()
            ),
            5.0,
            "the rotation_no_input diagnostic",
        )
        status = harness.rec.tracking_status()[-1]
        assert status["level"] == 1 and status["values"]["rotation_state"] == "no_input"
        assert "check the topic name" in status["message"] or "no rotation" in status["message"]
        assert status["values"]["odom_topic"] == f"{ns}/wheel/odom"
        # Heard, but front/back is never decided without the robot's turns.
        states = [p["state"] for a in harness.rec.tracks if (p := _primary(a)) is not None]
        assert states and "resolved" not in states
        assert proc.poll() is None
    finally:
        code = stop(proc)
        harness.close()
    assert code == 0, (tmp_path / "node.log").read_text()[-3000:]
