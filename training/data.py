"""Training data: multi-view samples -> augmented per-sample arrays -> batches of tensors.

Positions, not iterators, make runs resumable: the loop asks for global sample *positions*
(step * global_batch + offset) and ``TrainSamples`` maps a position to a sample index (a new
on-the-fly sample per position, or a per-epoch shuffle of a finite set) and to an augmentation
generator seeded by (seed, position). The batch at step s is therefore a pure function of the
config and s, whatever the number of DataLoader workers or restarts.

Per training sample (``SampleTransform``):
- view permutation: with ``permute_prob``, a random order of the K views is drawn among those
  whose turns from the new view 0 all stay below ``max_turn_deg``; the first ``num_views``
  views are kept. Turns and azimuths are recomputed for the new view 0, so pairs are always
  (view 0, view i) with theta_i = yaw_i - yaw_0.
- audio: each view's clip is resampled to the model's rate if needed and cut to the model's
  window (random offset when training, centre when validating); channel-first (2, S).
- images: resized to the model's input (cv2.INTER_AREA), colour-jittered per image when
  training (``slfm_ros.core.sim.camera_effects.colour_jitter``), ImageNet-normalised.
- measured turns (only when a ``TurnMeter`` is given, for the egomotion stage): the camera
  turn of each view from view 0 measured from the rendered images by feature matching, NaN
  where the matcher declines the pair. No label enters it.
"""

from __future__ import annotations

import itertools
import math
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt
import torch
import torch.utils.data

from slfm_ros.core.conventions import camera_turn, wrap_angle
from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.dsp.stft import StftConfig, binaural_features_torch
from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.estimators.feature_yaw import FeatureMatchingYaw
from slfm_ros.core.models.config import ModelConfig
from slfm_ros.core.models.visual_pose import preprocess_images_numpy
from slfm_ros.core.sim.camera_effects import colour_jitter
from slfm_ros.core.sim.dataset import OnTheFlyDataset, SampleSource, ShardedDataset
from slfm_ros.core.sim.scene import MultiViewSample, SceneConfig
from slfm_training.config import DataConfig, EgomotionConfig


@dataclass
class Batch:
    """A batch of K-view samples (tensors on one device).

    images:   (B, K, 3, H, W) float32, ImageNet-normalised, view 0 first.
    audio:    (B, K, 2, S) float32 waveforms, channel 0 left, S = model window samples.
    turns:    (B, K) float32 theta_i = yaw_i - yaw_0 in radians (turns[:, 0] = 0). Label.
    azimuths: (B, K) float32 azimuth of the target source in each view, radians. Label.
    index:    (B,) int64 sample index in its split.
    measured_turns: (B, K) float32 turns measured from the images (``TurnMeter``), NaN where
              none was measured (every entry when the data has no meter). Not a label.
    """

    images: torch.Tensor
    audio: torch.Tensor
    turns: torch.Tensor
    azimuths: torch.Tensor
    index: torch.Tensor
    measured_turns: torch.Tensor

    @property
    def size(self) -> int:
        return int(self.images.shape[0])

    @property
    def num_views(self) -> int:
        return int(self.images.shape[1])

    def to(self, device: torch.device | str, non_blocking: bool = False) -> Batch:
        return Batch(
            **{
                f.name: getattr(self, f.name).to(device, non_blocking=non_blocking)
                for f in fields(self)
            }
        )

    def pin_memory(self) -> Batch:
        return Batch(**{f.name: getattr(self, f.name).pin_memory() for f in fields(self)})


def collate(items: Sequence[dict[str, npt.NDArray[Any]]]) -> Batch:
    """Stack per-sample arrays (from ``SampleTransform``) into a Batch on the CPU."""
    if not items:
        raise DatasetError("cannot build a batch from zero samples")

    def stack(key: str) -> torch.Tensor:
        return torch.from_numpy(np.stack([item[key] for item in items]))

    return Batch(
        images=stack("images"),
        audio=stack("audio"),
        turns=stack("turns"),
        azimuths=stack("azimuths"),
        index=stack("index"),
        measured_turns=stack("measured_turns"),
    )


