"""Scores of a replay (offline or live), computed the same way for both.

Windows
    The expected windows are the hop-grid points E (multiples of hop_s) whose whole audio
    window [E - window_s, E) lies inside the recorded audio. ``coverage`` is the share of them
    with a published sound direction; ``output_rate_hz`` is published directions per second of
    recording. Camera-yaw outputs are counted the same way against the image span.
Sound azimuth (with ground truth)
    Each published direction (stamp E) is compared with the true azimuth at the centre of its
    window, E - window_s / 2 (what the window's audio heard), with the metrics of
    ``slfm_ros.evaluation.metrics``: front-folded MAE / median and left/right accuracy; the raw
    (unfolded) errors are reported too. A tracked direction (``sound_direction_output``
    tracked, published while the primary track is resolved) is the direction at E itself, so
    it is compared with the truth at E. Only published directions are scored: windows without
    an estimate count against ``coverage``, not the error.
Front/back tracking (with ground truth, from ~/sound_tracks)
    first turn: the first moment the robot's true yaw rate exceeds ``TURN_RATE_RAD_S``.
    decided: the first window whose primary track is resolved; ``front_back_decided_after_turn_s``
    is its time after the first turn. From then on, ``azimuth_unfolded_mae_deg`` is the raw
    (full-circle) error of ~/sound_direction and ``source_bearing_mae_deg`` that of
    ~/sound_source's world bearing against the true bearing (true azimuth + true yaw: the
    simulated odom frame). ``front_back_wrong_windows`` counts the windows in which a resolved
    track of the target (its folded bearing within ``TARGET_MATCH_RAD`` of the truth's) put
    it on the wrong side of the ear axis; windows with the truth within ``AXIS_MARGIN_RAD`` of
    the axis are not counted (there either side is nearly right).
Camera yaw (with ground truth)
    The node integrates yaw from its first image, so outputs are compared as turns since the
    first published yaw: (yaw_i - yaw_0) against (true_i - true_0), wrapped (``score_yaw``),
    which also measures drift. The yaw rate is compared with the true rate.
Latency (live)
    Receive time of a direction minus the wall-clock time at which its window end was played
    (record times map to wall time through the play start and --rate).
Without ground truth
    stability: median change of the folded azimuth between consecutive windows.
    audio/camera self-consistency: for a static source, the azimuth changes by minus the camera
    turn. Over pairs of directions ``CONSISTENCY_SPAN_S`` apart, the residual
    |d azimuth + d yaw| is small for a source in front; |d azimuth - d yaw| is small when the
    folded azimuth mirrors a source behind (so the smaller one says where the source is).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.bags.inputs import interp_angle
from slfm_ros.bags.replay_offline import Replay
from slfm_ros.core.conventions import angular_error, deg, fold_to_front, wrap_angle
from slfm_ros.evaluation.metrics import score_azimuth, score_yaw

_NS_PER_S = 1_000_000_000
CONSISTENCY_SPAN_S = 1.0
# Sampling of the ground-truth curves drawn in the plots.
CURVE_STEP_S = 0.05
# Camera turns smaller than this over a pair say nothing about front or back.
MIN_TURN_FOR_SIDE_RAD = math.radians(5.0)
# The robot starts its first turn when its true yaw rate first exceeds this.
TURN_RATE_RAD_S = math.radians(2.0)
# A track whose folded bearing is this close to the target's folded truth is the target's.
TARGET_MATCH_RAD = math.radians(20.0)
# Front/back is not scored while the truth is this close to the ear axis (+-90 deg).
AXIS_MARGIN_RAD = math.radians(10.0)

FloatArray = npt.NDArray[np.float64]


def _num(value: float | None) -> float | None:
    if value is None:
        return None
    v = float(value)
    return round(v, 4) if math.isfinite(v) else None


def _seconds(replay: Replay, name: str) -> float:
    value = replay.params[name]
    assert isinstance(value, int | float)
    return float(value)


def expected_windows(replay: Replay) -> list[int]:
    """Hop-grid window ends fully covered by the recorded audio (see module doc)."""
    span = replay.stats.audio_span
    if span is None:
        return []
    hop = int(round(_seconds(replay, "hop_s") * _NS_PER_S))
    window = int(round(_seconds(replay, "window_s") * _NS_PER_S))
    first = -(-(span[0] + window) // hop) * hop
    return list(range(first, span[1] + 1, hop))


def _tracked_stamps(replay: Replay) -> set[int]:
    """Stamps of the windows whose ~/sound_direction was the resolved track's bearing."""
    if replay.params.get("sound_direction_output", "tracked") != "tracked":
        return set()
    return {t.stamp_ns for t in replay.log.tracks if t.primary and t.state == "resolved"}


