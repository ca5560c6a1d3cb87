"""Angle and frame conventions of slfm_ros, stated once.

Every other module imports these helpers instead of re-deriving them.

Frames (REP-103)
    x forward, y left, z up. Azimuth and yaw are counter-clockwise positive, in radians
    everywhere in code; degrees appear only at user-facing edges (CLI tables, JSON reports).
    A source on the left has positive azimuth (+pi/2 is straight left).

Camera yaw is about the z axis of the camera *body* frame (x forward), never the optical frame.

Multi-view geometry
    camera turn      theta_i = yaw_i - yaw_0
    source azimuth   phi_i   = phi_world - yaw_i        (so phi_i = phi_0 - theta_i)

Wrap interval
    ``wrap_angle`` maps any angle to [-pi, pi). The value pi itself maps to -pi.

Front/back mirror (a sound at 30 deg and one at 150 deg give the same interaural time delay
for a two-microphone array)
    rho(phi) = pi - phi  for phi > 0,   -pi - phi  otherwise.

Evaluation protocol
    angular error    arccos(cos(pred - true))  in [0, pi]
    front folding    predictions folded into [-pi/2, pi/2]: p <= -pi/2 -> -pi - p,
                     p >= pi/2 -> pi - p.
    left/right       "left" when sin(phi) > 0.

Array shapes
    audio            (frames, channels) float32 in [-1, 1], channel 0 = left ear/mic.
    STFT features    (4, freq_bins, time_frames): [L magnitude, L phase, R magnitude, R phase].
    images           (height, width, 3) uint8 RGB.
"""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import numpy.typing as npt

AngleLike = TypeVar("AngleLike", float, npt.NDArray[np.floating])

LEFT_CHANNEL = 0
RIGHT_CHANNEL = 1


def wrap_angle(angle: AngleLike) -> AngleLike:
    """Wrap radians into [-pi, pi)."""
    wrapped = np.mod(np.asarray(angle, dtype=np.float64) + math.pi, 2.0 * math.pi) - math.pi
    if np.ndim(wrapped) == 0:
        return float(wrapped)  # type: ignore[return-value]
    return wrapped  # type: ignore[return-value]


def camera_turn(yaw_i: AngleLike, yaw_0: AngleLike) -> AngleLike:
    """Relative camera turn theta_i = yaw_i - yaw_0, wrapped."""
    return wrap_angle(np.asarray(yaw_i) - np.asarray(yaw_0))  # type: ignore[arg-type]


def source_azimuth_in_view(phi_world: AngleLike, yaw_view: AngleLike) -> AngleLike:
    """Azimuth of a static source seen from a view with body yaw ``yaw_view``."""
    return wrap_angle(np.asarray(phi_world) - np.asarray(yaw_view))  # type: ignore[arg-type]


def front_back_mirror(phi: AngleLike) -> AngleLike:
    """rho(phi): the direction with the same lateral angle on the other side of the ear axis."""
    phi_arr = np.asarray(phi, dtype=np.float64)
    mirrored = np.where(phi_arr > 0, math.pi - phi_arr, -math.pi - phi_arr)
    return wrap_angle(mirrored)  # type: ignore[return-value]


def fold_to_front(phi: AngleLike) -> AngleLike:
    """Fold an azimuth into [-pi/2, pi/2] as the evaluation protocol scores it."""
    p = np.asarray(wrap_angle(phi), dtype=np.float64)  # type: ignore[arg-type]
    folded = np.where(p <= -math.pi / 2, -math.pi - p, np.where(p >= math.pi / 2, math.pi - p, p))
    if np.ndim(folded) == 0:
        return float(folded)  # type: ignore[return-value]
    return folded  # type: ignore[return-value]


def angular_error(pred: AngleLike, true: AngleLike) -> AngleLike:
    """Wrapped absolute error arccos(cos(pred - true)), in [0, pi]."""
    err = np.arccos(np.clip(np.cos(np.asarray(pred) - np.asarray(true)), -1.0, 1.0))
    if np.ndim(err) == 0:
        return float(err)  # type: ignore[return-value]
    return err  # type: ignore[return-value]


def is_left(phi: AngleLike) -> bool | npt.NDArray[np.bool_]:
    """Left/right decision: True where the direction is on the left (sin(phi) > 0)."""
    left = np.sin(np.asarray(phi, dtype=np.float64)) > 0
    if np.ndim(left) == 0:
        return bool(left)
    return left


def yaw_quaternion(yaw: float) -> tuple[float, float, float, float]:
    """(x, y, z, w) quaternion of a pure rotation by ``yaw`` about +z."""
    half = 0.5 * yaw
    return (0.0, 0.0, math.sin(half), math.cos(half))


def yaw_from_quaternion(x: float, y: float, z: float, w: float) -> float:
    """Yaw (about +z) of a quaternion, wrapped to [-pi, pi)."""
    siny = 2.0 * (w * z + x * y)
    cosy = 1.0 - 2.0 * (y * y + z * z)
    return wrap_angle(math.atan2(siny, cosy))


def unit_vector(azimuth: float) -> tuple[float, float, float]:
    """Unit vector in the horizontal plane toward ``azimuth`` (REP-103 frame)."""
    return (math.cos(azimuth), math.sin(azimuth), 0.0)


def deg(angle: AngleLike) -> AngleLike:
    """Radians to degrees, for user-facing output only."""
    return np.degrees(angle)  # type: ignore[return-value]


def rad(angle: AngleLike) -> AngleLike:
    """Degrees to radians, for user-facing input only."""
    return np.radians(angle)  # type: ignore[return-value]
