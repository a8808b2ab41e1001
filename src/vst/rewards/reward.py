"""Format reward, total reward and dispatch on the data engine's reward spec.

A reward spec is the sample's ``reward`` field (a dict, or its JSON string)::

    {"mode": "mcq" | "exact" | "numeric" | "order" | "det3d" | "caption" | "ocr" | "math",
     "ground_truth": ...,
     # optional extras
     "options": [...] | {"A": ...},          # mcq: option texts (answers may give the text)
     "unit": "cm", "tolerance": 0.05,        # numeric: ground-truth unit; binary tolerance
     "class_aware": true, "alpha": 0.5, "iou_threshold": 0.25}   # det3d

``total = w_acc * accuracy + w_fmt * format`` (defaults 0.5 / 0.5, as in the public release),
so it lies in ``[0, w_acc + w_fmt]``.

"Any of" specs: ``reward_spec`` may also be a non-empty LIST of specs (or its JSON string),
meaning the answer may satisfy any of them (the release's multi-mode RL rows): accuracy is the
max over the specs; the format uses the det3d rule when any spec is ``det3d``, else the think
rule; ``checkable`` is False only when every spec is ``caption``.

* Format (:func:`format_reward`): exactly one ``<think>...</think>`` at the start followed by a
  non-empty answer (:func:`vst.rewards.parsing.split_think`); ``det3d``: the answer holds a
  valid JSON list whose entries all have a 9-number ``bbox_3d`` and a ``label``, after a
  well-formed think block or without any think tag (as the release's rule: detection is
  prompted without the thinking system prompt).
* Accuracy is judged on the answer after ``</think>`` whatever the format score (the two terms
  are independent, as in the release); a response with ``<think>`` but no ``</think>`` has an
  empty answer; one without any think tags is judged whole.
* ``caption`` is free text and not rule-checkable: accuracy is 0 and the result says
  ``checkable: False`` (caption samples are SFT data; keep them out of RL sets, or use the
  TRL adapter's ``caption="none"`` to drop them from the reward).

Malformed specs raise ``ValueError`` (a data bug); the model's response never makes anything
raise, and any response scores in linear time: the answer is cut to its ends before it is
normalised or parsed (:mod:`vst.rewards.bounds`: 4,096 characters, det3d the first 65,536), so
a 1 MB response of any content scores in well under a second in every mode
(``benchmarks/rewards.py`` measures it).
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from vst.rewards.accuracy import (
    exact_accuracy,
    math_accuracy,
    mcq_accuracy,
    numeric_accuracy,
    ocr_accuracy,
    order_accuracy,
)
from vst.rewards.bounds import MAX_DET3D_CHARS, clip_answer
from vst.rewards.det3d import DET3D_ALPHA, DET3D_IOU_THRESHOLD, det3d_answer_score
from vst.rewards.parsing import ThinkSplit, box_list_is_valid, split_think

__all__ = [
    "DEFAULT_W_ACC",
    "DEFAULT_W_FMT",
    "MODES",
    "accuracy_reward",
    "compute_reward",
    "format_reward",
    "load_reward_spec",
    "load_reward_specs",
]

DEFAULT_W_ACC = 0.5
DEFAULT_W_FMT = 0.5

MODES = ("mcq", "exact", "numeric", "order", "det3d", "caption", "ocr", "math")
"""The data engine's modes (:data:`vst.engine.sample.REWARD_MODES`) plus ``ocr`` and ``math``."""

_ALIASES = {
    "multiple_choice": "mcq",
    "choice": "mcq",
    "open": "exact",
    "open_ended": "exact",
    "anls": "ocr",
    "detection": "det3d",
}


def load_reward_spec(spec: Any) -> dict[str, Any]:
    """The reward spec as a dict with a known ``mode`` and a ``ground_truth``; accepts a dict
    or its JSON string. Raises ValueError otherwise."""
    if isinstance(spec, str | bytes):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"reward spec is not valid JSON: {exc}") from None
    if not isinstance(spec, Mapping):
        raise ValueError(f"reward spec must be a dict, got {type(spec).__name__}")
    mode = spec.get("mode")
    mode = _ALIASES.get(mode, mode) if isinstance(mode, str) else mode
    if mode not in MODES:
        raise ValueError(f"unknown reward mode {spec.get('mode')!r}; expected one of {MODES}")
    if "ground_truth" not in spec:
        raise ValueError(f"reward spec for mode {mode!r} has no ground_truth")
    out = dict(spec)
    out["mode"] = mode
    return out


