"""Real-time binaural rendering of one talker around a robot turning in place.

The response from the talker to the two ears depends only on the robot's yaw (it turns in
place). It is split in two parts that are precomputed once:

- direct sound: the receiver's HRIR for the talker's azimuth in the microphone frame, delayed
  by distance / c and scaled 1/r, in bins of ``DIRECT_STEP`` (the cue the estimators use, so
  it is fine-grained and changes every ``DIRECT_HOP_S``);
- room: the image-source BRIR of the room (``slfm_ros.core.sim.room``) minus that direct
  sound, in yaw bins of ``ROOM_STEP`` (reflections arrive from all around, so a coarse grid
  and a slower block rate ``ROOM_HOP_S`` are enough; this is the long, costly convolution).

At a room yaw bin, direct + room equals the full BRIR. Each part runs through its own
``StreamingConvolver``; a diffuse noise floor from a precomputed loop is added. The talker's
dry signal is a precomputed loop as well, so a step costs a few FFTs and no generation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import resample_poly

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S
from slfm_ros.core.sim.receivers import Receiver, render_diffuse
from slfm_ros.core.sim.room import RirCache, RoomConfig, place_source
from slfm_ros.core.sim.sources import SOURCE_KINDS, make_source_signal
from slfm_ros.core.sim_robot.convolver import StreamingConvolver

FloatArray = npt.NDArray[np.float32]

DIRECT_STEP = math.radians(0.5)
DIRECT_HOP_S = 0.01
ROOM_STEP = math.radians(10.0)
ROOM_HOP_S = 0.04
# Source signals are generated at this rate (their content lies below 8 kHz) and resampled.
SIGNAL_RATE = 16000
LOOP_FADE_S = 0.1
NOISE_LOOP_S = 4.0
TALKER_KINDS = tuple(
    k for k in SOURCE_KINDS if k in ("speech", "intermittent_speech", "music", "noise")
)


@dataclass(frozen=True)
class TalkerSpec:
    """The talker: ``kind`` of signal, world bearing (radians, REP-103, from the robot's start
    heading) and distance (m), level relative to the generators' -20 dBFS RMS at 1 m, length of
    the signal loop (s)."""

    kind: str = "speech"
    bearing: float = 0.0
    distance_m: float = 2.0
    gain_db: float = 0.0
    loop_s: float = 30.0

    def __post_init__(self) -> None:
        if self.kind not in TALKER_KINDS:
            raise ConfigError(f"talker kind must be one of {TALKER_KINDS}, got {self.kind!r}")
        if not 0.3 <= self.distance_m <= 20.0:
            raise ConfigError(f"talker distance must be in [0.3, 20] m, got {self.distance_m}")
        if not 2.0 <= self.loop_s <= 600.0:
            raise ConfigError(f"talker loop must be in [2, 600] s, got {self.loop_s}")


def talker_loop(spec: TalkerSpec, sample_rate: int, rng: np.random.Generator) -> FloatArray:
    """(frames,) dry talker signal of ``spec.loop_s`` that repeats without a click."""
    fade = int(LOOP_FADE_S * SIGNAL_RATE)
    base = make_source_signal(spec.kind, spec.loop_s + LOOP_FADE_S, SIGNAL_RATE, rng)
    n = base.size - fade
    ramp = np.linspace(0.0, 1.0, fade)
    loop = base[:n].astype(np.float64)
    # The loop's start blends in from the signal's continuation past its end.
    loop[:fade] = loop[:fade] * ramp + base[n : n + fade] * (1.0 - ramp)
    g = math.gcd(sample_rate, SIGNAL_RATE)
    out = resample_poly(loop, sample_rate // g, SIGNAL_RATE // g)
    return (out * 10.0 ** (spec.gain_db / 20.0)).astype(np.float32)


def _delayed_hrirs(
    receiver: Receiver, azimuths: npt.NDArray[np.float64], delay: float, gain: float, rate: int
) -> npt.NDArray[np.float64]:
    """(n, whole + taps, 2) HRIRs for ``azimuths`` delayed by ``delay`` samples and scaled,
    computed the way the room renderer places an image source (so they cancel exactly)."""
    whole = int(math.floor(delay))
    irs = receiver.hrirs(
        azimuths, np.zeros(azimuths.size), rate, np.full(azimuths.size, delay - whole)
    )
    out = np.zeros((azimuths.size, whole + irs.shape[1], 2))
    out[:, whole:] = irs * gain
    return out


def direct_bank(receiver: Receiver, distance_m: float, rate: int) -> npt.NDArray[np.float64]:
    """(bins, taps, 2) direct sound for source azimuths k * DIRECT_STEP in the mic frame."""
    bins = int(round(2 * math.pi / DIRECT_STEP))
    azimuths = np.asarray(wrap_angle(np.arange(bins) * DIRECT_STEP), dtype=np.float64)
    delay = distance_m / SPEED_OF_SOUND_M_S * rate
    return _delayed_hrirs(receiver, azimuths, delay, 1.0 / distance_m, rate)


def direct_key(azimuth: float) -> int:
    """Index into ``direct_bank`` of a source azimuth (radians) in the microphone frame."""
    bins = int(round(2 * math.pi / DIRECT_STEP))
    return int(round(float(wrap_angle(azimuth)) / DIRECT_STEP)) % bins


def room_key(yaw: float) -> int:
    """Index into ``room_bank`` of a robot yaw (radians)."""
    bins = int(round(2 * math.pi / ROOM_STEP))
    return int(round(float(wrap_angle(yaw)) / ROOM_STEP)) % bins


@dataclass(frozen=True)
class RoomBank:
    """The reverberant part per yaw bin, the talker's room position and its bearing and
    distance from the listener."""

    responses: npt.NDArray[np.float64]
    position_m: tuple[float, float, float]
    bearing: float
    distance_m: float


def room_bank(
    room: RoomConfig,
    receiver: Receiver,
    bearing: float,
    distance_m: float,
    rate: int,
    cache: RirCache,
) -> RoomBank:
    """BRIR minus direct sound for robot yaws k * ROOM_STEP (see module doc).

    The talker is placed with ``place_source`` (shortened toward the listener if a wall is
    nearer than ``distance_m``) and at the cache's position grid; the returned bearing and
    distance are those of the rendered position, which the direct part must use too.
    """
    bins = int(round(2 * math.pi / ROOM_STEP))
    wanted = place_source(room, bearing, distance_m)
    position, _ = cache.quantise(wanted, 0.0)
    rel = np.asarray(position) - np.asarray(room.listener_pos_m)
    if abs(rel[2]) > 1e-6:
        raise ConfigError("the talker must be at the listener's height (elevation 0)")
    distance = float(np.hypot(rel[0], rel[1]))
    source_bearing = math.atan2(rel[1], rel[0])
    delay = distance / SPEED_OF_SOUND_M_S * rate
    parts = []
    for k in range(bins):
        yaw = float(wrap_angle(k * ROOM_STEP))
        item = cache.get(room, receiver, position, yaw, rate)
        azimuth = np.array([float(wrap_angle(source_bearing - item.listener_yaw))])
        direct = _delayed_hrirs(receiver, azimuth, delay, 1.0 / distance, rate)[0]
        reverb = item.rir.astype(np.float64)
        reverb[: direct.shape[0]] -= direct[: reverb.shape[0]]
        parts.append(reverb)
    taps = max(p.shape[0] for p in parts)
    responses = np.zeros((bins, taps, 2))
    for k, part in enumerate(parts):
        responses[k, : part.shape[0]] = part
    return RoomBank(responses, position, source_bearing, distance)


class BinauralRenderer:
    """The ear signals of the talker as the robot turns (see module doc).

    Call ``step(yaw)`` once per ``hop`` samples of simulated time with the robot's yaw at that
    moment; it returns the audio that became final, (n, 2) float32, contiguous from time 0.
    """

    def __init__(
        self,
        receiver: Receiver,
        talker: TalkerSpec,
        sample_rate: int,
        room: RoomConfig | None,
        noise_dbfs: float,
        rng: np.random.Generator,
        rir_cache: RirCache | None = None,
    ) -> None:
        self.sample_rate = int(sample_rate)
        self.hop = int(round(DIRECT_HOP_S * sample_rate))
        if abs(self.hop - DIRECT_HOP_S * sample_rate) > 1e-9:
            raise ConfigError(f"sample rate {sample_rate} Hz must be a multiple of 100 Hz")
        self.signal = talker_loop(talker, self.sample_rate, rng)
        self._room: StreamingConvolver | None = None
        self._room_every = int(round(ROOM_HOP_S / DIRECT_HOP_S))
        bearing, distance = talker.bearing, talker.distance_m
        if room is not None:
            cache = rir_cache if rir_cache is not None else RirCache(yaw_step_rad=ROOM_STEP / 4)
            bank = room_bank(room, receiver, bearing, distance, self.sample_rate, cache)
            bearing, distance = bank.bearing, bank.distance_m
            self._room = StreamingConvolver(bank.responses, self.hop * self._room_every)
        self.source_bearing = bearing
        self.source_distance_m = distance
        self._direct = StreamingConvolver(
            direct_bank(receiver, distance, self.sample_rate), self.hop
        )
        frames = int(NOISE_LOOP_S * self.sample_rate)
        noise = render_diffuse(receiver, frames, self.sample_rate, rng).astype(np.float64)
        rms = max(float(np.sqrt(np.mean(noise**2))), 1e-12)
        self.noise = (noise * 10.0 ** (noise_dbfs / 20.0) / rms).astype(np.float32)
        self._steps = 0
        self._direct_pending: list[FloatArray] = []
        self._emitted = 0
        self._resuming = True
        self.clipped_samples = 0

    @property
    def steps_per_output(self) -> int:
        """Steps between two outputs (the room part finishes audio every ROOM_HOP_S)."""
        return 1 if self._room is None else self._room_every

    @property
    def emitted_frames(self) -> int:
        """Frames from time 0 to the end of the audio returned so far (skips included)."""
        return self._emitted

    @property
    def steps(self) -> int:
        """Steps taken so far (skipped ones included): the index of the next step."""
        return self._steps

    def skip_to(self, step: int) -> None:
        """Leave out the steps before ``step`` (a multiple of ``steps_per_output``): the stream
        resumes there after a gap, with the convolvers started empty."""
        if step < self._steps or step % self.steps_per_output:
            raise ValueError(
                f"can only skip ahead to a multiple of {self.steps_per_output} steps "
                f"(at step {self._steps}, asked {step})"
            )
        self._direct.reset()
        if self._room is not None:
            self._room.reset()
        self._direct_pending = []
        self._steps = step
        self._emitted = step * self.hop
        self._resuming = True

    def _source(self, start: int, count: int) -> FloatArray:
        index = (start + np.arange(count)) % self.signal.size
        return self.signal[index]

    def step(self, yaw: float) -> FloatArray:
        k = self._steps
        self._steps += 1
        start = k * self.hop
        azimuth = self.source_bearing - yaw
        direct = self._direct.push(self._source(start, self.hop), direct_key(azimuth))
        # The first push after a (re)start finishes the empty hop before it: nothing to emit.
        if not self._resuming:
            self._direct_pending.append(direct)
        if self._room is not None and k % self._room_every == 0:
            room = self._room.push(self._source(start, self._room.hop), room_key(yaw))
        if self._resuming:
            if k % self.steps_per_output == 0:
                self._resuming = False
            return np.zeros((0, 2), dtype=np.float32)
        if k % self.steps_per_output != 0:
            return np.zeros((0, 2), dtype=np.float32)
        wet = np.concatenate(self._direct_pending)
        if self._room is not None:
            wet = wet + room
        self._direct_pending = []
        index = (self._emitted + np.arange(wet.shape[0])) % self.noise.shape[0]
        out = wet + self.noise[index]
        self._emitted += out.shape[0]
        over = np.abs(out) > 1.0
        if np.any(over):
            self.clipped_samples += int(over.sum())
            out = np.clip(out, -1.0, 1.0)
        return out.astype(np.float32)
