"""Ray-cast box worlds (rooms and courtyards) rendered to equirectangular panoramas.

The camera sits at the world origin (REP-103 frame: x forward, y left, z up). A world is a
vertical prism: walls standing on any closed outline around the camera (a box, a polygon with
walls at any angle, a curve made of many short walls), a floor and a ceiling (or, outdoors,
facades or vegetation, the ground and a cloud layer), plus boxes standing inside it, each
turned by its own yaw. Every planar surface is a ``Surface``: a texture atlas block with its
own pixel density, so the panorama is produced by ONE ``cv2.remap`` from the atlas, driven by
per-column wall geometry (the walls are vertical, so the nearest wall depends on azimuth only)
and per-row floor/ceiling geometry. Boxes are ray-cast afterwards, only inside each box's
bounding rectangle in the panorama.

Lighting is baked into the atlas at low resolution: point lights with cosine falloff, ambient
light, ambient occlusion near room edges and contact shadows under furniture.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.geometry.panorama import azimuth_of_column, elevation_of_row
from slfm_ros.core.sim import decor

Image = npt.NDArray[np.float32]
Vec = npt.NDArray[np.float64]
Index = npt.NDArray[np.intp]

AO_REACH_M = 1.5  # walls farther than this from a surface do not darken it (< 0.1 %)
ATLAS_MAX_HEIGHT = 16000  # px; see pack_atlas
PAD = 2  # replicated border around each atlas block, so bilinear sampling never bleeds
LIGHT_DENSITY = 8.0  # px/m of the low-resolution lighting grid
GAMMA = 1.0 / 2.2


@dataclass
class Surface:
    """A planar rectangle of the world and its albedo.

    Pixel (col c, row r) of ``albedo`` lies at ``origin + u_dir * c / density + v_dir * r /
    density`` (metres); ``normal`` points into the world interior.
    """

    albedo: Image
    density: float
    origin: Vec
    u_dir: Vec
    v_dir: Vec
    normal: Vec
    emitters: list[decor.Emitter] = field(default_factory=list)
    emission: Image | None = None  # (h, w) per-pixel gain; > 0 glows instead of being lit

    @property
    def size_m(self) -> tuple[float, float]:
        h, w = self.albedo.shape[:2]
        return w / self.density, h / self.density


@dataclass
class Box:
    """A furniture box ``lo``..``hi`` (metres) with front and side textures.

    ``lo`` and ``hi`` are corners in the box's own frame: the world turned by ``yaw`` radians
    about the vertical axis through the camera (world = Rz(yaw) @ own), so a box can stand at
    any angle. ``front_face`` is an (axis, sign) of that frame.
    """

    lo: Vec
    hi: Vec
    side: Image
    density: float
    front: Image | None = None
    front_face: tuple[int, int] | None = None  # (axis, sign) of the face showing ``front``
    yaw: float = 0.0

    def to_own(self, points: Vec) -> Vec:
        """World points (..., 3) in the box's frame."""
        if self.yaw == 0.0:
            return points
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x, y = points[..., 0], points[..., 1]
        return np.stack([c * x + s * y, -s * x + c * y, points[..., 2]], axis=-1)

    def to_world(self, points: Vec) -> Vec:
        """Points (..., 3) of the box's frame in the world."""
        if self.yaw == 0.0:
            return points
        c, s = math.cos(self.yaw), math.sin(self.yaw)
        x, y = points[..., 0], points[..., 1]
        return np.stack([c * x - s * y, s * x + c * y, points[..., 2]], axis=-1)

    def corners(self) -> Vec:
        """The eight corners (8, 3) in the world."""
        own = np.array(
            [
                [x, y, z]
                for x in (self.lo[0], self.hi[0])
                for y in (self.lo[1], self.hi[1])
                for z in (self.lo[2], self.hi[2])
            ]
        )
        return self.to_world(own)


@dataclass
class Light:
    """A point light; a very distant one with a huge intensity acts as the sun."""

    position: Vec
    rgb: Vec  # intensity per channel (irradiance at 1 m, facing the light)