def load_reward_specs(spec: Any) -> list[dict[str, Any]]:
    """The specs of a reward field as a non-empty list: one spec (dict or JSON) gives a list of
    one; a list of specs ("any of", or its JSON string) gives each checked by
    :func:`load_reward_spec`. Raises ValueError naming the bad entry."""
    if isinstance(spec, str | bytes):
        try:
            spec = json.loads(spec)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"reward spec is not valid JSON: {exc}") from None
    if isinstance(spec, list | tuple):
        if not spec:
            raise ValueError("reward spec list is empty")
        out = []
        for k, one in enumerate(spec):
            try:
                out.append(load_reward_spec(one))
            except ValueError as exc:
                raise ValueError(f"reward spec {k}: {exc}") from None
        return out
    return [load_reward_spec(spec)]


def format_reward(response: str, mode: str | None = None) -> float:
    """1.0 if the response is ``<think>...</think>`` + a non-empty answer, else 0.0. For
    ``mode="det3d"``: 1.0 if the answer holds a valid box list, after a well-formed think block
    or without any think tag (detection is prompted without the thinking system prompt)."""
    return _format_score(split_think(response), mode)


def _format_score(split: ThinkSplit, mode: str | None) -> float:
    if mode in ("det3d", "detection"):
        # 3D detection is prompted without the thinking system prompt (the release's RL rule
        # needs no think tags): a valid box list, after a well-formed think block or none at all
        no_tags = split.think is None and bool(split.answer)
        return float((split.well_formed or no_tags) and box_list_is_valid(split.answer))
    return 1.0 if split.well_formed else 0.0


def _det3d_accuracy(answer: str, spec: Mapping[str, Any]) -> float:
    return det3d_answer_score(
        answer,
        spec["ground_truth"],
        alpha=float(spec.get("alpha", DET3D_ALPHA)),
        iou_threshold=float(spec.get("iou_threshold", DET3D_IOU_THRESHOLD)),
        class_aware=bool(spec.get("class_aware", False)),
    ).reward


def accuracy_reward(answer: str, reward_spec: Any) -> tuple[float, bool]:
    """``(accuracy in [0, 1], checkable)`` of an *answer* (the text after ``</think>``) for a
    reward spec, or for a list of specs (the max over them); ``checkable`` is False for
    ``caption`` (accuracy 0), and for a list only when every spec is ``caption``."""
    return _accuracy_any(answer, load_reward_specs(reward_spec))


def _accuracy_any(answer: str, specs: list[dict[str, Any]]) -> tuple[float, bool]:
    if len(specs) == 1:
        return _accuracy_one(answer, specs[0])
    scores = [_accuracy_one(answer, spec) for spec in specs]
    return max(a for a, _ in scores), any(c for _, c in scores)


def _accuracy_one(answer: str, spec: dict[str, Any]) -> tuple[float, bool]:
    mode, gt = spec["mode"], spec["ground_truth"]
    if not isinstance(answer, str):
        answer = ""
    if mode == "caption":
        return 0.0, False
    if mode == "det3d":
        answer = clip_answer(answer, MAX_DET3D_CHARS, head_only=True)
    else:
        answer = clip_answer(answer)
    if mode == "mcq":
        acc = mcq_accuracy(answer, gt, spec.get("options"))
    elif mode == "exact":
        acc = exact_accuracy(answer, gt)
    elif mode == "numeric":
        acc = numeric_accuracy(answer, gt, spec.get("unit"), spec.get("tolerance"))
    elif mode == "order":
        acc = order_accuracy(answer, gt)
    elif mode == "det3d":
        acc = _det3d_accuracy(answer, spec)
    elif mode == "ocr":
        acc = ocr_accuracy(answer, gt)
    else:  # math
        acc = math_accuracy(answer, gt)
    acc = float(acc)
    return (min(1.0, max(0.0, acc)) if math.isfinite(acc) else 0.0), True


def compute_reward(
    response: str,
    reward_spec: Any,
    *,
    w_acc: float = DEFAULT_W_ACC,
    w_fmt: float = DEFAULT_W_FMT,
) -> dict[str, Any]:
    """Reward of one model response for a sample's reward spec (or list of specs: "any of",
    see the module docstring).

    Returns ``{"overall": w_acc * accuracy + w_fmt * format, "format": 0.0 | 1.0,
    "accuracy": [0, 1], "checkable": bool}`` (``checkable`` False only for ``caption``)."""
    if not all(isinstance(w, int | float) and math.isfinite(w) and w >= 0 for w in (w_acc, w_fmt)):
        raise ValueError(f"weights must be finite and >= 0, got w_acc={w_acc!r} w_fmt={w_fmt!r}")
    specs = load_reward_specs(reward_spec)
    if not isinstance(response, str):
        response = ""
    split = split_think(response)
    det3d = any(spec["mode"] == "det3d" for spec in specs)
    fmt = _format_score(split, "det3d" if det3d else specs[0]["mode"])
    acc, checkable = _accuracy_any(split.answer, specs)
    return {
        "overall": float(w_acc * acc + w_fmt * fmt),
        "format": float(fmt),
        "accuracy": float(acc),
        "checkable": checkable,
    }
