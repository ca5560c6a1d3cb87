"""TensorRT API surface and the GPU-free helpers of the TensorRT backend.

The API check runs wherever the tensorrt Python package imports (no GPU needed for that) and
is skipped with the reason elsewhere; the helpers are tested everywhere. Engine builds and runs
are in test_tensorrt_backend.py (GPU only).
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from slfm_ros.core.backends.tensorrt_backend import (
    REQUIRED_API,
    _create,
    _version_tuple,
    fast_fp16,
    missing_api,
    onnx_precision,
)
from slfm_ros.core.errors import ModelError


def _import_tensorrt() -> tuple[Any, str]:
    try:
        import tensorrt
    except ImportError as exc:  # not installed, or a bindings wheel without its libraries
        return None, f"the tensorrt Python package does not import here ({exc})"
    return tensorrt, ""


TRT, TRT_REASON = _import_tensorrt()


def test_version_tuple() -> None:
    assert _version_tuple("8.6.1") == (8, 6)
    assert _version_tuple("10.16.1.11") == (10, 16)
    assert _version_tuple("11.4.0.106") == (11, 4)


def test_fast_fp16_by_compute_capability() -> None:
    assert fast_fp16((8, 7)) and fast_fp16((7, 2)) and fast_fp16((9, 0))  # Orin, Xavier, H100
    assert fast_fp16((5, 3)) and fast_fp16((6, 2))  # Jetson TX1, TX2
    assert not fast_fp16((6, 1)) and not fast_fp16((5, 2))  # GeForce Pascal, Maxwell


def test_factory_failures_become_model_errors() -> None:
    def nullptr(logger: object) -> object:
        raise TypeError("pybind11::init(): factory function returned nullptr")

    with pytest.raises(ModelError, match="could not create a builder: pybind11::init"):
        _create("a builder", nullptr, object())
    with pytest.raises(ModelError, match="could not create a builder config"):
        _create("a builder config", lambda: None)
    assert _create("a list", list, (1, 2)) == [1, 2]


def test_missing_api_lists_what_a_module_lacks() -> None:
    bare = types.SimpleNamespace(__version__="10.3.0")
    assert missing_api(bare) == list(REQUIRED_API)
    old = types.SimpleNamespace(__version__="8.6.1")
    assert missing_api(old)[-1] == "NetworkDefinitionCreationFlag.EXPLICIT_BATCH"


@pytest.mark.skipif(TRT is None, reason=TRT_REASON)
def test_installed_tensorrt_has_every_name_the_backend_uses() -> None:
    assert missing_api(TRT) == []
    assert onnx_precision(TRT, "fp32") == "fp32"
    if _version_tuple(TRT.__version__) >= (11, 0):
        # No FP16 builder flag: FP16 engines come from the fp16 export.
        assert not hasattr(TRT.BuilderFlag, "FP16")
        assert onnx_precision(TRT, "fp16") == "fp16"
    else:
        assert onnx_precision(TRT, "fp16") == "fp32"
