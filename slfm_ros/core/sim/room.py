"""Shoebox rooms and binaural room impulse responses (BRIRs) by the image-source model.

World frame: REP-103 room coordinates in metres with the origin in a corner, x/y along the walls,
z up. The listener stands at ``listener_pos_m`` and faces ``listener_yaw`` (radians about +z).

Rendering: pyroomacoustics enumerates the image sources of the room up to an order; each image
is rendered through the receiver's HRIR for its direction of arrival relative to the listener's
heading, delayed by distance / c (sub-sample accurate) and scaled by 1/r (1 at 1 m) times the
wall reflection factors. Beyond the image order a late diffuse tail (noise from random
directions through the same receiver, decaying at the requested RT60) fills in the energy the
truncated image set lacks, so long RT60s stay cheap.
"""

from __future__ import annotations

import functools
import hashlib
import math
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyroomacoustics as pra

from slfm_ros.core.atomic_io import atomic_write
from slfm_ros.core.conventions import wrap_angle
from slfm_ros.core.errors import ConfigError
from slfm_ros.core.geometry.interaural import SPEED_OF_SOUND_M_S
from slfm_ros.core.sim.receivers import Receiver, diffuse_power_gain, render_diffuse

# Image order used when RoomConfig.max_order is None: about 1,500 images, the rest is tail.
AUTO_MAX_ORDER = 10
# Images rendered per batch (bounds memory: batch x taps x 2 complex spectra).
_BATCH = 1024
# Energy-envelope smoothing of the image-source part when matching the tail (seconds).
_SMOOTH_S = 0.02
_LN_1E6 = 6.0 * math.log(10.0)  # 60 dB of energy decay


def _vec3(value: Any, name: str) -> tuple[float, float, float]:
    arr = np.asarray(value, dtype=np.float64).ravel()
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ConfigError(f"{name} must be three finite numbers (x, y, z) in metres, got {value!r}")
    return (float(arr[0]), float(arr[1]), float(arr[2]))


@dataclass(frozen=True)
class RoomConfig:
    """A shoebox room with uniform wall absorption and a listener position.

    dims_m: (x, y, z) side lengths in metres. rt60_s: reverberation time in seconds.
    listener_pos_m: head centre in room coordinates, metres. max_order: image-source order;
    None picks min(order needed for the full RT60, AUTO_MAX_ORDER). late_tail: add the diffuse
    tail beyond the image order.
    """

    dims_m: tuple[float, float, float]
    rt60_s: float
    listener_pos_m: tuple[float, float, float]
    max_order: int | None = None
    late_tail: bool = True

    def __post_init__(self) -> None:
        dims = _vec3(self.dims_m, "dims_m")
        pos = _vec3(self.listener_pos_m, "listener_pos_m")
        object.__setattr__(self, "dims_m", dims)
        object.__setattr__(self, "listener_pos_m", pos)
        object.__setattr__(self, "rt60_s", float(self.rt60_s))
        if min(dims) < 1.0:
            raise ConfigError(f"room dims_m must each be >= 1 m, got {dims}")
        if not 0.05 <= self.rt60_s <= 5.0:
            raise ConfigError(f"rt60_s must be in [0.05, 5] s, got {self.rt60_s}")
        if any(not 0.1 <= p <= d - 0.1 for p, d in zip(pos, dims, strict=True)):
            raise ConfigError(
                f"listener_pos_m {pos} must lie inside the room {dims} with 0.1 m to every wall"
            )
        if self.max_order is not None and not 0 <= int(self.max_order) <= 40:
            raise ConfigError(f"max_order must be None (auto) or in [0, 40], got {self.max_order}")
        if self.sabine_absorption > 1.0:
            raise ConfigError(
                f"rt60_s={self.rt60_s} s is shorter than a {dims} m room can reach (Sabine "
                f"needs absorption > 1); use rt60_s >= {min_rt60(dims):.3f} s or a smaller room"
            )

    @property
    def volume_m3(self) -> float:
        return float(np.prod(self.dims_m))

    @property
    def surface_m2(self) -> float:
        x, y, z = self.dims_m
        return 2.0 * (x * y + x * z + y * z)

    @property
    def sabine_absorption(self) -> float:
        """Energy absorption coefficient that Sabine's formula needs for ``rt60_s``."""
        return _sabine_coefficient(self.dims_m) / self.rt60_s

    @property
    def absorption(self) -> float:
        """Wall energy absorption coefficient (pyroomacoustics.inverse_sabine, all walls)."""
        a_sabine, _ = pra.inverse_sabine(self.rt60_s, list(self.dims_m), c=SPEED_OF_SOUND_M_S)
        return float(a_sabine)

    @property
    def full_order(self) -> int:
        """Image order that covers the whole RT60 (pyroomacoustics.inverse_sabine)."""
        _, order = pra.inverse_sabine(self.rt60_s, list(self.dims_m), c=SPEED_OF_SOUND_M_S)
        return int(order)

    @property
    def image_order(self) -> int:
        if self.max_order is not None:
            return int(self.max_order)
        return min(self.full_order, AUTO_MAX_ORDER)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description (for sample metadata)."""
        out = asdict(self)
        out["dims_m"] = list(self.dims_m)
        out["listener_pos_m"] = list(self.listener_pos_m)
        out["absorption"] = self.absorption
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RoomConfig:
        keys = ("dims_m", "rt60_s", "listener_pos_m", "max_order", "late_tail")
        unknown = set(data) - set(keys) - {"absorption"}
        if unknown:
            raise ConfigError(f"unknown room keys {sorted(unknown)}; expected {list(keys)}")
        return cls(**{k: data[k] for k in keys if k in data})


def _sabine_coefficient(dims: tuple[float, float, float]) -> float:
    """24 ln(10) V / (c S): Sabine absorption times RT60, in seconds."""
    x, y, z = dims
    return 24.0 * math.log(10.0) * x * y * z / (SPEED_OF_SOUND_M_S * 2.0 * (x * y + x * z + y * z))


def min_rt60(dims: tuple[float, float, float]) -> float:
    """Shortest RT60 (s) Sabine's formula allows for a room of ``dims`` (absorption 1)."""
    return _sabine_coefficient(dims)


