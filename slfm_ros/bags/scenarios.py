"""Continuous simulated scenes for evaluation bags.

A scenario is a robot whose microphone pair and camera share one pose, turning (and in
``translating`` also moving) among static sound sources, for as long as asked. Rendering gives
a binaural 48 kHz stream, camera frames and the truth at any time.

Frames and angles (``slfm_ros.core.conventions``): world frame REP-103 with the robot starting
at the origin facing +x; radians, left positive. At time t the robot is at ``position(t)``
(metres) with yaw ``yaw(t)``; a source at world position p is heard at the azimuth
``atan2(p - position(t)) - yaw(t)`` in the microphone frame, and the camera looks along yaw(t).

Audio rendering is time-varying: the stream is cut into 20 ms Hann-windowed blocks (50 %
overlap, so the windows sum to one) and each block is convolved with the response for the pose
at its centre: the receiver's HRIR in free field, or the room's binaural impulse response (yaw
quantised to ``ROOM_YAW_STEP``) in a room. A diffuse noise floor is added at ``noise_dbfs``.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.panorama import crop_perspective, match_resolution
from slfm_ros.core.sim.receivers import Receiver, make_receiver, render_diffuse
from slfm_ros.core.sim.room import RirCache, RoomConfig, place_source
from slfm_ros.core.sim.sources import intermittent, make_source_signal, normalise_rms

FloatArray = npt.NDArray[np.float64]
_NS_PER_S = 1_000_000_000
# 2026-01-01T00:00:00Z: capture time of the first sample of every rendered scene.
START_NS = 1_767_225_600 * _NS_PER_S
# Source signals are generated at this rate and resampled (speech and music generators are
# the slow part; their content lies below 8 kHz).
SIGNAL_RATE = 16000
# Half the length of a rendering block (the block hop).
BLOCK_HOP_S = 0.01
# Yaw resolution of room responses (each distinct yaw costs one image-source rendering).
ROOM_YAW_STEP = math.radians(1.0)
# The camera sees a panorama; parallax of translation treats the scene as a sphere this big.
SCENE_RADIUS_M = 4.0


@dataclass(frozen=True)
class SourceSpec:
    """A static source. ``bearing_deg``/``distance_m`` place it from the robot's start pose.

    kind: a generator of ``slfm_ros.core.sim.sources`` (speech, music, noise).
    gate: (on range, off range) in seconds to switch it on and off (intermittent), or None.
    target: the source whose direction is the ground truth (exactly one per scenario).
    """

    kind: str
    bearing_deg: float
    distance_m: float
    gain_db: float = 0.0
    target: bool = True
    gate: tuple[tuple[float, float], tuple[float, float]] | None = None


@dataclass(frozen=True)
class Motion:
    """Robot trajectory: yaw(t) = yaw_offset + A sin(2 pi t / T) and, when
    ``travel_amplitude_m`` > 0, a back-and-forth drive along ``travel_heading_deg``:
    position(t) = travel_amplitude (1 - cos(2 pi t / travel_period)) / 2 along that heading."""

    yaw_amplitude_deg: float = 40.0
    yaw_period_s: float = 8.0
    yaw_offset_deg: float = 0.0
    travel_amplitude_m: float = 0.0
    travel_period_s: float = 12.0
    travel_heading_deg: float = 0.0

    def yaw(self, t: npt.ArrayLike) -> FloatArray:
        """Yaw in radians (not wrapped) at times ``t`` (seconds from the start)."""
        tt = np.asarray(t, dtype=np.float64)
        amp = math.radians(self.yaw_amplitude_deg)
        return math.radians(self.yaw_offset_deg) + amp * np.sin(
            2 * math.pi * tt / self.yaw_period_s
        )

    def yaw_rate(self, t: npt.ArrayLike) -> FloatArray:
        """Yaw rate in rad/s."""
        tt = np.asarray(t, dtype=np.float64)
        w = 2 * math.pi / self.yaw_period_s
        return math.radians(self.yaw_amplitude_deg) * w * np.cos(w * tt)

    def position(self, t: npt.ArrayLike) -> FloatArray:
        """(..., 2) x, y in metres."""
        tt = np.asarray(t, dtype=np.float64)
        s = 0.5 * self.travel_amplitude_m * (1 - np.cos(2 * math.pi * tt / self.travel_period_s))
        h = math.radians(self.travel_heading_deg)
        return np.stack([s * math.cos(h), s * math.sin(h)], axis=-1)


@dataclass(frozen=True)
class Scenario:
    """A named scene: sources, motion, room (None = free field) and noise floor (dBFS RMS)."""

    name: str
    description: str
    sources: tuple[SourceSpec, ...]
    motion: Motion
    room: RoomConfig | None = None
    noise_dbfs: float = -65.0
    default_seconds: float = 20.0

    def __post_init__(self) -> None:
        if sum(s.target for s in self.sources) != 1:
            raise ConfigError(f"scenario {self.name}: exactly one source must be the target")
        if self.room is not None and self.motion.travel_amplitude_m > 0:
            raise ConfigError(f"scenario {self.name}: a room scene cannot translate the robot")

    @property
    def target(self) -> SourceSpec:
        return next(s for s in self.sources if s.target)


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario(
            "turning-speaker",
            "a static speaker 2 m away; the robot turns back and forth by +-40 deg",
            (SourceSpec("speech", 20.0, 2.0),),
            Motion(yaw_amplitude_deg=40.0, yaw_period_s=8.0),
        ),
        Scenario(
            "two-sources-music",
            "music at 30 deg, a quieter talker at -70 deg interfering; the robot turns +-30 deg",
            (
                SourceSpec("music", 30.0, 2.0),
                SourceSpec("speech", -70.0, 2.5, gain_db=-6.0, target=False),
            ),
            Motion(yaw_amplitude_deg=30.0, yaw_period_s=10.0),
        ),
        Scenario(
            "intermittent",
            "speech in bursts of 0.6-1.5 s with 1.2-2.5 s of silence; the robot turns +-35 deg",
            (SourceSpec("speech", -30.0, 2.0, gate=((0.6, 1.5), (1.2, 2.5))),),
            Motion(yaw_amplitude_deg=35.0, yaw_period_s=9.0),
        ),
        Scenario(
            "reverberant",
            "a speaker 2.5 m away in a 7 x 5.5 x 3 m room, RT60 0.8 s; the robot turns +-30 deg",
            (SourceSpec("speech", 25.0, 2.5),),
            Motion(yaw_amplitude_deg=30.0, yaw_period_s=10.0),
            room=RoomConfig((7.0, 5.5, 3.0), 0.8, (3.2, 2.6, 1.4)),
        ),
        Scenario(
            "translating",
            "a speaker 3 m away; the robot drives 1 m forward and back while turning +-30 deg",
            (SourceSpec("speech", 35.0, 3.0),),
            Motion(
                yaw_amplitude_deg=30.0,
                yaw_period_s=9.0,
                travel_amplitude_m=1.0,
                travel_period_s=12.0,
            ),
        ),
        Scenario(
            "sweeping-speaker",
            "a talker 2 m away, 10 deg left; the robot sweeps +-100 deg, so the talker passes "
            "through both sides: for learning a receiver's whole range",
            (SourceSpec("speech", 10.0, 2.0),),
            Motion(yaw_amplitude_deg=100.0, yaw_period_s=20.0),
        ),
        Scenario(
            "behind",
            "a speaker behind the robot (150 deg); the robot turns +-25 deg: the front/back test",
            (SourceSpec("speech", 150.0, 2.0),),
            Motion(yaw_amplitude_deg=25.0, yaw_period_s=8.0),
        ),
    )
}
SCENARIO_NAMES = tuple(SCENARIOS)


def get_scenario(name: str) -> Scenario:
    """The scenario called ``name`` (ConfigError listing the names otherwise)."""
    if name not in SCENARIOS:
        raise ConfigError(f"unknown scenario {name!r}: expected one of {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


RECEIVER_KINDS = ("stereo_array", "spherical_head", "sofa")


def receiver_settings(spec: str) -> dict[str, object]:
    """``StreamSettings`` fields of a receiver given as ``KIND[:VALUE]``:
    ``stereo_array[:SPACING_M]``, ``spherical_head[:RADIUS_M]`` or ``sofa:FILE``; ConfigError
    naming the forms otherwise."""
    kind, _, value = spec.partition(":")
    forms = "sofa:FILE, spherical_head[:RADIUS_M] or stereo_array[:SPACING_M]"
    if kind not in RECEIVER_KINDS:
        raise ConfigError(f"receiver {spec!r}: expected {forms}")
    if kind == "sofa":
        if not value:
            raise ConfigError(f"receiver {spec!r}: a sofa receiver needs its file, sofa:FILE")
        return {"receiver": "sofa", "sofa_path": value}
    if not value:
        return {"receiver": kind}
    try:
        size = float(value)
    except ValueError:
        raise ConfigError(
            f"receiver {spec!r}: {value!r} is not a size in metres ({forms})"
        ) from None
    if not 0.01 <= size <= 1.0:
        raise ConfigError(f"receiver {spec!r}: the size must be 0.01-1 m, got {size} m")
    field_name = "mic_spacing_m" if kind == "stereo_array" else "head_radius_m"
    return {"receiver": kind, field_name: size}


@dataclass(frozen=True)
class StreamSettings:
    """Sensor settings of a rendered scene.

    sample_rate (Hz) and chunk_s: the audio stream, published as S16LE chunks of chunk_s.
    fps, width, height, hfov_deg: the camera (pitch 0, level). receiver: ``stereo_array``
    (two omnidirectional microphones ``mic_spacing_m`` apart, slfm_node's default geometry),
    ``spherical_head`` (``head_radius_m``) or ``sofa`` (the measured head of the SOFA file
    ``sofa_path``). start_ns: capture time of the first sample.
    """

    sample_rate: int = 48000
    chunk_s: float = 0.02
    fps: float = 15.0
    width: int = 320
    height: int = 240
    hfov_deg: float = 60.0
    receiver: str = "stereo_array"
    mic_spacing_m: float = 0.14
    head_radius_m: float = 0.0875
    panorama_width: int = 2048
    image_noise_sigma: float = 2.0
    start_ns: int = START_NS
    sofa_path: str = ""

    def __post_init__(self) -> None:
        if self.sample_rate <= 0 or self.chunk_s <= 0:
            raise ConfigError("sample_rate and chunk_s must be positive")
        if not 0 < self.fps <= 120:
            raise ConfigError(f"fps must be in (0, 120], got {self.fps}")
        if self.width < 16 or self.height < 16:
            raise ConfigError(
                f"image size must be at least 16 x 16, got {self.width}x{self.height}"
            )
        if self.receiver not in RECEIVER_KINDS:
            raise ConfigError(
                f"receiver must be one of {', '.join(RECEIVER_KINDS)}, got {self.receiver!r}"
            )
        if (self.receiver == "sofa") != bool(self.sofa_path):
            raise ConfigError("a sofa receiver needs sofa_path, and only a sofa receiver has one")

    def make_receiver(self) -> Receiver:
        if self.receiver == "stereo_array":
            return make_receiver("stereo_array", spacing_m=self.mic_spacing_m)
        if self.receiver == "sofa":
            return make_receiver("sofa", path=self.sofa_path)
        return make_receiver("spherical_head", radius_m=self.head_radius_m)

    @property
    def chunk_frames(self) -> int:
        return int(round(self.chunk_s * self.sample_rate))


def _source_positions(scenario: Scenario) -> list[FloatArray]:
    """World (x, y) of each source; in a room relative to the listener's start position."""
    out = []
    for src in scenario.sources:
        if scenario.room is None:
            b = math.radians(src.bearing_deg)
            out.append(np.array([src.distance_m * math.cos(b), src.distance_m * math.sin(b)]))
        else:
            pos = place_source(scenario.room, math.radians(src.bearing_deg), src.distance_m)
            out.append(np.asarray(pos[:2]) - np.asarray(scenario.room.listener_pos_m[:2]))
    return out


def _signal(src: SourceSpec, seconds: float, rate: int, rng: np.random.Generator) -> FloatArray:
    base = make_source_signal(src.kind, seconds, SIGNAL_RATE, rng)
    if src.gate is not None:
        on, off = src.gate
        base = normalise_rms(intermittent(base, rng, SIGNAL_RATE, on_s=on, off_s=off))
    g = math.gcd(rate, SIGNAL_RATE)
    up = resample_poly(base.astype(np.float64), rate // g, SIGNAL_RATE // g)
    frames = int(round(seconds * rate))
    out = np.zeros(frames)
    out[: min(frames, up.size)] = up[:frames]
    return out * 10.0 ** (src.gain_db / 20.0)


def _overlap_add(
    signal: FloatArray,
    hop: int,
    block_keys: Sequence[int],
    response: Callable[[int], FloatArray],
) -> FloatArray:
    """Time-varying convolution: block k (centre k * hop, Hann window of 2 hop) convolved with
    ``response(block_keys[k])`` ((taps, 2)); returns (len(signal), 2)."""
    n = signal.size
    padded = np.concatenate([np.zeros(hop), signal, np.zeros(2 * hop)])
    window = 0.5 - 0.5 * np.cos(2 * math.pi * np.arange(2 * hop) / (2 * hop))
    spectra: dict[int, tuple[int, npt.NDArray[np.complex128]]] = {}
    # Only output up to the end of the signal is kept, so responses are cut there.
    out = np.zeros((n + 2 * hop, 2))
    for k, key in enumerate(block_keys):
        if key not in spectra:
            ir = response(key)
            nfft = 1 << int(math.ceil(math.log2(2 * hop + ir.shape[0] - 1)))
            spectra[key] = (ir.shape[0], np.fft.rfft(ir, nfft, axis=0))
        taps, spec = spectra[key]
        nfft = 2 * (spec.shape[0] - 1)
        seg = padded[k * hop : k * hop + 2 * hop] * window
        length = min(2 * hop + taps - 1, out.shape[0] - k * hop)
        if length <= 0 or not np.any(seg):
            continue
        wet = np.fft.irfft(np.fft.rfft(seg, nfft)[:, None] * spec, nfft, axis=0)
        out[k * hop : k * hop + length] += wet[:length]
    # Block k starts at (k - 1) * hop in signal time: drop the leading pad.
    return out[hop : hop + n]


@dataclass
class RenderedScene:
    """A scenario rendered for ``seconds`` (see module doc). Times ``t`` are seconds after
    ``settings.start_ns``."""

    scenario: Scenario
    settings: StreamSettings
    seconds: float
    seed: int
    audio: npt.NDArray[np.float32]
    source_positions: list[FloatArray]
    _panorama: npt.NDArray[np.uint8] | None = field(default=None, repr=False)

    def yaw(self, t: npt.ArrayLike) -> FloatArray:
        return self.scenario.motion.yaw(t)

    def yaw_rate(self, t: npt.ArrayLike) -> FloatArray:
        return self.scenario.motion.yaw_rate(t)

    def position(self, t: npt.ArrayLike) -> FloatArray:
        return self.scenario.motion.position(t)

    def source_azimuth(self, t: npt.ArrayLike, index: int | None = None) -> FloatArray:
        """Azimuth (radians, wrapped) of a source (default: the target) in the microphone
        frame at times ``t``."""
        if index is None:
            index = next(i for i, s in enumerate(self.scenario.sources) if s.target)
        rel = self.source_positions[index] - self.position(t)
        bearing = np.arctan2(rel[..., 1], rel[..., 0])
        return np.asarray(wrap_angle(bearing - self.yaw(t)), dtype=np.float64)

    def chunk_starts(self) -> list[int]:
        """First frame index of each complete audio chunk."""
        size = self.settings.chunk_frames
        return list(range(0, self.audio.shape[0] - size + 1, size))

    def image_times(self) -> FloatArray:
        """Capture times (s) of the camera frames."""
        count = int(math.floor(self.seconds * self.settings.fps + 1e-9))
        return np.arange(count, dtype=np.float64) / self.settings.fps

    @cached_property
    def panorama(self) -> npt.NDArray[np.uint8]:
        from slfm_ros.core.sim.panoramas import ProceduralPanoramas

        # Each scenario looks at a world of its own (the key mixes in its name). Box worlds
        # only: the scenarios' tolerances were set on them, and a scenario tests the pipeline,
        # not how the estimators generalise (the simulator's datasets do that).
        key = zlib.crc32(self.scenario.name.encode())
        worlds = ProceduralPanoramas(
            width=self.settings.panorama_width, seed=self.seed, irregular_probability=0.0
        )
        pano = worlds.panorama(key, "test")
        return match_resolution(pano, math.radians(self.settings.hfov_deg), self.settings.width)

    def image_at(self, t: float) -> npt.NDArray[np.uint8]:
        """(height, width, 3) uint8 RGB frame captured at time ``t``."""
        s = self.settings
        pos = self.position(t)
        translation = None if not np.any(pos) else np.array([pos[0], pos[1], 0.0])
        crop = crop_perspective(
            self.panorama,
            float(self.yaw(t)),
            0.0,
            math.radians(s.hfov_deg),
            s.width,
            s.height,
            translation_m=translation,
            scene_radius_m=SCENE_RADIUS_M,
        )
        if s.image_noise_sigma <= 0:
            return crop
        rng = np.random.default_rng([self.seed, int(round(t * 1e6))])
        noisy = crop.astype(np.float32) + rng.normal(0.0, s.image_noise_sigma, crop.shape)
        return np.clip(np.round(noisy), 0, 255).astype(np.uint8)


def _render_source(
    scenario: Scenario,
    settings: StreamSettings,
    receiver: Receiver,
    signal: FloatArray,
    position: FloatArray,
    rir_cache: RirCache,
) -> FloatArray:
    rate = settings.sample_rate
    hop = int(round(BLOCK_HOP_S * rate))
    centres = np.arange(int(math.ceil(signal.size / hop)) + 1) * hop / rate
    motion = scenario.motion
    if scenario.room is None:
        rel = position - motion.position(centres)
        azimuths = wrap_angle(np.arctan2(rel[:, 1], rel[:, 0]) - motion.yaw(centres))
        distances = np.linalg.norm(rel, axis=1)
        irs = receiver.hrirs(np.asarray(azimuths), np.zeros(centres.size), rate).astype(np.float64)
        irs /= distances[:, None, None]
        return _overlap_add(signal, hop, range(centres.size), lambda k: irs[k])
    room = scenario.room
    source_pos = np.array(
        [*(position + np.asarray(room.listener_pos_m[:2])), room.listener_pos_m[2]]
    )
    steps = np.round(np.asarray(wrap_angle(motion.yaw(centres))) / ROOM_YAW_STEP).astype(int)

    def brir(step: int) -> FloatArray:
        yaw = step * ROOM_YAW_STEP
        item = rir_cache.get(room, receiver, source_pos, yaw, rate)
        return item.rir.astype(np.float64)

    return _overlap_add(signal, hop, [int(s) for s in steps], brir)


def render_scene(
    scenario: Scenario | str,
    seconds: float | None = None,
    seed: int = 0,
    settings: StreamSettings | None = None,
) -> RenderedScene:
    """Render ``scenario`` for ``seconds`` (default: the scenario's) with ``seed``."""
    scn = get_scenario(scenario) if isinstance(scenario, str) else scenario
    cfg = settings or StreamSettings()
    duration = float(scn.default_seconds if seconds is None else seconds)
    if not 2.0 <= duration <= 600.0:
        raise ConfigError(f"seconds must be in [2, 600], got {duration}")
    rate = cfg.sample_rate
    frames = int(round(duration * rate))
    rng = np.random.default_rng([seed, 0x5F4D])
    receiver = cfg.make_receiver()
    positions = _source_positions(scn)
    rir_cache = RirCache(max_items=1024, yaw_step_rad=ROOM_YAW_STEP)
    mix = np.zeros((frames, 2))
    for src, pos in zip(scn.sources, positions, strict=True):
        signal = _signal(src, duration, rate, rng)
        mix += _render_source(scn, cfg, receiver, signal, pos, rir_cache)[:frames]
    noise = render_diffuse(receiver, frames, rate, rng).astype(np.float64)
    noise *= 10.0 ** (scn.noise_dbfs / 20.0) / max(float(np.sqrt(np.mean(noise**2))), 1e-12)
    mix += noise
    peak = float(np.max(np.abs(mix)))
    if peak > 0.9:
        mix *= 0.9 / peak  # one gain for both channels keeps the level difference
    return RenderedScene(
        scenario=scn,
        settings=cfg,
        seconds=duration,
        seed=seed,
        audio=mix.astype(np.float32),
        source_positions=positions,
    )
