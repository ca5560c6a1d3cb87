"""The compact audio estimator's lobe refinement: the network picks the lobe, the
cross-correlation places the answer within it."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.estimators.cue_audio import CALIBRATED_WIDENING, CueAudioEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry, SphericalHeadGeometry
from slfm_ros.core.models.azimuth_bins import CueNetConfig

CUES = CueConfig()
NET = CueNetConfig(input_dim=CUES.dim)
RATE = 16000


def noise_from(azimuth: float, geometry: InterauralGeometry, seed: int = 0) -> np.ndarray:
    """White noise reaching the ears geometry.itd(azimuth) apart, 1.5 s."""
    rng = np.random.default_rng(seed)
    n = int(1.5 * RATE)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / RATE)
    itd = float(geometry.itd(azimuth))
    ears = [
        np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * t), n) for t in (-itd / 2, itd / 2)
    ]
    return (0.1 * np.stack(ears, axis=1)).astype(np.float32)


def network_saying(degrees: float):  # type: ignore[no-untyped-def]
    """A network call whose every window answers ``degrees`` (a peak 3 deg wide) and its
    front/back mirror."""
    centers = NET.bin_centers()

    def logits_for(angle: float) -> np.ndarray:
        diff = np.remainder(centers - angle + math.pi, 2 * math.pi) - math.pi
        return -0.5 * (diff / math.radians(3.0)) ** 2

    angle = math.radians(degrees)
    row = np.logaddexp(logits_for(angle), logits_for(math.pi - angle)).astype(np.float32)
    return lambda features: np.tile(row, (features.shape[0], 1))


@pytest.mark.parametrize("truth", [-65.0, 10.0, 40.0, 84.0])
def test_refinement_moves_an_imprecise_answer_onto_the_correlation_peak(truth: float) -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = noise_from(math.radians(truth), geometry, seed=int(truth) + 200)
    off = truth - 6.0 if truth > 0 else truth + 6.0
    plain = CueAudioEstimator(CUES, NET, network_saying(off), geometry=geometry)
    refined = CueAudioEstimator(
        CUES, NET, network_saying(off), geometry=geometry, lobe_refine_itd=0.16
    )
    assert math.degrees(plain.estimate(audio, RATE).angle) == pytest.approx(off, abs=1.0)
    result = refined.estimate(audio, RATE)
    assert result.reason == "refined"
    assert math.degrees(result.angle) == pytest.approx(truth, abs=1.0)


def test_no_refinement_without_a_peak_in_the_lobe_or_without_the_geometry() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = noise_from(math.radians(50.0), geometry)
    far = CueAudioEstimator(
        CUES, NET, network_saying(-30.0), geometry=geometry, lobe_refine_itd=0.16
    )
    assert math.degrees(far.estimate(audio, RATE).angle) == pytest.approx(-30.0, abs=1.0)
    blind = CueAudioEstimator(CUES, NET, network_saying(44.0), lobe_refine_itd=0.16)
    assert math.degrees(blind.estimate(audio, RATE).angle) == pytest.approx(44.0, abs=1.0)
    # Unrefined answers rest on the whole clip (evidence time: its middle).
    assert blind.estimate(audio, RATE).evidence_s is None


def test_a_refined_answer_is_timed_by_the_correlation_it_was_placed_on() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = noise_from(math.radians(35.0), geometry, seed=5)
    audio[: int(0.9 * RATE)] = 0.0  # the sound starts 0.9 s into the 1.5 s clip
    refined = CueAudioEstimator(
        CUES, NET, network_saying(31.0), geometry=geometry, lobe_refine_itd=0.16
    ).estimate(audio, RATE)
    assert refined.reason == "refined"
    assert math.degrees(refined.angle) == pytest.approx(35.0, abs=1.0)
    assert refined.evidence_s is not None and 0.9 < refined.evidence_s < 1.5


def widening(degrees: float, geometry: InterauralGeometry) -> CueAudioEstimator:
    """An estimator whose network answers ``degrees``, refining as a calibrated receiver's."""
    return CueAudioEstimator(
        CUES,
        NET,
        network_saying(degrees),
        geometry=geometry,
        lobe_refine_itd=0.16,
        lobe_widening=CALIBRATED_WIDENING,
    )


def test_an_answer_beyond_the_narrow_lobe_is_placed_in_a_wider_one() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = noise_from(math.radians(40.0), geometry, seed=7)
    # 15 deg off: beyond 0.16 of the largest delay, within twice that.
    narrow = CueAudioEstimator(
        CUES, NET, network_saying(25.0), geometry=geometry, lobe_refine_itd=0.16
    )
    assert math.degrees(narrow.estimate(audio, RATE).angle) == pytest.approx(25.0, abs=1.0)
    result = widening(25.0, geometry).estimate(audio, RATE)
    assert result.reason == "refined"
    assert math.degrees(result.angle) == pytest.approx(40.0, abs=1.0)


def test_the_narrowest_range_with_a_peak_wins_over_a_higher_peak_further_away() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    # The source the network points at is the quieter one; a wider range would take the other.
    audio = noise_from(math.radians(10.0), geometry, seed=3) + 1.5 * noise_from(
        math.radians(45.0), geometry, seed=4
    )
    result = widening(13.0, geometry).estimate(audio, RATE)
    assert result.reason == "refined"
    assert math.degrees(result.angle) == pytest.approx(10.0, abs=1.5)
