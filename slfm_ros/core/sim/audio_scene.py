"""Binaural audio of one view: sources placed around a listener, rendered through a receiver.

Azimuths are world-frame radians (REP-103, left positive); the listener's yaw turns the head,
so a source at world azimuth phi is heard at phi - yaw (``source_azimuth_in_view``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.signal import oaconvolve

from slfm_ros.core.conventions import source_azimuth_in_view
from slfm_ros.core.errors import ConfigError, InputFormatError
from slfm_ros.core.sim.receivers import Receiver, render_diffuse
from slfm_ros.core.sim.room import RirCache, RoomConfig, place_source, render_binaural_rir

Audio = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class PlacedSource:
    """A mono signal (frames,) at a world azimuth (radians) and distance (m) from the listener.

    gain_db scales the signal before rendering (levels also fall as 1/distance). elevation is
    in radians, 0 = ear height.
    """

    signal: npt.NDArray[np.floating]
    azimuth_world: float
    distance_m: float
    gain_db: float = 0.0
    elevation: float = 0.0

    def __post_init__(self) -> None:
        sig = np.asarray(self.signal, dtype=np.float32)
        if sig.ndim != 1 or sig.size == 0:
            raise InputFormatError(f"a source signal must be mono (frames,), got {sig.shape}")
        if not self.distance_m > 0:
            raise ConfigError(f"source distance_m must be positive, got {self.distance_m}")
        object.__setattr__(self, "signal", sig)


def render_view_audio(
    sources: Sequence[PlacedSource],
    listener_yaw: float,
    receiver: Receiver,
    sample_rate: int,
    room: RoomConfig | None = None,
    rir_cache: RirCache | None = None,
) -> Audio:
    """(frames, 2) float32 binaural mix heard by a listener facing ``listener_yaw``.

    frames = the longest source. Anechoic when ``room`` is None: each source through the HRIR
    at its in-view azimuth, times 1/distance. In a room: the source stands at the listener
    position + distance along its world direction (shortened along the same ray to stay 0.3 m
    inside the walls, see ``room.place_source``) and is convolved with the BRIR, which includes
    the propagation delay. Output is not normalised; see ``normalise_peak``.
    """
    if not sources:
        raise ConfigError("render_view_audio needs at least one source")
    frames = max(s.signal.size for s in sources)
    out = np.zeros((frames, 2), dtype=np.float64)
    for src in sources:
        gain = 10.0 ** (src.gain_db / 20.0)
        if room is None:
            azimuth = source_azimuth_in_view(src.azimuth_world, listener_yaw)
            ir = receiver.hrir(azimuth, src.elevation, sample_rate).astype(np.float64)
            ir *= gain / src.distance_m
        else:
            pos = place_source(room, src.azimuth_world, src.distance_m, src.elevation)
            if rir_cache is not None:
                brir = rir_cache.get(room, receiver, pos, listener_yaw, sample_rate)
            else:
                brir = render_binaural_rir(room, receiver, pos, listener_yaw, sample_rate)
            ir = brir.rir.astype(np.float64) * gain
        wet = oaconvolve(src.signal.astype(np.float64)[:, None], ir, axes=0)
        out[: src.signal.size] += wet[: src.signal.size]
    return out.astype(np.float32)


def add_diffuse_noise(
    audio: npt.ArrayLike,
    snr_db: float,
    rng: np.random.Generator,
    sample_rate: int,
    receiver: Receiver,
    n_directions: int = 16,
    spectral_slope_db_per_octave: float = -3.0,
) -> Audio:
    """Add diffuse background noise at ``snr_db`` (signal power / noise power, both channels).

    The noise is the sum of ``n_directions`` independent coloured noises (pink by default)
    arriving from random directions through ``receiver``, so its interaural coherence is the
    receiver's diffuse-field coherence (high at low frequency, falling above ~c/(2 pi a)).
    """
    x = np.asarray(audio, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 2:
        raise InputFormatError(f"audio must be (frames, 2), got {x.shape}")
    power = float(np.mean(x**2))
    if power == 0.0:
        raise InputFormatError("cannot set an SNR against silent audio; render a source first")
    noise = render_diffuse(receiver, x.shape[0], sample_rate, rng, n_directions).astype(np.float64)
    if spectral_slope_db_per_octave != 0.0:
        spec = np.fft.rfft(noise, axis=0)
        f = np.arange(spec.shape[0], dtype=np.float64)
        f[0] = 1.0
        spec *= (f ** (spectral_slope_db_per_octave / (20.0 * math.log10(2.0))))[:, None]
        noise = np.fft.irfft(spec, n=x.shape[0], axis=0)
    noise *= math.sqrt(power / (float(np.mean(noise**2)) * 10.0 ** (snr_db / 10.0)))
    return (x + noise).astype(np.float32)


def normalise_peak(audio: npt.ArrayLike, peak: float = 0.9) -> Audio:
    """Scale so the largest absolute sample is ``peak`` (< 1: never clips); silence stays silent.

    Both channels share one gain, so interaural level differences are kept.
    """
    if not 0.0 < peak < 1.0:
        raise ConfigError(f"peak must be in (0, 1), got {peak}")
    x = np.asarray(audio, dtype=np.float64)
    top = float(np.max(np.abs(x))) if x.size else 0.0
    if top == 0.0:
        return x.astype(np.float32)
    return (x * (peak / top)).astype(np.float32)
