"""Pieces both 3D-detection tasks share (single-image and multi-view): answer order and the
reward's ground-truth boxes."""

from __future__ import annotations

import numpy as np

from vst.geometry.text import wrap_degrees


def answer_order(boxes: np.ndarray, object_ids: list[int]) -> list[int]:
    """Indices sorting boxes near to far along the reference camera's Z (centre z), then by
    object id."""
    return sorted(range(len(object_ids)), key=lambda i: (float(boxes[i][2]), object_ids[i]))


def box_list(boxes: np.ndarray) -> list[list[float]]:
    """Boxes (N, 9) as lists, angles wrapped into (-180, 180] degrees (full precision)."""
    out = []
    for box in np.asarray(boxes, dtype=np.float64):
        b = box.copy()
        b[6:9] = wrap_degrees(b[6:9])
        out.append([float(v) for v in b])
    return out
