"""Onset weights and the onset-weighted interaural cues in a hand-built echoic scene."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues, cue_slices, mirror_cues
from slfm_ros.core.dsp.precedence import hop_decay, onset_weights
from slfm_ros.core.errors import ConfigError

RATE = 16000
DIRECT_LAG = 6  # samples: the right ear hears the direct sound 6 samples late (source left)
ECHO_LAG = -9  # the reflection comes from the right
ECHO_DELAY = 0.025  # s after the direct sound
ECHO_GAIN = 1.6  # stronger than the direct sound, as a room's summed reflections can be


def echoic_bursts(seconds: float = 1.0, seed: int = 0) -> np.ndarray:
    """(frames, 2): noise bursts (80 ms on, 170 ms off) from the left, each followed 25 ms
    later by a louder copy from the right. Summed over time the echo dominates; at the start
    of every burst only the direct sound has arrived."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    source = np.zeros(n + 2000)
    period, on = int(0.25 * RATE), int(0.08 * RATE)
    for start in range(200, n, period):
        source[start : start + on] = rng.standard_normal(on)
    delay = int(ECHO_DELAY * RATE)
    base = 1000

    def ear(lag_direct: int, lag_echo: int) -> np.ndarray:
        direct = source[base - lag_direct : base - lag_direct + n]
        echo = source[base - delay - lag_echo : base - delay - lag_echo + n]
        return direct + ECHO_GAIN * echo

    left = ear(0, 0)
    right = ear(DIRECT_LAG, ECHO_LAG)
    return (0.1 * np.stack([left, right], axis=1)).astype(np.float32)


def test_weights_mark_rises_not_steady_sound_or_tails() -> None:
    power = np.ones((12, 3))
    power[4:8] = 100.0  # a sound starts at frame 4 and stops at frame 8
    w = onset_weights(power, decay=0.5, rise=2.0)
    assert w.shape == power.shape and w.dtype == np.float32
    assert np.all(w[0] == 0.0)  # no past: not an onset
    assert np.all(w[4] > 0.9)  # the rise
    assert np.all(w[1:4] == 0.0) and np.all(w[6:8] == 0.0)  # steady, before and during
    assert np.all(w[8:] == 0.0)  # the decay after it
    assert 0.0 <= w.min() and w.max() <= 1.0


def test_weight_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="decay"):
        onset_weights(np.ones((3, 2)), decay=1.0)
    with pytest.raises(ConfigError, match="rise"):
        onset_weights(np.ones((3, 2)), rise=0.5)
    with pytest.raises(ConfigError, match="onset_memory_s"):
        CueConfig(gcc_weighting="onset", onset_memory_s=0.0)
    with pytest.raises(ConfigError, match="gcc_weighting"):
        CueConfig(gcc_weighting="precedence")
    assert hop_decay(0.023, 0.016) == pytest.approx(np.exp(-0.016 / 0.023))


def _lag_of_peak(curve: np.ndarray, cfg: CueConfig) -> float:
    return float(cfg.lag_seconds()[int(np.argmax(curve))] * cfg.sample_rate)


def test_onset_curve_finds_the_direct_sound_that_the_plain_curve_loses() -> None:
    cfg = CueConfig(gcc_weighting="onset")
    assert cfg.dim == 2 * cfg.n_lags + 5 * cfg.n_bands
    cues = binaural_cues(echoic_bursts(), cfg)
    parts = cue_slices(cfg)
    assert _lag_of_peak(cues[parts["gcc"]], cfg) == pytest.approx(DIRECT_LAG, abs=0.5)
    # The plain curve (appended) follows the louder echo: the scene does test the weighting.
    assert _lag_of_peak(cues[parts["gcc_all"]], cfg) == pytest.approx(ECHO_LAG, abs=0.5)
    # Without onset weighting the vector is the plain one, and its curve is the appended one.
    plain = binaural_cues(echoic_bursts(), CueConfig())
    np.testing.assert_allclose(plain[: cfg.n_lags], cues[parts["gcc_all"]], atol=1e-5)


def test_swapped_channels_mirror_the_onset_cues_too() -> None:
    cfg = CueConfig(gcc_weighting="onset")
    x = echoic_bursts(seed=2)
    direct = mirror_cues(binaural_cues(x, cfg), cfg)
    swapped = binaural_cues(x[:, ::-1].copy(), cfg)
    np.testing.assert_allclose(direct, swapped, atol=1e-5)


