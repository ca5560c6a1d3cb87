"""Reading and writing the compact audio network as one ``audio_net.pt`` file.

The file holds the state dict (``net``), the cue front end (``cues``), the network config
(``net_config``) and card fields (``labels``, ``command``, ...), as ``slfm train audio`` writes
it. Every reader and writer of the label-free stage and of ``slfm train adapt`` goes through
``load_audio_net`` / ``save_audio_net``, so they switch to a model folder in one place.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from slfm_ros.core.atomic_io import atomic_write_bytes
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ModelError
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.cue_direction import CueDirectionNet

AUDIO_NET_FILE = "audio_net.pt"


@dataclass
class AudioNet:
    """A loaded compact audio network: the module (eval mode), its configs and card fields."""

    net: CueDirectionNet
    cues: CueConfig
    card: dict[str, Any]
    path: Path


def audio_net_path(model: str | Path) -> Path:
    """The network file of ``model``: the file itself or ``model/audio_net.pt``."""
    path = Path(model)
    return path / AUDIO_NET_FILE if path.is_dir() else path


def load_audio_net(model: str | Path) -> AudioNet:
    """Load ``model`` (a folder holding audio_net.pt, or the file); ModelError when it is
    missing or is not a compact audio network."""
    path = audio_net_path(model)
    if not path.is_file():
        raise ModelError(
            f"no compact audio network at {path}: pass the folder `slfm train audio` (or "
            "`slfm train audio-label-free`, `slfm train adapt`) wrote, or its audio_net.pt"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
        cues = CueConfig.from_dict(dict(data["cues"]))
        net = CueDirectionNet(CueNetConfig.from_dict(dict(data["net_config"])))
        net.load_state_dict(data["net"])
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise ModelError(f"{path} is not a compact audio network: {err}") from err
    if net.cfg.input_dim != cues.dim:
        raise ModelError(
            f"{path}: the network takes {net.cfg.input_dim} cues but its front end gives {cues.dim}"
        )
    card = {k: v for k, v in data.items() if k not in ("net", "cues", "net_config")}
    return AudioNet(net.eval(), cues, card, path)


def save_audio_net(
    path: str | Path, net: CueDirectionNet, cues: CueConfig, card: dict[str, Any]
) -> Path:
    """Write ``net`` with its configs and ``card`` fields to ``path`` (atomically)."""
    buffer = io.BytesIO()
    torch.save(
        {"net": net.state_dict(), "cues": cues.to_dict(), "net_config": net.cfg.to_dict(), **card},
        buffer,
    )
    target = Path(path)
    atomic_write_bytes(target, buffer.getvalue())
    return target
