"""The simulated robot: sensor streams on one clock, turning under commands, ground truth."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.conventions import fold_to_front, wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.gcc_phat import GccPhatAzimuth
from slfm_ros.core.sim_robot.acoustics import TalkerSpec
from slfm_ros.core.sim_robot.camera import CameraSpec
from slfm_ros.core.sim_robot.robot import SensorOutput, SimRobot, SimRobotConfig


@pytest.fixture(scope="module")
def rir_dir(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One response cache for the module: each room is rendered once."""
    return str(tmp_path_factory.mktemp("rirs"))


def _config(**kw: object) -> SimRobotConfig:
    base: dict[str, object] = {
        "talker": TalkerSpec(bearing=math.radians(150.0), loop_s=4.0),
        "room": "anechoic",
        "sample_rate": 16000,
        "camera": CameraSpec(width=64, height=48, fps=5.0, panorama_width=512),
    }
    base.update(kw)
    return SimRobotConfig(**base)  # type: ignore[arg-type]


def _run(robot: SimRobot, seconds: float, rate: float | None = None) -> SensorOutput:
    total = SensorOutput()
    steps = int(round(seconds / robot.hop_s))
    start = robot.renderer.steps
    for k in range(start, start + steps):
        if rate is not None and k % 10 == 0:
            robot.command(rate, k * robot.hop_s)
        out = robot.advance(k * robot.hop_s)
        total.audio += out.audio
        total.frames += out.frames
        total.poses += out.poses
    return total


def test_streams_are_contiguous_and_carry_the_truth() -> None:
    robot = SimRobot(_config())
    out = _run(robot, 2.0)
    stamps = np.array([c.stamp_s for c in out.audio])
    np.testing.assert_allclose(np.diff(stamps), 0.02, atol=1e-9)
    assert stamps[0] == 0.0 and out.audio[0].samples.shape == (320, 2)
    assert [f.stamp_s for f in out.frames] == pytest.approx(
        [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.2, 1.4, 1.6, 1.8]
    )
    assert out.frames[0].image.shape == (48, 64, 3)
    assert len(out.poses) == pytest.approx(100, abs=1)  # 50 Hz
    # Standing still, the talker stays at its bearing; GCC-PHAT hears it folded to the front.
    assert all(c.source_azimuth == pytest.approx(math.radians(150.0)) for c in out.audio)
    audio = np.concatenate([c.samples for c in out.audio])
    estimate = GccPhatAzimuth(robot.config.make_receiver().geometry).estimate(audio, 16000)
    assert estimate.valid
    assert math.degrees(estimate.angle) == pytest.approx(30.0, abs=2.0)


def test_turning_moves_the_talker_and_the_view(rir_dir: str) -> None:
    robot = SimRobot(_config(room="room", rt60_s=0.2, receiver="spherical_head"), rir_dir)
    out = _run(robot, 2.0, rate=1.0)
    yaw = robot.base.yaw
    assert yaw == pytest.approx(2.0 - 1.0 / (2 * 6.0), abs=0.05)  # minus the 1/6 s ramp
    last = out.audio[-1]
    # Chunks leave up to a room block late; the truth is the one at their own stamp.
    yaw_then = yaw - (robot.t - last.stamp_s) * 1.0
    assert 0.0 < robot.t - last.stamp_s <= 0.07
    assert last.source_azimuth == pytest.approx(
        float(wrap_angle(math.radians(150.0) - yaw_then)), abs=0.005
    )
    # The last second: the talker has moved from 150 - 57 deg to 150 - 110 deg, i.e. about
    # 65 deg folded on the left, still heard on the left.
    audio = np.concatenate([c.samples for c in out.audio[-50:]])
    estimate = GccPhatAzimuth(robot.config.make_receiver().geometry).estimate(audio, 16000)
    truth = fold_to_front(out.audio[-25].source_azimuth)
    assert estimate.valid and abs(estimate.angle - truth) < math.radians(15.0)
    first, final = out.frames[0].image, out.frames[-1].image
    assert np.mean(np.abs(first.astype(int) - final.astype(int))) > 10.0


def test_the_same_seed_renders_the_same_run() -> None:
    noise = TalkerSpec(kind="noise", loop_s=2.0)

    def render(seed: int) -> np.ndarray:
        robot = SimRobot(_config(seed=seed, talker=noise))
        return np.concatenate([c.samples for c in _run(robot, 0.5).audio])

    a, b, c = render(4), render(4), render(5)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_falling_behind_skips_ahead_and_leaves_a_gap(rir_dir: str) -> None:
    robot = SimRobot(
        _config(room="room", rt60_s=0.2, receiver="spherical_head", max_lag_s=0.3), rir_dir
    )
    first = _run(robot, 1.0)
    robot.command(0.5, 1.0)
    late = robot.advance(3.0)  # two seconds late in one call
    assert robot.skipped_s == pytest.approx(2.0, abs=0.05)
    assert robot.base.t == pytest.approx(3.0)
    # The base kept turning through the skipped time until its watchdog stopped it.
    assert 0.15 < robot.base.yaw < 0.3 and robot.base.yaw_rate == 0.0
    assert not late.audio  # the room part needs a whole block after the restart
    later = _run(robot, 0.5)
    gap = later.audio[0].stamp_s - first.audio[-1].stamp_s
    assert gap == pytest.approx(2.0, abs=0.1)
    stamps = np.array([c.stamp_s for c in later.audio])
    np.testing.assert_allclose(np.diff(stamps), 0.02, atol=1e-9)


def test_config_is_validated() -> None:
    with pytest.raises(ConfigError, match="receiver"):
        _config(receiver="sofa")
    with pytest.raises(ConfigError, match="room"):
        _config(room="hall")
    with pytest.raises(ConfigError, match="multiple of 100"):
        _config(sample_rate=44110)
    with pytest.raises(ConfigError, match="chunk_s"):
        _config(chunk_s=0.015)


def test_room_responses_are_kept_on_disk_between_runs(tmp_path: Path) -> None:
    config = _config(room="room", rt60_s=0.2, talker=TalkerSpec(kind="noise", loop_s=2.0))
    first = SimRobot(config, rir_cache_dir=str(tmp_path))
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 36  # one per 10 deg of yaw
    stamps = [f.stat().st_mtime_ns for f in files]
    again = SimRobot(config, rir_cache_dir=str(tmp_path))
    assert [f.stat().st_mtime_ns for f in sorted(tmp_path.glob("*.npz"))] == stamps
    a = np.concatenate([c.samples for c in _run(first, 0.3).audio])
    b = np.concatenate([c.samples for c in _run(again, 0.3).audio])
    np.testing.assert_array_equal(a, b)