def sample_room(
    rng: np.random.Generator,
    dims_min_m: tuple[float, float, float] = (3.0, 3.0, 2.5),
    dims_max_m: tuple[float, float, float] = (12.0, 10.0, 4.0),
    rt60_range_s: tuple[float, float] = (0.15, 0.9),
    wall_margin_m: float = 0.5,
    listener_height_m: tuple[float, float] = (1.2, 1.8),
    max_order: int | None = None,
) -> RoomConfig:
    """Random shoebox room, RT60 and listener position.

    Sizes are uniform between ``dims_min_m`` and ``dims_max_m``; RT60 is uniform in
    ``rt60_range_s`` but at least 1.1 x the shortest RT60 the room allows; the listener stands
    ``wall_margin_m`` or more from the walls at a height in ``listener_height_m``.
    """
    lo = np.asarray(dims_min_m, dtype=np.float64)
    hi = np.asarray(dims_max_m, dtype=np.float64)
    if np.any(lo > hi) or np.any(lo < 2 * wall_margin_m + 0.2):
        raise ConfigError(
            f"room size range {dims_min_m}..{dims_max_m} must be ordered and leave "
            f"{wall_margin_m} m margins around the listener"
        )
    dims = tuple(float(v) for v in rng.uniform(lo, hi))
    floor = 1.1 * min_rt60(dims)  # type: ignore[arg-type]
    rt_lo, rt_hi = max(rt60_range_s[0], floor), max(rt60_range_s[1], floor)
    rt60 = float(rng.uniform(rt_lo, rt_hi))
    x = rng.uniform(wall_margin_m, dims[0] - wall_margin_m)
    y = rng.uniform(wall_margin_m, dims[1] - wall_margin_m)
    z_hi = min(listener_height_m[1], dims[2] - 0.3)
    z = rng.uniform(min(listener_height_m[0], z_hi), z_hi)
    return RoomConfig(dims, rt60, (float(x), float(y), float(z)), max_order)  # type: ignore[arg-type]


def place_source(
    room: RoomConfig,
    azimuth_world: float,
    distance_m: float,
    elevation: float = 0.0,
    wall_margin_m: float = 0.3,
) -> npt.NDArray[np.float64]:
    """(3,) position at ``distance_m`` from the listener toward (azimuth_world, elevation).

    When that point would be closer than ``wall_margin_m`` to a wall the distance is shortened
    along the same ray, so the direction (the label) stays exact; read the actual distance as
    the norm of (position - listener).
    """
    listener = np.asarray(room.listener_pos_m)
    dims = np.asarray(room.dims_m)
    u = np.array(
        [
            math.cos(elevation) * math.cos(azimuth_world),
            math.cos(elevation) * math.sin(azimuth_world),
            math.sin(elevation),
        ]
    )
    limit = float(distance_m)
    for axis in range(3):
        if u[axis] > 1e-12:
            limit = min(limit, (dims[axis] - wall_margin_m - listener[axis]) / u[axis])
        elif u[axis] < -1e-12:
            limit = min(limit, (wall_margin_m - listener[axis]) / u[axis])
    limit = max(limit, 0.05)
    return listener + limit * u


