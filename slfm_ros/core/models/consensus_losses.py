"""Label-free losses of the compact audio network: what K views of one static source, heard by
a receiver that turned by known angles between them, say about each other.

A sample is K windows of one source; view i was heard after the receiver turned by theta_i
from view 0 (theta_0 = 0, left positive), so a static source's azimuth in view i is
phi_i = phi_0 - theta_i. The network gives a distribution p_i over ``n_bins`` azimuth bins on
the full circle for every view (bin k centred at -pi + (k + 0.5) 2 pi / n_bins).

Latent consensus (``consensus_targets``): the source azimuth in view 0 is a latent chosen by a
grid search, the phi_0 that best explains every view's prediction given the turns:

    score(phi_0) = sum_i  log p_i(phi_0 - theta_i)  -  side_weight * relu(-s_i sin(phi_0 - theta_i))

where s_i in {-1, 0, +1} is a physical side cue of view i (+1: the source is on the left), so a
hypothesis whose view lies on the side the ears disagree with pays in proportion to how far it
lies there. View i is then trained, with the gradient stopped (``consensus_loss``), toward
phi_0 - theta_i: a Gaussian at the best candidate (``consensus_targets``) or, softly, the posterior
exp(score) carried into view i's frame (``consensus_distributions``). The soft targets keep what
the views leave open: from an untrained network they are the region the side votes of the turned
views allow, which narrows as the network learns, where a hard target would commit to an
arbitrary point of it and teach the network that point. The turns make the fit well posed: a
network that answers a constant, or one compressed toward the front, cannot be consistent with
several turned views, and the front/back mirror of a view is inconsistent with the others as
soon as the receiver turned.

Errors in variables: a loss that compares two noisy predictions is lowest for answers shrunk
toward the front. With ``leave_one_out`` the target of view i is the consensus of the OTHER
views, so it carries none of view i's own error: training regresses a noisy target on a clean
input, which is unbiased, instead of two noisy predictions on each other.

Mask and sum (``agreement_loss``): -log of the probability, under the network's own
distributions, that all K views point at one static source given the turns,
-log sum_phi prod_i p_i(phi - theta_i); differentiable through every view.

Side (``side_loss``): -log of the network's mass on the side the side cue names.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def _bin_coordinates(angles: torch.Tensor, n_bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Lower bin index and interpolation weight of the upper bin, for angles in radians."""
    width = 2.0 * math.pi / n_bins
    u = (angles + math.pi) / width - 0.5
    lower = torch.floor(u)
    return torch.remainder(lower, n_bins).long(), u - lower


def interpolate_circular(values: torch.Tensor, angles: torch.Tensor) -> torch.Tensor:
    """Cubic (Catmull-Rom) interpolation of per-bin values on the circle: exact at the bin
    centres and smooth between them, so a peak between two centres is found where it is.

    values (B, K, n_bins): one curve per view; angles (B, K, G) rad -> (B, K, G).
    """
    n_bins = values.shape[-1]
    lower, frac = _bin_coordinates(angles, n_bins)
    t = frac.to(values.dtype)
    p = [torch.gather(values, 2, torch.remainder(lower + k, n_bins)) for k in (-1, 0, 1, 2)]
    return p[1] + 0.5 * t * (
        p[2]
        - p[0]
        + t * (2 * p[0] - 5 * p[1] + 4 * p[2] - p[3] + t * (3 * (p[1] - p[2]) + p[3] - p[0]))
    )


def wrap(angles: torch.Tensor) -> torch.Tensor:
    """Angles wrapped to [-pi, pi)."""
    return torch.remainder(angles + math.pi, 2.0 * math.pi) - math.pi


def candidate_grid(grid_size: int, device: torch.device | None = None) -> torch.Tensor:
    """(G,) candidate azimuths evenly over the circle, starting at -pi."""
    if grid_size < 8:
        raise ValueError(f"grid_size must be >= 8, got {grid_size}")
    step = 2.0 * math.pi / grid_size
    return -math.pi + step * torch.arange(grid_size, dtype=torch.float64, device=device)


