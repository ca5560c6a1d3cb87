"""Photometric camera effects for simulated views: colour jitter, sensor noise, blur, JPEG.

All functions take and return (H, W, 3) uint8 RGB images and draw their randomness from the
``rng`` they are given, so a seeded generator reproduces the same result.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, InputFormatError

Image = npt.NDArray[np.uint8]
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)


def _check_image(img: Image) -> None:
    if not isinstance(img, np.ndarray) or img.ndim != 3 or img.shape[2] != 3:
        raise InputFormatError(
            f"expected an (H, W, 3) RGB image; got shape {getattr(img, 'shape', None)}."
        )
    if img.dtype != np.uint8:
        raise InputFormatError(f"expected a uint8 image; got {img.dtype}.")


def colour_jitter(
    img: Image,
    rng: np.random.Generator,
    brightness: float = 0.2,
    contrast: float = 0.2,
    saturation: float = 0.2,
    hue: float = 0.2,
    p: float = 0.9,
) -> Image:
    """Random brightness, contrast, saturation and hue changes in random order.

    With probability ``p`` each of the four factors is drawn: brightness, contrast and
    saturation multiply by a factor in [1 - x, 1 + x]; hue shifts by up to +-``hue`` of a full
    turn (0.2 = +-72 deg). The same parametrisation as the reference's training augmentation.
    """
    _check_image(img)
    for name, value, limit in (
        ("brightness", brightness, None),
        ("contrast", contrast, None),
        ("saturation", saturation, None),
        ("hue", hue, 0.5),
    ):
        if value < 0 or (limit is not None and value > limit):
            raise ConfigError(
                f"colour jitter {name} must be in [0, {limit or 'inf'}]; got {value}."
            )
    if rng.random() >= p:
        return img
    out = img.astype(np.float32) / 255.0
    for step in rng.permutation(4):
        if step == 0 and brightness > 0:
            out = out * rng.uniform(1 - brightness, 1 + brightness)
        elif step == 1 and contrast > 0:
            mean = float(np.mean(out @ _LUMA))
            out = (out - mean) * rng.uniform(1 - contrast, 1 + contrast) + mean
        elif step == 2 and saturation > 0:
            grey = (out @ _LUMA)[..., None]
            out = (out - grey) * rng.uniform(1 - saturation, 1 + saturation) + grey
        elif step == 3 and hue > 0:
            out = _shift_hue(np.clip(out, 0.0, 1.0), float(rng.uniform(-hue, hue)))
        out = np.clip(out, 0.0, 1.0)
    return (out * 255.0 + 0.5).astype(np.uint8)


def _shift_hue(rgb: npt.NDArray[np.float32], turns: float) -> npt.NDArray[np.float32]:
    hsv = cv2.cvtColor(rgb.astype(np.float32), cv2.COLOR_RGB2HSV)  # float H in [0, 360)
    hsv[..., 0] = np.mod(hsv[..., 0] + 360.0 * turns, 360.0)
    return np.asarray(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB), dtype=np.float32)


def add_noise(img: Image, rng: np.random.Generator, sigma: float) -> Image:
    """Additive Gaussian sensor noise, ``sigma`` in grey levels (0..255 scale)."""
    _check_image(img)
    if sigma < 0:
        raise ConfigError(f"noise sigma must be >= 0 grey levels; got {sigma}.")
    if sigma == 0:
        return img
    noisy = img.astype(np.float32) + rng.normal(0.0, sigma, img.shape).astype(np.float32)
    return np.clip(noisy + 0.5, 0, 255).astype(np.uint8)


def blur(img: Image, rng: np.random.Generator, max_sigma: float) -> Image:
    """Gaussian blur with sigma drawn uniformly from [0, max_sigma] pixels (defocus)."""
    _check_image(img)
    if max_sigma < 0:
        raise ConfigError(f"blur max_sigma must be >= 0 pixels; got {max_sigma}.")
    sigma = float(rng.uniform(0.0, max_sigma)) if max_sigma > 0 else 0.0
    if sigma < 0.3:  # below a third of a pixel the kernel is a no-op
        return img
    return np.asarray(cv2.GaussianBlur(img, (0, 0), sigma), dtype=np.uint8)


def jpeg(img: Image, rng: np.random.Generator, min_quality: int) -> Image:
    """JPEG compression artefacts at a quality drawn from [min_quality, 95]."""
    _check_image(img)
    if not 1 <= min_quality <= 95:
        raise ConfigError(f"JPEG min_quality must be in [1, 95]; got {min_quality}.")
    quality = int(rng.integers(min_quality, 96))
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    decoded = cv2.imdecode(data, cv2.IMREAD_COLOR) if ok else None
    if decoded is None:
        raise InputFormatError("JPEG round trip failed; check the image.")
    return np.asarray(cv2.cvtColor(decoded, cv2.COLOR_BGR2RGB), dtype=np.uint8)


@dataclass(frozen=True)
class CameraEffects:
    """Which effects a simulated camera applies, validated on creation.

    jitter_*: colour jitter strengths (0 disables that factor), applied with ``jitter_p``.
    noise_sigma_max: per-image noise sigma drawn from [0, noise_sigma_max] grey levels,
        applied with probability ``noise_p``.
    blur_sigma_max: per-image blur sigma bound in pixels, applied with probability ``blur_p``.
    jpeg_min_quality: 0 disables; otherwise quality in [jpeg_min_quality, 95] with ``jpeg_p``.
    """

    jitter_brightness: float = 0.2
    jitter_contrast: float = 0.2
    jitter_saturation: float = 0.2
    jitter_hue: float = 0.2
    jitter_p: float = 0.9
    noise_sigma_max: float = 0.0
    noise_p: float = 0.5
    blur_sigma_max: float = 0.0
    blur_p: float = 0.3
    jpeg_min_quality: int = 0
    jpeg_p: float = 0.5

    def __post_init__(self) -> None:
        for name in ("jitter_p", "noise_p", "blur_p", "jpeg_p"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} is a probability in [0, 1]; got {value}.")
        for name in (
            "jitter_brightness",
            "jitter_contrast",
            "jitter_saturation",
            "jitter_hue",
            "noise_sigma_max",
            "blur_sigma_max",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be >= 0; got {getattr(self, name)}.")
        if self.jitter_hue > 0.5:
            raise ConfigError(f"jitter_hue is a fraction of a turn <= 0.5; got {self.jitter_hue}.")
        if self.jpeg_min_quality and not 1 <= self.jpeg_min_quality <= 95:
            raise ConfigError(
                f"jpeg_min_quality must be 0 or in [1, 95]; got {self.jpeg_min_quality}."
            )

    @staticmethod
    def none() -> CameraEffects:
        """No effect at all (clean renders, e.g. for evaluation)."""
        return CameraEffects(0.0, 0.0, 0.0, 0.0, 0.0)

    def apply(self, img: Image, rng: np.random.Generator) -> Image:
        """The configured effects in camera order: optics (blur), sensor (noise), ISP (colour),
        compression (JPEG)."""
        out = img
        if self.blur_sigma_max > 0 and rng.random() < self.blur_p:
            out = blur(out, rng, self.blur_sigma_max)
        if self.noise_sigma_max > 0 and rng.random() < self.noise_p:
            out = add_noise(out, rng, float(rng.uniform(0.0, self.noise_sigma_max)))
        if self.jitter_p > 0:
            out = colour_jitter(
                out,
                rng,
                self.jitter_brightness,
                self.jitter_contrast,
                self.jitter_saturation,
                self.jitter_hue,
                self.jitter_p,
            )
        if self.jpeg_min_quality and rng.random() < self.jpeg_p:
            out = jpeg(out, rng, self.jpeg_min_quality)
        return out
