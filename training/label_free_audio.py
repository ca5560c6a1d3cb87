"""Label-free training of the compact audio network from turning receivers.

A training sample is K cue vectors of one static source heard after known turns theta_i of
the receiver (``training.multiview_cache`` renders them; ``slfm train adapt`` cuts them from a
robot's recordings). No angle label enters any loss: every view is trained toward the latent
consensus of the views (``slfm_ros.core.models.consensus_losses``), with a physical side cue
(``slfm_ros.core.dsp.side_cue``) in the fit and, optionally, as a loss of its own, plus the
mask-and-sum agreement of the views. The simulator's azimuths, where a cache has them, only
monitor the run (validation error and how far the answers are shrunk toward the front).

Symmetry: a random half of each batch is mirrored (channels swapped, so azimuths and turns
change sign), and with ``symmetric_consensus`` the distributions the targets are fitted to are
the mean of the network's answer and its mirrored answer on the swapped channels, so the
targets of a window and of its mirror image are mirror images of each other.

The run is deterministic for a seed and resumes exactly from the checkpoint written after
every epoch (as ``training.cue_audio``).
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from slfm_ros.core.dsp.binaural_cues import CueConfig, mirror_cues
from slfm_ros.core.dsp.side_cue import SIDE_CUES, side_votes
from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.models.azimuth_bins import CueNetConfig, mirror_bins
from slfm_ros.core.models.consensus_losses import (
    agreement_loss,
    consensus_loss,
    consensus_targets,
    side_loss,
)
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_training.cue_audio import (
    TrainState,
    aperture_inputs,
    folded_error_deg,
    load_checkpoint,
    predict_folded,
    save_checkpoint,
)

# Which weights learn: every layer, or only the output layer (and the steering gains) over
# hidden layers kept as initialised (the frozen-encoder ablation).
TRAIN_LAYERS = ("all", "output")


def trained_parameters(net: CueDirectionNet, train_layers: str) -> list[torch.nn.Parameter]:
    """The parameters the optimiser updates (see TRAIN_LAYERS)."""
    if train_layers == "all":
        return list(net.parameters())
    hidden = {id(p) for p in net.net[:-1].parameters()}
    return [p for p in net.parameters() if id(p) not in hidden]


@dataclass(frozen=True)
class LabelFreeConfig:
    """Keys documented in ``training/configs/cue_audio/audio_label_free.yaml`` (section
    ``train``)."""

    epochs: int = 40
    batch_size: int = 64
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_fraction: float = 0.1
    target_sigma_deg: float = 4.0
    soft_targets: bool = True
    leave_one_out: bool = True
    side_cue: str = "both"
    side_weight: float = 3.0
    side_loss_weight: float = 0.1
    agreement_weight: float = 0.0
    symmetric_consensus: bool = True
    mirror_probability: float = 0.5
    hide_aperture_probability: float = 0.5
    turn_noise_deg: float = 0.0
    grid_size: int = 720
    train_layers: str = "all"
    seed: int = 0
    net: CueNetConfig = field(default_factory=CueNetConfig)

    def __post_init__(self) -> None:
        if self.side_cue not in SIDE_CUES:
            raise ConfigError(f"train.side_cue must be one of {SIDE_CUES}, got {self.side_cue!r}")
        if self.epochs < 1 or self.batch_size < 1 or self.lr <= 0:
            raise ConfigError("train: epochs, batch_size and lr must be positive")
        if self.grid_size < 8 or self.target_sigma_deg <= 0:
            raise ConfigError("train: grid_size >= 8 and target_sigma_deg > 0 needed")
        if self.train_layers not in TRAIN_LAYERS:
            raise ConfigError(
                f"train.train_layers must be one of {TRAIN_LAYERS}, got {self.train_layers!r}"
            )

    @staticmethod
    def from_dict(data: dict[str, Any]) -> LabelFreeConfig:
        unknown = sorted(set(data) - set(LabelFreeConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"train: unknown key(s) {unknown}")
        values = dict(data)
        if "net" in values:
            values["net"] = CueNetConfig.from_dict(values["net"])
        return LabelFreeConfig(**values)


@dataclass
class MultiViewData:
    """Training input: cues (N, K, dim) float32, turns (N, K) rad (view 0: 0), max_itd_s (N,)
    (NaN where the receiver is not described), valid (N, K) bool (windows with sound), and
    for monitoring only the target's azimuth in every view (N, K) rad, or None."""

    cues: np.ndarray
    turns: np.ndarray
    max_itd_s: np.ndarray
    valid: np.ndarray
    azimuth: np.ndarray | None = None

    def __post_init__(self) -> None:
        n, k = self.cues.shape[:2]
        if self.cues.ndim != 3 or self.turns.shape != (n, k) or self.valid.shape != (n, k):
            raise DatasetError(
                f"multi-view data: cues (N, K, dim), turns and valid (N, K) needed, got "
                f"{self.cues.shape}, {self.turns.shape}, {self.valid.shape}"
            )
        if self.max_itd_s.shape != (n,):
            raise DatasetError(
                f"multi-view data: max_itd_s (N,) needed, got {self.max_itd_s.shape}"
            )

    @staticmethod
    def from_cache(arrays: dict[str, np.ndarray]) -> MultiViewData:
        """From a ``training.multiview_cache`` file; monitored against the horizontal
        directions on the cones of confusion (``label``), or the azimuths of a cache that
        has no labels."""
        cues = np.ascontiguousarray(arrays["cues"], dtype=np.float32)
        truth = arrays.get("label", arrays.get("azimuth"))
        return MultiViewData(
            cues=cues,
            turns=np.asarray(arrays["turns"], dtype=np.float64),
            max_itd_s=np.asarray(arrays["max_itd_s"], dtype=np.float64),
            valid=np.ones(cues.shape[:2], dtype=bool),
            azimuth=None if truth is None else np.asarray(truth, dtype=np.float64),
        )


