"""Binaural cue front end of the compact audio network: one fixed vector per 1 s window.

The vector carries the geometry a learned model would otherwise have to rediscover from raw
spectrograms, so a small network on top learns in CPU minutes:

    gcc      (n_lags,)   GCC-PHAT over lags -max_lag..+max_lag on a 1/lag_oversample-sample
                         grid; the PHAT-weighted cross-spectrum is averaged over frames and
                         evaluated exactly at each lag (no FFT interpolation). Positive lags:
                         the right channel lags the left one, i.e. a source on the left.
    ipd_cos, ipd_sin     (n_bands,) each: direction of the band's summed cross-spectrum
                         (interaural phase at the band's energy centre).
    coherence (n_bands,) |sum cross| / sqrt(sum |L|^2 * sum |R|^2), 1 for a clean point source.
    ild      (n_bands,)  interaural level difference, dB / ILD_SCALE_DB, clipped to [-3, 3];
                         positive when the left channel is louder.
    level    (n_bands,)  band level relative to the window's mean band level (log10 units,
                         clipped to [-4, 2]): tells the network which bands carry the source.
    gcc_all  (n_lags,)   only with ``gcc_weighting: onset``: then ``gcc`` is the curve of the
                         onsets alone (``slfm_ros.core.dsp.precedence``: each frame and bin
                         weighted by how far its power rises above the recent past, where the
                         direct sound dominates its reflections) and this one weights every
                         frame alike, for sounds without onsets (steady noise, a held note).

Order in the vector: gcc, ipd_cos, ipd_sin, coherence, ild, level[, gcc_all]. Swapping the
channels maps the vector to ``mirror_cues``: the lag curves reversed, ipd_sin and ild negated,
the rest unchanged; the true azimuth phi becomes -phi, which the trainer uses as free
augmentation.

Channel 0 is the left ear (REP-103: +y is left).
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.precedence import check_onset_settings, hop_decay, onset_weights
from slfm_ros.core.errors import ConfigError, InputFormatError

Float32 = npt.NDArray[np.float32]
ILD_SCALE_DB = 10.0
# Changes whenever the cue vector's definition changes; caches record it.
FRONT_END_VERSION = 2
_PHAT_FLOOR = 1e-3
_POWER_FLOOR = 1e-12
GCC_WEIGHTINGS = ("phat", "onset")
# An onset curve is divided by its total weight plus this share of the frame-bin count, so a
# window with hardly any onset gives a flat curve instead of a few bins' noise.
_ONSET_WEIGHT_FLOOR = 1e-3


@dataclass(frozen=True)
class CueConfig:
    """Binaural cue front end.

    sample_rate:    Hz of the audio the cues are computed from.
    window_samples: samples per window (16000 = 1 s at 16 kHz).
    n_fft:          STFT frame length (Hann window), samples.
    hop:            STFT hop, samples.
    max_lag_s:      largest |interaural lag| in the GCC-PHAT curve, s.
    lag_oversample: lag grid points per sample period.
    n_bands:        log-spaced bands of the per-band cues.
    f_min_hz, f_max_hz: band range, Hz.
    gcc_weighting:  "phat": the lag curve weights every frame alike; "onset": the lag curve
                    of the onsets first, the plain one appended (module docstring).
    onset_memory_s: "onset": time constant of the smoothed past power, s (how long a
                    reflection tail keeps a bin from counting as an onset).
    onset_rise:     "onset": a bin counts fully when its power is this many times its past.
    """

    sample_rate: int = 16000
    window_samples: int = 16000
    n_fft: int = 512
    hop: int = 256
    max_lag_s: float = 1.5e-3
    lag_oversample: int = 4
    n_bands: int = 32
    f_min_hz: float = 100.0
    f_max_hz: float = 7800.0
    gcc_weighting: str = "phat"
    onset_memory_s: float = 0.023
    onset_rise: float = 2.0

    def __post_init__(self) -> None:
        for name in ("sample_rate", "window_samples", "n_fft", "hop", "lag_oversample", "n_bands"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"cues.{name}: expected a positive integer, got {value!r}")
        if self.window_samples < self.n_fft:
            raise ConfigError(
                f"cues.window_samples ({self.window_samples}) must be >= n_fft ({self.n_fft})"
            )
        if not 0 < self.max_lag_s < 0.01:
            raise ConfigError(f"cues.max_lag_s must be in (0, 0.01) s, got {self.max_lag_s}")
        nyquist = self.sample_rate / 2
        if not 0 < self.f_min_hz < self.f_max_hz <= nyquist:
            raise ConfigError(
                f"cues band {self.f_min_hz}..{self.f_max_hz} Hz must be ordered and within "
                f"(0, {nyquist}] Hz"
            )
        if self.n_bands > self.n_fft // 2:
            raise ConfigError(f"cues.n_bands ({self.n_bands}) exceeds the STFT's bins")
        if self.gcc_weighting not in GCC_WEIGHTINGS:
            raise ConfigError(
                f"cues.gcc_weighting must be one of {GCC_WEIGHTINGS}, got {self.gcc_weighting!r}"
            )
        check_onset_settings(self.onset_memory_s, self.onset_rise, "cues")

    @property
    def onset(self) -> bool:
        return self.gcc_weighting == "onset"

    @property
    def half_lags(self) -> int:
        return int(math.floor(self.max_lag_s * self.sample_rate * self.lag_oversample))

    @property
    def n_lags(self) -> int:
        return 2 * self.half_lags + 1

    @property
    def dim(self) -> int:
        return self.n_lags * (2 if self.onset else 1) + 5 * self.n_bands

    @property
    def window_seconds(self) -> float:
        return self.window_samples / self.sample_rate

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        if not self.onset:
            # Cards and cache keys of plain front ends stay as they were before these keys.
            for key in ("gcc_weighting", "onset_memory_s", "onset_rise"):
                del out[key]
        return out

    @staticmethod
    def from_dict(data: dict[str, Any]) -> CueConfig:
        unknown = sorted(set(data) - set(CueConfig.__dataclass_fields__))
        if unknown:
            raise ConfigError(f"cues: unknown key(s) {unknown}")
        return CueConfig(**data)

    def lag_seconds(self) -> npt.NDArray[np.float64]:
        """The lag of every GCC-PHAT entry, s."""
        step = 1.0 / (self.sample_rate * self.lag_oversample)
        lags = np.arange(-self.half_lags, self.half_lags + 1, dtype=np.float64) * step
        return lags.astype(np.float64)


@functools.lru_cache(maxsize=8)
def _tables(cfg: CueConfig) -> tuple[Float32, npt.NDArray[np.complex64], npt.NDArray[np.int64]]:
    """Hann window, lag steering table (F, n_lags) and the band index of every bin (-1: none)."""
    window = np.hanning(cfg.n_fft + 1)[:-1].astype(np.float32)
    freqs = np.fft.rfftfreq(cfg.n_fft, 1.0 / cfg.sample_rate)
    steer = np.exp(2j * np.pi * freqs[:, None] * cfg.lag_seconds()[None, :]).astype(np.complex64)
    # Log-spaced band edges on the bin grid, each band at least one bin wide (the low bands
    # would otherwise fall between bins).
    step = cfg.sample_rate / cfg.n_fft
    edges = np.round(np.geomspace(cfg.f_min_hz, cfg.f_max_hz, cfg.n_bands + 1) / step).astype(int)
    for k in range(1, edges.size):
        edges[k] = max(edges[k], edges[k - 1] + 1)
    band = np.full(freqs.size, -1)
    for b in range(cfg.n_bands):
        band[edges[b] : min(edges[b + 1], freqs.size)] = b
    return window, steer, band.astype(np.int64)


@functools.lru_cache(maxsize=8)
def _band_matrix(cfg: CueConfig) -> Float32:
    """(F, n_bands) 0/1 matrix: which band every STFT bin belongs to."""
    _, _, band = _tables(cfg)
    member = np.zeros((band.size, cfg.n_bands), dtype=np.float32)
    used = band >= 0
    member[np.flatnonzero(used), band[used]] = 1.0
    return member


def spectra(window: npt.ArrayLike, cfg: CueConfig) -> tuple[np.ndarray, np.ndarray]:
    """(T, F) complex STFTs of the left and right channel of a (window_samples, 2) window."""
    x = np.asarray(window, dtype=np.float32)
    if x.ndim != 2 or x.shape[1] != 2:
        raise InputFormatError(f"binaural cues need (frames, 2) audio, got shape {x.shape}")
    if x.shape[0] < cfg.n_fft:
        raise InputFormatError(f"binaural cues need at least {cfg.n_fft} frames, got {x.shape[0]}")
    hann, _, _ = _tables(cfg)
    n_frames = 1 + (x.shape[0] - cfg.n_fft) // cfg.hop
    idx = np.arange(cfg.n_fft)[None, :] + cfg.hop * np.arange(n_frames)[:, None]
    frames = x[idx] * hann[None, :, None]  # (T, n_fft, 2)
    spec = np.fft.rfft(frames, axis=1)
    return spec[:, :, 0], spec[:, :, 1]


def cues_from_spectra(left: np.ndarray, right: np.ndarray, cfg: CueConfig) -> Float32:
    """The cue vector (cfg.dim,) of one window's (T, F) left and right STFTs."""
    _, steer, band = _tables(cfg)
    cross = right * np.conj(left)  # peaks at lag t_right - t_left
    magnitude = np.abs(cross)
    floor = np.float32(_PHAT_FLOOR * float(magnitude.mean()) + _POWER_FLOOR)
    phat_frames = cross / np.maximum(magnitude, floor)
    left_power = left.real**2 + left.imag**2
    right_power = right.real**2 + right.imag**2
    used = band >= 0
    gcc = (phat_frames.mean(axis=0)[used] @ steer[used]).real / max(int(used.sum()), 1)
    curves = [gcc]
    if cfg.onset:
        decay = hop_decay(cfg.onset_memory_s, cfg.hop / cfg.sample_rate)
        weights = onset_weights(left_power + right_power, decay, cfg.onset_rise)[:, used]
        total = float(weights.sum()) + _ONSET_WEIGHT_FLOOR * weights.size
        onset_phat = (weights * phat_frames[:, used]).sum(axis=0) / total
        curves = [(onset_phat @ steer[used]).real, gcc]

    member = _band_matrix(cfg)
    b_cross = cross.sum(axis=0) @ member
    b_left = left_power.sum(axis=0) @ member + _POWER_FLOOR
    b_right = right_power.sum(axis=0) @ member + _POWER_FLOOR
    # The cross-spectrum's conjugate direction is the left-minus-right phase.
    direction = np.conj(b_cross) / np.maximum(np.abs(b_cross), _POWER_FLOOR)
    coherence = np.abs(b_cross) / np.sqrt(b_left * b_right)
    ild = np.clip(10.0 * np.log10(b_left / b_right) / ILD_SCALE_DB, -3.0, 3.0)
    level = np.log10(b_left + b_right)
    level = np.clip(level - level.mean(), -4.0, 2.0)
    out = np.concatenate(
        [
            curves[0],
            direction.real,
            direction.imag,
            np.clip(coherence, 0.0, 1.0),
            ild,
            level,
            *curves[1:],
        ]
    )
    return out.astype(np.float32)


