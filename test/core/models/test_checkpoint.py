from __future__ import annotations

import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.checkpoint import (
    CARD_FILE,
    WEIGHTS_FILE,
    load_model,
    save_model,
    sha256_file,
)
from slfm_ros.core.models.config import ModelConfig, load_model_config
from slfm_ros.core.models.visual_pose import VisualPoseNet

torch.set_num_threads(1)

TINY = {
    "preset": "small",
    "name": "tiny",
    "visual": {"image_height": 48, "image_width": 64, "width_mult": 0.25, "feature_dim": 32},
    "audio": {"width_mult": 0.25, "feature_dim": 32, "head_hidden": 16},
}


def build(cfg: ModelConfig, seed: int) -> tuple[AudioDirectionNet, VisualPoseNet]:
    torch.manual_seed(seed)
    audio, visual = AudioDirectionNet(cfg.audio), VisualPoseNet(cfg.visual)
    # Non-default BN statistics, so a roundtrip that dropped buffers would show.
    for net in (audio, visual):
        for name, buffer in net.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_()
    return audio, visual


@pytest.fixture()
def tiny_cfg() -> ModelConfig:
    return load_model_config(TINY)


def test_roundtrip(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    audio, visual = build(tiny_cfg, 0)
    extra = {
        "seed": 3,
        "metrics": {"audio_mae_deg": np.float32(4.5)},
        "training_data": {"rooms": 10, "root": tmp_path},
    }
    path = save_model(tmp_path / "m", tiny_cfg, audio, visual, extra)
    assert sorted(p.name for p in path.iterdir()) == [CARD_FILE, WEIGHTS_FILE]
    loaded = load_model(path)
    assert loaded.config == tiny_cfg
    assert loaded.card["seed"] == 3 and loaded.card["metrics"] == {"audio_mae_deg": 4.5}
    assert loaded.card["training_data"]["root"] == str(tmp_path)
    assert loaded.card["weights_sha256"] == sha256_file(path / WEIGHTS_FILE)
    assert loaded.card["git_commit"] and loaded.card["created"]
    assert loaded.card["parameters"]["audio"] == sum(p.numel() for p in audio.parameters())
    assert not loaded.audio_net.training and not loaded.visual_net.training
    audio.eval(), visual.eval()
    x = torch.rand(2, *tiny_cfg.audio.feature_shape)
    img = torch.randn(2, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.audio_net(x), audio(x))
        torch.testing.assert_close(loaded.visual_net(img, img.flip(0)), visual(img, img.flip(0)))


def test_existing_different_model_is_not_overwritten(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    first = build(tiny_cfg, 0)
    second = build(tiny_cfg, 1)
    path = save_model(tmp_path / "m", tiny_cfg, *first, {"seed": 0})
    digest = sha256_file(path / WEIGHTS_FILE)
    with pytest.raises(ModelError, match="different model"):
        save_model(path, tiny_cfg, *second)
    assert sha256_file(path / WEIGHTS_FILE) == digest
    assert [p.name for p in path.iterdir() if p.name.endswith(".tmp")] == []
    # The same weights again only refresh the card.
    save_model(path, tiny_cfg, *first, {"seed": 0, "metrics": {"x": 1.0}})
    assert load_model(path).card["metrics"] == {"x": 1.0}
    renamed = load_model_config({**TINY, "name": "other"})
    with pytest.raises(ModelError, match="different model"):
        save_model(path, renamed, *first)
    save_model(path, tiny_cfg, *second, overwrite=True)
    assert sha256_file(path / WEIGHTS_FILE) != digest
    load_model(path)


def test_mismatched_card_is_rejected(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    path = save_model(tmp_path / "m", tiny_cfg, *build(tiny_cfg, 0))
    card = yaml.safe_load((path / CARD_FILE).read_text())
    card["model_config"]["audio"]["width_mult"] = 0.5
    (path / CARD_FILE).write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match=r"do not match.*shape mismatch"):
        load_model(path)
    card["model_config"]["audio"]["width_mult"] = 0.25
    card["model_config"]["audio"]["blocks"] = [2, 1, 1, 1]
    (path / CARD_FILE).write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match="missing key"):
        load_model(path)
    card["model_config"]["audio"]["blocks"] = [1, 1, 1, 1]
    card["model_config"]["audio"]["dropout"] = 0.1
    (path / CARD_FILE).write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match="dropout"):
        load_model(path)


def test_corrupted_weights_are_rejected(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    path = save_model(tmp_path / "m", tiny_cfg, *build(tiny_cfg, 0))
    weights = path / WEIGHTS_FILE
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="sha256"):
        load_model(path)
    # A truncated file whose hash the card was made to agree with still fails clearly.
    weights.write_bytes(bytes(data[: len(data) // 3]))
    card = yaml.safe_load((path / CARD_FILE).read_text())
    card["weights_sha256"] = sha256_file(weights)
    (path / CARD_FILE).write_text(yaml.safe_dump(card))
    with pytest.raises(ModelError, match="cannot read the weights"):
        load_model(path)


def test_missing_files_are_named(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    with pytest.raises(ModelError, match="not found"):
        load_model(tmp_path / "nowhere")
    path = save_model(tmp_path / "m", tiny_cfg, *build(tiny_cfg, 0))
    (path / WEIGHTS_FILE).unlink()
    with pytest.raises(ModelError, match=re.escape(str(path / WEIGHTS_FILE))):
        load_model(path)
    (path / CARD_FILE).unlink()
    with pytest.raises(ModelError, match=re.escape(str(path / CARD_FILE))):
        load_model(path)


def test_save_checks_nets_and_card_keys(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    audio, visual = build(tiny_cfg, 0)
    with pytest.raises(ConfigError, match="weights_sha256"):
        save_model(tmp_path / "a", tiny_cfg, audio, visual, {"weights_sha256": "x"})
    other = load_model_config({**TINY, "audio": {"width_mult": 0.5}})
    with pytest.raises(ModelError, match="audio network"):
        save_model(tmp_path / "b", other, audio, visual)
    assert not (tmp_path / "b" / CARD_FILE).exists()


def test_saved_files_get_ordinary_permissions(tmp_path: Path, tiny_cfg: ModelConfig) -> None:
    old = os.umask(0o022)
    try:
        path = save_model(tmp_path / "m", tiny_cfg, *build(tiny_cfg, 0))
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.iterdir()}
    assert modes == {WEIGHTS_FILE: 0o644, CARD_FILE: 0o644}
