"""Reading and writing the compact audio network, in either of its two containers.

- a run folder of ``slfm train audio`` / ``slfm train audio-label-free`` (or its file): one
  ``audio_net.pt`` with the state dict (``net``), the cue front end (``cues``), the network
  config (``net_config``) and card fields (``labels``, ``command``, ...);
- a compact model folder (``weights.pt`` + ``card.yaml``, family ``compact``, written by
  ``slfm train assemble`` through ``slfm_ros.core.models.checkpoint.save_model``), which also
  holds the visual network.

The label-free stage and ``slfm train adapt`` read and write through ``load_audio_net`` and
``save_like``, so an adapted network goes back into the container it came from: a model folder
keeps its visual network unchanged.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from slfm_ros.core.atomic_io import atomic_write_bytes
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.geometry.receiver_calibration import CalibratedReceiver
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.cue_direction import CueDirectionNet

AUDIO_NET_FILE = "audio_net.pt"
# Card entries that save_model writes itself (a new model folder gets its own).
_SAVE_MODEL_WRITES = (
    "format",
    "model_config",
    "weights_file",
    "weights_sha256",
    "created",
    "parameters",
    "git_commit",
)


@dataclass
class AudioNet:
    """A loaded compact audio network (eval mode), its front end and card fields.

    model: the whole compact model when it came from a model folder, else None.
    """

    net: CueDirectionNet
    cues: CueConfig
    card: dict[str, Any]
    path: Path
    model: Any = field(default=None, repr=False)

    @property
    def labels(self) -> str:
        """What supervised the audio network, as its card says."""
        labels = self.card.get("labels", "unknown")
        if isinstance(labels, dict):
            labels = labels.get("audio", "unknown")
        return str(labels)

    @property
    def lobe_refine_itd(self) -> float:
        """How the node refines the network's answer with a known receiver (0: it does not)."""
        if self.model is not None:
            return float(self.model.config.audio.lobe_refine_itd)
        return float(dict(self.card.get("decode") or {}).get("lobe_refine_itd", 0.0))

    @property
    def receiver_input(self) -> bool:
        """Whether the network learned with the receiver's largest delay as input (false: it
        is run without it even where the receiver is known, as the node runs it)."""
        if self.model is not None:
            return bool(self.model.config.audio.receiver_input)
        return bool(self.card.get("receiver_input", True))

    @property
    def lobe_widening(self) -> tuple[float, ...]:
        """The refinement's successive ranges (``audio.lobe_widening`` of the model)."""
        if self.model is not None:
            return tuple(self.model.config.audio.lobe_widening)
        widening = dict(self.card.get("decode") or {}).get("lobe_widening", [1.0])
        return tuple(float(w) for w in widening)

    @property
    def calibrated_receiver(self) -> CalibratedReceiver | None:
        """The receiver fitted to the recordings the network was adapted on, if any."""
        if self.model is not None:
            found: CalibratedReceiver | None = self.model.config.audio.calibrated_receiver
            return found
        data = self.card.get("calibrated_receiver")
        return None if data is None else CalibratedReceiver.from_dict(dict(data))


def audio_net_path(model: str | Path) -> Path:
    """The network file of a run: the file itself or ``model/audio_net.pt``."""
    path = Path(model)
    return path / AUDIO_NET_FILE if path.is_dir() else path


def _is_model_folder(path: Path) -> bool:
    from slfm_ros.core.models.checkpoint import CARD_FILE

    return path.is_dir() and (path / CARD_FILE).is_file() and not (path / AUDIO_NET_FILE).exists()


def load_audio_net(model: str | Path) -> AudioNet:
    """Load ``model`` (a compact model folder, a run folder holding audio_net.pt, or the file);
    ModelError when it is missing or holds no compact audio network."""
    folder = Path(model)
    if _is_model_folder(folder):
        from slfm_ros.core.models.checkpoint import load_model
        from slfm_ros.core.models.compact import CompactModelConfig

        loaded = load_model(folder)
        if not isinstance(loaded.config, CompactModelConfig):
            raise ModelError(
                f"{folder} holds a model of the {loaded.config.family!r} family; this needs "
                "a compact model (its audio network reads binaural cues): give a compact model "
                "folder or an audio run folder"
            )
        net = loaded.audio_net
        assert isinstance(net, CueDirectionNet)
        return AudioNet(net.eval(), loaded.config.audio.cues, dict(loaded.card), folder, loaded)
    path = audio_net_path(folder)
    if not path.is_file():
        raise ModelError(
            f"no compact audio network at {model}: pass a compact model folder (card.yaml + "
            "weights.pt), the folder `slfm train audio` or `slfm train audio-label-free` "
            "wrote, or its audio_net.pt"
        )
    try:
        data = torch.load(path, map_location="cpu", weights_only=False)
        cues = CueConfig.from_dict(dict(data["cues"]))
        net = CueDirectionNet(CueNetConfig.from_dict(dict(data["net_config"])))
        net.load_state_dict(data["net"])
    except (KeyError, TypeError, RuntimeError, ValueError, ConfigError) as err:
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
    """Write ``net`` with its configs and ``card`` fields as one audio_net.pt (atomically)."""
    buffer = io.BytesIO()
    torch.save(
        {"net": net.state_dict(), "cues": cues.to_dict(), "net_config": net.cfg.to_dict(), **card},
        buffer,
    )
    target = Path(path)
    atomic_write_bytes(target, buffer.getvalue())
    return target


def save_like(
    start: AudioNet,
    out: str | Path,
    net: CueDirectionNet,
    card: dict[str, Any],
    *,
    receiver_input: bool,
    calibrated_receiver: CalibratedReceiver | None,
    lobe_widening: tuple[float, ...] | None = None,
) -> Path:
    """Write ``net`` into the new folder ``out`` in ``start``'s container: a compact model
    folder (with ``start``'s visual network and card entries, ``card`` added) or a run folder
    with audio_net.pt. ``receiver_input``: whether ``net`` learned with the receiver's
    largest delay as input (``audio.receiver_input`` of the model; ``slfm train assemble``
    carries it from a run folder). ``calibrated_receiver``: the receiver fitted to the
    recordings ``net`` learned from (``audio.calibrated_receiver``), None when none was.
    ``lobe_widening``: the refinement's ranges (``audio.lobe_widening``), None keeps
    ``start``'s. Returns the folder."""
    widening = start.lobe_widening if lobe_widening is None else tuple(lobe_widening)
    folder = Path(out)
    if start.model is None:
        folder.mkdir(parents=True, exist_ok=True)
        calibrated = None if calibrated_receiver is None else calibrated_receiver.to_dict()
        decode = {**dict(start.card.get("decode") or {}), "lobe_widening": list(widening)}
        save_audio_net(
            folder / AUDIO_NET_FILE,
            net,
            start.cues,
            {
                **card,
                "decode": decode,
                "receiver_input": receiver_input,
                "calibrated_receiver": calibrated,
            },
        )
        return folder
    from dataclasses import replace

    from slfm_ros.core.models.checkpoint import save_model

    kept = {k: v for k, v in start.card.items() if k not in _SAVE_MODEL_WRITES}
    extra = {**kept, **card}
    config = start.model.config
    audio = replace(
        config.audio,  # type: ignore[arg-type]
        receiver_input=receiver_input,
        calibrated_receiver=calibrated_receiver,
        lobe_widening=widening,
    )
    config = replace(config, audio=audio)
    return save_model(folder, config, net, start.model.visual_net, card_extra=extra)