def binaural_cues(window: npt.ArrayLike, cfg: CueConfig) -> Float32:
    """The cue vector (cfg.dim,) of a (frames, 2) window at cfg.sample_rate (channel 0 left)."""
    left, right = spectra(window, cfg)
    return cues_from_spectra(left, right, cfg)


def mirror_cues(cues: npt.ArrayLike, cfg: CueConfig) -> Float32:
    """The cue vector(s) (..., dim) of the same window(s) with the channels swapped."""
    x = np.array(cues, dtype=np.float32, copy=True)
    if x.shape[-1] != cfg.dim:
        raise InputFormatError(f"expected cue vectors of {cfg.dim} values, got {x.shape[-1]}")
    parts = cue_slices(cfg)
    for name in ("gcc", "gcc_all"):
        if name in parts:
            x[..., parts[name]] = x[..., parts[name]][..., ::-1]
    x[..., parts["ipd_sin"]] *= -1.0
    x[..., parts["ild"]] *= -1.0
    return x


def cue_slices(cfg: CueConfig) -> dict[str, slice]:
    """Where each cue group lies in the vector."""
    n, b = cfg.n_lags, cfg.n_bands
    names = ("ipd_cos", "ipd_sin", "coherence", "ild", "level")
    out = {"gcc": slice(0, n)}
    for k, name in enumerate(names):
        out[name] = slice(n + k * b, n + (k + 1) * b)
    if cfg.onset:
        out["gcc_all"] = slice(n + 5 * b, 2 * n + 5 * b)
    return out
