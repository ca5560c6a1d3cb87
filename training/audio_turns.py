"""Camera turns measured by ear: how far a static sound moved between the two looks of a pair.

A robot that turns by theta between two images hears a static source move by -theta. Where the
two images share no view, no image matcher can measure the turn, but the audio network can: the
source's direction in the first look, phi_0, and in the second, phi_1 = phi_0 - theta, give
theta = phi_0 - phi_1. With two ears the directions are known up to front and back, and so is
the turn: a world mirrored front to back turns the other way and sounds the same. So each
look's distribution is made front/back symmetric first (a network's own front/back guess
would, where wrong, exclude the true turn), and the turn's likelihood is the circular
cross-correlation of the two, L(theta) = sum_phi p_0(phi) p_1(phi - theta): it keeps every
reading that front/back allows (the turn and its opposite, and the readings that pair a front
answer with a back one). The
visual head learns from it as a mask: the loss is -log of the probability that the head puts on
the turns the sound allows (mask and sum), so the head picks one of them from what it sees.

Nothing here reads an angle label: the scene's audio is rendered at the yaws the camera had, as
a microphone on the robot would hear it, and only the audio network's answers are used.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from slfm_ros.core.dsp.binaural_cues import binaural_cues
from slfm_ros.core.estimators.cue_audio import aperture_row
from slfm_ros.core.models.azimuth_bins import front_back_bins, softmax
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, ViewTurns, render_multiview
from slfm_training.audio_net_io import load_audio_net


def turn_likelihood(
    p_0: npt.ArrayLike, p_1: npt.ArrayLike, turns: npt.ArrayLike, sigma_rad: float
) -> npt.NDArray[np.float64]:
    """L(theta) at ``turns`` (rad) from two distributions over the same circular bins (bin j
    centred on -pi + (j + 0.5) * 2 pi / n), scaled to a largest value of 1, after a circular
    Gaussian blur of ``sigma_rad`` (the audio network's own error)."""
    p0, p1 = np.asarray(p_0, dtype=np.float64), np.asarray(p_1, dtype=np.float64)
    if p0.shape != p1.shape or p0.ndim != 1 or p0.size < 4:
        raise ValueError(f"two distributions over the same bins needed, got {p0.shape}, {p1.shape}")
    n = p0.size
    width = 2.0 * math.pi / n
    # r[k] = sum_j p0[j] p1[j - k]: the turn of k bins.
    corr = np.real(np.fft.ifft(np.fft.fft(p0) * np.conj(np.fft.fft(p1))))
    if sigma_rad > 0:
        offsets = np.angle(np.exp(1j * width * np.arange(n)))
        kernel = np.exp(-0.5 * (offsets / sigma_rad) ** 2)
        corr = np.real(np.fft.ifft(np.fft.fft(corr) * np.fft.fft(kernel / kernel.sum())))
    corr = np.clip(corr, 0.0, None)
    position = np.mod(np.asarray(turns, dtype=np.float64) / width, n)
    lower = np.floor(position).astype(int)
    frac = position - lower
    values = (1.0 - frac) * corr[lower % n] + frac * corr[(lower + 1) % n]
    peak = float(values.max())
    return values / peak if peak > 0 else values


class AudioTurnMeter:
    """Measures a turn by ear with a compact audio model (module docstring).

    model_dir:  a model folder or audio run whose audio network answers (the label-free one,
                for a recipe without labels).
    turns:      the visual head's bin centres (rad), where the likelihood is read.
    sigma_rad:  blur of the likelihood, about the audio network's error.
    examples:   how scenes are rendered (receivers, rooms, sources, noise).
    """

    def __init__(
        self,
        model_dir: str | Path,
        turns: npt.ArrayLike,
        sigma_rad: float,
        examples: AudioExampleConfig | None = None,
    ) -> None:
        self.audio = load_audio_net(model_dir)
        self.turns = np.asarray(turns, dtype=np.float64)
        self.sigma_rad = float(sigma_rad)
        self.examples = examples or AudioExampleConfig()
        self._views = ViewTurns(num_views=2)

    def mask(self, theta: float, rng: np.random.Generator) -> npt.NDArray[np.float32]:
        """The likelihood over ``turns`` of a scene heard before and after the robot turned
        by ``theta`` (rad; it only places the receiver, as the robot's motion does)."""
        example = render_multiview(self.examples, self._views, rng, turns=[0.0, theta])
        known = example.max_itd_s if self.audio.receiver_input else None
        rows = np.stack(
            [
                np.concatenate([binaural_cues(w, self.audio.cues), aperture_row(known)])
                for w in example.windows
            ]
        )
        with torch.no_grad():
            logits = self.audio.net(torch.from_numpy(rows.astype(np.float32))).numpy()
        p = softmax(logits.astype(np.float64))
        p = 0.5 * (p + p[:, front_back_bins(p.shape[1])])
        return turn_likelihood(p[0], p[1], self.turns, self.sigma_rad).astype(np.float32)


def mask_and_sum_loss(logits: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """-log of the probability the head puts on the turns each mask allows (masks in [0, 1],
    one row per pair), averaged over the pairs."""
    probability = (torch.softmax(logits, dim=1) * masks).sum(dim=1)
    return -torch.log(probability + 1e-6).mean()


__all__ = ["AudioTurnMeter", "mask_and_sum_loss", "turn_likelihood"]
