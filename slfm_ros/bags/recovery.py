"""Reading what is left of a damaged rosbag2 storage file.

A recording that was cut short (killed recorder, full disk, interrupted copy) leaves an MCAP
file without its summary and footer, or an sqlite3 database with missing pages; readers that
rely on the index refuse both. These scanners read records from the start until the first
incomplete or unreadable one and return everything before it, with the reason they stopped.
"""

from __future__ import annotations

import shutil
import sqlite3
import struct
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

MCAP_MAGIC = b"\x89MCAP0\r\n"
_OP_SCHEMA, _OP_CHANNEL, _OP_MESSAGE, _OP_CHUNK, _OP_FOOTER, _OP_DATA_END = 3, 4, 5, 6, 2, 15


@dataclass
class Recovered:
    """Messages read from a damaged file.

    topics:   topic name -> message type.
    messages: (topic, record time ns, CDR bytes) in file order.
    stop:     why reading stopped ("" when the file ended cleanly).
    """

    topics: dict[str, str] = field(default_factory=dict)
    messages: list[tuple[str, int, bytes]] = field(default_factory=list)
    stop: str = ""


class _Cut(Exception):
    """The data ends inside a record."""


class _Cursor:
    def __init__(self, data: bytes | memoryview) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int) -> memoryview:
        if n < 0 or self.pos + n > len(self.data):
            raise _Cut
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def u16(self) -> int:
        return int(struct.unpack("<H", self.take(2))[0])

    def u32(self) -> int:
        return int(struct.unpack("<I", self.take(4))[0])

    def u64(self) -> int:
        return int(struct.unpack("<Q", self.take(8))[0])

    def string(self) -> str:
        return bytes(self.take(self.u32())).decode("utf-8", errors="replace")

    @property
    def left(self) -> int:
        return len(self.data) - self.pos


def _decompress(compression: str, data: bytes, size: int) -> bytes:
    if compression == "":
        return data
    if compression == "zstd":
        # The zstd module rosbags itself uses (standard library from Python 3.14).
        try:
            from compression import zstd  # type: ignore[import-not-found]
        except ImportError:
            from backports import zstd  # type: ignore[import-not-found,no-redef]

        return bytes(zstd.decompress(data))
    if compression == "lz4":
        import lz4.frame  # type: ignore[import-untyped]

        return bytes(lz4.frame.decompress(data))
    raise ValueError(f"chunk compression {compression!r} is not supported")


def _records(
    cur: _Cursor,
    out: Recovered,
    schemas: dict[int, str],
    channels: dict[int, str],
    nested: bool,
) -> bool:
    """Reads records until the end of ``cur``; False when a footer or data end was met."""
    while cur.left:
        start = cur.pos
        try:
            op = cur.take(1)[0]
            body = _Cursor(cur.take(cur.u64()))
        except _Cut:
            cur.pos = start
            raise
        try:
            if _record(op, body, out, schemas, channels, nested):
                return False
        except _Cut as err:
            raise ValueError(f"malformed record (opcode {op:#x}) at byte {start}") from err
    return True


def _record(
    op: int,
    body: _Cursor,
    out: Recovered,
    schemas: dict[int, str],
    channels: dict[int, str],
    nested: bool,
) -> bool:
    """Interprets one record; True for a footer or data end (no messages follow)."""
    if op == _OP_SCHEMA:
        sid = body.u16()
        schemas[sid] = body.string()
    elif op == _OP_CHANNEL:
        cid, sid = body.u16(), body.u16()
        topic = body.string()
        channels[cid] = topic
        out.topics.setdefault(topic, schemas.get(sid, ""))
    elif op == _OP_MESSAGE:
        cid, _seq, log_ns, _pub = body.u16(), body.u32(), body.u64(), body.u64()
        if cid in channels:
            out.messages.append((channels[cid], log_ns, bytes(body.take(body.left))))
    elif op == _OP_CHUNK and not nested:
        body.u64(), body.u64()
        size = body.u64()
        body.u32()
        compression = body.string()
        payload = bytes(body.take(body.u64()))
        inner = _Cursor(_decompress(compression, payload, size))
        _records(inner, out, schemas, channels, nested=True)
    return op in (_OP_FOOTER, _OP_DATA_END)