def audio_features(audio: torch.Tensor, stft: StftConfig) -> torch.Tensor:
    """Encoder features of waveforms (N, 2, S) -> (N, 4, F, T), always in float32."""
    with torch.autocast(device_type=audio.device.type, enabled=False):
        return binaural_features_torch(audio.float(), stft)


def valid_permutations(
    yaws: npt.NDArray[np.float64], keep: int, max_turn: float
) -> list[tuple[int, ...]]:
    """Orders of the views whose first ``keep`` views all turn less than ``max_turn`` (rad)
    from the first one. Only the first ``keep`` entries of each order matter."""
    orders = []
    for order in itertools.permutations(range(len(yaws)), keep):
        turns = np.abs(np.asarray(camera_turn(yaws[list(order)], yaws[order[0]])))
        if float(turns.max()) < max_turn:
            orders.append(order)
    return orders


class TurnMeter:
    """Camera turns between views measured from the images alone (classical matching).

    detector: "orb" or "sift"; hfov_deg, pitch_deg: the camera that took the images;
    min_inliers: RANSAC inliers a measurement needs. The matcher is built lazily so that the
    meter can travel to DataLoader worker processes (OpenCV detectors cannot be pickled).
    """

    def __init__(self, detector: str, hfov_deg: float, pitch_deg: float, min_inliers: int):
        self.detector = detector
        self.hfov = math.radians(hfov_deg)
        self.pitch = math.radians(pitch_deg)
        self.min_inliers = int(min_inliers)
        self._matcher: FeatureMatchingYaw | None = self._build()  # bad options fail here

    def _build(self) -> FeatureMatchingYaw:
        return FeatureMatchingYaw(
            self.detector, hfov=self.hfov, pitch=self.pitch, min_inliers=self.min_inliers
        )

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_matcher": None}

    def measure(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """(K,) turn of each view from view 0 in radians (0 for view 0), NaN where declined."""
        if self._matcher is None:
            self._matcher = self._build()
        turns = np.full(len(images), np.nan, dtype=np.float32)
        turns[0] = 0.0
        for k in range(1, len(images)):
            estimate = self._matcher.estimate(images[0], images[k])
            if estimate.valid:
                turns[k] = estimate.angle
        return turns


def turn_meter_for(opts: EgomotionConfig, scene: SceneConfig) -> TurnMeter:
    """The matcher of the egomotion section for images rendered with ``scene`` (its camera
    unless ``opts.hfov_deg`` names one)."""
    hfov, pitch = (
        (opts.hfov_deg, opts.pitch_deg)
        if opts.hfov_deg
        else (scene.image.hfov_deg, scene.image.pitch_deg)
    )
    return TurnMeter(opts.detector, hfov, pitch, opts.min_inliers)


class SampleTransform:
    """MultiViewSample -> per-sample arrays for ``collate`` (see the module docstring).

    turn_meter: measures the turns between the (unjittered) rendered views; None = no
    measurement (``measured_turns`` all NaN).
    """

    def __init__(
        self,
        model_cfg: ModelConfig,
        data_cfg: DataConfig,
        train: bool,
        turn_meter: TurnMeter | None = None,
    ):
        self.visual = model_cfg.visual
        self.audio = model_cfg.audio
        self.data = data_cfg
        self.train = train
        self.turn_meter = turn_meter

    def _views(self, sample: MultiViewSample, rng: np.random.Generator) -> list[int]:
        k = sample.num_views
        keep = self.data.num_views
        if k < keep:
            raise DatasetError(
                f"samples have {k} views but data.num_views is {keep}; render more views "
                f"(scene views.num_views) or lower data.num_views"
            )
        identity = list(range(keep))
        if not self.train or self.data.permute_prob <= 0 or rng.random() >= self.data.permute_prob:
            return identity
        orders = valid_permutations(sample.yaws, keep, math.radians(self.data.max_turn_deg))
        return list(orders[int(rng.integers(len(orders)))]) if orders else identity

    def _clip(self, audio: npt.NDArray[np.float32], rate: int, offset_u: float) -> npt.NDArray:
        if rate != self.audio.sample_rate:
            audio = resample(audio, rate, self.audio.sample_rate)
        window = self.audio.clip_samples
        if audio.shape[0] < window:
            raise DatasetError(
                f"clips have {audio.shape[0]} samples at {self.audio.sample_rate} Hz but the "
                f"model's window is {window}; render longer clips (scene clip_seconds >= "
                f"{window / self.audio.sample_rate:g}) or use a model with a shorter window"
            )
        start = int(offset_u * (audio.shape[0] - window + 1))
        return np.ascontiguousarray(audio[start : start + window].T, dtype=np.float32)

    def __call__(
        self, sample: MultiViewSample, rng: np.random.Generator, index: int
    ) -> dict[str, npt.NDArray[Any]]:
        views = self._views(sample, rng)
        yaws = sample.yaws[views]
        # One offset for all views: the clips are consecutive windows of the same sources.
        offset_u = float(rng.random()) if self.train and self.data.random_crop else 0.5
        offset_u = min(offset_u, 1.0 - 1e-9)
        audio = np.stack([self._clip(sample.audio[v], sample.sample_rate, offset_u) for v in views])
        if self.turn_meter is not None:
            measured = self.turn_meter.measure([sample.images[v] for v in views])
        else:
            measured = np.full(len(views), np.nan, dtype=np.float32)
        size = (self.visual.image_width, self.visual.image_height)
        images = []
        for v in views:
            image = np.asarray(sample.images[v])
            if image.shape[:2] != (size[1], size[0]):
                image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            if self.train and self.data.jitter.prob > 0:
                j = self.data.jitter
                image = colour_jitter(
                    image, rng, j.brightness, j.contrast, j.saturation, j.hue, j.prob
                )
            images.append(image)
        return {
            "images": preprocess_images_numpy(images, self.visual),
            "audio": audio,
            "turns": np.asarray(camera_turn(yaws, yaws[0]), dtype=np.float32),
            "azimuths": np.asarray(wrap_angle(sample.target_azimuths[views]), dtype=np.float32),
            "index": np.asarray(index, dtype=np.int64),
            "measured_turns": measured,
        }


class _SampleCache:
    """Keeps up to ``size`` rendered samples of one source in memory (LRU)."""

    def __init__(self, source: SampleSource, size: int):
        self.source = source
        self.config = source.config
        self.size = size
        self._items: OrderedDict[int, MultiViewSample] = OrderedDict()

    def __len__(self) -> int:
        return len(self.source)

    def __getitem__(self, index: int) -> MultiViewSample:
        if self.size <= 0:
            return self.source[index]
        if index in self._items:
            self._items.move_to_end(index)
            return self._items[index]
        sample = self.source[index]
        self._items[index] = sample
        if len(self._items) > self.size:
            self._items.popitem(last=False)
        return sample


def _check_folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise DatasetError(f"{what} {folder} does not exist; generate it with slfm simulate")
    if not any(folder.iterdir()):
        raise DatasetError(
            f"{what} {folder} is empty; fill it with `slfm simulate --out {folder}` or train "
            "on the fly (data.source: on_the_fly)"
        )
    return folder


def open_source(data_cfg: DataConfig, split: str) -> SampleSource:
    """The sample source of ``split`` ("train" or "val") for this data config."""
    if data_cfg.source == "shards":
        path = data_cfg.train_dir if split == "train" else data_cfg.val_dir
        if not path:
            raise ConfigError(f"data.{split}_dir: not set")
        source: SampleSource = ShardedDataset(_check_folder(path, f"data.{split}_dir"))
        if len(source) == 0:
            raise DatasetError(f"data.{split}_dir {path} holds no samples")
    else:
        length = data_cfg.train_samples if split == "train" else data_cfg.val_samples
        # An endless stream still has a length: the indices EvalSamples may read.
        source = OnTheFlyDataset(data_cfg.scene_config(), split, data_cfg.seed, length or 2**31)
    return _SampleCache(source, data_cfg.cache_samples)


class TrainSamples(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """Training samples addressed by global position (see the module docstring)."""

    def __init__(
        self, source: SampleSource, transform: SampleTransform, data_cfg: DataConfig, seed: int
    ):
        self.source = source
        self.transform = transform
        self.seed = int(seed)
        endless = data_cfg.source == "on_the_fly" and data_cfg.train_samples == 0
        limit = data_cfg.train_samples or len(source)
        self.epoch_size = 0 if endless else min(limit, len(source))
        self._orders: OrderedDict[int, npt.NDArray[np.int64]] = OrderedDict()

    def __len__(self) -> int:
        return self.epoch_size or 2**62

    def index_of(self, position: int) -> int:
        """Sample index read at global ``position``."""
        if not self.epoch_size:
            return position
        epoch, offset = divmod(position, self.epoch_size)
        if epoch not in self._orders:
            rng = np.random.default_rng([self.seed, epoch])
            self._orders[epoch] = rng.permutation(self.epoch_size)
            while len(self._orders) > 2:
                self._orders.popitem(last=False)
        return int(self._orders[epoch][offset])

    def __getitem__(self, position: int) -> dict[str, npt.NDArray[Any]]:
        index = self.index_of(int(position))
        rng = np.random.default_rng([self.seed, int(position), 1])
        return self.transform(self.source[index], rng, index)


class EvalSamples(torch.utils.data.Dataset):  # type: ignore[type-arg]
    """The first ``count`` samples of a source, without augmentation."""

    def __init__(self, source: SampleSource, transform: SampleTransform, count: int):
        self.source = source
        self.transform = transform
        self.count = min(count, len(source))

    def __len__(self) -> int:
        return self.count

    def __getitem__(self, index: int) -> dict[str, npt.NDArray[Any]]:
        return self.transform(self.source[int(index)], np.random.default_rng(0), int(index))


class StepBatchSampler(torch.utils.data.Sampler[list[int]]):
    """Endless batches of positions for one process: step s of rank r reads positions
    s * batch * world + r * batch + [0, batch)."""

    def __init__(self, start_step: int, batch_size: int, rank: int = 0, world_size: int = 1):
        self.start_step = int(start_step)
        self.batch_size = int(batch_size)
        self.rank = int(rank)
        self.world_size = int(world_size)

    def __iter__(self) -> Iterator[list[int]]:
        for step in itertools.count(self.start_step):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield list(range(first, first + self.batch_size))

    def __len__(self) -> int:
        return 2**62


def _worker_init(worker_id: int) -> None:
    # Several workers share the cores: one numeric thread each.
    torch.set_num_threads(1)
    cv2.setNumThreads(1)


def train_loader(
    dataset: TrainSamples,
    start_step: int,
    batch_size: int,
    workers: int,
    rank: int = 0,
    world_size: int = 1,
    pin_memory: bool = False,
) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """Endless DataLoader of Batches starting at ``start_step``."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_sampler=StepBatchSampler(start_step, batch_size, rank, world_size),
        num_workers=workers,
        collate_fn=collate,
        pin_memory=pin_memory,
        worker_init_fn=_worker_init if workers else None,
        prefetch_factor=2 if workers else None,
    )


def eval_loader(dataset: EvalSamples, batch_size: int, workers: int) -> torch.utils.data.DataLoader:  # type: ignore[type-arg]
    """DataLoader over the evaluation samples in order."""
    return torch.utils.data.DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=collate,
        worker_init_fn=_worker_init if workers else None,
    )
