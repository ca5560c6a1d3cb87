"""The one training loop of every stage.

``train(cfg, out_dir)`` builds the audio and visual networks (random or from ``cfg.init``),
adds the stage's modules, freezes what the stage does not train and runs AdamW with a linear
warm-up and cosine decay, gradient clipping, mixed precision on CUDA and
DistributedDataParallel under torchrun (WORLD_SIZE > 1; every process reads its own slice of
each global batch). Every ``checkpoint_every`` steps it writes ``checkpoint.pt`` atomically
(temporary file + os.replace) with the weights, optimiser, scheduler, grad scaler, RNG states
and early-stopping state; the data position is the step itself (see ``slfm_training.data``), so
``resume=True`` continues exactly where the checkpoint left off.

Output directory::

    config.yaml      the resolved training config
    checkpoint.pt    latest training state (resume)
    best.pt          weights of the best validation loss (when validating)
    metrics.json     train/validation history, final metrics, throughput
    tensorboard/     event files (when tensorboard is installed)
    weights.pt, card.yaml   the final model (``slfm_ros.core.models.checkpoint.load_model``)
    stage_modules.pt the stage's extra modules (pretext U-Net, probes)
"""

from __future__ import annotations

import json
import math
import os
import shlex
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import yaml
from torch import nn

from slfm_ros.core.atomic_io import atomic_write_text
from slfm_ros.core.backends.model_source import read_model_source
from slfm_ros.core.errors import ConfigError, ModelError
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.checkpoint import load_model, save_model
from slfm_ros.core.models.config import ModelConfig
from slfm_ros.core.models.visual_pose import VisualPoseNet
from slfm_training.config import TrainConfig, train_config_from_mapping
from slfm_training.data import (
    Batch,
    EvalSamples,
    SampleTransform,
    TrainSamples,
    eval_loader,
    open_source,
    train_loader,
    turn_meter_for,
)
from slfm_training.runtime import (
    DistContext,
    TrainingError,
    atomic_save,
    choose_amp,
    choose_device,
    is_oom,
    jsonable,
    oom_error,
    rng_state,
    seed_everything,
    set_rng_state,
)
from slfm_training.sign import resolve_rotation_sign, resolve_sign
from slfm_training.stages import Stage, audio_net, get_stage, visual_net
from slfm_training.stages.slfm import pair_predictions

CHECKPOINT_FILE = "checkpoint.pt"
BEST_FILE = "best.pt"
METRICS_FILE = "metrics.json"
CONFIG_FILE = "config.yaml"
STAGE_MODULES_FILE = "stage_modules.pt"
CHECKPOINT_FORMAT = 1
MONITOR = "loss"  # validation value that early stopping and keep_best minimise


# ---------------------------------------------------------------------------------------------
# Model


def warmup_cosine(max_steps: int, warmup: int, min_ratio: float) -> Callable[[int], float]:
    """LR factor of step s: linear warm-up over ``warmup`` steps, then cosine to min_ratio."""

    def factor(step: int) -> float:
        if warmup and step < warmup:
            return (step + 1) / warmup
        span = max(1, max_steps - warmup)
        progress = min(1.0, (step - warmup) / span)
        return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return factor


class StageModel(nn.Module):
    """The networks of a run plus the stage that defines its forward pass and loss."""

    def __init__(self, stage: Stage, nets: nn.ModuleDict):
        super().__init__()
        self.stage = stage
        self.nets = nets

    def forward(self, batch: Batch) -> dict[str, Any]:
        out = self.stage.forward(self.nets, batch)
        return {"loss": out.loss, "values": out.values}

    def freeze(self) -> list[nn.Parameter]:
        """Turn gradients on for the stage's trainable parts only; returns their parameters."""
        for parameter in self.nets.parameters():
            parameter.requires_grad_(False)
        params: list[nn.Parameter] = []
        for name in self.stage.trainable():
            try:
                module = self.nets.get_submodule(name)
            except AttributeError as exc:
                raise ConfigError(f"stage {self.stage.name}: no module {name!r} to train") from exc
            for parameter in module.parameters():
                if not parameter.requires_grad:
                    parameter.requires_grad_(True)
                    params.append(parameter)
        return params

    def train_mode(self) -> None:
        """Training mode for the trained parts; frozen parts keep their batch-norm statistics."""
        self.nets.eval()
        for name in self.stage.trainable():
            self.nets.get_submodule(name).train()


