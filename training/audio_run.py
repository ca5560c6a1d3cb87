"""One run of the compact audio recipe: caches, training, outputs (``slfm train audio``).

Run folder::

    checkpoint.pt   weights, optimiser, schedule, epoch, history (resumes exactly)
    audio_net.pt    the trained network: state dict + cue and network configs + card fields
    metrics.json    per-epoch loss, validation MAE (folded, degrees) and samples/s
    history.png     the same as a plot
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slfm_ros.core.atomic_io import atomic_write_bytes, atomic_write_text
from slfm_ros.core.config_io import load_yaml_mapping
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.audio_examples import AudioExampleConfig
from slfm_training.cue_audio import CueTrainConfig, train_cues
from slfm_training.cue_cache import (
    build_cue_cache,
    cache_file,
    cache_settings,
    load_cue_cache,
    smaller_cache,
)

AUDIO_NET_FILE = "audio_net.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LABELS = "simulator azimuths (the rendered source direction of every window)"


@dataclass(frozen=True)
class AudioRunConfig:
    cues: CueConfig
    examples: AudioExampleConfig
    train: CueTrainConfig
    train_seed: int
    train_scenes: int
    val_seed: int
    val_scenes: int
    cache_dir: str
    workers: int
    source: dict[str, Any]
    lobe_refine_itd: float = 0.0


def resolve_net_section(net: dict[str, Any], cues: CueConfig) -> dict[str, Any]:
    """A config's ``train.net`` with the values that follow from the front end filled in:
    input_dim, and ``peak_lags: auto`` as the whole GCC-PHAT curve and its lag step."""
    net = dict(net)
    net.setdefault("input_dim", cues.dim)
    if net.get("peak_lags", "auto") == "auto":
        net["peak_lags"] = cues.n_lags
        net["lag_step_ms"] = 1000.0 / (cues.sample_rate * cues.lag_oversample)
    elif net.get("peak_lags") == 0:
        net["steered"] = False
    return net


def set_dotted(data: dict[str, Any], overrides: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of ``data`` with dotted keys (``train.lr``) set to the given (parsed) values."""
    out = json.loads(json.dumps(data))
    for key, value in (overrides or {}).items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def read_recipe(
    path: str | Path, overrides: dict[str, Any] | None, known: set[str]
) -> tuple[dict[str, Any], CueConfig, AudioExampleConfig, dict[str, Any]]:
    """A compact audio recipe's YAML with dotted-key ``overrides`` (``train.lr``) applied: the
    whole mapping, its front end and example configs (checked against each other) and its
    ``train`` section with the network's derived values filled in."""
    data = set_dotted(dict(load_yaml_mapping(path)), overrides)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}; known: {sorted(known)}")
    cues = CueConfig.from_dict(dict(data.get("cues") or {}))
    examples = AudioExampleConfig.from_dict(dict(data.get("examples") or {}))
    if (
        examples.sample_rate != cues.sample_rate
        or round(examples.window_s * cues.sample_rate) != cues.window_samples
    ):
        raise ConfigError(f"{path}: examples.sample_rate/window_s must match the cue window")
    train_data = dict(data.get("train") or {})
    train_data["net"] = resolve_net_section(dict(train_data.get("net") or {}), cues)
    return data, cues, examples, train_data


def read_decode(path: str | Path, data: dict[str, Any]) -> float:
    """The recipe's ``decode.lobe_refine_itd`` (0 when the section is absent)."""
    decode = dict(data.get("decode") or {})
    unknown = sorted(set(decode) - {"lobe_refine_itd"})
    if unknown:
        raise ConfigError(f"{path}: decode: unknown key(s) {unknown}")
    value = float(decode.get("lobe_refine_itd", 0.0))
    if not 0.0 <= value <= 2.0:
        raise ConfigError(f"{path}: decode.lobe_refine_itd must be in [0, 2], got {value}")
    return value


