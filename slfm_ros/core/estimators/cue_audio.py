"""Sound azimuth from the compact audio network (binaural cues -> distribution on the circle).

The clip is cut into up to ``max_windows`` windows of the model's length; each gives a
distribution over the full circle; the clip's distribution is their normalised product
(independent looks at one static source), tempered by 1/K so that K windows do not claim K
times the certainty. The estimate is the front-folded peak (a two-ear receiver without pinnae
cannot tell front from back, and the pipeline's consumers expect the front half), refined by
the neighbouring bins; its confidence is the folded probability mass near the peak, which the
network is trained to make calibrated.

``max_itd_s``: the receiver's largest interaural delay when the user knows it (the node's
``receiver``, ``mic_spacing_m``, ``head_radius_m``), None when not; the network was trained with
and without it. ``geometry``: the receiver's whole interaural model, when known; it gives the
largest delay, and with ``lobe_refine_itd`` > 0 the answer becomes the GCC-PHAT peak among the
lags within that fraction of the largest delay of the network's answer
(``GccPhatAzimuth.peak_within``): the network is the more robust at choosing the lobe (a strong
reflection can outweigh the direct sound in the correlation's global peak), the correlation the
more precise at placing it. The range is set in lags, not degrees, because a reflection's
spurious peak is a lag away, and near the sides many degrees share almost one lag. With
``lobe_widening`` (1, 2, 4), a range that holds no peak of its own is followed by ranges two and
four times as wide: in a room whose reflections bend the cues, the network's answer can be a
few degrees beyond the narrow range while still on the right side of the correlation's other
lobes, and its coarse bins are the worse answer there. That needs delays that match the
receiver (a calibrated one); with a receiver described only roughly the wider ranges land on
the wrong delays. Where no range holds a peak the network's answer stands.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.binaural_cues import CueConfig, binaural_cues
from slfm_ros.core.dsp.resample import resample
from slfm_ros.core.errors import ConfigError, InputFormatError, ModelError
from slfm_ros.core.estimators.base import REFINED, AngleEstimate, AudioEstimator, screen_binaural
from slfm_ros.core.estimators.gcc_phat import ONSET_SETTINGS, GccPhatAzimuth
from slfm_ros.core.geometry.interaural import InterauralGeometry
from slfm_ros.core.models.azimuth_bins import CueNetConfig, decode_azimuth, softmax
from slfm_ros.core.models.compact import checked_widening

# run_audio(features (B, cues + 2) float32) -> logits (B, n_bins) float32
LogitRunner = Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float32]]


# The refinement's successive ranges, as multiples of lobe_refine_itd, for a receiver whose
# delays were calibrated (docstring); the default searches the narrow range only.
CALIBRATED_WIDENING = (1.0, 2.0, 4.0)


def aperture_row(max_itd_s: float | None) -> npt.NDArray[np.float32]:
    """The two receiver inputs of the network: [known, max_itd_ms]."""
    if max_itd_s is None:
        return np.zeros(2, dtype=np.float32)
    if not 0.0 < max_itd_s < 0.01:
        raise ConfigError(f"receiver max ITD must be in (0, 10) ms, got {max_itd_s * 1e3} ms")
    return np.array([1.0, max_itd_s * 1e3], dtype=np.float32)


def network_input(
    window: npt.ArrayLike, cues: CueConfig, max_itd_s: float | None
) -> npt.NDArray[np.float32]:
    """The network's input row of one (window_samples, 2) window at the model rate."""
    return np.concatenate([binaural_cues(window, cues), aperture_row(max_itd_s)])


