"""Bags written from a scene read back (both storage formats) with the data and truth intact."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from slfm_ros.bags.reader import MessageTypes, open_bag
from slfm_ros.bags.scenarios import RenderedScene
from slfm_ros.bags.topics import DEFAULT_TOPICS
from slfm_ros.bags.writer import BagWriter, slfm_typestore
from slfm_ros.core.conventions import yaw_from_quaternion
from slfm_ros.core.dsp.audio_format import decode_interleaved
from slfm_ros.core.errors import ConfigError
from slfm_ros.nodes import msg_conversions as conv

NS = 1_000_000_000


@pytest.fixture(params=["mcap", "sqlite3"])
def bag(request: pytest.FixtureRequest, mcap_bag: Path, sqlite_bag: Path) -> Path:
    return mcap_bag if request.param == "mcap" else sqlite_bag


def test_metadata_is_rosbag2_version_9_with_every_topic(bag: Path, scene: RenderedScene) -> None:
    meta = yaml.safe_load((bag / "metadata.yaml").read_text())["rosbag2_bagfile_information"]
    assert meta["version"] == 9
    assert meta["storage_identifier"] == ("mcap" if bag.name.endswith("mcap") else "sqlite3")
    counts = {
        t["topic_metadata"]["name"]: t["message_count"] for t in meta["topics_with_message_count"]
    }
    chunks = int(scene.seconds / 0.02)
    frames = int(scene.seconds * 15)
    odometry = int(scene.seconds * 50)
    t = DEFAULT_TOPICS
    assert counts == {
        t.audio_info: 1,
        t.audio: chunks,
        t.image: frames,
        t.camera_info: frames,
        t.odom: odometry,
        t.truth_direction: chunks,
        t.truth_yaw: frames,
    }


def test_messages_read_back_in_record_order_with_the_scene_data(
    bag: Path, scene: RenderedScene
) -> None:
    types = MessageTypes()
    t = DEFAULT_TOPICS
    with open_bag(bag) as reader:
        assert reader.damage is None
        assert reader.duration_s == pytest.approx(scene.seconds, abs=0.05)
        messages = list(reader.messages())
    assert [m.log_ns for m in messages] == sorted(m.log_ns for m in messages)
    first_info = next(m for m in messages if m.topic == t.audio_info)
    assert messages.index(first_info) == 0  # the format comes before any audio
    info = conv.audio_info_fields(types.decode(first_info))
    assert (info.channels, info.sample_rate, info.sample_format) == (2, 48000, "S16LE")

    audio = [types.decode(m) for m in messages if m.topic == t.audio]
    data, stamp = conv.audio_payload(audio[10])
    np.testing.assert_allclose(
        decode_interleaved(data, "S16LE", 2), scene.audio[9600:10560], atol=1.0 / 32768
    )
    assert stamp == scene.settings.start_ns + 10 * NS // 50

    truth = [types.decode(m) for m in messages if m.topic == t.truth_direction]
    o = truth[100].pose.pose.orientation
    assert yaw_from_quaternion(o.x, o.y, o.z, o.w) == pytest.approx(
        float(scene.source_azimuth(2.0)), abs=1e-9
    )
    images = [m for m in messages if m.topic == t.image]
    image = types.decode(images[3])
    assert conv.stamp_to_ns(image.header.stamp) == scene.settings.start_ns + round(3 * NS / 15)
    assert images[3].log_ns > conv.stamp_to_ns(image.header.stamp)  # recorded after exposure
    np.testing.assert_array_equal(conv.image_to_rgb(image), scene.image_at(3 / 15))
    yaws = [types.decode(m) for m in messages if m.topic == t.truth_yaw]
    o = yaws[3].pose.pose.orientation
    assert yaw_from_quaternion(o.x, o.y, o.z, o.w) == pytest.approx(float(scene.yaw(0.2)))
    assert yaws[3].twist.twist.angular.z == pytest.approx(float(scene.yaw_rate(0.2)))


def test_bags_are_never_overwritten(mcap_bag: Path, tmp_path: Path, slfm) -> None:
    with pytest.raises(ConfigError, match="already exists"):
        BagWriter(mcap_bag)
    with pytest.raises(ConfigError, match="does not exist"):
        BagWriter(tmp_path / "missing" / "bag")
    before = sorted(p.name for p in mcap_bag.iterdir())
    result = slfm(["bag", "make", "--scenario", "behind", "--out", str(mcap_bag)])
    assert result.code == 2 and "already exists" in result.err
    assert sorted(p.name for p in mcap_bag.iterdir()) == before


def test_cli_make_writes_a_readable_bag(tmp_path: Path, slfm) -> None:
    out = tmp_path / "behind"
    result = slfm(
        [
            "bag",
            "make",
            "--scenario",
            "behind",
            "--out",
            str(out),
            "--format",
            "sqlite3",
            "--seconds",
            "2",
            "--seed",
            "4",
            "--fps",
            "5",
            "--width",
            "160",
            "--height",
            "120",
        ]
    )
    assert result.code == 0, result.err
    assert "behind" in result.out and "sqlite3" in result.out
    with open_bag(out) as reader:
        assert reader.storage == "sqlite3"
        assert reader.topics[DEFAULT_TOPICS.image].count == 10
        image = MessageTypes().decode(next(reader.messages([DEFAULT_TOPICS.image])))
        assert (image.width, image.height, image.encoding) == (160, 120, "rgb8")


def test_typestore_knows_the_audio_messages_of_ros_drivers_audio_common() -> None:
    store = slfm_typestore()
    fields = store.types["audio_common_msgs/msg/AudioInfo"].__dataclass_fields__
    assert {"channels", "sample_rate", "sample_format", "bitrate", "coding_format"} <= set(fields)
    assert "audio_common_msgs/msg/AudioDataStamped" in store.types
