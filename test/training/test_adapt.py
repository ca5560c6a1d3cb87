"""``slfm train adapt`` on real rosbag2 recordings: what it learns from and what it refuses."""

from __future__ import annotations

import argparse
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("rosbags")
pytest.importorskip("rclpy")
pytest.importorskip("audio_common_msgs")

from slfm_ros.bags.make import write_scene
from slfm_ros.bags.reader import open_bag
from slfm_ros.bags.scenarios import RenderedScene, StreamSettings, render_scene
from slfm_ros.bags.topics import AUDIO_INFO_TYPE, AUDIO_TYPE, ODOMETRY_TYPE
from slfm_ros.bags.writer import BagWriter
from slfm_ros.cli import train_cmd
from slfm_ros.core.dsp.binaural_cues import CueConfig
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.cue_audio import CALIBRATED_WIDENING
from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
from slfm_ros.core.models.azimuth_bins import CueNetConfig
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_ros.nodes import msg_conversions as conv
from slfm_training.adapt import AdaptConfig, load_adapt_config, read_recording, run_adapt
from slfm_training.audio_net_io import load_audio_net, save_audio_net

SETTINGS = StreamSettings(sample_rate=16000, chunk_s=0.1, fps=5.0, receiver="spherical_head")
FAST = AdaptConfig(train={"epochs": 4, "batch_size": 32, "lr": 2e-3})


@pytest.fixture(scope="module")
def scene() -> RenderedScene:
    """A talker 20 deg left of the start pose; the robot turns +-40 deg over 8 s."""
    return render_scene("turning-speaker", 8.0, seed=3, settings=SETTINGS)


def small_net() -> CueDirectionNet:
    """A small untrained network (what matters here is that adapting lowers its loss)."""
    torch.manual_seed(0)
    cfg = CueNetConfig(input_dim=CueConfig().dim, hidden=(32,), n_bins=72, dropout=0.0)
    return CueDirectionNet(cfg)


@pytest.fixture(scope="module")
def model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An audio run folder (audio_net.pt)."""
    folder = tmp_path_factory.mktemp("run")
    save_audio_net(folder / "audio_net.pt", small_net(), CueConfig(), {"labels": "test labels"})
    return folder


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A compact model folder (weights.pt + card.yaml) with a visual network too."""
    from slfm_ros.core.models.checkpoint import save_model
    from slfm_ros.core.models.compact import CompactModelConfig, CueAudioConfig
    from slfm_ros.core.models.cylinder_config import CylinderPoseConfig
    from slfm_ros.core.models.cylinder_pose import CylinderPoseNet

    audio = small_net()
    config = CompactModelConfig(CueAudioConfig(CueConfig(), audio.cfg), CylinderPoseConfig())
    visual = CylinderPoseNet(config.visual)
    card = {"labels": {"audio": "simulator azimuths", "visual": "simulator camera turns"}}
    folder = tmp_path_factory.mktemp("models") / "compact"
    return save_model(folder, config, audio, visual, card_extra=card)


