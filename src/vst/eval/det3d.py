"""Omni3D-style 3D detection AP: the COCO evaluation protocol on exact 3D IoU.

:func:`evaluate_det3d` follows Omni3D's ``Omni3Deval`` (a COCOeval subclass) step for step, without
detectron2, pytorch3d or pycocotools:

* per category (``useCats``), IoU thresholds 0.05, 0.10, ..., 0.50 (``np.linspace(0.05, 0.5,
  10)``), 101 recall points, max detections 1 / 10 / 100 per image and category;
* depth ranges (the box centre's camera-frame Z, metres) ``all`` [0, 1e5], ``near`` [0, 10],
  ``medium`` [10, 35], ``far`` [35, 1e5], both ends inclusive. A ground truth outside the range is
  ignored; a detection outside it is ignored only when it matches nothing (COCO's area-range
  rule). Note Omni3D's ``all`` range starts at 0: an unmatched detection with negative depth is
  ignored there too;
* 3D IoU from :func:`vst.geometry.iou.box3d_iou` (exact, degenerate boxes 0), computed once per
  image and category;
* greedy matching per image and category: detections by descending score (stable), each takes
  the unmatched ground truth of highest IoU >= the threshold (a later ground truth with equal IoU
  wins, as in COCOeval); ground truths flagged ``ignore`` (and those out of the depth range) are
  tried only after the others, and a detection matched to one is neither TP nor FP;
* accumulation as COCOeval: detections of all images sorted by score (stable; images in sorted
  ``image_id`` order, or ``gt`` order if the ids do not sort), precision made monotone from the
  right, sampled at the 101 recall points (0 past the last recall reached); recall = final recall;
* summaries as Omni3D: a mean over the valid (threshold, recall point, category) cells, so AP is
  the mean of the per-category APs; a category with no non-ignored ground truth in a range has no
  value there (NaN), and labels absent from the ground truth are not evaluated at all.

Figures are fractions in [0, 1] (Omni3D prints them x100).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any, NotRequired, TypedDict

import numpy as np
from numba import njit
from numpy.typing import ArrayLike

from vst.geometry.iou import box3d_iou

__all__ = [
    "DEPTH_RANGES",
    "IOU_THRESHOLDS",
    "MAX_DETS",
    "RECALL_THRESHOLDS",
    "Det3DGroundTruth",
    "Det3DPrediction",
    "evaluate_det3d",
]

IOU_THRESHOLDS: tuple[float, ...] = tuple(float(t) for t in np.linspace(0.05, 0.5, 10))
"""The 10 IoU thresholds 0.05..0.50, as the same floats Omni3D's ``np.linspace`` gives."""

RECALL_THRESHOLDS: np.ndarray = np.linspace(0.0, 1.0, 101)
"""The 101 recall points of the interpolated precision."""

MAX_DETS: tuple[int, ...] = (1, 10, 100)
"""Max detections per image and category."""

DEPTH_RANGES: dict[str, tuple[float, float]] = {
    "all": (0.0, 1e5),
    "near": (0.0, 10.0),
    "medium": (10.0, 35.0),
    "far": (35.0, 1e5),
}
"""Omni3D's depth ranges (metres, inclusive) on the box centre's Z; the first is the overall one."""

_RANGE_KEYS = {"near": "n", "medium": "m", "far": "f"}
_IOU_PAIRS_PER_CALL = 150
"""About how many pair evaluations one ``box3d_iou`` call's fixed overhead costs."""


class Det3DGroundTruth(TypedDict):
    """Ground truth of one image: ``boxes`` (N, 9) ``[x, y, z, x_size, y_size, z_size, pitch,
    yaw, roll]`` in the camera frame (metres, degrees), ``labels`` (N,) category names, optional
    ``ignore`` (N,) bools (Omni3D's ``ignore3D``). Every evaluated image needs an entry, even with
    no boxes."""

    image_id: Hashable
    boxes: ArrayLike
    labels: Sequence[Hashable]
    ignore: NotRequired[Sequence[bool]]