@dataclass
class World:
    """Everything ``render_room`` and ``render_boxes`` draw; the camera is at the origin."""

    lo: Vec  # corner (x0, y0, z_floor) of the bounding box of the outline
    hi: Vec  # corner (x1, y1, z_ceiling)
    walls: list[Surface]  # vertical, spanning floor to ceiling, facing the camera (any order)
    floor: Surface
    ceiling: Surface
    boxes: list[Box]
    lights: list[Light]
    ambient: Vec
    exposure: float


# ---------------------------------------------------------------------------------------------
# Geometry of the room surfaces


def wall_frames(lo: Vec, hi: Vec) -> list[tuple[Vec, Vec, Vec, float]]:
    """(origin at the top-left corner, u_dir, inward normal, length) of the four walls.

    Walls are ordered clockwise seen from above (x1, y0, x0, y1), which is left-to-right for a
    viewer inside, so texture columns increase to the viewer's right, like panorama columns.
    """
    (x0, y0, _), (x1, y1, zc) = lo, hi
    return [
        (np.array([x1, y1, zc]), np.array([0.0, -1.0, 0.0]), np.array([-1.0, 0.0, 0.0]), y1 - y0),
        (np.array([x1, y0, zc]), np.array([-1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]), x1 - x0),
        (np.array([x0, y0, zc]), np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]), y1 - y0),
        (np.array([x0, y1, zc]), np.array([1.0, 0.0, 0.0]), np.array([0.0, -1.0, 0.0]), x1 - x0),
    ]


DOWN = np.array([0.0, 0.0, -1.0])
PLUS_X = np.array([1.0, 0.0, 0.0])
MINUS_Y = np.array([0.0, -1.0, 0.0])


class PlaneFrame(NamedTuple):
    """Placement of a horizontal surface and its texture size in pixels."""

    origin: Vec
    u_dir: Vec
    v_dir: Vec
    normal: Vec
    height_px: int
    width_px: int


def horizontal_surface(lo: Vec, hi: Vec, z: float, density: float, up: bool) -> PlaneFrame:
    """Frame of the floor (``up``) or ceiling plane at height z over the room's footprint.

    Texel (c, r) lies at x = x0 + c / density, y = y1 - r / density; ``render_room`` relies
    on this layout for both planes.
    """
    origin = np.array([lo[0], hi[1], z])
    w = int(math.ceil((hi[0] - lo[0]) * density))
    h = int(math.ceil((hi[1] - lo[1]) * density))
    normal = np.array([0.0, 0.0, 1.0 if up else -1.0])
    return PlaneFrame(origin, PLUS_X, MINUS_Y, normal, h, w)


# ---------------------------------------------------------------------------------------------
# Lighting


def surface_points(surface: Surface, step_px: float) -> Vec:
    """3D points (h', w', 3) of a grid every ``step_px`` pixels over the surface."""
    h, w = surface.albedo.shape[:2]
    hl, wl = max(2, int(math.ceil(h / step_px)) + 1), max(2, int(math.ceil(w / step_px)) + 1)
    cs = np.linspace(0.0, w, wl) / surface.density
    rs = np.linspace(0.0, h, hl) / surface.density
    pts = (
        surface.origin[None, None, :]
        + cs[None, :, None] * surface.u_dir[None, None, :]
        + rs[:, None, None] * surface.v_dir[None, None, :]
    )
    return pts


def wall_distance(points: Vec, wall: Surface) -> Vec:
    """Horizontal distance (...) from points to a wall's segment (its ends included)."""
    length = wall.size_m[0]
    rel = points[..., :2] - wall.origin[:2]
    along = np.clip(rel @ wall.u_dir[:2], 0.0, length)
    nearest = along[..., None] * wall.u_dir[:2]
    return np.asarray(np.linalg.norm(rel - nearest, axis=-1))


