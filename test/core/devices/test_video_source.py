"""Video sources on real files written with OpenCV, and camera calibration loading."""

from __future__ import annotations

import math
from pathlib import Path

import cv2
import numpy as np
import pytest

from slfm_ros.core.devices.video_source import (
    CameraCalibration,
    EndOfVideo,
    SourceKind,
    VideoSource,
    load_calibration,
    parse_source,
    source_kind,
)
from slfm_ros.core.errors import ConfigError, InputFormatError

WIDTH, HEIGHT = 160, 120


def write_video(path: Path, frames: int, fps: float = 20.0) -> Path:
    """MJPG .avi: red top-left and blue bottom-right squares (BGR order is written), and a
    middle band whose grey level encodes the frame number (``frame_number_of``)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        bgr[:30, :40] = (0, 0, 255)  # red
        bgr[-30:, -40:] = (255, 0, 0)  # blue
        bgr[50:70, :] = 10 + 20 * i
        writer.write(bgr)
    writer.release()
    return path


def frame_number_of(rgb: np.ndarray) -> int:
    h = rgb.shape[0]
    band = rgb[int(h * 0.45) : int(h * 0.55)].astype(float).mean()
    return round((band - 10) / 20)


def assert_colours_in_rgb_order(rgb: np.ndarray) -> None:
    h, w = rgb.shape[:2]
    top_left = rgb[: h // 8, : w // 8].reshape(-1, 3).mean(axis=0)
    bottom_right = rgb[-h // 8 :, -w // 8 :].reshape(-1, 3).mean(axis=0)
    assert top_left[0] > 200 and top_left[2] < 60, top_left
    assert bottom_right[2] > 200 and bottom_right[0] < 60, bottom_right


def test_parse_source_kinds(tmp_path: Path) -> None:
    video = write_video(tmp_path / "v.avi", 2)
    assert parse_source("0") == (SourceKind.DEVICE, 0)
    assert parse_source("rtsp://camera.local/stream") == (
        SourceKind.STREAM,
        "rtsp://camera.local/stream",
    )
    assert parse_source(str(video)) == (SourceKind.FILE, str(video))
    assert parse_source(f"file://{video}") == (SourceKind.FILE, str(video))
    with pytest.raises(ConfigError, match="no such camera device"):
        parse_source("/dev/video_does_not_exist")
    with pytest.raises(ConfigError, match="expected an existing video file"):
        parse_source(str(tmp_path / "missing.avi"))
    with pytest.raises(ConfigError, match="got a directory"):
        parse_source(str(tmp_path))
    with pytest.raises(ConfigError, match="got ''"):
        parse_source("  ")


def test_source_kind_names_cameras_and_streams_that_are_not_there_yet(tmp_path: Path) -> None:
    assert source_kind("2") is SourceKind.DEVICE
    assert source_kind("/dev/video_does_not_exist") is SourceKind.DEVICE
    assert source_kind("file:///dev/video_does_not_exist") is SourceKind.DEVICE
    assert source_kind(" rtsp://camera.local/stream ") is SourceKind.STREAM
    assert source_kind(str(tmp_path / "missing.avi")) is SourceKind.FILE
    assert source_kind(f"file://{tmp_path}/missing.avi") is SourceKind.FILE
    with pytest.raises(ConfigError, match="got ''"):
        source_kind("")


def test_file_frames_arrive_in_order_as_rgb_then_end(tmp_path: Path) -> None:
    clock = iter(range(1_000, 10**9, 1_000))
    with VideoSource(str(write_video(tmp_path / "v.avi", 6)), clock_ns=lambda: next(clock)) as src:
        assert src.kind is SourceKind.FILE
        assert (src.width, src.height, src.frame_count) == (WIDTH, HEIGHT, 6)
        assert src.fps == pytest.approx(20.0)
        frames = list(src)
    assert [f.index for f in frames] == list(range(6))
    assert [frame_number_of(f.image) for f in frames] == list(range(6))
    assert [f.position_s for f in frames] == pytest.approx([i / 20.0 for i in range(6)])
    assert all(f.image.shape == (HEIGHT, WIDTH, 3) and f.image.dtype == np.uint8 for f in frames)
    assert_colours_in_rgb_order(frames[0].image)
    stamps = [f.stamp_ns for f in frames]
    assert stamps == sorted(stamps) and len(set(stamps)) == 6


def test_loop_restarts_the_file_and_resize_keeps_the_aspect(tmp_path: Path) -> None:
    src = VideoSource(str(write_video(tmp_path / "v.avi", 4)), loop=True, width=80)
    frames = [src.read() for _ in range(10)]
    src.close()
    assert [frame_number_of(f.image) for f in frames] == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]
    assert [f.index for f in frames] == list(range(10))
    assert (src.width, src.height) == (80, 60)
    assert frames[-1].image.shape == (60, 80, 3)
    assert_colours_in_rgb_order(frames[-1].image)
    no_loop = VideoSource(str(write_video(tmp_path / "w.avi", 2)))
    no_loop.read(), no_loop.read()
    with pytest.raises(EndOfVideo):
        no_loop.read()


def test_unreadable_file_and_missing_device_fail_clearly(tmp_path: Path) -> None:
    junk = tmp_path / "junk.avi"
    junk.write_bytes(b"this is not a video" * 100)
    with pytest.raises(InputFormatError, match="cannot read"):
        VideoSource(str(junk))
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(InputFormatError, match="cannot read"):
        VideoSource(str(empty))
    with pytest.raises(ConfigError, match="available video devices"):
        VideoSource("63")


def test_intrinsics_from_hfov_and_scaling() -> None:
    calib = CameraCalibration.from_hfov(640, 480, math.radians(60.0))
    fx = 320.0 / math.tan(math.radians(30.0))
    np.testing.assert_allclose(calib.K, [[fx, 0, 319.5], [0, fx, 239.5], [0, 0, 1]])
    assert calib.P is not None and calib.P.shape == (3, 4)
    np.testing.assert_allclose(calib.P[:, :3], calib.K)
    assert math.degrees(calib.hfov_rad) == pytest.approx(60.0)
    half = calib.scaled(320, 240)
    # Scaling the hfov camera equals the hfov camera at the new size.
    np.testing.assert_allclose(half.K, CameraCalibration.from_hfov(320, 240, calib.hfov_rad).K)


CALIBRATION_YAML = """\
image_width: 640
image_height: 480
camera_name: head_camera
camera_matrix:
  rows: 3
  cols: 3
  data: [500.0, 0.0, 321.0, 0.0, 502.0, 238.0, 0.0, 0.0, 1.0]