class Det3DPrediction(TypedDict):
    """Detections in one image: ``boxes`` (N, 9) as above, ``labels`` (N,), ``scores`` (N,)
    finite. Several entries for one image are concatenated. Models that give no confidence can
    use one constant score: ties keep the listed order."""

    image_id: Hashable
    boxes: ArrayLike
    labels: Sequence[Hashable]
    scores: ArrayLike


def _boxes(value: Any, what: str) -> np.ndarray:
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 9))
    if arr.ndim == 1 and arr.shape[0] == 9:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 9:
        raise ValueError(f"{what}: boxes must have shape (N, 9), got {arr.shape}")
    return arr


def _sorted_or_given(items: Iterable[Hashable]) -> list[Hashable]:
    """Unique items, sorted when they are mutually comparable, else in first-seen order."""
    seen = list(dict.fromkeys(items))
    try:
        return sorted(seen)  # type: ignore[type-var]
    except TypeError:
        return seen


@njit(cache=True)
def _match_groups(
    iou, iou_off, dt_start, dt_count, gt_start, gt_count, gt_ignore, thr, matched, ig_match
):  # pragma: no cover - compiled
    """COCOeval's greedy matching for every (image, category) group, depth range and threshold.

    ``iou[iou_off[g]:]`` holds group g's (nd, ng) matrix row-major (detections by score, ground
    truths in input order); ``gt_ignore`` is (A, total_gt); fills ``matched`` and ``ig_match``
    (A, T, total_dt): matched at all, and matched to an ignored ground truth."""
    A = gt_ignore.shape[0]
    T = thr.shape[0]
    max_ng = 0
    for g in range(dt_start.shape[0]):
        max_ng = max(max_ng, gt_count[g])
    perm = np.empty(max_ng, dtype=np.int64)
    taken = np.empty(max_ng, dtype=np.bool_)
    for g in range(dt_start.shape[0]):
        nd = dt_count[g]
        ng = gt_count[g]
        if nd == 0 or ng == 0:
            continue
        d0 = dt_start[g]
        g0 = gt_start[g]
        off = iou_off[g]
        for a in range(A):
            c = 0  # ground truths not ignored first, each part in input order (stable sort)
            for j in range(ng):
                if not gt_ignore[a, g0 + j]:
                    perm[c] = j
                    c += 1
            for j in range(ng):
                if gt_ignore[a, g0 + j]:
                    perm[c] = j
                    c += 1
            for t in range(T):
                lim = min(thr[t], 1.0 - 1e-10)
                for j in range(ng):
                    taken[j] = False
                for d in range(nd):
                    best = lim
                    m = -1
                    for jj in range(ng):
                        if taken[jj]:
                            continue
                        if (
                            m > -1
                            and not gt_ignore[a, g0 + perm[m]]
                            and gt_ignore[a, g0 + perm[jj]]
                        ):
                            break  # matched a regular ground truth; the rest are ignored ones
                        v = iou[off + d * ng + perm[jj]]
                        if v < best:
                            continue
                        best = v
                        m = jj
                    if m == -1:
                        continue
                    taken[m] = True
                    matched[a, t, d0 + d] = True
                    ig_match[a, t, d0 + d] = gt_ignore[a, g0 + perm[m]]


def _mean_valid(values: np.ndarray) -> float:
    v = values[values > -1]
    return float(np.mean(v)) if v.size else float("nan")