def load_audio_run_config(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> AudioRunConfig:
    known = {"cache_dir", "workers", "cues", "examples", "data", "train", "decode"}
    data, cues, examples, train_data = read_recipe(path, overrides, known)
    train = CueTrainConfig.from_dict(train_data)
    d = dict(data.get("data") or {})
    bad = sorted(set(d) - {"train_seed", "train_scenes", "val_seed", "val_scenes"})
    if bad:
        raise ConfigError(f"{path}: data: unknown key(s) {bad}")
    return AudioRunConfig(
        cues=cues,
        examples=examples,
        train=train,
        train_seed=int(d.get("train_seed", 7)),
        train_scenes=int(d.get("train_scenes", 4000)),
        val_seed=int(d.get("val_seed", 8)),
        val_scenes=int(d.get("val_scenes", 300)),
        cache_dir=str(data.get("cache_dir", "")),
        workers=int(data.get("workers", 1)),
        source=data,
        lobe_refine_itd=read_decode(path, data),
    )


def _cache(cfg: AudioRunConfig, out: Path, seed: int, scenes: int, name: str) -> dict[str, Any]:
    folder = Path(cfg.cache_dir) if cfg.cache_dir else out / "cache"
    settings = cache_settings(cfg.examples, cfg.cues, seed, scenes)
    path = cache_file(folder, f"cues-{name}", settings)
    if not path.is_file():
        smaller = smaller_cache(folder, f"cues-{name}", settings)
        reused = f", reusing the scenes of {smaller}" if smaller else ""
        sys.stderr.write(f"rendering the {name} cue cache ({scenes} scenes) into {path}{reused}\n")
        build_cue_cache(path, cfg.examples, cfg.cues, seed, scenes, cfg.workers, smaller)
    return load_cue_cache(path, settings)


def open_run_folder(out: Path, resume: bool) -> Path:
    """Create the run folder ``out`` and return its checkpoint path; ConfigError when it holds a
    run already and ``resume`` is not set (a finished or interrupted run is never overwritten)."""
    checkpoint = out / CHECKPOINT_FILE
    if checkpoint.exists() and not resume:
        raise ConfigError(
            f"{out} already holds a run; pass --resume to continue it or choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    return checkpoint


def run_audio_training(
    cfg: AudioRunConfig,
    out: str | Path,
    resume: bool = False,
    stop_after_epochs: int | None = None,
    command: str = "",
) -> dict[str, Any]:
    """Train into ``out``; returns the metrics. Refuses to reuse a run folder without resume."""
    out = Path(out)
    checkpoint = open_run_folder(out, resume)
    start = time.monotonic()
    train = _cache(cfg, out, cfg.train_seed, cfg.train_scenes, "train")
    val = _cache(cfg, out, cfg.val_seed, cfg.val_scenes, "val") if cfg.val_scenes > 0 else None
    render_s = time.monotonic() - start
    state = train_cues(cfg.train, cfg.cues, train, val, checkpoint, stop_after_epochs)
    finished = state.epoch >= cfg.train.epochs
    metrics: dict[str, Any] = {
        "finished": finished,
        "epoch": state.epoch,
        "best_epoch": state.best_epoch,
        "history": state.history,
        "cache_seconds": render_s,
        "train_windows": int(len(train["cues"])),
    }
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2))
    _plot(state.history, out / "history.png")
    if finished:
        import io

        buffer = io.BytesIO()
        torch.save(
            {
                "net": state.final_net().state_dict(),
                "best_epoch": state.best_epoch,
                "cues": cfg.cues.to_dict(),
                "net_config": cfg.train.net.to_dict(),
                "decode": {"lobe_refine_itd": cfg.lobe_refine_itd},
                "labels": LABELS,
                "training_data": cfg.source.get("examples"),
                "data": cfg.source.get("data"),
                "train": cfg.source.get("train"),
                "command": command,
                "metrics": state.history[state.best_epoch - 1 if state.best_epoch else -1]
                if state.history
                else {},
            },
            buffer,
        )
        atomic_write_bytes(out / AUDIO_NET_FILE, buffer.getvalue())
    return metrics


def _plot(history: list[dict[str, float]], path: Path) -> None:
    if not history:
        return
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(1, 2, figsize=(9, 3.2))
    ax[0].plot(epochs, [h["loss"] for h in history])
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("training loss")
    if "val_mae_deg" in history[0]:
        ax[1].plot(epochs, [h["val_mae_deg"] for h in history], label="mean")
        ax[1].plot(epochs, [h["val_median_deg"] for h in history], label="median")
        ax[1].set_ylabel("validation error, folded (deg)")
        ax[1].legend()
    ax[1].set_xlabel("epoch")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
