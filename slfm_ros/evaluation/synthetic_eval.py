"""Evaluation on a simulated split written by ``slfm simulate``.

Audio: every view's clip whose target lies in front of that view (|phi| <= 90 deg, as the
protocol keeps only sources in front) is scored against the target azimuth; the test configs
put the target in front of view 0, so every sample contributes at least one clip.
Rotation: for every sample, the pairs (view 0, view i), i = 1..K-1, against theta_i.
The GCC-PHAT / SRP geometry is the dataset's own receiver.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from slfm_ros.core.estimators.base import AudioEstimator, VisualEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.core.sim.dataset import ShardedDataset
from slfm_ros.evaluation.audio_eval import AudioResult, ClipRecord
from slfm_ros.evaluation.metrics import score_azimuth, score_yaw
from slfm_ros.evaluation.rotation_eval import PairRecord, RotationResult


def dataset_geometry(dataset: ShardedDataset) -> InterauralGeometry:
    """ITD model of the receiver the dataset was rendered with."""
    from slfm_ros.core.sim.receivers import make_receiver

    receiver_cfg = dataset.config.receiver
    return make_receiver(receiver_cfg.kind, **receiver_cfg.params).geometry


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


def evaluate_synthetic(
    dataset: ShardedDataset,
    audio_estimator: AudioEstimator | None,
    visual_estimator: VisualEstimator | None,
    limit: int | None = None,
    progress: bool = False,
) -> SyntheticResult:
    """Score the estimators (either may be None) on the first ``limit`` samples (None = all)."""
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
        if audio_estimator is not None:
            for v in range(sample.num_views):
                truth = float(sample.target_azimuths[v])
                if abs(truth) > math.pi / 2:
                    continue
                tic = time.perf_counter()
                est = audio_estimator.estimate(sample.audio[v], sample.sample_rate)
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
    if audio_estimator is not None:
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
