from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.gcc_phat import GccPhatAzimuth
from slfm_ros.core.geometry.interaural import (
    FreeFieldPair,
    InterauralGeometry,
    SphericalHeadGeometry,
)


def delayed_pair(
    azimuth: float, geometry: InterauralGeometry, rate: int, seconds: float = 1.0, seed: int = 0
) -> np.ndarray:
    """White noise reaching the two ears geometry.itd(azimuth) apart (fractional, via FFT)."""
    rng = np.random.default_rng(seed)
    n = int(rate * seconds)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.fft.rfftfreq(n, 1 / rate)
    itd = float(geometry.itd(azimuth))  # t_right - t_left

    def delayed(t: float) -> np.ndarray:
        return np.fft.irfft(spectrum * np.exp(-2j * np.pi * freqs * t), n)

    return (0.1 * np.stack([delayed(-itd / 2), delayed(itd / 2)], axis=1)).astype(np.float32)


@pytest.mark.parametrize("rate", [16000, 48000])
@pytest.mark.parametrize("geometry", [FreeFieldPair(0.14), SphericalHeadGeometry(0.0875)])
def test_recovers_azimuth_across_front(rate: int, geometry: InterauralGeometry) -> None:
    estimator = GccPhatAzimuth(geometry)
    for degrees in range(-80, 81, 10):
        audio = delayed_pair(math.radians(degrees), geometry, rate, seed=degrees + 100)
        result = estimator.estimate(audio, rate)
        assert result.valid
        assert math.degrees(result.angle) == pytest.approx(degrees, abs=2.0)
        assert result.confidence > 0.8


def test_vote_combination() -> None:
    geometry = FreeFieldPair(0.14)
    estimator = GccPhatAzimuth(geometry, combine="vote")
    for degrees in (-60, -5, 35):
        audio = delayed_pair(math.radians(degrees), geometry, 16000, seed=degrees + 100)
        assert math.degrees(estimator.estimate(audio, 16000).angle) == pytest.approx(
            degrees, abs=2.0
        )


def test_left_source_gives_positive_azimuth() -> None:
    geometry = SphericalHeadGeometry()
    audio = delayed_pair(math.radians(40), geometry, 16000)
    # Left channel leads: its copy of the noise is earlier.
    assert GccPhatAzimuth(geometry).estimate(audio, 16000).angle > 0
    assert GccPhatAzimuth(geometry).estimate(audio[:, ::-1].copy(), 16000).angle < 0


def test_back_source_folds_to_front() -> None:
    geometry = FreeFieldPair(0.14)
    audio = delayed_pair(math.radians(150), geometry, 16000)
    angle = GccPhatAzimuth(geometry).estimate(audio, 16000).angle
    assert math.degrees(angle) == pytest.approx(30, abs=2.0)


def test_noise_lowers_confidence() -> None:
    geometry = FreeFieldPair(0.14)
    estimator = GccPhatAzimuth(geometry)
    clean = delayed_pair(0.5, geometry, 16000)
    rng = np.random.default_rng(3)
    independent = (0.1 * rng.standard_normal((16000, 2))).astype(np.float32)
    noisy = (clean + 0.1 * rng.standard_normal(clean.shape)).astype(np.float32)
    c_clean = estimator.estimate(clean, 16000).confidence
    c_noisy = estimator.estimate(noisy, 16000).confidence
    c_independent = estimator.estimate(independent, 16000).confidence
    assert c_clean > c_noisy > c_independent
    assert c_independent < 0.1


def test_silence_and_bad_input() -> None:
    estimator = GccPhatAzimuth(FreeFieldPair(0.14))
    result = estimator.estimate(np.zeros((16000, 2), np.float32), 16000)
    assert not result.valid and result.reason == "silence"
    quiet = 1e-5 * delayed_pair(0.3, FreeFieldPair(0.14), 16000)
    assert not estimator.estimate(quiet, 16000).valid
    bad = delayed_pair(0.3, FreeFieldPair(0.14), 16000)
    bad[5, 0] = np.nan
    assert estimator.estimate(bad, 16000).reason == "non-finite samples"
    with pytest.raises(InputFormatError):
        estimator.estimate(np.zeros((16000, 1), np.float32), 16000)
    with pytest.raises(InputFormatError, match="shorter"):
        estimator.estimate(np.zeros((500, 2), np.float32), 16000)