def view_scores(
    log_probs: torch.Tensor, turns: torch.Tensor, grid_size: int = 360
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (B, K, G), grid (G,)): each view's log-likelihood of every candidate phi_0.

    log_probs (B, K, n_bins), turns (B, K) rad.
    """
    if log_probs.ndim != 3 or turns.shape != log_probs.shape[:2]:
        raise ValueError(
            f"log_probs (B, K, n_bins) and turns (B, K) needed, got {tuple(log_probs.shape)} "
            f"and {tuple(turns.shape)}"
        )
    grid = candidate_grid(grid_size, log_probs.device)
    angles = grid[None, None, :] - turns.to(torch.float64)[:, :, None]
    return interpolate_circular(log_probs.to(torch.float64), angles), grid


def side_penalty(turns: torch.Tensor, side: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """(B, G) summed over views: relu(-s_i sin(phi_0 - theta_i)) for every candidate phi_0."""
    angles = grid[None, None, :] - turns.to(torch.float64)[:, :, None]
    return torch.relu(-side.to(torch.float64)[:, :, None] * torch.sin(angles)).sum(dim=1)


def _refined_argmax(total: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    """Grid angle of the maximum along the last axis, refined by a parabola through it and its
    two neighbours (sub-grid accuracy, at most half a grid step)."""
    g = total.shape[-1]
    best = torch.argmax(total, dim=-1)
    left = torch.gather(total, -1, torch.remainder(best - 1, g).unsqueeze(-1)).squeeze(-1)
    mid = torch.gather(total, -1, best.unsqueeze(-1)).squeeze(-1)
    right = torch.gather(total, -1, torch.remainder(best + 1, g).unsqueeze(-1)).squeeze(-1)
    curvature = left - 2.0 * mid + right
    shift = torch.where(curvature < -1e-12, 0.5 * (left - right) / curvature.clamp(max=-1e-12), 0.0)
    shift = shift.clamp(-0.5, 0.5)
    step = 2.0 * math.pi / g
    return wrap(grid[best] + shift * step)


def fit_scores(
    log_probs: torch.Tensor,
    turns: torch.Tensor,
    side: torch.Tensor | None = None,
    side_weight: float = 0.0,
    leave_one_out: bool = True,
    grid_size: int = 360,
    valid: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores (B, K, G), grid (G,)): the fit score of every candidate phi_0 for the target of
    every view (the views it is fitted to, the side penalty of all views)."""
    scores, grid = view_scores(log_probs, turns, grid_size)
    if valid is not None:
        scores = scores * valid.to(scores.dtype)[:, :, None]
    total = scores.sum(dim=1, keepdim=True)  # (B, 1, G)
    per_view = total - scores if leave_one_out else total.expand_as(scores)
    if side is not None and side_weight > 0.0:
        # The side cues are measurements of the inputs, not network outputs: every view's
        # cue counts in every fit.
        per_view = per_view - side_weight * side_penalty(turns, side, grid)[:, None, :]
    return per_view, grid


