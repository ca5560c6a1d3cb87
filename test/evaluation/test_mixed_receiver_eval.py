"""Evaluation on a simulated split that mixes receivers: each sample scored with its geometry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.estimators.base import AudioEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry, SphericalHeadGeometry
from slfm_ros.core.sim.dataset import ShardedDataset, write_dataset
from slfm_ros.core.sim.receivers import make_receiver
from slfm_ros.core.sim.scene import SceneConfig
from slfm_ros.evaluation.estimators import build_audio_estimator
from slfm_ros.evaluation.synthetic_eval import (
    dataset_geometry,
    evaluate_synthetic,
    sample_geometry,
)

# A mix of two receivers, each with a parameter range, on small images.
MIXED = {
    "num_views": 2,
    "max_turn_deg": 90.0,
    "image": {"width": 64, "height": 48, "effects": {}},
    "panoramas": {"width": 512},
    "receivers": [
        {"kind": "spherical_head", "params": {"radius_m": [0.075, 0.10]}, "weight": 0.6},
        {"kind": "stereo_array", "params": {"spacing_m": [0.10, 0.25]}, "weight": 0.4},
    ],
}


@pytest.fixture(scope="module")
def dataset(
    tmp_path_factory: pytest.TempPathFactory, clean_speech_scene: Callable[..., SceneConfig]
) -> ShardedDataset:
    root = tmp_path_factory.mktemp("mixed")
    scene = clean_speech_scene(**MIXED)
    write_dataset(scene, root, 8, "test", seed=5, workers=1, shard_size=4, progress=False)
    return ShardedDataset(root)


def test_gcc_phat_uses_each_samples_receiver_geometry(dataset: ShardedDataset) -> None:
    metas = [dataset[i].metadata for i in range(len(dataset))]
    assert {m["receiver_kind"] for m in metas} == {"spherical_head", "stereo_array"}
    built: dict[float, InterauralGeometry] = {}

    def factory(geometry: InterauralGeometry) -> AudioEstimator:
        built[geometry.max_itd] = geometry
        return build_audio_estimator("gcc_phat", geometry)

    result = evaluate_synthetic(dataset, None, None, audio_factory=factory)
    # One estimator per receiver, each with the geometry of the receiver the metadata names.
    expected = {
        make_receiver(m["receiver_kind"], **m["receiver_params"]).geometry.max_itd for m in metas
    }
    assert len(built) == len({m["receiver"] for m in metas})
    assert sorted(built) == pytest.approx(sorted(expected), rel=1e-12)
    for m in metas:
        assert sample_geometry(dataset, m).max_itd in built
    assert result.audio is not None and result.audio.report.n >= 8
    assert result.audio.report.azimuth_mae_deg < 3.0
    # One estimator for every sample still runs (fine for geometry-free estimators), but one
    # fixed geometry is clearly worse on the same clips.
    fixed = evaluate_synthetic(
        dataset, build_audio_estimator("gcc_phat", SphericalHeadGeometry(0.0875)), None
    )
    assert fixed.audio is not None and fixed.audio.report.n == result.audio.report.n
    assert fixed.audio.report.azimuth_mae_deg > 3 * result.audio.report.azimuth_mae_deg


def test_one_geometry_for_a_mixed_dataset_is_refused(dataset: ShardedDataset) -> None:
    with pytest.raises(DatasetError, match=r"mixes receivers .*audio_factory"):
        dataset_geometry(dataset)
    old_style = {k: v for k, v in dataset[0].metadata.items() if k != "receiver_params"}
    with pytest.raises(DatasetError, match="mixes receivers"):
        sample_geometry(dataset, old_style)
    estimator = build_audio_estimator("gcc_phat", SphericalHeadGeometry())
    with pytest.raises(ConfigError, match="not both"):
        evaluate_synthetic(dataset, estimator, None, audio_factory=lambda g: estimator)


def test_receiver_lists_without_ranges_keep_one_geometry(
    tmp_path: Path, clean_speech_scene: Callable[..., SceneConfig]
) -> None:
    single = clean_speech_scene(
        **{
            **MIXED,
            "clip_seconds": 0.25,
            "receivers": [{"kind": "stereo_array", "params": {"spacing_m": 0.2}}],
        }
    )
    assert not single.mixes_receivers
    write_dataset(single, tmp_path, 1, "test", seed=0, workers=1, progress=False)
    geometry = dataset_geometry(ShardedDataset(tmp_path))
    assert geometry.max_itd == pytest.approx(0.2 / 343.0)


def test_eval_commands_score_a_mixed_dataset(
    dataset: ShardedDataset,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    save_tiny_model: Callable[..., Path],
) -> None:
    import json

    from slfm_ros.cli.main import main
    from slfm_ros.evaluation.report import run_report

    args = ["eval", "synthetic", "--data", str(dataset.root), "--only", "audio", "--json"]
    args += ["--estimator", "classic"]
    assert main(args) == 0
    cli = json.loads(capsys.readouterr().out)
    assert cli["audio_n"] >= 8 and cli["azimuth_mae_deg"] < 3.0

    model = save_tiny_model(tmp_path / "model")
    report = run_report(dataset.root, model=model, backend="torch", baselines=["gcc_phat"])
    rows = {row.label: row.result for row in report.rows}
    gcc = rows["gcc_phat"].audio
    assert gcc is not None and gcc.report.azimuth_mae_deg == pytest.approx(cli["azimuth_mae_deg"])
