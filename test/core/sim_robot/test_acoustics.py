"""Streaming convolution and the precomputed direct / room responses."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import fftconvolve

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S
from slfm_ros.core.sim.receivers import SphericalHead, StereoArray
from slfm_ros.core.sim.room import RirCache, RoomConfig
from slfm_ros.core.sim_robot.acoustics import (
    DIRECT_STEP,
    ROOM_STEP,
    TalkerSpec,
    direct_bank,
    direct_key,
    room_bank,
    room_key,
    talker_loop,
)
from slfm_ros.core.sim_robot.convolver import StreamingConvolver

RATE = 16000


def test_a_fixed_response_streams_to_the_plain_convolution() -> None:
    rng = np.random.default_rng(0)
    ir = rng.normal(size=(1, 300, 2)).astype(np.float32)
    signal = rng.normal(size=4000).astype(np.float32)
    hop = 100
    conv = StreamingConvolver(ir, hop)
    pushed = [conv.push(signal[i : i + hop], 0) for i in range(0, signal.size, hop)]
    # Each push finishes the hop before the one it takes.
    out = np.concatenate(pushed)[hop:]
    expected = fftconvolve(signal[:, None], ir[0], axes=0)[: out.shape[0]]
    np.testing.assert_allclose(out, expected, atol=2e-4)


def test_switching_responses_crossfades_between_blocks() -> None:
    # Two pure gains: the output moves from one to the other over one block, smoothly.
    bank = np.zeros((2, 1, 2), dtype=np.float32)
    bank[0, 0] = (1.0, 0.0)
    bank[1, 0] = (0.0, 1.0)
    hop = 50
    conv = StreamingConvolver(bank, hop)
    ones = np.ones(hop, dtype=np.float32)
    out = np.concatenate([conv.push(ones, 0 if k < 4 else 1) for k in range(8)])[hop:]
    np.testing.assert_allclose(out.sum(axis=1)[hop:], 1.0, atol=1e-6)  # windows sum to one
    assert out[2 * hop, 0] == pytest.approx(1.0) and out[-1, 1] == pytest.approx(1.0)
    assert np.all(np.diff(out[2 * hop : 4 * hop, 1]) >= -1e-7)


def test_convolver_rejects_bad_banks_and_pushes() -> None:
    with pytest.raises(ConfigError, match="keys, taps, 2"):
        StreamingConvolver(np.zeros((3, 10)), 10)
    conv = StreamingConvolver(np.zeros((2, 10, 2)), 10)
    with pytest.raises(ValueError, match="expected 10 samples"):
        conv.push(np.zeros(9), 0)
    with pytest.raises(IndexError):
        conv.push(np.zeros(10), 2)


def test_direct_bank_is_the_delayed_hrir_of_each_azimuth() -> None:
    pair = StereoArray(spacing_m=0.14)
    bank = direct_bank(pair, 2.0, RATE)
    assert bank.shape[0] == round(2 * math.pi / DIRECT_STEP)
    for azimuth in (math.radians(40.0), math.radians(-100.0)):
        ir = bank[direct_key(azimuth)]
        peak_l, peak_r = np.argmax(np.abs(ir[:, 0])), np.argmax(np.abs(ir[:, 1]))
        delay = 2.0 / SPEED_OF_SOUND_M_S * RATE + pair.latency_samples(RATE)
        assert abs(0.5 * (peak_l + peak_r) - delay) < 2.0
        # Left source: the left microphone hears it first.
        assert (peak_l < peak_r) == (math.sin(azimuth) > 0)
        assert np.max(np.abs(ir)) == pytest.approx(0.5, rel=0.3)  # 1/r at 2 m
    assert direct_key(math.pi) == direct_key(-math.pi)
    assert room_key(2 * math.pi + 0.01) == room_key(0.01)


def test_room_bank_plus_direct_sound_is_the_full_brir() -> None:
    room = RoomConfig((6.0, 5.0, 3.0), 0.3, (3.2, 2.3, 1.2))
    head = SphericalHead()
    cache = RirCache(max_items=64, yaw_step_rad=ROOM_STEP / 4)
    bank = room_bank(room, head, math.radians(150.0), 2.0, RATE, cache)
    assert bank.bearing == pytest.approx(math.radians(150.0), abs=0.01)
    direct = direct_bank(head, bank.distance_m, RATE)
    for k in (0, 7, 20):
        yaw = float(wrap_angle(k * ROOM_STEP))
        full = cache.get(room, head, bank.position_m, yaw, RATE)
        ir = direct[direct_key(bank.bearing - yaw)]
        total = bank.responses[room_key(yaw)].copy()
        total[: ir.shape[0]] += ir
        n = full.rir.shape[0]
        # Equal up to the direct part's half-degree azimuth grid.
        err = np.sum((total[:n] - full.rir) ** 2) / np.sum(full.rir**2)
        assert err < 1e-3
        # The room part holds no direct sound: nothing arrives with it (the first reflection,
        # off the floor, comes 3 ms later).
        arrival = int(bank.distance_m / SPEED_OF_SOUND_M_S * RATE)
        early = slice(arrival, arrival + int(head.latency_samples(RATE)) + RATE // 1000)
        assert np.sum(bank.responses[room_key(yaw)][early] ** 2) < 0.05 * np.sum(ir**2)


def test_talker_loop_has_the_level_and_repeats_smoothly() -> None:
    loop = talker_loop(TalkerSpec(kind="noise", loop_s=3.0), 48000, np.random.default_rng(3))
    quiet = talker_loop(
        TalkerSpec(kind="noise", loop_s=3.0, gain_db=-6.0), 48000, np.random.default_rng(3)
    )
    assert loop.shape == (144000,)
    np.testing.assert_allclose(quiet, loop * 10 ** (-6 / 20), rtol=1e-5, atol=1e-7)
    # The generators' level: -20 dBFS RMS while sounding.
    active = loop[np.abs(loop) > 1e-3]
    assert 20 * math.log10(np.sqrt(np.mean(active**2))) == pytest.approx(-20.0, abs=2.0)
    # The jump across the loop point is no bigger than a typical step inside the loop.
    assert abs(loop[0] - loop[-1]) < 6 * np.std(np.diff(loop))
    with pytest.raises(ConfigError, match="talker kind"):
        TalkerSpec(kind="bells")
