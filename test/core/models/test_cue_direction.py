"""Compact audio network: bin geometry, decoding, input layout."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.azimuth_bins import (
    CueNetConfig,
    decode_azimuth,
    front_back_bins,
    mirror_bins,
)
from slfm_ros.core.models.cue_direction import CueDirectionNet

CFG = CueNetConfig(input_dim=10, hidden=(16,), n_bins=120)


def peaked(angle: float, width_deg: float = 3.0) -> np.ndarray:
    c = CFG.bin_centers()
    d = np.angle(np.exp(1j * (c - angle)))
    p = np.exp(-0.5 * (d / math.radians(width_deg)) ** 2)
    return p / p.sum()


def test_mirror_maps_are_the_geometric_mirrors() -> None:
    c = CFG.bin_centers()
    np.testing.assert_allclose(c[mirror_bins(CFG.n_bins)], -c, atol=1e-12)
    fb = c[front_back_bins(CFG.n_bins)]
    np.testing.assert_allclose(np.cos(fb), -np.cos(c), atol=1e-12)
    np.testing.assert_allclose(np.sin(fb), np.sin(c), atol=1e-12)


@pytest.mark.parametrize("deg", [-87.0, -31.3, 0.4, 12.0, 64.9])
def test_decoding_refines_below_the_bin_width(deg: float) -> None:
    angle, mass = decode_azimuth(peaked(math.radians(deg)), CFG)
    assert math.degrees(angle) == pytest.approx(deg, abs=0.3)
    assert mass > 0.8


def test_folding_merges_front_and_back_modes() -> None:
    # Equal mass at 40 deg and its mirror 140 deg: one folded answer with all the mass.
    p = 0.5 * peaked(math.radians(40.0)) + 0.5 * peaked(math.radians(140.0))
    angle, mass = decode_azimuth(p, CFG, fold=True)
    assert math.degrees(angle) == pytest.approx(40.0, abs=0.3)
    assert mass > 0.8
    # Unfolded, each mode alone carries only half.
    _, half = decode_azimuth(p, CFG, fold=False)
    assert half == pytest.approx(0.5 * mass, rel=0.1)
    # A source behind folds to the front mirror.
    behind, _ = decode_azimuth(peaked(math.radians(-150.0)), CFG, fold=True)
    assert math.degrees(behind) == pytest.approx(-30.0, abs=0.3)


def test_a_flat_distribution_has_low_confidence() -> None:
    _, mass = decode_azimuth(np.full(CFG.n_bins, 1.0 / CFG.n_bins), CFG, fold=True)
    assert mass < 0.1


def test_network_input_is_cues_then_aperture() -> None:
    torch.manual_seed(0)
    net = CueDirectionNet(CFG).eval()
    x = torch.randn(4, net.feature_dim)
    out = net(x)
    assert out.shape == (4, CFG.n_bins)
    # The aperture columns bypass the normalisation: changing the mean moves only the cues.
    net.input_mean.fill_(100.0)
    y = x.clone()
    y[:, : CFG.input_dim] += 100.0
    torch.testing.assert_close(net(y), out)


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ConfigError):
        CueNetConfig(n_bins=4)
    with pytest.raises(ConfigError, match="unknown"):
        CueNetConfig.from_dict({"layers": [3]})
    assert CueNetConfig.from_dict(CFG.to_dict()) == CFG