@functools.lru_cache(maxsize=64)
def _image_sources(
    dims: tuple[float, float, float],
    absorption: float,
    order: int,
    source: tuple[float, float, float],
    listener: tuple[float, float, float],
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64], npt.NDArray[np.int64]]:
    """Image positions (n, 3), amplitude factors (n,) and reflection orders (n,)."""
    shoebox = pra.ShoeBox(
        list(dims),
        fs=16000,
        materials=pra.Material(absorption),
        max_order=order,
        air_absorption=False,
    )
    shoebox.add_source(list(source))
    shoebox.add_microphone(list(listener))
    shoebox.image_source_model()
    src = shoebox.sources[0]
    positions = np.ascontiguousarray(np.asarray(src.images, dtype=np.float64).T)
    damping = np.asarray(src.damping, dtype=np.float64).reshape(-1, positions.shape[0])[0]
    orders = np.asarray(src.orders, dtype=np.int64)
    for arr in (positions, damping, orders):
        arr.setflags(write=False)
    return positions, damping, orders


@dataclass(frozen=True, eq=False)
class BinauralRir:
    """A rendered BRIR and its bookkeeping.

    rir: (taps, 2) float32, channel 0 = left; the direct sound arrives at
    latency_samples + direct_delay_s * sample_rate. drr_db: direct-to-reverberant energy
    ratio (both channels). image_order: order of the image-source part.
    """

    rir: npt.NDArray[np.float32]
    drr_db: float
    direct_delay_s: float
    latency_samples: float
    sample_rate: int
    image_order: int
    source_pos_m: tuple[float, float, float] = field(default=(0.0, 0.0, 0.0))
    listener_yaw: float = 0.0


def _scatter(
    out: npt.NDArray[np.float64],
    receiver: Receiver,
    rel: npt.NDArray[np.float64],
    gains: npt.NDArray[np.float64],
    listener_yaw: float,
    sample_rate: int,
) -> None:
    """Add the responses of images at positions ``rel`` (relative to the head) into ``out``."""
    dist = np.linalg.norm(rel, axis=1)
    az = wrap_angle(np.arctan2(rel[:, 1], rel[:, 0]) - listener_yaw)
    el = np.arctan2(rel[:, 2], np.hypot(rel[:, 0], rel[:, 1]))
    delay = dist / SPEED_OF_SOUND_M_S * sample_rate
    whole = np.floor(delay).astype(np.int64)
    taps = receiver.n_taps(sample_rate)
    keep = whole + taps <= out.shape[0]
    for start in range(0, int(keep.sum()), _BATCH):
        sel = np.flatnonzero(keep)[start : start + _BATCH]
        irs = receiver.hrirs(az[sel], el[sel], sample_rate, delay[sel] - whole[sel])
        index = (whole[sel][:, None] + np.arange(taps)[None, :]).ravel()
        for ch in range(2):
            weights = (irs[:, :, ch] * gains[sel][:, None]).ravel()
            out[:, ch] += np.bincount(index, weights=weights, minlength=out.shape[0])[
                : out.shape[0]
            ]


def _smoothed_energy(x: npt.NDArray[np.float64], width: int) -> npt.NDArray[np.float64]:
    kernel = np.ones(max(1, width)) / max(1, width)
    return np.convolve(x, kernel, mode="same")


