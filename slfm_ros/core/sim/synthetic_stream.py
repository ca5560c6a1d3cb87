"""A deterministic synthetic sensor stream with known truth, for tests and benchmarks.

Audio: one static broadband (white noise) source heard by a free-field microphone pair
(``FreeFieldPair``): the right channel is the left one delayed by the interaural time
difference itd = t_right - t_left (a fractional delay applied in the frequency domain), so
the truth is an exact azimuth. Images: perspective crops of a random-texture panorama seen
by a camera whose yaw turns at a constant rate. The microphones stay fixed while the camera
turns (a pan unit), so the azimuth truth is constant and the yaw truth is yaw_rate * t.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.geometry.interaural import FreeFieldPair
from slfm_ros.core.geometry.panorama import crop_perspective

_NS_PER_S = 1_000_000_000


def random_panorama(height: int = 512, seed: int = 0) -> npt.NDArray[np.uint8]:
    """(height, 2 height, 3) uint8 equirectangular panorama of multi-scale noise with
    coloured shapes: rich in corners and edges at every azimuth, never repeating."""
    rng = np.random.default_rng(seed)
    width = 2 * height
    canvas = np.zeros((height, width, 3), dtype=np.float32)
    for scale in (64, 16, 4):
        small = rng.random((max(2, height // scale), max(2, width // scale), 3)).astype(np.float32)
        layer = cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)
        canvas += np.asarray(layer, dtype=np.float32) / 3.0
    image = np.clip(canvas * 255.0, 0, 255).astype(np.uint8)
    for _ in range(400):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        size = int(rng.integers(4, 28))
        if rng.random() < 0.5:
            cv2.rectangle(image, (x, y), (x + size, y + int(rng.integers(4, 28))), colour, -1)
        else:
            cv2.circle(image, (x, y), size // 2, colour, -1)
    return image


@dataclass(frozen=True)
class SyntheticScene:
    """Truth and sensor settings of the stream.

    azimuth_rad:    source azimuth in the microphone frame (REP-103, left positive).
    spacing_m:      microphone spacing of the free-field pair.
    sample_rate:    Hz. level_rms: RMS of the noise (full scale 1.0).
    yaw_rate_rad_s: camera yaw rate; yaw(t) = yaw_rate * (t - start). fps: image rate.
    image_size:     (width, height) of the crops; hfov_rad: their horizontal field of view.
    """

    azimuth_rad: float = math.radians(30.0)
    spacing_m: float = 0.14
    sample_rate: int = 48000
    level_rms: float = 0.1
    yaw_rate_rad_s: float = math.radians(20.0)
    fps: float = 15.0
    image_size: tuple[int, int] = (320, 240)
    hfov_rad: float = math.radians(60.0)
    seed: int = 0

    @property
    def itd_s(self) -> float:
        return float(FreeFieldPair(self.spacing_m).itd(self.azimuth_rad))


class SyntheticStream:
    """Audio and images of a SyntheticScene from capture time ``start_ns`` on."""

    def __init__(self, scene: SyntheticScene, duration_s: float, start_ns: int = 0) -> None:
        self.scene = scene
        self.duration_s = float(duration_s)
        self.start_ns = int(start_ns)

    @cached_property
    def audio(self) -> npt.NDArray[np.float32]:
        """(frames, 2) float32 of the whole duration; frame n is captured at
        start_ns + n / sample_rate."""
        s = self.scene
        n = int(round(self.duration_s * s.sample_rate))
        rng = np.random.default_rng(s.seed)
        left = rng.standard_normal(n) * s.level_rms
        spectrum = np.fft.rfft(left)
        freqs = np.fft.rfftfreq(n, 1.0 / s.sample_rate)
        right = np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * s.itd_s), n)
        return np.stack([left, right], axis=1).astype(np.float32)

    @cached_property
    def panorama(self) -> npt.NDArray[np.uint8]:
        return random_panorama(seed=self.scene.seed)

    def audio_chunks(self, chunk_s: float) -> list[tuple[int, npt.NDArray[np.float32]]]:
        """(stamp of the first sample in ns, (frames, 2) samples) of consecutive chunks."""
        rate = self.scene.sample_rate
        size = int(round(chunk_s * rate))
        out = []
        for first in range(0, self.audio.shape[0] - size + 1, size):
            stamp = self.start_ns + first * _NS_PER_S // rate
            out.append((stamp, self.audio[first : first + size]))
        return out

    def yaw_at(self, stamp_ns: int) -> float:
        """True camera yaw (radians, not wrapped) at capture time ``stamp_ns``."""
        return self.scene.yaw_rate_rad_s * (stamp_ns - self.start_ns) / _NS_PER_S

    def image_stamps(self) -> list[int]:
        count = int(math.floor(self.duration_s * self.scene.fps))
        return [self.start_ns + int(round(i * _NS_PER_S / self.scene.fps)) for i in range(count)]

    def image_at(self, stamp_ns: int) -> npt.NDArray[np.uint8]:
        """(H, W, 3) uint8 RGB view at the camera yaw of ``stamp_ns``."""
        width, height = self.scene.image_size
        return crop_perspective(
            self.panorama, self.yaw_at(stamp_ns), 0.0, self.scene.hfov_rad, width, height
        )
