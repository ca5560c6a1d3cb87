"""Latency and throughput of the SLfM networks on each inference backend.

Inputs are what the node sees: one analysis window of 48 kHz stereo (broadband noise with an
interaural delay) and two 640 x 480 RGB camera frames. Per backend (all times wall clock):

    audio_p50_ms / audio_p99_ms          network only, one window (batch 1)
    visual_p50_ms / visual_p99_ms        network only, one image pair (batch 1)
    audio_cpu_p50_ms, visual_cpu_p50_ms  the same calls in process CPU time (all threads):
                                         a figure that other load on the machine hardly moves
    audio_preprocess_p50_ms              resample 48 kHz -> model rate + STFT features
    visual_preprocess_p50_ms             resize + normalise both frames
    audio_total_p50_ms / _p99_ms         preprocessing + network, timed as one call
    visual_total_p50_ms / _p99_ms        the same for the image pair
    audio_known_receiver_p50_ms / _p99_ms
                                         the node's whole audio estimate of one window with a
                                         known receiver (the default spherical head): front
                                         end, network, decoding and the model's refinement
    audio_batch_p50_ms, audio_batch_per_s    a batch of ``batch`` windows; windows per second
    visual_batch_p50_ms, visual_batch_per_s  a batch of ``batch`` pairs; pairs per second
    audio_estimate_p50_ms, visual_estimate_p50_ms
                                         the learned estimators' full estimate (symmetric: the
                                         mirrored input runs too, batch 2), what the node pays
"""

from __future__ import annotations

import math
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import numpy as np

from slfm_ros.bench.stats import percentile_ms, time_calls, time_calls_cpu
from slfm_ros.core.backends.base import (
    BackendOptions,
    InferenceBackend,
    candidates,
    label,
    load_candidate,
)
from slfm_ros.core.backends.model_source import ModelSource
from slfm_ros.core.models.config import AnyModelConfig

INPUT_RATE = 48000
CAMERA_SIZE = (640, 480)


@dataclass(frozen=True)
class NetworkBenchConfig:
    """iterations: timed calls per batch-1 measurement (batched and full-estimate ones use a
    quarter, at least 5). warmup: untimed calls first. batch: size of the batched runs."""

    iterations: int = 100
    warmup: int = 10
    batch: int = 8


@dataclass
class BenchInputs:
    audio: np.ndarray  # (frames, 2) float32 at INPUT_RATE: one model window
    frame_0: np.ndarray  # (480, 640, 3) uint8
    frame_1: np.ndarray


def bench_inputs(config: AnyModelConfig) -> BenchInputs:
    """One model window of 48 kHz audio and two camera frames 0.2 s apart."""
    from slfm_ros.core.sim.synthetic_stream import SyntheticScene, SyntheticStream

    seconds = config.audio.clip_seconds
    scene = SyntheticScene(
        sample_rate=INPUT_RATE, image_size=CAMERA_SIZE, fps=5.0, yaw_rate_rad_s=math.radians(20)
    )
    stream = SyntheticStream(scene, duration_s=max(seconds, 0.5))
    frames = round(seconds * INPUT_RATE)
    stamps = stream.image_stamps()
    return BenchInputs(
        stream.audio[:frames], stream.image_at(stamps[0]), stream.image_at(stamps[1])
    )


def _stats(prefix: str, samples: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": round(percentile_ms(samples, 50), 3),
        f"{prefix}_p99_ms": round(percentile_ms(samples, 99), 3),
    }


