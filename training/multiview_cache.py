"""Cached binaural cues of multi-view audio examples (one scene heard from K receiver yaws).

A cache file (``.npz``) holds, for ``samples`` examples of K views each: the cue vectors
(N, K, dim) float32, the turns (N, K) rad (view 0: 0), the receivers' largest interaural
delay (N,) s, the receiver kind of every example, the settings that made it, and the target's
azimuth in every view (N, K) rad, its elevation (N,) rad and the horizontal direction on its
cone of confusion in every view (``label``, (N, K) rad). Azimuths and labels are there to
monitor and score a label-free run; nothing trains on them. ``load_multiview_cache`` refuses a file made with other settings.
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


def build_multiview_cache(
    path: str | Path,
    examples_cfg: AudioExampleConfig,
    views: ViewTurns,
    cue_cfg: CueConfig,
    seed: int,
    samples: int,
    workers: int = 1,
) -> Path:
    """Render ``samples`` multi-view examples, compute their cues, write the cache (progress
    on stderr)."""
    path = Path(path)
    if examples_cfg.sample_rate != cue_cfg.sample_rate:
        raise DatasetError(
            f"examples at {examples_cfg.sample_rate} Hz but cues at {cue_cfg.sample_rate} Hz"
        )
    job = (examples_cfg, views, cue_cfg, int(seed))
    rows: list[Row] = []
    start = time.monotonic()
    if workers > 1:
        with mp.get_context("fork").Pool(workers, initializer=_init, initargs=(job,)) as pool:
            for k, row in enumerate(pool.imap(_sample, range(samples), chunksize=4)):
                rows.append(row)
                _progress(k + 1, samples, start)
    else:
        _init(job)
        for k in range(samples):
            rows.append(_sample(k))
            _progress(k + 1, samples, start)
    sys.stderr.write("\n")
    buffer = io.BytesIO()
    settings = multiview_settings(examples_cfg, views, cue_cfg, seed, samples)
    np.savez(
        buffer,
        cues=np.stack([r[0] for r in rows]).astype(np.float32),
        turns=np.stack([r[1] for r in rows]).astype(np.float64),
        azimuth=np.stack([r[2] for r in rows]).astype(np.float64),
        label=np.stack([r[3] for r in rows]).astype(np.float64),
        elevation=np.array([r[4] for r in rows], dtype=np.float64),
        max_itd_s=np.array([r[5] for r in rows], dtype=np.float64),
        receiver_kind=np.array([r[6] for r in rows]),
        settings=np.array(json.dumps(settings)),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, buffer.getvalue())
    return path


def _progress(done: int, total: int, start: float) -> None:
    if done % 20 and done != total:
        return
    rate = done / max(time.monotonic() - start, 1e-9)
    eta = (total - done) / max(rate, 1e-9)
    sys.stderr.write(f"\r  rendered {done}/{total} samples, {rate:.2f} samples/s, eta {eta:.0f} s ")
    sys.stderr.flush()


def load_multiview_cache(
    path: str | Path, expected: dict[str, Any] | None = None
) -> dict[str, np.ndarray]:
    """Arrays of a cache file; with ``expected`` (``multiview_settings(...)``), DatasetError
    when the file was made with other settings."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"multi-view cue cache not found: {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {key: data[key] for key in data.files}
    settings = json.loads(str(arrays["settings"]))
    if expected is not None and settings != json.loads(json.dumps(expected)):
        raise DatasetError(f"{path} was made with other settings; rebuild it (delete the file)")
    return arrays


def cache_file(folder: str | Path, name: str, settings: dict[str, Any]) -> Path:
    """Where the cache of ``settings`` lives in ``folder`` (the name carries their hash)."""
    import hashlib

    key = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:12]
    return Path(folder) / f"multiview-{name}-{key}.npz"


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
    path = cache_file(folder, name, settings)
    if not path.is_file():
        sys.stderr.write(f"rendering the {name} multi-view cache ({samples} samples) into {path}\n")
        build_multiview_cache(path, examples_cfg, views, cue_cfg, seed, samples, workers)
    return load_multiview_cache(path, settings)
