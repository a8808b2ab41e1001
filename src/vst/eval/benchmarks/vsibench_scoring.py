"""VSI-Bench answer extraction and per-question scores: the official rule and two variants.

* ``official`` (thinking-in-space ``lmms_eval/tasks/vsibench/utils.py``, also VST's
  ``eval_vsibench.py``): the reply's first space-separated token, trailing ``"."`` stripped
  (:func:`vst.eval.metrics.vsibench_first_token`). MCA: case-insensitive equality with the
  letter. NA: ``float()`` of that token (Python's own parser, so ``"1e1"``, ``"inf"`` and
  ``"nan"`` parse) scored by :func:`official_mra`; a token ``float()`` refuses scores 0.
* ``lmms_eval`` (lmms-eval after commit eab6655a): MCA as official; NA takes the first number
  or English number word (zero..twenty) anywhere in the reply. UNVERIFIED: the exact regex
  and word list of lmms-eval's ``extract_number`` were not read; this follows BENCHMARKS.md's
  description (first number or number word anywhere).
* ``vlmevalkit`` (VLMEvalKit ``vlmeval/dataset/vsibench.py`` scoring through
  ``utils/spatial_bench/cal_scores.py``): NA by
  :func:`~vst.eval.benchmarks.vlmevalkit_match.vlmevalkit_number` (last number, number words
  as digits), MCA by :func:`~vst.eval.benchmarks.vlmevalkit_match.vlmevalkit_option` on the
  reply compared case-insensitively with the same function on the truth (letters A-F, option
  texts are not matched). Its LLM-judge mode is not reproduced (rule-based only).

MRA for every rule is :func:`official_mra`: the official script's numpy arithmetic,
thresholds ``linspace(.5, .95, 10)`` and ``|pred - gt| / gt <= 1 - t`` in float64. It differs
from :func:`vst.eval.metrics.mra` (which adds a 1e-12 tolerance) on exact boundaries: a
count of 4 for a truth of 5 is 0.2 off, and ``1 - 0.8`` is 0.19999999999999996 in float64,
so the official script gives 0.6 where the tolerant one gives 0.7.
"""

from __future__ import annotations

import math
import re

import numpy as np

from vst.eval.benchmarks.vlmevalkit_match import (
    WORD,
    WORD_VALUE,
    vlmevalkit_number,
    vlmevalkit_option,
)
from vst.eval.metrics import vsibench_first_token

__all__ = [
    "MCA_TYPES",
    "NA_TYPES",
    "RULES",
    "first_number",
    "official_mra",
    "official_number",
    "score_reply",
]

MCA_TYPES: tuple[str, ...] = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
    "object_rel_distance",
    "route_planning",
    "obj_appearance_order",
)
"""Multiple-choice question types (scored by accuracy)."""

NA_TYPES: tuple[str, ...] = (
    "object_abs_distance",
    "object_counting",
    "object_size_estimation",
    "room_size_estimation",
)
"""Numerical-answer question types (scored by MRA)."""

RULES: tuple[str, ...] = ("official", "lmms_eval", "vlmevalkit")

_CONF = np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))  # 10 points, as the official code
_NUMBER = re.compile(r"[-+]?(?:\d*\.\d+|\d+)(?:[eE][-+]?\d+)?")
_NUMBER_OR_WORD = re.compile(_NUMBER.pattern + "|" + WORD.pattern, re.I)


def official_mra(pred: float | None, gt: float) -> float:
    """The official MRA: the fraction of the 10 thresholds ``t`` with
    ``|pred - gt| / gt <= 1 - t`` in numpy float64 (no tolerance); 0 for a missing or NaN
    prediction."""
    if pred is None or math.isnan(pred):
        return 0.0
    with np.errstate(all="ignore"):
        return float((abs(pred - gt) / gt <= 1 - _CONF).mean())


def _to_float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def official_number(reply: str) -> float | None:
    """The official NA parse: ``float()`` of the first space-separated token (trailing "."
    stripped), ``None`` when it is not a number."""
    return _to_float(vsibench_first_token(reply))


def first_number(reply: str) -> float | None:
    """lmms-eval's lenient NA parse: the first number or number word anywhere."""
    m = _NUMBER_OR_WORD.search(reply)
    if m is None:
        return None
    word = m.group(1)
    return float(WORD_VALUE[word.lower()]) if word else _to_float(m.group(0))


def _json_number(value: float | None) -> float | str | None:
    """A parsed number as JSON can hold it (non-finite values as strings)."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def score_reply(
    question_type: str, truth: str, reply: object
) -> tuple[dict[str, object], dict[str, float]]:
    """The parsed answer and the score of ``reply`` under each rule of :data:`RULES`
    (never raises; a non-string reply scores 0 everywhere)."""
    text = reply if isinstance(reply, str) else ""
    if question_type in MCA_TYPES:
        token = vsibench_first_token(text)
        official = float(token.lower() == truth.lower())
        choice = vlmevalkit_option(text)
        gt_choice = vlmevalkit_option(truth)
        vlm = float(gt_choice is not None and choice == gt_choice)
        parsed: dict[str, object] = {"official": token, "lmms_eval": token, "vlmevalkit": choice}
        return parsed, {"official": official, "lmms_eval": official, "vlmevalkit": vlm}
    gt = float(truth)
    numbers = {
        "official": official_number(text),
        "lmms_eval": first_number(text),
        "vlmevalkit": vlmevalkit_number(text),
    }
    scores = {rule: official_mra(value, gt) for rule, value in numbers.items()}
    return {rule: _json_number(v) for rule, v in numbers.items()}, scores
