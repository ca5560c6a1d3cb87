"""``slfm bench``: network latency per inference backend, or the real-time pipeline over DDS.

    slfm bench [network] [--backend all|auto|torch|onnxruntime|tensorrt] [--device auto|cpu|cuda]
        [--model DIR] [--preset compact|small|full] [--iterations N] [--batch N] [--threads N]
        [--fp16] [--json]
    slfm bench pipeline [--seconds S] [--warmup S] [--estimator classic|slfm] [--model DIR]
        [--backend auto|...] [--dds-profile large-data|none|FILE] [--json]

network (default): every backend candidate of --backend on --device (auto = GPU and CPU) is
loaded and timed; candidates that cannot run are listed with the reason. Without --model the
shipped models/default is measured, or, when there is none, a randomly initialised model of
--preset (default compact), which the output says. With --json a JSON list is printed, one
object per backend measured, with backend, device, precision, audio/visual network p50/p99,
preprocessing p50, totals, batched throughput, full-estimate p50, and the run's model,
threads, machine and skipped candidates (keys in slfm_ros.bench.network_bench).

pipeline: streams 48 kHz stereo and 30 fps 640 x 480 images through a real slfm_node process
for --seconds and reports window-end-to-publish latency, CPU, dropped windows and memory
growth (slfm_ros.bench.pipeline_bench). With --json one JSON object.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
from pathlib import Path
from typing import Any

BACKEND_CHOICES = ("all", "auto", "torch", "onnxruntime", "tensorrt")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "mode",
        nargs="?",
        choices=("network", "pipeline"),
        default="network",
        help="network (default): per-backend network latency; pipeline: slfm_node over DDS",
    )
    parser.add_argument("--backend", choices=BACKEND_CHOICES, default=None)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--model", help="model folder (default: models/default or random)")
    parser.add_argument(
        "--preset",
        choices=("compact", "small", "full"),
        default="compact",
        help="architecture of the random model used when no model exists (default compact, "
        "the shipped model's family)",
    )
    parser.add_argument("--iterations", type=int, default=100, help="timed calls (default 100)")
    parser.add_argument("--batch", type=int, default=8, help="batched-run size (default 8)")
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads per backend (default 1; 0 = library)"
    )
    parser.add_argument("--fp16", action="store_true", help="half precision where supported")
    parser.add_argument("--max-batch-size", type=int, default=8, help="TensorRT profile max")
    parser.add_argument(
        "--workspace-mib", type=int, default=1024, help="TensorRT workspace (MiB, default 1024)"
    )
    parser.add_argument(
        "--seconds", type=float, default=60.0, help="pipeline: timed stream length (default 60)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="pipeline: untimed stream first (default 3 s)"
    )
    parser.add_argument(
        "--dds-profile",
        default="",
        help="pipeline: Fast DDS profile of the node and the player: default (or 'large-data') "
        "config/fastdds_large_data.xml as the launchers use it, 'none' = DDS defaults, or an "
        "XML file",
    )
    parser.add_argument(
        "--estimator", choices=("classic", "slfm"), default="classic", help="pipeline estimator"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.2f}"
    return str(value)


def _print_network(results: list[dict[str, Any]], common: dict[str, Any]) -> None:
    print(f"model: {common['model']} ({common['model_name']})")
    if common["model_note"]:
        print(f"note: {common['model_note']}")
    machine = common["machine"]
    print(
        f"machine: {machine['cpu']}, {machine['logical_cores']} logical cores, load "
        f"{machine['load_average_1min']} -> {machine['load_average_1min_end']}; threads "
        f"{common['threads']}, {common['iterations']} iterations, batch {common['batch']}"
    )
    rows = [
        ("audio network p50/p99 ms", "audio_p50_ms", "audio_p99_ms"),
        ("visual network p50/p99 ms", "visual_p50_ms", "visual_p99_ms"),
        ("audio / visual network CPU p50 ms", "audio_cpu_p50_ms", "visual_cpu_p50_ms"),
        ("audio preprocess p50 ms", "audio_preprocess_p50_ms", None),
        ("visual preprocess p50 ms", "visual_preprocess_p50_ms", None),
        ("audio total p50/p99 ms", "audio_total_p50_ms", "audio_total_p99_ms"),
        ("visual total p50/p99 ms", "visual_total_p50_ms", "visual_total_p99_ms"),
        ("audio batch p50 ms / windows/s", "audio_batch_p50_ms", "audio_batch_per_s"),
        ("visual batch p50 ms / pairs/s", "visual_batch_p50_ms", "visual_batch_per_s"),
        ("audio estimate (symmetric) p50 ms", "audio_estimate_p50_ms", None),
        (
            "audio estimate, known receiver p50/p99 ms",
            "audio_known_receiver_p50_ms",
            "audio_known_receiver_p99_ms",
        ),
        ("visual estimate (symmetric) p50 ms", "visual_estimate_p50_ms", None),
    ]
    for result in results:
        print(f"\n{result['backend']} ({result['device']}, {result['precision']})")
        for title, first, second in rows:
            value = _fmt(result[first])
            if second:
                value += f" / {_fmt(result[second])}"
            print(f"  {title:36s} {value}")
        for note in result["notes"]:
            print(f"  note: {note}")
    for entry in common["skipped"]:
        print(f"\nnot measured: {entry['backend']} ({entry['device']}): {entry['reason']}")


def _run_network(args: argparse.Namespace) -> int:
    from slfm_ros.bench.bench_model import resolve_bench_model
    from slfm_ros.bench.network_bench import NetworkBenchConfig, run_network_bench
    from slfm_ros.bench.stats import load_average, machine_info
    from slfm_ros.core.backends import BackendOptions, read_model_source
    from slfm_ros.core.errors import ConfigError

    if args.iterations < 1 or args.batch < 1 or args.threads < 0:
        raise ConfigError("--iterations and --batch must be >= 1, --threads >= 0")
    machine = machine_info()
    with tempfile.TemporaryDirectory(prefix="slfm-bench-") as tmp:
        model = resolve_bench_model(args.model, args.preset, Path(tmp))
        if model.note:
            print(f"slfm bench: {model.note}", file=sys.stderr)
        source = read_model_source(model.path)
        options = BackendOptions(
            enable_fp16=args.fp16,
            intra_op_threads=args.threads,
            inter_op_threads=1 if args.threads else 0,
            max_batch_size=args.max_batch_size,
            max_workspace_size=args.workspace_mib << 20,
            # A random model's export and engines are thrown away with it.
            cache_dir=str(Path(tmp) / "cache") if model.random else "",
        )
        results, skipped = run_network_bench(
            source,
            backend=args.backend or "all",
            device=args.device,
            options=options,
            cfg=NetworkBenchConfig(iterations=args.iterations, batch=args.batch),
        )
    machine["load_average_1min_end"] = load_average()
    common = {
        "model": str(model.path) if not model.random else f"random {args.preset} (temporary)",
        "model_name": source.config.name,
        "model_note": model.note,
        "threads": args.threads,
        "iterations": args.iterations,
        "batch": args.batch,
        "machine": machine,
        "skipped": skipped,
    }
    if args.json:
        print(json.dumps([{**r, **common} for r in results], indent=2))
    else:
        _print_network(results, common)
    return 0 if results else 1


def _run_pipeline(args: argparse.Namespace) -> int:
    from slfm_ros.bench.pipeline_bench import (
        PipelineBenchConfig,
        format_pipeline_report,
        run_pipeline_bench,
    )

    config = PipelineBenchConfig(
        seconds=args.seconds,
        warmup_s=args.warmup,
        dds_profile=args.dds_profile,
        estimator=args.estimator,
        backend=args.backend if args.backend not in (None, "all") else "auto",
        model_dir=args.model or "",
    )
    report = run_pipeline_bench(
        config, progress=lambda m: print(f"slfm bench: {m}", file=sys.stderr)
    )
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(format_pipeline_report(report))
    return 0 if report.get("windows_received", 0) > 0 else 1


def run(args: argparse.Namespace) -> int:
    if args.mode == "pipeline":
        return _run_pipeline(args)
    return _run_network(args)
