"""Mono source signals: built-in generators that need no data, espeak-ng speech, audio folders.

Every generator returns a (frames,) float32 signal at the requested sample rate, scaled to an
RMS of ``SOURCE_RMS`` over its active (non-silent) part with peaks below 1, and is a pure
function of its ``rng`` (same seed, same signal).
"""

from __future__ import annotations

import math
import shutil
import subprocess
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import butter, lfilter, resample_poly, sosfilt

from slfm_ros.core.errors import ConfigError, DatasetError, InputFormatError
from slfm_ros.core.sim.splits import SPLITS, split_of

Signal = npt.NDArray[np.float32]

SOURCE_RMS = 0.1
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg")
SOURCE_KINDS = ("speech", "espeak", "music", "noise", "intermittent_speech", "folder")

# (F1, F2, F3) in Hz of a few vowels of an adult voice; scaled per speaker.
_VOWELS = np.array(
    [
        [730, 1090, 2440],  # a
        [530, 1840, 2480],  # e
        [270, 2290, 3010],  # i
        [570, 840, 2410],  # o
        [300, 870, 2240],  # u
        [660, 1720, 2410],  # ae
        [490, 1350, 1690],  # er
        [640, 1190, 2390],  # uh
    ],
    dtype=np.float64,
)
_WORDS = (
    "the robot turns toward a sound in the room and listens while the camera moves "
    "left right here there speech music door window table voice kitchen hallway seven "
    "green quiet bright morning evening please follow me where is it coming from today"
).split()


def _check_duration(duration_s: float, sample_rate: int) -> int:
    if sample_rate <= 0 or int(sample_rate) != sample_rate:
        raise ConfigError(f"sample_rate must be a positive integer in Hz, got {sample_rate}")
    frames = int(round(duration_s * sample_rate))
    if frames < 1:
        raise ConfigError(f"duration_s must give at least one sample, got {duration_s} s")
    return frames


def normalise_rms(signal: npt.ArrayLike, rms: float = SOURCE_RMS) -> Signal:
    """Scale to ``rms`` over the active part (frames above -50 dB of the peak); peak <= 0.99."""
    x = np.asarray(signal, dtype=np.float64)
    peak = float(np.max(np.abs(x))) if x.size else 0.0
    if peak == 0.0:
        return x.astype(np.float32)
    active = x[np.abs(x) > peak * 10 ** (-50 / 20)]
    x = x * (rms / math.sqrt(float(np.mean(active**2))))
    new_peak = float(np.max(np.abs(x)))
    if new_peak > 0.99:
        x *= 0.99 / new_peak
    return x.astype(np.float32)


def _resonator(freq: float, bandwidth: float, sample_rate: int) -> tuple[np.ndarray, np.ndarray]:
    """Two-pole resonator with unit gain at DC."""
    r = math.exp(-math.pi * bandwidth / sample_rate)
    c = 2.0 * r * math.cos(2.0 * math.pi * freq / sample_rate)
    a = np.array([1.0, -c, r * r])
    return np.array([a.sum()]), a


def _glottal_source(
    f0: npt.NDArray[np.float64], sample_rate: int, open_quotient: float
) -> np.ndarray:
    """Derivative of a Rosenberg glottal pulse train following the pitch track ``f0`` (Hz)."""
    phase = np.mod(np.cumsum(f0 / sample_rate), 1.0)
    rise = 0.66 * open_quotient
    pulse = np.where(
        phase < rise,
        0.5 * (1.0 - np.cos(math.pi * phase / rise)),
        np.where(
            phase < open_quotient,
            np.cos(0.5 * math.pi * (phase - rise) / (open_quotient - rise)),
            0.0,
        ),
    )
    return np.diff(pulse, prepend=0.0) * sample_rate / 1000.0  # lip radiation ~ derivative


