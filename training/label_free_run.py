"""One run of the label-free compact audio recipe (``slfm train audio-label-free``).

Run folder::

    checkpoint.pt   weights, optimiser, schedule, epoch, history (resumes exactly)
    audio_net.pt    the trained network with its cue and network configs and card fields
                    (labels: none)
    metrics.json    per-epoch losses and the monitoring figures (validation error, slope)
    history.png     the same as a plot
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slfm_ros.core.atomic_io import atomic_write_text
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, ViewTurns
from slfm_training.audio_net_io import load_audio_net, save_audio_net
from slfm_training.audio_run import read_decode, read_recipe
from slfm_training.label_free_audio import LabelFreeConfig, MultiViewData, train_label_free
from slfm_training.multiview_cache import cached_multiview

AUDIO_NET_FILE = "audio_net.pt"
LABELS = "none"
STAGES = "label-free consensus of turned views (slfm train audio-label-free)"


@dataclass(frozen=True)
class LabelFreeRunConfig:
    cues: CueConfig
    examples: AudioExampleConfig
    views: ViewTurns
    train: LabelFreeConfig
    train_seed: int
    train_samples: int
    val_seed: int
    val_samples: int
    init: str
    cache_dir: str
    workers: int
    source: dict[str, Any]
    lobe_refine_itd: float = 0.0


def load_label_free_config(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> LabelFreeRunConfig:
    known = {"cache_dir", "workers", "cues", "examples", "views", "data", "init", "train", "decode"}
    data, cues, examples, train_data = read_recipe(path, overrides, known)
    d = dict(data.get("data") or {})
    bad = sorted(set(d) - {"train_seed", "train_samples", "val_seed", "val_samples"})
    if bad:
        raise ConfigError(f"{path}: data: unknown key(s) {bad}")
    return LabelFreeRunConfig(
        cues=cues,
        examples=examples,
        views=ViewTurns.from_dict(dict(data.get("views") or {})),
        train=LabelFreeConfig.from_dict(train_data),
        train_seed=int(d.get("train_seed", 21)),
        train_samples=int(d.get("train_samples", 1600)),
        val_seed=int(d.get("val_seed", 22)),
        val_samples=int(d.get("val_samples", 150)),
        init=str(data.get("init") or ""),
        cache_dir=str(data.get("cache_dir", "")),
        workers=int(data.get("workers", 1)),
        source=data,
        lobe_refine_itd=read_decode(path, data),
    )


def run_label_free(
    cfg: LabelFreeRunConfig,
    out: str | Path,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Train into ``out``; returns the metrics. Refuses to reuse a run folder without resume."""
    from slfm_training.audio_run import _plot, open_run_folder

    out = Path(out)
    checkpoint = open_run_folder(out, resume)
    folder = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    start = time.monotonic()

    def cache(name: str, seed: int, samples: int) -> MultiViewData:
        arrays = cached_multiview(
            folder, name, cfg.examples, cfg.views, cfg.cues, seed, samples, cfg.workers
        )
        return MultiViewData.from_cache(arrays)

    train = cache("train", cfg.train_seed, cfg.train_samples)
    val = cache("val", cfg.val_seed, cfg.val_samples) if cfg.val_samples > 0 else None
    render_s = time.monotonic() - start
    init = None
    if cfg.init:
        loaded = load_audio_net(cfg.init)
        if loaded.cues != cfg.cues:
            raise ConfigError(f"init {cfg.init} has another cue front end than this config")
        init = loaded.net
    state = train_label_free(cfg.train, cfg.cues, train, val, checkpoint, stop_after_epochs, init)
    finished = state.epoch >= cfg.train.epochs
    metrics: dict[str, Any] = {
        "finished": finished,
        "epoch": state.epoch,
        "history": state.history,
        "cache_seconds": render_s,
        "train_samples": int(train.cues.shape[0]),
        "views": int(train.cues.shape[1]),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    _plot([h for h in state.history if "loss" in h], out / "history.png")
    if finished:
        card = {
            "labels": LABELS,
            "stages": [STAGES],
            "init": cfg.init or "random weights",
            "training_data": cfg.source.get("examples"),
            "views": cfg.source.get("views"),
            "data": cfg.source.get("data"),
            "train": cfg.source.get("train"),
            "decode": {"lobe_refine_itd": cfg.lobe_refine_itd},
            "command": command,
            "metrics": state.history[-1] if state.history else {},
        }
        save_audio_net(out / AUDIO_NET_FILE, state.net, cfg.cues, card)
    return metrics
