"""Audio capture: device lookup, chunking and stamping, and a real capture through PulseAudio."""

from __future__ import annotations

import time

import numpy as np
import pytest
from scipy.signal import chirp

from slfm_ros.core.devices.audio_device import (
    AudioCapture,
    CaptureConfig,
    Rechunker,
    StampTracker,
    find_input_device,
    list_input_devices,
)
from slfm_ros.core.dsp.audio_format import decode_interleaved
from slfm_ros.core.errors import ConfigError

RATE = 48000


def binaural_chirps(duration_s: float, rate: int = RATE) -> np.ndarray:
    """(frames, 2) float32: an up-chirp on the left, a down-chirp on the right."""
    t = np.arange(int(duration_s * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, duration_s - t) / 0.01)
    left = chirp(t, 300.0, duration_s, 4000.0) * fade
    right = chirp(t, 4000.0, duration_s, 300.0) * fade
    return (0.4 * np.stack([left, right], axis=1)).astype(np.float32)


def correlation_at_best_lag(captured: np.ndarray, played: np.ndarray) -> tuple[float, int]:
    """(Pearson correlation, lag in frames) of ``played`` found inside ``captured``."""
    n = len(played)
    spectrum = np.fft.rfft(captured, 2 * len(captured)) * np.conj(
        np.fft.rfft(played, 2 * len(captured))
    )
    xcorr = np.fft.irfft(spectrum)[: len(captured) - n + 1]
    lag = int(np.argmax(xcorr))
    segment = captured[lag : lag + n]
    return float(np.corrcoef(segment, played)[0, 1]), lag


def test_config_rejects_bad_values() -> None:
    with pytest.raises(ConfigError, match="sample_format"):
        CaptureConfig(sample_format="U8")
    with pytest.raises(ConfigError, match="whole number of frames"):
        CaptureConfig(sample_rate=44100, chunk_ms=10.01)
    config = CaptureConfig(sample_rate=48000, chunk_ms=20)
    assert config.chunk_frames == 960
    assert config.chunk_ns == 20_000_000


def test_rechunker_cuts_variable_blocks_into_contiguous_chunks() -> None:
    rechunker = Rechunker(chunk_frames=100, channels=2, dtype=np.dtype("<i2"))
    stream = np.arange(1000, dtype=np.int16).repeat(2).reshape(-1, 2)
    chunks = []
    position = 0
    for size in (37, 250, 1, 99, 313, 300):
        chunks += rechunker.push(stream[position : position + size], position)
        position += size
    assert [start for _, start in chunks] == list(range(0, 1000, 100))
    for samples, start in chunks:
        np.testing.assert_array_equal(samples, stream[start : start + 100])
    assert rechunker.reset() == 0
    rechunker.push(stream[:30], 0)
    assert rechunker.reset() == 30


def test_stamp_tracker_follows_a_steady_adc_clock() -> None:
    rng = np.random.default_rng(0)
    origin = 1_700_000_000_000_000_000
    block, block_ns = 960, 20_000_000
    tracker = StampTracker(sample_rate=RATE)
    for k in range(300):
        delivered = origin + (k + 1) * block_ns + 3_000_000 + round(rng.uniform(0.0, 2e6))
        adc = origin + k * block_ns + round(rng.uniform(-1e5, 1e5))  # the true capture time
        tracker.observe(k * block, block, delivered, adc)
    assert tracker.using_adc
    stamps = [tracker.stamp_of(k * block) for k in range(300, 310)]
    assert np.all(np.abs(np.diff(stamps) - block_ns) < 1_000)
    assert abs(stamps[0] - (origin + 300 * block_ns)) < 0.2e6


