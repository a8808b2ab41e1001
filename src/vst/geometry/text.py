"""The VST 3D-detection answer text: boxes <-> a fenced JSON list.

Format (FACTS.md, byte-compatible with released VST models)::

    ```json
    [
      {"bbox_3d": [-0.16, 0.12, 1.56, 0.44, 0.51, 0.41, 0.11, 0.28, 0.05], "label": "printer"},
      {"bbox_3d": [0.4, -0.02, 1.96, 0.45, 0.51, 0.36, 0.11, 0.27, 0.05], "label": "printer"}
    ]
    ```

``bbox_3d`` is ``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]``: centre and sizes in
metres, angles (scipy extrinsic ``"xyz"``, see :mod:`vst.geometry.boxes`) in degrees divided by
180, so in [-1, 1]. Every value is rounded to 2 decimals. In code, boxes are canonical ``(N, 9)``
arrays with angles in DEGREES.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from vst.geometry.boxes import as_boxes

__all__ = ["ANGLE_SCALE", "DECIMALS", "box3d_from_text", "box3d_to_text", "wrap_degrees"]

ANGLE_SCALE = 180.0
"""Angles are written as degrees / ANGLE_SCALE."""

DECIMALS = 2
"""Every written value is rounded to this many decimals."""

_FENCE_RE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)(.*?)```", re.DOTALL)
_OBJECT_RE = re.compile(r"\{[^{}]*\}")


def wrap_degrees(angles: ArrayLike) -> np.ndarray:
    """Wrap angles in degrees into (-180, 180]."""
    a = np.asarray(angles, dtype=np.float64)
    return a - 360.0 * np.ceil((a - 180.0) / 360.0)


def _fmt(values: np.ndarray) -> list[float]:
    """Round to :data:`DECIMALS` and turn ``-0.0`` into ``0.0``."""
    return [round(float(v), DECIMALS) + 0.0 for v in values]


def box3d_to_text(boxes: ArrayLike, labels: Sequence[str] | str) -> str:
    """VST answer text for canonical boxes (N, 9) (degrees) and their N labels.

    Returns a fenced ```json block with one ``{"bbox_3d": [...], "label": ...}`` per line;
    angles are wrapped into (-180, 180], divided by 180; all values rounded to 2 decimals.
    """
    if isinstance(labels, str):
        labels = [labels]
    labels = list(labels)
    arr = np.asarray(boxes, dtype=np.float64)
    arr = np.zeros((0, 9)) if arr.size == 0 else as_boxes(arr)
    if arr.shape[0] != len(labels):
        raise ValueError(f"got {arr.shape[0]} boxes but {len(labels)} labels")
    if not np.all(np.isfinite(arr)):
        raise ValueError("boxes must be finite to be written as JSON")
    for i, label in enumerate(labels):
        if not isinstance(label, str):
            raise ValueError(f"labels[{i}] must be a str, got {type(label).__name__}")
    if arr.shape[0] == 0:
        return "```json\n[]\n```"
    lines = []
    for box, label in zip(arr, labels, strict=True):
        values = _fmt(np.concatenate([box[:6], wrap_degrees(box[6:9]) / ANGLE_SCALE]))
        lines.append("  " + json.dumps({"bbox_3d": values, "label": label}))
    return "```json\n[\n" + ",\n".join(lines) + "\n]\n```"


def loads_or_none(payload: str) -> Any:
    """JSON value of ``payload``, or ``None`` if it does not parse (bad JSON, integers past the
    digit limit, too deep nesting). Shared with :mod:`vst.rewards.parsing`."""
    try:
        return json.loads(payload)
    except (ValueError, RecursionError, MemoryError):
        return None


def parse_json_region(region: str) -> Any:
    """A JSON list or dict from ``region`` (whole, then ``[`` ... ``]``, then ``{`` ... ``}``),
    or ``None``."""
    value = loads_or_none(region.strip())
    if isinstance(value, list | dict):
        return value
    for open_, close in (("[", "]"), ("{", "}")):
        start, end = region.find(open_), region.rfind(close)
        if 0 <= start < end:
            value = loads_or_none(region[start : end + 1])
            if isinstance(value, list | dict):
                return value
    return None


def _extract(text: str) -> tuple[Any, str]:
    """The answer's JSON value (``None`` if unparsable) and the region it was looked for in.

    Tries the last fenced block tagged ``json`` (or untagged), then the whole text.
    """
    blocks = [m.group(2) for m in _FENCE_RE.finditer(text) if m.group(1).lower() in ("", "json")]
    regions = [blocks[-1], text] if blocks else [text]
    for region in regions:
        value = parse_json_region(region)
        if value is not None:
            return value, region
    return None, regions[0]


def is_finite_number(v: Any) -> bool:
    """A finite int/float within float range (booleans are not numbers)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return False
    try:
        return math.isfinite(v)
    except OverflowError:  # an int beyond float range
        return False


def _entry(item: Any) -> tuple[np.ndarray, str]:
    """Box (9,) in degrees and label of one parsed entry; ValueError saying why it is bad."""
    if not isinstance(item, dict):
        raise ValueError(f"not an object but {type(item).__name__}")
    missing = [k for k in ("bbox_3d", "label") if k not in item]
    if missing:
        raise ValueError(f"missing key(s) {missing}")
    bbox, label = item["bbox_3d"], item["label"]
    if not isinstance(bbox, list):
        raise ValueError(f"bbox_3d is {type(bbox).__name__}, not a list")
    if len(bbox) != 9:
        raise ValueError(f"bbox_3d has {len(bbox)} values, expected 9")
    bad = [i for i, v in enumerate(bbox) if not is_finite_number(v)]
    if bad:
        raise ValueError(f"bbox_3d values at positions {bad} are not finite numbers")
    if not isinstance(label, str):
        raise ValueError(f"label is {type(label).__name__}, not a str")
    box = np.asarray(bbox, dtype=np.float64)
    box[6:9] *= ANGLE_SCALE
    return box, label


def box3d_from_text(text: str, strict: bool = False) -> tuple[np.ndarray, list[str]]:
    """Parse VST answer text into canonical boxes (N, 9) (angles in DEGREES) and N labels.

    Reads the last fenced ``json`` block, or failing that the outermost ``[...]`` of the text; a
    single ``{...}`` entry is accepted too. Angles are multiplied by 180. With ``strict=False``
    malformed entries (not 9 numbers, missing keys, ...) are skipped, objects are salvaged from a
    truncated list, and text without any parsable answer gives an empty (0, 9) array. With
    ``strict=True`` those cases raise ValueError naming the entry and the reason.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    value, region = _extract(text)
    if value is None:
        if strict:
            raise ValueError("no parsable JSON list of boxes found in the text")
        # Salvage complete {...} entries, e.g. from an answer cut off mid-list.
        value = [v for m in _OBJECT_RE.finditer(region) if (v := loads_or_none(m.group(0)))]
    items = [value] if isinstance(value, dict) else value
    boxes: list[np.ndarray] = []
    labels: list[str] = []
    for i, item in enumerate(items):
        try:
            box, label = _entry(item)
        except ValueError as exc:
            if strict:
                raise ValueError(f"entry {i}: {exc}") from None
            continue
        boxes.append(box)
        labels.append(label)
    if not boxes:
        return np.zeros((0, 9), dtype=np.float64), labels
    return np.stack(boxes), labels
