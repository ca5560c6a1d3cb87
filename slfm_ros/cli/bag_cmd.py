"""``slfm bag``: evaluation bags.

slfm bag make --scenario NAME --out PATH [--format mcap|sqlite3] [--seconds S] [--seed N]
              [--receiver sofa:FILE|spherical_head[:RADIUS_M]|stereo_array[:SPACING_M]]
              [--no-ground-truth]
    write a simulated scenario as a rosbag2 with ground truth (never overwrites PATH)
slfm bag info PATH [--json]
    topics, types, counts, duration, rates and stamp gaps
slfm bag eval PATH [--mode offline|live] [--estimator auto|slfm|classic] [--backend B] [--rate R]
              [--rotation-source auto|odom|imu|camera|none] [--out DIR] [--json]
    replay the bag through slfm_node's processing (offline, in process) or through the real
    node over DDS (live), score the outputs and write report.json, summary.md and plots

Exit status of eval: 0 when the whole bag was evaluated; 3 when only part of it could be (the
report says which part and why); 2 when nothing could be evaluated.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

EXIT_PARTIAL = 3


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from slfm_ros.bags.scenarios import SCENARIO_NAMES
    from slfm_ros.bags.writer import STORAGE_FORMATS
    from slfm_ros.core.tracking.rotation_source import ROTATION_SOURCES
    from slfm_ros.nodes.slfm_params import BACKENDS, DIRECTION_OUTPUTS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 1)[1]
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    make = sub.add_parser("make", help="write a simulated scenario as a bag with ground truth")
    make.add_argument("--scenario", required=True, choices=SCENARIO_NAMES)
    make.add_argument("--out", required=True, help="bag folder to create (must not exist)")
    make.add_argument("--format", default="mcap", choices=STORAGE_FORMATS)
    make.add_argument("--seconds", type=float, default=None, help="length (default: 20 s)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--fps", type=float, default=15.0, help="camera frame rate")
    make.add_argument("--width", type=int, default=320, help="image width (px)")
    make.add_argument("--height", type=int, default=240, help="image height (px)")
    make.add_argument(
        "--receiver",
        default="stereo_array",
        metavar="sofa:FILE|spherical_head[:RADIUS_M]|stereo_array[:SPACING_M]",
        help="microphones: a free-field pair (default 0.14 m, slfm_node's default), a rigid "
        "spherical head (default radius 0.0875 m) or the measured head of a SOFA file",
    )
    make.add_argument(
        "--no-ground-truth",
        action="store_true",
        help="write the sensor topics only (no /ground_truth/*), as a robot records them",
    )

    info = sub.add_parser("info", help="topics, counts, rates and stamp gaps of a bag")
    info.add_argument("path")
    info.add_argument("--json", action="store_true", help="print one JSON object")

    ev = sub.add_parser("eval", help="replay a bag through slfm_node and score it")
    ev.add_argument("path")
    ev.add_argument("--mode", default="offline", choices=("offline", "live"))
    ev.add_argument(
        "--estimator",
        default=None,
        choices=("auto", "slfm", "classic"),
        help="slfm_node estimator (default: the node's, auto)",
    )
    ev.add_argument("--backend", default=None, choices=BACKENDS)
    ev.add_argument("--model-dir", default=None, help="slfm_node model_dir")
    ev.add_argument("--params-file", default=None, help="slfm_node parameters (default: shipped)")
    ev.add_argument("--rate", type=float, default=1.0, help="live play speed (1 = real time)")
    ev.add_argument("--out", default=None, help="report folder (default: out/bag-eval/NAME-MODE)")
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--audio-topic", default="", help="AudioDataStamped topic (default: by type)")
    ev.add_argument("--audio-info-topic", default="", help="AudioInfo topic (default: by type)")
    ev.add_argument("--image-topic", default="", help="Image topic (default: by type)")
    ev.add_argument(
        "--odom-topic", default="", help="Odometry topic of the robot (default: /odom if present)"
    )
    ev.add_argument("--imu-topic", default="", help="Imu topic (default: the only one, if any)")
    ev.add_argument(
        "--rotation-source",
        default=None,
        choices=ROTATION_SOURCES,
        help="slfm_node rotation_source: where the tracker takes the robot's yaw from",
    )
    ev.add_argument(
        "--sound-direction-output",
        default=None,
        choices=DIRECTION_OUTPUTS,
        help="slfm_node sound_direction_output (tracked: resolved bearings once decided)",
    )


def _make(args: argparse.Namespace) -> int:
    from slfm_ros.bags.make import make_bag, summary_line
    from slfm_ros.bags.scenarios import StreamSettings, receiver_settings

    settings = StreamSettings(
        fps=args.fps,
        width=args.width,
        height=args.height,
        **receiver_settings(args.receiver),  # type: ignore[arg-type]
    )
    made = make_bag(
        args.scenario,
        args.out,
        args.format,
        args.seconds,
        args.seed,
        settings,
        ground_truth=not args.no_ground_truth,
    )
    print(summary_line(made))
    return 0


def _info(args: argparse.Namespace) -> int:
    from slfm_ros.bags.info import bag_info, format_info

    info = bag_info(args.path)
    print(json.dumps(info, indent=1) if args.json else format_info(info))
    return EXIT_PARTIAL if info["damage"] else 0


def evaluate(
    path: str | Path,
    mode: str = "offline",
    overrides: dict[str, object] | None = None,
    params_file: str | None = None,
    rate: float = 1.0,
    out: str | Path | None = None,
    topics: dict[str, str] | None = None,
    progress: bool = False,
) -> tuple[dict[str, Any], list[Path]]:
    """Replay and score one bag; returns the report and the files written to ``out``."""
    from slfm_ros.bags.inputs import plan_inputs
    from slfm_ros.bags.params import load_node_params
    from slfm_ros.bags.reader import open_bag
    from slfm_ros.bags.report import build_report, write_report

    params = load_node_params(params_file, overrides)
    folder = Path(out) if out else Path("out") / "bag-eval" / f"{Path(path).name}-{mode}"
    with open_bag(path) as reader:
        plan = plan_inputs(reader, **(topics or {}))
        if mode == "live":
            from slfm_ros.bags.replay_live import replay_live

            replay = replay_live(
                reader,
                plan,
                params,
                rate=rate,
                work_dir=folder,
                progress=sys.stderr if progress else None,
            )
        else:
            from slfm_ros.bags.replay_offline import replay_offline

            replay = replay_offline(reader, plan, params)
        report = build_report(reader, replay)
    return report, write_report(report, folder)


def _eval(args: argparse.Namespace) -> int:
    from slfm_ros.bags.report import format_table, summary_json, table_rows

    overrides = {
        "estimator": args.estimator,
        "backend": args.backend,
        "model_dir": args.model_dir,
        "rotation_source": args.rotation_source,
        "sound_direction_output": args.sound_direction_output,
    }
    topics = {
        "audio_topic": args.audio_topic,
        "audio_info_topic": args.audio_info_topic,
        "image_topic": args.image_topic,
        "odom_topic": args.odom_topic,
        "imu_topic": args.imu_topic,
    }
    report, files = evaluate(
        args.path,
        args.mode,
        overrides,
        args.params_file,
        args.rate,
        args.out,
        topics,
        progress=not args.json,
    )
    if args.json:
        print(json.dumps(summary_json(report)))
    else:
        print(f"{report['bag']} ({report['mode']}):")
        print(format_table(table_rows(report)))
        for problem in report["problems"]:
            print(f"  problem: {problem}")
        for note in report["notes"]:
            print(f"  note: {note}")
        print(f"report: {files[0].parent}")
    if report["partial"]:
        print(
            "slfm bag eval: partial report: only part of the bag could be evaluated (see problems)",
            file=sys.stderr,
        )
        return EXIT_PARTIAL
    return 0


def run(args: argparse.Namespace) -> int:
    return {"make": _make, "info": _info, "eval": _eval}[args.action](args)
