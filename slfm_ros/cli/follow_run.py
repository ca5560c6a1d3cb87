"""One closed-loop follow run: sim_robot, slfm_node and sound_follower as real processes.

1. slfm_node and sound_follower start the way ``slfm launch`` starts them
   (``launch_description.plan_nodes`` with use_mic/use_camera off, use_follower on) in a
   namespace of their own, with the shipped parameters and slfm_node's receiver geometry set
   to the simulated one; sim_robot starts next to them in the same namespace with the talker
   at the asked bearing. It holds its clock at zero until slfm_node subscribes to its audio
   and the follower publishes cmd_vel, so the run starts when the loop is closed.
2. A recorder in this process follows the robot's heading (``odom``), slfm_node's tracks
   (``slfm_node/sound_tracks``) and the follower's status on /diagnostics (its first probe
   and first committed turn), all over DDS, for ``seconds`` of simulated time.
3. The processes are stopped; ``slfm_ros.evaluation.follow_scoring`` scores the run.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import yaml

from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.evaluation.follow_scoring import FollowRun, TrackReportSample

STARTUP_TIMEOUT_S = 180.0
# Beyond the run's own length, how long the simulated clock may lag the wall clock.
RUN_SLACK_S = 20.0
_NS_PER_S = 1_000_000_000
# slfm_node's interaural model for each simulated receiver.
NODE_RECEIVERS = {"stereo_array": "free_field", "spherical_head": "spherical_head"}


class FollowRunError(SlfmError):
    """A node did not start or the loop did not run; the message holds the tail of the log."""


@dataclass(frozen=True)
class FollowOptions:
    """source_azimuth_deg: the talker's world bearing from the robot's start heading.
    sim_params: further sim_robot parameters (name -> value)."""

    source_azimuth_deg: float
    receiver: str = "stereo_array"
    room: str = "room"
    seed: int = 0
    seconds: float = 12.0
    sim_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not math.isfinite(self.source_azimuth_deg):
            raise ConfigError(f"source azimuth must be a number, got {self.source_azimuth_deg}")
        if self.receiver not in NODE_RECEIVERS:
            raise ConfigError(
                f"receiver must be one of {sorted(NODE_RECEIVERS)}, got {self.receiver!r}"
            )
        if not 3.0 <= self.seconds <= 300.0:
            raise ConfigError(f"run length must be in [3, 300] s, got {self.seconds}")


def _tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def write_params(options: FollowOptions, path: Path) -> Path:
    """The shipped parameter file with slfm_node's receiver set to the simulated one."""
    from slfm_ros.nodes.launch_description import default_params_file
    from slfm_ros.nodes.sim_robot_params import SIM_ROBOT_NODE

    data = yaml.safe_load(Path(default_params_file()).read_text())
    node = data["/**/slfm_node"]["ros__parameters"]
    sim = SIM_ROBOT_NODE.defaults()
    node["receiver"] = NODE_RECEIVERS[options.receiver]
    node["mic_spacing_m"] = float(options.sim_params.get("mic_spacing_m", sim["mic_spacing_m"]))
    node["head_radius_m"] = float(options.sim_params.get("head_radius_m", sim["head_radius_m"]))
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class _Recorder:
    """The rclpy side of a run: records heading, tracks and the follower's status."""

    def __init__(self, namespace: str) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import QoSProfile, ReliabilityPolicy

        self.namespace = namespace
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("slfm_follow_recorder", context=self.context)
        self.lock = threading.Lock()
        self.odom: list[tuple[int, float]] = []
        self.tracks: list[tuple[int, str, float, float]] = []
        self.follower: dict[str, str] = {}
        self.sim: dict[str, str] = {}
        best_effort = QoSProfile(depth=200, reliability=ReliabilityPolicy.BEST_EFFORT)
        self.node.create_subscription(Odometry, f"{namespace}/odom", self._on_odom, best_effort)
        self.node.create_subscription(
            DiagnosticArray, f"{namespace}/slfm_node/sound_tracks", self._on_tracks, 50
        )
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, 50)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._running = True
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_odom(self, msg: Any) -> None:
        from slfm_ros.nodes.follower_msgs import odometry_pose

        stamp, yaw, _, _ = odometry_pose(msg)
        with self.lock:
            self.odom.append((int(round(stamp * _NS_PER_S)), yaw))

    def _on_tracks(self, msg: Any) -> None:
        from slfm_ros.nodes.follower_msgs import primary_track

        track, _ = primary_track(msg)
        if track is None:
            return
        with self.lock:
            stamp = int(round(track.stamp_s * _NS_PER_S))
            self.tracks.append((stamp, track.state, track.body_bearing, track.world_bearing))

    def _on_diag(self, msg: Any) -> None:
        for status in msg.status:
            values = {kv.key: kv.value for kv in status.values}
            node = values.get("node")
            with self.lock:
                if node == f"{self.namespace}/sound_follower":
                    self.follower = values
                elif node == f"{self.namespace}/sim_robot":
                    self.sim = values

    def close(self) -> None:
        self._running = False
        self._thread.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def _direction(text: str) -> int:
    return {"left": 1, "right": -1}.get(text, 0)


