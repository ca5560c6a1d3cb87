"""Cross-view binauralization U-Net (pretext task).

Given the mono mix (L + R) of a target view and a condition vector (the audio feature of the
source view's binaural clip and the visual pair feature between target and source views), it
predicts the target view's difference spectrogram (L - R) through a complex mask.

Shapes: mix (B, 2, F, T) real/imag of the mix STFT; condition (B, condition_dim);
output (B, 2, F, T) real/imag of the predicted L - R STFT. F and T need not be multiples of 32:
the input is zero-padded to one and the output cropped back.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.models.config import ModelConfig

LEAKY_SLOPE = 0.2
DOWNSAMPLING = 32  # five stride-2 convolutions


def _down(in_channels: int, out_channels: int, norm: bool) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=not norm)]
    if norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(LEAKY_SLOPE, inplace=True))
    return nn.Sequential(*layers)


def _up(in_channels: int, out_channels: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ConvTranspose2d(in_channels, out_channels, 4, 2, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def complex_multiply(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Element-wise complex product of two (B, 2, F, T) real/imag tensors."""
    real = a[:, 0] * b[:, 0] - a[:, 1] * b[:, 1]
    imag = a[:, 0] * b[:, 1] + a[:, 1] * b[:, 0]
    return torch.stack([real, imag], dim=1)


class BinauralizationUNet(nn.Module):
    """Predicts the L - R STFT of a target view from its mono mix and a condition vector."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        widths = cfg.binaural.channels
        self.condition_dim = cfg.condition_dim
        self.downs = nn.ModuleList(
            [_down(2 if i == 0 else widths[i - 1], widths[i], norm=i > 0) for i in range(5)]
        )
        ups = [_up(widths[4] + self.condition_dim, widths[3])]
        for i in (3, 2, 1):
            ups.append(_up(2 * widths[i], widths[i - 1]))
        self.ups = nn.ModuleList(ups)
        self.out = nn.ConvTranspose2d(2 * widths[0], 2, 4, 2, 1)

    def mask(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Complex mask (B, 2, F, T) with real and imaginary parts in (-1, 1)."""
        if mix.ndim != 4 or mix.shape[1] != 2:
            raise InputFormatError(
                f"BinauralizationUNet: expected mix (B, 2, F, T) real/imag, got {tuple(mix.shape)}"
            )
        if condition.shape != (mix.shape[0], self.condition_dim):
            raise InputFormatError(
                f"BinauralizationUNet: expected condition ({mix.shape[0]}, {self.condition_dim}), "
                f"got {tuple(condition.shape)}"
            )
        freq, time = mix.shape[2], mix.shape[3]
        pad_f = -freq % DOWNSAMPLING
        pad_t = -time % DOWNSAMPLING
        x = F.pad(mix, (0, pad_t, 0, pad_f))
        skips = []
        for down in self.downs:
            x = down(x)
            skips.append(x)
        tiled = condition[:, :, None, None].expand(-1, -1, x.shape[2], x.shape[3])
        x = self.ups[0](torch.cat([x, tiled], dim=1))
        for up, skip in zip(self.ups[1:], reversed(skips[:-1][1:]), strict=True):
            x = up(torch.cat([x, skip], dim=1))
        x = self.out(torch.cat([x, skips[0]], dim=1))
        return 2.0 * torch.sigmoid(x[:, :, :freq, :time]) - 1.0

    def forward(self, mix: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """Predicted L - R STFT (B, 2, F, T) real/imag = mix * mask (complex product)."""
        return complex_multiply(mix, self.mask(mix, condition))
