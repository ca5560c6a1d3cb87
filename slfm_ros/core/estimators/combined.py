"""``estimator: auto``: the learned and the classical estimate of each window, fused.

Both estimators run on every window. The classical estimators are the more precise where they
are right (GCC-PHAT's interpolated correlation peak, a RANSAC rotation from matched features);
the learned ones are the more robust (a reflection that outweighs the direct sound, a pair of
images that shares no view). So:

- both answer and agree within ``agree_deg``: the classical angle, with the confidence of two
  independent looks (1 - (1 - c_learned) * (1 - c_classic)); but a learned answer that was
  itself placed on a peak of the clip's cross-correlation (reason ``REFINED``: the compact
  audio model refines on the onsets' correlation, which in a room is the more precise one)
  keeps its own angle, the agreement confirming its lobe;
- they disagree: the learned answer when its confidence is at least ``min_learned_confidence``
  (its confidence is calibrated: the probability mass near its peak), else the classical one;
  either way the confidence is lowered by the other's, since a disagreement is itself a sign
  of trouble;
- only one answers: that one.

Image pairs differ in one way: a classical rotation is only given when enough matched features
agree on it (RANSAC), a verification the learned network does not have, so a valid classical
turn is kept even when the learned one disagrees; the learned network answers the pairs the
matcher declines (little or no shared view, low texture), which is where it is needed.

The two thresholds were chosen on a development split of the reference protocol (seed 1), not
on the held-out split the results report. The estimate's ``reason`` names which one was used.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import numpy.typing as npt

from slfm_ros.core.estimators.base import REFINED, AngleEstimate, AudioEstimator, VisualEstimator

DEFAULT_AGREE_DEG = 15.0
DEFAULT_MIN_LEARNED_CONFIDENCE = 0.3


def fuse(
    learned: AngleEstimate,
    classic: AngleEstimate,
    agree_rad: float = math.radians(DEFAULT_AGREE_DEG),
    min_learned_confidence: float = DEFAULT_MIN_LEARNED_CONFIDENCE,
) -> AngleEstimate:
    """One estimate from a learned and a classical one of the same angle (module docstring)."""
    if not learned.valid and not classic.valid:
        return AngleEstimate.invalid(f"learned: {learned.reason}; classic: {classic.reason}")
    if not classic.valid:
        return dataclasses.replace(learned, reason="learned")
    if not learned.valid:
        return dataclasses.replace(classic, reason="classic")
    gap = abs(math.remainder(learned.angle - classic.angle, 2 * math.pi))
    if gap <= agree_rad:
        confidence = 1.0 - (1.0 - learned.confidence) * (1.0 - classic.confidence)
        kept = learned if learned.reason == REFINED else classic
        return AngleEstimate.from_confidence(kept.angle, confidence, "agreed", kept.evidence_s)
    if learned.confidence >= min_learned_confidence:
        best, other, label = learned, classic, "learned"
    else:
        best, other, label = classic, learned, "classic"
    confidence = best.confidence * (1.0 - 0.5 * other.confidence)
    return AngleEstimate.from_confidence(
        best.angle, confidence, f"{label} (disagreement)", best.evidence_s
    )


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
            min_learned_confidence=math.inf,
        )
