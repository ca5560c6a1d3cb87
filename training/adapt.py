"""``slfm train adapt``: fine-tune the compact audio network on a robot's own recordings.

No labels: the robot turns while a source plays, and the label-free losses of
``training.label_free_audio`` teach the network its own ears from the recording. Each bag is
read for its sensor topics only (``slfm_ros.bags.sensor_streams``: audio + AudioInfo and the
rotation from /odom, an IMU or the camera), never a /ground_truth/* topic. The audio is cut
into windows of the model's length every ``hop_s``; a window takes part when it is louder than
the recording's noise floor by ``min_snr_db`` and its yaw is known. Multi-view samples are
drawn from the windows of one bag (one static source) within ``max_span_s`` of each other, so
their turns are the differences of the robot's yaw.

Unless the receiver's largest delay is given (``max_itd_ms``), adapt first calibrates the
receiver: it fits an interaural model (a free-field pair or a sphere, and its size) to the
windows' GCC-PHAT peaks and the robot's turns (``slfm_ros.core.geometry.receiver_calibration``).
The network then learns with that receiver as its input, and the card keeps it, so the node
runs the adapted model and its lobe refinement with the robot's own ears (``receiver:
calibrated``). Where the fit fails (too little turning, too much reverberation) adapt says why
and learns without the receiver, as before.

A recording it cannot learn from is refused with what is wrong: audio without AudioInfo, no
sound above the noise, or too little turning (it says how many degrees it needs and found).

Output folder (never an existing one)::

    weights.pt + card.yaml   for a compact model folder given as --model: the adapted audio
                             network and the model's visual network, unchanged; or
    audio_net.pt             for an audio run folder (``slfm train audio``) given as --model
    adaptation.yaml          what it learned from: the bags, the topics and rotation source of
                             each, the model it started from, the command, the calibrated
                             receiver, the label-free loss before and after (also the card's
                             ``adaptation`` entry)
    adapt_metrics.json       per-epoch losses and the per-bag summaries
"""

from __future__ import annotations

import json
import math
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from slfm_ros.core.atomic_io import atomic_write_text
from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues
from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.cue_audio import CALIBRATED_WIDENING
from slfm_ros.core.geometry.receiver_calibration import (
    CalibratedReceiver,
    CalibrationError,
    fit_receiver,
    peak_lags,
)
from slfm_ros.core.models.cue_direction import CueDirectionNet
from slfm_training.audio_net_io import load_audio_net, save_like
from slfm_training.label_free_audio import LabelFreeConfig, MultiViewData, train_label_free

_NS_PER_S = 1_000_000_000


