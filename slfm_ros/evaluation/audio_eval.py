"""Sound-azimuth evaluation with real recordings and real heads or rooms.

Two ways to make binaural test clips with a known direction:

HRTF mode (``evaluate_hrtf``)
    Mono recordings from a folder (wav/flac/ogg, channels averaged) are rendered through a
    measured head (a SimpleFreeFieldHRIR SOFA file) at known horizontal azimuths: for every file,
    ``clips_per_file`` clips at random offsets, each at an azimuth uniform in
    (-max_azimuth_deg, max_azimuth_deg). ``reverb="room"`` places the head in a random shoebox
    room (image sources rendered through the same measured HRIRs) instead of free field.
BRIR mode (``evaluate_brirs``)
    Real binaural room impulse responses: a folder with 2-channel wav files and ``brirs.csv``
    (columns ``file,azimuth_deg``; azimuth in degrees, counter-clockwise from straight ahead,
    LEFT POSITIVE as in REP-103 - negate clockwise databases). Each BRIR is convolved with
    ``clips_per_brir`` random clips of the recordings.

Scores follow the protocol (``metrics``): predictions and truths folded to the front, mean and
median error, left/right accuracy. Clip i depends only on (seed, file index, i).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import soundfile as sf
from scipy.signal import oaconvolve

from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.errors import ConfigError, DatasetError, InputFormatError
from slfm_ros.core.estimators.base import AudioEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.evaluation.metrics import AzimuthReport, score_azimuth

REVERB_CHOICES = ("none", "room")
AUDIO_SUFFIXES = (".wav", ".flac", ".ogg")
BRIR_TABLE = "brirs.csv"


@dataclass(frozen=True)
class AudioProtocol:
    """Clip settings. sample_rate Hz, clip_seconds s, angles in degrees, snr_db None = no noise
    added (real recordings carry their own)."""

    sample_rate: int = 16000
    clip_seconds: float = 2.55
    clips_per_file: int = 8
    clips_per_brir: int = 4
    max_azimuth_deg: float = 90.0
    reverb: str = "none"
    snr_db: float | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        if self.reverb not in REVERB_CHOICES:
            raise ConfigError(f"--reverb must be one of {REVERB_CHOICES}, got {self.reverb!r}")
        if self.sample_rate < 4000 or self.clip_seconds * self.sample_rate < 1024:
            raise ConfigError(
                f"need sample_rate >= 4000 Hz and clips of >= 1024 samples, got "
                f"{self.sample_rate} Hz x {self.clip_seconds} s"
            )
        if self.clips_per_file < 1 or self.clips_per_brir < 1:
            raise ConfigError("clips per file / per BRIR must be >= 1")
        if not 0 < self.max_azimuth_deg <= 180:
            raise ConfigError(f"max azimuth must be in (0, 180] deg, got {self.max_azimuth_deg}")

    @property
    def clip_frames(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))


@dataclass
class ClipRecord:
    """One scored clip (angles in radians)."""

    source: str
    azimuth: float
    predicted: float
    valid: bool
    reason: str


@dataclass
class AudioResult:
    report: AzimuthReport
    records: list[ClipRecord] = field(default_factory=list)
    seconds_per_clip: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.report.as_dict())
        out["ms_per_clip"] = 1000.0 * self.seconds_per_clip
        return out


def list_audio_files(folder: str | Path) -> list[Path]:
    """Audio files (wav/flac/ogg) under ``folder``, recursively, sorted."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"source folder {root} does not exist; pass a folder of recordings")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in AUDIO_SUFFIXES)
    if not files:
        raise DatasetError(f"no {'/'.join(AUDIO_SUFFIXES)} files under {root}; add recordings")
    return files


def read_audio(path: Path) -> tuple[npt.NDArray[np.float32], int]:
    """(frames, channels) float32 and the sample rate; unreadable files raise InputFormatError."""
    try:
        audio, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, OSError) as exc:
        raise InputFormatError(f"cannot read audio file {path}: {exc}") from exc
    if audio.shape[0] == 0:
        raise InputFormatError(f"audio file {path} is empty")
    return audio, int(rate)


