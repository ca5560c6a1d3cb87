"""Configuration of the cylinder pose network (``slfm_ros.core.models.cylinder_pose``).

Torch-free, so a model card is read (and an ONNX deployment configured) without PyTorch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from slfm_ros.core.config_io import from_mapping, to_mapping
from slfm_ros.core.errors import ConfigError


@dataclass(frozen=True)
class CylinderPoseConfig:
    """Cylinder pose network (relative camera yaw). Angles in degrees, sizes in pixels.

    image_height, image_width: network input size; images are area-resized to it by
                      ``preprocess_images_numpy`` (visual_pose), with ImageNet normalisation.
    hfov_deg:         horizontal field of view of those images (square pixels, centred
                      principal point); ``set_camera`` changes it at run time.
    pitch_deg:        camera elevation (+ up; the reference camera looks 22.5 deg down).
    step_deg:         cylinder cell size in both directions = the shift resolution = the width
                      of one yaw bin.
    max_turn_deg:     largest |theta|; the bins cover [-max_turn_deg, max_turn_deg], so there
                      are ``n_bins = 2 * round(max_turn_deg / step_deg) + 1``.
    row_pool:         rows of the gradient/intensity cylinders averaged before the NCC.
    vertical_blur_deg: standard deviation of the Gaussian that smooths a second copy of the
                      gradient map across rows only (a small camera tilt moves content
                      vertically, a yaw never does; its NCC tolerates tilt, the sharp one is
                      more precise; 0 = a copy without smoothing).
    min_overlap:      an NCC value counts only where the views share at least this fraction
                      of the cells they share at shift 0 (below it the NCC reads 0).
    direction_smoothing_deg: standard deviation of the Gaussian that smooths the histograms
                      of edge directions (their bins are ``step_deg`` wide).
    channels:         channels of the 1-D head along the shift axis.
    dilations:        dilation of each residual block of the head (kernel 3); their sum sets
                      the receptive field (2 * sum + 1 bins).
    context_dim:      size of the global context vector (pooled over all shifts) added back.
    confidence_window_deg: confidence = probability mass within this distance of the peak.
    refine_window_deg, refine_min_ncc: theta snaps to a gradient-NCC peak of at least
                      refine_min_ncc within refine_window_deg of the most likely bin, refined
                      to a fraction of a bin (see ``decode``).
    """

    image_height: int = 120
    image_width: int = 160
    hfov_deg: float = 60.0
    pitch_deg: float = -22.5
    step_deg: float = 0.5
    max_turn_deg: float = 90.0
    row_pool: int = 2
    vertical_blur_deg: float = 2.0
    min_overlap: float = 0.005
    direction_smoothing_deg: float = 2.0
    channels: int = 16
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16)
    context_dim: int = 16
    confidence_window_deg: float = 2.0
    refine_window_deg: float = 1.0
    refine_min_ncc: float = 0.5

    def __post_init__(self) -> None:
        def require(ok: bool, message: str) -> None:
            if not ok:
                raise ConfigError(f"CylinderPoseConfig.{message}")

        for name in ("image_height", "image_width", "row_pool", "channels"):
            value = getattr(self, name)
            require(isinstance(value, int) and value > 0, f"{name}: expected > 0, got {value!r}")
        require(
            self.image_height >= 16 and self.image_width >= 16,
            f"image size: expected >= 16 px, got {self.image_width}x{self.image_height}",
        )
        require(0.0 < self.hfov_deg < 150.0, f"hfov_deg: expected (0, 150), got {self.hfov_deg}")
        require(
            -80.0 < self.pitch_deg < 80.0, f"pitch_deg: expected (-80, 80), got {self.pitch_deg}"
        )
        require(0.05 <= self.step_deg <= 5.0, f"step_deg: expected [0.05, 5], got {self.step_deg}")
        require(
            abs(90.0 / self.step_deg - round(90.0 / self.step_deg)) < 1e-9,
            f"step_deg: must divide 90 deg (the direction histograms' bins), got {self.step_deg}",
        )
        require(
            self.step_deg < self.max_turn_deg <= 180.0,
            f"max_turn_deg: expected (step_deg, 180], got {self.max_turn_deg}",
        )
        require(
            self.vertical_blur_deg >= 0.0,
            f"vertical_blur_deg: expected >= 0, got {self.vertical_blur_deg}",
        )
        require(
            0.0 <= self.min_overlap < 1.0, f"min_overlap: expected [0, 1), got {self.min_overlap}"
        )
        require(
            self.direction_smoothing_deg > 0.0,
            f"direction_smoothing_deg: expected > 0, got {self.direction_smoothing_deg}",
        )
        require(
            len(self.dilations) > 0 and all(isinstance(d, int) and d > 0 for d in self.dilations),
            f"dilations: expected positive integers, got {self.dilations!r}",
        )
        require(self.context_dim >= 0, f"context_dim: expected >= 0, got {self.context_dim}")
        require(
            self.confidence_window_deg >= 0.0,
            f"confidence_window_deg: expected >= 0, got {self.confidence_window_deg}",
        )

    @property
    def max_shift(self) -> int:
        """Bins on each side of 0."""
        return int(round(self.max_turn_deg / self.step_deg))

    @property
    def n_bins(self) -> int:
        return 2 * self.max_shift + 1

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (lists for tuples) that ``from_dict`` reads back."""
        return to_mapping(self)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CylinderPoseConfig:
        """Config from a mapping; unknown keys raise ConfigError naming the known ones."""
        return from_mapping(CylinderPoseConfig, data, "CylinderPoseConfig")

    def with_camera(
        self, hfov_deg: float, pitch_deg: float, height: int, width: int
    ) -> CylinderPoseConfig:
        return dataclasses.replace(
            self,
            hfov_deg=float(hfov_deg),
            pitch_deg=float(pitch_deg),
            image_height=int(height),
            image_width=int(width),
        )
