"""Writing rosbag2 files (version 9, MCAP or sqlite3) with the rosbags library.

Messages are built as rclpy messages (with ``slfm_ros.nodes.msg_conversions``, the code the
nodes use) and stored as their CDR serialisation, so a bag holds exactly what a node would
have published. The rosbags typestore (ROS 2 Kilted plus ``audio_common_msgs`` read from its
.msg files) supplies the message definitions and type hashes stored in the bag, which makes the
bag self-describing for ``ros2 bag`` and for rosbags readers.
"""

from __future__ import annotations

import os
import sys
from functools import lru_cache
from pathlib import Path
from types import TracebackType
from typing import Any, Literal

from rosbags.interfaces import (
    Connection,
    Qos,
    QosDurability,
    QosHistory,
    QosLiveliness,
    QosReliability,
    QosTime,
)
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore
from rosbags.typesys.store import Typestore

from slfm_ros.core.errors import ConfigError

STORAGE_FORMATS = ("mcap", "sqlite3")
BAG_VERSION: Literal[9] = 9
AUDIO_COMMON_MSGS = ("AudioData", "AudioDataStamped", "AudioInfo")
QOS_KINDS = ("sensor", "reliable", "latched")


def _audio_msgs_folders() -> list[Path]:
    """Where the audio_common_msgs .msg files may be: the ament index of a ROS install, this
    Python environment's share folder, the interfaces/ folder of a source checkout."""
    folders = []
    for prefix in os.environ.get("AMENT_PREFIX_PATH", "").split(os.pathsep):
        if prefix:
            folders.append(Path(prefix) / "share" / "audio_common_msgs" / "msg")
    folders.append(Path(sys.prefix) / "share" / "audio_common_msgs" / "msg")
    folders.append(Path(__file__).resolve().parents[2] / "interfaces" / "audio_common_msgs" / "msg")
    return folders


@lru_cache(maxsize=1)
def slfm_typestore() -> Typestore:
    """ROS 2 Kilted typestore with the ros-drivers ``audio_common_msgs`` types registered."""
    store = get_typestore(Stores.ROS2_KILTED)
    for folder in _audio_msgs_folders():
        if all((folder / f"{name}.msg").is_file() for name in AUDIO_COMMON_MSGS):
            types: dict[str, Any] = {}
            for name in AUDIO_COMMON_MSGS:
                text = (folder / f"{name}.msg").read_text()
                types.update(get_types_from_msg(text, f"audio_common_msgs/msg/{name}"))
            store.register(types)
            return store
    searched = ", ".join(str(f) for f in _audio_msgs_folders())
    raise ConfigError(
        f"audio_common_msgs message definitions not found (searched {searched}): install "
        "ros-$ROS_DISTRO-audio-common-msgs or run `make setup`"
    )


def qos_profile(kind: str) -> Qos:
    """Offered QoS stored with a topic: "sensor" (best effort, depth 10), "reliable" (depth 50)
    or "latched" (reliable, transient local, depth 1: AudioInfo)."""
    if kind not in QOS_KINDS:
        raise ConfigError(f"qos kind must be one of {QOS_KINDS}, got {kind!r}")
    # How rosbag2 writes "no limit" for deadline, lifespan and lease duration.
    infinite = QosTime(0x7FFFFFFF, 0xFFFFFFFF)
    return Qos(
        history=QosHistory.KEEP_LAST,
        depth={"sensor": 10, "reliable": 50, "latched": 1}[kind],
        reliability=QosReliability.BEST_EFFORT if kind == "sensor" else QosReliability.RELIABLE,
        durability=QosDurability.TRANSIENT_LOCAL if kind == "latched" else QosDurability.VOLATILE,
        deadline=infinite,
        lifespan=infinite,
        liveliness=QosLiveliness.AUTOMATIC,
        liveliness_lease_duration=infinite,
        avoid_ros_namespace_conventions=False,
    )


def storage_plugin(storage: str) -> StoragePlugin:
    if storage not in STORAGE_FORMATS:
        raise ConfigError(f"bag format must be one of {STORAGE_FORMATS}, got {storage!r}")
    return StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3


class BagWriter:
    """A rosbag2 being written (context manager). ``path`` is the bag folder; it must not exist.

    ``typestore`` (default ``slfm_typestore()``) defines the message types topics may have.
    ``add_topic`` once per topic, then ``write`` messages in log-time order. Leaving the
    ``with`` block normally writes the index and metadata.yaml; an exception aborts the bag.
    """

    def __init__(
        self, path: str | Path, storage: str = "mcap", typestore: Typestore | None = None
    ) -> None:
        self.path = self.check_target(path)
        self.storage = storage
        self.typestore = typestore or slfm_typestore()
        self._writer = Writer(
            self.path, version=BAG_VERSION, storage_plugin=storage_plugin(storage)
        )
        self._connections: dict[str, Connection] = {}
        self._counts: dict[str, int] = {}

    @staticmethod
    def check_target(path: str | Path) -> Path:
        """``path`` as a Path; ConfigError when it exists or its parent folder does not."""
        target = Path(path)
        if target.exists():
            raise ConfigError(
                f"{target} already exists: choose another --out path or remove it first "
                "(bags are never overwritten)"
            )
        if not target.parent.is_dir():
            raise ConfigError(f"the folder {target.parent} of the bag does not exist")
        return target

    def __enter__(self) -> BagWriter:
        self._writer.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._writer.__exit__(exc_type, exc, tb)

    def add_topic(self, topic: str, msgtype: str, qos: str = "reliable") -> None:
        """Declare ``topic`` of ``msgtype`` (e.g. ``sensor_msgs/msg/Image``)."""
        if topic in self._connections:
            raise ConfigError(f"topic {topic} was already added")
        if msgtype not in self.typestore.types:
            raise ConfigError(f"message type {msgtype} is not in the bag typestore")
        self._connections[topic] = self._writer.add_connection(
            topic, msgtype, typestore=self.typestore, offered_qos_profiles=[qos_profile(qos)]
        )
        self._counts[topic] = 0

    def write(self, topic: str, log_ns: int, msg: object) -> None:
        """Store an rclpy message received at ``log_ns`` (the bag's record time)."""
        from rclpy.serialization import serialize_message

        self.write_raw(topic, log_ns, serialize_message(msg))

    def write_raw(self, topic: str, log_ns: int, data: bytes) -> None:
        """Store CDR bytes of a message of ``topic``'s type."""
        connection = self._connections.get(topic)
        if connection is None:
            raise ConfigError(f"topic {topic} was not added to the bag")
        self._writer.write(connection, int(log_ns), data)
        self._counts[topic] += 1

    @property
    def counts(self) -> dict[str, int]:
        """Messages written per topic so far."""
        return dict(self._counts)
