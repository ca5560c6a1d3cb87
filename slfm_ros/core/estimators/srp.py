"""SRP-PHAT / MUSIC azimuth with pyroomacoustics.doa on a two-microphone array.

The pair lies on the y axis (REP-103: y left): channel 0 (left) at y = +spacing/2, channel 1
at y = -spacing/2, so pyroomacoustics' azimuth (counter-clockwise from +x) is ours. A linear
pair cannot tell front from back; the answer is folded into the front half-plane.
With a head geometry the pair is given the spacing whose free-field ITD at 90 degrees equals
the head's (max_itd x speed of sound), a broadband approximation of the head.

Confidence = (peak - mean) / peak of the spatial spectrum over the search grid: 0 for a flat
spectrum (diffuse noise), towards 1 for a sharp peak. Plain MUSIC's spectrum is dominated by
its sharpest frequency bin, so its confidence is taken from the per-bin normalised spectrum
(what NormMUSIC averages) while its azimuth stays plain MUSIC's.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from slfm_ros.core.conventions import fold_to_front
from slfm_ros.core.dsp.iid import rms_dbfs
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.estimators.base import AngleEstimate, AudioEstimator
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S, InterauralGeometry

DOA_ALGORITHMS = ("SRP", "MUSIC", "NormMUSIC")


class PyroomacousticsDoa(AudioEstimator):
    """Front-half-plane azimuth (radians) from pyroomacoustics' SRP-PHAT, MUSIC or NormMUSIC.

    algorithm:  "SRP", "MUSIC" or "NormMUSIC".
    spacing_m:  microphone spacing; or give ``geometry`` instead (not both).
    n_fft:      STFT size of the snapshots (Hann window, half overlap); None = the power of
                two nearest to 32 ms at the audio's rate (512 at 16 kHz, 2048 at 48 kHz).
    freq_range: (low, high) Hz of the bins used.
    grid_points: azimuth grid over the full circle.
    silence_dbfs: clips below this RMS level are invalid.
    """

    def __init__(
        self,
        algorithm: str = "SRP",
        spacing_m: float | None = None,
        geometry: InterauralGeometry | None = None,
        n_fft: int | None = None,
        freq_range: tuple[float, float] = (300.0, 4000.0),
        grid_points: int = 360,
        silence_dbfs: float = -60.0,
        speed_of_sound: float = SPEED_OF_SOUND_M_S,
    ) -> None:
        if algorithm not in DOA_ALGORITHMS:
            raise ConfigError(f"algorithm must be one of {DOA_ALGORITHMS}, got {algorithm!r}")
        if spacing_m is not None and geometry is not None:
            raise ConfigError("give spacing_m or geometry, not both")
        if spacing_m is None:
            spacing_m = geometry.max_itd * speed_of_sound if geometry is not None else 0.14
        if spacing_m <= 0:
            raise ConfigError(f"spacing_m must be > 0, got {spacing_m}")
        if not 0 <= freq_range[0] < freq_range[1]:
            raise ConfigError(
                f"freq_range must be (low, high) Hz with low < high, got {freq_range}"
            )
        if (n_fft is not None and n_fft < 16) or grid_points < 8:
            raise ConfigError(f"need n_fft >= 16 and grid_points >= 8, got {n_fft}, {grid_points}")
        self.algorithm = algorithm
        self.name = "srp_phat" if algorithm == "SRP" else algorithm.lower()
        self.spacing_m = float(spacing_m)
        self.n_fft = n_fft
        self.freq_range = (float(freq_range[0]), float(freq_range[1]))
        self.grid = np.linspace(0.0, 2.0 * math.pi, int(grid_points), endpoint=False)
        self.silence_dbfs = float(silence_dbfs)
        self.speed_of_sound = float(speed_of_sound)
        self._mics = np.array([[0.0, 0.0], [self.spacing_m / 2, -self.spacing_m / 2]])

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio (frames, 2) float32, channel 0 left; sample_rate in Hz."""
        import pyroomacoustics as pra

        arr = np.asarray(audio, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InputFormatError(f"expected binaural audio (frames, 2), got {arr.shape}")
        n_fft = self.n_fft or 2 ** round(math.log2(0.032 * sample_rate))
        if arr.shape[0] < 2 * n_fft:
            raise InputFormatError(
                f"clip of {arr.shape[0]} frames is shorter than two STFT frames "
                f"({2 * n_fft}): use a longer clip or a smaller n_fft"
            )
        if not np.isfinite(arr).all():
            return AngleEstimate.invalid("non-finite samples")
        if rms_dbfs(arr) < self.silence_dbfs:
            return AngleEstimate.invalid("silence")

        frames = np.lib.stride_tricks.sliding_window_view(arr, n_fft, axis=0)[:: n_fft // 2]
        # frames: (snapshots, 2, n_fft) -> X: (mics, bins, snapshots)
        spec = np.fft.rfft(frames * np.hanning(n_fft), axis=2)
        x = np.transpose(spec, (1, 2, 0))
        # Diagonal loading: a deterministic noise floor 60 dB below the signal keeps the MUSIC
        # noise subspace from vanishing on noise-free input (which would divide by zero).
        loading = np.random.default_rng(0).standard_normal((2, *x.shape)) * 1e-3
        x = x + np.sqrt(np.mean(np.abs(x) ** 2) / 2) * (loading[0] + 1j * loading[1])
        doa = pra.doa.algorithms[self.algorithm](
            self._mics,
            sample_rate,
            n_fft,
            c=self.speed_of_sound,
            num_src=1,
            azimuth=self.grid,
        )
        high = min(self.freq_range[1], 0.5 * sample_rate)
        with np.errstate(divide="ignore", invalid="ignore"):
            doa.locate_sources(x, freq_range=[self.freq_range[0], high])
        if not np.all(np.isfinite(doa.grid.values)):
            return AngleEstimate.invalid("spatial spectrum not finite")
        azimuth = fold_to_front(float(doa.azimuth_recon[0]))
        values = np.asarray(doa.grid.values, dtype=np.float64)
        if self.algorithm == "MUSIC":
            per_bin = np.asarray(doa.Pssl, dtype=np.float64)  # (grid, bins)
            values = np.mean(per_bin / per_bin.max(axis=0, keepdims=True), axis=1)
        peak = float(values.max())
        confidence = (peak - float(values.mean())) / peak if peak > 0 else 0.0
        return AngleEstimate.from_confidence(azimuth, confidence)
