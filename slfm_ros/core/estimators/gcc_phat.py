"""GCC-PHAT interaural time difference -> front-half-plane azimuth.

The clip is cut into windows of ``window`` samples (hop ``hop``, default no overlap), each
zero-padded to ``n_fft``. Per window the cross-power spectrum R * conj(L) is divided by its
magnitude (PHAT; a small floor of ``1e-3`` x the window's mean magnitude keeps empty bins, e.g.
above the band of resampled audio, from adding noise). Its inverse FFT peaks at the lag
ITD = t_right - t_left, positive for a source on the left.

Combining windows (the reference baseline offers both):
    "mean"  peak of the mean of the windows' PHAT spectra (one correlation, averaged);
    "vote"  per-window peaks; the sign held by most windows wins and the estimate is the
            median of the windows on that side.
The peak lag is refined below one sample by evaluating the band-limited correlation on a
1/20-sample grid around the integer peak and fitting a parabola to the best three points.
Lags are searched within +-min(max_lag_s, 1.1 * geometry.max_itd).

Weighting (``weighting``):
    "phat"  every window counts alike (the reference baseline);
    "onset" each window's bins are weighted by how far their power rises above the recent
            past (``slfm_ros.core.dsp.precedence``): in a room the onsets carry the direct
            sound and the rest mostly its reflections. It needs windows short enough to
            resolve onsets (``ONSET_SETTINGS``: 32 ms, hop 8 ms).

Confidence = coherence * agreement: coherence is the height of the combined correlation peak
(1 for a clean pure delay, near 0 for diffuse noise), agreement the share of windows whose own
peak lies within max(1 sample, 10 % of the lag range) of the estimate (with "onset", each
window counts by its total weight). Windows quieter than ``silence_dbfs`` are skipped; a clip
with no loud window is invalid ("silence").

Evidence time (``AngleEstimate.evidence_s``): the loud windows' centres, each counted by its own
(weighted) correlation at the estimated lag, where positive: the time of the windows that the
peak rests on. For speech with pauses, or with onset weighting, that is not the clip's middle;
while the robot turns, the windows' peaks move, and the estimate holds at the time of those
that agree with it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.iid import rms_dbfs
from slfm_ros.core.dsp.precedence import check_onset_settings, hop_decay, onset_weights
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate, AudioEstimator
from slfm_ros.core.geometry.interaural import InterauralGeometry, SphericalHeadGeometry

COMBINE_MODES = ("mean", "vote")
TAPERS = ("hann", "none")
WEIGHTINGS = ("phat", "onset")
# Window settings of the onset-weighted estimator ("gcc_phat_onset"): 32 ms windows every 8 ms
# resolve syllable onsets at 16 kHz. The FFT is not padded: the Hann taper keeps the wrap-around
# of lags within +-1.5 ms negligible, and it halves the cost.
ONSET_SETTINGS: dict[str, Any] = {"weighting": "onset", "window": 512, "n_fft": 512, "hop": 128}
_PHAT_FLOOR = 1e-3
_REFINE_STEPS = np.linspace(-1.0, 1.0, 41)
_LOBE_UPSAMPLE = 8  # peak_within's lag grid: 1/8 sample
# peak_within's lags reach this many times the geometry's largest delay: a real head's delay at
# the side can exceed the fitted sphere's by some 10 % (speech through a KEMAR at -87 deg: 1.11).
_SIDE_REACH = 1.15


class PeakFound(NamedTuple):
    """A correlation peak: its azimuth (rad) and the time of its evidence (s from the clip's
    start, ``AngleEstimate.evidence_s``)."""

    angle: float
    evidence_s: float


class GccPhatAzimuth(AudioEstimator):
    """Azimuth (radians, front half-plane [-pi/2, pi/2]) from the GCC-PHAT ITD.

    geometry:   receiver model that maps ITD to azimuth.
    window:     samples per analysis window (at the audio's own rate).
    n_fft:      FFT size per window (>= window; 2 x window gives linear correlation).
    max_lag_s:  largest |ITD| searched, further clipped to 1.1 x geometry.max_itd.
    combine:    "mean" or "vote" (see module docstring).
    silence_dbfs: windows (and clips) below this RMS level are skipped.
    hop:        samples between window starts; None = half a window with the Hann taper, a
                whole window without it.
    taper:      "hann" or "none". Speech concentrates its energy at low frequencies; cut with
                rectangular edges, the leakage of those bins swamps the weak high-frequency bins
                that PHAT amplifies, and the correlation peak drifts to zero lag.
    weighting:  "phat" or "onset" (module docstring).
    onset_memory_s, onset_rise: "onset": time constant of the past power (s) and how many
                times above it a bin's power must rise to count fully.
    """

    name = "gcc_phat"

    def __init__(
        self,
        geometry: InterauralGeometry | None = None,
        window: int = 1024,
        n_fft: int = 2048,
        max_lag_s: float = 1.5e-3,
        combine: str = "mean",
        silence_dbfs: float = -60.0,
        hop: int | None = None,
        taper: str = "hann",
        weighting: str = "phat",
        onset_memory_s: float = 0.023,
        onset_rise: float = 2.0,
    ) -> None:
        if combine not in COMBINE_MODES:
            raise ConfigError(f"combine must be one of {COMBINE_MODES}, got {combine!r}")
        if window < 16 or n_fft < window:
            raise ConfigError(f"need window >= 16 and n_fft >= window, got {window}, {n_fft}")
        if max_lag_s <= 0:
            raise ConfigError(f"max_lag_s must be > 0, got {max_lag_s}")
        if taper not in TAPERS:
            raise ConfigError(f"taper must be one of {TAPERS}, got {taper!r}")
        if hop is not None and hop < 1:
            raise ConfigError(f"hop must be >= 1 sample, got {hop}")
        if weighting not in WEIGHTINGS:
            raise ConfigError(f"weighting must be one of {WEIGHTINGS}, got {weighting!r}")
        check_onset_settings(onset_memory_s, onset_rise, "gcc_phat")
        self.weighting = weighting
        self.onset_memory_s = float(onset_memory_s)
        self.onset_rise = float(onset_rise)
        self.geometry = geometry if geometry is not None else SphericalHeadGeometry()
        self.window = int(window)
        self.n_fft = int(n_fft)
        self.max_lag_s = min(float(max_lag_s), 1.1 * self.geometry.max_itd)
        self.combine = combine
        self.silence_dbfs = float(silence_dbfs)
        self.taper = taper
        default_hop = self.window // 2 if taper == "hann" else self.window
        self.hop = int(hop) if hop is not None else default_hop
        self._taper = np.hanning(self.window) if taper == "hann" else np.ones(self.window)
        bins = np.arange(self.n_fft // 2 + 1)
        # Weights that turn a one-sided sum into the real inverse DFT (DC and Nyquist once).
        self._weights = np.full(bins.size, 2.0 / self.n_fft)
        self._weights[0] = 1.0 / self.n_fft
        if self.n_fft % 2 == 0:
            self._weights[-1] = 1.0 / self.n_fft
        self._bins = bins
        self._refine_basis = np.exp(2j * np.pi * np.outer(bins, _REFINE_STEPS) / self.n_fft)

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio (frames, 2) float32, channel 0 left; sample_rate in Hz."""
        arr = np.asarray(audio, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InputFormatError(f"expected binaural audio (frames, 2), got {arr.shape}")
        if arr.shape[0] < self.window:
            raise InputFormatError(
                f"clip of {arr.shape[0]} frames is shorter than one GCC-PHAT window "
                f"({self.window}): use a longer clip or a smaller window"
            )
        if not np.isfinite(arr).all():
            return AngleEstimate.invalid("non-finite samples")
        if rms_dbfs(arr) < self.silence_dbfs:
            return AngleEstimate.invalid("silence")

        spectra, weights, times = self._phat_spectra(arr, sample_rate)
        if spectra.shape[0] == 0:
            return AngleEstimate.invalid("silence")
        itd_s, confidence = self._itd(spectra, weights, sample_rate)
        azimuth = self.geometry.azimuth_from_itd(itd_s)
        evidence_s = self._evidence_time(spectra, weights, times, itd_s * sample_rate)
        return AngleEstimate.from_confidence(azimuth, confidence, evidence_s=evidence_s)

    def peak_within(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        low: float,
        high: float,
        min_relative_height: float = 0.3,
    ) -> float | None:
        """Azimuth (rad, front half-plane) of the highest correlation among the lags of the
        azimuths in [low, high] (front half-plane, low < high), or None when there is none: the
        clip is silent, the highest point lies on an edge of the range that is not the side
        (+-pi/2), so the range holds no peak of its own, or it is lower than
        ``min_relative_height`` times the correlation's highest point over all lags (a side
        lobe of a peak outside the range, not a sound's own peak).

        A learned model that picks the right lobe of a reverberant correlation but places it
        less precisely than the correlation's own peak uses this to refine its answer.
        """
        return self.first_peak_within(audio, sample_rate, [(low, high)], min_relative_height)

    def first_peak_within(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        ranges: Sequence[tuple[float, float]],
        min_relative_height: float = 0.3,
    ) -> float | None:
        """``peak_within`` of the first of ``ranges`` that holds a peak (None: none does), from
        one correlation of the clip."""
        found = self.first_peak_evidence(audio, sample_rate, ranges, min_relative_height)
        return None if found is None else found.angle

    def first_peak_evidence(
        self,
        audio: npt.NDArray[np.float32],
        sample_rate: int,
        ranges: Sequence[tuple[float, float]],
        min_relative_height: float = 0.3,
    ) -> PeakFound | None:
        """``first_peak_within`` with the time of the evidence behind the peak (the clip's
        windows' centres, weighted as the correlation weights them)."""
        arr = np.asarray(audio, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2 or arr.shape[0] < self.window:
            return None
        if not np.isfinite(arr).all():
            return None
        spectra, weights, times = self._phat_spectra(arr, sample_rate)
        if spectra.shape[0] == 0:
            return None
        # The mean correlation on a 1/8-sample grid from one zero-padded inverse FFT (a
        # band-limited interpolation), then a parabola through the best three grid points.
        curve = np.fft.irfft(spectra.mean(axis=0), n=self.n_fft * _LOBE_UPSAMPLE)
        reach = max(self.max_lag_s, _SIDE_REACH * self.geometry.max_itd)
        span = min(
            int(np.ceil(reach * sample_rate * _LOBE_UPSAMPLE)),
            (self.n_fft * _LOBE_UPSAMPLE) // 2 - 1,
        )
        grid = np.concatenate([curve[-span:], curve[: span + 1]])  # lags -span..span
        for low, high in ranges:
            found = self._grid_peak(grid, span, sample_rate, low, high, min_relative_height)
            if found is not None:
                azimuth, lag = found
                return PeakFound(azimuth, self._evidence_time(spectra, weights, times, lag))
        return None

    def _grid_peak(
        self,
        grid: npt.NDArray[np.float64],
        span: int,
        sample_rate: int,
        low: float,
        high: float,
        min_relative_height: float,
    ) -> tuple[float, float] | None:
        """(azimuth rad, lag in samples) of the range's peak on the 1/8-sample ``grid``."""
        low, high = max(low, -math.pi / 2), min(high, math.pi / 2)
        if not low < high:
            return None
        ends = self.geometry.itd(np.array([low, high])) * sample_rate
        first = int(np.ceil(ends[0] * _LOBE_UPSAMPLE)) + span
        last = int(np.floor(ends[1] * _LOBE_UPSAMPLE)) + span
        first, last = max(first, 1), min(last, grid.size - 2)
        if last - first < 2:
            return None
        best = first + int(np.argmax(grid[first : last + 1]))
        beyond = self._peak_beyond_side(grid, first, last, low, high)
        if beyond is not None and grid[beyond] > grid[best]:
            first, last, best = min(first, beyond), max(last, beyond), beyond
        at_side = (best == first and low <= -math.pi / 2) or (best == last and high >= math.pi / 2)
        if not (first < best < last or at_side):
            return None
        if grid[best] < min_relative_height * float(grid.max()):
            return None
        y0, y1, y2 = grid[best - 1], grid[best], grid[best + 1]
        curvature = y0 - 2.0 * y1 + y2
        offset = float(np.clip(0.5 * (y0 - y2) / curvature, -0.5, 0.5)) if curvature < 0 else 0.0
        lag = (best - span + offset) / _LOBE_UPSAMPLE
        return self.geometry.azimuth_from_itd(lag / sample_rate), lag

    @staticmethod
    def _peak_beyond_side(
        grid: npt.NDArray[np.float64], first: int, last: int, low: float, high: float
    ) -> int | None:
        """A local peak of the correlation past the geometry's largest delay (up to
        ``_SIDE_REACH`` times it), on the side the range ``[low, high]`` reaches, or None.

        A real head's delay at the side can exceed that of the sphere fitted to it; inside the
        range the peak's flank then loses to a side lobe. Only a peak counts: a curve still
        rising at the grid's end belongs to a delay far beyond it (a receiver much larger
        than the geometry says), which says nothing about the side.
        """
        candidates = []
        if low <= -math.pi / 2 and first > 1:
            candidates.append(range(1, first))
        if high >= math.pi / 2 and last < grid.size - 2:
            candidates.append(range(last + 1, grid.size - 1))
        found = None
        for region in candidates:
            index = region.start + int(np.argmax(grid[region.start : region.stop]))
            inner = 1 < index < grid.size - 2
            if inner and grid[index] >= grid[index - 1] and grid[index] >= grid[index + 1]:
                if found is None or grid[index] > grid[found]:
                    found = index
        return found

    def _itd(
        self,
        spectra: npt.NDArray[np.complex128],
        weights: npt.NDArray[np.float64],
        sample_rate: int,
    ) -> tuple[float, float]:
        """(ITD in seconds, confidence 0..1) from (windows, bins) PHAT spectra, windows >= 1,
        and each window's share of the evidence (``weights``, summing to 1)."""
        max_lag = self.max_lag_s * sample_rate
        int_lag = max(1, math.floor(max_lag))
        lags = np.arange(-int_lag, int_lag + 1)

        per_window_cc = np.fft.irfft(spectra, n=self.n_fft, axis=1)[:, lags]
        per_window_peak = lags[np.argmax(per_window_cc, axis=1)].astype(np.float64)

        if self.combine == "mean":
            mean_spec = spectra.mean(axis=0, keepdims=True)
            coarse = np.array([_integer_peak(mean_spec, lags, self.n_fft)])
            lag, height = self._refine(mean_spec, coarse)
            lag_samples, coherence = float(lag[0]), float(height[0])
        else:
            fine, _heights = self._refine(spectra, per_window_peak)
            side = np.sign((np.sign(fine) * weights).sum())
            chosen = fine if side == 0 else fine[np.sign(fine) == side]
            lag_samples = float(np.median(chosen))
            mean_spec = spectra.mean(axis=0, keepdims=True)
            coherence = float(self._correlation_at(mean_spec, np.array([lag_samples]))[0])
            per_window_peak = fine

        lag_samples = float(np.clip(lag_samples, -max_lag, max_lag))
        tolerance = max(1.0, 0.1 * max_lag)
        near = np.abs(per_window_peak - lag_samples) <= tolerance + 0.5
        agreement = float(np.sum(weights * near))
        confidence = float(np.clip(coherence, 0.0, 1.0)) * agreement
        return lag_samples / sample_rate, confidence

    def _phat_spectra(
        self, audio: npt.NDArray[np.float64], sample_rate: int
    ) -> tuple[npt.NDArray[np.complex128], npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(windows, n_fft//2+1) PHAT-weighted cross spectra R * conj(L) of the loud windows,
        scaled so that their mean is the weighted mean, each window's share of the weight, and
        each window's centre (s from the clip's start).
        """
        starts = np.arange(0, audio.shape[0] - self.window + 1, self.hop)
        segments = np.lib.stride_tricks.sliding_window_view(audio, self.window, axis=0)[starts]
        # segments: (windows, 2, window)
        energy = np.mean(segments * segments, axis=(1, 2))
        loud = energy > 10.0 ** (self.silence_dbfs / 10.0)
        onset = self.weighting == "onset"
        # Onsets are judged on every window, quiet ones included, so that a sound starting
        # after a pause counts as an onset; only the loud windows carry evidence.
        spec = np.fft.rfft((segments if onset else segments[loud]) * self._taper, n=self.n_fft)
        power = np.sum(spec.real**2 + spec.imag**2, axis=1) if onset else None
        if onset:
            spec = spec[loud]
        cross = spec[:, 1] * np.conj(spec[:, 0])
        magnitude = np.abs(cross)
        floor = _PHAT_FLOOR * magnitude.mean(axis=1, keepdims=True) + 1e-30
        phat = cross / (magnitude + floor)
        count = phat.shape[0]
        times = (starts[loud] + 0.5 * self.window) / sample_rate
        if power is None or count == 0:
            return phat, np.full(count, 1.0 / max(count, 1)), times
        decay = hop_decay(self.onset_memory_s, self.hop / sample_rate)
        weight = onset_weights(power, decay, self.onset_rise)[loud].astype(np.float64)
        total = float(weight.sum())
        if total <= 0.0:  # no onset at all (a steady sound): every window alike
            return phat, np.full(count, 1.0 / count), times
        # Scaled so that the bins' mean weight is 1 over the clip: the mean of the rows is then
        # a weighted mean whose correlation peak stays within [0, 1].
        scale = count * weight.shape[1] / total
        per_window = weight.sum(axis=1)
        return phat * weight * scale, per_window / total, times

    def _evidence_time(
        self,
        spectra: npt.NDArray[np.complex128],
        weights: npt.NDArray[np.float64],
        times: npt.NDArray[np.float64],
        lag_samples: float,
    ) -> float:
        """Centre in time (s) of the windows that hold up the correlation at ``lag_samples``:
        each window counts by its own (weighted) correlation at that lag, where positive.

        A source that moves during the clip (or a robot that turns) leaves its windows' peaks
        at different lags; the combined peak rests on the windows whose peak lies near it, and
        the direction is the one of their time, not of every loud window's. Falls back to the
        windows' weighted mean time when no window correlates positively at the lag.
        """
        support = np.maximum(self._correlation_at(spectra, np.array([lag_samples])), 0.0)
        total = float(support.sum())
        if total <= 0.0 or not math.isfinite(total):
            return float(np.dot(weights, times))
        return float(np.dot(support, times) / total)

    def _correlation_at(
        self, spectra: npt.NDArray[np.complex128], lags: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.float64]:
        """Band-limited correlation of each spectrum row at a fractional lag (samples)."""
        phase = np.exp(2j * np.pi * np.outer(lags, self._bins) / self.n_fft)
        return np.real(np.sum(spectra * phase * self._weights, axis=1))

    def _refine(
        self, spectra: npt.NDArray[np.complex128], coarse: npt.NDArray[np.float64]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Sub-sample peak lags and heights around integer peaks ``coarse`` (one per row)."""
        shifted = (
            spectra * self._weights * np.exp(2j * np.pi * np.outer(coarse, self._bins) / self.n_fft)
        )
        values = np.real(shifted @ self._refine_basis)  # (rows, steps)
        best = np.clip(np.argmax(values, axis=1), 1, values.shape[1] - 2)
        rows = np.arange(values.shape[0])
        y0, y1, y2 = values[rows, best - 1], values[rows, best], values[rows, best + 1]
        denom = y0 - 2.0 * y1 + y2
        with np.errstate(divide="ignore", invalid="ignore"):
            offset = np.where(denom < 0, 0.5 * (y0 - y2) / denom, 0.0)
        step = _REFINE_STEPS[1] - _REFINE_STEPS[0]
        lag = coarse + _REFINE_STEPS[best] + offset * step
        height = y1 - 0.25 * (y0 - y2) * offset
        return lag, height


def _integer_peak(
    spectra: npt.NDArray[np.complex128], lags: npt.NDArray[np.int64], n_fft: int
) -> float:
    """Integer lag of the correlation peak of the first spectrum row within ``lags``."""
    cc = np.fft.irfft(spectra[0], n=n_fft)[lags]
    return float(lags[int(np.argmax(cc))])
