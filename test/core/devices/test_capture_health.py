"""CaptureHealth: measured rate and status level of a frame source on a controlled clock."""

from __future__ import annotations

import threading

import pytest

from slfm_ros.core.devices.capture_health import (
    REOPEN_DELAYS_S,
    CaptureHealth,
    reopen_with_backoff,
)
from slfm_ros.core.errors import ConfigError, SlfmError
from slfm_ros.core.events import EventLevel


class Clock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def publish(health: CaptureHealth, clock: Clock, fps: float, seconds: float) -> None:
    """Frames at ``fps`` for ``seconds``, the first one period after the current time."""
    for _ in range(round(fps * seconds)):
        clock.t += 1.0 / fps
        health.frame_published()


def test_frames_at_the_requested_rate_are_ok_with_the_measured_rate() -> None:
    clock = Clock()
    health = CaptureHealth("/dev/video0", "device", 30.0, clock=clock)
    health.set_info("image_size", "640x480")
    publish(health, clock, 30.0, 1.0)
    first = health.report()
    publish(health, clock, 30.0, 1.0)
    report = health.report()
    assert first.level == report.level == EventLevel.OK
    assert report.message == "capturing at 30.0 fps"
    v = report.values
    assert float(v["measured_fps"]) == pytest.approx(30.0, abs=0.5)
    assert v["requested_fps"] == "30" and v["frames_published"] == "60"
    assert v["image_size"] == "640x480" and v["source"] == "/dev/video0"
    assert v["last_frame_age_s"] == "0.000" and v["read_failures"] == "0"


def test_a_rate_below_80_percent_warns_and_says_what_to_check() -> None:
    clock = Clock()
    health = CaptureHealth("0", "device", 30.0, clock=clock)
    publish(health, clock, 30.0, 1.0)
    health.report()
    publish(health, clock, 23.0, 1.0)  # 77 % of 30
    report = health.report()
    assert report.level == EventLevel.WARN
    assert "publishing 23.0 fps, below 80% of the requested 30 fps" in report.message
    assert "v4l2-ctl --list-formats-ext" in report.message
    publish(health, clock, 25.0, 1.0)  # 83 %: the last period only counts
    assert health.report().level == EventLevel.OK


def test_no_frame_for_more_than_a_second_is_an_error() -> None:
    clock = Clock()
    health = CaptureHealth("rtsp://cam/stream", "stream", 25.0, clock=clock)
    publish(health, clock, 25.0, 1.0)
    health.report()
    clock.t += 0.9
    assert health.report().level == EventLevel.WARN  # late, and the rate dropped
    clock.t += 0.3
    report = health.report()
    assert report.level == EventLevel.ERROR
    assert report.message.startswith("no frame for 1.2 s: 'rtsp://cam/stream' delivers nothing")
    assert "check the network" in report.message
    assert report.values["last_frame_age_s"] == "1.200"
    assert report.values["measured_fps"] == "0.00"


def test_a_slow_source_is_late_only_after_three_of_its_frame_periods() -> None:
    clock = Clock()
    health = CaptureHealth("clip.avi", "file", 0.5, clock=clock)
    publish(health, clock, 0.5, 20.0)
    clock.t += 5.0
    assert health.report().level == EventLevel.OK  # 10 frames over the last 20 s window
    clock.t += 1.1
    assert health.report().level == EventLevel.ERROR


def test_nothing_published_since_start_is_an_error_after_a_second() -> None:
    clock = Clock()
    health = CaptureHealth("0", "device", 30.0, clock=clock)
    clock.t += 1.5
    report = health.report()
    assert report.level == EventLevel.ERROR
    assert report.values["last_frame_age_s"] == "never"


def test_failed_reads_and_reopens_are_counted_and_reported() -> None:
    clock = Clock()
    health = CaptureHealth("0", "device", 30.0, clock=clock)
    publish(health, clock, 30.0, 1.0)
    health.report()
    health.read_failed("source '0' delivered no frame")
    health.reopening(1, 5)
    clock.t += 0.5
    report = health.report()
    assert report.level == EventLevel.WARN
    assert "reopening '0' (attempt 1 of 5" in report.message
    health.reopen_failed("cannot capture from this camera")
    health.reopening(2, 5)
    clock.t += 1.0
    report = health.report()
    assert report.level == EventLevel.ERROR
    assert report.message.startswith("no frame for 1.5 s: reopening '0' (attempt 2 of 5")
    assert "cannot capture from this camera" in report.message
    assert "no other process holds it" in report.message
    v = report.values
    assert (v["read_failures"], v["consecutive_read_failures"], v["reopen_attempts"]) == (
        "1",
        "2",
        "2",
    )
    # The source comes back: a full period of frames is OK again, the totals stay.
    publish(health, clock, 30.0, 1.0)
    report = health.report()
    assert report.level == EventLevel.OK
    assert report.values["consecutive_read_failures"] == "0"
    assert report.values["reopen_attempts"] == "2"


