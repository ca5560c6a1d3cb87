"""Multi-view audio examples: one scene heard from several receiver yaws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues
from slfm_ros.core.dsp.side_cue import side_votes
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.audio_examples import (
    AudioExampleConfig,
    ReceiverMix,
    ViewTurns,
    example_rng,
    render_multiview,
)

PAIR = AudioExampleConfig(
    receivers=ReceiverMix(stereo_spacing_m=(0.2, 0.2), weights=(0.0, 1.0, 0.0)),
    anechoic_probability=1.0,
    source_kinds=("noise",),
    source_weights=(1.0,),
    interferer_probability=0.0,
    snr_db=(40.0, 40.0),
    ear_gain_db=0.0,
)


def _gcc_lag(window: np.ndarray) -> float:
    cues = CueConfig()
    x = binaural_cues(window, cues)
    return float(cues.lag_seconds()[int(np.argmax(x[: cues.n_lags]))])


def test_views_are_the_scene_heard_after_the_turns() -> None:
    views = ViewTurns(num_views=4, turn_deg=(20.0, 60.0))
    ex = render_multiview(PAIR, views, example_rng(4, 0))
    assert ex.windows.shape == (4, 16000, 2)
    assert ex.turns[0] == 0.0
    assert np.all(
        (np.abs(np.degrees(ex.turns[1:])) >= 20) & (np.abs(np.degrees(ex.turns[1:])) <= 60)
    )
    np.testing.assert_allclose(
        np.angle(np.exp(1j * (ex.azimuths + ex.turns))), ex.azimuths[0], atol=1e-9
    )
    # Each view's interaural delay is that of its own azimuth: 0.2 m sin(phi_i) / c.
    for window, azimuth in zip(ex.windows, ex.azimuths, strict=True):
        expected = 0.2 * math.sin(azimuth) / 343.0
        assert _gcc_lag(window) == pytest.approx(expected, abs=8e-5)
        if abs(math.sin(azimuth)) > 0.3:
            assert side_votes(binaural_cues(window, CueConfig()), CueConfig(), "itd") == np.sign(
                math.sin(azimuth)
            )


def test_same_seed_same_views_and_bad_turns_refused() -> None:
    views = ViewTurns(num_views=2)
    a = render_multiview(PAIR, views, example_rng(9, 3))
    b = render_multiview(PAIR, views, example_rng(9, 3))
    np.testing.assert_array_equal(a.windows, b.windows)
    with pytest.raises(ConfigError, match="num_views"):
        ViewTurns(num_views=1)
    with pytest.raises(ConfigError, match="turn_deg"):
        ViewTurns(turn_deg=(50.0, 10.0))