def ambient_occlusion(points: Vec, surface: Surface, world: World) -> Vec:
    """Darkening (h', w') of ``surface``'s points near the room's edges and around boxes."""
    ao = np.ones(points.shape[:2])
    flat = points.reshape(-1, 3)
    low, high = flat[:, :2].min(axis=0) - AO_REACH_M, flat[:, :2].max(axis=0) + AO_REACH_M
    for wall in world.walls:
        ends = np.stack([wall.origin[:2], wall.origin[:2] + wall.u_dir[:2] * wall.size_m[0]])
        if wall is surface or np.any(ends.max(axis=0) < low) or np.any(ends.min(axis=0) > high):
            continue  # its own plane, or too far to darken any point
        ao *= 1.0 - 0.35 * np.exp(-wall_distance(points, wall) / 0.25)
    for z, plane in ((world.lo[2], world.floor), (world.hi[2], world.ceiling)):
        if plane is not surface:
            ao *= 1.0 - 0.35 * np.exp(-np.abs(points[..., 2] - z) / 0.25)
    normal = surface.normal
    for box in world.boxes:
        # Gap between the box and the surface's plane (> 0: the box stands clear of it).
        gap = float(np.min((box.corners() - surface.origin) @ normal))
        if gap > 0.5:
            continue  # too far from this surface to shade it
        # Contact shadow: how far the point is outside the box (in the box's frame).
        own = box.to_own(points)
        outside = np.zeros(points.shape[:2])
        for axis in range(3):
            below = np.maximum(box.lo[axis] - own[..., axis], 0.0)
            above = np.maximum(own[..., axis] - box.hi[axis], 0.0)
            outside += (below + above) ** 2
        ao *= 1.0 - 0.45 * np.exp(-np.sqrt(outside) / 0.12)
    return ao


def irradiance(points: Vec, normal: Vec, lights: list[Light], ambient: Vec) -> Vec:
    """Linear RGB irradiance (..., 3) from point lights with cosine falloff, plus ambient."""
    total = np.broadcast_to(ambient, points.shape[:-1] + (3,)).copy()
    for light in lights:
        delta = light.position - points
        dist2 = np.sum(delta * delta, axis=-1) + 0.05
        cosine = np.maximum(delta @ normal, 0.0) / np.sqrt(dist2)
        total += (cosine / dist2)[..., None] * light.rgb
    return total


def shade_surface(surface: Surface, world: World) -> npt.NDArray[np.uint8]:
    """Lit, tone-mapped uint8 RGB of a surface (emitters glow instead of being lit)."""
    step = max(1.0, surface.density / LIGHT_DENSITY)
    pts = surface_points(surface, step)
    light = irradiance(pts, surface.normal, world.lights, world.ambient)
    light *= ambient_occlusion(pts, surface, world)[..., None]
    shading = np.power(world.exposure * light, GAMMA).astype(np.float32)
    h, w = surface.albedo.shape[:2]
    shading = np.asarray(cv2.resize(shading, (w, h), interpolation=cv2.INTER_LINEAR), np.float32)
    if surface.emission is not None:
        glow = surface.emission > 0
        shading[glow] = surface.emission[glow][:, None]
    for emitter in surface.emitters:
        x0, y0, x1, y1 = emitter.rect
        shading[max(0, y0) : y1, max(0, x0) : x1] = emitter.gain
    return np.asarray(cv2.convertScaleAbs(surface.albedo * shading, alpha=255.0), np.uint8)


def auto_exposure(world: World, rng: np.random.Generator) -> float:
    """Exposure putting bright lit surfaces near display white, with a random offset."""
    samples = []
    for surface in [*world.walls, world.floor]:
        pts = surface_points(surface, max(1.0, surface.density / 2.0))
        samples.append(irradiance(pts, surface.normal, world.lights, world.ambient).reshape(-1, 3))
    lum = np.concatenate(samples) @ np.array([0.3, 0.59, 0.11])
    return float(rng.uniform(0.75, 1.15) / max(np.percentile(lum, 90), 1e-6))


# ---------------------------------------------------------------------------------------------
# Panorama rendering


