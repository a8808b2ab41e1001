"""The VST release's RL reward modes (``meta_info.mode``) and vst reward specs, both ways.

Release -> vst (:func:`release_spec`, :func:`release_reward`), the ground truth being the row's
``answer`` string:

=======================  =========================================================
release mode             vst spec
=======================  =========================================================
``multi_choices_score``  ``mcq`` (the answer must start with an option label)
``vqa_score``            ``exact``
``relaxed_score``        ``numeric``, ``tolerance`` 0.05 (binary, 5% relative);
                         a 4-character ``20xx`` answer (a year) gets tolerance 0:
                         the release wants years matched exactly
``anls_score``           ``ocr`` (vst's ANLS, 1 - normalised distance, 0 below 0.5;
                         the release's inverted score is a bug)
``math_score``           ``math``
``bbox3d``               ``det3d``: the answer is a fenced ```json list of
                         ``{"bbox_3d": [9 numbers, angles / 180], "label"}``;
                         ground truth in degrees (angles x 180)
=======================  =========================================================

A ``%`` after a number is ignored by vst's number parser on both sides (``"45%"`` = 45, not
0.45), which is the release's rule too. The release first gives 1 to an answer equal to its
``answer`` string, case-insensitively; vst's modes judge the answer's final clause
(:func:`vst.rewards.parsing.final_answer`), so they do not always give that
(``"The answer is B"`` against itself scores 0 in ``exact``). :func:`release_reward` therefore
adds one ``exact`` spec accepting the answer string and its final clause, normalised
(case, punctuation, articles): a superset of the release's step. Not for ``bbox3d`` rows (the
release scores boxes in their own branch, without it).

vst -> release (:func:`release_mode`, :func:`release_answer`): ``mcq`` ->
``multi_choices_score`` (answer: the option label), ``exact`` -> ``vqa_score``, ``numeric`` ->
``relaxed_score`` (answer: the number), ``ocr`` -> ``anls_score``, ``math`` -> ``math_score``,
``det3d`` -> ``bbox3d`` (answer: the ```json box list, 2 decimals, angles / 180), ``order`` ->
``vqa_score`` on the items joined with ``", "`` (the release has no order mode; its
case-insensitive exact step scores an answer written that way); ``caption`` has no release form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from vst.geometry.text import box3d_from_text, box3d_to_text
from vst.rewards.parsing import final_answer, split_choice
from vst.rewards.reward import accuracy_reward, load_reward_spec

__all__ = [
    "FROM_VST",
    "RELAXED_TOLERANCE",
    "RELEASE_MODES",
    "TO_VST",
    "release_answer",
    "release_det3d_truth",
    "release_mode",
    "release_reward",
    "release_spec",
]

TO_VST = {
    "multi_choices_score": "mcq",
    "vqa_score": "exact",
    "relaxed_score": "numeric",
    "anls_score": "ocr",
    "math_score": "math",
    "bbox3d": "det3d",
}
"""Release mode -> vst mode."""

RELEASE_MODES = tuple(TO_VST)

FROM_VST = {
    "mcq": "multi_choices_score",
    "exact": "vqa_score",
    "numeric": "relaxed_score",
    "ocr": "anls_score",
    "math": "math_score",
    "det3d": "bbox3d",
    "order": "vqa_score",
}
"""vst mode -> release mode (``caption`` has none)."""

RELAXED_TOLERANCE = 0.05
"""The release's ``relaxed_score``: at most 5% relative error."""

_YEAR_RE = re.compile(r"20\d\d")


