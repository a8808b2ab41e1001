"""Pieces both 3D-detection tasks share (single-image and multi-view): answer order, answer
text and the reward's ground-truth boxes of one category's turn."""

from __future__ import annotations

import numpy as np

from vst.geometry.text import box3d_to_text, wrap_degrees


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


def category_answer(
    label: str, object_ids: list[int], boxes: np.ndarray
) -> tuple[list[int], str, list[dict]]:
    """One category's turn: its object ids ordered near to far, the answer text (fenced VST
    JSON, 2 decimals, angles / 180) and the reward's ground truth (full precision, degrees)."""
    order = answer_order(boxes, object_ids)
    ordered = np.asarray(boxes, dtype=np.float64)[order]
    text = box3d_to_text(ordered, [label] * len(order))
    truth = [{"bbox_3d": b, "label": label} for b in box_list(ordered)]
    return [object_ids[i] for i in order], text, truth