def new_state(
    cfg: LabelFreeConfig,
    data: MultiViewData,
    cue_cfg: CueConfig,
    steps_per_epoch: int,
    init: CueDirectionNet | None = None,
) -> TrainState:
    """Fresh network (input normalisation from the data and its mirror image) or a copy of
    ``init`` (its normalisation kept, so fine-tuning starts from exactly its answers)."""
    torch.manual_seed(cfg.seed)
    net = CueDirectionNet(cfg.net)
    if init is not None:
        if init.cfg != cfg.net:
            raise ConfigError(f"train.net {cfg.net} differs from the initial network's {init.cfg}")
        net.load_state_dict(init.state_dict())
    else:
        flat = data.cues[data.valid]
        both = np.concatenate([flat, mirror_cues(flat, cue_cfg)])
        net.input_mean.copy_(torch.from_numpy(both.mean(axis=0)))
        net.input_scale.copy_(torch.from_numpy(np.maximum(both.std(axis=0), 1e-3)))
    params = trained_parameters(net, cfg.train_layers)
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer,
        max_lr=cfg.lr,
        total_steps=cfg.epochs * steps_per_epoch,
        pct_start=cfg.warmup_fraction,
    )
    return TrainState(net, optimizer, scheduler)


def _rows(cues: np.ndarray, aperture: np.ndarray) -> torch.Tensor:
    """(B, K, dim) cues and (B, 2) apertures -> (B * K, dim + 2) network input."""
    b, k, _ = cues.shape
    ap = np.repeat(aperture[:, None, :], k, axis=1)
    return torch.from_numpy(np.concatenate([cues, ap], axis=2).reshape(b * k, -1))


