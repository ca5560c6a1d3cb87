"""``slfm eval``: score estimators on data the project never saw.

    slfm eval rotation --panoramas DIR [--fov 60] [--pitch -22.5] [--pairs-per-image 20]
        [--seed S] [--estimator classic|slfm] [--visual-estimator orb|sift|cylinder]
        [--model DIR] [--json]
    slfm eval audio (--hrtf FILE.sofa | --brirs DIR) --sources DIR [--reverb none|room]
        [--estimator classic|gcc_phat|gcc_phat_onset|iid|srp_phat|music|slfm] [--model DIR] [--json]
    slfm eval synthetic --data DIR [--estimator ...] [--visual-estimator orb|sift|cylinder] [--json]
    slfm eval report --data DIR [--model DIR] [--backend auto|tensorrt|onnxruntime|torch]
        [--compare LABEL=DIR ...] [--baselines gcc_phat,gcc_phat_onset,iid,orb] [--limit N]
        [--out DIR] [--json]

With --json one JSON object goes to stdout: ``n`` and, for audio, azimuth_mae_deg,
azimuth_median_deg, lr_accuracy (0..1); for rotation, yaw_mae_deg, yaw_median_deg,
yaw_valid_fraction, and the MAE of pairs turned by less than 60 deg and by 60 deg or more
(yaw_mae_small_turns_deg, yaw_mae_large_turns_deg; yaw_n_large_turns of them: at a 60 deg
field of view they share no view; yaw_wrong_sign_large_turns: the share of them estimated the
other way round); synthetic prints both groups, where ``n`` counts samples,
``audio_n`` the clips scored (each view whose target is in front of it) and ``yaw_n`` the view
pairs scored (view 0 with each other view). Otherwise a table, followed by what its counts
count. The classic visual estimator is ORB feature matching with a rotation-only RANSAC by
default, as in slfm_node and ``slfm bag eval``; ``--visual-estimator sift`` picks SIFT instead.
``report`` writes results.md, results.json and PNG plots to --out (default out/report; see
``slfm_ros.evaluation.report``) and prints results.md, or with --json the results.json object
(one row per estimator under ``rows``). Missing folders, unreadable or mono files where stereo
is needed and SOFA files of another convention end with a message and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from slfm_ros.core.errors import ConfigError
from slfm_ros.evaluation.estimators import (
    AUDIO_CHOICES,
    BACKEND_CHOICES,
    FEATURE_CHOICES,
    VISUAL_CHOICES,
)

CLASSIC_VISUAL_HELP = "default orb, the one slfm_node and slfm bag eval use"
SYNTHETIC_COUNTS = (
    "n: samples scored; audio_n: clips scored (each view whose target is in front of it, "
    "|azimuth| <= 90 deg); yaw_n: view pairs scored (view 0 with each other view)."
)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="model folder for --estimator slfm (default: the shipped model)"
    )
    parser.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="inference backend of --estimator slfm (default auto: the best one present)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random crops/clips")
    parser.add_argument("--json", action="store_true", help="print one JSON object")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="mode", metavar="MODE", required=True)

    rot = sub.add_parser("rotation", help="camera yaw on real equirectangular panoramas")
    rot.add_argument("--panoramas", required=True, help="folder of 2:1 .jpg/.png panoramas")
    rot.add_argument("--fov", type=float, default=60.0, help="horizontal FOV, deg (default 60)")
    rot.add_argument("--pitch", type=float, default=-22.5, help="camera pitch, deg (default -22.5)")
    rot.add_argument("--pairs-per-image", type=int, default=20, help="view pairs per panorama")
    rot.add_argument(
        "--estimator",
        choices=VISUAL_CHOICES,
        default="auto",
        help="auto (default): the shipped model fused with --visual-estimator; slfm: the model "
        "alone; classic: --visual-estimator alone",
    )
    rot.add_argument(
        "--visual-estimator",
        choices=FEATURE_CHOICES,
        default="orb",
        help="classic estimator: orb/sift feature matching or cylinder correlation "
        f"({CLASSIC_VISUAL_HELP})",
    )
    _common(rot)

    aud = sub.add_parser("audio", help="sound azimuth with a measured head or real BRIRs")
    src = aud.add_mutually_exclusive_group(required=True)
    src.add_argument("--hrtf", help="SimpleFreeFieldHRIR .sofa file")
    src.add_argument("--brirs", help="folder of 2-channel BRIR wavs + brirs.csv (file,azimuth_deg)")
    aud.add_argument("--sources", required=True, help="folder of mono recordings (wav/flac/ogg)")
    aud.add_argument(
        "--reverb",
        choices=("none", "room"),
        default="none",
        help="--hrtf only: free field or random shoebox rooms",
    )
    aud.add_argument(
        "--estimator",
        choices=AUDIO_CHOICES,
        default="auto",
        help="auto (default): the shipped model fused with GCC-PHAT; slfm: the model alone; "
        "classic = gcc_phat; gcc_phat_onset = GCC-PHAT weighted to the onsets",
    )
    aud.add_argument(
        "--delays",
        choices=("sphere", "measured"),
        default="sphere",
        help="--hrtf: the interaural delays the estimators are given: sphere (default) = the "
        "rigid sphere whose delays fit the head's HRIRs best; measured = each direction's delay "
        "read off the HRIRs themselves (the node's receiver: measured)",
    )
    aud.add_argument("--clips-per-file", type=int, default=8, help="--hrtf: clips per recording")
    aud.add_argument("--clips-per-brir", type=int, default=4, help="--brirs: clips per BRIR")
    aud.add_argument("--sample-rate", type=int, default=16000, help="Hz (default 16000)")
    aud.add_argument("--clip-seconds", type=float, default=2.55, help="s (default 2.55)")
    aud.add_argument("--snr-db", type=float, help="add diffuse noise at this SNR (default none)")
    aud.add_argument(
        "--head-radius",
        type=float,
        help="--brirs: head radius for the ITD model, m (default 0.0875)",
    )
    aud.add_argument(
        "--mic-spacing",
        type=float,
        help="--brirs: free-field microphone spacing instead of a head, m",
    )
    _common(aud)

    syn = sub.add_parser(
        "synthetic",
        help="audio and rotation on a split from slfm simulate",
        description=f"Scores audio and rotation on a split from slfm simulate. {SYNTHETIC_COUNTS}",
    )
    syn.add_argument("--data", required=True, help="dataset folder written by slfm simulate")
    syn.add_argument(
        "--estimator",
        choices=AUDIO_CHOICES,
        default="auto",
        help="audio estimator: auto (default: the shipped model fused with GCC-PHAT), slfm, "
        "classic (= gcc_phat), ...; slfm and auto also set the visual one",
    )
    syn.add_argument(
        "--visual-estimator",
        choices=FEATURE_CHOICES,
        default="orb",
        help=f"classic visual estimator: orb, sift or cylinder ({CLASSIC_VISUAL_HELP})",
    )
    syn.add_argument("--only", choices=("audio", "rotation"), help="score one modality only")
    syn.add_argument("--limit", type=int, help="score only the first N samples")
    _common(syn)
    _add_report(sub)


def _format(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _emit(args: argparse.Namespace, title: str, result: dict[str, Any], notes: str = "") -> None:
    """One JSON line, or a table under ``title`` followed by ``notes``."""
    if args.json:
        clean = {
            k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in result.items()
        }
        print(json.dumps(clean, sort_keys=False))
        return
    width = max(len(k) for k in result)
    print(title)
    for key, value in result.items():
        print(f"  {key:<{width}}  {_format(value)}")
    if notes:
        print(notes)


def _backend_field(args: argparse.Namespace, learned: bool) -> dict[str, str]:
    """{"backend": "onnxruntime (cpu, fp32)"} for a learned estimator, {} for classical ones."""
    if not learned:
        return {}
    from slfm_ros.evaluation.estimators import backend_label

    return {"backend": backend_label(args.model, args.backend)}


def _progress(args: argparse.Namespace) -> bool:
    """Progress bars on stderr, only for an interactive terminal and table output."""
    return bool(sys.stderr.isatty()) and not args.json


def _run_rotation(args: argparse.Namespace) -> int:
    from slfm_ros.core.sim.panoramas import PanoramaFolder
    from slfm_ros.evaluation.estimators import build_visual_estimator, visual_label
    from slfm_ros.evaluation.rotation_eval import RotationProtocol, evaluate_rotation

    protocol = RotationProtocol(
        fov_deg=args.fov,
        pitch_deg=args.pitch,
        pairs_per_image=args.pairs_per_image,
        seed=args.seed,
    )
    folder = PanoramaFolder(args.panoramas)
    estimator = build_visual_estimator(
        args.estimator,
        args.visual_estimator,
        hfov=math.radians(args.fov),
        pitch=math.radians(args.pitch),
        model=args.model,
        backend=args.backend,
    )
    result = evaluate_rotation(folder, estimator, protocol, progress=_progress(args))
    out = {
        "estimator": visual_label(args.estimator, args.visual_estimator),
        **_backend_field(args, args.estimator in ("slfm", "auto")),
        "panoramas": len(folder),
    }
    out.update(result.as_dict())
    _emit(args, f"rotation: {args.panoramas}", out)
    return 0


def _run_audio(args: argparse.Namespace) -> int:
    from slfm_ros.core.geometry.measured_head import measured_receiver
    from slfm_ros.evaluation.audio_eval import (
        AudioProtocol,
        brir_geometry,
        evaluate_brirs,
        evaluate_hrtf,
        hrtf_receiver,
        list_audio_files,
    )
    from slfm_ros.evaluation.estimators import audio_label, build_audio_estimator

    protocol = AudioProtocol(
        sample_rate=args.sample_rate,
        clip_seconds=args.clip_seconds,
        clips_per_file=args.clips_per_file,
        clips_per_brir=args.clips_per_brir,
        reverb=args.reverb,
        snr_db=args.snr_db,
        seed=args.seed,
    )
    if args.brirs is not None and args.reverb != "none":
        raise ConfigError("--reverb applies to --hrtf only: real BRIRs carry their own room")
    if args.brirs is not None and args.delays != "sphere":
        raise ConfigError(
            "--delays applies to --hrtf only: give BRIRs --head-radius or --mic-spacing"
        )
    list_audio_files(args.sources)  # a missing or empty folder fails before any rendering
    if args.hrtf is not None:
        receiver = hrtf_receiver(args.hrtf)
        delays = (
            receiver.geometry
            if args.delays == "sphere"
            else measured_receiver(args.hrtf, 0.5 * args.sample_rate)
        )
        estimator = build_audio_estimator(args.estimator, delays, args.model, args.backend)
        result = evaluate_hrtf(args.hrtf, args.sources, estimator, protocol, receiver=receiver)
        title = f"audio: {args.hrtf} ({args.reverb}, {args.delays} delays)"
    else:
        geometry = brir_geometry(args.head_radius, args.mic_spacing)
        estimator = build_audio_estimator(args.estimator, geometry, args.model, args.backend)
        result = evaluate_brirs(args.brirs, args.sources, estimator, protocol)
        title = f"audio: {args.brirs}"
    out = {
        "estimator": audio_label(args.estimator),
        **_backend_field(args, args.estimator in ("slfm", "auto")),
    }
    if args.hrtf is not None:
        out["delays"] = args.delays
    out.update(result.as_dict())
    _emit(args, title, out)
    return 0


def _run_synthetic(args: argparse.Namespace) -> int:
    from slfm_ros.core.sim.dataset import ShardedDataset
    from slfm_ros.evaluation.estimators import (
        audio_label,
        build_audio_estimator,
        build_visual_estimator,
        visual_label,
    )
    from slfm_ros.evaluation.synthetic_eval import audio_scoring, evaluate_synthetic

    dataset = ShardedDataset(args.data)
    cfg = dataset.config
    audio_est = visual_est = audio_factory = None
    score_audio = args.only in (None, "audio")
    if score_audio:
        audio_est, audio_factory = audio_scoring(
            dataset,
            lambda geometry: build_audio_estimator(
                args.estimator, geometry, args.model, args.backend
            ),
        )
    visual_kind = args.estimator if args.estimator in ("slfm", "auto") else "classic"
    if args.only in (None, "rotation"):
        visual_est = build_visual_estimator(
            visual_kind,
            args.visual_estimator,
            hfov=math.radians(cfg.image.hfov_deg),
            pitch=math.radians(cfg.image.pitch_deg),
            model=args.model,
            backend=args.backend,
        )
    result = evaluate_synthetic(
        dataset, audio_est, visual_est, args.limit, _progress(args), audio_factory
    )
    out: dict[str, Any] = {}
    if score_audio:
        out["audio_estimator"] = audio_label(args.estimator)
    if visual_est is not None:
        out["visual_estimator"] = visual_label(visual_kind, args.visual_estimator)
    out.update(_backend_field(args, args.estimator in ("slfm", "auto")))
    out.update(result.as_dict())
    notes = [SYNTHETIC_COUNTS]
    if visual_kind == "classic" and visual_est is not None:
        feature = args.visual_estimator
        where = (
            ", as in slfm_node and slfm bag eval"
            if feature == "orb"
            else "; slfm_node and slfm bag eval use ORB, the default here too"
        )
        notes.append(
            f"visual_estimator {feature} = {feature.upper()} feature matching with a "
            f"rotation-only RANSAC{where}."
        )
    _emit(args, f"synthetic: {args.data} ({dataset.split})", out, "\n".join(notes))
    return 0


def _add_report(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = sub.add_parser("report", help="results table and plots: learned model vs baselines")
    rep.add_argument("--data", required=True, help="dataset folder written by slfm simulate")
    rep.add_argument("--model", help="model folder of the first row (default: the shipped model)")
    rep.add_argument(
        "--label", default="slfm", help="name of --model's row (default slfm), e.g. supervised"
    )
    rep.add_argument(
        "--backend",
        choices=BACKEND_CHOICES,
        default="auto",
        help="inference backend of the learned models (default auto: the best one present)",
    )
    rep.add_argument(
        "--compare",
        action="append",
        default=[],
        metavar="LABEL=DIR",
        help="a further learned model as its own row, e.g. supervised=out/supervised_small",
    )
    rep.add_argument(
        "--baselines",
        help="comma list of gcc_phat, gcc_phat_onset, iid, srp_phat, music (audio), orb, sift "
        "(yaw); default gcc_phat,gcc_phat_onset,iid,orb; '' for none",
    )
    rep.add_argument("--limit", type=int, help="score only the first N samples")
    rep.add_argument("--out", default="out/report", help="output folder (default out/report)")
    rep.add_argument("--json", action="store_true", help="print results.json as one line")


def _run_report(args: argparse.Namespace) -> int:
    from slfm_ros.evaluation.report import (
        check_out_dir,
        markdown,
        parse_baselines,
        parse_compare,
        report_command,
        run_report,
        write_report,
    )

    check_out_dir(args.out)  # before the evaluation, which may take long
    report = run_report(
        args.data,
        args.model,
        args.backend,
        parse_compare(args.compare),
        parse_baselines(args.baselines),
        args.limit,
        _progress(args),
        report_command(
            args.data,
            args.model,
            args.backend,
            args.compare,
            args.baselines,
            args.limit,
            args.out,
            args.label,
        ),
        args.label,
    )
    write_report(report, args.out)
    if args.json:
        print(json.dumps(report.as_dict()))
    else:
        print(markdown(report), end="")
    return 0


def run(args: argparse.Namespace) -> int:
    runners = {
        "rotation": _run_rotation,
        "audio": _run_audio,
        "synthetic": _run_synthetic,
        "report": _run_report,
    }
    return runners[args.mode](args)
