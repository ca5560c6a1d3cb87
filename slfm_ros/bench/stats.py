"""Timing helpers shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np


def percentile_ms(samples_s: Sequence[float], q: float) -> float:
    """The q-th percentile of durations given in seconds, in milliseconds (NaN when empty)."""
    if len(samples_s) == 0:
        return float("nan")
    return float(np.percentile(np.asarray(samples_s, dtype=np.float64), q) * 1e3)


def time_calls(call: Callable[[], Any], iterations: int, warmup: int) -> list[float]:
    """Wall-clock durations (s) of ``iterations`` calls after ``warmup`` untimed ones."""
    return time_calls_cpu(call, iterations, warmup)[0]


def time_calls_cpu(
    call: Callable[[], Any], iterations: int, warmup: int
) -> tuple[list[float], list[float]]:
    """(wall-clock, process CPU) durations (s) of ``iterations`` calls after ``warmup``.

    The CPU time of the whole process (every library thread) is far less sensitive than the
    wall clock to other programs competing for the cores; with one compute thread and an idle
    machine the two agree.
    """
    for _ in range(warmup):
        call()
    wall, cpu = [], []
    for _ in range(iterations):
        started, started_cpu = time.perf_counter(), time.process_time()
        call()
        wall.append(time.perf_counter() - started)
        cpu.append(time.process_time() - started_cpu)
    return wall, cpu


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo, else platform.processor()."""
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def load_average() -> float | None:
    """1-minute load average (None where the platform has none)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def machine_info() -> dict[str, Any]:
    """CPU model, logical cores and the 1-minute load average when the run started (a busy
    machine inflates every figure)."""
    info: dict[str, Any] = {
        "cpu": cpu_name(),
        "logical_cores": os.cpu_count(),
        "platform": platform.platform(),
    }
    info["load_average_1min"] = load_average()
    return info
