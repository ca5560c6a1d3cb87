"""Live replay: the real slfm_node as a process, fed a bag over DDS in (scaled) real time.

1. The node is started the way ``slfm launch`` starts it (``launch_description.plan_nodes``,
   ``cli.launch.Launcher``) without mic and camera nodes, in a namespace of its own, with a
   parameter file holding the replay's parameters; its inputs are the bag's topic names inside
   that namespace, so a replay never mixes with a robot's live topics or another replay.
2. Once the node's subscriptions match the player's publishers, the bag's input messages are
   published in record order at their record times (divided by ``rate``), as the stored CDR
   bytes (``ros2 bag play`` does the same); header stamps are kept.
3. The node's ~/sound_direction, ~/sound_source, ~/sound_tracks, ~/camera_yaw and
   /diagnostics are recorded with their wall receive times until the outputs stop (or
   ``drain_s`` after the end), then the node is stopped. Latency is receive time minus the
   wall time at which the window end was played.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import IO, Any

from slfm_ros.bags.inputs import BagDispatcher, InputPlan, StreamStats
from slfm_ros.bags.outputs import OutputLog
from slfm_ros.bags.params import write_node_params
from slfm_ros.bags.reader import BagReader
from slfm_ros.bags.replay_offline import Replay
from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.nodes.param_spec import ParamValue

_NS_PER_S = 1_000_000_000
STARTUP_TIMEOUT_S = 120.0
# After the last message, stop once no output arrived for this long (wall seconds) ...
QUIET_S = 2.0
# ... or at the latest this long after the last message.
DRAIN_S = 15.0


class NodeStartError(SlfmError):
    """The node did not start or did not connect; the message holds the tail of its log."""


def _tail(path: Path, lines: int = 15) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(text[-lines:])


class _Session:
    """The rclpy side of a live replay: player publishers and output recorder."""

    def __init__(
        self, namespace: str, plan: InputPlan, classes: dict[str, Any], log: OutputLog
    ) -> None:
        import rclpy
        from diagnostic_msgs.msg import DiagnosticArray
        from geometry_msgs.msg import PoseWithCovarianceStamped
        from nav_msgs.msg import Odometry
        from rclpy.executors import SingleThreadedExecutor
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node("slfm_bag_player", namespace=namespace, context=self.context)
        self.log = log
        self._lock = threading.Lock()
        self.last_output_wall = 0.0
        reliable = QoSProfile(depth=100, reliability=ReliabilityPolicy.RELIABLE)
        latched = QoSProfile(
            depth=1,
            reliability=ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.TRANSIENT_LOCAL,
        )
        self.publishers: dict[str, Any] = {}
        for topic, qos in (
            (plan.audio_info, latched),
            (plan.audio, reliable),
            (plan.image, reliable),
            (plan.odom, reliable),
            (plan.imu, reliable),
        ):
            if topic:
                self.publishers[topic] = self.node.create_publisher(
                    classes[topic], namespace + topic, qos
                )
        base = f"{namespace}/slfm_node"
        outputs = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE)
        self.subscriptions = [
            self.node.create_subscription(
                PoseWithCovarianceStamped, f"{base}/sound_direction", self._on_direction, outputs
            ),
            self.node.create_subscription(Odometry, f"{base}/camera_yaw", self._on_yaw, outputs),
            self.node.create_subscription(
                PoseWithCovarianceStamped, f"{base}/sound_source", self._on_source, outputs
            ),
            self.node.create_subscription(
                DiagnosticArray, f"{base}/sound_tracks", self._on_tracks, outputs
            ),
        ]
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_diag, outputs)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)
        self._spin = threading.Thread(target=self._spin_loop, daemon=True)
        self._running = True
        self._spin.start()

    def _spin_loop(self) -> None:
        while self._running and self.context.ok():
            self.executor.spin_once(timeout_sec=0.05)

    def _on_direction(self, msg: Any) -> None:
        now = time.time_ns()
        with self._lock:
            self.log.add_direction(msg, now)
            self.last_output_wall = time.monotonic()

    def _on_yaw(self, msg: Any) -> None:
        now = time.time_ns()
        with self._lock:
            self.log.add_yaw(msg, now)
            self.last_output_wall = time.monotonic()

    def _on_source(self, msg: Any) -> None:
        with self._lock:
            self.log.add_source(msg)

    def _on_tracks(self, msg: Any) -> None:
        with self._lock:
            self.log.add_tracks(msg)
            self.last_output_wall = time.monotonic()

    def _on_diag(self, msg: Any) -> None:
        with self._lock:
            self.log.add_diagnostics(msg)

    def connected(self) -> bool:
        pubs = all(p.get_subscription_count() > 0 for p in self.publishers.values())
        subs = all(s.get_publisher_count() > 0 for s in self.subscriptions)
        return pubs and subs

    def close(self) -> None:
        self._running = False
        self._spin.join(timeout=2.0)
        self.executor.shutdown()
        self.node.destroy_node()
        self.context.try_shutdown()


def replay_live(
    reader: BagReader,
    plan: InputPlan,
    params: dict[str, ParamValue],
    rate: float = 1.0,
    work_dir: str | Path | None = None,
    namespace: str | None = None,
    progress: IO[str] | None = None,
) -> Replay:
    """Play ``reader``'s planned topics to a freshly started slfm_node (see module doc).

    work_dir receives the node's parameter file and its log (node.log); a temporary folder
    when None. NodeStartError when the node exits or does not connect within
    STARTUP_TIMEOUT_S.
    """
    import tempfile

    from slfm_ros.cli.launch import Launcher
    from slfm_ros.nodes.launch_description import node_command, plan_nodes

    if not rate > 0:
        raise ConfigError(f"--rate must be > 0, got {rate}")
    ns = namespace or f"/slfm_bag_eval_{os.getpid()}"
    folder = Path(work_dir) if work_dir else Path(tempfile.mkdtemp(prefix="slfm_bag_live_"))
    folder.mkdir(parents=True, exist_ok=True)
    node_params = dict(params)
    unused = "/unused"  # a part that is not evaluated still needs a topic name
    node_params["audio_topic"] = ns + (plan.audio or unused + "_audio")
    node_params["audio_info_topic"] = ns + (plan.audio_info or unused + "_audio_info")
    node_params["image_topic"] = ns + (plan.image or unused + "_image")
    node_params["odom_topic"] = ns + (plan.odom or unused + "_odom")
    node_params["imu_topic"] = ns + (plan.imu or unused + "_imu")
    params_file = write_node_params(node_params, folder / "slfm_node_params.yaml")
    launch = plan_nodes(
        {
            "use_mic": "false",
            "use_camera": "false",
            "params_file": str(params_file),
            "namespace": ns,
        }
    )
    plan = plan.for_node(params)
    stats = StreamStats()
    dispatcher = BagDispatcher(plan, stats)
    classes = {t: dispatcher.types.cls(reader.topics[t].msgtype) for t in plan.input_topics}
    log = OutputLog("live")
    node_log = folder / "node.log"

    def say(text: str) -> None:
        if progress is not None:
            progress.write(text + "\n")
            progress.flush()

    with open(node_log, "w") as log_stream:
        env = launch[0].env if launch else {}
        launcher = Launcher([(p.name, node_command(p)) for p in launch], env, out=log_stream)
        session: _Session | None = None
        saved = {k: os.environ.get(k) for k in env}
        try:
            launcher.start()
            # The player joins with the nodes' DDS profile (transports must match).
            os.environ.update(env)
            session = _Session(ns, plan, classes, log)
            say(f"started slfm_node in {ns}; waiting for it to connect")
            _wait_connected(session, launcher, node_log)
            replay = _play(reader, plan, params, dispatcher, session, stats, log, rate, say)
        finally:
            if session is not None:
                session.close()
            launcher.stop()
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    log.notes.append(f"node log: {node_log}")
    return replay


def _wait_connected(session: _Session, launcher: Any, node_log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not session.connected():
        for name, proc in launcher.procs:
            if proc.poll() is not None:
                raise NodeStartError(
                    f"{name} exited with code {proc.returncode} before the replay started; its "
                    f"log ({node_log}) ends with:\n{_tail(node_log)}"
                )
        if time.monotonic() > deadline:
            raise NodeStartError(
                f"slfm_node did not connect within {STARTUP_TIMEOUT_S:.0f} s (check "
                f"ROS_DOMAIN_ID and DDS discovery); its log ({node_log}) ends with:\n"
                f"{_tail(node_log)}"
            )
        time.sleep(0.1)
    time.sleep(0.3)  # let the latched AudioInfo reach both subscriptions before the stream


def _play(
    reader: BagReader,
    plan: InputPlan,
    params: dict[str, ParamValue],
    dispatcher: BagDispatcher,
    session: _Session,
    stats: StreamStats,
    log: OutputLog,
    rate: float,
    say: Any,
) -> Replay:
    wall0 = log0 = None
    started = time.perf_counter()
    for message in reader.messages(dispatcher.topics):
        item = dispatcher.take(message)
        if item is None:
            continue
        if wall0 is None or log0 is None:
            wall0, log0 = time.time_ns(), message.log_ns
        due = wall0 + (message.log_ns - log0) / rate
        delay = (due - time.time_ns()) / _NS_PER_S
        if delay > 0:
            time.sleep(delay)
        session.publishers[message.topic].publish(message.raw)
    end = time.monotonic()
    say("bag played; waiting for the last outputs")
    while time.monotonic() - end < DRAIN_S:
        time.sleep(0.1)
        quiet_since = max(session.last_output_wall, end)
        if time.monotonic() - quiet_since > QUIET_S:
            break
    log.wall_s = time.perf_counter() - started
    origin = None if wall0 is None or log0 is None else (wall0, log0)
    return Replay(
        log=log.sorted(), stats=stats, plan=plan, params=params, play_origin=origin, rate=rate
    )
