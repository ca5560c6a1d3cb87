"""The robot's recent yaw, to bring a bearing measured at one moment to another.

``YawHistory`` holds (time, yaw) samples, unwrapped as they arrive, and answers the yaw at any
time within them (linear interpolation) and the turn between two times. Samples that run
backward in time are refused (the caller reports them); a sample that jumps by more than
``max_jump`` from its neighbour restarts the history, because a turn across such a jump
cannot be trusted.
"""

from __future__ import annotations

import bisect
import math
from collections import deque

from slfm_ros.core.conventions import wrap_angle


class YawHistory:
    """Recent yaw samples (seconds, radians) of ``span_s`` seconds (see module doc)."""

    def __init__(self, span_s: float = 5.0, max_jump: float = math.radians(45.0)) -> None:
        self.span_s = float(span_s)
        self.max_jump = float(max_jump)
        self._times: deque[float] = deque()
        self._yaws: deque[float] = deque()
        self.restarts = 0

    def __len__(self) -> int:
        return len(self._times)

    @property
    def latest_time(self) -> float | None:
        return self._times[-1] if self._times else None

    @property
    def latest_yaw(self) -> float | None:
        """Unwrapped yaw of the newest sample."""
        return self._yaws[-1] if self._yaws else None

    def add(self, t: float, yaw: float) -> str:
        """Add a sample; returns "" or why it was refused or restarted the history."""
        if not (math.isfinite(t) and math.isfinite(yaw)):
            return f"yaw sample ({t}, {yaw}) is not finite: ignored"
        if self._times:
            last_t, last_yaw = self._times[-1], self._yaws[-1]
            if t < last_t:
                return (
                    f"yaw sample at {t:.3f} s is older than the last one ({last_t:.3f} s): ignored"
                )
            step = float(wrap_angle(yaw - last_yaw))
            if abs(step) > self.max_jump:
                self.clear()
                self.restarts += 1
                self._append(t, float(yaw))
                return (
                    f"yaw jumped by {math.degrees(step):.0f} deg between samples: turn history "
                    "restarted"
                )
            if t == last_t:
                return ""
            self._append(t, last_yaw + step)
        else:
            self._append(t, float(yaw))
        return ""

    def _append(self, t: float, yaw: float) -> None:
        self._times.append(float(t))
        self._yaws.append(yaw)
        while self._times and self._times[0] < t - self.span_s:
            self._times.popleft()
            self._yaws.popleft()

    def clear(self) -> None:
        self._times.clear()
        self._yaws.clear()

    def yaw_at(self, t: float) -> float | None:
        """Unwrapped yaw at ``t``, or None when ``t`` lies outside the samples (a little past
        the newest one is allowed: held)."""
        if not self._times or t < self._times[0]:
            return None
        times = self._times
        if t >= times[-1]:
            return self._yaws[-1]
        i = bisect.bisect_right(times, t)
        t0, t1 = times[i - 1], times[i]
        y0, y1 = self._yaws[i - 1], self._yaws[i]
        a = (t - t0) / (t1 - t0) if t1 > t0 else 0.0
        return y0 + a * (y1 - y0)

    def turn_since(self, t: float) -> float | None:
        """Yaw change from ``t`` to the newest sample (radians, left positive), or None."""
        then = self.yaw_at(t)
        if then is None or not self._yaws:
            return None
        return self._yaws[-1] - then
