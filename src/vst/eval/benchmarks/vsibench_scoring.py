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
* ``vlmevalkit`` (VLMEvalKit ``vlmeval/dataset/vsibench.py`` with
  ``spatial_bench/matching_func.py``): NA by :func:`vlmevalkit_number` (number words
  zero..twenty replaced by digits; a number leading an ``<answer>`` block; else the last number
  after the last ``</think>``, else the last number). MCA by
  :func:`vst.eval.metrics.extract_choice`, a rule-based extractor standing in for VLMEvalKit's
  ``can_match_option`` (UNVERIFIED: the two agree on letter-only, ``"B. text"``, answer-phrase
  and unique-letter replies, not on every reply).

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

from vst.eval.metrics import extract_choice, vsibench_first_token

__all__ = [
    "MCA_TYPES",
    "NA_TYPES",
    "RULES",
    "first_number",
    "official_mra",
    "official_number",
    "score_reply",
    "vlmevalkit_number",
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
_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen", "twenty"),
)
_WORD_VALUE = {w: i for i, w in enumerate(_WORDS)}
_WORD = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)
_NUMBER_OR_WORD = re.compile(_NUMBER.pattern + "|" + _WORD.pattern, re.I)
_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\ufeff]")
_THINK_END = re.compile(r"</\s*think\s*>", re.I)
_THINK_START = re.compile(r"<\s*think\s*>", re.I)
_ANSWER_NUMBER = re.compile(
    r"<\s*answer\b[^>]*>\s*(" + _NUMBER.pattern + r")(?:[^\d<][^<]*)?<\s*/\s*answer\s*>",
    re.I | re.S,
)


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
    return float(_WORD_VALUE[word.lower()]) if word else _to_float(m.group(0))


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return _to_float(found[-1]) if found else None


def vlmevalkit_number(reply: str) -> float | None:
    """VLMEvalKit's NA parse (see the module docstring): the number leading an ``<answer>``
    block, else the last number after the last ``</think>`` (or ``<think>``), else the last
    number; number words zero..twenty count as digits."""
    text = _ZERO_WIDTH.sub("", reply.strip())
    text = _WORD.sub(lambda m: str(_WORD_VALUE[m.group(1).lower()]), text)
    m = _ANSWER_NUMBER.search(text)
    if m is not None:
        value = _to_float(m.group(1))
        if value is not None:
            return value
    ends = list(_THINK_END.finditer(text)) or list(_THINK_START.finditer(text))
    tail = text[ends[-1].end() :].strip() if ends else text
    value = _last_number(tail)
    return value if value is not None else _last_number(text)


def _json_number(value: float | None) -> float | str | None:
    """A parsed number as JSON can hold it (non-finite values as strings)."""
    if value is None or math.isfinite(value):
        return value
    return str(value)


def score_reply(
    question_type: str, truth: str, reply: object, options: list[str] | None = None
) -> tuple[dict[str, object], dict[str, float]]:
    """The parsed answer and the score of ``reply`` under each rule of :data:`RULES`
    (never raises; a non-string reply scores 0 everywhere)."""
    text = reply if isinstance(reply, str) else ""
    if question_type in MCA_TYPES:
        token = vsibench_first_token(text)
        official = float(token.lower() == truth.lower())
        opts = {}
        for option in options or []:
            letter, _, rest = option.partition(".")
            opts[letter.strip().upper()] = rest.strip()
        choice = extract_choice(text, opts or None)
        vlm = float(choice is not None and choice == truth.strip().upper())
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