def read_mono(path: Path, sample_rate: int) -> npt.NDArray[np.float32]:
    """A recording as mono (mean of its channels) at ``sample_rate``; silence is an error."""
    audio, rate = read_audio(path)
    mono = resample(audio.mean(axis=1), rate, sample_rate)
    if not np.any(mono):
        raise InputFormatError(f"audio file {path} is silent; remove it from the source folder")
    return mono


def _clip(
    signal: npt.NDArray[np.float32], frames: int, rng: np.random.Generator
) -> npt.NDArray[np.float32]:
    """A random window of ``frames`` samples; short signals are repeated to fill it."""
    if signal.size < frames:
        signal = np.tile(signal, int(math.ceil(frames / signal.size)))
    start = int(rng.integers(0, signal.size - frames + 1))
    return np.asarray(signal[start : start + frames], dtype=np.float32)


def _score(
    items: Iterator[tuple[str, float, npt.NDArray[np.float32]]],
    estimator: AudioEstimator,
    sample_rate: int,
) -> AudioResult:
    records: list[ClipRecord] = []
    elapsed = 0.0
    for source, azimuth, audio in items:
        tic = time.perf_counter()
        estimate = estimator.estimate(audio, sample_rate)
        elapsed += time.perf_counter() - tic
        records.append(ClipRecord(source, azimuth, estimate.angle, estimate.valid, estimate.reason))
    if not records:
        raise DatasetError("no clips to evaluate")
    report = score_azimuth(
        [r.predicted for r in records], [r.azimuth for r in records], [r.valid for r in records]
    )
    return AudioResult(report, records, elapsed / len(records))


def hrtf_receiver(sofa_path: str | Path) -> Any:
    """The measured head of a SimpleFreeFieldHRIR SOFA file (InputFormatError otherwise)."""
    from slfm_ros.core.sim.receivers import make_receiver

    return make_receiver("sofa", path=str(sofa_path))


def hrtf_clips(
    receiver: Any, sources: list[Path], protocol: AudioProtocol
) -> Iterator[tuple[str, float, npt.NDArray[np.float32]]]:
    """(source name, true azimuth rad, (frames, 2) clip) rendered through ``receiver``."""
    from slfm_ros.core.sim.audio_scene import PlacedSource, add_diffuse_noise, render_view_audio
    from slfm_ros.core.sim.room import RirCache, sample_room

    sr = protocol.sample_rate
    frames = protocol.clip_frames
    limit = math.radians(protocol.max_azimuth_deg)
    cache = RirCache(max_items=8)
    for f, path in enumerate(sources):
        signal = read_mono(path, sr)
        rng = np.random.default_rng([protocol.seed, f])
        for _ in range(protocol.clips_per_file):
            azimuth = float(rng.uniform(-limit, limit))
            distance = float(rng.uniform(1.0, 3.0))
            room = sample_room(rng) if protocol.reverb == "room" else None
            lead = int(min(room.rt60_s, 1.0) * sr) if room is not None else receiver.n_taps(sr)
            window = _clip(signal, lead + frames, rng)
            audio = render_view_audio(
                [PlacedSource(window, azimuth, distance)], 0.0, receiver, sr, room, cache
            )[lead:]
            if protocol.snr_db is not None:
                audio = add_diffuse_noise(audio, protocol.snr_db, rng, sr, receiver)
            yield path.name, azimuth, _normalise(audio)


def _normalise(audio: npt.NDArray[np.floating]) -> npt.NDArray[np.float32]:
    peak = float(np.max(np.abs(audio)))
    return np.asarray(audio * (0.5 / peak) if peak > 0 else audio, dtype=np.float32)


def evaluate_hrtf(
    sofa_path: str | Path,
    sources_dir: str | Path,
    estimator: AudioEstimator,
    protocol: AudioProtocol,
    receiver: Any | None = None,
) -> AudioResult:
    """HRTF-mode evaluation (module docstring); ``receiver`` reuses an already loaded head."""
    sources = list_audio_files(sources_dir)
    head = receiver if receiver is not None else hrtf_receiver(sofa_path)
    return _score(hrtf_clips(head, sources, protocol), estimator, protocol.sample_rate)


@dataclass(frozen=True)
class Brir:
    name: str
    azimuth: float  # radians, REP-103
    response: npt.NDArray[np.float32]  # (taps, 2) at the protocol rate


