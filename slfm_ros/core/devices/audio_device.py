"""Microphone capture with sounddevice (PortAudio), stamped with the capture time of each chunk.

No rclpy here: the ROS node wraps ``AudioCapture`` and only publishes what it yields.

Timing: PortAudio reports, in every callback, ``currentTime`` and ``inputBufferAdcTime`` (when the
first frame of the block was captured) on the stream's own clock. ``currentTime -
inputBufferAdcTime`` is the capture delay; subtracting it from the target clock (wall or ROS
time) read in the same callback maps the capture instant onto the target clock without assuming
the two clocks share an origin. The callback's own time on the target clock gives a second,
always valid bound: a block's frames all existed when it was delivered. ``StampTracker`` combines
the two (the ADC clock only while it behaves like one), and chunk stamps are the resulting time
of frame 0 plus the frame count over the sample rate, so consecutive stamps are one chunk apart.
An overflow (lost input) starts a new timeline.
"""

from __future__ import annotations

import queue
import statistics
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError

# Published sample formats -> little-endian NumPy dtype of one sample.
SAMPLE_DTYPES: dict[str, str] = {"S16LE": "<i2", "S32LE": "<i4", "F32LE": "<f4"}
# sounddevice dtype names for the same formats (PortAudio converts in the driver thread).
_PORTAUDIO_DTYPES: dict[str, str] = {
    "S16LE": "int16",
    "S32LE": "int32",
    "F32LE": "float32",
}

ClockNs = Callable[[], int]


def _sd() -> Any:
    """sounddevice, imported lazily: importing it initialises PortAudio and scans devices."""
    try:
        import sounddevice
    except OSError as exc:  # PortAudio shared library missing
        raise ConfigError(
            f"sounddevice cannot load the PortAudio library ({exc}); install libportaudio2"
        ) from exc
    return sounddevice


@dataclass(frozen=True)
class InputDevice:
    """An audio device that can capture (max_input_channels > 0)."""

    index: int
    name: str
    hostapi: str
    max_input_channels: int
    default_samplerate: float

    def describe(self) -> str:
        return (
            f"[{self.index}] '{self.name}' ({self.hostapi}, {self.max_input_channels} in, "
            f"{self.default_samplerate:g} Hz)"
        )


def refresh_devices() -> None:
    """Re-scan devices. PortAudio lists devices once at start-up, so a sound server started later
    (or a device plugged in later) is only seen after this."""
    sd = _sd()
    sd._terminate()
    sd._initialize()


def list_input_devices() -> list[InputDevice]:
    """All devices with at least one input channel, in PortAudio index order."""
    sd = _sd()
    hostapis = sd.query_hostapis()
    devices = []
    for info in sd.query_devices():
        if info["max_input_channels"] <= 0:
            continue
        devices.append(
            InputDevice(
                index=int(info["index"]),
                name=str(info["name"]),
                hostapi=str(hostapis[info["hostapi"]]["name"]),
                max_input_channels=int(info["max_input_channels"]),
                default_samplerate=float(info["default_samplerate"]),
            )
        )
    return devices


def format_device_list(devices: list[InputDevice]) -> str:
    if not devices:
        return (
            "  (none: PortAudio sees no input device; check that the sound server or driver runs "
            "and that this user may access it)"
        )
    return "\n".join("  " + d.describe() for d in devices)


def find_input_device(device: str | int) -> InputDevice:
    """The input device named by ``device``.

    ``device``: "" = the default input; an int or a string of digits = a PortAudio index; any
    other string = a name, matched exactly first, then as a case-insensitive substring.
    Raises ConfigError listing the available input devices when nothing (or more than one
    device) matches.
    """
    devices = list_input_devices()
    listing = format_device_list(devices)
    spec = device.strip() if isinstance(device, str) else device
    if spec == "":
        default_index = int(_sd().default.device[0])
        matches = [d for d in devices if d.index == default_index]
        if not matches:
            raise ConfigError(
                "device '': expected a default input device, got none; set the parameter "
                f"'device' to one of the available input devices:\n{listing}"
            )
        return matches[0]
    if isinstance(spec, int) or spec.isdigit():
        index = int(spec)
        matches = [d for d in devices if d.index == index]
        if not matches:
            raise ConfigError(
                f"device {index}: expected the index of an input device, got no input device "
                f"with that index; available input devices:\n{listing}"
            )
        return matches[0]
    exact = [d for d in devices if d.name.lower() == spec.lower()]
    if len(exact) == 1:
        return exact[0]
    partial = exact or [d for d in devices if spec.lower() in d.name.lower()]
    if len(partial) == 1:
        return partial[0]
    if not partial:
        raise ConfigError(
            f"device '{spec}': expected the name (or part of it) of an input device, got no "
            f"match; available input devices:\n{listing}"
        )
    raise ConfigError(
        f"device '{spec}': expected one input device, got {len(partial)} matches; give the "
        f"full name or the index:\n{format_device_list(partial)}"
    )


