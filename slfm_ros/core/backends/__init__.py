"""Inference backends of the learned SLfM networks: TensorRT, ONNX Runtime and PyTorch.

One call gives the streaming pipeline, the evaluation commands and the benchmark what they
need::

    runners = create_runners(model_dir, backend="auto")
    audio = SlfmAudioEstimator(runners.config.audio, runners.audio)
    visual = SlfmVisualEstimator(runners.config.visual, runners.visual)
    log(runners.description); for label, reason in runners.skipped: ...

See ``base`` for the selection order and the options, ``onnx_export`` for the ONNX graphs the
ONNX Runtime and TensorRT backends run (and ``slfm export`` writes), ``engine_cache`` for how
TensorRT engines are cached and validated.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path

from slfm_ros.core.backends import onnxruntime_backend, tensorrt_backend, torch_backend
from slfm_ros.core.backends.base import (
    AUTO_ORDER,
    BACKENDS,
    Availability,
    BackendOptions,
    BackendUnavailable,
    Float32,
    InferenceBackend,
    candidates,
    default_availability,
    select_backend,
)
from slfm_ros.core.backends.model_source import ModelSource, read_model_source
from slfm_ros.core.models.config import AnyModelConfig

# Same signatures as slfm_ros.core.estimators.slfm's runners (not imported: it needs torch).
AudioRunner = Callable[[Float32], Float32]
VisualRunner = Callable[[Float32, Float32], Float32]

__all__ = [
    "AUTO_ORDER",
    "BACKENDS",
    "BackendOptions",
    "BackendUnavailable",
    "InferenceBackend",
    "ModelSource",
    "Runners",
    "candidates",
    "create_runners",
    "onnxruntime_backend",
    "read_model_source",
    "tensorrt_backend",
    "torch_backend",
]


@dataclass
class Runners:
    """The network callables of one model on the chosen backend.

    audio, visual: ``run_audio`` / ``run_visual`` for the Slfm estimators.
    backend_name:  "tensorrt", "onnxruntime" or "torch"; device: "cuda" or "cpu".
    precision:     "fp32" or "fp16".
    skipped:       (candidate, reason) of every better candidate passed over, best first,
                   e.g. ("tensorrt:cuda", "the tensorrt Python package is not installed ...").
    notes:         how the backend was set up (export used or created, engine built or
                   loaded, options ignored on this device).
    config:        the model's network config (for the estimators' preprocessing).
    backend:       the backend object (``close()`` frees device memory).
    """

    audio: AudioRunner
    visual: VisualRunner
    backend_name: str
    device: str
    precision: str
    skipped: list[tuple[str, str]]
    notes: list[str]
    config: AnyModelConfig
    model_dir: Path
    backend: InferenceBackend = field(repr=False)

    @property
    def description(self) -> str:
        """One line for logs and /diagnostics, e.g. 'onnxruntime (cpu, fp32)'."""
        return self.backend.describe()

    def skipped_summary(self) -> str:
        """'tensorrt:cuda: reason; ...' ('' when the first candidate was used)."""
        return "; ".join(f"{tag}: {why}" for tag, why in self.skipped)

    def close(self) -> None:
        self.backend.close()


def create_runners(
    model_dir: str | os.PathLike[str],
    backend: str = "auto",
    device: str = "auto",
    options: BackendOptions | None = None,
    disabled: Collection[str] = (),
    availability: Availability = default_availability,
    camera: tuple[float, float] | None = None,
) -> Runners:
    """Load the model in ``model_dir`` on the best backend allowed.

    backend:  "auto" (AUTO_ORDER) or one of "tensorrt", "onnxruntime", "torch" (then its
              devices in AUTO_ORDER order). device: "auto", "cpu" or "cuda".
    disabled: backends or candidates ("torch", "onnxruntime:cuda") to treat as missing.
    camera:   (horizontal FOV, pitch) in degrees of the camera the images come from; the
              compact family's visual network is set up for it (``follow_camera``).
    Raises ModelError for a missing or broken model directory, BackendUnavailable (a
    ModelError) when no allowed backend can run it, ConfigError for unknown names.
    """
    source = read_model_source(model_dir, camera)
    selection = select_backend(source, backend, device, options, disabled, availability)
    chosen = selection.backend
    return Runners(
        audio=chosen.run_audio,
        visual=chosen.run_visual,
        backend_name=chosen.name,
        device=chosen.device,
        precision=chosen.precision,
        skipped=selection.skipped,
        notes=list(chosen.notes),
        config=source.config,
        model_dir=source.path,
        backend=chosen,
    )
