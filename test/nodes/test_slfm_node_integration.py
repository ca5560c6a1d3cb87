"""slfm_node as a separate process over real DDS, fed a simulated scene in real time.

A test publisher streams a static broadband source (free-field pair, 48 kHz S16LE, 20 ms
chunks, reliable QoS) and a camera turning at a known rate (10 fps crops of a panorama). One
node process runs a scripted session: a clean stream, then one bad input after another; the
tests check its outputs, stamps, hop rate, /diagnostics and log. A second process (learned
model missing) checks the classical fallback, camera-only operation and unusable AudioInfo.
"""

from __future__ import annotations

import math
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from audio_common_msgs.msg import AudioDataStamped, AudioInfo  # noqa: E402
from diagnostic_msgs.msg import DiagnosticArray  # noqa: E402
from geometry_msgs.msg import PoseWithCovarianceStamped  # noqa: E402
from nav_msgs.msg import Odometry  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402

from slfm_ros.core.conventions import angular_error, yaw_from_quaternion  # noqa: E402
from slfm_ros.core.estimators.base import UNINFORMATIVE_VARIANCE_RAD2  # noqa: E402
from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream  # noqa: E402
from slfm_ros.nodes import msg_conversions as conv  # noqa: E402

NS = 1_000_000_000
HOP_NS = NS // 10
CHUNK_S = 0.02
AZIMUTH = math.radians(35.0)
YAW_RATE = math.radians(20.0)
REPO = Path(__file__).resolve().parents[2]

# Session script (seconds after the stream start).
CLEAN_END = 4.0  # clean stream before any bad input
GAP = (4.0, 4.1)  # audio chunks not sent
OVERLAP_AT = 4.5  # a chunk sent twice
BAD_IMAGE_AT = 4.6  # unreadable encoding
OLD_IMAGE_AT = 4.75  # an image older than the newest
F32_AT = 5.0  # AudioInfo switches to F32LE
NAN_AT = 5.5  # one chunk with NaN samples
SILENT = (6.0, 7.6)  # zeros
RATE_CHANGE_AT = 8.0  # AudioInfo switches to 44.1 kHz
SKEW_AT = 10.0  # images stamped 3 s ahead from here on
SESSION_END = 10.8


def _env(domain: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        OMP_NUM_THREADS="1",
        PYTHONUNBUFFERED="1",
    )
    return env


@dataclass
class Recorder:
    """Messages received by the test node, with their receive times (ns)."""

    directions: list[tuple[int, PoseWithCovarianceStamped]] = field(default_factory=list)
    yaws: list[tuple[int, Odometry]] = field(default_factory=list)
    diagnostics: list[tuple[int, DiagnosticArray]] = field(default_factory=list)

    def statuses(
        self, node: str, title: str, since_ns: int = 0, until_ns: int = 2**63
    ) -> list[dict[str, Any]]:
        """Entries of the status '<node>: <title>' received in [since_ns, until_ns]."""
        out = []
        for received, arr in list(self.diagnostics):
            if not since_ns <= received <= until_ns:
                continue
            for st in arr.status:
                if st.name == f"{node}: {title}":
                    values = {kv.key: kv.value for kv in st.values}
                    out.append({"level": st.level[0], "message": st.message, "values": values})
        return out


