"""``slfm adapt-demo``: a model learns a receiver it never trained on from the robot's own
recordings, without labels, and is scored before and after on fresh recordings.

    slfm adapt-demo [--receiver SPEC] [--model DIR] [--seconds S] [--out DIR] [--json]

1. Records (renders) turning bags through the receiver SPEC with sensor topics only
   (``slfm bag make --no-ground-truth``): the robot turns while one source plays.
2. Adapts the model's audio network on them (``slfm train adapt``) into OUT/adapted.
3. Records fresh bags of other scenes through the same receiver, with ground truth, and
   replays them through slfm_node (``slfm bag eval``) with the model before and after
   adapting (alone, and fused with the classical estimator as ``estimator: auto``, the node's
   default), and with the classical estimator (``estimator: classic``: the node's
   ``audio_estimator``, GCC-PHAT by default) given the node's default
   receiver, the receiver adapt calibrated from the
   turning bags, and the true one (for a measured head: its own HRIRs' delay curve,
   ``receiver: measured``).

Before adapting the node is left at its default receiver parameters, as on a robot whose
microphones nobody measured; after, it runs with ``receiver: calibrated`` (the receiver adapt
fitted, when it could). Bags and the adapted model already in OUT are reused, never
overwritten, so a second run only scores; OUT remembers the receiver, model and length it was
made for and is refused for others. Writes OUT/adapt_demo.json and OUT/adapt_demo.png.
Exit status 0 when every step ran (whatever the scores), 2 when a step could not be made.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

ADAPT_SCENARIOS = (
    "behind",
    "intermittent",
    "reverberant",
    "sweeping-speaker",
    "translating",
    "turning-speaker",
    "two-sources-music",
)
EVAL_SCENARIOS = ("turning-speaker", "reverberant", "behind")
ADAPT_SEED, EVAL_SEED = 0, 1
ADAPT_FPS = 5.0
ROWS = (
    "before",
    "after",
    "after_auto",
    "gcc_phat_default",
    "gcc_phat_calibrated",
    "gcc_phat_true",
)
ROW_LABELS = {
    "before": "model before adapting",
    "after": "model after adapting",
    "after_auto": "after, fused with classical (auto)",
    "gcc_phat_default": "classical, node's default receiver",
    "gcc_phat_calibrated": "classical, calibrated receiver",
    "gcc_phat_true": "classical, true receiver geometry",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = __doc__.split("\n\n", 2)[2]
    parser.add_argument(
        "--receiver",
        default="stereo_array:0.30",
        metavar="sofa:FILE|spherical_head:RADIUS_M|stereo_array:SPACING_M",
        help="the robot's microphones (default: a free-field pair 0.30 m apart)",
    )
    parser.add_argument("--model", default=None, help="model to adapt (default: the shipped one)")
    parser.add_argument("--seconds", type=float, default=30.0, help="length of each bag (s)")
    parser.add_argument("--out", default="out/adapt-demo", help="output folder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def true_geometry(receiver: str) -> dict[str, object] | None:
    """slfm_node parameters that describe ``receiver`` exactly: its geometry, or for a
    measured head the delay curve of its own HRIRs (``receiver: measured``)."""
    from slfm_ros.bags.scenarios import receiver_settings

    settings = receiver_settings(receiver)
    if settings["receiver"] == "stereo_array":
        return {"receiver": "free_field", "mic_spacing_m": settings.get("mic_spacing_m", 0.14)}
    if settings["receiver"] == "spherical_head":
        return {"receiver": "spherical_head", "head_radius_m": settings.get("head_radius_m")}
    if settings["receiver"] == "sofa":
        return {"receiver": "measured", "hrtf_path": str(settings["sofa_path"])}
    return None


def _bag(scenario: str, path: Path, seconds: float, seed: int, receiver: str, truth: bool) -> Path:
    from slfm_ros.bags.make import make_bag
    from slfm_ros.bags.scenarios import StreamSettings, receiver_settings

    if path.exists():
        return path
    settings = StreamSettings(fps=ADAPT_FPS, **receiver_settings(receiver))  # type: ignore[arg-type]
    make_bag(scenario, path, "mcap", seconds, seed, settings, ground_truth=truth)
    return path


def _adapt(bags: list[Path], model: str, out: Path, say: Callable[[str], None]) -> str:
    from slfm_ros.core.errors import InputFormatError
    from slfm_training.adapt import load_adapt_config, read_recording, run_adapt
    from slfm_training.audio_net_io import load_audio_net

    if (out / "card.yaml").is_file() or (out / "audio_net.pt").is_file():
        return f"reusing the adapted model in {out}"
    cfg = load_adapt_config(None)
    cues = load_audio_net(model).cues
    usable = []
    for bag in bags:
        try:
            read_recording(bag, cues, cfg)
        except InputFormatError as exc:  # adapt would refuse the whole set for this bag
            say(f"left out of adapting: {exc}")
        else:
            usable.append(bag)
    if not usable:
        raise InputFormatError("no recording can be adapted on (see the reasons above)")
    bags = usable
    command = f"slfm train adapt --bags {' '.join(map(str, bags))} --model {model} --out {out}"
    metrics = run_adapt([str(b) for b in bags], model, out, cfg, "audio", command)
    return (
        f"adapted on {metrics['samples']} samples: label-free loss "
        f"{metrics['loss_before']:.4f} -> {metrics['loss_after']:.4f}"
    )


def _score(bag: Path, overrides: dict[str, object], out: Path) -> float | None:
    from slfm_ros.cli.bag_cmd import evaluate

    report, _ = evaluate(bag, "offline", overrides, out=out)
    value = report.get("azimuth_mae_deg")
    return None if value is None else float(value)


def run(args: argparse.Namespace) -> int:
    from slfm_ros.core.streaming.estimator_setup import default_model_dir

    # With --json, stdout holds only the summary; progress goes to stderr.
    def say(text: str) -> None:
        print(text, file=sys.stderr if args.json else sys.stdout)

    started = time.monotonic()
    out = Path(args.out)
    model = str(args.model or default_model_dir())
    mismatch = _settings_mismatch(
        out, {"receiver": args.receiver, "model": model, "seconds": args.seconds}
    )
    if mismatch:
        print(f"slfm adapt-demo: {mismatch}", file=sys.stderr)
        return 2
    (out / "bags").mkdir(parents=True, exist_ok=True)
    say(f"recording {len(ADAPT_SCENARIOS)} turning bags through {args.receiver} (no ground truth)")
    adapt_bags = [
        _bag(s, out / "bags" / f"adapt-{s}", args.seconds, ADAPT_SEED, args.receiver, False)
        for s in ADAPT_SCENARIOS
    ]
    say(_adapt(adapt_bags, model, out / "adapted", say))
    geometry = true_geometry(args.receiver)
    adapted = str(out / "adapted")
    calibrated = _calibration(out / "adapted")
    if calibrated is not None:
        say(f"calibrated receiver: {calibrated}")
    own_ears = {"model_dir": adapted, "receiver": "calibrated"} if calibrated else {}
    settings: dict[str, dict[str, object] | None] = {
        "before": {"estimator": "slfm", "model_dir": model},
        "after": {"estimator": "slfm", "model_dir": adapted, **own_ears},
        "after_auto": {"estimator": "auto", "model_dir": adapted, **own_ears},
        "gcc_phat_default": {"estimator": "classic"},
        "gcc_phat_calibrated": {"estimator": "classic", **own_ears} if calibrated else None,
        "gcc_phat_true": None if geometry is None else {"estimator": "classic", **geometry},
    }
    results: dict[str, dict[str, float | None]] = {}
    for scenario in EVAL_SCENARIOS:
        path = out / "bags" / f"eval-{scenario}"
        bag = _bag(scenario, path, args.seconds, EVAL_SEED, args.receiver, True)
        say(f"scoring a fresh {scenario} bag")
        results[scenario] = {
            row: None if params is None else _score(bag, params, out / "eval" / scenario / row)
            for row, params in settings.items()
        }
    summary = {
        "receiver": args.receiver,
        "model": model,
        "adapted_model": adapted,
        "calibrated_receiver": calibrated,
        "azimuth_mae_deg": results,
        "wall_s": round(time.monotonic() - started, 1),
    }
    plot = _plot(results, out / "adapt_demo.png", args.receiver)
    summary["plot"] = str(plot)
    (out / "adapt_demo.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    else:
        print(_table(results))
        print(f"plot: {plot}")
    return 0


def _calibration(model: Path) -> dict[str, object] | None:
    """The receiver adapt calibrated for ``model`` (its card's entry), None when none."""
    from slfm_training.audio_net_io import load_audio_net

    found = load_audio_net(model).calibrated_receiver
    return None if found is None else found.to_dict()


def _settings_mismatch(out: Path, settings: dict[str, object]) -> str | None:
    """Why ``out`` cannot serve a run with ``settings`` (None: it can, and now records them).

    Bags and the adapted model in ``out`` are reused, so a folder made for another receiver,
    model or length would silently score the wrong recordings; it is refused, not overwritten.
    """
    record = out / "demo_settings.json"
    if record.is_file():
        earlier = json.loads(record.read_text())
        changed = [k for k, v in settings.items() if earlier.get(k) != v]
        if changed:
            before = ", ".join(f"{k}={earlier.get(k)}" for k in changed)
            now = ", ".join(f"{k}={settings[k]}" for k in changed)
            return (
                f"{out} holds the bags and adapted model of a run with {before}, not {now}; "
                "give another --out (its contents are kept)"
            )
        return None
    if (out / "bags").is_dir() or (out / "adapted").exists():
        return (
            f"{out} holds bags or an adapted model of an earlier run whose settings are not "
            "recorded; give another --out (its contents are kept)"
        )
    out.mkdir(parents=True, exist_ok=True)
    record.write_text(json.dumps(settings, indent=2) + "\n")
    return None


def _table(results: dict[str, dict[str, float | None]]) -> str:
    scenarios = list(results)
    head = f"  {'azimuth MAE, front-folded (deg)':<36}" + "".join(f"{s:>20}" for s in scenarios)
    lines = [head]
    for row in ROWS:
        cells = "".join(
            f"{'n/a' if results[s][row] is None else format(results[s][row], '.2f'):>20}"
            for s in scenarios
        )
        lines.append(f"  {ROW_LABELS[row]:<36}{cells}")
    return "\n".join(lines)


def _plot(results: dict[str, dict[str, float | None]], path: Path, receiver: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    scenarios = list(results)
    fig, ax = plt.subplots(figsize=(7.5, 3.6))
    width = 0.8 / len(ROWS)
    for i, row in enumerate(ROWS):
        values = [results[s][row] for s in scenarios]
        x = np.arange(len(scenarios)) + (i - (len(ROWS) - 1) / 2) * width
        ax.bar(x, [np.nan if v is None else v for v in values], width, label=ROW_LABELS[row])
    ax.set_xticks(np.arange(len(scenarios)), scenarios)
    ax.set_ylabel("azimuth MAE, front-folded (deg)")
    ax.set_title(f"adapting to {receiver} without labels")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
