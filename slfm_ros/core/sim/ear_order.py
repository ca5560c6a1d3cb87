"""Which channel of a measured HRIR set is the left ear, decided from the responses themselves.

A source on the left of the head (positive lateral angle, REP-103) reaches the left ear louder
and earlier than the right one. The receiver metadata of published SOFA files does not always
say the same as their data: several widely used collections list the first receiver at -y in
``ReceiverPosition`` (the right side by the coordinates) while the first channel of ``Data.IR``
is acoustically the left ear. So the responses decide; the metadata is only compared with them.

Both cues are measured on the directions at least ``LATERAL_MIN_DEG`` off the median plane, each
signed so that a positive value means "the first channel behaves as the left ear": the level
difference (dB, first minus second channel) and the arrival difference (us, second onset minus
first), each times the side of the source (+1 left, -1 right). A cue takes part when its median
size reaches a floor (a free-field microphone pair has almost no level difference, so only its
arrivals speak); every cue that takes part must point the same way for ``MIN_AGREEMENT`` of the
directions, otherwise the file is refused with what was measured.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from slfm_ros.core.dsp.onsets import onsets
from slfm_ros.core.errors import InputFormatError

FloatArray = npt.NDArray[np.float64]

# Directions used for the decision: lateral angle at least this far from the median plane.
LATERAL_MIN_DEG = 30.0
# A cue takes part when its median size over those directions reaches this.
MIN_LEVEL_DB = 1.0
MIN_ARRIVAL_US = 20.0
# Fraction of those directions on which a cue must agree with the decision.
MIN_AGREEMENT = 0.8


@dataclass(frozen=True)
class Cue:
    """One interaural cue over the lateral directions, signed as in the module docstring."""

    name: str
    unit: str
    values: FloatArray  # per lateral direction
    floor: float

    @property
    def size(self) -> float:
        return float(np.median(np.abs(self.values)))

    @property
    def speaks(self) -> bool:
        return self.size >= self.floor

    @property
    def left_fraction(self) -> float:
        """Fraction of directions on which this cue says the first channel is the left ear."""
        return float(np.mean(self.values > 0))

    @property
    def right_fraction(self) -> float:
        return float(np.mean(self.values < 0))

    def describe(self) -> str:
        return (
            f"{self.name} difference median {np.median(self.values):+.3g} {self.unit} (the "
            f"first channel is the left ear by it in {100 * self.left_fraction:.0f} % of them, "
            f"the right ear in {100 * self.right_fraction:.0f} %)"
        )


@dataclass(frozen=True)
class EarCues:
    """Level and arrival cues of the lateral directions of an HRIR set."""

    n_lateral: int
    level: Cue
    arrival: Cue

    def describe(self) -> str:
        return (
            f"over the {self.n_lateral} directions at least {LATERAL_MIN_DEG:.0f} deg off the "
            f"median plane: {self.level.describe()}; {self.arrival.describe()}"
        )


def lateral_sines(positions: npt.ArrayLike) -> FloatArray:
    """sin(lateral angle) of (azimuth rad, elevation rad, ...) rows; positive on the left."""
    pos = np.asarray(positions, dtype=np.float64)
    return np.asarray(np.cos(pos[:, 1]) * np.sin(pos[:, 0]), dtype=np.float64)


def measure_ear_cues(ir: npt.ArrayLike, positions: npt.ArrayLike, sample_rate: float) -> EarCues:
    """Cues of (M, 2, N) responses at (M, >=2) directions (azimuth, elevation in radians)."""
    h = np.asarray(ir, dtype=np.float64)
    lateral = lateral_sines(positions)
    chosen = np.abs(lateral) >= math.sin(math.radians(LATERAL_MIN_DEG))
    side = np.sign(lateral[chosen])
    h = h[chosen]
    energy = np.sum(h**2, axis=-1) + 1e-30  # (n, 2)
    level = side * 10.0 * np.log10(energy[:, 0] / energy[:, 1])
    first = onsets(h)  # (n, 2) samples
    arrival = side * (first[:, 1] - first[:, 0]) * 1e6 / float(sample_rate)
    return EarCues(
        n_lateral=int(np.count_nonzero(chosen)),
        level=Cue("level", "dB", level, MIN_LEVEL_DB),
        arrival=Cue("arrival", "us", arrival, MIN_ARRIVAL_US),
    )


def first_channel_is_left(cues: EarCues, source: str) -> bool:
    """True when the cues agree the first channel is the left ear, False for the right ear.

    InputFormatError when they do not agree, show no interaural difference at all, or there is
    no lateral direction to measure them on. ``source`` names the data in messages.
    """
    if cues.n_lateral == 0:
        raise InputFormatError(
            f"{source}: no direction lies {LATERAL_MIN_DEG:.0f} deg or more off the median "
            "plane, so which channel is the left ear cannot be measured"
        )
    speaking = [cue for cue in (cues.level, cues.arrival) if cue.speaks]
    if not speaking:
        raise InputFormatError(
            f"{source}: the two channels show no interaural difference, {cues.describe()}; a "
            f"head or microphone pair gives lateral sources at least {MIN_LEVEL_DB:.0f} dB of "
            f"level or {MIN_ARRIVAL_US:.0f} us of arrival difference, so these are not the "
            "responses of two ears (or the source directions are wrong)"
        )
    if all(cue.left_fraction >= MIN_AGREEMENT for cue in speaking):
        return True
    if all(cue.right_fraction >= MIN_AGREEMENT for cue in speaking):
        return False
    raise InputFormatError(
        f"{source}: the responses do not agree on which channel is the left ear, "
        f"{cues.describe()}; a head's left ear is the louder and the earlier one for sources "
        f"on the left in at least {100 * MIN_AGREEMENT:.0f} % of these directions, so the data "
        "or its source directions are inconsistent"
    )


__all__ = [
    "LATERAL_MIN_DEG",
    "MIN_AGREEMENT",
    "Cue",
    "EarCues",
    "first_channel_is_left",
    "lateral_sines",
    "measure_ear_cues",
]
