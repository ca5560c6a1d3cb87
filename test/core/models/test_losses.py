from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slfm_ros.core.conventions import front_back_mirror
from slfm_ros.core.dsp.iid import iid_target
from slfm_ros.core.models.losses import (
    BinauralTerm,
    binaural_hinge_loss,
    binaural_iid_loss,
    binauralization_loss,
    egomotion_loss,
    front_back_mirror_t,
    geometric_loss,
    left_probability,
    slfm_total_loss,
    supervised_angle_loss,
    symmetry_loss,
)

RNG = np.random.default_rng(7)


def t(values: object) -> torch.Tensor:
    return torch.as_tensor(np.asarray(values, dtype=np.float64))


def consistent_batch(n: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """phi_s, phi_t, theta with theta = yaw_t - yaw_s and phi_t = phi_s - theta (wrapped)."""
    phi_s = RNG.uniform(-math.pi, math.pi, n)
    theta = RNG.uniform(math.radians(10), math.radians(90), n) * RNG.choice([-1, 1], n)
    phi_t = np.mod(phi_s - theta + math.pi, 2 * math.pi) - math.pi
    return t(phi_s), t(phi_t), t(theta)


def test_mirror_matches_conventions() -> None:
    grid = np.linspace(-math.pi + 1e-3, math.pi - 1e-3, 101)
    expected = front_back_mirror(grid)
    got = front_back_mirror_t(t(grid)).numpy()
    # Same direction on the circle (conventions wraps, the torch version need not).
    np.testing.assert_allclose(np.cos(got), np.cos(expected), atol=1e-12)
    np.testing.assert_allclose(np.sin(got), np.sin(expected), atol=1e-12)


@pytest.mark.parametrize("invariant", [True, False])
def test_correct_geometry_beats_wrong_geometry(invariant: bool) -> None:
    phi_s, phi_t, theta = consistent_batch()
    correct = geometric_loss(phi_s, phi_t, theta, reflection_invariant=invariant)
    assert correct.shape == (64,)
    assert float(correct.max()) < 1e-12
    for wrong_theta in (theta + math.radians(20), 0.5 * theta, torch.zeros_like(theta)):
        wrong = geometric_loss(phi_s, phi_t, wrong_theta, reflection_invariant=invariant)
        # A wrong turn can match a mirrored combination for a few samples, never for most.
        assert float((wrong > correct + 1e-4).double().mean()) > 0.9
        assert float(wrong.mean()) > 0.01
    wrong_audio = geometric_loss(phi_s, phi_t + math.radians(25), theta, invariant)
    assert float(wrong_audio.mean()) > 0.01


def test_reflection_invariant_loss_cannot_tell_the_turn_sign() -> None:
    # rho(a) - rho(b) = b - a (mod 2 pi), so mirroring both views maps theta to -theta: the
    # invariant loss is blind to the sign of the turn, which only the symmetry loss and the
    # global sign resolution pin down. The plain loss is not.
    phi_s, phi_t, theta = consistent_batch()
    torch.testing.assert_close(
        geometric_loss(phi_s, phi_t, -theta), geometric_loss(phi_s, phi_t, theta)
    )
    plain = geometric_loss(phi_s, phi_t, -theta, reflection_invariant=False)
    assert float(plain.mean()) > 0.1


def test_turn_sign_convention() -> None:
    # Source straight ahead in view s; the camera turns 30 deg to the left (theta = +30 deg),
    # so the source now appears 30 deg to the right (phi_t = -30 deg).
    phi_s, phi_t = t([0.0]), t([math.radians(-30)])
    left_turn, right_turn = t([math.radians(30)]), t([math.radians(-30)])
    assert float(geometric_loss(phi_s, phi_t, left_turn, reflection_invariant=False)[0]) < 1e-12
    assert float(geometric_loss(phi_s, phi_t, right_turn, reflection_invariant=False)[0]) > 0.1


def test_mirrored_solutions_have_equal_loss() -> None:
    phi_s, phi_t, theta = consistent_batch()
    theta_hat = theta + t(RNG.normal(0, 0.3, 64))  # an imperfect rotation estimate
    base = geometric_loss(phi_s, phi_t, theta_hat)
    rho_s, rho_t = front_back_mirror_t(phi_s), front_back_mirror_t(phi_t)
    for s, tt in ((rho_s, phi_t), (phi_s, rho_t), (rho_s, rho_t)):
        torch.testing.assert_close(geometric_loss(s, tt, theta_hat), base)
    # The plain loss (ablation) does punish a front/back confusion of one view.
    plain = geometric_loss(rho_s, phi_t, theta, reflection_invariant=False)
    assert float(plain.mean()) > 0.1
    assert float(geometric_loss(rho_s, phi_t, theta).max()) < 1e-12


def test_geometric_loss_drives_target_azimuth_to_geometry() -> None:
    phi_s = t([0.5, -1.0, 2.0])
    theta = t([0.4, -0.7, 1.2])
    phi_t = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.SGD([phi_t], lr=0.5)
    for _ in range(300):
        optimiser.zero_grad()
        geometric_loss(phi_s, phi_t, theta).sum().backward()
        optimiser.step()
    found = phi_t.detach().numpy()
    assert float(geometric_loss(phi_s, phi_t.detach(), theta).max()) < 1e-9
    # The minimum reached is the geometric answer for the source or for its front/back mirror,
    # possibly seen as its own mirror in the target view.
    candidates = [(phi_s - theta).numpy(), (front_back_mirror_t(phi_s) - theta).numpy()]
    ok = np.zeros(3, dtype=bool)
    for expected in candidates:
        for seen in (found, front_back_mirror(found)):
            ok |= np.isclose(np.cos(seen - expected), 1.0, atol=1e-6)
    assert ok.all(), (found, candidates)


def louder_left_clip(seconds: float = 1.0, rate: int = 16000) -> np.ndarray:
    noise = RNG.normal(0.0, 0.1, int(seconds * rate)).astype(np.float32)
    return np.stack([noise, 0.4 * noise], axis=1)


def test_swapped_channels_flip_iid_target_and_loss() -> None:
    clip = louder_left_clip()
    target_left = iid_target(clip)
    target_swapped = iid_target(clip[:, ::-1])
    assert target_left == 1.0
    assert target_swapped == 0.0
    left, right = t([math.radians(60)]), t([math.radians(-60)])
    y = t([target_left])
    y_swapped = t([target_swapped])
    assert float(binaural_iid_loss(left, y)[0]) < float(binaural_iid_loss(right, y)[0])
    assert float(binaural_iid_loss(right, y_swapped)[0]) < float(
        binaural_iid_loss(left, y_swapped)[0]
    )
    # Mirror-image predictions on mirror-image targets cost the same.
    torch.testing.assert_close(binaural_iid_loss(left, y), binaural_iid_loss(right, y_swapped))


def test_iid_loss_values_and_clamp() -> None:
    phi = t([math.pi / 2, -math.pi / 2, 0.0])
    target = t([1.0, 1.0, 1.0])
    loss = binaural_iid_loss(phi, target)
    assert float(loss[0]) < 1e-3  # certain and right
    assert math.isfinite(float(loss[1])) and float(loss[1]) > 5.0  # certain and wrong, clamped
    assert float(loss[2]) == pytest.approx(math.log(2.0))  # undecided
    probabilities = left_probability(t([-math.pi / 2, math.pi / 2])).numpy()
    assert 0.0 < probabilities[0] < 1e-3 and 1.0 - 1e-3 < probabilities[1] < 1.0


def test_hinge_is_zero_on_the_voted_side_and_grows_on_the_other() -> None:
    phi = t(np.radians([5.0, 30.0, 89.0, 150.0, -5.0, -30.0, -150.0]))
    left = binaural_hinge_loss(phi, t([1.0] * 7))
    assert left[:4].abs().max().item() == 0.0
    assert torch.allclose(left[4:], torch.sin(-phi[4:]))
    right = binaural_hinge_loss(phi, t([0.0] * 7))
    assert torch.allclose(right, torch.sin(phi).clamp(min=0.0))
    assert binaural_hinge_loss(phi, t([0.5] * 7)).abs().max().item() == 0.0
    margin = math.radians(20.0)
    with_margin = binaural_hinge_loss(phi, t([1.0] * 7), margin)
    assert with_margin[0].item() == pytest.approx(math.sin(margin) - math.sin(phi[0].item()))
    assert with_margin[1:4].abs().max().item() == 0.0


def expected_binaural_loss(
    form: str, phi_deg: np.ndarray, vote_accuracy: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean binaural loss of a left source over votes that are right with ``vote_accuracy``."""
    phi = t(np.radians(phi_deg)).requires_grad_(True)
    left = BinauralTerm(form)(phi, torch.ones_like(phi))
    right = BinauralTerm(form)(phi, torch.zeros_like(phi))
    return vote_accuracy * left + (1.0 - vote_accuracy) * right, phi


def test_cross_entropy_pulls_side_sources_to_the_vote_accuracy_angle() -> None:
    grid = np.arange(1.0, 90.0, 0.5)
    loss, _ = expected_binaural_loss("cross_entropy", grid, 0.9)
    assert grid[int(loss.argmin())] == pytest.approx(math.degrees(math.asin(0.8)), abs=0.5)
    # at a true 80 deg the cross-entropy pulls toward the centre far harder than the hinge
    pulls = {}
    for form in ("cross_entropy", "hinge"):
        loss, phi = expected_binaural_loss(form, np.array([80.0]), 0.9)
        loss.sum().backward()
        pulls[form] = float(phi.grad[0])
    assert pulls["cross_entropy"] > 30.0 * pulls["hinge"] > 0.0


def test_binaural_loss_rejects_an_unknown_form() -> None:
    with pytest.raises(ValueError, match="hinge"):
        BinauralTerm("squared")


def test_symmetry_loss_zero_for_antisymmetric_predictions() -> None:
    phi = t(RNG.uniform(-math.pi, math.pi, 32))
    theta = t(RNG.uniform(-1.5, 1.5, 32))
    assert float(symmetry_loss(phi, -phi, theta, -theta).abs().max()) < 1e-12
    # 170 deg and -170 deg are exact mirror images too.
    near_back = t([math.radians(170)])
    assert float(symmetry_loss(near_back, -near_back, t([0.0]), t([0.0]))[0]) < 1e-12
    broken = symmetry_loss(phi, phi, theta, theta)
    assert float(broken.mean()) > 0.5
    one_sided = symmetry_loss(t([0.3]), t([-0.3]), t([0.2]), t([0.1]))
    assert float(one_sided[0]) == pytest.approx(0.3)


def test_total_loss_components_and_weights() -> None:
    phi_s, phi_t, theta = consistent_batch(16)
    theta_hat = theta + 0.1
    targets = (phi_s.sin() > 0).double(), (phi_t.sin() > 0).double()
    kwargs = dict(
        phi_s=phi_s,
        phi_t=phi_t,
        theta_hat=theta_hat,
        theta_hat_reverse=-theta_hat + 0.05,
        phi_s_swapped=-phi_s + 0.02,
        phi_t_swapped=-phi_t,
        iid_target_s=targets[0],
        iid_target_t=targets[1],
    )
    out = slfm_total_loss(**kwargs)
    assert set(out) == {"geometric", "binaural", "symmetry", "total"}
    expected = 10 * out["geometric"] + out["binaural"] + out["symmetry"]
    torch.testing.assert_close(out["total"], expected)
    torch.testing.assert_close(out["symmetry"], t(0.5 * 0.02 + 0.05))
    ablated = slfm_total_loss(**kwargs, weights=(10.0, 0.0, 1.0))
    torch.testing.assert_close(ablated["total"], 10 * out["geometric"] + out["symmetry"])


def test_total_loss_gradients_flow_to_every_input() -> None:
    phi_s, phi_t, theta = consistent_batch(8)
    leaves = {
        "phi_s": phi_s + 0.1,
        "phi_t": phi_t - 0.2,
        "theta_hat": theta + 0.05,
        "theta_hat_reverse": -theta + 0.1,
        "phi_s_swapped": -phi_s + 0.3,
        "phi_t_swapped": -phi_t + 0.1,
    }
    leaves = {k: v.clone().requires_grad_(True) for k, v in leaves.items()}
    out = slfm_total_loss(**leaves, iid_target_s=t([1.0] * 8), iid_target_t=t([0.0] * 8))
    out["total"].backward()
    for name, leaf in leaves.items():
        assert leaf.grad is not None, name
        assert torch.isfinite(leaf.grad).all(), name
        assert float(leaf.grad.abs().sum()) > 0, name


def test_geometric_term_can_leave_the_audio_predictions_fixed() -> None:
    """Without binaural and symmetry terms, only the rotation gets a gradient when the
    geometric term must not train the audio network; the loss value is the same."""
    phi_s, phi_t, theta = consistent_batch(8)
    totals = {}
    for trains_audio in (True, False):
        leaves = [(phi_s + 0.3).requires_grad_(True), (phi_t - 0.2).requires_grad_(True)]
        turn = (theta + 0.1).requires_grad_(True)
        out = slfm_total_loss(
            *leaves,
            turn,
            -turn,
            -leaves[0],
            -leaves[1],
            t([0.5] * 8),
            t([0.5] * 8),
            weights=(10.0, 0.0, 0.0),
            geometric_trains_audio=trains_audio,
        )
        out["total"].backward()
        totals[trains_audio] = out["total"].item()
        assert turn.grad is not None and float(turn.grad.abs().sum()) > 0
        audio_grad = sum(float(leaf.grad.abs().sum()) for leaf in leaves if leaf.grad is not None)
        assert (audio_grad > 0) == trains_audio
    assert totals[True] == pytest.approx(totals[False])


def egomotion_terms(
    phi_s: torch.Tensor, phi_t: torch.Tensor, turn: torch.Tensor
) -> dict[str, torch.Tensor]:
    """egomotion_loss with only the geometric term in the total."""
    half = torch.full_like(phi_s, 0.5)
    return egomotion_loss(phi_s, phi_t, turn, -phi_s, -phi_t, half, half, (10.0, 0.0, 0.0))


def test_measured_turns_forbid_the_collapse_to_zero() -> None:
    phi_s, phi_t, turn = consistent_batch()
    correct = egomotion_terms(phi_s, phi_t, turn)
    collapsed = egomotion_terms(torch.zeros_like(phi_s), torch.zeros_like(phi_t), turn)
    assert float(correct["geometric"]) == pytest.approx(0.0, abs=1e-9)
    # Every measured turn is >= 10 deg, so phi = 0 everywhere costs at least 1 - cos(10 deg).
    assert float(collapsed["geometric"]) > 1.0 - math.cos(math.radians(10))


def test_pairs_without_a_measured_turn_leave_the_geometric_term() -> None:
    phi_s, phi_t, turn = consistent_batch(8)
    turn = turn.clone()
    turn[[1, 4, 6]] = float("nan")
    wrong_t = phi_t.clone()
    wrong_t[[1, 4, 6]] += 1.0  # inconsistent, but their turn was not measured
    out = egomotion_terms(phi_s, wrong_t, turn)
    assert float(out["geometric"]) == pytest.approx(0.0, abs=1e-9)
    assert float(out["measured"]) == pytest.approx(5 / 8)
    wrong_t[0] += 1.0  # a measured pair: now it counts, averaged over the 5 measured pairs
    expected = float(geometric_loss(phi_s[:1], wrong_t[:1], turn[:1])) / 5
    assert expected > 0.0
    assert float(egomotion_terms(phi_s, wrong_t, turn)["geometric"]) == pytest.approx(expected)
    # With nothing measured the term is 0 (and finite), not NaN.
    none = egomotion_terms(phi_s, wrong_t, torch.full_like(turn, float("nan")))
    assert float(none["geometric"]) == 0.0 and float(none["measured"]) == 0.0


def test_squared_turn_weighting_counts_the_larger_turns_more() -> None:
    phi_s, phi_t, turn = consistent_batch(6)
    turn = turn.clone()
    turn[:3] = torch.tensor(np.radians([10.0, 20.0, 40.0]))
    turn[3] = float("nan")
    phi_s = phi_s.clone()
    phi_s[:3] = 0.1  # near the front, far from any front/back mirror
    phi_t = torch.atan2(torch.sin(phi_s - turn), torch.cos(phi_s - turn)).where(
        torch.isfinite(turn), phi_t
    )
    wrong_t = phi_t.clone()
    wrong_t[:3] -= 0.3  # the same error on a small, a middle and a large turn
    half = torch.full_like(phi_s, 0.5)

    def geometric(weighting: str, errors: torch.Tensor) -> float:
        out = egomotion_loss(
            phi_s,
            errors,
            turn,
            -phi_s,
            -errors,
            half,
            half,
            (10.0, 0.0, 0.0),
            turn_weighting=weighting,
        )
        return float(out["geometric"])

    measured = torch.isfinite(turn)
    squares = turn[measured].square()
    weights = squares / squares.mean()
    per_pair = geometric_loss(phi_s[measured], wrong_t[measured], turn[measured])
    assert geometric("uniform", wrong_t) == pytest.approx(float(per_pair.mean()))
    assert geometric("squared", wrong_t) == pytest.approx(float((weights * per_pair).mean()))
    # the same error on the 40 deg turn costs more than on the 10 deg one
    on_large, on_small = phi_t.clone(), phi_t.clone()
    on_large[2] -= 0.3
    on_small[0] -= 0.3
    assert geometric("squared", on_large) > 4.0 * geometric("squared", on_small) > 0.0
    assert geometric("uniform", on_large) == pytest.approx(geometric("uniform", on_small))
    with pytest.raises(ValueError, match="squared"):
        geometric("linear", wrong_t)


def test_egomotion_loss_gradients_reach_only_through_measured_pairs() -> None:
    phi_s, phi_t, turn = consistent_batch(4)
    turn = turn.clone()
    turn[2] = float("nan")
    leaf = (phi_t + 0.2).requires_grad_(True)
    egomotion_terms(phi_s, leaf, turn)["total"].backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad).all()
    assert float(leaf.grad[2]) == 0.0 and float(leaf.grad[[0, 1, 3]].abs().min()) > 0


def test_binauralization_loss() -> None:
    target = torch.randn(3, 2, 8, 5)
    assert float(binauralization_loss(target, target).abs().max()) == 0.0
    loss = binauralization_loss(target + 0.25, target)
    torch.testing.assert_close(loss, torch.full((3,), 2.5))
    assert binauralization_loss(target, target * 0, weight=1.0).shape == (3,)


def test_supervised_angle_loss() -> None:
    target = t([0.3, -2.0, 3.0])
    assert float(supervised_angle_loss(target, target).abs().max()) < 1e-12
    opposite = supervised_angle_loss(target + math.pi, target)
    torch.testing.assert_close(opposite, t([2.0, 2.0, 2.0]))
    mirrored = front_back_mirror_t(target)
    assert float(supervised_angle_loss(mirrored, target).min()) > 0.1
    assert float(supervised_angle_loss(mirrored, target, mirror_invariant=True).max()) < 1e-12