def build_nets(cfg: TrainConfig, model_cfg: ModelConfig, stage: Stage) -> nn.ModuleDict:
    """Audio and visual networks (from ``cfg.init`` when given) plus the stage's modules."""
    audio = AudioDirectionNet(model_cfg.audio)
    visual = VisualPoseNet(model_cfg.visual)
    if cfg.init:
        loaded = load_model(cfg.init)
        if loaded.config.audio != model_cfg.audio or loaded.config.visual != model_cfg.visual:
            raise ModelError(
                f"init model {cfg.init} has another architecture (its card: "
                f"{loaded.config.to_dict()}; this run: {model_cfg.to_dict()}); train with the "
                "model config the init model was trained with, or set init: ''"
            )
        audio.load_state_dict(loaded.audio_net.state_dict())
        visual.load_state_dict(loaded.visual_net.state_dict())
    return nn.ModuleDict({"audio": audio, "visual": visual, **stage.extra_modules()})


def _param_groups(params: list[nn.Parameter], weight_decay: float) -> list[dict[str, Any]]:
    # Biases and normalisation scales are not decayed.
    decay = [p for p in params if p.ndim >= 2]
    plain = [p for p in params if p.ndim < 2]
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": plain, "weight_decay": 0.0},
    ]


# ---------------------------------------------------------------------------------------------
# Bookkeeping


class ValueMeter:
    """Running sums and counts of logged values (per-sample tensors or scalars).

    Sums stay tensors on the values' device until ``means`` so that logging does not
    synchronise the GPU at every step.
    """

    def __init__(self) -> None:
        self.sums: dict[str, Any] = {}
        self.counts: dict[str, float] = {}

    def add(self, values: dict[str, torch.Tensor], batch_size: int) -> None:
        for key, value in values.items():
            value = value.detach().double()
            if value.ndim == 0:
                total, count = value * batch_size, float(batch_size)
            else:
                total, count = value.sum(), float(value.numel())
            self.sums[key] = self.sums.get(key, 0.0) + total
            self.counts[key] = self.counts.get(key, 0.0) + count

    def reduce(self, ctx: DistContext) -> None:
        """Sum the meters of all processes (a process may have seen no batch at all)."""
        if not ctx.active:
            return
        local = ({k: float(v) for k, v in self.sums.items()}, self.counts)
        gathered: list[Any] = [None] * ctx.world_size
        dist.all_gather_object(gathered, local)
        self.sums, self.counts = {}, {}
        for sums, counts in gathered:
            for key in sums:
                self.sums[key] = self.sums.get(key, 0.0) + sums[key]
                self.counts[key] = self.counts.get(key, 0.0) + counts[key]

    def means(self) -> dict[str, float]:
        return {k: float(self.sums[k]) / self.counts[k] for k in self.sums if self.counts[k] > 0}


@dataclass
class LoopState:
    """Everything about the loop's progress that a checkpoint restores."""

    step: int = 0
    best_value: float | None = None
    best_step: int = -1
    bad_evals: int = 0
    stopped_early: bool = False
    train_seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "best_value": self.best_value,
            "best_step": self.best_step,
            "bad_evals": self.bad_evals,
            "stopped_early": self.stopped_early,
            "train_seconds": self.train_seconds,
            "history": self.history,
        }


@dataclass
class TrainResult:
    """What a call of ``train`` did. finished: False when it stopped at ``stop_after``;
    main: whether this is the process that wrote the files (rank 0); only it has metrics."""

    out_dir: Path
    step: int
    finished: bool
    metrics: dict[str, Any]
    main: bool = True


