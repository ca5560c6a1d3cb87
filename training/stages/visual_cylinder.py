"""Train the cylinder pose network (relative camera yaw) on a CPU, from simulator labels or,
with ``data.turn_source: chained_ncc`` (visual_egomotion.yaml), from turns measured without
labels along a sweep of frames between the two views (``chained_yaw``).

    python -m slfm_training.stages.visual_cylinder \\
        --config training/configs/cylinder_pose/visual_cylinder.yaml \\
        [--out DIR] [--cache DIR] [--set section.key=value ...]

The front end of ``CylinderPoseNet`` has no weights, so every training pair is run through it
once: the pair's curves over shifts (a few kilobytes) are cached on disk with the true turn,
and the learned head then trains on the cached curves for many epochs in seconds. Pairs are
rendered without audio: per procedural world (``ProceduralPanoramas``, train / val splits,
disjoint from the test split), ``pairs_per_world`` pairs of perspective views with random yaws
and turns, camera effects and colour jitter per image, and, for a share of the worlds, another
camera (field of view, pitch) so the head meets the curves of other cameras. The cache is
written in chunks (one file per ``chunk_worlds`` worlds) named by a hash of the data settings:
an interrupted run resumes where it stopped, and changed settings never mix with old chunks.

Writes to ``--out``: ``cylinder_pose.pt`` (the state_dict) and ``cylinder_pose.yaml`` (the
``CylinderPoseConfig`` under ``model`` plus the training settings and metrics), and
``metrics.json``. Load with ``load_cylinder_pose``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
import torch
import yaml

from slfm_ros.core.config_io import from_mapping, load_yaml_mapping, to_mapping
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.chained_yaw import chained_turn
from slfm_ros.core.estimators.cylinder_yaw import CylinderNccYaw
from slfm_ros.core.models.cylinder_pose import CylinderPoseConfig, CylinderPoseNet

WEIGHTS_FILE = "cylinder_pose.pt"
CONFIG_FILE = "cylinder_pose.yaml"
MODULE = "slfm_training.stages.visual_cylinder"
# How the shipped recipe is run (a run folder written before runs recorded their command).
RECIPE_COMMAND = f"python -m {MODULE} --config training/configs/cylinder_pose/visual_cylinder.yaml"


@dataclass(frozen=True)
class PairDataConfig:
    """How training pairs are rendered (training/configs/cylinder_pose/visual_cylinder.yaml)."""

    seed: int = 0
    panorama_width: int = 2048
    outdoor_probability: float = 0.2
    irregular_probability: float = 0.5
    train_worlds: int = 1500
    val_worlds: int = 60
    pairs_per_world: int = 16
    chunk_worlds: int = 25
    min_turn_deg: float = 0.0
    max_turn_deg: float = 90.0
    render_width: int = 320
    render_height: int = 240
    hfov_deg: float = 60.0
    pitch_deg: float = -22.5
    other_camera_probability: float = 0.25
    other_hfov_deg: tuple[float, float] = (45.0, 90.0)
    other_pitch_deg: tuple[float, float] = (-35.0, 5.0)
    pitch_jitter_deg: float = 0.5
    roll_jitter_deg: float = 0.5
    max_translation_m: float = 0.0
    turn_source: str = "simulator"
    sweep_frames: int = 3
    chain_min_ncc: float = 0.3
    chain_check_deg: float = 2.0
    audio_model: str = ""
    audio_sigma_deg: float = 3.0
    effects: dict[str, Any] = field(
        default_factory=lambda: {
            "jitter_brightness": 0.2,
            "jitter_contrast": 0.2,
            "jitter_saturation": 0.2,
            "jitter_hue": 0.05,
            "jitter_p": 0.9,
            "noise_sigma_max": 3.0,
            "noise_p": 0.5,
            "blur_sigma_max": 1.0,
            "blur_p": 0.3,
            "jpeg_min_quality": 60,
            "jpeg_p": 0.3,
        }
    )

    def __post_init__(self) -> None:
        if not 0.0 <= self.min_turn_deg < self.max_turn_deg <= 180.0:
            raise ConfigError(
                f"data: expected 0 <= min_turn_deg < max_turn_deg <= 180, got "
                f"{self.min_turn_deg}, {self.max_turn_deg}"
            )
        for name in ("train_worlds", "pairs_per_world", "chunk_worlds"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name}: expected >= 1, got {getattr(self, name)}")
        if self.val_worlds < 0:
            raise ConfigError(f"data.val_worlds: expected >= 0, got {self.val_worlds}")
        if self.turn_source not in TURN_SOURCES:
            raise ConfigError(
                f"data.turn_source: expected one of {list(TURN_SOURCES)}, got {self.turn_source!r}"
            )
        if self.sweep_frames < 0:
            raise ConfigError(f"data.sweep_frames: expected >= 0, got {self.sweep_frames}")
        if self.chain_check_deg <= 0:
            raise ConfigError(f"data.chain_check_deg: expected > 0, got {self.chain_check_deg}")
        if self.audio_sigma_deg <= 0:
            raise ConfigError(f"data.audio_sigma_deg: expected > 0, got {self.audio_sigma_deg}")
        if self.audio_model and self.turn_source != "ncc_audio":
            raise ConfigError("data.audio_model is read with data.turn_source: ncc_audio only")

    @property
    def chained(self) -> bool:
        return self.turn_source == "chained_ncc"

    @property
    def by_ear(self) -> bool:
        return self.turn_source == "ncc_audio"


# What the head learns toward: the simulator's turn (a label); or, without labels, the turn
# measured by chaining dense cylinder correlation along a sweep of frames between the two
# views, or measured on the two views alone where they overlap and by ear where they do not
# (``slfm_training.audio_turns``).
TURN_SOURCES = ("simulator", "chained_ncc", "ncc_audio")
# Data keys that only matter when the turns are measured along a sweep or by ear.
_CHAIN_KEYS = ("turn_source", "sweep_frames", "chain_min_ncc", "chain_check_deg")
_EAR_KEYS = ("audio_model", "audio_sigma_deg")


@dataclass(frozen=True)
class OptimConfig:
    """The head's optimisation (training/configs/cylinder_pose/visual_cylinder.yaml)."""

    seed: int = 0
    epochs: int = 30
    batch_size: int = 128
    lr: float = 3e-3
    weight_decay: float = 1e-4
    label_sigma_deg: float = 0.75
    offset_weight: float = 1.0
    audio_weight: float = 1.0
    threads: int = 1


