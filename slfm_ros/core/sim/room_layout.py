"""Random room layouts for the ray-cast worlds: size, surface textures, wall details,
furniture and lights.

``build_room(rng)`` returns a ``procedural_world.World`` ready to render. All sizes are metres;
the camera is at the origin, ``lo[2]`` is minus the camera height above the floor.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt

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
    wall_frames,
)

Image = tx.Image
Vec = npt.NDArray[np.float64]
WallFrame = tuple[Vec, Vec, Vec, float]  # top-left corner, u_dir, inward normal, length
TextureTable = dict[str, tuple[float, tx.Texture]]
WALL_TEXEL_BUDGET = 1.2e6
FLOOR_TEXEL_BUDGET = 0.6e6
CAMERA_CLEARANCE_M = 0.45


def seeded(texture: tx.Texture, seed: int) -> tx.Texture:
    """The same texture recipe (colours, sizes) for every surface that shares ``seed``."""
    return lambda h, w, d, _rng: texture(h, w, d, np.random.default_rng(seed))


def warm_white(rng: np.random.Generator) -> np.ndarray:
    t = rng.uniform(0.0, 1.0)  # 0 = warm incandescent, 1 = cool daylight
    return np.array([1.0, 0.82 + 0.16 * t, 0.6 + 0.4 * t])


# ---------------------------------------------------------------------------------------------
# Walls


def wall_densities(frames: list[WallFrame], height: float, budget: float) -> list[float]:
    """Texels per metre per wall: fine enough for the nearest point, within a texel budget."""
    dens = [
        float(np.clip(290.0 / max(float(-origin @ normal), 0.3), 40.0, 110.0))
        for origin, _, normal, _ in frames
    ]
    lengths = [frame[3] for frame in frames]
    texels = sum(d * d * length * height for d, length in zip(dens, lengths, strict=True))
    scale = min(1.0, math.sqrt(budget / texels))
    return [d * scale for d in dens]


ITEMS: dict[str, tuple[float, Callable[..., list[decor.Emitter]] | None]] = {
    "window": (1.6, decor.window),
    "picture": (2.2, decor.picture),
    "door": (0.9, decor.door),
    "bookshelf": (0.6, decor.bookshelf),
    "screen": (0.4, decor.screen),
    "radiator": (0.5, decor.radiator),
    "whiteboard": (0.4, decor.whiteboard),
    "gap": (1.0, None),
}


def item_extent(kind: str, rng: np.random.Generator, room_h: float) -> tuple[float, float, float]:
    """(width, bottom height above floor, top height above floor) of a wall item."""
    if kind == "window":
        width, bottom = rng.uniform(0.7, 2.4), rng.uniform(0.5, 1.1)
        return width, bottom, min(room_h - 0.15, bottom + rng.uniform(0.9, 1.8))
    if kind == "door":
        return rng.uniform(0.8, 1.0), 0.0, min(room_h - 0.1, rng.uniform(2.0, 2.2))
    if kind == "bookshelf":
        return rng.uniform(0.6, 2.0), 0.0, min(room_h - 0.1, rng.uniform(1.2, 2.3))
    if kind == "radiator":
        return rng.uniform(0.5, 1.4), 0.12, rng.uniform(0.5, 0.8)
    if kind == "screen":
        width, centre = rng.uniform(0.6, 1.5), rng.uniform(1.1, 1.6)
        return width, centre - 0.3 * width, centre + 0.3 * width
    if kind == "whiteboard":
        return rng.uniform(1.0, 2.6), 0.85, min(room_h - 0.2, rng.uniform(1.8, 2.1))
    width = rng.uniform(0.25, 1.3)
    centre = rng.uniform(1.3, min(1.9, room_h - 0.4))
    aspect = rng.uniform(0.6, 1.5)
    return width, centre - 0.5 * width * aspect, min(room_h - 0.1, centre + 0.5 * width * aspect)


def decorate_wall(
    surface: Surface, rng: np.random.Generator, room_h: float
) -> list[tuple[str, float, float, float, float]]:
    """Place items left to right along the wall; returns (kind, centre_s, centre_z, w, h)."""
    length, _ = surface.size_m
    d = surface.density
    names = list(ITEMS)
    weights = np.array([ITEMS[n][0] for n in names])
    placed = []
    s = rng.uniform(0.1, 0.8)
    while True:
        kind = names[rng.choice(len(names), p=weights / weights.sum())]
        width, bottom, top = item_extent(kind, rng, room_h)
        if s + width > length - 0.1:
            break
        draw = ITEMS[kind][1]
        if draw is not None and top - bottom > 0.1:
            rect = (
                int(s * d),
                int((room_h - top) * d),
                int((s + width) * d),
                int((room_h - bottom) * d),
            )
            surface.emitters += draw(surface.albedo, rect, rng, d)
            placed.append((kind, s + 0.5 * width, 0.5 * (bottom + top), width, top - bottom))
        s += width + rng.uniform(0.15, 1.2)
    return placed


def build_walls(lo: Vec, hi: Vec, rng: np.random.Generator) -> tuple[list[Surface], list[Light]]:
    room_h = float(hi[2] - lo[2])
    frames = wall_frames(lo, hi)
    densities = wall_densities(frames, room_h, WALL_TEXEL_BUDGET)
    main = seeded(tx.pick(tx.WALL_TEXTURES, rng), int(rng.integers(2**31)))
    accent_wall = int(rng.integers(4)) if rng.random() < 0.35 else -1
    accent = seeded(tx.pick(tx.WALL_TEXTURES, rng), int(rng.integers(2**31)))
    wainscot = rng.random() < 0.2
    low = seeded(
        tx.pick({k: tx.WALL_TEXTURES[k] for k in ("tiles", "planks")}, rng),
        int(rng.integers(2**31)),
    )
    wainscot_h = rng.uniform(0.8, 1.3)
    skirting = rng.random() < 0.75
    skirting_h, skirting_colour = (
        rng.uniform(0.05, 0.15),
        (tx.grey(rng, 0.7, 1.0) if rng.random() < 0.6 else tx.wood_colour(rng)),
    )
    walls, lights = [], []
    for i, ((origin, u_dir, normal, length), d) in enumerate(zip(frames, densities, strict=True)):
        h, w = int(math.ceil(room_h * d)), int(math.ceil(length * d))
        albedo = (accent if i == accent_wall else main)(h, w, d, rng)
        if wainscot:
            rows = int(wainscot_h * d)
            albedo[h - rows :] = low(rows, w, d, rng)
            albedo[h - rows : h - rows + max(2, int(0.03 * d))] *= 0.7
        if skirting:
            albedo[h - max(2, int(skirting_h * d)) :] = skirting_colour
        surface = Surface(albedo, d, origin, u_dir, DOWN, normal)
        for kind, s, z, width, height in decorate_wall(surface, rng, room_h):
            if kind == "window":
                centre = origin + u_dir * s + np.array([0.0, 0.0, lo[2] - hi[2] + z]) + 0.5 * normal
                strength = rng.uniform(1.0, 3.0) * width * height
                lights.append(Light(centre, strength * np.array([0.9, 0.95, 1.05])))
        walls.append(surface)
    return walls, lights


# ---------------------------------------------------------------------------------------------
# Floor and ceiling


def build_floor(
    lo: Vec, hi: Vec, rng: np.random.Generator, texture_table: TextureTable = tx.FLOOR_TEXTURES
) -> Surface:
    area = (hi[0] - lo[0]) * (hi[1] - lo[1])
    d = float(min(110.0, math.sqrt(FLOOR_TEXEL_BUDGET / area)))
    origin, u_dir, v_dir, normal, h, w = horizontal_surface(lo, hi, lo[2], d, up=True)
    albedo = tx.pick(texture_table, rng)(h, w, d, rng)
    surface = Surface(albedo, d, origin, u_dir, v_dir, normal)
    if texture_table is tx.FLOOR_TEXTURES and rng.random() < 0.5:  # a rug
        rw, rh = rng.uniform(1.0, 3.0) * d, rng.uniform(0.8, 2.2) * d
        x, y = rng.uniform(0, max(1.0, w - rw)), rng.uniform(0, max(1.0, h - rh))
        rect = (int(x), int(y), int(x + rw), int(y + rh))
        inner = decor.frame(albedo, rect, tx.any_colour(rng), int(rng.uniform(0.05, 0.2) * d))
        ih, iw = inner[3] - inner[1], inner[2] - inner[0]
        if ih > 4 and iw > 4:
            pattern = (
                decor.abstract_art(ih, iw, rng) if rng.random() < 0.5 else tx.carpet(ih, iw, d, rng)
            )
            decor.paste(albedo, inner, pattern)
    return surface


def build_ceiling(
    lo: Vec, hi: Vec, rng: np.random.Generator, floor_density: float
) -> tuple[Surface, list[Light]]:
    d = 0.6 * floor_density
    origin, u_dir, v_dir, normal, h, w = horizontal_surface(lo, hi, hi[2], d, up=False)
    albedo = tx.pick(tx.CEILING_TEXTURES, rng)(h, w, d, rng)
    surface = Surface(albedo, d, origin, u_dir, v_dir, normal)
    lights = []
    colour = warm_white(rng)
    n_lamps = int(rng.integers(1, 5))
    for _ in range(n_lamps):
        x, y = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.85) * h
        surface.emitters.append(
            decor.lamp(albedo, (int(x), int(y)), int(rng.uniform(0.1, 0.3) * d), rng)
        )
        position = origin + u_dir * (x / d) + v_dir * (y / d) + np.array([0.0, 0.0, -0.1])
        lights.append(Light(position, rng.uniform(2.0, 6.0) / math.sqrt(n_lamps) * colour))
    return surface, lights


# ---------------------------------------------------------------------------------------------
# Furniture


def material(h_px: int, w_px: int, density: float, rng: np.random.Generator, kind: str) -> Image:
    h_px, w_px = max(4, h_px), max(4, w_px)
    if kind == "wood":
        return tx.planks(h_px, w_px, density, rng)
    if kind == "fabric":
        return tx.carpet(h_px, w_px, density, rng)
    if kind == "metal":
        return tx.concrete(h_px, w_px, density, rng) * 0.5 + 0.25 * tx.grey(rng)
    return tx.paint(h_px, w_px, density, rng)


def cabinet_front(
    h_px: int, w_px: int, density: float, rng: np.random.Generator, base: Image
) -> Image:
    front = base.copy()
    doors = max(1, int(round(w_px / density / rng.uniform(0.4, 0.7))))
    line = max(1, int(0.01 * density))
    drawers = rng.random() < 0.4
    for k in range(1, doors):
        x = k * w_px // doors
        front[:, x - line : x + line] *= 0.5
    if drawers:
        for y in np.linspace(0, h_px, int(rng.integers(2, 5)) + 1)[1:-1].astype(int):
            front[y - line : y + line] *= 0.5
    handle = tx.grey(rng, 0.1, 0.9)
    for k in range(doors):
        x = int((k + (0.85 if k % 2 == 0 else 0.15)) * w_px / doors)
        y = int(0.25 * h_px)
        front[y : y + max(2, int(0.12 * density)), x : x + max(2, line * 2)] = handle
    return front


def make_box(
    lo: npt.ArrayLike,
    hi: npt.ArrayLike,
    rng: np.random.Generator,
    kind: str,
    density: float,
    front_face: tuple[int, int] | None = None,
    front_kind: str = "",
) -> Box:
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    size = hi - lo
    h_px = int(size[2] * density) + 1
    w_px = int(max(size[0], size[1]) * density) + 1
    side = material(h_px, w_px, density, rng, kind)
    front = None
    if front_kind == "cabinet":
        front = cabinet_front(h_px, w_px, density, rng, side)
    elif front_kind == "books":
        front = side.copy()
        decor.bookshelf(front, (0, 0, w_px, h_px), rng, density)
    return Box(lo, hi, side, density, front, front_face if front is not None else None)


def _wall_side(
    foot_lo: Vec, foot_hi: Vec, front_face: tuple[int, int], depth: float
) -> tuple[Vec, Vec]:
    """Footprint of a ``depth`` m strip along the back (wall side) of a footprint."""
    axis, sign = front_face
    lo, hi = foot_lo.copy(), foot_hi.copy()
    if sign > 0:
        hi[axis] = foot_lo[axis] + depth
    else:
        lo[axis] = foot_hi[axis] - depth
    return lo, hi


def furniture(
    kind: str,
    foot_lo: Vec,
    foot_hi: Vec,
    floor_z: float,
    front_face: tuple[int, int],
    rng: np.random.Generator,
) -> list[Box]:
    """Boxes of one piece of furniture on the footprint [foot_lo, foot_hi] (x, y)."""
    d = float(rng.uniform(60, 100))
    z0 = floor_z
    fl, fh = np.asarray(foot_lo, float), np.asarray(foot_hi, float)

    def box(
        lo_xy: Vec | list[float],
        hi_xy: Vec | list[float],
        z_lo: float,
        z_hi: float,
        mat: str,
        front_kind: str = "",
    ) -> Box:
        return make_box([*lo_xy, z_lo], [*hi_xy, z_hi], rng, mat, d, front_face, front_kind)

    if kind in ("cabinet", "counter", "bookcase"):
        height = {
            "cabinet": rng.uniform(0.5, 2.0),
            "counter": rng.uniform(0.85, 0.95),
            "bookcase": rng.uniform(1.2, 2.2),
        }[kind]
        mat = "wood" if rng.random() < 0.5 else "paint"
        boxes = [box(fl, fh, z0, z0 + height, mat, "books" if kind == "bookcase" else "cabinet")]
        if kind == "counter":
            boxes.append(
                box(
                    fl - 0.02,
                    fh + 0.02,
                    z0 + height,
                    z0 + height + 0.04,
                    "metal" if rng.random() < 0.5 else "wood",
                )
            )
        return boxes
    if kind in ("table", "desk"):
        top = z0 + rng.uniform(0.7, 0.78)
        leg = 0.05
        boxes = [box(fl, fh, top - 0.04, top, "wood" if rng.random() < 0.7 else "paint")]
        for cx in (fl[0], fh[0] - leg):
            for cy in (fl[1], fh[1] - leg):
                boxes.append(box([cx, cy], [cx + leg, cy + leg], z0, top - 0.04, "metal"))
        if kind == "desk" and rng.random() < 0.7:  # a monitor on a stand
            centre = 0.5 * (fl + fh)
            half = np.full(2, 0.04)
            boxes.append(box(centre - half, centre + half, top, top + 0.12, "metal"))
            half[1 - front_face[0]] = rng.uniform(0.2, 0.35)
            boxes.append(box(centre - half, centre + half, top + 0.12, top + 0.45, "metal"))
        return boxes
    if kind == "sofa":
        fabric = "fabric"
        seat = box(fl, fh, z0, z0 + rng.uniform(0.38, 0.48), fabric)
        back_lo, back_hi = _wall_side(fl, fh, front_face, 0.2)
        back = box(back_lo, back_hi, z0, z0 + rng.uniform(0.75, 0.95), fabric)
        return [seat, back]
    if kind == "bed":
        base = box(fl, fh, z0, z0 + rng.uniform(0.4, 0.6), "fabric")
        head_lo, head_hi = _wall_side(fl, fh, front_face, 0.06)
        return [base, box(head_lo, head_hi, z0, z0 + rng.uniform(0.9, 1.3), "wood")]
    if kind == "pillar":
        return [box(fl, fh, z0, z0 + 10.0, "paint")]  # clipped to the ceiling by the caller
    return [box(fl, fh, z0, z0 + rng.uniform(0.2, 0.7), "paint" if rng.random() < 0.5 else "wood")]


WALL_FURNITURE = {
    "cabinet": 1.5,
    "bookcase": 1.0,
    "counter": 0.7,
    "sofa": 1.0,
    "bed": 0.5,
    "desk": 1.0,
}
FREE_FURNITURE = {"table": 1.5, "crate": 1.0, "pillar": 0.3}


def choice(table: dict[str, float], rng: np.random.Generator) -> str:
    names = list(table)
    p = np.array([table[n] for n in names])
    return names[rng.choice(len(names), p=p / p.sum())]


def is_clear(lo_xy: Vec, hi_xy: Vec, taken: list[tuple[Vec, Vec]]) -> bool:
    nearest = np.clip([0.0, 0.0], lo_xy, hi_xy)
    if np.hypot(*nearest) < CAMERA_CLEARANCE_M:
        return False
    return all(np.any(hi_xy + 0.05 < a) or np.any(b < lo_xy - 0.05) for a, b in taken)


def place_furniture(lo: Vec, hi: Vec, rng: np.random.Generator, count: int) -> list[Box]:
    frames = wall_frames(lo, hi)
    taken: list[tuple[Vec, Vec]] = []
    boxes: list[Box] = []
    for _ in range(count * 3):
        if len(taken) >= count:
            break
        if rng.random() < 0.7:
            kind = choice(WALL_FURNITURE, rng)
            origin, u_dir, normal, length = frames[int(rng.integers(4))]
            width = {"bed": 1.6, "sofa": 2.0, "counter": 2.5}.get(kind, 1.0) * rng.uniform(0.6, 1.4)
            depth = {"bed": 2.0, "sofa": 0.9, "bookcase": 0.35}.get(kind, 0.6) * rng.uniform(
                0.8, 1.2
            )
            if width > length - 0.2:
                continue
            s = rng.uniform(0.05, length - width - 0.05)
            p0 = origin[:2] + u_dir[:2] * s + normal[:2] * 0.01
            p1 = origin[:2] + u_dir[:2] * (s + width) + normal[:2] * (0.01 + depth)
            axis = int(np.argmax(np.abs(normal)))
            front = (axis, int(np.sign(normal[axis])))
        else:
            kind = choice(FREE_FURNITURE, rng)
            size = {
                "table": (rng.uniform(0.8, 2.0), rng.uniform(0.7, 1.2)),
                "pillar": (rng.uniform(0.3, 0.6),) * 2,
            }.get(kind, (rng.uniform(0.3, 0.8),) * 2)
            x = rng.uniform(lo[0] + 0.3, hi[0] - 0.3 - size[0])
            y = rng.uniform(lo[1] + 0.3, hi[1] - 0.3 - size[1])
            p0, p1 = np.array([x, y]), np.array([x + size[0], y + size[1]])
            front = (0, -1)
        foot_lo, foot_hi = np.minimum(p0, p1), np.maximum(p0, p1)
        foot_lo, foot_hi = np.maximum(foot_lo, lo[:2] + 0.005), np.minimum(foot_hi, hi[:2] - 0.005)
        if np.any(foot_hi - foot_lo < 0.1) or not is_clear(foot_lo, foot_hi, taken):
            continue
        taken.append((foot_lo, foot_hi))
        for b in furniture(kind, foot_lo, foot_hi, lo[2], front, rng):
            b.hi[2] = min(b.hi[2], hi[2] - 0.001)
            boxes.append(b)
    return boxes


# ---------------------------------------------------------------------------------------------
# Worlds


def build_room(rng: np.random.Generator) -> World:
    size = np.array([rng.uniform(3.0, 10.0), rng.uniform(3.0, 9.0)])
    frac = rng.uniform(0.25, 0.75, 2)
    camera_h = rng.uniform(1.1, 1.7)
    room_h = rng.uniform(max(2.4, camera_h + 0.7), 3.8)
    lo = np.array([-frac[0] * size[0], -frac[1] * size[1], -camera_h])
    hi = np.array([lo[0] + size[0], lo[1] + size[1], room_h - camera_h])
    walls, window_lights = build_walls(lo, hi, rng)
    floor = build_floor(lo, hi, rng)
    ceiling, lamp_lights = build_ceiling(lo, hi, rng, floor.density)
    boxes = place_furniture(lo, hi, rng, int(rng.integers(1, 8)))
    ambient = rng.uniform(0.15, 0.5) * warm_white(rng)
    world = World(lo, hi, walls, floor, ceiling, boxes, window_lights + lamp_lights, ambient, 1.0)
    world.exposure = auto_exposure(world, rng)
    return world
