"""Estimators backed by a learned SLfM model.

Each estimator does the model's exact preprocessing and hands the network call to one
replaceable function, so an inference back-end (torch here; ONNX Runtime or TensorRT elsewhere)
plugs in without touching the preprocessing:

    run_audio(features (B, 4, F, T) float32) -> phi (B,) float32, radians
    run_visual(img_0 (B, 3, H, W) float32, img_1 (B, 3, H, W) float32) -> theta (B,) float32

Confidence (a documented heuristic, not a calibrated probability): the estimate is made twice,
once on the input and once on its mirror image - the audio with its channels swapped (the true
answer becomes -phi) and the image pair in reverse order (the true answer becomes -theta). The
reported angle is the circular mean of the two answers brought back to the same side, and the
confidence is exp(-d^2 / (2 sigma^2)), with d the angle between them. A model that is unsure
tends to break this symmetry, so a large d flags an unreliable estimate. The audio estimate also
averages several windows when the clip is longer than the model's window; their spread enters d.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import torch

from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.dsp.stft import binaural_features
from slfm_ros.core.errors import ConfigError, InputFormatError, ModelError
from slfm_ros.core.estimators.base import (
    AngleEstimate,
    AudioEstimator,
    VisualEstimator,
    screen_binaural,
)
from slfm_ros.core.models.audio_direction import AudioDirectionNet
from slfm_ros.core.models.checkpoint import LoadedModel, load_model
from slfm_ros.core.models.config import AudioNetConfig, VisualNetConfig
from slfm_ros.core.models.visual_pose import VisualPoseNet, preprocess_images_numpy

AudioRunner = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]
VisualRunner = Callable[[npt.NDArray[np.float32], npt.NDArray[np.float32]], npt.NDArray[np.float32]]

# Disagreement at which the confidence drops to exp(-1/2) = 0.61.
AUDIO_AGREEMENT_SIGMA_RAD = math.radians(10.0)
VISUAL_AGREEMENT_SIGMA_RAD = math.radians(2.0)
# Images whose pixel standard deviation is below this (8-bit levels) carry no structure to match.
FEATURELESS_STD = 2.0


def torch_audio_runner(net: AudioDirectionNet, device: str | torch.device = "cpu") -> AudioRunner:
    """``run_audio`` on a torch network (eval mode, no autograd)."""
    net = net.to(device).eval()

    def run_audio(features: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            phi = net(torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32)).to(device))
        return phi.float().cpu().numpy()

    return run_audio


def torch_visual_runner(net: VisualPoseNet, device: str | torch.device = "cpu") -> VisualRunner:
    """``run_visual`` on a torch network (eval mode, no autograd)."""
    net = net.to(device).eval()

    def run_visual(
        img_0: npt.NDArray[np.float32], img_1: npt.NDArray[np.float32]
    ) -> npt.NDArray[np.float32]:
        with torch.inference_mode():
            theta = net(
                torch.from_numpy(np.ascontiguousarray(img_0, dtype=np.float32)).to(device),
                torch.from_numpy(np.ascontiguousarray(img_1, dtype=np.float32)).to(device),
            )
        return theta.float().cpu().numpy()

    return run_visual


def agreement_estimate(
    angles: npt.NDArray[np.floating], sigma: float
) -> tuple[float, float, float]:
    """(circular mean, confidence, spread) of answers that should all be the same angle.

    spread d = the largest angle between an answer and the mean; confidence exp(-d^2/(2 sigma^2)).
    """
    values = np.asarray(angles, dtype=np.float64)
    mean = math.atan2(float(np.sin(values).sum()), float(np.cos(values).sum()))
    spread = float(np.max(np.arccos(np.clip(np.cos(values - mean), -1.0, 1.0))))
    # Two answers on either side of the mean: their mutual angle is twice the spread.
    confidence = math.exp(-0.5 * (2.0 * spread / sigma) ** 2)
    return mean, confidence, spread


def _check_finite(array: npt.NDArray[np.floating], what: str) -> None:
    if not np.isfinite(array).all():
        raise ModelError(
            f"{what}: the network returned non-finite values; check the model file and back-end"
        )


class SlfmAudioEstimator(AudioEstimator):
    """Sound azimuth (radians, full circle) from a learned audio direction network.

    config:       the network's AudioNetConfig (sample rate, window, STFT).
    run_audio:    the network call, see the module docstring.
    symmetric:    also run the channel-swapped clip (doubles the cost; gives the confidence).
    max_windows:  a clip longer than the model window is covered by up to this many evenly
                  spaced windows whose answers are averaged; 1 uses only the latest window.
    silence_dbfs: clips below this RMS level are declined as silence.
    """

    name = "slfm"

    def __init__(
        self,
        config: AudioNetConfig,
        run_audio: AudioRunner,
        symmetric: bool = True,
        max_windows: int = 4,
        silence_dbfs: float = -60.0,
    ) -> None:
        if max_windows < 1:
            raise ConfigError(f"max_windows must be >= 1, got {max_windows}")
        self.config = config
        self.stft_config = config.stft_config()
        self.run_audio = run_audio
        self.symmetric = symmetric
        self.max_windows = int(max_windows)
        self.silence_dbfs = float(silence_dbfs)

    @classmethod
    def from_loaded(cls, model: LoadedModel, **kwargs: object) -> SlfmAudioEstimator:
        return cls(model.config.audio, torch_audio_runner(model.audio_net), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_model_dir(cls, path: str | os.PathLike[str], **kwargs: object) -> SlfmAudioEstimator:
        return cls.from_loaded(load_model(path), **kwargs)

    @property
    def min_samples(self) -> int:
        """Shortest clip accepted, at the model rate: half a window (the rest is zero-padded)."""
        return self.config.clip_samples // 2

    def windows(self, audio: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
        """(frames, 2) audio at ``sample_rate`` -> (K, clip_samples, 2) windows at the model rate.

        Shorter clips are zero-padded at the start (the newest audio stays at the end).
        """
        clip = self.config.clip_samples
        resampled = resample(audio, sample_rate, self.config.sample_rate)
        count = resampled.shape[0]
        if count < self.min_samples:
            raise InputFormatError(
                f"clip of {count} samples at {self.config.sample_rate} Hz is shorter than half "
                f"the model window ({self.min_samples} of {clip}): use a longer clip"
            )
        if count <= clip:
            padded = np.zeros((clip, 2), dtype=np.float32)
            padded[clip - count :] = resampled
            return padded[None]
        n_windows = min(self.max_windows, math.ceil(count / clip))
        starts = np.linspace(0, count - clip, n_windows).round().astype(int)
        if n_windows == 1:
            starts = np.array([count - clip])
        return np.stack([resampled[s : s + clip] for s in starts])

    def features(self, audio: npt.NDArray[np.float32], sample_rate: int) -> npt.NDArray[np.float32]:
        """The network input (K, 4, F, T) of a (frames, 2) clip."""
        return np.stack(
            [binaural_features(w, self.stft_config) for w in self.windows(audio, sample_rate)]
        )

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio (frames, 2) float32, channel 0 left; sample_rate in Hz."""
        arr, declined = screen_binaural(audio, self.silence_dbfs)
        if declined is not None:
            return declined
        feats = self.features(arr, sample_rate)
        if self.symmetric:
            swapped = feats[:, [2, 3, 0, 1]]
            phi = self.run_audio(np.concatenate([feats, swapped]))
            _check_finite(phi, "run_audio")
            k = feats.shape[0]
            answers = np.concatenate([phi[:k], -phi[k:]])
        else:
            answers = self.run_audio(feats)
            _check_finite(answers, "run_audio")
        angle, confidence, _ = agreement_estimate(answers, AUDIO_AGREEMENT_SIGMA_RAD)
        return AngleEstimate.from_confidence(angle, confidence)


