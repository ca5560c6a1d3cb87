"""camera_node's capture status on /diagnostics, with the node as a separate process over DDS:
a video file, an MJPEG stream over HTTP (served by this test) that stalls, drops its
connection and goes away, one that comes up only after the node, and a camera not plugged in."""

from __future__ import annotations

import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from node_process import ListenerNode, start_node, stop  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402

STATUS_NAME = "camera_node: image capture"
OK, WARN, ERROR = b"\x00", b"\x01", b"\x02"


def write_video(path: Path, frames: int, fps: float = 20.0) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (160, 120))
    assert writer.isOpened()
    for i in range(frames):
        writer.write(np.full((120, 160, 3), (7 * i) % 256, np.uint8))
    writer.release()
    return path


class DiagnosticsListener(ListenerNode):
    def __init__(self) -> None:
        super().__init__("camera_diag_listener")
        self.statuses: list[DiagnosticStatus] = []
        self.node.create_subscription(DiagnosticArray, "/diagnostics", self._on_array, 50)

    def _on_array(self, msg: DiagnosticArray) -> None:
        self.statuses += [s for s in msg.status if s.name == STATUS_NAME]

    def wait_for(self, accept, timeout: float) -> DiagnosticStatus | None:
        """The first status from now on that ``accept`` takes, or None after ``timeout``."""
        seen = len(self.statuses)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for status in self.statuses[seen:]:
                if accept(status):
                    return status
            seen = len(self.statuses)
            self.executor.spin_once(timeout_sec=0.05)
        return None


def values(status: DiagnosticStatus) -> dict[str, str]:
    return {kv.key: kv.value for kv in status.values}


def test_a_video_file_reports_ok_with_its_measured_rate_and_its_end(tmp_path, ros_env) -> None:
    # 5 s at 20 fps: long enough that DDS discovery on a loaded machine still leaves statuses
    # to receive (a status sent before the listener is discovered is not delivered).
    video = write_video(tmp_path / "clip.avi", 100)
    listener = DiagnosticsListener()
    node = start_node(
        "slfm_ros.nodes.camera_node",
        ros_env,
        "/cam_diag_file",
        f"source:={video}",
        "fps:=20.0",
        "diagnostics_period:=0.5",
    )
    try:
        # The second status onwards covers a full period of steady publishing.
        assert listener.wait_for(lambda s: True, 15.0) is not None, stop(node)[1]
        status = listener.wait_for(lambda s: True, 2.0)
        assert status is not None, stop(node)[1]
        # At the end of the file the node says so once more before it exits: about 4 s of
        # video remain after the second status, and a loaded machine can decode slower.
        final = listener.wait_for(lambda s: "end of video file" in s.message, 10.0)
        code, out = node.wait(timeout=10), ""
    finally:
        if node.poll() is None:
            code, out = stop(node)
        listener.close()
    assert code == 0, out
    v = values(status)
    print(f"{status.message}; {v}")
    assert status.level == OK, status.message
    assert status.message.startswith("capturing at ")
    assert status.hardware_id == str(video)
    assert 16.0 <= float(v["measured_fps"]) <= 24.0
    assert v["requested_fps"] == "20"
    assert (v["source"], v["source_kind"]) == (str(video), "file")
    assert (v["image_size"], v["encoding"], v["fourcc"]) == ("160x120", "rgb8", "MJPG")
    assert v["backend"] != ""
    assert int(v["frames_published"]) >= 10
    assert (v["read_failures"], v["reopen_attempts"]) == ("0", "0")
    assert float(v["last_frame_age_s"]) < 0.5
    assert final is not None and final.level == OK
    assert "after 100 frames" in final.message and values(final)["frames_published"] == "100"


class MjpegServer:
    """An HTTP multipart MJPEG stream at about 25 fps. ``pause`` holds the connection open
    without sending, ``drop`` closes the open connections (new ones stream again),
    ``shutdown`` stops listening. With ``listen=False`` the port is reserved but refuses
    connections (a network camera not up yet) until ``start``."""

    def __init__(self, listen: bool = True) -> None:
        self.sending = threading.Event()
        self.sending.set()
        self.generation = 0
        self.stopped = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                generation = server.generation
                self.send_response(200)
                self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
                self.end_headers()
                i = 0
                while generation == server.generation and not server.stopped.is_set():
                    if not server.sending.is_set():
                        time.sleep(0.02)
                        continue
                    _, jpg = cv2.imencode(".jpg", np.full((120, 160, 3), i % 256, np.uint8))
                    part = jpg.tobytes()
                    head = f"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: {len(part)}"
                    try:
                        self.wfile.write(head.encode() + b"\r\n\r\n" + part + b"\r\n")
                        self.wfile.flush()
                    except OSError:
                        return
                    i += 1
                    time.sleep(0.04)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler, bind_and_activate=False)
        self.httpd.daemon_threads = True
        self.httpd.server_bind()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/camera.mjpg"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        if listen:
            self.start()

    def start(self) -> None:
        self.httpd.server_activate()
        self.thread.start()

    def pause(self) -> None:
        self.sending.clear()

    def drop(self) -> None:
        self.generation += 1
        self.sending.set()

    def shutdown(self) -> None:
        self.stopped.set()
        if self.thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()


