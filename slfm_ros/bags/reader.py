"""Reading rosbag2 recordings (MCAP or sqlite3) for evaluation.

``open_bag(path)`` accepts a bag folder (with metadata.yaml) or a single .mcap / .db3 file.
It reads through the rosbags library when the bag is intact. When that fails (no
metadata.yaml, a storage file cut short, a damaged database) it falls back to scanning the
storage files record by record (``slfm_ros.bags.recovery``): the readable part is used and
``BagReader.damage`` says what was lost, so callers can report a partial result.

Messages come as ``BagMessage`` (topic, type, record time, CDR bytes) in record-time order,
the order a recorder received them and ``ros2 bag play`` replays them. ``decode`` turns one
into the rclpy message the nodes receive for the same bytes.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from slfm_ros.bags.recovery import Recovered, scan_mcap, scan_sqlite
from slfm_ros.core.errors import InputFormatError

_NS_PER_S = 1_000_000_000
STORAGE_SUFFIXES = {".mcap": "mcap", ".db3": "sqlite3"}


@dataclass(frozen=True)
class BagMessage:
    """One recorded message: topic, type (``pkg/msg/Name``), record time (ns), CDR bytes."""

    topic: str
    msgtype: str
    log_ns: int
    raw: bytes


@dataclass(frozen=True)
class TopicSummary:
    name: str
    msgtype: str
    count: int


@dataclass
class BagDamage:
    """What could not be read: a description, and the messages expected vs read.

    expected is None when the bag has no readable metadata to say how many there were.
    """

    reason: str
    read: int
    expected: int | None
    read_until_ns: int | None = None

    def describe(self, start_ns: int | None = None, end_ns: int | None = None) -> str:
        parts = [self.reason]
        if self.expected is not None:
            parts.append(f"read {self.read} of {self.expected} messages")
        else:
            parts.append(f"read {self.read} messages")
        if self.read_until_ns is not None and start_ns is not None:
            upto = (self.read_until_ns - start_ns) / _NS_PER_S
            if end_ns is not None and end_ns > start_ns:
                total = (end_ns - start_ns) / _NS_PER_S
                parts.append(f"the first {upto:.2f} s of {total:.2f} s are usable")
            else:
                parts.append(f"the first {upto:.2f} s are usable")
        return "; ".join(parts)


def _metadata(folder: Path) -> dict[str, Any] | None:
    meta = folder / "metadata.yaml"
    if not meta.is_file():
        return None
    try:
        data = yaml.safe_load(meta.read_text())
        info = data["rosbag2_bagfile_information"]
        return info if isinstance(info, dict) else None
    except (yaml.YAMLError, KeyError, TypeError):
        return None


def _expected(meta: dict[str, Any] | None) -> tuple[int | None, int | None, int | None]:
    """(message count, start ns, end ns) promised by metadata.yaml."""
    if meta is None:
        return None, None, None
    try:
        count = int(meta["message_count"])
        start = int(meta["starting_time"]["nanoseconds_since_epoch"])
        end = start + int(meta["duration"]["nanoseconds"])
        return count, start, end
    except (KeyError, TypeError, ValueError):
        return None, None, None


def _storage_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path] if path.suffix in STORAGE_SUFFIXES else []
    return sorted(p for p in path.iterdir() if p.suffix in STORAGE_SUFFIXES and p.is_file())


class BagReader:
    """An opened bag (see module doc). Use ``open_bag``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.topics: dict[str, TopicSummary] = {}
        self.storage = ""
        self.start_ns: int | None = None
        self.end_ns: int | None = None
        self.damage: BagDamage | None = None
        # End of the recording as metadata.yaml states it (a damaged bag may end earlier).
        self.expected_end_ns: int | None = None
        self._any: Any = None
        self._recovered: list[BagMessage] | None = None

    # ------------------------------------------------------------------ opening
    def _open(self) -> None:
        if not self.path.exists():
            raise InputFormatError(f"bag {self.path} does not exist")
        files = _storage_files(self.path)
        if not files:
            raise InputFormatError(
                f"{self.path} is not a rosbag2: expected a folder with metadata.yaml and .mcap or "
                ".db3 files, or one such file"
            )
        self.storage = STORAGE_SUFFIXES[files[0].suffix]
        error = ""
        if self.path.is_dir() and (self.path / "metadata.yaml").is_file():
            try:
                self._open_rosbags()
                return
            except Exception as err:  # rosbags raises several types for damaged files
                error = f"{type(err).__name__}: {err}"
        else:
            error = "no metadata.yaml (the recording did not finish)"
        self._open_recovered(files, error)

    def _open_rosbags(self) -> None:
        from rosbags.highlevel import AnyReader

        from slfm_ros.bags.writer import slfm_typestore

        reader = AnyReader([self.path], default_typestore=slfm_typestore())
        reader.open()
        self._any = reader
        for conn in reader.connections:
            old = self.topics.get(conn.topic)
            count = conn.msgcount + (old.count if old else 0)
            self.topics[conn.topic] = TopicSummary(conn.topic, conn.msgtype, count)
        if reader.message_count:
            self.start_ns, self.end_ns = reader.start_time, reader.end_time - 1

    def _open_recovered(self, files: list[Path], error: str) -> None:
        meta = _metadata(self.path) if self.path.is_dir() else None
        expected, meta_start, meta_end = _expected(meta)
        messages: list[BagMessage] = []
        stops = []
        topics: dict[str, str] = {}
        for f in files:
            found: Recovered = scan_mcap(f) if f.suffix == ".mcap" else scan_sqlite(f)
            topics.update(found.topics)
            messages += [
                BagMessage(t, found.topics.get(t, ""), ns, raw) for t, ns, raw in found.messages
            ]
            if found.stop:
                stops.append(found.stop)
        if not topics:
            raise InputFormatError(
                f"{self.path}: no readable topics ({'; '.join([error, *stops])}); the bag is "
                "corrupt or empty"
            )
        messages.sort(key=lambda m: m.log_ns)
        self._recovered = messages
        counts: dict[str, int] = dict.fromkeys(topics, 0)
        for m in messages:
            counts[m.topic] += 1
        self.topics = {t: TopicSummary(t, topics[t], counts[t]) for t in topics}
        if messages:
            self.start_ns, self.end_ns = messages[0].log_ns, messages[-1].log_ns
        lost = expected is not None and expected > len(messages)
        # A complete storage file without metadata.yaml (e.g. a copied .mcap) is not damaged.
        if stops or lost:
            reason = "; ".join([error, *stops]) if stops else error
            self.damage = BagDamage(
                reason=f"damaged bag: {reason}",
                read=len(messages),
                expected=expected,
                read_until_ns=self.end_ns,
            )
            if meta_start is not None:
                self.start_ns = meta_start
            self.expected_end_ns = meta_end

    # ------------------------------------------------------------------ reading
    @property
    def duration_s(self) -> float:
        if self.start_ns is None or self.end_ns is None:
            return 0.0
        return (self.end_ns - self.start_ns) / _NS_PER_S

    def topics_of_type(self, msgtype: str) -> list[str]:
        return sorted(t.name for t in self.topics.values() if t.msgtype == msgtype)

    def messages(self, topics: Iterable[str] | None = None) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) in record-time order. A read error part way
        through ends the iteration and sets ``damage`` (the messages before it were yielded)."""
        wanted = None if topics is None else set(topics)
        if self._recovered is not None:
            for m in self._recovered:
                if wanted is None or m.topic in wanted:
                    yield m
            return
        conns = [c for c in self._any.connections if wanted is None or c.topic in wanted]
        if not conns:
            return
        read = 0
        last: int | None = None
        try:
            for conn, log_ns, raw in self._any.messages(connections=conns):
                read += 1
                last = log_ns
                yield BagMessage(conn.topic, conn.msgtype, int(log_ns), bytes(raw))
        except Exception as err:  # storage errors of rosbags / sqlite / mcap parsing
            expected = sum(c.msgcount for c in conns)
            self.damage = BagDamage(
                reason=f"damaged bag: reading stopped: {type(err).__name__}: {err}",
                read=read,
                expected=expected,
                read_until_ns=last,
            )

    def close(self) -> None:
        if self._any is not None:
            self._any.close()
            self._any = None

    def __enter__(self) -> BagReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_bag(path: str | Path) -> BagReader:
    """Open the bag at ``path`` (see module doc). InputFormatError when nothing is readable."""
    reader = BagReader(Path(path))
    reader._open()
    return reader


@dataclass
class MessageTypes:
    """rclpy message classes by type name, imported once each."""

    _classes: dict[str, Any] = field(default_factory=dict)

    def cls(self, msgtype: str) -> Any:
        if msgtype not in self._classes:
            parts = msgtype.split("/")
            if len(parts) != 3 or parts[1] != "msg":
                raise InputFormatError(f"message type {msgtype!r}: expected package/msg/Name")
            try:
                module = importlib.import_module(f"{parts[0]}.msg")
                self._classes[msgtype] = getattr(module, parts[2])
            except (ImportError, AttributeError) as err:
                raise InputFormatError(
                    f"unknown message type {msgtype}: no Python interface for it is installed "
                    f"({err}); install its message package"
                ) from None
        return self._classes[msgtype]

    def decode(self, message: BagMessage) -> Any:
        """The rclpy message of ``message``; InputFormatError for unreadable bytes."""
        from rclpy.serialization import deserialize_message

        cls = self.cls(message.msgtype)
        try:
            return deserialize_message(message.raw, cls)
        except Exception as err:  # the C deserialiser raises plain exceptions
            raise InputFormatError(
                f"{message.topic}: message at {message.log_ns / _NS_PER_S:.3f} s is not a "
                f"valid {message.msgtype} ({type(err).__name__}: {err})"
            ) from None
