"""ResNet-18 trunk with configurable input channels, width and depth.

Shapes: input (B, in_channels, H, W); output (B, out_channels, H', W') where the stride is
4 after the stem, then x1, x2, x4, x8 after layer1..layer4 (so 16 after layer3, 32 after layer4).
Channel widths are 64/128/256/512 times ``width_mult``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from slfm_ros.core.errors import ConfigError

BASE_WIDTHS = (64, 128, 256, 512)


def scaled_width(base: int, width_mult: float) -> int:
    """Channel count ``base * width_mult`` rounded to a multiple of 8 (at least 8)."""
    return max(8, round(base * width_mult / 8.0) * 8)


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """Spatial size after a convolution or pooling with the given kernel, stride and padding."""
    return (size + 2 * padding - kernel) // stride + 1


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a residual connection (projection when the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.downsample: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.downsample = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.downsample(x))


class ResNet18Trunk(nn.Module):
    """ResNet-18 from the stem up to and including ``stop_after_layer`` (1..4).

    in_channels:      channels of the input (3 for RGB, 4 for binaural STFT features).
    width_mult:       scales every stage width (1.0 = 64/128/256/512).
    stop_after_layer: last residual stage kept; later stages are not built.
    blocks:           BasicBlocks per stage (ResNet-18 uses 2 everywhere).
    """

    def __init__(
        self,
        in_channels: int,
        width_mult: float = 1.0,
        stop_after_layer: int = 4,
        blocks: Sequence[int] = (2, 2, 2, 2),
    ) -> None:
        super().__init__()
        if not 1 <= stop_after_layer <= 4:
            raise ConfigError(f"stop_after_layer: expected 1..4, got {stop_after_layer}")
        if len(blocks) < stop_after_layer or any(b < 1 for b in blocks[:stop_after_layer]):
            raise ConfigError(
                f"blocks: expected at least {stop_after_layer} positive counts, got {list(blocks)}"
            )
        if width_mult <= 0:
            raise ConfigError(f"width_mult: expected > 0, got {width_mult}")
        widths = [scaled_width(w, width_mult) for w in BASE_WIDTHS[:stop_after_layer]]
        stem = widths[0]
        self.stop_after_layer = stop_after_layer
        self.out_channels = widths[-1]
        self.conv1 = nn.Conv2d(in_channels, stem, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        stages = []
        previous = stem
        for index, (width, count) in enumerate(zip(widths, blocks, strict=False)):
            stride = 1 if index == 0 else 2
            layers = [BasicBlock(previous, width, stride)]
            layers += [BasicBlock(width, width, 1) for _ in range(count - 1)]
            stages.append(nn.Sequential(*layers))
            previous = width
        self.layers = nn.ModuleList(stages)
        self._init_weights()

    def _init_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
        # Zero the last BN of each residual branch so every block starts as an identity map,
        # which makes training from scratch steadier.
        for module in self.modules():
            if isinstance(module, BasicBlock):
                nn.init.zeros_(module.bn2.weight)

    def output_size(self, height: int, width: int) -> tuple[int, int]:
        """Spatial size (H', W') of the trunk output for an (height, width) input."""
        sizes = []
        for size in (height, width):
            size = conv_output_size(size, 7, 2, 3)
            size = conv_output_size(size, 3, 2, 1)
            for _ in range(self.stop_after_layer - 1):
                size = conv_output_size(size, 3, 2, 1)
            sizes.append(size)
        return sizes[0], sizes[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for stage in self.layers:
            x = stage(x)
        return x