def test_a_source_that_cannot_be_opened_is_an_error_until_its_first_frame() -> None:
    clock = Clock()
    health = CaptureHealth("http://cam.local/video", "stream", 30.0, clock=clock)
    health.open_failed("cannot read the stream: OpenCV could not open it")
    report = health.report()  # at once, not only after the stall time
    assert report.level == EventLevel.ERROR
    assert report.message.startswith(
        "the source cannot be opened: cannot read the stream: OpenCV could not open it"
    )
    assert "check the network" in report.message
    health.reopening(1, 5)
    health.reopen_failed("connection refused")
    health.reopening(2, 5)
    clock.t += 1.5
    report = health.report()
    assert report.level == EventLevel.ERROR
    assert "cannot be opened: connection refused; retrying (attempt 2 of 5)" in report.message
    assert report.values["frames_published"] == "0"
    assert report.values["reopen_attempts"] == "2"
    # Opened late, at the source's own 10 fps: judged against that rate, not the 30 assumed.
    health.set_requested_fps(10.0)
    publish(health, clock, 10.0, 1.0)
    health.report()
    publish(health, clock, 10.0, 1.0)
    report = health.report()
    assert report.level == EventLevel.OK, report.message
    assert float(report.values["measured_fps"]) == pytest.approx(10.0, abs=1.1)
    assert report.values["requested_fps"] == "10"
    with pytest.raises(ValueError, match="requested_fps"):
        health.set_requested_fps(0.0)


def test_a_failed_read_that_recovers_within_the_period_warns_once() -> None:
    clock = Clock()
    health = CaptureHealth("0", "device", 30.0, clock=clock)
    publish(health, clock, 30.0, 1.0)
    health.report()
    publish(health, clock, 30.0, 0.5)
    health.read_failed("source '0' delivered no frame")
    health.reopening(1, 5)
    publish(health, clock, 30.0, 0.5)
    report = health.report()
    assert report.level == EventLevel.WARN
    assert report.message.startswith("1 frame read(s) failed since the last report")
    publish(health, clock, 30.0, 1.0)
    assert health.report().level == EventLevel.OK


def test_finished_overrides_the_rate_and_stall_checks() -> None:
    clock = Clock()
    health = CaptureHealth("0", "device", 30.0, clock=clock)
    health.finished(EventLevel.ERROR, "stopped: gave up")
    clock.t += 5.0
    report = health.report()
    assert (report.level, report.message) == (EventLevel.ERROR, "stopped: gave up")
    assert report.values["last_error"] == "stopped: gave up"


def test_requested_fps_must_be_positive() -> None:
    with pytest.raises(ValueError, match="requested_fps"):
        CaptureHealth("0", "device", 0.0)


def test_reopen_with_backoff_retries_until_the_source_opens() -> None:
    health = CaptureHealth("0", "device", 30.0)
    outcomes: list[object] = [ConfigError("not there"), ConfigError("still not"), "source"]
    logged: list[str] = []

    def open_source() -> str:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return str(outcome)

    got = reopen_with_backoff(open_source, health, threading.Event(), logged.append, (0.0,) * 4)
    assert got == "source"
    assert logged == ["reopen 1 of 4 failed: not there", "reopen 2 of 4 failed: still not"]
    v = health.report().values
    assert (v["reopen_attempts"], v["consecutive_read_failures"]) == ("3", "2")


def test_reopen_with_backoff_gives_up_and_stops_on_request() -> None:
    health = CaptureHealth("0", "device", 30.0)

    def never() -> str:
        raise ConfigError("no camera")

    with pytest.raises(SlfmError, match=r"gave up after 3 reopen attempts.*no camera"):
        reopen_with_backoff(never, health, threading.Event(), lambda _: None, (0.0,) * 3)
    stop = threading.Event()
    stop.set()
    assert reopen_with_backoff(never, health, stop, lambda _: None) is None
    assert len(REOPEN_DELAYS_S) == 5 and sum(REOPEN_DELAYS_S) < 20.0