def scan_mcap(path: Path) -> Recovered:
    """Messages of an MCAP file up to its first incomplete record (a partial last chunk is read
    as far as its records are complete when it is uncompressed)."""
    out = Recovered()
    data = path.read_bytes()
    if not data.startswith(MCAP_MAGIC):
        out.stop = f"{path.name} is not an MCAP file (bad magic bytes)"
        return out
    cur = _Cursor(data)
    cur.take(len(MCAP_MAGIC))
    schemas: dict[int, str] = {}
    channels: dict[int, str] = {}
    try:
        if _records(cur, out, schemas, channels, nested=False):
            out.stop = f"{path.name} has no footer (the recording did not finish)"
    except _Cut:
        out.stop = f"{path.name} ends inside a record at byte {cur.pos} of {len(data)}"
        # An uncompressed chunk cut short still holds complete message records.
        _partial_chunk(data, cur.pos, out, schemas, channels)
    except (ValueError, ImportError, struct.error) as err:
        out.stop = f"{path.name}: unreadable record at byte {cur.pos}: {err}"
    return out


def _partial_chunk(
    data: bytes, pos: int, out: Recovered, schemas: dict[int, str], channels: dict[int, str]
) -> None:
    if pos >= len(data) or data[pos] != _OP_CHUNK:
        return
    cur = _Cursor(data)
    cur.pos = pos + 9
    try:
        cur.u64(), cur.u64(), cur.u64(), cur.u32()
        if cur.string() != "":
            return
        cur.u64()
    except _Cut:
        return
    inner = _Cursor(cur.data[cur.pos :])
    try:
        _records(inner, out, schemas, channels, nested=True)
    except (_Cut, ValueError):
        pass  # the records before the cut are kept


def _sqlite_pages_fixed(path: Path, folder: Path) -> Path:
    """``path``, or a copy in ``folder`` whose header page count matches the file's length when
    the file is shorter than its header says (SQLite then refuses even the schema)."""
    size = path.stat().st_size
    with path.open("rb") as f:
        header = f.read(100)
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return path
    page_size = struct.unpack(">H", header[16:18])[0]
    page_size = 65536 if page_size == 1 else page_size
    pages = struct.unpack(">I", header[28:32])[0]
    whole = size // page_size
    if page_size == 0 or pages <= whole:
        return path
    copy = folder / path.name
    shutil.copyfile(path, copy)
    with copy.open("r+b") as f:
        f.seek(28)
        f.write(struct.pack(">I", whole))
        f.truncate(whole * page_size)
    return copy


def scan_sqlite(path: Path) -> Recovered:
    """Messages of a rosbag2 sqlite3 database in row order, up to the first unreadable page.

    A file cut short is read through a copy whose header is fixed to its actual length."""
    with tempfile.TemporaryDirectory(prefix="slfm_bag_recover_") as tmp:
        return _scan_sqlite(_sqlite_pages_fixed(path, Path(tmp)), path.name)


def _scan_sqlite(path: Path, name: str) -> Recovered:
    out = Recovered()
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    except sqlite3.Error as err:
        out.stop = f"{name}: cannot open the database: {err}"
        return out
    try:
        names = {}
        for tid, topic, msgtype in db.execute("SELECT id, name, type FROM topics"):
            names[tid] = topic
            out.topics[topic] = msgtype
        # Row by row: a batch would lose the rows before a bad page along with it.
        for tid, stamp, blob in db.execute(
            "SELECT topic_id, timestamp, data FROM messages ORDER BY rowid"
        ):
            if tid in names:
                out.messages.append((names[tid], int(stamp), bytes(blob)))
    except sqlite3.Error as err:
        out.stop = f"{name}: database unreadable after {len(out.messages)} messages: {err}"
    finally:
        db.close()
    return out
