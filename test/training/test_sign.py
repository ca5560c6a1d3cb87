"""Sign resolution from the IID cue: flips both heads exactly when the audio side is wrong."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch

from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.losses import geometric_loss
from slfm_ros.core.models.visual_pose import VisualPoseNet
from slfm_ros.core.sim.dataset import OnTheFlyDataset
from slfm_training.config import TrainConfig
from slfm_training.sign import flip_heads, resolve_rotation_sign, resolve_sign, side_agreement


@pytest.fixture
def nets(tiny_config: Callable[..., TrainConfig]) -> tuple[AudioDirectionNet, VisualPoseNet]:
    torch.manual_seed(0)
    model = tiny_config("slfm").model_config()
    audio = AudioDirectionNet(model.audio).eval()
    visual = VisualPoseNet(model.visual).eval()
    # An audio model that answers "left" (phi = tanh(0.5) * pi = 83 deg) for every clip.
    last = audio.head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(0.5)
    return audio, visual


def _clips(left_gain: list[float], samples: int, seed: int = 0) -> torch.Tensor:
    """Noise clips (N, 2, samples); clip n has its left channel scaled by left_gain[n]."""
    rng = np.random.default_rng(seed)
    noise = rng.standard_normal((len(left_gain), 1, samples)).astype(np.float32) * 0.1
    clips = np.repeat(noise, 2, axis=1)
    clips[:, 0] *= np.asarray(left_gain, dtype=np.float32)[:, None]
    return torch.from_numpy(clips)


def test_agreeing_model_is_kept(
    nets: tuple[AudioDirectionNet, VisualPoseNet], tiny_config: Callable[..., TrainConfig]
) -> None:
    audio, visual = nets
    stft = audio.cfg.stft_config()
    report = resolve_sign(audio, visual, _clips([2.0] * 6, stft.clip_samples), stft)
    assert report.samples == 6 and report.agreement == 1.0 and not report.flipped
    assert audio.head[-1].bias.item() == pytest.approx(0.5)


def test_disagreeing_model_flips_both_heads_exactly(
    nets: tuple[AudioDirectionNet, VisualPoseNet],
) -> None:
    audio, visual = nets
    stft = audio.cfg.stft_config()
    # Right louder in 5 of 7 clips: the model ("left" everywhere) is wrong on most of them.
    clips = _clips([0.5, 0.5, 0.5, 0.5, 0.5, 2.0, 2.0], stft.clip_samples)
    images = torch.randn(3, 3, visual.cfg.image_height, visual.cfg.image_width)
    other = torch.randn_like(images)
    features = torch.randn(3, *audio.cfg.feature_shape)
    with torch.no_grad():
        phi_before, theta_before = audio(features), visual(images, other)

    report = resolve_sign(audio, visual, clips, stft)
    assert report.flipped and report.samples == 7
    assert report.agreement == pytest.approx(2 / 7)
    with torch.no_grad():
        torch.testing.assert_close(audio(features), -phi_before)
        torch.testing.assert_close(visual(images, other), -theta_before)
    agreement, _ = side_agreement(audio, clips, stft)
    assert agreement == pytest.approx(5 / 7)


def test_mirrored_solution_has_the_same_geometric_loss(
    nets: tuple[AudioDirectionNet, VisualPoseNet],
) -> None:
    # Why both heads flip together: negating only one would break phi_s - theta - phi_t = 0.
    audio, visual = nets
    torch.manual_seed(1)
    with torch.no_grad():
        audio.head[-1].weight.normal_(0.0, 3.0)
        visual.head[-1].bias.fill_(0.5)
    features = torch.randn(6, *audio.cfg.feature_shape)
    images = torch.randn(6, 3, visual.cfg.image_height, visual.cfg.image_width)

    def losses(phi_s: torch.Tensor, phi_t: torch.Tensor, theta: torch.Tensor) -> list[torch.Tensor]:
        return [geometric_loss(phi_s, phi_t, theta, invariant) for invariant in (True, False)]

    with torch.no_grad():
        phi_s, phi_t = audio(features[:3]), audio(features[3:])
        theta = visual(images[:3], images[3:])
        before = losses(phi_s, phi_t, theta)
        flip_heads(audio, visual)
        after = losses(audio(features[:3]), audio(features[3:]), visual(images[:3], images[3:]))
        audio_only = losses(-phi_s, -phi_t, theta)
    for a, b in zip(after, before, strict=True):
        torch.testing.assert_close(a, b)
    assert not torch.allclose(audio_only[1], before[1], atol=1e-3)


def test_simulated_sources_on_the_left_vote_left(
    nets: tuple[AudioDirectionNet, VisualPoseNet], tiny_config: Callable[..., TrainConfig]
) -> None:
    """The simulator's binaural head puts a source at +40..80 deg (left) louder on the left:
    a model answering "left" agrees with the IID cue and is kept; its mirror is flipped back."""
    audio, visual = nets
    scene = tiny_config(
        "slfm",
        "data.scene.sources.target_azimuth_deg=[40.0, 80.0]",
        "data.scene.views.min_turn_deg=0.0",
        "data.scene.views.max_turn_deg=10.0",
    ).data.scene_config()
    source = OnTheFlyDataset(scene, "val", seed=0)
    clips = torch.from_numpy(np.concatenate([source[i].audio.transpose(0, 2, 1) for i in range(3)]))
    assert all(math.degrees(a) > 20 for i in range(3) for a in source[i].target_azimuths)
    stft = audio.cfg.stft_config()
    assert not resolve_sign(audio, visual, clips, stft).flipped
    flip_heads(audio, visual)
    report = resolve_sign(audio, visual, clips, stft)
    assert report.flipped and report.agreement < 0.5
    with torch.no_grad():
        assert float(audio(torch.zeros(1, *audio.cfg.feature_shape))) > 0


def test_rotation_head_alone_follows_the_measured_turns(
    nets: tuple[AudioDirectionNet, VisualPoseNet],
) -> None:
    audio, visual = nets
    images = torch.randn(12, 2, 3, visual.cfg.image_height, visual.cfg.image_width)
    before_phi = audio.head[-1].bias.clone()
    with torch.no_grad():
        theta = visual(images[:, 0], images[:, 1])
    # Turns of the opposite sign on 10 pairs; one pair declined (NaN), one too small to vote.
    measured = -torch.sign(theta) * torch.linspace(0.1, 0.6, 12)
    measured[2] = 0.02 * torch.sign(theta[2])
    measured[3] = float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = resolve_rotation_sign(visual, theta, measured)
    assert report.pairs == 10 and report.agreement == 0.0
    assert report.decided and report.flipped
    with torch.no_grad():
        torch.testing.assert_close(visual(images[:, 0], images[:, 1]), -theta)
    assert torch.equal(audio.head[-1].bias, before_phi)  # the audio head is not touched
    # Agreeing turns, too few disagreeing ones to rule out chance, or none measured at all,
    # change nothing.
    flipped = visual(images[:, 0], images[:, 1]).detach()
    few = torch.full_like(flipped, float("nan"))
    few[:2] = -torch.sign(flipped[:2]) * 0.3
    for turns, warning, agreement in (
        (torch.sign(flipped) * 0.3, None, 1.0),
        (few, "undecided: 0 of 2", 0.0),
        (torch.full_like(flipped, float("nan")), "no measured turn", 1.0),
    ):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            report = resolve_rotation_sign(visual, flipped, turns)
        messages = [str(w.message) for w in caught]
        assert (warning is None and not messages) or any(warning in m for m in messages)
        assert not report.flipped and report.agreement == agreement
    with torch.no_grad():
        torch.testing.assert_close(visual(images[:, 0], images[:, 1]), flipped)


def test_rotation_sign_is_decided_only_beyond_chance(
    nets: tuple[AudioDirectionNet, VisualPoseNet],
) -> None:
    """A head that agrees with 30 of 32 measured turns is decided and kept; one that agrees
    with half of them has not learned the direction: it is reported undecided, with a warning."""
    _, visual = nets
    measured = torch.linspace(0.1, 0.5, 32) * torch.tensor([1.0, -1.0]).repeat(16)
    confident = measured.clone()
    confident[:2] *= -1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = resolve_rotation_sign(visual, confident, measured)
    assert report.decided and not report.flipped and report.agreement == pytest.approx(30 / 32)
    coin = measured.clone()
    coin[::4] *= -1
    coin[1::4] *= -1
    with pytest.warns(UserWarning, match="undecided: 16 of 32"):
        report = resolve_rotation_sign(visual, coin, measured)
    assert not report.decided and report.agreement == 0.5
