"""ONNX export: graphs with a dynamic batch, hashes in the metadata and manifest, parity with
PyTorch on simulated inputs (FP32 and FP16), no overwriting of other exports, and the
automatic export the backends use."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from slfm_ros.bench.bench_model import smoke_config, write_random_model
from slfm_ros.core.backends.model_source import read_model_source
from slfm_ros.core.backends.onnx_export import (
    AUDIO_INPUT,
    PARITY_TOLERANCE_RAD,
    check_parity,
    export_model,
    export_problems,
    find_or_export,
    onnx_metadata,
    parity_inputs,
    read_export,
)
from slfm_ros.core.errors import ModelError
from slfm_ros.core.models.checkpoint import load_model


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("models")
    config = smoke_config()
    return write_random_model(root / "a", config, seed=0), write_random_model(
        root / "b", config, seed=1
    )


@pytest.fixture(scope="module")
def exported(models: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("exports") / "a-fp32"
    export_model(models[0], out, parity_source="sim")
    return out


def test_export_files_hashes_and_parity(models: tuple[Path, Path], exported: Path) -> None:
    manifest = read_export(exported)
    source = read_model_source(models[0])
    assert manifest.card_sha256 == source.card_sha256
    assert manifest.weights_sha256 == source.weights_sha256
    assert manifest.opset == 17 and manifest.precision == "fp32"
    assert export_problems(manifest, source) == []
    for path, network in ((manifest.audio_path, "audio"), (manifest.visual_path, "visual")):
        meta = onnx_metadata(path)
        assert meta["card_sha256"] == source.card_sha256 and meta["network"] == network
        assert onnx.load(str(path)).opset_import[0].version == 17
    parity = manifest.parity
    assert parity["source"] == "sim", parity["source"]
    assert parity["passed"] and parity["tolerance_rad"] == 1e-4
    assert parity["audio_max_abs_rad"] <= 1e-4 and parity["visual_max_abs_rad"] <= 1e-4
    assert parity["batch_sizes"] == [1, 2, 3]


def test_dynamic_batch(exported: Path) -> None:
    manifest = read_export(exported)
    session = ort.InferenceSession(str(manifest.audio_path), providers=["CPUExecutionProvider"])
    shape = session.get_inputs()[0].shape
    assert isinstance(shape[0], str) and shape[1:] == list(smoke_config().audio.feature_shape)
    inputs = parity_inputs(smoke_config(), "synthetic", samples=2)
    for batch in (1, 5):
        out = session.run(None, {AUDIO_INPUT: inputs.features[:batch]})[0]
        assert out.shape == (batch,) and out.dtype == np.float32


def test_parity_check_catches_a_mismatch(models: tuple[Path, Path], exported: Path) -> None:
    manifest = read_export(exported)
    other = load_model(models[1])  # the export of model a against model b's weights
    inputs = parity_inputs(other.config, "synthetic", samples=1)
    report = check_parity(other, manifest.audio_path, manifest.visual_path, inputs)
    assert not report.passed
    assert max(report.audio_max_abs_rad, report.visual_max_abs_rad) > 1e-3


def test_fp16_export(models: tuple[Path, Path], tmp_path: Path) -> None:
    result = export_model(models[0], tmp_path / "fp16", fp16=True, parity_source="synthetic")
    manifest = result.manifest
    assert manifest.precision == "fp16" and result.parity is not None
    assert result.parity.tolerance_rad == PARITY_TOLERANCE_RAD["fp16"] == 1e-2
    assert result.parity.passed
    graph = onnx.load(str(manifest.audio_path))
    assert graph.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert any(init.data_type == onnx.TensorProto.FLOAT16 for init in graph.graph.initializer), (
        "weights are stored in half precision"
    )
    onnx.checker.check_model(graph)


def test_no_overwrite_of_a_different_export(
    models: tuple[Path, Path], exported: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(exported, copy)
    before = (copy / "export.json").read_text()
    again = export_model(models[0], copy, parity=False)
    assert again.reused and (copy / "export.json").read_text() == before
    with pytest.raises(ModelError, match="different export"):
        export_model(models[1], copy, parity=False)
    with pytest.raises(ModelError, match="different export"):
        export_model(models[0], copy, opset=18, parity=False)
    assert (copy / "export.json").read_text() == before
    stray = tmp_path / "stray"
    stray.mkdir()
    (stray / "audio.onnx").write_bytes(b"something else")
    with pytest.raises(ModelError, match=r"but no export\.json"):
        export_model(models[0], stray, parity=False)


def test_damaged_export_is_detected(
    models: tuple[Path, Path], exported: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "damaged"
    shutil.copytree(exported, copy)
    with open(copy / "visual.onnx", "ab") as handle:
        handle.write(b"\0")
    source = read_model_source(models[0])
    problems = export_problems(read_export(copy), source)
    assert any("visual.onnx differs" in p for p in problems)
    with pytest.raises(ModelError, match="cannot be used"):
        find_or_export(source, export_dir=copy)
    # Same model: export_model rewrites the damaged files.
    result = export_model(models[0], copy, parity=False)
    assert not result.reused and export_problems(result.manifest, source) == []


def test_find_or_export_uses_the_cache(models: tuple[Path, Path], tmp_path: Path) -> None:
    source = read_model_source(models[1])
    manifest, note = find_or_export(source, cache_dir=tmp_path)
    assert "created on first use" in note and manifest.directory.parent == tmp_path / "onnx"
    again, note = find_or_export(source, cache_dir=tmp_path)
    assert note.startswith("cached ONNX export") and again.directory == manifest.directory
    manifest.audio_path.write_bytes(b"damaged")
    repaired, note = find_or_export(source, cache_dir=tmp_path)
    assert "created on first use" in note and export_problems(repaired, source) == []
    other = read_model_source(models[0])
    with pytest.raises(ModelError, match="model card sha256"):
        find_or_export(other, export_dir=manifest.directory)


def test_manifest_is_plain_json(exported: Path) -> None:
    data = json.loads((exported / "export.json").read_text())
    assert data["files"]["audio"]["inputs"] == {"features": ["batch", 4, 128, 64]}
    assert data["files"]["visual"]["outputs"] == {"yaw": ["batch"]}
    assert "STFT" in data["outside_graph"]
