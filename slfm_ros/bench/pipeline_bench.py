"""End-to-end benchmark of the real-time pipeline: a real slfm_node process over DDS.

The benchmark starts ``python -m slfm_ros.nodes.slfm_node`` with the shipped parameter YAML on
a ROS domain of its own (localhost only) and plays a sensor stream into it in real time:

    audio   48 kHz stereo S16LE, 20 ms AudioDataStamped chunks (reliable, like
            audio_common's capture node), a static broadband source with an interaural delay;
            each chunk is sent when its last sample is "captured" and stamped with its first
            sample's time, as a capture driver does
    images  30 fps 640 x 480 rgb8 sensor_msgs/Image (best effort), a camera panning back and
            forth over a panorama, stamped with their capture time and sent at once

The stream is rendered before timing starts (a 10 s audio loop, a 1 s ping-pong of frames) so
the player costs little CPU. It reports, over the stream after a warm-up:

    latency_p50_ms / latency_p99_ms / latency_max_ms
                     window end (the ~/sound_direction stamp) -> message received here, wall
                     clock; includes the wait for the chunk holding the window end (up to one
                     chunk), the node's processing and the DDS delivery
    node_*           the node's own /diagnostics figures (end_to_end p50/p99, windows
                     produced/skipped, queue overflows)
    dropped_windows  hop-grid window ends between the first and the last expected window
                     that never arrived (must be 0)
    cpu_node_percent CPU time of the node process / wall time (100 = one core)
    rss_start_mb / rss_end_mb / rss_slope_mb_per_min  node memory after warm-up, at the end,
                     and the least-squares slope of 1 Hz samples (flat memory: |slope| ~ 0)
    player_lag_p99_ms how late the player sent messages (a busy machine delays the input too)

DDS transport (``dds_profile``): with Fast DDS's default transports a 640 x 480 rgb8 image
(921,600 bytes) does not fit the default 0.5 MiB shared-memory segment, so images travel as
UDP fragments that overrun the default socket receive buffer; best-effort audio chunks sharing
that port are lost with them, and the node zero-fills the gaps and declines windows that are
mostly filling. By default both processes run with config/fastdds_large_data.xml, as the
launchers start the nodes (16 MiB shared-memory segments, 4 MiB UDP buffers), which removes the
loss on one host; ``dds_profile="none"`` measures the DDS defaults.
"""

from __future__ import annotations

import fcntl
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from slfm_ros.bench.stats import load_average, machine_info, percentile_ms
from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.nodes.launch_description import (
    FASTDDS_PROFILE_NAME,
    dds_environment,
    shipped_config,
)

NS = 1_000_000_000
REPO_CONFIG = Path(__file__).resolve().parents[2] / "config" / "slfm.yaml"
DOMAIN_LOCKS = Path(tempfile.gettempdir()) / "slfm_ros-ros-domains"
TARGETS = {"latency_p99_ms": 50.0, "dropped_windows": 0}


@dataclass(frozen=True)
class PipelineBenchConfig:
    """seconds: length of the timed stream; warmup_s: stream played before timing starts.
    estimator/backend/model_dir: slfm_node parameters. hop_s: the node's hop (for the grid).
    dds_profile: "" or "large-data" = config/fastdds_large_data.xml (what the launchers use),
    "none" = Fast DDS defaults, else the path of a Fast DDS XML profile (for both processes).
    """

    seconds: float = 60.0
    warmup_s: float = 3.0
    estimator: str = "classic"
    backend: str = "auto"
    model_dir: str = ""
    hop_s: float = 0.1
    sample_rate: int = 48000
    chunk_s: float = 0.02
    fps: float = 30.0
    image_size: tuple[int, int] = (640, 480)
    azimuth_deg: float = 35.0
    yaw_rate_deg_s: float = 20.0
    params_file: str = ""
    dds_profile: str = ""
    connect_timeout_s: float = 60.0
    extra_params: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.seconds <= 0 or self.warmup_s < 0:
            raise ConfigError(f"seconds must be > 0 and warmup_s >= 0, got {self.seconds}")
        if self.estimator not in ("classic", "slfm"):
            raise ConfigError(f"estimator: classic or slfm, got {self.estimator!r}")


