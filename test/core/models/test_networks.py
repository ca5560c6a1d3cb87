from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.models.audio_direction import AudioDirectionNet, swap_channels
from slfm_ros.core.models.binauralization import BinauralizationUNet, complex_multiply
from slfm_ros.core.models.config import load_model_config, preset
from slfm_ros.core.models.losses import slfm_total_loss
from slfm_ros.core.models.resnet import ResNet18Trunk
from slfm_ros.core.models.visual_pose import (
    IMAGENET_MEAN,
    VisualPoseNet,
    correlation_volume,
    preprocess_images,
)

torch.set_num_threads(1)


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_full_width_trunk_is_resnet18() -> None:
    # ResNet-18 without its classifier has 11,176,512 parameters.
    assert n_params(ResNet18Trunk(3, 1.0, 4)) == 11_176_512
    trunk = ResNet18Trunk(3, 1.0, 3)
    assert trunk.out_channels == 256
    out = trunk(torch.zeros(1, 3, 240, 320))
    assert tuple(out.shape) == (1, 256, 15, 20)
    assert trunk.output_size(240, 320) == (15, 20)


@pytest.mark.parametrize("size", [(120, 160), (97, 131), (64, 64)])
def test_trunk_output_size_formula(size: tuple[int, int]) -> None:
    for stop in (2, 3, 4):
        trunk = ResNet18Trunk(4, 0.25, stop, (1, 1, 1, 1))
        out = trunk(torch.zeros(1, 4, *size))
        assert tuple(out.shape[2:]) == trunk.output_size(*size)
        assert out.shape[1] == trunk.out_channels


def test_correlation_volume_is_a_distribution_that_finds_matches() -> None:
    height, width, channels = 3, 4, 12
    # Orthogonal, strongly scaled features: every position matches only itself.
    feat = 50.0 * torch.eye(channels).reshape(1, channels, height, width)
    volume = correlation_volume(feat, feat)
    assert tuple(volume.shape) == (1, height * width, height, width)
    torch.testing.assert_close(volume.sum(dim=1), torch.ones(1, height, width))
    best = volume.argmax(dim=1).flatten()
    assert best.tolist() == list(range(height * width))
    # Shift the second map one column to the right: position (r, c) matches (r, c - 1).
    shifted = torch.roll(feat, shifts=1, dims=3)
    best = correlation_volume(feat, shifted).argmax(dim=1)[0]
    for r in range(height):
        for c in range(width):
            assert int(best[r, c]) == r * width + (c - 1) % width


def test_preprocess_images_resizes_and_normalises() -> None:
    cfg = preset("small").visual
    mean_colour = np.round(IMAGENET_MEAN * 255).astype(np.uint8)
    image = np.broadcast_to(mean_colour, (480, 640, 3)).copy()
    batch = preprocess_images([image, image], cfg)
    assert tuple(batch.shape) == (2, 3, cfg.image_height, cfg.image_width)
    assert batch.dtype == torch.float32
    assert float(batch.abs().max()) < 0.01
    white = np.full((cfg.image_height, cfg.image_width, 3), 255, np.uint8)
    assert float(preprocess_images([white], cfg)[0, 0, 0, 0]) == pytest.approx((1 - 0.485) / 0.229)
    with pytest.raises(InputFormatError, match="uint8"):
        preprocess_images([image.astype(np.float32)], cfg)
    with pytest.raises(InputFormatError):
        preprocess_images([image[:, :, 0]], cfg)


def test_visual_net_shapes_and_range() -> None:
    cfg = preset("small")
    net = VisualPoseNet(cfg.visual).eval()
    img = torch.randn(2, 3, cfg.visual.image_height, cfg.visual.image_width)
    with torch.no_grad():
        feature = net.pair_feature(img, img.flip(0))
        theta = net(img, img.flip(0))
    assert tuple(feature.shape) == (2, cfg.visual.feature_dim)
    assert float(feature.min()) >= 0.0  # ReLU output
    assert tuple(theta.shape) == (2,)
    assert float(theta.abs().max()) < math.pi / 2
    with pytest.raises(InputFormatError, match="preprocess_images"):
        net(torch.zeros(1, 3, 240, 320), torch.zeros(1, 3, 240, 320))


