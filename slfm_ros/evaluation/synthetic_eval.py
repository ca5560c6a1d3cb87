"""Evaluation on a simulated split written by ``slfm simulate``.

Audio: every view's clip whose target lies in front of that view (|phi| <= 90 deg, as the
protocol keeps only sources in front) is scored against the target azimuth; the test configs
put the target in front of view 0, so every sample contributes at least one clip.
Rotation: for every sample, the pairs (view 0, view i), i = 1..K-1, against theta_i.
The GCC-PHAT / SRP geometry is the dataset's own receiver: ``dataset_geometry`` for a dataset
with one receiver; on a dataset that mixes receivers (config ``receivers``) pass
``audio_factory`` to ``evaluate_synthetic``, which builds the estimator for each sample's
receiver geometry (``sample_geometry``, read from the sample's metadata), once per receiver.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from slfm_ros.core.errors import ConfigError, DatasetError
from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.core.sim.dataset import ShardedDataset
from slfm_ros.evaluation.audio_eval import AudioResult, ClipRecord
from slfm_ros.evaluation.metrics import score_azimuth, score_yaw
from slfm_ros.evaluation.rotation_eval import PairRecord, RotationResult

# Builds the audio estimator for one receiver geometry, e.g.
# ``lambda g: build_audio_estimator("gcc_phat", g)``.
AudioFactory = Callable[[InterauralGeometry], AudioEstimator]


@functools.lru_cache(maxsize=64)
def _geometry(key: str) -> InterauralGeometry:
    from slfm_ros.core.sim.receivers import make_receiver

    kind, params = json.loads(key)
    return make_receiver(kind, **params).geometry


def receiver_geometry(kind: str, params: dict[str, Any]) -> InterauralGeometry:
    """ITD model of ``make_receiver(kind, **params)`` (cached per process)."""
    return _geometry(json.dumps([kind, params], sort_keys=True))


def dataset_geometry(dataset: ShardedDataset) -> InterauralGeometry:
    """ITD model of the one receiver the dataset was rendered with.

    Raises DatasetError for a dataset that mixes receivers (no one geometry fits its samples):
    use ``sample_geometry`` or ``evaluate_synthetic(..., audio_factory=...)`` there.
    """
    cfg = dataset.config
    if cfg.mixes_receivers:
        kinds = sorted({c.kind for c in cfg.receiver_choices})
        raise DatasetError(
            f"{dataset.root} mixes receivers ({', '.join(kinds)}, config 'receivers'), so no one "
            "geometry fits every sample; score geometry-aware estimators with "
            "evaluate_synthetic(..., audio_factory=...), which uses each sample's receiver"
        )
    entry = cfg.receiver_choices[0]
    return receiver_geometry(entry.kind, entry.params)


def sample_geometry(dataset: ShardedDataset, metadata: dict[str, Any]) -> InterauralGeometry:
    """ITD model of the receiver one sample was rendered with (``receiver_kind`` and
    ``receiver_params`` of its metadata; datasets written before ``receiver_params`` existed
    have one receiver, taken from the config)."""
    params = metadata.get("receiver_params")
    if params is None:
        return dataset_geometry(dataset)
    return receiver_geometry(str(metadata["receiver_kind"]), params)


@dataclass
class SyntheticResult:
    samples: int
    audio: AudioResult | None
    rotation: RotationResult | None

    def as_dict(self) -> dict[str, Any]:
        """One flat mapping: n (samples), audio_n / yaw_n (scored clips / pairs) and scores."""
        out: dict[str, Any] = {"n": self.samples}
        if self.audio is not None:
            audio = self.audio.as_dict()
            out["audio_n"] = audio.pop("n")
            out.update(audio)
        if self.rotation is not None:
            rotation = self.rotation.as_dict()
            out["yaw_n"] = rotation.pop("n")
            out.update(rotation)
        return out


def audio_scoring(
    dataset: ShardedDataset, build: AudioFactory
) -> tuple[AudioEstimator | None, AudioFactory | None]:
    """(estimator, None) for a one-receiver dataset, (None, build) for a mixed one: the audio
    arguments of ``evaluate_synthetic`` that give every sample its own receiver geometry."""
    if dataset.config.mixes_receivers:
        return None, build
    return build(dataset_geometry(dataset)), None


def evaluate_synthetic(
    dataset: ShardedDataset,
    audio_estimator: AudioEstimator | None,
    visual_estimator: VisualEstimator | None,
    limit: int | None = None,
    progress: bool = False,
    audio_factory: AudioFactory | None = None,
) -> SyntheticResult:
    """Score the estimators (either may be None) on the first ``limit`` samples (None = all).

    audio_factory: instead of ``audio_estimator`` (which must then be None), build the audio
    estimator from each sample's receiver geometry (``sample_geometry``), once per receiver
    name; needed for geometry-aware estimators on a dataset that mixes receivers. Building time
    is not counted in the per-clip time.
    """
    if audio_factory is not None and audio_estimator is not None:
        raise ConfigError(
            "evaluate_synthetic: pass audio_estimator or audio_factory, not both "
            "(the factory builds an estimator for each sample's receiver)"
        )
    per_receiver: dict[str, AudioEstimator] = {}
    n = len(dataset) if limit is None else min(limit, len(dataset))
    clips: list[ClipRecord] = []
    pairs: list[PairRecord] = []
    audio_s = visual_s = 0.0
    indices = range(n)
    if progress:
        from tqdm import tqdm

        indices = tqdm(indices, unit="sample", desc="eval synthetic")
    for i in indices:
        sample = dataset[i]
        name = f"{dataset.split}:{sample.metadata.get('index', i)}"
        estimator = audio_estimator
        if audio_factory is not None:
            receiver = str(sample.metadata.get("receiver", ""))
            if receiver not in per_receiver:
                per_receiver[receiver] = audio_factory(sample_geometry(dataset, sample.metadata))
            estimator = per_receiver[receiver]
        if estimator is not None:
            for v in range(sample.num_views):
                truth = float(sample.target_azimuths[v])
                if abs(truth) > math.pi / 2:
                    continue
                tic = time.perf_counter()
                est = estimator.estimate(sample.audio[v], sample.sample_rate)
                audio_s += time.perf_counter() - tic
                clips.append(ClipRecord(name, truth, est.angle, est.valid, est.reason))
        if visual_estimator is not None:
            turns = sample.turns
            for v in range(1, sample.num_views):
                tic = time.perf_counter()
                est = visual_estimator.estimate(sample.images[0], sample.images[v])
                visual_s += time.perf_counter() - tic
                pairs.append(PairRecord(name, float(turns[v]), est.angle, est.valid, est.reason))
    audio = rotation = None
    if audio_estimator is not None or audio_factory is not None:
        report = score_azimuth(
            np.array([c.predicted for c in clips]),
            np.array([c.azimuth for c in clips]),
            np.array([c.valid for c in clips], dtype=bool),
        )
        audio = AudioResult(report, clips, audio_s / max(1, len(clips)))
    if visual_estimator is not None:
        yaw = score_yaw(
            np.array([p.predicted for p in pairs]),
            np.array([p.theta for p in pairs]),
            np.array([p.valid for p in pairs], dtype=bool),
        )
        rotation = RotationResult(yaw, pairs, visual_s / max(1, len(pairs)))
    return SyntheticResult(n, audio, rotation)
