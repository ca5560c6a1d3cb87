"""The sensor streams of a robot's recording, for learning from it: audio and the robot's yaw.

Only sensor topics are read, never a ``/ground_truth/*`` topic (``GROUND_TRUTH_PREFIX``): the
audio (AudioDataStamped, decoded with the bag's AudioInfo) and the rotation, from the first of
    odom    nav_msgs/Odometry (the yaw of its pose; e.g. wheel odometry or robot_localization)
    imu     sensor_msgs/Imu (its orientation when it has one, else the integrated z rate)
    camera  sensor_msgs/Image + CameraInfo: the turn between frames measured by ORB feature
            matching, chained along the recording (a pair that cannot be matched splits it
            into segments whose yaws are not related)
that the bag holds (``rotation="auto"``), or the one asked for.

Yaw series are unwrapped radians (REP-103, left positive) against capture stamps (ns), one
segment id per sample: yaws of different segments have unknown offsets between them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from slfm_ros.bags.reader import BagReader, MessageTypes
from slfm_ros.bags.topics import (
    AUDIO_INFO_TYPE,
    AUDIO_TYPE,
    CAMERA_INFO_TYPE,
    IMAGE_TYPE,
    ODOMETRY_TYPE,
    UNSUPPORTED_TYPES,
)
from slfm_ros.core.errors import InputFormatError

IMU_TYPE = "sensor_msgs/msg/Imu"
GROUND_TRUTH_PREFIX = "/ground_truth/"
ROTATION_SOURCES = ("auto", "odom", "imu", "camera")
_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class SensorTopics:
    """The topics one recording is learned from; rotation: "odom", "imu" or "camera"."""

    audio: str
    audio_info: str
    rotation: str
    rotation_topic: str
    camera_info: str = ""

    @property
    def names(self) -> list[str]:
        return [
            t for t in (self.audio_info, self.audio, self.rotation_topic, self.camera_info) if t
        ]


def _sensor_topics_of(reader: BagReader, msgtype: str) -> list[str]:
    return [
        t
        for t in reader.topics_of_type(msgtype)
        if not t.startswith(GROUND_TRUTH_PREFIX) and reader.topics[t].count > 0
    ]


def _one(reader: BagReader, msgtype: str, what: str, preferred: str = "") -> str:
    found = _sensor_topics_of(reader, msgtype)
    if not found:
        return ""
    if len(found) > 1:
        if preferred in found:
            return preferred
        raise InputFormatError(
            f"{reader.path}: several {what} topics ({', '.join(found)}); keep one in the recording"
        )
    return found[0]


def plan_sensor_topics(reader: BagReader, rotation: str = "auto") -> SensorTopics:
    """The audio and rotation topics of ``reader`` (see the module doc); InputFormatError
    with what is missing and what to record instead."""
    if rotation not in ROTATION_SOURCES:
        raise InputFormatError(f"rotation must be one of {ROTATION_SOURCES}, got {rotation!r}")
    audio = _one(reader, AUDIO_TYPE, "audio", "/audio/audio_stamped")
    if not audio:
        others = [
            f"{t.name} ({UNSUPPORTED_TYPES[t.msgtype]})"
            for t in reader.topics.values()
            if t.msgtype in UNSUPPORTED_TYPES
        ]
        raise InputFormatError(
            f"{reader.path}: no audio: the recording has no {AUDIO_TYPE} messages"
            + (f"; found {'; '.join(others)}" if others else "")
        )
    info = _one(reader, AUDIO_INFO_TYPE, "AudioInfo", "/audio/audio_info")
    if not info:
        raise InputFormatError(
            f"{reader.path}: audio without AudioInfo: {audio} has samples but the recording "
            "has no AudioInfo message, so their rate, channels and format are unknown; record "
            "the AudioInfo topic too (audio/audio_info)"
        )
    choices = {
        "odom": lambda: _one(reader, ODOMETRY_TYPE, "odometry", "/odom"),
        "imu": lambda: _one(reader, IMU_TYPE, "IMU"),
        "camera": lambda: _one(reader, IMAGE_TYPE, "image", "/camera/image_raw"),
    }
    order = ["odom", "imu", "camera"] if rotation == "auto" else [rotation]
    for kind in order:
        topic = choices[kind]()
        if not topic:
            continue
        camera_info = ""
        if kind == "camera":
            camera_info = _one(reader, CAMERA_INFO_TYPE, "CameraInfo", "/camera/camera_info")
            if not camera_info:
                raise InputFormatError(
                    f"{reader.path}: the camera's turns need its CameraInfo (the focal length), "
                    f"and the recording has none for {topic}: record camera_info too"
                )
        return SensorTopics(audio, info, kind, topic, camera_info)
    wanted = {
        "auto": f"{ODOMETRY_TYPE} (/odom), {IMU_TYPE} or {IMAGE_TYPE} + CameraInfo",
        "odom": ODOMETRY_TYPE,
        "imu": IMU_TYPE,
        "camera": f"{IMAGE_TYPE} + CameraInfo",
    }[rotation]
    raise InputFormatError(
        f"{reader.path}: no rotation: the recording has no {wanted} message, so the robot's "
        "turns are unknown; record /odom, an IMU or the camera"
    )


@dataclass
class AudioStream:
    """Decoded audio: samples (frames, 2) float32 at ``sample_rate`` Hz, channel 0 left;
    ``start_ns`` the capture time of sample 0; ``covered`` (frames,) False where no chunk
    delivered samples (gaps)."""

    samples: npt.NDArray[np.float32]
    sample_rate: int
    start_ns: int
    covered: npt.NDArray[np.bool_]
    sample_format: str


def read_audio(reader: BagReader, topics: SensorTopics) -> AudioStream:
    """The recording's audio, every chunk placed at its stamp."""
    from slfm_ros.core.dsp.audio_format import decode_interleaved
    from slfm_ros.nodes import msg_conversions as conv

    types = MessageTypes()
    fields = None
    chunks: list[tuple[int, bytes]] = []
    for message in reader.messages([topics.audio_info, topics.audio]):
        msg = types.decode(message)
        if message.topic == topics.audio_info:
            if fields is None:
                fields = conv.audio_info_fields(msg)
        else:
            data, stamp = conv.audio_payload(msg)
            chunks.append((stamp, data))
    if fields is None:
        raise InputFormatError(f"{reader.path}: audio without AudioInfo ({topics.audio_info})")
    if fields.coding_format not in ("wave", ""):
        raise InputFormatError(
            f"{reader.path}: audio coded as {fields.coding_format!r}; record raw samples "
            "(coding_format wave)"
        )
    if fields.channels != 2:
        raise InputFormatError(
            f"{reader.path}: {fields.channels}-channel audio; learning sound directions needs "
            "two channels (left, right)"
        )
    if not chunks:
        raise InputFormatError(f"{reader.path}: {topics.audio} has no audio samples")
    rate = int(fields.sample_rate)
    decoded = [(s, decode_interleaved(d, fields.sample_format, 2)) for s, d in chunks]
    decoded.sort(key=lambda item: item[0])
    start = decoded[0][0]
    offsets = [int(round((s - start) * rate / _NS_PER_S)) for s, _ in decoded]
    total = max(o + a.shape[0] for o, (_, a) in zip(offsets, decoded, strict=True))
    samples = np.zeros((total, 2), dtype=np.float32)
    covered = np.zeros(total, dtype=bool)
    for offset, (_, chunk) in zip(offsets, decoded, strict=True):
        samples[offset : offset + chunk.shape[0]] = chunk
        covered[offset : offset + chunk.shape[0]] = True
    return AudioStream(samples, rate, start, covered, fields.sample_format)


