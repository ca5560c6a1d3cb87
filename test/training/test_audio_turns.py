"""Camera turns measured by ear: the turn likelihood, the mask-and-sum loss, a real render."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from slfm_ros.core.sim.audio_examples import AudioExampleConfig
from slfm_training.audio_turns import AudioTurnMeter, mask_and_sum_loss, turn_likelihood

LABEL_FREE = Path(__file__).parents[2] / "models" / "label_free"
N_BINS = 120
CENTRES = -math.pi + (np.arange(N_BINS) + 0.5) * 2 * math.pi / N_BINS
TURNS = np.radians(np.arange(-90.0, 90.5, 0.5))


def peaked(*azimuths_deg: float) -> np.ndarray:
    """A distribution over the circle with equal narrow peaks at ``azimuths_deg``."""
    p = np.zeros(N_BINS)
    for a in azimuths_deg:
        d = np.angle(np.exp(1j * (CENTRES - math.radians(a))))
        p += np.exp(-0.5 * (d / math.radians(4.0)) ** 2)
    return p / p.sum()


def test_the_turn_is_where_the_second_look_finds_the_sound_moved_back() -> None:
    # A source at 30 deg, then the robot turns 50 deg left: the source is at -20 deg.
    likelihood = turn_likelihood(peaked(30.0), peaked(-20.0), TURNS, math.radians(2.0))
    assert likelihood.max() == pytest.approx(1.0)
    assert math.degrees(TURNS[int(np.argmax(likelihood))]) == pytest.approx(50.0, abs=1.5)
    assert likelihood[np.abs(np.degrees(TURNS) + 50.0) < 1.0].max() < 0.05


def test_front_back_symmetric_looks_allow_the_turn_and_its_opposite() -> None:
    # Each look is heard at its direction and its front/back mirror.
    likelihood = turn_likelihood(
        peaked(30.0, 150.0), peaked(-20.0, -160.0), TURNS, math.radians(2.0)
    )
    near = {t: likelihood[np.abs(np.degrees(TURNS) - t) < 1.0].max() for t in (50.0, -50.0, 0.0)}
    assert near[50.0] > 0.9 and near[-50.0] > 0.9 and near[0.0] < 0.05


def test_mask_and_sum_rewards_mass_on_any_allowed_turn() -> None:
    masks = torch.zeros(1, 5)
    masks[0, [1, 3]] = 1.0
    on_one = torch.tensor([[0.0, 20.0, 0.0, 0.0, 0.0]])
    on_other = torch.tensor([[0.0, 0.0, 0.0, 20.0, 0.0]])
    off = torch.tensor([[20.0, 0.0, 0.0, 0.0, 0.0]])
    assert float(mask_and_sum_loss(on_one, masks)) == pytest.approx(0.0, abs=1e-4)
    assert float(mask_and_sum_loss(on_other, masks)) == pytest.approx(0.0, abs=1e-4)
    assert float(mask_and_sum_loss(off, masks)) > 10.0
    logits = torch.zeros(1, 5, requires_grad=True)
    mask_and_sum_loss(logits, masks).backward()
    assert logits.grad is not None and float(logits.grad[0, 1]) < 0 < float(logits.grad[0, 0])


def test_the_label_free_audio_model_hears_turns_that_share_no_view() -> None:
    quiet_room = AudioExampleConfig(anechoic_probability=1.0, snr_db=(30.0, 40.0))
    meter = AudioTurnMeter(LABEL_FREE, TURNS, math.radians(3.0), quiet_room)
    rng = np.random.default_rng(5)
    allowed = []
    for turn in (70.0, -75.0, 82.0, -65.0, 78.0, -88.0):
        mask = meter.mask(math.radians(turn), rng)
        assert mask.shape == TURNS.shape and mask.max() == pytest.approx(1.0)
        at = {t: float(mask[int(np.argmin(np.abs(np.degrees(TURNS) - t)))]) for t in (turn, -turn)}
        allowed.append(min(at.values()) >= 0.5)
    assert sum(allowed) >= 4
