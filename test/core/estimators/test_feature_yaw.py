"""Feature-matching yaw on views cropped from procedural panoramas with known turns."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from slfm_ros.core.conventions import angular_error
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.feature_yaw import FeatureMatchingYaw
from slfm_ros.core.geometry.camera import intrinsics_from_fov
from slfm_ros.core.geometry.panorama import crop_perspective
from slfm_ros.core.sim.panoramas import ProceduralPanoramas

PITCH = math.radians(-22.5)
HFOV = math.radians(60)


@pytest.fixture(scope="module")
def panoramas() -> list[np.ndarray]:
    cv2.setNumThreads(1)
    source = ProceduralPanoramas(width=2048, seed=21, outdoor_probability=0.2)
    return [source.panorama(k, "test") for k in range(6)]


@pytest.fixture(scope="module")
def pairs(panoramas: list[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """24 view pairs, |theta| in [10, 60] deg, inside the 60 deg field of view."""
    rng = np.random.default_rng(0)
    out = []
    for pano in panoramas:
        for _ in range(4):
            yaw_0 = rng.uniform(-math.pi, math.pi)
            theta = math.radians(rng.uniform(10, 60)) * rng.choice([-1.0, 1.0])
            view_0 = crop_perspective(pano, yaw_0, PITCH, HFOV)
            view_1 = crop_perspective(pano, yaw_0 + theta, PITCH, HFOV)
            out.append((view_0, view_1, theta))
    return out


@pytest.mark.parametrize("detector", ["orb", "sift"])
def test_yaw_error_on_procedural_pairs(detector: str, pairs) -> None:
    estimator = FeatureMatchingYaw(detector=detector)
    errors, valid = [], []
    for view_0, view_1, theta in pairs:
        estimate = estimator.estimate(view_0, view_1)
        valid.append(estimate.valid)
        if estimate.valid:
            errors.append(math.degrees(angular_error(estimate.angle, theta)))
            assert 0.0 < estimate.confidence <= 1.0
        else:
            assert math.isnan(estimate.angle) and estimate.reason
    assert np.mean(valid) >= 0.5
    assert np.mean(errors) < 1.0  # measured about 0.02 deg
    assert np.max(errors) < 5.0


@pytest.mark.parametrize("model", ["yaw", "rotation", "homography"])
def test_models_recover_a_left_and_a_right_turn(model: str, panoramas) -> None:
    estimator = FeatureMatchingYaw(detector="orb", model=model)
    pano = panoramas[1]
    for theta_deg in (25.0, -25.0):
        view_0 = crop_perspective(pano, 0.3, PITCH, HFOV)
        view_1 = crop_perspective(pano, 0.3 + math.radians(theta_deg), PITCH, HFOV)
        estimate = estimator.estimate(view_0, view_1)
        assert estimate.valid, estimate.reason
        assert math.degrees(estimate.angle) == pytest.approx(theta_deg, abs=1.0)


def test_images_of_different_sizes_and_given_intrinsics(panoramas) -> None:
    pano = panoramas[2]
    theta = math.radians(-20)
    small = crop_perspective(pano, 1.0, PITCH, HFOV)
    large = crop_perspective(pano, 1.0 + theta, PITCH, HFOV, width=480, height=360)
    estimate = FeatureMatchingYaw(detector="sift").estimate(small, large)
    assert estimate.valid, estimate.reason
    assert math.degrees(estimate.angle) == pytest.approx(-20.0, abs=0.5)
    view_1 = crop_perspective(pano, 1.0 + theta, PITCH, HFOV)
    with_k = FeatureMatchingYaw(K=intrinsics_from_fov(320, 240, HFOV)).estimate(small, view_1)
    assert math.degrees(with_k.angle) == pytest.approx(-20.0, abs=0.5)


def test_wrong_pitch_biases_the_one_parameter_model(panoramas) -> None:
    pano = panoramas[3]
    view_0 = crop_perspective(pano, -0.5, PITCH, HFOV)
    view_1 = crop_perspective(pano, -0.5 + math.radians(30), PITCH, HFOV)
    right = FeatureMatchingYaw(pitch=PITCH).estimate(view_0, view_1)
    level = FeatureMatchingYaw(pitch=0.0).estimate(view_0, view_1)
    assert math.degrees(right.angle) == pytest.approx(30.0, abs=0.3)
    assert not level.valid or abs(math.degrees(level.angle) - 30.0) > 0.3


def test_featureless_images_give_an_invalid_estimate() -> None:
    blank = np.full((240, 320, 3), 128, np.uint8)
    estimate = FeatureMatchingYaw().estimate(blank, blank)
    assert not estimate.valid and "keypoints" in estimate.reason
    assert math.isnan(estimate.angle) and estimate.confidence == 0.0


def test_unrelated_images_give_an_invalid_estimate(panoramas) -> None:
    a = crop_perspective(panoramas[0], 0.0, PITCH, HFOV)
    b = crop_perspective(panoramas[4], 0.0, PITCH, HFOV)
    assert not FeatureMatchingYaw().estimate(a, b).valid


def test_configuration_and_input_errors() -> None:
    with pytest.raises(ConfigError):
        FeatureMatchingYaw(detector="surf")
    with pytest.raises(ConfigError):
        FeatureMatchingYaw(model="affine")
    with pytest.raises(ConfigError):
        FeatureMatchingYaw(ratio=1.5)
    img = np.zeros((240, 320, 3), np.uint8)
    with pytest.raises(InputFormatError):
        FeatureMatchingYaw().estimate(img.astype(np.float32), img)  # type: ignore[arg-type]
