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
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
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
def flip_heads(audio_net: nn.Module, visual_net: nn.Module) -> None:
    """Negate the outputs of both heads (phi -> -phi, theta -> -theta), in place."""
    for name, net in (("audio", audio_net), ("visual", visual_net)):
        layer = _last_linear(net.get_submodule("head"), name)
        layer.weight.neg_()
        if layer.bias is not None:
            layer.bias.neg_()


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


def resolve_sign(
    audio_net: nn.Module, visual_net: nn.Module, clips: torch.Tensor, stft: StftConfig
) -> SignReport:
    """Flip both heads when the audio predictions disagree with the IID votes on most clips."""
    agreement, counted = side_agreement(audio_net, clips, stft)
    flipped = counted > 0 and agreement < 0.5
    if flipped:
        flip_heads(audio_net, visual_net)
    return SignReport(samples=counted, agreement=agreement, flipped=flipped)
