"""Multi-view samples: config loading, view geometry, audio physics, determinism, splits."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from slfm_ros.core.conventions import camera_turn, wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.gcc_phat import GccPhatAzimuth
from slfm_ros.core.sim.scene import SceneConfig, sample_rng, sample_scene

REPO = Path(__file__).resolve().parents[3]

# Small, fast worlds: short clips, small images and panoramas, free field unless asked.
TINY = {
    "clip_seconds": 0.5,
    "image": {"width": 64, "height": 48, "effects": {}},
    "panoramas": {"width": 256},
    "room": {"anechoic_probability": 1.0},
    "sources": {"target_kinds": ["noise"], "interferers": [0, 0]},
}


def tiny(**overrides: dict) -> SceneConfig:
    data = {k: dict(v) if isinstance(v, dict) else v for k, v in TINY.items()}
    for key, value in overrides.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return SceneConfig.from_dict(data)


def test_default_yaml_documents_the_built_in_defaults() -> None:
    assert SceneConfig.from_yaml(REPO / "config/sim/default.yaml") == SceneConfig()


@pytest.mark.parametrize("path", sorted((REPO / "config/sim").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load_and_round_trip(path: Path) -> None:
    cfg = SceneConfig.from_yaml(path)
    assert SceneConfig.from_dict(cfg.to_dict()) == cfg


def test_test_split_configs_keep_the_target_in_front_of_view_0() -> None:
    for name in ("anechoic.yaml", "reverberant_speech_head.yaml"):
        cfg = SceneConfig.from_yaml(REPO / "config/sim" / name)
        assert cfg.sources.target_azimuth_deg == (-90.0, 90.0)
        assert cfg.sources.target_kinds == ("speech",)
    assert SceneConfig.from_yaml(REPO / "config/sim/anechoic.yaml").room.anechoic_probability == 1
    reverb = SceneConfig.from_yaml(REPO / "config/sim/reverberant_speech_head.yaml")
    assert reverb.room.anechoic_probability == 0


def test_unknown_keys_and_bad_values_raise_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['colour'\]"):
        SceneConfig.from_dict({"colour": 1})
    with pytest.raises(ConfigError, match=r"views: unknown key\(s\) \['count'\]"):
        SceneConfig.from_dict({"views": {"count": 3}})
    with pytest.raises(ConfigError, match=r"image\.width: expected an integer"):
        SceneConfig.from_dict({"image": {"width": "wide"}})
    with pytest.raises(ConfigError, match="expected 2 values"):
        SceneConfig.from_dict({"noise": {"snr_db": [1, 2, 3]}})
    with pytest.raises(ConfigError, match="unknown kinds"):
        SceneConfig.from_dict({"sources": {"target_kinds": ["whistle"]}})
    with pytest.raises(ConfigError, match=r"image\.effects"):
        SceneConfig.from_dict({"image": {"effects": {"sparkle": 1.0}}})
    path = tmp_path / "bad.yaml"
    path.write_text("room:\n  rt60: 0.5\n")
    with pytest.raises(ConfigError, match=r"bad.yaml: room: unknown key\(s\) \['rt60'\]"):
        SceneConfig.from_yaml(path)
    with pytest.raises(ConfigError, match="does not exist"):
        SceneConfig.from_yaml(tmp_path / "missing.yaml")


def test_views_differ_by_yaw_within_the_turn_range() -> None:
    cfg = tiny(views={"num_views": 4})
    for index in range(3):
        s = sample_scene(cfg, sample_rng(5, "train", index), "train", index)
        assert s.images.shape == (4, 48, 64, 3) and s.images.dtype == np.uint8
        assert s.audio.shape == (4, cfg.clip_frames, 2) and s.audio.dtype == np.float32
        turns_deg = np.degrees(np.abs(s.turns[1:]))
        assert np.all((turns_deg >= 10.0) & (turns_deg < 90.0))
        assert s.turns[0] == 0.0
        # phi_i = phi_world - yaw_i for every source, and phi_i = phi_0 - theta_i.
        for src, meta in enumerate(s.metadata["sources"]):
            expected = wrap_angle(meta["azimuth_world_rad"] - s.yaws)
            np.testing.assert_allclose(s.source_azimuths[:, src], expected, atol=1e-12)
        np.testing.assert_allclose(
            camera_turn(s.target_azimuths[0] - s.target_azimuths, 0.0),
            s.turns,
            atol=1e-9,
        )
        assert np.isclose(np.max(np.abs(s.audio)), cfg.output_peak, rtol=1e-5)
        assert s.metadata["yaws_rad"] == pytest.approx(s.yaws.tolist())


def test_target_range_is_relative_to_view_0() -> None:
    cfg = tiny(sources={"target_azimuth_deg": [-90.0, 90.0]})
    for index in range(4):
        s = sample_scene(cfg, sample_rng(1, "test", index), "test", index)
        assert abs(s.target_azimuths[0]) <= math.pi / 2 + 1e-12


def test_a_source_on_the_left_is_louder_and_earlier_on_the_left_in_every_view() -> None:
    cfg = tiny(
        views={"num_views": 3, "min_turn_deg": 5.0, "max_turn_deg": 15.0},
        sources={"target_azimuth_deg": [50.0, 70.0], "target_kinds": ["speech"]},
        noise={"snr_db": [40.0, 40.0]},
        clip_seconds=1.0,
    )
    gcc = GccPhatAzimuth()
    for index in range(2):
        s = sample_scene(cfg, sample_rng(2, "val", index), "val", index)
        assert np.all(s.target_azimuths > math.radians(30))
        for view in range(3):
            rms = np.sqrt(np.mean(s.audio[view].astype(np.float64) ** 2, axis=0))
            assert rms[0] > 1.2 * rms[1]
            estimate = gcc.estimate(s.audio[view], s.sample_rate)
            assert estimate.valid
            assert abs(estimate.angle - s.target_azimuths[view]) < math.radians(10)


def test_rooms_are_recorded_and_any_sample_rate_works() -> None:
    cfg = tiny(
        sample_rate=22050,
        room={
            "anechoic_probability": 0.0,
            "rt60_range_s": [0.2, 0.3],
            "dims_max_m": [5.0, 5.0, 3.0],
        },
    )
    s = sample_scene(cfg, sample_rng(0, "train", 0), "train", 0)
    assert s.audio.shape == (3, round(0.5 * 22050), 2)
    room = s.metadata["room"]
    assert room["anechoic"] is False
    assert 0.2 <= room["rt60_s"] <= 0.3 + 1e-9
    assert all(1.0 <= d <= 5.0 + 1e-9 for d in room["dims_m"][:2])
    # The room keeps sources 0.3 m inside the walls: the recorded distance is the real one.
    hi = cfg.sources.distance_m[1]
    assert all(0.0 < m["distance_m"] <= hi + 1e-9 for m in s.metadata["sources"])
    assert s.sample_rate == 22050


def test_samples_are_deterministic_per_seed_split_and_index() -> None:
    cfg = tiny(sources={"interferers": [1, 2], "interferer_kinds": ["noise", "speech"]})
    a = sample_scene(cfg, sample_rng(3, "train", 7), "train", 7)
    b = sample_scene(cfg, sample_rng(3, "train", 7), "train", 7)
    c = sample_scene(cfg, sample_rng(3, "train", 8), "train", 8)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert a.metadata == b.metadata
    assert a.metadata["seeds"] != c.metadata["seeds"]
    assert not np.array_equal(a.audio, c.audio)
    assert len(a.metadata["sources"]) == a.source_azimuths.shape[1] >= 2


def test_splits_never_share_panoramas_or_generated_sources() -> None:
    cfg = tiny(sources={"interferers": [1, 1]})
    seen: dict[str, set[str]] = {}
    pixels: dict[str, set[bytes]] = {}
    for split in ("train", "val", "test"):
        for index in range(2):
            # The same generator seed for every split: only the split may tell them apart.
            s = sample_scene(cfg, np.random.default_rng(index), split, index)
            ids = {s.metadata["panorama_id"]} | {m["id"] for m in s.metadata["sources"]}
            seen.setdefault(split, set()).update(ids)
            pixels.setdefault(split, set()).add(s.images[0].tobytes())
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not seen[a] & seen[b]
        assert not pixels[a] & pixels[b]


def test_folder_sources_come_only_from_their_split(tmp_path: Path) -> None:
    import soundfile as sf

    from slfm_ros.core.sim.sources import split_of

    rng = np.random.default_rng(0)
    for i in range(40):
        sf.write(tmp_path / f"clip{i:02d}.wav", rng.normal(0, 0.1, 4000).astype(np.float32), 8000)
    cfg = tiny(sources={"target_kinds": ["folder"], "folder": str(tmp_path)})
    for split in ("train", "test"):
        for index in range(2):
            s = sample_scene(cfg, sample_rng(0, split, index), split, index)
            source_id = s.metadata["sources"][0]["id"]
            assert source_id.startswith(f"folder:{split}:")
            assert split_of(source_id.rsplit(":", 1)[1]) == split