def test_stamp_tracker_distrusts_a_wandering_adc_clock() -> None:
    rng = np.random.default_rng(1)
    origin = 1_700_000_000_000_000_000
    block, block_ns = 960, 20_000_000
    tracker = StampTracker(sample_rate=RATE)
    for k in range(300):
        delivered = origin + (k + 1) * block_ns + round(rng.uniform(0.0, 2e6))  # up to 2 ms late
        # As ALSA over PulseAudio: a steady claim of 450 ms delay, then delays of 13..60 ms.
        adc = delivered - (450_000_000 if k < 100 else round(rng.uniform(13e6, 60e6)))
        tracker.observe(k * block, block, delivered, adc)
        if k == 0:
            first_stamp = tracker.stamp_of(0)
    assert not tracker.using_adc
    # The delivery bound: never early, late only by the delivery jitter.
    assert origin <= first_stamp <= origin + 2e6
    stamps = [tracker.stamp_of(k * block) for k in range(300, 310)]
    assert np.all(np.abs(np.diff(stamps) - block_ns) < 1_000)
    assert 0 <= stamps[0] - (origin + 300 * block_ns) < 0.5e6
    assert tracker.resyncs == 0


def test_stamp_tracker_reanchors_after_lost_input_or_a_clock_jump() -> None:
    origin = 1_700_000_000_000_000_000
    block, block_ns = 960, 20_000_000
    tracker = StampTracker(sample_rate=RATE)
    for k in range(10):
        tracker.observe(k * block, block, origin + (k + 1) * block_ns, None)
    tracker.reset()
    tracker.observe(10 * block, block, origin + 11 * block_ns + 300_000_000, None)
    assert tracker.stamp_of(10 * block) == origin + 10 * block_ns + 300_000_000
    assert tracker.resyncs == 0
    # Without reset, a lasting jump re-anchors once most of the window has moved past it.
    for k in range(11, 100):
        tracker.observe(k * block, block, origin + (k + 1) * block_ns + 900_000_000, None)
    assert tracker.resyncs == 1
    assert tracker.stamp_of(100 * block) == origin + 100 * block_ns + 900_000_000


def test_unknown_device_names_the_available_ones(pulse_server) -> None:
    names = [d.name for d in list_input_devices()]
    assert "pulse" in names
    with pytest.raises(ConfigError) as excinfo:
        find_input_device("no_such_microphone")
    message = str(excinfo.value)
    assert "no_such_microphone" in message
    assert "'pulse'" in message
    with pytest.raises(ConfigError, match="available input devices"):
        find_input_device("999")
    assert find_input_device("pulse").name == "pulse"
    assert find_input_device(find_input_device("pulse").index).name == "pulse"


@pytest.mark.parametrize("sample_format", ["S16LE", "F32LE"])
def test_capture_returns_what_was_played_with_capture_stamps(pulse_server, sample_format) -> None:
    played = binaural_chirps(0.8)
    config = CaptureConfig(device="pulse", sample_format=sample_format, chunk_ms=20)
    chunks = []
    with AudioCapture(config) as capture:
        chunks.append(capture.read(timeout=5.0))  # the stream runs
        playback = pulse_server.play(played)
        playback.wait()
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            chunks.append(capture.read(timeout=2.0))
        stats = capture.stats()
    assert stats.overflows == 0 and stats.dropped_chunks == 0
    assert [c.index for c in chunks] == list(range(len(chunks)))
    stamps = np.array([c.stamp_ns for c in chunks])
    np.testing.assert_allclose(np.diff(stamps), config.chunk_ns, atol=0.5e6)

    data = b"".join(c.to_bytes() for c in chunks)
    captured = decode_interleaved(data, sample_format, 2)
    corr_l, lag_l = correlation_at_best_lag(captured[:, 0], played[:, 0])
    corr_r, lag_r = correlation_at_best_lag(captured[:, 1], played[:, 1])
    assert corr_l > 0.9 and corr_r > 0.9
    assert abs(lag_l - lag_r) <= 1
    swapped, _ = correlation_at_best_lag(captured[:, 0], played[:, 1])
    assert swapped < 0.3
    # The stamp of the first played frame against the time it was written to the player. A null
    # sink renders the time elapsed since its previous render in one go and mixes new input at
    # the start of it, so the frame can enter the capture up to one render period (~20 ms)
    # before it was written; later means capture and delivery latency.
    captured_ns = chunks[0].stamp_ns + lag_l * 1e9 / RATE
    after_write_ms = (captured_ns - playback.written_ns) / 1e6
    print(f"{sample_format}: stamp of first played frame - write time: {after_write_ms:+.1f} ms")
    assert -30.0 < after_write_ms < 50.0
