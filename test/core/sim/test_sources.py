"""Source generators: determinism, rate/length, signal character, audio folders and splits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.sim.sources import (
    SOURCE_RMS,
    SourceFolder,
    espeak_available,
    espeak_speech,
    intermittent,
    make_source_signal,
    speech_like,
    split_of,
)

BUILT_IN = ["speech", "music", "noise", "intermittent_speech"]


@pytest.mark.parametrize("kind", BUILT_IN)
@pytest.mark.parametrize("rate", [16000, 22050])
def test_generators_are_deterministic_with_the_requested_length(kind: str, rate: int) -> None:
    a = make_source_signal(kind, 1.5, rate, np.random.default_rng(11))
    b = make_source_signal(kind, 1.5, rate, np.random.default_rng(11))
    c = make_source_signal(kind, 1.5, rate, np.random.default_rng(12))
    assert a.shape == (int(1.5 * rate),) and a.dtype == np.float32
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.all(np.isfinite(a)) and np.max(np.abs(a)) < 1.0
    active = a[np.abs(a) > 1e-3]
    assert np.sqrt(np.mean(active**2)) == pytest.approx(SOURCE_RMS, rel=0.5)


def _f0(frame: np.ndarray, rate: int) -> float:
    ac = np.correlate(frame, frame, mode="full")[frame.size - 1 :]
    lo, hi = rate // 400, rate // 50
    return rate / (lo + int(np.argmax(ac[lo:hi])))


def test_speech_like_has_voice_pitch_formants_and_pauses() -> None:
    rate = 16000
    x = speech_like(4.0, rate, np.random.default_rng(5)).astype(np.float64)
    frames = x[: x.size // 480 * 480].reshape(-1, 480)  # 30 ms frames
    level = 10 * np.log10(np.mean(frames**2, axis=1) + 1e-12)
    assert np.mean(level < level.max() - 30) > 0.05  # pauses between phrases
    loud = frames[level > level.max() - 6]
    pitches = np.array([_f0(f, rate) for f in loud])
    assert 60 < np.median(pitches) < 330
    spectrum = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(x.size, 1 / rate)
    # Most energy in the formant region, some above 2 kHz (F3, fricatives).
    assert spectrum[(f > 200) & (f < 1200)].sum() > spectrum[f > 4000].sum()
    assert spectrum[f > 2000].sum() > 0.01 * spectrum.sum()


def test_music_like_is_tonal() -> None:
    rate = 16000
    x = make_source_signal("music", 2.0, rate, np.random.default_rng(2)).astype(np.float64)
    spectrum = np.abs(np.fft.rfft(x[:16384] * np.hanning(16384)))
    # Harmonic lines: the strongest bins stand far above the median bin.
    assert np.percentile(spectrum, 99.9) > 100 * np.median(spectrum)


def test_intermittent_gates_with_silences() -> None:
    base = np.ones(32000, dtype=np.float32)
    gated = intermittent(base, np.random.default_rng(1), 16000)
    assert gated[0] > 0.4  # starts on
    assert 0.2 < np.mean(gated < 1e-6) < 0.8 and 0.2 < np.mean(gated > 0.999) < 0.9


@pytest.mark.skipif(not espeak_available(), reason="espeak-ng not installed")
def test_espeak_speech_is_synthesised_at_the_requested_rate() -> None:
    x = espeak_speech("the robot turns left", 16000, np.random.default_rng(0))
    assert x.dtype == np.float32 and 0.5 * 16000 < x.size < 4 * 16000
    clip = make_source_signal("espeak", 1.0, 16000, np.random.default_rng(0))
    assert clip.size == 16000 and np.array_equal(
        clip, make_source_signal("espeak", 1.0, 16000, np.random.default_rng(0))
    )


def _write_tone(path: Path, rate: int, seconds: float, freq: float, channels: int = 1) -> None:
    t = np.arange(int(rate * seconds)) / rate
    tone = 0.5 * np.sin(2 * np.pi * freq * t)
    sf.write(str(path), np.stack([tone] * channels, axis=1) if channels > 1 else tone, rate)


def test_folder_source_resamples_44k1_to_16k(tmp_path: Path) -> None:
    _write_tone(tmp_path / "tone.wav", 44100, 2.0, 1000.0, channels=2)
    folder = SourceFolder(tmp_path, 16000)
    whole = folder.load(folder.files[0])
    assert whole.size == pytest.approx(32000, abs=1)
    clip = folder.random_clip(1.0, np.random.default_rng(0))
    assert clip.size == 16000
    spectrum = np.abs(np.fft.rfft(clip * np.hanning(clip.size)))
    assert np.fft.rfftfreq(clip.size, 1 / 16000)[np.argmax(spectrum)] == pytest.approx(1000, abs=2)
    assert np.array_equal(clip, folder.random_clip(1.0, np.random.default_rng(0)))


def test_folder_reads_flac_and_ogg_and_loops_short_clips(tmp_path: Path) -> None:
    _write_tone(tmp_path / "a.flac", 48000, 0.3, 440.0)
    (tmp_path / "sub").mkdir()
    _write_tone(tmp_path / "sub" / "b.ogg", 22050, 0.3, 440.0)
    (tmp_path / "notes.txt").write_text("ignored")
    folder = SourceFolder(tmp_path, 16000)
    assert sorted(p.name for p in folder.files) == ["a.flac", "b.ogg"]
    clip = make_source_signal("folder", 1.0, 16000, np.random.default_rng(3), folder=folder)
    assert clip.size == 16000 and np.mean(np.abs(clip) > 1e-3) > 0.9


def test_split_of_is_stable_and_folders_never_share_clips(tmp_path: Path) -> None:
    names = [f"clip_{i:04d}.wav" for i in range(600)]
    splits = [split_of(n) for n in names]
    assert splits == [split_of(n) for n in names]
    counts = {s: splits.count(s) for s in ("train", "val", "test")}
    assert 420 < counts["train"] < 540 and counts["val"] > 30 and counts["test"] > 30
    assert split_of("dir_a/x.wav") == split_of("dir_b/x.wav")  # decided by the file name
    for i in range(30):
        _write_tone(tmp_path / f"s{i}.wav", 8000, 0.05, 300.0)
    parts = [
        set(SourceFolder(tmp_path, 16000, split=s, splits=(0.5, 0.25, 0.25)).files)
        for s in ("train", "val", "test")
    ]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(len(p) for p in parts) == 30


def test_folder_and_kind_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="not found"):
        SourceFolder(tmp_path / "missing")
    with pytest.raises(DatasetError, match=r"no \.wav"):
        SourceFolder(tmp_path)
    with pytest.raises(ConfigError, match="needs a SourceFolder"):
        make_source_signal("folder", 1.0, 16000, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="unknown source kind"):
        make_source_signal("birdsong", 1.0, 16000, np.random.default_rng(0))
