"""Conversions between ROS messages and the numpy arrays / numbers of ``slfm_ros.core``.

The nodes stay I/O only: every field layout decision lives here.

Stamps: ROS ``builtin_interfaces/Time`` <-> integer nanoseconds.
Audio:  ``audio_common_msgs/AudioDataStamped`` bytes are interleaved little-endian samples
        described by ``AudioInfo`` (decoded with ``slfm_ros.core.dsp.audio_format``).
Images: ``sensor_msgs/Image`` <-> (H, W, 3) uint8 RGB without cv_bridge. Readable encodings:
        rgb8, bgr8, mono8, mono16, rgba8, bgra8, yuv422 (UYVY) and yuv422_yuy2 (YUYV).
Outputs: sound direction as PoseWithCovarianceStamped, camera yaw as Odometry.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt
from builtin_interfaces.msg import Time
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Odometry
from sensor_msgs.msg import Image

from slfm_ros.core.conventions import unit_vector, yaw_quaternion
from slfm_ros.core.dsp.audio_format import decode_interleaved, encode_interleaved
from slfm_ros.core.errors import InputFormatError

NS_PER_S = 1_000_000_000

# Covariance entries of quantities that are fixed by construction (z of a horizontal direction,
# roll and pitch of a yaw-only rotation): known, so tiny but positive for filters that invert.
FIXED_VARIANCE = 1e-9
# Covariance entries of quantities this node does not measure (position of the camera, linear
# velocity): large, so a filter ignores them if it is told to fuse them by mistake.
UNKNOWN_VARIANCE = 1e6

# 6x6 row-major covariance indices of a pose/twist (x, y, z, roll, pitch, yaw).
_X, _Y, _Z, _ROLL, _PITCH, _YAW = (i * 7 for i in range(6))

READABLE_ENCODINGS = (
    "rgb8",
    "bgr8",
    "mono8",
    "mono16",
    "rgba8",
    "bgra8",
    "yuv422",
    "yuv422_yuy2",
)

_CHANNELS = {"rgb8": 3, "bgr8": 3, "mono8": 1, "rgba8": 4, "bgra8": 4}


def ns_to_stamp(stamp_ns: int) -> Time:
    """Integer nanoseconds (>= 0) -> builtin_interfaces/Time."""
    if stamp_ns < 0:
        raise InputFormatError(f"stamp must be >= 0 ns, got {stamp_ns}")
    sec, nanosec = divmod(int(stamp_ns), NS_PER_S)
    return Time(sec=sec, nanosec=nanosec)


def stamp_to_ns(stamp: Time) -> int:
    """builtin_interfaces/Time -> integer nanoseconds."""
    return int(stamp.sec) * NS_PER_S + int(stamp.nanosec)


# --- audio -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AudioInfoFields:
    """The fields of an AudioInfo message that the pipeline uses."""

    channels: int
    sample_rate: int
    sample_format: str
    coding_format: str


def audio_info_fields(msg: object) -> AudioInfoFields:
    """Read an ``audio_common_msgs/AudioInfo``."""
    return AudioInfoFields(
        channels=int(msg.channels),  # type: ignore[attr-defined]
        sample_rate=int(msg.sample_rate),  # type: ignore[attr-defined]
        sample_format=str(msg.sample_format),  # type: ignore[attr-defined]
        coding_format=str(msg.coding_format),  # type: ignore[attr-defined]
    )


def audio_payload(msg: object) -> tuple[bytes, int]:
    """(raw interleaved bytes, stamp ns of the first sample) of an AudioDataStamped."""
    data = msg.audio.data  # type: ignore[attr-defined]
    payload = data if isinstance(data, bytes) else bytes(data)
    return payload, stamp_to_ns(msg.header.stamp)  # type: ignore[attr-defined]


def audio_msg_to_array(msg: object, sample_format: str, channels: int) -> npt.NDArray[np.float32]:
    """Samples of an AudioDataStamped as a (frames, channels) float32 array."""
    payload, _ = audio_payload(msg)
    return decode_interleaved(payload, sample_format, channels)


def make_audio_msg(
    audio: npt.ArrayLike, stamp_ns: int, sample_format: str, frame_id: str
) -> object:
    """AudioDataStamped of (frames, channels) float samples; stamp = first sample's time."""
    from audio_common_msgs.msg import AudioDataStamped

    msg = AudioDataStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.audio.data = encode_interleaved(audio, sample_format)
    return msg


def make_audio_info_msg(
    channels: int,
    sample_rate: int,
    sample_format: str,
    coding_format: str = "wave",
    bitrate: int = 0,
) -> object:
    """AudioInfo message describing a raw ("wave") stream."""
    from audio_common_msgs.msg import AudioInfo

    return AudioInfo(
        channels=channels,
        sample_rate=sample_rate,
        sample_format=sample_format,
        bitrate=bitrate,
        coding_format=coding_format,
    )


# --- images ----------------------------------------------------------------------------------


