"""Training data: view permutation keeps the geometry, positions make batches reproducible."""

from __future__ import annotations

import math
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.sim.dataset import SampleSource
from slfm_training.config import TrainConfig
from slfm_training.data import (
    SampleTransform,
    StepBatchSampler,
    TrainSamples,
    TurnMeter,
    collate,
    open_source,
    valid_permutations,
)


def three_view_source(
    tiny_config: Callable[..., TrainConfig], stage: str, *overrides: str
) -> tuple[TrainConfig, SampleSource]:
    """Tiny 3-view samples, permuted at every position, and their training source."""
    cfg = tiny_config(
        stage,
        "data.scene.views.num_views=3",
        "data.num_views=3",
        "data.permute_prob=1.0",
        "data.cache_samples=8",
        *overrides,
    )
    return cfg, open_source(cfg.data, "train")


@pytest.fixture(scope="module")
def three_views(tiny_config: Callable[..., TrainConfig]) -> tuple[TrainConfig, SampleSource]:
    return three_view_source(tiny_config, "slfm")


def test_permuted_views_keep_the_static_source_geometry(
    three_views: tuple[TrainConfig, SampleSource],
) -> None:
    cfg, source = three_views
    dataset = TrainSamples(
        source, SampleTransform(cfg.model_config(), cfg.data, train=True), cfg.data, cfg.seed
    )
    orders_seen = set()
    for position in range(12):
        item = dataset[position]
        sample = source[dataset.index_of(position)]
        turns, azimuths = item["turns"], item["azimuths"]
        assert turns[0] == 0.0
        assert np.all(np.abs(turns) < math.radians(cfg.data.max_turn_deg))
        # phi_i = phi_0 - theta_i for the new view 0 as well.
        residual = np.asarray(wrap_angle(azimuths[0] - turns - azimuths), dtype=np.float64)
        np.testing.assert_allclose(residual, 0.0, atol=1e-5)
        # Each kept view is one of the sample's views, with its own azimuth.
        order = [int(np.argmin(np.abs(sample.target_azimuths - a))) for a in azimuths]
        orders_seen.add(tuple(order))
    assert len(orders_seen) > 1, "permute_prob 1.0 should produce more than one view order"


@pytest.fixture(scope="module")
def sharp_views(tiny_config: Callable[..., TrainConfig]) -> tuple[TrainConfig, SampleSource]:
    """Three views rendered at 160 x 120 from detailed panoramas: enough texture for ORB."""
    return three_view_source(
        tiny_config,
        "egomotion",
        "data.scene.image.width=160",
        "data.scene.image.height=120",
        "data.scene.panoramas.width=1024",
    )


def test_turn_meter_measures_the_turns_between_rendered_views(
    sharp_views: tuple[TrainConfig, SampleSource],
) -> None:
    image = sharp_views[1].config.image
    source = sharp_views[1]
    meter = TurnMeter("orb", image.hfov_deg, image.pitch_deg, min_inliers=8)
    measured, truth = [], []
    for index in range(8):
        sample = source[index]
        turns = meter.measure(list(sample.images))
        assert turns[0] == 0.0
        measured.extend(turns[1:])
        truth.extend(sample.turns[1:])
    found = np.isfinite(measured)
    # Pairs that barely overlap are declined (NaN); the measured ones are accurate.
    assert 3 <= found.sum() < len(found)
    error = np.degrees(np.abs(wrap_angle(np.asarray(measured)[found] - np.asarray(truth)[found])))
    assert error.max() < 0.5, error
    # Worker processes get a pickled copy: it measures the same.
    copy = pickle.loads(pickle.dumps(meter))
    np.testing.assert_array_equal(
        copy.measure(list(source[0].images)), meter.measure(list(source[0].images))
    )


def test_measured_turns_follow_the_permuted_views(
    sharp_views: tuple[TrainConfig, SampleSource],
) -> None:
    cfg, source = sharp_views
    image = source.config.image
    meter = TurnMeter("orb", image.hfov_deg, image.pitch_deg, min_inliers=8)
    dataset = TrainSamples(
        source,
        SampleTransform(cfg.model_config(), cfg.data, train=True, turn_meter=meter),
        cfg.data,
        cfg.seed,
    )
    batch = collate([dataset[p] for p in range(16)])
    found = torch.isfinite(batch.measured_turns)
    assert found[:, 0].all() and found[:, 1:].any()
    residual = np.degrees(np.abs(wrap_angle((batch.measured_turns - batch.turns)[found].numpy())))
    assert residual.max() < 0.5
    without = SampleTransform(cfg.model_config(), cfg.data, train=True)
    assert np.isnan(without(source[0], np.random.default_rng(0), 0)["measured_turns"]).all()


