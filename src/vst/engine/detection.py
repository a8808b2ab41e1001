"""Pieces both 3D-detection tasks share (single-image and multi-view): the categories a sample
asks about, answer order, answer text and the reward's ground-truth boxes of one category's turn,
and the re-derivation of the last turn's answer."""

from __future__ import annotations

import numpy as np

from vst.geometry.boxes import world_boxes_to_camera
from vst.geometry.text import box3d_to_text, wrap_degrees
from vst.scenes.model import Frame, Scene


def turn_sequence(
    categories: list[str],
    last: str,
    rng: np.random.Generator,
    multi_turn_fraction: float,
    max_turns: int,
) -> list[str]:
    """The categories a sample asks about, in order, ending with ``last``: with probability
    ``multi_turn_fraction`` (when there are others) 2..``max_turns`` distinct ones."""
    others = [c for c in categories if c != last]
    if not others or rng.random() >= multi_turn_fraction:
        return [last]
    n_turns = int(rng.integers(2, min(max_turns, len(others) + 1) + 1))
    picked = rng.choice(len(others), size=n_turns - 1, replace=False)
    return [others[int(i)] for i in picked] + [last]


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


def derive_turn_answer(scene: Scene, frame: Frame, turn: dict) -> str:
    """A turn's answer text re-derived from the scene's boxes moved into ``frame``'s camera
    (ValueError if a listed object is not of the turn's category)."""
    ids = [int(i) for i in turn["object_ids"]]
    index = {o.id: i for i, o in enumerate(scene.objects)}
    for oid in ids:
        if scene.objects[index[oid]].label != turn["label"]:
            raise ValueError(f"object {oid} is not a {turn['label']!r}")
    boxes = world_boxes_to_camera(scene.boxes[[index[i] for i in ids]], frame.world_to_cam)
    return category_answer(turn["label"], ids, boxes)[1]
