"""``slfm follow-demo``: the robot turns toward a talker, closed loop over real DDS.

    slfm follow-demo --source-azimuth DEG [--receiver stereo_array|spherical_head]
                     [--room room|anechoic] [--seed S] [--seconds S] [--out DIR] [--json]

Starts sim_robot (the talker at DEG in the world, the robot facing 0 deg), slfm_node and
sound_follower as processes over DDS (``slfm_ros.cli.follow_run``), and prints how the robot
did: time to face the source (within 10 deg, and staying there), final heading error, whether
the first committed turn went the right way and whether the tracker decided front/back
correctly. With --json, one object with the keys ``time_to_face_s``,
``final_heading_error_deg``, ``first_turn_correct``, ``front_back_correct`` (and the details
below them). It writes follow_<DEG>_<receiver>_seed<S>.png (heading and source bearing over
time), the same name .json, and the nodes' log into --out (default out/follow-demo).

Exit status: 0 when the robot faced the source within 8 s with the right first turn and the
right front/back decision, 1 when it did not, 2 when the run could not be made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

SUMMARY_KEYS = (
    "time_to_face_s",
    "final_heading_error_deg",
    "first_turn_correct",
    "front_back_correct",
)
LABELS = {
    "time_to_face_s": "time to face the source (s)",
    "final_heading_error_deg": "final heading error (deg)",
    "first_turn_correct": "first committed turn the right way",
    "front_back_correct": "front/back decided correctly",
    "front_back_decided_s": "front/back decided at (s)",
    "first_probe_direction": "first probe turn",
    "first_probe_correct": "first probe turn the right way",
    "first_commit_direction": "first committed turn",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from slfm_ros.core.sim_robot.robot import RECEIVERS, ROOMS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument("--source-azimuth", type=float, required=True, metavar="DEG")
    parser.add_argument("--receiver", choices=RECEIVERS, default="stereo_array")
    parser.add_argument("--room", choices=ROOMS, default="room")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=12.0, help="run length (default 12)")
    parser.add_argument("--out", default="out/follow-demo", help="output folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def case_name(azimuth_deg: float, receiver: str, seed: int) -> str:
    return f"follow_{azimuth_deg:+.0f}_{receiver}_seed{seed}"


def run(args: argparse.Namespace) -> int:
    from slfm_ros.cli.follow_run import FollowOptions, follow_run
    from slfm_ros.evaluation.follow_scoring import plot_run, score_run

    options = FollowOptions(args.source_azimuth, args.receiver, args.room, args.seed, args.seconds)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = case_name(args.source_azimuth, args.receiver, args.seed)
    started = time.monotonic()
    progress = sys.stderr if args.json else sys.stdout
    record = follow_run(options, out / f"{name}-logs", progress=progress)
    scores = score_run(record)
    title = (
        f"talker at {args.source_azimuth:g}°, {args.receiver}, {args.room}, seed {args.seed}: "
        + ("faced" if scores["passed"] else "NOT faced as required")
    )
    plot = plot_run(record, scores, out / f"{name}.png", title)
    scores.update(
        {
            "receiver": args.receiver,
            "room": args.room,
            "seed": args.seed,
            "plot": str(plot),
            "wall_s": round(time.monotonic() - started, 1),
        }
    )
    (out / f"{name}.json").write_text(json.dumps(scores, indent=2) + "\n")
    if args.json:
        ordered = {k: scores[k] for k in SUMMARY_KEYS}
        ordered.update({k: v for k, v in scores.items() if k not in ordered})
        print(json.dumps(ordered))
    else:
        print()
        for key, label in LABELS.items():
            value = scores[key]
            text = "never" if value is None and key == "time_to_face_s" else value
            print(f"  {label:<40} {text}")
        print(f"\n  {'passed' if scores['passed'] else 'FAILED'}; plot: {plot}")
    return 0 if scores["passed"] else 1
