"""Reading what is left of storage files cut short (plain and zstd-compressed MCAP, sqlite3)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from rosbags.rosbag2 import CompressionFormat, CompressionMode, StoragePlugin, Writer
from rosbags.typesys import Stores, get_typestore

from slfm_ros.bags.recovery import scan_mcap, scan_sqlite

COUNT = 400
NS = 1_000_000_000


def write_strings(path: Path, plugin: StoragePlugin, compressed: bool = False) -> Path:
    store = get_typestore(Stores.ROS2_KILTED)
    String = store.types["std_msgs/msg/String"]
    writer = Writer(path, version=9, storage_plugin=plugin)
    if compressed:
        writer.set_compression(CompressionMode.STORAGE, CompressionFormat.ZSTD)
    with writer:
        conn = writer.add_connection("/chatter", "std_msgs/msg/String", typestore=store)
        for i in range(COUNT):
            # Random payloads: several 1 MiB chunks, so a cut keeps whole compressed chunks.
            text = f"{i:05d}" + os.urandom(3000).hex()
            data = store.serialize_cdr(String(data=text), "std_msgs/msg/String")
            writer.write(conn, NS + i * 10_000_000, bytes(data))
    return next(p for p in path.iterdir() if p.suffix in (".mcap", ".db3"))


@pytest.mark.parametrize("compressed", [False, True])
def test_mcap_cut_short_keeps_the_messages_before_the_cut(tmp_path: Path, compressed: bool) -> None:
    data = write_strings(tmp_path / "bag", StoragePlugin.MCAP, compressed)
    whole = scan_mcap(data)
    assert whole.stop == "" and len(whole.messages) == COUNT
    assert whole.topics == {"/chatter": "std_msgs/msg/String"}
    os.truncate(data, int(data.stat().st_size * 0.7))
    cut = scan_mcap(data)
    assert "ends inside a record" in cut.stop
    n = len(cut.messages)
    assert 0.3 * COUNT < n < COUNT
    # What was read is the beginning of the recording, intact and in order.
    assert [m[1] for m in cut.messages] == [NS + i * 10_000_000 for i in range(n)]
    assert cut.messages[5][2] == whole.messages[5][2]


def test_sqlite_cut_short_keeps_the_rows_before_the_cut(tmp_path: Path) -> None:
    data = write_strings(tmp_path / "bag", StoragePlugin.SQLITE3)
    assert len(scan_sqlite(data).messages) == COUNT
    os.truncate(data, int(data.stat().st_size * 0.6))
    cut = scan_sqlite(data)
    assert "database unreadable after" in cut.stop
    assert 0.3 * COUNT < len(cut.messages) < COUNT
    assert cut.topics == {"/chatter": "std_msgs/msg/String"}