@dataclass
class YawSeries:
    """Robot yaw (unwrapped rad) at capture stamps (ns), one segment id per sample."""

    stamps_ns: npt.NDArray[np.int64]
    yaw: npt.NDArray[np.float64]
    segment: npt.NDArray[np.int64]
    source: str
    notes: list[str] = field(default_factory=list)

    def at(self, stamps_ns: npt.ArrayLike) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64]]:
        """(yaw, segment) at ``stamps_ns``, interpolated between the two samples around each
        stamp; NaN / -1 outside the series, between segments and across gaps over 0.5 s."""
        t = np.asarray(stamps_ns, dtype=np.int64)
        yaw = np.full(t.shape, np.nan)
        seg = np.full(t.shape, -1, dtype=np.int64)
        if self.stamps_ns.size < 2:
            return yaw, seg
        lo = np.clip(
            np.searchsorted(self.stamps_ns, t, side="right") - 1, 0, self.stamps_ns.size - 2
        )
        hi = lo + 1
        inside = (t >= self.stamps_ns[0]) & (t <= self.stamps_ns[-1])
        span = self.stamps_ns[hi] - self.stamps_ns[lo]
        good = inside & (self.segment[lo] == self.segment[hi]) & (span <= _NS_PER_S // 2)
        frac = (t - self.stamps_ns[lo]) / np.maximum(span, 1)
        yaw[good] = (self.yaw[lo] + frac * (self.yaw[hi] - self.yaw[lo]))[good]
        seg[good] = self.segment[lo][good]
        return yaw, seg


def _series(stamps: list[int], yaws: list[float], segments: list[int], source: str) -> YawSeries:
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    t = np.asarray(stamps, dtype=np.int64)[order]
    y = np.asarray(yaws, dtype=np.float64)[order]
    s = np.asarray(segments, dtype=np.int64)[order]
    out = y.copy()
    for seg in np.unique(s):
        m = s == seg
        out[m] = np.unwrap(y[m])
    return YawSeries(t, out, s, source)


def read_yaw(
    reader: BagReader,
    topics: SensorTopics,
    camera_rate_hz: float = 5.0,
    progress: Callable[[str], None] | None = None,
) -> YawSeries:
    """The robot's yaw over the recording from ``topics.rotation`` (see the module doc)."""
    from slfm_ros.core.conventions import yaw_from_quaternion
    from slfm_ros.nodes import msg_conversions as conv

    types = MessageTypes()
    if topics.rotation == "odom":
        stamps, yaws = [], []
        for message in reader.messages([topics.rotation_topic]):
            msg = types.decode(message)
            o = msg.pose.pose.orientation
            stamps.append(conv.stamp_to_ns(msg.header.stamp))
            yaws.append(float(yaw_from_quaternion(o.x, o.y, o.z, o.w)))
        return _series(stamps, yaws, [0] * len(stamps), f"odom {topics.rotation_topic}")
    if topics.rotation == "imu":
        return _imu_yaw(reader, topics, types)
    return _camera_yaw(reader, topics, types, camera_rate_hz, progress)


def _imu_yaw(reader: BagReader, topics: SensorTopics, types: MessageTypes) -> YawSeries:
    from slfm_ros.core.conventions import yaw_from_quaternion
    from slfm_ros.nodes import msg_conversions as conv

    stamps, yaws, rates = [], [], []
    has_orientation = False
    for message in reader.messages([topics.rotation_topic]):
        msg = types.decode(message)
        stamps.append(conv.stamp_to_ns(msg.header.stamp))
        o = msg.orientation
        # orientation_covariance[0] == -1 marks "no orientation" (sensor_msgs/Imu).
        if float(msg.orientation_covariance[0]) != -1.0 and (o.x, o.y, o.z, o.w) != (0, 0, 0, 0):
            has_orientation = True
        yaws.append(float(yaw_from_quaternion(o.x, o.y, o.z, o.w)))
        rates.append(float(msg.angular_velocity.z))
    if has_orientation:
        return _series(stamps, yaws, [0] * len(stamps), f"imu {topics.rotation_topic} orientation")
    order = np.argsort(np.asarray(stamps), kind="stable")
    t = np.asarray(stamps, dtype=np.int64)[order]
    w = np.asarray(rates)[order]
    dt = np.diff(t) / _NS_PER_S
    integrated = np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * dt)])
    return YawSeries(
        t, integrated, np.zeros(t.size, dtype=np.int64), f"imu {topics.rotation_topic} rate"
    )