def pack_atlas(
    blocks: list[npt.NDArray[np.uint8]],
) -> tuple[npt.NDArray[np.uint8], list[tuple[int, int]]]:
    """Stack padded blocks vertically; returns the atlas and each block's (x, y) of texel 0.

    A stack taller than ATLAS_MAX_HEIGHT continues in a new column to its right (OpenCV's
    remap takes images below 32767 pixels per side).
    """
    padded = [cv2.copyMakeBorder(b, PAD, PAD, PAD, PAD, cv2.BORDER_REPLICATE) for b in blocks]
    columns: list[list[int]] = [[]]
    height = 0
    for index, p in enumerate(padded):
        if columns[-1] and height + p.shape[0] > ATLAS_MAX_HEIGHT:
            columns.append([])
            height = 0
        columns[-1].append(index)
        height += p.shape[0]
    widths = [max(padded[i].shape[1] for i in column) for column in columns]
    heights = [sum(padded[i].shape[0] for i in column) for column in columns]
    atlas = np.zeros((max(heights), sum(widths), 3), np.uint8)
    offsets: list[tuple[int, int]] = [(0, 0)] * len(padded)
    x = 0
    for column, width in zip(columns, widths, strict=True):
        y = 0
        for i in column:
            p = padded[i]
            atlas[y : y + p.shape[0], x : x + p.shape[1]] = p
            offsets[i] = (x + PAD, y + PAD)
            y += p.shape[0]
        x += width
    return atlas, offsets