@torch.no_grad()
def consensus_targets(
    log_probs: torch.Tensor,
    turns: torch.Tensor,
    side: torch.Tensor | None = None,
    side_weight: float = 0.0,
    leave_one_out: bool = True,
    grid_size: int = 360,
    valid: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, K) target azimuth of every view, rad: the best candidate (see the module doc).

    valid (B, K) bool: views that take part in the fit (all when None); an invalid view still
    gets a target (from the valid ones) but adds nothing to any fit. With ``leave_one_out``
    view i's target comes from the other valid views only (a sample needs two of them).
    """
    per_view, grid = fit_scores(
        log_probs, turns, side, side_weight, leave_one_out, grid_size, valid
    )
    phi0 = _refined_argmax(per_view, grid)  # (B, K): view 0's azimuth as fitted for view i
    return wrap(phi0 - turns.to(torch.float64)).to(log_probs.dtype)


def _circular_smoothing(n_bins: int, sigma_rad: float, dtype: torch.dtype) -> torch.Tensor:
    """(n_bins, n_bins) matrix that convolves a distribution on the bins with a circular
    Gaussian (columns sum to one)."""
    width = 2.0 * math.pi / n_bins
    k = torch.arange(n_bins, dtype=dtype)
    diff = wrap((k[:, None] - k[None, :]) * width)
    kernel = torch.exp(-0.5 * (diff / sigma_rad) ** 2)
    return kernel / kernel.sum(dim=0, keepdim=True)


@torch.no_grad()
def consensus_distributions(
    log_probs: torch.Tensor,
    turns: torch.Tensor,
    side: torch.Tensor | None = None,
    side_weight: float = 0.0,
    leave_one_out: bool = True,
    grid_size: int = 360,
    valid: torch.Tensor | None = None,
    sigma_rad: float = math.radians(4.0),
) -> torch.Tensor:
    """(B, K, n_bins) soft targets: the posterior of phi_0 under the fit scores, carried to
    every view's frame (phi_0 - theta_i), binned and smoothed by a Gaussian of ``sigma_rad``.

    Where the views leave the source's direction open the target says so, instead of picking
    one answer: from an untrained network the posterior is the region the side votes of the
    turned views allow, and it narrows as the network learns (soft expectation-maximisation).
    """
    per_view, grid = fit_scores(
        log_probs, turns, side, side_weight, leave_one_out, grid_size, valid
    )
    post = torch.softmax(per_view, dim=-1)  # (B, K, G)
    n_bins = log_probs.shape[-1]
    angles = grid[None, None, :] - turns.to(torch.float64)[:, :, None]
    lower, frac = _bin_coordinates(wrap(angles), n_bins)
    binned = torch.zeros(post.shape[:2] + (n_bins,), dtype=torch.float64, device=post.device)
    binned.scatter_add_(2, lower, post * (1.0 - frac))
    binned.scatter_add_(2, torch.remainder(lower + 1, n_bins), post * frac)
    smooth = _circular_smoothing(n_bins, sigma_rad, torch.float64)
    out = binned @ smooth.T
    return (out / out.sum(dim=-1, keepdim=True)).to(log_probs.dtype)


def gaussian_targets(azimuth: torch.Tensor, n_bins: int, sigma_rad: float) -> torch.Tensor:
    """(..., n_bins) circular Gaussian distributions centred on ``azimuth`` (...,) rad."""
    width = 2.0 * math.pi / n_bins
    centers = -math.pi + (torch.arange(n_bins, dtype=azimuth.dtype) + 0.5) * width
    diff = wrap(centers - azimuth[..., None])
    w = torch.exp(-0.5 * (diff / sigma_rad) ** 2)
    return w / w.sum(dim=-1, keepdim=True)


def consensus_loss(
    logits: torch.Tensor,
    turns: torch.Tensor,
    side: torch.Tensor | None = None,
    side_weight: float = 1.0,
    sigma_rad: float = math.radians(4.0),
    leave_one_out: bool = True,
    grid_size: int = 360,
    consensus_log_probs: torch.Tensor | None = None,
    valid: torch.Tensor | None = None,
    soft: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, targets (B, K) rad): cross-entropy of every view toward its consensus target.

    logits (B, K, n_bins). consensus_log_probs: the distributions the targets are fitted to
    (default: the logits' own, detached), e.g. a channel-swap symmetrised version. valid
    (B, K) bool: the views that take part in the fits and in the loss (all when None).
    soft: train toward ``consensus_distributions`` (the posterior) instead of a Gaussian at
    the best candidate; the returned targets are the best candidates either way.
    """
    log_p = F.log_softmax(logits, dim=-1)
    fit = log_p.detach() if consensus_log_probs is None else consensus_log_probs.detach()
    targets = consensus_targets(fit, turns, side, side_weight, leave_one_out, grid_size, valid)
    if soft:
        dist = consensus_distributions(
            fit, turns, side, side_weight, leave_one_out, grid_size, valid, sigma_rad
        )
    else:
        dist = gaussian_targets(targets.detach(), logits.shape[-1], sigma_rad)
    per_view = -(dist.detach() * log_p).sum(dim=-1)
    if valid is None:
        return per_view.mean(), targets
    weight = valid.to(per_view.dtype)
    return (per_view * weight).sum() / weight.sum().clamp(min=1.0), targets


def agreement_loss(logits: torch.Tensor, turns: torch.Tensor, grid_size: int = 360) -> torch.Tensor:
    """Mask and sum over K views: mean of -log sum_phi prod_i p_i(phi - theta_i) per sample,
    with the sum over phi a mean over the candidate grid times n_bins (so that K = 1 or
    identical uniform views give 0 for K = 1 and (K - 1) log n_bins for uniform views)."""
    log_p = F.log_softmax(logits, dim=-1)
    scores, _ = view_scores(log_p, turns, grid_size)
    n_bins = logits.shape[-1]
    total = scores.sum(dim=1)  # (B, G)
    log_mass = torch.logsumexp(total, dim=-1) - math.log(grid_size) + math.log(n_bins)
    return (-log_mass).mean().to(logits.dtype)


def side_loss(logits: torch.Tensor, side: torch.Tensor) -> torch.Tensor:
    """Mean of -log(mass on the cued side) over windows with a side cue (0 when none).

    logits (..., n_bins), side (...) in {-1, 0, +1}; bins with centre sin > 0 are the left.
    """
    n_bins = logits.shape[-1]
    width = 2.0 * math.pi / n_bins
    centers = -math.pi + (torch.arange(n_bins, dtype=logits.dtype) + 0.5) * width
    left = (torch.sin(centers) > 0).to(logits.dtype)
    p = torch.softmax(logits, dim=-1)
    p_left = (p * left).sum(dim=-1).clamp(1e-6, 1 - 1e-6)
    cued = side != 0
    if not bool(cued.any()):
        return logits.sum() * 0.0
    p_side = torch.where(side > 0, p_left, 1.0 - p_left)
    return -torch.log(p_side[cued]).mean()
