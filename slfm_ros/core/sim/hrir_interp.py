"""Interpolation weights between measured directions of an HRIR set.

Three layouts are handled:
- directions spread over the sphere: barycentric (VBAP-style) weights inside the triangle of the
  measurement grid's convex hull that contains the query direction. Unmeasured caps (most sets
  stop around -40 degrees elevation) show up as long "gap" triangles; a query there is moved to
  the nearest measured elevation keeping its lateral angle, so it never blends the left and
  right sides of the grid;
- a horizontal ring (all measurements at one elevation): linear between the two neighbouring
  azimuths, where a raised or lowered query is first mapped to the ring azimuth with the same
  lateral angle (the interaural cues depend mostly on the lateral angle);
- fewer than four directions: inverse-angular-distance weights of all of them.
Weights are non-negative and sum to one; an exact measured direction gets weight one.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.spatial import ConvexHull, QhullError, cKDTree

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

# A hull triangle is a gap when its longest edge exceeds this many times the typical one.
_GAP_FACTOR = 4.0
_GAP_MIN_EDGE = math.radians(15.0)
# Queries checked against every triangle at once (bounds memory of the brute-force pass).
_CHUNK = 256


def _unit(az: FloatArray, el: FloatArray) -> FloatArray:
    return np.stack([np.cos(el) * np.cos(az), np.cos(el) * np.sin(az), np.sin(el)], axis=-1)


def same_lateral_azimuth(az: FloatArray, el: FloatArray, new_el: FloatArray) -> FloatArray:
    """Azimuth at elevation ``new_el`` with the same lateral angle and front/back side."""
    lateral = np.cos(el) * np.sin(az)
    s = np.clip(lateral / np.maximum(np.cos(new_el), 1e-9), -1.0, 1.0)
    front = np.where(np.cos(az) >= 0, 1.0, -1.0)
    return np.arctan2(s, front * np.sqrt(1.0 - s**2))


class DirectionInterpolator:
    """Weights of measured directions (azimuth, elevation in radians) for query directions."""

    def __init__(self, azimuths: npt.ArrayLike, elevations: npt.ArrayLike):
        self.azimuths = np.asarray(azimuths, dtype=np.float64).ravel()
        self.elevations = np.asarray(elevations, dtype=np.float64).ravel()
        self.points = _unit(self.azimuths, self.elevations)
        self._tree = cKDTree(self.points)
        self.layout = "few"
        if np.ptp(self.elevations) < 1e-6:
            self.layout = "ring" if self.points.shape[0] > 1 else "single"
            self._ring_order = np.argsort(np.mod(self.azimuths, 2 * math.pi))
            self._ring_elevation = float(self.elevations[0])
        elif self.points.shape[0] >= 4:
            try:
                self._setup_triangles(ConvexHull(self.points).simplices)
                self.layout = "sphere"
            except QhullError:
                pass

    def _setup_triangles(self, simplices: npt.ArrayLike) -> None:
        triangles = np.asarray(simplices, dtype=np.int64)
        corners = self.points[triangles]  # (T, 3 vertices, 3 coords)
        cosines = np.stack(
            [np.sum(corners[:, i] * corners[:, (i + 1) % 3], axis=1) for i in range(3)], axis=1
        )
        longest = np.arccos(np.clip(cosines, -1.0, 1.0)).max(axis=1)
        gap = longest > max(_GAP_FACTOR * float(np.median(longest)), _GAP_MIN_EDGE)
        self._triangles = triangles[~gap]
        self._has_gaps = bool(np.any(gap))
        self._inverse = np.linalg.inv(corners[~gap].transpose(0, 2, 1))
        centroids = corners[~gap].mean(axis=1)
        self._centroid_tree = cKDTree(centroids / np.linalg.norm(centroids, axis=1, keepdims=True))

    def weights(
        self, azimuths: npt.ArrayLike, elevations: npt.ArrayLike
    ) -> tuple[IntArray, FloatArray]:
        """Indices (n, k) into the measured set and weights (n, k) for n query directions."""
        az, el = np.broadcast_arrays(
            np.atleast_1d(np.asarray(azimuths, dtype=np.float64)),
            np.atleast_1d(np.asarray(elevations, dtype=np.float64)),
        )
        az, el = az.ravel(), el.ravel()
        if self.layout == "single":
            return np.zeros((az.size, 1), dtype=np.int64), np.ones((az.size, 1))
        if self.layout == "ring":
            return self._ring(az, el)
        if self.layout == "few":
            return self._inverse_distance(_unit(az, el), self.points.shape[0])
        return self._barycentric(az, el)

    def _ring(self, az: FloatArray, el: FloatArray) -> tuple[IntArray, FloatArray]:
        ring_el = np.full_like(el, self._ring_elevation)
        ring_az = np.mod(same_lateral_azimuth(az, el, ring_el), 2 * math.pi)
        measured = np.mod(self.azimuths[self._ring_order], 2 * math.pi)
        upper = np.searchsorted(measured, ring_az, side="right") % measured.size
        lower = (upper - 1) % measured.size
        span = np.mod(measured[upper] - measured[lower], 2 * math.pi)
        span = np.where(span == 0, 2 * math.pi, span)
        frac = np.mod(ring_az - measured[lower], 2 * math.pi) / span
        idx = np.stack([self._ring_order[lower], self._ring_order[upper]], axis=1)
        return idx, np.stack([1.0 - frac, frac], axis=1)

    def _inverse_distance(self, queries: FloatArray, k: int) -> tuple[IntArray, FloatArray]:
        k = min(k, self.points.shape[0])
        _, idx = self._tree.query(queries, k=k)
        idx = np.asarray(idx, dtype=np.int64).reshape(queries.shape[0], k)
        cosines = np.einsum("nc,nkc->nk", queries, self.points[idx])
        angles = np.arccos(np.clip(cosines, -1.0, 1.0))
        with np.errstate(divide="ignore"):
            w = 1.0 / angles
        exact = angles < 1e-9
        w = np.where(exact.any(axis=1, keepdims=True), exact.astype(float), w)
        return idx, w / w.sum(axis=1, keepdims=True)

    def _barycentric(self, az: FloatArray, el: FloatArray) -> tuple[IntArray, FloatArray]:
        if self._has_gaps:
            # Above or below every measurement: nearest measured elevation, same lateral angle.
            lo, hi = float(self.elevations.min()), float(self.elevations.max())
            clipped = np.clip(el, lo, hi)
            az = np.where(clipped != el, same_lateral_azimuth(az, el, clipped), az)
            el = clipped
        queries = _unit(az, el)
        idx, w, score = self._locate(queries)
        outside = score < -1e-6  # a hole inside the grid: nearest three measurements
        if np.any(outside):
            idx[outside], w[outside] = self._inverse_distance(queries[outside], 3)
        return idx, w

    def _locate(self, queries: FloatArray) -> tuple[IntArray, FloatArray, FloatArray]:
        """Containing triangle (indices, weights, smallest barycentric gain) of each query."""
        n_tri = self._triangles.shape[0]
        _, cand = self._centroid_tree.query(queries, k=min(8, n_tri))
        cand = np.asarray(cand, dtype=np.int64).reshape(queries.shape[0], -1)
        idx, w, score = self._best_triangle(queries, cand)
        # Thin triangles can have far centroids: check the rest against every triangle.
        for start in range(0, queries.shape[0], _CHUNK):
            rows = np.flatnonzero(score[start : start + _CHUNK] < -1e-9) + start
            if rows.size:
                every = np.broadcast_to(np.arange(n_tri), (rows.size, n_tri))
                idx[rows], w[rows], score[rows] = self._best_triangle(queries[rows], every)
        return idx, w, score

    def _best_triangle(
        self, queries: FloatArray, cand: IntArray
    ) -> tuple[IntArray, FloatArray, FloatArray]:
        """Per query, the candidate triangle with the largest smallest barycentric gain."""
        gains = np.einsum("nc,nkdc->nkd", queries, self._inverse[cand])  # (n, c, 3)
        score = gains.min(axis=2)
        best = np.argmax(score, axis=1)
        rows = np.arange(queries.shape[0])
        g = np.clip(gains[rows, best], 0.0, None)
        idx = self._triangles[cand[rows, best]].copy()
        w = g / np.maximum(g.sum(axis=1, keepdims=True), 1e-12)
        return idx, w, score[rows, best]
