"""MessageDispatcher with real ROS messages and a classical StreamingLocalizer."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("audio_common_msgs")

from slfm_ros.core.conventions import angular_error, yaw_from_quaternion
from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate
from slfm_ros.core.events import EventLevel
from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.pipeline import PendingWindow, StreamingLocalizer, WindowResult
from slfm_ros.nodes import msg_conversions as conv
from slfm_ros.nodes.message_dispatch import MessageDispatcher
from slfm_ros.nodes.slfm_params import SLFM_NODE

NS = 1_000_000_000
START_NS = 1_700_000_000 * NS + 123_456_789  # off the hop grid
HOP_NS = NS // 10
CHUNK_S = 0.02
FRAMES = {"audio_frame_id": "ears", "odom_frame_id": "world", "camera_frame_id": "cam"}


def dispatcher() -> MessageDispatcher:
    params = SLFM_NODE.resolve({"estimator": "classic", **FRAMES})
    return MessageDispatcher(StreamingLocalizer(PipelineConfig.from_params(params)), params)


def test_a_repeated_audio_info_is_skipped_and_a_changed_one_is_adopted() -> None:
    d = dispatcher()
    first = d.feed("info", conv.make_audio_info_msg(2, 48000, "S16LE"), START_NS)
    assert not first.skipped_duplicate_info
    assert first.events == ()
    assert d.pipeline.audio_format == (2, 48000, "S16LE")

    again = d.feed("info", conv.make_audio_info_msg(2, 48000, "S16LE"), START_NS + 1)
    assert again.skipped_duplicate_info
    assert again.events == () and again.pending_windows == ()

    changed = d.feed("info", conv.make_audio_info_msg(2, 48000, "F32LE"), START_NS + 2)
    assert not changed.skipped_duplicate_info
    assert [e.code for e in changed.events] == ["audio_format_change"]
    assert d.pipeline.audio_format == (2, 48000, "F32LE")

    # A bad info after a good one is not a repeat of it: its problem is reported.
    mono = d.feed("info", conv.make_audio_info_msg(1, 48000, "F32LE"), START_NS + 3)
    assert [e.code for e in mono.events] == ["audio_channels"]
    assert d.pipeline.audio_format is None


def test_an_unreadable_image_encoding_is_an_error_event_and_the_image_is_dropped() -> None:
    d = dispatcher()
    msg = conv.rgb_to_image(np.zeros((24, 32, 3), np.uint8), START_NS, "cam")
    msg.encoding = "32FC1"
    result = d.feed("image", msg, START_NS)
    assert [(e.code, e.level, e.source) for e in result.events] == [
        ("image_encoding", EventLevel.ERROR, "image")
    ]
    assert "32FC1" in result.events[0].message
    assert result.pending_windows == ()  # nothing was buffered, so no clock and no window
    assert result.audio_frames is None and not result.skipped_duplicate_info


def test_audio_before_any_info_is_dropped_without_a_frame_count() -> None:
    d = dispatcher()
    chunk = np.zeros((960, 2), np.float32)
    result = d.feed("audio", conv.make_audio_msg(chunk, START_NS, "S16LE", "ears"), START_NS)
    assert [e.code for e in result.events] == ["audio_no_info"]
    assert result.audio_frames is None


def test_an_unknown_kind_is_refused() -> None:
    with pytest.raises(InputFormatError, match="'gps'"):
        dispatcher().feed("gps", object(), START_NS)


def test_a_stream_gives_directions_at_window_ends_and_yaws_at_image_stamps() -> None:
    stream = SyntheticStream(SyntheticScene(), duration_s=2.0, start_ns=START_NS)
    messages: list[tuple[int, str, object]] = []
    for stamp, chunk in stream.audio_chunks(CHUNK_S):
        # A chunk is sent when its last sample has been captured.
        sent = stamp + int(CHUNK_S * NS)
        messages.append((sent, "audio", conv.make_audio_msg(chunk, stamp, "S16LE", "ears")))
    for stamp in stream.image_stamps():
        image = conv.rgb_to_image(stream.image_at(stamp), stamp, "cam", encoding="bgr8")
        messages.append((stamp, "image", image))
    messages.sort(key=lambda m: (m[0], m[1]))

    d = dispatcher()
    d.feed("info", conv.make_audio_info_msg(2, 48000, "S16LE"), START_NS)
    frames: list[float] = []
    ends: list[int] = []
    directions = []
    yaws = []
    for sent, kind, msg in messages:
        result = d.feed(kind, msg, sent)
        if kind == "audio":
            assert result.audio_frames is not None
            frames.append(result.audio_frames)
        for pending in result.pending_windows:
            ends.append(pending.end_ns)
            direction = d.direction_message(pending)
            if direction is not None:
                directions.append((pending, direction))
            odometry = d.yaw_message(d.pipeline.finish_window(pending))
            if odometry is not None:
                yaws.append(odometry)

    assert set(frames) == {CHUNK_S * 48000}
    assert len(ends) >= 15 and all(e % HOP_NS == 0 for e in ends)
    assert np.all(np.diff(ends) == HOP_NS)
    assert len(directions) >= 10
    for pending, msg in directions:
        assert pending.azimuth is not None and pending.azimuth.valid
        assert conv.stamp_to_ns(msg.header.stamp) == pending.end_ns
        assert msg.header.frame_id == "ears"
        o = msg.pose.pose.orientation
        azimuth = yaw_from_quaternion(o.x, o.y, o.z, o.w)
        assert azimuth == pytest.approx(pending.azimuth.angle, abs=1e-9)
        assert abs(angular_error(azimuth, stream.scene.azimuth_rad)) < math.radians(5.0)
        assert msg.pose.covariance[35] == pending.azimuth.variance

    assert len(yaws) >= 10
    image_stamps = set(stream.image_stamps())
    first_image = stream.image_stamps()[0]
    for msg in yaws:
        stamp = conv.stamp_to_ns(msg.header.stamp)
        assert stamp in image_stamps
        assert (msg.header.frame_id, msg.child_frame_id) == ("world", "cam")
        o = msg.pose.pose.orientation
        truth = stream.yaw_at(stamp) - stream.yaw_at(first_image)
        assert abs(yaw_from_quaternion(o.x, o.y, o.z, o.w) - truth) < math.radians(1.5)


def test_windows_without_a_valid_azimuth_or_a_yaw_give_no_message() -> None:
    d = dispatcher()
    silent = AngleEstimate.invalid("silent")
    pending = PendingWindow(START_NS, silent, "silent", 1.0, 0.0, ())
    assert d.direction_message(pending) is None
    assert d.direction_message(PendingWindow(START_NS, None, "no audio", 0.0, 0.0, ())) is None
    result = WindowResult(START_NS, silent, "silent", 1.0, None, {"visual": 0.0}, ())
    assert d.yaw_message(result) is None
