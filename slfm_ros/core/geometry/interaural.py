"""Interaural time difference (ITD) models of a two-ear receiver.

Sign convention: ``itd = arrival_time_right - arrival_time_left`` in seconds, so a source on the
left (positive azimuth) has a positive ITD. Both models are front/back ambiguous: azimuth phi and
its mirror rho(phi) give the same ITD, which is why ``azimuth_from_itd`` answers in the front
half-plane [-pi/2, pi/2].
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

SPEED_OF_SOUND_M_S = 343.0


class InterauralGeometry(ABC):
    """Maps azimuth (radians, REP-103) to ITD (seconds) and back."""

    @abstractmethod
    def itd(self, azimuth: float | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        """ITD in seconds for each azimuth."""

    @property
    def max_itd(self) -> float:
        """Largest possible |ITD| in seconds (source at +-90 degrees)."""
        return float(self.itd(math.pi / 2))

    def azimuth_from_itd(self, itd: float) -> float:
        """Front-half-plane azimuth in [-pi/2, pi/2] whose ITD is closest to ``itd``."""
        grid = np.linspace(-math.pi / 2, math.pi / 2, 3601)
        table = self.itd(grid)
        # The model is monotonic in the front half-plane, so interpolation inverts it.
        return float(np.interp(np.clip(itd, table[0], table[-1]), table, grid))


@dataclass(frozen=True)
class FreeFieldPair(InterauralGeometry):
    """Two omnidirectional microphones ``spacing_m`` apart on the y axis, no head between."""

    spacing_m: float = 0.14
    speed_of_sound: float = SPEED_OF_SOUND_M_S

    def itd(self, azimuth: float | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        return self.spacing_m / self.speed_of_sound * np.sin(np.asarray(azimuth, dtype=np.float64))


@dataclass(frozen=True)
class SphericalHeadGeometry(InterauralGeometry):
    """Rigid sphere of radius ``radius_m`` with ears at +-90 degrees (Woodworth's formula)."""

    radius_m: float = 0.0875
    speed_of_sound: float = SPEED_OF_SOUND_M_S

    def itd(self, azimuth: float | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        lateral = np.arcsin(np.sin(np.asarray(azimuth, dtype=np.float64)))
        return self.radius_m / self.speed_of_sound * (lateral + np.sin(lateral))


@dataclass(frozen=True)
class MeasuredItdCurve(InterauralGeometry):
    """An ITD curve measured on a real receiver (``measured_head.itd_curve_from_hrirs``).

    azimuths_rad: increasing front-half-plane azimuths in [-pi/2, pi/2].
    itds_s:       the ITD at each, increasing (a curve that is not is made so on construction:
                  the inverse mapping needs it, and a measured head's small wiggles near the
                  sides are measurement noise, not direction). A source behind takes the ITD of
                  its front mirror, as for the models above.
    source:       where the curve came from (a SOFA file's path), for messages and cards.
    """

    azimuths_rad: tuple[float, ...]
    itds_s: tuple[float, ...]
    source: str = ""

    def __post_init__(self) -> None:
        az = np.asarray(self.azimuths_rad, dtype=np.float64)
        itd = np.asarray(self.itds_s, dtype=np.float64)
        if az.ndim != 1 or az.shape != itd.shape or az.size < 3:
            raise ValueError("a measured ITD curve needs >= 3 (azimuth, ITD) points of one shape")
        if np.any(np.diff(az) <= 0) or az[0] < -math.pi / 2 - 1e-9 or az[-1] > math.pi / 2 + 1e-9:
            raise ValueError("measured ITD curve azimuths must increase within [-pi/2, pi/2]")
        if not np.all(np.isfinite(itd)):
            raise ValueError("measured ITD curve holds non-finite delays")
        object.__setattr__(self, "azimuths_rad", tuple(float(a) for a in az))
        object.__setattr__(self, "itds_s", tuple(float(t) for t in _increasing(itd)))

    def itd(self, azimuth: float | npt.NDArray[np.floating]) -> npt.NDArray[np.float64]:
        lateral = np.arcsin(np.sin(np.asarray(azimuth, dtype=np.float64)))
        return np.asarray(np.interp(lateral, self.azimuths_rad, self.itds_s), dtype=np.float64)

    @property
    def max_itd(self) -> float:
        # The largest delay of a real head need not lie exactly at +-90 degrees.
        return float(max(abs(self.itds_s[0]), abs(self.itds_s[-1])))


def _increasing(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """The closest non-decreasing sequence in least squares (pool adjacent violators), then
    strictly increasing by a negligible slope so that it can be inverted by interpolation."""
    blocks: list[list[float]] = []  # [mean, count]
    for v in values:
        blocks.append([float(v), 1.0])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            mean, count = blocks.pop()
            prev = blocks[-1]
            prev[0] = (prev[0] * prev[1] + mean * count) / (prev[1] + count)
            prev[1] += count
    fitted = np.concatenate([np.full(int(c), m) for m, c in blocks])
    return fitted + 1e-9 * np.arange(fitted.size)
