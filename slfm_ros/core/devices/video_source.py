"""Frames from a camera, a stream or a video file (OpenCV), and the camera's intrinsics.

No rclpy here: the ROS node wraps ``VideoSource`` and ``CameraCalibration`` and only publishes.

Sources: a device index ("0"), a V4L2 device path ("/dev/video0"), a URL with a scheme
("rtsp://...", "http://..."; "file://" is read as a path) or a video file path. Frames come out
as RGB (H, W, 3) uint8. Each frame is stamped when OpenCV has grabbed it, before decoding, on the
caller's clock (for a file: when it is read).

Calibration: the ROS camera_info YAML written by camera_calibration / camera_info_manager
(image_width, image_height, camera_name, camera_matrix, distortion_model,
distortion_coefficients, rectification_matrix, projection_matrix), or a pinhole model from the
horizontal field of view (principal point at the image centre, OpenCV pixel-centre convention, as
``slfm_ros.core.geometry.camera.intrinsics_from_fov``).
"""

from __future__ import annotations

import glob
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, Self

import cv2
import numpy as np
import numpy.typing as npt
import yaml

from slfm_ros.core.errors import ConfigError, InputFormatError, SlfmError
from slfm_ros.core.geometry.camera import intrinsics_from_fov

ClockNs = Callable[[], int]
# Rate assumed when neither the parameter nor the source gives a frame rate.
DEFAULT_FPS = 30.0


class SourceKind(Enum):
    DEVICE = "device"
    FILE = "file"
    STREAM = "stream"


class EndOfVideo(SlfmError):
    """A video file (without loop) has no more frames. Not a failure: the end of the input."""


class CaptureError(SlfmError):
    """A camera or stream stopped delivering frames."""


def _available_video_devices() -> str:
    found = sorted(glob.glob("/dev/video*"))
    return ", ".join(found) if found else "none (no /dev/video* on this machine)"


def source_kind(source: str) -> SourceKind:
    """The kind of source a ``source`` parameter names, whether or not it is there now (a camera
    can be plugged in and a stream come up later); raises ConfigError for an empty source."""
    text = source.strip()
    if not text:
        raise ConfigError(
            "source: expected a device index ('0'), a device path ('/dev/video0'), a file path "
            "or a URL, got ''"
        )
    if text.isdigit():
        return SourceKind.DEVICE
    if "://" in text and not text.startswith("file://"):
        return SourceKind.STREAM
    if text.removeprefix("file://").startswith("/dev/"):
        return SourceKind.DEVICE
    return SourceKind.FILE


def parse_source(source: str) -> tuple[SourceKind, int | str]:
    """(kind, OpenCV argument) of a ``source`` parameter; raises ConfigError for an empty
    source, a missing device path or a missing file."""
    kind = source_kind(source)
    text = source.strip()
    if text.isdigit():
        return kind, int(text)
    if kind is SourceKind.STREAM:
        return kind, text
    text = text.removeprefix("file://")
    if kind is SourceKind.DEVICE:
        if not os.path.exists(text):
            raise ConfigError(
                f"source '{text}': no such camera device; available video devices: "
                f"{_available_video_devices()}"
            )
        return kind, text
    path = Path(text).expanduser()
    if not path.exists():
        raise ConfigError(
            f"source '{text}': expected an existing video file, got no file at {path.resolve()}; "
            "check the path (relative paths start at the working directory)"
        )
    if path.is_dir():
        raise ConfigError(f"source '{text}': expected a video file, got a directory")
    return SourceKind.FILE, str(path)


@dataclass(frozen=True)
class Frame:
    """One captured image.

    image:      (height, width, 3) uint8, RGB.
    stamp_ns:   grab time on the source's clock, ns.
    index:      frames delivered since the source was opened (keeps counting across loops).
    position_s: media time of the frame in a file (restarts at 0 on loop); NaN for live sources.
    """

    image: npt.NDArray[np.uint8]
    stamp_ns: int
    index: int
    position_s: float


