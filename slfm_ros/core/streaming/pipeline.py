"""The streaming localizer: buffered audio + images in, one estimate per hop out.

This is the processing code of ``slfm_node`` and of the bag replay evaluation; it knows nothing
of ROS. Given the same sequence of calls it produces the same results.

Inputs (in arrival order)
    on_audio_info(channels, sample_rate, sample_format, coding_format)   stream format
    on_audio(raw interleaved bytes, stamp of the first sample)            audio chunks
    on_image((H, W, 3) uint8 RGB, stamp)                                  camera frames
    Each returns the PipelineEvents (bad input) it raised.

Windows
    ``step()`` returns the windows that became due since the last call. Window ends lie on the
    hop grid: multiples of ``hop_s`` in capture time (ns since the epoch of the stamps), so a
    live run and an offline replay of the same stream produce the same window ends. The clock
    that makes a window due is the end of the newest buffered audio; while no audio arrives
    (camera only, or audio stopped for ``audio_stale_s`` of arrival time) it is the newest
    image stamp. The first window is the newest grid point when the first step runs.
    ``step()`` is ``step_audio()`` (audio part of each due window) followed by
    ``finish_window()`` (camera part) per window; a live node may run the two halves on two
    threads so the slow camera part never delays a direction.

Per window (end E, start E - window_s)
    azimuth   the audio estimator on the audio in [E - window_s, E), resampled to the
              estimator's rate. None when no audio covers the window (see ``audio_note``); an
              invalid AngleEstimate when the window is silent or mostly gap filling.
    yaw       the camera yaw of the newest image at or before E (within
              ``max_image_audio_skew_s``), measured against the current keyframe (see
              ``yaw_tracker``). None when no new usable image arrived since the last window.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.audio_format import SampleFormat, decode_interleaved
from slfm_ros.core.dsp.iid import rms_dbfs
from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.errors import InputFormatError, SlfmError
from slfm_ros.core.estimators.base import AngleEstimate, AudioEstimator, VisualEstimator
from slfm_ros.core.events import PipelineEvent
from slfm_ros.core.streaming.audio_buffer import PushResult, TimedAudioBuffer, WindowUnavailable
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.estimator_setup import build_estimators
from slfm_ros.core.streaming.image_buffer import StampedImage, TimedImageBuffer
from slfm_ros.core.streaming.yaw_tracker import KeyframeYawTracker, YawResult

_NS_PER_S = 1_000_000_000
RAW_CODING_FORMATS = ("wave", "raw", "pcm", "")


@dataclass(frozen=True)
class WindowResult:
    """Output of one window.

    end_ns:       window end on the hop grid (capture time, ns); the output stamp.
    azimuth:      AngleEstimate of the sound azimuth (radians, REP-103), invalid with a reason
                  for silent or mostly-filled windows; None when no audio covers the window.
    audio_note:   why ``azimuth`` is None or invalid ("" when it is valid).
    audio_fill:   share of the window that holds received audio (0..1; 0 without audio).
    yaw:          camera yaw of the newest image in the window, or None (no new image).
    latencies_s:  processing time per stage in seconds ("audio", "visual", "window").
    events:       diagnostics raised while processing this window.
    """

    end_ns: int
    azimuth: AngleEstimate | None
    audio_note: str
    audio_fill: float
    yaw: YawResult | None
    latencies_s: dict[str, float]
    events: tuple[PipelineEvent, ...]

    @property
    def has_output(self) -> bool:
        """True when the window carries a valid azimuth or a measured yaw."""
        az_ok = self.azimuth is not None and self.azimuth.valid
        return az_ok or (self.yaw is not None and self.yaw.integrated is not None)


@dataclass(frozen=True)
class PendingWindow:
    """A window whose audio part is done (fields as in WindowResult); ``audio_s`` is the
    audio processing time, ``restart_tracking`` asks finish_window to restart the yaw chain."""

    end_ns: int
    azimuth: AngleEstimate | None
    audio_note: str
    audio_fill: float
    audio_s: float
    events: tuple[PipelineEvent, ...]
    restart_tracking: bool = False


@dataclass(frozen=True)
class _AudioFormat:
    channels: int
    sample_rate: int
    sample_format: SampleFormat


class StreamingLocalizer:
    """Sound azimuth and camera yaw from streamed audio and images (see module doc).

    ``audio_estimator`` / ``visual_estimator`` replace the ones the config names (tests,
    evaluation of a custom estimator).
    """

    def __init__(
        self,
        config: PipelineConfig,
        audio_estimator: AudioEstimator | None = None,
        visual_estimator: VisualEstimator | None = None,
    ) -> None:
        self.config = config
        self._hop_ns = int(round(config.hop_s * _NS_PER_S))
        self._window_ns = int(round(config.window_s * _NS_PER_S))
        self._skew_ns = int(round(config.max_image_audio_skew_s * _NS_PER_S))
        self._stale_ns = int(round(config.audio_stale_s * _NS_PER_S))
        setup = build_estimators(config, audio_estimator, visual_estimator)
        self.estimators = setup
        self.audio_estimator: AudioEstimator = setup.audio
        self.visual_estimator: VisualEstimator = setup.visual
        self.startup_events: tuple[PipelineEvent, ...] = tuple(setup.events)
        self._yaw = KeyframeYawTracker(setup.visual, config.keyframe_interval_s)
        self._images = TimedImageBuffer(config.image_buffer_s)
        self._buffer: TimedAudioBuffer | None = None
        self._format: _AudioFormat | None = None
        self._format_error = ""
        self._info_seen = False
        self._last_end_ns: int | None = None
        self._last_audio_arrival: int | None = None
        self._last_image_arrival: int | None = None
        self._dropped_chunk = False
        self._audio_was_stale = False

    # ------------------------------------------------------------------ audio input
    @property
    def audio_format(self) -> tuple[int, int, str] | None:
        """(channels, sample_rate, sample_format) in use, or None while audio is not accepted."""
        f = self._format
        return None if f is None else (f.channels, f.sample_rate, f.sample_format.value)

    def on_audio_info(
        self, channels: int, sample_rate: int, sample_format: str, coding_format: str
    ) -> list[PipelineEvent]:
        """Adopt a stream format (AudioInfo). Unusable formats stop audio until a good one."""
        self._info_seen = True
        problem = self._format_problem(channels, sample_rate, sample_format, coding_format)
        if problem is not None:
            self._format, self._format_error = None, problem.message
            return [problem]
        new = _AudioFormat(int(channels), int(sample_rate), SampleFormat.parse(sample_format))
        old, self._format, self._format_error = self._format, new, ""
        events: list[PipelineEvent] = []
        if self._buffer is None:
            self._buffer = TimedAudioBuffer(
                new.channels,
                new.sample_rate,
                self.config.audio_buffer_s,
                gap_tolerance_s=self.config.gap_tolerance_s,
                max_fill_s=self.config.max_gap_fill_s,
            )
        elif self._buffer.sample_rate != new.sample_rate:
            before = self._buffer.sample_rate
            self._buffer.reconfigure(new.sample_rate, new.channels)
            events.append(
                PipelineEvent.warn(
                    "audio",
                    "audio_rate_change",
                    f"audio sample rate changed mid-stream from {before} Hz to "
                    f"{new.sample_rate} Hz: buffer cleared, estimates resume after "
                    f"{self.config.window_s:.2f} s of audio at the new rate",
                )
            )
        if old is not None and old.sample_format != new.sample_format:
            events.append(
                PipelineEvent.warn(
                    "audio",
                    "audio_format_change",
                    f"audio sample format changed mid-stream from {old.sample_format.value} "
                    f"to {new.sample_format.value}",
                )
            )
        return events

    @staticmethod
    def _format_problem(
        channels: int, sample_rate: int, sample_format: str, coding_format: str
    ) -> PipelineEvent | None:
        if coding_format.strip().lower() not in RAW_CODING_FORMATS:
            return PipelineEvent.error(
                "audio",
                "audio_coding",
                f"audio coding_format {coding_format!r} is compressed: expected raw PCM "
                "('wave'); set the capture node's coding format to wave",
            )
        try:
            SampleFormat.parse(sample_format)
        except InputFormatError as err:
            return PipelineEvent.error("audio", "audio_sample_format", str(err))
        if channels != 2:
            kind = "mono" if channels == 1 else f"{channels}-channel"
            return PipelineEvent.error(
                "audio",
                "audio_channels",
                f"{kind} audio: expected 2 channels (binaural: left, right), got {channels}; "
                "capture with channels=2 (channel 0 = left ear/microphone)",
            )
        if sample_rate <= 0:
            return PipelineEvent.error(
                "audio",
                "audio_sample_rate",
                f"audio sample_rate must be a positive number of Hz, got {sample_rate}",
            )
        return None

    def on_audio(
        self, data: bytes, stamp_ns: int, arrival_ns: int | None = None
    ) -> list[PipelineEvent]:
        """Buffer one chunk of interleaved bytes whose first sample was captured at ``stamp_ns``.

        ``arrival_ns`` (receive time; defaults to ``stamp_ns``) only decides whether audio is
        still streaming (``audio_stale_s``).
        """
        fmt, buffer = self._format, self._buffer
        if fmt is None or buffer is None:
            if not self._info_seen:
                return [
                    PipelineEvent.warn(
                        "audio",
                        "audio_no_info",
                        "audio chunk received before any AudioInfo: dropped; the publisher "
                        "must send AudioInfo (channels, sample_rate, sample_format)",
                    )
                ]
            return [
                PipelineEvent.error(
                    "audio", "audio_dropped", f"audio chunk dropped: {self._format_error}"
                )
            ]
        try:
            samples = decode_interleaved(data, fmt.sample_format, fmt.channels)
        except InputFormatError as err:
            return [PipelineEvent.error("audio", "audio_decode", f"audio chunk dropped: {err}")]
        self._last_audio_arrival = int(stamp_ns if arrival_ns is None else arrival_ns)
        bad = int(samples.size - np.count_nonzero(np.isfinite(samples)))
        if bad:
            self._dropped_chunk = True
            return [
                PipelineEvent.error(
                    "audio",
                    "audio_non_finite",
                    f"audio chunk at {stamp_ns / _NS_PER_S:.3f} s holds {bad} NaN/Inf "
                    f"sample(s) of {samples.size}: dropped (its span is zero-filled); check "
                    "the capture driver",
                )
            ]
        result = buffer.push(samples, stamp_ns)
        events = self._push_events(result, stamp_ns)
        self._dropped_chunk = False
        return events

    def _push_events(self, result: PushResult, stamp_ns: int) -> list[PipelineEvent]:
        at = f"at {stamp_ns / _NS_PER_S:.3f} s"
        if result.reset and result.gap_s < 0:
            return [
                PipelineEvent.warn(
                    "audio",
                    "audio_time_jump",
                    f"audio stamps jumped back by {-result.gap_s:.3f} s {at}: buffer reset "
                    "(bag loop or clock restart)",
                )
            ]
        if result.gap_s > 0:
            after = " after a dropped chunk" if self._dropped_chunk else ""
            what = "buffer reset" if result.reset else "zero-filled"
            return [
                PipelineEvent.warn(
                    "audio",
                    "audio_gap",
                    f"audio gap of {result.gap_s * 1e3:.1f} ms {at}{after} ({what}); "
                    "the capture dropped samples or stamps drift",
                )
            ]
        if result.overlap_s > 0:
            what = "chunk dropped" if not result.accepted else "overlapping samples dropped"
            return [
                PipelineEvent.warn(
                    "audio",
                    "audio_overlap",
                    f"audio chunk {at} overlaps buffered audio by "
                    f"{result.overlap_s * 1e3:.1f} ms ({what}): duplicate or out-of-order "
                    "chunks, or stamps drift",
                )
            ]
        return []

    # ------------------------------------------------------------------ image input
    def on_image(
        self, rgb: npt.NDArray[np.uint8], stamp_ns: int, arrival_ns: int | None = None
    ) -> list[PipelineEvent]:
        """Buffer an (H, W, 3) uint8 RGB image captured at ``stamp_ns``."""
        arr = np.asarray(rgb)
        if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
            return [
                PipelineEvent.error(
                    "image",
                    "image_format",
                    f"image dropped: expected (H, W, 3) uint8 RGB, got {arr.dtype} {arr.shape}",
                )
            ]
        width = self.config.image_width
        if width and arr.shape[1] != width:
            height = max(1, int(round(arr.shape[0] * width / arr.shape[1])))
            resized = cv2.resize(arr, (width, height), interpolation=cv2.INTER_AREA)
            arr = np.asarray(resized, dtype=np.uint8)
        events = self._images.push(arr, int(stamp_ns))
        if not events:
            self._last_image_arrival = int(stamp_ns if arrival_ns is None else arrival_ns)
        return events

    # ------------------------------------------------------------------ windows
    def _clock_ns(self) -> tuple[int | None, list[PipelineEvent]]:
        audio_end = self._buffer.newest_end_ns if self._buffer is not None else None
        image_end = self._images.newest_ns
        if audio_end is None:
            return image_end, []
        stale = (
            self._last_image_arrival is not None
            and self._last_audio_arrival is not None
            and self._last_image_arrival - self._last_audio_arrival > self._stale_ns
        )
        events: list[PipelineEvent] = []
        if stale != self._audio_was_stale:
            self._audio_was_stale = stale
            if stale:
                events.append(
                    PipelineEvent.warn(
                        "audio",
                        "audio_stale",
                        f"no audio for more than {self.config.audio_stale_s:.1f} s while "
                        "images arrive: producing camera yaw only",
                    )
                )
        if stale:
            return image_end, events
        return audio_end, events

    def step(self) -> list[WindowResult]:
        """Process every window that became due since the last call (see module doc)."""
        return [self.finish_window(p) for p in self.step_audio()]

    def step_audio(self) -> list[PendingWindow]:
        """First half of ``step``: the audio part of every window that became due.

        Each PendingWindow still needs ``finish_window`` (the camera yaw), in order. The two
        halves may run on different threads (a caller can publish the azimuth before the slower
        visual part is done); ``on_image`` may run concurrently with ``finish_window``. Calling
        ``finish_window`` right after ``step_audio`` gives exactly ``step``.
        """
        clock, clock_events = self._clock_ns()
        if clock is None:
            return []
        hop = self._hop_ns
        newest_end = (clock // hop) * hop
        events = list(clock_events)
        restart = False
        if self._last_end_ns is not None and newest_end < self._last_end_ns - self._window_ns:
            events.append(
                PipelineEvent.warn(
                    "pipeline",
                    "time_jump",
                    f"input time jumped back by {(self._last_end_ns - newest_end) / 1e9:.3f} "
                    "s: window sequence and camera tracking restarted",
                )
            )
            self._last_end_ns = None
            restart = True
        first = newest_end if self._last_end_ns is None else self._last_end_ns + hop
        if newest_end < first:
            return []
        count = (newest_end - first) // hop + 1
        limit = self.config.max_pending_windows
        if count > limit:
            skipped = count - limit
            first += skipped * hop
            events.append(
                PipelineEvent.warn(
                    "pipeline",
                    "windows_skipped",
                    f"{skipped} window(s) skipped: {count} were due at once (processing or "
                    f"input fell behind; max_pending_windows = {limit})",
                )
            )
        self._last_end_ns = newest_end
        pending = []
        for end in range(first, newest_end + 1, hop):
            t0 = time.perf_counter()
            azimuth, note, fill, audio_events = self._audio_window(end)
            pending.append(
                PendingWindow(
                    end_ns=end,
                    azimuth=azimuth,
                    audio_note=note,
                    audio_fill=fill,
                    audio_s=time.perf_counter() - t0,
                    events=tuple(events + audio_events),
                    restart_tracking=restart,
                )
            )
            events, restart = [], False
        return pending

    def finish_window(self, pending: PendingWindow) -> WindowResult:
        """Second half of ``step``: the camera yaw of ``pending``'s window."""
        t0 = time.perf_counter()
        if pending.restart_tracking:
            self._yaw.reset()
        yaw, yaw_events = self._visual_window(pending.end_ns)
        visual_s = time.perf_counter() - t0
        return WindowResult(
            end_ns=pending.end_ns,
            azimuth=pending.azimuth,
            audio_note=pending.audio_note,
            audio_fill=pending.audio_fill,
            yaw=yaw,
            latencies_s={
                "audio": pending.audio_s,
                "visual": visual_s,
                "window": pending.audio_s + visual_s,
            },
            events=pending.events + tuple(yaw_events),
        )

    @property
    def last_window_end_ns(self) -> int | None:
        return self._last_end_ns

    def _audio_window(
        self, end_ns: int
    ) -> tuple[AngleEstimate | None, str, float, list[PipelineEvent]]:
        buffer, fmt = self._buffer, self._format
        if buffer is None or fmt is None:
            return None, "no audio stream", 0.0, []
        try:
            window = buffer.window(end_ns, self.config.window_s)
        except WindowUnavailable as err:
            return None, str(err), 0.0, []
        received = 1.0 - window.fill_fraction
        if received < self.config.min_window_fill:
            note = f"only {received:.0%} of the window holds received audio (gaps)"
            return AngleEstimate.invalid(note), note, received, []
        level = rms_dbfs(window.audio)
        if level < self.config.silence_threshold_dbfs:
            note = (
                f"silent window ({level:.1f} dBFS < {self.config.silence_threshold_dbfs:.1f} "
                "dBFS): no azimuth"
            )
            event = PipelineEvent.warn("audio", "audio_silent", note)
            return AngleEstimate.invalid("silence"), note, received, [event]
        rate = self.estimators.audio_sample_rate or fmt.sample_rate
        audio = resample(window.audio, fmt.sample_rate, rate)
        try:
            estimate = self.audio_estimator.estimate(audio, rate)
        except SlfmError as err:
            note = f"audio estimator failed: {err}"
            return (
                AngleEstimate.invalid(note),
                note,
                received,
                [PipelineEvent.error("estimator", "audio_estimator_failed", note)],
            )
        note = "" if estimate.valid else estimate.reason
        return estimate, note, received, []

    def _visual_window(self, end_ns: int) -> tuple[YawResult | None, list[PipelineEvent]]:
        newest = self._images.newest_ns
        if newest is None:
            return None, []
        frame = self._images.latest_at_or_before(end_ns)
        if frame is None:
            nxt = self._images.oldest_after(end_ns)
            if nxt is not None and nxt.stamp_ns - end_ns <= self._skew_ns:
                return None, []  # the first image is just after this window: nothing yet
            return None, [self._skew_event(end_ns, frame)]
        if end_ns - frame.stamp_ns > self._skew_ns:
            return None, [self._skew_event(end_ns, frame)]
        try:
            return self._yaw.update(frame)
        except SlfmError as err:
            note = f"visual estimator failed: {err}"
            return None, [PipelineEvent.error("estimator", "visual_estimator_failed", note)]

    def _skew_event(self, end_ns: int, frame: StampedImage | None) -> PipelineEvent:
        if frame is None:
            nxt = self._images.oldest_after(end_ns)
            assert nxt is not None
            detail = f"the nearest image is {(nxt.stamp_ns - end_ns) / _NS_PER_S:.3f} s after it"
        else:
            detail = (
                f"the newest image before it is {(end_ns - frame.stamp_ns) / _NS_PER_S:.3f} s older"
            )
        return PipelineEvent.warn(
            "image",
            "image_audio_skew",
            f"no image within {self.config.max_image_audio_skew_s:.3f} s of the window end "
            f"{end_ns / _NS_PER_S:.3f} s ({detail}): no camera yaw; camera and microphone "
            "stamps disagree or the camera stalled",
        )