class RosHarness:
    """An rclpy context on a private domain with a spinning test node."""

    def __init__(self, domain: int, ns: str) -> None:
        self.domain = domain
        self.ns = ns
        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
        self.context = rclpy.Context()
        rclpy.init(context=self.context, domain_id=domain)
        self.node = rclpy.create_node("slfm_test_driver", context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self.rec = Recorder()
        base = f"{ns}/slfm_node"
        self.node.create_subscription(
            PoseWithCovarianceStamped, f"{base}/sound_direction", self._on_direction, 100
        )
        self.node.create_subscription(Odometry, f"{base}/camera_yaw", self._on_yaw, 100)
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 100)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        reliable = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
        sensor = QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.audio_pub = self.node.create_publisher(
            AudioDataStamped, f"{ns}/audio/audio_stamped", reliable
        )
        self.info_pub = self.node.create_publisher(AudioInfo, f"{ns}/audio/audio_info", latched)
        self.image_pub = self.node.create_publisher(Image, f"{ns}/image_raw", sensor)
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self.context.ok():
            try:
                self.executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                return

    def _on_direction(self, msg: PoseWithCovarianceStamped) -> None:
        self.rec.directions.append((time.time_ns(), msg))

    def _on_yaw(self, msg: Odometry) -> None:
        self.rec.yaws.append((time.time_ns(), msg))

    def _on_diag(self, msg: DiagnosticArray) -> None:
        self.rec.diagnostics.append((time.time_ns(), msg))

    def wait_for(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}")
            time.sleep(0.05)

    def wait_connected(self) -> None:
        self.wait_for(
            lambda: (
                self.audio_pub.get_subscription_count() >= 1
                and self.image_pub.get_subscription_count() >= 1
                and self.info_pub.get_subscription_count() >= 1
                and len(self.rec.diagnostics) >= 1
            ),
            30.0,
            "slfm_node to subscribe and publish diagnostics",
        )

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()
        rclpy.shutdown(context=self.context)
        self._thread.join(timeout=2.0)


class NodeProcess:
    """``python -m slfm_ros.nodes.slfm_node`` with its output in a log file."""

    def __init__(self, domain: int, ns: str, log: Path, params: dict[str, str]) -> None:
        cmd = [sys.executable, "-m", "slfm_ros.nodes.slfm_node", "--ros-args"]
        cmd += ["-r", f"__ns:={ns}", "--params-file", str(REPO / "config" / "slfm.yaml")]
        for key, value in params.items():
            cmd += ["-p", f"{key}:={value}"]
        self.log_path = log
        self._log = open(log, "w")
        self.proc = subprocess.Popen(
            cmd, stdout=self._log, stderr=subprocess.STDOUT, env=_env(domain)
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


def _domain() -> int:
    return random.Random(os.getpid() ^ time.time_ns()).randrange(110, 220)


def _stamp(msg: Any) -> int:
    return conv.stamp_to_ns(msg.header.stamp)


def _yaw(msg: Any) -> float:
    o = msg.pose.pose.orientation
    return yaw_from_quaternion(o.x, o.y, o.z, o.w)


# --------------------------------------------------------------------------- scripted session
@dataclass
class Session:
    start_ns: int
    rec: Recorder
    log: str
    latency_s: list[float]


Action = Callable[[RosHarness, int], None]  # (harness, stream start ns)


def _schedule() -> list[tuple[float, Action]]:
    """(seconds after the stream start, action) of the whole session, in time order.

    The sensor data is rendered here, before the session; the actions only stamp and send.
    """
    scene48 = SyntheticScene(azimuth_rad=AZIMUTH, yaw_rate_rad_s=YAW_RATE, fps=10.0)
    s48 = SyntheticStream(scene48, RATE_CHANGE_AT)
    scene44 = SyntheticScene(
        azimuth_rad=AZIMUTH, yaw_rate_rad_s=YAW_RATE, fps=10.0, sample_rate=44100, seed=1
    )
    s44 = SyntheticStream(scene44, SESSION_END - RATE_CHANGE_AT, int(RATE_CHANGE_AT * NS))
    video = SyntheticStream(scene48, SESSION_END)
    events: list[tuple[float, Action]] = []

    def audio(offset_ns: int, chunk: np.ndarray, fmt: str) -> Action:
        data = chunk.copy()
        return lambda h, start: h.audio_pub.publish(
            conv.make_audio_msg(data, start + offset_ns, fmt, "mic_link")
        )

    def info(rate: int, fmt: str) -> Action:
        msg = conv.make_audio_info_msg(2, rate, fmt)
        return lambda h, start: h.info_pub.publish(msg)

    def image(offset_ns: int, rgb: np.ndarray, encoding: str = "rgb8") -> Action:
        def send(h: RosHarness, start: int) -> None:
            msg = conv.rgb_to_image(rgb, start + offset_ns, "camera_optical_frame")
            msg.encoding = encoding
            h.image_pub.publish(msg)

        return send

    for offset_ns, chunk in s48.audio_chunks(CHUNK_S) + s44.audio_chunks(CHUNK_S):
        t = offset_ns / NS
        sent = t + CHUNK_S  # a chunk leaves the driver when its last sample is captured
        if GAP[0] <= t < GAP[1]:
            continue
        fmt = "F32LE" if F32_AT <= t < RATE_CHANGE_AT else "S16LE"
        if SILENT[0] <= t < SILENT[1]:
            chunk = np.zeros_like(chunk)
        if abs(t - NAN_AT) < 1e-6:
            chunk = chunk.copy()
            chunk[10:20] = np.nan
        events.append((sent, audio(offset_ns, chunk, fmt)))
        if abs(t - (OVERLAP_AT - CHUNK_S)) < 1e-6:
            events.append((OVERLAP_AT + 0.005, audio(offset_ns, chunk, fmt)))
    events.append((-0.3, info(48000, "S16LE")))
    events.append((F32_AT - 0.05, info(48000, "F32LE")))
    events.append((RATE_CHANGE_AT - 0.05, info(44100, "S16LE")))

    for offset_ns in video.image_stamps():
        t = offset_ns / NS
        shift = 3 * NS if t >= SKEW_AT else 0
        events.append((t + 0.01, image(offset_ns + shift, video.image_at(offset_ns))))
    events.append((BAD_IMAGE_AT, image(int(BAD_IMAGE_AT * NS), video.image_at(0), "bayer_rggb8")))
    old = int((OLD_IMAGE_AT - 0.5) * NS)
    events.append((OLD_IMAGE_AT, image(old, video.image_at(old))))
    events.sort(key=lambda e: e[0])
    return events


def _play(h: RosHarness, events: list[tuple[float, Action]]) -> int:
    """Send the events in real time; returns the stream start (ns, ROS time)."""
    start_ns = time.time_ns() + NS // 2
    t0 = time.monotonic() + 0.5
    for offset, action in events:
        delay = t0 + offset - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        action(h, start_ns)
    return start_ns


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Session]:
    domain = _domain()
    ns = "/itest"
    harness = RosHarness(domain, ns)
    log = tmp_path_factory.mktemp("slfm_node") / "main.log"
    # The camera turns on a pan unit while the microphones stay: its yaw is not the robot's
    # rotation, so the sound tracker is given none.
    proc = NodeProcess(domain, ns, log, {"estimator": "classic", "rotation_source": "none"})
    try:
        schedule = _schedule()
        harness.wait_connected()
        start_ns = _play(harness, schedule)
        time.sleep(2.5)  # last windows and two diagnostics periods
        latency = [(r - _stamp(m)) / NS for r, m in harness.rec.directions]
        yield Session(start_ns, harness.rec, proc.log(), latency)
    finally:
        proc.stop()
        harness.close()


