"""BearingTracker on hand-built sequences of folded azimuths and robot yaws with known truth."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import pytest

from slfm_ros.core.conventions import angular_error, fold_to_front, wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.tracking.bearing_tracker import BearingTracker, TrackerConfig, TrackerUpdate

NS = 1_000_000_000
HOP = 0.1
WINDOW = 1.0
RAD = math.radians


def sway(amplitude_deg: float = 25.0, period_s: float = 8.0) -> Callable[[float], float]:
    """The bag scenarios' robot: yaw(t) = A sin(2 pi t / T)."""
    return lambda t: RAD(amplitude_deg) * math.sin(2 * math.pi * t / period_s)


def still(t: float) -> float:
    return 0.0


@dataclass
class Run:
    updates: list[TrackerUpdate]
    times: list[float]  # window ends, s

    def primary_states(self) -> list[str | None]:
        return [u.primary.state if u.primary else None for u in self.updates]

    def first_resolved_s(self) -> float | None:
        for t, u in zip(self.times, self.updates, strict=True):
            if u.primary is not None and u.primary.state == "resolved":
                return t
        return None


def run(
    source_deg: float | Callable[[float], float],
    yaw: Callable[[float], float],
    seconds: float = 12.0,
    noise_deg: float = 1.0,
    heard: Callable[[float], bool] = lambda t: True,
    tracker: BearingTracker | None = None,
    seed: int = 0,
    yaw_known: Callable[[float], bool] = lambda t: True,
) -> Run:
    """Windows every HOP ending from WINDOW on: the folded azimuth of the source at the window
    centre (plus noise), the yaw at the centre and at the end."""
    rng = np.random.default_rng(seed)
    tr = tracker or BearingTracker(TrackerConfig())
    bearing = source_deg if callable(source_deg) else (lambda t: RAD(source_deg))  # type: ignore[misc]
    updates, times = [], []
    for k in range(int(round(WINDOW / HOP)), int(round(seconds / HOP)) + 1):
        end = k * HOP
        centre = end - WINDOW / 2
        z = None
        if heard(centre):
            z = float(fold_to_front(bearing(centre) - yaw(centre))) + rng.normal(0, RAD(noise_deg))
        known = yaw_known(centre)
        updates.append(
            tr.update(
                int(end * NS),
                z,
                yaw(centre) if known else None,
                yaw(end) if known else None,
            )
        )
        times.append(end)
    return Run(updates, times)


def body_error_deg(report_bearing: float, truth: float) -> float:
    return math.degrees(float(angular_error(report_bearing, truth)))


@pytest.mark.parametrize("source_deg", [150.0, -120.0, 160.0])
def test_a_source_behind_is_resolved_behind_as_the_robot_turns(source_deg: float) -> None:
    yaw = sway()
    r = run(source_deg, yaw)
    decided = r.first_resolved_s()
    # The robot starts turning at t = 0; the first window ends at 1 s.
    assert decided is not None and decided <= 3.0
    for t, u in zip(r.times, r.updates, strict=True):
        p = u.primary
        if p is None or p.state != "resolved":
            continue
        assert math.cos(p.body_bearing) < 0, f"resolved in front at {t:.1f} s"
        assert p.front_probability < 0.05
        assert body_error_deg(p.world_bearing, RAD(source_deg)) < 3.0
        assert body_error_deg(p.body_bearing, RAD(source_deg) - yaw(t)) < 3.0
    final = r.updates[-1].primary
    assert final is not None and final.variance < RAD(8.0) ** 2


@pytest.mark.parametrize("source_deg", [20.0, -30.0, 60.0])
def test_a_source_in_front_is_resolved_in_front(source_deg: float) -> None:
    r = run(source_deg, sway())
    decided = r.first_resolved_s()
    assert decided is not None and decided <= 4.5
    resolved = [u.primary for u in r.updates if u.primary and u.primary.state == "resolved"]
    assert resolved and all(p.front_probability > 0.95 for p in resolved)
    assert all(body_error_deg(p.world_bearing, RAD(source_deg)) < 3.0 for p in resolved)