def test_steady_noise_without_echo_keeps_its_lag_in_the_onset_curve() -> None:
    # Per-bin power of noise fluctuates, so some bins rise above their past in every frame;
    # without reflections each of them carries the true lag.
    cfg = CueConfig(gcc_weighting="onset")
    rng = np.random.default_rng(4)
    steady = (0.1 * rng.standard_normal((cfg.window_samples, 2))).astype(np.float32)
    steady[:, 1] = np.roll(steady[:, 0], 3)
    cues = binaural_cues(steady, cfg)
    assert _lag_of_peak(cues[cue_slices(cfg)["gcc"]], cfg) == pytest.approx(3.0, abs=0.25)


def test_onset_weighted_gcc_phat_estimator_hears_the_direct_sound() -> None:
    from slfm_ros.core.estimators.gcc_phat import ONSET_SETTINGS, GccPhatAzimuth
    from slfm_ros.core.estimators.registry import make_audio_estimator
    from slfm_ros.core.geometry.interaural import FreeFieldPair

    geometry = FreeFieldPair(0.2)
    x = echoic_bursts(seconds=2.0, seed=1)
    direct = geometry.azimuth_from_itd(DIRECT_LAG / RATE)
    echo = geometry.azimuth_from_itd(ECHO_LAG / RATE)
    onset = make_audio_estimator("gcc_phat_onset", geometry=geometry).estimate(x, RATE)
    plain = GccPhatAzimuth(geometry).estimate(x, RATE)
    assert onset.valid and math.degrees(abs(onset.angle - direct)) < 2.0
    assert plain.valid and math.degrees(abs(plain.angle - echo)) < 2.0
    # The same short windows without the weighting follow the echo: the weighting does it.
    short = {k: v for k, v in ONSET_SETTINGS.items() if k != "weighting"}
    unweighted = GccPhatAzimuth(geometry, **short).estimate(x, RATE)
    assert math.degrees(abs(unweighted.angle - echo)) < 2.0
    # Refining inside a range uses the same weighting.
    refined = GccPhatAzimuth(geometry, **ONSET_SETTINGS).peak_within(x, RATE, -1.5, 1.5)
    assert refined is not None and math.degrees(abs(refined - direct)) < 2.0
    assert 0.0 < onset.confidence <= 1.0
    with pytest.raises(ConfigError, match="weighting"):
        GccPhatAzimuth(geometry, weighting="first")


def test_onset_settings_round_trip_and_plain_cards_keep_their_keys() -> None:
    onset = CueConfig(gcc_weighting="onset", onset_memory_s=0.03, onset_rise=3.0)
    assert CueConfig.from_dict(onset.to_dict()) == onset
    plain = CueConfig().to_dict()
    assert "gcc_weighting" not in plain and "onset_rise" not in plain
    assert CueConfig.from_dict(plain) == CueConfig()


def test_an_onset_front_end_refines_on_the_onsets_correlation() -> None:
    from slfm_ros.core.estimators.cue_audio import CueAudioEstimator
    from slfm_ros.core.geometry.interaural import FreeFieldPair
    from slfm_ros.core.models.azimuth_bins import CueNetConfig

    geometry = FreeFieldPair(0.2)
    direct = geometry.azimuth_from_itd(DIRECT_LAG / RATE)
    echo = geometry.azimuth_from_itd(ECHO_LAG / RATE)
    # A network answering between the two, with a refinement range that holds both delays.
    said = geometry.azimuth_from_itd(0.5 * (DIRECT_LAG + ECHO_LAG) / RATE)
    x = echoic_bursts(seconds=2.0, seed=3)
    answers = {}
    for cues in (CueConfig(gcc_weighting="onset"), CueConfig()):
        net = CueNetConfig(input_dim=cues.dim, n_bins=72)
        diff = np.remainder(net.bin_centers() - said + math.pi, 2 * math.pi) - math.pi
        row = (-0.5 * (diff / math.radians(3.0)) ** 2).astype(np.float32)

        def run_audio(features: np.ndarray, row: np.ndarray = row) -> np.ndarray:
            return np.tile(row, (features.shape[0], 1))

        estimator = CueAudioEstimator(cues, net, run_audio, geometry=geometry, lobe_refine_itd=1.0)
        result = estimator.estimate(x, RATE)
        assert result.reason == "refined"
        answers[cues.gcc_weighting] = result.angle
    assert math.degrees(abs(answers["onset"] - direct)) < 2.0
    # A plain front end refines on the plain correlation, whose highest peak is the echo's.
    assert math.degrees(abs(answers["phat"] - echo)) < 2.0
