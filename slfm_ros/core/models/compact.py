"""The compact model family: networks that put the known physics in fixed front ends.

Audio: the binaural cue front end (``slfm_ros.core.dsp.binaural_cues``, a documented numpy
step outside the graph) and a small MLP that outputs a distribution over the full circle
(``slfm_ros.core.models.cue_direction``). Visual: both images reprojected onto a cylinder with
the camera's intrinsics and pitch inside the graph, so a yaw is a horizontal shift, correlated
over shifts, with learned column descriptors for pairs that share little view
(``slfm_ros.core.models.cylinder_pose``).

Both train in CPU minutes and run in a few milliseconds per window or pair. The ``full`` and
``small`` presets of ``slfm_ros.core.models.config`` remain the published ResNet family.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.receiver_calibration import CalibratedReceiver
from slfm_ros.core.models.azimuth_bins import APERTURE_DIM, CueNetConfig
from slfm_ros.core.models.cylinder_config import CylinderPoseConfig

FAMILY = "compact"


def checked_widening(values: Sequence[float]) -> tuple[float, ...]:
    """``audio.lobe_widening`` as floats; ConfigError unless it starts at 1 and increases."""
    widening = tuple(float(w) for w in values)
    if not widening or widening[0] != 1.0 or any(b <= a for a, b in itertools.pairwise(widening)):
        raise ConfigError(f"audio.lobe_widening must start at 1 and increase, got {list(values)}")
    return widening


@dataclass(frozen=True)
class CueAudioConfig:
    """The compact audio network and its front end.

    cues: the binaural cue front end (window length, STFT, lag range, bands).
    net:  the MLP (hidden sizes, azimuth bins); ``net.input_dim`` equals ``cues.dim``.
    lobe_refine_itd: when the receiver's geometry is known, the answer is the GCC-PHAT peak
          among the lags within this fraction of the receiver's largest interaural delay of
          the network's answer (the network picks the lobe, which a reflection can take from
          the correlation's global peak; the correlation places it more precisely than
          3-degree bins); 0 = the network's answer as it is.
    lobe_widening: the ranges searched in turn, as multiples of ``lobe_refine_itd``, until
          one holds a peak: (1.0,) searches only the narrow one. ``slfm train adapt`` widens it
          to (1, 2, 4) for a receiver it calibrated, whose delays then match the correlation
          (``cue_audio.CALIBRATED_WIDENING``); with a receiver described only roughly, wider
          ranges would place the answer on the wrong delays.
    receiver_input: whether the network takes the receiver's largest delay when the caller
          knows it; false for a network that learned its ears without it (adapted on a
          robot's recordings with the receiver unknown): the geometry is then not used.
    calibrated_receiver: the receiver's interaural model as ``slfm train adapt`` fitted it
          from the robot's own turning recordings (None: not calibrated); the node and
          ``slfm eval`` use it with ``receiver: calibrated``.
    """

    cues: CueConfig = field(default_factory=CueConfig)
    net: CueNetConfig = field(default_factory=CueNetConfig)
    lobe_refine_itd: float = 0.0
    receiver_input: bool = True
    calibrated_receiver: CalibratedReceiver | None = None
    lobe_widening: tuple[float, ...] = (1.0,)

    def __post_init__(self) -> None:
        if self.net.input_dim != self.cues.dim:
            raise ConfigError(
                f"audio.net.input_dim ({self.net.input_dim}) must equal the cue vector length "
                f"({self.cues.dim})"
            )
        if not 0.0 <= self.lobe_refine_itd <= 2.0:
            raise ConfigError(
                f"audio.lobe_refine_itd must be in [0, 2] (a fraction of the largest interaural "
                f"delay), got {self.lobe_refine_itd}"
            )
        object.__setattr__(self, "lobe_widening", checked_widening(self.lobe_widening))

    @property
    def sample_rate(self) -> int:
        return self.cues.sample_rate

    @property
    def clip_samples(self) -> int:
        return self.cues.window_samples

    @property
    def clip_seconds(self) -> float:
        return self.cues.window_seconds

    @property
    def feature_shape(self) -> tuple[int]:
        """(cues + aperture,): the network input of one window."""
        return (self.cues.dim + APERTURE_DIM,)

    def features(self, window: npt.ArrayLike) -> npt.NDArray[np.float32]:
        """Network input of one window with the receiver unknown (aperture zeros)."""
        return np.concatenate([binaural_cues(window, self.cues), np.zeros(2, np.float32)])

    def to_dict(self) -> dict[str, Any]:
        return {
            "cues": self.cues.to_dict(),
            "net": self.net.to_dict(),
            "lobe_refine_itd": self.lobe_refine_itd,
            "receiver_input": self.receiver_input,
            **({} if self.lobe_widening == (1.0,) else {"lobe_widening": list(self.lobe_widening)}),
            **(
                {}
                if self.calibrated_receiver is None
                else {"calibrated_receiver": self.calibrated_receiver.to_dict()}
            ),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CueAudioConfig:
        known = {
            "cues",
            "net",
            "lobe_refine_itd",
            "receiver_input",
            "calibrated_receiver",
            "lobe_widening",
        }
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"model.audio: unknown key(s) {unknown}")
        cues = CueConfig.from_dict(dict(data.get("cues") or {}))
        net_data = dict(data.get("net") or {})
        net_data.setdefault("input_dim", cues.dim)
        refine = data.get("lobe_refine_itd", 0.0)
        if isinstance(refine, bool) or not isinstance(refine, int | float):
            raise ConfigError(f"model.audio.lobe_refine_itd: expected a number, got {refine!r}")
        receiver_input = data.get("receiver_input", True)
        if not isinstance(receiver_input, bool):
            raise ConfigError(
                f"model.audio.receiver_input: expected true or false, got {receiver_input!r}"
            )
        widening = data.get("lobe_widening", [1.0])
        if not isinstance(widening, list | tuple) or not all(
            isinstance(w, int | float) and not isinstance(w, bool) for w in widening
        ):
            raise ConfigError(
                f"model.audio.lobe_widening: expected a list of numbers, got {widening!r}"
            )
        calibrated = data.get("calibrated_receiver")
        if calibrated is not None and not isinstance(calibrated, Mapping):
            raise ConfigError(
                f"model.audio.calibrated_receiver: expected a mapping, got {calibrated!r}"
            )
        return CueAudioConfig(
            cues,
            CueNetConfig.from_dict(net_data),
            float(refine),
            receiver_input,
            None if calibrated is None else CalibratedReceiver.from_dict(dict(calibrated)),
            tuple(float(w) for w in widening),
        )


@dataclass(frozen=True)
class CompactModelConfig:
    """The audio and visual networks of one compact model."""

    audio: CueAudioConfig = field(default_factory=CueAudioConfig)
    visual: CylinderPoseConfig = field(default_factory=CylinderPoseConfig)
    name: str = FAMILY

    family = FAMILY

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": FAMILY,
            "name": self.name,
            "audio": self.audio.to_dict(),
            "visual": self.visual.to_dict(),
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> CompactModelConfig:
        unknown = sorted(set(data) - {"family", "name", "audio", "visual", "preset"})
        if unknown:
            raise ConfigError(f"compact model config: unknown key(s) {unknown}")
        return CompactModelConfig(
            CueAudioConfig.from_dict(dict(data.get("audio") or {})),
            CylinderPoseConfig.from_dict(dict(data.get("visual") or {})),
            str(data.get("name", FAMILY)),
        )