@dataclass(frozen=True)
class CaptureConfig:
    """What to capture.

    device: see ``find_input_device``; sample_rate in Hz; chunk_ms: length of one chunk in ms
    (sample_rate * chunk_ms / 1000 must be a whole number of frames); sample_format: a key of
    SAMPLE_DTYPES.
    """

    device: str | int = ""
    sample_rate: int = 48000
    channels: int = 2
    chunk_ms: float = 20.0
    sample_format: str = "S16LE"

    def __post_init__(self) -> None:
        if self.sample_format not in SAMPLE_DTYPES:
            raise ConfigError(
                f"sample_format: expected one of {sorted(SAMPLE_DTYPES)}, got "
                f"'{self.sample_format}'"
            )
        if self.sample_rate <= 0 or self.channels <= 0 or self.chunk_ms <= 0:
            raise ConfigError(
                "sample_rate, channels and chunk_ms: expected positive values, got "
                f"{self.sample_rate}, {self.channels}, {self.chunk_ms}"
            )
        frames = self.sample_rate * self.chunk_ms / 1000.0
        if abs(frames - round(frames)) > 1e-6 or round(frames) < 1:
            raise ConfigError(
                f"chunk_ms: expected a whole number of frames at {self.sample_rate} Hz, got "
                f"{self.chunk_ms} ms = {frames:g} frames; choose e.g. 10 or 20 ms"
            )

    @property
    def chunk_frames(self) -> int:
        return round(self.sample_rate * self.chunk_ms / 1000.0)

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(SAMPLE_DTYPES[self.sample_format])

    @property
    def chunk_ns(self) -> int:
        """Duration of one chunk in ns."""
        return round(self.chunk_frames * 1e9 / self.sample_rate)


@dataclass(frozen=True)
class AudioChunk:
    """One chunk of captured audio.

    samples:  (frames, channels) array of SAMPLE_DTYPES[sample_format] (channel 0 = left).
    stamp_ns: capture time of the first frame on the target clock, ns.
    index:    running chunk number since the capture started (gaps mean dropped chunks).
    """

    samples: npt.NDArray[Any]
    stamp_ns: int
    index: int

    def to_bytes(self) -> bytes:
        """Interleaved little-endian bytes (frame 0 ch 0, frame 0 ch 1, frame 1 ch 0, ...), as
        ``slfm_ros.core.dsp.audio_format.decode_interleaved`` reads them."""
        return np.ascontiguousarray(self.samples).tobytes()


