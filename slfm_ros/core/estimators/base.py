"""Estimator interface shared by the classical and the learned estimators.

An estimator never returns None: it returns an estimate whose ``valid`` flag is False and whose
``reason`` says why (silence, too few feature matches, ...). Angles are radians, REP-103.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# Variance reported for a direction with zero confidence: a uniform angle on the circle.
UNINFORMATIVE_VARIANCE_RAD2 = math.pi**2 / 3.0
# Reason of a learned estimate that was placed on a peak of the clip's own cross-correlation.
REFINED = "refined"


@dataclass(frozen=True)
class AngleEstimate:
    """One angle estimate.

    angle:      radians, REP-103 (azimuth of a source, or relative camera yaw).
    confidence: 0..1, 0 = no information, 1 = certain.
    variance:   rad^2, derived from confidence unless the estimator knows better.
    valid:      False when the estimator declined to estimate; ``reason`` then says why.
    evidence_s: for an audio estimate, seconds from the clip's start to the centre (in time)
                of the evidence it rests on; None = the clip's middle. Speech is uneven, and
                an onset-weighted estimate rests on a few onsets, so while the robot turns the
                direction holds at this time, not at the clip's middle.
    """

    angle: float
    confidence: float
    variance: float
    valid: bool = True
    reason: str = ""
    evidence_s: float | None = None

    @staticmethod
    def invalid(reason: str) -> AngleEstimate:
        return AngleEstimate(
            angle=float("nan"),
            confidence=0.0,
            variance=UNINFORMATIVE_VARIANCE_RAD2,
            valid=False,
            reason=reason,
        )

    @staticmethod
    def from_confidence(
        angle: float, confidence: float, reason: str = "", evidence_s: float | None = None
    ) -> AngleEstimate:
        c = float(np.clip(confidence, 0.0, 1.0))
        # Shrinks from the uniform-circle variance at c = 0 to (1 deg)^2 at c = 1.
        floor = math.radians(1.0) ** 2
        variance = floor + (1.0 - c) * (UNINFORMATIVE_VARIANCE_RAD2 - floor)
        return AngleEstimate(
            angle=float(angle),
            confidence=c,
            variance=variance,
            reason=reason,
            evidence_s=evidence_s,
        )


def screen_binaural(
    audio: npt.NDArray[np.float32], silence_dbfs: float
) -> tuple[npt.NDArray[np.float32], AngleEstimate | None]:
    """``audio`` as a (frames, 2) float32 array, and the invalid estimate it gets when it holds
    non-finite samples or is quieter than ``silence_dbfs`` (None when it can be estimated).
    InputFormatError for another shape."""
    from slfm_ros.core.dsp.iid import rms_dbfs
    from slfm_ros.core.errors import InputFormatError

    arr = np.asarray(audio, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != 2:
        raise InputFormatError(
            f"expected binaural audio (frames, 2), got {arr.shape}; channel 0 is left"
        )
    if not np.isfinite(arr).all():
        return arr, AngleEstimate.invalid("non-finite samples")
    if rms_dbfs(arr) < silence_dbfs:
        return arr, AngleEstimate.invalid("silence")
    return arr, None


class AudioEstimator(ABC):
    """Estimates sound azimuth from a binaural clip."""

    name: str = "audio"

    @abstractmethod
    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio: (frames, 2) float32, channel 0 left. Returns the azimuth in radians."""


class VisualEstimator(ABC):
    """Estimates the relative camera yaw between two images."""

    name: str = "visual"

    @abstractmethod
    def estimate(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> AngleEstimate:
        """Images (H, W, 3) uint8 RGB. Returns theta = yaw_1 - yaw_0 in radians."""