def release_det3d_truth(answer: str) -> list[dict[str, Any]]:
    """The det3d ground truth (``[{"bbox_3d": [9 numbers, DEGREES], "label"}]``) of a release
    ``bbox3d`` answer (a fenced ```json list, angles / 180); ValueError saying why it cannot
    be read."""
    try:
        boxes, labels = box3d_from_text(answer, strict=True)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bbox3d answer is not a ```json box list ({exc})") from None
    return [
        {"bbox_3d": [float(v) for v in box], "label": label}
        for box, label in zip(boxes, labels, strict=True)
    ]


def release_spec(mode: str, answer: str) -> dict[str, Any]:
    """The vst spec scoring release mode ``mode`` with ground truth ``answer`` (see the module
    table). ValueError naming the mode when it is unknown, or when the answer cannot be its
    ground truth (e.g. ``multi_choices_score`` on a text that starts with no option label)."""
    if mode not in TO_VST:
        raise ValueError(f"unknown release reward mode {mode!r}; expected one of {RELEASE_MODES}")
    if not isinstance(answer, str) or not answer.strip():
        raise ValueError(f"{mode}: the answer is empty")
    vst_mode = TO_VST[mode]
    spec: dict[str, Any] = {"mode": vst_mode, "ground_truth": answer.strip()}
    if vst_mode == "numeric":
        spec["tolerance"] = 0.0 if _YEAR_RE.fullmatch(answer.strip()) else RELAXED_TOLERANCE
    elif vst_mode == "det3d":
        spec["ground_truth"] = release_det3d_truth(answer)
    try:
        accuracy_reward("", spec)  # a ground truth the mode cannot read raises here
    except ValueError as exc:
        raise ValueError(f"{mode}: {exc}") from None
    return spec


def release_reward(modes: Any, answer: str) -> tuple[list[dict[str, Any]], list[str]]:
    """The "any of" vst specs of a release row (its ``meta_info.mode`` list, or one name, and
    its ``answer``) and the modes left out as ``"mode: reason"`` (a mode that cannot read this
    answer, when another can). With ``bbox3d`` the row is one ``det3d`` spec (other modes
    beside it are refused: the release would ignore them); otherwise the modes' specs plus the
    release's exact step (see the module docstring). ValueError naming the mode for an unknown
    mode, and when no mode can score the row."""
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, Sequence) or not modes:
        raise ValueError(f"mode must be a non-empty list of release modes, got {modes!r}")
    bad = [m for m in modes if m not in TO_VST]
    if bad:
        raise ValueError(f"unknown release reward mode {bad[0]!r}; expected one of {RELEASE_MODES}")
    modes = list(dict.fromkeys(modes))
    if "bbox3d" in modes:
        if len(modes) > 1:
            raise ValueError(f"bbox3d with other modes {[m for m in modes if m != 'bbox3d']}")
        return [release_spec("bbox3d", answer)], []
    specs, dropped = [], []
    for mode in modes:
        try:
            specs.append(release_spec(mode, answer))
        except ValueError as exc:
            dropped.append(str(exc))
    if not specs:
        raise ValueError("; ".join(dropped))
    accepted = list(dict.fromkeys([answer.strip(), final_answer(answer)]))
    if accepted != [answer.strip()] or not any(s["mode"] == "exact" for s in specs):
        specs.append({"mode": "exact", "ground_truth": accepted})  # else vqa_score covers it
    return specs, dropped


def release_mode(spec: Any) -> str:
    """The release mode of a vst spec; ValueError for ``caption`` (no release form)."""
    mode = load_reward_spec(spec)["mode"]
    if mode not in FROM_VST:
        raise ValueError(f"reward mode {mode!r} has no release form")
    return FROM_VST[mode]


def _number(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def release_answer(spec: Any) -> str:
    """The ``answer`` string the release reads for a vst spec (see the module docstring);
    ValueError for ``caption`` and for ground truths with no string form."""
    spec = load_reward_spec(spec)
    mode, gt = spec["mode"], spec["ground_truth"]
    if mode not in FROM_VST:
        raise ValueError(f"reward mode {mode!r} has no release form")
    if isinstance(gt, bool):
        raise ValueError(f"{mode} ground truth {gt!r} has no release form")
    if mode == "det3d":
        boxes = [item["bbox_3d"] for item in gt]
        return box3d_to_text(boxes, [str(item.get("label", "")) for item in gt])
    if mode == "order":
        return ", ".join(str(item) for item in gt)
    if isinstance(gt, int | float):
        return _number(gt)
    if mode == "mcq" and isinstance(gt, str):
        parts = split_choice(gt) or split_choice(gt, numbered=True)
        return parts[0] if parts else gt.strip()
    if mode == "exact" and isinstance(gt, Mapping):
        box = ", ".join(_number(v) for v in gt["bbox_2d"])
        return f"{gt['label']}: [{box}]"
    if isinstance(gt, str):
        return gt.strip()
    if isinstance(gt, Sequence) and gt and isinstance(gt[0], str):
        return gt[0].strip()
    raise ValueError(f"{mode} ground truth {json.dumps(gt)[:80]} has no release form")