def _tensorboard(directory: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        warnings.warn(
            "tensorboard is not installed: no TensorBoard logs (pip install tensorboard); "
            "metrics.json is still written",
            stacklevel=2,
        )
        return None
    return SummaryWriter(log_dir=str(directory))


def _command_line() -> str:
    return " ".join(shlex.quote(a) for a in [Path(sys.argv[0]).name, *sys.argv[1:]])


# ---------------------------------------------------------------------------------------------
# The loop


class Trainer:
    """One training run in ``out_dir`` (see ``train``)."""

    def __init__(self, cfg: TrainConfig, out_dir: Path, ctx: DistContext, command: str):
        self.cfg = cfg
        self.out = out_dir
        self.ctx = ctx
        self.command = command
        if cfg.run.threads:
            torch.set_num_threads(cfg.run.threads)
        self.device = choose_device(cfg.run.device, ctx)
        self.amp_dtype = choose_amp(cfg.run.amp, self.device)
        seed_everything(cfg.seed, cfg.run.deterministic)
        self.model_cfg = cfg.model_config()
        self.stage = get_stage(cfg, self.model_cfg)
        self.model = StageModel(self.stage, build_nets(cfg, self.model_cfg, self.stage))
        self.params = self.model.freeze()
        self.model.to(self.device)
        self.ddp: nn.Module = self.model
        if ctx.active:
            self.ddp = nn.parallel.DistributedDataParallel(
                self.model,
                device_ids=[ctx.local_rank] if self.device.type == "cuda" else None,
            )
        optim = cfg.optim
        self.optimizer = torch.optim.AdamW(
            _param_groups(self.params, optim.weight_decay), lr=optim.lr, betas=optim.betas
        )
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, warmup_cosine(optim.max_steps, optim.warmup_steps, optim.min_lr_ratio)
        )
        self.scaler = torch.amp.GradScaler(
            self.device.type, enabled=self.amp_dtype == torch.float16
        )
        self.state = LoopState()
        self.train_source = open_source(cfg.data, "train")
        self.val_source = (
            open_source(cfg.data, "val")
            if cfg.data.val_samples and (cfg.data.source == "on_the_fly" or cfg.data.val_dir)
            else None
        )
        self._val_batches: list[Batch] | None = None
        self.writer: Any = None

    # -- checkpoints -------------------------------------------------------------------------

    def checkpoint(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
            "stage": self.cfg.stage,
            "config": self.cfg.to_dict(),
            "model_config": self.model_cfg.to_dict(),
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "rng": rng_state(),
            "loop": self.state.as_dict(),
        }

    def save_checkpoint(self) -> None:
        if self.ctx.is_main:
            atomic_save(self.checkpoint(), self.out / CHECKPOINT_FILE)
        self.ctx.barrier()

    def load_checkpoint(self, path: Path) -> None:
        try:
            ckpt = torch.load(path, map_location=self.device, weights_only=True)
        except Exception as exc:  # torch raises several types for damaged files
            raise TrainingError(f"cannot read checkpoint {path}: {exc}") from exc
        if ckpt.get("format") != CHECKPOINT_FORMAT or ckpt.get("stage") != self.cfg.stage:
            raise ModelError(
                f"{path} is a {ckpt.get('stage')!r} checkpoint (format {ckpt.get('format')}), "
                f"not one of stage {self.cfg.stage!r}; resume with the config it was written with"
            )
        if ckpt.get("model_config") != self.model_cfg.to_dict():
            raise ModelError(
                f"{path} was written by another architecture ({ckpt.get('model_config')}); this "
                f"run's model is {self.model_cfg.to_dict()}. Resume with the original model "
                "config or start a new run in another --out"
            )
        changed = _changed_keys(ckpt["config"], self.cfg.to_dict())
        if changed and self.ctx.is_main:
            warnings.warn(
                f"resuming with changed settings {changed}; the run will differ from one "
                "that was never interrupted",
                stacklevel=2,
            )
        try:
            self.model.load_state_dict(ckpt["model"])
        except RuntimeError as exc:
            raise ModelError(f"{path}: weights do not fit this model: {exc}") from exc
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        loop = ckpt["loop"]
        self.state = LoopState(**loop)
        set_rng_state(ckpt["rng"])

    # -- data --------------------------------------------------------------------------------

    def _batches(self) -> Iterator[Batch]:
        cfg = self.cfg
        dataset = TrainSamples(
            self.train_source,
            SampleTransform(
                self.model_cfg,
                cfg.data,
                train=True,
                turn_meter=self.stage.turn_meter(self.train_source.config),
            ),
            cfg.data,
            cfg.seed,
        )
        loader = train_loader(
            dataset,
            self.state.step,
            cfg.optim.batch_size,
            cfg.data.workers,
            self.ctx.rank,
            self.ctx.world_size,
            pin_memory=self.device.type == "cuda",
        )
        for batch in loader:
            yield batch.to(self.device, non_blocking=True)

    def val_batches(self, shard: bool = True) -> list[Batch]:
        """The validation set (this process's share when ``shard``), rendered once and kept on
        the CPU."""
        if self.val_source is None:
            return []
        if self._val_batches is None:
            size = self.cfg.run.val_batch_size or self.cfg.optim.batch_size
            samples = EvalSamples(
                self.val_source,
                SampleTransform(
                    self.model_cfg,
                    self.cfg.data,
                    train=False,
                    turn_meter=self.stage.turn_meter(self.val_source.config),
                ),
                self.cfg.data.val_samples,
            )
            self._val_batches = list(eval_loader(samples, size, self.cfg.data.workers))
        if not shard:
            return self._val_batches
        return self._val_batches[self.ctx.rank :: self.ctx.world_size]

    # -- steps -------------------------------------------------------------------------------

    def _autocast(self) -> torch.autocast:
        return torch.autocast(
            self.device.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None
        )

    def train_step(self, batch: Batch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        self.model.train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            out = self.ddp(batch)
        loss = out["loss"]
        self.scaler.scale(loss).backward()
        values = dict(out["values"])
        if self.cfg.optim.grad_clip > 0:
            self.scaler.unscale_(self.optimizer)
            norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.optim.grad_clip)
            values["grad_norm"] = norm.detach()
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return loss.detach(), values

    @torch.no_grad()
    def evaluate(self, reduce: bool = True) -> dict[str, float]:
        """Mean validation values (``loss`` included) over the validation set."""
        meter = ValueMeter()
        self.model.eval()
        for cpu_batch in self.val_batches(shard=reduce):
            batch = cpu_batch.to(self.device)
            with self._autocast():
                out = self.model(batch)
            meter.add({"loss": out["loss"], **out["values"]}, batch.size)
        if reduce:
            meter.reduce(self.ctx)
        return meter.means()

    def _log(self, prefix: str, values: dict[str, float], step: int) -> None:
        if self.writer is None:
            return
        for key, value in values.items():
            self.writer.add_scalar(f"{prefix}/{key}", value, step)

    def _after_eval(self, values: dict[str, float]) -> bool:
        """Record an evaluation; True when early stopping says stop."""
        state = self.state
        state.history.append({"step": state.step, **values})
        self._log("val", values, state.step)
        if self.ctx.is_main:
            self._write_metrics(self._metrics({}))
        current = values.get(MONITOR)
        if current is None or not math.isfinite(current):
            return False
        run = self.cfg.run
        if state.best_value is None or current < state.best_value - run.early_stopping_min_delta:
            state.best_value = current
            state.best_step = state.step
            state.bad_evals = 0
            if run.keep_best and self.ctx.is_main:
                atomic_save(self.model.state_dict(), self.out / BEST_FILE)
        else:
            state.bad_evals += 1
        patience = run.early_stopping_patience
        return patience > 0 and state.bad_evals >= patience

    # -- run ---------------------------------------------------------------------------------

    def run(self, resume: bool, stop_after: int | None) -> TrainResult:
        cfg = self.cfg
        ckpt_path = self.out / CHECKPOINT_FILE
        if resume:
            if not ckpt_path.is_file():
                raise TrainingError(
                    f"nothing to resume: {ckpt_path} does not exist; start without --resume"
                )
            self.load_checkpoint(ckpt_path)
        elif ckpt_path.exists() or (self.out / "card.yaml").exists():
            raise TrainingError(
                f"{self.out} already holds a training run; pass --resume to continue it or "
                "choose another --out"
            )
        if self.ctx.is_main:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(
                self.out / CONFIG_FILE, yaml.safe_dump(cfg.to_dict(), sort_keys=False)
            )
            if cfg.run.tensorboard:
                self.writer = _tensorboard(self.out / "tensorboard")
        try:
            start = self.state.step
            self._loop(stop_after)
            if self.state.step > start:
                self.save_checkpoint()
            if self.state.step < cfg.optim.max_steps and not self.state.stopped_early:
                return TrainResult(
                    self.out, self.state.step, False, self._metrics({}), self.ctx.is_main
                )
            return self._finish()
        finally:
            if self.writer is not None:
                self.writer.close()

    def _loop(self, stop_after: int | None) -> None:
        """Train up to max_steps, ``stop_after`` or an early stop."""
        cfg = self.cfg
        run = cfg.run
        state = self.state
        end = cfg.optim.max_steps
        if stop_after is not None:
            end = min(end, stop_after)
        if state.step >= end or state.stopped_early:
            return
        from tqdm import tqdm  # type: ignore[import-untyped]

        bar = tqdm(
            total=cfg.optim.max_steps,
            initial=state.step,
            desc=f"train {cfg.stage}",
            unit="step",
            disable=not (self.ctx.is_main and run.progress),
            dynamic_ncols=True,
        )
        meter = ValueMeter()
        batches = self._batches()
        try:
            tick = time.perf_counter()
            while state.step < end:
                batch = next(batches)
                self.model.stage.step = state.step
                try:
                    loss, values = self.train_step(batch)
                except Exception as exc:
                    if is_oom(exc):
                        raise oom_error(cfg.optim.batch_size, self.device) from exc
                    raise
                state.step += 1
                meter.add({"loss": loss, **values}, batch.size)
                bar.update(1)
                if state.step % run.log_every == 0 or state.step == end:
                    means = meter.means()
                    if not math.isfinite(means["loss"]):
                        raise TrainingError(
                            f"the training loss became {means['loss']} by step {state.step}; "
                            "lower optim.lr or keep optim.grad_clip > 0"
                        )
                    means["lr"] = float(self.scheduler.get_last_lr()[0])
                    self._log("train", means, state.step)
                    bar.set_postfix(
                        {k: f"{v:.4g}" for k, v in means.items() if k != "grad_norm"},
                        refresh=False,
                    )
                    meter = ValueMeter()
                state.train_seconds += time.perf_counter() - tick
                stop = False
                if run.eval_every and state.step % run.eval_every == 0:
                    values_val = self._evaluate_guarded()
                    stop = self._after_eval(values_val)
                    if values_val and self.ctx.is_main:
                        bar.write(
                            f"step {state.step}: "
                            + ", ".join(f"val {k} {v:.4g}" for k, v in values_val.items())
                        )
                if stop:
                    state.stopped_early = True
                    if self.ctx.is_main:
                        bar.write(
                            f"early stopping at step {state.step}: no better validation "
                            f"{MONITOR} for {state.bad_evals} evaluations"
                        )
                if stop:
                    break
                if run.checkpoint_every and state.step % run.checkpoint_every == 0:
                    self.save_checkpoint()
                tick = time.perf_counter()
        finally:
            bar.close()

    def _evaluate_guarded(self, reduce: bool = True) -> dict[str, float]:
        try:
            return self.evaluate(reduce)
        except Exception as exc:
            if is_oom(exc):
                raise oom_error(
                    self.cfg.run.val_batch_size or self.cfg.optim.batch_size, self.device
                ) from exc
            raise

    def _sign_batches(self) -> list[Batch]:
        """Un-augmented batches of the first training samples (enough for sign_samples clips),
        with measured turns when the rotation sign is checked against them."""
        opts = self.cfg.slfm
        meter = (
            turn_meter_for(self.cfg.egomotion, self.train_source.config)
            if opts.measured_turn_sign
            else None
        )
        samples = EvalSamples(
            self.train_source,
            SampleTransform(self.model_cfg, self.cfg.data, train=False, turn_meter=meter),
            math.ceil(opts.sign_samples / self.cfg.data.num_views),
        )
        return list(eval_loader(samples, self.cfg.optim.batch_size, self.cfg.data.workers))

    def _resolve_signs(self) -> dict[str, Any]:
        """The global sign of both heads from the IID cue, then (measured_turn_sign) the
        rotation head's own sign from measured turns; the reports for the metrics."""
        batches = self._sign_batches()
        audio, visual = audio_net(self.model.nets), visual_net(self.model.nets)
        clips = torch.cat([batch.audio.flatten(0, 1) for batch in batches])
        report = resolve_sign(
            audio, visual, clips[: self.cfg.slfm.sign_samples], self.model_cfg.audio.stft_config()
        )
        out: dict[str, Any] = {"sign": report.as_dict()}
        if self.cfg.slfm.measured_turn_sign:
            was_training = visual.training
            visual.eval()
            with torch.no_grad():
                theta = torch.cat(
                    [pair_predictions(visual, b.images.to(self.device), False)[0] for b in batches]
                )
            visual.train(was_training)
            measured = torch.cat([b.measured_turns[:, 1:].flatten() for b in batches])
            rotation = resolve_rotation_sign(visual, theta.cpu(), measured)
            out["rotation_sign"] = rotation.as_dict()
        return out

    def _finish(self) -> TrainResult:
        cfg = self.cfg
        state = self.state
        extra: dict[str, Any] = {}
        # Every process holds the same weights; the main one finishes alone.
        if self.ctx.is_main:
            best = self.out / BEST_FILE
            if cfg.run.keep_best and state.best_step >= 0 and best.is_file():
                self.model.load_state_dict(
                    torch.load(best, map_location=self.device, weights_only=True)
                )
                extra["weights_from_step"] = state.best_step
            else:
                extra["weights_from_step"] = state.step
            if cfg.stage == "slfm" and cfg.slfm.resolve_sign:
                extra.update(self._resolve_signs())
            final = self._evaluate_guarded(reduce=False) if self.val_source is not None else {}
            self._log("final", final, state.step)
            metrics = self._metrics(final, extra)
            self._save_model(metrics)
            self._write_metrics(metrics)
        self.ctx.barrier()
        metrics = json.loads((self.out / METRICS_FILE).read_text()) if self.ctx.is_main else {}
        return TrainResult(self.out, state.step, True, metrics, self.ctx.is_main)

    def _write_metrics(self, metrics: dict[str, Any]) -> None:
        text = json.dumps(jsonable(metrics), indent=1) + "\n"
        atomic_write_text(self.out / METRICS_FILE, text)

    def _metrics(self, final: dict[str, float], extra: dict[str, Any] | None = None) -> dict:
        state = self.state
        samples = state.step * self.cfg.optim.batch_size * self.ctx.world_size
        return {
            "stage": self.cfg.stage,
            "steps": state.step,
            "max_steps": self.cfg.optim.max_steps,
            "stopped_early": state.stopped_early,
            "samples_seen": samples,
            "train_seconds": state.train_seconds,
            "samples_per_s": samples / state.train_seconds if state.train_seconds else None,
            "processes": self.ctx.world_size,
            "device": str(self.device),
            "amp": str(self.amp_dtype).replace("torch.", "") if self.amp_dtype else "off",
            "best": {
                "metric": f"val {MONITOR}",
                "value": state.best_value,
                "step": state.best_step,
            },
            "val_history": state.history,
            "final": final,
            **(extra or {}),
        }

    def _training_data(self) -> dict[str, Any]:
        data = self.cfg.data
        info: dict[str, Any] = {"source": data.source}
        if data.source == "on_the_fly":
            info.update(split="train", seed=data.seed, train_samples=data.train_samples)
            info["scene"] = data.scene_config().to_dict()
        else:
            info.update(train_dir=data.train_dir, val_dir=data.val_dir)
            manifest = getattr(getattr(self.train_source, "source", None), "manifest", {})
            info["manifest"] = {
                k: manifest.get(k) for k in ("split", "seed", "num_samples", "config", "counts")
            }
        return info

    def _untrained_networks(self) -> list[str]:
        """Networks whose direction or rotation head no stage has trained so far (this one or
        those of the init chain): their answers are noise, and inference refuses them."""
        if self.cfg.init:
            card = read_model_source(self.cfg.init).card
            untrained = set(card.get("untrained_networks") or [])
        else:
            untrained = {"audio", "visual"}
        trained_now = {p.split(".")[0] for p in self.stage.trainable() if p.endswith(".head")}
        return sorted(untrained - trained_now)

    def _save_model(self, metrics: dict[str, Any]) -> None:
        final = metrics.get("final", {})
        card_metrics: dict[str, Any] = {k: float(v) for k, v in final.items()}
        card_metrics["samples_per_s"] = metrics.get("samples_per_s")
        if "sign" in metrics:
            card_metrics["sign_agreement"] = metrics["sign"]["agreement"]
            card_metrics["sign_flipped"] = metrics["sign"]["flipped"]
        if "rotation_sign" in metrics:
            card_metrics["rotation_sign_agreement"] = metrics["rotation_sign"]["agreement"]
            card_metrics["rotation_sign_flipped"] = metrics["rotation_sign"]["flipped"]
            card_metrics["rotation_sign_decided"] = metrics["rotation_sign"]["decided"]
        save_model(
            self.out,
            self.model_cfg,
            self.model.nets["audio"],
            self.model.nets["visual"],
            card_extra={
                "stage": self.cfg.stage,
                "training_config": self.cfg.to_dict(),
                "training_data": self._training_data(),
                "seed": self.cfg.seed,
                "metrics": jsonable(card_metrics),
                "steps": self.state.step,
                "command": self.command,
                "untrained_networks": self._untrained_networks(),
            },
            overwrite=True,
        )
        extras = {
            name: module.state_dict()
            for name, module in self.model.nets.items()
            if name not in ("audio", "visual")
        }
        if extras:
            atomic_save(extras, self.out / STAGE_MODULES_FILE)


def _changed_keys(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [c for k in keys for c in _changed_keys(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def train(
    cfg: TrainConfig,
    out_dir: str | os.PathLike[str],
    resume: bool = False,
    stop_after: int | None = None,
    command: str | None = None,
) -> TrainResult:
    """Run (or resume) a training run of ``cfg`` in ``out_dir``.

    stop_after: stop once this step is reached, write a checkpoint and return (finished False);
    ``resume=True`` continues it. command: recorded in the model card (default: sys.argv).
    """
    ctx = DistContext.from_env(cfg.run.device)
    try:
        trainer = Trainer(cfg, Path(out_dir), ctx, command or _command_line())
        return trainer.run(resume, stop_after)
    finally:
        ctx.shutdown()


def load_run_config(out_dir: str | os.PathLike[str]) -> TrainConfig:
    """The config a run in ``out_dir`` was started with."""
    path = Path(out_dir) / CONFIG_FILE
    if not path.is_file():
        raise ConfigError(f"{path} does not exist: {out_dir} is not a training run folder")
    return train_config_from_mapping(yaml.safe_load(path.read_text(encoding="utf-8")))
