"""Byte-level shard files of a multi-view dataset (format in docs/dataset-format.md).

A shard is an uncompressed ``.npz`` (zip, every member stored) written with fixed member
timestamps, so the same samples always give the same bytes, and read back through memory maps:
a random sample costs a few reads, not a whole shard.

Member arrays of a shard of N samples with K views, F audio frames, H x W images:
    image_bytes    (B,) uint8     the N*K encoded images back to back (view-major per sample)
    image_offsets  (N*K + 1,) int64  byte offsets into image_bytes
    audio          (N, K, F, 2) int16  audio / audio_scale * 32767, rounded
    audio_scale    (N, K) float32  per-clip peak (1.0 for silent clips)
    yaws           (N, K) float64  world yaw of each view, radians
    target_azimuths (N, K) float64 azimuth of the target source in each view, radians
    sample_index   (N,) int64     index of each sample in the split
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import DatasetError

IMAGE_FORMATS = ("png", "jpeg")
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
_INT16_FULL_SCALE = 32767.0


def encode_image(image: npt.NDArray[np.uint8], fmt: str, quality: int) -> bytes:
    """(H, W, 3) uint8 RGB -> PNG or JPEG bytes."""
    bgr = cv2.cvtColor(np.ascontiguousarray(image), cv2.COLOR_RGB2BGR)
    if fmt == "png":
        ok, buf = cv2.imencode(".png", bgr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    elif fmt == "jpeg":
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    else:
        raise DatasetError(f"image format must be one of {IMAGE_FORMATS}, got {fmt!r}")
    if not ok:
        raise DatasetError(f"could not encode a {image.shape} image as {fmt}")
    return bytes(buf.tobytes())


def decode_image(data: bytes | npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """PNG/JPEG bytes -> (H, W, 3) uint8 RGB."""
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DatasetError("an image in the shard could not be decoded; the shard is corrupt")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def quantize_audio(
    audio: npt.NDArray[np.floating],
) -> tuple[npt.NDArray[np.int16], npt.NDArray[np.float32]]:
    """(..., F, 2) float audio -> int16 audio scaled to its per-clip peak, and the peaks (...)."""
    arr = np.asarray(audio, dtype=np.float32)
    peak = np.max(np.abs(arr), axis=(-2, -1)).astype(np.float32)
    scale = np.where(peak > 0, peak, np.float32(1.0)).astype(np.float32)
    q = np.rint(arr / scale[..., None, None] * _INT16_FULL_SCALE)
    return np.clip(q, -32767, 32767).astype(np.int16), scale


def dequantize_audio(
    audio: npt.NDArray[np.int16], scale: npt.NDArray[np.float32] | float
) -> npt.NDArray[np.float32]:
    """Inverse of ``quantize_audio``: float32 audio of the same shape as ``audio``."""
    s = np.asarray(scale, dtype=np.float32)
    return (audio.astype(np.float32) * (s[..., None, None] / _INT16_FULL_SCALE)).astype(np.float32)


def write_npz(path: Path | BinaryIO, arrays: Mapping[str, npt.NDArray[Any]]) -> None:
    """Write ``arrays`` as an uncompressed .npz whose bytes depend only on the arrays.

    path: a file name, or a seekable binary file object (e.g. from ``atomic_write``).
    """
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=_ZIP_EPOCH)
            info.compress_type = zipfile.ZIP_STORED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


def memmap_npz(path: Path) -> dict[str, npt.NDArray[Any]]:
    """Read-only memory maps of every member of an uncompressed .npz written by ``write_npz``."""
    out: dict[str, npt.NDArray[Any]] = {}
    try:
        with zipfile.ZipFile(path, "r") as zf, open(path, "rb") as fh:
            for info in zf.infolist():
                if info.compress_type != zipfile.ZIP_STORED or not info.filename.endswith(".npy"):
                    raise DatasetError(f"{path}: member {info.filename} is not a stored .npy")
                fh.seek(info.header_offset)
                local = fh.read(30)
                if local[:4] != b"PK\x03\x04":
                    raise DatasetError(f"{path}: broken zip header of {info.filename}")
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                fh.seek(info.header_offset + 30 + name_len + extra_len)
                version = np.lib.format.read_magic(fh)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, fortran, dtype = read_header(fh)
                offset = fh.tell()
                name = info.filename[: -len(".npy")]
                if int(np.prod(shape)) == 0:
                    out[name] = np.zeros(shape, dtype=dtype)
                else:
                    out[name] = np.memmap(
                        path,
                        dtype=dtype,
                        mode="r",
                        offset=offset,
                        shape=shape,
                        order="F" if fortran else "C",
                    )
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise DatasetError(f"cannot read shard {path}: {exc}; regenerate the dataset") from exc
    return out
