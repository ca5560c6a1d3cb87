"""Which model a models folder stands for when no model_dir is given."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from slfm_ros.core.errors import ModelError
from slfm_ros.core.streaming.estimator_setup import (
    CARD_FILE,
    default_model_dir,
    model_in_folder,
)

SHIPPED = Path(__file__).resolve().parents[3] / "models" / "default"


def add_model(models: Path, name: str) -> Path:
    folder = models / name
    folder.mkdir(parents=True)
    shutil.copy(SHIPPED / CARD_FILE, folder / CARD_FILE)
    return folder


def test_several_models_resolve_to_default(tmp_path: Path) -> None:
    add_model(tmp_path, "adapted")
    default = add_model(tmp_path, "default")
    add_model(tmp_path, "pair30")
    assert model_in_folder(tmp_path) == default


def test_several_models_without_default_are_ambiguous(tmp_path: Path) -> None:
    add_model(tmp_path, "adapted")
    add_model(tmp_path, "pair30")
    with pytest.raises(ModelError, match=r"several models \(adapted, pair30\).*model_dir"):
        model_in_folder(tmp_path)


def test_one_model_of_any_name_is_that_model(tmp_path: Path) -> None:
    only = add_model(tmp_path, "pair30")
    (tmp_path / "notes").mkdir()  # a folder without a card is not a model
    assert model_in_folder(tmp_path) == only


def test_a_model_folder_stands_for_itself(tmp_path: Path) -> None:
    model = add_model(tmp_path, "pair30")
    add_model(model, "default")  # nested folders do not matter once the folder has a card
    assert model_in_folder(model) == model


def test_a_folder_without_models_gives_none(tmp_path: Path) -> None:
    assert model_in_folder(tmp_path) is None


def test_the_checkout_ships_models_default() -> None:
    assert default_model_dir() == SHIPPED


def test_a_model_adapted_without_the_receiver_runs_without_it(tmp_path: Path) -> None:
    import numpy as np
    import yaml

    from slfm_ros.core.streaming.config import PipelineConfig
    from slfm_ros.core.streaming.estimator_setup import build_estimators

    plain = tmp_path / "plain"
    shutil.copytree(SHIPPED, plain)
    adapted = tmp_path / "adapted"
    shutil.copytree(SHIPPED, adapted)
    card = yaml.safe_load((adapted / CARD_FILE).read_text())
    card["model_config"]["audio"]["receiver_input"] = False
    (adapted / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))

    def built(folder: Path, uses_receiver: bool = True):
        cfg = PipelineConfig(
            estimator="slfm",
            model_dir=str(folder),
            backend="torch",
            model_uses_receiver=uses_receiver,
        )
        return build_estimators(cfg)

    told, untold, blind = built(plain), built(plain, False), built(adapted)
    assert not np.array_equal(told.audio.aperture, untold.audio.aperture)
    np.testing.assert_array_equal(blind.audio.aperture, untold.audio.aperture)
    assert [e.code for e in blind.events] == ["model_without_receiver"]
    assert not told.events
    # slfm eval reads it the same way, so it measures what the node runs.
    from slfm_ros.core.geometry.interaural import FreeFieldPair
    from slfm_ros.evaluation.estimators import build_audio_estimator

    pair = FreeFieldPair(spacing_m=0.3)
    evaluated = build_audio_estimator("slfm", pair, model=adapted, backend="torch")
    np.testing.assert_array_equal(evaluated.aperture, untold.audio.aperture)
    plain_eval = build_audio_estimator("slfm", pair, model=plain, backend="torch")
    assert not np.array_equal(plain_eval.aperture, untold.audio.aperture)


def test_receiver_input_is_a_checked_model_setting() -> None:

    from slfm_ros.core.errors import ConfigError
    from slfm_ros.core.models.compact import CueAudioConfig

    data = CueAudioConfig().to_dict()
    assert CueAudioConfig.from_dict(data).receiver_input is True
    assert CueAudioConfig.from_dict({**data, "receiver_input": False}).receiver_input is False
    with pytest.raises(ConfigError, match="receiver_input"):
        CueAudioConfig.from_dict({**data, "receiver_input": "no"})


def test_receiver_calibrated_reads_the_models_card(tmp_path: Path) -> None:
    import yaml

    from slfm_ros.core.errors import ConfigError
    from slfm_ros.core.geometry.interaural import FreeFieldPair
    from slfm_ros.core.streaming.config import PipelineConfig
    from slfm_ros.core.streaming.estimator_setup import build_estimators, receiver_geometry

    adapted = tmp_path / "adapted"
    shutil.copytree(SHIPPED, adapted)
    card = yaml.safe_load((adapted / CARD_FILE).read_text())
    card["model_config"]["audio"]["calibrated_receiver"] = {"receiver": "free_field", "size_m": 0.3}
    (adapted / CARD_FILE).write_text(yaml.safe_dump(card, sort_keys=False))

    def config(folder: Path, receiver: str, estimator: str = "slfm") -> PipelineConfig:
        return PipelineConfig(
            estimator=estimator, model_dir=str(folder), backend="torch", receiver=receiver
        )

    assert receiver_geometry(config(adapted, "calibrated")) == FreeFieldPair(spacing_m=0.3)
    own = build_estimators(config(adapted, "calibrated"))
    assert own.audio.aperture[1] == pytest.approx(FreeFieldPair(0.3).max_itd * 1e3, rel=1e-6)
    assert not own.events
    # The classical estimators hear through the calibrated receiver too.
    classic = build_estimators(config(adapted, "calibrated", "classic"))
    assert classic.audio.geometry == FreeFieldPair(spacing_m=0.3)
    # Left at another receiver, the node says that the model knows better.
    other = build_estimators(config(adapted, "free_field"))
    assert [e.code for e in other.events] == ["model_calibrated_receiver"]
    assert "mic_spacing_m: 0.3" in other.events[0].message
    with pytest.raises(ConfigError, match="holds no calibrated receiver"):
        receiver_geometry(config(SHIPPED, "calibrated"))
