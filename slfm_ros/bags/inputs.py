"""Which topics of a bag feed the evaluation, and what the bag's streams look like.

``plan_inputs`` picks the audio, AudioInfo, image and ground-truth topics (by message type;
names only break ties or come from the user) and says which parts are unusable and why. The
robot's odometry (``/odom``, or a single topic named ``.../odom``) and IMU (a single
sensor_msgs/Imu topic) are optional rotation inputs of the sound tracker; without them the
node's own camera yaw is its rotation input.
``StreamStats`` collects, while a replay reads the bag, the facts the scores need: the audio
span, chunk stamps, image stamps, the ground truth and unreadable messages.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.bags.reader import BagMessage, BagReader
from slfm_ros.bags.topics import (
    AUDIO_INFO_TYPE,
    AUDIO_TYPE,
    DEFAULT_TOPICS,
    DIRECTION_TYPE,
    IMAGE_TYPE,
    IMU_TYPE,
    ODOMETRY_TYPE,
    UNSUPPORTED_TYPES,
)
from slfm_ros.core.errors import InputFormatError

_NS_PER_S = 1_000_000_000


@dataclass
class InputPlan:
    """Topics to replay ("" = none) and the problems that made a part unusable.

    audio_ok / camera_ok: whether the sound-direction / camera-yaw part can be evaluated.
    """

    audio: str = ""
    audio_info: str = ""
    image: str = ""
    odom: str = ""
    imu: str = ""
    truth_direction: str = ""
    truth_yaw: str = ""
    problems: list[str] = field(default_factory=list)

    @property
    def audio_ok(self) -> bool:
        return bool(self.audio and self.audio_info)

    @property
    def camera_ok(self) -> bool:
        return bool(self.image)

    @property
    def input_topics(self) -> list[str]:
        return [t for t in (self.audio_info, self.audio, self.image, self.odom, self.imu) if t]

    def for_node(self, params: dict[str, Any]) -> InputPlan:
        """This plan without the rotation inputs the node does not subscribe to with
        ``params`` (its rotation_source)."""
        from slfm_ros.nodes.message_dispatch import rotation_kinds

        kinds = rotation_kinds(params)
        return dataclasses.replace(
            self,
            odom=self.odom if "odom" in kinds else "",
            imu=self.imu if "imu" in kinds else "",
            problems=self.problems,
        )

    @property
    def truth_topics(self) -> list[str]:
        return [t for t in (self.truth_direction, self.truth_yaw) if t]


def _pick(
    reader: BagReader,
    wanted_type: str,
    what: str,
    requested: str,
    preferred: str,
    problems: list[str],
) -> str:
    """The topic of ``wanted_type`` to use ("" with a problem added when there is none)."""
    if requested:
        topic = reader.topics.get(requested)
        if topic is None:
            problems.append(
                f"{what}: topic {requested} is not in the bag (topics: "
                f"{', '.join(sorted(reader.topics)) or 'none'})"
            )
            return ""
        if topic.msgtype != wanted_type:
            hint = UNSUPPORTED_TYPES.get(topic.msgtype, f"expected {wanted_type}")
            problems.append(f"{what}: topic {requested} has type {topic.msgtype}: {hint}")
            return ""
        return requested
    found = reader.topics_of_type(wanted_type)
    found = [t for t in found if reader.topics[t].count > 0] or found
    if len(found) == 1:
        return found[0]
    if len(found) > 1:
        if preferred in found:
            return preferred
        problems.append(
            f"{what}: several {wanted_type} topics ({', '.join(found)}): choose one with "
            f"--{what.replace(' ', '-')}-topic"
        )
        return ""
    # Nothing of the right type: explain what is there instead.
    same_name = reader.topics.get(preferred)
    if same_name is not None:
        hint = UNSUPPORTED_TYPES.get(same_name.msgtype, f"expected {wanted_type}")
        problems.append(f"{what}: topic {preferred} has type {same_name.msgtype}: {hint}")
        return ""
    others = [
        f"{t.name} ({t.msgtype}: {UNSUPPORTED_TYPES[t.msgtype]})"
        for t in reader.topics.values()
        if t.msgtype in UNSUPPORTED_TYPES
    ]
    extra = f"; found {'; '.join(others)}" if others else ""
    problems.append(f"{what}: missing topic: no {wanted_type} in the bag{extra}")
    return ""


def _pick_optional(
    reader: BagReader, wanted_type: str, what: str, requested: str, names: list[str]
) -> tuple[str, str]:
    """(topic or "", problem or "") of an optional input: ``requested``, else the first of
    ``names`` that exists, else none."""

    def usable(name: str) -> bool:
        topic = reader.topics.get(name)
        return topic is not None and topic.msgtype == wanted_type and topic.count > 0

    if requested:
        if usable(requested):
            return requested, ""
        return "", f"{what}: topic {requested} is not a {wanted_type} topic with messages"
    return next((n for n in names if usable(n)), ""), ""


def plan_inputs(
    reader: BagReader,
    audio_topic: str = "",
    audio_info_topic: str = "",
    image_topic: str = "",
    odom_topic: str = "",
    imu_topic: str = "",
) -> InputPlan:
    """Choose the topics (see module doc). InputFormatError when neither the audio nor the
    camera part is usable."""
    d = DEFAULT_TOPICS
    plan = InputPlan()
    problems = plan.problems
    plan.audio = _pick(reader, AUDIO_TYPE, "audio", audio_topic, d.audio, problems)
    if plan.audio:
        plan.audio_info = _pick(
            reader, AUDIO_INFO_TYPE, "audio info", audio_info_topic, d.audio_info, []
        )
        if not plan.audio_info or reader.topics[plan.audio_info].count == 0:
            problems.append(
                f"audio: {plan.audio} has audio but the bag has no AudioInfo message, so its "
                "sample rate, channels and sample format are unknown: record the AudioInfo "
                "topic too (audio/audio_info)"
            )
            plan.audio_info = ""
        elif reader.topics[plan.audio].count == 0:
            problems.append(f"audio: topic {plan.audio} has no messages")
            plan.audio = ""
    plan.image = _pick(reader, IMAGE_TYPE, "image", image_topic, d.image, problems)
    if plan.image and reader.topics[plan.image].count == 0:
        problems.append(f"image: topic {plan.image} has no messages")
        plan.image = ""
    odometry = [d.odom] + sorted(
        t for t in reader.topics_of_type(ODOMETRY_TYPE) if t.endswith("/odom") and t != d.odom
    )
    plan.odom, problem = _pick_optional(reader, ODOMETRY_TYPE, "odometry", odom_topic, odometry)
    problems += [problem] if problem else []
    imus = reader.topics_of_type(IMU_TYPE)
    plan.imu, problem = _pick_optional(
        reader, IMU_TYPE, "imu", imu_topic, imus if len(imus) == 1 else []
    )
    problems += [problem] if problem else []
    for attr, name, msgtype in (
        ("truth_direction", d.truth_direction, DIRECTION_TYPE),
        ("truth_yaw", d.truth_yaw, ODOMETRY_TYPE),
    ):
        topic = reader.topics.get(name)
        if topic is not None and topic.msgtype == msgtype and topic.count > 0:
            setattr(plan, attr, name)
    if not plan.audio_ok and not plan.camera_ok:
        raise InputFormatError(
            f"{reader.path}: nothing to evaluate: " + "; ".join(problems)
            if problems
            else f"{reader.path}: no audio and no image topic"
        )
    return plan


@dataclass
class StreamStats:
    """Facts gathered from the bag during a replay (stamps in ns, angles in radians).

    audio_chunks: (stamp of the first sample, duration in ns) per decodable audio chunk.
    truth_direction / truth_yaw: (stamp, angle) of the ground truth, in bag order.
    unreadable: count of messages that could not be decoded, per topic.
    """

    audio_chunks: list[tuple[int, int]] = field(default_factory=list)
    image_stamps: list[int] = field(default_factory=list)
    truth_direction: list[tuple[int, float]] = field(default_factory=list)
    truth_yaw: list[tuple[int, float, float]] = field(default_factory=list)
    unreadable: dict[str, int] = field(default_factory=dict)
    first_error: str = ""
    first_log_ns: int | None = None
    last_log_ns: int | None = None
    _frame_bytes: int = 0
    _rate: int = 0

    def note_message(self, message: BagMessage) -> None:
        if self.first_log_ns is None:
            self.first_log_ns = message.log_ns
        self.last_log_ns = message.log_ns

    def note_unreadable(self, topic: str, error: str) -> None:
        self.unreadable[topic] = self.unreadable.get(topic, 0) + 1
        if not self.first_error:
            self.first_error = error

    def note_info(self, channels: int, sample_rate: int, bytes_per_sample: int) -> None:
        self._frame_bytes = channels * bytes_per_sample
        self._rate = sample_rate

    def note_audio(self, stamp_ns: int, n_bytes: int) -> None:
        if self._frame_bytes and self._rate:
            frames = n_bytes // self._frame_bytes
            self.audio_chunks.append((stamp_ns, frames * _NS_PER_S // self._rate))

    def note_image(self, stamp_ns: int) -> None:
        self.image_stamps.append(stamp_ns)

    @property
    def audio_span(self) -> tuple[int, int] | None:
        """(first sample, end of the last chunk) in ns, or None without audio."""
        if not self.audio_chunks:
            return None
        return self.audio_chunks[0][0], max(s + d for s, d in self.audio_chunks)

    @property
    def has_truth(self) -> bool:
        return bool(self.truth_direction or self.truth_yaw)


def interp_angle(
    stamps: npt.ArrayLike, series: list[tuple[int, float]] | list[tuple[int, float, float]]
) -> npt.NDArray[np.float64]:
    """Angle of ``series`` (stamp, radians, ...) at ``stamps``, interpolated on the unwrapped
    angle (held at the ends); NaN everywhere when the series is empty."""
    query = np.asarray(stamps, dtype=np.float64)
    if not series:
        return np.full(query.shape, np.nan)
    t = np.array([s[0] for s in series], dtype=np.float64)
    a = np.unwrap(np.array([s[1] for s in series], dtype=np.float64))
    order = np.argsort(t, kind="stable")
    return np.asarray(np.interp(query, t[order], a[order]), dtype=np.float64)


class BagDispatcher:
    """Decodes the planned topics' messages, records their facts in ``stats`` and tells the
    caller what to feed: ``take`` returns ("info" | "audio" | "image", rclpy message) for input
    messages, None for ground truth and unreadable messages."""

    def __init__(self, plan: InputPlan, stats: StreamStats) -> None:
        from slfm_ros.bags.reader import MessageTypes

        self.plan = plan
        self.stats = stats
        self.types = MessageTypes()
        self.kinds = {
            plan.audio_info: "info",
            plan.audio: "audio",
            plan.image: "image",
            plan.odom: "odom",
            plan.imu: "imu",
            plan.truth_direction: "truth_direction",
            plan.truth_yaw: "truth_yaw",
        }
        self.kinds.pop("", None)
        for topic, kind in list(self.kinds.items()):
            msgtype = {
                "info": AUDIO_INFO_TYPE,
                "audio": AUDIO_TYPE,
                "image": IMAGE_TYPE,
                "odom": ODOMETRY_TYPE,
                "imu": IMU_TYPE,
                "truth_direction": DIRECTION_TYPE,
                "truth_yaw": ODOMETRY_TYPE,
            }[kind]
            try:
                self.types.cls(msgtype)
            except InputFormatError as err:
                del self.kinds[topic]
                plan.problems.append(f"{kind}: {err}")
                setattr(plan, {"info": "audio_info"}.get(kind, kind), "")
        if not plan.audio_ok and not plan.camera_ok:
            raise InputFormatError("nothing to evaluate: " + "; ".join(plan.problems))

    @property
    def topics(self) -> list[str]:
        return list(self.kinds)

    def take(self, message: BagMessage) -> tuple[str, object] | None:
        from slfm_ros.core.conventions import yaw_from_quaternion
        from slfm_ros.core.dsp.audio_format import bytes_per_sample
        from slfm_ros.nodes import msg_conversions as conv

        kind = self.kinds.get(message.topic)
        if kind is None:
            return None
        self.stats.note_message(message)
        try:
            msg = self.types.decode(message)
        except InputFormatError as err:
            self.stats.note_unreadable(message.topic, str(err))
            return None
        if kind == "info":
            fields = conv.audio_info_fields(msg)
            try:
                width = bytes_per_sample(fields.sample_format)
            except InputFormatError:
                width = 0
            self.stats.note_info(fields.channels, fields.sample_rate, width)
        elif kind == "audio":
            data, stamp_ns = conv.audio_payload(msg)
            self.stats.note_audio(stamp_ns, len(data))
        elif kind == "image":
            self.stats.note_image(conv.stamp_to_ns(msg.header.stamp))
        elif kind in ("odom", "imu"):
            pass  # the tracker's rotation inputs: fed to the node as they are
        else:
            stamp = conv.stamp_to_ns(msg.header.stamp)
            o = msg.pose.pose.orientation
            angle = float(yaw_from_quaternion(o.x, o.y, o.z, o.w))
            if kind == "truth_direction":
                self.stats.truth_direction.append((stamp, angle))
            else:
                rate = float(msg.twist.twist.angular.z)
                self.stats.truth_yaw.append((stamp, angle, rate))
            return None
        return kind, msg
