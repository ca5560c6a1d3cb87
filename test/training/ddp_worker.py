"""One process of a torchrun job of the trainer, for test_distributed.py.

    torchrun --standalone --nproc_per_node 2 test/training/ddp_worker.py OUT [KEY=VALUE ...]

Runs the tiny config (tiny.yaml, with the overrides) through the trainer's own torchrun path
(``DistContext.from_env``, DistributedDataParallel) and then saves what only a test needs: this
process's weights before and after training and the indices of the training samples it was
given first, as ``OUT/rank<R>.pt``. Rank 0 also writes the run folder as ``slfm train`` does.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from slfm_training.config import apply_overrides, train_config_from_mapping  # noqa: E402
from slfm_training.loop import Trainer  # noqa: E402
from slfm_training.runtime import DistContext  # noqa: E402


def main(out: Path, overrides: list[str]) -> None:
    tiny = yaml.safe_load((Path(__file__).with_name("tiny.yaml")).read_text())
    cfg = train_config_from_mapping(apply_overrides({**tiny, "stage": "slfm"}, overrides))
    torch.set_num_threads(1)
    ctx = DistContext.from_env(cfg.run.device)
    try:
        trainer = Trainer(cfg, out / "run", ctx, "torchrun test/training/ddp_worker.py")
        initial = {k: v.clone() for k, v in trainer.model.state_dict().items()}
        first_batch = next(trainer._batches())
        result = trainer.run(resume=False, stop_after=None)
        torch.save(
            {
                "world_size": ctx.world_size,
                "ddp": type(trainer.ddp).__name__,
                "finished": result.finished,
                "first_indices": first_batch.index.tolist(),
                "initial": initial,
                "weights": trainer.model.state_dict(),
            },
            out / f"rank{ctx.rank}.pt",
        )
    finally:
        ctx.shutdown()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2:])