def test_turning_left_moves_a_front_source_right_and_a_back_source_left() -> None:
    """The rule itself, on a hand-written sequence: the robot turns left by 30 deg while the
    folded azimuth goes from 40 deg down to 10 deg (front) or up to 70 deg (behind)."""
    for end_deg, expected_world in ((10.0, 40.0), (70.0, 140.0)):
        tr = BearingTracker(TrackerConfig())
        steps = 40
        for k in range(steps):
            f = k / (steps - 1)
            z = RAD(40.0 + f * (end_deg - 40.0))
            yaw = RAD(30.0 * f)
            update = tr.update(int((1.0 + k * HOP) * NS), z, yaw, yaw)
        p = update.primary
        assert p is not None and p.state == "resolved"
        assert body_error_deg(p.world_bearing, RAD(expected_world)) < 2.0
        assert (p.front_probability > 0.99) == (expected_world < 90)


def test_without_turning_front_and_back_stay_undecided() -> None:
    r = run(30.0, still, seconds=10.0)
    assert r.first_resolved_s() is None
    p = r.updates[-1].primary
    assert p is not None and p.state == "ambiguous"
    assert abs(p.front_probability - 0.5) < 0.05
    # Both hypotheses are kept, and the covariance says the bearing is either of two: 30 or 150.
    bearings = sorted(math.degrees(b) for b, _, _ in p.hypotheses)
    assert bearings == pytest.approx([30.0, 150.0], abs=2.0)
    assert math.sqrt(p.variance) > RAD(50.0)
    # Ties go to the front.
    assert body_error_deg(p.body_bearing, RAD(30.0)) < 2.0


def test_without_a_known_yaw_no_front_back_evidence_is_gathered() -> None:
    yaw = sway()
    # The yaw input stops for good at 1.2 s: the track only coasts from then on.
    r = run(150.0, yaw, seconds=6.5, yaw_known=lambda t: t < 1.2)
    assert r.first_resolved_s() is None
    last = r.updates[-1].tracks
    assert len(last) == 1 and last[0].heard_age_s > 4.0
    # A robot without any rotation input is taken to keep still: it tracks in its own frame,
    # but the turns it cannot see never decide front/back.
    tr = BearingTracker(TrackerConfig())
    rng = np.random.default_rng(1)
    for k in range(10, 120):
        end = k * HOP
        z = float(fold_to_front(RAD(150.0) - yaw(end - 0.5))) + rng.normal(0, RAD(1.0))
        update = tr.update(int(end * NS), z, None, None, assume_still=True)
        assert update.primary is None or update.primary.state != "resolved"
    assert update.primary is not None and update.primary.state == "ambiguous"


def test_a_track_is_held_through_silence_then_fades_and_is_lost() -> None:
    yaw = sway(30.0, 6.0)
    silent = (5.0, 8.0)
    cfg = TrackerConfig(lost_after_s=4.0)
    r = run(
        150.0,
        yaw,
        seconds=16.0,
        heard=lambda t: not silent[0] <= t < silent[1],
        tracker=BearingTracker(cfg),
    )
    by_time = dict(zip(r.times, r.updates, strict=True))
    before, inside = by_time[5.5], by_time[8.0]
    assert before.primary is not None and before.primary.state == "resolved"
    p = inside.primary
    # Still resolved 2.5 s into the silence, still pointing at the source although the robot
    # turned meanwhile, and less certain than before.
    assert p is not None and p.state == "resolved" and p.heard_age_s > 2.0
    assert body_error_deg(p.body_bearing, RAD(150.0) - yaw(8.0)) < 4.0
    assert abs(yaw(8.0) - yaw(5.5)) > RAD(20.0)
    assert p.variance > before.primary.variance
    # Silence for good from 10 s: lost after 4 s without a measurement, reported once.
    r2 = run(150.0, yaw, seconds=16.0, heard=lambda t: t < 10.0, tracker=BearingTracker(cfg))
    states = [[t.state for t in u.tracks] for u in r2.updates]
    lost_at = [i for i, s in enumerate(states) if "lost" in s]
    assert len(lost_at) == 1
    assert 13.5 <= r2.times[lost_at[0]] <= 15.0
    assert all(s == [] for s in states[lost_at[0] + 1 :])


def test_a_slowly_moving_source_is_followed() -> None:
    def moving(t: float) -> float:
        return RAD(140.0 + 3.0 * t)  # 3 deg/s behind the robot: 42 deg over the run

    yaw = sway()
    r = run(moving, yaw, seconds=20.0)
    assert r.first_resolved_s() is not None
    late = [(t, u.primary) for t, u in zip(r.times, r.updates, strict=True) if t > 6.0]
    assert all(p is not None and p.state == "resolved" for _, p in late)
    errors = [body_error_deg(p.world_bearing, moving(t)) for t, p in late if p is not None]
    # A random-walk bearing lags a steadily moving source by a few degrees (half a window of
    # it is inherent: a window hears its centre), but it does not fall behind.
    assert max(errors) < 7.0
    assert errors[-1] < 7.0


