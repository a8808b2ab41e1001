"""3D detection reward (paper Section 3.3 / Table 13): ``R = a * IoU + (1 - a) * F1``, a = 0.5.

* Predictions are parsed from the answer text (:func:`vst.rewards.parsing.parse_boxes3d`:
  angles written as degrees / 180, read back in DEGREES; malformed entries are skipped).
  Ground truths are ``(M, 9)`` boxes in DEGREES (the data engine's ``reward.ground_truth``:
  ``[{"bbox_3d": [...], "label": ...}, ...]``).
* Pairs are matched one-to-one by the Hungarian algorithm (``scipy.optimize.
  linear_sum_assignment``) maximising the summed exact oriented 3D IoU
  (:func:`vst.geometry.iou.box3d_iou`). Class-agnostic by default; with ``class_aware`` a pair
  whose normalised labels differ has IoU 0 (it can never be a true positive).
* IoU term = (sum of the matched IoUs) / M. A matched pair is a true positive when its IoU >=
  ``iou_threshold`` (0.25; a 1e-9 slack absorbs rounding at the boundary). F1 = 2 TP /
  (2 TP + FP + FN) with FP = N - TP, FN = M - TP: every extra box is a false positive, so
  flooding the answer with boxes lowers the reward (Table 13: IoU + recall, where extra boxes
  are free, collapses; IoU + F1 does not).
* Empty cases (N predictions, M ground truths): N = M = 0 scores 1 (correctly reporting
  nothing); M = 0 < N scores 0 (IoU term 0: nothing to cover; F1 0: all false positives);
  N = 0 < M scores 0. From text (:func:`det3d_answer_score`), an empty ground truth is only
  matched by an answer that is exactly an empty JSON list: unparsable text scores 0 there
  rather than passing as "no boxes".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linear_sum_assignment

from vst.geometry.iou import box3d_iou
from vst.rewards.bounds import MAX_DET3D_CHARS, clip_answer
from vst.rewards.parsing import extract_json, normalize_text, parse_boxes3d, split_think

__all__ = [
    "DET3D_ALPHA",
    "DET3D_IOU_THRESHOLD",
    "Det3DScore",
    "det3d_answer_score",
    "det3d_ground_truth",
    "det3d_reward",
    "det3d_score",
]

DET3D_ALPHA = 0.5
"""Weight of the IoU term (the F1 term gets ``1 - alpha``)."""

DET3D_IOU_THRESHOLD = 0.25
"""A matched pair with at least this 3D IoU is a true positive."""

_SLACK = 1e-9


@dataclass(frozen=True)
class Det3DScore:
    """The reward and its parts (``tp``/``fp``/``fn`` counts, ``iou_term``, ``f1``)."""

    reward: float
    iou_term: float
    f1: float
    tp: int
    fp: int
    fn: int


def det3d_ground_truth(gt: Any, labels: Sequence[str] | None = None) -> tuple[np.ndarray, list]:
    """Ground-truth boxes ``(M, 9)`` (DEGREES) and labels from the engine's list of
    ``{"bbox_3d": [9 numbers], "label": str}`` dicts, or from an ``(M, 9)`` array plus optional
    ``labels``. Raises ValueError on malformed ground truth."""
    if isinstance(gt, np.ndarray) or (
        isinstance(gt, Sequence) and gt and not isinstance(gt[0], Mapping)
    ):
        arr = np.asarray(gt, dtype=np.float64)
        arr = arr.reshape(0, 9) if arr.size == 0 else arr.reshape(-1, 9)
        labs = [""] * len(arr) if labels is None else [str(v) for v in labels]
        if len(labs) != len(arr):
            raise ValueError(f"{len(arr)} ground-truth boxes but {len(labs)} labels")
        return arr, labs
    if not isinstance(gt, Sequence) or isinstance(gt, str):
        raise ValueError(f"det3d ground truth must be a list of boxes, got {type(gt).__name__}")
    if not gt:
        return np.zeros((0, 9)), []
    for i, item in enumerate(gt):
        if not (type(item) is dict or isinstance(item, Mapping)) or "bbox_3d" not in item:
            raise ValueError(f"det3d ground truth entry {i} has no bbox_3d: {item!r}")
    try:
        arr = np.array([item["bbox_3d"] for item in gt], dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if arr is None or arr.shape != (len(gt), 9) or not np.all(np.isfinite(arr)):
        raise ValueError("det3d ground truth: every bbox_3d must be 9 finite numbers")
    return arr, [str(item.get("label", "")) for item in gt]


def det3d_score(
    pred_boxes: ArrayLike,
    gt_boxes: ArrayLike,
    pred_labels: Sequence[str] | None = None,
    gt_labels: Sequence[str] | None = None,
    *,
    alpha: float = DET3D_ALPHA,
    iou_threshold: float = DET3D_IOU_THRESHOLD,
    class_aware: bool = False,
) -> Det3DScore:
    """The detection reward of boxes ``(N, 9)`` against ``(M, 9)`` (both DEGREES); see the
    module docstring for the definition. ``class_aware`` needs both label lists."""
    pred = np.asarray(pred_boxes, dtype=np.float64).reshape(-1, 9)
    gt = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 9)
    n, m = len(pred), len(gt)
    if m == 0:
        score = 1.0 if n == 0 else 0.0
        return Det3DScore(score, score, score, 0, n, 0)
    if n == 0:
        return Det3DScore(0.0, 0.0, 0.0, 0, 0, m)
    iou = box3d_iou(pred, gt)
    if not np.isfinite(iou).all():  # defensive: box3d_iou gives 0 for degenerate boxes
        iou = np.where(np.isfinite(iou), iou, 0.0)
    np.minimum(np.maximum(iou, 0.0, out=iou), 1.0, out=iou)  # np.clip, without its overhead
    if class_aware:
        if pred_labels is None or gt_labels is None:
            raise ValueError("class_aware scoring needs pred_labels and gt_labels")
        p = np.array([normalize_text(v) for v in pred_labels], dtype=object)
        g = np.array([normalize_text(v) for v in gt_labels], dtype=object)
        iou = np.where(p[:, None] == g[None, :], iou, 0.0)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    matched = iou[rows, cols]
    tp = int(np.count_nonzero(matched >= iou_threshold - _SLACK))
    fp, fn = n - tp, m - tp
    iou_term = min(1.0, float(matched.sum()) / m)
    f1 = 2.0 * tp / (2.0 * tp + fp + fn)
    reward = min(1.0, max(0.0, alpha * iou_term + (1.0 - alpha) * f1))
    return Det3DScore(reward, iou_term, f1, tp, fp, fn)


def det3d_answer_score(
    answer: str,
    gt_boxes: Any,
    *,
    gt_labels: Sequence[str] | None = None,
    alpha: float = DET3D_ALPHA,
    iou_threshold: float = DET3D_IOU_THRESHOLD,
    class_aware: bool = False,
) -> Det3DScore:
    """:func:`det3d_score` of an *answer* text (boxes parsed leniently, see
    :func:`vst.rewards.parsing.parse_boxes3d`). With no ground-truth boxes only an answer whose
    JSON is exactly an empty list (``[]``, fenced or bare) scores 1: unparsable text, or a list
    with any entries (even malformed ones), scores 0."""
    gt, labels = det3d_ground_truth(gt_boxes, gt_labels)
    if len(gt) == 0:
        head = (
            clip_answer(answer, MAX_DET3D_CHARS, head_only=True) if isinstance(answer, str) else ""
        )
        ok = extract_json(head) == []
        return Det3DScore(1.0, 1.0, 1.0, 0, 0, 0) if ok else Det3DScore(0.0, 0.0, 0.0, 0, 1, 0)
    pred, pred_labels = parse_boxes3d(answer if isinstance(answer, str) else "")
    return det3d_score(
        pred,
        gt,
        pred_labels,
        labels,
        alpha=alpha,
        iou_threshold=iou_threshold,
        class_aware=class_aware,
    )


def det3d_reward(
    response: str,
    gt_boxes: Any,
    *,
    gt_labels: Sequence[str] | None = None,
    alpha: float = DET3D_ALPHA,
    iou_threshold: float = DET3D_IOU_THRESHOLD,
    class_aware: bool = False,
) -> float:
    """Detection reward in [0, 1] of a model response against ground-truth boxes.

    ``response``: the model text; when it has a ``</think>``, only the answer after it is read
    (:func:`vst.rewards.parsing.split_think`). ``gt_boxes``: the engine's list of
    ``{"bbox_3d", "label"}`` dicts or an ``(M, 9)`` array (DEGREES) with optional
    ``gt_labels``. See :func:`det3d_answer_score` for the empty ground truth. Never raises on
    the response."""
    answer = split_think(response).answer if isinstance(response, str) else ""
    return det3d_answer_score(
        answer,
        gt_boxes,
        gt_labels=gt_labels,
        alpha=alpha,
        iou_threshold=iou_threshold,
        class_aware=class_aware,
    ).reward
