"""Binaural cue front end on hand-built signals."""

from __future__ import annotations

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import (
    CueConfig,
    binaural_cues,
    cue_slices,
    mirror_cues,
)
from slfm_ros.core.errors import ConfigError, InputFormatError

CFG = CueConfig()


def delayed_pair(delay_samples: int, gain_right: float = 1.0, seed: int = 0) -> np.ndarray:
    """White noise with the right channel ``delay_samples`` behind the left one."""
    rng = np.random.default_rng(seed)
    s = rng.standard_normal(CFG.window_samples + 64)
    left = s[32 : 32 + CFG.window_samples]
    right = gain_right * s[32 - delay_samples : 32 - delay_samples + CFG.window_samples]
    return np.stack([left, right], axis=1).astype(np.float32)


@pytest.mark.parametrize("delay", [-12, -5, 0, 3, 9, 20])
def test_gcc_peak_sits_at_a_pure_delay(delay: int) -> None:
    cues = binaural_cues(delayed_pair(delay), CFG)
    gcc = cues[cue_slices(CFG)["gcc"]]
    lags = CFG.lag_seconds() * CFG.sample_rate
    assert lags[int(np.argmax(gcc))] == pytest.approx(delay, abs=0.25)
    assert gcc.max() > 0.9  # a clean delay is coherent at every frequency


def test_quarter_sample_grid_resolves_a_fractional_delay() -> None:
    # A 2.5-sample delay applied in the frequency domain.
    rng = np.random.default_rng(1)
    n = CFG.window_samples
    s = rng.standard_normal(n)
    f = np.fft.rfftfreq(n)
    right = np.fft.irfft(np.fft.rfft(s) * np.exp(-2j * np.pi * f * 2.5), n)
    cues = binaural_cues(np.stack([s, right], 1).astype(np.float32), CFG)
    lags = CFG.lag_seconds() * CFG.sample_rate
    assert lags[int(np.argmax(cues[cue_slices(CFG)["gcc"]]))] == pytest.approx(2.5, abs=0.25)


def test_swapped_channels_mirror_every_feature() -> None:
    x = delayed_pair(7, gain_right=0.5, seed=3)
    direct = mirror_cues(binaural_cues(x, CFG), CFG)
    swapped = binaural_cues(x[:, ::-1].copy(), CFG)
    np.testing.assert_allclose(direct, swapped, atol=1e-5)
    # ... and mirroring twice is the identity.
    cues = binaural_cues(x, CFG)
    np.testing.assert_allclose(mirror_cues(mirror_cues(cues, CFG), CFG), cues)


def test_level_difference_and_phase_point_to_the_louder_earlier_ear() -> None:
    parts = cue_slices(CFG)
    cues = binaural_cues(delayed_pair(4, gain_right=0.5), CFG)
    ild_db = cues[parts["ild"]] * 10.0
    np.testing.assert_allclose(ild_db, 20 * np.log10(2.0), atol=0.3)
    # Left leads: positive interaural phase (left minus right) in the low bands.
    assert np.all(cues[parts["ipd_sin"]][:8] > 0)
    # Coherent everywhere; in the wide high bands the phase turns within the band.
    coherence = cues[parts["coherence"]]
    np.testing.assert_allclose(coherence[:20], 1.0, atol=0.02)
    assert coherence.min() > 0.85


def test_bad_input_is_refused_with_a_clear_message() -> None:
    with pytest.raises(InputFormatError, match=r"\(frames, 2\)"):
        binaural_cues(np.zeros((16000, 3), np.float32), CFG)
    with pytest.raises(InputFormatError, match="at least"):
        binaural_cues(np.zeros((100, 2), np.float32), CFG)
    with pytest.raises(ConfigError, match=r"band"):
        CueConfig(f_min_hz=9000.0)
    with pytest.raises(ConfigError, match="unknown"):
        CueConfig.from_dict({"bands": 3})
    # Silence gives finite cues (the estimator declines silence before the network).
    assert np.isfinite(binaural_cues(np.zeros((16000, 2), np.float32), CFG)).all()