def test_valid_permutations_respect_the_turn_limit() -> None:
    yaws = np.radians([0.0, 80.0, -80.0])
    orders = valid_permutations(yaws, 3, math.radians(90.0))
    # From view 1 or 2 as the new view 0, the other side is 160 degrees away.
    assert orders == [(0, 1, 2), (0, 2, 1)]
    assert (1, 0) in valid_permutations(yaws, 2, math.radians(90.0))


def test_batches_are_a_function_of_the_position(
    three_views: tuple[TrainConfig, SampleSource],
) -> None:
    cfg, source = three_views
    transform = SampleTransform(cfg.model_config(), cfg.data, train=True)
    first = TrainSamples(source, transform, cfg.data, cfg.seed)
    second = TrainSamples(source, transform, cfg.data, cfg.seed)
    a = collate([first[p] for p in (5, 6)])
    b = collate([second[p] for p in (5, 6)])
    assert a.images.shape == (2, 3, 3, 32, 48)
    assert a.audio.shape == (2, 3, 2, 2048)
    assert a.images.equal(b.images) and a.audio.equal(b.audio) and a.turns.equal(b.turns)
    # The same sample at another position (next epoch) is augmented differently.
    index = first.index_of(1)
    later = next(p for p in range(4, 8) if first.index_of(p) == index)
    assert not np.array_equal(first[1]["images"], first[later]["images"])


def test_epochs_visit_every_sample_once() -> None:
    from slfm_training.config import DataConfig

    class Source:
        def __len__(self) -> int:
            return 5

        def __getitem__(self, index: int) -> None:
            raise AssertionError("not read")

    data = DataConfig(source="shards", train_dir="unused", train_samples=0)
    samples = TrainSamples(Source(), None, data, seed=3)  # type: ignore[arg-type]
    for epoch in range(3):
        seen = sorted(samples.index_of(epoch * 5 + k) for k in range(5))
        assert seen == [0, 1, 2, 3, 4]


def test_ranks_read_disjoint_positions() -> None:
    batches = []
    for rank in range(2):
        sampler = iter(StepBatchSampler(start_step=3, batch_size=4, rank=rank, world_size=2))
        batches.append([next(sampler) for _ in range(2)])
    assert batches[0][0] == [24, 25, 26, 27] and batches[1][0] == [28, 29, 30, 31]
    assert batches[0][1] == [32, 33, 34, 35]


def test_validation_transform_is_deterministic_and_centred(
    three_views: tuple[TrainConfig, SampleSource],
) -> None:
    cfg, source = three_views
    transform = SampleTransform(cfg.model_config(), cfg.data, train=False)
    sample = source[0]
    a = transform(sample, np.random.default_rng(1), 0)
    b = transform(sample, np.random.default_rng(2), 0)
    assert all(np.array_equal(a[k], b[k], equal_nan=True) for k in a)
    np.testing.assert_allclose(a["turns"], sample.turns, atol=1e-6)


def test_clips_shorter_than_the_window_are_refused(
    tiny_config: Callable[..., TrainConfig],
) -> None:
    cfg = tiny_config("slfm", "model.audio.clip_samples=4096")
    source = open_source(cfg.data, "val")
    with pytest.raises(DatasetError, match="window"):
        SampleTransform(cfg.model_config(), cfg.data, train=False)(
            source[0], np.random.default_rng(0), 0
        )


def test_empty_or_missing_data_folder(
    tmp_path: Path, tiny_config: Callable[..., TrainConfig]
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = tiny_config("slfm", "data.source=shards", f"data.train_dir={empty}")
    with pytest.raises(DatasetError, match="is empty"):
        open_source(cfg.data, "train")
    cfg = tiny_config("slfm", "data.source=shards", f"data.train_dir={tmp_path / 'none'}")
    with pytest.raises(DatasetError, match="does not exist"):
        open_source(cfg.data, "train")
    with pytest.raises(ConfigError, match="val_dir"):
        open_source(cfg.data, "val")
