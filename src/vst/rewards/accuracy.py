"""Accuracy per reward mode, each in [0, 1], on the *answer* part of a response (after
``</think>``; see :func:`vst.rewards.parsing.split_think`). Every function is deterministic and
never raises on any answer string; malformed ground truths raise ``ValueError`` (they are data
bugs, not model output).

* :func:`mcq_accuracy` — 1 iff exactly one option label is extracted and it is the right one
  (every engine answer style: ``"B"``, ``"B. northwest"``, ``"B: point-B"``, ``"2. box-A"``).
* :func:`exact_accuracy` — normalised exact match (any of several accepted answers); for a
  ``{"label", "bbox_2d"}`` ground truth (the engine's 2D grounding variant) the label must match
  and the score is the 2D IoU of the boxes.
* :func:`numeric_accuracy` — VSI-Bench MRA by default, or 1/0 within a relative tolerance;
  units converted to the ground truth's unit when both are known.
* :func:`order_accuracy` — 1 iff the sequence of handles/names equals the ground truth's.
* :func:`anls` / :func:`ocr_accuracy` — ANLS (1 - normalised edit distance, 0 below 0.5).
* :func:`math_accuracy` — math-verify if installed, otherwise normalised comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from vst.eval.metrics import mra
from vst.geometry.text import is_finite_number
from vst.rewards.bounds import clip_answer, safe_nfkc
from vst.rewards.parsing import (
    Quantity,
    convert_unit,
    extract_boxed,
    extract_choice,
    extract_json,
    final_answer,
    normalize_text,
    options_map,
    parse_quantity,
    parse_sequence,
    parse_unit,
    sequence_token,
    split_choice,
)

__all__ = [
    "ANLS_THRESHOLD",
    "anls",
    "exact_accuracy",
    "levenshtein",
    "math_accuracy",
    "mcq_accuracy",
    "numeric_accuracy",
    "ocr_accuracy",
    "order_accuracy",
]

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# --------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------


def mcq_accuracy(answer: str, ground_truth: str, options: Any = None) -> float:
    """1.0 iff :func:`~vst.rewards.parsing.extract_choice` finds exactly one option label and
    it is the ground truth's.

    ``ground_truth``: every form the data engine writes — a letter (``"B"``, ``"(B)"``), the
    paper's ``"B. northwest"`` / correspondence ``"B: point-B"``, an option number (``"2"``,
    ``"(2)"``, ``"2. box-A"``: the options are then numbered, and a letter is no answer), or an
    option's text when ``options`` are given.

    ``options``: option texts, a list in label order or a label-keyed dict (optional; the engine
    puts them in the question). With them, or with a ground truth that carries its option's
    text, the answer may be the option text alone, and a label followed by text must name that
    option's text: ``"A. northwest"`` and ``"B. southeast"`` score 0 against ``"B. northwest"``.
    Without any option text the label alone decides (``"B. southeast"`` scores 1 against
    ``"B"``: nothing says B is not southeast). Every answer style the engine writes (``"B"``,
    ``"B. northwest"``, ``"B: point-B"``, ``"2"``, ``"2. box-A"``) scores 1 against its own
    ground truth.
    """
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise ValueError(f"mcq ground truth must be a non-empty str, got {ground_truth!r}")
    numbered = False
    parts = split_choice(ground_truth)
    if parts is None:
        parts = split_choice(ground_truth, numbered=True)
        numbered = parts is not None
    if parts is None:
        label = extract_choice(ground_truth, options) if options is not None else None
        if label is None:
            raise ValueError(f"mcq ground truth {ground_truth!r} is not an option label")
        parts = (label, "")
    label, text = parts
    if text:  # the ground truth names its option's text: answers are held to it
        known = options_map(options, numbered)
        known.setdefault(label, text)
        options = known
    return 1.0 if extract_choice(answer, options, numbered=numbered) == label else 0.0


# --------------------------------------------------------------------------------------------
# open-ended exact match
# --------------------------------------------------------------------------------------------


def _box2d_iou(a: Sequence[float], b: Sequence[float]) -> float:
    """IoU of two ``[x1, y1, x2, y2]`` boxes (0 for degenerate or non-finite boxes)."""
    ax1, ay1, ax2, ay2 = (float(v) for v in a)
    bx1, by1, bx2, by2 = (float(v) for v in b)
    with np.errstate(all="ignore"):
        area_a = (ax2 - ax1) * (ay2 - ay1)
        area_b = (bx2 - bx1) * (by2 - by1)
        iw = min(ax2, bx2) - max(ax1, bx1)
        ih = min(ay2, by2) - max(ay1, by1)
        if not (ax2 > ax1 and ay2 > ay1 and bx2 > bx1 and by2 > by1) or iw <= 0 or ih <= 0:
            return 0.0
        inter = iw * ih
        union = area_a + area_b - inter
    if not all(math.isfinite(v) for v in (inter, union)) or union <= 0:
        return 0.0
    return float(min(1.0, max(0.0, inter / union)))


def _labelled_box(answer: str) -> tuple[str, list[float]] | None:
    """``(label, [x1, y1, x2, y2])`` from ``"label: [x1, y1, x2, y2]"`` or JSON
    ``{"label": ..., "bbox_2d": [...]}`` (or a one-element list of it)."""
    value = extract_json(answer)
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, dict):
        label, box = value.get("label"), value.get("bbox_2d")
        ok = isinstance(label, str) and isinstance(box, list) and len(box) == 4
        if ok and all(is_finite_number(v) for v in box):
            return label, [float(v) for v in box]
        return None
    text = answer.replace("```", " ").strip().rstrip(".").rstrip()
    start = text.rfind("[")
    if start < 0 or not text.endswith("]") or "[" in text[start + 1 :]:
        return None
    label = text[:start].strip().rstrip(":-").strip()
    if any(c in label for c in "[]{}"):
        return None
    try:
        nums = [float(v) for v in text[start + 1 : -1].split(",")]
    except (ValueError, OverflowError):
        return None
    if len(nums) != 4 or not all(math.isfinite(v) for v in nums):
        return None
    return label, nums


def exact_accuracy(answer: str, ground_truth: Any) -> float:
    """Normalised exact match (:func:`~vst.rewards.parsing.normalize_text`) of the answer's
    :func:`~vst.rewards.parsing.final_answer` with the ground truth (a string, or a list of
    accepted strings: 1.0 if any matches).

    A ``{"label": str, "bbox_2d": [x1, y1, x2, y2]}`` ground truth (the engine's
    ``si_grounding3d`` 2D variant, answered as ``"label: [x1, y1, x2, y2]"``) scores the 2D IoU
    of the boxes when the label matches, else 0 (pixel-exact boxes are not expected)."""
    if isinstance(ground_truth, Mapping):
        label, box = ground_truth.get("label"), ground_truth.get("bbox_2d")
        if not isinstance(label, str) or not isinstance(box, list) or len(box) != 4:
            raise ValueError(f"exact dict ground truth needs label and bbox_2d: {ground_truth!r}")
        parsed = _labelled_box(final_answer(answer)) if isinstance(answer, str) else None
        if parsed is None or normalize_text(parsed[0]) != normalize_text(label):
            return 0.0
        return _box2d_iou(parsed[1], box)
    if isinstance(ground_truth, str) or is_finite_number(ground_truth):
        accepted = [ground_truth]
    elif isinstance(ground_truth, Sequence) and ground_truth:
        accepted = list(ground_truth)
    else:
        raise ValueError(f"exact ground truth must be a str or a list of str: {ground_truth!r}")
    if not isinstance(answer, str):
        return 0.0
    pred = normalize_text(final_answer(answer))
    if not pred:
        return 0.0
    return 1.0 if any(pred == normalize_text(g) for g in accepted) else 0.0


# --------------------------------------------------------------------------------------------
# numeric
# --------------------------------------------------------------------------------------------


def _ground_truth_quantity(ground_truth: Any, unit: Any) -> Quantity:
    if is_finite_number(ground_truth):
        value, gt_unit = float(ground_truth), None
    elif isinstance(ground_truth, str):
        q = parse_quantity(ground_truth)
        if q is None:
            raise ValueError(f"numeric ground truth {ground_truth!r} has no number")
        value, gt_unit = q
    else:
        raise ValueError(f"numeric ground truth must be a number or str: {ground_truth!r}")
    if unit is not None:
        gt_unit = parse_unit(unit)
        if gt_unit is None:
            raise ValueError(f"unknown unit {unit!r}")
    return Quantity(value, gt_unit)


def numeric_accuracy(
    answer: str,
    ground_truth: float | str,
    unit: str | None = None,
    tolerance: float | None = None,
) -> float:
    """Score of the number an answer states (:func:`~vst.rewards.parsing.parse_quantity`).

    Ground truth: a number, or a string with a unit (``"120 cm"``); ``unit`` (any spelling:
    ``"cm"``, ``"metres"``, ``"m²"``) overrides. Units: when both the answer and the ground
    truth have one, the answer is converted to the ground truth's unit (``"45 cm"`` vs 0.45 m
    -> 0.45); different dimensions (metres vs square metres) score 0. When only one side has a
    unit the number is taken as written (the engine's bare ground truths are in the unit the
    question asks for).

    Score: with ``tolerance`` (relative, e.g. 0.05), 1.0 iff ``|pred - gt| <= tolerance *
    |gt|``; otherwise VSI-Bench MRA (:func:`vst.eval.metrics.mra`). A zero ground truth needs
    an exact zero. Unparsable answers score 0."""
    gt = _ground_truth_quantity(ground_truth, unit)
    if tolerance is not None and (not is_finite_number(tolerance) or tolerance < 0):
        raise ValueError(f"tolerance must be a finite number >= 0, got {tolerance!r}")
    q = parse_quantity(answer) if isinstance(answer, str) else None
    if q is None:
        return 0.0
    value = q.value
    if q.unit is not None and gt.unit is not None:
        converted = convert_unit(value, q.unit, gt.unit)
        if converted is None:
            return 0.0
        value = converted
    if not math.isfinite(value):
        return 0.0
    if gt.value == 0:
        return 1.0 if value == 0 else 0.0
    if tolerance is not None:
        return 1.0 if abs(value - gt.value) <= tolerance * abs(gt.value) * (1 + 1e-12) else 0.0
    return float(mra(value, gt.value))


# --------------------------------------------------------------------------------------------
# order
# --------------------------------------------------------------------------------------------


def _tokens_equal(a: tuple[str, Any], b: tuple[str, Any]) -> bool:
    if a[0] != b[0]:
        return False
    if a[0] == "n":
        return len(a[1]) == len(b[1]) and all(
            abs(x - y) <= 1e-9 * max(1.0, abs(y)) for x, y in zip(a[1], b[1], strict=True)
        )
    return a[1] == b[1]


def order_accuracy(answer: str, ground_truth: Sequence[Any]) -> float:
    """1.0 iff the answer's sequence equals the ground truth's, item by item, in order.

    Ground truth: the engine's list of handles or names (``["point-C", "point-A"]``,
    ``["trash can", "desk"]``, ``["A", "B"]``) or of coordinate handles (``["(199, 301)", ...]``,
    ``["[590, 194, 614, 239]", ...]``). Answers may separate items by commas, semicolons, new
    lines, arrows, "and"/"then" or (for one-word items) spaces, carry ``(label)`` suffixes after
    handles, or be a JSON list (of strings, or of ``{"point_2d"|"bbox_2d": [...], "label"}``
    objects for coordinate handles, whose coordinates must equal the ground truth's)."""
    if isinstance(ground_truth, str) or not isinstance(ground_truth, Sequence) or not ground_truth:
        raise ValueError(f"order ground truth must be a non-empty list: {ground_truth!r}")
    gt = [sequence_token(item) for item in ground_truth]
    if any(t is None for t in gt):
        raise ValueError(f"order ground truth has an empty or unusable item: {ground_truth!r}")
    numeric = all(t[0] == "n" for t in gt)
    pred = parse_sequence(answer, numeric=numeric, expected_len=len(gt))
    if len(pred) != len(gt):
        return 0.0
    return 1.0 if all(_tokens_equal(p, g) for p, g in zip(pred, gt, strict=True)) else 0.0


# --------------------------------------------------------------------------------------------
# OCR: ANLS
# --------------------------------------------------------------------------------------------

ANLS_THRESHOLD = 0.5
"""Similarities below this score 0 (the ST-VQA / DocVQA threshold)."""


def levenshtein(a: str, b: str) -> int:
    """Edit distance (insertions, deletions, substitutions, each cost 1)."""
    if len(a) < len(b):
        a, b = b, a
    if not b:
        return len(a)
    if len(b) > 64:
        return _levenshtein_numpy(a, b)
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def _levenshtein_numpy(a: str, b: str) -> int:
    """Row-vectorised DP: ``row[j] = min_k<=j (cand[k] + j - k)`` via a running minimum."""
    bb = np.frombuffer(b.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    idx = np.arange(len(b) + 1, dtype=np.int64)
    prev = idx.copy()
    for i, ca in enumerate(a, 1):
        cand = np.empty(len(b) + 1, dtype=np.int64)
        cand[0] = i
        cand[1:] = np.minimum(prev[1:] + 1, prev[:-1] + (bb != ord(ca)))
        prev = np.minimum.accumulate(cand - idx) + idx
    return int(prev[-1])


def _anls_norm(text: str) -> str:
    return " ".join(safe_nfkc(text).strip().lower().split())


def anls(pred: str, answers: str | Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """ANLS of one prediction: the max over accepted answers of ``s = 1 - NL`` where ``NL`` is
    the edit distance over the longer string's length, after lower-casing and collapsing
    whitespace; ``s`` below ``threshold`` (0.5) counts 0 (``s == 0.5`` is kept, as in the
    common implementations). Exact -> 1.0, unrelated -> 0.0, one edit in 10 characters -> 0.9.
    Two empty strings are identical (1.0)."""
    if isinstance(answers, str):
        answers = [answers]
    if not isinstance(pred, str):
        return 0.0
    p = _anls_norm(pred)
    best = 0.0
    for answer in answers:
        if not isinstance(answer, str):
            continue
        g = _anls_norm(answer)
        longest = max(len(p), len(g))
        if longest == 0:
            return 1.0
        # the distance is at least the length difference: skip hopeless pairs cheaply
        if 1.0 - abs(len(p) - len(g)) / longest < threshold:
            continue
        sim = 1.0 - levenshtein(p, g) / longest
        if sim >= threshold and sim > best:
            best = sim
    return best


def ocr_accuracy(answer: str, ground_truth: str | Sequence[str]) -> float:
    """:func:`anls` of the answer's :func:`~vst.rewards.parsing.final_answer` against the
    accepted answers."""
    if isinstance(ground_truth, str):
        accepted = [ground_truth]
    elif isinstance(ground_truth, Sequence) and all(isinstance(g, str) for g in ground_truth):
        accepted = list(ground_truth)
    else:
        raise ValueError(f"ocr ground truth must be a str or a list of str: {ground_truth!r}")
    if not accepted:
        raise ValueError("ocr ground truth is empty")
    return anls(final_answer(answer) if isinstance(answer, str) else "", accepted)


# --------------------------------------------------------------------------------------------
# math
# --------------------------------------------------------------------------------------------

_TEXT_CMD_RE = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\s*\{([^{}]*)\}")
_FRAC_RE = re.compile(r"^(-?)\\frac\{(-?\d+(?:\.\d+)?)\}\{(-?\d+(?:\.\d+)?)\}$")
_FRAC_SHORT_RE = re.compile(r"^(-?)\\frac(\d)(\d)$")
_SLASH_RE = re.compile(r"^(-?\d+(?:\.\d+)?)/(-?\d+(?:\.\d+)?)$")
_DECIMAL_RE = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?$", re.IGNORECASE)
_THOUSANDS_RE = re.compile(r"^-?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_ASSIGN_RE = re.compile(r"^[A-Za-z]\w*=(?!=)")
_MATH_DROP = (
    "\\left", "\\right", "\\!", "\\,", "\\;", "\\:", "\\ ", "$", "\\(", "\\)", "\\[", "\\]",
    "^{\\circ}", "^\\circ", "°", "\\%", "%", "\\displaystyle",
)  # fmt: skip


def _normalize_math(text: str) -> str:
    s = safe_nfkc(text).strip()
    boxed = extract_boxed(s)
    if boxed is not None:
        s = boxed
    for _ in range(3):
        s = _TEXT_CMD_RE.sub(r"\1", s)
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    for token in _MATH_DROP:
        s = s.replace(token, "")
    s = "".join(s.split()).rstrip(".")
    s = _ASSIGN_RE.sub("", s)
    return s


def _math_value(s: str) -> float | None:
    try:
        if _THOUSANDS_RE.match(s):
            s = s.replace(",", "")
        if _DECIMAL_RE.match(s):
            return float(s)
        m = _FRAC_RE.match(s) or _FRAC_SHORT_RE.match(s)
        if m:
            num, den = float(m.group(2)), float(m.group(3))
            sign = -1.0 if m.group(1) else 1.0
            return sign * num / den if den != 0 else None
        m = _SLASH_RE.match(s)
        if m:
            den = float(m.group(2))
            return float(m.group(1)) / den if den != 0 else None
    except (ValueError, OverflowError):
        return None
    return None


def _math_equal_normalised(pred: str, gt: str) -> bool:
    p, g = _normalize_math(pred), _normalize_math(gt)
    if not p:
        return False
    if p == g:
        return True
    pv, gv = _math_value(p), _math_value(g)
    if pv is None or gv is None or not (math.isfinite(pv) and math.isfinite(gv)):
        return False
    return abs(pv - gv) <= 1e-9 * max(1.0, abs(gv))


def _math_verify_equal(answer: str, gt: str) -> bool:
    """math-verify's verdict (``verify(parse(gold), parse(answer))``), ``False`` if the package
    is missing or raises (e.g. its signal-based timeout outside the main thread)."""
    try:
        from math_verify import parse, verify
    except ImportError:
        return False
    try:
        gold = parse(gt if "$" in gt or "\\boxed" in gt else f"${gt}$")
        pred = parse(answer)
        return bool(gold) and bool(pred) and bool(verify(gold, pred))
    except Exception:
        return False


def math_accuracy(answer: str, ground_truth: str | float) -> float:
    """1.0 iff the answer's :func:`~vst.rewards.parsing.final_answer` equals the ground truth
    after LaTeX normalisation (``$``, ``\\left``/``\\right``, spacing, ``\\text{}``, ``\\dfrac``,
    degree and percent signs, a leading ``x =``; numbers compared as values: ``0.5`` =
    ``\\frac{1}{2}`` = ``1/2``), or when math-verify (optional package ``math-verify``) proves
    them equivalent. The normalised check runs first, so results never depend on the optional
    package for answers it already accepts."""
    if is_finite_number(ground_truth):
        ground_truth = (
            repr(float(ground_truth)) if isinstance(ground_truth, float) else str(ground_truth)
        )
    if not isinstance(ground_truth, str) or not ground_truth.strip():
        raise ValueError(f"math ground truth must be a non-empty str: {ground_truth!r}")
    if not isinstance(answer, str):
        return 0.0
    cand = final_answer(answer)
    if _math_equal_normalised(cand, ground_truth):
        return 1.0
    return 1.0 if _math_verify_equal(clip_answer(answer), ground_truth) else 0.0