def follow_run(
    options: FollowOptions, work_dir: Path, progress: IO[str] | None = None
) -> FollowRun:
    """Run the loop (module doc); ``work_dir`` gets the parameter file and nodes.log."""
    from slfm_ros.cli.launch import Launcher
    from slfm_ros.cli.sim_robot_cmd import sim_robot_command
    from slfm_ros.nodes.launch_description import node_command, plan_nodes

    def say(text: str) -> None:
        if progress is not None:
            progress.write(text + "\n")
            progress.flush()

    work_dir.mkdir(parents=True, exist_ok=True)
    ns = f"/slfm_follow_demo_{os.getpid()}"
    params = write_params(options, work_dir / "follow_params.yaml")
    plans = plan_nodes(
        {
            "use_mic": "false",
            "use_camera": "false",
            "use_follower": "true",
            "namespace": ns,
            "params_file": str(params),
        }
    )
    sim = {
        "talker_azimuth_deg": float(options.source_azimuth_deg),
        "receiver": options.receiver,
        "room": options.room,
        "seed": int(options.seed),
        "start_when_subscribed": True,
        **options.sim_params,
    }
    commands = [("sim_robot", sim_robot_command(sim, ns))]
    commands += [(p.name, node_command(p)) for p in plans]
    env = plans[0].env
    log_path = work_dir / "nodes.log"
    with open(log_path, "w") as log_stream:
        launcher = Launcher(commands, env, out=log_stream)
        saved = {k: os.environ.get(k) for k in env}
        recorder: _Recorder | None = None
        try:
            launcher.start()
            os.environ.update(env)  # the recorder joins with the nodes' DDS transports
            recorder = _Recorder(ns)
            say(f"started sim_robot, slfm_node and sound_follower in {ns}; waiting for the loop")
            start_ns = _wait_for_start(recorder, launcher, log_path)
            say(f"loop closed; running {options.seconds:g} s of simulated time")
            _wait_for_end(recorder, launcher, log_path, start_ns, options.seconds)
            with recorder.lock:
                odom = list(recorder.odom)
                tracks = list(recorder.tracks)
                follower = dict(recorder.follower)
                sim = dict(recorder.sim)
        finally:
            if recorder is not None:
                recorder.close()
            launcher.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    run = _to_run(options, start_ns, odom, tracks, follower)
    run.sim_skipped_s = float(sim.get("skipped_s", "nan"))
    return run


def _check_alive(launcher: Any, log_path: Path) -> None:
    for name, proc in launcher.procs:
        if proc.poll() is not None:
            raise FollowRunError(
                f"{name} exited with code {proc.returncode}; the log ({log_path}) ends with:\n"
                f"{_tail(log_path)}"
            )


def _wait_for_start(recorder: _Recorder, launcher: Any, log_path: Path) -> int:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        _check_alive(launcher, log_path)
        with recorder.lock:
            if recorder.odom:
                return recorder.odom[0][0]
        time.sleep(0.1)
    raise FollowRunError(
        f"the simulation did not start within {STARTUP_TIMEOUT_S:.0f} s (sim_robot waits for "
        f"slfm_node's audio subscription and the follower's cmd_vel); the log ({log_path}) "
        f"ends with:\n{_tail(log_path)}"
    )


def _wait_for_end(
    recorder: _Recorder, launcher: Any, log_path: Path, start_ns: int, seconds: float
) -> None:
    deadline = time.monotonic() + seconds + RUN_SLACK_S
    while time.monotonic() < deadline:
        _check_alive(launcher, log_path)
        with recorder.lock:
            newest = recorder.odom[-1][0]
        if (newest - start_ns) / _NS_PER_S >= seconds:
            return
        time.sleep(0.1)
    raise FollowRunError(
        f"the simulation did not reach {seconds:g} s within {seconds + RUN_SLACK_S:.0f} s of "
        f"wall time; the log ({log_path}) ends with:\n{_tail(log_path)}"
    )


def _to_run(
    options: FollowOptions,
    start_ns: int,
    odom: list[tuple[int, float]],
    tracks: list[tuple[int, str, float, float]],
    follower: dict[str, str],
) -> FollowRun:
    def rel(stamp_ns: int) -> float:
        return (stamp_ns - start_ns) / _NS_PER_S

    end = options.seconds
    odom = sorted(o for o in odom if rel(o[0]) <= end + 1e-9 and math.isfinite(o[1]))
    run = FollowRun(source_bearing=math.radians(options.source_azimuth_deg))
    run.heading_t = [rel(s) for s, _ in odom]
    run.heading = [y for _, y in odom]
    run.tracks = [
        TrackReportSample(rel(s), state, body, world)
        for s, state, body, world in sorted(tracks)
        if rel(s) <= end
    ]
    commit = follower.get("first_commit_stamp_s", "")
    if commit:
        run.commit_t = rel(int(round(float(commit) * _NS_PER_S)))
        run.commit_direction = _direction(follower.get("first_commit_direction", ""))
    run.probe_direction = _direction(follower.get("first_probe_direction", ""))
    return run
