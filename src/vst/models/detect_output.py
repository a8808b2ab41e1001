"""What ``vst detect`` writes: ``detections.json``, ``overlay.png`` and ``bev.png``.

* ``overlay.png``: the ORIGINAL image with every box's 12 edges (clipped in front of the
  camera, projected with the original intrinsics: :func:`vst.geometry.overlay.draw_boxes`),
  labelled with its label, numbered when repeated ("chair 1", "chair 2").
* ``bev.png``: the top view of the camera frame (:func:`vst.geometry.bev.render_bev`: X right,
  Z forward up the page) with the camera's FoV; box colours match the overlay.
* ``detections.json``: the cameras (original and the one the model saw,
  :meth:`~vst.models.detect.DetectionFrame.meta`), then per category the prompt, the model's
  raw answer, an error if the request failed, notes, and the boxes
  (:meth:`~vst.models.detect.Detection.to_json`: the 9 numbers as given, the metric box, the
  2D corners in the original image).

Files are written atomically (:mod:`vst.atomic`); PNGs without metadata, so the same inputs
give the same bytes.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vst.atomic import atomic_write_bytes
from vst.geometry.bev import BEV_COLORS, display_labels, render_bev
from vst.geometry.overlay import draw_boxes
from vst.models.detect import DetectionFrame, Detections

__all__ = ["CategoryResult", "detections_json", "render_outputs", "write_outputs"]


@dataclass(frozen=True)
class CategoryResult:
    """One category's request and answer: its prompt text, the model's raw text (``""`` if it
    failed), the error (one line) if it failed, and the parsed boxes in the ORIGINAL camera."""

    category: str
    prompt: str
    text: str
    error: str | None
    parsed: Detections


def _all(results: Sequence[CategoryResult]) -> tuple[np.ndarray, list[str]]:
    boxes = [d.box for r in results for d in r.parsed.detections]
    labels = [d.label for r in results for d in r.parsed.detections]
    return (np.stack(boxes) if boxes else np.zeros((0, 9))), labels


def _colors(n: int) -> list[str]:
    return [BEV_COLORS[i % len(BEV_COLORS)] for i in range(n)]


def detections_json(
    frame: DetectionFrame, results: Sequence[CategoryResult], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The ``detections.json`` record (see the module docstring); ``extra`` (model, sampling,
    image path) is merged in first."""
    return {
        **(extra or {}),
        **frame.meta(),
        "conventions": (
            "camera frame X right, Y down, Z forward, metres; bbox_3d = [x, y, z, x_size, "
            "y_size, z_size, pitch, yaw, roll] as the model wrote it (angles in degrees / 180); "
            "rotation = extrinsic x, y, z Euler angles (R = Rz(roll) Ry(yaw) Rx(pitch)); "
            "corners_2d = pixels (u = column, v = row, OpenCV centres) of the original image, "
            "null behind the camera"
        ),
        "categories": [
            {
                "category": r.category,
                "prompt": r.prompt,
                "answer": r.text,
                "error": r.error,
                "notes": list(r.parsed.notes),
                "boxes": [d.to_json() for d in r.parsed.detections],
            }
            for r in results
        ],
    }


def render_outputs(
    original: Image.Image, frame: DetectionFrame, results: Sequence[CategoryResult]
) -> tuple[Image.Image, Image.Image]:
    """The overlay (boxes on ``original``, the image of ``frame.camera``) and the BEV image."""
    boxes, labels = _all(results)
    names = display_labels(labels)
    colors = _colors(len(boxes))
    overlay = draw_boxes(original.convert("RGB"), boxes, names, frame.camera, colors)
    bev = render_bev(
        boxes,
        labels,
        cameras=np.eye(4),
        intrinsics=frame.camera,
        colors=colors,
        title="Detections: top view of the camera frame",
    )
    return overlay, bev


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def write_outputs(
    out_dir: Path,
    original: Image.Image,
    frame: DetectionFrame,
    results: Sequence[CategoryResult],
    extra: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write ``detections.json``, ``overlay.png`` and ``bev.png`` into ``out_dir`` (created);
    returns their paths by name."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    overlay, bev = render_outputs(original, frame, results)
    record = detections_json(frame, results, extra)
    paths = {
        "detections": out_dir / "detections.json",
        "overlay": out_dir / "overlay.png",
        "bev": out_dir / "bev.png",
    }
    # ASCII: a model's text may hold lone surrogates, which UTF-8 cannot encode
    text = json.dumps(record, indent=2, ensure_ascii=True, allow_nan=False) + "\n"
    atomic_write_bytes(paths["detections"], text.encode("utf-8"))
    atomic_write_bytes(paths["overlay"], _png(overlay))
    atomic_write_bytes(paths["bev"], _png(bev))
    return paths
