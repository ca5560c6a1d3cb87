"""``slfm sim-robot``: a simulated robot in a simulated room, in real time over DDS.

    slfm sim-robot [--source-azimuth DEG] [--receiver stereo_array|spherical_head]
                   [--room room|anechoic] [--seed S] [--namespace NS] [name:=value ...]

Starts the ``sim_robot`` node (slfm_ros.nodes.sim_robot_node): it turns in place as
``cmd_vel`` (geometry_msgs/Twist) says and publishes binaural audio + AudioInfo, camera images
+ CameraInfo, ``odom`` and ground truth on the topics mic_node and camera_node use, so
``slfm launch use_mic:=false use_camera:=false use_follower:=true`` closes the loop. Any
parameter of the node can be set as ``name:=value`` (``--list-params`` shows them). Ctrl-C
stops it.
"""

from __future__ import annotations

import argparse
import os
import shlex
import sys

import yaml

from slfm_ros.core.errors import ConfigError

SIM_ROBOT_MODULE = "slfm_ros.nodes.sim_robot_node"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from slfm_ros.core.sim_robot.robot import RECEIVERS, ROOMS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument(
        "--source-azimuth",
        type=float,
        default=None,
        metavar="DEG",
        help="world bearing of the talker from the robot's start heading (default 150)",
    )
    parser.add_argument(
        "--receiver",
        choices=RECEIVERS,
        default=None,
        help="microphones: a 0.14 m free-field pair (default, slfm_node's default geometry) "
        "or a spherical head",
    )
    parser.add_argument("--room", choices=ROOMS, default=None, help="default: room")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--namespace", default="", help="namespace of the node and its topics")
    parser.add_argument(
        "--fastdds-profile",
        default="",
        help="Fast DDS XML profile; empty = the shipped large-data profile; none = defaults",
    )
    parser.add_argument("--list-params", action="store_true", help="list the parameters")
    parser.add_argument("--dry-run", action="store_true", help="print the command and exit")
    parser.add_argument("assignments", nargs="*", metavar="name:=value")


def sim_robot_overrides(args: argparse.Namespace) -> dict[str, object]:
    """Parameter values from the options and ``name:=value`` assignments, validated."""
    from slfm_ros.cli.launch import parse_assignments
    from slfm_ros.nodes.sim_robot_params import SIM_ROBOT_NODE

    values: dict[str, object] = {}
    for option, param in (
        ("source_azimuth", "talker_azimuth_deg"),
        ("receiver", "receiver"),
        ("room", "room"),
        ("seed", "seed"),
    ):
        if getattr(args, option) is not None:
            values[param] = getattr(args, option)
    by_name = {p.name: p for p in SIM_ROBOT_NODE.params}
    for name, text in parse_assignments(args.assignments).items():
        if name not in by_name:
            raise ConfigError(f"sim_robot has no parameter {name!r}; --list-params lists them")
        raw = text if isinstance(by_name[name].default, str) else yaml.safe_load(text)
        values[name] = raw
    resolved = SIM_ROBOT_NODE.resolve(values)
    return {k: resolved[k] for k in values}


def sim_robot_command(
    overrides: dict[str, object], namespace: str = "", python: str = sys.executable
) -> list[str]:
    """The command line of the sim_robot node with these parameter values."""
    from slfm_ros.nodes.launch_description import normalize_namespace, ros_arg_value

    cmd = [python, "-m", SIM_ROBOT_MODULE, "--ros-args", "-r", "__node:=sim_robot"]
    ns = normalize_namespace(namespace)
    if ns:
        cmd += ["-r", f"__ns:={ns}"]
    for name, value in overrides.items():
        cmd += ["-p", f"{name}:={ros_arg_value(value)}"]  # type: ignore[arg-type]
    return cmd


def run(args: argparse.Namespace) -> int:
    from slfm_ros.cli.launch import Launcher, supervise
    from slfm_ros.nodes.launch_description import dds_environment
    from slfm_ros.nodes.sim_robot_params import SIM_ROBOT_NODE

    if args.list_params:
        for p in SIM_ROBOT_NODE.params:
            unit = f" [{p.unit}]" if p.unit else ""
            print(f"{p.name} = {p.default!r}{unit}\n    {p.help}")
        return 0
    cmd = sim_robot_command(sim_robot_overrides(args), args.namespace)
    env = dds_environment(args.fastdds_profile, os.environ)
    if args.dry_run:
        for key, value in env.items():
            print(f"env {key}={value}")
        print(shlex.join(cmd))
        return 0
    return supervise(Launcher([("sim_robot", cmd)], env))