class SlfmVisualEstimator(VisualEstimator):
    """Relative camera yaw theta = yaw_1 - yaw_0 (radians, in (-pi/2, pi/2)) from a learned
    visual pose network.

    config:     the network's VisualNetConfig (input size).
    run_visual: the network call, see the module docstring.
    symmetric:  also run the reversed pair (doubles the cost; gives the confidence).
    """

    name = "slfm"

    def __init__(
        self, config: VisualNetConfig, run_visual: VisualRunner, symmetric: bool = True
    ) -> None:
        self.config = config
        self.run_visual = run_visual
        self.symmetric = symmetric

    @classmethod
    def from_loaded(cls, model: LoadedModel, **kwargs: object) -> SlfmVisualEstimator:
        return cls(model.config.visual, torch_visual_runner(model.visual_net), **kwargs)  # type: ignore[arg-type]

    @classmethod
    def from_model_dir(cls, path: str | os.PathLike[str], **kwargs: object) -> SlfmVisualEstimator:
        return cls.from_loaded(load_model(path), **kwargs)

    def estimate(
        self, image_0: npt.NDArray[np.uint8], image_1: npt.NDArray[np.uint8]
    ) -> AngleEstimate:
        """Images (H, W, 3) uint8 RGB. Returns theta = yaw_1 - yaw_0 in radians."""
        batch = preprocess_images_numpy([image_0, image_1], self.config)
        for image, label in ((image_0, "image_0"), (image_1, "image_1")):
            if float(np.asarray(image).std()) < FEATURELESS_STD:
                return AngleEstimate.invalid(f"featureless {label}")
        first, second = batch[0:1], batch[1:2]
        if self.symmetric:
            theta = self.run_visual(
                np.concatenate([first, second]), np.concatenate([second, first])
            )
            _check_finite(theta, "run_visual")
            answers = np.array([theta[0], -theta[1]])
        else:
            answers = self.run_visual(first, second)
            _check_finite(answers, "run_visual")
        angle, confidence, _ = agreement_estimate(answers, VISUAL_AGREEMENT_SIGMA_RAD)
        return AngleEstimate.from_confidence(angle, confidence)
