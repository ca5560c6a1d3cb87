"""Dense cylindrical correlation yaw on views cropped from procedural panoramas."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from slfm_ros.core.conventions import angular_error
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.cylinder_yaw import CylinderNccYaw, masked_ncc, refine_peak
from slfm_ros.core.estimators.registry import make_visual_estimator
from slfm_ros.core.geometry.panorama import crop_perspective
from slfm_ros.core.sim.panoramas import ProceduralPanoramas

PITCH = math.radians(-22.5)
HFOV = math.radians(60)


@pytest.fixture(scope="module")
def pairs() -> list[tuple[np.ndarray, np.ndarray, float]]:
    """16 view pairs of box and irregular worlds, |theta| in [10, 55] deg."""
    cv2.setNumThreads(1)
    source = ProceduralPanoramas(width=1024, seed=21, irregular_probability=0.5)
    rng = np.random.default_rng(0)
    out = []
    for key in range(4):
        pano = source.panorama(key, "test")
        for _ in range(4):
            yaw_0 = rng.uniform(-math.pi, math.pi)
            theta = math.radians(rng.uniform(10, 55)) * rng.choice([-1.0, 1.0])
            out.append(
                (
                    crop_perspective(pano, yaw_0, PITCH, HFOV),
                    crop_perspective(pano, yaw_0 + theta, PITCH, HFOV),
                    theta,
                )
            )
    return out


def test_yaw_of_overlapping_views(pairs) -> None:
    estimator = CylinderNccYaw()
    errors = []
    for view_0, view_1, theta in pairs:
        estimate = estimator.estimate(view_0, view_1)
        assert estimate.valid, estimate.reason
        assert 0.0 <= estimate.confidence <= 1.0
        errors.append(math.degrees(angular_error(estimate.angle, theta)))
    assert np.median(errors) < 0.2  # measured about 0.03 deg
    assert np.mean(np.array(errors) < 1.0) >= 0.9


def test_swapped_views_negate_the_turn(pairs) -> None:
    estimator = CylinderNccYaw()
    view_0, view_1, _ = pairs[0]
    forward = estimator.match(view_0, view_1)
    backward = estimator.match(view_1, view_0)
    assert backward.estimate.angle == pytest.approx(-forward.estimate.angle, abs=1e-6)
    np.testing.assert_allclose(backward.ncc, forward.ncc[::-1], atol=1e-5)


def test_views_without_structure_are_declined() -> None:
    flat = np.full((240, 320, 3), 128, np.uint8)
    estimate = CylinderNccYaw().estimate(flat, flat)
    assert not estimate.valid and "no shared view" in estimate.reason
    assert math.isnan(estimate.angle)


def test_masked_ncc_matches_a_direct_computation() -> None:
    rng = np.random.default_rng(3)
    mask = np.ones((6, 20), bool)
    mask[:, :3] = False
    mask[0, :] = False
    f0 = rng.standard_normal((6, 20)).astype(np.float32)
    f1 = rng.standard_normal((6, 20)).astype(np.float32)
    ncc, overlap = masked_ncc(f0, f1, mask, max_shift=8, min_overlap_fraction=0.0)
    for k in (-5, 0, 3, 8):
        cells = [
            (r, j)
            for r in range(6)
            for j in range(20)
            if 0 <= j - k < 20 and mask[r, j] and mask[r, j - k]
        ]
        a = np.array([f0[r, j - k] for r, j in cells])
        b = np.array([f1[r, j] for r, j in cells])
        assert ncc[k + 8] == pytest.approx(np.corrcoef(a, b)[0, 1], abs=1e-5)
        assert overlap[k + 8] == pytest.approx(len(cells) / mask.sum(), abs=1e-6)


def test_peak_refinement_finds_a_parabola_vertex() -> None:
    x = np.arange(7, dtype=float)
    curve = -((x - 3.3) ** 2)
    assert refine_peak(curve, 3) == pytest.approx(3.3)
    assert refine_peak(curve, 0) == 0.0


def test_registry_and_bad_input() -> None:
    estimator = make_visual_estimator("cylinder", step_deg=1.0, pitch=PITCH)
    assert isinstance(estimator, CylinderNccYaw) and estimator.max_shift == 90
    with pytest.raises(ConfigError, match="accepted are"):
        make_visual_estimator("cylinder", detector="orb")
    with pytest.raises(ConfigError, match="step_deg"):
        CylinderNccYaw(step_deg=0.0)
    with pytest.raises(InputFormatError, match="uint8"):
        estimator.estimate(np.zeros((240, 320, 3), np.float32), np.zeros((240, 320, 3), np.uint8))
