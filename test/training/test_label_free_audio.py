"""The label-free compact audio recipe: no labels in, a network that localises out."""

from __future__ import annotations

import argparse
import io
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from slfm_ros.cli import train_cmd
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, ReceiverMix, ViewTurns
from slfm_training.audio_net_io import load_audio_net
from slfm_training.label_free_audio import (
    LabelFreeConfig,
    MultiViewData,
    shrinkage,
    train_label_free,
)
from slfm_training.multiview_cache import build_multiview_cache, load_multiview_cache

REPO = Path(__file__).resolve().parents[2]
CUES = CueConfig()
# Free field, one 0.2 m pair, white noise: learnable from a few dozen turned samples.
PAIR = AudioExampleConfig(
    receivers=ReceiverMix(stereo_spacing_m=(0.2, 0.2), weights=(0.0, 1.0, 0.0)),
    anechoic_probability=1.0,
    source_kinds=("noise",),
    source_weights=(1.0,),
    interferer_probability=0.0,
    snr_db=(30.0, 40.0),
)
VIEWS = ViewTurns(num_views=3, turn_deg=(10.0, 90.0))


@pytest.fixture(scope="module")
def caches(tmp_path_factory: pytest.TempPathFactory) -> tuple[MultiViewData, MultiViewData]:
    folder = tmp_path_factory.mktemp("mv")
    build_multiview_cache(folder / "train.npz", PAIR, VIEWS, CUES, seed=3, samples=40)
    build_multiview_cache(folder / "val.npz", PAIR, VIEWS, CUES, seed=4, samples=16)
    train = MultiViewData.from_cache(load_multiview_cache(folder / "train.npz"))
    val = MultiViewData.from_cache(load_multiview_cache(folder / "val.npz"))
    return train, val


def small(epochs: int) -> LabelFreeConfig:
    net = CueNetConfig(input_dim=CUES.dim, hidden=(64,), n_bins=72, dropout=0.0)
    return LabelFreeConfig(epochs=epochs, batch_size=8, lr=3e-3, net=net, seed=1)


def test_training_without_labels_localises_and_resumes_exactly(
    tmp_path: Path, caches: tuple[MultiViewData, MultiViewData]
) -> None:
    torch.set_num_threads(1)
    train, val = caches
    # The loss never sees the azimuths: training on a copy without them gives the same weights.
    blind = MultiViewData(train.cues, train.turns, train.max_itd_s, train.valid, azimuth=None)
    log = io.StringIO()
    whole = train_label_free(small(6), CUES, blind, val, checkpoint=tmp_path / "a.pt", log=log)
    start, end = whole.history[0], whole.history[-1]
    assert end["val_mae_deg"] < 0.7 * start["val_mae_deg"]
    ckpt = tmp_path / "b.pt"
    train_label_free(small(6), CUES, train, None, checkpoint=ckpt, stop_after_epochs=3, log=log)
    resumed = train_label_free(small(6), CUES, train, None, checkpoint=ckpt, log=log)
    assert "resumed" in log.getvalue()
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)


def test_the_frozen_encoder_ablation_trains_only_the_output_layer(
    caches: tuple[MultiViewData, MultiViewData],
) -> None:
    torch.set_num_threads(1)
    train, _ = caches
    cfg = replace(small(4), train_layers="output")
    torch.manual_seed(cfg.seed)
    initial = CueDirectionNet(cfg.net).state_dict()
    state = train_label_free(cfg, CUES, train, None, checkpoint=None, log=io.StringIO())
    trained = state.net.state_dict()
    hidden = [k for k in trained if k.startswith("net.0.")]
    output = [k for k in trained if k.startswith(f"net.{len(state.net.net) - 1}.")]
    assert hidden and output
    for key in hidden:
        torch.testing.assert_close(trained[key], initial[key], rtol=0, atol=0)
    assert any(not torch.equal(trained[k], initial[k]) for k in output)
    with pytest.raises(ConfigError, match="train_layers"):
        replace(small(2), train_layers="some")


def test_shrinkage_measures_a_compressed_answer() -> None:
    truth = np.radians(np.linspace(-85, 85, 50))
    assert shrinkage(truth, truth)["slope"] == pytest.approx(1.0)
    squeezed = shrinkage(0.6 * truth, truth)
    assert squeezed["slope"] == pytest.approx(0.6, abs=1e-6)
    assert squeezed["p99_deg"] < 0.61 * 85


def test_cli_runs_stops_and_resumes(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    config = yaml.safe_load((REPO / "training/configs/cue_audio/audio_label_free.yaml").read_text())
    config["cache_dir"] = str(tmp_path / "cache")
    config["examples"].update(
        receivers={"stereo_spacing_m": [0.2, 0.2], "weights": [0.0, 1.0, 0.0], "sofa_files": []},
        anechoic_probability=1.0,
        source_kinds=["noise"],
        source_weights=[1.0],
        interferer_probability=0.0,
    )
    config["views"] = {"num_views": 2, "turn_deg": [10.0, 60.0]}
    config["data"] = {"train_seed": 1, "train_samples": 8, "val_seed": 2, "val_samples": 4}
    config["train"].update(epochs=2, batch_size=4, net={"hidden": [16], "n_bins": 36})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    out = tmp_path / "run"
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    argv = ["audio-label-free", "--config", str(path), "--out", str(out)]
    assert train_cmd.run(parser.parse_args([*argv, "--stop-after", "1"])) == 0
    assert not (out / "audio_net.pt").exists()
    assert train_cmd.run(parser.parse_args([*argv, "--resume"])) == 0
    model = load_audio_net(out)
    assert model.card["labels"] == "none"
    assert model.net.cfg.n_bins == 36
    assert (out / "metrics.json").is_file()
