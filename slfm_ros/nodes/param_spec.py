"""One parameter specification per node.

Each node lists its parameters once as ``ParamSpec`` rows. The rows drive the rclpy
declarations (with descriptions), the documented ``config/slfm.yaml`` (``slfm config dump``),
the launch file's overrides and the ``slfm launch`` runner, so defaults cannot drift apart.
This module imports no rclpy: the launch runner and the tests use it without ROS.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from slfm_ros.core.errors import ConfigError

ParamValue = bool | int | float | str | list[str] | list[float] | list[int]


@dataclass(frozen=True)
class ParamSpec:
    """name, default (its Python type is the parameter type), unit ('' if none), help text,
    and optional allowed values."""

    name: str
    default: ParamValue
    help: str
    unit: str = ""
    choices: tuple[ParamValue, ...] = ()

    def validate(self, value: Any) -> ParamValue:
        expected = type(self.default)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        # `-p device:=2` reaches a node as an integer; a device name or index is a string here.
        if expected is str and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
            raise ConfigError(
                f"parameter '{self.name}': expected {expected.__name__}, got "
                f"{type(value).__name__} ({value!r})"
            )
        if self.choices and value not in self.choices:
            raise ConfigError(
                f"parameter '{self.name}': expected one of {list(self.choices)}, got {value!r}"
            )
        return value


@dataclass(frozen=True)
class NodeSpec:
    """A node of the package: its executable (console script) and parameters."""

    name: str
    executable: str
    params: tuple[ParamSpec, ...]
    description: str

    def defaults(self) -> dict[str, ParamValue]:
        return {p.name: p.default for p in self.params}

    def resolve(self, overrides: Mapping[str, Any]) -> dict[str, ParamValue]:
        """Defaults updated by ``overrides``; unknown names and wrong types raise ConfigError."""
        by_name = {p.name: p for p in self.params}
        unknown = sorted(set(overrides) - set(by_name))
        if unknown:
            raise ConfigError(
                f"node '{self.name}': unknown parameter(s) {unknown}; known: {sorted(by_name)}"
            )
        values = self.defaults()
        for key, value in overrides.items():
            values[key] = by_name[key].validate(value)
        return values


def _yaml_scalar(value: ParamValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_yaml_scalar(v) for v in value) + "]"
    return repr(value)


def render_params_yaml(nodes: Sequence[NodeSpec]) -> str:
    """A ROS 2 parameter file with every parameter of ``nodes`` and its documentation.

    Keys are ``/**/<node>`` so the file also applies when the nodes run in a namespace.
    """
    lines = [
        "# slfm_ros parameters. Generated from slfm_ros/nodes/*_params.py by `slfm config dump`;",
        "# edit values freely, the comments document each parameter.",
    ]
    for node in nodes:
        lines += [
            "",
            f"# {node.name}: {node.description}",
            f"/**/{node.name}:",
            "  ros__parameters:",
        ]
        for p in node.params:
            unit = f" [{p.unit}]" if p.unit else ""
            choices = f" One of: {', '.join(str(c) for c in p.choices)}." if p.choices else ""
            lines.append(f"    # {p.help}{unit}{choices}")
            lines.append(f"    {p.name}: {_yaml_scalar(p.default)}")
    return "\n".join(lines) + "\n"
