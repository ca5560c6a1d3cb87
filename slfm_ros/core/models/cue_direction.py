"""Compact audio direction network: binaural cues -> a distribution over the full circle.

Input: one row per window, the cue vector of ``slfm_ros.core.dsp.binaural_cues`` followed by
two receiver numbers, ``aperture = [known, max_itd_ms]`` (known = 1 when the caller knows the
receiver's largest interaural delay, else both 0), so the network uses the user's receiver
description when there is one and still answers without it. With ``peak_lags`` set, the network
also reads the GCC-PHAT peak off the cues (parabolic refinement on the lag grid, inside the
graph): its lag in ms, its height, and the lag as a fraction of the known max ITD.

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

from slfm_ros.core.models.azimuth_bins import APERTURE_DIM, CueNetConfig, lag_shapes

# Peak features derived inside the graph (see CueNetConfig.peak_lags).
PEAK_DIM = 3


class CueDirectionNet(nn.Module):
    """MLP from (cues, aperture) to azimuth logits; see the module docstring."""

    def __init__(self, cfg: CueNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        layers: list[nn.Module] = []
        width = cfg.input_dim + APERTURE_DIM + (PEAK_DIM if cfg.peak_lags else 0)
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
        if cfg.steered:
            self.lag_shapes: torch.Tensor
            self.register_buffer("lag_shapes", torch.tensor(lag_shapes(cfg), dtype=torch.float32))
            # Sharpness of the GCC-PHAT prior in the logits, per receiver shape.
            self.steer_gain = nn.Parameter(torch.full((2,), 10.0))

    @property
    def feature_dim(self) -> int:
        """Length of one input row: the cues, then the aperture."""
        return self.cfg.input_dim + APERTURE_DIM

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (B, input_dim + 2) = [cues, aperture] -> logits (B, n_bins)."""
        cues = features[:, : self.cfg.input_dim]
        aperture = features[:, self.cfg.input_dim :]
        x = (cues - self.input_mean) / self.input_scale
        parts = [x, aperture]
        if self.cfg.peak_lags:
            parts.append(self._peak(cues[:, : self.cfg.peak_lags], aperture))
        logits = self.net(torch.cat(parts, dim=1))
        if self.cfg.steered:
            steered = self._steered(cues[:, : self.cfg.peak_lags], aperture)
            logits = logits + (self.steer_gain[None, :, None] * steered).sum(dim=1)
        return logits  # type: ignore[no-any-return]

    def _steered(self, gcc: torch.Tensor, aperture: torch.Tensor) -> torch.Tensor:
        """(B, 2, n_bins): GCC-PHAT at each bin's lag under both receiver shapes; 0 when the
        receiver is unknown."""
        batch, count = gcc.shape
        known, max_itd_ms = aperture[:, 0:1, None], aperture[:, 1:2, None]
        lag = max_itd_ms * self.lag_shapes[None]  # (B, 2, n_bins), ms
        position = torch.clamp(lag / self.cfg.lag_step_ms + 0.5 * (count - 1), 0.0, count - 1.0)
        low = torch.floor(position)
        frac = position - low
        i0 = low.long().reshape(batch, -1)
        i1 = torch.clamp(i0 + 1, max=count - 1)
        g0 = torch.gather(gcc, 1, i0).reshape(lag.shape)
        g1 = torch.gather(gcc, 1, i1).reshape(lag.shape)
        return known * ((1.0 - frac) * g0 + frac * g1)

    def _peak(self, gcc: torch.Tensor, aperture: torch.Tensor) -> torch.Tensor:
        """(B, 3): refined peak lag (ms), peak height, lag / max ITD (0 when unknown)."""
        last = gcc.shape[1] - 1
        k = torch.argmax(gcc, dim=1, keepdim=True)
        y0 = torch.gather(gcc, 1, torch.clamp(k - 1, 0, last))
        y1 = torch.gather(gcc, 1, k)
        y2 = torch.gather(gcc, 1, torch.clamp(k + 1, 0, last))
        curvature = y0 - 2.0 * y1 + y2
        safe = torch.where(curvature < -1e-6, curvature, -torch.ones_like(curvature))
        offset = torch.where(
            curvature < -1e-6, torch.clamp(0.5 * (y0 - y2) / safe, -0.5, 0.5), 0.0 * curvature
        )
        lag_ms = (k.to(gcc.dtype) - 0.5 * last + offset) * self.cfg.lag_step_ms
        known, max_itd_ms = aperture[:, 0:1], aperture[:, 1:2]
        ratio = known * lag_ms / torch.clamp(max_itd_ms, min=0.05)
        return torch.cat([lag_ms, y1, torch.clamp(ratio, -1.5, 1.5)], dim=1)
