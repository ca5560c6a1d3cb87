from __future__ import annotations

import time

import numpy as np
import pytest

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.streaming.audio_buffer import TimedAudioBuffer, WindowUnavailable

RATE = 48000
CHUNK = 960  # 20 ms
CHUNK_NS = 20_000_000
T0 = 1_700_000_000_000_000_000


def _stream(n_chunks: int, channels: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, size=(n_chunks * CHUNK, channels)).astype(np.float32)


def _fill(buf: TimedAudioBuffer, audio: np.ndarray, t0: int = T0) -> None:
    for k in range(audio.shape[0] // CHUNK):
        result = buf.push(audio[k * CHUNK : (k + 1) * CHUNK], t0 + k * CHUNK_NS)
        assert result.accepted and not result.reset
        assert result.gap_s == 0.0 and result.overlap_s == 0.0


def test_contiguous_pushes_return_exact_samples_and_stamps() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    audio = _stream(50)  # 1 s
    _fill(buf, audio)
    assert buf.newest_end_ns == T0 + 50 * CHUNK_NS
    assert buf.oldest_start_ns == T0

    latest = buf.latest_window(0.5)
    np.testing.assert_array_equal(latest.audio, audio[-24000:])
    assert latest.end_ns == T0 + 1_000_000_000
    assert latest.start_ns == T0 + 500_000_000
    assert latest.fill_fraction == 0.0

    win = buf.window(T0 + 600_000_000, 0.3)
    np.testing.assert_array_equal(win.audio, audio[14400:28800])
    assert (win.start_ns, win.end_ns) == (T0 + 300_000_000, T0 + 600_000_000)


def test_window_not_yet_available_or_empty() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    with pytest.raises(WindowUnavailable, match="no audio"):
        buf.latest_window(0.1)
    _fill(buf, _stream(10))
    with pytest.raises(WindowUnavailable, match="not yet arrived"):
        buf.window(T0 + 300_000_000, 0.1)
    with pytest.raises(WindowUnavailable, match="before the oldest"):
        buf.window(T0 + 100_000_000, 0.2)
    with pytest.raises(WindowUnavailable, match="capacity"):
        buf.latest_window(3.0)


def test_capacity_wrap_around() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=0.5)  # 24000 frames, not a multiple of a chunk pair
    audio = _stream(77)
    _fill(buf, audio)
    assert buf.buffered_frames == 24000
    np.testing.assert_array_equal(buf.latest_window(0.5).audio, audio[-24000:])
    # A window straddling the physical end of the storage array.
    end = 77 * CHUNK - 5000
    win = buf.window(T0 + end * 1_000_000_000 // RATE, 0.3)
    np.testing.assert_array_equal(win.audio, audio[end - 14400 : end])
    with pytest.raises(WindowUnavailable, match="before the oldest"):
        buf.window(T0 + 40 * CHUNK_NS, 0.2)


def test_chunk_longer_than_capacity_keeps_newest() -> None:
    buf = TimedAudioBuffer(1, RATE, capacity_s=0.1)
    audio = _stream(10, channels=1)
    assert buf.push(audio, T0).accepted
    np.testing.assert_array_equal(buf.latest_window(0.1).audio, audio[-4800:])
    assert buf.newest_end_ns == T0 + 200_000_000


def test_gap_is_zero_filled_and_reported() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    audio = _stream(3)
    buf.push(audio[:CHUNK], T0)
    result = buf.push(audio[CHUNK : 2 * CHUNK], T0 + 2 * CHUNK_NS)  # one chunk missing
    assert result.accepted and not result.reset
    assert result.gap_s == pytest.approx(0.02)
    win = buf.latest_window(0.06)
    np.testing.assert_array_equal(win.audio[:CHUNK], audio[:CHUNK])
    np.testing.assert_array_equal(win.audio[CHUNK : 2 * CHUNK], 0.0)
    np.testing.assert_array_equal(win.audio[2 * CHUNK :], audio[CHUNK : 2 * CHUNK])
    assert win.fill_fraction == pytest.approx(1 / 3)
    assert win.end_ns == T0 + 3 * CHUNK_NS


def test_long_gap_resets() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0, max_fill_s=0.5)
    audio = _stream(2)
    buf.push(audio[:CHUNK], T0)
    result = buf.push(audio[CHUNK:], T0 + 1_000_000_000)
    assert result.accepted and result.reset
    assert result.gap_s == pytest.approx(0.98)
    assert buf.buffered_frames == CHUNK
    assert buf.oldest_start_ns == T0 + 1_000_000_000
    with pytest.raises(WindowUnavailable):
        buf.latest_window(0.04)


def test_jitter_within_tolerance_is_contiguous() -> None:
    # Each stamp is compared with the previous one, so deviations reach twice the jitter.
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0, gap_tolerance_s=0.003)
    audio = _stream(20)
    jitter = np.random.default_rng(1).integers(-1_500_000, 1_500_000, size=20)
    for k in range(20):
        result = buf.push(audio[k * CHUNK : (k + 1) * CHUNK], T0 + k * CHUNK_NS + int(jitter[k]))
        assert result.accepted and result.reason in ("", "first chunk")
    np.testing.assert_array_equal(buf.latest_window(0.4).audio, audio)