def _camera_yaw(
    reader: BagReader,
    topics: SensorTopics,
    types: MessageTypes,
    rate_hz: float,
    progress: Callable[[str], None] | None,
) -> YawSeries:
    from slfm_ros.core.estimators.feature_yaw import FeatureMatchingYaw
    from slfm_ros.nodes import msg_conversions as conv

    K = None
    for message in reader.messages([topics.camera_info]):
        info = types.decode(message)
        K = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
        if K[0, 0] > 0:
            break
    if K is None or K[0, 0] <= 0:
        raise InputFormatError(f"{reader.path}: {topics.camera_info} has no focal length (k)")
    # The camera is taken as level (the turn is the rotation about its vertical axis).
    matcher = FeatureMatchingYaw("orb", K=K, pitch=0.0, max_features=600)
    step_ns = int(_NS_PER_S / rate_hz)
    stamps, yaws, segments = [], [], []
    last_img = None
    last_stamp = -(10**18)
    yaw, segment, failures, pairs = 0.0, 0, 0, 0
    last_log = -(10**18)
    for message in reader.messages([topics.rotation_topic]):
        # Frames between the measured ones are skipped by their record time, undecoded.
        if message.log_ns - last_log < step_ns * 0.9:
            continue
        msg = types.decode(message)
        stamp = conv.stamp_to_ns(msg.header.stamp)
        if stamp - last_stamp < step_ns * 0.9:
            continue
        last_log = message.log_ns
        img = conv.image_to_rgb(msg)
        if last_img is not None:
            est = matcher.estimate(last_img, img)
            pairs += 1
            if est.valid:
                yaw += float(est.angle)
            else:
                failures += 1
                segment += 1
                yaw = 0.0
        stamps.append(stamp)
        yaws.append(yaw)
        segments.append(segment)
        last_img, last_stamp = img, stamp
        if progress is not None and pairs and pairs % 100 == 0:
            progress(f"camera turns: {pairs} frame pairs matched")
    series = _series(stamps, yaws, segments, f"camera {topics.rotation_topic} (ORB, chained)")
    if failures:
        series.notes.append(
            f"{failures} of {pairs} frame pairs could not be matched; the recording splits "
            f"into {segment + 1} segments"
        )
    if not stamps:
        raise InputFormatError(f"{reader.path}: {topics.rotation_topic} has no images")
    return series
