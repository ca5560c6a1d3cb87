"""Training stages. Each stage module defines only what differs between stages: extra
modules, which parts train, and the forward pass with its loss. ``slfm_training.loop`` runs all of
them with the same optimiser, schedule, checkpoints and logging.

A stage's ``forward(nets, batch)`` returns a ``StepOutput``: the scalar loss to minimise and
per-sample values (1-D tensors, e.g. errors in degrees; 0-d tensors count as one value per
sample of the batch) whose means are logged for training and validation.

nets: ``nn.ModuleDict`` with "audio" (AudioDirectionNet), "visual" (VisualPoseNet) and the
stage's extra modules.
"""

from __future__ import annotations

import importlib
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import ClassVar, cast

import torch
from torch import nn

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.config import ModelConfig
from slfm_ros.core.models.losses import BinauralTerm
from slfm_ros.core.models.visual_pose import VisualPoseNet
from slfm_ros.core.sim.scene import SceneConfig
from slfm_training.config import STAGES, EgomotionConfig, SlfmConfig, TrainConfig
from slfm_training.data import Batch, TurnMeter

# Submodules of the two networks: encoders produce features, heads map them to angles.
ENCODER_PARTS = ("audio.trunk", "audio.project", "visual.trunk", "visual.encoder", "visual.project")
HEAD_PARTS = ("audio.head", "visual.head")


@dataclass
class StepOutput:
    """loss: scalar to minimise; values: per-sample tensors to log (means)."""

    loss: torch.Tensor
    values: dict[str, torch.Tensor]


class Stage(ABC):
    """Base of the stages; subclasses set ``name`` and implement ``trainable`` and ``forward``."""

    name: ClassVar[str]

    def __init__(self, cfg: TrainConfig, model_cfg: ModelConfig):
        self.cfg = cfg
        self.model_cfg = model_cfg
        # Optimiser step of the batch being computed, kept by the loop for loss schedules.
        self.step = 0

    def extra_modules(self) -> dict[str, nn.Module]:
        """Modules this stage adds to the audio and visual networks (trained with them)."""
        return {}

    def turn_meter(self, scene: SceneConfig) -> TurnMeter | None:
        """What measures camera turns from the images of samples rendered with ``scene`` for
        ``Batch.measured_turns``; None = this stage does not use them."""
        return None

    @abstractmethod
    def trainable(self) -> tuple[str, ...]:
        """Dotted names of the submodules of ``nets`` that train; the rest stays frozen (no
        gradients, batch-norm statistics fixed)."""

    @abstractmethod
    def forward(self, nets: nn.ModuleDict, batch: Batch) -> StepOutput:
        """Loss and logged values of one batch."""


def audio_net(nets: nn.ModuleDict) -> AudioDirectionNet:
    return cast(AudioDirectionNet, nets["audio"])


def visual_net(nets: nn.ModuleDict) -> VisualPoseNet:
    return cast(VisualPoseNet, nets["visual"])


@contextmanager
def grad_if(enabled: bool) -> Iterator[None]:
    """Autograd on only when ``enabled`` and already on (frozen encoders skip the graph)."""
    with torch.set_grad_enabled(enabled and torch.is_grad_enabled()):
        yield


def view_pair_maps(net: VisualPoseNet, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Trunk maps of the pairs (view 0, view i), i = 1..K-1, of (B, K, 3, H, W) images: two
    (B * (K - 1), C, h, w) tensors in sample-major order. The trunk runs once per image, not
    once per pair and direction."""
    b, k = images.shape[:2]
    maps = net.trunk_features(images.flatten(0, 1)).unflatten(0, (b, k))
    return maps[:, :1].expand(-1, k - 1, -1, -1, -1).flatten(0, 1), maps[:, 1:].flatten(0, 1)


def binaural_term(opts: SlfmConfig | EgomotionConfig) -> BinauralTerm:
    """The binaural IID term a stage's options name (form, margin in degrees)."""
    return BinauralTerm(opts.binaural_loss, math.radians(opts.binaural_margin_deg))


def fold_to_front_t(phi: torch.Tensor) -> torch.Tensor:
    """Azimuth folded into [-pi/2, pi/2] (front/back mirror of the back half-plane)."""
    half = math.pi / 2
    return torch.where(phi > half, math.pi - phi, torch.where(phi < -half, -math.pi - phi, phi))


def angular_error_deg(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """arccos(cos(pred - true)) in degrees, per element."""
    return torch.rad2deg(torch.arccos(torch.cos(pred - true).clamp(-1.0, 1.0)))


def azimuth_error_deg(pred: torch.Tensor, true: torch.Tensor) -> torch.Tensor:
    """The protocol's sound-azimuth error: both angles folded to the front first (degrees)."""
    return angular_error_deg(fold_to_front_t(pred), fold_to_front_t(true))


_MODULES = {name: f"slfm_training.stages.{name}" for name in STAGES}


def get_stage(cfg: TrainConfig, model_cfg: ModelConfig) -> Stage:
    """The stage object of ``cfg.stage``."""
    if cfg.stage not in _MODULES:
        raise ConfigError(f"stage: expected one of {list(_MODULES)}, got {cfg.stage!r}")
    module = importlib.import_module(_MODULES[cfg.stage])
    stage: Stage = module.STAGE(cfg, model_cfg)
    return stage