@dataclass(frozen=True)
class AdaptConfig:
    """Keys documented in ``training/configs/cue_audio/audio_adapt.yaml``."""

    rotation: str = "auto"
    camera_rate_hz: float = 5.0
    hop_s: float = 0.25
    min_snr_db: float = 6.0
    min_level_dbfs: float = -70.0
    min_sound_windows: int = 8
    min_turn_deg: float = 20.0
    num_views: int = 4
    min_view_turn_deg: float = 5.0
    max_span_s: float = 20.0
    samples_per_window: int = 4
    max_itd_ms: float | None = None
    calibrate_receiver: bool = True
    calibration_span_s: float = 10.0
    calibration_inlier_ms: float = 0.05
    seed: int = 0
    train: dict[str, Any] = field(
        default_factory=lambda: {
            "epochs": 12,
            "batch_size": 64,
            "lr": 5e-4,
            "warmup_fraction": 0.1,
            "hide_aperture_probability": 0.0,
        }
    )

    def __post_init__(self) -> None:
        if self.num_views < 2 or self.samples_per_window < 1 or self.hop_s <= 0:
            raise ConfigError("adapt: num_views >= 2, samples_per_window >= 1, hop_s > 0 needed")
        if self.max_itd_ms is not None and not 0 < self.max_itd_ms < 10:
            raise ConfigError(f"adapt.max_itd_ms must be in (0, 10) ms, got {self.max_itd_ms}")
        if self.calibration_span_s <= 0 or self.calibration_inlier_ms <= 0:
            raise ConfigError("adapt: calibration_span_s and calibration_inlier_ms must be > 0")

    @staticmethod
    def from_dict(data: dict[str, Any]) -> AdaptConfig:
        unknown = sorted(set(data) - set(AdaptConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"adapt: unknown key(s) {unknown}")
        return AdaptConfig(**data)


def load_adapt_config(
    path: str | Path | None, overrides: dict[str, Any] | None = None
) -> AdaptConfig:
    """The config of ``path`` (None: the defaults) with dotted ``overrides`` applied."""
    from slfm_ros.core.config_io import load_yaml_mapping
    from slfm_training.audio_run import set_dotted

    data = dict(load_yaml_mapping(path)) if path is not None else {}
    return AdaptConfig.from_dict(set_dotted(data, overrides))


@dataclass
class Recording:
    """The usable windows of one bag: cues (W, dim), yaw (W,) rad, segment (W,), window
    centre times (W,) s from the start, and what was read."""

    bag: str
    cues: np.ndarray
    yaw: np.ndarray
    segment: np.ndarray
    times_s: np.ndarray
    summary: dict[str, Any]


def _say(message: str) -> None:
    sys.stderr.write(message + "\n")
    sys.stderr.flush()


def _frame_levels_db(x: np.ndarray, frame: int) -> np.ndarray:
    n = x.shape[0] // frame
    power = (x[: n * frame].astype(np.float64) ** 2).reshape(n, frame * x.shape[1]).mean(axis=1)
    return 10.0 * np.log10(np.maximum(power, 1e-20))


def read_recording(bag: str | Path, cue_cfg: CueConfig, cfg: AdaptConfig) -> Recording:
    """Cut one bag into windows with sound and a known yaw; InputFormatError when it cannot be
    learned from (see the module doc)."""
    from slfm_ros.bags.reader import open_bag
    from slfm_ros.bags.sensor_streams import plan_sensor_topics, read_audio, read_yaw

    with open_bag(bag) as reader:
        topics = plan_sensor_topics(reader, cfg.rotation)
        _say(
            f"{bag}: audio {topics.audio}, rotation from {topics.rotation} {topics.rotation_topic}"
        )
        audio = read_audio(reader, topics)
        yaw_series = read_yaw(reader, topics, cfg.camera_rate_hz, _say)
    x = resample(audio.samples, audio.sample_rate, cue_cfg.sample_rate)
    # Which resampled samples came from delivered audio (not from a gap).
    source_index = np.arange(x.shape[0]) * audio.sample_rate // cue_cfg.sample_rate
    covered = audio.covered[source_index.clip(0, audio.covered.size - 1)]
    win = cue_cfg.window_samples
    hop = max(1, int(round(cfg.hop_s * cue_cfg.sample_rate)))
    starts = np.arange(0, max(0, x.shape[0] - win) + 1, hop)
    if starts.size == 0 or x.shape[0] < win:
        raise InputFormatError(
            f"{bag}: {x.shape[0] / cue_cfg.sample_rate:.2f} s of audio is shorter than one "
            f"model window ({cue_cfg.window_seconds:.2f} s)"
        )
    frame = cue_cfg.n_fft
    floor_db = float(np.percentile(_frame_levels_db(x, frame), 5))
    levels = np.array([_frame_levels_db(x[s : s + win], win)[0] for s in starts])
    complete = np.array([covered[s : s + win].all() for s in starts])
    loud = (levels >= floor_db + cfg.min_snr_db) & (levels >= cfg.min_level_dbfs) & complete
    centres_ns = audio.start_ns + ((starts + win / 2) * _NS_PER_S / cue_cfg.sample_rate).astype(
        np.int64
    )
    yaw, segment = yaw_series.at(centres_ns)
    known = np.isfinite(yaw)
    summary: dict[str, Any] = {
        "bag": str(bag),
        "topics": topics.names,
        "rotation_source": yaw_series.source,
        "sample_rate_hz": audio.sample_rate,
        "seconds": round(x.shape[0] / cue_cfg.sample_rate, 2),
        "windows": int(starts.size),
        "windows_with_sound": int(loud.sum()),
        "noise_floor_dbfs": round(floor_db, 1),
        "rotation_notes": yaw_series.notes,
    }
    if loud.sum() < cfg.min_sound_windows:
        raise InputFormatError(
            f"{bag}: no sound above the noise: {int(loud.sum())} of {starts.size} windows are "
            f"louder than the noise floor ({floor_db:.1f} dBFS) by {cfg.min_snr_db:g} dB; adapt "
            f"needs at least {cfg.min_sound_windows} (record while the source plays)"
        )
    use = loud & known
    turned = 0.0
    for seg in np.unique(segment[use]):
        m = use & (segment == seg)
        turned = max(turned, float(np.degrees(yaw[m].max() - yaw[m].min())))
    summary["turn_deg"] = round(turned, 1)
    if turned < cfg.min_turn_deg:
        raise InputFormatError(
            f"{bag}: no turn: the robot turned by {turned:.1f} deg while the sound played "
            f"(yaw from {yaw_series.source}); adapt needs at least {cfg.min_turn_deg:g} deg: "
            "turn the robot while the source plays"
        )
    chosen = np.flatnonzero(use)
    cues = np.stack([binaural_cues(x[starts[i] : starts[i] + win], cue_cfg) for i in chosen])
    summary["windows_used"] = int(chosen.size)
    times = (starts[chosen] + win / 2) / cue_cfg.sample_rate
    return Recording(str(bag), cues, yaw[chosen], segment[chosen], times, summary)


def calibrate_receiver(
    recordings: list[Recording], cue_cfg: CueConfig, cfg: AdaptConfig
) -> CalibratedReceiver:
    """The receiver's interaural model fitted to the recordings' GCC-PHAT peaks and turns
    (``slfm_ros.core.geometry.receiver_calibration``); CalibrationError when they do not
    determine it. Each bag, yaw segment and ``calibration_span_s`` of time is one stretch
    with its own source direction."""
    lags, yaws, stretches = [], [], []
    for b, rec in enumerate(recordings):
        lag, _ = peak_lags(rec.cues[:, : cue_cfg.n_lags], cue_cfg.lag_seconds())
        chunk = np.floor(rec.times_s / cfg.calibration_span_s).astype(np.int64)
        lags.append(lag)
        yaws.append(rec.yaw)
        stretches.append([f"{b}/{s}/{c}" for s, c in zip(rec.segment, chunk, strict=True)])
    return fit_receiver(
        np.concatenate(lags),
        np.concatenate(yaws),
        np.concatenate(stretches),
        max_lag_s=cue_cfg.max_lag_s,
        inlier_ms=cfg.calibration_inlier_ms,
        min_turn_deg=cfg.min_turn_deg,
    )


def multiview_samples(
    recordings: list[Recording], cfg: AdaptConfig, max_itd_s: float | None
) -> MultiViewData:
    """Multi-view samples drawn from each recording's windows (see the module doc)."""
    rng = np.random.default_rng([cfg.seed, 0xADA])
    k = cfg.num_views
    cues, turns = [], []
    min_turn = math.radians(cfg.min_view_turn_deg)
    for rec in recordings:
        for a in range(rec.cues.shape[0]):
            near = (rec.segment == rec.segment[a]) & (
                np.abs(rec.times_s - rec.times_s[a]) <= cfg.max_span_s
            )
            near &= np.abs(rec.yaw - rec.yaw[a]) >= min_turn
            pool = np.flatnonzero(near)
            if pool.size < k - 1:
                continue
            for _ in range(cfg.samples_per_window):
                others = rng.choice(pool, k - 1, replace=False)
                views = np.concatenate([[a], others])
                cues.append(rec.cues[views])
                turns.append(rec.yaw[views] - rec.yaw[a])
    if not cues:
        raise InputFormatError(
            "no multi-view samples: no window has "
            f"{k - 1} others within {cfg.max_span_s:g} s that were heard at least "
            f"{cfg.min_view_turn_deg:g} deg away; turn the robot further while the source plays"
        )
    n = len(cues)
    itd = np.full(n, np.nan if max_itd_s is None else max_itd_s)
    return MultiViewData(
        cues=np.stack(cues).astype(np.float32),
        turns=np.stack(turns).astype(np.float64),
        max_itd_s=itd,
        valid=np.ones((n, k), dtype=bool),
    )


def label_free_loss(
    net: CueDirectionNet, data: MultiViewData, cfg: LabelFreeConfig, cue_cfg: CueConfig
) -> float:
    """Mean label-free loss (consensus + side terms, as trained) of ``net`` on ``data``,
    without dropout or mirroring."""
    from slfm_ros.core.dsp.side_cue import side_votes
    from slfm_ros.core.models.consensus_losses import consensus_loss, side_loss
    from slfm_training.cue_audio import aperture_inputs
    from slfm_training.label_free_audio import _rows

    net.eval()
    known = np.isfinite(data.max_itd_s)
    ap = aperture_inputs(np.nan_to_num(data.max_itd_s), known)
    total, count = 0.0, 0
    with torch.no_grad():
        for s in range(0, data.cues.shape[0], 256):
            x = data.cues[s : s + 256]
            logits = net(_rows(x, ap[s : s + 256])).view(x.shape[0], x.shape[1], -1)
            side = torch.from_numpy(side_votes(x, cue_cfg, cfg.side_cue))
            turns = torch.from_numpy(data.turns[s : s + 256])
            loss, _ = consensus_loss(
                logits,
                turns,
                side,
                cfg.side_weight,
                math.radians(cfg.target_sigma_deg),
                cfg.leave_one_out,
                cfg.grid_size,
            )
            loss = loss + cfg.side_loss_weight * side_loss(logits, side)
            total += float(loss) * x.shape[0]
            count += x.shape[0]
    return total / max(count, 1)


def run_adapt(
    bags: list[str],
    model: str | Path,
    out: str | Path,
    cfg: AdaptConfig,
    networks: str = "audio",
    command: str = "",
) -> dict[str, Any]:
    """Fine-tune ``model``'s audio network on ``bags`` into the new folder ``out``."""
    if networks != "audio":
        raise ConfigError(f"adapt --networks: only 'audio' can be adapted, got {networks!r}")
    out = Path(out)
    if out.exists():
        raise ConfigError(
            f"{out} already exists: adapt writes a new model folder and never overwrites one; "
            "choose another --out"
        )
    if not out.parent.is_dir():
        raise ConfigError(f"the folder {out.parent} of --out does not exist")
    if not bags:
        raise ConfigError("adapt needs at least one bag (--bags BAG [BAG ...])")
    start = load_audio_net(model)
    recordings = [read_recording(bag, start.cues, cfg) for bag in bags]
    max_itd_s = None if cfg.max_itd_ms is None else cfg.max_itd_ms * 1e-3
    calibrated: CalibratedReceiver | None = None
    calibration_note = "not asked for" if cfg.max_itd_ms is None else "max_itd_ms was given"
    if max_itd_s is None and cfg.calibrate_receiver:
        try:
            calibrated = calibrate_receiver(recordings, start.cues, cfg)
        except CalibrationError as exc:
            calibration_note = str(exc)
            _say(f"{exc}; adapting without the receiver's size")
        else:
            calibration_note = "fitted"
            max_itd_s = calibrated.max_itd_s
            fit = calibrated.to_dict()
            _say(
                f"calibrated receiver: {fit['receiver']} {fit['size_m']} m (largest delay "
                f"{fit['max_itd_ms']} ms) from {fit['windows']} windows in {fit['stretches']} "
                f"stretches, {fit['inlier_fraction']:.0%} on the curve (rms "
                f"{fit['rms_residual_ms'] * 1e3:.0f} us); next best "
                f"{fit['runner_up']['receiver']} {fit['runner_up']['size_m']} m, cost "
                f"x{fit['runner_up']['cost_ratio']}"
            )
    data = multiview_samples(recordings, cfg, max_itd_s)
    if "net" in cfg.train:
        raise ConfigError("adapt.train.net: the network is the model's; it cannot be changed")
    lf = replace(LabelFreeConfig.from_dict({**cfg.train, "seed": cfg.seed}), net=start.net.cfg)
    _say(
        f"adapting on {data.cues.shape[0]} samples of {data.cues.shape[1]} views from "
        f"{sum(r.cues.shape[0] for r in recordings)} windows of {len(bags)} bag(s)"
    )
    before = label_free_loss(start.net, data, lf, start.cues)
    state = train_label_free(lf, start.cues, data, None, None, init=start.net)
    after = label_free_loss(state.net, data, lf, start.cues)
    _say(f"label-free loss on the recordings: {before:.4f} before, {after:.4f} after")
    adaptation = {
        "labels": "none (the robot's recordings; turns from its sensors)",
        "adapted_from": str(start.path),
        "bags": [r.summary for r in recordings],
        "config": asdict(cfg),
        "train": asdict(lf) | {"net": lf.net.to_dict()},
        "command": command,
        "loss_before": before,
        "loss_after": after,
        "samples": int(data.cues.shape[0]),
        "calibrated_receiver": None if calibrated is None else calibrated.to_dict(),
        "calibration": calibration_note,
    }
    labels = f"{start.labels}, then adapted without labels on a robot's recordings"
    if start.model is not None:
        old = start.card.get("labels")
        by_network = start.card.get("labels_by_network")
        if isinstance(by_network, dict):
            old = by_network
        visual = old.get("visual", "unknown") if isinstance(old, dict) else str(old or "unknown")
        card: dict[str, Any] = {"labels": {"audio": labels, "visual": visual}}
    else:
        card = {"labels": labels, "stages": [*start.card.get("stages", []), "adapt"]}
    card["adaptation"] = json.loads(json.dumps(adaptation))
    # Adapted without the receiver's size, the network must run without it; every caller
    # (node, slfm eval) then leaves the receiver out.
    folder = save_like(
        start,
        out,
        state.net,
        card,
        receiver_input=max_itd_s is not None,
        calibrated_receiver=calibrated,
        # The calibrated delays match this receiver's correlation, so the refinement may
        # look for its peak further from the network's answer (cue_audio).
        lobe_widening=CALIBRATED_WIDENING if calibrated is not None else None,
    )
    metrics = {
        "loss_before": before,
        "loss_after": after,
        "samples": int(data.cues.shape[0]),
        "history": state.history,
        "bags": [r.summary for r in recordings],
        "calibrated_receiver": adaptation["calibrated_receiver"],
    }
    atomic_write_text(folder / "adapt_metrics.json", json.dumps(metrics, indent=2))
    atomic_write_text(
        folder / "adaptation.yaml", yaml.safe_dump(card["adaptation"], sort_keys=False)
    )
    return metrics
