"""``estimator: auto``: the learned and the classical estimate of each window, fused.

Both estimators run on every window. When both answer and agree within ``agree_deg``, the
answer is their inverse-variance weighted circular mean (two independent looks at one angle);
when they disagree, the more confident one wins, and its confidence is lowered by the other's
(a disagreement is itself a sign of trouble); when only one answers, it is used alone. The
reason of the chosen estimate names which one was used, so evaluation can count them.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slfm_ros.core.estimators.base import AngleEstimate, AudioEstimator, VisualEstimator

DEFAULT_AGREE_DEG = 10.0


def fuse(
    learned: AngleEstimate, classic: AngleEstimate, agree_rad: float = math.radians(10.0)
) -> AngleEstimate:
    """One estimate from a learned and a classical one of the same angle (module docstring)."""
    if not learned.valid and not classic.valid:
        return AngleEstimate.invalid(f"learned: {learned.reason}; classic: {classic.reason}")
    if not classic.valid:
        return AngleEstimate(learned.angle, learned.confidence, learned.variance, True, "learned")
    if not learned.valid:
        return AngleEstimate(classic.angle, classic.confidence, classic.variance, True, "classic")
    gap = abs(math.remainder(learned.angle - classic.angle, 2 * math.pi))
    if gap <= agree_rad:
        w_l, w_c = 1.0 / learned.variance, 1.0 / classic.variance
        angle = math.atan2(
            w_l * math.sin(learned.angle) + w_c * math.sin(classic.angle),
            w_l * math.cos(learned.angle) + w_c * math.cos(classic.angle),
        )
        variance = 1.0 / (w_l + w_c)
        confidence = 1.0 - (1.0 - learned.confidence) * (1.0 - classic.confidence)
        return AngleEstimate(angle, confidence, variance, True, "fused")
    best, other, label = (
        (learned, classic, "learned")
        if learned.confidence >= classic.confidence
        else (classic, learned, "classic")
    )
    confidence = best.confidence * (1.0 - 0.5 * other.confidence)
    return AngleEstimate.from_confidence(best.angle, confidence, f"{label} (disagreement)")


class FusedAudioEstimator(AudioEstimator):
    """The learned and the classical audio estimator, fused per window."""

    name = "auto"

    def __init__(
        self, learned: AudioEstimator, classic: AudioEstimator, agree_deg: float = DEFAULT_AGREE_DEG
    ) -> None:
        self.learned = learned
        self.classic = classic
        self.agree_rad = math.radians(agree_deg)

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        return fuse(
            self.learned.estimate(audio, sample_rate),
            self.classic.estimate(audio, sample_rate),
            self.agree_rad,
        )


class FusedVisualEstimator(VisualEstimator):
    """The learned and the classical visual estimator, fused per image pair."""

    name = "auto"

    def __init__(
        self,
        learned: VisualEstimator,
        classic: VisualEstimator,
        agree_deg: float = DEFAULT_AGREE_DEG,
    ) -> None:
        self.learned = learned
        self.classic = classic
        self.agree_rad = math.radians(agree_deg)

    def estimate(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> AngleEstimate:
        return fuse(
            self.learned.estimate(image_0, image_1),
            self.classic.estimate(image_0, image_1),
            self.agree_rad,
        )
