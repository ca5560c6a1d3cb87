"""A model directory as the inference backends see it, read without importing torch.

The ONNX Runtime and TensorRT backends need only the model card (network config, hashes) and
the exported ONNX files, so a deployment without PyTorch can run them; the card is checked
against the export manifest instead of loading the weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.models.config import AnyModelConfig, config_for_camera, load_model_config

CARD_FILE = "card.yaml"
WEIGHTS_FILE = "weights.pt"


@dataclass(frozen=True)
class ModelSource:
    """A model directory: its card, the card's sha256 and the network config.

    weights_sha256 is the value the card records (``load_model`` checks it against the file).
    camera: (horizontal FOV, pitch) in degrees that the visual network is set up for instead of
    its card's reference camera (``follow_camera``), or None. Such a source's ``card_sha256``
    is a hash of the card and that camera: the identity its exports are keyed on.
    """

    path: Path
    config: AnyModelConfig
    card_sha256: str
    weights_sha256: str
    card: dict[str, Any] = field(default_factory=dict, compare=False)
    camera: tuple[float, float] | None = None

    @property
    def weights_path(self) -> Path:
        return self.path / str(self.card.get("weights_file", WEIGHTS_FILE))


def read_model_source(
    model_dir: str | os.PathLike[str], camera: tuple[float, float] | None = None
) -> ModelSource:
    """Read ``model_dir/card.yaml``; ModelError when it is missing or not a model card.

    camera: (horizontal FOV, pitch) in degrees of the camera the images will come from; see
    ``follow_camera``.
    """
    path = Path(model_dir)
    card_path = path / CARD_FILE
    if not card_path.is_file():
        raise ModelError(
            f"model card not found: {card_path}; a model directory holds {CARD_FILE} and "
            f"{WEIGHTS_FILE} as written by training"
        )
    text = card_path.read_bytes()
    try:
        card = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ModelError(f"model card {card_path} is not valid YAML: {exc}") from exc
    if not isinstance(card, dict) or "model_config" not in card:
        raise ModelError(f"model card {card_path}: expected a mapping with 'model_config'")
    try:
        config = load_model_config(card["model_config"])
    except ConfigError as exc:
        raise ModelError(f"model card {card_path}: invalid model_config: {exc}") from exc
    source = ModelSource(
        path=path,
        config=config,
        card_sha256=hashlib.sha256(text).hexdigest(),
        weights_sha256=str(card.get("weights_sha256", "")),
        card=card,
    )
    return follow_camera(source, camera) if camera is not None else source


def follow_camera(source: ModelSource, camera: tuple[float, float]) -> ModelSource:
    """``source`` with its visual network set up for ``camera`` = (horizontal FOV, pitch) in
    degrees (``slfm_ros.core.models.config.config_for_camera``); unchanged when that changes
    nothing."""
    try:
        config = config_for_camera(source.config, camera)
    except ConfigError as exc:
        raise ModelError(f"{source.path}: {exc}") from exc
    if config == source.config:
        return source
    hfov_deg, pitch_deg = (float(v) for v in camera)
    identity = f"{source.card_sha256} camera hfov {hfov_deg!r} pitch {pitch_deg!r}"
    return dataclasses.replace(
        source,
        config=config,
        card_sha256=hashlib.sha256(identity.encode()).hexdigest(),
        camera=(hfov_deg, pitch_deg),
    )


NETWORKS = ("audio", "visual")


def trained_networks(source: ModelSource) -> tuple[str, ...]:
    """The networks of the model that some training stage has trained (see
    ``require_trained``); cards without the entry count as fully trained."""
    untrained = source.card.get("untrained_networks") or []
    return tuple(n for n in NETWORKS if n not in untrained)


def require_trained(source: ModelSource, network: str) -> None:
    """ModelError when the card says that ``network`` ("audio" or "visual") never trained.

    A stage that trains one network alone from random weights (e.g. egomotion, audio only)
    leaves the other at its initialisation; its answers would be noise.
    """
    if network not in trained_networks(source):
        untrained = source.card.get("untrained_networks")
        stage = source.card.get("stage", "?")
        raise ModelError(
            f"the {network} network of {source.path} was never trained (its card's "
            f"untrained_networks: {untrained}, stage {stage}); use a classical {network} "
            f"estimator with it, or train the {network} network from it "
            f"(slfm train slfm with init: {source.path})"
        )
