"""Declares a NodeSpec's parameters on an rclpy node and reads them back validated."""

from __future__ import annotations

from rcl_interfaces.msg import ParameterDescriptor
from rclpy.node import Node

from slfm_ros.nodes.param_spec import NodeSpec, ParamValue


def declare_node_params(node: Node, spec: NodeSpec) -> dict[str, ParamValue]:
    """Declare every parameter of ``spec`` (with its help text) and return the values.

    Values come from the parameter file / command line when given, else the spec's defaults.
    They are declared read-only (the node reads them once at start-up) and dynamically typed
    so that ``hop_s: 1`` in YAML is accepted for a float; ``ParamSpec.validate`` then checks
    the type and choices and raises ConfigError naming the parameter.
    """
    values: dict[str, ParamValue] = {}
    for p in spec.params:
        text = p.help + (f" [{p.unit}]" if p.unit else "")
        if p.choices:
            text += f" One of: {', '.join(str(c) for c in p.choices)}."
        descriptor = ParameterDescriptor(description=text, read_only=True, dynamic_typing=True)
        value: object = node.declare_parameter(p.name, p.default, descriptor).value
        values[p.name] = p.validate(value)
    return values