def render_binaural_rir(
    room: RoomConfig,
    receiver: Receiver,
    source_pos_m: npt.ArrayLike,
    listener_yaw: float,
    sample_rate: int,
    rng: np.random.Generator | None = None,
) -> BinauralRir:
    """Render the BRIR from ``source_pos_m`` to the listener facing ``listener_yaw``.

    The length covers the direct delay plus the RT60 (60 dB of decay). ``rng`` seeds the late
    tail; by default it is derived from the inputs, so the same call gives the same BRIR.
    """
    source = _vec3(source_pos_m, "source_pos_m")
    dims = np.asarray(room.dims_m)
    if any(not 0.0 < s < d for s, d in zip(source, dims, strict=True)):
        raise ConfigError(f"source_pos_m {source} lies outside the room {room.dims_m}")
    listener = np.asarray(room.listener_pos_m)
    sample_rate = int(sample_rate)
    order = room.image_order
    positions, damping, orders = _image_sources(
        room.dims_m, room.absorption, order, source, room.listener_pos_m
    )
    rel = positions - listener
    dist = np.linalg.norm(rel, axis=1)
    direct = int(np.flatnonzero(orders == 0)[0])
    if dist[direct] < 0.05:
        raise ConfigError(f"source {source} is within 5 cm of the listener; move it away")
    taps = receiver.n_taps(sample_rate)
    latency = receiver.latency_samples(sample_rate)
    length = int(math.ceil((dist[direct] / SPEED_OF_SOUND_M_S + room.rt60_s) * sample_rate)) + taps
    gains = damping / dist

    direct_part = np.zeros((length, 2))
    _scatter(direct_part, receiver, rel[[direct]], gains[[direct]], listener_yaw, sample_rate)
    out = np.zeros((length, 2))
    others = np.flatnonzero(orders != 0)
    _scatter(out, receiver, rel[others], gains[others], listener_yaw, sample_rate)

    if room.late_tail and order < room.full_order:
        if rng is None:
            key = repr((room, receiver.name, source, round(listener_yaw, 9), sample_rate))
            rng = np.random.default_rng(int(hashlib.sha1(key.encode()).hexdigest()[:15], 16))
        out += _late_tail(room, receiver, out, dist, orders, latency, sample_rate, rng)
    out += direct_part

    e_direct = float(np.sum(direct_part**2))
    e_reverb = float(np.sum((out - direct_part) ** 2))
    drr = 10.0 * math.log10(e_direct / e_reverb) if e_reverb > 0 else math.inf
    return BinauralRir(
        rir=out.astype(np.float32),
        drr_db=drr,
        direct_delay_s=float(dist[direct] / SPEED_OF_SOUND_M_S),
        latency_samples=float(latency),
        sample_rate=sample_rate,
        image_order=order,
        source_pos_m=source,
        listener_yaw=float(listener_yaw),
    )


def _late_tail(
    room: RoomConfig,
    receiver: Receiver,
    early: npt.NDArray[np.float64],
    dist: npt.NDArray[np.float64],
    orders: npt.NDArray[np.int64],
    latency: float,
    sample_rate: int,
    rng: np.random.Generator,
) -> npt.NDArray[np.float64]:
    """Diffuse noise carrying the energy the truncated image set lacks, (length, 2).

    The image set is complete up to about the nearest image of the highest order (time t0).
    The tail continues the image-source energy from there with an exp(-t 6 ln10 / RT60) decay,
    its level fitted to the image-source energy in the 50 ms before t0 (or, when that window
    is too short, the statistical level G * 4 pi c / (V fs) for amplitudes 1/r, G being the
    receiver's diffuse power gain), and adds whatever the smoothed image energy falls short of.
    """
    length = early.shape[0]
    gain = diffuse_power_gain(receiver, sample_rate)
    t = (np.arange(length) - latency) / sample_rate
    decay = np.exp(-np.maximum(t, 0.0) * _LN_1E6 / room.rt60_s)
    energy = np.mean(early**2, axis=1)
    start = int(latency + dist[orders == orders.max()].min() / SPEED_OF_SOUND_M_S * sample_rate)
    first = int(latency + (dist[orders == 0][0] / SPEED_OF_SOUND_M_S + 0.005) * sample_rate)
    fit_from = max(first, start - int(0.05 * sample_rate))
    if start - fit_from >= int(0.01 * sample_rate):
        level = float(energy[fit_from:start].sum() / decay[fit_from:start].sum())
    else:
        level = gain * 4.0 * math.pi * SPEED_OF_SOUND_M_S / (room.volume_m3 * sample_rate)
    have = _smoothed_energy(energy, int(_SMOOTH_S * sample_rate))
    deficit = np.clip(level * decay - have, 0.0, None)
    deficit[: max(0, start)] = 0.0
    # Short fade-in so the tail does not switch on with a click.
    if 0 <= start < length:
        n = min(int(0.005 * sample_rate), length - start)
        deficit[start : start + n] *= np.linspace(0.0, 1.0, n)
    envelope = np.sqrt(deficit / gain)
    return render_diffuse(receiver, length, sample_rate, rng, envelope=envelope).astype(np.float64)


