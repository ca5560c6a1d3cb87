"""``slfm config``: the parameter YAML of all nodes.

slfm config dump [-o FILE]   the documented YAML rendered from the node specs (this is how
                             config/slfm.yaml is produced)
slfm config check FILE       validate a parameter file against the node specs
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from slfm_ros.core.errors import ConfigError


def render() -> str:
    """config/slfm.yaml as generated from every node's parameter spec."""
    from slfm_ros.nodes.launch_description import ALL_NODE_SPECS
    from slfm_ros.nodes.param_spec import render_params_yaml

    return render_params_yaml(ALL_NODE_SPECS)


def check_params_file(path: str | Path) -> list[str]:
    """Validate a ROS 2 parameter file against the node specs.

    Returns the node names it configures; raises ConfigError for unknown nodes, unknown
    parameters or values of the wrong type.
    """
    from slfm_ros.nodes.launch_description import ALL_NODE_SPECS

    specs = {s.name: s for s in ALL_NODE_SPECS}
    try:
        data = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"cannot read parameter file {path}: {err}") from err
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of node names, got {type(data).__name__}")
    seen = []
    for key, body in data.items():
        name = str(key).rsplit("/", 1)[-1]
        if name not in specs:
            raise ConfigError(f"{path}: unknown node {key!r}; known: {sorted(specs)}")
        if not isinstance(body, dict) or "ros__parameters" not in body:
            raise ConfigError(f"{path}: {key!r} needs a 'ros__parameters' mapping")
        specs[name].resolve(body["ros__parameters"] or {})
        seen.append(name)
    return seen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    dump = sub.add_parser("dump", help="print the documented parameter YAML of all nodes")
    dump.add_argument("-o", "--output", help="write to this file instead of stdout")
    check = sub.add_parser("check", help="validate a parameter file against the node specs")
    check.add_argument("file")


def run(args: argparse.Namespace) -> int:
    if args.action == "dump":
        text = render()
        if args.output:
            Path(args.output).write_text(text)
        else:
            sys.stdout.write(text)
        return 0
    nodes = check_params_file(args.file)
    print(f"{args.file}: ok ({', '.join(nodes)})")
    return 0
