"""The compact audio recipe: cache, training, exact resume, estimator on the result."""

from __future__ import annotations

import io
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.estimators.cue_audio import CueAudioEstimator
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.sim.audio_examples import AudioExampleConfig, ReceiverMix
from slfm_training.assemble import load_audio_run
from slfm_training.audio_run import load_audio_run_config, run_audio_training
from slfm_training.cue_audio import CueTrainConfig, train_cues
from slfm_training.cue_cache import (
    build_cue_cache,
    cache_file,
    cache_settings,
    load_cue_cache,
    smaller_cache,
)

REPO = Path(__file__).resolve().parents[2]
CUES = CueConfig()
# Free field, one fixed pair, no noise to speak of: learnable in a few epochs.
EXAMPLES = AudioExampleConfig(
    receivers=ReceiverMix(stereo_spacing_m=(0.2, 0.2), weights=(0.0, 1.0, 0.0)),
    anechoic_probability=1.0,
    source_kinds=("noise",),
    source_weights=(1.0,),
    interferer_probability=0.0,
    snr_db=(30.0, 40.0),
    windows_per_scene=2,
)


@pytest.fixture(scope="module")
def tiny_cache(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    path = tmp_path_factory.mktemp("cues") / "train.npz"
    build_cue_cache(path, EXAMPLES, CUES, seed=3, scenes=48)
    return load_cue_cache(path, cache_settings(EXAMPLES, CUES, 3, 48))


def test_a_larger_cache_reuses_a_smaller_one_and_equals_a_fresh_render(
    tmp_path: Path, tiny_cache: dict[str, np.ndarray]
) -> None:
    small = cache_settings(EXAMPLES, CUES, 3, 40)
    large = cache_settings(EXAMPLES, CUES, 3, 48)
    build_cue_cache(cache_file(tmp_path, "cues-train", small), EXAMPLES, CUES, seed=3, scenes=40)
    # Another seed's cache is never a start.
    build_cue_cache(
        cache_file(tmp_path, "cues-train", cache_settings(EXAMPLES, CUES, 4, 2)),
        EXAMPLES,
        CUES,
        seed=4,
        scenes=2,
    )
    start = smaller_cache(tmp_path, "cues-train", large)
    assert start == cache_file(tmp_path, "cues-train", small)
    path = build_cue_cache(
        cache_file(tmp_path, "cues-train", large),
        EXAMPLES,
        CUES,
        seed=3,
        scenes=48,
        start_from=start,
    )
    extended = load_cue_cache(path, large)
    for key in ("cues", "label", "azimuth", "max_itd_s", "receiver_kind"):
        np.testing.assert_array_equal(extended[key], tiny_cache[key])
    assert smaller_cache(tmp_path, "cues-train", cache_settings(EXAMPLES, CUES, 3, 30)) is None


def small_train(epochs: int) -> CueTrainConfig:
    net = CueNetConfig(input_dim=CUES.dim, hidden=(64,), n_bins=72, dropout=0.0)
    return CueTrainConfig(epochs=epochs, batch_size=16, lr=3e-3, net=net, seed=1)


def test_cache_refuses_other_settings(tmp_path: Path, tiny_cache: dict[str, np.ndarray]) -> None:
    assert tiny_cache["cues"].shape == (96, CUES.dim)
    path = tmp_path / "c.npz"
    build_cue_cache(path, EXAMPLES, CUES, seed=3, scenes=2)
    with pytest.raises(DatasetError, match="other settings"):
        load_cue_cache(path, cache_settings(EXAMPLES, CUES, seed=4, scenes=2))
    with pytest.raises(DatasetError, match="not found"):
        load_cue_cache(tmp_path / "missing.npz")


def test_training_lowers_the_loss_and_resumes_exactly(
    tmp_path: Path, tiny_cache: dict[str, np.ndarray]
) -> None:
    log = io.StringIO()
    whole = train_cues(small_train(4), CUES, tiny_cache, checkpoint=tmp_path / "a.pt", log=log)
    losses = [h["loss"] for h in whole.history]
    assert losses[-1] < losses[0]
    # The same run stopped after 2 epochs and resumed from its checkpoint.
    ckpt = tmp_path / "b.pt"
    first = train_cues(
        small_train(4), CUES, tiny_cache, checkpoint=ckpt, stop_after_epochs=2, log=log
    )
    assert first.epoch == 2
    resumed = train_cues(small_train(4), CUES, tiny_cache, checkpoint=ckpt, log=log)
    assert "resumed" in log.getvalue()
    for key, value in whole.net.state_dict().items():
        torch.testing.assert_close(resumed.net.state_dict()[key], value, rtol=0, atol=0)


def test_trained_network_localises_a_delayed_pair(tiny_cache: dict[str, np.ndarray]) -> None:
    cfg = replace(small_train(30), lr=5e-3)
    state = train_cues(cfg, CUES, tiny_cache, log=io.StringIO())
    net = state.net.eval()

    def run(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return net(torch.from_numpy(x)).numpy()

    max_itd = 0.2 / 343.0
    estimator = CueAudioEstimator(CUES, cfg.net, run, max_itd_s=max_itd, silence_dbfs=-90)
    rng = np.random.default_rng(5)
    errors = []
    for deg in (-60.0, -25.0, 0.0, 30.0, 70.0):
        delay = max_itd * math.sin(math.radians(deg)) * CUES.sample_rate
        s = rng.standard_normal(CUES.window_samples)
        f = np.fft.rfftfreq(s.size)
        right = np.fft.irfft(np.fft.rfft(s) * np.exp(-2j * np.pi * f * delay), s.size)
        est = estimator.estimate(0.3 * np.stack([s, right], 1).astype(np.float32), 16000)
        assert est.valid and 0.0 <= est.confidence <= 1.0
        errors.append(abs(math.degrees(est.angle) - deg))
    assert float(np.mean(errors)) < 12.0, errors
    # Silence and a wrong channel count are declined clearly.
    assert estimator.estimate(np.zeros((16000, 2), np.float32), 16000).reason == "silence"
    with pytest.raises(Exception, match=r"\(frames, 2\)"):
        estimator.estimate(np.zeros((16000, 3), np.float32), 16000)


def test_run_folder_is_never_reused_without_resume(tmp_path: Path) -> None:
    cfg = load_audio_run_config(
        REPO / "training/configs/cue_audio/audio_cues.yaml",
        {
            "data.train_scenes": 4,
            "data.val_scenes": 2,
            "workers": 1,
            "cache_dir": str(tmp_path / "cache"),
            "train.epochs": 1,
            "train.batch_size": 4,
            "examples.receivers.sofa_files": [],
            "examples.source_kinds": ["noise"],
            "examples.source_weights": [1.0],
        },
    )
    out = tmp_path / "run"
    metrics = run_audio_training(cfg, out)
    assert metrics["finished"] and (out / "audio_net.pt").is_file()
    assert (out / "history.png").is_file()
    # The recipe's decoding setting travels with the network to the model card.
    assert load_audio_run(out)[0].lobe_refine_itd == pytest.approx(cfg.lobe_refine_itd)
    assert cfg.lobe_refine_itd > 0
    with pytest.raises(ConfigError, match="--resume"):
        run_audio_training(cfg, out)
