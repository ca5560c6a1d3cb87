"""Process-level plumbing of the training loop: torchrun process groups, devices, mixed
precision, seeds and RNG states, atomic file writes, out-of-memory errors."""

from __future__ import annotations

import math
import os
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist

from slfm_ros.core.atomic_io import atomic_write
from slfm_ros.core.errors import ConfigError, SlfmError


class TrainingError(SlfmError):
    """Training cannot go on (out of memory, diverged loss, unusable output folder)."""


@dataclass(frozen=True)
class DistContext:
    """This process's place in a torchrun job (world_size 1 without torchrun)."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1

    @staticmethod
    def from_env(device_pref: str) -> DistContext:
        """Join the process group when torchrun set WORLD_SIZE > 1 (env:// rendezvous)."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world <= 1:
            return DistContext()
        rank = int(os.environ["RANK"])
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        use_cuda = device_pref != "cpu" and torch.cuda.is_available()
        if use_cuda:
            torch.cuda.set_device(local_rank)
        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if use_cuda else "gloo", init_method="env://")
        return DistContext(rank, local_rank, world)

    def barrier(self) -> None:
        if self.active:
            dist.barrier()

    def shutdown(self) -> None:
        if self.active and dist.is_initialized():
            dist.destroy_process_group()


def choose_device(pref: str, ctx: DistContext) -> torch.device:
    if pref == "cuda" and not torch.cuda.is_available():
        raise ConfigError("run.device is 'cuda' but no CUDA device is available; use auto or cpu")
    if pref == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", ctx.local_rank)


def choose_amp(mode: str, device: torch.device) -> torch.dtype | None:
    """Autocast dtype, or None for full precision (always on the CPU)."""
    if device.type != "cuda" or mode == "off":
        return None
    if mode == "fp16":
        return torch.float16
    if mode == "bf16" or torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def seed_everything(seed: int, deterministic: bool) -> None:
    random.seed(seed)
    # The legacy global numpy state is seeded and saved for libraries that still use it.
    np.random.seed(seed % 2**32)  # noqa: NPY002
    torch.manual_seed(seed)
    if deterministic:
        # cuBLAS needs this before its first call to be deterministic.
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
    else:
        torch.backends.cudnn.benchmark = True


def rng_state() -> dict[str, Any]:
    """Global RNG states (torch CPU and CUDA, numpy, python) as checkpoint-safe objects."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()  # noqa: NPY002
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [kind, torch.from_numpy(np.asarray(keys, dtype=np.int64)), pos, has_gauss, cached],
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore ``rng_state()``; the tensors may have been loaded onto any device."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), pos, has_gauss, cached))  # noqa: NPY002
    python = state["python"]
    random.setstate((python[0], tuple(python[1]), python[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


# ---------------------------------------------------------------------------------------------
# Files


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save ``obj`` to ``path`` atomically (temporary file, fsync, os.replace)."""
    atomic_write(path, lambda handle: torch.save(obj, handle))


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value


def is_oom(exc: BaseException) -> bool:
    if isinstance(exc, torch.OutOfMemoryError):
        return True
    text = str(exc)
    return isinstance(exc, RuntimeError) and (
        "out of memory" in text or "can't allocate memory" in text.lower()
    )


def oom_error(batch_size: int, device: torch.device) -> TrainingError:
    smaller = max(1, batch_size // 2)
    return TrainingError(
        f"ran out of memory on {device} with optim.batch_size {batch_size}; use a smaller "
        f"batch (e.g. --set optim.batch_size={smaller}), a smaller model, or mixed precision "
        "on CUDA (run.amp)"
    )