def test_audio_net_shapes_and_range() -> None:
    cfg = preset("small").audio
    net = AudioDirectionNet(cfg).eval()
    x = torch.rand(3, *cfg.feature_shape) * 2 - 1
    with torch.no_grad():
        assert tuple(net.feature(x).shape) == (3, cfg.feature_dim)
        phi = net(x)
    assert tuple(phi.shape) == (3,)
    assert float(phi.abs().max()) < math.pi
    torch.testing.assert_close(swap_channels(swap_channels(x)), x)
    assert torch.equal(swap_channels(x)[:, 0], x[:, 2])
    with pytest.raises(InputFormatError, match="binaural features"):
        net(torch.zeros(1, 2, 64, 64))


def test_full_nets_run_on_reference_shapes() -> None:
    cfg = preset("full")
    audio = AudioDirectionNet(cfg.audio).eval()
    visual = VisualPoseNet(cfg.visual).eval()
    with torch.no_grad():
        assert tuple(audio.feature(torch.zeros(1, 4, 256, 256)).shape) == (1, 512)
        img = torch.zeros(1, 3, 240, 320)
        assert tuple(visual.pair_feature(img, img).shape) == (1, 512)


@pytest.mark.parametrize("shape", [(256, 128), (61, 45)])
def test_unet_masks_the_mix(shape: tuple[int, int]) -> None:
    cfg = load_model_config({"preset": "small", "binaural": {"channels": [8, 8, 16, 16, 16]}})
    net = BinauralizationUNet(cfg).eval()
    mix = torch.randn(2, 2, *shape)
    condition = torch.randn(2, cfg.condition_dim)
    with torch.no_grad():
        mask = net.mask(mix, condition)
        out = net(mix, condition)
    assert tuple(out.shape) == (2, 2, *shape)
    assert float(mask.abs().max()) < 1.0
    torch.testing.assert_close(out, complex_multiply(mix, mask))
    as_complex = torch.complex(mix[:, 0], mix[:, 1]) * torch.complex(mask[:, 0], mask[:, 1])
    torch.testing.assert_close(out[:, 0], as_complex.real)
    # The condition reaches the output.
    with torch.no_grad():
        other = net(mix, torch.randn(2, cfg.condition_dim))
    assert float((other - out).abs().max()) > 1e-6
    with pytest.raises(InputFormatError, match="condition"):
        net(mix, torch.zeros(2, 7))


def test_gradients_reach_every_parameter_through_the_slfm_loss() -> None:
    cfg = load_model_config({"preset": "small", "visual": {"image_height": 64, "image_width": 80}})
    audio = AudioDirectionNet(cfg.audio)
    visual = VisualPoseNet(cfg.visual)
    x_s = torch.rand(4, 4, 64, 32) * 2 - 1
    x_t = torch.rand(4, 4, 64, 32) * 2 - 1
    img_s = torch.randn(4, 3, 64, 80)
    img_t = torch.randn(4, 3, 64, 80)
    phi = audio(torch.cat([x_s, x_t, swap_channels(x_s), swap_channels(x_t)]))
    theta = visual(torch.cat([img_s, img_t]), torch.cat([img_t, img_s]))
    out = slfm_total_loss(
        phi_s=phi[:4],
        phi_t=phi[4:8],
        theta_hat=theta[:4],
        theta_hat_reverse=theta[4:],
        phi_s_swapped=phi[8:12],
        phi_t_swapped=phi[12:],
        iid_target_s=torch.ones(4),
        iid_target_t=torch.zeros(4),
    )
    out["total"].backward()
    for name, net in (("audio", audio), ("visual", visual)):
        for param_name, param in net.named_parameters():
            assert param.grad is not None, f"{name}.{param_name}"
            assert torch.isfinite(param.grad).all(), f"{name}.{param_name}"
    assert float(audio.head[0].weight.grad.abs().sum()) > 0
    assert float(visual.head[0].weight.grad.abs().sum()) > 0
