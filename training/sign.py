"""Global sign of the SLfM solution, resolved from the interaural intensity difference.

Why: the SLfM losses cannot tell a solution from its mirror image. Negating every azimuth and
every rotation (phi -> -phi, theta -> -theta) leaves the geometric loss
1 - cos(phi_s - theta - phi_t) and the symmetry loss unchanged; only the binaural IID term
prefers one of the two, and a run can still settle in the mirrored optimum (for example when
the binaural weight is 0 in an ablation, or early in training).

How: after training, the audio network predicts phi for a set of training clips and the IID
vote of each clip says which ear is louder (+1 left, -1 right; ``slfm_ros.core.dsp.iid``).
Left is positive azimuth (REP-103), so a correct model has sign(sin(phi)) == vote on most clips
with a clear vote. If it disagrees on most of them, both heads are negated - the audio head
and the rotation head together, because the geometric loss ties their signs - by negating the
weight and bias of each head's last Linear layer. tanh is odd, so every later prediction is
exactly the negation of the earlier one; the architecture and the exported graph are
unchanged. No angle label is used; the physical cue is the only input.

The plain geometric loss ties the two signs; the reflection-invariant one does not (see
``resolve_rotation_sign``), so the rotation head's sign is then checked on its own against
camera turns measured from the images by feature matching, which carry a sign and no label;
it is negated only when it disagrees with them beyond chance.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass
from typing import Any

import torch
from scipy.stats import binomtest
from torch import nn

from slfm_ros.core.dsp.iid import iid_votes_torch
from slfm_ros.core.dsp.stft import StftConfig, binaural_features_torch
from slfm_ros.core.errors import ModelError


@dataclass(frozen=True)
class SignReport:
    """samples: clips with a clear IID vote (ties and silent clips are left out);
    agreement: share of them where the side of phi matched the vote, before any flip;
    flipped: whether both heads were negated."""

    samples: int
    agreement: float
    flipped: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _last_linear(head: nn.Module, name: str) -> nn.Linear:
    layers = [m for m in head.modules() if isinstance(m, nn.Linear)]
    if not layers:
        raise ModelError(f"{name} head has no Linear layer whose sign could be flipped")
    return layers[-1]


@torch.no_grad()
def negate_head(net: nn.Module, name: str) -> None:
    """Negate the output of ``net``'s head (tanh is odd: every answer changes sign), in place."""
    layer = _last_linear(net.get_submodule("head"), name)
    layer.weight.neg_()
    if layer.bias is not None:
        layer.bias.neg_()


def flip_heads(audio_net: nn.Module, visual_net: nn.Module) -> None:
    """Negate the outputs of both heads (phi -> -phi, theta -> -theta), in place."""
    negate_head(audio_net, "audio")
    negate_head(visual_net, "visual")


@torch.no_grad()
def side_agreement(
    audio_net: nn.Module, clips: torch.Tensor, stft: StftConfig, batch_size: int = 64
) -> tuple[float, int]:
    """(share of clips where sign(sin(phi)) equals the IID vote, number of clips voted).

    clips: (N, 2, S) waveforms, channel 0 left, S = stft.clip_samples. Clips whose vote is a
    tie, or whose prediction lies exactly on the median plane, are not counted.
    """
    was_training = audio_net.training
    audio_net.eval()
    try:
        device = next(audio_net.parameters()).device
        agree = 0
        counted = 0
        for start in range(0, clips.shape[0], batch_size):
            chunk = clips[start : start + batch_size].to(device).float()
            phi = audio_net(binaural_features_torch(chunk, stft)).float()
            votes = iid_votes_torch(chunk, stft)
            side = torch.sign(torch.sin(phi))
            usable = (votes != 0) & (side != 0)
            agree += int((side == votes)[usable].sum())
            counted += int(usable.sum())
    finally:
        audio_net.train(was_training)
    return (agree / counted if counted else 1.0), counted


@dataclass(frozen=True)
class RotationSignReport:
    """pairs: view pairs with a measured turn of at least MIN_MEASURED_TURN; agreement: share
    of them where the rotation head's sign matched the measured turn's, before any flip;
    flipped: whether the rotation head alone was negated; decided: whether the agreement is
    farther from one half than chance explains (two-sided binomial test, p < SIGN_TEST_ALPHA).
    An undecided head has not learned which way the camera turns."""

    pairs: int
    agreement: float
    flipped: bool
    decided: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# Measured turns smaller than this (radians, 2 deg) do not vote: their sign is the least sure.
MIN_MEASURED_TURN = 0.035
# Significance level of the binomial test behind RotationSignReport.decided.
SIGN_TEST_ALPHA = 0.05


@torch.no_grad()
def resolve_rotation_sign(
    visual_net: nn.Module, theta: torch.Tensor, measured: torch.Tensor
) -> RotationSignReport:
    """Negate the rotation head alone when its predictions ``theta`` (P,) disagree in sign
    with the turns ``measured`` (P,) by feature matching (NaN = not measured) on more pairs
    than chance explains (a binomial test at ``SIGN_TEST_ALPHA``); an undecided head is kept.

    Why: with the reflection-invariant geometric loss, theta and -theta cost the same for any
    audio predictions (mirroring both views' azimuths negates the turn), so the rotation head
    settles on a sign of its own that the IID cue of the audio network cannot fix. A turn
    measured from the images has a definite sign and needs no label.
    """
    usable = torch.isfinite(measured) & (measured.abs() >= MIN_MEASURED_TURN) & (theta != 0)
    pairs = int(usable.sum())
    agree = int((torch.sign(theta) == torch.sign(measured))[usable].sum())
    agreement = agree / pairs if pairs else 1.0
    decided = pairs > 0 and binomtest(agree, pairs).pvalue < SIGN_TEST_ALPHA
    # A head that agrees with chance either way keeps its sign: flipping on a bare majority
    # would only make the card's sign look chosen when it is not.
    flipped = decided and agreement < 0.5
    if flipped:
        negate_head(visual_net, "visual")
    if not decided:
        # stacklevel 3: past torch.no_grad's wrapper, to the caller.
        warnings.warn(
            "no measured turn to check the rotation head's sign against; its sign is unchecked"
            if pairs == 0
            else f"the rotation head's sign is undecided: {agree} of {pairs} measured turns "
            "agreed with it, no more than chance explains; the visual network has not learned "
            "which way the camera turns",
            stacklevel=3,
        )
    return RotationSignReport(pairs=pairs, agreement=agreement, flipped=flipped, decided=decided)


def resolve_sign(
    audio_net: nn.Module, visual_net: nn.Module, clips: torch.Tensor, stft: StftConfig
) -> SignReport:
    """Flip both heads when the audio predictions disagree with the IID votes on most clips."""
    agreement, counted = side_agreement(audio_net, clips, stft)
    flipped = counted > 0 and agreement < 0.5
    if flipped:
        flip_heads(audio_net, visual_net)
    return SignReport(samples=counted, agreement=agreement, flipped=flipped)
