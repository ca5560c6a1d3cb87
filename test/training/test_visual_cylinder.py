"""The cylinder pose recipe: cached pairs, a tiny run that lowers its loss, save and load."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.cylinder_pose import CURVE_NAMES, CylinderPoseNet
from slfm_training.stages.visual_cylinder import (
    WorldPairs,
    cached_pairs,
    data_key,
    head_loss,
    load_config,
    load_cylinder_pose,
    measured_training_pairs,
    run,
    train_head,
)

CONFIG = (
    Path(__file__).parents[2] / "training" / "configs" / "cylinder_pose" / "visual_cylinder.yaml"
)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One curve cache for the module: rendering worlds is the slow part."""
    return tmp_path_factory.mktemp("cylinder_cache")


def tiny(cache: Path, out: Path, *overrides: str, config: Path = CONFIG):
    return load_config(
        config,
        [
            f"cache_dir={cache}",
            f"out_dir={out}",
            "data.panorama_width=512",
            "data.render_width=160",
            "data.render_height=120",
            "data.train_worlds=3",
            "data.val_worlds=1",
            "data.pairs_per_world=6",
            "data.chunk_worlds=2",
            "model.channels=8",
            "model.context_dim=8",
            "optim.batch_size=6",
            *overrides,
        ],
    )


def test_the_shipped_config_loads_and_rejects_unknown_keys() -> None:
    cfg = load_config(CONFIG)
    assert cfg.model.n_bins == 361 and cfg.data.irregular_probability > 0
    with pytest.raises(ConfigError, match="unknown key"):
        load_config(CONFIG, ["optim.learning_rate=0.1"])


def test_pairs_are_cached_and_reused(cache: Path, tmp_path: Path) -> None:
    cfg = tiny(cache, tmp_path)
    curves, turns, _, masks = cached_pairs(cfg, "train", 3, log=lambda *_: None)
    assert masks is None  # only turns heard by ear have masks
    assert curves.shape == (18, len(CURVE_NAMES), 361) and turns.shape == (18,)
    assert np.all(np.abs(turns) < math.radians(90.0))
    folder = cache / data_key(cfg)
    assert len(list(folder.glob("train-*.npz"))) == 2  # chunks of 2 worlds
    messages: list[str] = []
    again = cached_pairs(cfg, "train", 3, log=messages.append).curves
    assert not messages  # nothing rendered the second time
    np.testing.assert_array_equal(again, curves)
    # Head settings do not change the cache; data settings do.
    assert data_key(tiny(cache, tmp_path, "model.channels=4")) == data_key(cfg)
    assert data_key(tiny(cache, tmp_path, "data.max_turn_deg=60")) != data_key(cfg)


def test_a_tiny_run_lowers_its_loss_and_saves_a_loadable_model(cache: Path, tmp_path: Path) -> None:
    torch.set_num_threads(1)
    cfg = tiny(cache, tmp_path / "out", "optim.epochs=25", "optim.lr=0.01")
    train = cached_pairs(cfg, "train", 3, log=lambda *_: None)
    curves = torch.from_numpy(train[0].astype(np.float32))
    turns = torch.from_numpy(train[1])
    torch.manual_seed(cfg.optim.seed)

    with torch.no_grad():
        before = float(head_loss(CylinderPoseNet(cfg.model), curves, turns, cfg.optim)[0])
    net, metrics = train_head(cfg, train, None, log=lambda *_: None)
    with torch.no_grad():
        after = float(head_loss(net, curves, turns, cfg.optim)[0])
    assert after < 0.7 * before
    assert metrics["history"][-1]["loss"] < metrics["history"][0]["loss"]
    # The whole recipe writes a model that loads back with the same outputs.
    run(cfg, log=lambda *_: None)
    loaded = load_cylinder_pose(tmp_path / "out")
    assert loaded.cfg == net.cfg
    assert (tmp_path / "out" / "cylinder_pose.pt").stat().st_size < 5e6
    images = torch.randn(2, 3, 120, 160)
    with torch.no_grad():
        theta = loaded(images[:1], images[1:])
        assert torch.isfinite(theta).all()
        torch.testing.assert_close(loaded(images[1:], images[:1]), -theta, atol=1e-5, rtol=0)


def test_the_egomotion_recipe_learns_from_measured_turns_only(cache: Path, tmp_path: Path) -> None:
    egomotion = CONFIG.with_name("visual_egomotion.yaml")
    base = tiny(cache, tmp_path / "out", "optim.epochs=3")
    cfg = tiny(cache, tmp_path / "out", "optim.epochs=3", config=egomotion)
    assert cfg.data.chained and cfg.data.sweep_frames >= 2
    # The labelled recipe's cached curves stay valid: its key ignores the sweep settings.
    assert data_key(tiny(cache, tmp_path, "data.sweep_frames=5")) == data_key(base)
    assert data_key(cfg) != data_key(base)
    pairs = cached_pairs(cfg, "train", 3, log=lambda *_: None)
    labelled = cached_pairs(base, "train", 3, log=lambda *_: None)
    # The same pairs as the labelled recipe: only the targets differ.
    np.testing.assert_array_equal(pairs.turns, labelled.turns)
    np.testing.assert_array_equal(pairs.curves, labelled.curves)
    assert np.isnan(labelled.measured).all()
    measured = np.isfinite(pairs.measured)
    assert measured.mean() >= 0.5
    error = np.degrees(np.abs(pairs.measured[measured] - pairs.turns[measured]))
    assert np.median(error) < 1.0
    (train_curves, targets), stats = measured_training_pairs(pairs, 90.0)
    np.testing.assert_array_equal(targets, pairs.measured[measured])
    assert len(train_curves) == measured.sum() and stats["measured_share"] == measured.mean()
    metrics = run(cfg, log=lambda *_: None)
    assert metrics["chained_turns"]["mae_deg"] == pytest.approx(float(error.mean()), rel=1e-5)
    saved = yaml.safe_load((tmp_path / "out" / "cylinder_pose.yaml").read_text())
    assert saved["training"]["labels"].startswith("none")


