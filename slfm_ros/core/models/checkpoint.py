"""Model directories: plain PyTorch weights plus a model card.

Layout of a model directory::

    weights.pt   flat state dict, keys prefixed "audio." and "visual."
    card.yaml    model config, training data config, seed, metrics, git commit, creation time,
                 sha256 of weights.pt

Loading checks the card against the weights (hash, missing and unexpected keys, tensor shapes)
and fails with a ModelError naming the mismatch; nothing is ever silently left at random
initialisation. Files are written atomically (temporary name, then os.replace; see
slfm_ros.core.atomic_io), weights first and card last, so an interrupted save never leaves a card
that matches half-written weights.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from torch import nn

from slfm_ros.core.atomic_io import atomic_write_bytes, atomic_write_text
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.hashing import sha256_file
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.config import (
    AnyModelConfig,
    ModelConfig,
    config_for_camera,
    load_model_config,
)
from slfm_ros.core.models.visual_pose import VisualPoseNet

WEIGHTS_FILE = "weights.pt"
CARD_FILE = "card.yaml"
CARD_FORMAT = 1
# Card keys written by save_model; card_extra may not override them.
_RESERVED = {
    "format",
    "model_config",
    "weights_file",
    "weights_sha256",
    "created",
    "parameters",
}


@dataclass
class LoadedModel:
    """A model directory loaded on ``map_location``; both networks are in eval mode."""

    config: AnyModelConfig
    audio_net: nn.Module
    visual_net: nn.Module
    card: dict[str, Any] = field(default_factory=dict)
    path: Path = Path()


def network_configs(model_cfg: AnyModelConfig) -> tuple[Any, Any]:
    """The configs the audio and visual network classes are built from."""
    if isinstance(model_cfg, ModelConfig):
        return model_cfg.audio, model_cfg.visual
    return model_cfg.audio.net, model_cfg.visual


def network_classes(model_cfg: AnyModelConfig) -> tuple[type[nn.Module], type[nn.Module]]:
    """The audio and visual network classes of the model's family."""
    if isinstance(model_cfg, ModelConfig):
        return AudioDirectionNet, VisualPoseNet
    from slfm_ros.core.models.cue_direction import CueDirectionNet
    from slfm_ros.core.models.cylinder_pose import CylinderPoseNet

    return CueDirectionNet, CylinderPoseNet


def build_networks(model_cfg: AnyModelConfig) -> tuple[nn.Module, nn.Module]:
    """Freshly initialised audio and visual networks of ``model_cfg``."""
    audio_cls, visual_cls = network_classes(model_cfg)
    audio_cfg, visual_cfg = network_configs(model_cfg)
    return audio_cls(audio_cfg), visual_cls(visual_cfg)


def _git_commit() -> str:
    """Commit of the source tree this package runs from, or 'unknown' outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return result.stdout.strip() or "unknown"


def _unwrap(net: nn.Module) -> nn.Module:
    # DistributedDataParallel and torch.compile wrap the module; save the plain one.
    for attribute in ("module", "_orig_mod"):
        inner = getattr(net, attribute, None)
        if isinstance(inner, nn.Module):
            net = inner
    return net


def _plain(value: Any, where: str) -> Any:
    """``value`` as plain YAML types (numpy scalars and arrays, tuples and paths converted)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v, f"{where}[{i}]") for i, v in enumerate(value)]
    raise ConfigError(
        f"{where}: a model card holds plain values (numbers, strings, lists, mappings), "
        f"got {type(value).__name__}"
    )


def combined_state_dict(audio_net: nn.Module, visual_net: nn.Module) -> dict[str, torch.Tensor]:
    """Flat state dict with "audio." / "visual." prefixes, tensors detached on the CPU."""
    state: dict[str, torch.Tensor] = {}
    for prefix, net in (("audio", audio_net), ("visual", visual_net)):
        for key, value in _unwrap(net).state_dict().items():
            state[f"{prefix}.{key}"] = value.detach().to("cpu").clone()
    return state


def _read_card(directory: Path) -> dict[str, Any]:
    card_path = directory / CARD_FILE
    if not card_path.is_file():
        raise ModelError(
            f"model card not found: {card_path}; a model directory holds {CARD_FILE} and "
            f"{WEIGHTS_FILE} as written by save_model"
        )
    try:
        card = yaml.safe_load(card_path.read_text())
    except yaml.YAMLError as exc:
        raise ModelError(f"model card {card_path} is not valid YAML: {exc}") from exc
    if not isinstance(card, dict):
        raise ModelError(f"model card {card_path}: expected a mapping, got {type(card).__name__}")
    return card


