"""Cached binaural cues of audio-only examples: rendering is the slow part, so it happens once.

A cache file (``.npz``) holds, for ``scenes * windows_per_scene`` windows: the cue vectors
(N, dim) float32, the training labels (N,) (rad, receiver frame, ``AudioExample.label``), the
source azimuths and elevations (N,) (rad), the receivers' largest
interaural delay (N,) s, the receiver kind of every window and the settings that made it
(example config, cue config, seed, scene count). ``load_cue_cache`` refuses a file whose
settings differ from the ones asked for, so a stale cache is never trained on silently.
"""

from __future__ import annotations

import json
import multiprocessing as mp
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from slfm_ros.core.atomic_io import atomic_write_bytes
from slfm_ros.core.dsp.binaural_cues import FRONT_END_VERSION, CueConfig, binaural_cues
from slfm_ros.core.errors import DatasetError
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, example_rng, render_examples

_JOB: tuple[AudioExampleConfig, CueConfig, int] | None = None


def _init(job: tuple[AudioExampleConfig, CueConfig, int]) -> None:
    global _JOB
    _JOB = job


Row = tuple[np.ndarray, float, float, float, float, str]


def _scene(index: int) -> list[Row]:
    assert _JOB is not None
    examples_cfg, cue_cfg, seed = _JOB
    out = []
    for ex in render_examples(examples_cfg, example_rng(seed, index)):
        cues = binaural_cues(ex.window, cue_cfg)
        out.append((cues, ex.label, ex.azimuth, ex.elevation, ex.max_itd_s, ex.receiver_kind))
    return out


def cache_settings(
    examples_cfg: AudioExampleConfig, cue_cfg: CueConfig, seed: int, scenes: int
) -> dict[str, Any]:
    return {
        "examples": json.loads(json.dumps(asdict(examples_cfg))),
        "cues": cue_cfg.to_dict(),
        "front_end_version": FRONT_END_VERSION,
        "seed": int(seed),
        "scenes": int(scenes),
    }


def build_cue_cache(
    path: str | Path,
    examples_cfg: AudioExampleConfig,
    cue_cfg: CueConfig,
    seed: int,
    scenes: int,
    workers: int = 1,
    start_from: str | Path | None = None,
) -> Path:
    """Render ``scenes`` scenes, compute their cues and write the cache (progress on stderr).

    start_from: a cache of the same settings with fewer scenes (``smaller_cache``); its rows
    are kept and only the scenes after them are rendered. Scene k is drawn from
    ``example_rng(seed, k)`` alone, so the result equals a render from scratch.
    """
    path = Path(path)
    if examples_cfg.sample_rate != cue_cfg.sample_rate:
        raise DatasetError(
            f"examples at {examples_cfg.sample_rate} Hz but cues at {cue_cfg.sample_rate} Hz"
        )
    kept: dict[str, np.ndarray] = {}
    first = 0
    if start_from is not None:
        kept = read_cache(start_from)
        first = int(json.loads(str(kept["settings"]))["scenes"])
        if first > scenes:
            raise DatasetError(f"{start_from} holds {first} scenes, more than the {scenes} asked")
    job = (examples_cfg, cue_cfg, int(seed))
    rows: list[Row] = []
    start = time.monotonic()
    todo = range(first, scenes)
    if workers > 1:
        ctx = mp.get_context("fork")
        with ctx.Pool(workers, initializer=_init, initargs=(job,)) as pool:
            for k, items in enumerate(pool.imap(_scene, todo, chunksize=4)):
                rows += items
                render_progress(k + 1, len(todo), start)
    else:
        _init(job)
        for k, index in enumerate(todo):
            rows += _scene(index)
            render_progress(k + 1, len(todo), start)
    sys.stderr.write("\n")
    arrays = {
        "cues": np.stack([r[0] for r in rows]).astype(np.float32) if rows else None,
        "label": np.array([r[1] for r in rows], dtype=np.float64),
        "azimuth": np.array([r[2] for r in rows], dtype=np.float64),
        "elevation": np.array([r[3] for r in rows], dtype=np.float64),
        "max_itd_s": np.array([r[4] for r in rows], dtype=np.float64),
        "receiver_kind": np.array([r[5] for r in rows], dtype=str),
    }
    new: dict[str, np.ndarray] = {}
    for key, value in arrays.items():
        parts = [a for a in (kept.get(key), value) if a is not None and len(a)]
        new[key] = np.concatenate(parts) if parts else np.zeros((0,))
    import io

    buffer = io.BytesIO()
    np.savez(
        buffer,
        **new,
        settings=np.array(json.dumps(cache_settings(examples_cfg, cue_cfg, seed, scenes))),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def smaller_cache(folder: str | Path, prefix: str, settings: dict[str, Any]) -> Path | None:
    """The cache in ``folder`` with the most scenes among those made with ``settings`` except
    for fewer scenes (a start for ``build_cue_cache(start_from=...)``), or None."""
    best: tuple[int, Path] | None = None
    want = json.loads(json.dumps(settings))
    for candidate in sorted(Path(folder).glob(f"{prefix}-*.npz")):
        try:
            with np.load(candidate, allow_pickle=False) as data:
                found = json.loads(str(data["settings"]))
        except (OSError, ValueError, KeyError):
            continue
        scenes = int(found.get("scenes", 0))
        found["scenes"] = want["scenes"]
        if found == want and scenes < want["scenes"] and (best is None or scenes > best[0]):
            best = (scenes, candidate)
    return None if best is None else best[1]


def render_progress(done: int, total: int, start: float, unit: str = "scenes") -> None:
    """One progress line on stderr (every 20 items and at the end) of a cache being rendered."""
    if done % 20 and done != total:
        return
    rate = done / max(time.monotonic() - start, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    sys.stderr.write(f"\r  rendered {done}/{total} {unit}, {rate:.2f} {unit}/s, eta {eta:.0f} s ")
    sys.stderr.flush()


def cache_file(folder: str | Path, prefix: str, settings: dict[str, Any]) -> Path:
    """Where the cache of ``settings`` lives in ``folder`` (the name carries their hash)."""
    import hashlib

    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"{prefix}-{key}.npz"


def read_cache(
    path: str | Path, expected: dict[str, Any] | None = None, what: str = "cue cache"
) -> dict[str, np.ndarray]:
    """Arrays of a cache file; with ``expected`` (its settings), DatasetError when the file was
    made with other settings."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{what} not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    settings = json.loads(str(arrays["settings"]))
    if expected is not None and settings != json.loads(json.dumps(expected)):
        raise DatasetError(f"{path} was made with other settings; rebuild it (delete the file)")
    return arrays


def load_cue_cache(
    path: str | Path, expected: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Arrays of a cache file; with ``expected`` (``cache_settings(...)``), DatasetError when the
    file was made with other settings."""
    return read_cache(path, expected, "cue cache")
