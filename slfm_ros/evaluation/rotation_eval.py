"""Camera-rotation evaluation on real equirectangular panoramas (the Stanford2D3D protocol).

From each panorama, ``pairs_per_image`` pairs of perspective views are cropped: view 0 at a
random yaw, view 1 turned by theta with |theta| uniform in [10, 90) degrees and a random sign,
both with the same FOV and pitch. The estimator predicts theta from the two images; the report
gives the mean and median wrapped error (declined pairs count as a zero-turn prediction, see
``metrics``). Pair i of panorama j depends only on (seed, j, i), so results do not depend on
the order in which panoramas are read.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.estimators.base import VisualEstimator
from slfm_ros.core.geometry.panorama import crop_perspective, match_resolution
from slfm_ros.evaluation.metrics import YawReport, score_yaw


@dataclass(frozen=True)
class RotationProtocol:
    """Crop settings of the protocol; angles in degrees, sizes in pixels."""

    fov_deg: float = 60.0
    pitch_deg: float = -22.5
    pairs_per_image: int = 20
    min_turn_deg: float = 10.0
    max_turn_deg: float = 90.0
    width: int = 320
    height: int = 240
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0 < self.fov_deg < 180:
            raise ConfigError(f"--fov must be in (0, 180) degrees, got {self.fov_deg}")
        if not -90 < self.pitch_deg < 90:
            raise ConfigError(f"--pitch must be in (-90, 90) degrees, got {self.pitch_deg}")
        if self.pairs_per_image < 1:
            raise ConfigError(f"--pairs-per-image must be >= 1, got {self.pairs_per_image}")
        if not 0 <= self.min_turn_deg < self.max_turn_deg <= 180:
            raise ConfigError(
                f"turn range must satisfy 0 <= min < max <= 180, got "
                f"[{self.min_turn_deg}, {self.max_turn_deg})"
            )


@dataclass(frozen=True)
class ViewPair:
    """Two crops of one panorama; yaw_0 and theta = yaw_1 - yaw_0 in radians."""

    image_0: npt.NDArray[np.uint8]
    image_1: npt.NDArray[np.uint8]
    yaw_0: float
    theta: float


def crop_pairs(
    panorama: npt.NDArray[np.uint8], protocol: RotationProtocol, panorama_index: int
) -> Iterator[ViewPair]:
    """The protocol's view pairs of one panorama (deterministic in seed and panorama index)."""
    rng = np.random.default_rng([protocol.seed, panorama_index])
    hfov = math.radians(protocol.fov_deg)
    pitch = math.radians(protocol.pitch_deg)
    pano = match_resolution(panorama, hfov, protocol.width)
    lo, hi = math.radians(protocol.min_turn_deg), math.radians(protocol.max_turn_deg)
    for _ in range(protocol.pairs_per_image):
        yaw_0 = float(rng.uniform(-math.pi, math.pi))
        theta = float(rng.uniform(lo, hi) * rng.choice([-1.0, 1.0]))
        yaw_1 = float(wrap_angle(yaw_0 + theta))
        yield ViewPair(
            crop_perspective(pano, yaw_0, pitch, hfov, protocol.width, protocol.height),
            crop_perspective(pano, yaw_1, pitch, hfov, protocol.width, protocol.height),
            yaw_0,
            theta,
        )


@dataclass
class PairRecord:
    """One scored pair (angles in radians)."""

    source: str
    theta: float
    predicted: float
    valid: bool
    reason: str


@dataclass
class RotationResult:
    report: YawReport
    records: list[PairRecord] = field(default_factory=list)
    seconds_per_pair: float = math.nan

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = dict(self.report.as_dict())
        out["ms_per_pair"] = 1000.0 * self.seconds_per_pair
        return out


def score_pairs(
    pairs: Sequence[tuple[str, ViewPair]] | Iterator[tuple[str, ViewPair]],
    estimator: VisualEstimator,
) -> RotationResult:
    """Run ``estimator`` on (source name, pair) items and score the turns."""
    records: list[PairRecord] = []
    elapsed = 0.0
    for source, pair in pairs:
        tic = time.perf_counter()
        estimate = estimator.estimate(pair.image_0, pair.image_1)
        elapsed += time.perf_counter() - tic
        records.append(
            PairRecord(source, pair.theta, estimate.angle, estimate.valid, estimate.reason)
        )
    report = score_yaw(
        [r.predicted for r in records], [r.theta for r in records], [r.valid for r in records]
    )
    return RotationResult(report, records, elapsed / max(1, len(records)))


def evaluate_rotation(
    panoramas: Any,
    estimator: VisualEstimator,
    protocol: RotationProtocol,
    progress: bool = False,
) -> RotationResult:
    """Score ``estimator`` on every panorama of ``panoramas`` (a ``PanoramaFolder``)."""
    indices = list(range(len(panoramas)))
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(indices), unit="panorama", desc="eval rotation")

    def items() -> Iterator[tuple[str, ViewPair]]:
        for j in indices:
            panorama = panoramas.load(j)
            name = panoramas.names[j]
            for pair in crop_pairs(panorama, protocol, j):
                yield name, pair
            if bar is not None:
                bar.update(1)

    try:
        return score_pairs(items(), estimator)
    finally:
        if bar is not None:
            bar.close()
