from __future__ import annotations

import rclpy
from rclpy.node import Node

from slfm_ros.core.errors import ConfigError
from slfm_ros.nodes.node_main import run_node


def test_status_of_spin_is_returned_and_node_destroyed() -> None:
    destroyed: list[str] = []

    class Probe(Node):
        def __init__(self) -> None:
            super().__init__("node_main_probe")

        def destroy_node(self) -> None:
            destroyed.append(self.get_name())
            super().destroy_node()

    assert run_node(Probe, "node_main_probe", [], spin=lambda node: 3) == 3
    assert destroyed == ["node_main_probe"]
    assert not rclpy.ok()


def test_slfm_error_while_building_gives_status_1() -> None:
    def broken() -> Node:
        raise ConfigError("bad parameter")

    assert run_node(broken, "node_main_probe", []) == 1
    assert not rclpy.ok()


def test_ctrl_c_gives_status_0() -> None:
    def interrupted(node: Node) -> int:
        raise KeyboardInterrupt

    assert run_node(lambda: Node("node_main_probe"), "node_main_probe", [], interrupted) == 0


def test_a_message_rclpy_cannot_convert_is_dropped_and_the_node_spins_on() -> None:
    """rclpy raises this RuntimeError from a take now and then under load; it must cost one
    message, not the node. Any other RuntimeError still ends the node."""
    import pytest

    calls: list[int] = []

    class Flaky(Node):
        def __init__(self) -> None:
            super().__init__("node_main_flaky")
            self.create_timer(0.01, self._tick)

        def _tick(self) -> None:
            calls.append(len(calls))
            if len(calls) <= 2:
                raise RuntimeError("Unable to convert call argument '0' to Python object")
            if len(calls) == 5:
                rclpy.shutdown()

    assert run_node(Flaky, "node_main_flaky", []) == 0
    assert len(calls) >= 5

    class Broken(Node):
        def __init__(self) -> None:
            super().__init__("node_main_broken")
            self.create_timer(0.01, self._tick)

        def _tick(self) -> None:
            raise RuntimeError("something else")

    with pytest.raises(RuntimeError, match="something else"):
        run_node(Broken, "node_main_broken", [])
    assert not rclpy.ok()
