"""`slfm launch` starts the real nodes with the YAML in a namespace, forwards Ctrl-C and stops
when a node dies; the parameters are read back over DDS from the running slfm_node."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from rcl_interfaces.srv import GetParameters  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.parameter import parameter_value_to_python  # noqa: E402

from slfm_ros.cli.config_cmd import render  # noqa: E402
from slfm_ros.cli.launch import parse_assignments  # noqa: E402
from slfm_ros.core.errors import ConfigError  # noqa: E402


class LaunchProcess:
    """``python -m slfm_ros.cli.main launch ...`` with its output collected line by line."""

    def __init__(self, domain: int, args: list[str]) -> None:
        env = dict(
            os.environ,
            ROS_DOMAIN_ID=str(domain),
            ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST",
            OMP_NUM_THREADS="1",
        )
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "slfm_ros.cli.main", "launch", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def node_pid(self, name: str, timeout: float = 20.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(rf"started {name} \(pid (\d+)\)", self.output)
            if found:
                return int(found.group(1))
            time.sleep(0.05)
        raise AssertionError(f"{name} was not started:\n{self.output}")

    def wait(self, timeout: float) -> int:
        code = self.proc.wait(timeout=timeout)
        self._reader.join(timeout=2.0)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


@pytest.fixture
def domain() -> int:
    return random.Random(os.getpid() ^ time.time_ns()).randrange(110, 220)


@pytest.fixture
def params_file(tmp_path: Path) -> Path:
    text = render()
    for old, new in (
        ("    hop_s: 0.1\n", "    hop_s: 0.2\n"),
        ('    odom_frame_id: "odom"\n', '    odom_frame_id: "test_odom"\n'),
    ):
        assert old in text
        text = text.replace(old, new)
    path = tmp_path / "params.yaml"
    path.write_text(text)
    return path


@pytest.fixture
def ros(domain: int) -> Iterator[rclpy.node.Node]:
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    context = rclpy.Context()
    rclpy.init(context=context, domain_id=domain)
    node = rclpy.create_node("launch_test_client", context=context)
    yield node
    node.destroy_node()
    rclpy.shutdown(context=context)


def _get_parameters(node: rclpy.node.Node, service: str, names: list[str]) -> dict[str, object]:
    client = node.create_client(GetParameters, service)
    assert client.wait_for_service(timeout_sec=30.0), f"{service} did not appear"
    future = client.call_async(GetParameters.Request(names=names))
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    executor.spin_until_future_complete(future, timeout_sec=10.0)
    executor.shutdown()
    assert future.done(), f"{service} did not answer"
    values = future.result().values
    return {n: parameter_value_to_python(v) for n, v in zip(names, values, strict=True)}


def test_launch_applies_the_yaml_in_a_namespace_and_forwards_ctrl_c(
    domain: int, params_file: Path, ros: rclpy.node.Node
) -> None:
    launch = LaunchProcess(
        domain,
        [
            "use_mic:=false",
            "use_camera:=false",
            "namespace:=lt",
            f"params_file:={params_file}",
            "estimator:=classic",
        ],
    )
    try:
        pid = launch.node_pid("slfm_node")
        assert "started mic_node" not in launch.output
        values = _get_parameters(
            ros,
            "/lt/slfm_node/get_parameters",
            ["hop_s", "odom_frame_id", "estimator", "window_s"],
        )
        # From the YAML (/**/slfm_node applies inside /lt), from the launch argument, default.
        assert values == {
            "hop_s": 0.2,
            "odom_frame_id": "test_odom",
            "estimator": "classic",
            "window_s": 1.0,
        }
        launch.proc.send_signal(signal.SIGINT)
        assert launch.wait(timeout=20) == 0
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert "[slfm launch] stopping the nodes" in launch.output
        assert "[slfm_node] " in launch.output  # node output, prefixed
    finally:
        launch.kill()


def test_launch_exits_when_a_node_dies(domain: int, params_file: Path) -> None:
    launch = LaunchProcess(
        domain, ["use_mic:=false", "use_camera:=false", f"params_file:={params_file}"]
    )
    try:
        pid = launch.node_pid("slfm_node")
        time.sleep(0.5)
        os.kill(pid, signal.SIGKILL)
        assert launch.wait(timeout=20) == 128 + signal.SIGKILL
        assert "slfm_node exited with code -9 (killed by SIGKILL)" in launch.output
    finally:
        launch.kill()


def test_assignments_are_parsed_strictly() -> None:
    assert parse_assignments(["a:=1", "b:=", "c:=x:=y"]) == {"a": "1", "b": "", "c": "x:=y"}
    with pytest.raises(ConfigError, match="name:=value"):
        parse_assignments(["use_mic=false"])