class StampTracker:
    """Maps frame numbers of one stream to capture times on the target clock.

    ``observe`` is called once per driver block with its delivery time and, where the host
    reports one, the driver's ADC time of its first frame, both on the target clock. Two
    estimates of the time of frame 0 follow:

    - delivery bound: every frame of a block existed when the block was delivered, so frame 0
      was captured no later than ``delivered - (first_frame + frames) / rate``; a low
      percentile over the window is the tightest such bound (late deliveries only loosen it);
    - driver clock: ``adc - first_frame / rate``, the median over the window.

    The driver estimate is used only while it behaves like a sample clock: over a full window
    its spread stays below ``adc_jitter_ns``, it is not later than the delivery bound and not
    earlier than it by more than ``max_latency_ns`` (the stream's input latency). Otherwise
    (``using_adc`` False) stamps follow the delivery bound, which can be late by the host's
    fixed input latency but is never early. ALSA over PulseAudio, for one, reports ADC times
    that are steady but ~0.5 s early while a stream starts, then wander by tens of ms.

    The origin used for stamps follows the estimate by at most ``slew`` of a block's duration
    per block, so consecutive stamps stay one chunk apart; a disagreement over ``resync_ns``, or
    ``reset()`` (after lost input), re-anchors at once.
    """

    def __init__(
        self,
        sample_rate: int,
        max_latency_ns: int = 50_000_000,
        window: int = 64,
        adc_jitter_ns: int = 1_000_000,
        slew: float = 0.01,
        resync_ns: int = 100_000_000,
    ) -> None:
        self._ns_per_frame = 1e9 / sample_rate
        self._bounds: deque[float] = deque(maxlen=window)
        self._adc: deque[float] = deque(maxlen=window)
        self._adc_jitter_ns = adc_jitter_ns
        self._max_latency_ns = max_latency_ns
        self._slew = slew
        self._resync_ns = resync_ns
        self._origin: float | None = None
        self.resyncs = 0
        self.using_adc = False

    def reset(self) -> None:
        self._bounds.clear()
        self._adc.clear()
        self._origin = None

    def _estimate(self) -> float:
        # A low percentile rather than the minimum: the first blocks of a stream can arrive in a
        # burst, ahead of the steady pace.
        bound = sorted(self._bounds)[len(self._bounds) // 10]
        self.using_adc = False
        if len(self._adc) == self._adc.maxlen:
            spread = max(self._adc) - min(self._adc)
            median = statistics.median(self._adc)
            # 0.5 ms of slack: hosts round their clocks.
            if spread <= self._adc_jitter_ns and -500_000 <= bound - median <= self._max_latency_ns:
                self.using_adc = True
                return median
        return bound

    def observe(self, first_frame: int, frames: int, delivered_ns: int, adc_ns: int | None) -> None:
        """first_frame: stream frame number of the block's first frame; frames: block length;
        delivered_ns: target-clock time of the callback; adc_ns: the driver's capture time of the
        first frame on the target clock, None when the host reports none."""
        self._bounds.append(delivered_ns - (first_frame + frames) * self._ns_per_frame)
        if adc_ns is not None:
            self._adc.append(adc_ns - first_frame * self._ns_per_frame)
        target = self._estimate()
        if self._origin is None or abs(target - self._origin) > self._resync_ns:
            if self._origin is not None:
                self.resyncs += 1
            self._origin = target
            return
        step = self._slew * frames * self._ns_per_frame
        self._origin += min(step, max(-step, target - self._origin))

    @property
    def ready(self) -> bool:
        return self._origin is not None

    def stamp_of(self, frame: int) -> int:
        """Target-clock capture time of stream frame ``frame``, ns."""
        if self._origin is None:
            raise RuntimeError("StampTracker.stamp_of called before any observe()")
        return round(self._origin + frame * self._ns_per_frame)


class Rechunker:
    """Cuts a stream of variable-size blocks into chunks of ``chunk_frames`` frames.

    ``push(block, first_frame)`` returns the completed chunks as (samples, first_frame) pairs.
    ``reset()`` drops a partial chunk (after lost input, so that a chunk never spans a gap).
    """

    def __init__(self, chunk_frames: int, channels: int, dtype: np.dtype) -> None:
        self._chunk_frames = chunk_frames
        self._buffer = np.empty((chunk_frames, channels), dtype=dtype)
        self._filled = 0
        self._start = 0

    def reset(self) -> int:
        """Drops the partial chunk; returns how many frames were dropped."""
        dropped, self._filled = self._filled, 0
        return dropped

    def push(self, block: npt.NDArray[Any], first_frame: int) -> list[tuple[npt.NDArray[Any], int]]:
        out = []
        pos = 0
        n = block.shape[0]
        while pos < n:
            if self._filled == 0:
                self._start = first_frame + pos
            take = min(self._chunk_frames - self._filled, n - pos)
            self._buffer[self._filled : self._filled + take] = block[pos : pos + take]
            self._filled += take
            pos += take
            if self._filled == self._chunk_frames:
                out.append((self._buffer.copy(), self._start))
                self._filled = 0
        return out


@dataclass(frozen=True)
class CaptureStats:
    """Counters since the capture started.

    overflows: driver blocks flagged as input overflow (input lost before it was read);
    dropped_chunks: chunks discarded because the consumer did not keep up;
    last_block_ns: target-clock time of the latest driver callback (0 = none yet);
    capture_delay_s: delivery time minus stamp of the latest block's first frame;
    stamps_from_adc: whether stamps follow the driver's ADC clock (else the delivery bound).
    """

    chunks: int
    blocks: int
    overflows: int
    dropped_chunks: int
    resyncs: int
    last_block_ns: int
    capture_delay_s: float
    stamps_from_adc: bool


class AudioCapture:
    """A running PortAudio input stream that yields stamped ``AudioChunk``s.

    clock_ns: the target clock (ns), read in the driver callback; default wall time.
    Use as a context manager, or call ``start()`` and ``close()``. ``read(timeout)`` returns the
    next chunk and raises TimeoutError when none arrives in time.
    """

    def __init__(
        self,
        config: CaptureConfig,
        clock_ns: ClockNs = time.time_ns,
        max_queued_chunks: int = 100,
    ) -> None:
        self.config = config
        self.device = find_input_device(config.device)
        if config.channels > self.device.max_input_channels:
            raise ConfigError(
                f"channels: expected at most {self.device.max_input_channels} for device "
                f"{self.device.describe()}, got {config.channels}"
            )
        sd = _sd()
        dtype = _PORTAUDIO_DTYPES[config.sample_format]
        try:
            sd.check_input_settings(
                device=self.device.index,
                channels=config.channels,
                dtype=dtype,
                samplerate=config.sample_rate,
            )
        except sd.PortAudioError as exc:
            raise ConfigError(
                f"device {self.device.describe()} rejects {config.sample_rate} Hz, "
                f"{config.channels} channels, {config.sample_format}: {exc}; change "
                "sample_rate/channels/sample_format or the device"
            ) from exc
        self._clock_ns = clock_ns
        self._queue: queue.Queue[AudioChunk] = queue.Queue(maxsize=max_queued_chunks)
        self._rechunker = Rechunker(config.chunk_frames, config.channels, config.dtype)
        self._lock = threading.Lock()
        self._frames = 0
        self._chunks = 0
        self._blocks = 0
        self._overflows = 0
        self._dropped = 0
        self._last_block_ns = 0
        self._delay_s = 0.0
        self._callback_error: BaseException | None = None
        try:
            # One driver block per chunk keeps each chunk's delivery time observable; the
            # rechunker still copes with hosts that deliver other sizes.
            self._stream = sd.InputStream(
                device=self.device.index,
                samplerate=config.sample_rate,
                channels=config.channels,
                dtype=dtype,
                blocksize=config.chunk_frames,
                callback=self._callback,
            )
        except sd.PortAudioError as exc:
            raise ConfigError(
                f"cannot open input stream on {self.device.describe()}: {exc}"
            ) from exc
        self._tracker = StampTracker(
            config.sample_rate, max_latency_ns=round(float(self._stream.latency) * 1e9)
        )

    def _callback(self, indata: npt.NDArray[Any], frames: int, time_info: Any, status: Any) -> None:
        now_ns = self._clock_ns()
        try:
            adc = time_info.inputBufferAdcTime
            # Hosts without ADC times report 0; the tracker then uses the delivery time alone.
            adc_ns = None if adc <= 0 else now_ns - round((time_info.currentTime - adc) * 1e9)
            with self._lock:
                self._blocks += 1
                self._last_block_ns = now_ns
                if status.input_overflow:
                    self._overflows += 1
                    self._tracker.reset()
                    self._rechunker.reset()
                first = self._frames
                self._frames += frames
                self._tracker.observe(first, frames, now_ns, adc_ns)
                self._delay_s = (now_ns - self._tracker.stamp_of(first)) / 1e9
                for samples, start in self._rechunker.push(indata, first):
                    chunk = AudioChunk(samples, self._tracker.stamp_of(start), self._chunks)
                    self._chunks += 1
                    try:
                        self._queue.put_nowait(chunk)
                    except queue.Full:
                        self._dropped += 1
        except Exception as exc:
            self._callback_error = exc

    def start(self) -> Self:
        self._stream.start()
        return self

    def close(self) -> None:
        """Stops and closes the stream; safe to call twice."""
        if not self._stream.closed:
            self._stream.stop(ignore_errors=True)
            self._stream.close(ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def active(self) -> bool:
        return bool(self._stream.active)

    def read(self, timeout: float | None = None) -> AudioChunk:
        """The next chunk, oldest first. Raises TimeoutError after ``timeout`` s without one, and
        re-raises an error that occurred in the driver callback."""
        if self._callback_error is not None:
            raise RuntimeError("audio callback failed") from self._callback_error
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise TimeoutError(
                f"no audio chunk from {self.device.describe()} within {timeout} s"
            ) from None

    def stats(self) -> CaptureStats:
        with self._lock:
            return CaptureStats(
                chunks=self._chunks,
                blocks=self._blocks,
                overflows=self._overflows,
                dropped_chunks=self._dropped,
                resyncs=self._tracker.resyncs,
                last_block_ns=self._last_block_ns,
                capture_delay_s=self._delay_s,
                stamps_from_adc=self._tracker.using_adc,
            )
