"""Stage building blocks: pair predictions share one trunk pass per image."""

from __future__ import annotations

import torch

from slfm_ros.core.models.config import load_model_config
from slfm_ros.core.models.visual_pose import VisualPoseNet
from slfm_training.stages.slfm import pair_predictions


def test_pair_predictions_equal_the_network_on_each_pair() -> None:
    cfg = load_model_config(
        {"preset": "small", "visual": {"image_height": 48, "image_width": 64, "width_mult": 0.25}}
    ).visual
    torch.manual_seed(0)
    net = VisualPoseNet(cfg).eval()
    images = torch.randn(2, 3, 3, 48, 64)
    calls = []
    net.trunk.register_forward_hook(lambda module, args, out: calls.append(args[0].shape[0]))
    with torch.no_grad():
        theta, reverse = pair_predictions(net, images, train_encoder=False)
        assert calls == [6]  # 2 samples x 3 views, each image once
        first = images[:, :1].expand(-1, 2, -1, -1, -1).flatten(0, 1)
        other = images[:, 1:].flatten(0, 1)
        torch.testing.assert_close(theta, net(first, other), rtol=0, atol=1e-6)
        torch.testing.assert_close(reverse, net(other, first), rtol=0, atol=1e-6)
