"""Image files of the viewer site: the stored images written once, and 3D-detection figures.

* :class:`MediaStore` writes encoded bytes under ``SITE/media/`` named by their content
  (BLAKE2b, 16 hex digits): a video frame shared by every sample of its clip is one file, a
  rerun finds the file already there and does not write it again (resumable, incremental).
* :func:`det3d_figures` draws a ``det3d`` sample's answer boxes on its first image (the boxes
  are in camera 1's frame: X right, Y down, Z forward, metres) with the stored image's exact
  intrinsics (``meta["intrinsics"]`` of the source camera scaled to the stored size,
  :meth:`~vst.geometry.cameras.Intrinsics.scaled`), and renders the bird's-eye view of the
  camera frame (:func:`vst.geometry.bev.render_bev`). Boxes come from the answer text through
  the reward parser (:func:`vst.rewards.parsing.parse_boxes3d`: angles read back in degrees).

Overlays are JPEG (photos), BEVs PNG; both without metadata, so the same inputs give the same
bytes.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vst.atomic import atomic_write_bytes
from vst.engine.writer import image_extension
from vst.geometry.bev import BEV_COLORS, display_labels, render_bev
from vst.geometry.cameras import Intrinsics
from vst.geometry.overlay import draw_boxes
from vst.rewards.parsing import parse_boxes3d

__all__ = ["MediaStore", "det3d_camera", "det3d_figures", "jpeg_bytes", "png_bytes"]


class MediaStore:
    """Content-addressed files under ``root`` (``SITE/media``); paths returned are relative to
    the site root (``media/ab/abcdef0123456789.jpg``)."""

    def __init__(self, site: Path):
        self.site = site
        self.written = 0
        self.reused = 0

    def put(self, data: bytes, ext: str | None = None) -> str:
        """Write ``data`` once (skipped when the file exists); return its site-relative path."""
        digest = hashlib.blake2b(data, digest_size=8).hexdigest()
        rel = f"media/{digest[:2]}/{digest}.{ext or image_extension(data)}"
        target = self.site / rel
        if target.exists():
            self.reused += 1
        else:
            atomic_write_bytes(target, data)
            self.written += 1
        return rel


def png_bytes(image: Image.Image) -> bytes:
    """``image`` as PNG bytes, no metadata (deterministic)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def jpeg_bytes(image: Image.Image, quality: int = 90) -> bytes:
    """``image`` as baseline JPEG bytes (deterministic for one Pillow / libjpeg build)."""
    buf = io.BytesIO()
    image.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def det3d_camera(meta: dict[str, Any], width: int, height: int) -> Intrinsics | None:
    """Exact intrinsics of a det3d sample's first stored image (``width`` x ``height``), from
    ``meta["intrinsics"]`` (one dict, or one per image for ``mi_det3d``); None if absent."""
    intr = meta.get("intrinsics")
    if isinstance(intr, list):
        intr = intr[0] if intr else None
    if not isinstance(intr, dict):
        return None
    try:
        source = Intrinsics(**{k: intr[k] for k in ("fx", "fy", "cx", "cy", "width", "height")})
    except (KeyError, TypeError, ValueError):
        return None
    return source.scaled(width, height)


def det3d_figures(
    answer: str, image_bytes: bytes, meta: dict[str, Any], title: str
) -> tuple[bytes, bytes] | None:
    """``(overlay JPEG, BEV PNG)`` of the boxes in ``answer`` (a VST box answer) on the image
    ``image_bytes``; None when the sample records no camera."""
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    camera = det3d_camera(meta, image.width, image.height)
    if camera is None:
        return None
    boxes, labels = parse_boxes3d(answer)
    shown = display_labels(labels)
    colors = [BEV_COLORS[i % len(BEV_COLORS)] for i in range(len(labels))]
    overlay = draw_boxes(image, boxes if len(labels) else np.zeros((0, 9)), shown, camera, colors)
    bev = render_bev(
        boxes if len(labels) else np.zeros((0, 9)),
        labels,
        cameras=[np.eye(4)],
        intrinsics=camera,
        colors=colors,
        title=title,
    )
    bev = bev.resize((400, 400), Image.Resampling.LANCZOS)
    return jpeg_bytes(overlay), png_bytes(bev)