def evaluate_det3d(
    gt: Sequence[Det3DGroundTruth] | Sequence[Mapping[str, Any]],
    predictions: Sequence[Det3DPrediction] | Sequence[Mapping[str, Any]],
    *,
    iou_thresholds: Sequence[float] = IOU_THRESHOLDS,
    max_dets: Sequence[int] = MAX_DETS,
    depth_ranges: Mapping[str, tuple[float, float]] = DEPTH_RANGES,
) -> dict[str, Any]:
    """Omni3D-style AP3D of ``predictions`` against ``gt`` (see the module docstring).

    ``gt``: one :class:`Det3DGroundTruth` per image (unique ``image_id``); ``predictions``:
    :class:`Det3DPrediction` entries whose ``image_id`` must occur in ``gt``. Labels are compared
    with ``==`` (names or ids); predicted labels absent from the ground truth are not evaluated.

    Returns a dict:

    * ``"AP"`` (mean over the IoU thresholds, range ``all``, the largest max-dets), ``"AP15"``,
      ``"AP25"``, ``"AP50"``, ``"APn"``, ``"APm"``, ``"APf"`` (near / medium / far), ``"AR1"``,
      ``"AR10"``, ``"AR100"`` (range ``all``), ``"ARn"``, ``"ARm"``, ``"ARf"``: floats in [0, 1],
      NaN when no category has a non-ignored ground truth there; custom range names give
      ``"AP_<name>"`` / ``"AR_<name>"``, custom max-dets ``"AR<m>"``;
    * ``"AP_per_threshold"``: ``{threshold rounded to 6 decimals: AP}``;
    * ``"per_category"``: ``{label: {same figures..., "num_gt": non-ignored ground truths,
      "num_pred": evaluated detections (after the max-dets cut)}}``;
    * ``"categories"``, ``"iou_thresholds"``, ``"max_dets"``, ``"depth_ranges"``,
      ``"num_images"``;
    * ``"precision"`` (T, 101, K, A, M) and ``"recall"`` (T, K, A, M) arrays laid out as
      COCOeval's ``eval["precision"]`` / ``eval["recall"]``, -1 where undefined.
    """
    thr = np.asarray(iou_thresholds, dtype=np.float64).reshape(-1)
    mdets = sorted(int(m) for m in max_dets)
    if thr.size == 0 or not mdets or min(mdets) < 1:
        raise ValueError("need at least one IoU threshold and positive max_dets")
    ranges = [(str(k), float(v[0]), float(v[1])) for k, v in depth_ranges.items()]
    if not ranges:
        raise ValueError("need at least one depth range")
    T, R, A, M = len(thr), len(RECALL_THRESHOLDS), len(ranges), len(mdets)
    max_det = mdets[-1]

    # ---- inputs, grouped per image ----
    gt_by_img: dict[Hashable, tuple[np.ndarray, list, np.ndarray]] = {}
    for n, entry in enumerate(gt):
        img = entry["image_id"]
        if img in gt_by_img:
            raise ValueError(f"gt: duplicate image_id {img!r}")
        boxes = _boxes(entry.get("boxes", ()), f"gt[{n}]")
        labels = list(entry.get("labels", ()))
        ignore = entry.get("ignore")
        ign = np.zeros(len(boxes), bool) if ignore is None else np.asarray(ignore, bool).ravel()
        if len(labels) != len(boxes) or len(ign) != len(boxes):
            raise ValueError(f"gt[{n}]: boxes, labels and ignore differ in length")
        gt_by_img[img] = (boxes, labels, ign)
    pred_by_img: dict[Hashable, list[tuple[np.ndarray, list, np.ndarray]]] = {}
    for n, entry in enumerate(predictions):
        img = entry["image_id"]
        if img not in gt_by_img:
            raise ValueError(f"predictions[{n}]: image_id {img!r} is not in the ground truth")
        boxes = _boxes(entry.get("boxes", ()), f"predictions[{n}]")
        labels = list(entry.get("labels", ()))
        scores = np.asarray(entry.get("scores", ()), dtype=np.float64).reshape(-1)
        if len(labels) != len(boxes) or len(scores) != len(boxes):
            raise ValueError(f"predictions[{n}]: boxes, labels and scores differ in length")
        if not np.all(np.isfinite(scores)):
            raise ValueError(f"predictions[{n}]: scores must be finite")
        pred_by_img.setdefault(img, []).append((boxes, labels, scores))

    images = _sorted_or_given(gt_by_img)
    categories = _sorted_or_given(lab for b, labs, i in gt_by_img.values() for lab in labs)
    cat_index = {c: k for k, c in enumerate(categories)}
    K = len(categories)

    # ---- per (image, category) groups: sorted detections, ground truths, IoU blocks ----
    g_dt_start, g_dt_count, g_gt_start, g_gt_count, g_iou_off = [], [], [], [], []
    dt_cat, dt_score, dt_depth, dt_rank, gt_cat, gt_depth, gt_ign = [], [], [], [], [], [], []
    iou_blocks: list[np.ndarray] = []
    n_dt = n_gt = n_iou = 0
    for img in images:
        gboxes, glabels, gign = gt_by_img[img]
        gk = np.array([cat_index[lab] for lab in glabels], dtype=np.int64)
        parts = pred_by_img.get(img, [])
        if parts:
            pboxes = np.concatenate([p[0] for p in parts])
            plabels = [lab for p in parts for lab in p[1]]
            pscores = np.concatenate([p[2] for p in parts])
        else:
            pboxes, plabels, pscores = np.zeros((0, 9)), [], np.zeros(0)
        pk = np.array([cat_index.get(lab, -1) for lab in plabels], dtype=np.int64)
        keep = np.flatnonzero(pk >= 0)
        # by category, then descending score, stable; at most max_det per category
        keep = keep[np.lexsort((-pscores[keep], pk[keep]))]
        kcat = pk[keep]
        rank = np.arange(len(keep)) - np.searchsorted(kcat, kcat, side="left")
        within = rank < max_det
        keep, kcat, rank = keep[within], kcat[within], rank[within]
        cats_here = np.unique(np.concatenate([gk, kcat]))
        if not len(cats_here):
            continue
        gorder = np.argsort(gk, kind="stable")  # ground truths by category, input order within
        gk_sorted = gk[gorder]
        pair_all = len(keep) * len(gk)
        pair_same = sum(
            int(np.count_nonzero(kcat == k)) * int(np.count_nonzero(gk == k)) for k in cats_here
        )
        whole = None
        if pair_all and pair_all - pair_same <= _IOU_PAIRS_PER_CALL * (len(cats_here) - 1):
            whole = box3d_iou(pboxes[keep], gboxes[gorder])
        for k in cats_here:
            drows = np.flatnonzero(kcat == k)
            gcols = np.flatnonzero(gk_sorted == k)
            nd, ng = len(drows), len(gcols)
            if nd and ng:
                if whole is not None:
                    block = whole[np.ix_(drows, gcols)]
                else:
                    block = box3d_iou(pboxes[keep[drows]], gboxes[gorder[gcols]])
                iou_blocks.append(np.ascontiguousarray(block).ravel())
            g_dt_start.append(n_dt)
            g_dt_count.append(nd)
            g_gt_start.append(n_gt)
            g_gt_count.append(ng)
            g_iou_off.append(n_iou)
            n_dt += nd
            n_gt += ng
            n_iou += nd * ng
            sel = keep[drows]
            dt_cat.append(np.full(nd, k))
            dt_score.append(pscores[sel])
            dt_depth.append(pboxes[sel, 2])
            dt_rank.append(rank[drows])
            gsel = gorder[gcols]
            gt_cat.append(np.full(ng, k))
            gt_depth.append(gboxes[gsel, 2])
            gt_ign.append(gign[gsel])

    def cat_arrays(chunks: list, dtype: Any) -> np.ndarray:
        return np.concatenate(chunks).astype(dtype) if chunks else np.zeros(0, dtype)

    dt_cat_a = cat_arrays(dt_cat, np.int64)
    dt_score_a = cat_arrays(dt_score, np.float64)
    dt_depth_a = cat_arrays(dt_depth, np.float64)
    dt_rank_a = cat_arrays(dt_rank, np.int64)
    gt_cat_a = cat_arrays(gt_cat, np.int64)
    gt_depth_a = cat_arrays(gt_depth, np.float64)
    gt_ign_a = cat_arrays(gt_ign, np.bool_)
    iou_flat = cat_arrays(iou_blocks, np.float64)

    # ---- matching (numba), then COCO's ignore rules per depth range ----
    lo = np.array([r[1] for r in ranges])[:, None]
    hi = np.array([r[2] for r in ranges])[:, None]
    gt_ignore_r = gt_ign_a[None, :] | (gt_depth_a[None, :] < lo) | (gt_depth_a[None, :] > hi)
    matched = np.zeros((A, T, n_dt), dtype=np.bool_)
    ig_match = np.zeros((A, T, n_dt), dtype=np.bool_)
    if g_dt_start:
        _match_groups(
            iou_flat,
            np.asarray(g_iou_off, np.int64),
            np.asarray(g_dt_start, np.int64),
            np.asarray(g_dt_count, np.int64),
            np.asarray(g_gt_start, np.int64),
            np.asarray(g_gt_count, np.int64),
            np.ascontiguousarray(gt_ignore_r),
            thr,
            matched,
            ig_match,
        )
    dt_out = (dt_depth_a[None, :] < lo) | (dt_depth_a[None, :] > hi)  # (A, n_dt)
    dt_ignored = ig_match | (~matched & dt_out[:, None, :])
    tps = matched & ~dt_ignored
    fps = ~matched & ~dt_ignored

    # ---- accumulation (numpy) ----
    precision = -np.ones((T, R, K, A, M))
    recall = -np.ones((T, K, A, M))
    num_gt = np.zeros(K, np.int64)
    num_pred = np.zeros(K, np.int64)
    for k in range(K):
        in_k = np.flatnonzero(dt_cat_a == k)  # image order, then score rank
        g_in_k = gt_cat_a == k
        num_gt[k] = int(np.count_nonzero(g_in_k & ~gt_ign_a))
        num_pred[k] = len(in_k)
        for a in range(A):
            npig = int(np.count_nonzero(g_in_k & ~gt_ignore_r[a]))
            if npig == 0:
                continue
            for m, md in enumerate(mdets):
                idx = in_k[dt_rank_a[in_k] < md]
                nd = len(idx)
                if nd == 0:
                    recall[:, k, a, m] = 0.0
                    precision[:, :, k, a, m] = 0.0
                    continue
                idx = idx[np.argsort(-dt_score_a[idx], kind="stable")]
                tp = np.cumsum(tps[a][:, idx], axis=1).astype(np.float64)
                fp = np.cumsum(fps[a][:, idx], axis=1).astype(np.float64)
                rc = tp / npig
                pr = tp / (fp + tp + np.spacing(1))
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
                recall[:, k, a, m] = rc[:, -1]
                for t in range(T):
                    pos = np.searchsorted(rc[t], RECALL_THRESHOLDS, side="left")
                    q = np.zeros(R)
                    ok = pos < nd
                    q[ok] = pr[t, pos[ok]]
                    precision[t, :, k, a, m] = q

    def figures(p: np.ndarray, r: np.ndarray) -> dict[str, float]:
        """Summary figures from precision (T, R, K', A, M) and recall (T, K', A, M)."""
        out = {"AP": _mean_valid(p[:, :, :, 0, -1])}
        for name, t in (("AP15", 0.15), ("AP25", 0.25), ("AP50", 0.50)):
            hit = np.flatnonzero(np.isclose(thr, t))
            if hit.size:
                out[name] = _mean_valid(p[hit][:, :, :, 0, -1])
        for a, (rname, _, _) in enumerate(ranges[1:], start=1):
            out[f"AP{_RANGE_KEYS.get(rname, '_' + rname)}"] = _mean_valid(p[:, :, :, a, -1])
        for m, md in enumerate(mdets):
            out[f"AR{md}"] = _mean_valid(r[:, :, 0, m])
        for a, (rname, _, _) in enumerate(ranges[1:], start=1):
            out[f"AR{_RANGE_KEYS.get(rname, '_' + rname)}"] = _mean_valid(r[:, :, a, -1])
        return out

    result: dict[str, Any] = figures(precision, recall)
    result["AP_per_threshold"] = {
        round(float(t), 6): _mean_valid(precision[i, :, :, 0, -1]) for i, t in enumerate(thr)
    }
    result["per_category"] = {
        c: {
            **figures(precision[:, :, k : k + 1], recall[:, k : k + 1]),
            "num_gt": int(num_gt[k]),
            "num_pred": int(num_pred[k]),
        }
        for k, c in enumerate(categories)
    }
    result["categories"] = categories
    result["iou_thresholds"] = tuple(float(t) for t in thr)
    result["max_dets"] = tuple(mdets)
    result["depth_ranges"] = {name: (a, b) for name, a, b in ranges}
    result["num_images"] = len(images)
    result["precision"] = precision
    result["recall"] = recall
    return result
