"""Architecture configuration of the SLfM networks, with the ``full`` and ``small`` presets.

``full`` matches the published networks (ResNet-18 at full width, 240 x 320 images, 2.55 s
clips with a 4 x 256 x 256 STFT). ``small`` is sized to run one 1 s audio window and one image
pair in real time on a 2-core CPU and to train on a CPU.

Configs are frozen dataclasses validated on creation; ``load_model_config`` builds one from a
preset name or a YAML-style mapping and rejects unknown keys.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeAlias

from slfm_ros.core.dsp.stft import StftConfig
from slfm_ros.core.errors import ConfigError

if TYPE_CHECKING:
    from slfm_ros.core.models.compact import CompactModelConfig

_REFERENCE_STFT = StftConfig()


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_positive_ints(owner: str, **values: int | tuple[int, ...]) -> None:
    for name, value in values.items():
        items = value if isinstance(value, tuple) else (value,)
        _require(
            all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in items),
            f"{owner}.{name}: expected positive integer(s), got {value!r}",
        )


@dataclass(frozen=True)
class VisualNetConfig:
    """Visual pose network.

    image_height, image_width: network input size in pixels (images are resized to it).
    width_mult:       ResNet-18 width multiplier (1.0 = 64/128/256 up to layer3).
    trunk_blocks:     BasicBlocks per trunk stage, one entry per stage kept.
    trunk_stop_layer: last ResNet stage kept (3 = stride 16; 2 = stride 8, a finer volume).
    encoder_channels, encoder_layers: conv encoder over the correlation volume; every second
                      layer has stride 2.
    feature_dim:      size of the pair feature.
    head_hidden:      hidden units of the rotation head.
    """

    image_height: int = 240
    image_width: int = 320
    width_mult: float = 1.0
    trunk_blocks: tuple[int, ...] = (2, 2, 2)
    trunk_stop_layer: int = 3
    encoder_channels: int = 128
    encoder_layers: int = 6
    feature_dim: int = 512
    head_hidden: int = 256

    def __post_init__(self) -> None:
        _check_positive_ints(
            "visual",
            image_height=self.image_height,
            image_width=self.image_width,
            trunk_blocks=self.trunk_blocks,
            encoder_channels=self.encoder_channels,
            encoder_layers=self.encoder_layers,
            feature_dim=self.feature_dim,
            head_hidden=self.head_hidden,
        )
        _require(self.width_mult > 0, f"visual.width_mult: expected > 0, got {self.width_mult}")
        _require(
            self.trunk_stop_layer in (2, 3),
            f"visual.trunk_stop_layer: expected 2 or 3, got {self.trunk_stop_layer}",
        )
        _require(
            len(self.trunk_blocks) == self.trunk_stop_layer,
            f"visual.trunk_blocks: expected {self.trunk_stop_layer} entries (one per stage), "
            f"got {list(self.trunk_blocks)}",
        )
        _require(
            self.image_height >= 32 and self.image_width >= 32,
            f"visual: image size must be at least 32 x 32, got "
            f"{self.image_height} x {self.image_width}",
        )


@dataclass(frozen=True)
class AudioNetConfig:
    """Audio direction network and the STFT features it expects.

    sample_rate:  Hz; audio is resampled to it before the STFT.
    clip_samples: samples per analysis window at ``sample_rate``.
    n_fft, win_length: STFT sizes in samples (rectangular window, centred STFT).
    time_frames, freq_bins: feature size; the hop is derived (see ``StftConfig``).
    db_range:     (low, high) dB mapped to the magnitude feature range [-1, 1].
    phase_reference: phase planes of the features: "absolute" (each ear's own phase, the
                  reference) or "interaural" (each ear relative to the other); see
                  ``slfm_ros.core.dsp.stft``.
    width_mult, blocks: ResNet-18 width multiplier and BasicBlocks per stage.
    feature_dim:  size of the audio feature.
    head_hidden:  hidden units of the direction head.
    """

    # The feature defaults are the reference STFT's, stated once in StftConfig.
    sample_rate: int = _REFERENCE_STFT.sample_rate
    clip_samples: int = _REFERENCE_STFT.clip_samples
    n_fft: int = _REFERENCE_STFT.n_fft
    win_length: int = _REFERENCE_STFT.win_length
    time_frames: int = _REFERENCE_STFT.time_frames
    freq_bins: int = _REFERENCE_STFT.freq_bins
    db_range: tuple[float, ...] = _REFERENCE_STFT.db_range
    phase_reference: str = _REFERENCE_STFT.phase_reference
    width_mult: float = 1.0
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    feature_dim: int = 512
    head_hidden: int = 256

    def __post_init__(self) -> None:
        _check_positive_ints(
            "audio",
            blocks=self.blocks,
            feature_dim=self.feature_dim,
            head_hidden=self.head_hidden,
        )
        _require(self.width_mult > 0, f"audio.width_mult: expected > 0, got {self.width_mult}")
        _require(
            len(self.blocks) == 4,
            f"audio.blocks: expected 4 entries (one per ResNet stage), got {list(self.blocks)}",
        )
        _require(
            len(self.db_range) == 2,
            f"audio.db_range: expected [low, high], got {list(self.db_range)}",
        )
        # StftConfig validates the STFT fields; its ConfigError names the problem.
        self.stft_config()

    def stft_config(self) -> StftConfig:
        """The feature STFT of this network (``slfm_ros.core.dsp.stft``)."""
        return StftConfig(
            sample_rate=self.sample_rate,
            clip_samples=self.clip_samples,
            n_fft=self.n_fft,
            win_length=self.win_length,
            time_frames=self.time_frames,
            freq_bins=self.freq_bins,
            db_range=(float(self.db_range[0]), float(self.db_range[1])),
            phase_reference=self.phase_reference,
        )

    @property
    def clip_seconds(self) -> float:
        return self.clip_samples / self.sample_rate

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(4, freq_bins, time_frames): the network input of one clip."""
        return (4, self.freq_bins, self.time_frames)


