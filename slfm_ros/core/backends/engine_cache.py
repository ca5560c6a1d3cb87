"""Cache of serialized TensorRT engines, checked against what they were built for.

A TensorRT engine runs only on the TensorRT version and GPU that built it, with the precision
and batch range it was built with, and only for the network it was built from. Next to each
engine file (``<engine>.plan``) the cache writes a sidecar ``<engine>.plan.json``:

    {"format": 1, "kind": "slfm_ros.tensorrt_engine",
     "key": {"tensorrt_version", "device_name", "compute_capability", "precision",
             "model_sha256", "max_batch_size"},
     "engine_sha256", "engine_bytes", "created", "info": {...free-form build details...}}

An engine is used only when the sidecar exists, parses, has this format and kind, its key
equals the wanted key field by field, and the engine file has the recorded size and sha256.
Anything else (missing files, a key from another GPU or TensorRT version, a truncated or
altered engine, a sidecar that is not JSON) is a reason to rebuild, never to load. The engine
is written before its sidecar, both through a temporary file and ``os.replace``, so an
interrupted write leaves an engine without a valid sidecar, which is rebuilt.

Nothing here imports TensorRT: building and deserializing are callables handed in by the
TensorRT backend, so the cache logic is tested on any machine.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from slfm_ros.core.atomic_io import atomic_write_bytes
from slfm_ros.core.errors import ModelError
from slfm_ros.core.hashing import sha256_file as _sha256_file

SIDECAR_FORMAT = 1
SIDECAR_KIND = "slfm_ros.tensorrt_engine"
PRECISIONS = ("fp32", "fp16")

Engine = TypeVar("Engine")


@dataclass(frozen=True)
class EngineKey:
    """What a cached engine must have been built for.

    tensorrt_version:   ``tensorrt.__version__`` of the builder.
    device_name:        GPU name, e.g. "NVIDIA GeForce RTX 4090" or "Orin".
    compute_capability: "major.minor", e.g. "8.9".
    precision:          "fp32" or "fp16".
    model_sha256:       sha256 of the ONNX file the engine is built from.
    max_batch_size:     upper end of the optimization profile's batch range (1..N).
    """

    tensorrt_version: str
    device_name: str
    compute_capability: str
    precision: str
    model_sha256: str
    max_batch_size: int

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ModelError(
                f"engine precision: expected one of {PRECISIONS}, got {self.precision!r}"
            )
        if self.max_batch_size < 1:
            raise ModelError(f"engine max_batch_size: expected >= 1, got {self.max_batch_size}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class CacheCheck:
    """Outcome of checking an engine file: ``valid`` or the reason it cannot be used."""

    valid: bool
    reason: str = ""


@dataclass
class CachedEngine(Generic[Engine]):
    """An engine ready to run and how it was obtained.

    engine:  whatever ``deserialize`` returned.
    built:   True when it was built now, False when loaded from the cache.
    reason:  why it was (re)built ("" when loaded).
    path:    the engine file.
    """

    engine: Engine
    built: bool
    reason: str
    path: Path


def sidecar_path(engine_path: Path) -> Path:
    """The metadata file of ``engine_path``."""
    return engine_path.with_name(engine_path.name + ".json")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _key_differences(wanted: EngineKey, recorded: Mapping[str, Any]) -> list[str]:
    out = []
    for name, value in wanted.to_dict().items():
        if recorded.get(name) != value:
            out.append(f"{name} {recorded.get(name)!r} (cached) vs {value!r} (needed)")
    return out


def check_engine(engine_path: str | os.PathLike[str], key: EngineKey) -> CacheCheck:
    """Whether ``engine_path`` holds an intact engine built for ``key`` (see module doc)."""
    path = Path(engine_path)
    meta_path = sidecar_path(path)
    if not path.is_file():
        return CacheCheck(False, f"no engine file at {path}")
    if not meta_path.is_file():
        return CacheCheck(False, f"engine {path} has no metadata file {meta_path.name}")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return CacheCheck(False, f"metadata {meta_path} is unreadable: {exc}")
    if not isinstance(meta, dict) or meta.get("kind") != SIDECAR_KIND:
        return CacheCheck(False, f"metadata {meta_path} is not a slfm_ros engine record")
    if meta.get("format") != SIDECAR_FORMAT:
        return CacheCheck(
            False,
            f"metadata {meta_path} has format {meta.get('format')!r}, expected {SIDECAR_FORMAT}",
        )
    recorded = meta.get("key")
    if not isinstance(recorded, dict):
        return CacheCheck(False, f"metadata {meta_path} has no key")
    differences = _key_differences(key, recorded)
    if differences:
        return CacheCheck(False, "engine built for something else: " + "; ".join(differences))
    size = path.stat().st_size
    if size != meta.get("engine_bytes"):
        return CacheCheck(
            False, f"engine {path} has {size} bytes, metadata records {meta.get('engine_bytes')}"
        )
    digest = _sha256_file(path)
    if digest != meta.get("engine_sha256"):
        return CacheCheck(
            False,
            f"engine {path} is corrupt: sha256 {digest[:12]}... differs from the recorded "
            f"{str(meta.get('engine_sha256'))[:12]}...",
        )
    return CacheCheck(True)


def write_engine(
    engine_path: str | os.PathLike[str],
    data: bytes,
    key: EngineKey,
    info: Mapping[str, Any] | None = None,
) -> Path:
    """Store ``data`` at ``engine_path`` with its sidecar (engine first, sidecar last)."""
    path = Path(engine_path)
    if not data:
        raise ModelError(f"refusing to cache an empty engine at {path}")
    meta_path = sidecar_path(path)
    # A stale sidecar must not describe the new bytes while they are being written.
    meta_path.unlink(missing_ok=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    meta = {
        "format": SIDECAR_FORMAT,
        "kind": SIDECAR_KIND,
        "key": key.to_dict(),
        "engine_sha256": sha256_bytes(data),
        "engine_bytes": len(data),
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "info": dict(info or {}),
    }
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=2) + "\n").encode())
    return path


def load_or_build(
    engine_path: str | os.PathLike[str],
    key: EngineKey,
    build: Callable[[], bytes],
    deserialize: Callable[[bytes], Engine],
    force_rebuild: bool = False,
    info: Mapping[str, Any] | None = None,
) -> CachedEngine[Engine]:
    """The engine for ``key``: loaded from ``engine_path`` when the cache is valid, else built.

    build():          serialized engine bytes (the TensorRT builder).
    deserialize(b):   the runnable engine; raises ModelError (or returns None) when the bytes
                      do not deserialize. A cached engine that fails here is rebuilt once; a
                      freshly built one that fails raises.
    force_rebuild:    ignore the cache (``force_engine_update``).
    """
    path = Path(engine_path)
    if force_rebuild:
        reason = "force_engine_update is set"
    else:
        check = check_engine(path, key)
        reason = check.reason
        if check.valid:
            data = path.read_bytes()
            try:
                engine = deserialize(data)
            except ModelError as exc:
                engine, reason = None, f"cached engine {path} does not deserialize: {exc}"
            else:
                if engine is None:
                    reason = f"cached engine {path} does not deserialize"
            if engine is not None:
                return CachedEngine(engine, built=False, reason="", path=path)
    data = build()
    engine = deserialize(data)
    if engine is None:
        raise ModelError(
            f"the engine just built for {path} does not deserialize; the TensorRT installation "
            "is inconsistent (builder and runtime versions differ?)"
        )
    write_engine(path, data, key, info)
    return CachedEngine(engine, built=True, reason=reason, path=path)
