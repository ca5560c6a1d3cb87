"""Relative camera yaw from two images by feature matching (ORB or SIFT) and RANSAC.

The camera only rotates, so matched pixels obey ``x1 ~ K R K^-1 x0``. Three fitting models:

``yaw`` (default): pixels become unit bearing vectors in the level body frame (the known
    camera pitch removed), where a turn by theta is ``b1 = Rz(-theta) b0``. One match fixes
    theta, so RANSAC needs one sample per hypothesis and the 1-parameter fit is closed-form.
``rotation``: 2-point RANSAC on bearings for a full 3-D rotation (Kabsch); yaw read from it.
    Keeps its inliers when the pitch is off or the camera rolls, where the 1-parameter
    model rejects them; costs one more parameter per sample.
``homography``: ``cv2.findHomography`` with RANSAC, decomposed with ``yaw_from_homography``.

theta = yaw_1 - yaw_0 in radians, positive when the camera turned left between image 0 and 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate, VisualEstimator
from slfm_ros.core.geometry.camera import (
    OPTICAL_FROM_BODY,
    closest_rotation,
    intrinsics_from_fov,
    rot_y,
    yaw_from_homography,
)

Array = npt.NDArray[np.float64]
Fit = tuple[float, npt.NDArray[np.bool_]]  # theta (radians) and the inlier mask

DETECTORS = ("orb", "sift")
MODELS = ("yaw", "rotation", "homography")


@dataclass(frozen=True)
class MatchResult:
    """Everything one estimate saw: counts for diagnostics and the estimate itself."""

    estimate: AngleEstimate
    keypoints: tuple[int, int]
    matches: int
    inliers: int


def _grey(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8:
        raise InputFormatError(
            f"expected a uint8 image; got {getattr(img, 'dtype', type(img).__name__)}."
        )
    if img.ndim == 2:
        return img
    if img.ndim == 3 and img.shape[2] == 3:
        return np.asarray(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY), dtype=np.uint8)
    raise InputFormatError(f"expected an (H, W, 3) RGB or (H, W) grey image; got {img.shape}.")


class FeatureMatchingYaw(VisualEstimator):
    """Classical relative-yaw estimator.

    detector: "orb" or "sift".
    hfov: horizontal field of view in radians, used to build K from each image's size
        (ignored when ``K`` is given).
    pitch: camera elevation in radians (+ up; the default -22.5 deg looks down).
    min_inliers: fewer RANSAC inliers than this gives an invalid estimate.
    min_inlier_ratio: inliers / ratio-test matches below this gives an invalid estimate.
    ratio: Lowe's ratio test threshold on the two nearest descriptor distances.
    threshold_px: RANSAC inlier distance in pixels (converted to an angle with the focal length).
    """

    name = "feature_matching"

    def __init__(
        self,
        detector: str = "orb",
        hfov: float = math.radians(60.0),
        pitch: float = math.radians(-22.5),
        K: npt.ArrayLike | None = None,
        min_inliers: int = 8,
        min_inlier_ratio: float = 0.1,
        ratio: float = 0.8,
        max_features: int = 2000,
        threshold_px: float = 2.0,
        model: str = "yaw",
        ransac_iterations: int = 200,
        seed: int = 0,
    ):
        if detector not in DETECTORS:
            raise ConfigError(f"detector must be one of {DETECTORS}; got {detector!r}.")
        if model not in MODELS:
            raise ConfigError(f"model must be one of {MODELS}; got {model!r}.")
        if not 0.0 < ratio <= 1.0:
            raise ConfigError(f"ratio test threshold must be in (0, 1]; got {ratio}.")
        if min_inliers < 2:
            raise ConfigError(f"min_inliers must be >= 2; got {min_inliers}.")
        if threshold_px <= 0:
            raise ConfigError(f"threshold_px must be > 0; got {threshold_px}.")
        if not 0.0 < hfov < math.pi:
            raise ConfigError(f"hfov must be in (0, pi) radians; got {hfov}.")
        self.detector = detector
        self.hfov = float(hfov)
        self.pitch = float(pitch)
        self.K = None if K is None else np.asarray(K, dtype=np.float64).reshape(3, 3)
        self.min_inliers = int(min_inliers)
        self.min_inlier_ratio = float(min_inlier_ratio)
        self.ratio = float(ratio)
        self.threshold_px = float(threshold_px)
        self.model = model
        self.ransac_iterations = int(ransac_iterations)
        self.seed = int(seed)
        self._features: cv2.Feature2D
        if detector == "orb":
            self._features = cv2.ORB.create(nfeatures=max_features, fastThreshold=5)
            self._matcher = cv2.BFMatcher(cv2.NORM_HAMMING)
        else:
            self._features = cv2.SIFT.create(nfeatures=max_features)
            self._matcher = cv2.BFMatcher(cv2.NORM_L2)
        self._level_from_optical = rot_y(-self.pitch) @ OPTICAL_FROM_BODY.T

    def intrinsics(self, image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        if self.K is not None:
            return self.K
        return intrinsics_from_fov(image.shape[1], image.shape[0], self.hfov)

    def estimate(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> AngleEstimate:
        return self.match(image_0, image_1).estimate

    def match(self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]) -> MatchResult:
        """Estimate theta and report keypoint, match and inlier counts."""
        grey_0, grey_1 = _grey(image_0), _grey(image_1)
        kp0, des0 = self._features.detectAndCompute(grey_0, None)
        kp1, des1 = self._features.detectAndCompute(grey_1, None)
        counts = (len(kp0), len(kp1))
        if des0 is None or des1 is None or min(counts) < self.min_inliers:
            return MatchResult(
                AngleEstimate.invalid(f"too few keypoints ({counts[0]}, {counts[1]})"), counts, 0, 0
            )
        pairs = self._matcher.knnMatch(des0, des1, k=2)
        good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < self.ratio * m[1].distance]
        if len(good) < self.min_inliers:
            reason = f"too few matches ({len(good)} < {self.min_inliers})"
            return MatchResult(AngleEstimate.invalid(reason), counts, len(good), 0)
        pts0 = np.array([kp0[m.queryIdx].pt for m in good], dtype=np.float64)
        pts1 = np.array([kp1[m.trainIdx].pt for m in good], dtype=np.float64)
        K0, K1 = self.intrinsics(grey_0), self.intrinsics(grey_1)
        theta, inliers = self._fit(pts0, pts1, K0, K1)
        n_in = int(np.count_nonzero(inliers))
        inlier_ratio = n_in / len(good)
        if n_in < self.min_inliers or inlier_ratio < self.min_inlier_ratio:
            reason = f"too few inliers ({n_in} of {len(good)} matches)"
            return MatchResult(AngleEstimate.invalid(reason), counts, len(good), n_in)
        confidence = math.sqrt(inlier_ratio) * (1.0 - math.exp(-n_in / 40.0))
        return MatchResult(
            AngleEstimate.from_confidence(theta, confidence), counts, len(good), n_in
        )

    # -----------------------------------------------------------------------------------------

    def _bearings(self, pts: Array, K: Array) -> Array:
        rays = np.column_stack([pts, np.ones(len(pts))]) @ np.linalg.inv(K).T
        rays /= np.linalg.norm(rays, axis=1, keepdims=True)
        return rays @ self._level_from_optical.T

    def _fit(self, pts0: Array, pts1: Array, K0: Array, K1: Array) -> Fit:
        if self.model == "homography":
            return self._fit_homography(pts0, pts1, K0, K1)
        b0, b1 = self._bearings(pts0, K0), self._bearings(pts1, K1)
        threshold = self.threshold_px / float(min(K0[0, 0], K1[0, 0]))  # radians
        if self.model == "yaw":
            return _ransac_yaw(b0, b1, threshold, self.ransac_iterations, self.seed)
        return _ransac_rotation(b0, b1, threshold, self.ransac_iterations, self.seed)

    def _fit_homography(self, pts0: Array, pts1: Array, K0: Array, K1: Array) -> Fit:
        H, mask = cv2.findHomography(
            pts0, pts1, cv2.RANSAC, self.threshold_px, maxIters=2000, confidence=0.999
        )
        if H is None:
            return float("nan"), np.zeros(len(pts0), bool)
        # Express H between normalised cameras sharing K0 (handles images of different size).
        H_shared = K0 @ np.linalg.inv(K1) @ np.asarray(H, dtype=np.float64)
        return yaw_from_homography(H_shared, K0, self.pitch), mask.ravel().astype(bool)


def _turn(b: Array, theta: float) -> Array:
    """Bearings seen after a camera turn by theta: Rz(-theta) b."""
    c, s = math.cos(theta), math.sin(theta)
    return np.column_stack([c * b[:, 0] + s * b[:, 1], -s * b[:, 0] + c * b[:, 1], b[:, 2]])


def _best_yaw(b0: Array, b1: Array) -> float:
    """Least-squares theta for b1 = Rz(-theta) b0 (closed form, horizontal components)."""
    cross = np.sum(b0[:, 0] * b1[:, 1] - b0[:, 1] * b1[:, 0])
    dot = np.sum(b0[:, 0] * b1[:, 0] + b0[:, 1] * b1[:, 1])
    return -math.atan2(cross, dot)


def _ransac_yaw(b0: Array, b1: Array, threshold: float, iterations: int, seed: int) -> Fit:
    rng = np.random.default_rng(seed)
    # Each match alone proposes theta = azimuth_0 - azimuth_1.
    proposals = np.arctan2(b0[:, 1], b0[:, 0]) - np.arctan2(b1[:, 1], b1[:, 0])
    picks = rng.choice(len(b0), size=min(iterations, len(b0)), replace=False)
    best, best_count = 0.0, -1
    for theta in proposals[picks]:
        residual = np.linalg.norm(_turn(b0, theta) - b1, axis=1)
        count = int(np.count_nonzero(residual < threshold))
        if count > best_count:
            best, best_count = float(theta), count
    inliers = np.linalg.norm(_turn(b0, best) - b1, axis=1) < threshold
    for _ in range(3):  # refine on the inliers, then re-select them
        if np.count_nonzero(inliers) < 2:
            break
        theta = _best_yaw(b0[inliers], b1[inliers])
        inliers = np.linalg.norm(_turn(b0, theta) - b1, axis=1) < threshold
        best = theta
    return math.atan2(math.sin(best), math.cos(best)), inliers


def _kabsch(b0: Array, b1: Array) -> Array:
    """Rotation R minimising sum |b1 - R b0|^2."""
    return closest_rotation(b1.T @ b0)


def _ransac_rotation(b0: Array, b1: Array, threshold: float, iterations: int, seed: int) -> Fit:
    rng = np.random.default_rng(seed)
    best, best_count = np.eye(3), -1
    for _ in range(iterations):
        i, j = rng.choice(len(b0), size=2, replace=False)
        R = _kabsch(b0[[i, j]], b1[[i, j]])
        count = int(np.count_nonzero(np.linalg.norm(b0 @ R.T - b1, axis=1) < threshold))
        if count > best_count:
            best, best_count = R, count
    inliers = np.linalg.norm(b0 @ best.T - b1, axis=1) < threshold
    for _ in range(3):
        if np.count_nonzero(inliers) < 3:
            break
        best = _kabsch(b0[inliers], b1[inliers])
        inliers = np.linalg.norm(b0 @ best.T - b1, axis=1) < threshold
    # best maps level bearings of view 0 to view 1: Rz(-theta) in the level frame.
    theta = -math.atan2(best[1, 0] - best[0, 1], best[0, 0] + best[1, 1])
    return theta, inliers
