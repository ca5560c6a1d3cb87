"""Training configuration: a tree of frozen dataclasses read from YAML, with CLI overrides.

    cfg = load_train_config("training/configs/slfm_small.yaml", ["optim.lr=3e-4"])

Every section has defaults; a key the tree does not have raises ConfigError naming it and the
valid keys. ``model`` is the model config mapping of ``slfm_ros.core.models.config`` (a preset
plus partial overrides) and ``data.scene`` the simulator's ``SceneConfig`` mapping; both are
checked by their own loaders. Overrides ``a.b.c=value`` are applied to the YAML mapping before
it is checked, so they are validated exactly like keys in the file; values are parsed as YAML
(``true``, ``[1, 2]``, ``small``), with ``1e-4``-style numbers read as floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slfm_ros.core.config_io import from_mapping, load_yaml_mapping, to_mapping
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.config import ModelConfig, load_model_config
from slfm_ros.core.models.losses import BINAURAL_LOSSES, TURN_WEIGHTINGS
from slfm_ros.core.sim.scene import SceneConfig

STAGES = ("pretext", "slfm", "egomotion", "supervised", "probe")
DATA_SOURCES = ("on_the_fly", "shards")
DEVICES = ("auto", "cpu", "cuda")
AMP_MODES = ("auto", "off", "fp16", "bf16")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _probability(name: str, value: float) -> None:
    _require(0.0 <= value <= 1.0, f"{name}: expected a probability in [0, 1], got {value}")


@dataclass(frozen=True)
class JitterConfig:
    """Colour jitter applied to each training image (``camera_effects.colour_jitter``).

    prob: probability that an image is jittered at all; brightness, contrast, saturation:
    factors drawn in [1 - x, 1 + x]; hue: shift of up to +-x of a full turn.
    """

    prob: float = 0.9
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.2

    def __post_init__(self) -> None:
        _probability("data.jitter.prob", self.prob)
        for name in ("brightness", "contrast", "saturation", "hue"):
            _require(getattr(self, name) >= 0, f"data.jitter.{name}: expected >= 0")
        _require(self.hue <= 0.5, f"data.jitter.hue: expected <= 0.5 turn, got {self.hue}")


@dataclass(frozen=True)
class DataConfig:
    """Where samples come from and how they become batches.

    source:        "on_the_fly" (render with the simulator while training) or "shards"
                   (folders written by ``slfm simulate``).
    scene_file:    simulator YAML (SceneConfig) for on-the-fly data; "" = simulator defaults.
    scene:         SceneConfig overrides applied on top of ``scene_file``.
    train_dir, val_dir: shard folders (source "shards"); val_dir "" = no validation.
    seed:          dataset seed of on-the-fly rendering (sample i depends on seed, split, i).
    train_samples: on the fly: 0 = a new sample at every position, N = an epoch of N samples
                   reshuffled each epoch; shards: 0 = all, N = the first N.
    val_samples:   validation samples (0 = no validation, no early stopping).
    cache_samples: rendered samples kept in memory per process (0 = none); useful when
                   train_samples is small.
    num_views:     views used per sample (2 = one pair; 3 = the pretext's source + 2 targets).
    permute_prob:  probability that the views of a training sample are permuted (a new view 0).
    max_turn_deg:  a permutation is only used when every view's turn from the new view 0 stays
                   below this (the rotation head covers (-90, 90) degrees).
    random_crop:   training clips are cut at a random offset when the rendered clip is longer
                   than the model's window (validation always takes the centre).
    jitter:        colour jitter of training images.
    workers:       DataLoader worker processes (0 = render in the training process).
    """

    source: str = "on_the_fly"
    scene_file: str = ""
    scene: dict[str, Any] = field(default_factory=dict)
    train_dir: str = ""
    val_dir: str = ""
    seed: int = 0
    train_samples: int = 0
    val_samples: int = 64
    cache_samples: int = 0
    num_views: int = 2
    permute_prob: float = 0.5
    max_turn_deg: float = 90.0
    random_crop: bool = True
    jitter: JitterConfig = field(default_factory=JitterConfig)
    workers: int = 0

    def __post_init__(self) -> None:
        _require(
            self.source in DATA_SOURCES,
            f"data.source: expected one of {list(DATA_SOURCES)}, got {self.source!r}",
        )
        _require(
            self.source != "shards" or bool(self.train_dir),
            "data.train_dir: required when data.source is 'shards' (a folder written by "
            "slfm simulate)",
        )
        _require(self.seed >= 0, f"data.seed: expected >= 0, got {self.seed}")
        for name in ("train_samples", "val_samples", "cache_samples", "workers"):
            _require(getattr(self, name) >= 0, f"data.{name}: expected >= 0")
        _require(self.num_views >= 2, f"data.num_views: expected >= 2, got {self.num_views}")
        _probability("data.permute_prob", self.permute_prob)
        _require(
            0.0 < self.max_turn_deg <= 180.0,
            f"data.max_turn_deg: expected (0, 180], got {self.max_turn_deg}",
        )
        if self.source == "on_the_fly":
            self.scene_config()

    def scene_config(self) -> SceneConfig:
        """The simulator config of on-the-fly data: ``scene_file`` with ``scene`` merged in."""
        base = load_yaml_mapping(self.scene_file) if self.scene_file else {}
        try:
            return from_mapping(SceneConfig, _merge(base, self.scene))
        except ConfigError as exc:
            raise ConfigError(f"data.scene: {exc}") from exc


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with a linear warm-up and a cosine decay to ``min_lr_ratio * lr``.

    batch_size: samples per step and process (the global batch is batch_size x processes).
    max_steps:  optimiser steps of the whole run.
    grad_clip:  global gradient-norm limit (0 = no clipping).
    """

    batch_size: int = 16
    max_steps: int = 1000
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    warmup_steps: int = 0
    min_lr_ratio: float = 0.0
    grad_clip: float = 1.0

    def __post_init__(self) -> None:
        _require(self.batch_size >= 1, f"optim.batch_size: expected >= 1, got {self.batch_size}")
        _require(self.max_steps >= 1, f"optim.max_steps: expected >= 1, got {self.max_steps}")
        _require(self.lr > 0 and math.isfinite(self.lr), f"optim.lr: expected > 0, got {self.lr}")
        _require(self.weight_decay >= 0, "optim.weight_decay: expected >= 0")
        _require(
            all(0.0 <= b < 1.0 for b in self.betas),
            f"optim.betas: expected two values in [0, 1), got {list(self.betas)}",
        )
        _require(self.warmup_steps >= 0, "optim.warmup_steps: expected >= 0")
        _require(0.0 <= self.min_lr_ratio <= 1.0, "optim.min_lr_ratio: expected [0, 1]")
        _require(self.grad_clip >= 0, "optim.grad_clip: expected >= 0 (0 = off)")


@dataclass(frozen=True)
class RunConfig:
    """Devices, bookkeeping and stopping.

    device:        "auto" (CUDA when available), "cpu" or "cuda"; under torchrun each process
                   takes the GPU of its LOCAL_RANK.
    amp:           mixed precision on CUDA: "auto" (bf16 where supported, else fp16), "fp16",
                   "bf16" or "off"; always off on the CPU.
    deterministic: deterministic algorithms (same result for the same seed and hardware).
    threads:       torch CPU threads (0 = leave torch's default).
    log_every, eval_every, checkpoint_every: in optimiser steps (eval 0 = only at the end).
    early_stopping_patience: evaluations without improvement of the validation loss before
                   stopping (0 = never stop early); min_delta: smallest improvement counted.
    keep_best:     finish with the weights of the best validation loss, not the last step.
    tensorboard, progress: TensorBoard event files under <out>/tensorboard; a progress bar.
    val_batch_size: 0 = optim.batch_size.
    """

    device: str = "auto"
    amp: str = "auto"
    deterministic: bool = True
    threads: int = 0
    log_every: int = 10
    eval_every: int = 200
    checkpoint_every: int = 200
    early_stopping_patience: int = 0
    early_stopping_min_delta: float = 0.0
    keep_best: bool = True
    tensorboard: bool = True
    progress: bool = True
    val_batch_size: int = 0

    def __post_init__(self) -> None:
        _require(
            self.device in DEVICES,
            f"run.device: expected one of {list(DEVICES)}, got {self.device!r}",
        )
        _require(
            self.amp in AMP_MODES, f"run.amp: expected one of {list(AMP_MODES)}, got {self.amp!r}"
        )
        for name in (
            "threads",
            "eval_every",
            "checkpoint_every",
            "early_stopping_patience",
            "val_batch_size",
        ):
            _require(getattr(self, name) >= 0, f"run.{name}: expected >= 0")
        _require(self.log_every >= 1, "run.log_every: expected >= 1")
        _require(self.early_stopping_min_delta >= 0, "run.early_stopping_min_delta: expected >= 0")


@dataclass(frozen=True)
class PretextConfig:
    """Cross-view binauralization: predict the L - R spectrogram of each target view from its
    mono mix, conditioned on the source view's audio feature and the visual pair feature.

    loss_weight: factor of the mean L1 over real and imaginary parts (reference: 10).
    """

    loss_weight: float = 10.0

    def __post_init__(self) -> None:
        _require(self.loss_weight > 0, "pretext.loss_weight: expected > 0")


def _check_binaural_form(section: str, form: str, margin_deg: float) -> None:
    _require(
        form in BINAURAL_LOSSES,
        f"{section}.binaural_loss: expected one of {list(BINAURAL_LOSSES)}, got {form!r}",
    )
    _require(0.0 <= margin_deg < 90.0, f"{section}.binaural_margin_deg: expected [0, 90) degrees")


@dataclass(frozen=True)
class SlfmConfig:
    """Self-supervised SLfM stage (no angle labels).

    geometric_weight, binaural_weight, symmetry_weight: loss weights (reference 10, 1, 1); 0
                   drops a term (ablations) while it is still reported.
    binaural_loss: "cross_entropy" (reference) or "hinge" (the IID vote fixes the side only,
                   not the size of the angle; ``slfm_ros.core.models.losses.binaural_hinge_loss``).
    binaural_margin_deg: the hinge's margin, degrees (0 = any angle on the voted side).
    reflection_invariant: front/back-mirror-invariant geometric loss (False = ablation).
    finetune:      also train the audio and visual encoders (False = heads only).
    train_networks: which networks train, ["audio", "visual"] by default; one of them alone
                   holds the other fixed, so it teaches without being pulled to the trivial
                   solution (training the networks in turns).
    geometric_start_step: the geometric weight is 0 before this step, so that networks trained
                   from scratch first learn left from right with the binaural loss; from the
                   start, the geometric loss wins and both networks collapse to phi = theta = 0.
    geometric_warmup_steps: then the weight ramps linearly to geometric_weight over this many
                   steps (0 = full weight at once).
    audio_geometric_start_step: before this step the geometric loss trains only the rotation
                   head, against the audio predictions as fixed targets; the audio network
                   learns from the binaural and symmetry losses alone until then, so it cannot
                   shrink to phi = 0 while the visual network is still guessing.
    resolve_sign:  after training, fix the global sign of both heads with the IID cue.
    sign_samples:  training clips used to resolve the sign.
    measured_turn_sign: then check the rotation head's sign alone against camera turns
                   measured from the same samples' images (the matcher of the egomotion
                   section) and negate it when more disagree than chance explains (a head
                   that agrees with chance keeps its sign and is reported undecided); pairs
                   the matcher declines do not vote.
    """

    geometric_weight: float = 10.0
    binaural_weight: float = 1.0
    symmetry_weight: float = 1.0
    binaural_loss: str = "cross_entropy"
    binaural_margin_deg: float = 0.0
    reflection_invariant: bool = True
    finetune: bool = False
    train_networks: tuple[str, ...] = ("audio", "visual")
    geometric_start_step: int = 0
    geometric_warmup_steps: int = 0
    audio_geometric_start_step: int = 0
    resolve_sign: bool = True
    sign_samples: int = 256
    measured_turn_sign: bool = True

    def __post_init__(self) -> None:
        for name in ("geometric_weight", "binaural_weight", "symmetry_weight"):
            _require(getattr(self, name) >= 0, f"slfm.{name}: expected >= 0")
        _check_binaural_form("slfm", self.binaural_loss, self.binaural_margin_deg)
        _require(self.sign_samples >= 1, "slfm.sign_samples: expected >= 1")
        _require(self.geometric_warmup_steps >= 0, "slfm.geometric_warmup_steps: expected >= 0")
        _require(self.geometric_start_step >= 0, "slfm.geometric_start_step: expected >= 0")
        _require(
            self.audio_geometric_start_step >= 0,
            "slfm.audio_geometric_start_step: expected >= 0",
        )
        _require(
            len(self.train_networks) > 0
            and set(self.train_networks) <= {"audio", "visual"}
            and len(set(self.train_networks)) == len(self.train_networks),
            f"slfm.train_networks: expected a non-empty subset of [audio, visual], got "
            f"{list(self.train_networks)}",
        )


@dataclass(frozen=True)
class EgomotionConfig:
    """Audio network taught by the camera's own measured turns (no angle labels).

    The turn between two views is measured from their images by classical feature matching;
    a static source's azimuth must change by minus that turn, which the geometric loss asks
    of the audio network. Pairs the matcher declines are left out of that term. Unlike a
    learned rotation, a measured turn cannot shrink to zero, so the audio network cannot
    collapse to phi = 0.

    detector:      "orb" or "sift" (``slfm_ros.core.estimators.feature_yaw``).
    min_inliers:   RANSAC inliers a measured turn needs; fewer = the pair is left out.
    hfov_deg, pitch_deg: the camera that took the images (degrees); hfov_deg 0 = read both
                   from the data's simulator config (its image section).
    geometric_weight, binaural_weight, symmetry_weight: loss weights; 0 drops a term.
    binaural_loss, binaural_margin_deg: the binaural term's form and hinge margin, as in the
                   SLfM stage.
    turn_weighting: "uniform" (every measured pair alike) or "squared" (each pair weighted by
                   its measured turn squared, so the larger turns count more against the
                   prediction noise; ``slfm_ros.core.models.losses.egomotion_loss``).
    reflection_invariant: front/back-mirror-invariant geometric loss.
    finetune:      train the audio encoder too (False = the direction head only).
    """

    detector: str = "orb"
    min_inliers: int = 8
    hfov_deg: float = 0.0
    pitch_deg: float = 0.0
    geometric_weight: float = 10.0
    binaural_weight: float = 1.0
    symmetry_weight: float = 1.0
    binaural_loss: str = "cross_entropy"
    binaural_margin_deg: float = 0.0
    turn_weighting: str = "uniform"
    reflection_invariant: bool = True
    finetune: bool = True

    def __post_init__(self) -> None:
        _require(
            self.detector in ("orb", "sift"),
            f"egomotion.detector: expected orb or sift, got {self.detector!r}",
        )
        _require(self.min_inliers >= 2, "egomotion.min_inliers: expected >= 2")
        _require(
            0.0 <= self.hfov_deg < 180.0, "egomotion.hfov_deg: expected [0, 180) (0 = from data)"
        )
        _require(-90.0 < self.pitch_deg < 90.0, "egomotion.pitch_deg: expected (-90, 90) degrees")
        for name in ("geometric_weight", "binaural_weight", "symmetry_weight"):
            _require(getattr(self, name) >= 0, f"egomotion.{name}: expected >= 0")
        _check_binaural_form("egomotion", self.binaural_loss, self.binaural_margin_deg)
        _require(
            self.turn_weighting in TURN_WEIGHTINGS,
            f"egomotion.turn_weighting: expected one of {list(TURN_WEIGHTINGS)}, "
            f"got {self.turn_weighting!r}",
        )
        _require(self.geometric_weight > 0, "egomotion.geometric_weight: expected > 0")


@dataclass(frozen=True)
class SupervisedConfig:
    """Upper bound trained with the simulator's angle labels.

    finetune:         train the encoders too (False = heads only).
    mirror_invariant: accept the front/back mirror of the audio prediction (receivers without
                      front/back cues; scoring folds to the front anyway).
    audio_weight, visual_weight: weights of the two 1 - cos losses; a network with weight 0
                      neither runs nor trains (the card lists it as untrained).
    """

    finetune: bool = True
    mirror_invariant: bool = True
    audio_weight: float = 1.0
    visual_weight: float = 1.0

    def __post_init__(self) -> None:
        _require(self.audio_weight >= 0 and self.visual_weight >= 0, "supervised: weights >= 0")
        _require(self.audio_weight + self.visual_weight > 0, "supervised: a weight must be > 0")


@dataclass(frozen=True)
class ProbeConfig:
    """Linear probes on frozen features: angle bins, top-1 accuracy.

    bins:              number of angle classes (reference: 64).
    audio_range_deg:   azimuth range split into the audio classes.
    visual_range_deg:  camera-turn range split into the visual classes.
    """

    bins: int = 64
    audio_range_deg: tuple[float, float] = (-180.0, 180.0)
    visual_range_deg: tuple[float, float] = (-90.0, 90.0)

    def __post_init__(self) -> None:
        _require(self.bins >= 2, f"probe.bins: expected >= 2, got {self.bins}")
        for name in ("audio_range_deg", "visual_range_deg"):
            low, high = getattr(self, name)
            _require(low < high, f"probe.{name}: expected [low, high] with low < high")


@dataclass(frozen=True)
class TrainConfig:
    """One training run.

    stage: pretext | slfm | egomotion | supervised | probe.
    seed:  seed of initialisation, augmentation order and everything else random in the loop.
    model: model config mapping (``preset`` plus partial ``visual`` / ``audio`` / ``binaural``).
    init:  model directory (save_model layout) whose audio and visual weights start this run,
           e.g. the output of the pretext stage; "" = random initialisation.
    """

    stage: str
    seed: int = 0
    model: dict[str, Any] = field(default_factory=lambda: {"preset": "small"})
    init: str = ""
    data: DataConfig = field(default_factory=DataConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)
    pretext: PretextConfig = field(default_factory=PretextConfig)
    slfm: SlfmConfig = field(default_factory=SlfmConfig)
    egomotion: EgomotionConfig = field(default_factory=EgomotionConfig)
    supervised: SupervisedConfig = field(default_factory=SupervisedConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)

    def __post_init__(self) -> None:
        _require(self.stage in STAGES, f"stage: expected one of {list(STAGES)}, got {self.stage!r}")
        _require(self.seed >= 0, f"seed: expected >= 0, got {self.seed}")
        try:
            self.model_config()
        except ConfigError as exc:
            raise ConfigError(f"model: {exc}") from exc

    def model_config(self) -> ModelConfig:
        """The architecture (``slfm_ros.core.models.config.ModelConfig``)."""
        config = load_model_config(self.model)
        if not isinstance(config, ModelConfig):
            raise ConfigError(
                "these stages train the ResNet family (preset full or small); the compact "
                "family trains with `slfm train audio` (training/configs/cue_audio/audio_cues.yaml)"
            )
        return config

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping that ``train_config_from_mapping`` reads back into an equal config."""
        return to_mapping(self)


def parse_value(text: str) -> Any:
    """Value of an override: YAML, with numbers such as ``1e-4`` read as floats; an empty
    value is the empty string (``init=`` clears the init model)."""
    if not text.strip():
        return ""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"override value {text!r} is not valid YAML: {exc}") from exc
    if isinstance(value, str):
        try:
            return float(value) if value.lower() not in ("nan", "inf", "-inf") else value
        except ValueError:
            return value
    return value


def apply_overrides(data: Mapping[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Copy of ``data`` with each ``dotted.key=value`` set (intermediate mappings created)."""
    out: dict[str, Any] = _deep_copy(data)
    for item in overrides:
        key, sep, text = item.partition("=")
        path = [part.strip() for part in key.split(".")]
        if not sep or not all(path):
            raise ConfigError(
                f"override {item!r}: expected KEY=VALUE with a dotted key, e.g. optim.lr=3e-4"
            )
        node = out
        for depth, part in enumerate(path[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                where = ".".join(path[: depth + 1])
                raise ConfigError(
                    f"override {item!r}: {where} holds {child!r}, not a section with keys"
                )
            node = child
        node[path[-1]] = parse_value(text)
    return out


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Recursive merge: mappings are merged key by key, anything else is replaced."""
    out = _deep_copy(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(out[key], value)
        else:
            out[key] = _deep_copy(value) if isinstance(value, Mapping) else value
    return out


def _deep_copy(data: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _deep_copy(v) if isinstance(v, Mapping) else v for k, v in data.items()}


def train_config_from_mapping(data: Mapping[str, Any]) -> TrainConfig:
    """TrainConfig from a mapping; unknown keys raise ConfigError naming the valid ones."""
    if "stage" not in data:
        raise ConfigError(f"training config: missing key 'stage' (one of {list(STAGES)})")
    return from_mapping(TrainConfig, data)


def load_train_config(path: str | Path, overrides: Sequence[str] = ()) -> TrainConfig:
    """Read a training YAML, apply ``overrides`` (``a.b=value``), validate."""
    data = apply_overrides(load_yaml_mapping(path), overrides)
    try:
        return train_config_from_mapping(data)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
