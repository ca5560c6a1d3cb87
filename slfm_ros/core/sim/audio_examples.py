"""Audio-only training examples: one binaural window per example, no images rendered.

Each example draws a receiver from a mix (rigid spherical heads of varied radius, free-field
pairs of varied spacing, measured heads from SOFA files), a room (shoebox of random size and
RT60, or free field), a target source of a random kind at a random azimuth on the full circle
and a small elevation, optional quieter interferers, diffuse background noise, and per-ear
spectral gain errors (smooth random tilts, as unmatched microphones or a shell near one ear
give). The label is the target azimuth in the receiver frame (REP-103, left positive) brought
to ear height along its cone of confusion (``cone_azimuth``): interaural cues fix the lateral
angle asin(cos(elevation) sin(azimuth)), not azimuth and elevation apart, so a raised source
is labelled with the horizontal direction that sounds the same, as a classical ITD method
reports it. Labelled by its raw azimuth, a network would learn to push every answer outward.

Everything random in example ``index`` comes from ``example_rng(seed, index)``, so a cache can be
rebuilt exactly from its seed and count.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError

SOURCE_KINDS = ("speech", "espeak", "music", "noise", "intermittent_speech")


@dataclass(frozen=True)
class ReceiverMix:
    """Receivers drawn per example.

    spherical_head_radius_m: [low, high] radius of rigid spherical heads, m.
    stereo_spacing_m:        [low, high] spacing of free-field pairs, m.
    sofa_files:              measured heads (SOFA SimpleFreeFieldHRIR files).
    weights:                 [sphere, pair, sofa] probabilities (renormalised; sofa counts
                             only when files are given).
    """

    spherical_head_radius_m: tuple[float, float] = (0.065, 0.11)
    stereo_spacing_m: tuple[float, float] = (0.06, 0.40)
    sofa_files: tuple[str, ...] = ()
    weights: tuple[float, float, float] = (0.4, 0.35, 0.25)


@dataclass(frozen=True)
class AudioExampleConfig:
    """The distribution of audio-only examples (keys documented in
    ``training/configs/cue_audio/audio_cues.yaml``)."""

    sample_rate: int = 16000
    window_s: float = 1.0
    receivers: ReceiverMix = field(default_factory=ReceiverMix)
    anechoic_probability: float = 0.2
    rt60_range_s: tuple[float, float] = (0.15, 1.0)
    room_dims_min_m: tuple[float, float, float] = (3.0, 3.0, 2.4)
    room_dims_max_m: tuple[float, float, float] = (14.0, 12.0, 4.5)
    source_kinds: tuple[str, ...] = SOURCE_KINDS
    source_weights: tuple[float, ...] = (0.45, 0.1, 0.2, 0.1, 0.15)
    distance_m: tuple[float, float] = (0.7, 4.0)
    elevation_deg: tuple[float, float] = (-20.0, 20.0)
    interferer_probability: float = 0.3
    interferer_gain_db: tuple[float, float] = (-25.0, -8.0)
    snr_db: tuple[float, float] = (0.0, 40.0)
    ear_gain_db: float = 2.0
    windows_per_scene: int = 3

    def __post_init__(self) -> None:
        bad = [k for k in self.source_kinds if k not in SOURCE_KINDS]
        if bad or len(self.source_weights) != len(self.source_kinds):
            raise ConfigError(
                f"audio examples: source kinds {bad} unknown or weights do not match kinds"
            )

    @staticmethod
    def from_dict(data: dict[str, Any]) -> AudioExampleConfig:
        known = set(AudioExampleConfig.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"audio examples: unknown key(s) {unknown}")
        values: dict[str, Any] = {}
        for key, value in data.items():
            if key == "receivers":
                extra = sorted(set(value) - set(ReceiverMix.__dataclass_fields__))
                if extra:
                    raise ConfigError(f"audio examples.receivers: unknown key(s) {extra}")
                values[key] = ReceiverMix(**{k: tuple(v) for k, v in value.items()})
            elif isinstance(value, list):
                values[key] = tuple(value)
            else:
                values[key] = value
        return AudioExampleConfig(**values)


@dataclass
class AudioExample:
    """window (frames, 2) float32, the target's azimuth and elevation (rad, receiver frame),
    receiver description; ``label`` is the training target (module docstring)."""

    window: npt.NDArray[np.float32]
    azimuth: float
    elevation: float
    receiver_kind: str
    receiver_params: dict[str, Any]
    max_itd_s: float

    @property
    def label(self) -> float:
        return cone_azimuth(self.azimuth, self.elevation)


def cone_azimuth(azimuth: float, elevation: float) -> float:
    """The horizontal direction (rad) on the cone of confusion of (azimuth, elevation): same
    lateral angle, same front/back side."""
    lateral = math.asin(max(-1.0, min(1.0, math.cos(elevation) * math.sin(azimuth))))
    if math.cos(azimuth) >= 0.0:
        return lateral
    return math.remainder(math.pi - lateral, 2.0 * math.pi)


def example_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), 0x5A1F])


@functools.lru_cache(maxsize=16)
def _sofa_receiver(path: str) -> Any:
    from slfm_ros.core.sim.receivers import make_receiver

    return make_receiver("sofa", path=path)


def draw_receiver(mix: ReceiverMix, rng: np.random.Generator) -> tuple[str, dict[str, Any], Any]:
    """(kind, params, Receiver) of one example."""
    from slfm_ros.core.sim.receivers import make_receiver

    weights = np.array(mix.weights, dtype=np.float64)
    if not mix.sofa_files:
        weights[2] = 0.0
    choice = int(rng.choice(3, p=weights / weights.sum()))
    if choice == 0:
        radius = float(rng.uniform(*mix.spherical_head_radius_m))
        params: dict[str, Any] = {"radius_m": round(radius, 3)}
        return "spherical_head", params, make_receiver("spherical_head", **params)
    if choice == 1:
        spacing = float(rng.uniform(*mix.stereo_spacing_m))
        params = {"spacing_m": round(spacing, 3)}
        return "stereo_array", params, make_receiver("stereo_array", **params)
    path = mix.sofa_files[int(rng.integers(len(mix.sofa_files)))]
    return "sofa", {"path": path}, _sofa_receiver(path)


def _smooth_gain(rng: np.random.Generator, n_freqs: int, max_db: float) -> npt.NDArray[np.float64]:
    """A smooth random gain curve over frequency (a few cosine terms), linear units."""
    x = np.linspace(0.0, 1.0, n_freqs)
    db = rng.uniform(-max_db, max_db) * np.ones(n_freqs)
    for order in (1, 2, 3):
        db += rng.uniform(-max_db, max_db) / order * np.cos(math.pi * order * x)
    return 10.0 ** (db / 20.0)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class ViewTurns:
    """The turns of a multi-view example: view 0 at yaw 0, view i at yaw theta_i.

    num_views: K windows per example, each rendered at its own receiver yaw.
    turn_deg:  [low, high] |theta_i| in degrees, uniform, random sign per view.
    """

    num_views: int = 3
    turn_deg: tuple[float, float] = (10.0, 90.0)

    def __post_init__(self) -> None:
        low, high = (float(v) for v in self.turn_deg)
        if self.num_views < 2 or not 0.0 <= low <= high <= 180.0:
            raise ConfigError(
                f"view turns: num_views >= 2 and 0 <= turn_deg low <= high <= 180 needed, got "
                f"{self.num_views} views, turn_deg {self.turn_deg}"
            )

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ViewTurns:
        unknown = sorted(set(data) - set(ViewTurns.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"views: unknown key(s) {unknown}")
        values = dict(data)
        if "turn_deg" in values:
            values["turn_deg"] = tuple(float(v) for v in values["turn_deg"])
        return ViewTurns(**values)


@dataclass
class MultiViewExample:
    """K windows of one static scene heard at receiver yaws theta_i (view 0: theta_0 = 0).

    windows (K, frames, 2) float32; turns (K,) rad (left positive); azimuths (K,) rad: the
    target's azimuth in each view, phi_i = phi_0 - theta_i, and its elevation (rad); for
    monitoring and scoring only, as ``labels``: the horizontal directions on the views' cones
    of confusion (``cone_azimuth``).
    """

    windows: npt.NDArray[np.float32]
    turns: npt.NDArray[np.float64]
    azimuths: npt.NDArray[np.float64]
    elevation: float
    receiver_kind: str
    receiver_params: dict[str, Any]
    max_itd_s: float

    @property
    def labels(self) -> npt.NDArray[np.float64]:
        return np.array([cone_azimuth(float(a), self.elevation) for a in self.azimuths])


@dataclass
class _Scene:
    kind: str
    params: dict[str, Any]
    receiver: Any
    room: Any
    lead: int
    azimuth: float
    elevation: float
    sources: list[Any]


def _draw_scene(cfg: AudioExampleConfig, rng: np.random.Generator, frames: int) -> _Scene:
    """Receiver, room and sources of one scene whose signals cover ``frames`` samples after
    the lead-in (the room's build-up, dropped after rendering)."""
    from slfm_ros.core.sim.audio_scene import PlacedSource
    from slfm_ros.core.sim.room import sample_room
    from slfm_ros.core.sim.sources import make_source_signal

    sr = cfg.sample_rate
    kind, params, receiver = draw_receiver(cfg.receivers, rng)
    room = None
    if rng.uniform() >= cfg.anechoic_probability:
        room = sample_room(
            rng,
            dims_min_m=cfg.room_dims_min_m,
            dims_max_m=cfg.room_dims_max_m,
            rt60_range_s=cfg.rt60_range_s,
        )
    lead = int(round(min(room.rt60_s, 0.8) * sr)) if room is not None else receiver.n_taps(sr)
    total = lead + frames
    weights = np.asarray(cfg.source_weights, dtype=np.float64)
    azimuth = float(rng.uniform(-math.pi, math.pi))
    elevation = math.radians(float(rng.uniform(*cfg.elevation_deg)))
    sources = []
    n_sources = 1 + int(rng.uniform() < cfg.interferer_probability)
    for s in range(n_sources):
        source_kind = cfg.source_kinds[int(rng.choice(len(weights), p=weights / weights.sum()))]
        signal = make_source_signal(source_kind, total / sr, sr, rng)[:total]
        az = azimuth if s == 0 else float(rng.uniform(-math.pi, math.pi))
        gain = 0.0 if s == 0 else float(rng.uniform(*cfg.interferer_gain_db))
        sources.append(
            PlacedSource(signal, az, float(rng.uniform(*cfg.distance_m)), gain, elevation)
        )
    return _Scene(kind, params, receiver, room, lead, azimuth, elevation, sources)


def _ear_gains(
    window: npt.NDArray[np.float64], gains: list[npt.NDArray[np.float64]]
) -> npt.NDArray[np.float64]:
    spec = np.fft.rfft(window, axis=0)
    for ear in range(2):
        spec[:, ear] *= gains[ear]
    return np.fft.irfft(spec, n=window.shape[0], axis=0)  # type: ignore[no-any-return]


def render_examples(cfg: AudioExampleConfig, rng: np.random.Generator) -> list[AudioExample]:
    """``windows_per_scene`` consecutive windows of one scene (see the module docstring); each
    window gets its own ear gain errors and level."""
    from slfm_ros.core.sim.audio_scene import add_diffuse_noise, render_view_audio

    sr = cfg.sample_rate
    frames = int(round(cfg.window_s * sr))
    count = int(cfg.windows_per_scene)
    scene = _draw_scene(cfg, rng, count * frames)
    receiver = scene.receiver
    audio = render_view_audio(scene.sources, 0.0, receiver, sr, scene.room)[scene.lead :]
    if float(np.mean(audio.astype(np.float64) ** 2)) == 0.0:
        audio = audio + 1e-6
    audio = add_diffuse_noise(audio, float(rng.uniform(*cfg.snr_db)), rng, sr, receiver)
    examples = []
    for k in range(count):
        window = audio[k * frames : (k + 1) * frames].astype(np.float64)
        if cfg.ear_gain_db > 0:
            n_freqs = frames // 2 + 1
            gains = [_smooth_gain(rng, n_freqs, cfg.ear_gain_db) for _ in range(2)]
            window = _ear_gains(window, gains)
        peak = float(np.max(np.abs(window)))
        window = window * (float(rng.uniform(0.05, 0.9)) / max(peak, 1e-9))
        examples.append(
            AudioExample(
                window=window.astype(np.float32),
                azimuth=scene.azimuth,
                elevation=scene.elevation,
                receiver_kind=scene.kind,
                receiver_params=scene.params,
                max_itd_s=float(receiver.geometry.max_itd),
            )
        )
    return examples


def render_multiview(
    cfg: AudioExampleConfig,
    views: ViewTurns,
    rng: np.random.Generator,
    turns: npt.ArrayLike | None = None,
) -> MultiViewExample:
    """One scene heard from ``views.num_views`` receiver yaws (see ``MultiViewExample``), or
    from the yaws ``turns`` (rad, view 0 first and 0) when a caller knows how the robot
    turned, e.g. between the two images of a camera pair.

    View i is the i-th consecutive window of the source signals, rendered with the receiver
    turned to theta_i, as a robot hears a talker while it turns between looks. The receiver's
    ear gain errors are drawn once per example (one receiver); the background noise level is
    shared and each window gets its own overall level.
    """
    from slfm_ros.core.sim.audio_scene import PlacedSource, add_diffuse_noise, render_view_audio

    sr = cfg.sample_rate
    frames = int(round(cfg.window_s * sr))
    given = None if turns is None else np.asarray(turns, dtype=np.float64)
    if given is not None and (given.ndim != 1 or given.size < 2 or given[0] != 0.0):
        raise ConfigError(f"turns: view 0 at 0 and at least two views needed, got {given}")
    k_views = int(views.num_views) if given is None else given.size
    scene = _draw_scene(cfg, rng, k_views * frames)
    if given is None:
        low, high = (math.radians(v) for v in views.turn_deg)
        given = np.zeros(k_views)
        given[1:] = rng.uniform(low, high, k_views - 1) * rng.choice([-1.0, 1.0], k_views - 1)
    turns = given
    snr = float(rng.uniform(*cfg.snr_db))
    n_freqs = frames // 2 + 1
    gains = [_smooth_gain(rng, n_freqs, cfg.ear_gain_db) for _ in range(2)]
    windows = np.zeros((k_views, frames, 2), dtype=np.float32)
    span = scene.lead + frames
    for i in range(k_views):
        segment = [
            PlacedSource(
                src.signal[i * frames : i * frames + span],
                src.azimuth_world,
                src.distance_m,
                src.gain_db,
                src.elevation,
            )
            for src in scene.sources
        ]
        audio = render_view_audio(segment, float(turns[i]), scene.receiver, sr, scene.room)
        audio = audio[scene.lead : scene.lead + frames]
        if float(np.mean(audio.astype(np.float64) ** 2)) == 0.0:
            audio = audio + 1e-6
        window = add_diffuse_noise(audio, snr, rng, sr, scene.receiver).astype(np.float64)
        if cfg.ear_gain_db > 0:
            window = _ear_gains(window, gains)
        peak = float(np.max(np.abs(window)))
        windows[i] = window * (float(rng.uniform(0.05, 0.9)) / max(peak, 1e-9))
    azimuths = np.angle(np.exp(1j * (scene.azimuth - turns)))
    return MultiViewExample(
        windows=windows,
        turns=turns,
        azimuths=azimuths.astype(np.float64),
        elevation=scene.elevation,
        receiver_kind=scene.kind,
        receiver_params=scene.params,
        max_itd_s=float(scene.receiver.geometry.max_itd),
    )
