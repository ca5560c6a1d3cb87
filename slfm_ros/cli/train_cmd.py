"""``slfm train``: train a stage of the SLfM models.

    slfm train <stage> --config training/configs/<name>.yaml [--out DIR] [--resume]
               [--set key=value ...] [--stop-after STEPS]

stage: pretext | slfm | egomotion | supervised | probe (must match the config's ``stage``), or
``audio``: the compact audio recipe (training/configs/cue_audio/audio_cues.yaml, see
training/audio_run.py), ``audio-label-free``: the same network without labels, from turned
views (training/configs/cue_audio/audio_label_free.yaml, see training/label_free_run.py),
or ``assemble``: a compact model folder from an audio and a visual run:

    slfm train assemble --audio RUN --visual RUN --out DIR [--metrics FILE.json] [--name NAME]
DIR defaults to out/<config name>. ``--resume`` continues the run in DIR from its last
checkpoint, exactly. Under torchrun every process runs this command; they share DIR.

    slfm train adapt --bags BAG [BAG ...] --model DIR --out NEW_DIR [--networks audio]
               [--config training/configs/cue_audio/audio_adapt.yaml] [--set key=value ...]

fine-tunes a model's audio network on a robot's own recordings without labels (sensor topics
only; see training/adapt.py) into a new folder.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from slfm_ros.core.errors import ConfigError

STAGES = (
    "pretext",
    "slfm",
    "egomotion",
    "supervised",
    "probe",
    "audio",
    "audio-label-free",
    "adapt",
    "assemble",
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stage", choices=STAGES, help="training stage")
    parser.add_argument(
        "--config",
        help="training YAML, e.g. training/configs/slfm_small.yaml (every stage but assemble; "
        "adapt: optional, training/configs/cue_audio/audio_adapt.yaml documents its keys and "
        "defaults)",
    )
    parser.add_argument("--bags", nargs="+", metavar="BAG", help="adapt: the robot's recordings")
    parser.add_argument("--model", help="adapt: the model folder (or audio_net.pt) to start from")
    parser.add_argument(
        "--networks",
        default="audio",
        choices=("audio",),
        help="adapt: which network to fine-tune (the audio network)",
    )
    parser.add_argument(
        "--audio", help="assemble: run folder of `slfm train audio`, or a model folder"
    )
    parser.add_argument("--visual", help="assemble: run folder of the visual training")
    parser.add_argument("--metrics", help="assemble: JSON mapping of figures for the card")
    parser.add_argument("--name", default="default", help="assemble: the model's name")
    parser.add_argument("--out", help="run folder (default: out/<config name>)")
    parser.add_argument(
        "--resume", action="store_true", help="continue the run in --out from its checkpoint"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config key, e.g. --set optim.lr=3e-4 (repeatable)",
    )
    parser.add_argument(
        "--stop-after",
        type=int,
        metavar="STEPS",
        help="stop at this step (audio: epoch) with a checkpoint (continue later with --resume)",
    )


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    import yaml

    overrides = {}
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    return overrides


def _command() -> str:
    """The command line, without --resume: the card records how to reproduce the run."""
    return " ".join(shlex.quote(a) for a in ["slfm", *sys.argv[1:]] if a != "--resume")


def _run_label_free(args: argparse.Namespace) -> int:
    from slfm_training.label_free_run import load_label_free_config, run_label_free

    cfg = load_label_free_config(args.config, _overrides(args))
    out = Path(args.out) if args.out else Path("out") / Path(args.config).stem
    metrics = run_label_free(
        cfg, out, resume=args.resume, stop_after_epochs=args.stop_after, command=_command()
    )
    if not metrics["finished"]:
        print(f"stopped at epoch {metrics['epoch']}; continue with --resume --out {out}")
        return 0
    last = metrics["history"][-1]
    val = last.get("val_mae_deg", float("nan"))
    print(
        f"final: loss {last['loss']:.4f}, validation MAE {val:.2f} deg (monitoring only); "
        f"network written to {out}/audio_net.pt"
    )
    return 0


def _run_adapt(args: argparse.Namespace) -> int:
    from slfm_training.adapt import load_adapt_config, run_adapt

    missing = [f"--{n}" for n in ("bags", "model", "out") if not getattr(args, n)]
    if missing:
        raise ConfigError(f"slfm train adapt needs {', '.join(missing)}")
    if args.resume or args.stop_after is not None:
        raise ConfigError("slfm train adapt always writes a new folder: no --resume/--stop-after")
    cfg = load_adapt_config(args.config, _overrides(args))
    metrics = run_adapt(args.bags, args.model, args.out, cfg, args.networks, _command())
    print(
        f"adapted on {metrics['samples']} samples from {len(args.bags)} bag(s): label-free loss "
        f"{metrics['loss_before']:.4f} -> {metrics['loss_after']:.4f}; network written to "
        f"{args.out}/audio_net.pt"
    )
    return 0


def _run_audio(args: argparse.Namespace) -> int:
    from slfm_training.audio_run import load_audio_run_config, run_audio_training

    overrides = _overrides(args)
    cfg = load_audio_run_config(args.config, overrides)
    out = Path(args.out) if args.out else Path("out") / Path(args.config).stem
    metrics = run_audio_training(
        cfg, out, resume=args.resume, stop_after_epochs=args.stop_after, command=_command()
    )
    if not metrics["finished"]:
        print(f"stopped at epoch {metrics['epoch']}; continue with --resume --out {out}")
        return 0
    kept = metrics["history"][metrics["best_epoch"] - 1 if metrics["best_epoch"] else -1]
    val = kept.get("val_mae_deg", float("nan"))
    print(
        f"kept epoch {int(kept['epoch'])}: loss {kept['loss']:.4f}, validation MAE {val:.2f} deg; "
        f"network written to {out}/audio_net.pt"
    )
    return 0


def _run_assemble(args: argparse.Namespace) -> int:
    from slfm_training.assemble import assemble, read_metrics

    missing = [f"--{k}" for k in ("audio", "visual", "out") if not getattr(args, k)]
    if missing:
        raise ConfigError(f"slfm train assemble needs {', '.join(missing)}")
    path = assemble(args.audio, args.visual, args.out, read_metrics(args.metrics), args.name)
    print(f"model written to {path}")
    return 0


def run(args: argparse.Namespace) -> int:
    if args.stage == "assemble":
        return _run_assemble(args)
    if args.stage == "adapt":
        return _run_adapt(args)
    if not args.config:
        raise ConfigError(f"slfm train {args.stage} needs --config YAML")
    if args.stage == "audio":
        return _run_audio(args)
    if args.stage == "audio-label-free":
        return _run_label_free(args)
    try:
        from slfm_training.config import load_train_config
        from slfm_training.loop import train
    except ModuleNotFoundError as exc:
        if exc.name != "slfm_training":
            raise
        raise ConfigError(
            "the trainer package 'slfm_training' (the repository's training/ folder) is not "
            "importable: install slfm_ros from a source checkout (make setup, or pip install -e .)"
        ) from exc

    cfg = load_train_config(args.config, args.overrides)
    if cfg.stage != args.stage:
        raise ConfigError(
            f"{args.config} configures stage {cfg.stage!r}, not {args.stage!r}; use "
            f"`slfm train {cfg.stage}` or another config"
        )
    out = Path(args.out) if args.out else Path("out") / Path(args.config).stem
    command = " ".join(shlex.quote(a) for a in ["slfm", *sys.argv[1:]])
    result = train(cfg, out, resume=args.resume, stop_after=args.stop_after, command=command)
    if not result.main:
        return 0
    if not result.finished:
        print(f"stopped at step {result.step}; continue with --resume --out {out}")
        return 0
    final = result.metrics.get("final", {})
    summary = ", ".join(f"{k} {v:.4g}" for k, v in final.items() if isinstance(v, float))
    if summary:
        print(f"final validation: {summary}")
    print(f"model written to {out} (load with slfm_ros.core.models.checkpoint.load_model)")
    return 0
