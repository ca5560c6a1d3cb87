"""Training configs: the shipped YAML files, unknown keys, overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_training.config import (
    STAGES,
    TrainConfig,
    apply_overrides,
    load_train_config,
    parse_value,
    train_config_from_mapping,
)

CONFIGS = Path(__file__).resolve().parents[2] / "training" / "configs"
SHIPPED = sorted(CONFIGS.glob("*.yaml"))
# Recipes of the compact family live in their own folders (they are not `slfm train` stages).
EVERY_YAML = sorted(CONFIGS.rglob("*.yaml"))


def _flat(mapping: dict, prefix: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in mapping.items():
        if isinstance(value, dict) and value:
            out.update(_flat(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def test_all_configs_are_shipped() -> None:
    names = {p.stem for p in SHIPPED}
    assert {
        "pretext_small",
        "slfm_small",
        "supervised_small",
        "probe_small",
        "slfm_full",
        "slfm_small_no_reflection",
        "slfm_small_no_binaural",
        "slfm_small_no_symmetry",
        "slfm_small_finetune",
        "slfm_small_front_only",
    } <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_shipped_config_loads_and_names_its_stage(path: Path) -> None:
    cfg = load_train_config(path)
    assert cfg.stage in STAGES
    assert path.stem.startswith(cfg.stage)
    # The model window fits in the rendered clips and the images are rendered at model size.
    model = cfg.model_config()
    scene = cfg.data.scene_config()
    assert scene.clip_frames >= model.audio.clip_samples
    assert (scene.image.height, scene.image.width) == (
        model.visual.image_height,
        model.visual.image_width,
    )
    assert cfg.data.num_views <= scene.views.num_views


@pytest.mark.parametrize("path", EVERY_YAML, ids=lambda p: p.stem)
def test_every_key_of_a_shipped_config_is_commented(path: Path) -> None:
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            assert " # " in line or "  #" in line, f"{path.name}:{number} has no comment: {line}"


@pytest.mark.parametrize(
    ("name", "key", "value"),
    [
        ("slfm_small_no_reflection", "slfm.reflection_invariant", False),
        ("slfm_small_no_binaural", "slfm.binaural_weight", 0.0),
        ("slfm_small_no_symmetry", "slfm.symmetry_weight", 0.0),
        ("slfm_small_finetune", "slfm.finetune", True),
        ("slfm_small_front_only", "data.scene.sources.target_azimuth_deg", [-90.0, 90.0]),
    ],
)
def test_ablation_differs_from_slfm_small_in_one_key(name: str, key: str, value: object) -> None:
    base = _flat(load_train_config(CONFIGS / "slfm_small.yaml").to_dict())
    ablation = _flat(load_train_config(CONFIGS / f"{name}.yaml").to_dict())
    differing = {k for k in base.keys() | ablation.keys() if base.get(k) != ablation.get(k)}
    assert differing == {key}
    assert ablation[key] == value


def test_unknown_key_names_the_key_and_the_valid_keys() -> None:
    with pytest.raises(ConfigError) as top:
        train_config_from_mapping({"stage": "slfm", "optimizer": {}})
    assert "optimizer" in str(top.value) and "optim" in str(top.value)
    with pytest.raises(ConfigError) as nested:
        train_config_from_mapping({"stage": "slfm", "optim": {"learning_rate": 1.0}})
    message = str(nested.value)
    assert "learning_rate" in message and "'lr'" in message and "optim" in message


def test_unknown_keys_of_model_and_scene_are_rejected() -> None:
    with pytest.raises(ConfigError, match="widht_mult"):
        train_config_from_mapping(
            {"stage": "slfm", "model": {"preset": "small", "audio": {"widht_mult": 1.0}}}
        )
    with pytest.raises(ConfigError, match=r"data\.scene.*clip_secs"):
        train_config_from_mapping({"stage": "slfm", "data": {"scene": {"clip_secs": 1.0}}})


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match="stage"):
        train_config_from_mapping({"stage": "finetune"})
    with pytest.raises(ConfigError, match="stage"):
        train_config_from_mapping({})
    with pytest.raises(ConfigError, match=r"optim\.lr"):
        train_config_from_mapping({"stage": "slfm", "optim": {"lr": -1.0}})
    with pytest.raises(ConfigError, match="train_dir"):
        train_config_from_mapping({"stage": "slfm", "data": {"source": "shards"}})
    with pytest.raises(ConfigError, match="number"):
        train_config_from_mapping({"stage": "slfm", "optim": {"lr": "fast"}})
    with pytest.raises(ConfigError, match=r"egomotion\.binaural_loss.*hinge"):
        train_config_from_mapping({"stage": "egomotion", "egomotion": {"binaural_loss": "l2"}})
    with pytest.raises(ConfigError, match=r"egomotion\.turn_weighting.*squared"):
        train_config_from_mapping({"stage": "egomotion", "egomotion": {"turn_weighting": "abs"}})
    with pytest.raises(ConfigError, match=r"slfm\.binaural_margin_deg"):
        train_config_from_mapping({"stage": "slfm", "slfm": {"binaural_margin_deg": 90.0}})


def test_overrides_are_parsed_and_validated(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("stage: slfm\noptim:\n  lr: 1.0e-4\n")
    cfg = load_train_config(
        path,
        ["optim.lr=3e-4", "slfm.finetune=true", "data.scene.views.num_views=4", "seed=7"],
    )
    assert cfg.optim.lr == pytest.approx(3e-4)
    assert cfg.slfm.finetune is True
    assert cfg.data.scene_config().views.num_views == 4
    assert cfg.seed == 7
    with pytest.raises(ConfigError, match="lrate"):
        load_train_config(path, ["optim.lrate=1"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        load_train_config(path, ["optim.lr"])
    with pytest.raises(ConfigError, match="seed"):
        apply_overrides({"seed": 1}, ["seed.x=2"])


def test_parse_value() -> None:
    assert parse_value("1e-4") == pytest.approx(1e-4)
    assert parse_value("3") == 3 and isinstance(parse_value("3"), int)
    assert parse_value("[1, 2]") == [1, 2]
    assert parse_value("false") is False
    assert parse_value("small") == "small"
    assert parse_value("") == ""


def test_round_trip_through_a_mapping() -> None:
    cfg = load_train_config(CONFIGS / "slfm_small.yaml")
    again = train_config_from_mapping(cfg.to_dict())
    assert again == cfg
    assert isinstance(again, TrainConfig)
