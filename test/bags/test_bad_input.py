"""``slfm bag eval`` / ``info`` on bad input: a clear message, a non-zero exit, and a partial
report (exit 3) that names the unusable part whenever some part can still be evaluated."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from slfm_ros.bags.topics import DEFAULT_TOPICS
from slfm_ros.bags.writer import BagWriter

T = DEFAULT_TOPICS
PARTIAL = 3


def evaluate(slfm, bag: Path, out: Path):
    return slfm(["bag", "eval", str(bag), "--estimator", "classic", "--out", str(out), "--json"])


def test_missing_image_topic_gives_an_audio_only_partial_report(
    mcap_bag: Path, tmp_path: Path, bag_copy, slfm
) -> None:
    bag = bag_copy(mcap_bag, tmp_path / "no_images", lambda m: not m.topic.startswith("/camera"))
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL
    report = result.json()
    assert report["partial"] is True
    assert any("image: missing topic" in p for p in report["problems"])
    assert report["parts"] == {"audio": T.audio, "camera": None}
    assert report["azimuth_mae_deg"] < 10.0 and report["yaw_mae_deg"] is None
    assert (tmp_path / "report" / "report.json").is_file()
    assert (tmp_path / "report" / "azimuth.png").is_file()
    assert "partial report" in result.err


def test_a_bag_without_audio_and_images_is_an_error(
    mcap_bag: Path, tmp_path: Path, bag_copy, slfm
) -> None:
    bag = bag_copy(mcap_bag, tmp_path / "truth_only", lambda m: m.topic.startswith("/ground"))
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == 2
    assert "nothing to evaluate" in result.err
    assert "audio: missing topic" in result.err and "image: missing topic" in result.err


def test_audio_without_audio_info_leaves_the_camera_part(
    mcap_bag: Path, tmp_path: Path, bag_copy, slfm
) -> None:
    bag = bag_copy(mcap_bag, tmp_path / "no_info", lambda m: m.topic != T.audio_info)
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL
    report = result.json()
    assert any("no AudioInfo" in p for p in report["problems"])
    assert report["parts"] == {"audio": None, "camera": T.image}
    assert report["azimuth_mae_deg"] is None and report["n_directions"] == 0
    assert report["yaw_mae_deg"] < 2.0


def _mgonzs13_store():
    """A typestore with the incompatible audio types of mgonzs13/audio_common and a type no
    Python package provides."""
    store = get_typestore(Stores.ROS2_KILTED)
    types = {}
    types.update(
        get_types_from_msg(
            "int32 format\nint32 channels\nint32 rate\nint32 chunk",
            "audio_common_msgs/msg/AudioInfo",
        )
    )
    types.update(get_types_from_msg("int16[] int16_data", "audio_common_msgs/msg/AudioData"))
    types.update(
        get_types_from_msg(
            "audio_common_msgs/AudioInfo info\naudio_common_msgs/AudioData audio_data",
            "audio_common_msgs/msg/Audio",
        )
    )
    types.update(
        get_types_from_msg(
            "std_msgs/Header header\naudio_common_msgs/Audio audio",
            "audio_common_msgs/msg/AudioStamped",
        )
    )
    types.update(get_types_from_msg("float32 level", "acme_msgs/msg/Ear"))
    store.register(types)
    return store


def test_unknown_message_types_are_named(mcap_bag: Path, tmp_path: Path, slfm) -> None:
    import numpy as np

    from slfm_ros.bags.reader import open_bag

    store = _mgonzs13_store()
    c = store.types
    bag = tmp_path / "mgonzs13"
    with open_bag(mcap_bag) as reader:
        images = [m for m in reader.messages([T.image])]
    with BagWriter(bag, "mcap", typestore=store) as writer:
        writer.add_topic(T.audio, "audio_common_msgs/msg/AudioStamped")
        writer.add_topic("/ear", "acme_msgs/msg/Ear")
        writer.add_topic(T.image, "sensor_msgs/msg/Image")
        for i in range(100):
            stamp = c["builtin_interfaces/msg/Time"](sec=1_767_225_600, nanosec=i * 20_000_000)
            header = c["std_msgs/msg/Header"](stamp=stamp, frame_id="mic")
            audio = c["audio_common_msgs/msg/Audio"](
                info=c["audio_common_msgs/msg/AudioInfo"](
                    format=8, channels=2, rate=16000, chunk=320
                ),
                audio_data=c["audio_common_msgs/msg/AudioData"](int16_data=np.zeros(640, np.int16)),
            )
            msg = c["audio_common_msgs/msg/AudioStamped"](header=header, audio=audio)
            log = 1_767_225_600 * 10**9 + i * 20_000_000
            writer.write_raw(T.audio, log, bytes(store.serialize_cdr(msg, msg.__msgtype__)))
            ear = c["acme_msgs/msg/Ear"](level=0.5)
            writer.write_raw("/ear", log, bytes(store.serialize_cdr(ear, ear.__msgtype__)))
        for m in images:
            writer.write_raw(T.image, m.log_ns, m.raw)
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL
    problems = " ".join(result.json()["problems"])
    assert "audio_common_msgs/msg/AudioStamped" in problems
    assert "mgonzs13" in problems and "AudioDataStamped" in problems
    info = slfm(["bag", "info", str(bag), "--json"]).json()
    ear = next(r for r in info["topics"] if r["topic"] == "/ear")
    assert "unknown message type acme_msgs/msg/Ear" in ear["unreadable"]


@pytest.mark.parametrize("storage", ["mcap", "sqlite3"])
def test_a_truncated_bag_is_evaluated_up_to_the_cut(
    storage: str, mcap_bag: Path, sqlite_bag: Path, tmp_path: Path, slfm
) -> None:
    bag = tmp_path / "cut"
    shutil.copytree(mcap_bag if storage == "mcap" else sqlite_bag, bag)
    data = next(p for p in bag.iterdir() if p.suffix in (".mcap", ".db3"))
    os.truncate(data, int(data.stat().st_size * 0.6))
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL, result.err
    report = result.json()
    damage = next(p for p in report["problems"] if p.startswith("damaged bag"))
    read, expected = (int(v) for v in damage.split("read ")[1].split(" messages")[0].split(" of "))
    assert expected == 781 and 150 < read < 781
    assert "s are usable" in damage
    assert 1.0 < report["audio_seconds"] < 3.5
    assert report["azimuth_mae_deg"] < 10.0 and report["coverage"] > 0.9
    info = slfm(["bag", "info", str(bag), "--json"])
    assert info.code == PARTIAL and info.json()["damage"].startswith("damaged bag")


def test_an_unfinished_recording_without_metadata_is_read_from_its_file(
    mcap_bag: Path, tmp_path: Path, slfm
) -> None:
    bag = tmp_path / "unfinished"
    shutil.copytree(mcap_bag, bag)
    (bag / "metadata.yaml").unlink()
    data = next(bag.glob("*.mcap"))
    os.truncate(data, int(data.stat().st_size * 0.8))
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL
    damage = " ".join(result.json()["problems"])
    assert "no metadata.yaml" in damage and "ends inside a record" in damage
    assert result.json()["n_directions"] > 10
    # The storage file alone is a bag too.
    assert slfm(["bag", "info", str(data)]).code == PARTIAL


def test_corrupt_messages_are_skipped_and_counted(
    mcap_bag: Path, tmp_path: Path, bag_copy, slfm
) -> None:
    index = {"n": 0}

    def change(m) -> bytes:
        if m.topic != T.image:
            return m.raw
        index["n"] += 1
        return m.raw[:200] if index["n"] % 10 == 0 else m.raw

    bag = bag_copy(mcap_bag, tmp_path / "corrupt", change=change)
    result = evaluate(slfm, bag, tmp_path / "report")
    assert result.code == PARTIAL
    report = result.json()
    problem = next(p for p in report["problems"] if p.startswith(T.image))
    assert "6 unreadable message(s)" in problem and "not a valid sensor_msgs/msg/Image" in problem
    assert report["yaw_mae_deg"] < 2.0


def test_paths_that_are_not_bags(tmp_path: Path, slfm) -> None:
    result = evaluate(slfm, tmp_path / "nowhere", tmp_path / "r1")
    assert result.code == 2 and "does not exist" in result.err
    (tmp_path / "empty").mkdir()
    result = evaluate(slfm, tmp_path / "empty", tmp_path / "r2")
    assert result.code == 2 and "is not a rosbag2" in result.err
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "junk.mcap").write_bytes(b"not an mcap file at all")
    result = slfm(["bag", "info", str(junk)])
    assert result.code == 2 and "not an MCAP file" in result.err


def test_a_complete_mcap_file_alone_is_a_whole_bag(mcap_bag: Path, tmp_path: Path, slfm) -> None:
    alone = tmp_path / "copy.mcap"
    shutil.copyfile(next(mcap_bag.glob("*.mcap")), alone)
    result = slfm(["bag", "info", str(alone), "--json"])
    assert result.code == 0, result.err
    assert result.json()["damage"] is None and result.json()["message_count"] == 781
