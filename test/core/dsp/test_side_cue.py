"""The physical side vote: earlier ear (ITD), louder ear (ILD) and their agreement."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues, mirror_cues
from slfm_ros.core.dsp.side_cue import side_votes
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.receivers import make_receiver

CUES = CueConfig()


def heard(receiver_kind: str, azimuth_deg: float, **params: float) -> np.ndarray:
    """Cues of 1 s of white noise from ``azimuth_deg`` through a free-field receiver."""
    receiver = make_receiver(receiver_kind, **params)
    rng = np.random.default_rng(1)
    source = rng.standard_normal(CUES.window_samples + 512)
    ir = receiver.hrir(math.radians(azimuth_deg), 0.0, CUES.sample_rate).astype(np.float64)
    audio = np.stack(
        [np.convolve(source, ir[:, ear])[512 : 512 + CUES.window_samples] for ear in range(2)],
        axis=1,
    )
    return binaural_cues(audio.astype(np.float32), CUES)


def test_head_votes_for_the_nearer_ear_and_mirrors_with_the_channels() -> None:
    left = heard("spherical_head", 50.0, radius_m=0.0875)
    for mode in ("itd", "ild", "both"):
        assert side_votes(left, CUES, mode) == 1.0
        assert side_votes(mirror_cues(left, CUES), CUES, mode) == -1.0


def test_front_abstains_and_a_free_pair_has_no_level_cue() -> None:
    front = heard("spherical_head", 0.0, radius_m=0.0875)
    assert side_votes(front, CUES, "both") == 0.0
    pair = heard("stereo_array", -60.0, spacing_m=0.2)
    assert side_votes(pair, CUES, "itd") == -1.0
    assert side_votes(pair, CUES, "ild") == 0.0
    assert side_votes(pair, CUES, "both") == -1.0  # the abstaining ILD leaves it to the ITD


def test_disagreeing_cues_abstain() -> None:
    cues = heard("spherical_head", 50.0, radius_m=0.0875)
    swapped_level = cues.copy()
    # Keep the delay of a left source but make the right ear the louder one.
    mirrored = mirror_cues(cues, CUES)
    from slfm_ros.core.dsp.binaural_cues import cue_slices

    ild = cue_slices(CUES)["ild"]
    swapped_level[ild] = mirrored[ild]
    assert side_votes(swapped_level, CUES, "both") == 0.0
    with pytest.raises(ConfigError, match="side cue"):
        side_votes(cues, CUES, "phase")
