"""Backend selection: order, reasons for skipped candidates, each backend missing, and the
runners of the CPU backends agreeing with each other.

"Missing" is simulated with ``disabled`` (as if the library were not installed) and, for the
GPU candidates, an injected availability check, so the outcome is the same on machines with
and without a GPU; the absence of TensorRT on this machine is also checked for real.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.backends import (
    AUTO_ORDER,
    BackendOptions,
    BackendUnavailable,
    candidates,
    create_runners,
)
from slfm_ros.core.backends.base import default_availability
from slfm_ros.core.backends.onnx_export import parity_inputs
from slfm_ros.core.backends.tensorrt_backend import TensorRtBackend
from slfm_ros.core.errors import ConfigError

HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


def no_gpu(name: str, device: str) -> str | None:
    """The real checks, except that no candidate may use a GPU."""
    if device == "cuda":
        return "no GPU (test)"
    return default_availability(name, device)


def options(cache: Path, **kw: object) -> BackendOptions:
    return BackendOptions(cache_dir=str(cache), intra_op_threads=1, **kw)  # type: ignore[arg-type]


def test_auto_order_and_filters() -> None:
    assert candidates() == list(AUTO_ORDER)
    assert AUTO_ORDER == (
        ("tensorrt", "cuda"),
        ("onnxruntime", "cuda"),
        ("torch", "cuda"),
        ("onnxruntime", "cpu"),
        ("torch", "cpu"),
    )
    assert candidates("onnxruntime") == [("onnxruntime", "cuda"), ("onnxruntime", "cpu")]
    assert candidates("auto", "cpu") == [("onnxruntime", "cpu"), ("torch", "cpu")]
    with pytest.raises(ConfigError, match="backend"):
        candidates("openvino")
    with pytest.raises(ConfigError, match="device"):
        candidates("auto", "tpu")
    with pytest.raises(ConfigError, match="does not run"):
        candidates("tensorrt", "cpu")


@pytest.mark.skipif(
    HAS_TENSORRT, reason="TensorRT is installed here; its absence cannot be checked"
)
def test_tensorrt_absence_detected_for_real() -> None:
    reason = TensorRtBackend.unavailable_reason("cuda")
    assert reason and "tensorrt" in reason.lower()
    assert TensorRtBackend.unavailable_reason("cpu") == "TensorRT runs only on NVIDIA GPUs"


def test_auto_skips_better_candidates_with_reasons(smoke_model: Path, backend_cache: Path) -> None:
    runners = create_runners(smoke_model, options=options(backend_cache))
    chosen = (runners.backend_name, runners.device)
    order = list(AUTO_ORDER)
    passed_over = order[: order.index(chosen)]
    assert [tag for tag, _ in runners.skipped] == [f"{n}:{d}" for n, d in passed_over]
    assert all(reason for _, reason in runners.skipped)
    if not HAS_TENSORRT:
        assert runners.skipped[0][0] == "tensorrt:cuda"
        assert "tensorrt" in runners.skipped[0][1].lower()
    assert runners.description.startswith(runners.backend_name)


@pytest.mark.parametrize(
    "disabled, expected, skipped",
    [
        ((), ("onnxruntime", "cpu"), []),
        (("onnxruntime",), ("torch", "cpu"), ["onnxruntime:cpu"]),
        (("onnxruntime:cpu",), ("torch", "cpu"), ["onnxruntime:cpu"]),
        (("torch",), ("onnxruntime", "cpu"), []),
    ],
)
def test_each_backend_missing(
    smoke_model: Path,
    backend_cache: Path,
    disabled: tuple[str, ...],
    expected: tuple[str, str],
    skipped: list[str],
) -> None:
    runners = create_runners(
        smoke_model, options=options(backend_cache), disabled=disabled, availability=no_gpu
    )
    assert (runners.backend_name, runners.device) == expected
    tags = [tag for tag, _ in runners.skipped]
    assert tags == ["tensorrt:cuda", "onnxruntime:cuda", "torch:cuda", *skipped]
    for tag, reason in runners.skipped:
        if tag in disabled or tag.split(":")[0] in disabled:
            assert reason == "disabled"
        else:
            assert reason == "no GPU (test)"


def test_nothing_available_lists_every_reason(smoke_model: Path, backend_cache: Path) -> None:
    with pytest.raises(BackendUnavailable) as info:
        create_runners(
            smoke_model,
            options=options(backend_cache),
            disabled=("onnxruntime", "torch"),
            availability=no_gpu,
        )
    message = str(info.value)
    for tag in ("tensorrt:cuda", "onnxruntime:cuda", "torch:cuda", "onnxruntime:cpu", "torch:cpu"):
        assert tag in message


def test_explicit_backend_without_its_device_fails(smoke_model: Path, backend_cache: Path) -> None:
    with pytest.raises(BackendUnavailable, match="torch:cuda: no GPU"):
        create_runners(smoke_model, "torch", "cuda", options(backend_cache), availability=no_gpu)


def test_candidate_that_fails_to_load_falls_through(
    smoke_model: Path, backend_cache: Path, tmp_path: Path
) -> None:
    # An ONNX export folder that is not an export: ONNX Runtime cannot load, torch takes over.
    bad = tmp_path / "not-an-export"
    bad.mkdir()
    runners = create_runners(
        smoke_model,
        device="cpu",
        options=options(backend_cache, model_file_path=str(bad)),
    )
    assert runners.backend_name == "torch"
    reason = dict(runners.skipped)["onnxruntime:cpu"]
    assert reason.startswith("failed to load") and "export.json" in reason


def test_cpu_backends_agree(smoke_model: Path, backend_cache: Path) -> None:
    ort = create_runners(smoke_model, "onnxruntime", "cpu", options(backend_cache))
    torch_runners = create_runners(smoke_model, "torch", "cpu", options(backend_cache))
    inputs = parity_inputs(ort.config, "synthetic", samples=1)
    for runners in (ort, torch_runners):
        assert runners.precision == "fp32"
    a, b = ort.audio(inputs.features), torch_runners.audio(inputs.features)
    v, w = (
        ort.visual(inputs.image_0, inputs.image_1),
        torch_runners.visual(inputs.image_0, inputs.image_1),
    )
    assert a.dtype == np.float32 and a.shape == (len(inputs.features),)
    assert v.shape == (len(inputs.image_0),)
    assert np.max(np.abs(a - b)) < 1e-4 and np.max(np.abs(v - w)) < 1e-4
    assert np.ptp(a) > 1e-3, "the outputs must depend on the input for this check to mean much"


def test_options_reach_the_libraries(smoke_model: Path, backend_cache: Path) -> None:
    ort = create_runners(
        smoke_model, "onnxruntime", "cpu", options(backend_cache, enable_fp16=True)
    )
    session_options = ort.backend.audio_session.get_session_options()  # type: ignore[attr-defined]
    assert session_options.intra_op_num_threads == 1
    assert session_options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert ort.precision == "fp32"
    assert any("enable_fp16 ignored on the CPU" in note for note in ort.notes)
    torch_runners = create_runners(
        smoke_model, "torch", "cpu", options(backend_cache, channels_last=True)
    )
    assert any("channels_last ignored" in note for note in torch_runners.notes)


def test_invalid_options() -> None:
    with pytest.raises(ConfigError, match="max_batch_size"):
        BackendOptions(max_batch_size=0)
    with pytest.raises(ConfigError, match="max_workspace_size"):
        BackendOptions(max_workspace_size=1000)