class CueAudioEstimator(AudioEstimator):
    """Front-folded azimuth (radians) from the compact audio network.

    cues, net:    the model's front end and network configs (model card).
    run_audio:    the network call (torch, ONNX Runtime or TensorRT), see LogitRunner.
    max_itd_s:    the receiver's largest interaural delay, None when unknown (then taken from
                  ``geometry`` when that is given).
    max_windows:  windows per clip (evenly spaced; the newest audio always included).
    silence_dbfs: clips below this RMS level are declined as silence.
    geometry:     the receiver's interaural model, None when unknown.
    lobe_refine_itd: with ``geometry``, refine within this fraction of the largest interaural
                  delay (module docstring).
    lobe_widening: the ranges searched in turn, as multiples of ``lobe_refine_itd``.
    """

    name = "slfm"

    def __init__(
        self,
        cues: CueConfig,
        net: CueNetConfig,
        run_audio: LogitRunner,
        max_itd_s: float | None = None,
        max_windows: int = 4,
        silence_dbfs: float = -60.0,
        geometry: InterauralGeometry | None = None,
        lobe_refine_itd: float = 0.0,
        lobe_widening: tuple[float, ...] = (1.0,),
    ) -> None:
        if max_windows < 1:
            raise ConfigError(f"max_windows must be >= 1, got {max_windows}")
        if not 0.0 <= lobe_refine_itd <= 2.0:
            raise ConfigError(f"lobe_refine_itd must be in [0, 2], got {lobe_refine_itd}")
        self.cues = cues
        self.net = net
        self.run_audio = run_audio
        if max_itd_s is None and geometry is not None:
            max_itd_s = geometry.max_itd
        self.aperture = aperture_row(max_itd_s)
        self.lobe_refine_itd = float(lobe_refine_itd)
        self.lobe_widening = checked_widening(lobe_widening)
        # A model that reads the onsets' correlation refines on the onsets' correlation too.
        weighting = ONSET_SETTINGS if cues.onset else {}
        self._correlation = (
            GccPhatAzimuth(geometry, silence_dbfs=silence_dbfs, **weighting)
            if geometry is not None and lobe_refine_itd > 0
            else None
        )
        self.max_windows = int(max_windows)
        self.silence_dbfs = float(silence_dbfs)

    @property
    def min_samples(self) -> int:
        return self.cues.window_samples // 2

    def windows(self, audio: npt.NDArray[np.float32], sample_rate: int) -> list[np.ndarray]:
        clip = self.cues.window_samples
        x = resample(audio, sample_rate, self.cues.sample_rate)
        if x.shape[0] < self.min_samples:
            raise InputFormatError(
                f"clip of {x.shape[0]} samples at {self.cues.sample_rate} Hz is shorter than half "
                f"the model window ({self.min_samples} of {clip}): use a longer clip"
            )
        if x.shape[0] <= clip:
            padded = np.zeros((clip, 2), dtype=np.float32)
            padded[clip - x.shape[0] :] = x
            return [padded]
        count = min(self.max_windows, math.ceil(x.shape[0] / clip))
        starts = np.linspace(0, x.shape[0] - clip, count).round().astype(int)
        return [x[s : s + clip] for s in starts]

    def features(self, audio: npt.NDArray[np.float32], sample_rate: int) -> np.ndarray:
        """The network input (K, cues + 2) of a (frames, 2) clip."""
        return np.stack(
            [
                np.concatenate([binaural_cues(w, self.cues), self.aperture])
                for w in self.windows(audio, sample_rate)
            ]
        )

    def distribution(self, audio: npt.NDArray[np.float32], sample_rate: int) -> np.ndarray:
        """The clip's distribution over the model's bins (full circle)."""
        rows = self.features(audio, sample_rate)
        logits = np.asarray(self.run_audio(rows), dtype=np.float64)
        if logits.shape != (rows.shape[0], self.net.n_bins) or not np.isfinite(logits).all():
            raise ModelError(
                f"run_audio returned {logits.shape} (finite: {bool(np.isfinite(logits).all())}), "
                f"expected finite logits of shape ({rows.shape[0]}, {self.net.n_bins})"
            )
        log_p = np.log(softmax(logits) + 1e-12).mean(axis=0)
        return softmax(log_p)

    def estimate(self, audio: npt.NDArray[np.float32], sample_rate: int) -> AngleEstimate:
        """audio (frames, 2) float32, channel 0 left; sample_rate in Hz."""
        arr, declined = screen_binaural(audio, self.silence_dbfs)
        if declined is not None:
            return declined
        # Both steps work at the model's rate: the network's windows are cut there, and the
        # refinement's correlation costs a third of what it would at 48 kHz.
        rate = self.cues.sample_rate
        x = resample(arr, sample_rate, rate)
        angle, mass = decode_azimuth(self.distribution(x, rate), self.net, fold=True)
        if self._correlation is not None:
            ranges = [self._lobe(angle, widening) for widening in self.lobe_widening]
            refined = self._correlation.first_peak_evidence(x, rate, ranges)
            if refined is not None:
                return AngleEstimate.from_confidence(
                    refined.angle, mass, REFINED, evidence_s=refined.evidence_s
                )
        return AngleEstimate.from_confidence(angle, mass)

    def _lobe(self, angle: float, widening: float = 1.0) -> tuple[float, float]:
        """The azimuth range (front half-plane) of the lags within ``widening`` x
        ``lobe_refine_itd`` of the largest delay around ``angle``'s lag."""
        assert self._correlation is not None
        geometry = self._correlation.geometry
        largest = geometry.max_itd
        lag = float(geometry.itd(angle)) / largest
        ends = []
        reach = widening * self.lobe_refine_itd
        for edge, side in ((lag - reach, -1.0), (lag + reach, 1.0)):
            if abs(edge) >= 1.0:
                ends.append(side * math.pi / 2)
            else:
                ends.append(geometry.azimuth_from_itd(edge * largest))
        return ends[0], ends[1]
