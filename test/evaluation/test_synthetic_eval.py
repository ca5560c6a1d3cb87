"""Evaluation on a simulated split: which views and pairs are scored, and how well."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import ModelError
from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
from slfm_ros.core.sim.dataset import ShardedDataset, write_dataset
from slfm_ros.core.sim.scene import SceneConfig
from slfm_ros.evaluation.estimators import build_audio_estimator, build_visual_estimator
from slfm_ros.evaluation.synthetic_eval import (
    dataset_geometry,
    evaluate_synthetic,
    sample_geometry,
)


@pytest.fixture(scope="module")
def dataset(
    tmp_path_factory: pytest.TempPathFactory, clean_speech_scene: Callable[..., SceneConfig]
) -> ShardedDataset:
    root = tmp_path_factory.mktemp("synthetic")
    write_dataset(
        clean_speech_scene(), root, 3, "test", seed=5, workers=1, shard_size=2, progress=False
    )
    return ShardedDataset(root)


def test_classical_estimators_on_a_simulated_split(dataset: ShardedDataset) -> None:
    geometry = dataset_geometry(dataset)
    assert isinstance(geometry, SphericalHeadGeometry)
    # Per sample (from the metadata, or the config for datasets written without the params).
    meta = dataset[0].metadata
    assert meta["receiver_params"] == {} and sample_geometry(dataset, meta) == geometry
    old_style = {k: v for k, v in meta.items() if k != "receiver_params"}
    assert sample_geometry(dataset, old_style) == geometry
    result = evaluate_synthetic(
        dataset,
        build_audio_estimator("classic", geometry),
        build_visual_estimator("classic", "sift"),
    )
    front = sum(
        abs(a) <= math.pi / 2 for i in range(len(dataset)) for a in dataset[i].target_azimuths
    )
    assert result.samples == 3
    assert result.audio is not None and result.rotation is not None
    assert result.audio.report.n == front >= 3
    assert result.rotation.report.n == 6
    assert result.audio.report.azimuth_mae_deg < 10.0
    assert result.rotation.report.yaw_median_valid_deg < 1.0
    flat = result.as_dict()
    assert flat["n"] == 3 and flat["audio_n"] == front and flat["yaw_n"] == 6
    assert {"azimuth_mae_deg", "lr_accuracy", "yaw_mae_deg", "yaw_median_deg"} <= set(flat)


def test_one_modality_and_a_limit(dataset: ShardedDataset) -> None:
    result = evaluate_synthetic(dataset, None, build_visual_estimator("classic", "orb"), limit=1)
    assert result.audio is None and result.samples == 1
    assert result.rotation is not None and result.rotation.report.n == 2
    assert "azimuth_mae_deg" not in result.as_dict()


def test_learned_estimators_need_a_real_model(tmp_path: Path) -> None:
    # Without --model the shipped default model is used; it localises a pure delay.
    shipped = build_audio_estimator("slfm", SphericalHeadGeometry())
    source = np.random.default_rng(0).standard_normal(16000)
    delayed = np.roll(source, 6)  # the right ear hears it later: a source on the left
    estimate = shipped.estimate(np.stack([source, delayed], 1).astype(np.float32) * 0.1, 16000)
    assert estimate.valid and estimate.angle > 0.2
    with pytest.raises(ModelError, match="does not exist"):
        build_visual_estimator("slfm", model=tmp_path / "none")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelError):
        build_audio_estimator("slfm", SphericalHeadGeometry(), model=empty)
