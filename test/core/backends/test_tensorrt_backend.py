"""TensorRT backend on a real GPU: engine build, parity with PyTorch, cache reuse, corrupt
engine rebuild, FP16, batches beyond the profile and device-resident calls.

These tests need the tensorrt Python package and a CUDA build of PyTorch with a GPU; elsewhere
they are skipped with the reason. The cache logic itself is tested everywhere in
test_engine_cache.py.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.backends import BackendOptions, create_runners, read_model_source
from slfm_ros.core.backends.engine_cache import check_engine
from slfm_ros.core.backends.onnx_export import parity_inputs
from slfm_ros.core.backends.tensorrt_backend import TensorRtBackend, engine_paths

_REASON = TensorRtBackend.unavailable_reason("cuda")
pytestmark = pytest.mark.skipif(
    bool(_REASON), reason=f"TensorRT backend unavailable here: {_REASON}"
)


def trt_options(tmp: Path, **kw: object) -> BackendOptions:
    return BackendOptions(
        cache_dir=str(tmp),
        engine_file_path=str(tmp / "engines" / "{network}.plan"),
        max_batch_size=4,
        max_workspace_size=256 << 20,
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def trt_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("trt")


def test_fp32_engine_matches_torch_and_is_cached(smoke_model: Path, trt_dir: Path) -> None:
    runners = create_runners(smoke_model, "tensorrt", options=trt_options(trt_dir))
    assert runners.backend_name == "tensorrt" and runners.device == "cuda"
    assert any("engine built" in note for note in runners.notes)
    reference = create_runners(smoke_model, "torch", "cpu", trt_options(trt_dir))
    inputs = parity_inputs(runners.config, "synthetic", samples=2)  # 6 windows: > max batch 4
    a, b = runners.audio(inputs.features), reference.audio(inputs.features)
    assert a.shape == (6,) and np.max(np.abs(a - b)) < 1e-3
    v = runners.visual(inputs.image_0, inputs.image_1)
    w = reference.visual(inputs.image_0, inputs.image_1)
    assert np.max(np.abs(v - w)) < 1e-3

    again = create_runners(smoke_model, "tensorrt", options=trt_options(trt_dir))
    assert all("engine loaded" in n for n in again.notes if "engine" in n)
    runners.close()
    again.close()


def test_corrupt_engine_is_rebuilt(smoke_model: Path, trt_dir: Path) -> None:
    options = trt_options(trt_dir)
    create_runners(smoke_model, "tensorrt", options=options).close()
    path = engine_paths(options, read_model_source(smoke_model), "fp32")["audio"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    runners = create_runners(smoke_model, "tensorrt", options=options)
    assert any("audio engine built" in n and "corrupt" in n for n in runners.notes)
    runners.close()


def test_force_engine_update(smoke_model: Path, trt_dir: Path) -> None:
    runners = create_runners(
        smoke_model, "tensorrt", options=trt_options(trt_dir, force_engine_update=True)
    )
    assert sum("force_engine_update" in n for n in runners.notes) == 2
    runners.close()


def test_fp16_engine(smoke_model: Path, trt_dir: Path) -> None:
    options = trt_options(trt_dir / "fp16", enable_fp16=True)
    runners = create_runners(smoke_model, "tensorrt", options=options)
    assert runners.precision == "fp16"
    reference = create_runners(smoke_model, "torch", "cpu")
    inputs = parity_inputs(runners.config, "synthetic", samples=1)
    diff = np.max(np.abs(runners.audio(inputs.features) - reference.audio(inputs.features)))
    assert diff < 2e-2
    for path in engine_paths(options, runners.backend.source, "fp16").values():
        assert path.is_file()
    runners.close()


def test_device_resident_call(smoke_model: Path, trt_dir: Path) -> None:
    import torch

    runners = create_runners(smoke_model, "tensorrt", options=trt_options(trt_dir))
    backend = runners.backend
    assert isinstance(backend, TensorRtBackend)
    inputs = parity_inputs(runners.config, "synthetic", samples=1)
    x = torch.from_numpy(inputs.features[:2]).cuda()
    out = backend.run_audio_device(x)
    assert out.is_cuda and tuple(out.shape) == (2,)
    assert np.allclose(out.cpu().numpy(), runners.audio(inputs.features[:2]), atol=1e-5)
    key_path = engine_paths(trt_options(trt_dir), backend.source, "fp32")["visual"]
    assert key_path.is_file() and key_path.with_name(key_path.name + ".json").is_file()
    assert not check_engine(key_path, _other_key(key_path)).valid
    runners.close()


def _other_key(path: Path):  # type: ignore[no-untyped-def]
    import json

    from slfm_ros.core.backends.engine_cache import EngineKey

    recorded = json.loads(path.with_name(path.name + ".json").read_text())["key"]
    return EngineKey(**{**recorded, "tensorrt_version": "0.0.0"})
