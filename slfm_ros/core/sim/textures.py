"""Procedural surface textures (albedo) for the panorama generator.

Every texture is an (h, w, 3) float32 RGB albedo in [0, 1], laid out on a surface at
``density`` pixels per metre (rows run down the surface, columns along it). Textures are built
from a few vectorised primitives (fractal value noise, per-cell colour tables, grout/mortar
lines) so a full room's textures take tens of milliseconds.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Callable

import cv2
import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.float32]
Colour = npt.NDArray[np.float32]
Texture = Callable[[int, int, float, np.random.Generator], Image]


def hsv(h: float, s: float, v: float) -> Colour:
    """RGB colour (3,) float32 from hue (0..1 turns), saturation and value."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v), dtype=np.float32)


def wall_colour(rng: np.random.Generator) -> Colour:
    """Painted-wall colour: mostly light neutrals, sometimes a saturated accent."""
    if rng.random() < 0.25:
        return hsv(rng.random(), rng.uniform(0.25, 0.6), rng.uniform(0.45, 0.85))
    return hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.18), rng.uniform(0.7, 0.95))


def wood_colour(rng: np.random.Generator) -> Colour:
    return hsv(rng.uniform(0.04, 0.11), rng.uniform(0.35, 0.75), rng.uniform(0.25, 0.8))


def any_colour(rng: np.random.Generator) -> Colour:
    return hsv(rng.random(), rng.uniform(0.1, 0.9), rng.uniform(0.15, 0.95))


def grey(rng: np.random.Generator, low: float = 0.2, high: float = 0.85) -> Colour:
    return hsv(rng.random(), rng.uniform(0.0, 0.08), rng.uniform(low, high))


def fractal_noise(
    h: int,
    w: int,
    rng: np.random.Generator,
    cell_px: float,
    octaves: int = 4,
    persistence: float = 0.5,
    aspect: float = 1.0,
) -> npt.NDArray[np.float32]:
    """Zero-mean value noise (h, w) float32 of roughly unit amplitude.

    cell_px: feature size of the coarsest octave in pixels along a row; along a column it is
    ``cell_px / aspect``, so aspect > 1 gives streaks that run along the rows (wood grain).
    """
    total = np.zeros((h, w), np.float32)
    amplitude, norm = 1.0, 0.0
    cell = float(cell_px)
    for _ in range(octaves):
        if cell < 1.5:
            break
        gw = max(2, int(math.ceil(w / cell)) + 1)
        gh = max(2, int(math.ceil(h * aspect / cell)) + 1)
        grid = rng.standard_normal((gh, gw)).astype(np.float32)
        total += amplitude * cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
        norm += amplitude
        amplitude *= persistence
        cell *= 0.5
    if norm > 0:
        total *= 1.0 / norm
    return total


def _shade(colour: Colour, factor: npt.NDArray[np.float32]) -> Image:
    return np.clip(factor[..., None] * colour[None, None, :], 0.0, 1.0).astype(np.float32)