def bench_backend(
    backend: InferenceBackend, inputs: BenchInputs, cfg: NetworkBenchConfig
) -> dict[str, Any]:
    """All figures of one loaded backend (see module doc)."""
    from slfm_ros.core.estimators.learned import learned_audio_estimator, learned_visual_estimator
    from slfm_ros.core.geometry.interaural import SphericalHeadGeometry
    from slfm_ros.core.models.visual_pose import preprocess_images_numpy

    config = backend.source.config
    audio_est = learned_audio_estimator(config, backend.run_audio, silence_dbfs=-120.0)
    known_receiver = learned_audio_estimator(
        config, backend.run_audio, SphericalHeadGeometry(), silence_dbfs=-120.0
    )
    visual_est = learned_visual_estimator(config, backend.run_visual)
    n, few, warm = cfg.iterations, max(5, cfg.iterations // 4), cfg.warmup

    features = audio_est.features(inputs.audio, INPUT_RATE)[:1]
    pair = preprocess_images_numpy([inputs.frame_0, inputs.frame_1], config.visual)
    img_0, img_1 = pair[0:1], pair[1:2]
    batch_features = np.repeat(features, cfg.batch, axis=0)
    batch_0, batch_1 = np.repeat(img_0, cfg.batch, axis=0), np.repeat(img_1, cfg.batch, axis=0)

    def audio_total() -> None:
        backend.run_audio(audio_est.features(inputs.audio, INPUT_RATE))

    def visual_total() -> None:
        p = preprocess_images_numpy([inputs.frame_0, inputs.frame_1], config.visual)
        backend.run_visual(p[0:1], p[1:2])

    out: dict[str, Any] = {}
    wall, cpu = time_calls_cpu(lambda: backend.run_audio(features), n, warm)
    out.update(_stats("audio", wall))
    out["audio_cpu_p50_ms"] = round(percentile_ms(cpu, 50), 3)
    wall, cpu = time_calls_cpu(lambda: backend.run_visual(img_0, img_1), n, warm)
    out.update(_stats("visual", wall))
    out["visual_cpu_p50_ms"] = round(percentile_ms(cpu, 50), 3)
    pre_audio = time_calls(lambda: audio_est.features(inputs.audio, INPUT_RATE), n, 1)
    pre_visual = time_calls(
        lambda: preprocess_images_numpy([inputs.frame_0, inputs.frame_1], config.visual), n, 1
    )
    out["audio_preprocess_p50_ms"] = round(percentile_ms(pre_audio, 50), 3)
    out["visual_preprocess_p50_ms"] = round(percentile_ms(pre_visual, 50), 3)
    out.update(_stats("audio_total", time_calls(audio_total, n, 1)))
    out.update(_stats("visual_total", time_calls(visual_total, n, 1)))
    estimate = time_calls(lambda: known_receiver.estimate(inputs.audio, INPUT_RATE), n, 1)
    out.update(_stats("audio_known_receiver", estimate))
    audio_batch = time_calls(lambda: backend.run_audio(batch_features), few, 1)
    visual_batch = time_calls(lambda: backend.run_visual(batch_0, batch_1), few, 1)
    out["audio_batch_p50_ms"] = round(percentile_ms(audio_batch, 50), 3)
    out["audio_batch_per_s"] = round(cfg.batch / float(np.median(audio_batch)), 1)
    out["visual_batch_p50_ms"] = round(percentile_ms(visual_batch, 50), 3)
    out["visual_batch_per_s"] = round(cfg.batch / float(np.median(visual_batch)), 1)
    estimate_audio = time_calls(lambda: audio_est.estimate(inputs.audio, INPUT_RATE), few, 1)
    estimate_visual = time_calls(
        lambda: visual_est.estimate(inputs.frame_0, inputs.frame_1), few, 1
    )
    out["audio_estimate_p50_ms"] = round(percentile_ms(estimate_audio, 50), 3)
    out["visual_estimate_p50_ms"] = round(percentile_ms(estimate_visual, 50), 3)
    return out


def run_network_bench(
    source: ModelSource,
    backend: str = "all",
    device: str = "auto",
    options: BackendOptions | None = None,
    cfg: NetworkBenchConfig | None = None,
    disabled: Collection[str] = (),
) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Benchmark every candidate of ``backend`` ("all" = every backend) on ``device``.

    Returns (one result per backend measured, skipped candidates with reasons).
    "auto" measures only the backend ``create_runners`` would pick.
    """
    options = options or BackendOptions()
    cfg = cfg or NetworkBenchConfig()
    wanted = "auto" if backend == "all" else backend
    results: list[dict[str, Any]] = []
    skipped: list[dict[str, str]] = []
    inputs = bench_inputs(source.config)
    for name, dev in candidates(wanted, device):
        loaded = load_candidate(source, name, dev, options, disabled)
        if isinstance(loaded, str):
            skipped.append({"backend": name, "device": dev, "reason": loaded})
            continue
        try:
            figures = bench_backend(loaded, inputs, cfg)
        finally:
            loaded.close()
        results.append(
            {
                "backend": name,
                "device": dev,
                "precision": loaded.precision,
                **figures,
                "notes": list(loaded.notes),
            }
        )
        if backend == "auto":
            break
    for entry in skipped:
        entry.setdefault("candidate", label(entry["backend"], entry["device"]))
    return results, skipped
