"""The interaural delay curve of a measured head, read from its HRIRs (a SOFA file).

A rigid sphere or a free-field pair is only a model of a real receiver; when the robot's own
head was measured (or one like it, such as a KEMAR), its HRIRs say exactly which delay GCC-PHAT
will find for each direction. PHAT whitens the source away, so the delay GCC-PHAT measures on
any broadband sound through the head is the peak of the phase-only cross-spectrum of the two
HRIRs, limited to the band the node analyses (half its estimator rate). That peak, on the
horizontal plane and for each front direction, is the curve; a direction behind is mapped to
its front mirror, as the node's front-folded answer does. (A real head's ears sit behind its
centre, so directions just behind the interaural axis have delays of their own, larger than
any front direction's; they are measured on the front curve's end.) The back ring is used only
where the front one has no measurement.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from slfm_ros.core.errors import InputFormatError
from slfm_ros.core.geometry.interaural import MeasuredItdCurve
from slfm_ros.core.sim.sofa import SofaHrirSet, read_sofa

# Directions within this of the horizontal plane form the curve.
HORIZONTAL_TOLERANCE_DEG = 5.0
# Largest delay searched: beyond any human or robot head.
MAX_LAG_S = 1.5e-3
_LAG_STEP_SAMPLES = 1.0 / 16.0


def phat_lag(
    left: npt.NDArray[np.floating],
    right: npt.NDArray[np.floating],
    sample_rate: float,
    max_frequency_hz: float,
    max_lag_s: float = MAX_LAG_S,
) -> float:
    """Lag (s, right minus left) of the phase-only cross-correlation peak of two responses,
    on a 1/16-sample grid, using only frequencies up to ``max_frequency_hz``."""
    n_fft = 1 << int(math.ceil(math.log2(2 * max(len(left), len(right)))))
    cross = np.fft.rfft(right, n_fft) * np.conj(np.fft.rfft(left, n_fft))
    freqs = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    magnitude = np.abs(cross)
    keep = (freqs > 0) & (freqs <= max_frequency_hz) & (magnitude > 1e-6 * magnitude.max())
    phase = cross[keep] / magnitude[keep]
    limit = max_lag_s * sample_rate
    lags = np.arange(-limit, limit + _LAG_STEP_SAMPLES, _LAG_STEP_SAMPLES)
    kernel = np.exp(2j * np.pi * np.outer(lags, freqs[keep]) / sample_rate)
    values = np.real(kernel @ phase)
    return float(lags[int(np.argmax(values))] / sample_rate)


def itd_curve_from_hrirs(
    hrirs: SofaHrirSet, max_frequency_hz: float = 8000.0, source: str = ""
) -> MeasuredItdCurve:
    """The GCC-PHAT delay of each horizontal-plane direction, on front azimuths (module
    docstring). InputFormatError when the set has too few directions near the horizontal
    plane to make a curve."""
    elevation = np.degrees(hrirs.source_positions[:, 1])
    lowest = float(np.min(np.abs(elevation)))
    ring = np.flatnonzero(np.abs(np.abs(elevation) - lowest) < 1e-6)
    name = source or hrirs.title or "the HRIR set"
    if lowest > HORIZONTAL_TOLERANCE_DEG:
        raise InputFormatError(
            f"{name}: no measurement within {HORIZONTAL_TOLERANCE_DEG} deg of the horizontal "
            f"plane (the lowest |elevation| is {lowest:.1f} deg); the delay curve needs one ring"
        )
    rate = hrirs.sample_rate
    band = min(max_frequency_hz, 0.5 * rate)
    lateral = np.round(np.degrees(np.arcsin(np.sin(hrirs.source_positions[ring, 0]))), 3)
    delays = np.array([phat_lag(hrirs.ir[m, 0], hrirs.ir[m, 1], rate, band) for m in ring])
    grid = np.unique(lateral)
    if grid.size < 3:
        raise InputFormatError(
            f"{name}: the horizontal ring holds {grid.size} distinct directions; the delay "
            "curve needs at least 3"
        )
    front = np.cos(hrirs.source_positions[ring, 0]) >= -1e-9
    curve = np.array(
        [
            delays[(lateral == a) & front].mean()
            if np.any((lateral == a) & front)
            else delays[lateral == a].mean()
            for a in grid
        ]
    )
    return MeasuredItdCurve(tuple(np.radians(grid)), tuple(curve), source=source)


@functools.lru_cache(maxsize=8)
def _cached_curve(path: str, max_frequency_hz: float) -> MeasuredItdCurve:
    return itd_curve_from_hrirs(read_sofa(path), max_frequency_hz, source=path)


def measured_receiver(path: str | Path, max_frequency_hz: float = 8000.0) -> MeasuredItdCurve:
    """The delay curve of the head measured in the SOFA file ``path`` (InputFormatError when
    the file cannot be read or holds no horizontal ring)."""
    return _cached_curve(str(Path(path).expanduser().resolve()), float(max_frequency_hz))


__all__ = ["itd_curve_from_hrirs", "measured_receiver", "phat_lag"]