@dataclass(frozen=True)
class DirectionGrid:
    """Per-column and per-row direction terms of an equirectangular panorama."""

    cos_az: Vec
    sin_az: Vec
    tan_el: Vec
    cos_el: Vec
    sin_el: Vec

    @staticmethod
    def of(width: int) -> DirectionGrid:
        az = azimuth_of_column(np.arange(width, dtype=np.float64), width)
        el = elevation_of_row(np.arange(width // 2, dtype=np.float64), width // 2)
        return DirectionGrid(np.cos(az), np.sin(az), np.tan(el), np.cos(el), np.sin(el))


def wall_columns(
    world: World, grid: DirectionGrid, offsets: list[tuple[int, int]]
) -> tuple[Vec, Vec, Vec, Vec, Vec, Vec]:
    """Per panorama column: horizontal distance to the nearest wall, and that wall's atlas terms.

    Each wall is a segment from its origin along ``u_dir``; the ray of a column hits it where
    t (cos a, sin a) = origin + s u_dir with t > 0 and s within the wall's length.
    """
    zc = world.hi[2]
    c, s = grid.cos_az, grid.sin_az
    dist = np.full(c.shape, np.inf)
    along = np.zeros_like(dist)
    wall = np.full(c.shape, -1)
    for i, surface in enumerate(world.walls):
        px, py = surface.origin[0], surface.origin[1]
        ux, uy = surface.u_dir[0], surface.u_dir[1]
        det = s * ux - c * uy
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (py * ux - px * uy) / det
            pos = (c * py - s * px) / det
        hit = (np.abs(det) > 1e-12) & (t > 1e-6) & (pos >= 0.0) & (pos <= surface.size_m[0])
        closer = hit & (t < dist)
        dist = np.where(closer, t, dist)
        along = np.where(closer, pos, along)
        wall = np.where(closer, i, wall)
    if np.any(wall < 0):
        raise ValueError("the walls do not enclose the camera: some azimuths see no wall")
    u = np.empty_like(dist)
    v_top = np.empty_like(dist)
    density = np.empty_like(dist)
    for i, surface in enumerate(world.walls):
        sel = wall == i
        ox, oy = offsets[i]
        u[sel] = ox + along[sel] * surface.density
        v_top[sel] = oy + zc * surface.density  # atlas row of height z = 0 (camera level)
        density[sel] = surface.density
    height_px = (world.hi[2] - world.lo[2]) * density
    top = v_top - zc * density
    return dist, u, v_top, density, top, top + height_px


def render_room(world: World, width: int, grid: DirectionGrid) -> npt.NDArray[np.uint8]:
    """Walls, floor and ceiling of ``world`` as a (width/2, width, 3) uint8 panorama."""
    surfaces = [*world.walls, world.floor, world.ceiling]
    atlas, offsets = pack_atlas([shade_surface(s, world) for s in surfaces])
    dist, u_wall, v_zero, density, v_lo, v_hi = wall_columns(world, grid, offsets)
    f32 = np.float32
    # Wall rows: height z = dist * tan(el) lies (z_c - z) * density below the wall's top.
    v_wall = v_zero[None, :].astype(f32) - (
        grid.tan_el[:, None] * (dist * density)[None, :]
    ).astype(f32)
    on_wall = (v_wall >= v_lo[None, :].astype(f32)) & (v_wall <= v_hi[None, :].astype(f32))
    # Floor (below the horizon) and ceiling (above): horizontal range rho per row.
    down = grid.tan_el < 0
    plane_z = np.where(down, world.lo[2], world.hi[2])
    with np.errstate(divide="ignore"):
        rho = np.clip(plane_z / grid.tan_el, 0.0, 1e4)
    flat = [world.floor, world.ceiling]
    d_row = np.where(down, flat[0].density, flat[1].density)
    ox = np.where(down, offsets[-2][0], offsets[-1][0])
    oy = np.where(down, offsets[-2][1], offsets[-1][1])
    # Texel of (x, y): col = (x - x0) * d, row = (y1 - y) * d (both planes share this frame).
    a_u = (rho * d_row).astype(f32)[:, None]
    b_u = (ox - world.lo[0] * d_row).astype(f32)[:, None]
    b_v = (oy + world.hi[1] * d_row).astype(f32)[:, None]
    u_flat = a_u * grid.cos_az.astype(f32)[None, :] + b_u
    v_flat = b_v - a_u * grid.sin_az.astype(f32)[None, :]
    map_u = np.where(on_wall, u_wall.astype(f32)[None, :], u_flat)
    map_v = np.where(on_wall, v_wall, v_flat)
    pano = cv2.remap(atlas, map_u, map_v, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(pano, np.uint8)


def box_slice(box: Box, grid: DirectionGrid, width: int) -> tuple[Index, Index] | None:
    """Row and column indices of the panorama rectangle that can see ``box``."""
    corners = box.to_world(
        np.array([[x, y, 0.0] for x in (box.lo[0], box.hi[0]) for y in (box.lo[1], box.hi[1])])
    )[:, :2]
    az = np.arctan2(corners[:, 1], corners[:, 0])
    centre = math.atan2(float(np.mean(corners[:, 1])), float(np.mean(corners[:, 0])))
    rel = np.mod(az - centre + math.pi, 2 * math.pi) - math.pi
    nearest = np.clip([0.0, 0.0], box.lo[:2], box.hi[:2])  # the camera is at the origin of both
    rho_min = float(np.hypot(*nearest))
    rho_max = float(np.max(np.hypot(corners[:, 0], corners[:, 1])))
    if rho_min < 1e-3:
        return None  # the camera stands inside the footprint
    el_lo = math.atan2(box.lo[2], rho_min if box.lo[2] < 0 else rho_max)
    el_hi = math.atan2(box.hi[2], rho_min if box.hi[2] > 0 else rho_max)
    height = width // 2
    scale = width / (2 * math.pi)
    u_first = (math.pi - (centre + rel.max())) * scale - 0.5
    u_last = (math.pi - (centre + rel.min())) * scale - 0.5
    v_first = max(0, int(math.floor((0.5 * math.pi - el_hi) * height / math.pi - 0.5)) - 1)
    v_last = min(height - 1, int(math.ceil((0.5 * math.pi - el_lo) * height / math.pi - 0.5)) + 1)
    cols = np.arange(int(math.floor(u_first)) - 1, int(math.ceil(u_last)) + 2) % width
    rows = np.arange(v_first, v_last + 1)
    return rows, cols


def sample_texture(texture: Image, u: Vec, v: Vec, border: int = cv2.BORDER_WRAP) -> Image:
    """Bilinear lookup (n, 3) of texture pixels at float coordinates for 1-D u, v arrays."""
    n = u.size
    cols = 4096  # remap maps must stay below 32767 pixels per side
    rows = -(-n // cols)
    map_u = np.zeros(rows * cols, np.float32)
    map_v = np.zeros(rows * cols, np.float32)
    map_u[:n], map_v[:n] = u, v
    out = cv2.remap(
        texture,
        map_u.reshape(rows, cols),
        map_v.reshape(rows, cols),
        cv2.INTER_LINEAR,
        borderMode=border,
    )
    return np.asarray(out, np.float32).reshape(rows * cols, -1)[:n]


def face_shading(box: Box, world: World) -> dict[tuple[int, int], Vec]:
    """Display-space shading (3,) of each of the six faces, lit at the face centre."""
    centre = 0.5 * (box.lo + box.hi)
    shades = {}
    for axis in range(3):
        for sign in (-1, 1):
            normal = np.zeros(3)
            normal[axis] = sign
            point = centre.copy()
            point[axis] = box.hi[axis] if sign > 0 else box.lo[axis]
            point_w, normal_w = box.to_world(point + 0.02 * normal), box.to_world(normal)
            light = irradiance(point_w[None, :], normal_w, world.lights, world.ambient)
            shades[(axis, sign)] = np.power(world.exposure * light[0], GAMMA)
    return shades


def render_boxes(pano: npt.NDArray[np.uint8], world: World, grid: DirectionGrid) -> None:
    """Ray-cast the furniture boxes into ``pano`` in place, far boxes first."""
    width = pano.shape[1]
    order = sorted(world.boxes, key=lambda b: -float(np.linalg.norm(0.5 * (b.lo + b.hi))))
    for box in order:
        window = box_slice(box, grid, width)
        if window is None:
            continue
        rows, cols = window
        f32 = np.float32
        cos_el = grid.cos_el[rows].astype(f32)[:, None]
        # Ray directions in the box's frame (the camera is at the origin of both frames).
        c_yaw, s_yaw = math.cos(box.yaw), math.sin(box.yaw)
        cos_az = (c_yaw * grid.cos_az[cols] + s_yaw * grid.sin_az[cols]).astype(f32)
        sin_az = (-s_yaw * grid.cos_az[cols] + c_yaw * grid.sin_az[cols]).astype(f32)
        dirs_2d = (cos_el * cos_az[None, :], cos_el * sin_az[None, :])
        dz = grid.sin_el[rows].astype(f32)[:, None]
        enter, exit_ = [], []
        with np.errstate(divide="ignore", invalid="ignore"):
            for axis_dir, lo, hi in zip((*dirs_2d, dz), box.lo, box.hi, strict=True):
                inv = 1.0 / axis_dir
                t0, t1 = f32(lo) * inv, f32(hi) * inv
                enter.append(np.minimum(t0, t1))
                exit_.append(np.maximum(t0, t1))
        near = np.maximum(np.maximum(enter[0], enter[1]), enter[2])
        far = np.minimum(np.minimum(exit_[0], exit_[1]), exit_[2])
        hit = (near < far) & (near > 0)
        if not np.any(hit):
            continue
        t_hit = near[hit]
        hit_rows = np.broadcast_to(np.arange(len(rows))[:, None], hit.shape)[hit]
        dirs = np.stack([dirs_2d[0][hit], dirs_2d[1][hit], dz[hit_rows, 0]], axis=-1).astype(
            np.float64
        )
        entries = np.stack([np.broadcast_to(e, hit.shape)[hit] for e in enter], axis=-1)
        axis = np.argmax(entries, axis=-1)
        point = t_hit[:, None].astype(np.float64) * dirs
        sign = -np.sign(dirs[np.arange(len(axis)), axis]).astype(int)
        # Texture coordinates: vertical faces (horizontal position along the face, depth below
        # the top); top/bottom faces (x, y).
        along = np.where(axis == 0, point[:, 1] - box.lo[1], point[:, 0] - box.lo[0])
        down = np.where(axis == 2, point[:, 1] - box.lo[1], box.hi[2] - point[:, 2])
        colours = sample_texture(box.side, along * box.density, down * box.density)
        if box.front is not None and box.front_face is not None:
            is_front = (axis == box.front_face[0]) & (sign == box.front_face[1])
            if np.any(is_front):
                colours[is_front] = sample_texture(
                    box.front, along[is_front] * box.density, down[is_front] * box.density
                )
        shades = face_shading(box, world)
        shade = np.empty((len(axis), 3))
        for key, value in shades.items():
            shade[(axis == key[0]) & (sign == key[1])] = value
        block = pano[np.ix_(rows, cols)]
        block[hit] = np.clip(colours * shade * 255.0, 0, 255).astype(np.uint8)
        pano[np.ix_(rows, cols)] = block
