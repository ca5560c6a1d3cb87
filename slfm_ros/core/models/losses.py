"""Losses of the SLfM stages, in torch (radians, REP-103: left positive).

Per-sample losses return shape (B,); ``slfm_total_loss`` returns batch means.

Geometry (see ``slfm_ros.core.conventions``): for a source view s and a target view t with
camera turn theta = yaw_t - yaw_s, a static source's azimuths satisfy phi_t = phi_s - theta, so
phi_s - theta - phi_t = 0 when the audio predictions and the rotation prediction agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

# Keeps the binary cross-entropy finite when sin(phi) reaches +-1.
PROBABILITY_EPS = 1e-4
# Forms of the binaural IID term: the reference's cross-entropy on p(left) = (sin phi + 1) / 2,
# or a hinge on the voted side only (``binaural_hinge_loss``).
BINAURAL_LOSSES = ("cross_entropy", "hinge")
# Weightings of the measured pairs in the egomotion geometric term (``egomotion_loss``).
TURN_WEIGHTINGS = ("uniform", "squared")


def front_back_mirror_t(phi: torch.Tensor) -> torch.Tensor:
    """rho(phi) = pi - phi for phi > 0, -pi - phi otherwise (same as conventions, in torch)."""
    return torch.where(phi > 0, math.pi - phi, -math.pi - phi)


def wrap_angle_t(angle: torch.Tensor) -> torch.Tensor:
    """Angle wrapped to (-pi, pi] through atan2 (differentiable everywhere except at pi)."""
    return torch.atan2(torch.sin(angle), torch.cos(angle))


def geometric_loss(
    phi_s: torch.Tensor,
    phi_t: torch.Tensor,
    theta_hat: torch.Tensor,
    reflection_invariant: bool = True,
) -> torch.Tensor:
    """1 - cos(phi_s - theta_hat - phi_t) per sample, shape (B,).

    phi_s, phi_t: predicted azimuths in the source and target views; theta_hat: predicted turn
    yaw_t - yaw_s. With ``reflection_invariant`` the minimum over the four combinations of
    (phi_s or rho(phi_s)) x (phi_t or rho(phi_t)) is taken, so a front/back confusion of a
    two-ear receiver is not penalised; False gives the plain loss of the ablation.

    Because rho(a) - rho(b) = b - a (mod 2 pi), mirroring both views turns theta into -theta:
    the invariant loss is exactly the same for theta_hat and -theta_hat. It constrains the size
    of the turn only; its sign comes from the symmetry loss (which forbids always answering
    with one sign) and a global sign resolution after training.
    """
    if not reflection_invariant:
        return 1.0 - torch.cos(phi_s - theta_hat - phi_t)
    sources = (phi_s, front_back_mirror_t(phi_s))
    targets = (phi_t, front_back_mirror_t(phi_t))
    combos = [1.0 - torch.cos(s - theta_hat - t) for s in sources for t in targets]
    return torch.stack(combos, dim=0).amin(dim=0)


def left_probability(phi: torch.Tensor) -> torch.Tensor:
    """p(left) = (sin(phi) + 1) / 2, clamped to [eps, 1 - eps]."""
    return ((torch.sin(phi) + 1.0) * 0.5).clamp(PROBABILITY_EPS, 1.0 - PROBABILITY_EPS)


def binaural_iid_loss(phi: torch.Tensor, iid_target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy between p(left) of ``phi`` and the IID target, per sample (B,).

    iid_target: (vote + 1) / 2 from ``slfm_ros.core.dsp.iid`` (1 left, 0 right, 0.5 tie).
    """
    target = iid_target.to(phi.dtype)
    return F.binary_cross_entropy(left_probability(phi), target, reduction="none")


def binaural_hinge_loss(
    phi: torch.Tensor, iid_target: torch.Tensor, margin: float = 0.0
) -> torch.Tensor:
    """relu(sin(margin) - y sin(phi)) per sample (B,), y = +1 left, -1 right, 0 tie (no loss).

    The IID vote says which side a source is on, not how far: where the vote is right a
    fraction a of the time, the cross-entropy is lowest at sin(phi) = 2a - 1, which pulls every
    source toward the angle of the vote's accuracy (about 53 deg for a vote right 90 % of the
    time) whatever its true azimuth. The hinge is 0 for any phi on the voted side beyond
    ``margin`` (radians), so it fixes the sign and leaves the size to the geometric loss.
    """
    side = (2.0 * iid_target - 1.0).to(phi.dtype)
    return F.relu(math.sin(margin) - side * torch.sin(phi)) * (side != 0).to(phi.dtype)


