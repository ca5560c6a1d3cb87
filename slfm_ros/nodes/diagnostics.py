"""Health bookkeeping of slfm_node and its /diagnostics message.

``HealthMonitor`` is thread-safe and ROS-free: the processing thread records events, counters,
rates and latencies; the diagnostics timer turns a snapshot into a DiagnosticArray with one
status per source (audio input, image input, estimators, pipeline, sound tracking).

A status is at the highest level of (a) its standing condition (e.g. "running on the classical
fallback") and (b) the events of its source in the last ``hold_s`` seconds, so a one-off problem
stays visible for a few publish periods instead of a single message.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from slfm_ros.core.events import SOURCES, EventLevel, PipelineEvent
from slfm_ros.nodes.msg_conversions import ns_to_stamp

_TITLES = {
    "audio": "audio input",
    "image": "image input",
    "estimator": "estimators",
    "pipeline": "pipeline",
    "tracking": "sound tracking",
}


class LatencyTracker:
    """The last ``size`` durations (seconds); percentiles in milliseconds."""

    def __init__(self, size: int = 1000) -> None:
        self._values: deque[float] = deque(maxlen=size)

    def add(self, seconds: float) -> None:
        self._values.append(float(seconds))

    def __len__(self) -> int:
        return len(self._values)

    def percentile_ms(self, q: float) -> float:
        """q in [0, 100]; NaN when nothing was recorded."""
        if not self._values:
            return float("nan")
        return float(np.percentile(np.fromiter(self._values, dtype=np.float64), q) * 1e3)


class RateMeter:
    """Events per second over the last ``horizon_s`` seconds of ``clock`` time."""

    def __init__(self, horizon_s: float = 5.0, clock: Callable[[], float] = time.monotonic):
        self._horizon = horizon_s
        self._clock = clock
        self._ticks: deque[tuple[float, float]] = deque()
        self._start = clock()

    def tick(self, amount: float = 1.0) -> None:
        now = self._clock()
        self._ticks.append((now, amount))
        self._trim(now)

    def rate(self) -> float:
        now = self._clock()
        self._trim(now)
        span = min(self._horizon, now - self._start)
        if span <= 0:
            return 0.0
        return sum(a for _, a in self._ticks) / span

    def _trim(self, now: float) -> None:
        while self._ticks and self._ticks[0][0] < now - self._horizon:
            self._ticks.popleft()


@dataclass
class StatusReport:
    """One status entry: level, message and key/values (all text)."""

    source: str
    level: EventLevel
    message: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass
class _SourceState:
    counters: dict[str, int] = field(default_factory=dict)
    info: dict[str, str] = field(default_factory=dict)
    rates: dict[str, RateMeter] = field(default_factory=dict)
    latencies: dict[str, LatencyTracker] = field(default_factory=dict)
    recent: deque[tuple[float, PipelineEvent]] = field(default_factory=deque)
    condition: tuple[EventLevel, str] = (EventLevel.OK, "")
    last_error: str = ""
    last_warning: str = ""


class HealthMonitor:
    """Counters, rates, latencies and events of each source, safe to use from two threads."""

    def __init__(self, hold_s: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._hold_s = hold_s
        self._clock = clock
        self._lock = threading.Lock()
        self._states = {s: _SourceState() for s in SOURCES}

    def record_event(self, event: PipelineEvent) -> None:
        with self._lock:
            st = self._states[event.source]
            st.recent.append((self._clock(), event))
            key = f"events.{event.code}"
            st.counters[key] = st.counters.get(key, 0) + 1
            if event.level >= EventLevel.ERROR:
                st.last_error = event.message
            elif event.level >= EventLevel.WARN:
                st.last_warning = event.message

    def count(self, source: str, name: str, amount: int = 1) -> None:
        with self._lock:
            counters = self._states[source].counters
            counters[name] = counters.get(name, 0) + amount

    def tick(self, source: str, name: str, amount: float = 1.0) -> None:
        """Adds ``amount`` to the rate meter ``name`` (reported per second)."""
        with self._lock:
            rates = self._states[source].rates
            if name not in rates:
                rates[name] = RateMeter(clock=self._clock)
            rates[name].tick(amount)

    def add_latency(self, source: str, stage: str, seconds: float) -> None:
        with self._lock:
            lat = self._states[source].latencies
            if stage not in lat:
                lat[stage] = LatencyTracker()
            lat[stage].add(seconds)

    def set_info(self, source: str, key: str, value: str) -> None:
        with self._lock:
            self._states[source].info[key] = value

    def set_condition(self, source: str, level: EventLevel, message: str) -> None:
        """A standing state of ``source`` reported until replaced (OK clears it)."""
        with self._lock:
            self._states[source].condition = (level, message)

    def counter(self, source: str, name: str) -> int:
        with self._lock:
            return self._states[source].counters.get(name, 0)

    def latency_ms(self, source: str, stage: str, q: float) -> float:
        with self._lock:
            tracker = self._states[source].latencies.get(stage)
            return tracker.percentile_ms(q) if tracker else float("nan")

    def reports(self) -> list[StatusReport]:
        """One StatusReport per source, in SOURCES order."""
        now = self._clock()
        out = []
        with self._lock:
            for source in SOURCES:
                st = self._states[source]
                while st.recent and st.recent[0][0] < now - self._hold_s:
                    st.recent.popleft()
                level, message = st.condition
                for _, event in st.recent:
                    if event.level >= level:
                        level, message = event.level, event.message
                values = dict(st.info)
                values.update({k: str(v) for k, v in sorted(st.counters.items())})
                values.update({k: f"{m.rate():.2f}" for k, m in sorted(st.rates.items())})
                for stage, tracker in sorted(st.latencies.items()):
                    values[f"latency.{stage}.p50_ms"] = f"{tracker.percentile_ms(50):.2f}"
                    values[f"latency.{stage}.p99_ms"] = f"{tracker.percentile_ms(99):.2f}"
                values["last_error"] = st.last_error
                values["last_warning"] = st.last_warning
                out.append(StatusReport(source, level, message or "ok", values))
        return out


def to_diagnostic_array(
    reports: list[StatusReport], stamp_ns: int, node_name: str, hardware_id: str = "slfm_ros"
) -> DiagnosticArray:
    """DiagnosticArray with a status named ``"<node_name>: <source title>"`` per report."""
    msg = DiagnosticArray()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    for r in reports:
        status = DiagnosticStatus()
        status.level = bytes([int(r.level)])
        status.name = f"{node_name}: {_TITLES.get(r.source, r.source)}"
        status.message = r.message
        status.hardware_id = hardware_id
        status.values = [KeyValue(key=k, value=v) for k, v in r.values.items()]
        msg.status.append(status)
    return msg
