"""Learned estimators of the evaluation commands run on the inference backends the node uses."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
from slfm_ros.evaluation.estimators import (
    backend_label,
    build_audio_estimator,
    build_visual_estimator,
)

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def model_dir(
    tmp_path_factory: pytest.TempPathFactory, save_tiny_model: Callable[..., Path]
) -> Path:
    return save_tiny_model(tmp_path_factory.mktemp("learned") / "model")


def test_backends_give_the_same_estimates(model_dir: Path) -> None:
    rng = np.random.default_rng(0)
    clip = (0.1 * rng.standard_normal((16000, 2))).astype(np.float32)
    clip[:, 0] *= 2.0
    image = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    turned = np.roll(image, 8, axis=1)
    geometry = SphericalHeadGeometry()
    results = {}
    for backend in ("torch", "onnxruntime"):
        audio = build_audio_estimator("slfm", geometry, model_dir, backend)
        visual = build_visual_estimator("slfm", model=model_dir, backend=backend)
        assert backend_label(model_dir, backend).startswith(f"{backend} (cpu")
        results[backend] = (audio.estimate(clip, 16000), visual.estimate(image, turned))
    for torch_est, ort_est in zip(results["torch"], results["onnxruntime"], strict=True):
        assert torch_est.valid and ort_est.valid
        assert math.isclose(torch_est.angle, ort_est.angle, abs_tol=1e-4)


def test_one_backend_serves_both_networks(model_dir: Path) -> None:
    audio = build_audio_estimator("slfm", SphericalHeadGeometry(), model_dir, "onnxruntime")
    visual = build_visual_estimator("slfm", model=model_dir, backend="onnxruntime")
    assert audio.run_audio.__self__ is visual.run_visual.__self__  # type: ignore[attr-defined]


def test_unknown_backend_and_missing_model(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="backend must be one of"):
        build_audio_estimator("slfm", SphericalHeadGeometry(), tmp_path, "cuda")
    with pytest.raises(ModelError, match="does not exist"):
        build_visual_estimator("slfm", model=tmp_path / "none", backend="torch")
