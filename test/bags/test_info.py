"""``slfm bag info``: counts, rates and stamp gaps."""

from __future__ import annotations

from pathlib import Path

from slfm_ros.bags.info import bag_info
from slfm_ros.bags.reader import MessageTypes
from slfm_ros.bags.topics import DEFAULT_TOPICS
from slfm_ros.nodes import msg_conversions as conv

T = DEFAULT_TOPICS


def rows(info: dict) -> dict[str, dict]:
    return {r["topic"]: r for r in info["topics"]}


def test_info_of_a_clean_bag(sqlite_bag: Path, slfm) -> None:
    result = slfm(["bag", "info", str(sqlite_bag), "--json"])
    assert result.code == 0, result.err
    info = result.json()
    assert info["storage"] == "sqlite3" and info["damage"] is None
    assert info["duration_s"] > 3.9
    by_topic = rows(info)
    audio = by_topic[T.audio]
    assert audio["type"] == "audio_common_msgs/msg/AudioDataStamped"
    assert audio["count"] == 200 and abs(audio["rate_hz"] - 50.0) < 0.5
    assert audio["audio_format"] == "2 ch, 48000 Hz, S16LE, wave"
    assert audio["chunk_ms"] == 20.0
    assert audio["audio_gaps"] == 0 and audio["audio_overlaps"] == 0
    image = by_topic[T.image]
    assert image["stamp_gaps"] == 0 and image["stamps_backwards"] == 0
    assert abs(image["stamp_rate_hz"] - 15.0) < 0.01
    text = slfm(["bag", "info", str(sqlite_bag)]).out
    assert "/camera/image_raw" in text and "gaps 0" in text


def test_info_reports_audio_gaps_and_stamps_going_backwards(
    mcap_bag: Path, tmp_path: Path, bag_copy
) -> None:
    types = MessageTypes()
    dropped = {37, 38, 90}  # two neighbouring chunks and one more
    index = {"audio": -1, "image": -1}

    def keep(m) -> bool:
        if m.topic == T.audio:
            index["audio"] += 1
            return index["audio"] not in dropped
        return True

    def change(m) -> bytes:
        if m.topic != T.image:
            return m.raw
        index["image"] += 1
        if index["image"] != 20:
            return m.raw
        msg = types.decode(m)
        msg.header.stamp = conv.ns_to_stamp(conv.stamp_to_ns(msg.header.stamp) - 500_000_000)
        from rclpy.serialization import serialize_message

        return serialize_message(msg)

    damaged = bag_copy(mcap_bag, tmp_path / "gaps", keep, change)
    by_topic = rows(bag_info(damaged))
    audio = by_topic[T.audio]
    assert audio["count"] == 197
    assert audio["audio_gaps"] == 2
    assert abs(audio["max_audio_gap_s"] - 0.04) < 1e-6
    assert by_topic[T.image]["stamps_backwards"] == 1
