"""Assembling a compact model from an audio run and a visual run: what the card says."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.checkpoint import load_model
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_ros.core.models.cylinder_config import CylinderPoseConfig
from slfm_ros.core.models.cylinder_pose import CylinderPoseNet
from slfm_training.assemble import assemble
from slfm_training.audio_net_io import save_audio_net
from slfm_training.stages.visual_cylinder import LABELS, save_cylinder_pose


def _runs(root: Path, audio_labels: str, turn_source: str) -> tuple[Path, Path]:
    torch.manual_seed(0)
    audio = CueDirectionNet(CueNetConfig(input_dim=CueConfig().dim, hidden=(16,), n_bins=72))
    card = {"labels": audio_labels, "decode": {"lobe_refine_itd": 0.16}, "data": {"train_seed": 3}}
    (root / "audio").mkdir()
    save_audio_net(root / "audio" / "audio_net.pt", audio, CueConfig(), card)
    visual = CylinderPoseNet(CylinderPoseConfig(channels=4, context_dim=4))
    info = {"training": {"labels": LABELS[turn_source], "optim": {"seed": 5}}}
    save_cylinder_pose(visual, root / "visual", info)
    return root / "audio", root / "visual"


@pytest.mark.parametrize(
    ("audio_labels", "turn_source", "expected"),
    [("none", "chained_ncc", "none"), ("simulator azimuths", "simulator", None)],
)
def test_the_card_says_which_labels_trained_each_network(
    tmp_path: Path, audio_labels: str, turn_source: str, expected: str | None
) -> None:
    audio_run, visual_run = _runs(tmp_path, audio_labels, turn_source)
    folder = assemble(audio_run, visual_run, tmp_path / "model", name="label_free")
    loaded = load_model(folder)
    by_network = {"audio": audio_labels, "visual": LABELS[turn_source]}
    assert loaded.card["labels_by_network"] == by_network
    assert loaded.card["labels"] == (expected if expected else by_network)
    assert loaded.config.audio.lobe_refine_itd == pytest.approx(0.16)
    assert loaded.card["seed"] == {
        "audio": {"data": 3, "train": None},
        "visual": {"data": None, "train": 5},
    }


def test_a_model_folder_gives_its_audio_network_to_a_new_model(tmp_path: Path) -> None:
    audio_run, visual_run = _runs(tmp_path, "none", "ncc_audio")
    first = load_model(assemble(audio_run, visual_run, tmp_path / "first", name="first"))
    # The first model's audio network, with another visual network, in a second model.
    torch.manual_seed(1)
    other = CylinderPoseNet(CylinderPoseConfig(channels=4, context_dim=4))
    save_cylinder_pose(other, tmp_path / "other", {"training": {"labels": LABELS["simulator"]}})
    second = load_model(assemble(tmp_path / "first", tmp_path / "other", tmp_path / "second"))
    assert second.card["labels_by_network"] == {"audio": "none", "visual": LABELS["simulator"]}
    assert second.config.audio == first.config.audio
    for key, value in first.audio_net.state_dict().items():
        torch.testing.assert_close(second.audio_net.state_dict()[key], value)
    assert second.card["stages"]["audio"]["data"] == {"train_seed": 3}


def test_a_model_folder_gives_its_visual_network_to_a_new_model(tmp_path: Path) -> None:
    audio_run, visual_run = _runs(tmp_path, "simulator azimuths", "simulator")
    first = load_model(assemble(audio_run, visual_run, tmp_path / "first", name="first"))
    # A new audio network (another front end) paired with the first model's visual network.
    torch.manual_seed(2)
    onset = CueConfig(gcc_weighting="onset")
    audio = CueDirectionNet(CueNetConfig(input_dim=onset.dim, hidden=(16,), n_bins=72))
    (tmp_path / "new_audio").mkdir()
    save_audio_net(tmp_path / "new_audio" / "audio_net.pt", audio, onset, {"labels": "sim"})
    second = load_model(assemble(tmp_path / "new_audio", tmp_path / "first", tmp_path / "second"))
    assert second.config.visual == first.config.visual
    assert second.config.audio.cues == onset
    for key, value in first.visual_net.state_dict().items():
        torch.testing.assert_close(second.visual_net.state_dict()[key], value)
    assert second.card["labels_by_network"]["visual"] == LABELS["simulator"]
    assert second.card["stages"]["visual"]["optim"] == {"seed": 5}
