"""Receiver models: how a far-field source at (azimuth, elevation) reaches the two ears/mics.

Models (``make_receiver`` kinds): ``SphericalHead`` (rigid sphere, exact scattering series),
``StereoArray`` (two omnidirectional microphones, no head), ``SofaReceiver`` (measured HRIRs
from a SOFA file, interpolated between measured directions).

Every receiver answers with a head-related impulse response (HRIR) of shape (taps, 2),
channel 0 = left, for a plane wave whose arrival at the head centre is ``latency_samples`` into
the response. Directions follow REP-103: azimuth counter-clockwise from +x (left positive),
elevation up positive, radians.

Responses are built in the frequency domain, so fractional delays (interaural delays and the
sub-sample propagation delays of room reflections) are exact up to a gentle roll-off just below
Nyquist that keeps the band-limited pulses short.
"""

from __future__ import annotations

import functools
import hashlib
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.signal import oaconvolve, resample_poly
from scipy.special import spherical_jn, spherical_yn

from slfm_ros.core.dsp.onsets import onsets
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.geometry.interaural import (
    SPEED_OF_SOUND_M_S,
    FreeFieldPair,
    InterauralGeometry,
    SphericalHeadGeometry,
)
from slfm_ros.core.sim.hrir_interp import DirectionInterpolator
from slfm_ros.core.sim.sofa import SofaHrirSet, read_sofa

FloatArray = npt.NDArray[np.float64]

# Start of the raised-cosine roll-off, as a fraction of Nyquist.
_ROLL_OFF_START = 0.9
# Time reserved before the earliest arrival so band-limited pulses are not cut (seconds).
_PRE_ROLL_S = 0.001
# Sample rate at which broadband ITDs are measured to fit a receiver's geometry (Hz).
_GEOMETRY_FIT_RATE = 16000


def _next_pow2(n: int) -> int:
    return 1 << max(0, int(math.ceil(math.log2(max(n, 1)))))


