"""The simulated robot: a turning base with binaural ears and a camera, on one clock.

Time ``t`` is seconds since the simulation started (the node maps it to ROS time). Every
``DIRECT_HOP_S`` the base moves to the step's time and the renderer takes the yaw there;
``advance(t)`` runs the steps up to ``t`` and returns what the robot's sensors delivered in
that time:

- audio chunks of ``chunk_s`` (stamped with the time of their first sample; the room part of
  the rendering finishes audio every ``ROOM_HOP_S``, so a chunk leaves at most that late);
- camera frames at ``camera.fps`` (captured at their stamp; the yaw there is interpolated
  between steps);
- poses at ``odom_rate_hz`` (yaw unwrapped, yaw rate);
each with the ground truth: the talker's azimuth in the microphone frame (REP-103, radians).

When the caller falls behind by more than ``max_lag_s`` (the machine is too busy to render in
real time), ``advance`` skips the lost time instead of running ever later: the audio stream
gets a gap, which the consumer sees and reports, and ``skipped_s`` counts it.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.receivers import Receiver, make_receiver
from slfm_ros.core.sim.room import RirCache, RoomConfig
from slfm_ros.core.sim_robot.acoustics import DIRECT_HOP_S, BinauralRenderer, TalkerSpec
from slfm_ros.core.sim_robot.base import BaseLimits, CommandResult, TurningBase
from slfm_ros.core.sim_robot.camera import CameraSpec, SimCamera

RECEIVERS = ("stereo_array", "spherical_head")
ROOMS = ("room", "anechoic")
# The room of ``room="room"``: a living room with the robot off its centre.
ROOM_DIMS_M = (6.0, 5.0, 3.0)
LISTENER_POS_M = (3.2, 2.3, 1.2)


@dataclass(frozen=True)
class SimRobotConfig:
    """Everything that defines a simulated run.

    receiver: ``stereo_array`` (two omnidirectional microphones ``mic_spacing_m`` apart,
    slfm_node's default geometry) or ``spherical_head`` (``head_radius_m``). room: ``room``
    (ROOM_DIMS_M with ``rt60_s``) or ``anechoic`` (free field). initial_yaw: the robot's start
    heading (radians) relative to the world +x axis, from which the talker's bearing counts.
    noise_dbfs: RMS of the diffuse noise floor. odom_rate_hz: pose output rate.
    """

    talker: TalkerSpec = field(default_factory=TalkerSpec)
    receiver: str = "stereo_array"
    mic_spacing_m: float = 0.14
    head_radius_m: float = 0.0875
    room: str = "room"
    rt60_s: float = 0.3
    sample_rate: int = 48000
    chunk_s: float = 0.02
    camera: CameraSpec = field(default_factory=CameraSpec)
    limits: BaseLimits = field(default_factory=BaseLimits)
    initial_yaw: float = 0.0
    noise_dbfs: float = -60.0
    odom_rate_hz: float = 50.0
    max_lag_s: float = 0.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.receiver not in RECEIVERS:
            raise ConfigError(f"receiver must be one of {RECEIVERS}, got {self.receiver!r}")
        if self.room not in ROOMS:
            raise ConfigError(f"room must be one of {ROOMS}, got {self.room!r}")
        if self.sample_rate % 100 or not 8000 <= self.sample_rate <= 96000:
            raise ConfigError(
                f"sample_rate must be a multiple of 100 Hz in [8000, 96000], got {self.sample_rate}"
            )
        steps = self.chunk_s / DIRECT_HOP_S
        if abs(steps - round(steps)) > 1e-9 or round(steps) < 1:
            raise ConfigError(
                f"chunk_s must be a whole number of {DIRECT_HOP_S * 1e3:g} ms steps, "
                f"got {self.chunk_s}"
            )
        if not 1.0 <= self.odom_rate_hz <= 1.0 / DIRECT_HOP_S:
            raise ConfigError(
                f"odom_rate_hz must be in [1, {1.0 / DIRECT_HOP_S:g}], got {self.odom_rate_hz}"
            )
        if not self.max_lag_s > 0.1:
            raise ConfigError(f"max_lag_s must be > 0.1 s, got {self.max_lag_s}")
        if not -120.0 <= self.noise_dbfs <= -10.0:
            raise ConfigError(f"noise_dbfs must be in [-120, -10], got {self.noise_dbfs}")

    def make_receiver(self) -> Receiver:
        if self.receiver == "stereo_array":
            return make_receiver("stereo_array", spacing_m=self.mic_spacing_m)
        return make_receiver("spherical_head", radius_m=self.head_radius_m)

    def room_config(self) -> RoomConfig | None:
        if self.room == "anechoic":
            return None
        return RoomConfig(ROOM_DIMS_M, self.rt60_s, LISTENER_POS_M)


@dataclass(frozen=True)
class AudioChunk:
    """(frames, 2) float32 samples whose first one was heard at ``stamp_s``."""

    stamp_s: float
    samples: npt.NDArray[np.float32]
    source_azimuth: float


@dataclass(frozen=True)
class CameraFrame:
    stamp_s: float
    image: npt.NDArray[np.uint8]
    yaw: float
    yaw_rate: float
    source_azimuth: float


@dataclass(frozen=True)
class PoseSample:
    """Yaw (radians, unwrapped) and yaw rate (rad/s) of the base at ``stamp_s``."""

    stamp_s: float
    yaw: float
    yaw_rate: float
    source_azimuth: float


@dataclass
class SensorOutput:
    audio: list[AudioChunk] = field(default_factory=list)
    frames: list[CameraFrame] = field(default_factory=list)
    poses: list[PoseSample] = field(default_factory=list)


class SimRobot:
    """See module doc. Building one renders the room responses (seconds, once per process
    unless ``rir_cache_dir`` keeps them on disk)."""

    def __init__(self, config: SimRobotConfig, rir_cache_dir: str | None = None) -> None:
        self.config = config
        rng = np.random.default_rng([config.seed, 0x5B07])
        receiver = config.make_receiver()
        room = config.room_config()
        cache = None
        if room is not None:
            from slfm_ros.core.sim_robot.acoustics import ROOM_STEP

            cache = RirCache(max_items=64, directory=rir_cache_dir, yaw_step_rad=ROOM_STEP / 4)
        self.renderer = BinauralRenderer(
            receiver, config.talker, config.sample_rate, room, config.noise_dbfs, rng, cache
        )
        self.camera = SimCamera(config.camera, config.seed)
        # The panorama is built now, not at the first frame, where it would stall the stream.
        self.camera.image(config.initial_yaw, 0)
        self.base = TurningBase(config.limits, yaw=config.initial_yaw)
        self.hop_s = DIRECT_HOP_S
        self._chunk_frames = int(round(config.chunk_s * config.sample_rate))
        self._pending = np.zeros((0, 2), dtype=np.float32)
        self._pending_start = 0  # frame index of the first pending sample
        # (t, yaw, yaw_rate) of the recent steps, for times between steps.
        self._history: deque[tuple[float, float, float]] = deque(maxlen=64)
        self._history.append((0.0, self.base.yaw, 0.0))
        self._next_frame = 0
        self._odom_every = max(1, int(round(1.0 / (config.odom_rate_hz * DIRECT_HOP_S))))
        self.skipped_s = 0.0

    @property
    def source_bearing(self) -> float:
        """World bearing (radians) of the talker as rendered (in a room the talker may sit
        nearer than asked, never in another direction)."""
        return self.renderer.source_bearing

    @property
    def t(self) -> float:
        """Simulation time of the last step (seconds)."""
        return self.base.t

    def source_azimuth(self, yaw: float) -> float:
        """The talker's azimuth in the microphone frame when the robot has ``yaw``."""
        return float(wrap_angle(self.source_bearing - yaw))

    def command(self, angular_z: float, t: float) -> CommandResult:
        """A yaw-rate command (rad/s) that arrived at simulation time ``t``."""
        return self.base.command(angular_z, max(t, self.base.t))

    def _state_at(self, t: float) -> tuple[float, float]:
        """(yaw, yaw rate) at a time within the recent steps (clamped to them)."""
        items = self._history
        if t <= items[0][0]:
            return items[0][1], items[0][2]
        for (t0, y0, r0), (t1, y1, r1) in zip(items, list(items)[1:], strict=False):
            if t0 <= t <= t1:
                a = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
                return y0 + a * (y1 - y0), r0 + a * (r1 - r0)
        return items[-1][1], items[-1][2]

    def advance(self, t: float) -> SensorOutput:
        """Run the steps up to time ``t`` (seconds) and return the sensor output."""
        out = SensorOutput()
        rate = self.config.sample_rate
        target_step = int(math.floor(t / self.hop_s + 1e-9))
        behind = (target_step - self.renderer.steps) * self.hop_s
        if behind > self.config.max_lag_s:
            self._skip(target_step)
        while self.renderer.steps <= target_step:
            k = self.renderer.steps
            step_t = k * self.hop_s
            self.base.advance(step_t)
            yaw = self.base.yaw
            self._history.append((step_t, yaw, self.base.yaw_rate))
            audio = self.renderer.step(yaw)
            if audio.shape[0]:
                self._pending = np.concatenate([self._pending, audio])
            if k % self._odom_every == 0:
                out.poses.append(
                    PoseSample(step_t, yaw, self.base.yaw_rate, self.source_azimuth(yaw))
                )
            self._frames_until(step_t, out)
        while self._pending.shape[0] >= self._chunk_frames:
            samples = self._pending[: self._chunk_frames]
            self._pending = self._pending[self._chunk_frames :]
            stamp = self._pending_start / rate
            self._pending_start += self._chunk_frames
            yaw, _ = self._state_at(stamp)
            out.audio.append(AudioChunk(stamp, samples, self.source_azimuth(yaw)))
        return out

    def _frames_until(self, step_t: float, out: SensorOutput) -> None:
        fps = self.config.camera.fps
        while self._next_frame / fps <= step_t + 1e-9:
            stamp = self._next_frame / fps
            yaw, yaw_rate = self._state_at(stamp)
            image = self.camera.image(yaw, self._next_frame)
            out.frames.append(CameraFrame(stamp, image, yaw, yaw_rate, self.source_azimuth(yaw)))
            self._next_frame += 1

    def _skip(self, target_step: int) -> None:
        """Jump the rendering to ``target_step`` (rounded up to a whole output); the base
        keeps turning through the skipped time."""
        per = self.renderer.steps_per_output
        resume = -(-target_step // per) * per
        lost = (resume - self.renderer.steps) * self.hop_s
        self.skipped_s += lost
        # The base moves step by step through the gap, so its watchdog acts on time.
        for k in range(self.renderer.steps, resume):
            self.base.advance(k * self.hop_s)
            self._history.append((k * self.hop_s, self.base.yaw, self.base.yaw_rate))
        self.renderer.skip_to(resume)
        # Chunks stay on the chunk grid: the pending partial chunk is dropped with the gap.
        self._pending = np.zeros((0, 2), dtype=np.float32)
        self._pending_start = self.renderer.emitted_frames
        fps = self.config.camera.fps
        self._next_frame = max(self._next_frame, int(math.ceil(resume * self.hop_s * fps)))
