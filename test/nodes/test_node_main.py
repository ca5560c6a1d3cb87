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
