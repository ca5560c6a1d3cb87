"""Message <-> array conversions: stamps, audio, every readable image encoding, outputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from audio_common_msgs.msg import AudioDataStamped, AudioInfo
from rclpy.serialization import deserialize_message, serialize_message
from sensor_msgs.msg import Image

from slfm_ros.core.conventions import yaw_from_quaternion
from slfm_ros.core.errors import InputFormatError
from slfm_ros.nodes import msg_conversions as conv


def test_stamp_round_trip_is_exact() -> None:
    for ns in (0, 1, 999_999_999, 1_000_000_000, 1_700_000_000_123_456_789):
        stamp = conv.ns_to_stamp(ns)
        assert conv.stamp_to_ns(stamp) == ns
        assert 0 <= stamp.nanosec < 1_000_000_000
    with pytest.raises(InputFormatError):
        conv.ns_to_stamp(-1)


@pytest.mark.parametrize("fmt", ["S16LE", "S32LE", "F32LE"])
def test_audio_round_trip_through_serialised_messages(fmt: str) -> None:
    rng = np.random.default_rng(1)
    audio = (rng.uniform(-0.5, 0.5, (960, 2))).astype(np.float32)
    msg = conv.make_audio_msg(audio, 1_234_000_000_005, fmt, "mic_link")
    wire = deserialize_message(serialize_message(msg), AudioDataStamped)
    data, stamp = conv.audio_payload(wire)
    assert stamp == 1_234_000_000_005 and wire.header.frame_id == "mic_link"
    assert len(data) == 960 * 2 * (2 if fmt == "S16LE" else 4)
    back = conv.audio_msg_to_array(wire, fmt, 2)
    tol = 1.0 / 32768 if fmt == "S16LE" else 1e-7
    np.testing.assert_allclose(back, audio, atol=tol)


def test_audio_info_fields() -> None:
    info = deserialize_message(
        serialize_message(conv.make_audio_info_msg(2, 48000, "S16LE")), AudioInfo
    )
    fields = conv.audio_info_fields(info)
    assert fields == conv.AudioInfoFields(2, 48000, "S16LE", "wave")


def _image(encoding: str, pixels: np.ndarray, step_pad: int = 0) -> Image:
    h, w = pixels.shape[:2]
    row = pixels.reshape(h, -1)
    padded = np.zeros((h, row.shape[1] + step_pad), dtype=np.uint8)
    padded[:, : row.shape[1]] = row
    msg = Image(height=h, width=w, encoding=encoding, step=padded.shape[1])
    msg.data = padded.tobytes()
    return msg


@pytest.fixture(scope="module")
def rgb() -> np.ndarray:
    return np.random.default_rng(2).integers(0, 256, (6, 8, 3), dtype=np.uint8)


@pytest.mark.parametrize("pad", [0, 5])
def test_colour_encodings_decode_to_the_same_rgb(rgb: np.ndarray, pad: int) -> None:
    alpha = np.full(rgb.shape[:2] + (1,), 7, dtype=np.uint8)
    cases = {
        "rgb8": rgb,
        "bgr8": rgb[:, :, ::-1],
        "rgba8": np.concatenate([rgb, alpha], axis=2),
        "bgra8": np.concatenate([rgb[:, :, ::-1], alpha], axis=2),
    }
    for encoding, pixels in cases.items():
        out = conv.image_to_rgb(_image(encoding, np.ascontiguousarray(pixels), pad))
        np.testing.assert_array_equal(out, rgb, err_msg=encoding)


def test_mono_encodings_become_grey_rgb(rgb: np.ndarray) -> None:
    grey = rgb[:, :, 0]
    out = conv.image_to_rgb(_image("mono8", grey[:, :, None]))
    assert out.shape == rgb.shape and np.all(out == grey[:, :, None])
    wide = grey.astype(np.uint16) * 256 + 77
    for big in (False, True):
        raw = wide.astype(">u2" if big else "<u2").view(np.uint8).reshape(6, 16)
        msg = _image("mono16", raw[:, :, None])
        msg.width, msg.is_bigendian = 8, int(big)
        np.testing.assert_array_equal(conv.image_to_rgb(msg)[:, :, 1], grey)


def test_yuv422_encodings_decode_to_rgb() -> None:
    # A flat-colour image survives 4:2:2 chroma subsampling, so both packings must give it back.
    flat = np.zeros((4, 8, 3), dtype=np.uint8)
    flat[:] = (200, 60, 30)
    r, g, b = (c / 255.0 for c in (200, 60, 30))
    # ITU-R BT.601 video range, the YUV of 4:2:2 camera streams.
    y = np.full((4, 8), round(16 + 65.481 * r + 128.553 * g + 24.966 * b), dtype=np.uint8)
    u = np.full((4, 8), round(128 - 37.797 * r - 74.203 * g + 112.0 * b), dtype=np.uint8)
    v = np.full((4, 8), round(128 + 112.0 * r - 93.786 * g - 18.214 * b), dtype=np.uint8)
    uyvy = np.zeros((4, 8, 2), dtype=np.uint8)
    uyvy[:, :, 1] = y
    uyvy[:, 0::2, 0], uyvy[:, 1::2, 0] = u[:, 0::2], v[:, 0::2]
    yuyv = uyvy[:, :, ::-1].copy()
    for encoding, packed in (("yuv422", uyvy), ("yuv422_yuy2", yuyv)):
        out = conv.image_to_rgb(_image(encoding, packed))
        assert np.abs(out.astype(int) - flat.astype(int)).max() <= 3, encoding


def test_unreadable_images_raise_with_the_readable_list(rgb: np.ndarray) -> None:
    with pytest.raises(InputFormatError, match=r"bayer_rggb8.*rgb8"):
        conv.image_to_rgb(_image("bayer_rggb8", rgb[:, :, :1]))
    short = _image("rgb8", rgb)
    short.data = bytes(short.data)[:-10]
    with pytest.raises(InputFormatError, match="step"):
        conv.image_to_rgb(short)


def test_rgb_to_image_round_trip(rgb: np.ndarray) -> None:
    for encoding in ("rgb8", "bgr8"):
        msg = conv.rgb_to_image(rgb, 42, "camera_optical_frame", encoding)
        wire = deserialize_message(serialize_message(msg), Image)
        assert wire.encoding == encoding and conv.stamp_to_ns(wire.header.stamp) == 42
        np.testing.assert_array_equal(conv.image_to_rgb(wire), rgb)


def test_sound_direction_pose() -> None:
    az = math.radians(120.0)
    msg = conv.sound_direction_msg(az, 0.01, 5 * 10**9, "mic_link")
    o, p = msg.pose.pose.orientation, msg.pose.pose.position
    assert yaw_from_quaternion(o.x, o.y, o.z, o.w) == pytest.approx(az)
    assert (p.x, p.y, p.z) == pytest.approx((math.cos(az), math.sin(az), 0.0))
    assert math.hypot(p.x, p.y) == pytest.approx(1.0)
    cov = np.array(msg.pose.covariance).reshape(6, 6)
    assert cov[5, 5] == 0.01 and np.all(np.diag(cov) > 0)
    assert msg.header.frame_id == "mic_link" and msg.header.stamp.sec == 5


def test_camera_yaw_odometry() -> None:
    msg = conv.camera_yaw_msg(4.0, 0.02, -0.3, 0.001, 7, "odom", "camera_link")
    o = msg.pose.pose.orientation
    assert yaw_from_quaternion(o.x, o.y, o.z, o.w) == pytest.approx(4.0 - 2 * math.pi)
    assert msg.twist.twist.angular.z == pytest.approx(-0.3)
    assert msg.header.frame_id == "odom" and msg.child_frame_id == "camera_link"
    pose_cov = np.array(msg.pose.covariance).reshape(6, 6)
    twist_cov = np.array(msg.twist.covariance).reshape(6, 6)
    assert pose_cov[5, 5] == 0.02 and twist_cov[5, 5] == 0.001
    assert np.all(np.diag(pose_cov) > 0) and np.all(np.diag(twist_cov) > 0)
