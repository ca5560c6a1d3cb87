"""Random courtyards for the ray-cast worlds: building facades of varied heights around an open
square, the ground, street furniture, and a sky with sun and clouds closing the box on top.

``build_courtyard(rng)`` returns a ``procedural_world.World``; see ``room_layout`` for units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from slfm_ros.core.sim import decor
from slfm_ros.core.sim import textures as tx
from slfm_ros.core.sim.procedural_world import (
    DOWN,
    Box,
    Light,
    Surface,
    World,
    auto_exposure,
    horizontal_surface,
    sample_texture,
    wall_frames,
)
from slfm_ros.core.sim.room_layout import (
    WALL_TEXEL_BUDGET,
    Image,
    Vec,
    WallFrame,
    build_floor,
    choice,
    is_clear,
    make_box,
    seeded,
    wall_densities,
)


@dataclass(frozen=True)
class Sky:
    """Sky colour by direction (gradient, sun glow) with clouds on a plane at height ``z``."""

    sun_dir: np.ndarray
    zenith: np.ndarray
    horizon: np.ndarray
    cloud_colour: np.ndarray
    clouds: Image  # (h, w) cover in [0, 1] of the cloud plane, texel (0, 0) at ``origin``
    origin: np.ndarray
    density: float

    def colour(self, points: np.ndarray) -> Image:
        """Sky colour (..., 3) seen toward ``points`` (..., 3) (above the horizon)."""
        dirs = points / np.linalg.norm(points, axis=-1, keepdims=True)
        el = np.clip(dirs[..., 2], 0.0, 1.0)[..., None]
        sky = self.horizon * (1 - el) ** 2 + self.zenith * (1 - (1 - el) ** 2)
        sky = sky + 0.6 * (np.clip(dirs @ self.sun_dir, 0.0, 1.0) ** 48)[..., None]
        scale = self.origin[2] / np.maximum(points[..., 2], 1e-3)
        u = (points[..., 0] * scale - self.origin[0]) * self.density
        v = (self.origin[1] - points[..., 1] * scale) * self.density
        cover = sample_texture(self.clouds, u.ravel(), v.ravel(), cv2.BORDER_REFLECT_101)
        cover = cover.reshape(points.shape[:-1] + (1,))
        return np.clip(sky * (1 - cover) + cover * self.cloud_colour, 0, 1).astype(np.float32)


def make_sky(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray) -> tuple[Sky, Surface]:
    """The sky and the cloud-plane surface that closes the courtyard at height ``hi[2]``."""
    sun_el, sun_az = rng.uniform(0.15, 1.2), rng.uniform(-math.pi, math.pi)
    sun_dir = np.array(
        [math.cos(sun_el) * math.cos(sun_az), math.cos(sun_el) * math.sin(sun_az), math.sin(sun_el)]
    )
    size = hi[:2] - lo[:2]
    d = float(min(12.0, math.sqrt(0.3e6 / (size[0] * size[1]))))
    origin, u_dir, v_dir, normal, h, w = horizontal_surface(lo, hi, hi[2], d, up=False)
    noise = tx.fractal_noise(h, w, rng, w / rng.uniform(2.0, 6.0), octaves=5, persistence=0.6)
    cover = np.clip((noise + rng.uniform(-0.3, 0.5)) * rng.uniform(1.5, 4.0), 0.0, 1.0)
    sky = Sky(
        sun_dir,
        tx.hsv(rng.uniform(0.55, 0.64), rng.uniform(0.3, 0.7), rng.uniform(0.6, 0.95)),
        tx.hsv(rng.uniform(0.5, 0.62), rng.uniform(0.0, 0.25), rng.uniform(0.8, 1.0)),
        tx.grey(rng, 0.7, 1.0),
        cover.astype(np.float32),
        origin,
        d,
    )
    pts = origin + np.arange(w)[None, :, None] / d * u_dir + np.arange(h)[:, None, None] / d * v_dir
    plane = Surface(sky.colour(pts), d, origin, u_dir, v_dir, normal)
    plane.emission = np.ones((h, w), np.float32)
    return sky, plane


def build_courtyard(rng: np.random.Generator) -> World:
    """Building facades around an open square under a cloudy sky (the "ceiling")."""
    size = np.array([rng.uniform(12.0, 40.0), rng.uniform(12.0, 40.0)])
    frac = rng.uniform(0.3, 0.7, 2)
    camera_h = rng.uniform(1.3, 1.8)
    top = rng.uniform(25.0, 35.0)
    lo = np.array([-frac[0] * size[0], -frac[1] * size[1], -camera_h])
    hi = np.array([lo[0] + size[0], lo[1] + size[1], top - camera_h])
    frames = wall_frames(lo, hi)
    densities = wall_densities(frames, top, WALL_TEXEL_BUDGET)
    sky, sky_plane = make_sky(rng, lo, hi)
    walls = [
        build_facade(frame, d, top, sky, rng) for frame, d in zip(frames, densities, strict=True)
    ]
    ground = build_floor(lo, hi, rng, tx.GROUND_TEXTURES)
    boxes = place_outdoor_objects(lo, hi, rng, int(rng.integers(0, 8)))
    sun = Light(sky.sun_dir * 1e4, rng.uniform(1.0, 2.0) * 1e8 * np.array([1.0, 0.95, 0.85]))
    ambient = rng.uniform(0.3, 0.7) * np.array([0.85, 0.92, 1.0])
    world = World(lo, hi, walls, ground, sky_plane, boxes, [sun], ambient, 1.0)
    world.exposure = auto_exposure(world, rng)
    return world


def build_facade(
    frame: WallFrame, d: float, top: float, sky: Sky, rng: np.random.Generator
) -> Surface:
    """One side of the courtyard: buildings of random heights, the sky above their roofs."""
    origin, u_dir, normal, length = frame
    hh, ww = int(math.ceil(top * d)), int(math.ceil(length * d))
    albedo = np.zeros((hh, ww, 3), np.float32)
    emission = np.zeros((hh, ww), np.float32)
    recipe = seeded(tx.pick(tx.FACADE_TEXTURES, rng), int(rng.integers(2**31)))
    s = 0.0
    while s < length:
        seg = min(length - s, rng.uniform(6.0, 25.0))
        x0, x1 = int(s * d), int(math.ceil((s + seg) * d))
        y0 = int((top - rng.uniform(4.0, top - 3.0)) * d)
        texture = recipe if rng.random() < 0.4 else tx.pick(tx.FACADE_TEXTURES, rng)
        albedo[y0:, x0:x1] = texture(hh - y0, x1 - x0, d, rng)
        draw_windows(albedo, (x0, y0, x1, hh), d, rng)
        emission[:y0, x0:x1] = 1.0
        s += seg
    # The sky above the roofs, at low resolution (it is smooth), then blended in.
    rows_sky = int(np.max(np.nonzero(emission.any(axis=1))[0], initial=0)) + 1
    step = 4
    cs = np.arange(0, ww + step, step, dtype=np.float64)
    rs = np.arange(0, rows_sky + step, step, dtype=np.float64)
    pts = origin + cs[None, :, None] / d * u_dir + rs[:, None, None] / d * DOWN
    coarse = sky.colour(pts)
    fine = cv2.resize(coarse, (len(cs) * step, len(rs) * step), interpolation=cv2.INTER_LINEAR)
    region = emission[:rows_sky] > 0
    albedo[:rows_sky][region] = fine[:rows_sky, :ww][region]
    return Surface(albedo, d, origin, u_dir, DOWN, normal, emission=emission)


def draw_windows(albedo: Image, rect: decor.Rect, d: float, rng: np.random.Generator) -> None:
    x0, y0, x1, y1 = rect
    storey = rng.uniform(2.8, 3.6) * d
    spacing = rng.uniform(1.8, 4.0) * d
    win_w, win_h = rng.uniform(0.35, 0.7) * spacing, rng.uniform(0.4, 0.65) * storey
    glass = tx.hsv(rng.uniform(0.5, 0.65), rng.uniform(0.1, 0.4), rng.uniform(0.15, 0.5))
    trim = tx.grey(rng, 0.1, 1.0)
    y = y1 - storey
    first = True
    while y - storey * 0.2 > y0:
        x = x0 + (spacing - win_w) / 2
        while x + win_w < x1:
            r = (
                int(x),
                int(y + (storey - win_h) * 0.4),
                int(x + win_w),
                int(y + (storey - win_h) * 0.4 + win_h),
            )
            if first and rng.random() < 0.3:  # shop front / entrance at street level
                r = (r[0], int(y + 0.15 * storey), r[2], int(y1))
            inner = decor.frame(albedo, r, trim, max(1, int(0.06 * d)))
            shade = glass * rng.uniform(0.7, 1.3)
            decor.fill(albedo, inner, shade)
            x += spacing
        y -= storey
        first = False


def place_outdoor_objects(lo: Vec, hi: Vec, rng: np.random.Generator, count: int) -> list[Box]:
    boxes: list[Box] = []
    taken: list[tuple[Vec, Vec]] = []
    for _ in range(count * 3):
        if len(taken) >= count:
            break
        kind = choice({"car": 1.0, "kiosk": 0.4, "planter": 0.6, "tree": 0.8}, rng)
        size = {"car": (4.3, 1.8), "kiosk": (2.0, 2.0), "planter": (1.2, 1.2), "tree": (0.3, 0.3)}[
            kind
        ]
        if rng.random() < 0.5:
            size = size[::-1]
        x = rng.uniform(lo[0] + 0.5, hi[0] - 0.5 - size[0])
        y = rng.uniform(lo[1] + 0.5, hi[1] - 0.5 - size[1])
        fl, fh = np.array([x, y]), np.array([x + size[0], y + size[1]])
        margin = 2.0 if kind == "tree" else 0.0
        if not is_clear(fl - margin, fh + margin, taken):
            continue
        taken.append((fl - margin, fh + margin))
        z0 = lo[2]
        d = 40.0
        if kind == "car":
            paint = tx.any_colour(rng)
            body = make_box([*fl, z0 + 0.3], [*fh, z0 + 1.0], rng, "paint", d)
            body.side = np.clip(body.side * 0 + paint, 0, 1).astype(np.float32)
            inset = np.array([0.25, 0.25]) * (fh - fl)
            cabin = make_box(
                [*(fl + inset * [1, 0.3]), z0 + 1.0],
                [*(fh - inset * [1, 0.3]), z0 + 1.5],
                rng,
                "metal",
                d,
            )
            boxes += [body, cabin]
        elif kind == "tree":
            boxes.append(make_box([*fl, z0], [*fh, z0 + 2.5], rng, "wood", d))
            crown = make_box(
                [*(fl - 1.5), z0 + 2.5], [*(fh + 1.5), z0 + rng.uniform(5.0, 8.0)], rng, "fabric", d
            )
            crown.side = tx.grass(crown.side.shape[0], crown.side.shape[1], d, rng)
            boxes.append(crown)
        else:
            boxes.append(
                make_box(
                    [*fl, z0],
                    [*fh, z0 + (2.5 if kind == "kiosk" else 0.6)],
                    rng,
                    "paint",
                    d,
                    (0, -1),
                    "cabinet" if kind == "kiosk" else "",
                )
            )
    return boxes
