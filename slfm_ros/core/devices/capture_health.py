"""Health of a frame source: published rate, read failures, reopens, and the status level.

No rclpy here: camera_node's reader thread records what happens, its diagnostics timer asks
for ``CaptureHealth.report()`` once per period and publishes the result on /diagnostics.

Levels (numbers of diagnostic_msgs/DiagnosticStatus, via ``EventLevel``):
    ERROR  the source could not be opened at start (until its first frame), no frame for
           ``stall_s`` seconds (the source hangs, is gone or is being reopened), or the source
           failed for good
    WARN   frame reads failed since the previous report, a reopen is under way, or the rate
           published over the last period is below ``MIN_RATE_FRACTION`` of the requested rate
    OK     frames flow at (about) the requested rate
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from slfm_ros.core.errors import SlfmError
from slfm_ros.core.events import EventLevel

# Fixed like mic_node's stall limit rather than parameters: they encode what "late" means for
# any camera (a frame rate 20 % short, a second without a frame), not a property of one setup.
MIN_RATE_FRACTION = 0.8
STALL_MIN_S = 1.0
# A source slower than 3 fps is late only after 3 missed frames, not after 1 s.
STALL_PERIODS = 3.0
# The rate is measured over at least this many frame periods, so a slow source is not judged
# on one or two frames.
RATE_MIN_FRAMES = 10.0
# Waits before each reopen of a lost camera or stream (s): about 15 s in all, then the node
# gives up and exits with status 1 (a launch respawn can take over).
REOPEN_DELAYS_S = (0.5, 1.0, 2.0, 4.0, 8.0)

# What to check, by source kind (camera_node's SourceKind values).
_STALL_HINTS = {
    "device": "check that the camera is plugged in and that no other process holds it "
    "(v4l2-ctl --list-devices)",
    "stream": "check the network and that the stream is up",
    "file": "decoding the file takes too long; lower the CPU load",
}
_SLOW_HINTS = {
    "device": "the camera delivers fewer frames than requested (low light lengthens exposure; "
    "see the rates it supports with v4l2-ctl --list-formats-ext), or the CPU is too busy; "
    "lower fps or width/height",
    "stream": "the stream delivers fewer frames than requested or the network is congested; "
    "set fps to the stream's rate",
    "file": "decoding cannot keep up with fps; lower fps or width/height, or the CPU load",
}


@dataclass(frozen=True)
class CaptureReport:
    """A status of the source: level, message (what is wrong and what to check) and the
    key/values of its /diagnostics status (all text)."""

    level: EventLevel
    message: str
    values: dict[str, str] = field(default_factory=dict)


class CaptureHealth:
    """Counters of a frame source, safe to update from the reader thread while another thread
    calls ``report``.

    source: the source as configured (device index, path or URL); kind: "device", "stream" or
    "file"; requested_fps: the rate frames should be published at (Hz, > 0); clock: seconds,
    monotonic.
    """

    def __init__(
        self,
        source: str,
        kind: str,
        requested_fps: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not requested_fps > 0:
            raise ValueError(f"requested_fps: expected > 0 Hz, got {requested_fps}")
        self.source = source
        self.kind = kind
        self.requested_fps = float(requested_fps)
        self.stall_s = max(STALL_MIN_S, STALL_PERIODS / self.requested_fps)
        self._clock = clock
        self._lock = threading.Lock()
        self._start = clock()
        self._frame_times: deque[float] = deque()
        self._last_frame: float | None = None
        self._published = 0
        self._skipped = 0
        self._read_failures = 0
        self._consecutive_failures = 0
        self._reopen_attempts = 0
        self._reopening: tuple[int, int] | None = None
        self._last_error = ""
        self._final: tuple[EventLevel, str] | None = None
        self._unopened = False
        self._last_report: float | None = None
        self._reported_failures = 0
        self._info: dict[str, str] = {}

    def set_info(self, key: str, value: str) -> None:
        """A fixed fact of the source shown among the values (backend, image size, ...)."""
        with self._lock:
            self._info[key] = value

    def set_requested_fps(self, requested_fps: float) -> None:
        """The rate frames should be published at, once it is known (Hz, > 0): a source opened
        after the start may report its own."""
        if not requested_fps > 0:
            raise ValueError(f"requested_fps: expected > 0 Hz, got {requested_fps}")
        with self._lock:
            self.requested_fps = float(requested_fps)
            self.stall_s = max(STALL_MIN_S, STALL_PERIODS / self.requested_fps)

    def open_failed(self, error: str) -> None:
        """The source could not be opened at start; reports are ERROR until its first frame."""
        with self._lock:
            self._unopened = True
            self._last_error = error

    def frame_published(self) -> None:
        with self._lock:
            now = self._clock()
            self._frame_times.append(now)
            self._last_frame = now
            self._published += 1
            self._consecutive_failures = 0
            self._reopening = None
            self._unopened = False

    def frame_skipped(self) -> None:
        """A frame of a live source faster than the requested rate, left out on purpose."""
        with self._lock:
            self._skipped += 1

    def read_failed(self, error: str) -> None:
        with self._lock:
            self._read_failures += 1
            self._consecutive_failures += 1
            self._last_error = error

    def reopening(self, attempt: int, attempts: int) -> None:
        """Reopen number ``attempt`` of ``attempts`` is due (its backoff wait begins)."""
        with self._lock:
            self._reopen_attempts += 1
            self._reopening = (attempt, attempts)

    def reopen_failed(self, error: str) -> None:
        with self._lock:
            self._consecutive_failures += 1
            self._last_error = error

    def finished(self, level: EventLevel, message: str) -> None:
        """The source ended (end of file) or failed for good; every later report says so."""
        with self._lock:
            self._final = (level, message)
            self._reopening = None
            if level >= EventLevel.ERROR:
                self._last_error = message

    def _rate(self, now: float) -> float:
        """Frames per second published since the previous report (since the start for the
        first), over at least RATE_MIN_FRAMES frame periods."""
        period_start = self._last_report if self._last_report is not None else self._start
        begin = max(self._start, min(period_start, now - RATE_MIN_FRAMES / self.requested_fps))
        if now <= begin:
            return 0.0
        return sum(1 for t in self._frame_times if t > begin) / (now - begin)

    def report(self) -> CaptureReport:
        """The status now; the next report's period starts here (call once per publish
        period)."""
        with self._lock:
            now = self._clock()
            fps = self._rate(now)
            period_failures = self._read_failures - self._reported_failures
            level, message = self._decide(now, fps, period_failures)
            age = now - self._last_frame if self._last_frame is not None else math.inf
            values = {
                "source": self.source,
                "source_kind": self.kind,
                **self._info,
                "requested_fps": f"{self.requested_fps:g}",
                "measured_fps": f"{fps:.2f}",
                "frames_published": str(self._published),
                "frames_skipped": str(self._skipped),
                "read_failures": str(self._read_failures),
                "consecutive_read_failures": str(self._consecutive_failures),
                "reopen_attempts": str(self._reopen_attempts),
                "last_frame_age_s": f"{age:.3f}" if math.isfinite(age) else "never",
                "last_error": self._last_error,
            }
            self._last_report = now
            self._reported_failures = self._read_failures
            # The next window reaches back at most RATE_MIN_FRAMES frame periods before now.
            horizon = now - RATE_MIN_FRAMES / self.requested_fps
            while self._frame_times and self._frame_times[0] < horizon:
                self._frame_times.popleft()
            return CaptureReport(level, message, values)

    def _decide(self, now: float, fps: float, period_failures: int) -> tuple[EventLevel, str]:
        if self._final is not None:
            return self._final
        silent_s = now - (self._last_frame if self._last_frame is not None else self._start)
        reopen = ""
        if self._reopening is not None:
            attempt, attempts = self._reopening
            reopen = (
                f"reopening '{self.source}' (attempt {attempt} of {attempts}, last error: "
                f"{self._last_error})"
            )
        stall_hint = _STALL_HINTS.get(self.kind, "check the source")
        if self._unopened:
            retry = ""
            if self._reopening is not None:
                retry = f"; retrying (attempt {self._reopening[0]} of {self._reopening[1]})"
            return EventLevel.ERROR, (
                f"the source cannot be opened: {self._last_error}{retry}; {stall_hint}"
            )
        if silent_s > self.stall_s:
            what = reopen or f"'{self.source}' delivers nothing"
            return EventLevel.ERROR, f"no frame for {silent_s:.1f} s: {what}; {stall_hint}"
        if reopen:
            return EventLevel.WARN, f"{reopen}; {stall_hint}"
        if period_failures:
            return EventLevel.WARN, (
                f"{period_failures} frame read(s) failed since the last report "
                f"({self._last_error}); frames flow again after reopening; {stall_hint}"
            )
        if fps < MIN_RATE_FRACTION * self.requested_fps:
            return EventLevel.WARN, (
                f"publishing {fps:.1f} fps, below {MIN_RATE_FRACTION:.0%} of the requested "
                f"{self.requested_fps:g} fps: {_SLOW_HINTS.get(self.kind, 'check the source')}"
            )
        return EventLevel.OK, f"capturing at {fps:.1f} fps"


Source = TypeVar("Source")


def reopen_with_backoff(
    open_source: Callable[[], Source],
    health: CaptureHealth,
    stop: threading.Event,
    log: Callable[[str], object],
    delays_s: tuple[float, ...] = REOPEN_DELAYS_S,
) -> Source | None:
    """Opens the source again after each wait of ``delays_s`` (``log`` gets each failure); the
    opened source, or None when ``stop`` was set while waiting. Raises SlfmError when every
    attempt failed."""
    last = ""
    for attempt, delay in enumerate(delays_s, start=1):
        health.reopening(attempt, len(delays_s))
        if stop.wait(delay):
            return None
        try:
            source = open_source()
        except SlfmError as exc:
            last = str(exc)
            health.reopen_failed(last)
            log(f"reopen {attempt} of {len(delays_s)} failed: {last}")
            continue
        return source
    raise SlfmError(
        f"source '{health.source}': gave up after {len(delays_s)} reopen attempts "
        f"({sum(delays_s):g} s); last error: {last}"
    )