@dataclass(frozen=True)
class BinauralTerm:
    """The binaural IID term per sample (B,): ``form`` is one of ``BINAURAL_LOSSES``;
    ``margin`` (radians) applies to the hinge only."""

    form: str = "cross_entropy"
    margin: float = 0.0

    def __post_init__(self) -> None:
        if self.form not in BINAURAL_LOSSES:
            raise ValueError(
                f"binaural loss form: expected one of {BINAURAL_LOSSES}, got {self.form!r}"
            )

    def __call__(self, phi: torch.Tensor, iid_target: torch.Tensor) -> torch.Tensor:
        if self.form == "hinge":
            return binaural_hinge_loss(phi, iid_target, self.margin)
        return binaural_iid_loss(phi, iid_target)


def audio_symmetry_loss(phi: torch.Tensor, phi_swapped: torch.Tensor) -> torch.Tensor:
    """|wrap(phi(x) + phi(x with L/R swapped))| per sample: swapping the ears mirrors phi.

    The sum is wrapped so that 170 deg and -170 deg count as the exact mirror pair they are.
    """
    return wrap_angle_t(phi + phi_swapped).abs()


def rotation_symmetry_loss(theta_fwd: torch.Tensor, theta_bwd: torch.Tensor) -> torch.Tensor:
    """|theta_hat(a -> b) + theta_hat(b -> a)| per sample: swapping the images negates theta."""
    return (theta_fwd + theta_bwd).abs()


def symmetry_loss(
    phi: torch.Tensor,
    phi_swapped: torch.Tensor,
    theta_fwd: torch.Tensor,
    theta_bwd: torch.Tensor,
) -> torch.Tensor:
    """Audio symmetry plus rotation symmetry, per sample (B,)."""
    return audio_symmetry_loss(phi, phi_swapped) + rotation_symmetry_loss(theta_fwd, theta_bwd)


def audio_pair_terms(
    phi_s: torch.Tensor,
    phi_t: torch.Tensor,
    phi_s_swapped: torch.Tensor,
    phi_t_swapped: torch.Tensor,
    iid_target_s: torch.Tensor,
    iid_target_t: torch.Tensor,
    binaural_term: BinauralTerm = BinauralTerm(),
) -> tuple[torch.Tensor, torch.Tensor]:
    """Binaural IID loss and audio symmetry loss of both clips of a pair, batch means."""
    binaural = 0.5 * (
        binaural_term(phi_s, iid_target_s).mean() + binaural_term(phi_t, iid_target_t).mean()
    )
    symmetry = 0.5 * (
        audio_symmetry_loss(phi_s, phi_s_swapped).mean()
        + audio_symmetry_loss(phi_t, phi_t_swapped).mean()
    )
    return binaural, symmetry


def slfm_total_loss(
    phi_s: torch.Tensor,
    phi_t: torch.Tensor,
    theta_hat: torch.Tensor,
    theta_hat_reverse: torch.Tensor,
    phi_s_swapped: torch.Tensor,
    phi_t_swapped: torch.Tensor,
    iid_target_s: torch.Tensor,
    iid_target_t: torch.Tensor,
    weights: tuple[float, float, float] = (10.0, 1.0, 1.0),
    reflection_invariant: bool = True,
    geometric_trains_audio: bool = True,
    binaural_term: BinauralTerm = BinauralTerm(),
) -> dict[str, torch.Tensor]:
    """Loss of the self-supervised SLfM stage for one (source, target) view pair.

    phi_s, phi_t:        audio predictions of the two views (B,).
    theta_hat:           visual prediction of yaw_t - yaw_s (B,) (images ordered s, t).
    theta_hat_reverse:   visual prediction with the images ordered t, s (B,).
    phi_*_swapped:       audio predictions of the channel-swapped clips (B,).
    iid_target_*:        IID targets of the two clips (B,).
    weights:             (geometric, binaural, symmetry); a zero weight drops the term from the
                         total (ablations) while it is still reported.
    geometric_trains_audio: False = the geometric term sees the audio predictions as fixed
                         targets (no gradient into the audio network through it), so the
                         rotation head learns from the audio without pulling it to phi = 0.
    binaural_term:       the form of the binaural term (``BinauralTerm``).
    Returns batch means: {"geometric", "binaural", "symmetry", "total"}.
    """
    geo_s, geo_t = (phi_s, phi_t) if geometric_trains_audio else (phi_s.detach(), phi_t.detach())
    geometric = geometric_loss(geo_s, geo_t, theta_hat, reflection_invariant).mean()
    binaural, audio_symmetry = audio_pair_terms(
        phi_s, phi_t, phi_s_swapped, phi_t_swapped, iid_target_s, iid_target_t, binaural_term
    )
    symmetry = audio_symmetry + rotation_symmetry_loss(theta_hat, theta_hat_reverse).mean()
    w_geo, w_bin, w_sym = weights
    total = w_geo * geometric + w_bin * binaural + w_sym * symmetry
    return {"geometric": geometric, "binaural": binaural, "symmetry": symmetry, "total": total}