def test_a_stream_that_stalls_drops_and_vanishes_goes_error_reopens_and_recovers(
    ros_env,
) -> None:
    server = MjpegServer()
    listener = DiagnosticsListener()
    node = start_node(
        "slfm_ros.nodes.camera_node",
        ros_env,
        "/cam_diag_stream",
        f"source:={server.url}",
        "fps:=10.0",
        "diagnostics_period:=0.25",
    )
    try:
        flowing = listener.wait_for(
            lambda s: s.level == OK and int(values(s)["frames_published"]) >= 10, 20.0
        )
        assert flowing is not None, stop(node)[1]
        v = values(flowing)
        assert flowing.hardware_id == server.url
        assert (v["source_kind"], v["backend"]) == ("stream", "FFMPEG")
        assert 7.0 <= float(v["measured_fps"]) <= 13.0, v

        # The stream stalls with the connection open: OpenCV's read blocks in the node.
        server.pause()
        stalled = listener.wait_for(lambda s: s.level == ERROR, 5.0)
        assert stalled is not None, stop(node)[1]
        assert "delivers nothing" in stalled.message and "check the network" in stalled.message
        assert float(values(stalled)["last_frame_age_s"]) > 1.0

        # The connection drops; the node reopens it and frames flow again.
        server.drop()
        recovered = listener.wait_for(
            lambda s: s.level == OK and values(s)["reopen_attempts"] != "0", 10.0
        )
        assert recovered is not None, stop(node)[1]
        v = values(recovered)
        assert v["read_failures"] == "1" and v["consecutive_read_failures"] == "0"
        assert v["reopen_attempts"] == "1" and float(v["measured_fps"]) >= 7.0

        # The server goes away: every reopen fails, which is an ERROR naming the attempt.
        server.shutdown()
        lost = listener.wait_for(lambda s: s.level == ERROR and "reopening" in s.message, 6.0)
        assert lost is not None, stop(node)[1]
        v = values(lost)
        print(lost.message)
        assert "attempt" in lost.message and "of 5" in lost.message
        assert int(v["consecutive_read_failures"]) >= 2 and int(v["reopen_attempts"]) >= 2
        assert v["last_error"] != ""
        code, out = stop(node)
    finally:
        if node.poll() is None:
            stop(node)
        listener.close()
        if not server.stopped.is_set():
            server.shutdown()
    assert code == 0, out
    assert "reopening" in out and "reopened" in out


class ImageListener(DiagnosticsListener):
    def __init__(self, ns: str) -> None:
        super().__init__()
        self.images: list[Image] = []
        self.infos: list[CameraInfo] = []
        self.node.create_subscription(Image, f"{ns}/image_raw", self.images.append, 10)
        self.node.create_subscription(CameraInfo, f"{ns}/camera_info", self.infos.append, 10)


def test_a_stream_not_up_at_start_is_an_error_until_it_comes_up_then_publishes(ros_env) -> None:
    # The node retries after 0.5, 1.5, 3.5, 7.5 and 15.5 s: a server started once the first
    # ERROR status is in is caught by one of the later attempts.
    server = MjpegServer(listen=False)
    ns = "/cam_diag_late"
    listener = ImageListener(ns)
    node = start_node(
        "slfm_ros.nodes.camera_node",
        ros_env,
        ns,
        f"source:={server.url}",
        "fps:=10.0",
        "width:=80",
        "hfov_deg:=90.0",
        "diagnostics_period:=0.25",
    )
    try:
        down = listener.wait_for(lambda s: s.level == ERROR, 15.0)
        assert down is not None, stop(node)[1]
        assert node.poll() is None, "camera_node exited instead of waiting for the stream"
        server.start()
        up = listener.wait_for(
            lambda s: s.level == OK and int(values(s)["frames_published"]) >= 5, 15.0
        )
        assert up is not None, stop(node)[1]
        assert listener.spin_until(lambda: len(listener.infos) >= 3, 5.0), stop(node)[1]
        code, out = stop(node)
    finally:
        if node.poll() is None:
            stop(node)
        listener.close()
        server.shutdown()
    print(down.message)
    assert down.hardware_id == server.url
    assert down.message.startswith("the source cannot be opened: ")
    assert "cannot read the stream" in down.message and "check the network" in down.message
    v = values(down)
    assert (v["frames_published"], v["source_kind"], v["image_size"]) == ("0", "stream", "unknown")
    assert "cannot read the stream" in v["last_error"]
    v = values(up)
    assert int(v["reopen_attempts"]) >= 1 and v["requested_fps"] == "10"
    assert (v["image_size"], v["backend"]) == ("80x60", "FFMPEG")
    # Width only was requested: the CameraInfo is of the size the frames turned out to have.
    image, info = listener.images[-1], listener.infos[-1]
    assert (image.width, image.height, image.encoding) == (80, 60, "rgb8")
    assert (info.width, info.height) == (80, 60)
    fx = 40.0 / math.tan(math.radians(45.0))
    np.testing.assert_allclose(
        np.asarray(info.k).reshape(3, 3), [[fx, 0, 39.5], [0, fx, 29.5], [0, 0, 1]]
    )
    assert code == 0, out
    assert "retrying 5 times" in out and f"stream '{server.url}': 80x60 rgb8 at 10 fps" in out


def test_a_camera_not_plugged_in_keeps_the_node_up_with_an_error_status(ros_env) -> None:
    device = "/dev/video_slfm_not_plugged_in"
    listener = DiagnosticsListener()
    node = start_node(
        "slfm_ros.nodes.camera_node",
        ros_env,
        "/cam_diag_unplugged",
        f"source:={device}",
        "diagnostics_period:=0.25",
    )
    try:
        down = listener.wait_for(lambda s: s.level == ERROR, 15.0)
        assert down is not None, stop(node)[1]
        alive = node.poll() is None
        code, out = stop(node)
    finally:
        if node.poll() is None:
            stop(node)
        listener.close()
    assert alive, out
    assert down.hardware_id == device and values(down)["source_kind"] == "device"
    assert "cannot be opened" in down.message and "no such camera device" in down.message
    assert "check that the camera is plugged in" in down.message
    assert code == 0, out
