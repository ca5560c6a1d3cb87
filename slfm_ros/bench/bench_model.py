"""Which model a benchmark measures.

``--model DIR`` when given, else the shipped ``models/default`` of the source checkout; when
that does not exist, a randomly initialised model of the requested preset is written to a
temporary folder (latency does not depend on the weights) and the report says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slfm_ros.core.models.config import AnyModelConfig, ModelConfig, load_model_config

DEFAULT_MODEL = Path(__file__).resolve().parents[2] / "models" / "default"


@dataclass(frozen=True)
class BenchModel:
    """path: model folder; note: "" or why this is not a trained model; random: built here."""

    path: Path
    note: str
    random: bool


def resolve_bench_model(model: str | None, preset_name: str, workdir: Path) -> BenchModel:
    """The model to benchmark (see module doc); ``workdir`` receives a random one."""
    if model:
        return BenchModel(Path(model), "", False)
    if (DEFAULT_MODEL / "card.yaml").is_file():
        return BenchModel(DEFAULT_MODEL, "", False)
    path = write_random_model(workdir / f"random-{preset_name}", load_model_config(preset_name))
    note = (
        f"{DEFAULT_MODEL} not found: measured a randomly initialised '{preset_name}' model "
        "(latency does not depend on the weights)"
    )
    return BenchModel(path, note, True)


def smoke_config() -> ModelConfig:
    """The smallest sensible architecture: for quick checks of the export, backend and
    benchmark machinery (tests), not for localisation."""
    return load_model_config(
        {
            "preset": "small",
            "name": "smoke",
            "audio": {
                "clip_samples": 8000,
                "time_frames": 64,
                "freq_bins": 128,
                "width_mult": 0.25,
                "feature_dim": 32,
                "head_hidden": 16,
            },
            "visual": {
                "image_height": 64,
                "image_width": 80,
                "width_mult": 0.25,
                "trunk_blocks": [1, 1],
                "encoder_channels": 16,
                "encoder_layers": 2,
                "feature_dim": 32,
                "head_hidden": 16,
            },
            "binaural": {"channels": [8, 8, 8, 8, 8]},
        }
    )


def write_random_model(
    path: Path, config: AnyModelConfig, seed: int = 0, calibrate: bool = True
) -> Path:
    """A randomly initialised model directory for ``config``.

    calibrate: set the batch-norm statistics from a few batches of realistic inputs (synthetic
    binaural noise, panorama crops), so activations have the ranges a trained network sees;
    with the default statistics (mean 0, variance 1) activations drift with depth, outputs
    hardly depend on the input, and half-precision checks say little.
    """
    import torch

    from slfm_ros.core.backends.onnx_export import parity_inputs
    from slfm_ros.core.models.checkpoint import build_networks, save_model

    torch.manual_seed(seed)
    audio_net, visual_net = build_networks(config)
    if calibrate:
        inputs = parity_inputs(config, "synthetic", samples=2, seed=seed + 1)
        for net in (audio_net, visual_net):
            for module in net.modules():
                if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                    module.reset_running_stats()
                    module.momentum = None  # cumulative average over the batches below
            net.train()
        with torch.no_grad():
            for _ in range(2):
                audio_net(torch.from_numpy(inputs.features))
                visual_net(torch.from_numpy(inputs.image_0), torch.from_numpy(inputs.image_1))
        audio_net.eval()
        visual_net.eval()
    return save_model(
        path,
        config,
        audio_net,
        visual_net,
        card_extra={"note": "random weights, for benchmarks and tests"},
    )
