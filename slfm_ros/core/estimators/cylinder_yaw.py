"""Relative camera yaw by dense correlation of cylindrical reprojections (no learning).

Both images are reprojected onto the camera's level cylinder (``geometry.cylinder``), where a
pure yaw is a column shift. Each cylinder becomes a gradient-magnitude map (robust to
brightness and contrast changes; optionally smoothed across rows, for tolerance to a small
tilt at some cost in precision on small overlaps), and the masked normalised
cross-correlation (NCC) of the two
maps is taken for every shift in [-max_turn, max_turn]: only cells both views see count, and
each shift is normalised over its own overlap. The best shift, refined to a fraction of a cell
by a parabola through its neighbours, is the yaw.

It works on low texture where keypoint detectors find too little, but it cannot see a turn
between views that share no field of view (the learned ``CylinderPoseNet`` adds global cues
for those).

theta = yaw_1 - yaw_0 in radians, positive when the camera turned left from image 0 to 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate, VisualEstimator
from slfm_ros.core.geometry.cylinder import CylinderGrid, cylinder_grid, reproject_to_cylinder

FloatArray = npt.NDArray[np.float32]
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
# Rows of the gradient map averaged together before correlating: halves the work; yaw
# precision comes from the columns, which keep the full resolution.
ROW_POOL = 2
# Below this share of the zero-shift overlap, a shift's NCC is too noisy to be trusted.
MIN_OVERLAP_FRACTION = 0.08


def grey_of(image: npt.NDArray[np.uint8], width: int, height: int) -> FloatArray:
    """(H, W, 3) uint8 RGB -> (height, width) float32 luma in [0, 1], area-resized if needed."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise InputFormatError(
            f"expected a uint8 image; got {getattr(image, 'dtype', type(image).__name__)}"
        )
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputFormatError(f"expected an (H, W, 3) RGB image; got shape {image.shape}")
    if image.shape[:2] != (height, width):
        image = np.asarray(cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA))
    return np.asarray((image.astype(np.float32) / 255.0) @ LUMA, dtype=np.float32)


