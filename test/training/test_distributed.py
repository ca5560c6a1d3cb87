"""The trainer under torchrun: two CPU processes (gloo) train one model together."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import torch

from slfm_ros.core.models.checkpoint import load_model

WORKER = Path(__file__).with_name("ddp_worker.py")
REPO = Path(__file__).resolve().parents[2]


def _torchrun() -> list[str]:
    found = shutil.which("torchrun", path=str(Path(sys.executable).parent))
    return [found] if found else [sys.executable, "-m", "torch.distributed.run"]


def test_two_processes_train_one_model_with_distributed_data_parallel(tmp_path: Path) -> None:
    overrides = [
        "run.device=cpu",
        "optim.max_steps=4",
        "run.eval_every=2",
        "slfm.resolve_sign=false",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    command = [*_torchrun(), "--standalone", "--nproc_per_node", "2", str(WORKER)]
    run = subprocess.run(
        [*command, str(tmp_path), *overrides],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert [r["world_size"] for r in ranks] == [2, 2]
    assert [r["ddp"] for r in ranks] == ["DistributedDataParallel"] * 2
    assert all(r["finished"] for r in ranks)
    # Each process reads its own slice of the global batch ...
    assert not set(ranks[0]["first_indices"]) & set(ranks[1]["first_indices"])
    # ... and the averaged gradients keep their weights identical while they train.
    first, second = (r["weights"] for r in ranks)
    for key, value in first.items():
        torch.testing.assert_close(second[key], value, atol=0, rtol=0)
    changed = {k for k, v in first.items() if not torch.equal(ranks[0]["initial"][k], v)}
    assert changed and all(".head." in k for k in changed), sorted(changed)
    # Rank 0 wrote the run folder, counting the samples of both processes.
    summary = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert summary["processes"] == 2 and summary["steps"] == 4
    assert summary["samples_seen"] == 4 * 2 * 2  # steps x batch per process x processes
    assert len(summary["val_history"]) == 2
    assert load_model(tmp_path / "run").config.audio.feature_dim == 16
