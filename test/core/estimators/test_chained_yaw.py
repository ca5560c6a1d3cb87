"""Large turns measured by chaining small ones along a sweep of frames."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest

from slfm_ros.core.conventions import angular_error
from slfm_ros.core.estimators.base import AngleEstimate, VisualEstimator
from slfm_ros.core.estimators.chained_yaw import chained_turn
from slfm_ros.core.estimators.cylinder_yaw import CylinderNccYaw
from slfm_ros.core.geometry.panorama import crop_perspective
from slfm_ros.core.sim.panoramas import ProceduralPanoramas

PITCH = math.radians(-22.5)
HFOV = math.radians(60)


@pytest.fixture(scope="module")
def sweeps() -> list[tuple[list[np.ndarray], float]]:
    """Sweeps of 5 frames over turns of 70-90 deg, whose end views share no view."""
    cv2.setNumThreads(1)
    source = ProceduralPanoramas(width=1024, seed=5, irregular_probability=0.5)
    rng = np.random.default_rng(3)
    out = []
    for key in range(6):
        pano = source.panorama(key, "test")
        yaw_0 = rng.uniform(-math.pi, math.pi)
        theta = math.radians(rng.uniform(70, 90)) * rng.choice([-1.0, 1.0])
        yaws = yaw_0 + theta * np.array([0.0, 0.22, 0.5, 0.77, 1.0])
        out.append(([crop_perspective(pano, y, PITCH, HFOV) for y in yaws], theta))
    return out


def test_a_sweep_measures_turns_that_the_end_views_alone_cannot(sweeps) -> None:
    estimator = CylinderNccYaw()
    chained, direct = [], []
    for frames, theta in sweeps:
        chain = chained_turn(estimator, frames, check_tolerance=math.radians(2.0))
        assert chain.valid, chain.reason
        assert len(chain.steps) == len(frames) - 1
        chained.append(math.degrees(angular_error(chain.angle, theta)))
        alone = estimator.estimate(frames[0], frames[-1])
        direct.append(math.degrees(angular_error(alone.angle, theta)) if alone.valid else 180.0)
    assert np.median(chained) < 0.5 and max(chained) < 2.0
    assert np.median(direct) > 20.0  # no shared view: the pair alone says nothing


def test_a_declined_step_declines_the_chain_and_says_which(sweeps) -> None:
    frames, _ = sweeps[0]
    blank = np.full_like(frames[2], 128)  # no texture: nothing to correlate
    chain = chained_turn(CylinderNccYaw(), [frames[0], frames[1], blank, frames[3]])
    assert not chain.valid and math.isnan(chain.angle)
    assert "step 2 of 3 declined" in chain.reason


class _YawOfFrame(VisualEstimator):
    """Reads each frame's yaw from its first pixel (degrees) and gets one step wrong: a
    matcher fooled by a repeated texture, which no estimator can decline by itself."""

    def __init__(self, wrong_step: tuple[int, int] | None, error_deg: float) -> None:
        self.wrong_step, self.error_deg = wrong_step, error_deg

    def estimate(self, image_0: np.ndarray, image_1: np.ndarray) -> AngleEstimate:
        a, b = float(image_0[0, 0, 0]), float(image_1[0, 0, 0])
        turn = b - a + (self.error_deg if (a, b) == self.wrong_step else 0.0)
        return AngleEstimate.from_confidence(math.radians(turn), 1.0)


def _frames(*yaws_deg: int) -> list[np.ndarray]:
    return [np.full((4, 4, 3), y, dtype=np.uint8) for y in yaws_deg]


def test_the_loop_check_rejects_a_wrong_step_that_was_not_declined() -> None:
    frames = _frames(0, 20, 40, 60, 80)
    tolerance = math.radians(2.0)
    right = chained_turn(_YawOfFrame(None, 0.0), frames, tolerance)
    assert right.valid and math.degrees(right.angle) == pytest.approx(80.0)
    fooled = _YawOfFrame((20, 40), 15.0)
    assert math.degrees(chained_turn(fooled, frames).angle) == pytest.approx(95.0)  # unchecked
    checked = chained_turn(fooled, frames, tolerance)
    assert not checked.valid and "loop check" in checked.reason
    # An even number of frames: the check still ends on the last frame.
    even = chained_turn(_YawOfFrame(None, 0.0), _frames(0, 30, 60, 90), tolerance)
    assert even.valid and math.degrees(even.angle) == pytest.approx(90.0)


def test_a_chain_needs_two_frames() -> None:
    with pytest.raises(ValueError, match="at least two frames"):
        chained_turn(CylinderNccYaw(), _frames(0))