def eroded(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.bool_]:
    """Mask without its border cells (3x3 erosion): their gradients see the zero padding."""
    return cv2.erode(mask.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def gradient_magnitude(cylinder: FloatArray, mask: npt.NDArray[np.bool_]) -> FloatArray:
    """Sobel gradient magnitude (per cell, intensity units per cell) of a cylinder image,
    zero outside the eroded mask."""
    gx = cv2.Sobel(cylinder, cv2.CV_32F, 1, 0, ksize=3) / 8.0
    gy = cv2.Sobel(cylinder, cv2.CV_32F, 0, 1, ksize=3) / 8.0
    return np.where(eroded(mask), np.sqrt(gx * gx + gy * gy), 0.0).astype(np.float32)


def pool_rows(
    values: FloatArray, mask: npt.NDArray[np.bool_], factor: int = ROW_POOL
) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
    """Average ``factor`` consecutive rows; a pooled cell is valid when all its rows are."""
    rows = (values.shape[0] // factor) * factor
    pooled = values[:rows].reshape(rows // factor, factor, -1).mean(axis=1)
    valid = np.asarray(mask[:rows].reshape(rows // factor, factor, -1).all(axis=1), dtype=bool)
    return np.where(valid, pooled, 0.0).astype(np.float32), valid


def vertical_kernel(sigma_rows: float) -> FloatArray:
    """Normalised Gaussian (k, 1) of ``sigma_rows`` rows, k = 2 ceil(3 sigma) + 1."""
    half = int(math.ceil(3.0 * sigma_rows))
    x = np.arange(-half, half + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (x / sigma_rows) ** 2)
    return (kernel / kernel.sum()).astype(np.float32)[:, None]


def blur_rows(values: FloatArray, mask: npt.NDArray[np.bool_], sigma_rows: float) -> FloatArray:
    """Masked vertical Gaussian blur: a small camera tilt moves content up or down a little,
    and a yaw never does, so smoothing across rows makes the NCC tolerant of tilt without
    losing any yaw resolution. Normalised by the blurred mask, so edges keep their level."""
    if sigma_rows <= 0:
        return values
    kernel = vertical_kernel(sigma_rows)
    num = cv2.filter2D(values, -1, kernel, borderType=cv2.BORDER_CONSTANT)
    den = cv2.filter2D(mask.astype(np.float32), -1, kernel, borderType=cv2.BORDER_CONSTANT)
    return np.where(mask, num / np.maximum(den, 1e-6), 0.0).astype(np.float32)


def masked_ncc(
    feature_0: FloatArray,
    feature_1: FloatArray,
    mask: npt.NDArray[np.bool_],
    max_shift: int,
    min_overlap_fraction: float = MIN_OVERLAP_FRACTION,
) -> tuple[FloatArray, FloatArray]:
    """NCC of two (rows, cols) maps for column shifts -max_shift..max_shift (view 1 = view 0
    moved right by the shift), over the cells both see. Returns (ncc, overlap): (2 max_shift +
    1,) each; overlap is the shared cell count over the count at shift 0, and ncc is 0 where
    the overlap is below ``min_overlap_fraction``.
    """
    m = mask.astype(np.float64)
    # Standardised over each map's own cells: the NCC does not change, and the epsilon below
    # stays negligible whatever the maps' scale.
    a, b = (_standardised(f, mask) for f in (feature_0, feature_1))
    cols = m.shape[1]
    n_fft = 1 << int(math.ceil(math.log2(2 * cols)))

    def corr(x: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        # sum_{r, j} x[r, j - k] y[r, j] for every k (circular, wide enough not to wrap).
        spec = np.sum(np.conj(np.fft.rfft(x, n_fft, axis=1)) * np.fft.rfft(y, n_fft, axis=1), 0)
        full = np.fft.irfft(spec, n_fft)
        k = np.arange(-max_shift, max_shift + 1)
        return full[np.mod(k, n_fft)] * (np.abs(k) < cols)

    n = corr(m, m)
    s0, s1 = corr(a, m), corr(m, b)
    s00, s11, s01 = corr(a * a, m), corr(m, b * b), corr(a, b)
    safe = np.maximum(n, 1.0)
    mean_0, mean_1 = s0 / safe, s1 / safe
    cov = s01 / safe - mean_0 * mean_1
    var = np.maximum(s00 / safe - mean_0**2, 0.0) * np.maximum(s11 / safe - mean_1**2, 0.0)
    overlap = n / max(float(n[max_shift]), 1.0)
    ncc = np.where(overlap >= min_overlap_fraction, cov / np.sqrt(var + 1e-12), 0.0)
    return ncc.astype(np.float32), overlap.astype(np.float32)


def _standardised(values: FloatArray, mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float64]:
    cells = values[mask].astype(np.float64)
    if cells.size == 0:
        return np.zeros(values.shape, np.float64)
    std = float(cells.std())
    scaled = (values.astype(np.float64) - cells.mean()) / (std if std > 0 else 1.0)
    return np.where(mask, scaled, 0.0)


def refine_peak(curve: npt.NDArray[np.floating], index: int) -> float:
    """Sub-sample position of a peak at ``index``: vertex of the parabola through its
    neighbours (the index itself at the ends)."""
    if index <= 0 or index >= len(curve) - 1:
        return float(index)
    left, mid, right = (float(v) for v in curve[index - 1 : index + 2])
    denom = left - 2.0 * mid + right
    if denom >= 0.0:
        return float(index)
    return index + float(np.clip(0.5 * (left - right) / denom, -0.5, 0.5))


@dataclass(frozen=True)
class CylinderMatch:
    """The correlation behind one estimate: curves over shifts and the peak."""

    estimate: AngleEstimate
    shifts_rad: npt.NDArray[np.float64]
    ncc: FloatArray
    overlap: FloatArray
    peak_ncc: float


@lru_cache(maxsize=16)
def _grid(width: int, height: int, hfov: float, pitch: float, step: float) -> CylinderGrid:
    return cylinder_grid(width, height, pitch, step, hfov=hfov)


class CylinderNccYaw(VisualEstimator):
    """Dense classical yaw: masked NCC of cylindrical gradient maps over all shifts.

    hfov:  horizontal field of view in radians; pitch: camera elevation in radians (+ up).
    step_deg: cylinder cell size in degrees (the shift resolution before refinement).
    work_width, work_height: images are area-resized to this size first (pixels).
    max_turn_deg: largest |theta| searched.
    min_ncc: a best NCC below this gives an invalid estimate (no shared view found).
    vertical_blur_deg: Gaussian smoothing across rows (degrees; 0 = none, see blur_rows).
    """

    name = "cylinder"

    def __init__(
        self,
        hfov: float = math.radians(60.0),
        pitch: float = math.radians(-22.5),
        step_deg: float = 0.5,
        work_width: int = 160,
        work_height: int = 120,
        max_turn_deg: float = 90.0,
        min_ncc: float = 0.3,
        vertical_blur_deg: float = 0.0,
    ):
        if not 0.0 < hfov < math.pi:
            raise ConfigError(f"hfov must be in (0, pi) radians; got {hfov}")
        if not 0.05 <= step_deg <= 5.0:
            raise ConfigError(f"step_deg must be in [0.05, 5]; got {step_deg}")
        if work_width < 16 or work_height < 16:
            raise ConfigError(f"work size must be >= 16 px; got {work_width}x{work_height}")
        if not 0.0 < max_turn_deg <= 180.0:
            raise ConfigError(f"max_turn_deg must be in (0, 180]; got {max_turn_deg}")
        if not -1.0 <= min_ncc < 1.0:
            raise ConfigError(f"min_ncc must be in [-1, 1); got {min_ncc}")
        self.hfov = float(hfov)
        self.pitch = float(pitch)
        self.step = math.radians(step_deg)
        self.work_width = int(work_width)
        self.work_height = int(work_height)
        self.max_shift = int(round(math.radians(max_turn_deg) / self.step))
        self.min_ncc = float(min_ncc)
        if vertical_blur_deg < 0:
            raise ConfigError(f"vertical_blur_deg must be >= 0; got {vertical_blur_deg}")
        self.vertical_blur_deg = float(vertical_blur_deg)

    @property
    def grid(self) -> CylinderGrid:
        return _grid(self.work_width, self.work_height, self.hfov, self.pitch, self.step)

    def features(self, image: npt.NDArray[np.uint8]) -> tuple[FloatArray, npt.NDArray[np.bool_]]:
        """Row-pooled gradient-magnitude cylinder of one image (blurred across rows when
        ``vertical_blur_deg`` > 0) and its mask."""
        grid = self.grid
        grey = grey_of(image, self.work_width, self.work_height)
        grad = gradient_magnitude(reproject_to_cylinder(grey, grid), grid.mask)
        pooled, mask = pool_rows(grad, eroded(grid.mask))
        sigma_rows = self.vertical_blur_deg / (math.degrees(self.step) * ROW_POOL)
        return blur_rows(pooled, mask, sigma_rows), mask

    def estimate(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> AngleEstimate:
        return self.match(image_0, image_1).estimate

    def match(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> CylinderMatch:
        """Estimate theta and return the NCC and overlap curves it came from."""
        f0, mask = self.features(image_0)
        f1, _ = self.features(image_1)
        ncc, overlap = masked_ncc(f0, f1, mask, self.max_shift)
        shifts = np.arange(-self.max_shift, self.max_shift + 1, dtype=np.float64) * self.step
        best = int(np.argmax(ncc))
        peak = float(ncc[best])
        if not peak >= self.min_ncc:
            reason = f"no shared view found (best NCC {peak:.2f} < {self.min_ncc:.2f})"
            return CylinderMatch(AngleEstimate.invalid(reason), shifts, ncc, overlap, peak)
        theta = (refine_peak(ncc, best) - self.max_shift) * self.step
        # Confidence: how far the peak stands above the rest of the curve.
        others = np.abs(np.arange(len(ncc)) - best) > max(
            2, int(round(2.0 / math.degrees(self.step)))
        )
        runner_up = float(np.max(ncc[others])) if np.any(others) else 0.0
        confidence = float(np.clip(peak, 0.0, 1.0)) * float(np.clip((peak - runner_up) / 0.2, 0, 1))
        estimate = AngleEstimate.from_confidence(theta, confidence)
        return CylinderMatch(estimate, shifts, ncc, overlap, peak)