def test_quiet_windows_are_skipped() -> None:
    geometry = FreeFieldPair(0.14)
    audio = delayed_pair(math.radians(-45), geometry, 16000)
    audio[: 12 * 1024] = 0.0  # intermittent source: only the last windows carry sound
    result = GccPhatAzimuth(geometry).estimate(audio, 16000)
    assert math.degrees(result.angle) == pytest.approx(-45, abs=2.0)
    assert result.confidence > 0.8


def test_lag_range_follows_geometry_and_config_errors() -> None:
    assert GccPhatAzimuth(FreeFieldPair(0.14)).max_lag_s == pytest.approx(1.1 * 0.14 / 343)
    assert GccPhatAzimuth(FreeFieldPair(1.0)).max_lag_s == 1.5e-3
    with pytest.raises(ConfigError):
        GccPhatAzimuth(combine="median")
    with pytest.raises(ConfigError):
        GccPhatAzimuth(window=2048, n_fft=1024)


def two_paths(direct: float, reflection: float, geometry: InterauralGeometry) -> np.ndarray:
    """One noise arriving from ``direct`` and, 1.5x as strong and 7 ms later, from
    ``reflection`` (a wall echo that outweighs the direct sound)."""
    rate = 16000
    first = delayed_pair(direct, geometry, rate, seed=3)
    echo = delayed_pair(reflection, geometry, rate, seed=3)
    late = np.roll(echo, int(0.007 * rate), axis=0)
    return (first + 1.5 * late).astype(np.float32)


def test_peak_within_finds_the_lobe_that_the_global_peak_misses() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = two_paths(math.radians(40), math.radians(-20), geometry)
    estimator = GccPhatAzimuth(geometry)
    # The echo wins the global peak ...
    assert math.degrees(estimator.estimate(audio, 16000).angle) == pytest.approx(-20, abs=2.0)
    # ... and the direct sound is still the peak of its own lobe.
    found = estimator.peak_within(audio, 16000, math.radians(25), math.radians(55))
    assert found is not None and math.degrees(found) == pytest.approx(40, abs=1.0)


def test_peak_within_declines_a_range_without_a_peak_of_its_own() -> None:
    geometry = SphericalHeadGeometry(0.0875)
    audio = delayed_pair(math.radians(40), geometry, 16000)
    estimator = GccPhatAzimuth(geometry)
    assert estimator.peak_within(audio, 16000, math.radians(50), math.radians(70)) is None
    assert estimator.peak_within(np.zeros((16000, 2), np.float32), 16000, -1.0, 1.0) is None


def test_peak_within_accepts_the_side_as_an_edge() -> None:
    geometry = FreeFieldPair(0.14)
    audio = delayed_pair(math.pi / 2, geometry, 16000)
    found = GccPhatAzimuth(geometry).peak_within(audio, 16000, math.radians(70), math.pi / 2)
    assert found is not None and math.degrees(found) == pytest.approx(90, abs=3.0)


def bursts(geometry: InterauralGeometry, spans: list[tuple[float, float]]) -> np.ndarray:
    """1 s of noise from 30 deg, sounding only in ``spans`` (s) and silent elsewhere."""
    audio = delayed_pair(math.radians(30), geometry, 16000)
    keep = np.zeros(audio.shape[0], dtype=bool)
    for start, stop in spans:
        keep[int(start * 16000) : int(stop * 16000)] = True
    audio[~keep] = 0.0
    return audio


@pytest.mark.parametrize("weighting", ["phat", "onset"])
def test_the_estimate_says_when_its_evidence_was_heard(weighting: str) -> None:
    geometry = FreeFieldPair(0.14)
    estimator = GccPhatAzimuth(geometry, weighting=weighting, window=512, n_fft=512, hop=128)
    early = estimator.estimate(bursts(geometry, [(0.05, 0.3)]), 16000)
    late = estimator.estimate(bursts(geometry, [(0.7, 0.95)]), 16000)
    assert math.degrees(early.angle) == pytest.approx(30, abs=3.0)
    assert math.degrees(late.angle) == pytest.approx(30, abs=3.0)
    assert early.evidence_s is not None and late.evidence_s is not None
    if weighting == "phat":  # every loud window alike: the middle of the sound
        assert early.evidence_s == pytest.approx(0.175, abs=0.03)
        assert late.evidence_s == pytest.approx(0.825, abs=0.03)
    else:  # the onset leads
        assert 0.03 < early.evidence_s < 0.15
        assert 0.68 < late.evidence_s < 0.8
    # Sound all through: the evidence sits near the middle.
    steady = GccPhatAzimuth(geometry).estimate(delayed_pair(0.5, geometry, 16000), 16000)
    assert steady.evidence_s == pytest.approx(0.5, abs=0.03)