@dataclass(frozen=True)
class VisualCylinderConfig:
    model: CylinderPoseConfig = field(default_factory=CylinderPoseConfig)
    data: PairDataConfig = field(default_factory=PairDataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    cache_dir: str = "data/cylinder_pose/cache"
    out_dir: str = "out/cylinder_pose"


def load_config(path: str | Path | None, overrides: Sequence[str] = ()) -> VisualCylinderConfig:
    """Config from a YAML file (None: defaults) with ``section.key=value`` overrides."""
    data: dict[str, Any] = dict(load_yaml_mapping(path)) if path else {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, value = item.split("=", 1)
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return from_mapping(VisualCylinderConfig, data)


# ---------------------------------------------------------------------------------------------
# Rendering pairs into cached curves


def data_key(cfg: VisualCylinderConfig) -> str:
    """Hash of everything that decides the cached curves of a world (not how many worlds:
    more worlds reuse the cached ones)."""
    front = {k: v for k, v in cfg.model.to_dict().items() if k not in _HEAD_KEYS}
    data = {k: v for k, v in to_mapping(cfg.data).items() if k not in _COUNT_KEYS}
    if not cfg.data.by_ear:  # caches rendered before turns by ear existed stay valid
        data = {k: v for k, v in data.items() if k not in _EAR_KEYS}
    else:
        data.pop("sweep_frames")
        data.pop("chain_check_deg")
        data["audio_weights"] = _weights_digest(cfg.data.audio_model)
    if not (cfg.data.chained or cfg.data.by_ear):  # caches from before sweeps stay valid
        data = {k: v for k, v in data.items() if k not in _CHAIN_KEYS}
    text = json.dumps({"data": data, "front": front}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _weights_digest(model: str) -> str:
    """A digest of the audio model's files, so that another model renders its own cache."""
    if not model:
        return ""
    digest = hashlib.sha256()
    for path in sorted(p for p in Path(model).rglob("*") if p.is_file()):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


# Data keys that say how many worlds there are, not what is in them.
_COUNT_KEYS = ("train_worlds", "val_worlds", "chunk_worlds")
# Config keys of the learned head only; changing them keeps the cached curves valid.
_HEAD_KEYS = (
    "channels",
    "dilations",
    "context_dim",
    "confidence_window_deg",
    "refine_window_deg",
    "refine_min_ncc",
)


def _world_camera(data: PairDataConfig, rng: np.random.Generator) -> tuple[float, float]:
    if rng.random() < data.other_camera_probability:
        return float(rng.uniform(*data.other_hfov_deg)), float(rng.uniform(*data.other_pitch_deg))
    return data.hfov_deg, data.pitch_deg


def _jitter(rng: np.random.Generator, limit_deg: float) -> float:
    """Uniform in [-limit, limit] degrees on a 0.5-deg grid, as radians: the crops' ray tables
    are cached per (pitch, roll), so a few distinct values keep rendering fast."""
    steps = int(limit_deg / JITTER_STEP_DEG)
    return math.radians(JITTER_STEP_DEG * int(rng.integers(-steps, steps + 1))) if steps else 0.0


JITTER_STEP_DEG = 0.5


class WorldPairs(NamedTuple):
    """The cached curves of pairs and their turns (radians)."""

    curves: npt.NDArray[np.float16]  # (P, C, S)
    turns: npt.NDArray[np.float32]  # (P,) the simulator's turns (monitoring in chained runs)
    measured: npt.NDArray[np.float32]  # (P,) chained measurements (NaN: declined / not chained)
    # (P, bins) ncc_audio: where the views share no view, the turns the sound allows (zeros:
    # measured by NCC, or no audio model); None for the other turn sources
    masks: npt.NDArray[np.float16] | None = None


def render_world_pairs(
    cfg: VisualCylinderConfig, net: CylinderPoseNet, split: str, world: int
) -> WorldPairs:
    """Curves, turns and (when ``data.turn_source`` is chained_ncc or ncc_audio) measured turns
    of one world's pairs; with ncc_audio also the masks of the turns heard by ear."""
    from slfm_ros.core.geometry.panorama import match_resolution
    from slfm_ros.core.models.visual_pose import preprocess_images_numpy
    from slfm_ros.core.sim.camera_effects import CameraEffects

    data = cfg.data
    source = _panoramas(data)
    panorama = source.panorama(world, split)
    rng = np.random.default_rng([data.seed, ("train", "val", "test").index(split), world, 7])
    # The sweep frames draw from their own stream, so a chained cache holds the same pairs as
    # a labelled one and the two recipes differ only in what the head learns toward.
    sweep_rng = np.random.default_rng([data.seed, ("train", "val", "test").index(split), world, 9])
    hfov_deg, pitch_deg = _world_camera(data, rng)
    hfov, pitch = math.radians(hfov_deg), math.radians(pitch_deg)
    panorama = match_resolution(panorama, hfov, data.render_width)
    effects = CameraEffects(**data.effects) if data.effects else None
    view = _ViewRenderer(data, panorama, hfov, pitch, effects)
    meter = _chain_meter(data, hfov, pitch) if data.chained or data.by_ear else None
    ear = _ear_meter(cfg) if data.by_ear and data.audio_model else None
    ear_rng = np.random.default_rng([data.seed, ("train", "val", "test").index(split), world, 11])
    bins = 2 * cfg.model.max_shift + 1
    masks = np.zeros((data.pairs_per_world, bins), dtype=np.float16) if data.by_ear else None
    images = []
    turns = np.empty(data.pairs_per_world, dtype=np.float32)
    measured = np.full(data.pairs_per_world, np.nan, dtype=np.float32)
    lo, hi = math.radians(data.min_turn_deg), math.radians(data.max_turn_deg)
    for p in range(data.pairs_per_world):
        yaw_0 = float(rng.uniform(-math.pi, math.pi))
        theta = float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))
        turns[p] = theta
        pair = [view(yaw, rng) for yaw in (yaw_0, yaw_0 + theta)]
        images.extend(pair)
        if data.by_ear:
            assert meter is not None and masks is not None
            direct = meter.estimate(pair[0], pair[1])
            if direct.valid:
                measured[p] = direct.angle
            elif ear is not None:
                # The robot's own turn places the microphones; the sound, not the turn, is
                # what the head learns from.
                masks[p] = ear.mask(theta, ear_rng)
        elif meter is not None:
            sweep = [view(yaw, sweep_rng) for yaw in _sweep_yaws(yaw_0, theta, data, sweep_rng)]
            frames = [pair[0], *sweep, pair[1]]
            chain = chained_turn(meter, frames, math.radians(data.chain_check_deg))
            if chain.valid:
                measured[p] = chain.angle
    net.set_camera(hfov_deg, pitch_deg, cfg.model.image_height, cfg.model.image_width)
    batch = torch.from_numpy(preprocess_images_numpy(images, net.cfg))
    with torch.no_grad():
        curves = net.curves(batch[0::2], batch[1::2])
    return WorldPairs(curves.numpy().astype(np.float16), turns, measured, masks)


_EAR_METERS: dict[tuple[str, float, int], Any] = {}


def _ear_meter(cfg: VisualCylinderConfig) -> Any:
    """The audio model that measures turns by ear, loaded once per process."""
    from slfm_training.audio_turns import AudioTurnMeter

    shift = cfg.model.max_shift
    key = (cfg.data.audio_model, cfg.data.audio_sigma_deg, shift)
    if key not in _EAR_METERS:
        turns = np.radians(np.arange(-shift, shift + 1) * cfg.model.step_deg)
        _EAR_METERS[key] = AudioTurnMeter(
            cfg.data.audio_model, turns, math.radians(cfg.data.audio_sigma_deg)
        )
    return _EAR_METERS[key]


class _ViewRenderer:
    """One perspective view of a world's panorama at a yaw, with the per-view jitter,
    parallax and camera effects of the data settings."""

    def __init__(
        self,
        data: PairDataConfig,
        panorama: npt.NDArray[np.uint8],
        hfov: float,
        pitch: float,
        effects: Any,
    ) -> None:
        self.data, self.panorama, self.hfov, self.pitch, self.effects = (
            data,
            panorama,
            hfov,
            pitch,
            effects,
        )

    def __call__(self, yaw: float, rng: np.random.Generator) -> npt.NDArray[np.uint8]:
        from slfm_ros.core.geometry.panorama import crop_perspective

        data = self.data
        jitter_pitch = _jitter(rng, data.pitch_jitter_deg)
        roll = _jitter(rng, data.roll_jitter_deg)
        offset = None
        if data.max_translation_m > 0:
            r = data.max_translation_m * math.sqrt(rng.uniform())
            a = rng.uniform(-math.pi, math.pi)
            offset = np.array([r * math.cos(a), r * math.sin(a), 0.0])
        img = crop_perspective(
            self.panorama,
            yaw,
            self.pitch + jitter_pitch,
            self.hfov,
            data.render_width,
            data.render_height,
            roll=roll,
            translation_m=offset,
        )
        if self.effects is not None:
            img = self.effects.apply(img, rng)
        return np.asarray(img)


def _sweep_yaws(
    yaw_0: float, theta: float, data: PairDataConfig, rng: np.random.Generator
) -> list[float]:
    """Yaws of the frames recorded between the pair's views: evenly along the turn, each
    moved by up to a fifth of a step (a real sweep is not evenly sampled)."""
    n = data.sweep_frames
    return [yaw_0 + theta * (k + float(rng.uniform(-0.2, 0.2))) / (n + 1) for k in range(1, n + 1)]


def _chain_meter(data: PairDataConfig, hfov: float, pitch: float) -> CylinderNccYaw:
    """The classical dense estimator that measures each step of a sweep (the camera's
    intrinsics and pitch are known; its turns are not)."""
    return CylinderNccYaw(
        hfov=hfov, pitch=pitch, max_turn_deg=data.max_turn_deg, min_ncc=data.chain_min_ncc
    )


_SOURCES: dict[tuple[int, float, float], Any] = {}


def _panoramas(data: PairDataConfig) -> Any:
    from slfm_ros.core.sim.panoramas import ProceduralPanoramas

    key = (data.panorama_width, data.outdoor_probability, data.irregular_probability)
    if key not in _SOURCES:
        _SOURCES[key] = ProceduralPanoramas(
            data.panorama_width,
            seed=data.seed,
            outdoor_probability=data.outdoor_probability,
            irregular_probability=data.irregular_probability,
        )
    return _SOURCES[key]


def cached_pairs(
    cfg: VisualCylinderConfig, split: str, worlds: int, log: Any = print
) -> WorldPairs:
    """Curves and turns of ``worlds`` worlds of ``split``, rendered once and cached."""
    folder = Path(cfg.cache_dir) / data_key(cfg)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "settings.json").write_text(
        json.dumps({"data": to_mapping(cfg.data), "model": cfg.model.to_dict()}, indent=1)
    )
    net = CylinderPoseNet(cfg.model).eval()
    chunk = cfg.data.chunk_worlds
    curves, turns, measured, masks = [], [], [], []
    rendered = 0
    tic = time.perf_counter()
    for start in range(0, worlds, chunk):
        stop = min(worlds, start + chunk)
        path = folder / f"{split}-{start:06d}-{stop:06d}.npz"
        if not path.exists():
            parts = [render_world_pairs(cfg, net, split, w) for w in range(start, stop)]
            tmp = path.with_suffix(".tmp.npz")
            arrays = {
                "curves": np.concatenate([p.curves for p in parts]),
                "turns": np.concatenate([p.turns for p in parts]),
                "measured": np.concatenate([p.measured for p in parts]),
            }
            if cfg.data.by_ear:
                arrays["masks"] = np.concatenate([p.masks for p in parts if p.masks is not None])
            np.savez(tmp, **arrays)
            tmp.rename(path)
            rendered += (stop - start) * cfg.data.pairs_per_world
            rate = rendered / (time.perf_counter() - tic)
            log(f"  {split}: worlds {stop}/{worlds}, {rate:.1f} pairs/s rendered")
        with np.load(path) as stored:
            curves.append(stored["curves"])
            turns.append(stored["turns"])
            # Chunks written before sweeps existed hold no measurements.
            stored_measured = stored["measured"] if "measured" in stored else None
            if cfg.data.by_ear:
                masks.append(stored["masks"])
        if stored_measured is None:
            stored_measured = np.full(turns[-1].shape, np.nan, dtype=np.float32)
        measured.append(stored_measured)
    return WorldPairs(
        np.concatenate(curves),
        np.concatenate(turns),
        np.concatenate(measured),
        np.concatenate(masks) if masks else None,
    )