def _nyquist_taper(n_fft: int) -> FloatArray:
    """(n_fft//2+1,) raised-cosine gain: 1 below 0.9 Nyquist, falling to 0 at Nyquist."""
    x = np.linspace(0.0, 1.0, n_fft // 2 + 1)
    taper = np.ones_like(x)
    band = x > _ROLL_OFF_START
    taper[band] = 0.5 * (
        1.0 + np.cos(math.pi * (x[band] - _ROLL_OFF_START) / (1 - _ROLL_OFF_START))
    )
    return taper


def _edge_window(n_taps: int, sample_rate: int) -> FloatArray:
    """(n_taps,) window: half-Hann fade-in over half the pre-roll, fade-out over the last quarter.

    Every receiver keeps ``_PRE_ROLL_S`` before its earliest arrival, so the fade-in only
    removes the truncated pre-ringing of band-limited pulses.
    """
    window = np.ones(n_taps)
    n_in = max(1, int(0.5 * _PRE_ROLL_S * sample_rate))
    window[:n_in] = 0.5 * (1.0 - np.cos(math.pi * np.arange(n_in) / n_in))
    n_fade = max(1, n_taps // 4)
    window[-n_fade:] = 0.5 * (1.0 + np.cos(math.pi * np.arange(1, n_fade + 1) / n_fade))
    return window


def direction_vectors(azimuths: npt.ArrayLike, elevations: npt.ArrayLike) -> FloatArray:
    """(n, 3) unit vectors (REP-103) for azimuths/elevations in radians (broadcast)."""
    az, el = np.broadcast_arrays(
        np.atleast_1d(np.asarray(azimuths, dtype=np.float64)),
        np.atleast_1d(np.asarray(elevations, dtype=np.float64)),
    )
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


class Receiver(ABC):
    """A two-channel receiver (binaural head or stereo microphone pair)."""

    @property
    @abstractmethod
    def name(self) -> str:
        """Identifier that changes whenever the rendered responses would change."""

    @property
    @abstractmethod
    def geometry(self) -> InterauralGeometry:
        """Broadband ITD model of this receiver, for delay-based azimuth estimators."""

    @abstractmethod
    def n_taps(self, sample_rate: int) -> int:
        """Length of the HRIRs returned at ``sample_rate`` (Hz)."""

    @abstractmethod
    def latency_samples(self, sample_rate: int) -> float:
        """Position (samples) in the HRIR at which the wave passes the head centre."""

    @abstractmethod
    def _spectra(
        self,
        azimuths: FloatArray,
        elevations: FloatArray,
        sample_rate: int,
        n_fft: int,
        delays: FloatArray,
    ) -> npt.NDArray[np.complex128]:
        """(n, n_fft//2+1, 2) transfer functions for n directions, including the latency and
        the extra delays (n,) in samples."""

    def hrirs(
        self,
        azimuths: npt.ArrayLike,
        elevations: npt.ArrayLike,
        sample_rate: int,
        delays_samples: npt.ArrayLike | None = None,
    ) -> npt.NDArray[np.float32]:
        """HRIRs for many directions at once: (n, taps, 2) float32.

        azimuths, elevations: radians, broadcast to (n,). delays_samples: optional extra delay
        per direction in samples (fractional allowed, keep it below a few samples so the
        response stays inside ``taps``); used by the room renderer for sub-sample arrivals.
        """
        az, el = np.broadcast_arrays(
            np.atleast_1d(np.asarray(azimuths, dtype=np.float64)),
            np.atleast_1d(np.asarray(elevations, dtype=np.float64)),
        )
        n_taps = self.n_taps(sample_rate)
        n_fft = 2 * n_taps  # frequency grid twice as fine as needed keeps circular wrap out
        delays = np.zeros(az.size)
        if delays_samples is not None:
            delays = np.broadcast_to(np.asarray(delays_samples, dtype=np.float64), az.shape).ravel()
        spectra = self._spectra(az.ravel(), el.ravel(), int(sample_rate), n_fft, delays)
        spectra *= _nyquist_taper(n_fft)[None, :, None]
        irs = np.fft.irfft(spectra, n=n_fft, axis=1)[:, :n_taps, :]
        irs *= _edge_window(n_taps, sample_rate)[None, :, None]
        return irs.astype(np.float32)

    def hrir(self, azimuth: float, elevation: float, sample_rate: int) -> npt.NDArray[np.float32]:
        """HRIR (taps, 2) float32 for one direction (radians), channel 0 = left."""
        return self.hrirs([azimuth], [elevation], sample_rate)[0]


def broadband_itd(
    irs: npt.ArrayLike, sample_rate: float, max_itd_s: float = 0.001, oversample: int = 16
) -> FloatArray:
    """Broadband ITD (s, t_right - t_left) of (n, taps, 2) responses by GCC-PHAT.

    This is the delay a phase-transform cross-correlation estimator reads from a broadband
    source rendered through these responses; searched within +-``max_itd_s``.
    """
    h = np.asarray(irs, dtype=np.float64)
    n_fft = 2 * h.shape[1]
    spec = np.fft.rfft(h, n=n_fft, axis=1)
    cross = spec[:, :, 1] * np.conj(spec[:, :, 0])
    mag = np.abs(cross)
    cross = cross / (mag + 1e-6 * mag.max(axis=1, keepdims=True) + 1e-30)
    cc = np.fft.irfft(cross, n=n_fft * oversample, axis=1)
    max_lag = int(math.ceil(max_itd_s * sample_rate * oversample))
    window = np.concatenate([cc[:, : max_lag + 1], cc[:, -max_lag:]], axis=1)
    lags = np.concatenate([np.arange(max_lag + 1), np.arange(-max_lag, 0)])
    return lags[np.argmax(window, axis=1)] / (oversample * sample_rate)


def fit_woodworth_radius(
    itd_s: npt.ArrayLike, azimuths: npt.ArrayLike, elevations: npt.ArrayLike
) -> float:
    """Least-squares head radius (m) of Woodworth's ITD formula for measured ITDs (s)."""
    az = np.asarray(azimuths, dtype=np.float64)
    el = np.asarray(elevations, dtype=np.float64)
    lateral = np.arcsin(np.clip(np.cos(el) * np.sin(az), -1.0, 1.0))
    basis = (lateral + np.sin(lateral)) / SPEED_OF_SOUND_M_S
    denom = float(np.sum(basis**2))
    if denom < 1e-12:
        raise InputFormatError(
            "every direction lies in the median plane, so no ITD can be fitted; "
            "use responses with lateral directions"
        )
    return float(np.sum(np.asarray(itd_s, dtype=np.float64) * basis) / denom)


def _legendre_table(cosines: FloatArray, n_terms: int) -> FloatArray:
    """(n, n_terms) Legendre polynomials P_0..P_{n_terms-1} evaluated at ``cosines``."""
    table = np.empty((cosines.size, n_terms))
    table[:, 0] = 1.0
    if n_terms > 1:
        table[:, 1] = cosines
    for m in range(1, n_terms - 1):
        table[:, m + 1] = ((2 * m + 1) * cosines * table[:, m] - m * table[:, m - 1]) / (m + 1)
    return table


@functools.lru_cache(maxsize=16)
def _rigid_sphere_coefficients(ka_max_key: tuple[float, int, int]) -> npt.NDArray[np.complex128]:
    """(terms, bins) modal coefficients of the rigid-sphere surface pressure.

    Plane wave on a rigid sphere of radius a; pressure at a surface point at angle t from the
    direction the wave comes from, relative to the free-field pressure at the centre:
        H = conj( (1/x^2) sum_m i^{m+1} (2m+1) (-1)^m P_m(cos t) / h_m'(x) ),  x = k a,
    with h_m the outgoing spherical Hankel function; the conjugate converts the physics time
    convention exp(-i w t) to the DFT convention used everywhere else. H -> 1 as x -> 0.
    """
    ka_nyquist, n_fft, n_terms = ka_max_key
    x = np.linspace(0.0, ka_nyquist, n_fft // 2 + 1)
    coeffs = np.zeros((n_terms, x.size), dtype=np.complex128)
    coeffs[0, 0] = 1.0
    xs = x[1:]
    with np.errstate(all="ignore"):
        for m in range(n_terms):
            dh = spherical_jn(m, xs, derivative=True) + 1j * spherical_yn(m, xs, derivative=True)
            term = (1j ** (m + 1)) * (2 * m + 1) * ((-1) ** m) / (xs**2 * dh)
            # For m >> x the Hankel derivative overflows: the term is exactly negligible.
            term[~np.isfinite(term)] = 0.0
            coeffs[m, 1:] = np.conj(term)
    return coeffs


class SphericalHead(Receiver):
    """Rigid spherical head, ears at +-90 degrees azimuth on the interaural (y) axis.

    Exact far-field series solution of plane-wave scattering by a rigid sphere, so the
    interaural time difference depends on frequency (about 3 a/c sin(az) at low frequency,
    Woodworth's a/c (lat + sin lat) at high frequency) and the head shadow grows with frequency.
    """

    def __init__(self, radius_m: float = 0.0875, speed_of_sound: float = SPEED_OF_SOUND_M_S):
        if not 0.02 <= radius_m <= 0.5:
            raise ConfigError(
                f"spherical_head radius_m must be in [0.02, 0.5] m, got {radius_m}; "
                "a human head is about 0.0875 m"
            )
        self.radius_m = float(radius_m)
        self.speed_of_sound = float(speed_of_sound)

    @property
    def name(self) -> str:
        return f"spherical_head(radius_m={self.radius_m:.5f})"

    @functools.cached_property
    def geometry(self) -> InterauralGeometry:
        """Woodworth model with an effective radius fitted to this head's broadband ITD.

        Low frequencies diffract around a rigid sphere with a larger delay than Woodworth's
        ray model, so the GCC-PHAT ITD at 16 kHz is a few percent longer; the fitted radius
        makes delay-based estimators unbiased for this receiver.
        """
        az = np.radians(np.arange(0.0, 91.0, 5.0))
        irs = self.hrirs(az, np.zeros_like(az), _GEOMETRY_FIT_RATE)
        itd = broadband_itd(irs, _GEOMETRY_FIT_RATE)
        return SphericalHeadGeometry(fit_woodworth_radius(itd, az, 0.0), self.speed_of_sound)

    def latency_samples(self, sample_rate: int) -> float:
        return float(math.ceil((self.radius_m / self.speed_of_sound + _PRE_ROLL_S) * sample_rate))

    def n_taps(self, sample_rate: int) -> int:
        # Scattering dies out within about 2 ms; leave 6 ms after the latency.
        return max(64, _next_pow2(int(self.latency_samples(sample_rate) + 0.006 * sample_rate)))

    def _spectra(
        self,
        azimuths: FloatArray,
        elevations: FloatArray,
        sample_rate: int,
        n_fft: int,
        delays: FloatArray,
    ) -> npt.NDArray[np.complex128]:
        ka_nyquist = math.pi * sample_rate * self.radius_m / self.speed_of_sound
        n_terms = int(math.ceil(ka_nyquist)) + 20
        coeffs = _rigid_sphere_coefficients((round(ka_nyquist, 9), n_fft, n_terms))
        # Cosine of the angle between the source direction and the left ear (+y).
        cos_left = np.cos(elevations) * np.sin(azimuths)
        legendre = _legendre_table(cos_left, n_terms)
        parity = (-1.0) ** np.arange(n_terms)  # P_m(-x) = (-1)^m P_m(x): the right ear
        omega = 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft
        shift = np.exp(-1j * omega[None, :] * (delays + self.latency_samples(sample_rate))[:, None])
        out = np.empty((azimuths.size, omega.size, 2), dtype=np.complex128)
        out[:, :, 0] = (legendre @ coeffs) * shift
        out[:, :, 1] = ((legendre * parity) @ coeffs) * shift
        return out


class StereoArray(Receiver):
    """Two omnidirectional microphones ``spacing_m`` apart on the y axis, no head between.

    ``source_distance_m=None`` models far-field plane waves (pure delays, equal levels). A
    distance models a point source at that range from the array centre: each microphone gets
    its own path length, so the nearer one is also slightly louder (1/r).
    """

    def __init__(
        self,
        spacing_m: float = 0.14,
        source_distance_m: float | None = None,
        speed_of_sound: float = SPEED_OF_SOUND_M_S,
    ):
        if not 0.005 <= spacing_m <= 2.0:
            raise ConfigError(f"stereo_array spacing_m must be in [0.005, 2] m, got {spacing_m}")
        if source_distance_m is not None and source_distance_m <= spacing_m:
            raise ConfigError(
                f"stereo_array source_distance_m must exceed spacing_m ({spacing_m} m), got "
                f"{source_distance_m}; use None for far-field sources"
            )
        self.spacing_m = float(spacing_m)
        self.source_distance_m = None if source_distance_m is None else float(source_distance_m)
        self.speed_of_sound = float(speed_of_sound)

    @property
    def name(self) -> str:
        dist = "inf" if self.source_distance_m is None else f"{self.source_distance_m:.4f}"
        return f"stereo_array(spacing_m={self.spacing_m:.5f},source_distance_m={dist})"

    @property
    def geometry(self) -> InterauralGeometry:
        return FreeFieldPair(self.spacing_m, self.speed_of_sound)

    def latency_samples(self, sample_rate: int) -> float:
        half = 0.5 * self.spacing_m / self.speed_of_sound
        return float(math.ceil((half + _PRE_ROLL_S) * sample_rate))

    def n_taps(self, sample_rate: int) -> int:
        return max(64, _next_pow2(int(self.latency_samples(sample_rate) + 0.004 * sample_rate)))

    def _spectra(
        self,
        azimuths: FloatArray,
        elevations: FloatArray,
        sample_rate: int,
        n_fft: int,
        delays: FloatArray,
    ) -> npt.NDArray[np.complex128]:
        u = direction_vectors(azimuths, elevations)
        mics = np.array([[0.0, 0.5 * self.spacing_m, 0.0], [0.0, -0.5 * self.spacing_m, 0.0]])
        if self.source_distance_m is None:
            delays_s = -(u @ mics.T) / self.speed_of_sound  # (n, 2), negative = earlier
            gains = np.ones_like(delays_s)
        else:
            src = self.source_distance_m * u
            dists = np.linalg.norm(src[:, None, :] - mics[None, :, :], axis=-1)
            delays_s = (dists - self.source_distance_m) / self.speed_of_sound
            gains = self.source_distance_m / dists
        total = delays_s * sample_rate + self.latency_samples(sample_rate) + delays[:, None]
        omega = 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft
        phase = np.exp(-1j * omega[None, :, None] * total[:, None, :])
        return gains[:, None, :] * phase


@dataclass(frozen=True)
class _PreparedSofa:
    """HRIRs of a SOFA set at one sample rate, delay-aligned for interpolation."""

    aligned: npt.NDArray[np.complex128]  # (M, n_fft//2+1, 2) spectra, onsets moved to 0
    onsets: FloatArray  # (M, 2) samples, measurement bulk delay removed
    n_taps: int
    latency: float


class SofaReceiver(Receiver):
    """Measured HRIRs from a SimpleFreeFieldHRIR SOFA file, interpolated between directions.

    Each measured response is split into its per-ear onset delay and a delay-aligned shape;
    for a query direction the shapes and the delays of the neighbouring measurements are
    interpolated separately (see ``hrir_interp``), so interpolation never comb-filters two
    pulses at different delays. The measurement distance delay is removed, keeping 1 ms before
    the earliest onset. ``geometry`` is a spherical head whose radius is fitted (Woodworth's
    formula, least squares) to the broadband ITDs of the measured directions at 16 kHz.
    """

    def __init__(self, path: str | Path):
        path = Path(path)
        hrir_set = read_sofa(path)
        digest = hashlib.sha1(path.read_bytes()).hexdigest()[:12]
        self._init(hrir_set, f"sofa({path.name},{digest})")

    @classmethod
    def from_hrir_set(cls, hrir_set: SofaHrirSet, label: str) -> SofaReceiver:
        """Receiver from an in-memory set; ``label`` must identify the data (cache key)."""
        obj = cls.__new__(cls)
        obj._init(hrir_set, f"sofa({label})")
        return obj

    def _init(self, hrir_set: SofaHrirSet, name: str) -> None:
        self.hrir_set = hrir_set
        self._name = name
        pos = hrir_set.source_positions
        self._interp = DirectionInterpolator(pos[:, 0], pos[:, 1])
        self._native_onsets = onsets(hrir_set.ir.astype(np.float64))  # (M, 2)
        self._prepared: dict[int, _PreparedSofa] = {}

    @property
    def name(self) -> str:
        return self._name

    @functools.cached_property
    def geometry(self) -> InterauralGeometry:
        pos = self.hrir_set.source_positions
        rate = _GEOMETRY_FIT_RATE
        irs = self.hrirs(pos[:, 0], pos[:, 1], rate)
        try:
            radius = fit_woodworth_radius(broadband_itd(irs, rate), pos[:, 0], pos[:, 1])
        except InputFormatError as exc:
            raise InputFormatError(f"{self._name}: {exc}") from exc
        if not 0.02 <= radius <= 0.5:
            raise InputFormatError(
                f"{self._name}: measured ITDs fit a head radius of {radius:.4f} m, outside "
                f"[0.02, 0.5] m; check the file's sampling rate ({self.hrir_set.sample_rate:g} "
                "Hz) and source directions"
            )
        return SphericalHeadGeometry(radius)

    def _prepare(self, sample_rate: int) -> _PreparedSofa:
        if sample_rate in self._prepared:
            return self._prepared[sample_rate]
        ir = self.hrir_set.ir.astype(np.float64)
        ratio = Fraction(int(sample_rate), int(round(self.hrir_set.sample_rate)))
        scale = sample_rate / self.hrir_set.sample_rate
        if ratio != 1:
            # An impulse response keeps its frequency response when its samples scale with
            # the sampling period.
            ir = resample_poly(ir, ratio.numerator, ratio.denominator, axis=-1) / scale
        native = self._native_onsets * scale
        # Shift every response so the earliest onset sits ``_PRE_ROLL_S`` into it: the distance
        # delay of the measurement goes, and short responses that start at once get room.
        common = math.floor(float(native.min()) - _PRE_ROLL_S * sample_rate)
        length = ir.shape[-1]
        n_taps = max(64, _next_pow2(max(length - common, (length + 1) // 2)))
        n_fft = 2 * n_taps
        omega = 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft
        spectra = np.fft.rfft(ir, n=n_fft, axis=-1)  # (M, 2, F)
        aligned = spectra * np.exp(1j * omega[None, None, :] * native[:, :, None])
        relative = native - common
        prepared = _PreparedSofa(
            aligned=np.ascontiguousarray(aligned.transpose(0, 2, 1)),
            onsets=relative,
            n_taps=n_taps,
            latency=float(relative.mean()),
        )
        self._prepared[sample_rate] = prepared
        return prepared

    def n_taps(self, sample_rate: int) -> int:
        return self._prepare(int(sample_rate)).n_taps

    def latency_samples(self, sample_rate: int) -> float:
        return self._prepare(int(sample_rate)).latency

    def _spectra(
        self,
        azimuths: FloatArray,
        elevations: FloatArray,
        sample_rate: int,
        n_fft: int,
        delays: FloatArray,
    ) -> npt.NDArray[np.complex128]:
        prep = self._prepare(sample_rate)
        idx, w = self._interp.weights(azimuths, elevations)
        shape = np.einsum("nk,nkfe->nfe", w, prep.aligned[idx])
        onset = np.einsum("nk,nke->ne", w, prep.onsets[idx]) + delays[:, None]
        omega = 2.0 * math.pi * np.arange(n_fft // 2 + 1) / n_fft
        shape *= np.exp(-1j * omega[None, :, None] * onset[:, None, :])
        return shape


def render_diffuse(
    receiver: Receiver,
    frames: int,
    sample_rate: int,
    rng: np.random.Generator,
    n_directions: int = 16,
    envelope: npt.ArrayLike | None = None,
) -> npt.NDArray[np.float32]:
    """Diffuse field: independent white noises from ``n_directions`` random directions.

    Returns (frames, 2) float32 whose per-channel power is about the receiver's diffuse-field
    power gain (``diffuse_power_gain``) times the power of ``envelope`` (1 when None). The
    interaural coherence is the receiver's own (high at low frequency, low above).
    envelope: optional (frames,) amplitude envelope applied to every noise before rendering;
    the receiver latency is removed so output sample t carries the envelope at t.
    """
    z = rng.uniform(-1.0, 1.0, n_directions)  # uniform on the sphere
    az = rng.uniform(-math.pi, math.pi, n_directions)
    irs = receiver.hrirs(az, np.arcsin(z), sample_rate).astype(np.float64)
    noise = rng.standard_normal((n_directions, frames))
    if envelope is not None:
        noise *= np.asarray(envelope, dtype=np.float64)[None, :]
    latency = int(round(receiver.latency_samples(sample_rate)))
    out = oaconvolve(noise[:, :, None], irs, axes=1)[:, latency : latency + frames, :]
    if out.shape[1] < frames:
        out = np.pad(out, ((0, 0), (0, frames - out.shape[1]), (0, 0)))
    return (out.sum(axis=0) / math.sqrt(n_directions)).astype(np.float32)


def diffuse_power_gain(receiver: Receiver, sample_rate: int, n_directions: int = 64) -> float:
    """Mean per-channel energy of the receiver's HRIRs over directions spread on the sphere."""
    k = np.arange(n_directions) + 0.5
    el = np.arcsin(1.0 - 2.0 * k / n_directions)
    az = math.pi * (1.0 + 5.0**0.5) * k  # golden-angle spiral: even coverage
    irs = receiver.hrirs(az, el, sample_rate).astype(np.float64)
    return float(np.mean(np.sum(irs**2, axis=1)))


def make_receiver(kind: str, **params: Any) -> Receiver:
    """Build a receiver by kind: "spherical_head", "stereo_array" or "sofa" (needs ``path``)."""
    kinds: dict[str, Any] = {
        "spherical_head": SphericalHead,
        "stereo_array": StereoArray,
        "sofa": SofaReceiver,
    }
    if kind not in kinds:
        raise ConfigError(f"unknown receiver kind {kind!r}; expected one of {sorted(kinds)}")
    try:
        return kinds[kind](**params)  # type: ignore[no-any-return]
    except TypeError as exc:
        raise ConfigError(f"bad parameters for receiver {kind!r}: {exc}") from exc