def shrinkage(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """How the front-folded answers spread against the truth: the slope of answer on truth
    through the origin (1 = not shrunk), the error of the sources 60-90 deg off the front, and
    the 1st / 99th percentiles of the answers (deg)."""
    fp = np.degrees(np.arcsin(np.clip(np.sin(pred), -1, 1)))
    ft = np.degrees(np.arcsin(np.clip(np.sin(truth), -1, 1)))
    side = np.abs(ft) >= 60
    return {
        "slope": float((fp * ft).sum() / max((ft * ft).sum(), 1e-9)),
        "side_mae_deg": float(np.abs(fp - ft)[side].mean()) if side.any() else float("nan"),
        "p01_deg": float(np.percentile(fp, 1)),
        "p99_deg": float(np.percentile(fp, 99)),
    }


def validate(
    net: CueDirectionNet, data: MultiViewData, cfg: LabelFreeConfig, cue_cfg: CueConfig
) -> dict[str, float]:
    """Monitoring on data with azimuths: the folded error of every window (receiver described,
    as the supervised recipe validates), its shrinkage, and the folded error of the consensus
    targets the label-free loss would train toward."""
    if data.azimuth is None:
        return {}
    n, k, dim = data.cues.shape
    known = np.isfinite(data.max_itd_s)
    ap = aperture_inputs(np.nan_to_num(data.max_itd_s), known)
    flat_ap = np.repeat(ap, k, axis=0)
    pred = predict_folded(net, data.cues.reshape(n * k, dim), flat_ap)
    truth = data.azimuth.reshape(-1)
    err = folded_error_deg(pred, truth)
    out = {"val_mae_deg": float(err.mean()), "val_median_deg": float(np.median(err))}
    out.update({f"val_{key}": value for key, value in shrinkage(pred, truth).items()})
    with torch.inference_mode():
        rows = _rows(data.cues, ap)
        log_p = F.log_softmax(net(rows), dim=1).view(n, k, -1).double()
        side = torch.from_numpy(side_votes(data.cues, cue_cfg, cfg.side_cue))
        targets = consensus_targets(
            log_p,
            torch.from_numpy(data.turns),
            side,
            cfg.side_weight,
            cfg.leave_one_out,
            cfg.grid_size,
        )
    out["val_target_mae_deg"] = float(folded_error_deg(targets.numpy().reshape(-1), truth).mean())
    return out


def train_label_free(
    cfg: LabelFreeConfig,
    cue_cfg: CueConfig,
    train: MultiViewData,
    val: MultiViewData | None = None,
    checkpoint: str | Path | None = None,
    stop_after_epochs: int | None = None,
    init: CueDirectionNet | None = None,
    log: Any = sys.stderr,
) -> TrainState:
    """Train (or resume from ``checkpoint`` when it exists) and return the final state."""
    n, k, _ = train.cues.shape
    batch = min(cfg.batch_size, n)
    steps = max(1, n // batch)
    state = new_state(cfg, train, cue_cfg, steps, init)
    if checkpoint is not None and Path(checkpoint).is_file():
        load_checkpoint(checkpoint, state)
        log.write(f"resumed from {checkpoint} at epoch {state.epoch}\n")
    cues = train.cues
    mirrored = mirror_cues(cues, cue_cfg)
    side_all = side_votes(cues, cue_cfg, cfg.side_cue) * train.valid
    valid = train.valid
    itd_known = np.isfinite(train.max_itd_s)
    max_itd = np.nan_to_num(train.max_itd_s)
    swap = torch.from_numpy(mirror_bins(cfg.net.n_bins))
    sigma = math.radians(cfg.target_sigma_deg)
    done_here = 0
    if state.epoch == 0 and val is not None and not state.history:
        state.history.append({"epoch": 0.0, **validate(state.net, val, cfg, cue_cfg)})
    while state.epoch < cfg.epochs:
        if stop_after_epochs is not None and done_here >= stop_after_epochs:
            break
        start = time.monotonic()
        rng = np.random.default_rng([cfg.seed, state.epoch])
        order = rng.permutation(n)[: steps * batch].reshape(steps, batch)
        flip = rng.uniform(size=n) < cfg.mirror_probability
        known = (rng.uniform(size=n) >= cfg.hide_aperture_probability) & itd_known
        noise = rng.normal(0.0, math.radians(cfg.turn_noise_deg), size=(n, k))
        noise[:, 0] = 0.0
        torch.manual_seed(cfg.seed * 1000 + state.epoch)
        sums = {"loss": 0.0, "consensus": 0.0, "side": 0.0, "agreement": 0.0}
        for idx in order:
            f = flip[idx, None, None]
            x = np.where(f, mirrored[idx], cues[idx])
            x_swapped = np.where(f, cues[idx], mirrored[idx])
            sign = np.where(flip[idx], -1.0, 1.0)[:, None]
            turns = torch.from_numpy(sign * train.turns[idx] + noise[idx])
            side = torch.from_numpy(sign.astype(np.float32) * side_all[idx])
            ap = aperture_inputs(max_itd[idx], known[idx])
            rows = _rows(x, ap)
            state.net.eval()
            with torch.no_grad():
                fit = F.log_softmax(state.net(rows), dim=1)
                if cfg.symmetric_consensus:
                    other = F.log_softmax(state.net(_rows(x_swapped, ap)), dim=1)[:, swap]
                    fit = 0.5 * (fit + other)
                fit = fit.view(batch, k, -1)
                # Silent windows take no part in any fit.
                fit = fit * torch.from_numpy(valid[idx])[:, :, None]
            state.net.train()
            logits = state.net(rows).view(batch, k, -1)
            mask = torch.from_numpy(valid[idx])
            consensus, _ = consensus_loss(
                logits,
                turns,
                side,
                cfg.side_weight,
                sigma,
                cfg.leave_one_out,
                cfg.grid_size,
                consensus_log_probs=fit,
                valid=mask,
                soft=cfg.soft_targets,
            )
            loss = consensus
            side_term = side_loss(logits[mask], side[mask])
            loss = loss + cfg.side_loss_weight * side_term
            agree = torch.zeros(())
            if cfg.agreement_weight > 0:
                agree = agreement_loss(logits, turns.float(), cfg.grid_size)
                loss = loss + cfg.agreement_weight * agree
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            state.optimizer.step()
            state.scheduler.step()
            sums["loss"] += float(loss.detach())
            sums["consensus"] += float(consensus.detach())
            sums["side"] += float(side_term.detach())
            sums["agreement"] += float(agree.detach())
        state.epoch += 1
        done_here += 1
        record: dict[str, float] = {"epoch": float(state.epoch)}
        record.update({key: value / steps for key, value in sums.items()})
        record["samples_per_s"] = steps * batch / max(time.monotonic() - start, 1e-9)
        if val is not None:
            record.update(validate(state.net, val, cfg, cue_cfg))
        state.history.append(record)
        log.write(
            f"epoch {state.epoch}/{cfg.epochs} loss {record['loss']:.4f}"
            + (
                f" val MAE {record['val_mae_deg']:.2f} deg (slope {record['val_slope']:.3f}, "
                f"targets {record['val_target_mae_deg']:.2f} deg)"
                if "val_mae_deg" in record
                else ""
            )
            + f" ({record['samples_per_s']:.0f} samples/s)\n"
        )
        log.flush()
        if checkpoint is not None:
            save_checkpoint(checkpoint, state, cfg)
    return state
