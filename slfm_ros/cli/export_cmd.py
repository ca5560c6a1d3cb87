"""``slfm export``: the model's audio and visual networks to ONNX, checked against PyTorch.

    slfm export --model DIR --out DIR [--opset 17] [--fp16] [--parity-source sim|synthetic]
        [--no-parity] [--json]

Writes audio.onnx, visual.onnx and export.json into --out (see
slfm_ros.core.backends.onnx_export). An identical export already there is kept; a different one
is never overwritten (exit 2). The parity check (ONNX Runtime vs PyTorch on simulated inputs)
prints the maximum absolute difference; beyond 1e-4 rad (fp32) or 1e-2 rad (fp16) nothing is
written (exit 2).
"""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="model folder (card.yaml + weights.pt)")
    parser.add_argument("--out", required=True, help="output folder of the ONNX export")
    parser.add_argument("--opset", type=int, default=17, help="ONNX opset (default 17)")
    parser.add_argument(
        "--fp16",
        action="store_true",
        help="half-precision graphs with float32 inputs/outputs (for ONNX Runtime on a GPU "
        "and TensorRT >= 11; older TensorRT makes FP16 engines from the fp32 export)",
    )
    parser.add_argument(
        "--parity-source",
        choices=("sim", "synthetic"),
        default="sim",
        help="inputs of the parity check: rendered scenes (default) or synthetic noise/crops",
    )
    parser.add_argument("--no-parity", action="store_true", help="skip the parity check")
    parser.add_argument("--json", action="store_true", help="print the manifest as JSON")


def run(args: argparse.Namespace) -> int:
    from slfm_ros.core.backends.onnx_export import export_model

    def progress(message: str) -> None:
        print(f"slfm export: {message}", file=sys.stderr)

    result = export_model(
        args.model,
        args.out,
        opset=args.opset,
        fp16=args.fp16,
        parity=not args.no_parity,
        parity_source=args.parity_source,
        progress=progress,
    )
    manifest = result.manifest
    if args.json:
        print(json.dumps({**manifest.data, "reused": result.reused}, indent=2))
        return 0
    state = "kept (identical export already there)" if result.reused else "written"
    print(f"export {state}: {manifest.directory}")
    print(f"  audio:  {manifest.audio_path}")
    print(f"  visual: {manifest.visual_path}")
    print(
        f"  model card sha256 {manifest.card_sha256}, opset {manifest.opset}, {manifest.precision}"
    )
    parity = manifest.parity
    if parity:
        print(
            f"  parity vs PyTorch ({parity['source']}, {parity['audio_windows']} windows, "
            f"{parity['visual_pairs']} pairs): max |diff| audio {parity['audio_max_abs_rad']:.2e} "
            f"rad, visual {parity['visual_max_abs_rad']:.2e} rad (bound "
            f"{parity['tolerance_rad']:g} rad) -> {'ok' if parity['passed'] else 'FAILED'}"
        )
    else:
        print("  parity check skipped")
    return 0