def _truth_times(replay: Replay, stamps: FloatArray) -> FloatArray:
    """When each direction's truth is taken: the window centre, or the stamp for tracked
    directions (see module doc)."""
    half = _seconds(replay, "window_s") * _NS_PER_S / 2
    tracked = _tracked_stamps(replay)
    is_tracked = np.array([int(s) in tracked for s in stamps], dtype=bool)
    return np.where(is_tracked, stamps, stamps - half)


def _azimuth_scores(replay: Replay, stamps: FloatArray, pred: FloatArray) -> dict[str, Any]:
    true = np.asarray(
        wrap_angle(interp_angle(_truth_times(replay, stamps), replay.stats.truth_direction)),
        dtype=np.float64,
    )
    folded = score_azimuth(pred, true)
    raw = np.atleast_1d(np.asarray(angular_error(pred, true), dtype=np.float64))
    return {
        "azimuth_mae_deg": _num(folded.azimuth_mae_deg),
        "azimuth_median_deg": _num(folded.azimuth_median_deg),
        "azimuth_mae_raw_deg": _num(float(deg(float(np.mean(raw))))),
        "azimuth_median_raw_deg": _num(float(deg(float(np.median(raw))))),
        "lr_accuracy": _num(folded.lr_accuracy),
        "truth_azimuth_deg": [round(float(deg(float(v))), 3) for v in true],
    }


def _yaw_scores(replay: Replay) -> dict[str, Any]:
    yaws = replay.log.yaws
    if len(yaws) < 2 or not replay.stats.truth_yaw:
        return {}
    stamps = np.array([y.stamp_ns for y in yaws], dtype=np.float64)
    pred = np.unwrap(np.array([y.yaw for y in yaws]))
    true = interp_angle(stamps, replay.stats.truth_yaw)
    scores = score_yaw(pred[1:] - pred[0], true[1:] - true[0])
    true_rate = np.interp(
        stamps,
        [t[0] for t in replay.stats.truth_yaw],
        [t[2] for t in replay.stats.truth_yaw],
    )
    rates = np.array([y.rate for y in yaws])
    return {
        "yaw_mae_deg": _num(scores.yaw_mae_deg),
        "yaw_median_deg": _num(scores.yaw_median_deg),
        "yaw_final_error_deg": _num(
            float(deg(float(angular_error(pred[-1] - pred[0], true[-1] - true[0]))))
        ),
        "yaw_rate_mae_deg_s": _num(float(deg(float(np.mean(np.abs(rates - true_rate)))))),
        "truth_yaw_deg": [round(float(deg(float(v - true[0]))), 3) for v in true],
    }


def _consistency(replay: Replay, stamps: FloatArray, pred: FloatArray) -> dict[str, Any]:
    """Audio/camera self-consistency and azimuth stability (see module doc)."""
    out: dict[str, Any] = {}
    folded = np.asarray(fold_to_front(pred), dtype=np.float64)
    if folded.size >= 2:
        hop = _seconds(replay, "hop_s") * _NS_PER_S
        consecutive = np.diff(stamps) <= 1.5 * hop
        steps = np.abs(np.asarray(wrap_angle(np.diff(folded)), dtype=np.float64))[consecutive]
        out["stability_deg"] = _num(float(deg(float(np.median(steps))))) if steps.size else None
    yaws = replay.log.yaws
    if folded.size < 2 or len(yaws) < 2:
        return out
    ys = np.array([y.stamp_ns for y in yaws], dtype=np.float64)
    yv = np.unwrap(np.array([y.yaw for y in yaws]))
    inside = (stamps >= ys[0]) & (stamps <= ys[-1])
    t, a = stamps[inside], folded[inside]
    if t.size < 2:
        return out
    # A direction describes its whole window (a tracked one its stamp), so compare it with the
    # camera when it was taken, as the ground-truth scores do.
    cam = np.interp(_truth_times(replay, stamps)[inside], ys, yv)
    j = np.searchsorted(t, t + CONSISTENCY_SPAN_S * _NS_PER_S)
    ok = j < t.size
    i, j = np.flatnonzero(ok), j[ok]
    if i.size == 0:
        return out
    d_az = np.asarray(wrap_angle(a[j] - a[i]), dtype=np.float64)
    d_yaw = cam[j] - cam[i]
    front = np.abs(np.asarray(wrap_angle(d_az + d_yaw), dtype=np.float64))
    back = np.abs(np.asarray(wrap_angle(d_az - d_yaw), dtype=np.float64))
    out["consistency_front_deg"] = _num(float(deg(float(np.median(front)))))
    out["consistency_back_deg"] = _num(float(deg(float(np.median(back)))))
    turning = np.abs(d_yaw) >= MIN_TURN_FOR_SIDE_RAD
    if np.any(turning):
        votes_front = int(np.sum(front[turning] < back[turning]))
        share = votes_front / int(np.sum(turning))
        out["source_side"] = "front" if share >= 0.5 else "back"
        out["source_side_agreement"] = _num(max(share, 1.0 - share))
    return out


