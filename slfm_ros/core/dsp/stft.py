"""Binaural STFT features of the SLfM audio encoder.

Per channel: centred STFT (reflect padding of n_fft // 2 on both ends), rectangular window of
``win_length`` samples centred inside ``n_fft`` (what torch.stft does when given no window),
one-sided spectrum with the last (Nyquist) bin dropped -> ``freq_bins`` = 256 bins.
Magnitude: 20*log10(max(|X|, 1e-5)) mapped linearly from ``db_range`` to [-1, 1], clipped.
Phase: angle(X) / pi, in [-1, 1], with ``phase_reference``:
  ``absolute``   each ear's own phase (the reference's features);
  ``interaural`` each ear's phase relative to the other ear, wrap(angle(X_L) - angle(X_R)) / pi
                 for the left plane and its negation for the right. The direction cue is the
                 interaural phase difference, which a network would otherwise have to compute
                 from two absolute phases that change with the source signal; this gives it
                 directly and keeps swapping the ears a plain permutation of the planes.
Feature layout: (4, freq_bins, time_frames) = [L magnitude, L phase, R magnitude, R phase].

Hop: ``clip_samples // (time_frames - 1)``. A centred STFT of N samples has 1 + N // hop frames,
which is always >= time_frames with this hop; frames beyond ``time_frames`` (at most a few, at
the end of the clip) are cropped. Reference: 40800 samples (2.55 s at 16 kHz) -> hop 160 ->
exactly 256 frames. The node's 1 s windows: 16000 samples -> hop 62 -> 259 frames, the last 3
cropped (their centres lie in the final 190 samples, which the kept frames still cover).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import ConfigError, InputFormatError

if TYPE_CHECKING:
    import torch

MAGNITUDE_FLOOR = 1e-5
PHASE_REFERENCES = ("absolute", "interaural")


@dataclass(frozen=True)
class StftConfig:
    """STFT parameters. Defaults are the reference's 2.55 s clips at 16 kHz.

    sample_rate:  Hz of the audio the features are computed from.
    clip_samples: samples per channel of one clip.
    n_fft, win_length: samples.
    time_frames, freq_bins: output size.
    db_range:     (low, high) dB mapped to (-1, 1).
    phase_reference: "absolute" or "interaural" (see the module docstring).
    """

    sample_rate: int = 16000
    clip_samples: int = 40800
    n_fft: int = 512
    win_length: int = 400
    time_frames: int = 256
    freq_bins: int = 256
    db_range: tuple[float, float] = (-100.0, 60.0)
    phase_reference: str = "absolute"

    def __post_init__(self) -> None:
        problems = []
        if self.phase_reference not in PHASE_REFERENCES:
            problems.append(
                f"phase_reference must be one of {list(PHASE_REFERENCES)}, "
                f"got {self.phase_reference!r}"
            )
        if self.sample_rate <= 0:
            problems.append(f"sample_rate must be > 0, got {self.sample_rate}")
        if not 0 < self.win_length <= self.n_fft:
            problems.append(f"need 0 < win_length <= n_fft, got {self.win_length}, {self.n_fft}")
        if not 0 < self.freq_bins <= self.n_fft // 2 + 1:
            problems.append(
                f"freq_bins must be in 1..{self.n_fft // 2 + 1} for n_fft {self.n_fft}, "
                f"got {self.freq_bins}"
            )
        if self.time_frames < 2:
            problems.append(f"time_frames must be >= 2, got {self.time_frames}")
        elif self.clip_samples < self.time_frames - 1:
            problems.append(
                f"clip_samples {self.clip_samples} too short for {self.time_frames} frames"
            )
        if self.clip_samples <= self.n_fft // 2:
            problems.append(
                f"clip_samples must exceed n_fft // 2 = {self.n_fft // 2} for reflect padding, "
                f"got {self.clip_samples}"
            )
        if not self.db_range[0] < self.db_range[1]:
            problems.append(f"db_range must be (low, high) with low < high, got {self.db_range}")
        if problems:
            raise ConfigError("invalid StftConfig: " + "; ".join(problems))

    @property
    def hop_length(self) -> int:
        """Samples between frame centres (160 for the reference clip)."""
        return self.clip_samples // (self.time_frames - 1)

    @property
    def raw_frames(self) -> int:
        """Frames of the centred STFT before cropping to ``time_frames``."""
        return 1 + self.clip_samples // self.hop_length

    @property
    def duration_s(self) -> float:
        return self.clip_samples / self.sample_rate

    @staticmethod
    def for_duration(seconds: float, sample_rate: int = 16000, **overrides: object) -> StftConfig:
        """Config for clips of ``seconds`` at ``sample_rate``; other fields as the reference."""
        return StftConfig.for_samples(round(seconds * sample_rate), sample_rate, **overrides)

    @staticmethod
    def for_samples(samples: int, sample_rate: int = 16000, **overrides: object) -> StftConfig:
        """Config for clips of ``samples`` samples per channel."""
        return replace(StftConfig(), sample_rate=sample_rate, clip_samples=samples, **overrides)  # type: ignore[arg-type]


def _rect_window(cfg: StftConfig) -> npt.NDArray[np.float64]:
    window = np.zeros(cfg.n_fft)
    left = (cfg.n_fft - cfg.win_length) // 2
    window[left : left + cfg.win_length] = 1.0
    return window


def stft(signal: npt.ArrayLike, cfg: StftConfig) -> npt.NDArray[np.complex128]:
    """Complex STFT of one channel, (clip_samples,) -> (freq_bins, time_frames)."""
    x = np.asarray(signal, dtype=np.float64)
    if x.shape != (cfg.clip_samples,):
        raise InputFormatError(
            f"expected {cfg.clip_samples} samples, got shape {x.shape}: "
            "cut the clip to the configured length or use StftConfig.for_samples"
        )
    pad = cfg.n_fft // 2
    padded = np.pad(x, pad, mode="reflect")
    frames = np.lib.stride_tricks.sliding_window_view(padded, cfg.n_fft)[:: cfg.hop_length]
    frames = frames[: cfg.time_frames] * _rect_window(cfg)
    spec = np.fft.rfft(frames, n=cfg.n_fft, axis=-1)[:, : cfg.freq_bins]
    return spec.T


def _check_binaural(audio: npt.ArrayLike, cfg: StftConfig) -> npt.NDArray[np.float32]:
    arr = np.asarray(audio, dtype=np.float32)
    if arr.shape != (cfg.clip_samples, 2):
        raise InputFormatError(
            f"expected binaural audio of shape ({cfg.clip_samples}, 2), got {arr.shape}"
        )
    return arr


def normalise_magnitude(
    magnitude: npt.NDArray[np.floating], cfg: StftConfig
) -> npt.NDArray[np.float32]:
    """|X| -> dB -> [-1, 1] as the encoder expects."""
    low, high = cfg.db_range
    db = 20.0 * np.log10(np.maximum(magnitude, MAGNITUDE_FLOOR))
    return np.clip(2.0 * (db - low) / (high - low) - 1.0, -1.0, 1.0).astype(np.float32)


def binaural_features(
    audio: npt.ArrayLike, cfg: StftConfig | None = None
) -> npt.NDArray[np.float32]:
    """(clip_samples, 2) float audio -> (4, freq_bins, time_frames) float32 features."""
    cfg = cfg or StftConfig()
    arr = _check_binaural(audio, cfg)
    specs = [stft(arr[:, ch], cfg) for ch in range(2)]
    if cfg.phase_reference == "interaural":
        # angle(L * conj(R)) is the wrapped difference without a separate wrap step.
        ipd = np.angle(specs[0] * np.conj(specs[1]))
        phases = [ipd, -ipd]
    else:
        phases = [np.angle(spec) for spec in specs]
    planes = []
    for spec, phase in zip(specs, phases, strict=True):
        planes.append(normalise_magnitude(np.abs(spec), cfg))
        planes.append((phase / math.pi).astype(np.float32))
    return np.stack(planes)


def stft_torch(signal: torch.Tensor, cfg: StftConfig) -> torch.Tensor:
    """Torch version of ``stft``: (N, S) waveforms -> (N, freq_bins, time_frames) complex64.

    Computed in float32 on the signal's device; differentiable.
    """
    import torch

    flat = signal.float()
    window = torch.ones(cfg.win_length, dtype=flat.dtype, device=flat.device)
    spec = torch.stft(
        flat,
        n_fft=cfg.n_fft,
        hop_length=cfg.hop_length,
        win_length=cfg.win_length,
        window=window,
        center=True,
        pad_mode="reflect",
        return_complex=True,
    )
    return spec[:, : cfg.freq_bins, : cfg.time_frames]


def binaural_stft_torch(audio: torch.Tensor, cfg: StftConfig) -> torch.Tensor:
    """(B, 2, clip_samples) float audio -> (B, 2, freq_bins, time_frames) complex STFT."""
    if audio.ndim != 3 or audio.shape[1] != 2 or audio.shape[2] != cfg.clip_samples:
        raise InputFormatError(
            f"expected a (B, 2, {cfg.clip_samples}) tensor, got {tuple(audio.shape)}"
        )
    batch = audio.shape[0]
    spec = stft_torch(audio.reshape(batch * 2, cfg.clip_samples), cfg)
    return spec.reshape(batch, 2, cfg.freq_bins, cfg.time_frames)


def binaural_features_torch(audio: torch.Tensor, cfg: StftConfig | None = None) -> torch.Tensor:
    """Batched torch version of ``binaural_features`` for training.

    audio: (B, 2, clip_samples) float tensor, channel-first (channel 0 = left), any device.
    Returns (B, 4, freq_bins, time_frames) float32 on the same device. Differentiable.
    """
    import torch

    cfg = cfg or StftConfig()
    spec = binaural_stft_torch(audio, cfg)
    low, high = cfg.db_range
    db = 20.0 * torch.log10(torch.clamp(spec.abs(), min=MAGNITUDE_FLOOR))
    magnitude = torch.clamp(2.0 * (db - low) / (high - low) - 1.0, -1.0, 1.0)
    if cfg.phase_reference == "interaural":
        ipd = torch.angle(spec[:, 0] * spec[:, 1].conj())
        phase = torch.stack([ipd, -ipd], dim=1) / math.pi
    else:
        phase = torch.angle(spec) / math.pi
    features = torch.stack([magnitude, phase], dim=2)  # (B, 2 channels, 2, F, T)
    return features.reshape(audio.shape[0], 4, cfg.freq_bins, cfg.time_frames)
