from __future__ import annotations

import subprocess
import sys

import pytest

from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.config import (
    AudioNetConfig,
    ModelConfig,
    VisualNetConfig,
    load_model_config,
    preset,
)


def test_full_preset_matches_reference() -> None:
    cfg = preset("full")
    assert cfg.name == "full"
    assert (cfg.visual.image_height, cfg.visual.image_width) == (240, 320)
    assert cfg.visual.width_mult == 1.0 and cfg.visual.trunk_stop_layer == 3
    assert (cfg.visual.encoder_layers, cfg.visual.encoder_channels) == (6, 128)
    assert cfg.audio.feature_shape == (4, 256, 256)
    stft = cfg.audio.stft_config()
    assert (stft.hop_length, stft.clip_samples, stft.n_fft, stft.win_length) == (
        160,
        40800,
        512,
        400,
    )
    assert (cfg.audio.feature_dim, cfg.audio.head_hidden) == (512, 256)
    assert cfg.condition_dim == 1024
    assert cfg.binaural.channels == (64, 128, 256, 512, 512)


def test_small_preset_is_a_one_second_window() -> None:
    cfg = preset("small")
    assert cfg.audio.clip_seconds == pytest.approx(1.0)
    assert cfg.audio.feature_shape == (4, 256, 128)
    assert cfg.audio.stft_config().raw_frames >= cfg.audio.time_frames


def test_roundtrip_through_dict() -> None:
    for name in ("full", "small"):
        cfg = preset(name)
        assert load_model_config(cfg.to_dict()) == cfg
        assert load_model_config(name) == cfg


def test_partial_override_of_a_preset() -> None:
    cfg = load_model_config({"preset": "small", "name": "tiny", "audio": {"width_mult": 1}})
    assert cfg.name == "tiny"
    assert cfg.audio.width_mult == 1.0 and isinstance(cfg.audio.width_mult, float)
    assert cfg.visual == preset("small").visual
    assert load_model_config({}) == preset("full")


def test_phase_reference_reaches_the_feature_stft() -> None:
    # The reference's features for full; interaural phases for small.
    assert preset("full").audio.stft_config().phase_reference == "absolute"
    cfg = preset("small")
    assert cfg.audio.stft_config().phase_reference == "interaural"
    assert load_model_config(cfg.to_dict()) == cfg
    absolute = load_model_config({"preset": "small", "audio": {"phase_reference": "absolute"}})
    assert absolute.audio.stft_config().phase_reference == "absolute"
    # A card written before the option existed holds no such key: its features were absolute
    # (cards store every field, not the preset, so the base is the reference's).
    old_card = absolute.to_dict()
    del old_card["audio"]["phase_reference"]
    assert load_model_config(old_card).audio.stft_config().phase_reference == "absolute"
    with pytest.raises(ConfigError, match="phase_reference"):
        load_model_config({"audio": {"phase_reference": "binaural"}})


def test_unknown_keys_are_named() -> None:
    with pytest.raises(ConfigError, match="colour"):
        load_model_config({"preset": "small", "colour": 1})
    with pytest.raises(ConfigError, match="widht_mult"):
        load_model_config({"audio": {"widht_mult": 0.5}})
    with pytest.raises(ConfigError, match="huge"):
        load_model_config("huge")


def test_invalid_values_are_rejected() -> None:
    with pytest.raises(ConfigError, match="trunk_stop_layer"):
        VisualNetConfig(trunk_stop_layer=4, trunk_blocks=(2, 2, 2, 2))
    with pytest.raises(ConfigError, match="trunk_blocks"):
        VisualNetConfig(trunk_blocks=(2, 2))
    with pytest.raises(ConfigError, match="win_length"):
        AudioNetConfig(win_length=1024)
    with pytest.raises(ConfigError, match="blocks"):
        load_model_config({"audio": {"blocks": [2, 2, 0, 2]}})
    with pytest.raises(ConfigError, match="feature_dim"):
        load_model_config({"visual": {"feature_dim": "512"}})
    with pytest.raises(ConfigError, match="name"):
        ModelConfig(name="")


def test_config_module_does_not_import_torch() -> None:
    code = (
        "import sys, slfm_ros.core.models.config as c; c.preset('small');"
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