def binaural_rir(
    room: RoomConfig,
    receiver: Receiver,
    source_pos_m: npt.ArrayLike,
    listener_yaw: float,
    sample_rate: int,
) -> npt.NDArray[np.float32]:
    """(taps, 2) float32 BRIR; see ``render_binaural_rir`` for the DRR and delays."""
    return render_binaural_rir(room, receiver, source_pos_m, listener_yaw, sample_rate).rir


class RirCache:
    """LRU cache of BRIRs in memory, optionally backed by a folder of .npz files.

    Keys: room, receiver name, source position quantised to ``position_step_m``, yaw quantised
    to ``yaw_step_rad``, sample rate. The BRIR is rendered at the quantised position and yaw,
    so a hit returns exactly what a miss would have rendered. Returned arrays are read-only
    and shared between hits.
    """

    def __init__(
        self,
        max_items: int = 256,
        directory: str | Path | None = None,
        position_step_m: float = 0.01,
        yaw_step_rad: float = math.radians(0.25),
    ):
        if max_items < 1 or position_step_m <= 0 or yaw_step_rad <= 0:
            raise ConfigError("RirCache needs max_items >= 1 and positive quantisation steps")
        self.max_items = int(max_items)
        self.directory = None if directory is None else Path(directory)
        if self.directory is not None:
            self.directory.mkdir(parents=True, exist_ok=True)
        self.position_step_m = float(position_step_m)
        self.yaw_step_rad = float(yaw_step_rad)
        self._items: OrderedDict[str, BinauralRir] = OrderedDict()
        self.hits = 0
        self.misses = 0
        self.render_seconds = 0.0

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        self._items.clear()

    def quantise(
        self, source_pos_m: npt.ArrayLike, listener_yaw: float
    ) -> tuple[tuple[float, float, float], float]:
        """The position and yaw that are actually rendered for these inputs."""
        pos = _vec3(source_pos_m, "source_pos_m")
        step = self.position_step_m
        q_pos = tuple(round(round(p / step) * step, 9) for p in pos)
        q_yaw = round(
            round(float(wrap_angle(listener_yaw)) / self.yaw_step_rad) * self.yaw_step_rad, 12
        )
        return q_pos, q_yaw  # type: ignore[return-value]

    def get(
        self,
        room: RoomConfig,
        receiver: Receiver,
        source_pos_m: npt.ArrayLike,
        listener_yaw: float,
        sample_rate: int,
    ) -> BinauralRir:
        q_pos, q_yaw = self.quantise(source_pos_m, listener_yaw)
        key = repr((room, receiver.name, q_pos, q_yaw, int(sample_rate)))
        item = self._items.get(key)
        if item is not None:
            self._items.move_to_end(key)
            self.hits += 1
            return item
        item = self._load(key)
        if item is None:
            self.misses += 1
            tic = time.perf_counter()
            item = render_binaural_rir(room, receiver, q_pos, q_yaw, sample_rate)
            self.render_seconds += time.perf_counter() - tic
            self._store(key, item)
        else:
            self.hits += 1
        item.rir.setflags(write=False)
        self._items[key] = item
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)
        return item

    def _file(self, key: str) -> Path | None:
        if self.directory is None:
            return None
        return self.directory / f"{hashlib.sha1(key.encode()).hexdigest()}.npz"

    def _load(self, key: str) -> BinauralRir | None:
        path = self._file(key)
        if path is None or not path.is_file():
            return None
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            meta = data["meta"]
            return BinauralRir(
                rir=np.asarray(data["rir"], dtype=np.float32),
                drr_db=float(meta[0]),
                direct_delay_s=float(meta[1]),
                latency_samples=float(meta[2]),
                sample_rate=int(meta[3]),
                image_order=int(meta[4]),
                source_pos_m=tuple(float(v) for v in data["source"]),  # type: ignore[arg-type]
                listener_yaw=float(meta[5]),
            )

    def _store(self, key: str, item: BinauralRir) -> None:
        path = self._file(key)
        if path is None:
            return
        meta = np.array(
            [
                item.drr_db,
                item.direct_delay_s,
                item.latency_samples,
                item.sample_rate,
                item.image_order,
                item.listener_yaw,
            ]
        )
        # Atomic, so parallel workers never read a half-written file; no fsync for a cache.
        atomic_write(
            path,
            lambda fh: np.savez(
                fh, key=np.array(key), rir=item.rir, meta=meta, source=np.array(item.source_pos_m)
            ),
            fsync=False,
        )
