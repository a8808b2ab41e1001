"""Hostile model outputs for the reward tests and ``benchmarks/rewards.py``: 1 MB answers built to
hit the costly paths of text parsing (combining-mark runs for NFKC, regex backtracking, deep
nesting, end-token stripping, many boxes), and a plain answer per reward mode as the baseline."""

from __future__ import annotations

import json

__all__ = ["BOX", "REWARD_SPECS", "hostile_answers", "normal_answers"]

BOX = {"bbox_3d": [0.1, 0.2, 3.0, 1.0, 1.0, 1.0, 0.01, 0.02, 0.03], "label": "chair"}
"""One 3D box answer entry (angles written as degrees / 180)."""

REWARD_SPECS: dict[str, dict] = {
    "mcq": {"mode": "mcq", "ground_truth": "B"},
    "exact": {"mode": "exact", "ground_truth": "front-left"},
    "numeric": {"mode": "numeric", "ground_truth": 2.35},
    "order": {"mode": "order", "ground_truth": ["point-A", "point-C", "point-B"]},
    "ocr": {"mode": "ocr", "ground_truth": "ITC Limited"},
    "math": {"mode": "math", "ground_truth": r"\frac{1}{2}"},
    "det3d": {"mode": "det3d", "ground_truth": [BOX]},
}
"""One reward spec per checkable mode (as the data engine writes them)."""


def normal_answers() -> dict[str, str]:
    """A correct, ordinary answer (after ``</think>``) for each spec of :data:`REWARD_SPECS`."""
    return {
        "mcq": "B. northwest",
        "exact": "front left",
        "numeric": "2.35 m",
        "order": "point-A, point-C, point-B",
        "ocr": "ITC Limited",
        "math": r"\boxed{0.5}",
        "det3d": "```json\n" + json.dumps([BOX]) + "\n```",
    }


def _fill(piece: str, size: int) -> str:
    return (piece * (size // len(piece) + 1))[:size]


def hostile_answers(size: int = 1_000_000) -> dict[str, str]:
    """Named answers of ``size`` characters (``boxes``: about ``size``)."""
    box = json.dumps(BOX)
    return {
        "combining": _fill("\u0301\u0316", size),  # quadratic NFKC reordering (issue 11)
        "tibetan": _fill("\u0f73", size),  # a starter decomposing into two marks
        "surrogates": _fill("\ud800", size),
        "nul": _fill("\x00", size),
        "rtl": _fill("\u202e\u200f", size),
        "digits": _fill("9", size),
        "exponents": _fill("1e999 ", size),
        "brackets": "[" * (size // 2) + "]" * (size // 2),
        "braces": _fill('{"a":', size),
        "boxed": _fill("\\boxed{", size),
        "fences": _fill("```", size),
        "end_tokens": _fill("</s>", size),
        "lt_spaces": "<" + " " * (size - 1),
        "think_tags": _fill("<think>", size),
        "letter_lines": _fill("A\n", size),
        "tuples": _fill("(1,", size),
        "cues": _fill("the answer is ", size),
        "units": _fill("1 square ", size),
        "boxes": "[" + ", ".join([box] * (size // (len(box) + 2))) + "]",
        "mixed": _fill("A\u0301 1,2 (3) [4] {5} \\boxed{6 \u202e\x00 answer: B.\n", size),
    }