def _first_turn_ns(replay: Replay, origin: int) -> int | None:
    for stamp, _, rate in replay.stats.truth_yaw:
        if stamp >= origin and abs(rate) >= TURN_RATE_RAD_S:
            return stamp
    return None


def _tracking_scores(replay: Replay, origin: int) -> dict[str, Any]:
    """Front/back decision, unfolded errors from it on, wrong decisions (see module doc)."""
    log, stats = replay.log, replay.stats
    out: dict[str, Any] = {
        "front_back_decided_at_s": None,
        "front_back_decided_after_turn_s": None,
        "first_turn_at_s": None,
        "azimuth_unfolded_mae_deg": None,
        "azimuth_unfolded_median_deg": None,
        "source_bearing_mae_deg": None,
        "front_back_ever_wrong": None,
        "front_back_wrong_windows": None,
        "track_windows": len({t.stamp_ns for t in log.tracks}),
    }
    primary = [t for t in log.tracks if t.primary]
    decided = next((t.stamp_ns for t in primary if t.state == "resolved"), None)
    if decided is not None:
        out["front_back_decided_at_s"] = _num((decided - origin) / _NS_PER_S)
        after = [t for t in primary if t.stamp_ns >= decided]
        out["resolved_share_after_decision"] = _num(
            sum(t.state == "resolved" for t in after) / len(after)
        )
        out["primary_front_probability_final"] = _num(primary[-1].front_probability)
    if not stats.truth_direction:
        return out
    turn = _first_turn_ns(replay, origin)
    if turn is not None:
        out["first_turn_at_s"] = _num((turn - origin) / _NS_PER_S)
        if decided is not None:
            out["front_back_decided_after_turn_s"] = _num((decided - turn) / _NS_PER_S)
    resolved = [t for t in log.tracks if t.state == "resolved"]
    wrong = 0
    if resolved:
        stamps = np.array([t.stamp_ns for t in resolved], dtype=np.float64)
        truth = np.asarray(wrap_angle(interp_angle(stamps, stats.truth_direction)))
        body = np.array([t.body_bearing for t in resolved])
        target = np.abs(np.asarray(fold_to_front(body)) - fold_to_front(truth)) <= TARGET_MATCH_RAD
        clear = np.abs(np.cos(truth)) >= math.sin(AXIS_MARGIN_RAD)
        wrong = int(np.sum(target & clear & (np.cos(body) * np.cos(truth) < 0)))
    out["front_back_wrong_windows"] = wrong
    out["front_back_ever_wrong"] = wrong > 0
    if decided is None:
        return out
    directions = [d for d in log.directions if d.stamp_ns >= decided]
    if directions:
        stamps = np.array([d.stamp_ns for d in directions], dtype=np.float64)
        pred = np.array([d.azimuth for d in directions])
        true = interp_angle(_truth_times(replay, stamps), stats.truth_direction)
        err = np.degrees(np.atleast_1d(np.asarray(angular_error(pred, true))))
        out["azimuth_unfolded_mae_deg"] = _num(float(np.mean(err)))
        out["azimuth_unfolded_median_deg"] = _num(float(np.median(err)))
    sources = [s for s in log.sources if s.stamp_ns >= decided]
    if sources and stats.truth_yaw:
        stamps = np.array([s.stamp_ns for s in sources], dtype=np.float64)
        true = interp_angle(stamps, stats.truth_direction) + interp_angle(stamps, stats.truth_yaw)
        pred = np.array([s.bearing for s in sources])
        err = np.degrees(np.atleast_1d(np.asarray(angular_error(pred, true))))
        out["source_bearing_mae_deg"] = _num(float(np.mean(err)))
    return out


def _latency(replay: Replay) -> dict[str, Any]:
    lat = []
    for d in replay.log.directions:
        wall = replay.wall_of(d.stamp_ns)
        if wall is not None and d.received_ns is not None:
            lat.append((d.received_ns - wall) / 1e6)
    if not lat:
        return {"latency_p50_ms": None, "latency_p99_ms": None}
    arr = np.array(lat)
    return {
        "latency_p50_ms": _num(float(np.percentile(arr, 50))),
        "latency_p99_ms": _num(float(np.percentile(arr, 99))),
    }


