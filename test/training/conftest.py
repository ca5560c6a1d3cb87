"""The tiny training setup of tiny.yaml, so that training runs take seconds on a CPU."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from slfm_training.config import TrainConfig, apply_overrides, train_config_from_mapping

torch.set_num_threads(1)

TINY_YAML = Path(__file__).with_name("tiny.yaml")
TINY: dict[str, Any] = yaml.safe_load(TINY_YAML.read_text())


@pytest.fixture(scope="session")
def tiny_config() -> Callable[..., TrainConfig]:
    """tiny_config(stage, "key=value", ...) -> TrainConfig of the tiny setup."""

    def make(stage: str = "slfm", *overrides: str) -> TrainConfig:
        return train_config_from_mapping(apply_overrides({**TINY, "stage": stage}, overrides))

    return make