def egomotion_loss(
    phi_s: torch.Tensor,
    phi_t: torch.Tensor,
    measured_turn: torch.Tensor,
    phi_s_swapped: torch.Tensor,
    phi_t_swapped: torch.Tensor,
    iid_target_s: torch.Tensor,
    iid_target_t: torch.Tensor,
    weights: tuple[float, float, float] = (10.0, 1.0, 1.0),
    reflection_invariant: bool = True,
    binaural_term: BinauralTerm = BinauralTerm(),
    turn_weighting: str = "uniform",
) -> dict[str, torch.Tensor]:
    """Loss of the audio network against measured camera turns, for (source, target) pairs.

    measured_turn: yaw_t - yaw_s measured without labels (e.g. by feature matching), (B,)
    radians, NaN where no turn was measured: those pairs leave the geometric term, while
    their clips still count in the binaural and symmetry terms.
    turn_weighting: "uniform" averages the measured pairs; "squared" weights each by its turn
    squared over the mean squared measured turn of the batch (the weights average 1). Why:
    the term compares two noisy predictions, and for prediction noise sigma its best answers
    are shrunk toward the front by about E[turn^2] / (E[turn^2] + 2 sigma^2); weighting by
    turn^2 raises the effective E[turn^2] to E[turn^4] / E[turn^2].
    The other arguments are those of ``slfm_total_loss``. Returns batch means {"geometric",
    "binaural", "symmetry", "total"} and "measured", the fraction of pairs with a measured
    turn.
    """
    if turn_weighting not in TURN_WEIGHTINGS:
        raise ValueError(
            f"turn weighting: expected one of {TURN_WEIGHTINGS}, got {turn_weighting!r}"
        )
    measured = torch.isfinite(measured_turn)
    turn = torch.where(measured, measured_turn, torch.zeros_like(measured_turn)).to(phi_s.dtype)
    per_pair = geometric_loss(phi_s, phi_t, turn, reflection_invariant)
    count = measured.sum().clamp(min=1)
    if turn_weighting == "squared":
        # Unmeasured pairs carry turn 0, so they add nothing to the sum of squares.
        per_pair = per_pair * turn.square() / (turn.square().sum() / count).clamp(min=1e-12)
    geometric = torch.where(measured, per_pair, torch.zeros_like(per_pair)).sum() / count
    binaural, symmetry = audio_pair_terms(
        phi_s, phi_t, phi_s_swapped, phi_t_swapped, iid_target_s, iid_target_t, binaural_term
    )
    w_geo, w_bin, w_sym = weights
    return {
        "geometric": geometric,
        "binaural": binaural,
        "symmetry": symmetry,
        "total": w_geo * geometric + w_bin * binaural + w_sym * symmetry,
        "measured": measured.float().mean(),
    }


def binauralization_loss(
    predicted: torch.Tensor, target: torch.Tensor, weight: float = 10.0
) -> torch.Tensor:
    """``weight`` x mean L1 over real/imag of the predicted L - R STFT, per sample (B,).

    predicted, target: (B, 2, F, T) real/imag.
    """
    return weight * (predicted - target).abs().flatten(1).mean(dim=1)


def supervised_angle_loss(
    predicted: torch.Tensor, target: torch.Tensor, mirror_invariant: bool = False
) -> torch.Tensor:
    """1 - cos(predicted - target) per sample (B,), for training with angle labels.

    mirror_invariant: also accept the front/back mirror of the prediction (for receivers
    without front/back cues, scored after folding to the front).
    """
    loss = 1.0 - torch.cos(predicted - target)
    if mirror_invariant:
        loss = torch.minimum(loss, 1.0 - torch.cos(front_back_mirror_t(predicted) - target))
    return loss