# ---------------------------------------------------------------------------------------------
# Training the head


def head_loss(
    net: CylinderPoseNet,
    curves: torch.Tensor,
    turns: torch.Tensor,
    optim: OptimConfig,
    mirrored: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, predicted theta): cross-entropy against a Gaussian around the true bin, plus the
    L1 error of the offset at the true turn's nearest bin (in bins).

    mirrored: score the network's mirror-averaged outputs (as it predicts); False scores the
    head alone (half the cost), which training uses with randomly swapped pairs instead.
    """
    logits, offsets = net.head_outputs(curves) if mirrored else net.raw_head_outputs(curves)
    step = math.radians(net.cfg.step_deg)
    position = turns / step + net.cfg.max_shift  # fractional bin index of the truth
    index = torch.arange(logits.shape[1], dtype=torch.float32).unsqueeze(0)
    sigma = optim.label_sigma_deg / net.cfg.step_deg
    target = torch.exp(-0.5 * ((index - position.unsqueeze(1)) / sigma) ** 2)
    target = target / target.sum(dim=1, keepdim=True)
    ce = -(target * torch.log_softmax(logits, dim=1)).sum(dim=1).mean()
    nearest = torch.clamp(torch.round(position), 0, logits.shape[1] - 1).long()
    offset_error = (offsets.gather(1, nearest.unsqueeze(1)).squeeze(1) - (position - nearest)).abs()
    theta, _ = net.decode(logits, offsets)
    return ce + optim.offset_weight * offset_error.mean(), theta


def yaw_errors_deg(pred: npt.NDArray, true: npt.NDArray) -> npt.NDArray[np.float64]:
    return np.degrees(np.arccos(np.clip(np.cos(pred - true), -1.0, 1.0)))


def summarise(errors: npt.NDArray, turns: npt.NDArray) -> dict[str, float]:
    near = np.abs(np.degrees(turns)) < 60.0
    out = {"mae_deg": float(errors.mean()), "median_deg": float(np.median(errors))}
    for name, sel in (("lt60", near), ("ge60", ~near)):
        if sel.any():
            out[f"mae_{name}_deg"] = float(errors[sel].mean())
            out[f"median_{name}_deg"] = float(np.median(errors[sel]))
    if (~near).any():
        # Off by more than 90 deg: the turn's sign taken wrong, the usual failure of pairs that
        # share no view.
        wrong_sign = errors[~near] > 90.0
        out["share_over_90_ge60"] = float(wrong_sign.mean())
        out["error_share_over_90_ge60"] = float(
            errors[~near][wrong_sign].sum() / errors[~near].sum()
        )
    return out


def evaluate_head(
    net: CylinderPoseNet, curves: npt.NDArray, turns: npt.NDArray
) -> dict[str, float]:
    net.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, len(curves), 512):
            part = torch.from_numpy(curves[start : start + 512]).float()
            logits, offsets = net.head_outputs(part)
            preds.append(net.decode(logits, offsets, part)[0].numpy())
    return summarise(yaw_errors_deg(np.concatenate(preds), turns), turns)


def train_head(
    cfg: VisualCylinderConfig,
    train: tuple[npt.NDArray, npt.NDArray],
    val: tuple[npt.NDArray, npt.NDArray] | None,
    log: Any = print,
    masks: npt.NDArray | None = None,
) -> tuple[CylinderPoseNet, dict[str, Any]]:
    """Train the head of a new ``CylinderPoseNet`` on cached curves; returns it and metrics.

    masks: (P, bins) for pairs whose turn is NaN in ``train``: the turns the sound allows,
    learned with the mask-and-sum loss (``audio_turns``), weighted by ``optim.audio_weight``.
    """
    optim_cfg = cfg.optim
    torch.manual_seed(optim_cfg.seed)
    net = CylinderPoseNet(cfg.model)
    params = list(net.head.parameters())
    optimiser = torch.optim.AdamW(params, lr=optim_cfg.lr, weight_decay=optim_cfg.weight_decay)
    curves = torch.from_numpy(train[0].astype(np.float32))
    turns = torch.from_numpy(train[1].astype(np.float32))
    allowed = None if masks is None else torch.from_numpy(masks.astype(np.float32))
    n = len(turns)
    steps_per_epoch = max(1, math.ceil(n / optim_cfg.batch_size))
    total = optim_cfg.epochs * steps_per_epoch
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimiser, max_lr=optim_cfg.lr, total_steps=total, pct_start=0.1
    )
    generator = torch.Generator().manual_seed(optim_cfg.seed)
    history = []
    tic = time.perf_counter()
    for epoch in range(optim_cfg.epochs):
        net.train()
        order = torch.randperm(n, generator=generator)
        losses = []
        for start in range(0, n, optim_cfg.batch_size):
            idx = order[start : start + optim_cfg.batch_size]
            # A swapped pair has reversed curves and the negated turn; the head sees both.
            swap = torch.rand(len(idx), generator=generator) < 0.5
            batch = torch.where(swap[:, None, None], torch.flip(curves[idx], dims=[2]), curves[idx])
            target = torch.where(swap, -turns[idx], turns[idx])
            if allowed is None:
                loss, _ = head_loss(net, batch, target, optim_cfg, mirrored=False)
            else:
                loss = _mixed_loss(net, batch, target, allowed[idx], swap, optim_cfg)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            schedule.step()
            losses.append(float(loss.detach()))
        entry: dict[str, Any] = {"epoch": epoch + 1, "loss": float(np.mean(losses))}
        if val is not None and (epoch + 1 == optim_cfg.epochs or (epoch + 1) % 5 == 0):
            entry["val"] = evaluate_head(net, *val)
        history.append(entry)
        scores = entry.get("val", "")
        log(f"  epoch {epoch + 1}/{optim_cfg.epochs} loss {entry['loss']:.4f} {scores}")
    seconds = time.perf_counter() - tic
    metrics = {
        "history": history,
        "train_seconds": seconds,
        "train_pairs_per_second": n * optim_cfg.epochs / max(seconds, 1e-9),
        "train_pairs": n,
    }
    return net.eval(), metrics


def _mixed_loss(
    net: CylinderPoseNet,
    curves: torch.Tensor,
    turns: torch.Tensor,
    masks: torch.Tensor,
    swap: torch.Tensor,
    optim: OptimConfig,
) -> torch.Tensor:
    """Measured turns (finite) by ``head_loss``, turns heard by ear (NaN, with a mask) by the
    mask-and-sum loss; each part weighted by its share of the batch."""
    from slfm_training.audio_turns import mask_and_sum_loss

    measured = torch.isfinite(turns)
    loss = curves.new_zeros(())
    if measured.any():
        part, _ = head_loss(net, curves[measured], turns[measured], optim, mirrored=False)
        loss = loss + part * measured.float().mean()
    heard = ~measured
    if heard.any():
        # A swapped pair turns the other way: its mask is mirrored about 0 like its curves.
        allowed = torch.where(swap[heard, None], torch.flip(masks[heard], dims=[1]), masks[heard])
        logits, _ = net.raw_head_outputs(curves[heard])
        part = mask_and_sum_loss(logits, allowed)
        loss = loss + optim.audio_weight * part * heard.float().mean()
    return loss


def by_ear_training_pairs(
    pairs: WorldPairs, max_turn_deg: float
) -> tuple[tuple[npt.NDArray, npt.NDArray], npt.NDArray, dict[str, Any]]:
    """ncc_audio: the pairs measured by NCC on the two views (their turns as targets) and the
    pairs heard by ear (NaN turn, their masks), and how good both are against the simulator's
    turns (monitoring only)."""
    assert pairs.masks is not None
    finite = np.isfinite(pairs.measured)
    within = np.abs(np.nan_to_num(pairs.measured)) <= math.radians(max_turn_deg)
    direct = finite & within
    heard = ~finite & (pairs.masks.astype(np.float32).max(axis=1) > 0)
    keep = direct | heard
    if not keep.any():
        raise ConfigError("no pair was measured: neither NCC on the two views nor by ear")
    error = np.degrees(np.abs(pairs.measured[direct] - pairs.turns[direct]))
    bins = pairs.masks.shape[1]
    step = 2.0 * max_turn_deg / (bins - 1)
    truth = np.clip(np.round((np.degrees(pairs.turns) + max_turn_deg) / step), 0, bins - 1)
    allowed_truth = pairs.masks[heard, truth[heard].astype(int)].astype(np.float32)
    stats = {
        "direct_share": float(direct.mean()),
        "direct_mae_deg": float(error.mean()) if error.size else float("nan"),
        "direct_share_over_2_deg": float((error > 2.0).mean()) if error.size else float("nan"),
        "heard_share": float(heard.mean()),
        # How often the mask allows the true turn (>= half its largest value), and how much of
        # the turn range it allows: the sound's help on pairs that share no view.
        "heard_allows_truth": float((allowed_truth >= 0.5).mean()) if heard.any() else 0.0,
        "heard_allowed_share": float((pairs.masks[heard] >= 0.5).mean()) if heard.any() else 0.0,
    }
    targets = np.where(direct, pairs.measured, np.nan).astype(np.float32)
    return (pairs.curves[keep], targets[keep]), pairs.masks[keep], stats


# ---------------------------------------------------------------------------------------------
# Saving and loading


def save_cylinder_pose(net: CylinderPoseNet, folder: str | Path, info: dict[str, Any]) -> Path:
    """Write the state_dict and the config (+ ``info``) into ``folder``; returns the folder.

    The config saved is the reference camera's (``set_camera`` changes only the run-time
    camera; the weights do not depend on it).
    """
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out / WEIGHTS_FILE)
    (out / CONFIG_FILE).write_text(
        yaml.safe_dump({"model": net.cfg.to_dict(), **info}, sort_keys=False), encoding="utf-8"
    )
    return out


def load_cylinder_pose(folder: str | Path) -> CylinderPoseNet:
    """The network saved by ``save_cylinder_pose`` (eval mode, CPU)."""
    root = Path(folder)
    config = load_yaml_mapping(root / CONFIG_FILE)
    if "model" not in config:
        raise ConfigError(f"{root / CONFIG_FILE} has no 'model' section")
    net = CylinderPoseNet(CylinderPoseConfig.from_dict(config["model"]))
    state = torch.load(root / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    net.load_state_dict(state)
    return net.eval()


LABELS = {
    "simulator": "simulator yaw labels (procedural worlds, train split)",
    "chained_ncc": (
        "none: turns measured by chaining dense cylinder correlation along a sweep of frames "
        "between the two views (simulator turns only monitor)"
    ),
    "ncc_audio": (
        "none: turns measured by dense cylinder correlation where the two views overlap, and "
        "by ear (the audio model's directions of a static sound) where they do not"
    ),
}


def measured_training_pairs(
    pairs: WorldPairs, max_turn_deg: float
) -> tuple[tuple[npt.NDArray, npt.NDArray], dict[str, Any]]:
    """The pairs whose sweep was measured within the head's range (+-max_turn_deg), with the
    measured turns as targets, and how good the measurements are against the simulator's
    turns (monitoring only). A turn outside the range has no bin to learn toward."""
    finite = np.isfinite(pairs.measured)
    within = np.abs(np.nan_to_num(pairs.measured)) <= math.radians(max_turn_deg)
    ok = finite & within
    if not ok.any():
        raise ConfigError(
            "no sweep was measured (every chain declined a step): lower data.chain_min_ncc or "
            "add data.sweep_frames"
        )
    error = np.degrees(np.abs(pairs.measured[ok] - pairs.turns[ok]))
    stats = {
        "measured_share": float(ok.mean()),
        "mae_deg": float(error.mean()),
        "median_deg": float(np.median(error)),
        "share_over_2_deg": float((error > 2.0).mean()),
        "outside_range": int((finite & ~within).sum()),
    }
    return (pairs.curves[ok], pairs.measured[ok].astype(np.float32)), stats


def run(cfg: VisualCylinderConfig, log: Any = print, command: str = "") -> dict[str, Any]:
    torch.set_num_threads(cfg.optim.threads)
    tic = time.perf_counter()
    pairs = cached_pairs(cfg, "train", cfg.data.train_worlds, log)
    val = cached_pairs(cfg, "val", cfg.data.val_worlds, log) if cfg.data.val_worlds else None
    data_seconds = time.perf_counter() - tic
    chain: dict[str, Any] = {}
    masks = None
    if cfg.data.by_ear:
        train, masks, chain = by_ear_training_pairs(pairs, cfg.model.max_turn_deg)
        log(
            f"  turns measured on the two views: {chain['direct_share']:.1%} of the pairs "
            f"(MAE {chain['direct_mae_deg']:.2f} deg); heard by ear: {chain['heard_share']:.1%}"
            f", the true turn allowed in {chain['heard_allows_truth']:.1%} (monitoring only)"
        )
    elif cfg.data.chained:
        train, chain = measured_training_pairs(pairs, cfg.model.max_turn_deg)
        log(
            f"  turns measured along the sweeps: {chain['measured_share']:.1%} of the pairs, "
            f"MAE {chain['mae_deg']:.2f} deg against the simulator (monitoring only)"
        )
    else:
        train = (pairs.curves, pairs.turns)
    # The reference camera's front end must not be the last world's camera.
    net, metrics = train_head(
        cfg, train, (val.curves, val.turns) if val else None, log, masks=masks
    )
    net.set_camera(
        cfg.model.hfov_deg, cfg.model.pitch_deg, cfg.model.image_height, cfg.model.image_width
    )
    metrics["data_seconds"] = data_seconds
    if chain:
        metrics["ncc_and_ear_turns" if cfg.data.by_ear else "chained_turns"] = chain
    info = {
        "training": {
            "data": to_mapping(cfg.data),
            "optim": to_mapping(cfg.optim),
            "data_key": data_key(cfg),
            "labels": LABELS[cfg.data.turn_source],
            "command": command,
        },
        "metrics": {k: v for k, v in metrics.items() if k != "history"},
        "val": metrics["history"][-1].get("val", {}),
    }
    out = save_cylinder_pose(net, cfg.out_dir, info)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    log(f"saved {out / WEIGHTS_FILE} and {out / CONFIG_FILE}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--config", help="training YAML (training/configs/cylinder_pose/visual_cylinder.yaml)"
    )
    parser.add_argument("--out", help="output folder (overrides out_dir)")
    parser.add_argument("--cache", help="curve cache folder (overrides cache_dir)")
    parser.add_argument("--set", action="append", default=[], help="section.key=value override")
    args = parser.parse_args(argv)
    overrides = list(args.set)
    if args.out:
        overrides.append(f"out_dir={args.out}")
    if args.cache:
        overrides.append(f"cache_dir={args.cache}")
    cfg = load_config(args.config, overrides)
    given = list(sys.argv[1:] if argv is None else argv)
    run(cfg, command=shlex.join(["python", "-m", MODULE, *given]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
