"""Several receivers in one scene config: weighted choice, parameter ranges, metadata, checks."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.sim.dataset import MANIFEST, write_dataset
from slfm_ros.core.sim.receivers import SphericalHead, make_receiver
from slfm_ros.core.sim.scene import (
    RANGE_LEVELS,
    SceneConfig,
    draw_receiver,
    receiver_rng,
    sample_rng,
    sample_scene,
)
from slfm_ros.core.sim.sofa import SofaHrirSet, write_sofa

HEAD = {"kind": "spherical_head", "params": {"radius_m": [0.075, 0.10]}, "weight": 0.6}
STEREO = {"kind": "stereo_array", "params": {"spacing_m": [0.10, 0.25]}, "weight": 0.4}

# Small, fast worlds: 1 s clips, small images and panoramas, free field.
TINY = {
    "clip_seconds": 1.0,
    "views": {"num_views": 2},
    "image": {"width": 64, "height": 48, "effects": {}},
    # Box worlds only: the pinned fingerprints below were rendered before irregular worlds.
    "panoramas": {"width": 512, "irregular_probability": 0.0},
    "room": {"anechoic_probability": 1.0},
    "sources": {"target_kinds": ["noise"], "interferers": [0, 0]},
}


def config(**overrides: object) -> SceneConfig:
    return SceneConfig.from_dict({**TINY, **overrides})


def draws(cfg: SceneConfig, n: int, seed: int = 0) -> list[tuple[str, dict]]:
    return [draw_receiver(cfg, receiver_rng(sample_rng(seed, "train", i))) for i in range(n)]


def test_entries_are_chosen_by_weight_and_ranges_drawn_within_them() -> None:
    cfg = config(receivers=[HEAD, STEREO, {**STEREO, "weight": 0.0}])
    drawn = draws(cfg, 400)
    kinds = Counter(kind for kind, _ in drawn)
    assert set(kinds) == {"spherical_head", "stereo_array"}
    assert 0.52 <= kinds["spherical_head"] / 400 <= 0.68  # weight 0.6, binomial sd 0.025
    radii = [p["radius_m"] for k, p in drawn if k == "spherical_head"]
    spacings = [p["spacing_m"] for k, p in drawn if k == "stereo_array"]
    assert min(radii) >= 0.075 and max(radii) <= 0.10
    assert min(spacings) >= 0.10 and max(spacings) <= 0.25
    # Evenly spaced levels over the whole range, not a handful of values.
    steps = (np.array(radii) - 0.075) / (0.025 / RANGE_LEVELS)
    np.testing.assert_allclose(steps, np.round(steps), atol=1e-6)
    assert len(set(radii)) > 30 and len(set(spacings)) > 30
    assert np.mean(radii) == pytest.approx(0.0875, abs=0.002)
    # The same sample always gets the same receiver.
    assert draws(cfg, 400) == drawn


def test_scalars_stay_fixed_and_integer_ranges_draw_integers() -> None:
    cfg = config(
        receivers=[
            {"kind": "stereo_array", "params": {"spacing_m": 0.2, "source_distance_m": [3, 5]}}
        ]
    )
    assert cfg.mixes_receivers
    values = [p for _, p in draws(cfg, 60)]
    assert {p["spacing_m"] for p in values} == {0.2}
    assert {p["source_distance_m"] for p in values} == {3, 4, 5}
    assert all(isinstance(p["source_distance_m"], int) for p in values)


def test_the_receiver_stream_leaves_the_sample_stream_untouched() -> None:
    rng = sample_rng(4, "val", 9)
    first = receiver_rng(rng).random(4)
    np.testing.assert_array_equal(receiver_rng(rng).random(4), first)
    np.testing.assert_array_equal(rng.random(3), sample_rng(4, "val", 9).random(3))
    assert not np.array_equal(receiver_rng(sample_rng(4, "val", 10)).random(4), first)
    assert not np.array_equal(receiver_rng(sample_rng(4, "test", 9)).random(4), first)


def _sofa_head(path: Path) -> Path:
    """A coarse SOFA file of spherical-head HRIRs (radius 0.09 m) every 30 degrees."""
    az, el = np.meshgrid(np.radians(np.arange(0, 360, 30)), np.radians([-30.0, 0.0, 30.0]))
    az, el = az.ravel(), el.ravel()
    irs = SphericalHead(0.09).hrirs(az, el, 16000)
    positions = np.stack([az, el, np.full_like(az, 1.5)], axis=1)
    write_sofa(path, SofaHrirSet(irs.transpose(0, 2, 1), positions, 16000.0))
    return path


def test_metadata_names_the_receiver_used_and_each_receiver_sounds_different(
    tmp_path: Path,
) -> None:
    sofa = {"kind": "sofa", "params": {"path": str(_sofa_head(tmp_path / "head.sofa"))}}
    cfg = config(receivers=[HEAD, STEREO, sofa])
    first: dict[str, int] = {}
    for index, (kind, _) in enumerate(draws(cfg, 40, seed=2)):
        first.setdefault(kind, index)
    assert set(first) == {"spherical_head", "stereo_array", "sofa"}
    for kind, index in first.items():
        s = sample_scene(cfg, sample_rng(2, "train", index), "train", index, 2)
        meta = s.metadata
        assert meta["receiver_kind"] == kind
        assert meta["receiver"] == make_receiver(kind, **meta["receiver_params"]).name
        # What was recorded is what was rendered: the same scene with that one receiver.
        alone = config(receiver={"kind": kind, "params": meta["receiver_params"]})
        ref = sample_scene(alone, sample_rng(2, "train", index), "train", index, 2)
        np.testing.assert_array_equal(s.audio, ref.audio)
        np.testing.assert_array_equal(s.images, ref.images)
        assert meta == ref.metadata
    # One scene heard by different receivers: same world, different ears.
    index = first["stereo_array"]
    heard = {}
    for receiver in (
        {"kind": "spherical_head", "params": {"radius_m": 0.075}},
        {"kind": "spherical_head", "params": {"radius_m": 0.10}},
        {"kind": "stereo_array", "params": {"spacing_m": 0.25}},
        sofa,
    ):
        s = sample_scene(config(receiver=receiver), sample_rng(2, "train", index), "train", index)
        heard[s.metadata["receiver"]] = s
    samples = list(heard.values())
    for s in samples[1:]:
        np.testing.assert_array_equal(s.images, samples[0].images)
        np.testing.assert_array_equal(s.yaws, samples[0].yaws)
        assert s.metadata["sources"] == samples[0].metadata["sources"]
    for i in range(len(samples)):
        for j in range(i + 1, len(samples)):
            assert np.max(np.abs(samples[i].audio - samples[j].audio)) > 0.01


@pytest.mark.parametrize(
    ("receivers", "match"),
    [
        ([HEAD, {"kind": "ear_trumpet"}], r"receivers\[1\]\.kind: expected one of .*sofa"),
        ([{**HEAD, "weight": -1.0}], r"receivers\[0\]\.weight: expected a number >= 0"),
        ([{**HEAD, "weight": 0.0}, {**STEREO, "weight": 0}], "every weight is 0"),
        ([{"kind": "spherical_head", "params": {"radius": 0.08}}], r"receivers\[0\]\.params: "),
        (
            [{"kind": "spherical_head", "params": {"radius_m": [0.1, 0.07]}}],
            r"receivers\[0\]\.params\.radius_m: a range must be \[low, high\]",
        ),
        (
            [STEREO, {"kind": "spherical_head", "params": {"radius_m": [0.07, 0.08, 0.09]}}],
            r"receivers\[1\]\.params\.radius_m",
        ),
        ([{"kind": "sofa", "params": {"path": ["a.sofa", "b.sofa"]}}], r"params\.path"),
        ([{"kind": "stereo_array", "gain": 2.0}], r"receivers\[0\]: unknown key\(s\) \['gain'\]"),
    ],
)
def test_invalid_receiver_lists_name_the_key(receivers: list, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        config(receivers=receivers)


def test_receiver_and_receivers_are_exclusive(tmp_path: Path) -> None:
    both = {"receiver": {"kind": "stereo_array"}, "receivers": [HEAD]}
    with pytest.raises(ConfigError, match="receiver and receivers: give one of them"):
        config(**both)
    path = tmp_path / "both.yaml"
    path.write_text(json.dumps(both))  # JSON is YAML
    with pytest.raises(ConfigError, match=r"both.yaml: receiver and receivers"):
        SceneConfig.from_yaml(path)
    # An untouched default receiver block is fine (a copy of config/sim/default.yaml).
    assert config(receiver={"kind": "spherical_head", "params": {}}, receivers=[HEAD]).receivers


def test_out_of_bounds_ranges_fail_before_the_first_sample() -> None:
    cfg = config(receivers=[{"kind": "spherical_head", "params": {"radius_m": [0.01, 0.09]}}])
    with pytest.raises(ConfigError, match="radius_m must be in"):
        sample_scene(cfg, sample_rng(0, "train", 0), "train", 0)


# Fingerprints of samples rendered before receiver lists existed (same seed, split, index).
PINNED = {
    "stereo_anechoic": (
        {
            "receiver": {"kind": "stereo_array", "params": {"spacing_m": 0.18}},
            "sources": {"target_kinds": ["noise"], "interferers": [0, 1]},
        },
        {
            "audio_first": [[0.002601, 0.0009295], [-0.0244878, 0.0239922]],
            "audio_last": [[-0.0469361, 0.0599261], [0.004769, 0.0004173]],
            "audio_abs_sum": 3334.502041702037,
            "img_mean": [53.83203125, 62.252170138888886],
        },
    ),
    "head_room": (
        {
            "image": {"width": 64, "height": 48},
            "room": {
                "anechoic_probability": 0.0,
                "rt60_range_s": [0.15, 0.25],
                "dims_max_m": [4.0, 4.0, 3.0],
            },
            "sources": {"target_kinds": ["speech"], "interferers": [0, 0]},
        },
        {
            "audio_first": [[-0.0273903, 0.0045352], [0.0009009, -0.031644]],
            "audio_last": [[0.0805849, -0.0305791], [-0.0145316, -0.0062286]],
            "audio_abs_sum": 3070.2355961923977,
            # Images of the renderer with walls on any outline (a box renders within 0.2
            # grey levels of the axis-aligned renderer these pins first came from).
            "img_mean": [53.8406033, 62.36469184],
        },
    ),
}


@pytest.mark.parametrize("name", sorted(PINNED))
def test_single_receiver_samples_are_unchanged(name: str) -> None:
    overrides, pinned = PINNED[name]
    cfg = config(**overrides)
    assert not cfg.mixes_receivers
    s = sample_scene(cfg, sample_rng(4, "train", 2), "train", 2, 4)
    np.testing.assert_allclose(s.audio[:, 0, :], pinned["audio_first"], atol=2e-6)
    np.testing.assert_allclose(s.audio[:, -1, :], pinned["audio_last"], atol=2e-6)
    total = float(np.abs(s.audio.astype(np.float64)).sum())
    assert total == pytest.approx(pinned["audio_abs_sum"], rel=1e-5)
    means = s.images.reshape(2, -1).mean(axis=1)
    np.testing.assert_allclose(means, pinned["img_mean"], atol=0.05)
    # A one-entry list without ranges is the same receiver: the same sample, byte for byte.
    receiver = cfg.receiver_choices[0]
    listed = config(
        **{k: v for k, v in overrides.items() if k != "receiver"},
        receivers=[{"kind": receiver.kind, "params": receiver.params}],
    )
    same = sample_scene(listed, sample_rng(4, "train", 2), "train", 2, 4)
    np.testing.assert_array_equal(same.audio, s.audio)
    np.testing.assert_array_equal(same.images, s.images)
    assert same.metadata == s.metadata


def test_mixed_datasets_count_receivers_and_ignore_the_worker_count(tmp_path: Path) -> None:
    cfg = config(clip_seconds=0.25, panoramas={"width": 256}, receivers=[HEAD, STEREO])
    roots = {}
    for workers in (1, 2):
        roots[workers] = tmp_path / f"w{workers}"
        write_dataset(
            cfg, roots[workers], 6, "val", seed=1, workers=workers, shard_size=3, progress=False
        )
    files = {w: {p.name: p.read_bytes() for p in sorted(r.iterdir())} for w, r in roots.items()}
    assert files[1] == files[2]
    manifest = json.loads(files[1][MANIFEST])
    samples = [s for k in range(2) for s in json.loads(files[1][f"shard-{k:05d}.json"])["samples"]]
    expected = Counter(s["receiver_kind"] for s in samples)
    assert manifest["counts"]["receiver_kind"] == dict(sorted(expected.items()))
    assert sum(expected.values()) == 6 and len(expected) == 2
    assert len({s["receiver"] for s in samples}) == 6  # ranges: a different receiver each
    for s in samples:
        assert s["receiver_params"] and not math.isnan(next(iter(s["receiver_params"].values())))
