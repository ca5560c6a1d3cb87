"""The robot's camera: a level pinhole view of a procedural panorama around the room.

The panorama's azimuth 0 is the world +x axis (the robot's start heading), so the image at yaw
psi is the crop centred on azimuth psi: what the camera yaw estimators of slfm_node measure.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.panorama import crop_perspective, match_resolution
from slfm_ros.core.sim.panoramas import ProceduralPanoramas

# The world the sim-robot stands in (one procedural panorama, the same for every seed).
WORLD_KEY = 0x51_90B07


@dataclass(frozen=True)
class CameraSpec:
    """Image size (px), horizontal field of view (deg), frame rate (Hz), pixel noise sigma
    (grey levels) and panorama width (px)."""

    width: int = 320
    height: int = 240
    hfov_deg: float = 60.0
    fps: float = 10.0
    noise_sigma: float = 2.0
    panorama_width: int = 2048

    def __post_init__(self) -> None:
        if self.width < 16 or self.height < 16:
            raise ConfigError(
                f"image size must be at least 16 x 16, got {self.width}x{self.height}"
            )
        if not 10.0 <= self.hfov_deg <= 150.0:
            raise ConfigError(f"hfov_deg must be in [10, 150], got {self.hfov_deg}")
        if not 0.0 < self.fps <= 60.0:
            raise ConfigError(f"camera fps must be in (0, 60], got {self.fps}")


class SimCamera:
    """Renders the camera image at a yaw (see module doc)."""

    def __init__(self, spec: CameraSpec, seed: int = 0) -> None:
        self.spec = spec
        self.seed = int(seed)

    @cached_property
    def panorama(self) -> npt.NDArray[np.uint8]:
        worlds = ProceduralPanoramas(width=self.spec.panorama_width, seed=self.seed)
        pano = worlds.panorama(WORLD_KEY, "test")
        return match_resolution(pano, math.radians(self.spec.hfov_deg), self.spec.width)

    def image(self, yaw: float, frame_index: int) -> npt.NDArray[np.uint8]:
        """(height, width, 3) uint8 RGB view at ``yaw`` (radians); the pixel noise is seeded by
        the frame index, so a run can be repeated."""
        s = self.spec
        crop = crop_perspective(
            self.panorama, float(yaw), 0.0, math.radians(s.hfov_deg), s.width, s.height
        )
        if s.noise_sigma <= 0:
            return crop
        rng = np.random.default_rng([self.seed, int(frame_index)])
        noisy = crop.astype(np.float32) + rng.normal(0.0, s.noise_sigma, crop.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)