def _truth_curves(replay: Replay, grid: list[int], origin: int) -> dict[str, list[float]]:
    """Ground truth over the whole recording for plots: the azimuth a window ending at t
    should report (every ``CURVE_STEP_S``), the azimuth at t itself (what a tracked direction
    stamped t reports), and the camera yaw since the first yaw output."""
    out: dict[str, list[float]] = {}
    stats = replay.stats
    step = int(CURVE_STEP_S * _NS_PER_S)
    if stats.truth_direction and grid:
        ends = np.arange(grid[0], grid[-1] + 1, step, dtype=np.float64)
        window = _seconds(replay, "window_s") * _NS_PER_S
        curve = wrap_angle(interp_angle(ends - window / 2, stats.truth_direction))
        out["truth_curve_t_s"] = [round((e - origin) / _NS_PER_S, 4) for e in ends]
        out["truth_curve_azimuth_deg"] = [round(float(deg(float(v))), 3) for v in curve]
        now = wrap_angle(interp_angle(ends, stats.truth_direction))
        out["truth_curve_now_azimuth_deg"] = [round(float(deg(float(v))), 3) for v in now]
    yaws = replay.log.yaws
    if stats.truth_yaw and yaws:
        t0 = yaws[0].stamp_ns
        times = np.array([t[0] for t in stats.truth_yaw if t[0] >= t0], dtype=np.float64)
        if times.size:
            values = interp_angle(times, stats.truth_yaw) - interp_angle([t0], stats.truth_yaw)[0]
            out["truth_yaw_curve_t_s"] = [round((t - origin) / _NS_PER_S, 4) for t in times]
            out["truth_yaw_curve_deg"] = [round(float(deg(float(v))), 3) for v in values]
    return out


def score_replay(replay: Replay) -> dict[str, Any]:
    """Every score of ``replay`` as a flat JSON-ready dict (None where not applicable), plus
    per-output series under "series" for plots."""
    log, stats = replay.log, replay.stats
    grid = expected_windows(replay)
    grid_set = set(grid)
    directions = log.directions
    stamps = np.array([d.stamp_ns for d in directions], dtype=np.float64)
    pred = np.array([d.azimuth for d in directions], dtype=np.float64)
    span = stats.audio_span
    seconds = (span[1] - span[0]) / _NS_PER_S if span else 0.0
    in_grid = sum(1 for d in directions if d.stamp_ns in grid_set)
    img = stats.image_stamps
    img_seconds = (max(img) - min(img)) / _NS_PER_S if len(img) > 1 else 0.0
    scores: dict[str, Any] = {
        "azimuth_mae_deg": None,
        "azimuth_median_deg": None,
        "azimuth_mae_raw_deg": None,
        "azimuth_median_raw_deg": None,
        "lr_accuracy": None,
        "yaw_mae_deg": None,
        "yaw_median_deg": None,
        "coverage": _num(in_grid / len(grid)) if grid else None,
        "output_rate_hz": _num(len(directions) / seconds) if seconds else None,
        "yaw_output_rate_hz": _num(len(log.yaws) / img_seconds) if img_seconds else None,
        "n_directions": len(directions),
        "n_yaws": len(log.yaws),
        "expected_windows": len(grid),
        "audio_seconds": _num(seconds),
        "image_count": len(img),
    }
    scores.update(_latency(replay))
    series: dict[str, Any] = {
        "direction_t_s": [],
        "azimuth_deg": [],
        "yaw_t_s": [],
        "yaw_deg": [],
    }
    origin = span[0] if span else (min(img) if img else 0)
    if directions:
        series["direction_t_s"] = [round((s - origin) / _NS_PER_S, 4) for s in stamps]
        series["azimuth_deg"] = [round(float(deg(float(v))), 3) for v in pred]
    if log.yaws:
        y0 = log.yaws[0].yaw
        unwrapped = np.unwrap(np.array([y.yaw for y in log.yaws]))
        series["yaw_t_s"] = [round((y.stamp_ns - origin) / _NS_PER_S, 4) for y in log.yaws]
        series["yaw_deg"] = [round(float(deg(float(v - y0))), 3) for v in unwrapped]
    if directions and stats.truth_direction:
        az = _azimuth_scores(replay, stamps, pred)
        series["truth_azimuth_deg"] = az.pop("truth_azimuth_deg")
        scores.update(az)
    yaw = _yaw_scores(replay)
    if yaw:
        series["truth_yaw_deg"] = yaw.pop("truth_yaw_deg")
        scores.update(yaw)
    series.update(_truth_curves(replay, grid, origin))
    if directions:
        scores.update(_consistency(replay, stamps, pred))
    scores.update(_tracking_scores(replay, origin))
    if replay.log.wall_s > 0 and seconds:
        scores["realtime_factor"] = _num(seconds / replay.log.wall_s)
    scores["series"] = series
    return scores