def test_a_source_that_moves_is_placed_at_the_time_of_the_windows_that_agree() -> None:
    # Noise from -40 deg for the first 0.35 s, then from 30 deg for 0.65 s: the estimate is
    # the longer part's direction, and its evidence is that part's time (about 0.68 s), not
    # the centre of every loud window (0.5 s), where the source was somewhere else.
    geometry = FreeFieldPair(0.14)
    first = delayed_pair(math.radians(-40), geometry, 16000, seed=2)
    second = delayed_pair(math.radians(30), geometry, 16000, seed=3)
    split = int(0.35 * 16000)
    audio = np.concatenate([first[:split], second[split:]]).astype(np.float32)
    estimate = GccPhatAzimuth(geometry).estimate(audio, 16000)
    assert math.degrees(estimate.angle) == pytest.approx(30, abs=2.0)
    assert estimate.evidence_s is not None
    assert estimate.evidence_s == pytest.approx(0.675, abs=0.04)
    found = GccPhatAzimuth(geometry).first_peak_evidence(
        audio, 16000, [(math.radians(-60), math.radians(-20))]
    )
    assert found is not None and math.degrees(found.angle) == pytest.approx(-40, abs=2.0)
    assert found.evidence_s == pytest.approx(0.175, abs=0.04)


def test_a_refined_peak_carries_the_time_of_its_evidence() -> None:
    geometry = FreeFieldPair(0.14)
    estimator = GccPhatAzimuth(geometry)
    audio = bursts(geometry, [(0.6, 0.9)])
    found = estimator.first_peak_evidence(audio, 16000, [(math.radians(10), math.radians(50))])
    assert found is not None
    assert math.degrees(found.angle) == pytest.approx(30, abs=2.0)
    assert found.evidence_s == pytest.approx(0.75, abs=0.04)
    assert estimator.first_peak_within(audio, 16000, [(0.2, 0.9)]) == found.angle


def test_a_range_at_the_side_finds_a_delay_beyond_the_geometrys_largest() -> None:
    # The ears are 0.152 m apart where the estimator was told 0.14 m (a fitted sphere is
    # never exact): at the side the true delay lies beyond the largest one it expects, and a
    # quieter second source at 40 deg is the highest point inside the expected delays.
    told, actual, rate = FreeFieldPair(0.14), FreeFieldPair(0.152), 48000
    side = delayed_pair(math.pi / 2, actual, rate, seed=4)
    other = delayed_pair(math.radians(40), actual, rate, seed=9)
    audio = (side + 0.6 * other).astype(np.float32)
    estimator = GccPhatAzimuth(told)
    found = estimator.peak_within(audio, rate, math.radians(20), math.pi / 2)
    assert found is not None and math.degrees(found) == pytest.approx(90, abs=1.0)
    # A range short of the side keeps to its own delays: the second source, at the angle
    # whose delay it has under the geometry the estimator was told.
    inner = estimator.peak_within(audio, rate, math.radians(20), math.radians(60))
    expected = math.degrees(math.asin(0.152 / 0.14 * math.sin(math.radians(40))))
    assert inner is not None and math.degrees(inner) == pytest.approx(expected, abs=1.0)


def test_only_a_peak_past_the_largest_delay_counts_as_the_side() -> None:
    lags = np.arange(41, dtype=np.float64)  # grid; the range covers indices 10..30
    peak_beyond = np.exp(-0.5 * ((lags - 4.0) / 1.5) ** 2)
    found = GccPhatAzimuth._peak_beyond_side(peak_beyond, 10, 30, -math.pi / 2, 0.3)
    assert found == 4
    # Still rising at the grid's end: a delay far beyond the geometry's, not the side.
    rising = np.exp(-0.5 * ((lags + 6.0) / 3.0) ** 2)
    assert GccPhatAzimuth._peak_beyond_side(rising, 10, 30, -math.pi / 2, 0.3) is None
    # A range short of the side never looks past it.
    assert GccPhatAzimuth._peak_beyond_side(peak_beyond, 10, 30, -1.0, 0.3) is None
