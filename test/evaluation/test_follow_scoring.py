"""Scores of a follow run from its recorded heading, tracks and first committed turn."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.conventions import front_back_mirror, wrap_angle
from slfm_ros.evaluation.follow_scoring import FollowRun, TrackReportSample, plot_run, score_run


def _run(source_deg: float, turn_at: float, turn_s: float, direction: int = 1) -> FollowRun:
    """The robot stands still, then turns to the source in ``turn_s`` (the long way round with
    ``direction`` against the short one); resolved tracks report the truth every 0.1 s."""
    source = math.radians(source_deg)
    short = float(wrap_angle(source))
    total = short if direction == 1 else short - math.copysign(2 * math.pi, short)
    run = FollowRun(source_bearing=source)
    for t in np.arange(0.0, 12.0, 0.02):
        a = min(max((t - turn_at) / turn_s, 0.0), 1.0)
        run.heading_t.append(float(t))
        run.heading.append(float(wrap_angle(a * total)))
    for t in np.arange(1.0, 12.0, 0.1):
        body = float(wrap_angle(source - run.heading_at(float(t))))
        run.tracks.append(TrackReportSample(float(t), "resolved", body, source))
    run.commit_t = turn_at
    run.commit_direction = int(math.copysign(1, total))
    return run


def test_a_good_run_passes() -> None:
    scores = score_run(_run(150.0, 2.0, 2.0))
    assert scores["time_to_face_s"] == pytest.approx(2.0 + 2.0 * (140 / 150), abs=0.03)
    assert scores["final_heading_error_deg"] == pytest.approx(0.0, abs=1e-6)
    assert scores["first_turn_correct"] and scores["front_back_correct"] and scores["passed"]


def test_the_long_way_round_is_a_wrong_first_turn() -> None:
    scores = score_run(_run(-120.0, 1.0, 3.0, direction=-1))
    assert scores["first_turn_correct"] is False and scores["passed"] is False
    assert scores["time_to_face_s"] is not None and scores["time_to_face_s"] < 8.0


def test_a_small_correction_either_way_is_not_a_wrong_turn() -> None:
    run = _run(-30.0, 1.0, 1.0)
    run.commit_t, run.commit_direction = 5.0, 1  # facing it already: a nudge to the left
    assert score_run(run)["first_turn_correct"] is True
    run.commit_t = None  # no committed turn at all, yet faced
    assert score_run(run)["first_turn_correct"] is True
    run.probe_direction = -1
    assert score_run(run)["first_probe_correct"] is True


def test_too_slow_or_never_facing_fails() -> None:
    assert score_run(_run(60.0, 7.0, 3.0))["passed"] is False  # faced at about 9.8 s
    never = _run(60.0, 1.0, 1.0)
    never.heading[-1] = 0.0  # turned away at the very end
    assert score_run(never)["time_to_face_s"] is None


def test_a_report_on_the_mirror_side_breaks_front_back() -> None:
    run = _run(150.0, 2.0, 2.0)
    s = run.tracks[0]  # the robot still faces 0: truth 150, mirror 30
    run.tracks[0] = TrackReportSample(s.t, s.state, float(front_back_mirror(s.body_bearing)), 0.5)
    scores = score_run(run)
    assert scores["front_back_correct"] is False and scores["resolved_reports_wrong"] == 1
    # Next to the ear axis front and back coincide: such a report is not held against it.
    run = _run(92.0, 2.0, 2.0)
    s = run.tracks[0]
    run.tracks[0] = TrackReportSample(s.t, s.state, math.radians(89.0), 0.0)
    assert score_run(run)["front_back_correct"] is True
    # Never decided at all: not correct.
    run = _run(30.0, 2.0, 1.0)
    run.tracks = [TrackReportSample(t.t, "ambiguous", t.body_bearing, 0.0) for t in run.tracks]
    assert score_run(run)["front_back_correct"] is False


def test_plot_is_written(tmp_path: Path) -> None:
    run = _run(-30.0, 2.0, 1.0)
    path = plot_run(run, score_run(run), tmp_path / "follow.png", "test")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