def image_to_rgb(msg: Image) -> npt.NDArray[np.uint8]:
    """A sensor_msgs/Image as an (H, W, 3) uint8 RGB array (a copy).

    Raises InputFormatError for an encoding outside READABLE_ENCODINGS or a data size that
    does not match height, step and encoding.
    """
    enc = msg.encoding.lower()
    if enc not in READABLE_ENCODINGS:
        raise InputFormatError(
            f"image encoding {msg.encoding!r} is not readable: expected one of "
            f"{', '.join(READABLE_ENCODINGS)}; publish rgb8/bgr8 (camera_node does)"
        )
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    data = np.frombuffer(msg.data, dtype=np.uint8)
    bytes_per_pixel = 2 if enc in ("mono16", "yuv422", "yuv422_yuy2") else _CHANNELS[enc]
    row_bytes = width * bytes_per_pixel
    if height <= 0 or width <= 0 or step < row_bytes or data.size < height * step:
        raise InputFormatError(
            f"image {width}x{height} {enc}: expected step >= {row_bytes} and at least "
            f"height*step bytes, got step {step} and {data.size} bytes"
        )
    rows = data[: height * step].reshape(height, step)[:, :row_bytes]
    if enc == "mono16":
        dtype = ">u2" if msg.is_bigendian else "<u2"
        mono = np.ascontiguousarray(rows).view(dtype).reshape(height, width)
        gray = (mono >> 8).astype(np.uint8)
        return np.repeat(gray[:, :, None], 3, axis=2)
    if enc in ("yuv422", "yuv422_yuy2"):
        packed = np.ascontiguousarray(rows).reshape(height, width, 2)
        code = cv2.COLOR_YUV2RGB_UYVY if enc == "yuv422" else cv2.COLOR_YUV2RGB_YUY2
        return np.asarray(cv2.cvtColor(packed, code), dtype=np.uint8)
    pixels = rows.reshape(height, width, _CHANNELS[enc])
    if enc == "rgb8":
        return np.ascontiguousarray(pixels)
    if enc == "bgr8":
        return np.ascontiguousarray(pixels[:, :, ::-1])
    if enc == "mono8":
        return np.repeat(pixels, 3, axis=2)
    if enc == "rgba8":
        return np.ascontiguousarray(pixels[:, :, :3])
    return np.ascontiguousarray(pixels[:, :, 2::-1])  # bgra8


def rgb_to_image(
    rgb: npt.NDArray[np.uint8], stamp_ns: int, frame_id: str, encoding: str = "rgb8"
) -> Image:
    """An (H, W, 3) uint8 RGB array as a sensor_msgs/Image in ``encoding`` (rgb8 or bgr8)."""
    arr = np.asarray(rgb)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise InputFormatError(f"expected (H, W, 3) uint8 RGB, got {arr.dtype} {arr.shape}")
    if encoding == "bgr8":
        arr = arr[:, :, ::-1]
    elif encoding != "rgb8":
        raise InputFormatError(f"expected encoding rgb8 or bgr8, got {encoding!r}")
    msg = Image()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = int(arr.shape[1]) * 3
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg


# --- outputs ---------------------------------------------------------------------------------


def sound_direction_msg(
    azimuth: float, variance: float, stamp_ns: int, frame_id: str
) -> PoseWithCovarianceStamped:
    """Sound direction as a pose in the microphone frame.

    orientation: yaw quaternion of ``azimuth`` (radians, REP-103, left positive);
    position: unit vector toward the source (so RViz shows an arrow and a point);
    covariance: yaw variance (rad^2) at [35]; x/y variance of the unit-vector tip equals the
    yaw variance (arc length on the unit circle); z, roll, pitch fixed.
    """
    msg = PoseWithCovarianceStamped()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = frame_id
    x, y, z = unit_vector(azimuth)
    msg.pose.pose.position.x, msg.pose.pose.position.y, msg.pose.pose.position.z = x, y, z
    q = yaw_quaternion(azimuth)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = q
    cov = [0.0] * 36
    cov[_X] = cov[_Y] = float(variance)
    cov[_Z] = cov[_ROLL] = cov[_PITCH] = FIXED_VARIANCE
    cov[_YAW] = float(variance)
    msg.pose.covariance = cov
    return msg


def camera_yaw_msg(
    yaw: float,
    yaw_variance: float,
    yaw_rate: float,
    yaw_rate_variance: float,
    stamp_ns: int,
    odom_frame_id: str,
    camera_frame_id: str,
) -> Odometry:
    """Integrated camera yaw as Odometry, ready for robot_localization as a rotation source.

    pose: orientation = yaw quaternion (radians), covariance[35] = yaw variance; position is
    not measured (UNKNOWN_VARIANCE). twist: angular.z = yaw rate (rad/s) with its variance at
    [35]; linear velocity not measured. Roll and pitch are fixed (FIXED_VARIANCE).
    """
    msg = Odometry()
    msg.header.stamp = ns_to_stamp(stamp_ns)
    msg.header.frame_id = odom_frame_id
    msg.child_frame_id = camera_frame_id
    q = yaw_quaternion(yaw)
    o = msg.pose.pose.orientation
    o.x, o.y, o.z, o.w = q
    pose_cov = [0.0] * 36
    pose_cov[_X] = pose_cov[_Y] = pose_cov[_Z] = UNKNOWN_VARIANCE
    pose_cov[_ROLL] = pose_cov[_PITCH] = FIXED_VARIANCE
    pose_cov[_YAW] = float(yaw_variance)
    msg.pose.covariance = pose_cov
    msg.twist.twist.angular.z = float(yaw_rate)
    twist_cov = [0.0] * 36
    twist_cov[_X] = twist_cov[_Y] = twist_cov[_Z] = UNKNOWN_VARIANCE
    twist_cov[_ROLL] = twist_cov[_PITCH] = FIXED_VARIANCE
    twist_cov[_YAW] = float(yaw_rate_variance)
    msg.twist.covariance = twist_cov
    return msg