@dataclass(frozen=True)
class BinauralNetConfig:
    """Cross-view binauralization U-Net (pretext task).

    channels: widths of the five 4x4 stride-2 down convolutions; the up path mirrors them.
    """

    channels: tuple[int, ...] = (64, 128, 256, 512, 512)

    def __post_init__(self) -> None:
        _check_positive_ints("binaural", channels=self.channels)
        _require(
            len(self.channels) == 5,
            f"binaural.channels: expected 5 widths, got {list(self.channels)}",
        )


@dataclass(frozen=True)
class ModelConfig:
    """The audio and visual networks of one model (plus the pretext U-Net)."""

    visual: VisualNetConfig = field(default_factory=VisualNetConfig)
    audio: AudioNetConfig = field(default_factory=AudioNetConfig)
    name: str = "full"
    binaural: BinauralNetConfig = field(default_factory=BinauralNetConfig)

    def __post_init__(self) -> None:
        _require(
            isinstance(self.name, str) and self.name != "",
            f"model.name: expected a non-empty string, got {self.name!r}",
        )

    @property
    def condition_dim(self) -> int:
        """Size of the U-Net bottleneck condition: audio feature + visual pair feature."""
        return self.audio.feature_dim + self.visual.feature_dim

    def to_dict(self) -> dict[str, Any]:
        """Plain mapping (tuples as lists) that ``load_model_config`` reads back."""
        out: dict[str, Any] = {"name": self.name}
        for part in ("visual", "audio", "binaural"):
            values = dataclasses.asdict(getattr(self, part))
            out[part] = {k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}
        return out


PRESETS: dict[str, ModelConfig] = {
    "full": ModelConfig(VisualNetConfig(), AudioNetConfig(), "full"),
    # Half-width trunks; the visual trunk stops at layer2 so that its stride-8 map of a
    # 120 x 160 image has the same 15 x 20 correlation grid (3 deg per cell) as ``full``.
    # One 1 s window at 16 kHz with the reference STFT sizes gives 4 x 256 x 128 features.
    # Interaural phase planes: the same 300 supervised steps reach 11.7 deg instead of
    # 16.5 deg with absolute phases (docs/results-learning.md, "Interaural phase features").
    # About 2 ms per audio window and 4 ms per image pair with ONNX Runtime on one CPU thread.
    "small": ModelConfig(
        VisualNetConfig(
            image_height=120,
            image_width=160,
            width_mult=0.5,
            trunk_blocks=(2, 2),
            trunk_stop_layer=2,
            encoder_channels=128,
            encoder_layers=6,
            feature_dim=256,
            head_hidden=128,
        ),
        AudioNetConfig(
            sample_rate=16000,
            clip_samples=16000,
            n_fft=512,
            win_length=400,
            time_frames=128,
            freq_bins=256,
            phase_reference="interaural",
            width_mult=0.5,
            blocks=(1, 1, 1, 1),
            feature_dim=256,
            head_hidden=128,
        ),
        "small",
        BinauralNetConfig(channels=(16, 32, 64, 128, 256)),
    ),
}


