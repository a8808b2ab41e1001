"""Walking routes through a furnished room: a grid of free standing spots and shortest paths on it.

The grid holds points every :data:`GRID_STEP` metres over the room's bounding rectangle; a point
is free when ``free(xy)`` says a camera can stand there. Neighbours are the 8 surrounding points
(a diagonal step only when both points beside it are free too), edge lengths in metres. A route
is a shortest path (Dijkstra) from a start point, cut where it would exceed a length budget,
then shortened to the points where it must turn (each kept point sees the next in a straight
line of free grid points).
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

GRID_STEP = 0.25
"""Spacing (metres) of the free-spot grid."""

_NEIGHBOURS = [(di, dj) for di in (-1, 0, 1) for dj in (-1, 0, 1) if di or dj]


@dataclass
class FreeGrid:
    """Free standing spots on a regular grid: ``xs`` (nx,), ``ys`` (ny,) metres, ``free``
    (nx, ny) booleans."""

    xs: np.ndarray
    ys: np.ndarray
    free: np.ndarray

    @classmethod
    def build(
        cls,
        bbox: tuple[float, float, float, float],
        free: Callable[[np.ndarray], bool],
        step: float = GRID_STEP,
    ) -> FreeGrid:
        """The grid over ``bbox = (xmin, ymin, xmax, ymax)`` with ``free`` evaluated at every
        point (points start half a step inside the rectangle)."""
        x0, y0, x1, y1 = bbox
        xs = np.arange(x0 + step / 2, x1, step)
        ys = np.arange(y0 + step / 2, y1, step)
        mask = np.array([[bool(free(np.array([x, y]))) for y in ys] for x in xs], dtype=bool)
        return cls(xs, ys, mask.reshape(len(xs), len(ys)))

    def point(self, ij: tuple[int, int]) -> np.ndarray:
        """World X-Y (metres) of grid index ``ij``."""
        return np.array([self.xs[ij[0]], self.ys[ij[1]]])

    def distances(self, src: tuple[int, int]) -> tuple[np.ndarray, dict]:
        """Shortest walking distance (metres, inf where unreachable) from ``src`` to every
        point, and each reached point's predecessor."""
        step = float(self.xs[1] - self.xs[0]) if len(self.xs) > 1 else 1.0
        nx, ny = self.free.shape
        dist = np.full((nx, ny), np.inf)
        prev: dict[tuple[int, int], tuple[int, int]] = {}
        dist[src] = 0.0
        heap = [(0.0, src)]
        while heap:
            d, (i, j) = heapq.heappop(heap)
            if d > dist[i, j]:
                continue
            for di, dj in _NEIGHBOURS:
                a, b = i + di, j + dj
                if not (0 <= a < nx and 0 <= b < ny and self.free[a, b]):
                    continue
                if di and dj and not (self.free[a, j] and self.free[i, b]):
                    continue
                nd = d + step * (math.sqrt(2.0) if di and dj else 1.0)
                if nd < dist[a, b]:
                    dist[a, b] = nd
                    prev[(a, b)] = (i, j)
                    heapq.heappush(heap, (nd, (a, b)))
        return dist, prev

    def clear_line(self, a: np.ndarray, b: np.ndarray) -> bool:
        """True if every grid point nearest to the segment ``a``-``b`` (sampled every half
        step) is free."""
        step = float(self.xs[1] - self.xs[0]) if len(self.xs) > 1 else 1.0
        n = max(2, int(np.linalg.norm(b - a) / (step / 2)) + 1)
        t = np.linspace(0.0, 1.0, n)[:, None]
        pts = a + t * (b - a)
        i = np.clip(np.rint((pts[:, 0] - self.xs[0]) / step).astype(int), 0, len(self.xs) - 1)
        j = np.clip(np.rint((pts[:, 1] - self.ys[0]) / step).astype(int), 0, len(self.ys) - 1)
        return bool(self.free[i, j].all())


def far_route(
    grid: FreeGrid, rng: np.random.Generator, max_length: float, min_length: float = 1.5
) -> np.ndarray | None:
    """Waypoints (K, 2) of a route from a random free point to a point among the farthest it
    can walk to within ``max_length`` metres (at least 85% of that farthest distance), turned
    into straight legs between the points where it must turn; None when the start cannot walk
    ``min_length``."""
    cells = np.argwhere(grid.free)
    if len(cells) < 2:
        return None
    src = tuple(int(v) for v in cells[int(rng.integers(len(cells)))])
    dist, prev = grid.distances(src)
    ok = np.isfinite(dist) & (dist <= max_length)
    reach = float(dist[ok].max())
    if reach < min_length:
        return None
    ends = np.argwhere(ok & (dist >= 0.85 * reach))
    end = tuple(int(v) for v in ends[int(rng.integers(len(ends)))])
    route = [end]
    while route[-1] != src:
        route.append(prev[route[-1]])
    pts = np.array([grid.point(ij) for ij in reversed(route)])
    keep = [0]
    while keep[-1] < len(pts) - 1:
        k = keep[-1]
        m = len(pts) - 1
        while m > k + 1 and not grid.clear_line(pts[k], pts[m]):
            m -= 1
        keep.append(m)
    return pts[keep]