def write_robot_bag(
    path: Path,
    scene: RenderedScene,
    yaw: float | None = None,
    info: bool = True,
    audio: np.ndarray | None = None,
) -> Path:
    """Audio (+ AudioInfo) and /odom at 20 Hz: the scene's yaw, or a constant ``yaw``."""
    s = scene.settings
    samples = scene.audio if audio is None else audio
    with BagWriter(path) as bag:
        if info:
            bag.add_topic("/audio/audio_info", AUDIO_INFO_TYPE, "latched")
        bag.add_topic("/audio/audio_stamped", AUDIO_TYPE)
        bag.add_topic("/odom", ODOMETRY_TYPE)
        items = []
        for first in scene.chunk_starts():
            items.append((s.start_ns + first * 1_000_000_000 // s.sample_rate, "audio", first))
        for i in range(int(scene.seconds * 20)):
            items.append((s.start_ns + i * 50_000_000, "odom", i))
        if info:
            bag.write(
                "/audio/audio_info", s.start_ns, conv.make_audio_info_msg(2, s.sample_rate, "S16LE")
            )
        for stamp, kind, i in sorted(items):
            if kind == "audio":
                chunk = samples[i : i + s.chunk_frames]
                bag.write(
                    "/audio/audio_stamped",
                    stamp,
                    conv.make_audio_msg(chunk, stamp, "S16LE", "mic_link"),
                )
            else:
                t = i / 20
                angle = float(scene.yaw(t)) if yaw is None else yaw
                msg = conv.camera_yaw_msg(angle, 0.0, 0.0, 0.0, stamp, "odom", "base_link")
                bag.write("/odom", stamp, msg)
    return path


def garbage_ground_truth(src: Path, dst: Path) -> Path:
    """A copy of ``src`` whose /ground_truth/* messages are bytes no reader could decode, and
    without /odom, so that the camera's frames measure the turns."""
    with open_bag(src) as reader:
        messages = [m for m in reader.messages() if m.topic != "/odom"]
        types = {t.name: t.msgtype for t in reader.topics.values()}
    with BagWriter(dst) as writer:
        for topic in dict.fromkeys(m.topic for m in messages):
            writer.add_topic(topic, types[topic])
        for m in messages:
            raw = b"\x00\x01not a message" if m.topic.startswith("/ground_truth/") else m.raw
            writer.write_raw(m.topic, m.log_ns, raw)
    return dst


def test_adapt_lowers_the_loss_and_reads_no_ground_truth(
    tmp_path: Path, scene: RenderedScene, model: Path
) -> None:
    made = write_scene(scene, tmp_path / "with_truth")
    bag = garbage_ground_truth(made.path, tmp_path / "robot")
    with open_bag(bag) as reader:
        assert "/ground_truth/sound_direction" in reader.topics
    out = tmp_path / "adapted"
    uncalibrated = replace(FAST, calibrate_receiver=False)
    metrics = run_adapt([str(bag)], model, out, uncalibrated, command="slfm train adapt ...")
    assert metrics["loss_after"] < metrics["loss_before"]
    adapted = load_audio_net(out)
    (summary,) = adapted.card["adaptation"]["bags"]
    assert summary["bag"] == str(bag)
    assert summary["rotation_source"].startswith("camera /camera/image_raw")
    assert not [t for t in summary["topics"] if t.startswith("/ground_truth")]
    assert adapted.labels == "test labels, then adapted without labels on a robot's recordings"
    # Adapted with the receiver unknown and not calibrated: scored and assembled, it runs
    # without it.
    assert load_audio_net(model).receiver_input and not adapted.receiver_input
    assert adapted.calibrated_receiver is None and adapted.lobe_widening == (1.0,)
    assert adapted.card["adaptation"]["calibration"] == "not asked for"
    from slfm_training.assemble import load_audio_run

    assert load_audio_run(out)[0].receiver_input is False
    assert (out / "adaptation.yaml").is_file() and (out / "adapt_metrics.json").is_file()
    with pytest.raises(ConfigError, match="already exists"):
        run_adapt([str(bag)], model, out, FAST)
    # The turns chained from the camera's frame pairs follow the robot's yaw.
    rec = read_recording(bag, CueConfig(), AdaptConfig())
    assert rec.summary["rotation_notes"] == [] and (rec.segment == 0).all()
    truth = scene.yaw(rec.times_s)
    error = (rec.yaw - rec.yaw[0]) - (truth - truth[0])
    assert np.degrees(np.abs(error)).max() < 1.5
    assert summary["turn_deg"] == pytest.approx(np.degrees(np.ptp(truth)), abs=1.5)


def test_odometry_gives_the_turns(tmp_path: Path, scene: RenderedScene) -> None:
    rec = read_recording(write_robot_bag(tmp_path / "odom", scene), CueConfig(), AdaptConfig())
    assert rec.summary["rotation_source"] == "odom /odom"
    truth = scene.yaw(rec.times_s)
    assert np.abs(rec.yaw - truth).max() < math.radians(0.5)


def test_a_bag_without_a_turn_is_refused_with_the_degrees(
    tmp_path: Path, scene: RenderedScene, model: Path
) -> None:
    bag = write_robot_bag(tmp_path / "still", scene, yaw=0.3)
    with pytest.raises(
        InputFormatError, match=r"no turn: the robot turned by 0\.0 deg.*at least 20 deg"
    ):
        run_adapt([str(bag)], model, tmp_path / "out", FAST)
    assert not (tmp_path / "out").exists()


def test_audio_without_audio_info_is_refused(tmp_path: Path, scene: RenderedScene) -> None:
    bag = write_robot_bag(tmp_path / "noinfo", scene, info=False)
    with pytest.raises(InputFormatError, match="audio without AudioInfo"):
        read_recording(bag, CueConfig(), AdaptConfig())


def test_a_bag_with_only_noise_is_refused(tmp_path: Path, scene: RenderedScene) -> None:
    rng = np.random.default_rng(0)
    noise = (1e-3 * rng.standard_normal(scene.audio.shape)).astype(np.float32)
    bag = write_robot_bag(tmp_path / "noise", scene, audio=noise)
    with pytest.raises(InputFormatError, match="no sound above the noise"):
        read_recording(bag, CueConfig(), AdaptConfig())


def test_cli_needs_bags_model_and_out(tmp_path: Path) -> None:
    parser = argparse.ArgumentParser()
    train_cmd.add_arguments(parser)
    with pytest.raises(ConfigError, match="--bags, --model"):
        train_cmd.run(parser.parse_args(["adapt", "--out", str(tmp_path / "x")]))


def test_the_documented_config_is_the_default() -> None:
    path = (
        Path(__file__).resolve().parents[2]
        / "training"
        / "configs"
        / "cue_audio"
        / "audio_adapt.yaml"
    )
    assert load_adapt_config(path) == AdaptConfig()


def test_a_model_folder_is_adapted_into_a_new_model_folder(
    tmp_path: Path, scene: RenderedScene, model_folder: Path
) -> None:
    from slfm_ros.core.models.checkpoint import load_model

    bag = write_robot_bag(tmp_path / "odom", scene)
    out = tmp_path / "adapted_model"
    run_adapt([str(bag)], model_folder, out, FAST)
    before, after = load_model(model_folder), load_model(out)
    assert after.card["labels"]["visual"] == "simulator camera turns"
    assert after.card["adaptation"]["bags"][0]["rotation_source"] == "odom /odom"
    # No size was given: the turns and delays calibrated the receiver, and the network
    # learned with it as its input. The talker was heard from -20 to 60 deg, where either
    # family can describe a rigid sphere: the fitted curve must match the scene's sphere there.
    assert FAST.max_itd_ms is None and after.config.audio.receiver_input is True
    calibrated = after.config.audio.calibrated_receiver
    assert calibrated is not None
    assert after.card["adaptation"]["calibrated_receiver"]["receiver"] == calibrated.receiver
    heard = np.radians(np.linspace(-20, 60, 81))
    true_curve = SphericalHeadGeometry(SETTINGS.head_radius_m).itd(heard)
    assert np.abs(calibrated.geometry().itd(heard) - true_curve).max() < 40e-6
    assert before.config.audio.calibrated_receiver is None
    # Calibrated delays match the correlation: the refinement may search wider ranges.
    assert before.config.audio.lobe_widening == (1.0,)
    assert after.config.audio.lobe_widening == CALIBRATED_WIDENING
    for key, value in before.visual_net.state_dict().items():
        torch.testing.assert_close(after.visual_net.state_dict()[key], value, rtol=0, atol=0)
    changed = [
        key
        for key, value in before.audio_net.state_dict().items()
        if not torch.equal(after.audio_net.state_dict()[key], value)
    ]
    assert changed
