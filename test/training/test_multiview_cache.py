"""Multi-view cue caches: settings checked, and a larger cache grown from a smaller one."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import DatasetError
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, ReceiverMix, ViewTurns
from slfm_training.multiview_cache import (
    build_multiview_cache,
    cached_multiview,
    load_multiview_cache,
    multiview_settings,
)

CUES = CueConfig()
PAIR = AudioExampleConfig(
    receivers=ReceiverMix(stereo_spacing_m=(0.2, 0.2), weights=(0.0, 1.0, 0.0)),
    anechoic_probability=1.0,
    source_kinds=("noise",),
    source_weights=(1.0,),
    interferer_probability=0.0,
)
VIEWS = ViewTurns(num_views=2)


def test_a_grown_cache_equals_one_rendered_at_once(tmp_path: Path) -> None:
    small = cached_multiview(tmp_path / "grown", "train", PAIR, VIEWS, CUES, seed=5, samples=2)
    grown = cached_multiview(tmp_path / "grown", "train", PAIR, VIEWS, CUES, seed=5, samples=4)
    build_multiview_cache(tmp_path / "once.npz", PAIR, VIEWS, CUES, seed=5, samples=4)
    once = load_multiview_cache(tmp_path / "once.npz")
    assert small["cues"].shape == (2, 2, CUES.dim) and grown["cues"].shape == (4, 2, CUES.dim)
    for key in ("cues", "turns", "azimuth", "label", "max_itd_s", "receiver_kind"):
        np.testing.assert_array_equal(grown[key], once[key])
    with pytest.raises(DatasetError, match="other settings"):
        load_multiview_cache(tmp_path / "once.npz", multiview_settings(PAIR, VIEWS, CUES, 6, 4))
