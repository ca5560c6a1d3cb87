"""Rotation protocol on panoramas: crop pairs, scoring of a real feature matcher."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.panorama import crop_perspective, match_resolution
from slfm_ros.core.sim.panoramas import PanoramaFolder
from slfm_ros.evaluation.estimators import build_visual_estimator
from slfm_ros.evaluation.rotation_eval import RotationProtocol, crop_pairs, evaluate_rotation


def test_pairs_follow_the_protocol_and_are_reproducible(panorama_dir: Path) -> None:
    folder = PanoramaFolder(panorama_dir)
    protocol = RotationProtocol(pairs_per_image=12, seed=4, width=96, height=72)
    pano = folder.load(0)
    pairs = list(crop_pairs(pano, protocol, 0))
    again = list(crop_pairs(pano, protocol, 0))
    other = list(crop_pairs(pano, protocol, 1))
    assert len(pairs) == 12
    thetas = np.array([p.theta for p in pairs])
    assert np.all((np.abs(thetas) >= math.radians(10)) & (np.abs(thetas) < math.radians(90)))
    assert (thetas > 0).any() and (thetas < 0).any()
    assert [p.theta for p in again] == thetas.tolist()
    assert [p.theta for p in other] != thetas.tolist()
    # Image 1 is the crop at yaw_0 + theta (the turn's sign follows the conventions) of the
    # panorama brought to the crops' resolution.
    p = pairs[0]
    expected = crop_perspective(
        match_resolution(pano, math.radians(60), 96),
        p.yaw_0 + p.theta,
        math.radians(-22.5),
        math.radians(60),
        96,
        72,
    )
    assert np.mean(np.abs(expected.astype(int) - p.image_1.astype(int))) < 1.0
    assert p.image_0.shape == (72, 96, 3)


def test_sift_recovers_overlapping_turns(panorama_dir: Path) -> None:
    protocol = RotationProtocol(pairs_per_image=6, seed=0, max_turn_deg=40.0)
    result = evaluate_rotation(
        PanoramaFolder(panorama_dir), build_visual_estimator("classic", "sift"), protocol
    )
    assert result.report.n == 12 == len(result.records)
    assert result.report.yaw_valid_fraction >= 0.5
    assert result.report.yaw_median_valid_deg < 1.0
    assert {r.source for r in result.records} == {"room0.png", "room1.jpg"}


def test_protocol_rejects_bad_settings() -> None:
    with pytest.raises(ConfigError, match="--fov"):
        RotationProtocol(fov_deg=200.0)
    with pytest.raises(ConfigError, match="--pairs-per-image"):
        RotationProtocol(pairs_per_image=0)
