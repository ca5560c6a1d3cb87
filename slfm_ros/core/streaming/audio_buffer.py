"""Sliding-window buffer of multichannel audio keyed by capture timestamps.

Time line
    Stamps are integer nanoseconds and give the capture time of the FIRST sample of a chunk.
    Sample ``n`` (a running index since the last reset) has time
    ``anchor_ns + (n - anchor_index) / sample_rate``; the anchor is moved to every accepted
    chunk, so the newest chunk's stamp defines the time line and slow drift between the audio
    clock and the stamping clock never accumulates. A window's ``end_ns`` is the time just after
    its last sample (exclusive end), so consecutive windows tile without overlap.

Discontinuities (deviation = stamp - expected stamp, expected = newest_end_ns)
    |deviation| <= gap_tolerance_s      contiguous: appended as is (stamp jitter absorbed).
    gap up to max_fill_s                zeros fill the gap; ``PushResult.gap_s`` > 0 and the
                                        filled share of a window is reported as fill_fraction.
    gap beyond max_fill_s or capacity   reset, then the chunk starts a new time line;
                                        ``gap_s`` > 0, ``reset`` True.
    overlap (stamp earlier)             the samples already covered are dropped
                                        (``overlap_s``); a chunk covered entirely is dropped
                                        (out of order / duplicate, ``accepted`` False).
    backward jump beyond max_fill_s     the clock restarted (bag loop, sim time): reset;
                                        ``gap_s`` < 0, ``reset`` True.
Chunks holding NaN or Inf are rejected whole; the next chunk then sees a gap that is zero-filled.

Storage is one preallocated (capacity, channels) float32 array written circularly, so a push
costs a copy of the chunk and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import InputFormatError, SlfmError

_NS_PER_S = 1_000_000_000


class WindowUnavailable(SlfmError):
    """The requested window is not (or no longer) fully inside the buffer."""


@dataclass(frozen=True)
class PushResult:
    """Outcome of one push (or of a reconfigure).

    accepted:  True when at least one sample of the chunk entered the buffer.
    gap_s:     signed stamp discontinuity in seconds: > 0 for a gap (zero-filled, or a reset
               when too long), < 0 for a backward clock jump that reset; 0 otherwise.
    overlap_s: seconds of the chunk dropped because the buffer already covered them.
    reset:     True when the buffer was cleared before this chunk.
    reason:    empty for an ordinary contiguous push, else a short description.
    """

    accepted: bool
    gap_s: float = 0.0
    overlap_s: float = 0.0
    reset: bool = False
    reason: str = ""


@dataclass(frozen=True)
class AudioWindow:
    """A window cut from the buffer.

    audio:         (frames, channels) float32 copy.
    start_ns:      capture time of the first sample.
    end_ns:        time just after the last sample (start_ns + frames / sample_rate).
    fill_fraction: share of the frames that are zeros inserted for gaps, 0..1.
    """

    audio: npt.NDArray[np.float32]
    start_ns: int
    end_ns: int
    fill_fraction: float


class TimedAudioBuffer:
    """Ring buffer of (frames, channels) float32 audio with a capture-time axis.

    channels:        channel count every chunk must have.
    sample_rate:     Hz.
    capacity_s:      seconds of history kept.
    gap_tolerance_s: stamp jitter treated as contiguous.
    max_fill_s:      longest gap filled with zeros; longer gaps (or backward jumps) reset.
    """

    def __init__(
        self,
        channels: int,
        sample_rate: int,
        capacity_s: float,
        gap_tolerance_s: float = 0.005,
        max_fill_s: float = 0.5,
    ) -> None:
        if gap_tolerance_s < 0 or max_fill_s < 0:
            raise InputFormatError(
                f"gap_tolerance_s and max_fill_s must be >= 0, got {gap_tolerance_s}, {max_fill_s}"
            )
        self._capacity_s = float(capacity_s)
        self._tolerance_ns = round(gap_tolerance_s * _NS_PER_S)
        self._max_fill_ns = round(max_fill_s * _NS_PER_S)
        self._allocate(channels, sample_rate)

    # ------------------------------------------------------------------ configuration
    def _allocate(self, channels: int, sample_rate: int) -> None:
        if channels < 1 or sample_rate <= 0 or int(sample_rate) != sample_rate:
            raise InputFormatError(
                f"need channels >= 1 and a positive integer sample_rate, got {channels} "
                f"channel(s) at {sample_rate} Hz"
            )
        capacity = round(self._capacity_s * sample_rate)
        if capacity < 1:
            raise InputFormatError(f"capacity_s={self._capacity_s} holds no sample")
        self._channels = int(channels)
        self._rate = int(sample_rate)
        self._capacity = capacity
        self._data = np.zeros((capacity, self._channels), dtype=np.float32)
        self._filled = np.zeros(capacity, dtype=bool)
        self.clear()

    def clear(self) -> None:
        """Forget all samples and the time line."""
        self._total = 0  # samples written since the last reset
        self._anchor_ns: int | None = None
        self._anchor_index = 0

    def reconfigure(self, sample_rate: int, channels: int) -> PushResult:
        """Adopt a new format; the buffer resets when either value changes."""
        if sample_rate == self._rate and channels == self._channels:
            return PushResult(accepted=False, reason="format unchanged")
        reason = (
            f"format changed from {self._channels} ch at {self._rate} Hz "
            f"to {channels} ch at {sample_rate} Hz"
        )
        self._allocate(channels, sample_rate)
        return PushResult(accepted=False, reset=True, reason=reason)

    @property
    def channels(self) -> int:
        return self._channels

    @property
    def sample_rate(self) -> int:
        return self._rate

    @property
    def capacity_frames(self) -> int:
        return self._capacity

    @property
    def buffered_frames(self) -> int:
        """Frames currently held (including zero-filled gaps)."""
        return min(self._total, self._capacity)

    @property
    def buffered_s(self) -> float:
        return self.buffered_frames / self._rate

    @property
    def newest_end_ns(self) -> int | None:
        """Time just after the newest sample; None while the buffer is empty."""
        if self._anchor_ns is None:
            return None
        return self._time_of(self._total)

    @property
    def oldest_start_ns(self) -> int | None:
        """Capture time of the oldest sample held; None while the buffer is empty."""
        if self._anchor_ns is None:
            return None
        return self._time_of(self._total - self.buffered_frames)

    # ------------------------------------------------------------------ time <-> index
    def _time_of(self, index: int) -> int:
        assert self._anchor_ns is not None
        offset = (index - self._anchor_index) * _NS_PER_S
        # Round half up with integer arithmetic so stamps stay exact for any rate.
        return self._anchor_ns + (2 * offset + self._rate) // (2 * self._rate)

    def _index_of(self, time_ns: int) -> int:
        assert self._anchor_ns is not None
        offset = (int(time_ns) - self._anchor_ns) * self._rate
        return self._anchor_index + (2 * offset + _NS_PER_S) // (2 * _NS_PER_S)

    # ------------------------------------------------------------------ writing
    def push(self, samples: npt.ArrayLike, stamp_ns: int) -> PushResult:
        """Append a (frames, channels) chunk whose first sample was captured at ``stamp_ns``."""
        chunk = np.asarray(samples, dtype=np.float32)
        if chunk.ndim != 2 or chunk.shape[1] != self._channels:
            raise InputFormatError(
                f"expected audio of shape (frames, {self._channels}), got {chunk.shape}: "
                "call reconfigure() when the channel count changes"
            )
        n = chunk.shape[0]
        if n == 0:
            return PushResult(accepted=False, reason="empty chunk")
        if not np.isfinite(chunk).all():
            return PushResult(accepted=False, reason="non-finite samples")
        stamp_ns = int(stamp_ns)

        if self._anchor_ns is None:
            self._start_line(stamp_ns)
            self._write(chunk, filled=False)
            return PushResult(accepted=True, reason="first chunk")

        expected = self._time_of(self._total)
        deviation = stamp_ns - expected
        if abs(deviation) <= self._tolerance_ns:
            self._anchor_ns, self._anchor_index = stamp_ns, self._total
            self._write(chunk, filled=False)
            return PushResult(accepted=True)

        if deviation > 0:
            return self._push_after_gap(chunk, stamp_ns, deviation)
        return self._push_overlapping(chunk, stamp_ns, -deviation)

    def _push_after_gap(self, chunk: np.ndarray, stamp_ns: int, gap_ns: int) -> PushResult:
        gap_s = gap_ns / _NS_PER_S
        gap_frames = round(gap_s * self._rate)
        if gap_ns > self._max_fill_ns or gap_frames >= self._capacity:
            self._start_line(stamp_ns)
            self._write(chunk, filled=False)
            return PushResult(
                accepted=True, gap_s=gap_s, reset=True, reason=f"gap of {gap_s:.3f} s: reset"
            )
        self._write(np.zeros((gap_frames, self._channels), dtype=np.float32), filled=True)
        self._anchor_ns, self._anchor_index = stamp_ns, self._total
        self._write(chunk, filled=False)
        return PushResult(accepted=True, gap_s=gap_s, reason=f"gap of {gap_s:.4f} s zero-filled")

    def _push_overlapping(self, chunk: np.ndarray, stamp_ns: int, back_ns: int) -> PushResult:
        n = chunk.shape[0]
        back_s = back_ns / _NS_PER_S
        chunk_ns = n * _NS_PER_S // self._rate
        if back_ns - chunk_ns > self._max_fill_ns:
            # The whole chunk lies far in the past: the stamping clock jumped back.
            self._start_line(stamp_ns)
            self._write(chunk, filled=False)
            return PushResult(
                accepted=True,
                gap_s=-back_s,
                reset=True,
                reason=f"time jumped back by {back_s:.3f} s: reset",
            )
        covered = round(back_s * self._rate)
        if covered >= n:
            return PushResult(
                accepted=False,
                overlap_s=n / self._rate,
                reason="out-of-order chunk dropped (already covered)",
            )
        self._anchor_ns = self._time_of(self._total)
        self._anchor_index = self._total
        self._write(chunk[covered:], filled=False)
        return PushResult(
            accepted=True,
            overlap_s=covered / self._rate,
            reason=f"overlap of {covered} frame(s) trimmed",
        )

    def _start_line(self, stamp_ns: int) -> None:
        self.clear()
        self._anchor_ns, self._anchor_index = stamp_ns, 0

    def _write(self, chunk: np.ndarray, filled: bool) -> None:
        n = chunk.shape[0]
        if n > self._capacity:
            # Only the newest capacity frames can survive; skip the rest without copying.
            self._total += n - self._capacity
            chunk = chunk[n - self._capacity :]
            n = self._capacity
        start = self._total % self._capacity
        first = min(n, self._capacity - start)
        self._data[start : start + first] = chunk[:first]
        self._filled[start : start + first] = filled
        if first < n:
            self._data[: n - first] = chunk[first:]
            self._filled[: n - first] = filled
        self._total += n

    # ------------------------------------------------------------------ reading
    def window(self, end_ns: int, duration_s: float) -> AudioWindow:
        """The ``duration_s`` seconds of audio ending at ``end_ns`` (nearest sample boundary).

        Raises WindowUnavailable when any part is not yet buffered or already overwritten.
        """
        if self._anchor_ns is None:
            raise WindowUnavailable("no audio buffered yet: wait for the first audio chunk")
        frames = round(duration_s * self._rate)
        if frames < 1:
            raise WindowUnavailable(f"duration {duration_s} s holds no sample at {self._rate} Hz")
        if frames > self._capacity:
            raise WindowUnavailable(
                f"window of {duration_s} s exceeds the buffer capacity of "
                f"{self._capacity / self._rate} s: raise the buffer capacity"
            )
        end = self._index_of(end_ns)
        return self._cut(end - frames, end)

    def latest_window(self, duration_s: float) -> AudioWindow:
        """The newest ``duration_s`` seconds."""
        newest = self.newest_end_ns
        if newest is None:
            raise WindowUnavailable("no audio buffered yet: wait for the first audio chunk")
        return self.window(newest, duration_s)

    def _cut(self, start: int, end: int) -> AudioWindow:
        oldest = self._total - self.buffered_frames
        if end > self._total:
            late = (end - self._total) / self._rate
            raise WindowUnavailable(
                f"window ends {late:.4f} s after the newest buffered sample: audio not yet arrived"
            )
        if start < oldest:
            early = (oldest - start) / self._rate
            raise WindowUnavailable(
                f"window starts {early:.4f} s before the oldest buffered sample "
                "(overwritten, or before the last reset)"
            )
        s0 = start % self._capacity
        if s0 + (end - start) <= self._capacity:
            audio = self._data[s0 : s0 + end - start].copy()
            filled = self._filled[s0 : s0 + end - start]
        else:
            idx = np.arange(start, end) % self._capacity
            audio = self._data[idx]
            filled = self._filled[idx]
        return AudioWindow(
            audio=audio,
            start_ns=self._time_of(start),
            end_ns=self._time_of(end),
            fill_fraction=float(filled.mean()),
        )