def test_measured_turns_beyond_the_head_range_are_left_out() -> None:
    pairs = WorldPairs(
        np.zeros((3, len(CURVE_NAMES), 361), np.float16),
        np.radians([10.0, 89.0, 89.5]).astype(np.float32),
        np.radians([10.2, 91.0, np.nan]).astype(np.float32),
    )
    (curves, targets), stats = measured_training_pairs(pairs, 90.0)
    assert len(curves) == 1 and np.degrees(targets[0]) == pytest.approx(10.2, abs=1e-4)
    assert stats["outside_range"] == 1 and stats["measured_share"] == pytest.approx(1 / 3)


def test_a_cache_where_no_sweep_was_measured_is_refused() -> None:
    empty = WorldPairs(
        np.zeros((2, len(CURVE_NAMES), 361), np.float16),
        np.zeros(2, np.float32),
        np.full(2, np.nan, np.float32),
    )
    with pytest.raises(ConfigError, match="no sweep was measured"):
        measured_training_pairs(empty, 90.0)


MUTUAL = CONFIG.with_name("visual_mutual.yaml")
LABEL_FREE = Path(__file__).parents[2] / "models" / "label_free"


def test_the_mutual_recipe_measures_overlapping_pairs_by_ncc_and_the_rest_by_ear(
    cache: Path, tmp_path: Path
) -> None:
    base = tiny(cache, tmp_path / "out", "optim.epochs=3")
    cfg = tiny(
        cache, tmp_path / "out", "optim.epochs=3", f"data.audio_model={LABEL_FREE}", config=MUTUAL
    )
    assert cfg.data.by_ear and data_key(cfg) != data_key(base)
    # The labelled recipe's cached curves stay valid: its key ignores the settings by ear.
    assert data_key(tiny(cache, tmp_path, "data.audio_sigma_deg=5")) == data_key(base)
    pairs = cached_pairs(cfg, "train", 3, log=lambda *_: None)
    labelled = cached_pairs(base, "train", 3, log=lambda *_: None)
    np.testing.assert_array_equal(pairs.turns, labelled.turns)
    np.testing.assert_array_equal(pairs.curves, labelled.curves)
    assert pairs.masks is not None and pairs.masks.shape == (18, 361)
    direct = np.isfinite(pairs.measured)
    heard = pairs.masks.astype(np.float32).max(axis=1) > 0
    # Every pair is measured one way or the other, never both.
    np.testing.assert_array_equal(heard, ~direct)
    assert 0 < direct.sum() < 18
    assert np.median(np.degrees(np.abs(pairs.measured[direct] - pairs.turns[direct]))) < 1.0
    # Two ears cannot tell a turn from its opposite; the masks say so.
    masks = pairs.masks[heard].astype(np.float32)
    np.testing.assert_allclose(masks, masks[:, ::-1], atol=2e-3)
    metrics = run(cfg, log=lambda *_: None)
    stats = metrics["ncc_and_ear_turns"]
    assert stats["direct_share"] == pytest.approx(direct.mean())
    assert stats["heard_share"] == pytest.approx(heard.mean())
    assert stats["heard_allows_truth"] >= 0.5
    saved = yaml.safe_load((tmp_path / "out" / "cylinder_pose.yaml").read_text())
    labels = saved["training"]["labels"]
    assert labels.startswith("none") and "by ear" in labels
    with pytest.raises(ConfigError, match="turn_source: ncc_audio only"):
        tiny(cache, tmp_path, f"data.audio_model={LABEL_FREE}")


def test_pairs_heard_by_ear_learn_toward_the_turns_their_mask_allows(
    cache: Path, tmp_path: Path
) -> None:
    torch.set_num_threads(1)
    cfg = tiny(cache, tmp_path, "optim.epochs=40", "optim.lr=0.01")
    curves = cached_pairs(cfg, "train", 3, log=lambda *_: None).curves[:6]
    bins = np.arange(361)
    masks = np.zeros((6, 361), np.float32)
    masks[:, np.abs(np.abs(bins - 180) - 80) <= 4] = 1.0  # +-40 deg, either sign
    unknown = np.full(6, np.nan, np.float32)

    def allowed_mass(net: CylinderPoseNet) -> float:
        with torch.no_grad():
            logits, _ = net.raw_head_outputs(torch.from_numpy(curves.astype(np.float32)))
            return float((torch.softmax(logits, 1) * torch.from_numpy(masks)).sum(1).mean())

    torch.manual_seed(cfg.optim.seed)
    before = allowed_mass(CylinderPoseNet(cfg.model))
    net, _ = train_head(cfg, (curves, unknown), None, log=lambda *_: None, masks=masks)
    assert before < 0.2 and allowed_mass(net) > 0.8
