"""HealthMonitor bookkeeping and the DiagnosticArray built from it."""

from __future__ import annotations

import math

import pytest
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.serialization import deserialize_message, serialize_message

from slfm_ros.core.events import EventLevel, PipelineEvent
from slfm_ros.nodes.diagnostics import (
    HealthMonitor,
    LatencyTracker,
    RateMeter,
    to_diagnostic_array,
)


class FakeClock:
    """A settable monotonic clock (seconds)."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_latency_percentiles_in_milliseconds() -> None:
    tracker = LatencyTracker(size=100)
    assert math.isnan(tracker.percentile_ms(50))
    for i in range(1, 201):  # only the last 100 (0.101 .. 0.200 s) are kept
        tracker.add(i / 1000)
    assert len(tracker) == 100
    assert tracker.percentile_ms(50) == pytest.approx(150.5)
    assert tracker.percentile_ms(99) == pytest.approx(199.01)


def test_rate_meter_counts_per_second_over_its_horizon() -> None:
    clock = FakeClock()
    meter = RateMeter(horizon_s=5.0, clock=clock)
    for _ in range(50):
        clock.now += 0.1
        meter.tick(960)
    assert meter.rate() == pytest.approx(9600.0)
    clock.now += 10.0
    assert meter.rate() == 0.0


def test_status_level_holds_recent_events_then_returns_to_the_condition() -> None:
    clock = FakeClock()
    health = HealthMonitor(hold_s=5.0, clock=clock)
    health.set_condition("estimator", EventLevel.WARN, "classical fallback: no model")
    health.record_event(PipelineEvent.warn("audio", "audio_gap", "gap of 100 ms"))
    health.record_event(PipelineEvent.error("audio", "audio_non_finite", "NaN samples"))
    health.record_event(PipelineEvent.warn("audio", "audio_gap", "gap of 20 ms"))
    reports = {r.source: r for r in health.reports()}
    audio = reports["audio"]
    assert audio.level == EventLevel.ERROR and audio.message == "NaN samples"
    assert audio.values["events.audio_gap"] == "2"
    assert audio.values["last_error"] == "NaN samples"
    assert audio.values["last_warning"] == "gap of 20 ms"
    assert reports["estimator"].level == EventLevel.WARN
    assert reports["image"].level == EventLevel.OK and reports["image"].message == "ok"

    clock.now += 6.0
    reports = {r.source: r for r in health.reports()}
    assert reports["audio"].level == EventLevel.OK  # events expired, counts stay
    assert reports["audio"].values["events.audio_gap"] == "2"
    assert reports["estimator"].message == "classical fallback: no model"


def test_diagnostic_array_message() -> None:
    health = HealthMonitor()
    health.set_info("estimator", "backend", "classic")
    health.add_latency("pipeline", "end_to_end", 0.012)
    health.count("pipeline", "windows_produced", 3)
    health.record_event(PipelineEvent.error("image", "image_encoding", "bayer"))
    msg = to_diagnostic_array(health.reports(), 5_000_000_001, "slfm_node")
    wire = deserialize_message(serialize_message(msg), DiagnosticArray)
    assert wire.header.stamp.sec == 5 and wire.header.stamp.nanosec == 1
    names = [s.name for s in wire.status]
    assert names == [
        "slfm_node: audio input",
        "slfm_node: image input",
        "slfm_node: estimators",
        "slfm_node: pipeline",
        "slfm_node: sound tracking",
    ]
    image, estimator, pipeline = wire.status[1], wire.status[2], wire.status[3]
    assert image.level == b"\x02" and image.message == "bayer"
    assert {kv.key: kv.value for kv in estimator.values}["backend"] == "classic"
    values = {kv.key: kv.value for kv in pipeline.values}
    assert values["windows_produced"] == "3"
    assert values["latency.end_to_end.p50_ms"] == "12.00"
