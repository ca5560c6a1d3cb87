"""A small randomly initialised model directory shared by the backend tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from slfm_ros.bench.bench_model import smoke_config, write_random_model


@pytest.fixture(scope="session")
def smoke_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return write_random_model(tmp_path_factory.mktemp("models") / "smoke", smoke_config())


@pytest.fixture(scope="session")
def backend_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Cache folder of automatic ONNX exports and engines (kept for the session)."""
    return tmp_path_factory.mktemp("slfm-cache")
