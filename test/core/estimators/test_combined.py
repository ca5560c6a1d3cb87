"""Fusion of learned and classical estimates (estimator: auto)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.estimators.base import REFINED, AngleEstimate, AudioEstimator
from slfm_ros.core.estimators.combined import FusedAudioEstimator, fuse

D = math.radians


def est(deg: float, confidence: float) -> AngleEstimate:
    return AngleEstimate.from_confidence(D(deg), confidence)


def test_agreeing_estimates_keep_the_classical_angle_and_gain_confidence() -> None:
    out = fuse(est(31.0, 0.6), est(30.0, 0.4))
    assert math.degrees(out.angle) == pytest.approx(30.0)
    assert out.confidence == pytest.approx(1 - 0.4 * 0.6)
    assert out.reason == "agreed"


def test_an_agreeing_learned_answer_placed_on_a_correlation_peak_keeps_its_angle() -> None:
    refined = AngleEstimate.from_confidence(D(31.0), 0.6, REFINED)
    out = fuse(refined, est(30.0, 0.4))
    assert math.degrees(out.angle) == pytest.approx(31.0)
    assert out.reason == "agreed" and out.confidence == pytest.approx(1 - 0.4 * 0.6)
    # Not when they disagree and the learned one is unsure.
    unsure = AngleEstimate.from_confidence(D(60.0), 0.1, REFINED)
    assert math.degrees(fuse(unsure, est(30.0, 0.4)).angle) == pytest.approx(30.0)


def test_disagreement_goes_to_a_confident_learned_estimate_only() -> None:
    # A reflection pulled the classical answer away; the learned one is confident.
    out = fuse(est(40.0, 0.8), est(-10.0, 0.9))
    assert math.degrees(out.angle) == pytest.approx(40.0)
    assert out.reason.startswith("learned")
    assert out.confidence < 0.8
    # An unsure learned estimate does not overrule the classical one.
    out = fuse(est(40.0, 0.1), est(-10.0, 0.2))
    assert math.degrees(out.angle) == pytest.approx(-10.0)
    assert out.reason.startswith("classic")


def test_one_invalid_side_leaves_the_other() -> None:
    assert math.degrees(fuse(AngleEstimate.invalid("x"), est(5.0, 0.2)).angle) == pytest.approx(5)
    assert math.degrees(fuse(est(7.0, 0.2), AngleEstimate.invalid("y")).angle) == pytest.approx(7)
    both = fuse(AngleEstimate.invalid("silence"), AngleEstimate.invalid("silence"))
    assert not both.valid and "learned: silence" in both.reason


def test_the_fused_answer_keeps_the_evidence_time_of_the_angle_it_keeps() -> None:
    def timed(deg: float, confidence: float, reason: str, evidence_s: float) -> AngleEstimate:
        return AngleEstimate.from_confidence(D(deg), confidence, reason, evidence_s)

    refined, classic = timed(31.0, 0.6, REFINED, 0.2), timed(30.0, 0.4, "", 0.6)
    assert fuse(refined, classic).evidence_s == 0.2
    assert fuse(timed(31.0, 0.6, "", 0.2), classic).evidence_s == 0.6
    assert fuse(timed(60.0, 0.8, "", 0.1), classic).evidence_s == 0.1
    assert fuse(AngleEstimate.invalid("silence"), classic).evidence_s == 0.6
    assert fuse(refined, AngleEstimate.invalid("silence")).evidence_s == 0.2


def test_agreement_is_measured_on_the_circle() -> None:
    out = fuse(est(179.0, 0.5), est(-179.0, 0.5))
    assert out.reason == "agreed"


class Fixed(AudioEstimator):
    def __init__(self, deg: float, confidence: float) -> None:
        self.value = est(deg, confidence)

    def estimate(self, audio: np.ndarray, sample_rate: int) -> AngleEstimate:
        return self.value


def test_fused_audio_estimator_runs_both() -> None:
    fused = FusedAudioEstimator(Fixed(20.0, 0.9), Fixed(60.0, 0.5))
    out = fused.estimate(np.zeros((16000, 2), np.float32), 16000)
    assert math.degrees(out.angle) == pytest.approx(20.0)


def test_a_verified_classical_turn_outranks_the_learned_one_and_the_learned_fills_in() -> None:
    from slfm_ros.core.estimators.combined import FusedVisualEstimator
    from slfm_ros.core.geometry.panorama import crop_perspective
    from slfm_ros.core.sim.panoramas import ProceduralPanoramas
    from slfm_ros.evaluation.estimators import build_visual_estimator

    fused = build_visual_estimator("auto", pitch=0.0)  # the shipped model with ORB
    assert isinstance(fused, FusedVisualEstimator)
    pano = ProceduralPanoramas(width=2048, seed=0, irregular_probability=0.0).panorama(3, "test")

    def view(yaw_deg: float, pitch_deg: float = 0.0) -> np.ndarray:
        return crop_perspective(pano, D(yaw_deg), D(pitch_deg), D(60.0), 320, 240)

    # A level camera (not the model's reference camera): ORB matches and verifies the turn.
    out = fused.estimate(view(40.0), view(60.0))
    assert out.valid and math.degrees(out.angle) == pytest.approx(20.0, abs=0.5)
    assert out.reason in ("agreed", "classic (disagreement)")
    # No shared view: ORB declines, the learned network answers.
    fused = build_visual_estimator("auto")  # the reference camera, pitched -22.5 deg
    out = fused.estimate(view(0.0, -22.5), view(75.0, -22.5))
    assert out.valid and out.reason == "learned"
