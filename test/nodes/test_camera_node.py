"""camera_node as a separate process on real video files, over DDS."""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from node_process import ListenerNode, start_node, stop  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

from slfm_ros.nodes.msg_conversions import image_to_rgb, stamp_to_ns  # noqa: E402

WIDTH, HEIGHT = 160, 120


def write_video(path: Path, frames: int, fps: float = 20.0) -> Path:
    """MJPG .avi: red top-left, blue bottom-right, and a middle band whose grey level encodes
    the frame number (``frame_number_of``)."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (WIDTH, HEIGHT))
    assert writer.isOpened()
    for i in range(frames):
        bgr = np.full((HEIGHT, WIDTH, 3), 128, np.uint8)
        bgr[:30, :40] = (0, 0, 255)  # red in BGR
        bgr[-30:, -40:] = (255, 0, 0)  # blue in BGR
        bgr[50:70, :] = 10 + 20 * i
        writer.write(bgr)
    writer.release()
    return path


def write_junk(path: Path) -> Path:
    path.write_bytes(b"not a video" * 50)
    return path


def frame_number_of(rgb: np.ndarray) -> int:
    h = rgb.shape[0]
    return round((rgb[int(h * 0.45) : int(h * 0.55)].astype(float).mean() - 10) / 20)


class Listener(ListenerNode):
    def __init__(self, ns: str) -> None:
        super().__init__("camera_test_listener")
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.node.create_subscription(Image, f"{ns}/image_raw", self.images.append, 100)
        self.node.create_subscription(CameraInfo, f"{ns}/camera_info", self.infos.append, 100)


def test_camera_node_loops_a_video_file_as_rgb8_with_hfov_intrinsics(tmp_path, ros_env) -> None:
    video = write_video(tmp_path / "pattern.avi", 8)
    ns = "/camera_test"
    listener = Listener(ns)
    node = start_node(
        "slfm_ros.nodes.camera_node",
        ros_env,
        ns,
        f"source:={video}",
        "loop:=true",
        "fps:=25.0",
        "width:=80",
        "hfov_deg:=90.0",
        "frame_id:=test_optical",
    )
    try:
        assert listener.spin_until(lambda: len(listener.images) >= 24, 20.0), stop(node)[1]
        listener.spin_until(lambda: len(listener.infos) >= 24, 2.0)
        assert node.poll() is None, "camera_node exited although loop is set"
    finally:
        code, out = stop(node)
        images, infos = list(listener.images), list(listener.infos)
        listener.close()
    assert code == 0, out

    assert {(m.width, m.height, m.encoding, m.step) for m in images} == {(80, 60, "rgb8", 240)}
    rgb = [image_to_rgb(m) for m in images]
    top_left = rgb[0][:6, :8].reshape(-1, 3).mean(axis=0)
    assert top_left[0] > 200 and top_left[2] < 60, "red is not in the first channel"
    # Consecutive frame numbers, wrapping from the last frame of the file to the first.
    numbers = [frame_number_of(x) for x in rgb]
    steps = {(b - a) % 8 for a, b in itertools.pairwise(numbers)}
    assert steps == {1}, numbers
    assert 7 in numbers and numbers.index(7) < len(numbers) - 1

    stamps = np.array([stamp_to_ns(m.header.stamp) for m in images])
    period_ms = np.diff(stamps) / 1e6
    print(f"image period: median {np.median(period_ms):.1f} ms (40 ms expected)")
    assert np.all(period_ms > 0) and abs(np.median(period_ms) - 40.0) < 5.0
    assert {m.header.frame_id for m in images} == {"test_optical"}

    info_by_stamp = {stamp_to_ns(m.header.stamp): m for m in infos}
    matched = [info_by_stamp[s] for s in stamps if s in info_by_stamp]
    assert len(matched) >= len(stamps) - 2  # same header as its image
    info = matched[0]
    assert (info.width, info.height, info.distortion_model) == (80, 60, "plumb_bob")
    fx = 40.0 / math.tan(math.radians(45.0))
    K = np.asarray(info.k).reshape(3, 3)
    np.testing.assert_allclose(K, [[fx, 0, 39.5], [0, fx, 29.5], [0, 0, 1]])
    np.testing.assert_allclose(np.asarray(info.p).reshape(3, 4)[:, :3], K)


def test_camera_node_stops_at_the_end_of_a_file(tmp_path, ros_env) -> None:
    video = write_video(tmp_path / "short.avi", 5)
    node = start_node(
        "slfm_ros.nodes.camera_node", ros_env, "/camera_end", f"source:={video}", "fps:=50.0"
    )
    out, _ = node.communicate(timeout=20)
    assert node.returncode == 0, out
    assert "end of video file" in out and "after 5 frames" in out


@pytest.mark.parametrize(
    ("make_source", "message"),
    [
        (lambda d: d / "missing.avi", "expected an existing video file"),
        (
            lambda d: (d / "junk.avi").write_bytes(b"not a video" * 50) and d / "junk.avi",
            "cannot read",
        ),
    ],
    ids=["missing file", "unreadable file"],
)
def test_camera_node_fails_clearly_on_bad_sources(tmp_path, ros_env, make_source, message) -> None:
    # A wrong file is a typo, not a late camera: no retries (those take 15 s), exit 1 at once.
    source = make_source(tmp_path)
    started = time.monotonic()
    node = start_node("slfm_ros.nodes.camera_node", ros_env, "/camera_bad", f"source:={source}")
    out, _ = node.communicate(timeout=20)
    elapsed = time.monotonic() - started
    assert node.returncode == 1, out
    assert message in out and str(source) in out
    assert "retrying" not in out and elapsed < 12.0, (elapsed, out)