def test_rates_without_integer_sample_period_stay_contiguous() -> None:
    rate, chunk = 44100, 1024
    buf = TimedAudioBuffer(2, rate, capacity_s=1.0, gap_tolerance_s=0.0)
    audio = np.random.default_rng(2).uniform(-1, 1, size=(40 * chunk, 2)).astype(np.float32)
    for k in range(40):
        stamp = T0 + round(k * chunk * 1e9 / rate)
        result = buf.push(audio[k * chunk : (k + 1) * chunk], stamp)
        assert result.gap_s == 0.0 and result.overlap_s == 0.0
    np.testing.assert_array_equal(buf.latest_window(0.5).audio, audio[-22050:])


def test_overlap_is_trimmed() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    audio = _stream(2)
    buf.push(audio[:CHUNK], T0)
    # The next chunk starts 8 ms early: its first 384 frames repeat what is already held.
    repeat = np.concatenate([audio[CHUNK - 384 : CHUNK], audio[CHUNK : 2 * CHUNK - 384]])
    result = buf.push(repeat, T0 + CHUNK_NS - 8_000_000)
    assert result.accepted and not result.reset
    assert result.overlap_s == pytest.approx(0.008)
    win = buf.latest_window((2 * CHUNK - 384) / RATE)
    np.testing.assert_array_equal(win.audio, audio[: 2 * CHUNK - 384])
    assert buf.newest_end_ns == T0 + 2 * CHUNK_NS - 8_000_000


def test_out_of_order_chunk_dropped() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    audio = _stream(5)
    _fill(buf, audio[: 4 * CHUNK])
    before = buf.latest_window(0.08).audio
    result = buf.push(audio[4 * CHUNK :], T0 + CHUNK_NS)  # stamp of an old chunk
    assert not result.accepted and not result.reset
    assert result.overlap_s == pytest.approx(0.02)
    assert "out-of-order" in result.reason
    np.testing.assert_array_equal(buf.latest_window(0.08).audio, before)
    assert buf.newest_end_ns == T0 + 4 * CHUNK_NS


def test_backward_clock_jump_resets() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0, max_fill_s=0.5)
    audio = _stream(60)
    _fill(buf, audio[: 50 * CHUNK], t0=T0 + 10_000_000_000)
    result = buf.push(audio[50 * CHUNK : 51 * CHUNK], T0)
    assert result.accepted and result.reset and result.gap_s < -9.0
    assert buf.newest_end_ns == T0 + CHUNK_NS


def test_non_finite_chunk_rejected_then_gap_filled() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=2.0)
    audio = _stream(3)
    buf.push(audio[:CHUNK], T0)
    bad = audio[CHUNK : 2 * CHUNK].copy()
    bad[100, 1] = np.nan
    result = buf.push(bad, T0 + CHUNK_NS)
    assert not result.accepted and result.reason == "non-finite samples"
    inf = audio[CHUNK : 2 * CHUNK].copy()
    inf[0, 0] = np.inf
    assert not buf.push(inf, T0 + CHUNK_NS).accepted
    assert buf.newest_end_ns == T0 + CHUNK_NS
    result = buf.push(audio[2 * CHUNK :], T0 + 2 * CHUNK_NS)
    assert result.gap_s == pytest.approx(0.02)
    win = buf.latest_window(0.06)
    assert np.isfinite(win.audio).all()
    np.testing.assert_array_equal(win.audio[CHUNK : 2 * CHUNK], 0.0)


def test_channel_mismatch_and_reconfigure() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=1.0)
    buf.push(_stream(1), T0)
    with pytest.raises(InputFormatError, match=r"\(frames, 2\)"):
        buf.push(np.zeros((CHUNK, 1), np.float32), T0 + CHUNK_NS)
    with pytest.raises(InputFormatError):
        buf.push(np.zeros(CHUNK, np.float32), T0 + CHUNK_NS)
    unchanged = buf.reconfigure(RATE, 2)
    assert not unchanged.reset
    result = buf.reconfigure(16000, 1)
    assert result.reset and "16000" in result.reason
    assert buf.newest_end_ns is None
    assert buf.capacity_frames == 16000
    assert buf.push(np.zeros((320, 1), np.float32), T0).accepted
    assert buf.newest_end_ns == T0 + 20_000_000


def test_push_cost_is_constant_and_small() -> None:
    buf = TimedAudioBuffer(2, RATE, capacity_s=30.0)
    chunk = _stream(1)
    n = 3000  # 60 s of audio: wraps the 30 s storage
    start = time.perf_counter()
    for k in range(n):
        buf.push(chunk, T0 + k * CHUNK_NS)
    per_push = (time.perf_counter() - start) / n
    # A copy of the whole 30 s storage per push would cost milliseconds.
    assert per_push < 5e-4
