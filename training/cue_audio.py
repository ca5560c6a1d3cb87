"""Training of the compact audio network on cached binaural cues.

Supervision: the simulator's azimuth labels (``labels: simulator azimuths`` on the card), as a
circular Gaussian target over the full circle, so a receiver that cannot tell front from back
learns to say so (two modes) instead of guessing. Augmentation costs nothing in cue space:
every batch mirrors a random half of its windows (channels swapped, phi -> -phi) and hides the
receiver's aperture from a random share, so the network works with and without it.

The run is deterministic for a seed: epoch e shuffles with ``Generator(seed, e)``, and the
checkpoint written after every epoch (weights, optimiser, schedule, epoch, history, best
weights) resumes to exactly the weights an uninterrupted run reaches. With validation data the
run keeps the weights of the epoch with the lowest validation MAE (``best_state``); the
validation split is rendered from its own seed and never scored as the test.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slfm_ros.core.atomic_io import atomic_write_bytes
from slfm_ros.core.dsp.binaural_cues import CueConfig, mirror_cues
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.models.azimuth_bins import CueNetConfig, decode_azimuth, softmax
from slfm_ros.core.models.cue_direction import CueDirectionNet


@dataclass(frozen=True)
class CueTrainConfig:
    """Keys documented in ``training/configs/cue_audio/audio_cues.yaml`` (section ``train``)."""

    epochs: int = 12
    batch_size: int = 256
    lr: float = 2e-3
    weight_decay: float = 1e-4
    target_sigma_deg: float = 3.0
    mirror_probability: float = 0.5
    hide_aperture_probability: float = 0.5
    seed: int = 0
    net: CueNetConfig = field(default_factory=CueNetConfig)

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CueTrainConfig:
        unknown = sorted(set(data) - set(CueTrainConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"train: unknown key(s) {unknown}")
        values = dict(data)
        if "net" in values:
            values["net"] = CueNetConfig.from_dict(values["net"])
        return CueTrainConfig(**values)


def aperture_inputs(max_itd_s: np.ndarray, known: np.ndarray) -> np.ndarray:
    """(N, 2) network input [known, max_itd_ms] (zeros where unknown)."""
    known = known.astype(np.float32)
    return np.stack([known, known * (max_itd_s * 1e3).astype(np.float32)], axis=1)


def soft_targets(azimuth: torch.Tensor, cfg: CueNetConfig, sigma_deg: float) -> torch.Tensor:
    """(B, n_bins) circular Gaussian targets centred on ``azimuth`` (rad)."""
    centers = torch.as_tensor(cfg.bin_centers(), dtype=torch.float32)
    diff = torch.remainder(centers[None, :] - azimuth[:, None] + math.pi, 2 * math.pi) - math.pi
    w = torch.exp(-0.5 * (diff / math.radians(sigma_deg)) ** 2)
    return w / w.sum(dim=1, keepdim=True)


def folded_error_deg(pred: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Angle between front-folded azimuths, degrees."""

    def fold(a: np.ndarray) -> np.ndarray:
        return np.arcsin(np.clip(np.sin(a), -1.0, 1.0))

    return np.degrees(np.abs(fold(pred) - fold(truth)))


def predict_folded(
    net: CueDirectionNet, cues: np.ndarray, aperture: np.ndarray, batch: int = 2048
) -> np.ndarray:
    """Front-folded azimuth (rad) of every row."""
    net.eval()
    out = []
    with torch.inference_mode():
        for s in range(0, len(cues), batch):
            rows = np.concatenate([cues[s : s + batch], aperture[s : s + batch]], axis=1)
            logits = net(torch.from_numpy(rows))
            for p in softmax(logits.numpy()):
                out.append(decode_azimuth(p, net.cfg, fold=True)[0])
    return np.asarray(out)


@dataclass
class TrainState:
    net: CueDirectionNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_state: dict[str, Any] | None = None
    best_epoch: int = 0

    def final_net(self) -> CueDirectionNet:
        """The best validated weights when there were any, else the last ones."""
        if self.best_state is not None:
            self.net.load_state_dict(self.best_state)
        return self.net.eval()


def new_state(
    cfg: CueTrainConfig, cues: np.ndarray, cue_cfg: CueConfig, steps_per_epoch: int
) -> TrainState:
    torch.manual_seed(cfg.seed)
    net = CueDirectionNet(cfg.net)
    # Normalisation from the data and its mirror image, so it is itself mirror-symmetric.
    both = np.concatenate([cues, mirror_cues(cues, cue_cfg)])
    net.input_mean.copy_(torch.from_numpy(both.mean(axis=0)))
    net.input_scale.copy_(torch.from_numpy(np.maximum(both.std(axis=0), 1e-3)))
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch, pct_start=0.1
    )
    return TrainState(net, optimizer, scheduler)


