"""Multi-view samples: one world seen and heard from K views that differ only by yaw.

A world is a panorama (procedural or from a folder), a shoebox room (or free field), a dominant
target source, optional interferers and diffuse background noise. The observer stands at the
panorama centre / room listener position and turns: view 0 has a random world yaw, view i has
yaw_0 + theta_i with |theta_i| in [min_turn_deg, max_turn_deg). Each view gets a perspective
image and a binaural clip; the clips are consecutive time windows of the same sources (the
observer turns between them), and the room's reverberation of earlier sound is kept in each clip.

Angles are radians (REP-103, left positive): ``theta_i = yaw_i - yaw_0`` and the azimuth of a
source in view i is ``phi_world - yaw_i`` (``slfm_ros.core.conventions``).

Determinism and splits: ``sample_rng(seed, split, index)`` gives the generator of one sample.
Everything random in a sample comes from it, and the streams that pick panoramas and source
signals also mix in the split, so the splits never share a procedural panorama or a generated
source signal; folder panoramas and folder clips are assigned to splits by file-name hash.

Receivers: ``receiver`` is one fixed receiver; a non-empty ``receivers`` list mixes several
(weighted choice per sample, numeric parameters given as [low, high] drawn per sample). The
choice comes from a stream derived from the state of the sample's generator without drawing
from it (``receiver_rng``), so a config with one fixed receiver renders exactly what it did
before the list existed, and everything else in a sample is the same whichever receiver is
drawn.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.config_io import from_mapping, load_yaml_mapping, to_mapping
from slfm_ros.core.conventions import camera_turn, source_azimuth_in_view, wrap_angle
from slfm_ros.core.errors import ConfigError

if TYPE_CHECKING:
    from slfm_ros.core.sim.receivers import Receiver

SPLITS = ("train", "val", "test")
TARGET_KINDS = ("speech", "espeak", "music", "noise", "intermittent_speech", "folder")
RECEIVER_KINDS = ("spherical_head", "stereo_array", "sofa")
PANORAMA_SOURCES = ("procedural", "folder")

# Camera effects of the training distribution: light sensor noise, defocus and compression;
# no colour jitter (the trainer jitters on the fly, differently every epoch).
DEFAULT_EFFECTS: dict[str, Any] = {
    "jitter_brightness": 0.0,
    "jitter_contrast": 0.0,
    "jitter_saturation": 0.0,
    "jitter_hue": 0.0,
    "jitter_p": 0.0,
    "noise_sigma_max": 3.0,
    "noise_p": 0.5,
    "blur_sigma_max": 1.0,
    "blur_p": 0.3,
    "jpeg_min_quality": 60,
    "jpeg_p": 0.3,
}

# Stream tags mixed into seeds of split-specific content (so splits draw from disjoint streams).
_STREAM_SOURCE = 1
# Tag of the receiver stream, mixed with the digest of the sample generator's state.
_STREAM_RECEIVER = 0x52435652
# A [low, high] receiver parameter takes one of RANGE_LEVELS + 1 evenly spaced values, so a
# process builds a bounded number of receivers (0.4 mm steps over 25 mm of head radius).
RANGE_LEVELS = 64
# Receivers kept built per process (a SOFA set or a head's scattering tables is costly).
_RECEIVER_CACHE_ITEMS = 256


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _check_range(name: str, lo_hi: tuple[float, float], low: float, high: float) -> None:
    lo, hi = lo_hi
    _check(
        low <= lo <= hi <= high,
        f"{name}: expected low <= high within [{low}, {high}], got [{lo}, {hi}]",
    )


@dataclass(frozen=True)
class ViewsConfig:
    """num_views: K >= 2; turns |theta_i| uniform in [min_turn_deg, max_turn_deg), random sign."""

    num_views: int = 3
    min_turn_deg: float = 10.0
    max_turn_deg: float = 90.0

    def __post_init__(self) -> None:
        _check(self.num_views >= 2, f"views.num_views: expected >= 2, got {self.num_views}")
        _check(
            0.0 <= self.min_turn_deg < self.max_turn_deg <= 180.0,
            f"views: expected 0 <= min_turn_deg < max_turn_deg <= 180, got "
            f"{self.min_turn_deg}, {self.max_turn_deg}",
        )


@dataclass(frozen=True)
class ImageConfig:
    """Perspective crops: pixels, horizontal FOV and pitch (degrees, + up), camera effects.

    max_translation_m: each view's camera is moved by up to this distance (uniform in a
    horizontal disc) from the panorama centre, for a small parallax; 0 = pure rotation.
    effects: keyword arguments of ``camera_effects.CameraEffects`` ({} = clean renders).
    """

    width: int = 320
    height: int = 240
    hfov_deg: float = 60.0
    pitch_deg: float = -22.5
    max_translation_m: float = 0.0
    effects: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_EFFECTS))

    def __post_init__(self) -> None:
        _check(
            self.width >= 16 and self.height >= 16,
            f"image: width and height must be >= 16 px, got {self.width} x {self.height}",
        )
        _check(
            0.0 < self.hfov_deg < 180.0, f"image.hfov_deg: expected (0, 180), got {self.hfov_deg}"
        )
        _check(
            -90.0 < self.pitch_deg < 90.0,
            f"image.pitch_deg: expected (-90, 90), got {self.pitch_deg}",
        )
        _check(
            0.0 <= self.max_translation_m < 1.0,
            f"image.max_translation_m: expected [0, 1) m, got {self.max_translation_m}",
        )
        _make_effects(self.effects)  # unknown or invalid effect settings fail here


@dataclass(frozen=True)
class PanoramaConfig:
    """source: "procedural" (generated rooms) or "folder" (2:1 equirectangular jpg/png in
    ``folder``, split by file-name hash). width: procedural panorama width in pixels.
    outdoor_probability: share of procedural outdoor worlds. irregular_probability: share of
    procedural worlds that are not boxes (walls and furniture at any angle, curved rooms,
    clutter, parks; 0 = boxes only, as before this key existed)."""

    source: str = "procedural"
    folder: str = ""
    width: int = 2048
    outdoor_probability: float = 0.2
    irregular_probability: float = 0.5

    def __post_init__(self) -> None:
        _check(
            self.source in PANORAMA_SOURCES,
            f"panoramas.source: expected one of {PANORAMA_SOURCES}, got {self.source!r}",
        )
        _check(
            self.source != "folder" or bool(self.folder),
            "panoramas.folder: required when panoramas.source is 'folder'",
        )


def _receiver_arguments(kind: str) -> set[str]:
    """Keyword arguments of the receiver class ``make_receiver`` builds for ``kind``."""
    from slfm_ros.core.sim.receivers import SofaReceiver, SphericalHead, StereoArray

    classes: dict[str, type] = {
        "spherical_head": SphericalHead,
        "stereo_array": StereoArray,
        "sofa": SofaReceiver,
    }
    return set(inspect.signature(classes[kind]).parameters)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _check_receiver(where: str, kind: str, params: dict[str, Any]) -> None:
    """Kind known, parameter names those of its class, ranges [low, high] of numbers."""
    _check(
        kind in RECEIVER_KINDS,
        f"{where}.kind: expected one of {RECEIVER_KINDS}, got {kind!r}",
    )
    known = _receiver_arguments(kind)
    unknown = sorted(set(params) - known)
    _check(
        not unknown,
        f"{where}.params: unknown parameter(s) {unknown} for {kind}; known: {sorted(known)}",
    )
    for name, value in params.items():
        if not isinstance(value, list | tuple):
            continue
        _check(
            len(value) == 2 and all(_is_number(v) for v in value) and value[0] <= value[1],
            f"{where}.params.{name}: a range must be [low, high] with numbers low <= high, "
            f"got {list(value)}",
        )


def _has_range(params: dict[str, Any]) -> bool:
    return any(isinstance(v, list | tuple) for v in params.values())


@dataclass(frozen=True)
class ReceiverConfig:
    """kind: spherical_head | stereo_array | sofa; params: its keyword arguments
    (radius_m; spacing_m, source_distance_m; path). A numeric parameter given as [low, high]
    is drawn per sample (see ``ReceiverChoice``)."""

    kind: str = "spherical_head"
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_receiver("receiver", self.kind, self.params)


@dataclass(frozen=True)
class ReceiverChoice:
    """One entry of ``SceneConfig.receivers``: kind and params as in ``ReceiverConfig``.

    A numeric parameter given as [low, high] is drawn per sample, uniformly among
    RANGE_LEVELS + 1 evenly spaced values (integers when both ends are integers); a scalar
    stays fixed. weight: relative share of samples (>= 0). Validated by ``SceneConfig``, whose
    errors name the entry (``receivers[i]``).
    """

    kind: str = "spherical_head"
    params: dict[str, Any] = field(default_factory=dict)
    weight: float = 1.0


@dataclass(frozen=True)
class RoomSamplingConfig:
    """Shoebox rooms (see ``room.sample_room``); sizes in metres, RT60 in seconds.

    anechoic_probability: share of samples rendered in free field (no room).
    max_order: image-source order (None = automatic, the rest is a statistical late tail).
    """

    anechoic_probability: float = 0.2
    dims_min_m: tuple[float, float, float] = (3.0, 3.0, 2.5)
    dims_max_m: tuple[float, float, float] = (12.0, 10.0, 4.0)
    rt60_range_s: tuple[float, float] = (0.15, 0.9)
    wall_margin_m: float = 0.5
    listener_height_m: tuple[float, float] = (1.2, 1.8)
    max_order: int | None = None

    def __post_init__(self) -> None:
        _check(
            0.0 <= self.anechoic_probability <= 1.0,
            f"room.anechoic_probability: expected [0, 1], got {self.anechoic_probability}",
        )
        _check_range("room.rt60_range_s", self.rt60_range_s, 0.05, 5.0)
        _check_range("room.listener_height_m", self.listener_height_m, 0.1, 10.0)


@dataclass(frozen=True)
class SourcesConfig:
    """The target (dominant) source and the interferers.

    target_kinds / target_weights: kinds drawn for the target (weights: relative, empty =
    uniform). folder: audio folder for kind "folder" (split by file-name hash).
    target_azimuth_deg: world azimuth of the target relative to view 0's yaw, uniform in this
    range (the evaluation protocol's test sets use [-90, 90]: in front of view 0).
    distance_m: source distance range. interferers: [min, max] count (inclusive).
    interferer_gain_db: level of each interferer relative to the target, before distance.
    """

    target_kinds: tuple[str, ...] = ("speech", "music", "intermittent_speech", "noise")
    target_weights: tuple[float, ...] = ()
    folder: str = ""
    target_azimuth_deg: tuple[float, float] = (-180.0, 180.0)
    distance_m: tuple[float, float] = (1.0, 3.0)
    interferers: tuple[int, int] = (0, 2)
    interferer_kinds: tuple[str, ...] = ("speech", "music", "noise", "intermittent_speech")
    interferer_gain_db: tuple[float, float] = (-20.0, -6.0)

    def __post_init__(self) -> None:
        for name, kinds in (
            ("target_kinds", self.target_kinds),
            ("interferer_kinds", self.interferer_kinds),
        ):
            _check(len(kinds) > 0, f"sources.{name}: expected at least one kind")
            bad = [k for k in kinds if k not in TARGET_KINDS]
            _check(not bad, f"sources.{name}: unknown kinds {bad}; known: {list(TARGET_KINDS)}")
        _check(
            not self.target_weights
            or (
                len(self.target_weights) == len(self.target_kinds)
                and min(self.target_weights) >= 0
                and sum(self.target_weights) > 0
            ),
            "sources.target_weights: expected one non-negative weight per target kind, or []",
        )
        uses_folder = "folder" in self.target_kinds + self.interferer_kinds
        _check(
            not uses_folder or bool(self.folder),
            "sources.folder: required when a source kind is 'folder'",
        )
        _check_range("sources.target_azimuth_deg", self.target_azimuth_deg, -180.0, 180.0)
        _check_range("sources.distance_m", self.distance_m, 0.2, 50.0)
        _check(
            0 <= self.interferers[0] <= self.interferers[1] <= 8,
            f"sources.interferers: expected 0 <= min <= max <= 8, got {list(self.interferers)}",
        )
        _check_range("sources.interferer_gain_db", self.interferer_gain_db, -80.0, 0.0)


@dataclass(frozen=True)
class NoiseConfig:
    """Diffuse background noise: SNR in dB (sources vs noise, all views) uniform in snr_db;
    spectral_slope_db_per_octave: its colour (-3 = pink, 0 = white)."""

    snr_db: tuple[float, float] = (10.0, 40.0)
    spectral_slope_db_per_octave: float = -3.0

    def __post_init__(self) -> None:
        _check_range("noise.snr_db", self.snr_db, -30.0, 120.0)


@dataclass(frozen=True)
class SceneConfig:
    """Everything that defines the distribution of simulated samples (see config/sim/*.yaml).

    sample_rate: Hz of every clip. clip_seconds: clip length per view (2.55 s = 40,800 samples
    at 16 kHz, the reference's pretext clips). output_peak: all views of a sample share one gain
    that puts their largest sample at this level.
    receiver: the receiver of every sample. receivers: when non-empty, a weighted mix that
    replaces ``receiver`` (giving both a non-default ``receiver`` and ``receivers`` is an error).
    """

    sample_rate: int = 16000
    clip_seconds: float = 2.55
    output_peak: float = 0.5
    views: ViewsConfig = field(default_factory=ViewsConfig)
    image: ImageConfig = field(default_factory=ImageConfig)
    panoramas: PanoramaConfig = field(default_factory=PanoramaConfig)
    receiver: ReceiverConfig = field(default_factory=ReceiverConfig)
    receivers: tuple[ReceiverChoice, ...] = ()
    room: RoomSamplingConfig = field(default_factory=RoomSamplingConfig)
    sources: SourcesConfig = field(default_factory=SourcesConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)

    def __post_init__(self) -> None:
        _check(
            4000 <= self.sample_rate <= 192000,
            f"sample_rate: expected 4000..192000 Hz, got {self.sample_rate}",
        )
        _check(
            self.clip_frames >= 1024,
            f"clip_seconds: {self.clip_seconds} s gives {self.clip_frames} samples; need >= 1024",
        )
        _check(
            0.0 < self.output_peak < 1.0, f"output_peak: expected (0, 1), got {self.output_peak}"
        )
        if self.receivers:
            _check(
                self.receiver == ReceiverConfig(),
                "receiver and receivers: give one of them; a non-empty receivers list replaces "
                f"receiver, so remove the receiver block (got receiver {self.receiver.kind} "
                f"{self.receiver.params})",
            )
        for i, entry in enumerate(self.receivers):
            _check_receiver(f"receivers[{i}]", entry.kind, entry.params)
            _check(
                _is_number(entry.weight) and entry.weight >= 0,
                f"receivers[{i}].weight: expected a number >= 0, got {entry.weight}",
            )
        _check(
            not self.receivers or sum(e.weight for e in self.receivers) > 0,
            "receivers: every weight is 0; give at least one entry a positive weight",
        )

    @property
    def clip_frames(self) -> int:
        return int(round(self.clip_seconds * self.sample_rate))

    @property
    def receiver_choices(self) -> tuple[ReceiverChoice, ...]:
        """The receivers samples are drawn from: ``receivers``, or ``receiver`` alone."""
        if self.receivers:
            return self.receivers
        return (ReceiverChoice(self.receiver.kind, dict(self.receiver.params)),)

    @property
    def mixes_receivers(self) -> bool:
        """True when samples may differ in receiver (several entries or a parameter range)."""
        choices = self.receiver_choices
        return len(choices) > 1 or _has_range(choices[0].params)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> SceneConfig:
        return from_mapping(SceneConfig, data)

    @staticmethod
    def from_yaml(path: str | Path) -> SceneConfig:
        """Load a YAML file; missing keys take the defaults, unknown keys raise ConfigError."""
        data = load_yaml_mapping(path)
        try:
            return from_mapping(SceneConfig, data)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from exc

    def to_dict(self) -> dict[str, Any]:
        return to_mapping(self)


@dataclass
class MultiViewSample:
    """One world seen from K views.

    images:          (K, H, W, 3) uint8 RGB, view 0 first.
    audio:           (K, F, 2) float32, channel 0 left, F = clip frames at ``sample_rate``.
    sample_rate:     Hz.
    yaws:            (K,) float64 world yaw of each view, radians.
    source_azimuths: (K, S) float64 azimuth of each source in each view, radians; source 0 is
                     the target.
    metadata:        JSON-serialisable description (room, RT60, SNR, kinds, seeds, ...).
    """

    images: npt.NDArray[np.uint8]
    audio: npt.NDArray[np.float32]
    sample_rate: int
    yaws: npt.NDArray[np.float64]
    source_azimuths: npt.NDArray[np.float64]
    metadata: dict[str, Any]

    @property
    def num_views(self) -> int:
        return int(self.yaws.shape[0])

    @property
    def turns(self) -> npt.NDArray[np.float64]:
        """(K,) theta_i = yaw_i - yaw_0 (theta_0 = 0), radians."""
        return np.asarray(camera_turn(self.yaws, self.yaws[0]), dtype=np.float64)

    @property
    def target_azimuths(self) -> npt.NDArray[np.float64]:
        """(K,) azimuth of the target source in each view, radians."""
        return np.asarray(self.source_azimuths[:, 0], dtype=np.float64)


def split_code(split: str) -> int:
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {SPLITS}, got {split!r}")
    return SPLITS.index(split)


def sample_rng(seed: int, split: str, index: int) -> np.random.Generator:
    """Generator of sample ``index`` of ``split`` for dataset seed ``seed`` (all >= 0)."""
    if seed < 0 or index < 0:
        raise ConfigError(f"seed and index must be >= 0, got {seed}, {index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), split_code(split), int(index)]))


def receiver_rng(rng: np.random.Generator) -> np.random.Generator:
    """The receiver stream of a sample whose generator is ``rng``; draws nothing from ``rng``.

    Seeded from a digest of the generator's current state, so for ``sample_rng(seed, split,
    index)`` it is a function of (seed, split, index) alone, independent of every other draw.
    """
    state = json.dumps(
        rng.bit_generator.state,
        sort_keys=True,
        default=lambda v: v.tolist() if isinstance(v, np.ndarray) else str(v),
    )
    digest = int.from_bytes(hashlib.sha256(state.encode()).digest()[:16], "little")
    return np.random.default_rng(np.random.SeedSequence([digest, _STREAM_RECEIVER]))


def _draw_param(rng: np.random.Generator, low: float, high: float) -> float | int:
    if isinstance(low, int) and isinstance(high, int):
        return int(rng.integers(low, high + 1))
    step = int(rng.integers(RANGE_LEVELS + 1))
    # 12 significant digits: the grid value without binary round-off noise in names/metadata.
    return float(f"{low + (high - low) * step / RANGE_LEVELS:.12g}")


def draw_receiver(cfg: SceneConfig, rng: np.random.Generator) -> tuple[str, dict[str, Any]]:
    """Kind and keyword arguments (ranges resolved) of one sample's receiver.

    rng: the sample's receiver stream (``receiver_rng``). A config with one receiver and no
    ranges draws nothing. Entries are chosen by weight; each [low, high] parameter is drawn in
    name order (see ``ReceiverChoice``).
    """
    choices = cfg.receiver_choices
    if len(choices) == 1:
        entry = choices[0]
    else:
        p = np.asarray([c.weight for c in choices], dtype=np.float64)
        entry = choices[int(rng.choice(len(choices), p=p / p.sum()))]
    params: dict[str, Any] = {}
    for name in sorted(entry.params):
        value = entry.params[name]
        params[name] = _draw_param(rng, *value) if isinstance(value, list | tuple) else value
    return entry.kind, params


class _World:
    """Per-process resources of a config: receivers, panorama source, folders, RIR cache."""

    def __init__(self, cfg: SceneConfig):
        from slfm_ros.core.sim.panoramas import PanoramaFolder, ProceduralPanoramas
        from slfm_ros.core.sim.room import RirCache

        self.cfg = cfg
        self._receivers: OrderedDict[str, Receiver] = OrderedDict()
        # Build every entry now (at both ends of its ranges): a missing SOFA file or an
        # out-of-bounds parameter fails before the first sample, not in the middle of a run.
        for entry in cfg.receiver_choices:
            for end in (0, 1):
                params = {
                    k: v[end] if isinstance(v, list | tuple) else v for k, v in entry.params.items()
                }
                self.receiver_for(entry.kind, params)
        if cfg.panoramas.source == "procedural":
            self.panoramas: Any = ProceduralPanoramas(
                cfg.panoramas.width,
                seed=0,
                outdoor_probability=cfg.panoramas.outdoor_probability,
                irregular_probability=cfg.panoramas.irregular_probability,
            )
        else:
            self.panoramas = PanoramaFolder(cfg.panoramas.folder)
        self._source_folders: dict[str, Any] = {}
        self.rir_cache = RirCache(max_items=64)
        self.effects = _make_effects(cfg.image.effects)

    def receiver_for(self, kind: str, params: dict[str, Any]) -> Receiver:
        """The receiver ``make_receiver(kind, **params)``, built once per process (LRU)."""
        from slfm_ros.core.sim.receivers import make_receiver

        key = json.dumps([kind, params], sort_keys=True)
        receiver = self._receivers.get(key)
        if receiver is None:
            receiver = make_receiver(kind, **params)
            self._receivers[key] = receiver
            while len(self._receivers) > _RECEIVER_CACHE_ITEMS:
                self._receivers.popitem(last=False)
        else:
            self._receivers.move_to_end(key)
        return receiver

    def source_folder(self, split: str) -> Any:
        from slfm_ros.core.sim.sources import SourceFolder

        if split not in self._source_folders:
            self._source_folders[split] = SourceFolder(
                self.cfg.sources.folder, self.cfg.sample_rate, split=split
            )
        return self._source_folders[split]


def _make_effects(params: dict[str, Any]) -> Any:
    if not params:
        return None
    from slfm_ros.core.sim.camera_effects import CameraEffects

    try:
        return CameraEffects(**params)
    except TypeError as exc:
        raise ConfigError(f"image.effects: {exc}") from exc


@functools.lru_cache(maxsize=4)
def _world_for(key: str) -> _World:
    return _World(from_mapping(SceneConfig, json.loads(key)))


def world_for(cfg: SceneConfig) -> _World:
    """Cached resources of ``cfg`` in this process."""
    return _world_for(json.dumps(cfg.to_dict(), sort_keys=True))


def _draw_signal(
    world: _World, kind: str, frames: int, split: str, rng: np.random.Generator
) -> tuple[npt.NDArray[np.float32], str]:
    """A mono signal of ``frames`` samples and an identifier of where it came from."""
    from slfm_ros.core.sim.sources import make_source_signal

    sr = world.cfg.sample_rate
    key = int(rng.integers(2**62))
    stream = np.random.default_rng([key, split_code(split), _STREAM_SOURCE])
    if kind == "folder":
        folder = world.source_folder(split)
        # random_clip draws its file first: the same stream names the file it will use.
        name = folder.files[int(np.random.default_rng(key).integers(len(folder.files)))].name
        signal = make_source_signal(kind, frames / sr, sr, np.random.default_rng(key), folder)
        return signal[:frames], f"folder:{split}:{name}"
    signal = make_source_signal(kind, frames / sr, sr, stream)
    return signal[:frames], f"{kind}:{split}:{key}"


def _weighted_choice(
    rng: np.random.Generator, items: tuple[str, ...], weights: tuple[float, ...]
) -> str:
    if not weights:
        return items[int(rng.integers(len(items)))]
    p = np.asarray(weights, dtype=np.float64)
    return items[int(rng.choice(len(items), p=p / p.sum()))]


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1])) if lo_hi[1] > lo_hi[0] else float(lo_hi[0])


def sample_scene(
    cfg: SceneConfig,
    rng: np.random.Generator,
    split: str,
    index: int | None = None,
    seed: int | None = None,
) -> MultiViewSample:
    """Render one multi-view sample of ``split`` with generator ``rng`` (see module docstring).

    ``index`` and ``seed`` (of ``sample_rng``) are only recorded in the metadata.
    """
    from slfm_ros.core.geometry.panorama import crop_perspective, match_resolution
    from slfm_ros.core.sim.audio_scene import PlacedSource, add_diffuse_noise, render_view_audio
    from slfm_ros.core.sim.room import place_source, sample_room

    split_code(split)  # validates the split name
    world = world_for(cfg)
    # Drawn from a side stream before any other draw: the rest of the sample never depends on it.
    receiver_kind, receiver_params = draw_receiver(cfg, receiver_rng(rng))
    receiver = world.receiver_for(receiver_kind, receiver_params)
    k_views = cfg.views.num_views
    sr = cfg.sample_rate
    clip = cfg.clip_frames

    # Views: yaw_0 anywhere, turns with random sign and |theta| in [min, max).
    yaw0 = float(rng.uniform(-math.pi, math.pi))
    lo, hi = math.radians(cfg.views.min_turn_deg), math.radians(cfg.views.max_turn_deg)
    turns = np.zeros(k_views)
    turns[1:] = rng.uniform(lo, hi, k_views - 1) * rng.choice([-1.0, 1.0], k_views - 1)
    yaws = np.asarray(wrap_angle(yaw0 + turns), dtype=np.float64)

    # Panorama and images.
    seeds = {name: int(rng.integers(2**62)) for name in ("panorama", "images", "room", "noise")}
    pano_rng = np.random.default_rng(seeds["panorama"])
    panorama, panorama_id = world.panoramas.draw(pano_rng, split)
    hfov = math.radians(cfg.image.hfov_deg)
    panorama = match_resolution(panorama, hfov, cfg.image.width)
    image_rng = np.random.default_rng(seeds["images"])
    images = []
    translations = []
    for yaw in yaws:
        offset = None
        if cfg.image.max_translation_m > 0:
            r = cfg.image.max_translation_m * math.sqrt(image_rng.uniform())
            a = image_rng.uniform(-math.pi, math.pi)
            offset = np.array([r * math.cos(a), r * math.sin(a), 0.0])
        translations.append([0.0, 0.0, 0.0] if offset is None else offset.tolist())
        img = crop_perspective(
            panorama,
            float(yaw),
            math.radians(cfg.image.pitch_deg),
            hfov,
            cfg.image.width,
            cfg.image.height,
            translation_m=offset,
        )
        if world.effects is not None:
            img = world.effects.apply(img, image_rng)
        images.append(img)

    # Room.
    room_rng = np.random.default_rng(seeds["room"])
    room = None
    if room_rng.uniform() >= cfg.room.anechoic_probability:
        rc = cfg.room
        room = sample_room(
            room_rng,
            dims_min_m=rc.dims_min_m,
            dims_max_m=rc.dims_max_m,
            rt60_range_s=rc.rt60_range_s,
            wall_margin_m=rc.wall_margin_m,
            listener_height_m=rc.listener_height_m,
            max_order=rc.max_order,
        )
    # Reverberation of sound from before a clip reaches into it: render a lead-in and drop it.
    if room is not None:
        lead = int(round(min(room.rt60_s, 1.0) * sr))
    else:
        lead = receiver.n_taps(sr)
    total = lead + k_views * clip

    # Sources: the target first, then interferers.
    sc = cfg.sources
    kinds = [_weighted_choice(rng, sc.target_kinds, sc.target_weights)]
    n_interf = int(rng.integers(sc.interferers[0], sc.interferers[1] + 1))
    kinds += [
        sc.interferer_kinds[int(rng.integers(len(sc.interferer_kinds)))] for _ in range(n_interf)
    ]
    az_lo, az_hi = (math.radians(v) for v in sc.target_azimuth_deg)
    placed: list[PlacedSource] = []
    src_meta: list[dict[str, Any]] = []
    for s, kind in enumerate(kinds):
        if s == 0:
            azimuth_world = float(wrap_angle(yaw0 + _uniform(rng, (az_lo, az_hi))))
            gain_db = 0.0
        else:
            azimuth_world = float(rng.uniform(-math.pi, math.pi))
            gain_db = _uniform(rng, sc.interferer_gain_db)
        distance = _uniform(rng, sc.distance_m)
        signal, signal_id = _draw_signal(world, kind, total, split, rng)
        if room is not None:
            # The room may shorten the distance to keep the source inside; record the actual one.
            pos = place_source(room, azimuth_world, distance)
            distance = float(np.linalg.norm(pos - np.asarray(room.listener_pos_m)))
        placed.append(PlacedSource(signal, azimuth_world, distance, gain_db))
        src_meta.append(
            {
                "kind": kind,
                "id": signal_id,
                "azimuth_world_rad": azimuth_world,
                "distance_m": distance,
                "gain_db": gain_db,
            }
        )

    views_audio = []
    for i, yaw in enumerate(yaws):
        window = [
            PlacedSource(
                p.signal[i * clip : i * clip + lead + clip],
                p.azimuth_world,
                p.distance_m,
                p.gain_db,
            )
            for p in placed
        ]
        rendered = render_view_audio(window, float(yaw), receiver, sr, room, world.rir_cache)
        views_audio.append(rendered[lead : lead + clip])
    audio = np.concatenate(views_audio, axis=0)
    snr_db = _uniform(rng, cfg.noise.snr_db)
    noise_rng = np.random.default_rng(seeds["noise"])
    audio = add_diffuse_noise(
        audio,
        snr_db,
        noise_rng,
        sr,
        receiver,
        spectral_slope_db_per_octave=cfg.noise.spectral_slope_db_per_octave,
    )
    peak = float(np.max(np.abs(audio)))
    if peak > 0:
        audio = audio * (cfg.output_peak / peak)
    audio_views = audio.reshape(k_views, clip, 2).astype(np.float32)

    azimuths = np.array(
        [[source_azimuth_in_view(p.azimuth_world, float(y)) for p in placed] for y in yaws],
        dtype=np.float64,
    )
    metadata: dict[str, Any] = {
        "split": split,
        "index": index,
        "num_views": k_views,
        "yaws_rad": yaws.tolist(),
        "turns_rad": np.asarray(camera_turn(yaws, yaws[0])).tolist(),
        "source_azimuths_rad": azimuths.tolist(),
        "target_kind": kinds[0],
        "source_kinds": kinds,
        "sources": src_meta,
        "receiver_kind": receiver_kind,
        "receiver": receiver.name,
        "receiver_params": receiver_params,
        "room": {
            "anechoic": room is None,
            "dims_m": None if room is None else list(room.dims_m),
            "rt60_s": None if room is None else room.rt60_s,
            "listener_pos_m": None if room is None else list(room.listener_pos_m),
        },
        "snr_db": snr_db,
        "panorama_id": panorama_id,
        "camera_translations_m": translations,
        "sample_rate": sr,
        "seed": seed,
        "seeds": seeds,
    }
    return MultiViewSample(
        images=np.stack(images).astype(np.uint8),
        audio=audio_views,
        sample_rate=sr,
        yaws=yaws,
        source_azimuths=azimuths,
        metadata=metadata,
    )
