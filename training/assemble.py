"""A compact model folder from a trained audio network and a trained visual network.

``slfm train assemble --audio RUN --visual RUN --out DIR [--metrics FILE.json] [--name NAME]``
reads ``RUN/audio_net.pt`` (``slfm train audio``; or the audio network of a model folder, to
pair it with another visual network) and the visual run folder (the cylinder pose stage; or
the visual network of a model folder, to pair it with another audio network), and writes DIR
with ``save_model``: ``weights.pt`` and a card that says which labels trained each network,
the data, seeds and commands of both runs, and the evaluation figures of ``--metrics`` (a JSON
mapping, e.g. the ``--json`` output of ``slfm eval``). An existing folder holding another model
is never overwritten.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from slfm_ros.core.config_io import load_yaml_mapping
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.models.checkpoint import save_model
from slfm_ros.core.models.compact import CompactModelConfig, CueAudioConfig
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_ros.core.models.cylinder_pose import CylinderPoseNet
from slfm_training.audio_run import AUDIO_NET_FILE


def load_audio_run(run: str | Path) -> tuple[CueAudioConfig, CueDirectionNet, dict[str, Any]]:
    """The audio network of a ``slfm train audio`` run folder and its card fields, or of a
    compact model folder (its audio network and its card's audio stage)."""
    from slfm_training.audio_net_io import load_audio_net

    folder = Path(run)
    if not (folder / AUDIO_NET_FILE).is_file() and not (folder / "card.yaml").is_file():
        raise ModelError(
            f"{folder / AUDIO_NET_FILE} not found: finish the audio run first "
            f"(slfm train audio ... --out {run})"
        )
    loaded = load_audio_net(folder)
    if loaded.model is not None:
        card = loaded.card
        info = dict((card.get("stages") or {}).get("audio") or {})
        info["labels"] = loaded.labels
        info.setdefault("command", f"(the audio network of {folder})")
        return loaded.model.config.audio, loaded.net, info
    config = CueAudioConfig(
        loaded.cues,
        loaded.net.cfg,
        loaded.lobe_refine_itd,
        loaded.receiver_input,
        loaded.calibrated_receiver,
        loaded.lobe_widening,
    )
    keys = ("labels", "training_data", "data", "train", "decode", "command")
    info = {k: loaded.card.get(k) for k in keys}
    info["final_epoch"] = loaded.card.get("metrics")
    return config, loaded.net, info


def _model_visual(folder: Path) -> tuple[CylinderPoseNet, dict[str, Any]]:
    """The visual network of a compact model folder and its card's visual stage."""
    from slfm_ros.core.models.checkpoint import load_model

    loaded = load_model(folder, map_location="cpu")
    card = loaded.card
    if card.get("family") != "compact":
        raise ModelError(f"{folder} holds no compact model: give a visual run or model folder")
    visual_net = loaded.visual_net
    if not isinstance(visual_net, CylinderPoseNet):
        raise ModelError(f"{folder}: its visual network is not a cylinder pose network")
    info = dict((card.get("stages") or {}).get("visual") or {})
    labels = card.get("labels_by_network") or card.get("labels") or {}
    if isinstance(labels, dict) and "visual" in labels:
        info.setdefault("labels", labels["visual"])
    info.setdefault("command", f"(the visual network of {folder})")
    return visual_net.eval(), info


def assemble(
    audio_run: str | Path,
    visual_run: str | Path,
    out: str | Path,
    metrics: dict[str, Any] | None = None,
    name: str = "default",
    overwrite: bool = False,
) -> Path:
    from slfm_training.stages.visual_cylinder import (
        CONFIG_FILE,
        RECIPE_COMMAND,
        load_cylinder_pose,
    )

    audio_cfg, audio_net, audio_info = load_audio_run(audio_run)
    if (Path(visual_run) / "card.yaml").is_file() and not (
        Path(visual_run) / CONFIG_FILE
    ).is_file():
        visual_net, visual_info = _model_visual(Path(visual_run))
    else:
        visual_net = load_cylinder_pose(visual_run)
        visual_run_info = load_yaml_mapping(Path(visual_run) / CONFIG_FILE)
        visual_info = dict(visual_run_info.get("training") or {})
        visual_info["metrics"] = visual_run_info.get("metrics")
        visual_info["command"] = visual_info.get("command") or RECIPE_COMMAND
    config = CompactModelConfig(audio_cfg, visual_net.cfg, name)
    labels = {
        "audio": str(audio_info.pop("labels")),
        "visual": str(visual_info.get("labels", "simulator camera turns")),
    }
    card = {
        "family": "compact",
        # A model no label trained says so in one word; the networks' entries say how.
        "labels": "none" if all(v.startswith("none") for v in labels.values()) else labels,
        "labels_by_network": labels,
        "stages": {"audio": audio_info, "visual": visual_info},
        # The card's standard fields, per network; each stage above has the full recipe.
        "training_data": {
            "audio": audio_info.get("training_data"),
            "visual": visual_info.get("data"),
        },
        "seed": {
            "audio": {
                "data": (audio_info.get("data") or {}).get("train_seed"),
                "train": (audio_info.get("train") or {}).get("seed"),
            },
            "visual": {
                "data": (visual_info.get("data") or {}).get("seed"),
                "train": (visual_info.get("optim") or {}).get("seed"),
            },
        },
        "metrics": metrics or {},
    }
    return save_model(out, config, audio_net, visual_net, card_extra=card, overwrite=overwrite)


def read_metrics(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"--metrics {path}: cannot read a JSON mapping: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"--metrics {path}: expected a JSON mapping")
    return data
