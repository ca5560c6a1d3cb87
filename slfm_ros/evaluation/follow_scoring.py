"""Scores of a closed-loop follow run, and its plot.

A run is the robot's heading over time (from odometry), the talker's true world bearing, what
the tracker reported (state and bearings of the primary track per window) and the first turn
the follower committed to. Times are seconds from the start of the simulation.

- ``time_to_face_s``: when the heading error last came within ``tolerance`` and stayed there
  until the end of the run (None when it never did, or left it again at the end).
- ``final_heading_error_deg``: |error| at the last heading sample.
- ``first_turn_correct``: the first committed turn (the first on a resolved track) went the
  short way to the true bearing (the sign of the true error at that moment), or was a
  correction of less than ``tolerance`` either way; without a committed turn, True only when
  the robot faced the source anyway (a probe turn got it there).
- ``front_back_correct``: the tracker decided front/back at least once and every resolved
  report was nearer the true direction than its front/back mirror (reports of a source within
  ``AXIS_MARGIN_DEG`` of the ear axis, where the two coincide, are not counted).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from slfm_ros.core.conventions import front_back_mirror, wrap_angle

FACE_TOLERANCE_DEG = 10.0
# The checks of a passing run (the figures the follow demo is held to).
MAX_TIME_TO_FACE_S = 8.0
# Reports of a source within this of the ear axis (+-90 deg) are not scored for front/back.
AXIS_MARGIN_DEG = 10.0


@dataclass(frozen=True)
class TrackReportSample:
    """The primary track at time t: state and bearings (radians) in body and world frame."""

    t: float
    state: str
    body_bearing: float
    world_bearing: float


@dataclass
class FollowRun:
    """What was recorded during one run (see module doc)."""

    source_bearing: float
    heading_t: list[float] = field(default_factory=list)
    heading: list[float] = field(default_factory=list)
    tracks: list[TrackReportSample] = field(default_factory=list)
    commit_t: float | None = None
    commit_direction: int = 0
    probe_direction: int = 0
    # Simulated time the robot skipped because rendering fell behind (NaN = not reported).
    sim_skipped_s: float = math.nan

    def heading_at(self, t: float) -> float:
        """Heading (radians, unwrapped) at ``t``, interpolated."""
        unwrapped = np.unwrap(np.asarray(self.heading, dtype=np.float64))
        return float(np.interp(t, self.heading_t, unwrapped))

    def errors(self) -> np.ndarray:
        """Heading error (radians, wrapped) at each heading sample."""
        return np.asarray(wrap_angle(self.source_bearing - np.asarray(self.heading)))


def score_run(run: FollowRun, tolerance_deg: float = FACE_TOLERANCE_DEG) -> dict[str, Any]:
    """The scores of ``run`` (module doc) plus what they came from."""
    if not run.heading_t:
        raise ValueError("the run recorded no heading (no odometry arrived)")
    errors = np.abs(run.errors())
    tol = math.radians(tolerance_deg)
    t = np.asarray(run.heading_t)
    outside = np.flatnonzero(errors > tol)
    if outside.size == 0:
        time_to_face: float | None = float(t[0])
    elif outside[-1] == errors.size - 1:
        time_to_face = None
    else:
        time_to_face = float(t[outside[-1] + 1])

    if run.commit_t is not None and run.commit_direction != 0:
        true_error = float(wrap_angle(run.source_bearing - run.heading_at(run.commit_t)))
        first_turn_correct = (
            run.commit_direction == (1 if true_error > 0 else -1) or abs(true_error) <= tol
        )
    else:
        # No turn was committed: right only if none was needed (a probe already faced it).
        first_turn_correct = time_to_face is not None
    first_probe_correct = None
    if run.probe_direction != 0:
        start_error = float(wrap_angle(run.source_bearing - run.heading[0]))
        first_probe_correct = run.probe_direction == (1 if start_error > 0 else -1)

    resolved = [s for s in run.tracks if s.state == "resolved"]
    decided_t = resolved[0].t if resolved else None
    wrong = 0
    for s in resolved:
        truth = float(wrap_angle(run.source_bearing - run.heading_at(s.t)))
        mirror = float(front_back_mirror(truth))
        if abs(float(wrap_angle(truth - mirror))) < 2 * math.radians(AXIS_MARGIN_DEG):
            continue  # next to the ear axis front and back are the same direction
        near_truth = abs(float(wrap_angle(s.body_bearing - truth)))
        near_mirror = abs(float(wrap_angle(s.body_bearing - mirror)))
        wrong += near_mirror < near_truth
    front_back_correct = bool(resolved) and wrong == 0
    passed = (
        time_to_face is not None
        and time_to_face <= MAX_TIME_TO_FACE_S
        and first_turn_correct
        and front_back_correct
    )
    return {
        "time_to_face_s": None if time_to_face is None else round(time_to_face, 3),
        "final_heading_error_deg": round(math.degrees(float(errors[-1])), 2),
        "first_turn_correct": first_turn_correct,
        "front_back_correct": front_back_correct,
        "front_back_decided_s": None if decided_t is None else round(decided_t, 3),
        "resolved_reports_wrong": wrong,
        "first_commit_s": None if run.commit_t is None else round(run.commit_t, 3),
        "first_commit_direction": {1: "left", -1: "right", 0: None}[run.commit_direction],
        "first_probe_direction": {1: "left", -1: "right", 0: None}[run.probe_direction],
        "first_probe_correct": first_probe_correct,
        "source_azimuth_deg": round(math.degrees(run.source_bearing), 2),
        "run_s": round(float(t[-1]), 2),
        "sim_skipped_s": None if math.isnan(run.sim_skipped_s) else run.sim_skipped_s,
        "tolerance_deg": tolerance_deg,
        "passed": passed,
    }


def plot_run(run: FollowRun, scores: dict[str, Any], path: str | Path, title: str) -> Path:
    """PNG of the heading and the source bearing over time, with the tracker's bearings."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = Path(path)
    heading = np.degrees(np.unwrap(np.asarray(run.heading)))
    source = math.degrees(run.source_bearing)
    # Draw the source on the side of the turn so both lines meet where the robot faces it.
    source += 360.0 * round((heading[-1] - source) / 360.0)
    fig, ax = plt.subplots(figsize=(8, 4.2))
    tol = scores["tolerance_deg"]
    ax.axhspan(source - tol, source + tol, color="tab:green", alpha=0.12, label=f"±{tol:g}°")
    ax.axhline(source, color="tab:green", lw=1.5, label="talker bearing (truth)")
    ax.plot(run.heading_t, heading, color="black", lw=1.8, label="robot heading (odom)")
    styles = {
        "resolved": ("tab:blue", "track, resolved"),
        "ambiguous": ("tab:orange", "track, front/back undecided"),
    }
    for state, (colour, label) in styles.items():
        pts = [s for s in run.tracks if s.state == state]
        if pts:
            ts = [s.t for s in pts]
            world = np.degrees([run.heading_at(s.t) + s.body_bearing for s in pts])
            world += 360.0 * np.round((source - world) / 360.0)
            ax.scatter(ts, world, s=6, color=colour, label=label)
    if scores["time_to_face_s"] is not None:
        ax.axvline(scores["time_to_face_s"], color="tab:green", ls="--", lw=1)
    if run.commit_t is not None:
        ax.axvline(run.commit_t, color="tab:red", ls=":", lw=1, label="first committed turn")
    ax.set_xlabel("time since the talker started (s)")
    ax.set_ylabel("degrees (world frame)")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target
