"""Compact audio direction network: binaural cues -> a distribution over the full circle.

Input: one row per window, the cue vector of ``slfm_ros.core.dsp.binaural_cues`` followed by
two receiver numbers, ``aperture = [known, max_itd_ms]`` (known = 1 when the caller knows the
receiver's largest interaural delay, else both 0), so the network uses the user's receiver
description when there is one and still answers without it.

Output: logits over ``n_bins`` azimuth bins covering the whole circle (bin k is centred at
-pi + (k + 0.5) * 2 pi / n_bins). A two-ear receiver without pinnae cannot tell front from
back, and trained with cross-entropy on the full circle the network says so: it puts equal
mass on phi and its mirror pi - phi. ``slfm_ros.core.models.azimuth_bins.decode_azimuth``
turns the distribution into an angle: the peak bin refined by the weighted mean of its
neighbours.
"""

from __future__ import annotations

import torch
from torch import nn

from slfm_ros.core.models.azimuth_bins import APERTURE_DIM, CueNetConfig


class CueDirectionNet(nn.Module):
    """MLP from (cues, aperture) to azimuth logits; see the module docstring."""

    def __init__(self, cfg: CueNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.input_dim + APERTURE_DIM
        for hidden in cfg.hidden:
            layers += [nn.Linear(width, hidden), nn.GELU(), nn.Dropout(cfg.dropout)]
            width = hidden
        layers.append(nn.Linear(width, cfg.n_bins))
        self.net = nn.Sequential(*layers)
        # Normalisation of the inputs, set from training data (identity until then).
        self.input_mean: torch.Tensor
        self.input_scale: torch.Tensor
        self.register_buffer("input_mean", torch.zeros(cfg.input_dim))
        self.register_buffer("input_scale", torch.ones(cfg.input_dim))

    @property
    def feature_dim(self) -> int:
        """Length of one input row: the cues, then the aperture."""
        return self.cfg.input_dim + APERTURE_DIM

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, input_dim + 2) = [cues, aperture] -> logits (B, n_bins)."""
        cues = features[:, : self.cfg.input_dim]
        aperture = features[:, self.cfg.input_dim :]
        x = (cues - self.input_mean) / self.input_scale
        return self.net(torch.cat([x, aperture], dim=1))  # type: ignore[no-any-return]