def test_the_dominant_source_stays_apart_from_a_second_one() -> None:
    """Three windows in four hear a talker at 30 deg, the fourth a quieter one at -70 deg."""
    yaw = sway(30.0, 10.0)
    tr = BearingTracker(TrackerConfig())
    rng = np.random.default_rng(3)
    for k in range(10, 200):
        end = k * HOP
        centre = end - WINDOW / 2
        world = RAD(-70.0) if k % 4 == 0 else RAD(30.0)
        z = float(fold_to_front(world - yaw(centre))) + rng.normal(0, RAD(1.0))
        update = tr.update(int(end * NS), z, yaw(centre), yaw(end))
    p = update.primary
    assert p is not None and p.state == "resolved"
    assert body_error_deg(p.world_bearing, RAD(30.0)) < 2.0
    others = [t for t in update.tracks if not t.primary]
    assert len(others) == 1 and body_error_deg(others[0].world_bearing, RAD(-70.0)) < 4.0


def test_single_wild_estimates_neither_flip_nor_move_a_resolved_track() -> None:
    yaw = sway()
    tr = BearingTracker(TrackerConfig())
    rng = np.random.default_rng(5)
    for k in range(10, 160):
        end = k * HOP
        centre = end - WINDOW / 2
        z = float(fold_to_front(RAD(150.0) - yaw(centre))) + rng.normal(0, RAD(1.0))
        if k % 10 == 5 and k > 60:
            z = float(rng.uniform(-math.pi / 2, math.pi / 2))  # a reflection, a door slam
        update = tr.update(int(end * NS), z, yaw(centre), yaw(end))
        p = update.primary
        if k > 40:
            assert p is not None and p.state == "resolved" and p.front_probability < 0.05
            assert body_error_deg(p.world_bearing, RAD(150.0)) < 3.0


def test_rebase_re_expresses_tracks_in_a_turned_frame() -> None:
    tr = BearingTracker(TrackerConfig())
    tr.update(NS, RAD(40.0), 0.0, 0.0)
    before = [h.bearing for h in tr.tracks[0].hypotheses]
    tr.rebase(RAD(90.0))
    after = [h.bearing for h in tr.tracks[0].hypotheses]
    for b, a in zip(before, after, strict=True):
        assert float(wrap_angle(a - b)) == pytest.approx(RAD(90.0))


def test_a_full_circle_receiver_keeps_one_hypothesis() -> None:
    cfg = TrackerConfig(front_back_ambiguous=False)
    tr = BearingTracker(cfg)
    update = None
    for k in range(10, 16):
        update = tr.update(int(k * HOP * NS), RAD(150.0), 0.0, 0.0)
    assert update is not None and update.primary is not None
    p = update.primary
    assert p.state == "resolved" and len(p.hypotheses) == 1
    assert body_error_deg(p.body_bearing, RAD(150.0)) < 1.0


def test_the_first_windows_of_a_track_are_tentative() -> None:
    tr = BearingTracker(TrackerConfig(confirm_hits=3))
    states: Sequence[str] = []
    for k in range(3):
        update = tr.update(int((1 + k * HOP) * NS), RAD(20.0), 0.0, 0.0)
        states = [t.state for t in update.tracks]
        assert update.primary is None or k == 2
    assert states == ["ambiguous"]


@pytest.mark.parametrize(
    "bad",
    [
        {"measurement_std_deg": 0.0},
        {"decide_probability": 0.8, "undecide_probability": 0.9},
        {"front_prior": 1.0},
        {"confirm_hits": 0},
        {"tentative_timeout_s": 10.0, "lost_after_s": 5.0},
    ],
)
def test_bad_settings_are_refused_with_the_parameter_name(bad: dict) -> None:
    with pytest.raises(ConfigError, match="tracker"):
        TrackerConfig(**bad)


def test_config_from_node_params() -> None:
    cfg = TrackerConfig.from_params(
        {"hop_s": 0.05, "window_s": 0.5, "tracker_gate_deg": 12.0, "audio_topic": "x"}
    )
    assert (cfg.hop_s, cfg.window_s, cfg.gate_deg) == (0.05, 0.5, 12.0)
