"""The compact model family end to end: card, weights, back-ends, export, estimators."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from slfm_ros.core.backends import create_runners
from slfm_ros.core.backends.onnx_export import export_model
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.estimators.combined import FusedAudioEstimator
from slfm_ros.core.estimators.cue_audio import CueAudioEstimator
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.checkpoint import build_networks, load_model, save_model
from slfm_ros.core.models.compact import CompactModelConfig, CueAudioConfig
from slfm_ros.core.models.config import load_model_config
from slfm_ros.core.models.cylinder_config import CylinderPoseConfig
from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream
from slfm_ros.core.streaming.config import PipelineConfig
from slfm_ros.core.streaming.estimator_setup import build_estimators

AUDIO = CueAudioConfig(net=CueNetConfig(hidden=(32,), n_bins=72, peak_lags=193, steered=True))
VISUAL = CylinderPoseConfig(
    image_height=60, image_width=80, step_deg=1.0, channels=8, dilations=(1, 2, 4), context_dim=4
)
CONFIG = CompactModelConfig(AUDIO, VISUAL, "test-compact")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    audio, visual = build_networks(CONFIG)
    path = tmp_path_factory.mktemp("models") / "compact"
    save_model(path, CONFIG, audio, visual, card_extra={"labels": {"audio": "test"}})
    return path


def stream() -> SyntheticStream:
    scene = SyntheticScene(azimuth_rad=math.radians(30), sample_rate=16000, fps=5.0, seed=3)
    return SyntheticStream(scene, duration_s=2.0)


def test_config_round_trips_through_the_card_mapping() -> None:
    assert load_model_config(CONFIG.to_dict()) == CONFIG
    assert load_model_config("compact") == CompactModelConfig()
    with pytest.raises(ConfigError, match="unknown"):
        load_model_config({"family": "compact", "audoi": {}})
    with pytest.raises(ConfigError, match="input_dim"):
        CueAudioConfig(net=CueNetConfig(input_dim=10))
    refined = CompactModelConfig(audio=CueAudioConfig(lobe_refine_itd=0.2))
    assert load_model_config(refined.to_dict()) == refined
    # Cards written before the key existed read as "no refinement".
    old = refined.to_dict()
    del old["audio"]["lobe_refine_itd"]
    assert load_model_config(old).audio.lobe_refine_itd == 0.0
    with pytest.raises(ConfigError, match="lobe_refine_itd"):
        CueAudioConfig(lobe_refine_itd=-0.1)
    widened = CompactModelConfig(
        audio=CueAudioConfig(lobe_refine_itd=0.16, lobe_widening=(1, 2, 4))
    )
    assert load_model_config(widened.to_dict()) == widened
    assert widened.audio.lobe_widening == (1.0, 2.0, 4.0)
    # Cards without the key search the narrow range only.
    assert "lobe_widening" not in refined.to_dict()["audio"]
    assert load_model_config(refined.to_dict()).audio.lobe_widening == (1.0,)
    for bad in ((2.0, 4.0), (1.0, 1.0), ()):
        with pytest.raises(ConfigError, match="lobe_widening"):
            CueAudioConfig(lobe_widening=bad)


def test_weights_load_back_exactly(model_dir: Path) -> None:
    loaded = load_model(model_dir)
    assert loaded.config == CONFIG
    fresh_audio, _ = build_networks(CONFIG)
    for key, value in loaded.audio_net.state_dict().items():
        assert value.shape == fresh_audio.state_dict()[key].shape
    # The card names the family and is refused with another family's weights.
    card = (model_dir / "card.yaml").read_text()
    assert "family: compact" in card
    broken = model_dir.parent / "broken"
    broken.mkdir()
    (broken / "card.yaml").write_text(card.replace("n_bins: 72", "n_bins: 60"))
    (broken / "weights.pt").write_bytes((model_dir / "weights.pt").read_bytes())
    with pytest.raises(ModelError, match=r"do not match|shape"):
        load_model(broken)


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_backends_give_the_same_estimates(model_dir: Path, backend: str, tmp_path: Path) -> None:
    from slfm_ros.core.backends import BackendOptions

    options = BackendOptions(cache_dir=str(tmp_path))
    runners = create_runners(model_dir, backend, "cpu", options)
    assert runners.backend_name.startswith(backend)
    s = stream()
    audio = CueAudioEstimator(
        AUDIO.cues, AUDIO.net, runners.audio, max_itd_s=0.14 / 343.0, silence_dbfs=-120.0
    )
    est = audio.estimate(s.audio[:16000], 16000)
    assert est.valid and abs(est.angle) <= math.pi / 2
    logits = runners.audio(audio.features(s.audio[:16000], 16000))
    assert logits.shape == (1, AUDIO.net.n_bins)
    runners.close()


def test_export_parity_and_estimator_setup(model_dir: Path, tmp_path: Path) -> None:
    result = export_model(model_dir, tmp_path / "onnx", parity_source="synthetic")
    assert result.parity is not None and result.parity.passed
    for estimator, fused in (("slfm", False), ("auto", True)):
        config = PipelineConfig(estimator=estimator, model_dir=str(model_dir), backend="torch")
        chosen = build_estimators(config)
        assert not chosen.fallback_reason, chosen.fallback_reason
        assert isinstance(chosen.audio, FusedAudioEstimator) is fused
        s = stream()
        assert chosen.audio.estimate(s.audio[:24000], 16000).valid


@pytest.mark.parametrize("backend", ["torch", "onnxruntime"])
def test_the_visual_network_follows_the_camera_it_is_given(backend: str, tmp_path: Path) -> None:
    """The shipped model, seen through a level camera: with its reference camera (pitched
    22.5 deg down) it gets a 20 deg turn wrong; set up for the real camera it is exact."""
    import numpy as np

    from slfm_ros.core.backends import BackendOptions
    from slfm_ros.core.estimators.slfm import SlfmVisualEstimator
    from slfm_ros.core.geometry.panorama import crop_perspective
    from slfm_ros.core.sim.panoramas import ProceduralPanoramas
    from slfm_ros.core.streaming.estimator_setup import default_model_dir

    shipped = default_model_dir()
    pano = ProceduralPanoramas(width=2048, seed=0, irregular_probability=0.0).panorama(1, "test")
    rad = math.radians
    pairs = [
        [crop_perspective(pano, rad(yaw), 0.0, rad(60.0), 320, 240) for yaw in (y0, y0 + 20.0)]
        for y0 in (0.0, 90.0, 200.0)
    ]

    def errors(camera: tuple[float, float] | None) -> list[float]:
        options = BackendOptions(cache_dir=str(tmp_path))
        runners = create_runners(shipped, backend, "cpu", options, camera=camera)
        estimator = SlfmVisualEstimator(runners.config.visual, runners.visual)
        found = [math.degrees(estimator.estimate(a, b).angle) for a, b in pairs]
        runners.close()
        return [abs(f - 20.0) for f in found]

    assert max(errors((60.0, 0.0))) < 0.5
    reference = errors(None)
    assert min(reference) > 1.0 and float(np.mean(reference)) > 5.0
    with pytest.raises(ModelError, match="pitch"):
        create_runners(shipped, backend, "cpu", camera=(60.0, 95.0))
