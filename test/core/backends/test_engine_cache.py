"""TensorRT engine cache: keys, sidecars, corruption and rebuilds, with stand-in engine bytes.

The builder and deserializer are plain functions here (the cache never imports TensorRT); the
"engine" is a byte string whose deserialized form is checked by a marker prefix, like a real
runtime rejecting a foreign plan.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from slfm_ros.core.backends.base import BackendOptions
from slfm_ros.core.backends.engine_cache import (
    EngineKey,
    check_engine,
    load_or_build,
    sidecar_path,
    write_engine,
)
from slfm_ros.core.backends.model_source import ModelSource
from slfm_ros.core.backends.tensorrt_backend import engine_paths
from slfm_ros.core.errors import ModelError
from slfm_ros.core.models.config import preset

KEY = EngineKey(
    tensorrt_version="10.3.0",
    device_name="NVIDIA GeForce RTX 4090",
    compute_capability="8.9",
    precision="fp16",
    model_sha256="ab" * 32,
    max_batch_size=8,
)
MAGIC = b"PLAN"


class FakeBuilder:
    """Counts builds; every build yields a distinct valid engine."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> bytes:
        self.calls += 1
        return MAGIC + f"engine #{self.calls} ".encode() * 64


def deserialize(data: bytes) -> bytes | None:
    """Stand-in runtime: accepts only bytes that start like a plan."""
    return data if data.startswith(MAGIC) else None


def test_build_then_reuse(tmp_path: Path) -> None:
    path = tmp_path / "audio.plan"
    build = FakeBuilder()
    first = load_or_build(path, KEY, build, deserialize)
    assert first.built and "no engine file" in first.reason
    assert check_engine(path, KEY).valid
    meta = json.loads(sidecar_path(path).read_text())
    assert meta["key"] == KEY.to_dict() and meta["engine_bytes"] == path.stat().st_size

    second = load_or_build(path, KEY, build, deserialize)
    assert not second.built and second.reason == ""
    assert build.calls == 1
    assert second.engine == first.engine


@pytest.mark.parametrize(
    "field, value",
    [
        ("tensorrt_version", "10.4.0"),
        ("device_name", "Orin"),
        ("compute_capability", "8.7"),
        ("precision", "fp32"),
        ("model_sha256", "cd" * 32),
        ("max_batch_size", 16),
    ],
)
def test_mismatched_key_is_rebuilt(tmp_path: Path, field: str, value: object) -> None:
    path = tmp_path / "visual.plan"
    build = FakeBuilder()
    load_or_build(path, KEY, build, deserialize)
    other = dataclasses.replace(KEY, **{field: value})
    check = check_engine(path, other)
    assert not check.valid and field in check.reason
    again = load_or_build(path, other, build, deserialize)
    assert again.built and field in again.reason and build.calls == 2
    assert check_engine(path, other).valid and not check_engine(path, KEY).valid


def test_corrupted_engine_detected_and_rebuilt(tmp_path: Path) -> None:
    path = tmp_path / "audio.plan"
    build = FakeBuilder()
    load_or_build(path, KEY, build, deserialize)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF  # same size, one byte flipped
    path.write_bytes(bytes(data))
    check = check_engine(path, KEY)
    assert not check.valid and "corrupt" in check.reason
    rebuilt = load_or_build(path, KEY, build, deserialize)
    assert rebuilt.built and "corrupt" in rebuilt.reason
    assert rebuilt.engine == path.read_bytes() and check_engine(path, KEY).valid


def test_truncated_engine_detected(tmp_path: Path) -> None:
    path = tmp_path / "audio.plan"
    load_or_build(path, KEY, FakeBuilder(), deserialize)
    path.write_bytes(path.read_bytes()[:50])
    check = check_engine(path, KEY)
    assert not check.valid and "bytes" in check.reason


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda meta: meta.unlink(), "no metadata"),
        (lambda meta: meta.write_text("{not json"), "unreadable"),
        (lambda meta: meta.write_text(json.dumps({"kind": "other"})), "not a slfm_ros"),
        (
            lambda meta: meta.write_text(
                json.dumps({**json.loads(meta.read_text()), "format": 99})
            ),
            "format",
        ),
    ],
)
def test_bad_sidecar_means_rebuild(tmp_path: Path, damage, words: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "audio.plan"
    build = FakeBuilder()
    load_or_build(path, KEY, build, deserialize)
    damage(sidecar_path(path))
    assert words in check_engine(path, KEY).reason
    assert load_or_build(path, KEY, build, deserialize).built and build.calls == 2


def test_engine_that_does_not_deserialize_is_rebuilt(tmp_path: Path) -> None:
    # Key and hash match (written through the cache), but the runtime rejects the bytes:
    # e.g. a plan from a TensorRT build with the same version string but another patch.
    path = tmp_path / "audio.plan"
    write_engine(path, b"FOREIGN plan bytes" * 10, KEY)
    assert check_engine(path, KEY).valid
    build = FakeBuilder()
    result = load_or_build(path, KEY, build, deserialize)
    assert result.built and "does not deserialize" in result.reason
    assert path.read_bytes().startswith(MAGIC)


def test_fresh_engine_that_does_not_deserialize_raises_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "audio.plan"
    with pytest.raises(ModelError, match="does not deserialize"):
        load_or_build(path, KEY, lambda: b"garbage", deserialize)
    assert not path.exists() and not sidecar_path(path).exists()


def test_force_rebuild(tmp_path: Path) -> None:
    path = tmp_path / "audio.plan"
    build = FakeBuilder()
    load_or_build(path, KEY, build, deserialize)
    result = load_or_build(path, KEY, build, deserialize, force_rebuild=True)
    assert result.built and "force_engine_update" in result.reason and build.calls == 2


def test_engine_without_sidecar_after_interrupted_write(tmp_path: Path) -> None:
    # The sidecar is written last: an engine alone is what an interrupted write leaves.
    path = tmp_path / "audio.plan"
    path.write_bytes(FakeBuilder()())
    assert not check_engine(path, KEY).valid
    assert load_or_build(path, KEY, FakeBuilder(), deserialize).built


def test_key_validation() -> None:
    with pytest.raises(ModelError, match="precision"):
        dataclasses.replace(KEY, precision="int8")
    with pytest.raises(ModelError, match="max_batch_size"):
        dataclasses.replace(KEY, max_batch_size=0)


def test_engine_paths(tmp_path: Path) -> None:
    source = ModelSource(tmp_path, preset("small"), "12" * 32, "34" * 32)
    default = engine_paths(BackendOptions(cache_dir=str(tmp_path / "c")), source, "fp16")
    assert default["audio"] == tmp_path / "c" / "tensorrt" / ("12" * 8) / "audio_fp16_b8.plan"
    assert default["visual"].name == "visual_fp16_b8.plan"
    templated = engine_paths(BackendOptions(engine_file_path="/e/{network}.engine"), source, "fp32")
    assert templated == {"audio": Path("/e/audio.engine"), "visual": Path("/e/visual.engine")}
    plain = engine_paths(BackendOptions(engine_file_path="/e/slfm.plan"), source, "fp32")
    assert plain == {"audio": Path("/e/slfm.audio.plan"), "visual": Path("/e/slfm.visual.plan")}
