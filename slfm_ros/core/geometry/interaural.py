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
