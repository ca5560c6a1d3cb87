"""Audio direction network: sound azimuth from binaural STFT features.

Input (B, 4, F, T): [L magnitude, L phase, R magnitude, R phase] as produced by
``slfm_ros.core.dsp.stft.binaural_features`` (phases absolute or interaural, as the config's
``phase_reference`` says; swapping the ears permutes the planes either way). A ResNet-18 (4
input channels) with global average pooling and a Linear layer gives the audio feature; a head
maps it to phi = tanh(x) * pi (radians, REP-103: left positive).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.models.config import AudioNetConfig
from slfm_ros.core.models.resnet import ResNet18Trunk

FEATURE_CHANNELS = 4


def swap_channels(features: torch.Tensor) -> torch.Tensor:
    """Features of the left/right-swapped clip: (B, 4, F, T) [L mag, L ph, R mag, R ph] ->
    [R mag, R ph, L mag, L ph]."""
    return torch.cat([features[:, 2:4], features[:, 0:2]], dim=1)


class AudioDirectionNet(nn.Module):
    """Sound azimuth from (B, 4, F, T) binaural features."""

    def __init__(self, cfg: AudioNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = ResNet18Trunk(FEATURE_CHANNELS, cfg.width_mult, 4, cfg.blocks)
        self.project = nn.Linear(self.trunk.out_channels, cfg.feature_dim)
        self.head = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.head_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.head_hidden, 1),
        )

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    def feature(self, x: torch.Tensor) -> torch.Tensor:
        """Audio feature (B, feature_dim) of features (B, 4, F, T)."""
        if x.ndim != 4 or x.shape[1] != FEATURE_CHANNELS:
            raise InputFormatError(
                f"AudioDirectionNet: expected (B, 4, F, T) binaural features, got "
                f"{tuple(x.shape)}; compute them with slfm_ros.core.dsp.stft.binaural_features"
            )
        # Mean over the spatial axes rather than AdaptiveAvgPool2d: same result, simpler export.
        pooled = self.trunk(x).mean(dim=(2, 3))
        return self.project(pooled)

    def direction_logit(self, feature: torch.Tensor) -> torch.Tensor:
        """Head pre-activation (B,); phi = tanh(logit) * pi."""
        return self.head(feature).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Azimuth phi in radians, shape (B,), in (-pi, pi)."""
        return torch.tanh(self.direction_logit(self.feature(x))) * math.pi