distortion_model: plumb_bob
distortion_coefficients:
  rows: 1
  cols: 5
  data: [-0.1, 0.01, 0.0, 0.0, 0.0]
rectification_matrix:
  rows: 3
  cols: 3
  data: [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
projection_matrix:
  rows: 3
  cols: 4
  data: [490.0, 0.0, 320.0, 0.0, 0.0, 495.0, 240.0, 0.0, 0.0, 0.0, 1.0, 0.0]
"""


def test_load_calibration_reads_the_ros_camera_info_format(tmp_path: Path) -> None:
    path = tmp_path / "head_camera.yaml"
    path.write_text(CALIBRATION_YAML)
    for url in (str(path), f"file://{path}"):
        calib = load_calibration(url)
        assert (calib.width, calib.height, calib.camera_name) == (640, 480, "head_camera")
        np.testing.assert_allclose(calib.K[0], [500.0, 0.0, 321.0])
        assert calib.D == (-0.1, 0.01, 0.0, 0.0, 0.0)
        assert calib.P is not None and calib.P[1, 1] == 495.0
    half = calib.scaled(320, 240)
    np.testing.assert_allclose(half.K[0], [250.0, 0.0, 160.25])
    np.testing.assert_allclose(half.P[1], [0.0, 247.5, 119.75, 0.0])


def test_load_calibration_errors_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="expected a calibration YAML file"):
        load_calibration(str(tmp_path / "missing.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("image_width: 640\nimage_height: 480\n")
    with pytest.raises(InputFormatError, match="missing \\['camera_matrix'\\]"):
        load_calibration(str(bad))
    bad.write_text(CALIBRATION_YAML.replace("500.0, 0.0, 321.0", "0.0, 0.0, 321.0"))
    with pytest.raises(InputFormatError, match="uncalibrated"):
        load_calibration(str(bad))
    bad.write_text(CALIBRATION_YAML.replace("240.0, 0.0, 0.0, 0.0, 1.0, 0.0]", "240.0]"))
    with pytest.raises(InputFormatError, match="projection_matrix' expected 3x4"):
        load_calibration(str(bad))
