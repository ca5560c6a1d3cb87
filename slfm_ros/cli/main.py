"""Entry point of the ``slfm`` command.

Each subcommand lives in its own module of ``slfm_ros.cli`` with

    def add_arguments(parser: argparse.ArgumentParser) -> None   # its options
    def run(args: argparse.Namespace) -> int                    # exit status

and one row in COMMANDS. Only the chosen subcommand's module is imported, so ``slfm --help``
and light commands stay fast and do not need torch, rclpy or OpenCV.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType

from slfm_ros.core.errors import SlfmError


@dataclass(frozen=True)
class Command:
    name: str
    module: str
    help: str


COMMANDS: tuple[Command, ...] = (
    Command("launch", "slfm_ros.cli.launch", "start the slfm_ros nodes (like ros2 launch)"),
    Command("config", "slfm_ros.cli.config_cmd", "print or check the parameter YAML"),
    Command("simulate", "slfm_ros.cli.simulate", "render a multi-view training dataset"),
    Command("train", "slfm_ros.cli.train_cmd", "train a stage of the SLfM models"),
    Command("eval", "slfm_ros.cli.eval_cmd", "score estimators on held-out data"),
    Command("export", "slfm_ros.cli.export_cmd", "export the networks to ONNX with a parity check"),
    Command("bench", "slfm_ros.cli.bench_cmd", "benchmark backends or the real-time pipeline"),
    Command("bag", "slfm_ros.cli.bag_cmd", "make and inspect evaluation rosbags"),
    Command("demo", "slfm_ros.cli.demo_cmd", "simulated bag -> live slfm_node -> scores and plots"),
    Command(
        "sim-robot",
        "slfm_ros.cli.sim_robot_cmd",
        "a simulated robot turning in a room, in real time over DDS",
    ),
    Command(
        "follow-demo",
        "slfm_ros.cli.follow_demo_cmd",
        "closed loop: sim-robot, slfm_node and sound_follower turn toward a talker",
    ),
    Command(
        "adapt-demo",
        "slfm_ros.cli.adapt_demo_cmd",
        "a model learns an unknown receiver from turning bags, without labels; before/after",
    ),
)


def _load(command: Command) -> ModuleType:
    return importlib.import_module(command.module)


def build_parser(selected: str | None = None) -> argparse.ArgumentParser:
    """Parser with every subcommand listed; only ``selected`` gets its own arguments."""
    parser = argparse.ArgumentParser(
        prog="slfm", description="Sound Localization from Motion for ROS 2"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in COMMANDS:
        p = sub.add_parser(command.name, help=command.help, description=command.help)
        if command.name == selected:
            _load(command).add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_in = list(sys.argv[1:] if argv is None else argv)
    names = {c.name: c for c in COMMANDS}
    selected = next((a for a in args_in if not a.startswith("-")), None)
    command = names.get(selected) if selected else None
    args = build_parser(command.name if command else None).parse_args(args_in)
    # Warnings of the library (a SOFA file whose metadata contradicts its data, say) go to
    # stderr, so that the JSON and tables on stdout stay clean.
    logging.basicConfig(level=logging.WARNING, format="slfm %(levelname)s: %(message)s")
    module = _load(names[args.command])
    try:
        return int(module.run(args))
    except SlfmError as err:
        print(f"slfm {args.command}: {type(err).__name__}: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
