"""The console-script lifecycle shared by the nodes: init, build, spin, clean shutdown.

Ctrl-C and an external shutdown end the node with status 0; an SlfmError while building or
running it (bad device, unreadable file, bad parameter) is logged as fatal and gives status 1.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import rclpy
from rclpy.executors import ExternalShutdownException
from rclpy.node import Node

from slfm_ros.core.errors import SlfmError

N = TypeVar("N", bound=Node)


# rclpy raises this from a subscription's take when it cannot turn a received message into a
# Python object; it happens now and then under heavy load (also in other ROS projects). It
# concerns one message, so the node drops it and goes on instead of dying.
_UNCONVERTIBLE = "Unable to convert call argument"


def spin_forever(node: Node) -> int:
    """Spin until shutdown; status 0. A message rclpy cannot convert is dropped with a warning,
    and an rclpy error raised because the context was shut down mid-spin ends the loop."""
    executor = rclpy.get_global_executor()
    executor.add_node(node)
    dropped = 0
    try:
        while executor.context.ok():
            try:
                executor.spin_once(timeout_sec=0.5)
            except RuntimeError as err:
                if not executor.context.ok():
                    # A shutdown (Ctrl-C, SIGTERM) landed while the executor was setting up
                    # its wait: rclpy then fails on the invalid context; that is the end asked for.
                    break
                if _UNCONVERTIBLE not in str(err):
                    raise
                dropped += 1
                node.get_logger().warning(
                    f"dropped a message rclpy could not convert ({dropped} so far): {err}"
                )
    finally:
        executor.remove_node(node)
    return 0


def run_node(
    make_node: Callable[[], N],
    logger_name: str,
    args: list[str] | None = None,
    spin: Callable[[N], int] = spin_forever,
) -> int:
    """Run a node from ``make_node`` until ``spin(node)`` returns; the process exit status.

    logger_name: the logger of the fatal line when the node cannot be built (no node yet).
    spin: runs the node and returns its exit status (default: spin until shutdown, 0).
    """
    rclpy.init(args=args)
    node: N | None = None
    code = 0
    try:
        node = make_node()
        code = spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except SlfmError as err:
        rclpy.logging.get_logger(logger_name).fatal(f"{type(err).__name__}: {err}")
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    return code