# --------------------------------------------------------------------------- process helpers
def claim_domain() -> tuple[int, IO[str]]:
    """A ROS domain id (1..100) no other slfm_ros test or benchmark holds (file lock)."""
    DOMAIN_LOCKS.mkdir(parents=True, exist_ok=True)
    start = os.getpid()
    for k in range(100):
        domain = 1 + (start + k) % 100
        handle = open(DOMAIN_LOCKS / f"{domain}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        return domain, handle
    raise SlfmError(f"every ROS domain id 1..100 is in use (locks in {DOMAIN_LOCKS})")


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds of process ``pid`` (Linux /proc)."""
    with open(f"/proc/{pid}/stat") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def process_rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MiB (Linux /proc)."""
    with open(f"/proc/{pid}/status") as handle:
        for line in handle:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def rss_slope_mb_per_min(samples: list[tuple[float, float]]) -> float:
    """Least-squares slope of (seconds, MiB) samples, MiB per minute (NaN for < 3 samples)."""
    if len(samples) < 3:
        return float("nan")
    t, rss = np.asarray(samples, dtype=np.float64).T
    return float(np.polyfit(t, rss, 1)[0] * 60.0)


def dropped_windows(stamps_ns: list[int], first_ns: int, last_ns: int, hop_ns: int) -> int:
    """Hop-grid points in [first_ns, last_ns] without a received window end."""
    if last_ns < first_ns:
        return 0
    grid_first = -(-first_ns // hop_ns) * hop_ns
    expected = set(range(grid_first, last_ns + 1, hop_ns))
    return len(expected - set(stamps_ns))


# --------------------------------------------------------------------------- the stream
@dataclass
class _Stream:
    """Pre-rendered messages; ``audio`` loop of chunks, ``images`` ping-pong of frames."""

    audio: list[Any]
    chunk_ns: int
    images: list[Any]
    frame_ns: float
    info: Any


def _render_stream(cfg: PipelineBenchConfig) -> _Stream:
    from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream
    from slfm_ros.nodes import msg_conversions as conv

    scene = SyntheticScene(
        azimuth_rad=math.radians(cfg.azimuth_deg),
        sample_rate=cfg.sample_rate,
        yaw_rate_rad_s=math.radians(cfg.yaw_rate_deg_s),
        fps=cfg.fps,
        image_size=cfg.image_size,
    )
    audio = SyntheticStream(scene, duration_s=10.0)
    chunks = [
        conv.make_audio_msg(c, 0, "S16LE", "mic_link") for _, c in audio.audio_chunks(cfg.chunk_s)
    ]
    video = SyntheticStream(scene, duration_s=1.0)
    stamps = video.image_stamps()
    frames = [conv.rgb_to_image(video.image_at(s), 0, "camera_optical_frame") for s in stamps]
    frames = frames + frames[-2:0:-1]  # back and forth: no jump in the camera yaw
    chunk_frames = round(cfg.chunk_s * cfg.sample_rate)
    return _Stream(
        audio=chunks,
        chunk_ns=chunk_frames * NS // cfg.sample_rate,
        images=frames,
        frame_ns=NS / cfg.fps,
        info=conv.make_audio_info_msg(2, cfg.sample_rate, "S16LE"),
    )


@dataclass
class _Received:
    directions: list[tuple[int, int]] = field(default_factory=list)  # (receive ns, stamp ns)
    yaws: list[tuple[int, int]] = field(default_factory=list)
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _dds_profile_path(profile: str) -> str:
    """The XML file for ``PipelineBenchConfig.dds_profile`` ("" for the DDS defaults)."""
    if profile in ("", "large-data"):
        # The profile `slfm launch` and the launch file give the nodes, so the benchmark
        # measures the deployed configuration.
        shipped = "" if profile == "" else shipped_config(FASTDDS_PROFILE_NAME)
        env = dds_environment(shipped, os.environ)
        return next(iter(env.values()), "")
    if profile == "none":
        return ""
    if not Path(profile).is_file():
        raise ConfigError(
            f"dds_profile: expected '', 'large-data', 'none' or an XML file, got {profile!r}"
        )
    return str(Path(profile).resolve())


def _node_command(cfg: PipelineBenchConfig, ns: str) -> list[str]:
    params_file = Path(cfg.params_file) if cfg.params_file else REPO_CONFIG
    cmd = [sys.executable, "-m", "slfm_ros.nodes.slfm_node", "--ros-args", "-r", f"__ns:={ns}"]
    if params_file.is_file():
        cmd += ["--params-file", str(params_file)]
    params = {"estimator": cfg.estimator, "backend": cfg.backend, "hop_s": str(cfg.hop_s)}
    if cfg.model_dir:
        params["model_dir"] = cfg.model_dir
    params.update(cfg.extra_params)
    for key, value in params.items():
        cmd += ["-p", f"{key}:={value}"]
    return cmd


def run_pipeline_bench(
    cfg: PipelineBenchConfig, progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Run the benchmark (see module doc) and return its report."""
    import rclpy
    from audio_common_msgs.msg import AudioDataStamped, AudioInfo
    from diagnostic_msgs.msg import DiagnosticArray
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from nav_msgs.msg import Odometry
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image

    from slfm_ros.nodes import msg_conversions as conv

    say = progress or (lambda _m: None)
    machine = machine_info()
    say("rendering the sensor stream")
    stream = _render_stream(cfg)
    domain, domain_lock = claim_domain()
    ns = "/slfm_bench"
    env = dict(os.environ)
    env.update(
        ROS_DOMAIN_ID=str(domain),
        ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
        ROS_LOCALHOST_ONLY="1",
        PYTHONUNBUFFERED="1",
    )
    env.setdefault("OMP_NUM_THREADS", "1")
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    profile_path = _dds_profile_path(cfg.dds_profile)
    saved_profile = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    if profile_path:
        # Read by Fast DDS when a participant is created: the node's and this process's.
        env["FASTDDS_DEFAULT_PROFILES_FILE"] = os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = (
            profile_path
        )
    log = tempfile.NamedTemporaryFile(prefix="slfm_bench_node_", suffix=".log", delete=False)
    command = _node_command(cfg, ns)
    node_proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("slfm_bench_player", context=context)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    received = _Received()

    def on_direction(msg: Any) -> None:
        now = time.time_ns()
        with received.lock:
            received.directions.append((now, conv.stamp_to_ns(msg.header.stamp)))

    def on_yaw(msg: Any) -> None:
        now = time.time_ns()
        with received.lock:
            received.yaws.append((now, conv.stamp_to_ns(msg.header.stamp)))

    def on_diagnostics(msg: Any) -> None:
        with received.lock:
            for status in msg.status:
                if status.name.startswith("slfm_node: "):
                    title = status.name.split(": ", 1)[1]
                    received.diagnostics[title] = {kv.key: kv.value for kv in status.values}

    base = f"{ns}/slfm_node"
    node.create_subscription(
        PoseWithCovarianceStamped, f"{base}/sound_direction", on_direction, 100
    )
    node.create_subscription(Odometry, f"{base}/camera_yaw", on_yaw, 100)
    node.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    audio_pub = node.create_publisher(
        AudioDataStamped,
        f"{ns}/audio/audio_stamped",
        QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE),
    )
    info_pub = node.create_publisher(
        AudioInfo,
        f"{ns}/audio/audio_info",
        QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        ),
    )
    image_pub = node.create_publisher(
        Image, f"{ns}/image_raw", QoSProfile(depth=10, reliability=ReliabilityPolicy.BEST_EFFORT)
    )
    spinning = threading.Event()
    spinning.set()

    def spin() -> None:
        while spinning.is_set() and context.ok():
            try:
                executor.spin_once(timeout_sec=0.05)
            except Exception:  # context shut down while spinning
                return

    spin_thread = threading.Thread(target=spin, name="bench_spin", daemon=True)
    spin_thread.start()
    rss_samples: list[tuple[float, float]] = []
    lags: list[float] = []
    try:
        say(f"starting slfm_node (estimator {cfg.estimator}) on ROS domain {domain}")
        deadline = time.monotonic() + cfg.connect_timeout_s
        while not (
            audio_pub.get_subscription_count() >= 1
            and image_pub.get_subscription_count() >= 1
            and received.diagnostics
        ):
            if node_proc.poll() is not None or time.monotonic() > deadline:
                raise SlfmError(
                    f"slfm_node did not come up (exit status {node_proc.poll()}); its log: "
                    f"{log.name}"
                )
            time.sleep(0.1)
        info_pub.publish(stream.info)
        time.sleep(0.3)
        say(f"streaming {cfg.warmup_s:g} s warm-up + {cfg.seconds:g} s")
        total_s = cfg.warmup_s + cfg.seconds
        start_ns = (time.time_ns() // NS + 1) * NS
        t0 = time.monotonic() + (start_ns - time.time_ns()) / NS
        n_chunks = int(total_s * NS // stream.chunk_ns)
        n_frames = int(total_s * cfg.fps)
        events = [((i + 1) * stream.chunk_ns, 0, i) for i in range(n_chunks)]
        events += [(round(j * stream.frame_ns), 1, j) for j in range(n_frames)]
        events.sort()
        measure_from_ns = start_ns + int(cfg.warmup_s * NS)
        cpu_start = wall_start = None
        next_sample = t0 + cfg.warmup_s
        for offset_ns, kind, index in events:
            due = t0 + offset_ns / NS
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            now = time.monotonic()
            if now >= next_sample:
                if cpu_start is None:
                    cpu_start, wall_start = process_cpu_s(node_proc.pid), now
                rss_samples.append((now - t0, process_rss_mb(node_proc.pid)))
                next_sample += 1.0
            if start_ns + offset_ns >= measure_from_ns:
                lags.append(max(0.0, now - due))
            if kind == 0:
                msg = stream.audio[index % len(stream.audio)]
                msg.header.stamp = conv.ns_to_stamp(start_ns + index * stream.chunk_ns)
                audio_pub.publish(msg)
            else:
                msg = stream.images[index % len(stream.images)]
                msg.header.stamp = conv.ns_to_stamp(start_ns + round(index * stream.frame_ns))
                image_pub.publish(msg)
            if node_proc.poll() is not None:
                raise SlfmError(f"slfm_node exited during the benchmark; its log: {log.name}")
        end_ns = start_ns + n_chunks * stream.chunk_ns
        cpu_end, wall_end = process_cpu_s(node_proc.pid), time.monotonic()
        rss_samples.append((wall_end - t0, process_rss_mb(node_proc.pid)))
        time.sleep(1.5)  # last windows and one more diagnostics period
    finally:
        spinning.clear()
        spin_thread.join(timeout=2.0)
        if node_proc.poll() is None:
            node_proc.send_signal(signal.SIGINT)
            try:
                node_proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                node_proc.kill()
                node_proc.wait()
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown(context=context)
        log.close()
        domain_lock.close()
        if saved_profile is None:
            os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
        else:
            os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = saved_profile

    machine["load_average_1min_end"] = load_average()
    hop_ns = round(cfg.hop_s * NS)
    with received.lock:
        directions = [(r, s) for r, s in received.directions if s >= measure_from_ns]
        yaws = [(r, s) for r, s in received.yaws if s >= measure_from_ns]
        diagnostics = dict(received.diagnostics)
    latencies = [(r - s) / NS for r, s in directions]
    yaw_latencies = [(r - s) / NS for r, s in yaws]
    stamps = sorted(s for _, s in directions)
    first_expected = -(-measure_from_ns // hop_ns) * hop_ns
    dropped = dropped_windows(stamps, first_expected, end_ns, hop_ns)
    pipeline = diagnostics.get("pipeline", {})
    estimator = diagnostics.get("estimators", {})
    rss_measured = list(rss_samples)
    cpu_s = (cpu_end - cpu_start) if cpu_start is not None else float("nan")
    wall_s = (wall_end - wall_start) if wall_start is not None else float("nan")

    def number(values: dict[str, str], key: str) -> float | None:
        try:
            return float(values[key])
        except (KeyError, ValueError):
            return None

    report: dict[str, Any] = {
        "benchmark": "pipeline",
        "seconds": cfg.seconds,
        "warmup_s": cfg.warmup_s,
        "estimator": cfg.estimator,
        "node_backend": estimator.get("backend", ""),
        "node_estimators": estimator.get("estimators", ""),
        "node_fallback_reason": estimator.get("fallback_reason", ""),
        "input": f"{cfg.sample_rate} Hz stereo S16LE in {cfg.chunk_s * 1e3:g} ms chunks + "
        f"{cfg.fps:g} fps {cfg.image_size[0]}x{cfg.image_size[1]} rgb8",
        "hop_s": cfg.hop_s,
        "dds_profile": cfg.dds_profile or _dds_profile_path("") or "environment",
        "windows_expected": len(range(first_expected, end_ns + 1, hop_ns)),
        "windows_received": len(set(stamps)),
        "dropped_windows": dropped,
        "latency_p50_ms": round(percentile_ms(latencies, 50), 2),
        "latency_p99_ms": round(percentile_ms(latencies, 99), 2),
        "latency_max_ms": round(max(latencies) * 1e3, 2) if latencies else float("nan"),
        "yaw_messages": len(yaws),
        "yaw_latency_p50_ms": round(percentile_ms(yaw_latencies, 50), 2),
        "yaw_latency_p99_ms": round(percentile_ms(yaw_latencies, 99), 2),
        "node_end_to_end_p50_ms": number(pipeline, "latency.end_to_end.p50_ms"),
        "node_end_to_end_p99_ms": number(pipeline, "latency.end_to_end.p99_ms"),
        "node_windows_produced": number(pipeline, "windows_produced"),
        "node_windows_skipped": number(pipeline, "windows_skipped") or 0.0,
        "node_queue_overflows": number(pipeline, "queue_overflows") or 0.0,
        "cpu_node_percent": round(100.0 * cpu_s / wall_s, 1) if wall_s > 0 else float("nan"),
        "rss_start_mb": round(rss_measured[0][1], 1) if rss_measured else float("nan"),
        "rss_end_mb": round(rss_measured[-1][1], 1) if rss_measured else float("nan"),
        "rss_slope_mb_per_min": round(rss_slope_mb_per_min(rss_measured), 3),
        "player_lag_p99_ms": round(percentile_ms(lags, 99), 2),
        "node_command": " ".join(command),
        "node_log": log.name,
        "machine": machine,
        "config": {k: v for k, v in asdict(cfg).items() if k != "extra_params"},
    }
    report["targets"] = {
        "latency_p99_ms<=50": report["latency_p99_ms"] <= TARGETS["latency_p99_ms"],
        "dropped_windows==0": dropped == 0,
    }
    return report


def format_pipeline_report(report: dict[str, Any]) -> str:
    """Human-readable lines of a ``run_pipeline_bench`` report."""
    machine = report["machine"]
    lines = [
        f"pipeline benchmark: {report['seconds']:g} s after {report['warmup_s']:g} s warm-up, "
        f"estimator {report['estimator']} ({report['node_estimators'] or 'n/a'})",
        f"  input: {report['input']}; hop {report['hop_s']} s; DDS profile "
        f"{report['dds_profile'] or 'Fast DDS defaults'}",
        f"  machine: {machine['cpu']}, {machine['logical_cores']} logical cores, load "
        f"{machine['load_average_1min']} -> {machine.get('load_average_1min_end')}",
        f"  window end -> publish: p50 {report['latency_p50_ms']} ms, p99 "
        f"{report['latency_p99_ms']} ms, max {report['latency_max_ms']} ms (node's own: p50 "
        f"{report['node_end_to_end_p50_ms']} ms, p99 {report['node_end_to_end_p99_ms']} ms)",
        f"  windows: {report['windows_received']} of {report['windows_expected']} received, "
        f"{report['dropped_windows']} dropped; node skipped {report['node_windows_skipped']:g}, "
        f"queue overflows {report['node_queue_overflows']:g}",
        f"  camera yaw: {report['yaw_messages']} messages, image -> publish p50 "
        f"{report['yaw_latency_p50_ms']} ms, p99 {report['yaw_latency_p99_ms']} ms",
        f"  node CPU: {report['cpu_node_percent']} % of one core",
        f"  node RSS: {report['rss_start_mb']} MiB -> {report['rss_end_mb']} MiB, slope "
        f"{report['rss_slope_mb_per_min']} MiB/min",
        f"  player lag p99: {report['player_lag_p99_ms']} ms",
        "  targets: "
        + ", ".join(f"{k} {'met' if ok else 'MISSED'}" for k, ok in report["targets"].items()),
    ]
    if report["node_fallback_reason"]:
        lines.insert(1, f"  note: the node fell back: {report['node_fallback_reason']}")
    return "\n".join(lines)
