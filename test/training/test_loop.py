"""The training loop end to end on a tiny model and a tiny simulated world."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml

from slfm_ros.core.errors import DatasetError, ModelError
from slfm_ros.core.models.checkpoint import load_model
from slfm_ros.core.sim.dataset import write_dataset
from slfm_training.config import TrainConfig
from slfm_training.loop import Trainer, TrainResult, train, warmup_cosine
from slfm_training.runtime import DistContext, TrainingError, is_oom, oom_error


def run_and_list_changes(trainer: Trainer) -> tuple[TrainResult, set[str]]:
    """Run ``trainer`` to the end; also return the state-dict keys whose values changed."""
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    result = trainer.run(resume=False, stop_after=None)
    after = trainer.model.state_dict()
    return result, {k for k in before if not torch.equal(before[k], after[k])}


def networks_of(keys: set[str]) -> set[str]:
    """The networks ("audio", "visual", ...) that state-dict keys belong to."""
    return {k.split(".")[1] for k in keys}


@pytest.fixture(scope="module")
def slfm_run(
    tiny_config: Callable[..., TrainConfig], tmp_path_factory: pytest.TempPathFactory
) -> tuple[TrainConfig, float, TrainResult]:
    """12 steps of the SLfM stage from random weights, with the loss before training."""
    cfg = tiny_config("slfm", "optim.max_steps=12", "run.eval_every=4", "run.checkpoint_every=4")
    out = tmp_path_factory.mktemp("slfm_run")
    before = Trainer(cfg, out, DistContext(), "test").evaluate()["loss"]
    return cfg, before, train(cfg, out, command="slfm train slfm --config tiny.yaml")


@pytest.fixture(scope="module")
def shards(
    tiny_config: Callable[..., TrainConfig], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Path]:
    """Tiny 3-view train (4 samples) and val (2 samples) shard folders."""
    scene = tiny_config("pretext", "data.scene.views.num_views=3").data.scene_config()
    root = tmp_path_factory.mktemp("shards")
    for split, num in (("train", 4), ("val", 2)):
        write_dataset(scene, root / split, num, split, seed=0, workers=1, progress=False)
    return root / "train", root / "val"


def test_slfm_training_reduces_the_loss(slfm_run: tuple[TrainConfig, float, TrainResult]) -> None:
    _, before, result = slfm_run
    history = [entry["loss"] for entry in result.metrics["val_history"]]
    assert result.finished and result.step == 12
    assert len(history) == 3
    assert history[-1] < before - 0.1, (before, history)


def test_run_folder_holds_a_loadable_model_with_its_card(
    slfm_run: tuple[TrainConfig, float, TrainResult],
) -> None:
    cfg, _, result = slfm_run
    loaded = load_model(result.out_dir)
    assert loaded.config == cfg.model_config()
    card = loaded.card
    assert card["command"] == "slfm train slfm --config tiny.yaml"
    assert card["seed"] == cfg.seed and card["stage"] == "slfm"
    assert card["training_config"] == cfg.to_dict()
    assert card["training_data"]["scene"] == cfg.data.scene_config().to_dict()
    assert "git_commit" in card
    assert math.isfinite(card["metrics"]["loss"]) and "audio_mae_deg" in card["metrics"]
    metrics = json.loads((result.out_dir / "metrics.json").read_text())
    assert metrics["samples_seen"] == 12 * cfg.optim.batch_size
    assert metrics["samples_per_s"] > 0
    assert set(metrics["sign"]) == {"samples", "agreement", "flipped"}
    saved = yaml.safe_load((result.out_dir / "config.yaml").read_text())
    assert saved == cfg.to_dict()


def test_resume_continues_exactly(tiny_config: Callable[..., TrainConfig], tmp_path: Path) -> None:
    cfg = tiny_config("slfm", "data.permute_prob=0.5", "slfm.resolve_sign=false")
    straight = train(cfg, tmp_path / "straight")
    first = train(cfg, tmp_path / "resumed", stop_after=3)
    assert not first.finished and first.step == 3
    resumed = train(cfg, tmp_path / "resumed", resume=True)
    assert resumed.finished and resumed.step == straight.step == 6

    a = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)
    b = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)
    for key, value in a["model"].items():
        torch.testing.assert_close(b["model"][key], value, atol=1e-6, rtol=0)
    assert len(a["loop"]["history"]) == len(b["loop"]["history"]) == 2
    for entry_a, entry_b in zip(a["loop"]["history"], b["loop"]["history"], strict=True):
        assert entry_a == pytest.approx(entry_b, abs=1e-6)
    assert straight.metrics["final"] == pytest.approx(resumed.metrics["final"], abs=1e-6)
    assert a["optimizer"]["state"].keys() == b["optimizer"]["state"].keys()
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6


@pytest.mark.parametrize("stage", ["pretext", "supervised", "probe"])
def test_other_stages_train_from_shards(
    stage: str,
    tiny_config: Callable[..., TrainConfig],
    shards: tuple[Path, Path],
    tmp_path: Path,
) -> None:
    train_dir, val_dir = shards
    cfg = tiny_config(
        stage,
        "data.source=shards",
        f"data.train_dir={train_dir}",
        f"data.val_dir={val_dir}",
        f"data.num_views={3 if stage == 'pretext' else 2}",
        "optim.max_steps=2",
        "run.eval_every=2",
    )
    result = train(cfg, tmp_path / stage)
    assert result.finished
    final = result.metrics["final"]
    assert math.isfinite(final["loss"])
    # Pretext and probes train no head: started from random weights, no answer is usable.
    untrained = [] if stage == "supervised" else ["audio", "visual"]
    assert load_model(tmp_path / stage).card["untrained_networks"] == untrained
    if stage == "pretext":
        extras = torch.load(tmp_path / stage / "stage_modules.pt", weights_only=True)
        assert set(extras) == {"binauralizer"}
    if stage == "probe":
        assert 0.0 <= final["audio_top1"] <= 1.0 and 0.0 <= final["camera_top1"] <= 1.0


def test_frozen_parts_do_not_change(
    tiny_config: Callable[..., TrainConfig], shards: tuple[Path, Path], tmp_path: Path
) -> None:
    train_dir, _ = shards
    cfg = tiny_config(
        "slfm",
        "data.source=shards",
        f"data.train_dir={train_dir}",
        "optim.max_steps=2",
        "run.eval_every=0",
        "slfm.resolve_sign=false",
    )
    _, changed = run_and_list_changes(Trainer(cfg, tmp_path / "frozen", DistContext(), "test"))
    assert changed and all(".head." in k for k in changed), sorted(changed)


def test_init_from_another_architecture_is_refused(
    slfm_run: tuple[TrainConfig, float, TrainResult],
    tiny_config: Callable[..., TrainConfig],
    tmp_path: Path,
) -> None:
    _, _, result = slfm_run
    cfg = tiny_config("slfm", f"init={result.out_dir}", "model.audio.feature_dim=32")
    with pytest.raises(ModelError, match="another architecture"):
        train(cfg, tmp_path / "other")


def test_resume_of_another_architecture_is_refused(
    slfm_run: tuple[TrainConfig, float, TrainResult],
    tiny_config: Callable[..., TrainConfig],
) -> None:
    _, _, result = slfm_run
    cfg = tiny_config("slfm", "model.visual.feature_dim=32")
    with pytest.raises(ModelError, match="another architecture"):
        train(cfg, result.out_dir, resume=True)


def test_run_folder_misuse(
    slfm_run: tuple[TrainConfig, float, TrainResult],
    tiny_config: Callable[..., TrainConfig],
    tmp_path: Path,
) -> None:
    cfg, _, result = slfm_run
    with pytest.raises(TrainingError, match="--resume"):
        train(cfg, result.out_dir)
    with pytest.raises(TrainingError, match="nothing to resume"):
        train(cfg, tmp_path / "new", resume=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(DatasetError, match="empty"):
        train(tiny_config("slfm", "data.source=shards", f"data.train_dir={empty}"), tmp_path / "x")


def test_out_of_memory_is_reported_with_a_smaller_batch() -> None:
    assert is_oom(torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"))
    assert is_oom(RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried 8 GB"))
    assert not is_oom(RuntimeError("shape mismatch"))
    message = str(oom_error(64, torch.device("cuda", 0)))
    assert "batch_size 64" in message and "optim.batch_size=32" in message


def test_warmup_cosine_schedule() -> None:
    factor = warmup_cosine(max_steps=110, warmup=10, min_ratio=0.1)
    assert factor(0) == pytest.approx(0.1)
    assert factor(9) == pytest.approx(1.0)
    assert factor(10) == pytest.approx(1.0)
    assert factor(60) == pytest.approx(0.1 + 0.9 * 0.5)
    assert factor(110) == pytest.approx(0.1)


def test_geometric_weight_warms_up_linearly(tiny_config: Callable[..., TrainConfig]) -> None:
    from slfm_ros.core.models.config import load_model_config
    from slfm_training.stages.slfm import SlfmStage

    cfg = tiny_config("slfm", "slfm.geometric_warmup_steps=100", "slfm.geometric_weight=10")
    stage = SlfmStage(cfg, load_model_config("small"))
    weights = []
    for step in (0, 50, 100, 500):
        stage.step = step
        weights.append(stage.geometric_weight())
    assert weights == [0.0, 5.0, 10.0, 10.0]
    stage = SlfmStage(tiny_config("slfm", "slfm.geometric_weight=10"), load_model_config("small"))
    assert stage.geometric_weight() == 10.0
    cfg = tiny_config(
        "slfm",
        "slfm.geometric_start_step=200",
        "slfm.geometric_warmup_steps=100",
        "slfm.geometric_weight=10",
    )
    stage = SlfmStage(cfg, load_model_config("small"))
    weights = []
    for step in (0, 199, 200, 250, 300, 900):
        stage.step = step
        weights.append(stage.geometric_weight())
    assert weights == [0.0, 0.0, 0.0, 5.0, 10.0, 10.0]


def test_geometric_loss_reaches_the_audio_network_from_its_start_step(
    tiny_config: Callable[..., TrainConfig],
) -> None:
    from slfm_ros.core.errors import ConfigError
    from slfm_ros.core.models.config import load_model_config
    from slfm_training.data import Batch
    from slfm_training.loop import build_nets
    from slfm_training.stages.slfm import SlfmStage

    cfg = tiny_config(
        "slfm",
        "slfm.finetune=true",
        "slfm.binaural_weight=0",
        "slfm.symmetry_weight=0",
        "slfm.audio_geometric_start_step=100",
    )
    model_cfg = load_model_config(cfg.model)
    stage = SlfmStage(cfg, model_cfg)
    torch.manual_seed(0)
    nets = build_nets(cfg, model_cfg, stage)
    b, k, v, a = 2, 3, model_cfg.visual, model_cfg.audio
    batch = Batch(
        images=torch.randn(b, k, 3, v.image_height, v.image_width),
        audio=torch.randn(b, k, 2, a.clip_samples) * 0.1,
        turns=torch.zeros(b, k),
        azimuths=torch.zeros(b, k),
        index=torch.arange(b),
        measured_turns=torch.full((b, k), float("nan")),
    )

    def gradient_norms(step: int) -> tuple[float, float]:
        stage.step = step
        nets.zero_grad(set_to_none=False)
        stage.forward(nets, batch).loss.backward()
        norms = []
        for name in ("audio", "visual"):
            grads = [p.grad.abs().sum() for p in nets[name].parameters() if p.grad is not None]
            norms.append(float(sum(grads)))
        return norms[0], norms[1]

    audio_before, visual_before = gradient_norms(99)
    audio_after, visual_after = gradient_norms(100)
    assert audio_before == 0.0 and visual_before > 0.0
    assert audio_after > 0.0 and visual_after > 0.0
    with pytest.raises(ConfigError, match="audio_geometric_start_step"):
        tiny_config("slfm", "slfm.audio_geometric_start_step=-1")


def test_train_networks_selects_what_trains(tiny_config: Callable[..., TrainConfig]) -> None:
    from slfm_ros.core.errors import ConfigError
    from slfm_ros.core.models.config import load_model_config
    from slfm_training.stages.slfm import SlfmStage

    cfg = tiny_config("slfm", "slfm.finetune=true", "slfm.train_networks=[visual]")
    parts = SlfmStage(cfg, load_model_config("small")).trainable()
    assert parts and all(p.startswith("visual.") for p in parts)
    assert "visual.trunk" in parts and "visual.head" in parts
    with pytest.raises(ConfigError, match="train_networks"):
        tiny_config("slfm", "slfm.train_networks=[ears]")
    with pytest.raises(ConfigError, match="train_networks"):
        tiny_config("slfm", "slfm.train_networks=[]")


def test_egomotion_stage_trains_the_audio_network_on_measured_turns(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    sharp = (  # images ORB can match
        "data.scene.image.width=160",
        "data.scene.image.height=120",
        "data.scene.panoramas.width=1024",
    )
    cfg = tiny_config(
        "egomotion",
        *sharp,
        "data.val_samples=8",
        "optim.max_steps=2",
        "run.eval_every=0",
    )
    trainer = Trainer(cfg, tmp_path / "egomotion", DistContext(), "test")
    result, changed = run_and_list_changes(trainer)
    assert networks_of(changed) == {"audio"}
    final = result.metrics["final"]
    # The validation pairs the matcher accepted carry their turn to within a fraction of a
    # degree; the rest left the geometric term.
    assert 0.0 < final["measured"] < 1.0
    assert final["measured_turn_error_deg"] < 0.5
    assert math.isfinite(final["geometric"]) and final["geometric"] > 0.0
    # Its visual network never trained: inference refuses it for yaw, not for audio.
    card = load_model(tmp_path / "egomotion").card
    assert card["stage"] == "egomotion" and card["untrained_networks"] == ["visual"]
    from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
    from slfm_ros.evaluation.estimators import build_audio_estimator, build_visual_estimator

    model = tmp_path / "egomotion"
    assert build_audio_estimator("slfm", SphericalHeadGeometry(), model, "torch").name == "slfm"
    with pytest.raises(ModelError, match=r"visual network .* was never trained"):
        build_visual_estimator("slfm", model=model, backend="torch")
    # Training the visual network from it (the SLfM stage) clears the mark, and the rotation
    # head's sign is checked against the turns measured on the training images.
    follow = tiny_config(
        "slfm",
        f"init={model}",
        *sharp,
        "slfm.train_networks=[visual]",
        "optim.max_steps=1",
        "data.val_samples=0",
    )
    # One step cannot teach the rotation head a direction: the check says so.
    with pytest.warns(UserWarning, match="rotation head's sign is undecided"):
        result = train(follow, tmp_path / "visual")
    card = load_model(tmp_path / "visual").card
    assert card["untrained_networks"] == []
    assert result.metrics["rotation_sign"]["pairs"] > 0
    assert card["metrics"]["rotation_sign_flipped"] == result.metrics["rotation_sign"]["flipped"]
    assert card["metrics"]["rotation_sign_decided"] is False


def test_audio_only_supervised_bound_leaves_the_visual_network_alone(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    cfg = tiny_config(
        "supervised",
        "supervised.visual_weight=0",
        "model.audio.phase_reference=interaural",
        "optim.max_steps=2",
        "data.val_samples=2",
        "run.eval_every=0",
    )
    trainer = Trainer(cfg, tmp_path / "audio_only", DistContext(), "test")
    result, changed = run_and_list_changes(trainer)
    assert networks_of(changed) == {"audio"}
    assert "audio_mae_deg" in result.metrics["final"]
    assert "camera_mae_deg" not in result.metrics["final"]
    loaded = load_model(tmp_path / "audio_only")
    assert loaded.card["untrained_networks"] == ["visual"]
    # The card carries the feature choice, so inference computes the same features.
    assert loaded.config.audio.stft_config().phase_reference == "interaural"


def test_egomotion_run_without_any_measured_turn_stops(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    # 48 x 32 renders are too small for ORB to measure any turn.
    cfg = tiny_config("egomotion", "optim.max_steps=60", "data.val_samples=0")
    with pytest.raises(DatasetError, match="measured no camera turn"):
        train(cfg, tmp_path / "blind")
