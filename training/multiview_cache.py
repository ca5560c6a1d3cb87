"""Cached binaural cues of multi-view audio examples (one scene heard from K receiver yaws).

A cache file (``.npz``) holds, for ``samples`` examples of K views each: the cue vectors
(N, K, dim) float32, the turns (N, K) rad (view 0: 0), the receivers' largest interaural
delay (N,) s, the receiver kind of every example, the settings that made it, and the target's
azimuth in every view (N, K) rad, its elevation (N,) rad and the horizontal direction on its
cone of confusion in every view (``label``, (N, K) rad). Azimuths and labels are there to
monitor and score a label-free run; nothing trains on them. ``load_multiview_cache`` refuses a
file made with other settings.
"""

from __future__ import annotations

import io
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
from slfm_ros.core.sim.audio_examples import (
    AudioExampleConfig,
    ViewTurns,
    example_rng,
    render_multiview,
)
from slfm_training.cue_cache import cache_file, read_cache, render_progress

_JOB: tuple[AudioExampleConfig, ViewTurns, CueConfig, int] | None = None
Row = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float, float, str]


def _init(job: tuple[AudioExampleConfig, ViewTurns, CueConfig, int]) -> None:
    global _JOB
    _JOB = job


def _sample(index: int) -> Row:
    assert _JOB is not None
    examples_cfg, views, cue_cfg, seed = _JOB
    ex = render_multiview(examples_cfg, views, example_rng(seed, index))
    cues = np.stack([binaural_cues(w, cue_cfg) for w in ex.windows])
    return cues, ex.turns, ex.azimuths, ex.labels, ex.elevation, ex.max_itd_s, ex.receiver_kind


def multiview_settings(
    examples_cfg: AudioExampleConfig, views: ViewTurns, cue_cfg: CueConfig, seed: int, samples: int
) -> dict[str, Any]:
    return {
        "examples": json.loads(json.dumps(asdict(examples_cfg))),
        "views": json.loads(json.dumps(asdict(views))),
        "cues": cue_cfg.to_dict(),
        "front_end_version": FRONT_END_VERSION,
        "seed": int(seed),
        "samples": int(samples),
    }


_ARRAYS = ("cues", "turns", "azimuth", "label", "elevation", "max_itd_s", "receiver_kind")


def build_multiview_cache(
    path: str | Path,
    examples_cfg: AudioExampleConfig,
    views: ViewTurns,
    cue_cfg: CueConfig,
    seed: int,
    samples: int,
    workers: int = 1,
    first: dict[str, np.ndarray] | None = None,
) -> Path:
    """Render ``samples`` multi-view examples, compute their cues, write the cache (progress
    on stderr). ``first``: the arrays of a cache of the same settings with fewer samples;
    example i depends only on (seed, i), so only the missing ones are rendered."""
    path = Path(path)
    if examples_cfg.sample_rate != cue_cfg.sample_rate:
        raise DatasetError(
            f"examples at {examples_cfg.sample_rate} Hz but cues at {cue_cfg.sample_rate} Hz"
        )
    job = (examples_cfg, views, cue_cfg, int(seed))
    have = 0 if first is None else int(first["cues"].shape[0])
    todo = range(have, samples)
    rows: list[Row] = []
    start = time.monotonic()
    if workers > 1:
        with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(job,)) as pool:
            for k, row in enumerate(pool.imap(_sample, todo, chunksize=4)):
                rows.append(row)
                render_progress(k + 1, len(todo), start, "samples")
    else:
        _init(job)
        for k, index in enumerate(todo):
            rows.append(_sample(index))
            render_progress(k + 1, len(todo), start, "samples")
    sys.stderr.write("\n")
    dtypes = {"cues": np.float32, "receiver_kind": None}
    arrays: dict[str, np.ndarray] = {}
    for i, name in enumerate(_ARRAYS):
        if first is not None and name not in first:
            continue  # a cache written before this array existed: leave it out throughout
        new = np.array([r[i] for r in rows], dtype=dtypes.get(name, np.float64))
        if first is not None:
            new = np.concatenate([first[name], new]) if rows else first[name]
        arrays[name] = new
    buffer = io.BytesIO()
    settings = multiview_settings(examples_cfg, views, cue_cfg, seed, samples)
    np.savez(buffer, settings=np.array(json.dumps(settings)), **arrays)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def load_multiview_cache(
    path: str | Path, expected: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Arrays of a cache file; with ``expected`` (``multiview_settings(...)``), DatasetError
    when the file was made with other settings."""
    return read_cache(path, expected, "multi-view cue cache")


def cached_multiview(
    folder: str | Path,
    name: str,
    examples_cfg: AudioExampleConfig,
    views: ViewTurns,
    cue_cfg: CueConfig,
    seed: int,
    samples: int,
    workers: int = 1,
) -> dict[str, np.ndarray]:
    """The cache of these settings, rendered first when it is not there yet."""
    settings = multiview_settings(examples_cfg, views, cue_cfg, seed, samples)
    path = cache_file(folder, f"multiview-{name}", settings)
    if not path.is_file():
        first = _largest_prefix(folder, name, settings)
        have = 0 if first is None else int(first["cues"].shape[0])
        sys.stderr.write(
            f"rendering the {name} multi-view cache ({samples - have} of {samples} samples) "
            f"into {path}\n"
        )
        build_multiview_cache(path, examples_cfg, views, cue_cfg, seed, samples, workers, first)
    return load_multiview_cache(path, settings)


def _largest_prefix(
    folder: str | Path, name: str, settings: dict[str, Any]
) -> dict[str, np.ndarray] | None:
    """The arrays of the largest cache in ``folder`` with the same settings and fewer
    samples, or None."""
    best: dict[str, np.ndarray] | None = None
    for candidate in sorted(Path(folder).glob(f"multiview-{name}-*.npz")):
        try:
            arrays = load_multiview_cache(candidate)
        except (DatasetError, OSError, ValueError):
            continue
        other = json.loads(str(arrays["settings"]))
        count = int(other.get("samples", 0))
        same = {**other, "samples": settings["samples"]} == json.loads(json.dumps(settings))
        if same and count < settings["samples"]:
            if best is None or count > best["cues"].shape[0]:
                best = arrays
    return best
