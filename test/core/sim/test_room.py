"""Shoebox-room BRIRs: arrival order, decay time, direct-to-reverberant ratio, caching."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S
from slfm_ros.core.sim.receivers import SphericalHead, StereoArray, broadband_itd
from slfm_ros.core.sim.room import (
    RirCache,
    RoomConfig,
    binaural_rir,
    place_source,
    render_binaural_rir,
    sample_room,
)

SR = 16000
HEAD = SphericalHead()


def _decay_time(rir: np.ndarray, sr: int) -> float:
    """RT60 from the Schroeder curve, fitted between -5 and -25 dB (T20)."""
    energy = np.sum(rir.astype(np.float64) ** 2, axis=1)
    energy = energy[np.argmax(energy > energy.max() * 1e-3) :]
    edc = np.cumsum(energy[::-1])[::-1]
    edc_db = 10 * np.log10(np.maximum(edc / edc[0], 1e-30))
    t = np.arange(energy.size) / sr
    fit = (edc_db < -5) & (edc_db > -25)
    return -60.0 / np.polyfit(t[fit], edc_db[fit], 1)[0]


def test_room_config_validates_inputs() -> None:
    with pytest.raises(ConfigError, match="inside the room"):
        RoomConfig((4.0, 3.0, 2.5), 0.4, (5.0, 1.0, 1.5))
    with pytest.raises(ConfigError, match="shorter than"):
        RoomConfig((12.0, 10.0, 4.0), 0.1, (5.0, 5.0, 1.5))
    room = RoomConfig([4, 3, 2.5], 0.4, [2, 1.5, 1.5])  # lists become hashable tuples
    assert room.dims_m == (4.0, 3.0, 2.5) and hash(room) == hash(
        RoomConfig.from_dict(room.to_dict())
    )
    assert 0.0 < room.absorption < 1.0


def test_sample_room_covers_the_requested_ranges() -> None:
    rooms = [sample_room(np.random.default_rng(seed)) for seed in range(40)]
    dims = np.array([r.dims_m for r in rooms])
    assert np.all(dims >= [3.0, 3.0, 2.5]) and np.all(dims <= [12.0, 10.0, 4.0])
    assert np.ptp(dims[:, 0]) > 5.0
    rt60 = np.array([r.rt60_s for r in rooms])
    assert np.all(rt60 >= 0.15) and np.all(rt60 <= 0.9) and np.ptp(rt60) > 0.5
    assert sample_room(np.random.default_rng(7)) == sample_room(np.random.default_rng(7))


def test_direct_path_arrives_first_and_strongest_nearby() -> None:
    room = RoomConfig((6.0, 5.0, 3.0), 0.5, (2.5, 2.0, 1.5))
    source = place_source(room, math.radians(30), 1.0)
    brir = render_binaural_rir(room, HEAD, source, 0.0, SR)
    energy = np.sum(brir.rir.astype(np.float64) ** 2, axis=1)
    direct_at = brir.latency_samples + brir.direct_delay_s * SR
    assert brir.direct_delay_s == pytest.approx(1.0 / SPEED_OF_SOUND_M_S, rel=1e-6)
    first = int(np.argmax(energy > 1e-3 * energy.max()))
    assert direct_at - 12 <= first <= direct_at  # head lead is under 0.3 ms (5 samples)
    assert abs(int(np.argmax(energy)) - direct_at) <= 6
    # Everything but the direct sound starts with the floor reflection: 2 x 1.5 m below,
    # path sqrt(1 + 9) m.
    direct_only = RoomConfig(room.dims_m, 0.5, room.listener_pos_m, max_order=0, late_tail=False)
    reverb = brir.rir - binaural_rir(direct_only, HEAD, source, 0.0, SR)
    reverb_energy = np.sum(reverb.astype(np.float64) ** 2, axis=1)
    floor_at = direct_at + (math.sqrt(10.0) - 1.0) / SPEED_OF_SOUND_M_S * SR
    onset = int(np.argmax(reverb_energy > 1e-2 * reverb_energy.max()))
    assert floor_at - 6 <= onset <= floor_at + 1  # band-limited pulses rise over a few samples
    assert abs(int(np.argmax(reverb_energy)) - floor_at) <= 2


@pytest.mark.parametrize(
    ("dims", "rt60"), [((6.0, 5.0, 3.0), 0.5), ((4.0, 3.5, 2.7), 0.3), ((10.0, 8.0, 3.5), 0.8)]
)
def test_decay_time_matches_requested_rt60(dims: tuple[float, float, float], rt60: float) -> None:
    room = RoomConfig(dims, rt60, (dims[0] / 2 - 0.4, dims[1] / 2 + 0.3, 1.5))
    source = place_source(room, math.radians(-70), 2.0)
    rir = binaural_rir(room, HEAD, source, 0.3, SR)
    assert _decay_time(rir, SR) == pytest.approx(rt60, rel=0.2)
    assert rir.shape[1] == 2 and rir.dtype == np.float32


def test_late_tail_keeps_the_decay_of_a_low_image_order() -> None:
    dims = (6.0, 5.0, 3.0)
    low = RoomConfig(dims, 0.6, (2.0, 2.0, 1.5), max_order=3)
    bare = RoomConfig(dims, 0.6, (2.0, 2.0, 1.5), max_order=3, late_tail=False)
    source = place_source(low, 0.5, 2.0)
    assert _decay_time(binaural_rir(low, HEAD, source, 0.0, SR), SR) == pytest.approx(0.6, rel=0.2)
    assert _decay_time(binaural_rir(bare, HEAD, source, 0.0, SR), SR) < 0.3


def test_drr_falls_with_distance_and_reverberation() -> None:
    dry = RoomConfig((6.0, 5.0, 3.0), 0.25, (3.0, 2.5, 1.5))
    wet = RoomConfig((6.0, 5.0, 3.0), 0.8, (3.0, 2.5, 1.5))
    near, far = place_source(dry, 0.0, 0.5), place_source(dry, 0.0, 2.2)
    drr = {
        (name, d): render_binaural_rir(room, HEAD, pos, 0.0, SR).drr_db
        for name, room in (("dry", dry), ("wet", wet))
        for d, pos in (("near", near), ("far", far))
    }
    assert drr[("dry", "near")] > drr[("dry", "far")] + 6  # about 20 log10(2.2 / 0.5) = 13 dB
    assert drr[("dry", "far")] > drr[("wet", "far")] + 3
    assert drr[("dry", "near")] > 0 > drr[("wet", "far")]


def test_listener_yaw_turns_the_head() -> None:
    room = RoomConfig((6.0, 5.0, 3.0), 0.3, (3.0, 2.5, 1.5))
    source = place_source(room, math.radians(60), 1.5)
    stereo = StereoArray()
    for yaw_deg, sign in ((0.0, 1.0), (120.0, -1.0)):  # in view: +60 deg, then -60 deg
        rir = binaural_rir(room, stereo, source, math.radians(yaw_deg), SR)
        direct = rir[: int(0.006 * SR) + 64]  # direct sound only (first reflection is later)
        itd = broadband_itd(direct[None], SR)[0]
        assert itd == pytest.approx(sign * stereo.geometry.itd(math.radians(60)), abs=0.3 / SR)


def test_place_source_keeps_the_direction_inside_small_rooms() -> None:
    room = RoomConfig((3.0, 3.0, 2.5), 0.3, (0.6, 1.5, 1.5))
    pos = place_source(room, math.pi, 5.0)  # toward the near wall
    rel = pos - np.asarray(room.listener_pos_m)
    assert math.atan2(rel[1], rel[0]) == pytest.approx(math.pi)
    assert pos[0] == pytest.approx(0.3) and np.linalg.norm(rel) == pytest.approx(0.3)


def test_cache_hit_is_identical_and_faster(tmp_path: Path) -> None:
    room = RoomConfig((7.0, 5.0, 3.0), 0.6, (3.0, 2.5, 1.6))
    cache = RirCache(max_items=4, directory=tmp_path)
    source = place_source(room, 1.0, 2.0)
    tic = time.perf_counter()
    first = cache.get(room, HEAD, source, 0.2, SR)
    cold = time.perf_counter() - tic
    tic = time.perf_counter()
    second = cache.get(room, HEAD, source + 0.001, 0.2 + 1e-4, SR)  # same quantisation cell
    warm = time.perf_counter() - tic
    assert second.rir is first.rir and (cache.hits, cache.misses) == (1, 1)
    assert warm < cold / 10
    with pytest.raises(ValueError):
        first.rir[0, 0] = 1.0  # shared arrays are read-only
    # A fresh cache on the same folder reads the file instead of rendering.
    again = RirCache(directory=tmp_path).get(room, HEAD, source, 0.2, SR)
    assert np.array_equal(again.rir, first.rir) and again.drr_db == first.drr_db
    # Different yaw or receiver: a different entry.
    other = cache.get(room, HEAD, source, 0.5, SR)
    assert cache.misses == 2 and not np.array_equal(other.rir[:200], first.rir[:200])


def test_rendering_is_deterministic() -> None:
    room = RoomConfig((5.0, 4.0, 3.0), 0.7, (2.0, 2.0, 1.5), max_order=4)
    source = place_source(room, -2.0, 1.8)
    assert np.array_equal(
        binaural_rir(room, HEAD, source, 0.1, SR), binaural_rir(room, HEAD, source, 0.1, SR)
    )
