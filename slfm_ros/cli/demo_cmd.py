"""``slfm demo``: the product end to end on a simulated recording, no hardware needed.

1. Writes a bag of the ``turning-speaker`` scenario (a static talker, the robot turning back
   and forth; 20 s) with ground truth into the output folder.
2. Starts the real slfm_node with the shipped parameters and model and plays the bag to it
   over DDS in real time (``slfm bag eval --mode live``).
3. Replays the same bag offline through the same processing code with the classical
   estimators (GCC-PHAT + ORB), so the learned and the classical scores stand side by side.
4. Prints the table and writes report.json, summary.md and plots of each run next to the bag.

When no trained model is shipped, the node runs its classical fallback; the table says so.
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

# Written into the demo's own bag folder so a rerun may replace it (and nothing else).
MARKER = ".slfm_demo"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from slfm_ros.bags.scenarios import SCENARIO_NAMES

    parser.add_argument("--out", default="out/demo", help="output folder (default: out/demo)")
    parser.add_argument("--scenario", default="turning-speaker", choices=SCENARIO_NAMES)
    parser.add_argument("--seconds", type=float, default=20.0, help="bag length (default: 20)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--mode", default="live", choices=("live", "offline"))
    parser.add_argument("--rate", type=float, default=1.0, help="live play speed")


def _fresh_bag_folder(out: Path, name: str) -> Path:
    bag = out / name
    if bag.exists():
        if not (out / f"{name}{MARKER}").exists():
            from slfm_ros.core.errors import ConfigError

            raise ConfigError(
                f"{bag} exists and was not written by slfm demo: choose another --out folder"
            )
        shutil.rmtree(bag)
    return bag


def run(args: argparse.Namespace) -> int:
    from slfm_ros.bags.make import make_bag, summary_line
    from slfm_ros.bags.report import side_by_side, table_rows
    from slfm_ros.cli.bag_cmd import evaluate

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    name = f"{args.scenario}-bag"
    bag = _fresh_bag_folder(out, name)
    started = time.monotonic()
    print(f"[1/4] rendering the {args.scenario} scenario ({args.seconds:.0f} s) ...", flush=True)
    made = make_bag(args.scenario, bag, "mcap", args.seconds, args.seed)
    (out / f"{name}{MARKER}").write_text("bag folder written by slfm demo\n")
    print(f"      {summary_line(made)}", flush=True)
    what = "starting slfm_node and playing the bag to it" if args.mode == "live" else "replaying"
    print(f"[2/4] {what} ({args.mode}) ...", flush=True)
    report, files = evaluate(bag, args.mode, {}, None, args.rate, out / "report", progress=True)
    print("[3/4] the same bag with the classical estimators (offline replay) ...", flush=True)
    classic, classic_files = evaluate(
        bag, "offline", {"estimator": "classic"}, None, out=out / "report-classic"
    )
    print(f"[4/4] results ({time.monotonic() - started:.0f} s in all):\n", flush=True)
    shipped = "shipped model" if not report.get("fallback_reason") else "node (fallback)"
    print(
        side_by_side(
            [(f"{shipped}, {args.mode}", table_rows(report)), ("classical", table_rows(classic))]
        )
    )
    files = files + classic_files
    if report.get("fallback_reason"):
        print(
            "\nNOTE: the learned SLfM model was not used: "
            f"{report['fallback_reason']}\n      The node ran its classical estimators "
            f"({report['estimators']}); train a model (slfm train) or set model_dir."
        )
    for problem in report["problems"]:
        print(f"  problem: {problem}")
    print(f"\nreport and plots: {files[0].parent}")
    for f in files:
        print(f"  {f}")
    return 0
