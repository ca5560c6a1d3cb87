"""What the loop does with its validation loss: early stopping, keeping the best weights, and
TensorBoard logs of both."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from slfm_training.config import TrainConfig
from slfm_training.loop import train

# Every validation is an evaluation "without improvement" after the first one: no loss can
# beat the best by this much.
NEVER_BETTER = "run.early_stopping_min_delta=1e9"


def _run(tiny_config: Callable[..., TrainConfig], out: Path, *overrides: str) -> dict[str, Any]:
    cfg = tiny_config(
        "slfm",
        "optim.max_steps=6",
        "run.eval_every=1",
        "run.checkpoint_every=0",
        "slfm.resolve_sign=false",
        *overrides,
    )
    return train(cfg, out).metrics


def _networks(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The audio and visual weights of a StageModel state dict, named as in weights.pt."""
    return {
        k.removeprefix("nets."): v
        for k, v in state.items()
        if k.startswith(("nets.audio.", "nets.visual."))
    }


def test_early_stopping_ends_the_run_after_patience_evaluations(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    metrics = _run(tiny_config, tmp_path / "run", NEVER_BETTER, "run.early_stopping_patience=2")
    assert metrics["stopped_early"] is True
    assert metrics["steps"] == 3 < metrics["max_steps"]  # best at 1, no better at 2 and 3
    assert [entry["step"] for entry in metrics["val_history"]] == [1, 2, 3]
    assert metrics["best"]["step"] == 1


def test_without_patience_the_run_goes_to_max_steps(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    metrics = _run(tiny_config, tmp_path / "run", NEVER_BETTER, "optim.max_steps=3")
    assert metrics["stopped_early"] is False and metrics["steps"] == 3


@pytest.mark.parametrize("keep_best", [True, False])
def test_the_model_keeps_the_best_weights_unless_told_not_to(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path, keep_best: bool
) -> None:
    out = tmp_path / "run"
    metrics = _run(
        tiny_config,
        out,
        NEVER_BETTER,
        "optim.max_steps=3",
        "run.checkpoint_every=3",
        f"run.keep_best={str(keep_best).lower()}",
    )
    saved = torch.load(out / "weights.pt", weights_only=True)
    last = _networks(torch.load(out / "checkpoint.pt", weights_only=True)["model"])
    assert set(saved) == set(last)
    if keep_best:
        best = _networks(torch.load(out / "best.pt", weights_only=True))
        assert metrics["weights_from_step"] == 1
        for key, value in saved.items():
            assert torch.equal(value, best[key]), key
        # Steps 2 and 3 moved the heads on: the model is not the last step's.
        assert any(not torch.equal(saved[k], last[k]) for k in saved)
    else:
        assert not (out / "best.pt").exists()
        assert metrics["weights_from_step"] == 3
        for key, value in saved.items():
            assert torch.equal(value, last[key]), key


def test_tensorboard_logs_training_validation_and_final_values(
    tiny_config: Callable[..., TrainConfig], tmp_path: Path
) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out = tmp_path / "run"
    _run(tiny_config, out, "optim.max_steps=4", "run.eval_every=2", "run.tensorboard=true")
    (events,) = (out / "tensorboard").glob("events.out.tfevents.*")
    log = EventAccumulator(str(events))
    log.Reload()
    tags = set(log.Tags()["scalars"])
    assert {"train/loss", "train/lr", "val/loss", "final/loss"} <= tags
    assert [e.step for e in log.Scalars("val/loss")] == [2, 4]
    assert [e.step for e in log.Scalars("final/loss")] == [4]
    assert all(e.value > 0 for e in log.Scalars("train/loss"))
