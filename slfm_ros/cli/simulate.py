"""``slfm simulate``: render a sharded multi-view dataset (format: docs/dataset-format.md).

    slfm simulate [--config config/sim/default.yaml] --out data/sim/train --num 20000 \\
        --split train --seed 0 [--workers 2] [--shard-size 64] [--image-format jpeg|png]

Without ``--config`` the shipped ``config/sim/default.yaml`` is used (of the source checkout,
else of the installed package share).

Rerunning the same command after an interruption finishes the dataset without rewriting the
shards that are already complete.
"""

from __future__ import annotations

import argparse
import sys
import time

from slfm_ros.core.sim.dataset import DEFAULT_SHARD_SIZE
from slfm_ros.core.sim.shard_io import IMAGE_FORMATS

SPLITS = ("train", "val", "test")
DEFAULT_CONFIG = "sim/default.yaml"  # below the package's config/ folder


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        help=f"simulator YAML (see config/sim/; default: the shipped config/{DEFAULT_CONFIG})",
    )
    parser.add_argument("--out", required=True, help="dataset folder (created; resumed if present)")
    parser.add_argument("--num", type=int, required=True, help="number of samples")
    parser.add_argument("--split", required=True, choices=SPLITS, help="which split to render")
    parser.add_argument("--seed", type=int, required=True, help="dataset seed (>= 0)")
    parser.add_argument("--workers", type=int, default=2, help="render processes (default 2)")
    parser.add_argument(
        "--shard-size",
        type=int,
        default=DEFAULT_SHARD_SIZE,
        help=f"samples per shard (default {DEFAULT_SHARD_SIZE})",
    )
    parser.add_argument(
        "--image-format",
        choices=IMAGE_FORMATS,
        default="jpeg",
        help="how images are stored (default jpeg, quality --image-quality)",
    )
    parser.add_argument("--image-quality", type=int, default=95, help="JPEG quality (default 95)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _default_config() -> str:
    from slfm_ros.core.errors import ConfigError
    from slfm_ros.nodes.launch_description import shipped_config

    try:
        return shipped_config(DEFAULT_CONFIG)
    except ConfigError as exc:
        raise ConfigError(
            f"no config/{DEFAULT_CONFIG} in the source checkout nor in the installed share of "
            "slfm_ros; pass --config FILE.yaml"
        ) from exc


def run(args: argparse.Namespace) -> int:
    from slfm_ros.core.sim.dataset import write_dataset
    from slfm_ros.core.sim.scene import SceneConfig

    cfg = SceneConfig.from_yaml(args.config if args.config else _default_config())
    tic = time.perf_counter()
    manifest = write_dataset(
        cfg,
        args.out,
        num=args.num,
        split=args.split,
        seed=args.seed,
        workers=args.workers,
        shard_size=args.shard_size,
        progress=not args.no_progress,
        image_format=args.image_format,
        image_quality=args.image_quality,
    )
    seconds = time.perf_counter() - tic
    counts = manifest.get("counts", {})
    print(
        f"{args.out}: {manifest['num_samples']} {args.split} samples in "
        f"{manifest['num_shards']} shards ({counts.get('reverberant', '?')} reverberant, "
        f"{counts.get('anechoic', '?')} anechoic); this run took {seconds:.1f} s",
        file=sys.stdout,
    )
    return 0