def speech_like(duration_s: float, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Speech-like signal: voiced syllables with formants, pitch contour, consonants, pauses.

    A Rosenberg glottal pulse train whose pitch (speaker base 80-250 Hz) follows phrase
    declination, syllable accents and jitter, filtered by three time-varying formant
    resonators moving between vowel targets and two fixed higher formants; fricative noise
    at some syllable onsets; syllable-rate (3-6 Hz) amplitude envelopes; phrases of
    0.6-2.5 s separated by pauses.
    """
    frames = _check_duration(duration_s, sample_rate)
    nyq = 0.5 * sample_rate
    base_f0 = rng.uniform(80.0, 250.0)
    formant_scale = np.clip(rng.normal(1.0 + 0.25 * (base_f0 - 80.0) / 170.0, 0.05), 0.85, 1.35)
    envelope = np.zeros(frames)
    f0 = np.full(frames, base_f0)
    targets = np.zeros((frames, 3))
    noise_env = np.zeros(frames)
    t = int(rng.uniform(0.0, min(0.3, 0.1 * duration_s)) * sample_rate)
    while t < frames:
        phrase_end = min(frames, t + int(rng.uniform(0.6, 2.5) * sample_rate))
        phrase_start = t
        while t < phrase_end:
            n = int(rng.uniform(1 / 6, 1 / 3) * sample_rate)
            seg = slice(t, min(t + n, frames))
            length = seg.stop - seg.start
            ramp = np.sin(np.linspace(0, math.pi, length)) ** rng.uniform(0.5, 1.5)
            envelope[seg] = ramp * rng.uniform(0.5, 1.0)
            vowel = _VOWELS[rng.integers(len(_VOWELS))] * formant_scale
            targets[seg] = vowel
            progress = (np.arange(seg.start, seg.stop) - phrase_start) / max(
                1, phrase_end - phrase_start
            )
            accent = rng.uniform(-0.08, 0.15)
            f0[seg] = base_f0 * (1.12 - 0.25 * progress + accent * ramp)
            if rng.random() < 0.45:  # fricative onset
                m = min(length, int(rng.uniform(0.03, 0.09) * sample_rate))
                noise_env[seg.start : seg.start + m] = np.hanning(m) * rng.uniform(0.1, 0.4)
            t += n
        t = phrase_end + int(rng.uniform(0.1, 0.6) * sample_rate)
    # Smooth formant transitions (coarticulation) and add pitch jitter.
    smooth = max(3, min(frames, int(0.04 * sample_rate)))
    kernel = np.hanning(smooth) / np.hanning(smooth).sum()
    targets = np.stack([np.convolve(targets[:, k], kernel, mode="same") for k in range(3)], 1)
    targets = np.where(targets > 50, targets, _VOWELS[7] * formant_scale)
    # Jitter: a random walk with its slow drift removed (cycle-to-cycle irregularity only).
    jitter = np.cumsum(rng.normal(0.0, 0.002, frames))
    width = max(1, min(frames, sample_rate // 10))
    jitter -= np.convolve(jitter, np.ones(width) / width, mode="same")
    f0 = np.clip(f0 * (1.0 + jitter), 60.0, 320.0)
    voiced = _glottal_source(f0, sample_rate, rng.uniform(0.5, 0.7))
    voiced += rng.normal(0.0, 0.02, frames)  # aspiration
    # Formant cascade, updated every 5 ms with filter state carried across blocks.
    block = max(1, int(0.005 * sample_rate))
    bandwidths = (80.0, 100.0, 140.0)
    out = np.empty(frames)
    states = [np.zeros(2) for _ in range(3)]
    for start in range(0, frames, block):
        chunk = voiced[start : start + block]
        for k in range(3):
            freq = min(float(targets[min(start + block // 2, frames - 1), k]), 0.45 * sample_rate)
            b, a = _resonator(freq, bandwidths[k], sample_rate)
            chunk, states[k] = lfilter(b, a, chunk, zi=states[k])
        out[start : start + block] = chunk
    # Fixed higher formants (F4, F5) keep the spectrum above 2.5 kHz speech-like.
    for freq, bandwidth in ((3300.0, 250.0), (4300.0, 350.0)):
        if freq * formant_scale < 0.45 * sample_rate:
            b, a = _resonator(freq * formant_scale, bandwidth, sample_rate)
            out = lfilter(b, a, out)
    out = lfilter([1.0, -0.6], [1.0], out)  # lip radiation / presence tilt
    out *= envelope
    voiced_level = float(np.sqrt(np.mean(out**2))) or 1.0
    band = [min(2500.0, 0.5 * nyq) / nyq, min(7000.0, 0.95 * nyq) / nyq]
    fricative = sosfilt(butter(4, band, btype="band", output="sos"), rng.normal(0.0, 1.0, frames))
    out += fricative * noise_env * voiced_level * 5.0
    return normalise_rms(out)


def music_like(duration_s: float, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Tonal music-like signal: a chord progression, a melody and a bass line with rhythm.

    Equal-tempered notes in a random key and tempo (70-150 bpm); each voice has its own
    harmonic timbre (random spectral slope, slight inharmonicity and vibrato) and an
    attack-decay envelope; optional percussive noise hits on the beats.
    """
    frames = _check_duration(duration_s, sample_rate)
    out = np.zeros(frames)
    beat = 60.0 / rng.uniform(70.0, 150.0)
    root = int(rng.integers(45, 57))  # MIDI note of the key's tonic
    minor = bool(rng.random() < 0.4)
    scale = np.array([0, 2, 3, 5, 7, 8, 10] if minor else [0, 2, 4, 5, 7, 9, 11])
    progression = rng.choice([0, 3, 4, 5], size=64)
    progression[0] = 0

    def midi_hz(note: float) -> float:
        return 440.0 * 2.0 ** ((note - 69.0) / 12.0)

    def note(start_s: float, length_s: float, pitch: float, amp: float, timbre: dict) -> None:
        s = int(start_s * sample_rate)
        n = int(length_s * sample_rate)
        if s >= frames or n <= 0:
            return
        n = min(n, frames - s)
        tt = np.arange(n) / sample_rate
        f = midi_hz(pitch)
        vib = 1.0 + timbre["vibrato"] * np.sin(2 * math.pi * 5.5 * tt)
        env = (1.0 - np.exp(-tt / timbre["attack"])) * np.exp(-tt / timbre["decay"])
        env *= np.minimum(1.0, (n - np.arange(n)) / max(1, int(0.01 * sample_rate)))
        wave = np.zeros(n)
        base_phase = 2 * math.pi * f * np.cumsum(vib) / sample_rate
        for h in range(1, 30):
            stretch = h * math.sqrt(1.0 + timbre["inharm"] * h * h)  # stiff-string partials
            if f * stretch >= 0.45 * sample_rate:
                break
            wave += h ** (-timbre["slope"]) * np.sin(
                stretch * base_phase + rng.uniform(0, 2 * math.pi)
            )
        out[s : s + n] += amp * env * wave

    def timbre() -> dict:
        return {
            "slope": rng.uniform(0.8, 2.0),
            "inharm": rng.uniform(0.0, 2e-4),
            "vibrato": rng.uniform(0.0, 0.004),
            "attack": rng.uniform(0.003, 0.03),
            "decay": rng.uniform(0.3, 1.5),
        }

    chord_t, lead_t, bass_t = timbre(), timbre(), timbre()
    bar = 4 * beat
    n_bars = int(math.ceil(duration_s / bar)) + 1
    for i in range(n_bars):
        degree = int(progression[i % 64])
        chord = [scale[(degree + k) % 7] + 12 * ((degree + k) // 7) for k in (0, 2, 4)]
        for c in chord:
            note(i * bar, bar, root + 12 + c, 0.25, chord_t)
        note(i * bar, 2 * beat, root + chord[0] - 12, 0.35, bass_t)
        note(i * bar + 2 * beat, 2 * beat, root + chord[0] - 12, 0.3, bass_t)
        t_in_bar = 0.0
        while t_in_bar < bar - 1e-9:
            length = float(rng.choice([0.5, 1.0, 1.0, 2.0])) * beat
            if rng.random() < 0.85:
                step = int(rng.integers(0, 7))
                note(i * bar + t_in_bar, length, root + 24 + scale[step], 0.3, lead_t)
            t_in_bar += length
    if rng.random() < 0.5:
        hits = np.arange(0.0, duration_s, beat)
        for h in hits:
            s = int(h * sample_rate)
            n = min(int(0.08 * sample_rate), frames - s)
            if n > 0:
                out[s : s + n] += (
                    0.2 * rng.normal(0, 1, n) * np.exp(-np.arange(n) / (0.015 * sample_rate))
                )
    return normalise_rms(out)


def _coloured_noise(
    frames: int, slope_db_per_octave: float, rng: np.random.Generator
) -> np.ndarray:
    spec = np.fft.rfft(rng.normal(0.0, 1.0, frames))
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    spec *= f ** (slope_db_per_octave / (20.0 * math.log10(2.0)))
    return np.fft.irfft(spec, n=frames)


def noise_burst(duration_s: float, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Bursts (50-600 ms) of coloured, band-limited noise separated by short gaps."""
    frames = _check_duration(duration_s, sample_rate)
    out = np.zeros(frames)
    t = int(rng.uniform(0.0, 0.1) * sample_rate)
    nyq = 0.5 * sample_rate
    while t < frames:
        n = min(int(rng.uniform(0.05, 0.6) * sample_rate), frames - t)
        burst = _coloured_noise(n, rng.uniform(-6.0, 0.0), rng)
        lo = rng.uniform(50.0, 500.0)
        hi = rng.uniform(min(2000.0, 0.8 * nyq), 0.95 * nyq)
        burst = sosfilt(butter(2, [lo / nyq, hi / nyq], btype="band", output="sos"), burst)
        ramp = max(1, min(n // 4, int(0.005 * sample_rate)))
        win = np.ones(n)
        win[:ramp] = np.linspace(0, 1, ramp)
        win[-ramp:] = np.linspace(1, 0, ramp)
        out[t : t + n] = burst * win * rng.uniform(0.3, 1.0) / (np.std(burst) + 1e-12)
        t += n + int(rng.uniform(0.02, 0.3) * sample_rate)
    return normalise_rms(out)


def intermittent(
    base_signal: npt.ArrayLike,
    rng: np.random.Generator,
    sample_rate: int = 16000,
    on_s: tuple[float, float] = (0.3, 1.5),
    off_s: tuple[float, float] = (0.1, 0.8),
) -> Signal:
    """Gate ``base_signal`` on and off: on for ``on_s``, silent for ``off_s`` (uniform ranges).

    Starts on, so the result is never entirely silent; 10 ms ramps avoid clicks.
    """
    x = np.asarray(base_signal, dtype=np.float64)
    if x.ndim != 1:
        raise InputFormatError(f"intermittent expects a mono (frames,) signal, got {x.shape}")
    gate = np.zeros(x.size)
    ramp = max(1, int(0.01 * sample_rate))
    t = 0
    while t < x.size:
        n = int(rng.uniform(*on_s) * sample_rate)
        gate[t : t + n] = 1.0
        t += n + int(rng.uniform(*off_s) * sample_rate)
    gate = np.convolve(gate, np.ones(ramp) / ramp, mode="same")
    return (x * gate).astype(np.float32)


def espeak_available() -> bool:
    """True when the ``espeak-ng`` program is on PATH."""
    return shutil.which("espeak-ng") is not None


def _random_text(rng: np.random.Generator, n_words: int) -> str:
    return " ".join(str(w) for w in rng.choice(_WORDS, size=n_words))


def espeak_speech(text: str | None, sample_rate: int, rng: np.random.Generator) -> Signal:
    """Speech synthesised by espeak-ng with a random voice, speed and pitch.

    text: what to say; None makes a random sentence from a small vocabulary. Raises ConfigError
    when espeak-ng is not installed (``apt install espeak-ng``).
    """
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise ConfigError(
            "source kind 'espeak' needs the espeak-ng program; install it "
            "(apt install espeak-ng) or use source kind 'speech'"
        )
    if text is None:
        text = _random_text(rng, int(rng.integers(6, 14)))
    voice = str(rng.choice(["en", "en-us", "en-gb-x-rp", "en+m3", "en+f2", "en+f4", "en-us+m5"]))
    speed = int(rng.integers(130, 190))
    pitch = int(rng.integers(20, 80))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "speech.wav"
        cmd = [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        if result.returncode != 0 or not wav.is_file():
            raise ConfigError(f"espeak-ng failed ({result.returncode}): {result.stderr.strip()}")
        audio, rate = sf.read(str(wav), dtype="float32", always_2d=True)
    mono = _resample(audio.mean(axis=1), int(rate), int(sample_rate))
    return normalise_rms(mono)


def _resample(x: npt.NDArray, from_rate: int, to_rate: int) -> npt.NDArray[np.float64]:
    if from_rate == to_rate:
        return np.asarray(x, dtype=np.float64)
    ratio = Fraction(int(to_rate), int(from_rate))
    return resample_poly(np.asarray(x, dtype=np.float64), ratio.numerator, ratio.denominator)


class SourceFolder:
    """Mono clips from a folder of wav/flac/ogg files (searched recursively), resampled.

    split: keep only files whose name hashes to that split (``split_of``); None keeps all.
    """

    def __init__(
        self,
        path: str | Path,
        sample_rate: int = 16000,
        split: str | None = None,
        splits: tuple[float, float, float] = (0.8, 0.1, 0.1),
    ):
        self.path = Path(path)
        self.sample_rate = int(sample_rate)
        if not self.path.is_dir():
            raise DatasetError(
                f"source folder not found: {self.path}; give a folder of audio files"
            )
        if split is not None and split not in SPLITS:
            raise ConfigError(f"split must be one of {SPLITS} or None, got {split!r}")
        files = sorted(
            p for p in self.path.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_EXTENSIONS
        )
        if not files:
            raise DatasetError(
                f"no {'/'.join(AUDIO_EXTENSIONS)} files under {self.path}; add audio clips"
            )
        if split is not None:
            files = [p for p in files if split_of(p.name, splits) == split]
            if not files:
                raise DatasetError(
                    f"none of the audio files under {self.path} falls in split {split!r}; "
                    "add more files or change the split ratios"
                )
        self.files = files
        self.split = split

    def __len__(self) -> int:
        return len(self.files)

    def load(self, file: str | Path) -> Signal:
        """Whole file, mono (mean of channels), at ``sample_rate``."""
        audio, rate = self._read(Path(file))
        return _resample(audio, rate, self.sample_rate).astype(np.float32)

    def _read(self, path: Path, start: int = 0, stop: int | None = None) -> tuple[np.ndarray, int]:
        try:
            audio, rate = sf.read(
                str(path), start=start, stop=stop, dtype="float32", always_2d=True
            )
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputFormatError(f"cannot read audio file {path}: {exc}") from exc
        return audio.mean(axis=1), int(rate)

    def random_clip(self, duration_s: float, rng: np.random.Generator) -> Signal:
        """A random crop of ``duration_s`` from a random file; short files are looped."""
        frames = _check_duration(duration_s, self.sample_rate)
        path = self.files[int(rng.integers(len(self.files)))]
        try:
            info = sf.info(str(path))
        except (sf.LibsndfileError, RuntimeError) as exc:
            raise InputFormatError(f"cannot read audio file {path}: {exc}") from exc
        native = int(math.ceil(duration_s * info.samplerate)) + 64
        if info.frames > native:
            start = int(rng.integers(0, info.frames - native + 1))
            audio, rate = self._read(path, start, start + native)
        else:
            audio, rate = self._read(path)
        clip = _resample(audio, rate, self.sample_rate)
        if clip.size == 0 or not np.any(clip):
            raise InputFormatError(f"audio file {path} is empty or silent")
        if clip.size < frames:
            clip = np.tile(clip, int(math.ceil(frames / clip.size)))
        return normalise_rms(clip[:frames])


def make_source_signal(
    kind: str,
    duration_s: float,
    sample_rate: int,
    rng: np.random.Generator,
    folder: SourceFolder | None = None,
) -> Signal:
    """(frames,) float32 source of ``kind``: speech, espeak, music, noise,
    intermittent_speech or folder (needs ``folder``)."""
    frames = _check_duration(duration_s, sample_rate)
    if kind == "speech":
        return speech_like(duration_s, sample_rate, rng)
    if kind == "music":
        return music_like(duration_s, sample_rate, rng)
    if kind == "noise":
        return noise_burst(duration_s, sample_rate, rng)
    if kind == "intermittent_speech":
        base = speech_like(duration_s, sample_rate, rng)
        return normalise_rms(intermittent(base, rng, sample_rate))
    if kind == "espeak":
        pieces: list[np.ndarray] = []
        total = 0
        while total < frames:
            piece = espeak_speech(None, sample_rate, rng)
            pause = np.zeros(int(rng.uniform(0.1, 0.5) * sample_rate), dtype=np.float32)
            pieces += [piece, pause]
            total += piece.size + pause.size
        return normalise_rms(np.concatenate(pieces)[:frames])
    if kind == "folder":
        if folder is None:
            raise ConfigError("source kind 'folder' needs a SourceFolder (folder=...)")
        if folder.sample_rate != sample_rate:
            raise ConfigError(
                f"SourceFolder resamples to {folder.sample_rate} Hz but {sample_rate} Hz was asked"
            )
        return folder.random_clip(duration_s, rng)
    raise ConfigError(f"unknown source kind {kind!r}; expected one of {list(SOURCE_KINDS)}")
