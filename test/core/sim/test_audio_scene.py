"""View audio: placement relative to the listener's yaw, distance, rooms, noise, normalising."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.signal import csd, welch

from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.sim.audio_scene import (
    PlacedSource,
    add_diffuse_noise,
    normalise_peak,
    render_view_audio,
)
from slfm_ros.core.sim.receivers import SphericalHead, StereoArray, broadband_itd
from slfm_ros.core.sim.room import RirCache, RoomConfig
from slfm_ros.core.sim.sources import noise_burst

SR = 16000
HEAD = SphericalHead()


@pytest.fixture(scope="module")
def noise() -> np.ndarray:
    return np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 0.1


def _itd_samples(audio: np.ndarray) -> float:
    return float(broadband_itd(audio[None, :4096], SR)[0] * SR)


def _ild_db(audio: np.ndarray) -> float:
    power = np.mean(audio.astype(np.float64) ** 2, axis=0)
    return float(10 * np.log10(power[0] / power[1]))


def test_source_left_of_the_view_is_earlier_and_louder_on_the_left(noise: np.ndarray) -> None:
    src = [PlacedSource(noise, azimuth_world=math.radians(60), distance_m=1.0)]
    facing = render_view_audio(src, 0.0, HEAD, SR)
    assert facing.shape == (SR, 2) and facing.dtype == np.float32
    assert _itd_samples(facing) > 3 and _ild_db(facing) > 3
    # Turning the head 90 degrees left puts the source 30 degrees to the right.
    turned = render_view_audio(src, math.radians(90), HEAD, SR)
    assert _itd_samples(turned) < -1.5 and _ild_db(turned) < -1.5
    # Same in-view azimuth, same audio: only world azimuth minus yaw matters.
    shifted = render_view_audio(
        [PlacedSource(noise, math.radians(100), 1.0)], math.radians(40), HEAD, SR
    )
    assert np.allclose(shifted, facing, atol=1e-6)


def test_level_falls_as_one_over_distance(noise: np.ndarray) -> None:
    near = render_view_audio([PlacedSource(noise, 0.3, 1.0)], 0.0, StereoArray(), SR)
    far = render_view_audio([PlacedSource(noise, 0.3, 2.0)], 0.0, StereoArray(), SR)
    loud = render_view_audio([PlacedSource(noise, 0.3, 1.0, gain_db=6.0)], 0.0, StereoArray(), SR)
    ratio = np.mean(near.astype(np.float64) ** 2) / np.mean(far.astype(np.float64) ** 2)
    assert 10 * np.log10(ratio) == pytest.approx(6.02, abs=0.05)
    assert np.allclose(loud, near * 10 ** (6 / 20), atol=1e-5)


def test_sources_mix_and_the_dominant_one_wins(noise: np.ndarray) -> None:
    other = np.random.default_rng(9).standard_normal(SR // 2).astype(np.float32) * 0.1
    mix = render_view_audio(
        [
            PlacedSource(noise, math.radians(50), 1.5),
            PlacedSource(other, math.radians(-70), 2.0, -15.0),
        ],
        0.0,
        HEAD,
        SR,
    )
    assert mix.shape == (SR, 2)  # the longest source sets the length
    assert _itd_samples(mix) > 2


def test_room_rendering_keeps_direction_and_adds_reverberation(noise: np.ndarray) -> None:
    room = RoomConfig((6.0, 5.0, 3.0), 0.6, (3.0, 2.5, 1.5))
    burst = np.zeros(SR, dtype=np.float32)
    burst[:1600] = noise[:1600]
    src = [PlacedSource(burst, math.radians(-50), 1.5)]
    dry = render_view_audio(src, 0.0, HEAD, SR)
    cache = RirCache()
    wet = render_view_audio(src, 0.0, HEAD, SR, room=room, rir_cache=cache)
    again = render_view_audio(src, 0.0, HEAD, SR, room=room, rir_cache=cache)
    assert np.array_equal(wet, again) and cache.hits == 1
    tail = slice(int(0.2 * SR), int(0.4 * SR))  # after the burst: reverberation only
    assert np.mean(wet[tail] ** 2) > 1e-3 * np.mean(wet[:1600] ** 2)
    assert np.mean(dry[tail] ** 2) == 0.0
    assert _itd_samples(wet) < -2  # the direct sound still says "right"
    uncached = render_view_audio(src, 0.0, HEAD, SR, room=room)
    assert uncached.shape == wet.shape


def test_diffuse_noise_has_the_requested_snr_and_head_coherence(noise: np.ndarray) -> None:
    clean = render_view_audio([PlacedSource(noise, 0.5, 1.0)], 0.0, HEAD, SR)
    rng = np.random.default_rng(4)
    noisy = add_diffuse_noise(clean, 10.0, rng, SR, HEAD, n_directions=32)
    added = noisy.astype(np.float64) - clean
    snr = 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(added**2))
    assert snr == pytest.approx(10.0, abs=0.01)
    # Diffuse field at two ears: coherent at low frequency, incoherent at high frequency.
    only_noise = add_diffuse_noise(clean, -60.0, rng, SR, HEAD, n_directions=32)
    f, pxy = csd(only_noise[:, 0], only_noise[:, 1], SR, nperseg=512)
    _, pxx = welch(only_noise[:, 0], SR, nperseg=512)
    _, pyy = welch(only_noise[:, 1], SR, nperseg=512)
    coherence = np.abs(pxy) ** 2 / (pxx * pyy)
    assert coherence[(f > 50) & (f < 250)].mean() > 0.7
    assert coherence[(f > 3000) & (f < 6000)].mean() < 0.3
    with pytest.raises(InputFormatError, match="silent"):
        add_diffuse_noise(np.zeros((100, 2)), 10.0, rng, SR, HEAD)


def test_normalise_peak_never_clips_and_keeps_ild() -> None:
    loud = render_view_audio(
        [PlacedSource(noise_burst(1.0, SR, np.random.default_rng(1)), 1.0, 0.1, 30.0)],
        0.0,
        HEAD,
        SR,
    )
    assert np.max(np.abs(loud)) > 1.0
    out = normalise_peak(loud)
    assert np.max(np.abs(out)) == pytest.approx(0.9, abs=1e-6)
    assert _ild_db(out) == pytest.approx(_ild_db(loud), abs=1e-4)
    assert np.array_equal(normalise_peak(np.zeros((10, 2))), np.zeros((10, 2)))
    with pytest.raises(ConfigError):
        normalise_peak(loud, peak=1.2)


def test_bad_inputs_are_rejected() -> None:
    with pytest.raises(InputFormatError, match="mono"):
        PlacedSource(np.zeros((10, 2)), 0.0, 1.0)
    with pytest.raises(ConfigError, match="distance"):
        PlacedSource(np.zeros(10), 0.0, 0.0)
    with pytest.raises(ConfigError, match="at least one"):
        render_view_audio([], 0.0, HEAD, SR)
