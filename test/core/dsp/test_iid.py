from __future__ import annotations

import numpy as np
import pytest

from slfm_ros.core.dsp.iid import (
    iid_frame_ratios,
    iid_target,
    iid_vote,
    is_silent,
    rms_dbfs,
)
from slfm_ros.core.dsp.stft import StftConfig


def _louder_left(samples: int = 16000, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    source = 0.1 * rng.standard_normal(samples)
    right = 0.5 * source + 0.01 * rng.standard_normal(samples)
    return np.stack([source, right], axis=1).astype(np.float32)


def test_ratios_sign_and_size() -> None:
    audio = _louder_left()
    ratios = iid_frame_ratios(audio)
    assert ratios.shape == (256,)
    assert np.all(ratios > 0)
    assert np.median(ratios) == pytest.approx(np.log(2.0), abs=0.05)


def test_vote_flips_when_channels_swap() -> None:
    audio = _louder_left()
    assert iid_vote(audio) == 1
    assert iid_vote(audio[:, ::-1]) == -1


def test_target_follows_reference() -> None:
    cfg = StftConfig()
    audio = _louder_left(40800)
    assert iid_target(audio, cfg) == 1.0
    assert iid_target(audio[:, ::-1], cfg) == 0.0
    identical = np.repeat(audio[:, :1], 2, axis=1)
    assert iid_vote(identical, cfg) == 0
    assert iid_target(identical, cfg) == 0.5


def test_silence_votes_zero() -> None:
    quiet = 1e-5 * _louder_left()
    assert is_silent(quiet)
    assert iid_vote(quiet) == 0
    assert iid_target(np.zeros((16000, 2), np.float32)) == 0.5
    assert not is_silent(_louder_left())


def test_rms_dbfs_of_full_scale_sine() -> None:
    t = np.arange(16000) / 16000
    sine = np.sin(2 * np.pi * 100 * t)[:, None]
    assert rms_dbfs(sine) == pytest.approx(-3.01, abs=0.01)
    assert rms_dbfs(np.zeros((4, 2))) == -np.inf


def test_torch_votes_match_numpy() -> None:
    torch = pytest.importorskip("torch")
    from slfm_ros.core.dsp.iid import iid_votes_torch

    cfg = StftConfig.for_duration(1.0)
    left = _louder_left()
    batch = np.stack([left, left[:, ::-1], np.repeat(left[:, :1], 2, axis=1)])
    votes = iid_votes_torch(torch.from_numpy(batch.copy()).transpose(1, 2), cfg)
    assert votes.tolist() == [iid_vote(a, cfg) for a in batch] == [1.0, -1.0, 0.0]
