"""Visual pose network: relative camera yaw from two images.

A shared (Siamese) ResNet-18 trunk maps both images to feature maps; an all-pairs correlation
between them (softmax over the positions of the first image) forms a volume with one channel
per position of the first image; a small conv encoder turns the volume into a pair feature, and
a head maps it to theta = tanh(x) * pi/2.

Convention: ``forward(img_0, img_1)`` returns theta = yaw_1 - yaw_0 in radians (REP-103, a turn
to the left is positive).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import numpy.typing as npt
import torch
from torch import nn

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.models.config import VisualNetConfig
from slfm_ros.core.models.resnet import ResNet18Trunk, conv_output_size

IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
LEAKY_SLOPE = 0.2


class ImageSize(Protocol):
    """Any visual network config: the input size its images are resized to."""

    @property
    def image_height(self) -> int: ...

    @property
    def image_width(self) -> int: ...


def preprocess_images_numpy(
    images: Sequence[npt.NDArray[np.uint8]], cfg: ImageSize
) -> npt.NDArray[np.float32]:
    """Images (H, W, 3) uint8 RGB -> (N, 3, cfg.image_height, cfg.image_width) float32.

    Each image is resized with cv2.INTER_AREA to the network size (a plain resize, no crop, so
    the full horizontal field of view is kept) and normalised with the ImageNet mean and std.
    """
    if len(images) == 0:
        raise InputFormatError("preprocess_images: expected at least one image, got none")
    out = np.empty((len(images), 3, cfg.image_height, cfg.image_width), dtype=np.float32)
    for index, given in enumerate(images):
        image: npt.NDArray = np.asarray(given)
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputFormatError(
                f"preprocess_images: expected (H, W, 3) uint8 RGB, got shape {image.shape} "
                f"dtype {image.dtype}; convert the image to 8-bit RGB first"
            )
        if image.shape[:2] != (cfg.image_height, cfg.image_width):
            image = cv2.resize(
                image, (cfg.image_width, cfg.image_height), interpolation=cv2.INTER_AREA
            )
        scaled = image.astype(np.float32) / 255.0
        out[index] = ((scaled - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1)
    return out


def preprocess_images(
    images: Sequence[npt.NDArray[np.uint8]], cfg: VisualNetConfig
) -> torch.Tensor:
    """Same as ``preprocess_images_numpy``, as a CPU torch tensor (N, 3, H, W) float32."""
    return torch.from_numpy(preprocess_images_numpy(images, cfg))


def _conv_bn_act(in_channels: int, out_channels: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.LeakyReLU(LEAKY_SLOPE, inplace=True),
    )


def correlation_volume(feat_a: torch.Tensor, feat_b: torch.Tensor) -> torch.Tensor:
    """All-pairs correlation of two feature maps (B, C, H, W) -> (B, H*W, H, W).

    Channel j of the output at position i holds softmax_j(<feat_a[j], feat_b[i]> / sqrt(C)):
    for every position i of ``feat_b``, a distribution over the positions j of ``feat_a``.
    The 1/sqrt(C) scale keeps the softmax away from saturation at initialisation.
    """
    batch, channels, height, width = feat_a.shape
    a = feat_a.flatten(2)  # (B, C, Na)
    b = feat_b.flatten(2)  # (B, C, Nb)
    scores = torch.bmm(b.transpose(1, 2), a) / math.sqrt(channels)  # (B, Nb, Na)
    weights = torch.softmax(scores, dim=2)
    return weights.transpose(1, 2).reshape(batch, height * width, height, width)


class VisualPoseNet(nn.Module):
    """Relative camera yaw from two images; input (B, 3, H, W) ImageNet-normalised."""

    def __init__(self, cfg: VisualNetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.trunk = ResNet18Trunk(3, cfg.width_mult, cfg.trunk_stop_layer, cfg.trunk_blocks)
        height, width = self.trunk.output_size(cfg.image_height, cfg.image_width)
        layers = []
        in_channels = height * width
        for index in range(cfg.encoder_layers):
            stride = 2 if index % 2 == 1 else 1
            layers.append(_conv_bn_act(in_channels, cfg.encoder_channels, stride))
            in_channels = cfg.encoder_channels
            if stride == 2:
                height = conv_output_size(height, 3, 2, 1)
                width = conv_output_size(width, 3, 2, 1)
        self.encoder = nn.Sequential(*layers)
        self.project = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.encoder_channels * height * width, cfg.feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(
            nn.Linear(cfg.feature_dim, cfg.head_hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.head_hidden, 1),
        )

    @property
    def feature_dim(self) -> int:
        return self.cfg.feature_dim

    def _check(self, image: torch.Tensor) -> None:
        expected = (3, self.cfg.image_height, self.cfg.image_width)
        if image.ndim != 4 or tuple(image.shape[1:]) != expected:
            raise InputFormatError(
                f"VisualPoseNet: expected (B, {expected[0]}, {expected[1]}, {expected[2]}), got "
                f"{tuple(image.shape)}; use preprocess_images() with this model's config"
            )

    def trunk_features(self, images: torch.Tensor) -> torch.Tensor:
        """Trunk feature maps (N, C, h, w) of images (N, 3, H, W). Computed once per image, they
        serve every pair the image is in (``pair_feature_from_maps``)."""
        self._check(images)
        return self.trunk(images)

    def pair_feature_from_maps(self, feat_a: torch.Tensor, feat_b: torch.Tensor) -> torch.Tensor:
        """Pair feature (B, feature_dim) of two batches of trunk feature maps (B, C, h, w)."""
        return self.project(self.encoder(correlation_volume(feat_a, feat_b)))

    def pair_feature(self, img_a: torch.Tensor, img_b: torch.Tensor) -> torch.Tensor:
        """Pair feature (B, feature_dim) of two image batches (B, 3, H, W)."""
        self._check(img_a)
        features = self.trunk_features(torch.cat([img_a, img_b], dim=0))
        feat_a, feat_b = features.chunk(2, dim=0)
        return self.pair_feature_from_maps(feat_a, feat_b)

    def rotation_logit(self, pair_feature: torch.Tensor) -> torch.Tensor:
        """Head pre-activation (B,); theta = tanh(logit) * pi/2."""
        return self.head(pair_feature).squeeze(1)

    def forward(self, img_0: torch.Tensor, img_1: torch.Tensor) -> torch.Tensor:
        """theta = yaw_1 - yaw_0 in radians, shape (B,), in (-pi/2, pi/2)."""
        return torch.tanh(self.rotation_logit(self.pair_feature(img_0, img_1))) * (math.pi / 2)
