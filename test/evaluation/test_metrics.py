"""Protocol scores: front folding, wrapped errors, left/right, declined estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from slfm_ros.evaluation.metrics import (
    azimuth_errors,
    left_right_correct,
    score_azimuth,
    score_yaw,
    yaw_errors,
)

D = math.radians


def test_azimuth_errors_fold_front_back_mirrors_onto_the_truth() -> None:
    # 150 deg is the mirror of 30 deg; -170 deg the mirror of -10 deg.
    errors = azimuth_errors([D(150), D(-170), D(40), D(-100)], [D(30), D(-10), D(30), D(-70)])
    np.testing.assert_allclose(np.degrees(errors), [0.0, 0.0, 10.0, 10.0], atol=1e-9)


def test_yaw_errors_wrap_but_do_not_fold() -> None:
    errors = yaw_errors([D(179), D(150), D(-5)], [D(-179), D(30), D(5)])
    np.testing.assert_allclose(np.degrees(errors), [2.0, 120.0, 10.0], atol=1e-9)


def test_left_right_uses_the_sign_of_sin_and_skips_the_median_plane() -> None:
    correct, scored = left_right_correct([D(170), D(-20), D(10), D(5)], [D(30), D(20), 0.0, D(180)])
    assert scored.tolist() == [True, True, False, False]
    assert correct.tolist() == [True, False, False, False]


def test_score_azimuth_counts_declined_estimates_as_straight_ahead_and_wrong_side() -> None:
    report = score_azimuth(
        [D(25), math.nan, D(-60), D(-40)],
        [D(30), D(40), D(-50), D(30)],
        [True, False, True, True],
    )
    assert report.n == 4
    assert report.azimuth_mae_deg == pytest.approx((5 + 40 + 10 + 70) / 4)
    assert report.azimuth_median_deg == pytest.approx(25.0)
    assert report.lr_accuracy == pytest.approx(2 / 4)
    assert report.lr_n == 4
    assert report.azimuth_valid_fraction == pytest.approx(0.75)
    assert report.azimuth_mae_valid_deg == pytest.approx((5 + 10 + 70) / 3)
    assert set(report.as_dict()) >= {"n", "azimuth_mae_deg", "azimuth_median_deg", "lr_accuracy"}


def test_score_yaw_counts_declined_pairs_as_no_turn() -> None:
    report = score_yaw([D(20), D(0), math.nan], [D(20.5), D(-30), D(60)], [True, True, False])
    assert report.yaw_mae_deg == pytest.approx((0.5 + 30 + 60) / 3)
    assert report.yaw_median_deg == pytest.approx(30.0)
    assert report.yaw_valid_fraction == pytest.approx(2 / 3)
    assert report.yaw_median_valid_deg == pytest.approx(15.25)
    # The 60 deg turn is scored apart: at a 60 deg field of view its views share nothing.
    assert report.yaw_n_large_turns == 1 and report.yaw_mae_large_turns_deg == pytest.approx(60)
    assert report.yaw_mae_small_turns_deg == pytest.approx((0.5 + 30) / 2)
    assert report.yaw_wrong_sign_large_turns == 0.0  # declined: not the other way round


def test_large_turns_estimated_the_other_way_round_are_counted() -> None:
    true = [D(80), D(-70), D(65), D(-85), D(30)]
    pred = [D(78), D(72), math.nan, D(-84), D(-31)]
    report = score_yaw(pred, true)
    assert report.yaw_n_large_turns == 4
    assert report.yaw_wrong_sign_large_turns == pytest.approx(1 / 4)
    assert math.isnan(score_yaw([D(10)], [D(20)]).yaw_wrong_sign_large_turns)


def test_mismatched_lengths_are_rejected() -> None:
    with pytest.raises(ValueError, match="one value per case"):
        score_yaw([0.0, 1.0], [0.0])
