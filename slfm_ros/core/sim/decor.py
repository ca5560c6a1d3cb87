"""Flat wall and ceiling details drawn into a surface albedo: doors, windows, pictures, shelves.

Surfaces are (h, w, 3) float32 albedo images at ``density`` pixels per metre; rectangles are
(x0, y0, x1, y1) pixel bounds with y growing downward. Items return the rectangles that emit
light (windows, lamps) so the renderer can leave them unlit and bright.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from slfm_ros.core.sim.textures import (
    any_colour,
    fractal_noise,
    grey,
    hsv,
    planks,
    wood_colour,
)

Image = npt.NDArray[np.float32]
Rect = tuple[int, int, int, int]


@dataclass(frozen=True)
class Emitter:
    """A rectangle of a surface that glows with relative brightness ``gain``."""

    rect: Rect
    gain: float


def _clip(img: Image, rect: Rect) -> Rect | None:
    h, w = img.shape[:2]
    x0, y0, x1, y1 = max(0, rect[0]), max(0, rect[1]), min(w, rect[2]), min(h, rect[3])
    if x1 - x0 < 2 or y1 - y0 < 2:
        return None
    return x0, y0, x1, y1


def fill(img: Image, rect: Rect, colour: npt.ArrayLike) -> None:
    r = _clip(img, rect)
    if r is not None:
        img[r[1] : r[3], r[0] : r[2]] = colour


def frame(img: Image, rect: Rect, colour: npt.ArrayLike, thickness: int) -> Rect:
    """Draw a border of ``thickness`` px and return the inner rectangle."""
    x0, y0, x1, y1 = rect
    t = max(1, thickness)
    fill(img, (x0, y0, x1, y0 + t), colour)
    fill(img, (x0, y1 - t, x1, y1), colour)
    fill(img, (x0, y0, x0 + t, y1), colour)
    fill(img, (x1 - t, y0, x1, y1), colour)
    return x0 + t, y0 + t, x1 - t, y1 - t


def paste(img: Image, rect: Rect, content: Image) -> None:
    x0, y0 = rect[:2]
    r = _clip(img, rect)
    if r is None:
        return
    img[r[1] : r[3], r[0] : r[2]] = content[r[1] - y0 : r[3] - y0, r[0] - x0 : r[2] - x0]


def abstract_art(h: int, w: int, rng: np.random.Generator) -> Image:
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = any_colour(rng)
    for _ in range(int(rng.integers(4, 16))):
        colour = tuple(float(c) for c in any_colour(rng))
        kind = rng.integers(3)
        if kind == 0:
            p0 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            cv2.rectangle(canvas, p0, p1, colour, -1)
        elif kind == 1:
            centre = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            radius = int(rng.integers(2, max(3, min(h, w) // 2)))
            cv2.circle(canvas, centre, radius, colour, -1, lineType=cv2.LINE_AA)
        else:
            pts = np.stack([rng.integers(0, w, 3), rng.integers(0, h, 3)], axis=1)
            cv2.fillPoly(canvas, [pts.astype(np.int32)], colour, lineType=cv2.LINE_AA)
    return canvas


def landscape(h: int, w: int, rng: np.random.Generator) -> Image:
    """Sky gradient over a few noisy ridgelines: a photo-like picture or a window view."""
    rows = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None, None]
    top, bottom = (
        hsv(rng.uniform(0.5, 0.65), rng.uniform(0.2, 0.6), rng.uniform(0.7, 1.0)),
        hsv(rng.uniform(0.0, 1.0), rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.0)),
    )
    canvas = np.broadcast_to(top * (1 - rows) + bottom * rows, (h, w, 3)).copy()
    cols = np.arange(w)
    for layer in range(int(rng.integers(1, 4))):
        base = rng.uniform(0.35, 0.8) + 0.12 * layer
        ridge = base + 0.15 * fractal_noise(1, w, rng, max(4.0, w / 3), octaves=4)[0]
        colour = hsv(rng.uniform(0.15, 0.4), rng.uniform(0.2, 0.7), rng.uniform(0.15, 0.6))
        below = np.arange(h)[:, None] >= (ridge * h)[None, cols]
        canvas[below] = colour
    return canvas


def text_page(h: int, w: int, rng: np.random.Generator) -> Image:
    """Light page covered with lines of dark word blocks (posters, notices, whiteboards)."""
    canvas = np.empty((h, w, 3), np.float32)
    canvas[:] = grey(rng, 0.8, 1.0)
    ink = grey(rng, 0.0, 0.3) if rng.random() < 0.7 else any_colour(rng) * 0.6
    line_h = max(2, int(h * rng.uniform(0.03, 0.08)))
    y = int(line_h * rng.uniform(0.5, 1.5))
    while y + line_h < h:
        x = int(w * 0.08)
        while x < w * 0.9:
            word = int(line_h * rng.uniform(1.0, 5.0))
            cv2.rectangle(
                canvas,
                (x, y),
                (min(x + word, w - 1), y + int(line_h * 0.6)),
                tuple(float(c) for c in ink),
                -1,
            )
            x += word + max(1, line_h // 2)
        y += int(line_h * rng.uniform(1.4, 2.2))
    return canvas


def noise_photo(h: int, w: int, rng: np.random.Generator) -> Image:
    channels = [fractal_noise(h, w, rng, max(4.0, w / 2), octaves=5) for _ in range(3)]
    img = 0.5 + 0.35 * np.stack(channels, axis=-1)
    return np.clip(img, 0, 1).astype(np.float32)


PICTURES = (abstract_art, landscape, text_page, noise_photo)


def picture(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    x0, y0, x1, y1 = rect
    if rng.random() < 0.8:
        colour = wood_colour(rng) if rng.random() < 0.5 else grey(rng, 0.0, 1.0)
        x0, y0, x1, y1 = frame(img, rect, colour, int(rng.uniform(0.015, 0.06) * density))
        if rng.random() < 0.4:  # passe-partout
            x0, y0, x1, y1 = frame(img, (x0, y0, x1, y1), grey(rng, 0.85, 1.0), int(0.04 * density))
    if x1 - x0 > 3 and y1 - y0 > 3:
        make = PICTURES[int(rng.integers(len(PICTURES)))]
        paste(img, (x0, y0, x1, y1), make(y1 - y0, x1 - x0, rng))
    return []


def window(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    x0, y0, x1, y1 = rect
    frame_colour = grey(rng, 0.75, 1.0) if rng.random() < 0.7 else wood_colour(rng)
    bar = max(2, int(rng.uniform(0.03, 0.07) * density))
    inner = frame(img, rect, frame_colour, bar)
    ix0, iy0, ix1, iy1 = inner
    if ix1 - ix0 < 4 or iy1 - iy0 < 4:
        return []
    paste(img, inner, landscape(iy1 - iy0, ix1 - ix0, rng))
    panes_x = int(rng.integers(1, 4))
    panes_y = int(rng.integers(1, 3))
    for k in range(1, panes_x):
        x = ix0 + (ix1 - ix0) * k // panes_x
        fill(img, (x - bar // 2, iy0, x + bar // 2 + 1, iy1), frame_colour)
    for k in range(1, panes_y):
        y = iy0 + (iy1 - iy0) * k // panes_y
        fill(img, (ix0, y - bar // 2, ix1, y + bar // 2 + 1), frame_colour)
    fill(img, (x0 - bar, y1, x1 + bar, y1 + bar), frame_colour)  # sill
    if rng.random() < 0.5:  # curtains on both sides
        curtain = any_colour(rng)
        width = int((x1 - x0) * rng.uniform(0.12, 0.3))
        folds = 0.85 + 0.15 * np.sin(np.arange(width) * 2 * math.pi / max(4, 0.08 * density))
        cloth = np.empty((y1 - y0 + bar * 2, width, 3), np.float32)
        cloth[:] = folds[None, :, None] * curtain
        top = y0 - bar
        paste(img, (x0 - width // 3, top, x0 - width // 3 + width, top + cloth.shape[0]), cloth)
        paste(img, (x1 - 2 * width // 3, top, x1 + width // 3, top + cloth.shape[0]), cloth)
    return [Emitter(inner, float(rng.uniform(1.3, 2.5)))]


def door(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    trim = grey(rng, 0.7, 1.0) if rng.random() < 0.6 else wood_colour(rng)
    x0, y0, x1, y1 = frame(img, rect, trim, int(rng.uniform(0.04, 0.08) * density))
    fill(img, (x0, y1, x1, rect[3]), trim)
    y1 = rect[3]
    if rng.random() < 0.25:  # open doorway: a dim room beyond
        depth = np.linspace(0.05, 0.25, x1 - x0, dtype=np.float32)[None, :, None]
        dim = np.broadcast_to(depth * any_colour(rng), (y1 - y0, x1 - x0, 3))
        paste(img, (x0, y0, x1, y1), np.ascontiguousarray(dim))
        return []
    if rng.random() < 0.5:
        # Generated lying down, then stood up so the grain runs vertically.
        leaf = np.ascontiguousarray(planks(x1 - x0, y1 - y0, density, rng).transpose(1, 0, 2))
    else:
        leaf = np.empty((y1 - y0, x1 - x0, 3), np.float32)
        leaf[:] = grey(rng, 0.5, 1.0) if rng.random() < 0.6 else any_colour(rng)
    paste(img, (x0, y0, x1, y1), leaf)
    panels = int(rng.integers(0, 4))
    margin = int(0.08 * density)
    for k in range(panels):
        py0 = y0 + margin + k * (y1 - y0 - margin) // max(panels, 1)
        py1 = y0 + (k + 1) * (y1 - y0 - margin) // max(panels, 1)
        cv2.rectangle(
            img,
            (x0 + margin, py0),
            (x1 - margin, py1),
            tuple(float(c) for c in leaf[0, 0] * 0.75),
            max(1, int(0.012 * density)),
        )
    handle_x = x0 + margin // 2 if rng.random() < 0.5 else x1 - margin
    handle_y = y1 - int(1.0 * density)
    fill(
        img,
        (handle_x - 2, handle_y, handle_x + int(0.1 * density), handle_y + 3),
        grey(rng, 0.1, 0.9),
    )
    return []


def bookshelf(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    wood = wood_colour(rng) if rng.random() < 0.7 else grey(rng, 0.1, 0.95)
    inner = frame(img, rect, wood, int(0.03 * density))
    fill(img, inner, wood * 0.35)  # shadowed back of the shelves
    shelf_h = int(rng.uniform(0.28, 0.4) * density)
    board = max(2, int(0.025 * density))
    y = inner[1]
    while y + shelf_h <= inner[3]:
        x = inner[0]
        while x < inner[2] - 2:
            book_w = max(2, int(rng.uniform(0.015, 0.06) * density))
            book_h = int(shelf_h * rng.uniform(0.55, 0.95))
            if rng.random() < 0.12:
                x += book_w * 3  # gap
                continue
            colour = any_colour(rng)
            fill(img, (x, y + shelf_h - book_h, min(x + book_w, inner[2]), y + shelf_h), colour)
            x += book_w
        fill(img, (inner[0], y + shelf_h, inner[2], y + shelf_h + board), wood)
        y += shelf_h + board
    return []


def screen(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    inner = frame(img, rect, grey(rng, 0.02, 0.15), int(0.02 * density))
    x0, y0, x1, y1 = inner
    if rng.random() < 0.5:
        glare = np.linspace(0.03, 0.12, x1 - x0, dtype=np.float32)
        dark = np.broadcast_to(glare[None, :, None], (y1 - y0, x1 - x0, 3))
        paste(img, inner, np.ascontiguousarray(dark))
        return []
    paste(img, inner, PICTURES[int(rng.integers(len(PICTURES)))](y1 - y0, x1 - x0, rng))
    return [Emitter(inner, float(rng.uniform(0.8, 1.4)))]


def radiator(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    x0, y0, x1, y1 = rect
    colour = grey(rng, 0.7, 1.0)
    fin = max(2, int(0.05 * density))
    shade = 0.75 + 0.25 * (np.arange(x1 - x0) % fin > fin // 3)
    block = np.broadcast_to(shade[None, :, None] * colour, (y1 - y0, x1 - x0, 3))
    paste(img, rect, np.ascontiguousarray(block, dtype=np.float32))
    return []


def whiteboard(img: Image, rect: Rect, rng: np.random.Generator, density: float) -> list[Emitter]:
    inner = frame(img, rect, grey(rng, 0.5, 0.8), int(0.02 * density))
    x0, y0, x1, y1 = inner
    board = np.empty((y1 - y0, x1 - x0, 3), np.float32)
    board[:] = grey(rng, 0.88, 1.0) if rng.random() < 0.8 else hsv(0.35, 0.5, 0.25)
    for _ in range(int(rng.integers(3, 12))):
        pts = np.cumsum(rng.normal(0, 0.05 * density, (8, 2)), axis=0)
        pts += [rng.uniform(0, x1 - x0), rng.uniform(0, y1 - y0)]
        ink = tuple(float(c) for c in any_colour(rng) * 0.6)
        cv2.polylines(board, [pts.astype(np.int32)], False, ink, max(1, int(0.008 * density)))
    paste(img, inner, board)
    return []


def lamp(img: Image, centre: tuple[int, int], radius: int, rng: np.random.Generator) -> Emitter:
    """A round or square ceiling light; returns its emitting rectangle."""
    x, y = centre
    glow = (1.0, 0.97, 0.9)
    if rng.random() < 0.5:
        cv2.circle(img, centre, radius, glow, -1, lineType=cv2.LINE_AA)
        radius = int(radius * 0.7)  # the square inside the disc glows
    else:
        fill(img, (x - radius, y - radius, x + radius + 1, y + radius + 1), glow)
    rect = (x - radius, y - radius, x + radius + 1, y + radius + 1)
    return Emitter(rect, float(rng.uniform(1.5, 3.0)))