def _cell_lines(
    n: int, period_px: float, width_px: float, offset: float = 0.0
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """(index, in_line) per pixel along one axis for cells of ``period_px`` with seams."""
    pos = np.arange(n, dtype=np.float32) + offset
    index = np.floor(pos / period_px).astype(np.int64)
    frac = pos - index * period_px
    return index, frac < width_px


def paint(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = wall_colour(rng)
    noise = fractal_noise(h, w, rng, 0.6 * density, octaves=5)
    return _shade(colour, 1.0 + rng.uniform(0.02, 0.07) * noise)


def plaster(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = wall_colour(rng)
    coarse = fractal_noise(h, w, rng, 1.5 * density, octaves=6, persistence=0.6)
    return _shade(colour, 1.0 + rng.uniform(0.06, 0.14) * coarse)


def wallpaper(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    base, second = wall_colour(rng), any_colour(rng)
    period = rng.uniform(0.04, 0.25) * density
    cols = np.arange(w, dtype=np.float32)
    rows = np.arange(h, dtype=np.float32)
    if rng.random() < 0.5:  # stripes
        duty = rng.uniform(0.2, 0.6)
        pattern = ((cols / period) % 1.0 < duty).astype(np.float32)[None, :].repeat(h, 0)
    else:  # dots / diamonds
        phase = 2 * math.pi / period
        pattern = (np.sin(cols * phase)[None, :] * np.sin(rows * phase)[:, None] > 0.6).astype(
            np.float32
        )
    mix = rng.uniform(0.2, 0.6) * pattern
    img = (1.0 - mix[..., None]) * base + mix[..., None] * second
    noise = fractal_noise(h, w, rng, 0.8 * density, octaves=3)
    return np.clip(img * (1.0 + 0.03 * noise)[..., None], 0, 1).astype(np.float32)


def bricks(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    brick_w = rng.uniform(0.2, 0.3) * density
    brick_h = rng.uniform(0.055, 0.09) * density
    mortar = max(1.0, rng.uniform(0.008, 0.014) * density)
    base = hsv(rng.uniform(0.0, 0.08), rng.uniform(0.3, 0.7), rng.uniform(0.35, 0.75))
    if rng.random() < 0.25:
        base = grey(rng, 0.4, 0.85)
    mortar_colour = grey(rng, 0.45, 0.9)
    row_idx, row_line = _cell_lines(h, brick_h, mortar)
    cols = np.arange(w, dtype=np.float32)[None, :] + (row_idx % 2)[:, None] * 0.5 * brick_w
    col_idx = np.floor(cols / brick_w).astype(np.int64)
    col_line = cols - col_idx * brick_w < mortar
    table = rng.uniform(0.7, 1.2, (row_idx.max() + 2, int(col_idx.max()) + 2)).astype(np.float32)
    tint = rng.uniform(-0.06, 0.06, table.shape + (3,)).astype(np.float32)
    factor = table[row_idx[:, None], col_idx]
    img = base[None, None, :] * factor[..., None] + tint[row_idx[:, None], col_idx]
    noise = fractal_noise(h, w, rng, 0.05 * density, octaves=3)
    img *= (1.0 + 0.12 * noise)[..., None]
    line = row_line[:, None] | col_line
    img[line] = mortar_colour * (1.0 + 0.1 * noise[line])[:, None]
    return np.clip(img, 0, 1).astype(np.float32)


def tiles(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    size = rng.uniform(0.1, 0.6) * density
    size_v = size * (rng.uniform(0.5, 2.0) if rng.random() < 0.3 else 1.0)
    grout = max(1.0, rng.uniform(0.003, 0.008) * density)
    first = any_colour(rng) if rng.random() < 0.5 else grey(rng, 0.5, 0.95)
    second = first if rng.random() < 0.6 else any_colour(rng)
    grout_colour = grey(rng, 0.15, 0.85)
    row_idx, row_line = _cell_lines(h, size_v, grout)
    col_idx, col_line = _cell_lines(w, size, grout)
    checker = ((row_idx[:, None] + col_idx[None, :]) % 2).astype(np.float32)
    jitter = rng.uniform(0.9, 1.08, (row_idx.max() + 1, col_idx.max() + 1)).astype(np.float32)
    factor = jitter[row_idx[:, None], col_idx[None, :]]
    img = ((1.0 - checker)[..., None] * first + checker[..., None] * second) * factor[..., None]
    noise = fractal_noise(h, w, rng, 0.3 * density, octaves=4)
    img *= (1.0 + 0.05 * noise)[..., None]
    line = row_line[:, None] | col_line[None, :]
    img[line] = grout_colour
    return np.clip(img, 0, 1).astype(np.float32)


def planks(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    """Wooden planks running along the columns, with grain and staggered end joints."""
    plank_w = rng.uniform(0.08, 0.22) * density
    plank_len = rng.uniform(0.8, 2.2) * density
    seam = max(1.0, 0.004 * density)
    base = wood_colour(rng)
    row_idx, row_line = _cell_lines(h, plank_w, seam)
    n_rows = int(row_idx.max()) + 1
    offsets = rng.uniform(0, plank_len, n_rows).astype(np.float32)
    cols = np.arange(w, dtype=np.float32)[None, :] + offsets[row_idx][:, None]
    col_idx = np.floor(cols / plank_len).astype(np.int64)
    end_joint = cols - col_idx * plank_len < seam
    shade = rng.uniform(0.75, 1.2, (n_rows, int(col_idx.max()) + 1)).astype(np.float32)
    factor = shade[row_idx[:, None], col_idx]
    warp = fractal_noise(h, w, rng, 0.6 * density, octaves=3, aspect=6.0)
    rows = np.arange(h, dtype=np.float32)[:, None]
    grain = np.sin((rows / max(plank_w / rng.uniform(3, 9), 1.0) + 2.5 * warp) * 2 * math.pi)
    factor = factor * (0.9 + 0.1 * grain)
    img = base[None, None, :] * factor[..., None]
    dark = row_line[:, None] | end_joint
    img[dark] *= 0.45
    return np.clip(img, 0, 1).astype(np.float32)


def concrete(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = grey(rng, 0.35, 0.75)
    coarse = fractal_noise(h, w, rng, 1.0 * density, octaves=6, persistence=0.65)
    specks = (rng.random((h, w)) < 0.004).astype(np.float32)
    return _shade(colour, 1.0 + 0.15 * coarse - 0.25 * specks)


def carpet(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = any_colour(rng) * 0.8
    fine = rng.standard_normal((h, w)).astype(np.float32)
    # Pile, not per-texel noise: it stays repeatable when views resample it.
    fine = np.asarray(cv2.GaussianBlur(fine, (0, 0), 1.2), dtype=np.float32)
    coarse = fractal_noise(h, w, rng, 0.5 * density, octaves=3)
    return _shade(colour, 1.0 + 0.35 * fine + 0.06 * coarse)


def ceiling_panels(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    size = rng.choice([0.6, 1.2]) * density
    line = max(1.0, 0.02 * density)
    base = grey(rng, 0.75, 0.95)
    _, row_line = _cell_lines(h, size, line, rng.uniform(0, size))
    _, col_line = _cell_lines(w, 0.6 * density, line, rng.uniform(0, size))
    noise = fractal_noise(h, w, rng, 0.05 * density, octaves=2)
    img = _shade(base, 1.0 + 0.05 * noise)
    img[row_line[:, None] | col_line[None, :]] *= 0.7
    return img


def grass(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = hsv(rng.uniform(0.18, 0.3), rng.uniform(0.4, 0.8), rng.uniform(0.25, 0.55))
    fine = rng.standard_normal((h, w)).astype(np.float32)
    coarse = fractal_noise(h, w, rng, 2.0 * density, octaves=5, persistence=0.6)
    return _shade(colour, 1.0 + 0.2 * fine + 0.25 * coarse)


def asphalt(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    colour = grey(rng, 0.18, 0.4)
    fine = rng.standard_normal((h, w)).astype(np.float32)
    coarse = fractal_noise(h, w, rng, 3.0 * density, octaves=5, persistence=0.6)
    return _shade(colour, 1.0 + 0.15 * fine + 0.2 * coarse)


WALL_TEXTURES: dict[str, tuple[float, Texture]] = {
    "paint": (3.0, paint),
    "plaster": (1.5, plaster),
    "wallpaper": (1.5, wallpaper),
    "bricks": (1.0, bricks),
    "tiles": (0.7, tiles),
    "planks": (0.5, planks),
    "concrete": (0.6, concrete),
}
FLOOR_TEXTURES: dict[str, tuple[float, Texture]] = {
    "planks": (3.0, planks),
    "tiles": (2.0, tiles),
    "carpet": (1.5, carpet),
    "concrete": (1.0, concrete),
}
CEILING_TEXTURES: dict[str, tuple[float, Texture]] = {
    "paint": (3.0, paint),
    "panels": (1.5, ceiling_panels),
    "planks": (0.4, planks),
    "concrete": (0.5, concrete),
}
GROUND_TEXTURES: dict[str, tuple[float, Texture]] = {
    "grass": (1.0, grass),
    "asphalt": (1.0, asphalt),
    "tiles": (1.0, tiles),
    "concrete": (0.7, concrete),
}
FACADE_TEXTURES: dict[str, tuple[float, Texture]] = {
    "plaster": (2.0, plaster),
    "bricks": (1.5, bricks),
    "concrete": (1.0, concrete),
    "tiles": (0.5, tiles),
}


def pick(table: dict[str, tuple[float, Texture]], rng: np.random.Generator) -> Texture:
    """Draw one texture function from a weighted table."""
    names = list(table)
    weights = np.array([table[n][0] for n in names])
    return table[names[rng.choice(len(names), p=weights / weights.sum())]][1]


def foliage(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    """Hedges, bushes and tree crowns: clumps of leaves in several greens, dark gaps."""
    colour = hsv(rng.uniform(0.17, 0.36), rng.uniform(0.35, 0.8), rng.uniform(0.2, 0.5))
    second = hsv(rng.uniform(0.1, 0.33), rng.uniform(0.3, 0.8), rng.uniform(0.15, 0.6))
    clumps = fractal_noise(h, w, rng, rng.uniform(0.3, 1.2) * density, octaves=5, persistence=0.7)
    leaves = fractal_noise(h, w, rng, 0.06 * density, octaves=2)
    mix = np.clip(0.5 + 0.8 * clumps, 0.0, 1.0)[..., None]
    img = (1.0 - mix) * colour + mix * second
    shade = 1.0 + 0.35 * leaves - 0.45 * np.clip(-clumps - 0.4, 0.0, 1.0)
    return np.clip(img * shade[..., None], 0, 1).astype(np.float32)


def gravel(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    """Sand, gravel or bare earth: speckled, without any direction."""
    colour = hsv(rng.uniform(0.05, 0.14), rng.uniform(0.1, 0.45), rng.uniform(0.35, 0.75))
    fine = np.asarray(
        cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), 0.8),
        dtype=np.float32,
    )
    coarse = fractal_noise(h, w, rng, 1.5 * density, octaves=5, persistence=0.6)
    return _shade(colour, 1.0 + 0.35 * fine + 0.2 * coarse)


def rock(h: int, w: int, density: float, rng: np.random.Generator) -> Image:
    """Weathered stone: grey-brown, blotchy, with dark cracks."""
    colour = hsv(rng.uniform(0.04, 0.12), rng.uniform(0.05, 0.3), rng.uniform(0.35, 0.7))
    blotches = fractal_noise(h, w, rng, 0.8 * density, octaves=6, persistence=0.65)
    cracks = np.abs(fractal_noise(h, w, rng, 0.4 * density, octaves=3)) < 0.04
    img = _shade(colour, 1.0 + 0.25 * blotches)
    img[cracks] *= 0.5
    return img


VEGETATION_TEXTURES: dict[str, tuple[float, Texture]] = {
    "foliage": (3.0, foliage),
    "rock": (0.6, rock),
}
PARK_GROUND_TEXTURES: dict[str, tuple[float, Texture]] = {
    "grass": (2.0, grass),
    "gravel": (1.5, gravel),
    "asphalt": (0.5, asphalt),
}