class VideoSource:
    """An open video source delivering RGB frames.

    width, height: output size in pixels (0 = keep; one of them 0 = keep the aspect ratio).
    loop: restart a video file at its end. clock_ns: the clock of frame stamps.
    The first frame is read on opening, so an unreadable source fails here, not later.
    """

    def __init__(
        self,
        source: str,
        loop: bool = False,
        width: int = 0,
        height: int = 0,
        fps: float = 0.0,
        clock_ns: ClockNs = time.time_ns,
    ) -> None:
        if width < 0 or height < 0:
            raise ConfigError(f"width/height: expected >= 0 (0 = keep), got {width}x{height}")
        self.source = source
        self.kind, self._arg = parse_source(source)
        self.loop = loop
        self._clock_ns = clock_ns
        self._want = (width, height)
        self._index = 0
        self._cap = self._open()
        if fps > 0 and self.kind is SourceKind.DEVICE:
            self._cap.set(cv2.CAP_PROP_FPS, fps)
        self._pending: Frame | None = None
        try:
            self._pending = self._grab()
        except (EndOfVideo, CaptureError) as exc:
            self._cap.release()
            raise self._unreadable(f"no frame could be decoded ({exc})") from exc
        self.height, self.width = self._pending.image.shape[:2]

    def _unreadable(self, why: str) -> SlfmError:
        if self.kind is SourceKind.FILE:
            return InputFormatError(
                f"source '{self.source}': expected a video file OpenCV can decode, got a file "
                f"it cannot read: {why}; convert it (e.g. to MJPG .avi or H.264 .mp4)"
            )
        if self.kind is SourceKind.DEVICE:
            return ConfigError(
                f"source '{self.source}': cannot capture from this camera: {why}; available "
                f"video devices: {_available_video_devices()}"
            )
        return ConfigError(f"source '{self.source}': cannot read the stream: {why}")

    def _open(self) -> Any:
        cap = cv2.VideoCapture(self._arg)
        if not cap.isOpened():
            cap.release()
            raise self._unreadable("OpenCV could not open it")
        return cap

    @property
    def fps(self) -> float:
        """Frame rate reported by the source (0 when it reports none or nonsense)."""
        value = float(self._cap.get(cv2.CAP_PROP_FPS))
        return value if math.isfinite(value) and 0.0 < value < 1000.0 else 0.0

    @property
    def backend(self) -> str:
        """Name of the OpenCV capture backend in use ("V4L2", "FFMPEG", ...)."""
        return str(self._cap.getBackendName())

    @property
    def fourcc(self) -> str:
        """Codec or pixel format the source reports ("MJPG", "YUYV", "h264", ...); "" when it
        reports none."""
        code = int(self._cap.get(cv2.CAP_PROP_FOURCC))
        text = code.to_bytes(4, "little", signed=code < 0).decode("ascii", errors="replace")
        return text.strip("\x00 ") if text.isprintable() else ""

    @property
    def frame_count(self) -> int:
        """Frames in a video file (0 for live sources or when unknown)."""
        if self.kind is not SourceKind.FILE:
            return 0
        return max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def _output_size(self, width: int, height: int) -> tuple[int, int]:
        want_w, want_h = self._want
        if want_w and want_h:
            return want_w, want_h
        if want_w:
            return want_w, max(1, round(height * want_w / width))
        if want_h:
            return max(1, round(width * want_h / height)), want_h
        return width, height

    def _grab(self) -> Frame:
        ok = self._cap.grab()
        stamp_ns = self._clock_ns()
        if ok:
            position_s = (
                float(self._cap.get(cv2.CAP_PROP_POS_MSEC)) / 1000.0
                if self.kind is SourceKind.FILE
                else math.nan
            )
            ok, bgr = self._cap.retrieve()
        if not ok or bgr is None:
            if self.kind is SourceKind.FILE:
                raise EndOfVideo(f"end of video file '{self.source}' after {self._index} frames")
            raise CaptureError(f"source '{self.source}' delivered no frame")
        if bgr.ndim == 2:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_GRAY2RGB)
        else:
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        h, w = rgb.shape[:2]
        size = self._output_size(w, h)
        if size != (w, h):
            shrink = size[0] < w
            rgb = cv2.resize(
                rgb, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
            )
        frame = Frame(np.ascontiguousarray(rgb), stamp_ns, self._index, position_s)
        self._index += 1
        return frame

    def read(self) -> Frame:
        """The next frame. Raises EndOfVideo at the end of a file (unless ``loop``) and
        CaptureError when a live source stops delivering."""
        if self._pending is not None:
            frame, self._pending = self._pending, None
            if self.kind is SourceKind.FILE:
                # Read on opening; a file frame's stamp is the time it is read.
                frame = replace(frame, stamp_ns=self._clock_ns())
            return frame
        try:
            return self._grab()
        except EndOfVideo:
            if not self.loop:
                raise
        # Seeking is unreliable for some containers; reopening always starts at frame 0.
        self._cap.release()
        self._cap = self._open()
        try:
            return self._grab()
        except EndOfVideo as exc:
            raise self._unreadable("no frame after restarting the file for loop") from exc

    def __iter__(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.read()
            except EndOfVideo:
                return

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _matrix(node: Any, rows: int, cols: int, key: str, where: str) -> npt.NDArray[np.float64]:
    if not isinstance(node, dict) or "data" not in node:
        raise InputFormatError(
            f"{where}: '{key}' must be a mapping with rows, cols and data, got {node!r}"
        )
    data = np.asarray(node["data"], dtype=np.float64).ravel()
    if data.size != rows * cols:
        raise InputFormatError(
            f"{where}: '{key}' expected {rows}x{cols} = {rows * cols} numbers, got {data.size}"
        )
    return data.reshape(rows, cols)


@dataclass(frozen=True)
class CameraCalibration:
    """Intrinsics in the fields of sensor_msgs/CameraInfo.

    K: (3, 3) camera matrix; D: distortion coefficients of ``distortion_model``; R: (3, 3)
    rectification; P: (3, 4) projection. width, height: the image size they belong to, px.
    """

    width: int
    height: int
    K: npt.NDArray[np.float64]
    D: tuple[float, ...] = (0.0, 0.0, 0.0, 0.0, 0.0)
    distortion_model: str = "plumb_bob"
    R: npt.NDArray[np.float64] = field(default_factory=lambda: np.eye(3))
    P: npt.NDArray[np.float64] | None = None
    camera_name: str = ""

    def __post_init__(self) -> None:
        if self.P is None:
            object.__setattr__(self, "P", np.hstack([self.K, np.zeros((3, 1))]))

    @staticmethod
    def from_hfov(width: int, height: int, hfov_rad: float) -> CameraCalibration:
        """Undistorted pinhole camera with horizontal field of view ``hfov_rad`` (radians)."""
        return CameraCalibration(width, height, intrinsics_from_fov(width, height, hfov_rad))

    def scaled(self, width: int, height: int) -> CameraCalibration:
        """The same camera seen through images resized to ``width`` x ``height``."""
        if (width, height) == (self.width, self.height):
            return self
        sx, sy = width / self.width, height / self.height
        # Pixel centres at integer coordinates: u' + 0.5 = (u + 0.5) * s.
        scale = np.array([[sx, 0.0, 0.5 * (sx - 1.0)], [0.0, sy, 0.5 * (sy - 1.0)], [0, 0, 1]])
        assert self.P is not None
        return replace(self, width=width, height=height, K=scale @ self.K, P=scale @ self.P)

    @property
    def hfov_rad(self) -> float:
        """Horizontal field of view of the image (pinhole, principal point ignored)."""
        return 2.0 * math.atan(0.5 * self.width / float(self.K[0, 0]))


def load_calibration(url: str) -> CameraCalibration:
    """A calibration from a ROS camera_info YAML; ``url`` is a path, ``file://`` URL or
    ``package://<package>/<path>`` (needs ament_index_python). Raises ConfigError for a missing
    file and InputFormatError for malformed content."""
    path_text = url.strip()
    if path_text.startswith("file://"):
        path_text = path_text[len("file://") :]
    elif path_text.startswith("package://"):
        package, _, rest = path_text[len("package://") :].partition("/")
        try:
            from ament_index_python.packages import get_package_share_directory

            path_text = os.path.join(get_package_share_directory(package), rest)
        except (ImportError, LookupError) as exc:
            raise ConfigError(
                f"camera_info_url '{url}': cannot resolve package '{package}' ({exc}); give a "
                "file path instead"
            ) from exc
    elif "://" in path_text:
        raise ConfigError(
            f"camera_info_url '{url}': expected a path, file:// or package:// URL, got another "
            "scheme"
        )
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"camera_info_url '{url}': expected a calibration YAML file, got no file at "
            f"{path.resolve()}"
        )
    where = f"calibration '{path}'"
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputFormatError(f"{where}: not valid YAML ({exc})") from exc
    if not isinstance(doc, dict):
        raise InputFormatError(f"{where}: expected a mapping of camera_info fields, got {doc!r}")
    missing = [k for k in ("image_width", "image_height", "camera_matrix") if k not in doc]
    if missing:
        raise InputFormatError(
            f"{where}: missing {missing}; expected the ROS camera_info YAML format "
            "(image_width, image_height, camera_matrix, distortion_model, "
            "distortion_coefficients, rectification_matrix, projection_matrix)"
        )
    width, height = int(doc["image_width"]), int(doc["image_height"])
    if width <= 0 or height <= 0:
        raise InputFormatError(f"{where}: expected a positive image size, got {width}x{height}")
    K = _matrix(doc["camera_matrix"], 3, 3, "camera_matrix", where)
    if not (K[0, 0] > 0 and K[1, 1] > 0):
        raise InputFormatError(
            f"{where}: expected positive focal lengths in camera_matrix, got fx={K[0, 0]}, "
            f"fy={K[1, 1]} (an all-zero matrix means an uncalibrated camera)"
        )
    D: tuple[float, ...] = ()
    if "distortion_coefficients" in doc:
        dnode = doc["distortion_coefficients"]
        D = tuple(float(v) for v in np.asarray(dnode.get("data", []), dtype=np.float64).ravel())
    R = (
        _matrix(doc["rectification_matrix"], 3, 3, "rectification_matrix", where)
        if "rectification_matrix" in doc
        else np.eye(3)
    )
    P = (
        _matrix(doc["projection_matrix"], 3, 4, "projection_matrix", where)
        if "projection_matrix" in doc
        else None
    )
    return CameraCalibration(
        width=width,
        height=height,
        K=K,
        D=D,
        distortion_model=str(doc.get("distortion_model", "plumb_bob")),
        R=R,
        P=P,
        camera_name=str(doc.get("camera_name", "")),
    )
