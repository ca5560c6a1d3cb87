"""Scenario rendering: the truth geometry, and audio that follows the moving robot."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from scipy.signal import oaconvolve

from slfm_ros.bags import scenarios as S
from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import FreeFieldPair
from slfm_ros.core.sim.room import RoomConfig

RATE = 48000


def gcc_lag(block: np.ndarray, max_lag: int = 24) -> float:
    """ITD (t_right - t_left) in samples of a (frames, 2) block: Hann-windowed GCC-PHAT with a
    parabolic peak fit."""
    w = np.hanning(block.shape[0])[:, None] * block
    n = 2 * block.shape[0]
    spec = np.fft.rfft(w[:, 1], n) * np.conj(np.fft.rfft(w[:, 0], n))
    cc = np.fft.irfft(spec / (np.abs(spec) + 1e-12), n)
    cc = np.concatenate([cc[-max_lag:], cc[: max_lag + 1]])
    k = int(np.argmax(cc))
    if 0 < k < cc.size - 1:
        a, b, c = cc[k - 1], cc[k], cc[k + 1]
        k += 0.5 * (a - c) / (a - 2 * b + c)
    return k - max_lag


def test_every_scenario_has_one_target_and_a_description() -> None:
    assert set(S.SCENARIO_NAMES) >= {
        "turning-speaker",
        "two-sources-music",
        "intermittent",
        "reverberant",
        "translating",
        "behind",
    }
    for scenario in S.SCENARIOS.values():
        assert sum(s.target for s in scenario.sources) == 1
        assert scenario.description
    with pytest.raises(ConfigError, match="unknown scenario"):
        S.get_scenario("spinning")


def test_truth_is_the_source_bearing_minus_the_robot_yaw() -> None:
    scene = S.render_scene("translating", 3.0, seed=1)
    t = np.linspace(0.0, 3.0, 7)
    src = scene.source_positions[0]
    pos = scene.position(t)
    expected = np.arctan2(src[1] - pos[:, 1], src[0] - pos[:, 0]) - scene.yaw(t)
    np.testing.assert_allclose(scene.source_azimuth(t), wrap_angle(expected), atol=1e-12)
    # The robot really drives: at half its travel period it is 1 m ahead.
    np.testing.assert_allclose(scene.scenario.motion.position(6.0), [1.0, 0.0], atol=1e-12)
    behind = S.render_scene("behind", 2.0, seed=1)
    assert np.all(np.abs(behind.source_azimuth(np.linspace(0, 2, 20))) > math.radians(100))


def test_a_still_robot_renders_exactly_the_convolution_with_the_receiver() -> None:
    scn = dataclasses.replace(
        S.get_scenario("turning-speaker"),
        motion=S.Motion(yaw_amplitude_deg=0.0),
        noise_dbfs=-300.0,
    )
    scene = S.render_scene(scn, 2.0, seed=3)
    rng = np.random.default_rng([3, 0x5F4D])
    signal = S._signal(scn.sources[0], 2.0, RATE, rng)
    ir = scene.settings.make_receiver().hrir(math.radians(20.0), 0.0, RATE)
    direct = oaconvolve(signal[:, None], ir, axes=0)[: signal.size] / 2.0
    np.testing.assert_allclose(scene.audio, direct, atol=1e-6)


def test_the_interaural_delay_follows_the_turning_robot() -> None:
    scn = dataclasses.replace(
        S.get_scenario("turning-speaker"),
        sources=(S.SourceSpec("noise", 20.0, 2.0),),
    )
    scene = S.render_scene(scn, 4.0, seed=2)
    pair = FreeFieldPair(0.14)
    block = int(0.1 * RATE)
    errors = []
    for start in range(0, scene.audio.shape[0] - block, block):
        chunk = scene.audio[start : start + block]
        if np.sqrt(np.mean(chunk**2)) < 0.01:
            continue  # a pause between noise bursts
        centre = (start + block / 2) / RATE
        truth = pair.itd(float(scene.source_azimuth(centre))) * RATE
        errors.append(abs(gcc_lag(chunk) - truth))
    assert len(errors) >= 15
    # The azimuth changes by up to 3 deg within a 0.1 s block (0.25 samples of delay).
    assert np.median(errors) < 0.3
    assert np.percentile(errors, 90) < 0.8


def test_intermittent_speech_has_silences_below_the_node_threshold() -> None:
    scene = S.render_scene("intermittent", 8.0, seed=0)
    block = int(0.5 * RATE)
    levels = [
        20 * math.log10(float(np.sqrt(np.mean(scene.audio[i : i + block] ** 2))) + 1e-12)
        for i in range(0, scene.audio.shape[0] - block, block)
    ]
    assert min(levels) < -60.0  # below slfm_node's silence_threshold_dbfs
    assert max(levels) > -35.0


def test_a_room_adds_reverberation_and_keeps_the_direct_path_direction() -> None:
    scn = dataclasses.replace(
        S.get_scenario("reverberant"),
        motion=S.Motion(yaw_amplitude_deg=0.0),
        room=RoomConfig((7.0, 5.5, 3.0), 0.8, (3.2, 2.6, 1.4), max_order=3),
    )
    settings = S.StreamSettings()
    receiver = settings.make_receiver()
    click = np.zeros(RATE)
    click[RATE // 4] = 1.0
    positions = S._source_positions(scn)
    cache = S.RirCache(yaw_step_rad=S.ROOM_YAW_STEP)
    room = S._render_source(scn, settings, receiver, click, positions[0], cache)
    dry = S._render_source(
        dataclasses.replace(scn, room=None), settings, receiver, click, positions[0], cache
    )
    late = slice(RATE // 4 + int(0.1 * RATE), None)  # from 100 ms after the click
    assert np.sum(room[late] ** 2) > 0.05 * np.sum(room**2)
    assert np.sum(dry[late] ** 2) < 1e-9 * np.sum(dry**2)
    onset = int(np.argmax(np.abs(room[:, 0]) > 0.5 * np.max(np.abs(room[:, 0]))))
    direct = room[onset - 48 : onset + 96]
    truth = FreeFieldPair(0.14).itd(math.radians(25.0)) * RATE
    assert abs(gcc_lag(direct) - truth) < 0.5


def test_images_show_the_panorama_at_the_robot_yaw() -> None:
    settings = S.StreamSettings(image_noise_sigma=0.0, fps=10.0, width=160, height=120)
    scene = S.render_scene("turning-speaker", 2.0, seed=0, settings=settings)
    times = scene.image_times()
    assert times.size == 20 and times[1] == pytest.approx(0.1)
    a, b = scene.image_at(0.0), scene.image_at(1.0)
    assert a.shape == (120, 160, 3) and a.dtype == np.uint8
    # The camera turned between the two frames: the views differ.
    assert np.mean(np.abs(a.astype(int) - b.astype(int))) > 10
    with pytest.raises(ConfigError):
        S.StreamSettings(fps=0.0)
