"""Worlds that are not boxes: rooms with walls at any angle, curved rooms, L-shaped rooms,
clutter at any angle, plazas of facades at any angle, and parks with a curved tree line.

The box worlds of ``room_layout`` and ``courtyard_layout`` have every wall, every piece of
furniture and every floor board on two perpendicular directions, a regularity real places
only partly have; a yaw model trained on boxes alone learns it. These builders return the
same ``procedural_world.World`` (walls on any closed outline around the camera, boxes with
their own yaw), so one renderer draws both kinds.

Outlines are lists of (x, y) vertices in metres, clockwise seen from above, so each wall runs
from vertex k to vertex k + 1 with the room on its right (the wall's texture columns then
grow to a viewer's right, as panorama columns do) and its inward normal (u_y, -u_x).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.sim import decor
from slfm_ros.core.sim import textures as tx
from slfm_ros.core.sim.courtyard_layout import Sky, draw_windows, make_sky
from slfm_ros.core.sim.procedural_world import DOWN, Box, Light, Surface, World, auto_exposure
from slfm_ros.core.sim.room_layout import (
    CAMERA_CLEARANCE_M,
    FREE_FURNITURE,
    WALL_FURNITURE,
    WALL_TEXEL_BUDGET,
    build_ceiling,
    build_floor,
    choice,
    decorate_wall,
    furniture,
    make_box,
    seeded,
    warm_white,
)

Vec = npt.NDArray[np.float64]
Outline = npt.NDArray[np.float64]  # (n, 2) vertices, clockwise seen from above

ROOM_SHAPES = {"polygon": 1.0, "round": 0.6, "l_shape": 0.6}
OUTDOOR_SHAPES = {"plaza": 1.0, "park": 1.0}


# ---------------------------------------------------------------------------------------------
# Outlines


def star_outline(angles: Vec, radii: Vec) -> Outline:
    """Vertices at the given azimuths and distances from the camera, made clockwise."""
    order = np.argsort(angles)[::-1]  # decreasing azimuth = clockwise seen from above
    a, r = angles[order], radii[order]
    return np.stack([r * np.cos(a), r * np.sin(a)], axis=1)


def polygon_outline(rng: np.random.Generator) -> Outline:
    """5-9 walls at random angles (a star-shaped polygon around the camera)."""
    n = int(rng.integers(5, 10))
    gaps = rng.uniform(0.5, 1.5, n)
    angles = rng.uniform(-math.pi, math.pi) + np.cumsum(gaps / gaps.sum() * 2.0 * math.pi)
    radii = rng.uniform(1.8, 6.0, n)
    return star_outline(angles, radii)


def round_outline(
    rng: np.random.Generator, mean_radius: tuple[float, float] = (2.5, 6.0)
) -> Outline:
    """A curved wall: an off-centre ellipse with a wobble, as 28-48 short walls."""
    n = int(rng.integers(28, 49))
    radius = rng.uniform(*mean_radius)
    stretch = rng.uniform(0.6, 1.0)
    turn = rng.uniform(-math.pi, math.pi)
    t = np.linspace(0.0, 2.0 * math.pi, n, endpoint=False) + rng.uniform(0, 2 * math.pi / n)
    wobble = 1.0 + sum(
        rng.uniform(-0.06, 0.06) * np.cos(k * t + rng.uniform(0, 2 * math.pi)) for k in (2, 3, 5)
    )
    x = radius * np.cos(t) * wobble
    y = radius * stretch * np.sin(t) * wobble
    c, s = math.cos(turn), math.sin(turn)
    # The camera anywhere in the inner part of the ellipse.
    x = x - rng.uniform(-0.35, 0.35) * radius
    y = y - rng.uniform(-0.35, 0.35) * radius * stretch
    pts = np.stack([c * x - s * y, s * x + c * y], axis=1)
    angles = np.arctan2(pts[:, 1], pts[:, 0])
    return star_outline(angles, np.hypot(pts[:, 0], pts[:, 1]))


def l_outline(rng: np.random.Generator) -> Outline:
    """A rectangle with one corner cut away (walls on two directions, but not a box)."""
    w, h = rng.uniform(4.0, 10.0), rng.uniform(4.0, 9.0)
    cut_w, cut_h = w * rng.uniform(0.3, 0.6), h * rng.uniform(0.3, 0.6)
    # Counter-clockwise from (0, 0), the notch at the (w, h) corner.
    ccw = np.array([[0, 0], [w, 0], [w, h - cut_h], [w - cut_w, h - cut_h], [w - cut_w, h], [0, h]])
    # The camera inside the L, away from the walls.
    while True:
        p = rng.uniform([0.5, 0.5], [w - 0.5, h - 0.5])
        if not (p[0] > w - cut_w - 0.5 and p[1] > h - cut_h - 0.5):
            break
    return ccw[::-1].astype(np.float64) - p


def rotated(outline: Outline, angle: float) -> Outline:
    c, s = math.cos(angle), math.sin(angle)
    return outline @ np.array([[c, s], [-s, c]])


def inside(outline: Outline, points: Vec) -> npt.NDArray[np.bool_]:
    """Even-odd point-in-polygon test of (..., 2) points."""
    x, y = points[..., 0], points[..., 1]
    result = np.zeros(x.shape, dtype=bool)
    n = len(outline)
    for k in range(n):
        (x0, y0), (x1, y1) = outline[k], outline[(k + 1) % n]
        crosses = (y0 > y) != (y1 > y)
        with np.errstate(divide="ignore", invalid="ignore"):
            x_at = x0 + (y - y0) * (x1 - x0) / (y1 - y0)
        result ^= crosses & (x < x_at)
    return result


def distance_to_outline(outline: Outline, points: Vec) -> Vec:
    """Distance (...) from points to the nearest wall segment."""
    best = np.full(points.shape[:-1], np.inf)
    n = len(outline)
    for k in range(n):
        a, b = outline[k], outline[(k + 1) % n]
        ab = b - a
        t = np.clip(((points - a) @ ab) / max(float(ab @ ab), 1e-12), 0.0, 1.0)
        best = np.minimum(best, np.linalg.norm(points - (a + t[..., None] * ab), axis=-1))
    return best


def bounds(outline: Outline, floor_z: float, top_z: float) -> tuple[Vec, Vec]:
    lo = np.array([*outline.min(axis=0), floor_z])
    hi = np.array([*outline.max(axis=0), top_z])
    return lo, hi


# ---------------------------------------------------------------------------------------------
# Walls along an outline, textured as one continuous strip


def split_strip(
    albedo: tx.Image,
    emission: npt.NDArray[np.float32] | None,
    emitters: list[decor.Emitter],
    outline: Outline,
    density: float,
    top_z: float,
) -> list[Surface]:
    """Cut a strip texture (rows: top_z down to the floor; columns: arc length along the
    outline) into one wall Surface per outline edge."""
    n = len(outline)
    walls = []
    start = 0.0
    for k in range(n):
        a, b = outline[k], outline[(k + 1) % n]
        length = float(np.linalg.norm(b - a))
        u = (b - a) / length
        c0 = int(round(start * density))
        c1 = max(c0 + 2, int(round((start + length) * density)))
        piece = np.ascontiguousarray(albedo[:, c0:c1])
        if piece.shape[1] < c1 - c0:  # the last edge may round past the strip's end
            piece = np.pad(piece, ((0, 0), (0, c1 - c0 - piece.shape[1]), (0, 0)), mode="edge")
        surface = Surface(
            piece,
            (c1 - c0) / length,
            np.array([a[0], a[1], top_z]),
            np.array([u[0], u[1], 0.0]),
            DOWN,
            np.array([u[1], -u[0], 0.0]),
        )
        if emission is not None:
            glow = emission[:, c0:c1]
            if glow.shape[1] < c1 - c0:
                glow = np.pad(glow, ((0, 0), (0, c1 - c0 - glow.shape[1])), mode="edge")
            surface.emission = np.ascontiguousarray(glow)
        for e in emitters:
            x0, y0, x1, y1 = e.rect
            if x1 > c0 and x0 < c1:
                surface.emitters.append(
                    decor.Emitter((max(x0, c0) - c0, y0, min(x1, c1) - c0, y1), e.gain)
                )
        walls.append(surface)
        start += length
    return walls


def point_along(outline: Outline, s: float) -> tuple[Vec, Vec]:
    """Position (2,) and inward normal (2,) at arc length ``s`` along the outline."""
    n = len(outline)
    for k in range(n):
        a, b = outline[k], outline[(k + 1) % n]
        length = float(np.linalg.norm(b - a))
        if s <= length or k == n - 1:
            u = (b - a) / length
            return a + u * min(s, length), np.array([u[1], -u[0]])
        s -= length
    raise AssertionError("unreachable")


def perimeter(outline: Outline) -> float:
    return float(np.sum(np.linalg.norm(np.roll(outline, -1, axis=0) - outline, axis=1)))


def strip_density(outline: Outline, height: float, budget: float) -> float:
    nearest = float(np.min(distance_to_outline(outline, np.zeros((1, 2)))))
    wanted = float(np.clip(290.0 / max(nearest, 0.3), 40.0, 110.0))
    return min(wanted, math.sqrt(budget / (perimeter(outline) * height)))


def build_room_walls(
    outline: Outline, lo: Vec, hi: Vec, rng: np.random.Generator
) -> tuple[list[Surface], list[Light]]:
    """Walls of an indoor outline: one wall texture around, skirting, items, window light."""
    room_h = float(hi[2] - lo[2])
    d = strip_density(outline, room_h, WALL_TEXEL_BUDGET)
    h, w = int(math.ceil(room_h * d)), int(math.ceil(perimeter(outline) * d)) + 2
    albedo = tx.pick(tx.WALL_TEXTURES, rng)(h, w, d, rng)
    if rng.random() < 0.7:
        colour = tx.grey(rng, 0.7, 1.0) if rng.random() < 0.6 else tx.wood_colour(rng)
        albedo[h - max(2, int(rng.uniform(0.05, 0.15) * d)) :] = colour
    strip = Surface(albedo, d, np.zeros(3), np.array([1.0, 0.0, 0.0]), DOWN, np.zeros(3))
    lights = []
    for kind, s, z, width, height in decorate_wall(strip, rng, room_h):
        if kind == "window":
            pos, normal = point_along(outline, s)
            centre = np.array([*(pos + 0.5 * normal), lo[2] + z])
            lights.append(
                Light(centre, rng.uniform(1.0, 3.0) * width * height * np.array([0.9, 0.95, 1.05]))
            )
    return split_strip(albedo, None, strip.emitters, outline, d, float(hi[2])), lights


# ---------------------------------------------------------------------------------------------
# Boxes at any angle


class Placer:
    """Keeps placed footprints apart, inside the outline and clear of the camera."""

    def __init__(self, outline: Outline, margin: float = 0.05) -> None:
        self.outline = outline
        self.margin = margin
        self.taken: list[tuple[Vec, float]] = []  # centre (2,), radius

    def fits(self, corners: Vec) -> bool:
        """corners: (4, 2) footprint corners in the world."""
        if not np.all(inside(self.outline, corners)):
            return False
        if np.min(distance_to_outline(self.outline, corners)) < 0.005:
            return False
        centre = corners.mean(axis=0)
        radius = float(np.max(np.linalg.norm(corners - centre, axis=1)))
        if _distance_to_quad(corners) < CAMERA_CLEARANCE_M:
            return False
        return all(np.linalg.norm(centre - c) > radius + r + self.margin for c, r in self.taken)

    def take(self, corners: Vec) -> None:
        centre = corners.mean(axis=0)
        self.taken.append((centre, float(np.max(np.linalg.norm(corners - centre, axis=1)))))


def _distance_to_quad(corners: Vec) -> float:
    """Distance from the camera (origin) to a convex footprint (0 inside)."""
    if inside(corners, np.zeros((1, 2)))[0]:
        return 0.0
    return float(np.min(distance_to_outline(corners, np.zeros((1, 2)))))


def own_frame(yaw: float) -> tuple[Callable[[Vec], Vec], Callable[[Vec], Vec]]:
    """(world -> own, own -> world) maps of 2-D points for a frame turned by ``yaw``."""
    c, s = math.cos(yaw), math.sin(yaw)
    to_own = np.array([[c, -s], [s, c]])  # row vectors: p_own = p @ to_own

    def world_to_own(p: Vec) -> Vec:
        return np.asarray(p) @ to_own

    def own_to_world(p: Vec) -> Vec:
        return np.asarray(p) @ to_own.T

    return world_to_own, own_to_world


def footprint_corners(lo: Vec, hi: Vec, yaw: float) -> Vec:
    own = np.array([[lo[0], lo[1]], [hi[0], lo[1]], [hi[0], hi[1]], [lo[0], hi[1]]])
    return own_frame(yaw)[1](own)


def turned(boxes: list[Box], yaw: float) -> list[Box]:
    for box in boxes:
        box.yaw = yaw
    return boxes


def place_room_furniture(
    outline: Outline, floor_z: float, ceiling_z: float, rng: np.random.Generator, count: int
) -> tuple[list[Box], Placer]:
    """Furniture along the walls (turned with them) and free-standing at any angle."""
    placer = Placer(outline)
    boxes: list[Box] = []
    n = len(outline)
    placed = 0
    for _ in range(count * 4):
        if placed >= count:
            break
        if rng.random() < 0.6:
            k = int(rng.integers(n))
            a, b = outline[k], outline[(k + 1) % n]
            length = float(np.linalg.norm(b - a))
            kind = choice(WALL_FURNITURE, rng)
            width = {"bed": 1.6, "sofa": 2.0, "counter": 2.5}.get(kind, 1.0) * rng.uniform(0.6, 1.4)
            depth = {"bed": 2.0, "sofa": 0.9, "bookcase": 0.35}.get(kind, 0.6) * rng.uniform(
                0.8, 1.2
            )
            if width > length - 0.2:
                continue
            yaw = math.atan2(b[1] - a[1], b[0] - a[0])
            a_own = own_frame(yaw)[0](a)
            s = rng.uniform(0.05, length - width - 0.05)
            lo = np.array([a_own[0] + s, a_own[1] - 0.01 - depth])
            hi = np.array([a_own[0] + s + width, a_own[1] - 0.01])
            front = (1, -1)
        else:
            kind = choice(FREE_FURNITURE, rng)
            size = {
                "table": (rng.uniform(0.8, 2.0), rng.uniform(0.7, 1.2)),
                "pillar": (rng.uniform(0.3, 0.6),) * 2,
            }.get(kind, (rng.uniform(0.3, 0.8),) * 2)
            yaw = float(rng.uniform(-math.pi, math.pi))
            lo_w, hi_w = outline.min(axis=0), outline.max(axis=0)
            centre = own_frame(yaw)[0](rng.uniform(lo_w, hi_w))
            lo = centre - 0.5 * np.asarray(size)
            hi = centre + 0.5 * np.asarray(size)
            front = (0, -1)
        corners = footprint_corners(lo, hi, yaw)
        if not placer.fits(corners):
            continue
        placer.take(corners)
        placed += 1
        for box in turned(furniture(kind, lo, hi, floor_z, front, rng), yaw):
            box.hi[2] = min(box.hi[2], ceiling_z - 0.001)
            boxes.append(box)
    return boxes, placer


def scatter_clutter(
    placer: Placer, floor_z: float, rng: np.random.Generator, count: int, outdoor: bool = False
) -> list[Box]:
    """Small boxes at any angle: crates, bins, bags, stools (or stones outdoors)."""
    boxes: list[Box] = []
    lo_w, hi_w = placer.outline.min(axis=0), placer.outline.max(axis=0)
    for _ in range(count * 4):
        if len(boxes) >= count:
            break
        size = rng.uniform(0.15, 0.7, 2) * (2.0 if outdoor else 1.0)
        height = rng.uniform(0.1, 0.9)
        yaw = float(rng.uniform(-math.pi, math.pi))
        centre = own_frame(yaw)[0](rng.uniform(lo_w, hi_w))
        lo, hi = centre - 0.5 * size, centre + 0.5 * size
        corners = footprint_corners(lo, hi, yaw)
        if not placer.fits(corners):
            continue
        placer.take(corners)
        kind = "metal" if rng.random() < 0.2 else ("wood" if rng.random() < 0.5 else "paint")
        box = make_box(
            [*lo, floor_z], [*hi, floor_z + height], rng, kind, float(rng.uniform(50, 90))
        )
        if outdoor:
            box.side = tx.rock(box.side.shape[0], box.side.shape[1], box.density, rng)
        box.yaw = yaw
        boxes.append(box)
    return boxes


# ---------------------------------------------------------------------------------------------
# Worlds


def build_irregular_room(rng: np.random.Generator, shape: str | None = None) -> World:
    """A room that is not a box: ``shape`` "polygon", "round" or "l_shape" (None: random)."""
    shape = shape or choice(ROOM_SHAPES, rng)
    make = {"polygon": polygon_outline, "round": round_outline, "l_shape": l_outline}[shape]
    outline = rotated(make(rng), float(rng.uniform(-math.pi, math.pi)))
    camera_h = rng.uniform(1.1, 1.7)
    room_h = rng.uniform(max(2.4, camera_h + 0.7), 3.8)
    lo, hi = bounds(outline, -camera_h, room_h - camera_h)
    walls, window_lights = build_room_walls(outline, lo, hi, rng)
    floor = build_floor(lo, hi, rng)
    ceiling, lamp_lights = build_ceiling(lo, hi, rng, floor.density)
    boxes, placer = place_room_furniture(outline, lo[2], hi[2], rng, int(rng.integers(1, 8)))
    if rng.random() < 0.6:
        boxes += scatter_clutter(placer, lo[2], rng, int(rng.integers(3, 20)))
    ambient = rng.uniform(0.15, 0.5) * warm_white(rng)
    world = World(lo, hi, walls, floor, ceiling, boxes, window_lights + lamp_lights, ambient, 1.0)
    world.exposure = auto_exposure(world, rng)
    return world


def paint_sky(
    albedo: tx.Image,
    emission: npt.NDArray[np.float32],
    outline: Outline,
    d: float,
    z_top: float,
    sky: Sky,
) -> None:
    """Fill the emitting cells of a strip (row 0 at camera-relative height ``z_top``) with the
    sky seen through them, computed at low resolution (the sky is smooth)."""
    ww = emission.shape[1]
    length = perimeter(outline)
    step = 6
    cols = np.arange(0, ww + step, step) / d
    pos = np.asarray([point_along(outline, min(c, length))[0] for c in cols])
    sky_rows = int(np.max(np.nonzero(emission.any(axis=1))[0], initial=0)) + 1
    rows = np.arange(0, sky_rows + step, step) / d
    points = np.concatenate(
        [
            np.broadcast_to(pos[None], (len(rows), len(pos), 2)),
            np.broadcast_to((z_top - rows)[:, None, None], (len(rows), len(pos), 1)),
        ],
        axis=2,
    )
    coarse = sky.colour(points)
    size = (coarse.shape[1] * step, coarse.shape[0] * step)
    fine = cv2.resize(coarse, size, interpolation=cv2.INTER_LINEAR)[:sky_rows, :ww]
    cells = emission[:sky_rows] > 0
    albedo[:sky_rows][cells] = fine[cells]


def vegetation_strip(
    outline: Outline, d: float, height: float, rng: np.random.Generator
) -> tuple[tx.Image, npt.NDArray[np.float32]]:
    """Albedo and emission (1 = sky) of a tree line, hedge or rock face all around; rows run
    from ``height`` above the ground down to the ground."""
    hh, ww = int(math.ceil(height * d)), int(math.ceil(perimeter(outline) * d)) + 2
    albedo = tx.pick(tx.VEGETATION_TEXTURES, rng)(hh, ww, d, rng)
    # Irregular skyline: crowns of varied height over a slowly varying tree line.
    line = (
        rng.uniform(3.0, 12.0)
        + rng.uniform(1.0, 6.0)
        * tx.fractal_noise(1, ww, rng, rng.uniform(3.0, 12.0) * d, octaves=5, persistence=0.6)[0]
    )
    crowns = np.abs(tx.fractal_noise(1, ww, rng, rng.uniform(0.8, 3.0) * d, octaves=3)[0])
    top_m = np.clip(line + rng.uniform(0.5, 3.0) * crowns, 1.5, height - 2.0)
    depth_m = np.arange(hh, dtype=np.float32)[:, None] / d
    emission = (depth_m < (height - top_m)[None, :]).astype(np.float32)
    return albedo, emission


def facade_strip(
    outline: Outline, d: float, height: float, rng: np.random.Generator
) -> tuple[tx.Image, npt.NDArray[np.float32]]:
    """Albedo and emission (1 = sky) of buildings of random heights all around."""
    length = perimeter(outline)
    hh, ww = int(math.ceil(height * d)), int(math.ceil(length * d)) + 2
    albedo = np.zeros((hh, ww, 3), np.float32)
    emission = np.zeros((hh, ww), np.float32)
    recipe = seeded(tx.pick(tx.FACADE_TEXTURES, rng), int(rng.integers(2**31)))
    start = 0.0
    while start * d < ww:
        seg = rng.uniform(5.0, 25.0)
        x0, x1 = int(start * d), min(ww, int(math.ceil((start + seg) * d)))
        y0 = int((height - rng.uniform(4.0, height - 3.0)) * d)
        texture = recipe if rng.random() < 0.4 else tx.pick(tx.FACADE_TEXTURES, rng)
        albedo[y0:, x0:x1] = texture(hh - y0, x1 - x0, d, rng)
        draw_windows(albedo, (x0, y0, x1, hh), d, rng)
        emission[:y0, x0:x1] = 1.0
        start += seg
    return albedo, emission


def place_park_objects(
    placer: Placer, floor_z: float, rng: np.random.Generator, count: int
) -> list[Box]:
    """Trees (trunk and crown), bushes and benches, each at its own angle."""
    boxes: list[Box] = []
    lo_w, hi_w = placer.outline.min(axis=0), placer.outline.max(axis=0)
    placed = 0
    for _ in range(count * 4):
        if placed >= count:
            break
        kind = choice({"tree": 1.5, "bush": 1.0, "bench": 0.5}, rng)
        yaw = float(rng.uniform(-math.pi, math.pi))
        centre = own_frame(yaw)[0](rng.uniform(lo_w, hi_w))
        half = {"tree": rng.uniform(1.0, 2.5), "bush": rng.uniform(0.4, 1.2), "bench": 0.9}[kind]
        depth = 0.25 if kind == "bench" else half
        lo, hi = centre - np.array([half, depth]), centre + np.array([half, depth])
        corners = footprint_corners(lo, hi, yaw)
        if not placer.fits(corners):
            continue
        placer.take(corners)
        placed += 1
        d = 40.0
        if kind == "tree":
            trunk = rng.uniform(0.1, 0.25)
            crown_lo = rng.uniform(1.8, 3.0)
            parts = [
                make_box(
                    [*(centre - trunk), floor_z],
                    [*(centre + trunk), floor_z + crown_lo],
                    rng,
                    "wood",
                    d,
                ),
                make_box(
                    [*lo, floor_z + crown_lo],
                    [*hi, floor_z + crown_lo + rng.uniform(2.5, 6.0)],
                    rng,
                    "fabric",
                    d,
                ),
            ]
            parts[1].side = tx.foliage(parts[1].side.shape[0], parts[1].side.shape[1], d, rng)
        elif kind == "bush":
            parts = [
                make_box([*lo, floor_z], [*hi, floor_z + rng.uniform(0.4, 1.4)], rng, "fabric", d)
            ]
            parts[0].side = tx.foliage(parts[0].side.shape[0], parts[0].side.shape[1], d, rng)
        else:
            parts = [make_box([*lo, floor_z + 0.4], [*hi, floor_z + 0.46], rng, "wood", d)]
        boxes += turned(parts, yaw)
    return boxes


def build_irregular_outdoor(rng: np.random.Generator, shape: str | None = None) -> World:
    """``shape`` "plaza" (facades on a polygon at any angles) or "park" (a curved tree line
    under the sky, trees and bushes at any angle); None: random."""
    shape = shape or choice(OUTDOOR_SHAPES, rng)
    if shape == "plaza":
        n = int(rng.integers(5, 9))
        gaps = rng.uniform(0.5, 1.5, n)
        angles = rng.uniform(-math.pi, math.pi) + np.cumsum(gaps / gaps.sum() * 2.0 * math.pi)
        outline = star_outline(angles, rng.uniform(7.0, 25.0, n))
    else:
        outline = round_outline(rng, (8.0, 25.0))
    camera_h = rng.uniform(1.3, 1.8)
    top = rng.uniform(25.0, 35.0)
    lo, hi = bounds(outline, -camera_h, top - camera_h)
    sky, sky_plane = make_sky(rng, lo, hi)
    d = strip_density(outline, top, WALL_TEXEL_BUDGET)
    build = facade_strip if shape == "plaza" else vegetation_strip
    albedo, emission = build(outline, d, top, rng)
    paint_sky(albedo, emission, outline, d, float(hi[2]), sky)
    walls = split_strip(albedo, emission, [], outline, d, float(hi[2]))
    table = tx.GROUND_TEXTURES if shape == "plaza" else tx.PARK_GROUND_TEXTURES
    ground = build_floor(lo, hi, rng, table)
    placer = Placer(outline, margin=0.3)
    boxes = place_park_objects(placer, lo[2], rng, int(rng.integers(0, 10)))
    if rng.random() < 0.5:
        boxes += scatter_clutter(placer, lo[2], rng, int(rng.integers(2, 12)), outdoor=True)
    sun = Light(sky.sun_dir * 1e4, rng.uniform(1.0, 2.0) * 1e8 * np.array([1.0, 0.95, 0.85]))
    ambient = rng.uniform(0.3, 0.7) * np.array([0.85, 0.92, 1.0])
    world = World(lo, hi, walls, ground, sky_plane, boxes, [sun], ambient, 1.0)
    world.exposure = auto_exposure(world, rng)
    return world