def read_brirs(folder: str | Path, sample_rate: int) -> list[Brir]:
    """BRIRs listed in ``folder/brirs.csv`` (columns file, azimuth_deg), resampled."""
    root = Path(folder)
    if not root.is_dir():
        raise DatasetError(f"BRIR folder {root} does not exist")
    table = root / BRIR_TABLE
    if not table.is_file():
        raise DatasetError(
            f"{root} has no {BRIR_TABLE}; add one with columns file,azimuth_deg "
            "(degrees, left positive)"
        )
    try:
        with open(table, newline="", encoding="utf-8") as fh:
            rows = list(csv.DictReader(fh))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise InputFormatError(f"cannot read {table}: {exc}") from exc
    if not rows or not {"file", "azimuth_deg"} <= set(rows[0]):
        raise InputFormatError(
            f"{table}: expected a header with columns file,azimuth_deg and at least one row"
        )
    brirs = []
    for line, row in enumerate(rows, start=2):
        try:
            azimuth = math.radians(float(row["azimuth_deg"]))
        except (TypeError, ValueError) as exc:
            raise InputFormatError(
                f"{table} line {line}: azimuth_deg {row['azimuth_deg']!r} is not a number"
            ) from exc
        path = root / str(row["file"]).strip()
        if not path.is_file():
            raise DatasetError(f"{table} line {line}: file {path} does not exist")
        audio, rate = read_audio(path)
        if audio.shape[1] != 2:
            raise InputFormatError(
                f"BRIR {path} has {audio.shape[1]} channel(s); a BRIR needs 2 (left, right)"
            )
        brirs.append(Brir(path.name, azimuth, resample(audio, rate, sample_rate)))
    return brirs


def brir_clips(
    brirs: list[Brir], sources: list[Path], protocol: AudioProtocol
) -> Iterator[tuple[str, float, npt.NDArray[np.float32]]]:
    """(BRIR name, true azimuth rad, (frames, 2) clip) of sources convolved with each BRIR."""
    from slfm_ros.core.sim.audio_scene import add_diffuse_noise
    from slfm_ros.core.sim.receivers import make_receiver

    sr = protocol.sample_rate
    frames = protocol.clip_frames
    signals: dict[int, npt.NDArray[np.float32]] = {}
    noise_head = make_receiver("spherical_head") if protocol.snr_db is not None else None
    for b, brir in enumerate(brirs):
        rng = np.random.default_rng([protocol.seed, b])
        lead = min(brir.response.shape[0], sr)
        for _ in range(protocol.clips_per_brir):
            s = int(rng.integers(len(sources)))
            if s not in signals:
                signals[s] = read_mono(sources[s], sr)
            window = _clip(signals[s], lead + frames, rng).astype(np.float64)
            wet = oaconvolve(window[:, None], brir.response.astype(np.float64), axes=0)
            audio = wet[lead : lead + frames].astype(np.float32)
            if noise_head is not None and protocol.snr_db is not None:
                audio = add_diffuse_noise(audio, protocol.snr_db, rng, sr, noise_head)
            yield brir.name, brir.azimuth, _normalise(audio)


def evaluate_brirs(
    brir_dir: str | Path,
    sources_dir: str | Path,
    estimator: AudioEstimator,
    protocol: AudioProtocol,
) -> AudioResult:
    """BRIR-mode evaluation (module docstring)."""
    brirs = read_brirs(brir_dir, protocol.sample_rate)
    sources = list_audio_files(sources_dir)
    return _score(brir_clips(brirs, sources, protocol), estimator, protocol.sample_rate)


def brir_geometry(radius_m: float | None, spacing_m: float | None) -> InterauralGeometry:
    """ITD model for BRIR mode: a free-field pair when ``spacing_m`` is given, else a rigid
    spherical head of ``radius_m`` (default 0.0875 m) with its broadband-fitted ITD model."""
    from slfm_ros.core.geometry.interaural import FreeFieldPair
    from slfm_ros.core.sim.receivers import make_receiver

    if spacing_m is not None:
        return FreeFieldPair(spacing_m)
    radius = radius_m if radius_m is not None else 0.0875
    return make_receiver("spherical_head", radius_m=radius).geometry