def save_checkpoint(path: str | Path, state: TrainState, cfg: CueTrainConfig) -> None:
    import io

    buffer = io.BytesIO()
    torch.save(
        {
            "net": state.net.state_dict(),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "epoch": state.epoch,
            "history": state.history,
            "best_state": state.best_state,
            "best_epoch": state.best_epoch,
            "train_config": asdict(cfg),
        },
        buffer,
    )
    atomic_write_bytes(Path(path), buffer.getvalue())


def load_checkpoint(path: str | Path, state: TrainState) -> None:
    data = torch.load(Path(path), map_location="cpu", weights_only=False)
    state.net.load_state_dict(data["net"])
    state.optimizer.load_state_dict(data["optimizer"])
    state.scheduler.load_state_dict(data["scheduler"])
    state.epoch = int(data["epoch"])
    state.history = list(data["history"])
    state.best_state = data.get("best_state")
    state.best_epoch = int(data.get("best_epoch", 0))


def train_cues(
    cfg: CueTrainConfig,
    cue_cfg: CueConfig,
    train: dict[str, np.ndarray],
    val: dict[str, np.ndarray] | None = None,
    checkpoint: str | Path | None = None,
    stop_after_epochs: int | None = None,
    log: Any = sys.stderr,
) -> TrainState:
    """Train (or resume from ``checkpoint`` when it exists) and return the final state.

    stop_after_epochs: end after this many epochs of this call (the checkpoint still holds the
    whole schedule, so a later call continues it).
    """
    cues = np.ascontiguousarray(train["cues"], dtype=np.float32)
    mirrored = mirror_cues(cues, cue_cfg)
    azimuth = np.asarray(train["label"], dtype=np.float64)
    max_itd = np.asarray(train["max_itd_s"], dtype=np.float64)
    n = len(cues)
    steps = max(1, n // cfg.batch_size)
    state = new_state(cfg, cues, cue_cfg, steps)
    if checkpoint is not None and Path(checkpoint).is_file():
        load_checkpoint(checkpoint, state)
        log.write(f"resumed from {checkpoint} at epoch {state.epoch}\n")
    val_inputs = None
    if val is not None:
        val_inputs = (
            np.ascontiguousarray(val["cues"], dtype=np.float32),
            aperture_inputs(val["max_itd_s"], np.ones(len(val["cues"]), dtype=bool)),
            np.asarray(val["label"]),
        )
    done_here = 0
    while state.epoch < cfg.epochs:
        if stop_after_epochs is not None and done_here >= stop_after_epochs:
            break
        start = time.monotonic()
        rng = np.random.default_rng([cfg.seed, state.epoch])
        order = rng.permutation(n)[: steps * cfg.batch_size].reshape(steps, cfg.batch_size)
        flip = rng.uniform(size=n) < cfg.mirror_probability
        known = rng.uniform(size=n) >= cfg.hide_aperture_probability
        torch.manual_seed(cfg.seed * 1000 + state.epoch)
        state.net.train()
        total = 0.0
        for idx in order:
            x = np.where(flip[idx, None], mirrored[idx], cues[idx])
            phi = np.where(flip[idx], -azimuth[idx], azimuth[idx])
            ap = aperture_inputs(max_itd[idx], known[idx])
            logits = state.net(torch.from_numpy(np.concatenate([x, ap], axis=1)))
            target = soft_targets(torch.from_numpy(phi).float(), cfg.net, cfg.target_sigma_deg)
            loss = -(target * F.log_softmax(logits, dim=1)).sum(dim=1).mean()
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            state.scheduler.step()
            total += float(loss.detach())
        state.epoch += 1
        done_here += 1
        record = {
            "epoch": float(state.epoch),
            "loss": total / steps,
            "samples_per_s": steps * cfg.batch_size / max(time.monotonic() - start, 1e-9),
        }
        if val_inputs is not None:
            pred = predict_folded(state.net, val_inputs[0], val_inputs[1])
            err = folded_error_deg(pred, val_inputs[2])
            record["val_mae_deg"] = float(err.mean())
            record["val_median_deg"] = float(np.median(err))
        state.history.append(record)
        if "val_mae_deg" in record and (
            state.best_state is None
            or record["val_mae_deg"] < state.history[state.best_epoch - 1]["val_mae_deg"]
        ):
            state.best_epoch = state.epoch
            state.best_state = {k: v.detach().clone() for k, v in state.net.state_dict().items()}
        log.write(
            f"epoch {state.epoch}/{cfg.epochs} loss {record['loss']:.4f}"
            + (f" val MAE {record['val_mae_deg']:.2f} deg" if "val_mae_deg" in record else "")
            + f" ({record['samples_per_s']:.0f} samples/s)\n"
        )
        log.flush()
        if checkpoint is not None:
            save_checkpoint(checkpoint, state, cfg)
    return state