def save_model(
    directory: str | os.PathLike[str],
    model_cfg: AnyModelConfig,
    audio_net: nn.Module,
    visual_net: nn.Module,
    card_extra: Mapping[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``weights.pt`` and ``card.yaml`` into ``directory`` and return its path.

    card_extra: further card entries, e.g. ``training_data`` (the data config), ``seed``,
    ``metrics``, ``command``, ``git_commit`` (defaults to the checkout's HEAD).
    An existing model directory is replaced only when ``overwrite`` is True or when it holds
    the same weights (then only the card is refreshed); otherwise ModelError.
    """
    path = Path(directory)
    extra = dict(card_extra or {})
    clash = sorted(_RESERVED & set(extra))
    if clash:
        raise ConfigError(f"card_extra: key(s) {clash} are written by save_model itself")
    classes, configs = network_classes(model_cfg), network_configs(model_cfg)
    for name, net, cls, cfg in (
        ("audio", audio_net, classes[0], configs[0]),
        ("visual", visual_net, classes[1], configs[1]),
    ):
        inner = _unwrap(net)
        if not isinstance(inner, cls) or inner.cfg != cfg:
            raise ModelError(
                f"save_model: the {name} network was not built from model config "
                f"'{model_cfg.name}' (expected {cls.__name__}({cfg}), got "
                f"{type(inner).__name__}({getattr(inner, 'cfg', None)})); save it with the "
                "config it was built from"
            )
    state = combined_state_dict(audio_net, visual_net)
    config_dict = model_cfg.to_dict()
    extra = {key: _plain(value, f"card_extra.{key}") for key, value in extra.items()}
    path.mkdir(parents=True, exist_ok=True)

    # Serialise first: the hash decides whether an existing model differs.
    buffer = io.BytesIO()
    torch.save(state, buffer)
    weights = buffer.getvalue()
    digest = hashlib.sha256(weights).hexdigest()
    existing = path / CARD_FILE
    if existing.exists() and not overwrite:
        old = _read_card(path)
        if old.get("weights_sha256") != digest or old.get("model_config") != config_dict:
            raise ModelError(
                f"{path} already holds a different model (weights sha256 "
                f"{str(old.get('weights_sha256'))[:12]}..., new {digest[:12]}...; or "
                "another model config); choose another directory or pass overwrite=True"
            )
    elif (path / WEIGHTS_FILE).exists() and not existing.exists() and not overwrite:
        raise ModelError(
            f"{path} holds {WEIGHTS_FILE} without a card; remove it or pass overwrite=True"
        )
    atomic_write_bytes(path / WEIGHTS_FILE, weights)

    card: dict[str, Any] = {
        "format": CARD_FORMAT,
        "model_config": config_dict,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": digest,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "parameters": {
            name: int(sum(p.numel() for p in _unwrap(net).parameters()))
            for name, net in (("audio", audio_net), ("visual", visual_net))
        },
        "git_commit": _git_commit(),
        "training_data": None,
        "seed": None,
        "metrics": {},
    }
    card.update(extra)
    text = yaml.safe_dump(card, sort_keys=False)
    atomic_write_text(path / CARD_FILE, text)
    return path


def _check_state(
    state: Mapping[str, Any], reference: Mapping[str, torch.Size], where: Path
) -> None:
    missing = sorted(set(reference) - set(state))
    unexpected = sorted(set(state) - set(reference))
    mismatched = [
        f"{key}: weights {tuple(state[key].shape)} vs card config {tuple(reference[key])}"
        for key in sorted(set(state) & set(reference))
        if tuple(getattr(state[key], "shape", ())) != tuple(reference[key])
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing key(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected key(s), e.g. {unexpected[:3]}")
    if mismatched:
        problems.append(f"{len(mismatched)} shape mismatch(es), e.g. {mismatched[:3]}")
    if problems:
        raise ModelError(
            f"{where}: the weights do not match the card's model config: "
            + "; ".join(problems)
            + ". The card and the weights come from different models; re-export the model "
            "with save_model"
        )


def load_model(
    directory: str | os.PathLike[str],
    map_location: str | torch.device = "cpu",
    camera: tuple[float, float] | None = None,
) -> LoadedModel:
    """Load a model directory written by ``save_model``; both networks come back in eval mode.

    camera: (horizontal FOV, pitch) in degrees of the camera the images come from, for a
    visual network that follows it (``config_for_camera``); None = the card's camera.

    Raises ModelError for a missing file, an unreadable card, a weights hash that differs from
    the card, or weights whose keys or shapes do not match the card's model config.
    """
    path = Path(directory)
    if not path.is_dir():
        raise ModelError(f"model directory not found: {path}")
    card = _read_card(path)
    if "model_config" not in card:
        raise ModelError(f"model card {path / CARD_FILE} has no 'model_config' entry")
    try:
        config = load_model_config(card["model_config"])
    except ConfigError as exc:
        raise ModelError(f"model card {path / CARD_FILE}: invalid model_config: {exc}") from exc
    if camera is not None:
        try:
            config = config_for_camera(config, camera)
        except ConfigError as exc:
            raise ModelError(f"{path}: {exc}") from exc
    weights_path = path / str(card.get("weights_file", WEIGHTS_FILE))
    if not weights_path.is_file():
        raise ModelError(f"weights file not found: {weights_path}")
    digest = sha256_file(weights_path)
    if card.get("weights_sha256") != digest:
        raise ModelError(
            f"{weights_path}: sha256 {digest[:12]}... differs from the card's "
            f"{str(card.get('weights_sha256'))[:12]}...; the file is corrupt or belongs to "
            "another model"
        )
    try:
        state = torch.load(weights_path, map_location=map_location, weights_only=True)
    except Exception as exc:  # torch raises several types for a damaged archive
        raise ModelError(f"{weights_path}: cannot read the weights: {exc}") from exc
    if not isinstance(state, Mapping):
        raise ModelError(f"{weights_path}: expected a state dict, got {type(state).__name__}")
    audio_net, visual_net = build_networks(config)
    shapes = {
        f"{prefix}.{key}": value.shape
        for prefix, net in (("audio", audio_net), ("visual", visual_net))
        for key, value in net.state_dict().items()
    }
    _check_state(state, shapes, weights_path)
    for prefix, net in (("audio", audio_net), ("visual", visual_net)):
        part = {k[len(prefix) + 1 :]: v for k, v in state.items() if k.startswith(prefix + ".")}
        net.load_state_dict(part, strict=True)
        net.to(map_location).eval()
    return LoadedModel(config, audio_net, visual_net, card, path)
