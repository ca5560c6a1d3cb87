"""Inference backend interface, registry and selection.

A backend runs the two SLfM networks of one model directory on one device and exposes them as
the callables the learned estimators take (``slfm_ros.core.estimators.slfm``):

    run_audio(features (B, 4, F, T) float32) -> azimuth (B,) float32, radians
    run_visual(img_0 (B, 3, H, W) float32, img_1 (B, 3, H, W) float32) -> yaw (B,) float32

Backends register by name (``tensorrt``, ``onnxruntime``, ``torch``). Each answers
``unavailable_reason(device)`` without loading anything heavy, so selection can report why a
better backend was passed over. ``auto`` tries AUTO_ORDER:

    tensorrt (cuda) > onnxruntime (cuda) > torch (cuda) > onnxruntime (cpu) > torch (cpu)

and takes the first candidate that is available AND loads; every candidate before it is
recorded with its reason (not installed, no GPU, disabled, failed to load: ...).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from slfm_ros.core.backends.model_source import ModelSource
from slfm_ros.core.cache_dir import default_cache_dir
from slfm_ros.core.errors import ConfigError, ModelError

Float32 = npt.NDArray[np.float32]
DEVICES = ("cpu", "cuda")
AUTO_ORDER: tuple[tuple[str, str], ...] = (
    ("tensorrt", "cuda"),
    ("onnxruntime", "cuda"),
    ("torch", "cuda"),
    ("onnxruntime", "cpu"),
    ("torch", "cpu"),
)


class BackendUnavailable(ModelError):
    """No backend could run the model as asked; the message lists every reason."""


@dataclass(frozen=True)
class BackendOptions:
    """Settings shared by the backends; names follow the ecosystem's TensorRT nodes.

    model_file_path:     ONNX export folder (``slfm export``); "" = ``<model_dir>/onnx`` when it
                         matches the model card, else an export made on first use in the cache.
    engine_file_path:    TensorRT engine path; "{network}" in it becomes audio / visual, and a
                         path without it gets ".audio" / ".visual" before the suffix. "" = in
                         the cache, named after the model hash, precision and max batch.
    force_engine_update: rebuild the TensorRT engines even when the cached ones are valid.
    enable_fp16:         half precision where the device supports it (TensorRT FP16 flag,
                         fp16 ONNX on ONNX Runtime CUDA, half weights on torch CUDA); ignored
                         on the CPU, with a note.
    max_workspace_size:  TensorRT builder workspace limit, bytes.
    max_batch_size:      largest batch a TensorRT engine accepts (profile 1..N); larger inputs
                         are split. The estimators send 2 (symmetric) to 2 x max_windows.
    channels_last:       torch on CUDA: channels-last memory format.
    intra_op_threads, inter_op_threads: CPU threads (0 = the library's default). torch's
                         thread count is process-wide.
    allow_spinning:      ONNX Runtime worker threads busy-wait between operators (slightly
                         lower latency, but a full core burnt per thread even when idle, which
                         a node sharing a small CPU with DDS cannot afford); off by default.
    opset:               ONNX opset of an automatic export.
    cache_dir:           "" = ``slfm_ros.core.cache_dir.default_cache_dir()``.
    """

    model_file_path: str = ""
    engine_file_path: str = ""
    force_engine_update: bool = False
    enable_fp16: bool = False
    max_workspace_size: int = 1 << 30
    max_batch_size: int = 8
    channels_last: bool = False
    intra_op_threads: int = 0
    inter_op_threads: int = 0
    allow_spinning: bool = False
    opset: int = 17
    cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.max_batch_size < 1:
            raise ConfigError(f"max_batch_size must be >= 1, got {self.max_batch_size}")
        if self.max_workspace_size < 1 << 20:
            raise ConfigError(
                f"max_workspace_size must be >= 1 MiB (bytes), got {self.max_workspace_size}"
            )
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise ConfigError("thread counts must be >= 0 (0 = library default)")


class InferenceBackend(ABC):
    """One model's audio and visual networks, loaded on one device (see module doc)."""

    name: ClassVar[str]
    devices: ClassVar[tuple[str, ...]] = DEVICES

    def __init__(self, source: ModelSource, device: str, precision: str) -> None:
        self.source = source
        self.device = device
        self.precision = precision
        self.notes: list[str] = []

    @classmethod
    @abstractmethod
    def unavailable_reason(cls, device: str) -> str | None:
        """Why this backend cannot run on ``device`` here ("" or None when it can). Cheap:
        imports the library but loads no model."""

    @classmethod
    @abstractmethod
    def load(cls, source: ModelSource, device: str, options: BackendOptions) -> InferenceBackend:
        """Load the model on ``device``; ModelError (or BackendUnavailable) when it fails."""

    @abstractmethod
    def run_audio(self, features: Float32) -> Float32:
        """(B, 4, F, T) float32 features -> (B,) float32 azimuth, radians."""

    @abstractmethod
    def run_visual(self, image_0: Float32, image_1: Float32) -> Float32:
        """(B, 3, H, W) float32 pairs -> (B,) float32 yaw_1 - yaw_0, radians."""

    def describe(self) -> str:
        return f"{self.name} ({self.device}, {self.precision})"

    def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing to free
        """Release device resources (engines, sessions)."""


BACKENDS: dict[str, type[InferenceBackend]] = {}


def register_backend(cls: type[InferenceBackend]) -> type[InferenceBackend]:
    """Class decorator adding a backend to BACKENDS under ``cls.name``."""
    BACKENDS[cls.name] = cls
    return cls


def label(name: str, device: str) -> str:
    """ "onnxruntime:cuda" style label of a candidate."""
    return f"{name}:{device}"


def candidates(backend: str = "auto", device: str = "auto") -> list[tuple[str, str]]:
    """(backend, device) pairs to try, best first, for the requested backend and device."""
    names = ("auto", *BACKENDS)
    if backend not in names:
        raise ConfigError(f"backend: expected one of {names}, got {backend!r}")
    if device not in ("auto", *DEVICES):
        raise ConfigError(f"device: expected auto, cpu or cuda, got {device!r}")
    order = [c for c in AUTO_ORDER if c[0] in BACKENDS]
    if backend != "auto":
        order = [c for c in order if c[0] == backend]
    if device != "auto":
        order = [c for c in order if c[1] == device]
    if not order:
        raise ConfigError(f"backend {backend!r} does not run on device {device!r}")
    return order


def is_disabled(name: str, device: str, disabled: Collection[str]) -> bool:
    """Whether ``disabled`` names this backend ("torch") or this candidate ("torch:cuda")."""
    return name in disabled or label(name, device) in disabled


@dataclass
class Selection:
    """The loaded backend and the better candidates passed over, (label, reason) each."""

    backend: InferenceBackend
    skipped: list[tuple[str, str]] = field(default_factory=list)


Availability = Callable[[str, str], str | None]


def default_availability(name: str, device: str) -> str | None:
    return BACKENDS[name].unavailable_reason(device)


def load_candidate(
    source: ModelSource,
    name: str,
    device: str,
    options: BackendOptions,
    disabled: Collection[str] = (),
    availability: Availability = default_availability,
) -> InferenceBackend | str:
    """The loaded backend ``name`` on ``device``, or the reason it cannot be used."""
    if is_disabled(name, device, disabled):
        return "disabled"
    reason = availability(name, device)
    if reason:
        return reason
    try:
        return BACKENDS[name].load(source, device, options)
    except (ModelError, ImportError, OSError, RuntimeError) as exc:
        return f"failed to load: {type(exc).__name__}: {exc}"


def select_backend(
    source: ModelSource,
    backend: str = "auto",
    device: str = "auto",
    options: BackendOptions | None = None,
    disabled: Collection[str] = (),
    availability: Availability = default_availability,
) -> Selection:
    """Load the first candidate (see ``candidates``) that is available and loads.

    disabled:     backends ("onnxruntime") or candidates ("onnxruntime:cuda") not to use, as
                  if they were not installed.
    availability: (name, device) -> reason it cannot run, or None; the real checks by default.
    Raises BackendUnavailable listing every reason when nothing loads.
    """
    options = options or BackendOptions()
    skipped: list[tuple[str, str]] = []
    for name, dev in candidates(backend, device):
        loaded = load_candidate(source, name, dev, options, disabled, availability)
        if isinstance(loaded, str):
            skipped.append((label(name, dev), loaded))
            continue
        return Selection(loaded, skipped)
    listing = "; ".join(f"{tag}: {why}" for tag, why in skipped)
    raise BackendUnavailable(
        f"no inference backend can run {source.path} (backend={backend}, device={device}): "
        f"{listing}. Install the missing library or choose another backend"
    )


def cache_root(options: BackendOptions) -> Path:
    return Path(options.cache_dir) if options.cache_dir else default_cache_dir()
