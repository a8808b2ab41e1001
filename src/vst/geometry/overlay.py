"""3D boxes drawn on a camera's image: the 12 edges of each box, clipped and projected, labelled.

Boxes are camera-frame 9-DoF boxes (:mod:`vst.geometry.boxes`: X right, Y down, Z forward,
metres, degrees). Each edge is first clipped to the half-space ``z >= near`` in front of the
camera (an edge crossing the camera plane is cut where it crosses ``z = near``; an edge wholly
behind is dropped), then projected with the camera's ``K`` (OpenCV pixel centres, see
:mod:`vst.geometry.cameras`), then clipped in 2D to a band of one image size around the image,
which keeps the coordinates handed to Pillow small. Pixel coordinates are rounded to the nearest
pixel (Pillow truncates them).

API: :func:`clip_segment_front`, :func:`clip_segment_to_rect` (also used by the scene contact
sheets), :func:`box_segments`, :func:`draw_boxes` and :func:`label_font`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_rgb
from numpy.typing import ArrayLike
from PIL import Image, ImageDraw, ImageFont

from vst.geometry.boxes import BOX_EDGES, as_boxes, box3d_corners
from vst.geometry.cameras import Intrinsics

__all__ = [
    "NEAR_PLANE",
    "box_segments",
    "clip_segment_front",
    "clip_segment_to_rect",
    "draw_boxes",
    "label_font",
]

NEAR_PLANE = 0.05
"""Depth (metres) in front of the camera at which box edges are cut before projection."""

Point2 = tuple[float, float]


def label_font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    """Pillow's default font at ``size`` px (the bitmap font on Pillow < 10.1)."""
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def clip_segment_front(
    p: np.ndarray, q: np.ndarray, near: float = NEAR_PLANE
) -> tuple[np.ndarray, np.ndarray] | None:
    """The part of camera-frame segment ``p``-``q`` with ``z >= near``; None if all behind."""
    if p[2] < near and q[2] < near:
        return None
    if p[2] < near:
        p = p + (near - p[2]) / (q[2] - p[2]) * (q - p)
    elif q[2] < near:
        q = q + (near - q[2]) / (p[2] - q[2]) * (p - q)
    return p, q


def clip_segment_to_rect(
    a: Sequence[float], b: Sequence[float], w: float, h: float
) -> tuple[Point2, Point2] | None:
    """Liang-Barsky clip of 2D segment ``a``-``b`` to ``[-w, 2w] x [-h, 2h]`` (a band of one
    image size around a ``w`` x ``h`` image); None if it misses the band."""
    x0, y0, x1, y1 = -w, -h, 2 * w, 2 * h
    dx, dy = b[0] - a[0], b[1] - a[1]
    t0, t1 = 0.0, 1.0
    for pp, qq in ((-dx, a[0] - x0), (dx, x1 - a[0]), (-dy, a[1] - y0), (dy, y1 - a[1])):
        if pp == 0:
            if qq < 0:
                return None
            continue
        r = qq / pp
        if pp < 0:
            t0 = max(t0, r)
        else:
            t1 = min(t1, r)
        if t0 > t1:
            return None
    return (a[0] + t0 * dx, a[1] + t0 * dy), (a[0] + t1 * dx, a[1] + t1 * dy)


def box_segments(
    box: ArrayLike, camera: Intrinsics, near: float = NEAR_PLANE
) -> list[tuple[Point2, Point2]]:
    """The drawable 2D edges ``((u0, v0), (u1, v1))`` (OpenCV pixels) of one camera-frame box
    (9,) seen by ``camera``: clipped to ``z >= near``, projected, clipped to the band around the
    image (see the module docstring). Empty when the box is behind the camera or far outside."""
    corners = box3d_corners(as_boxes(box)[:1])[0]
    K = camera.K
    out = []
    for a, b in BOX_EDGES:
        seg = clip_segment_front(corners[a], corners[b], near)
        if seg is None:
            continue
        uv = [(K @ p)[:2] / p[2] for p in seg]
        if not all(np.all(np.isfinite(x)) for x in uv):
            continue
        clipped = clip_segment_to_rect(uv[0], uv[1], camera.width, camera.height)
        if clipped is not None:
            out.append(clipped)
    return out


def _rgb(color: str | Sequence[float]) -> tuple[int, int, int]:
    r, g, b = to_rgb(color)
    return round(r * 255), round(g * 255), round(b * 255)


def draw_boxes(
    image: Image.Image,
    boxes: ArrayLike,
    labels: Sequence[str],
    camera: Intrinsics,
    colors: Sequence[str | Sequence[float]],
    line_width: int | None = None,
    near: float = NEAR_PLANE,
) -> Image.Image:
    """A copy of ``image`` (RGB, ``camera``'s size) with each camera-frame box of ``boxes``
    (N, 9) drawn as its projected edges in ``colors[i]`` (any matplotlib colour: a name, hex, or
    an RGB triple of floats in [0, 1]) and labelled ``labels[i]`` (white text on the box's
    colour, above the box's highest drawn point). Labels are drawn first, edges over them, so
    every edge pixel shows its box's colour. ``line_width`` defaults to ~1/300 of the image
    diagonal (at least 2 px)."""
    if image.size != (camera.width, camera.height):
        raise ValueError(f"image size {image.size} != camera size {camera.width}x{camera.height}")
    arr = as_boxes(boxes) if np.size(boxes) else np.zeros((0, 9))
    if not len(arr) == len(labels) == len(colors):
        raise ValueError(f"got {len(arr)} boxes, {len(labels)} labels, {len(colors)} colours")
    out = image.convert("RGB") if image.mode != "RGB" else image.copy()
    draw = ImageDraw.Draw(out)
    diag = float(np.hypot(out.width, out.height))
    width = line_width or max(2, round(diag / 300))
    font = label_font(max(11, round(diag / 70)))
    rgbs = [_rgb(c) for c in colors]
    drawn = []
    for box, label, rgb in zip(arr, labels, rgbs, strict=True):
        segs = [
            ((round(a[0]), round(a[1])), (round(b[0]), round(b[1])))
            for a, b in box_segments(box, camera, near)
        ]
        drawn.append(segs)
        if not segs:
            continue
        pts = np.array([p for s in segs for p in s], dtype=np.float64)
        top = pts[np.argmin(pts[:, 1])]
        x0, y0, x1, y1 = draw.textbbox((0, 0), label, font=font)
        tw, th = x1 - x0, y1 - y0
        x = float(np.clip(top[0] - tw / 2, 0, max(out.width - tw - 4, 0)))
        y = float(np.clip(top[1] - th - 2 * width - 4, 0, max(out.height - th - 4, 0)))
        draw.rectangle((x, y, x + tw + 4, y + th + 4), fill=rgb)
        draw.text((x + 2 - x0, y + 2 - y0), label, fill=(255, 255, 255), font=font)
    for segs, rgb in zip(drawn, rgbs, strict=True):
        for a, b in segs:
            draw.line((a, b), fill=rgb, width=width)
    return out
