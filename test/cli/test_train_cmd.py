"""``slfm train``: arguments, stage check, a run that stops and resumes."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import torch

from slfm_ros.cli import train_cmd
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.checkpoint import load_model

TINY_YAML = Path(__file__).resolve().parents[1] / "training" / "tiny.yaml"


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="slfm train")
    train_cmd.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_train_stops_resumes_and_writes_a_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.set_num_threads(1)
    out = tmp_path / "run"
    common = ["slfm", "--config", str(TINY_YAML), "--out", str(out), "--set", "optim.max_steps=4"]
    assert train_cmd.run(_args(*common, "--stop-after", "2")) == 0
    assert "continue with --resume" in capsys.readouterr().out
    assert train_cmd.run(_args(*common, "--resume")) == 0
    assert "model written to" in capsys.readouterr().out
    loaded = load_model(out)
    assert loaded.card["training_config"]["optim"]["max_steps"] == 4
    assert loaded.card["command"].startswith("slfm ")


def test_stage_must_match_the_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="configures stage 'slfm'"):
        train_cmd.run(_args("pretext", "--config", str(TINY_YAML), "--out", str(tmp_path)))


def test_unknown_override_key_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="batchsize"):
        train_cmd.run(_args("slfm", "--config", str(TINY_YAML), "--set", "optim.batchsize=4"))


def test_stage_choices() -> None:
    with pytest.raises(SystemExit):
        _args("finetune", "--config", str(TINY_YAML))