# The compact family (slfm_ros.core.models.compact) has its own config class.
COMPACT = "compact"
AnyModelConfig: TypeAlias = "ModelConfig | CompactModelConfig"


def preset(name: str) -> ModelConfig:
    """The named preset of the ResNet family ('full' or 'small')."""
    if name not in PRESETS:
        raise ConfigError(
            f"model preset: expected one of {sorted([*PRESETS, COMPACT])}, got {name!r}"
        )
    return PRESETS[name]


_PARTS: dict[str, type] = {
    "visual": VisualNetConfig,
    "audio": AudioNetConfig,
    "binaural": BinauralNetConfig,
}


def _coerce(part: str, key: str, value: Any, default: Any) -> Any:
    if isinstance(default, tuple):
        if not isinstance(value, list | tuple):
            raise ConfigError(f"model.{part}.{key}: expected a list, got {value!r}")
        return tuple(value)
    if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if type(value) is not type(default):
        raise ConfigError(
            f"model.{part}.{key}: expected {type(default).__name__}, got "
            f"{type(value).__name__} ({value!r})"
        )
    return value


def load_model_config(data: Mapping[str, Any] | str) -> AnyModelConfig:
    """Build a model config from a preset name or a mapping.

    ``compact`` (as a name, ``preset: compact`` or ``family: compact``) gives the compact family's
    ``CompactModelConfig``. Otherwise the mapping keys are: ``preset`` (base preset, default
    'full'), ``name`` (defaults to the preset's name), and partial ``visual`` / ``audio`` /
    ``binaural`` mappings that override the preset. Unknown keys raise ConfigError naming them.
    """
    if data == COMPACT or (
        isinstance(data, Mapping) and COMPACT in (data.get("family"), data.get("preset"))
    ):
        from slfm_ros.core.models.compact import CompactModelConfig

        return CompactModelConfig() if isinstance(data, str) else CompactModelConfig.from_dict(data)
    if isinstance(data, str):
        return preset(data)
    if not isinstance(data, Mapping):
        raise ConfigError(
            f"model config: expected a preset name or a mapping, got {type(data).__name__}"
        )
    known = {"preset", "name", *_PARTS}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"model config: unknown key(s) {unknown}; known keys: {sorted(known)}")
    base = preset(str(data.get("preset", "full")))
    parts: dict[str, Any] = {}
    for part, cls in _PARTS.items():
        current = getattr(base, part)
        overrides = data.get(part) or {}
        if not isinstance(overrides, Mapping):
            raise ConfigError(f"model.{part}: expected a mapping, got {overrides!r}")
        fields = {f.name for f in dataclasses.fields(cls)}
        bad = sorted(set(overrides) - fields)
        if bad:
            raise ConfigError(f"model.{part}: unknown key(s) {bad}; known keys: {sorted(fields)}")
        values = {k: _coerce(part, k, v, getattr(current, k)) for k, v in overrides.items()}
        parts[part] = dataclasses.replace(current, **values)
    name = data.get("name", base.name)
    return ModelConfig(parts["visual"], parts["audio"], str(name), parts["binaural"])


def config_for_camera(config: AnyModelConfig, camera: tuple[float, float]) -> AnyModelConfig:
    """``config`` with its visual network set up for a camera of ``camera`` = (horizontal FOV,
    pitch) in degrees.

    The compact family's visual network reprojects both images onto a cylinder with the
    camera's intrinsics and pitch; its head was trained on many cameras, but the projection
    must be the real camera's, or the shifts it correlates are distorted (a level camera seen
    as one pitched 22.5 deg down gets turns of 20 deg and more wrong). The ResNet family takes
    images as they come and is returned unchanged, as is a camera equal to the config's own.
    """
    import math

    hfov_deg, pitch_deg = (float(v) for v in camera)
    if not (0.0 < hfov_deg < 180.0 and -90.0 < pitch_deg < 90.0):
        raise ConfigError(
            f"camera: horizontal FOV must be in (0, 180) deg and pitch in (-90, 90) deg, got "
            f"{hfov_deg:g} and {pitch_deg:g}"
        )
    from slfm_ros.core.models.compact import CompactModelConfig

    if not isinstance(config, CompactModelConfig):
        return config
    visual = config.visual
    if math.isclose(visual.hfov_deg, hfov_deg, abs_tol=1e-6) and math.isclose(
        visual.pitch_deg, pitch_deg, abs_tol=1e-6
    ):
        return config
    followed = visual.with_camera(hfov_deg, pitch_deg, visual.image_height, visual.image_width)
    return dataclasses.replace(config, visual=followed)
