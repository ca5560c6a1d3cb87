"""Label-free losses on hand-built distributions with known answers."""

from __future__ import annotations

import math

import pytest
import torch

from slfm_ros.core.models.consensus_losses import (
    agreement_loss,
    consensus_distributions,
    consensus_loss,
    consensus_targets,
    gaussian_targets,
    interpolate_circular,
    side_loss,
    wrap,
)

N_BINS = 120
SIGMA = math.radians(5.0)


def log_dist(azimuths: torch.Tensor, two_modes: bool = False) -> torch.Tensor:
    """Log of circular Gaussians at ``azimuths`` (..., rad); with two_modes also at the
    front/back mirror pi - phi, as a receiver without pinnae answers."""
    p = gaussian_targets(azimuths.double(), N_BINS, SIGMA)
    if two_modes:
        p = 0.5 * p + 0.5 * gaussian_targets(wrap(math.pi - azimuths.double()), N_BINS, SIGMA)
    return torch.log(p + 1e-9)


def deg(values: list[float] | list[list[float]]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64).deg2rad()


def angle_error_deg(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return wrap(a - b).abs().rad2deg()


def test_interpolation_hits_bin_centres_and_wraps_around() -> None:
    width = 2 * math.pi / N_BINS
    centres = -math.pi + (torch.arange(N_BINS, dtype=torch.float64) + 0.5) * width
    values = torch.cos(3 * centres).reshape(1, 1, N_BINS)
    # A bin centre, a point between two centres, and points between the last and first bin.
    angles = torch.tensor(
        [
            [
                [
                    float(centres[7]),
                    float(centres[7]) + width / 3,
                    math.pi - width / 4,
                    -math.pi + width / 8,
                ]
            ]
        ],
        dtype=torch.float64,
    )
    out = interpolate_circular(values, angles)[0, 0]
    assert out[0].item() == pytest.approx(float(values[0, 0, 7]), abs=1e-12)
    torch.testing.assert_close(out, torch.cos(3 * angles[0, 0]), rtol=0, atol=2e-4)


def test_consistent_views_give_the_true_azimuth_of_every_view() -> None:
    phi0 = deg([30.0, -75.0, 150.0])
    turns = deg([[0.0, 40.0, -25.0], [0.0, -60.0, 80.0], [0.0, 20.0, 45.0]])
    truth = wrap(phi0[:, None] - turns)
    for loo in (False, True):
        targets = consensus_targets(log_dist(truth), turns, leave_one_out=loo)
        assert angle_error_deg(targets, truth).max() < 0.3


def test_turns_resolve_front_from_back_for_a_receiver_without_pinnae() -> None:
    # Each view alone cannot tell phi from pi - phi; the turns can.
    phi0 = deg([40.0, 140.0, -110.0])
    turns = deg([[0.0, 30.0, -50.0]] * 3)
    truth = wrap(phi0[:, None] - turns)
    targets = consensus_targets(log_dist(truth, two_modes=True), turns)
    assert angle_error_deg(targets, truth).max() < 0.5


def test_leave_one_out_target_carries_none_of_the_views_own_error() -> None:
    turns = deg([[0.0, 30.0]])
    truth = wrap(deg([50.0])[:, None] - turns)
    # View 0 answers 10 deg too far left; view 1 is right.
    answers = truth + deg([[10.0, 0.0]])
    loo = consensus_targets(log_dist(answers), turns, leave_one_out=True)
    assert angle_error_deg(loo[0, 0], truth[0, 0]) < 0.3  # from view 1 alone
    assert angle_error_deg(loo[0, 1], truth[0, 1] + deg([10.0])[0]) < 0.3  # from view 0
    joint = consensus_targets(log_dist(answers), turns, leave_one_out=False)
    # Without it both views share the compromise, 5 deg off for each.
    assert angle_error_deg(joint, truth + deg([5.0])[0]).max() < 0.3


def test_side_cue_puts_an_uninformed_target_on_the_cued_side() -> None:
    uniform = torch.full((2, 3, N_BINS), -math.log(N_BINS), dtype=torch.float64)
    turns = deg([[0.0, 20.0, -20.0], [0.0, 20.0, -20.0]])
    side = torch.tensor([[1.0, 1.0, 1.0], [-1.0, -1.0, -1.0]])
    targets = consensus_targets(uniform, turns, side, side_weight=1.0)
    assert (torch.sin(targets[0]) >= 0).all()
    assert (torch.sin(targets[1]) <= 0).all()


def test_consensus_of_a_compressed_network_is_less_compressed() -> None:
    """Errors in variables: the targets of a network that answers 0.7 phi (folded) lie
    nearly on the true scale, so training toward them expands the network instead of
    keeping it shrunk."""
    gen = torch.Generator().manual_seed(0)
    count, views = 2000, 4
    phi0 = (torch.rand(count, generator=gen, dtype=torch.float64) * 2 - 1) * math.pi
    turns = torch.zeros(count, views, dtype=torch.float64)
    size = torch.rand(count, views - 1, generator=gen, dtype=torch.float64) * 80 + 10
    sign = torch.randint(0, 2, (count, views - 1), generator=gen).double() * 2 - 1
    turns[:, 1:] = (size * sign).deg2rad()
    folded_truth = torch.asin(torch.sin(wrap(phi0[:, None] - turns)))
    answers = 0.7 * folded_truth
    targets = consensus_targets(log_dist(answers, two_modes=True), turns, leave_one_out=True)
    folded = torch.asin(torch.sin(targets))
    slope = float((folded * folded_truth).sum() / (folded_truth**2).sum())
    assert slope > 0.95


def test_consensus_loss_trains_toward_the_consensus_only() -> None:
    turns = deg([[0.0, 30.0, -40.0]])
    truth = wrap(deg([20.0])[:, None] - turns)
    logits = log_dist(truth).float().clone().requires_grad_(True)
    loss, targets = consensus_loss(logits, turns.float(), sigma_rad=SIGMA)
    loss.backward()
    assert angle_error_deg(targets.double(), truth).max() < 0.5
    assert logits.grad is not None and torch.isfinite(logits.grad).all()
    # A second, wrong network's targets come from that network: it is pulled toward
    # self-consistency, and its loss is higher than the consistent network's.
    wrong = log_dist(truth + deg([[0.0, 25.0, -30.0]])).float()
    worse, _ = consensus_loss(wrong, turns.float(), sigma_rad=SIGMA)
    assert float(worse) > float(loss.detach())


def test_agreement_loss_prefers_consistent_views() -> None:
    turns = deg([[0.0, 30.0, -40.0]])
    truth = wrap(deg([20.0])[:, None] - turns)
    consistent = agreement_loss(log_dist(truth), turns)
    inconsistent = agreement_loss(log_dist(truth + deg([[0.0, 40.0, 40.0]])), turns)
    uniform = agreement_loss(torch.zeros(1, 3, N_BINS, dtype=torch.float64), turns)
    assert float(consistent) < float(uniform) < float(inconsistent)
    assert float(uniform) == pytest.approx(2 * math.log(N_BINS), rel=1e-6)


def test_side_loss_counts_only_cued_windows() -> None:
    left = log_dist(deg([60.0]))
    right = log_dist(deg([-60.0]))
    logits = torch.cat([left, right]).float()
    agree = side_loss(logits, torch.tensor([1.0, -1.0]))
    disagree = side_loss(logits, torch.tensor([-1.0, 1.0]))
    assert float(agree) < 1e-3 < 1.0 < float(disagree)
    assert float(side_loss(logits, torch.zeros(2))) == 0.0


def test_soft_targets_peak_at_the_consensus() -> None:
    turns = deg([[0.0, 35.0, -50.0]])
    truth = wrap(deg([-40.0])[:, None] - turns)
    dist = consensus_distributions(log_dist(truth), turns, grid_size=720, sigma_rad=SIGMA)
    assert dist.shape == (1, 3, N_BINS)
    torch.testing.assert_close(dist.sum(-1), torch.ones(1, 3, dtype=torch.float64))
    centres = -math.pi + (torch.arange(N_BINS, dtype=torch.float64) + 0.5) * 2 * math.pi / N_BINS
    mean = torch.atan2((dist * torch.sin(centres)).sum(-1), (dist * torch.cos(centres)).sum(-1))
    assert angle_error_deg(mean, truth).max() < 0.5


def test_soft_targets_of_an_untrained_network_are_what_the_side_votes_allow() -> None:
    """All three views heard on the left, after turns of 0, +40 and -40 deg: the source
    can only be between 40 and 140 deg in view 0, and the target says exactly that."""
    uniform = torch.full((1, 3, N_BINS), -math.log(N_BINS), dtype=torch.float64)
    turns = deg([[0.0, 40.0, -40.0]])
    side = torch.ones(1, 3)
    dist = consensus_distributions(
        uniform, turns, side, side_weight=20.0, sigma_rad=math.radians(1.0)
    )
    centres = torch.rad2deg(-math.pi + (torch.arange(N_BINS) + 0.5) * 2 * math.pi / N_BINS)
    allowed = (centres > 38) & (centres < 142)
    assert float(dist[0, 0, allowed].sum()) > 0.95
    # View 1 (turned 40 deg left) sees the same region 40 deg further right: 0..100 deg.
    shifted = (centres > -2) & (centres < 102)
    assert float(dist[0, 1, shifted].sum()) > 0.95