def _in(session: Session, msgs: list[tuple[int, Any]], lo: float, hi: float) -> list[Any]:
    a, b = session.start_ns + int(lo * NS), session.start_ns + int(hi * NS)
    return [m for _, m in msgs if a <= _stamp(m) <= b]


def test_clean_stream_azimuth_and_window_stamps(session: Session) -> None:
    first = (session.start_ns // HOP_NS + 1) * HOP_NS + NS  # first full window end
    clean = [m for m in _in(session, session.rec.directions, 0, CLEAN_END) if _stamp(m) >= first]
    stamps = [_stamp(m) for m in clean]
    assert len(clean) >= 25
    assert all(s % HOP_NS == 0 for s in stamps), "stamps are window ends on the hop grid"
    assert np.all(np.diff(stamps) == HOP_NS), "one estimate per hop, none missing"
    errors = [math.degrees(angular_error(_yaw(m), AZIMUTH)) for m in clean]
    assert max(errors) < 3.0
    assert all(m.header.frame_id == "mic_link" for m in clean)
    assert all(0 < m.pose.covariance[35] < UNINFORMATIVE_VARIANCE_RAD2 for m in clean)


def test_hop_rate_is_held_and_latency_is_low(session: Session) -> None:
    clean = [
        (r, _stamp(m))
        for r, m in session.rec.directions
        if session.start_ns + 1.5 * NS <= _stamp(m) <= session.start_ns + CLEAN_END * NS
    ]
    # Outputs keep pace with capture time: receive time grows 1:1 with the window end
    # (a fit, so one late message on a busy machine does not decide it).
    received, stamps = (np.array(v, dtype=np.float64) / NS for v in zip(*clean, strict=True))
    slope = np.polyfit(stamps - stamps[0], received - received[0], 1)[0]
    assert slope == pytest.approx(1.0, abs=0.15)
    rate = 1.0 / (slope * HOP_NS / NS)
    print(f"output rate {rate:.2f} Hz over {len(clean)} windows")
    latency = sorted(session.latency_s)
    p50, p99 = np.percentile(latency, [50, 99])
    print(
        f"end-to-end latency (window end -> received): p50 {p50 * 1e3:.1f} ms, "
        f"p99 {p99 * 1e3:.1f} ms over {len(latency)} windows"
    )
    assert p50 < 0.25 and p99 < 1.0


def test_camera_yaw_follows_the_turn(session: Session) -> None:
    yaws = _in(session, session.rec.yaws, 0.5, SKEW_AT - 0.1)
    assert len(yaws) >= 40
    stamps = np.array([_stamp(m) for m in yaws])
    assert np.all(np.diff(stamps) > 0)
    # Image stamps: on the 10 fps grid of the stream, not on the window grid.
    assert all(((s - session.start_ns) % (NS // 10)) == 0 for s in stamps)
    rates = np.array([m.twist.twist.angular.z for m in yaws])
    assert np.median(rates) == pytest.approx(YAW_RATE, rel=0.1)
    # Integrated yaw advances like the truth between two clean-stream images.
    clean = [m for m in yaws if _stamp(m) <= session.start_ns + CLEAN_END * NS]
    a, b = clean[2], clean[-1]
    moved = np.unwrap([_yaw(a), _yaw(b)])
    truth = YAW_RATE * (_stamp(b) - _stamp(a)) / NS
    assert moved[1] - moved[0] == pytest.approx(truth, abs=math.radians(2.0))
    assert all(m.header.frame_id == "odom" and m.child_frame_id == "camera_link" for m in yaws)


def test_silent_windows_give_no_direction(session: Session) -> None:
    # Windows ending in (SILENT[0] + 1, SILENT[1]] hold only zeros.
    silent = _in(session, session.rec.directions, SILENT[0] + 1.05, SILENT[1])
    assert silent == []
    before = _in(session, session.rec.directions, SILENT[0] - 1.0, SILENT[0])
    assert len(before) >= 5


def test_direction_resumes_after_the_sample_rate_change(session: Session) -> None:
    after = _in(session, session.rec.directions, RATE_CHANGE_AT + 1.2, SKEW_AT)
    assert len(after) >= 5
    errors = [math.degrees(angular_error(_yaw(m), AZIMUTH)) for m in after]
    assert max(errors) < 3.0


EXPECTED = {
    # code: (status title, level)
    "audio_gap": ("audio input", 1),
    "audio_overlap": ("audio input", 1),
    "audio_format_change": ("audio input", 1),
    "audio_non_finite": ("audio input", 2),
    "audio_silent": ("audio input", 1),
    "audio_rate_change": ("audio input", 1),
    "image_encoding": ("image input", 2),
    "image_out_of_order": ("image input", 1),
    "image_audio_skew": ("image input", 1),
}


@pytest.mark.parametrize("code", sorted(EXPECTED))
def test_each_bad_input_has_its_diagnostic_and_log_line(session: Session, code: str) -> None:
    title, level = EXPECTED[code]
    statuses = session.rec.statuses("slfm_node", title)
    assert statuses, f"no '{title}' status on /diagnostics"
    assert int(statuses[-1]["values"].get(f"events.{code}", "0")) >= 1
    assert max(s["level"] for s in statuses) >= level
    assert f"[{code}]" in session.log


def test_diagnostics_report_backend_counts_and_latency(session: Session) -> None:
    est = session.rec.statuses("slfm_node", "estimators")[-1]
    assert est["values"]["backend"] == "classic"
    assert "gcc_phat" in est["values"]["estimators"]
    assert float(est["values"]["latency.audio.p99_ms"]) > 0
    assert float(est["values"]["latency.visual.p99_ms"]) > 0
    pipe = session.rec.statuses("slfm_node", "pipeline")[-1]["values"]
    assert int(pipe["windows_produced"]) >= 60
    assert float(pipe["latency.end_to_end.p50_ms"]) > 0
    audio = session.rec.statuses(
        "slfm_node",
        "audio input",
        session.start_ns + int(2.5 * NS),
        session.start_ns + int(CLEAN_END * NS),
    )
    rates = [float(s["values"]["rate.frames_per_s"]) for s in audio]
    assert rates and np.median(rates) == pytest.approx(48000, rel=0.15)
    print(
        "node latency: audio p50 {} p99 {} ms, visual p50 {} p99 {} ms; end-to-end p50 {} "
        "p99 {} ms".format(
            est["values"]["latency.audio.p50_ms"],
            est["values"]["latency.audio.p99_ms"],
            est["values"]["latency.visual.p50_ms"],
            est["values"]["latency.visual.p99_ms"],
            pipe["latency.end_to_end.p50_ms"],
            pipe["latency.end_to_end.p99_ms"],
        )
    )


# --------------------------------------------------------------------------- fallback process
def test_missing_model_camera_only_and_unusable_audio_info(tmp_path: Path) -> None:
    domain = _domain()
    ns = "/fallback"
    harness = RosHarness(domain, ns)
    proc = NodeProcess(
        domain, ns, tmp_path / "fallback.log", {"estimator": "slfm", "model_dir": "/nonexistent"}
    )
    try:
        harness.wait_connected()
        start_ns = time.time_ns()
        video = SyntheticStream(SyntheticScene(yaw_rate_rad_s=YAW_RATE, fps=10.0), 2.5, start_ns)
        t0 = time.monotonic()
        images = [
            ((s - start_ns) / NS, conv.rgb_to_image(video.image_at(s), s, "cam"))
            for s in video.image_stamps()
        ]
        for offset, img in images:
            time.sleep(max(0.0, t0 + offset - time.monotonic()))
            harness.image_pub.publish(img)
        chunk = np.zeros((960, 2), dtype=np.float32)
        for channels, fmt, coding in (
            (1, "S16LE", "wave"),
            (3, "S16LE", "wave"),
            (2, "S16LE", "mp3"),
            (2, "U8", "wave"),
        ):
            info = AudioInfo(
                channels=channels, sample_rate=48000, sample_format=fmt, coding_format=coding
            )
            harness.info_pub.publish(info)
            time.sleep(0.15)
            harness.audio_pub.publish(conv.make_audio_msg(chunk, time.time_ns(), "S16LE", "m"))
            time.sleep(0.1)
        time.sleep(2.2)
        rec = harness.rec
        assert rec.directions == []
        assert len(rec.yaws) >= 10, "camera-only operation publishes yaw"
        rates = [m.twist.twist.angular.z for _, m in rec.yaws]
        assert np.median(rates) == pytest.approx(YAW_RATE, rel=0.15)

        est = rec.statuses("slfm_node", "estimators")[-1]
        assert est["level"] == 1 and "classical fallback" in est["message"]
        assert est["values"]["backend"] == "classic"
        audio = rec.statuses("slfm_node", "audio input")
        counts = audio[-1]["values"]
        assert int(counts["events.audio_channels"]) == 2
        assert int(counts["events.audio_coding"]) == 1
        assert int(counts["events.audio_sample_format"]) == 1
        assert int(counts["events.audio_dropped"]) >= 4
        assert max(s["level"] for s in audio) == 2
        log = proc.log()
        for text in (
            "[model_fallback]",
            "/nonexistent",
            "[audio_channels]",
            "mono audio",
            "3-channel audio",
            "[audio_coding]",
            "[audio_sample_format]",
        ):
            assert text in log, text
    finally:
        proc.stop()
        harness.close()
