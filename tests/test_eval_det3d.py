"""Omni3D-style AP3D (`vst.eval.det3d`): hand cases, and a cross-check against pycocotools' COCOeval
on the same matching problem."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from vst.eval import evaluate_det3d
from vst.eval.det3d import DEPTH_RANGES, IOU_THRESHOLDS, RECALL_THRESHOLDS
from vst.geometry.iou import box3d_iou

EPS = np.spacing(1)
"""COCOeval's precision is tp / (tp + fp + eps), so a perfect precision is 1 - 2.2e-16."""


def box(x: float, z: float, w: float = 1.0, d: float = 1.0, y: float = 0.0, h: float = 1.0):
    """An axis-aligned box centred at (x, y, z) with sizes (w, h, d)."""
    return [x, y, z, w, h, d, 0.0, 0.0, 0.0]


def gt_entry(image_id, boxes, labels, ignore=None):
    out = {"image_id": image_id, "boxes": np.array(boxes, float).reshape(-1, 9), "labels": labels}
    if ignore is not None:
        out["ignore"] = ignore
    return out


def pred_entry(image_id, boxes, labels, scores):
    return {
        "image_id": image_id,
        "boxes": np.array(boxes, float).reshape(-1, 9),
        "labels": labels,
        "scores": scores,
    }


# ------------------------------------------------------------------------------------------------
# hand cases
# ------------------------------------------------------------------------------------------------


def test_perfect_predictions_give_one():
    gt = [
        gt_entry(1, [box(0, 5), box(3, 5, 2, 2)], ["chair", "table"]),
        gt_entry(2, [box(-2, 20), box(1, 40)], ["chair", "chair"]),
    ]
    preds = [
        pred_entry(1, [box(0, 5), box(3, 5, 2, 2)], ["chair", "table"], [0.9, 0.3]),
        pred_entry(2, [box(-2, 20), box(1, 40)], ["chair", "chair"], [0.5, 0.6]),
    ]
    r = evaluate_det3d(gt, preds)
    assert r["categories"] == ["chair", "table"]
    for key in ("AP", "AP15", "AP25", "AP50", "APn", "AR10", "AR100"):
        assert r[key] == pytest.approx(1.0, abs=1e-12), key
    # chair: one per range; table only near, so it has no medium / far value
    assert r["per_category"]["chair"]["APm"] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(r["per_category"]["table"]["APf"])
    assert r["APf"] == pytest.approx(1.0, abs=1e-12)
    # max one detection per image and category: image 2 keeps only its 0.6 chair
    assert r["per_category"]["chair"]["AR1"] == pytest.approx(2 / 3)
    assert r["per_category"]["chair"]["num_gt"] == 3
    assert r["num_images"] == 2


def test_wrong_class_gives_zero():
    gt = [gt_entry(1, [box(0, 5)], ["chair"]), gt_entry(2, [box(0, 5)], ["table"])]
    preds = [
        pred_entry(1, [box(0, 5)], ["table"], [0.9]),
        pred_entry(2, [box(0, 5)], ["chair"], [0.9]),
    ]
    r = evaluate_det3d(gt, preds)
    assert r["AP"] == 0.0 and r["AP15"] == 0.0 and r["AR100"] == 0.0
    assert r["per_category"]["chair"]["num_pred"] == 1  # the FP from image 2


def test_labels_absent_from_gt_are_not_evaluated():
    gt = [gt_entry(1, [box(0, 5)], ["chair"])]
    preds = [pred_entry(1, [box(0, 5), box(0, 5)], ["lamp", "chair"], [0.99, 0.5])]
    r = evaluate_det3d(gt, preds)
    assert r["categories"] == ["chair"]
    assert r["AP"] == pytest.approx(1.0, abs=1e-12)


def test_category_with_only_ignored_gt_is_excluded():
    gt = [gt_entry(1, [box(0, 5), box(4, 5)], ["chair", "sofa"], ignore=[False, True])]
    preds = [pred_entry(1, [box(0, 5), box(9, 5)], ["chair", "sofa"], [0.9, 0.9])]
    r = evaluate_det3d(gt, preds)
    assert r["categories"] == ["chair", "sofa"]
    assert np.isnan(r["per_category"]["sofa"]["AP"])
    assert r["per_category"]["sofa"]["num_gt"] == 0
    assert r["AP"] == pytest.approx(1.0, abs=1e-12)  # the mean skips sofa


def test_one_tp_after_a_higher_scored_fp():
    # two chairs; detections: an FP (0.9) then a TP on the first chair (0.8); second chair missed.
    # ranked: FP, TP -> recall [0, 1/2], precision [0, 1/2] -> monotone [1/2, 1/2]; the 51 recall
    # points 0.00..0.50 get 1/2, the other 50 get 0: AP = 25.5 / 101 at every threshold.
    gt = [gt_entry(1, [box(0, 5), box(5, 5)], ["chair", "chair"])]
    preds = [pred_entry(1, [box(-5, 5), box(0, 5)], ["chair", "chair"], [0.9, 0.8])]
    r = evaluate_det3d(gt, preds)
    half = 1 / (2 + EPS)
    assert r["AP"] == pytest.approx(51 * half / 101, rel=1e-12)
    assert r["AP15"] == r["AP25"] == r["AP50"] == pytest.approx(25.5 / 101, rel=1e-12)
    assert r["AR100"] == r["AR10"] == 0.5
    assert r["AR1"] == 0.0  # one detection per image: only the FP
    p = r["precision"][:, :, 0, 0, -1]
    assert np.all(p[:, :51] == half) and np.all(p[:, 51:] == 0.0)


def test_iou_thresholds_separate_tp_from_fp():
    # a detection shifted by 0.5 m along x on a 1 m cube: IoU = 0.5 / 1.5 = 1/3
    gt = [gt_entry(1, [box(0, 5)], ["chair"])]
    preds = [pred_entry(1, [box(0.5, 5)], ["chair"], [0.9])]
    r = evaluate_det3d(gt, preds)
    per_t = r["AP_per_threshold"]
    assert list(per_t) == [0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5]
    assert [round(v, 9) for v in per_t.values()] == [1.0] * 6 + [0.0] * 4
    assert r["AP"] == pytest.approx(0.6, abs=1e-12)
    assert r["AP25"] == pytest.approx(1.0, abs=1e-12) and r["AP50"] == 0.0


def test_depth_ranges_split_by_gt_centre_depth():
    # chairs at depth 5 (near), 20 (medium), 50 (far); detections: TP near (0.9), an unmatched FP at
    # depth 20 (0.8), TP far (0.7). Medium chair missed.
    gt = [gt_entry(1, [box(0, 5), box(0, 20), box(0, 50)], ["chair"] * 3)]
    preds = [pred_entry(1, [box(0, 5), box(9, 20), box(0, 50)], ["chair"] * 3, [0.9, 0.8, 0.7])]
    r = evaluate_det3d(gt, preds)
    one = 1 / (1 + EPS)
    # near: only the near TP counts (the far TP hits an out-of-range GT, the FP is out of range)
    assert r["APn"] == pytest.approx(one, rel=1e-12) and r["ARn"] == 1.0
    # medium: the FP counts, the two TPs match out-of-range GTs -> ignored
    assert r["APm"] == 0.0 and r["ARm"] == 0.0
    assert r["APf"] == pytest.approx(one, rel=1e-12) and r["ARf"] == 1.0
    # all: TP, FP, TP over 3 GTs -> recall [1/3, 1/3, 2/3], precision monotone [1, 2/3, 2/3];
    # 34 recall points <= 1/3 get 1, the 33 in (1/3, 2/3] get 2/3
    assert r["AP"] == pytest.approx((34 + 33 * 2 / 3) / 101, rel=1e-12)
    assert r["AR100"] == pytest.approx(2 / 3)


def test_out_of_range_detection_matched_to_in_range_gt_is_tp():
    # GT centre depth 9.8 (near); the detection's centre is at 10.3 (medium) with IoU 1.5/2.5 = 0.6
    gt = [gt_entry(1, [box(0, 9.8, d=2.0)], ["chair"])]
    preds = [pred_entry(1, [box(0, 10.3, d=2.0)], ["chair"], [0.9])]
    r = evaluate_det3d(gt, preds)
    assert r["APn"] == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(r["APm"])  # no medium GT at all
    # an extra unmatched detection at depth 12 is out of the near range: still ignored there
    preds.append(pred_entry(1, [box(5, 12)], ["chair"], [0.95]))
    r = evaluate_det3d(gt, preds)
    assert r["APn"] == pytest.approx(1.0, abs=1e-12)
    assert r["AP"] == pytest.approx(1 / (2 + EPS), rel=1e-12)  # "all" counts it: FP then TP


def test_ignore_flags():
    # chair 1 regular, chair 2 flagged ignore. Detections: on chair 2 (0.9), an FP (0.85), on
    # chair 1 (0.8).
    boxes = [box(0, 5), box(5, 5)]
    preds = [pred_entry(1, [box(5, 5), box(-5, 5), box(0, 5)], ["chair"] * 3, [0.9, 0.85, 0.8])]
    r = evaluate_det3d([gt_entry(1, boxes, ["chair"] * 2, ignore=[False, True])], preds)
    # the first detection is neither TP nor FP: FP, TP over one GT -> 1/2 everywhere
    assert r["AP"] == pytest.approx(1 / (2 + EPS), rel=1e-12)
    assert r["per_category"]["chair"]["num_gt"] == 1
    # without the flag: TP, FP, TP over two GTs -> 51 points at 1, 50 at 2/3
    r = evaluate_det3d([gt_entry(1, boxes, ["chair"] * 2)], preds)
    assert r["AP"] == pytest.approx((51 / (1 + EPS) + 50 * 2 / 3) / 101, rel=1e-12)


def test_regular_gt_preferred_over_ignored_gt():
    # the detection overlaps the ignored GT perfectly and the regular GT with IoU 1/3 (shift 0.5)
    gt = [gt_entry(1, [box(5, 5), box(5.5, 5)], ["chair"] * 2, ignore=[True, False])]
    preds = [pred_entry(1, [box(5, 5)], ["chair"], [0.9])]
    r = evaluate_det3d(gt, preds)
    # up to IoU 1/3 it matches the regular GT (TP); above, only the ignored one (ignored, no FP)
    ap = r["AP_per_threshold"]
    assert [round(v, 9) for v in ap.values()] == [1.0] * 6 + [0.0] * 4
    assert np.all(r["precision"][6:, :, 0, 0, -1] == 0.0)  # no TP, no FP there: precision 0


def test_max_dets_keep_the_highest_scores_per_image_and_category():
    gt = [gt_entry(1, [box(0, 5)], ["chair"])]
    dets = [box(10 + i, 5) for i in range(11)] + [box(0, 5)]
    scores = [0.9 - 0.01 * i for i in range(11)] + [0.1]
    r = evaluate_det3d(gt, [pred_entry(1, dets, ["chair"] * 12, scores)])
    assert r["AR1"] == 0.0 and r["AR10"] == 0.0 and r["AR100"] == 1.0
    assert r["AP"] == pytest.approx(1 / (12 + EPS), rel=1e-12)


def test_empty_inputs_and_validation():
    gt = [gt_entry(1, [box(0, 5)], ["chair"]), gt_entry(2, [], [])]
    r = evaluate_det3d(gt, [])
    assert r["AP"] == 0.0 and r["AR100"] == 0.0
    assert evaluate_det3d([gt_entry(1, [], [])], [])["categories"] == []
    assert np.isnan(evaluate_det3d([gt_entry(1, [], [])], [])["AP"])
    with pytest.raises(ValueError, match="not in the ground truth"):
        evaluate_det3d(gt, [pred_entry(3, [box(0, 5)], ["chair"], [0.5])])
    with pytest.raises(ValueError, match="duplicate"):
        evaluate_det3d([gt[0], gt[0]], [])
    with pytest.raises(ValueError, match="finite"):
        evaluate_det3d(gt, [pred_entry(1, [box(0, 5)], ["chair"], [np.nan])])
    with pytest.raises(ValueError, match="length"):
        evaluate_det3d(gt, [pred_entry(1, [box(0, 5)], ["chair", "sofa"], [0.5])])


def test_degenerate_prediction_is_a_false_positive():
    gt = [gt_entry(1, [box(0, 5)], ["chair"])]
    bad = box(0, 5)
    bad[3] = 0.0
    r = evaluate_det3d(gt, [pred_entry(1, [bad, box(0, 5)], ["chair"] * 2, [0.9, 0.5])])
    assert r["AP"] == pytest.approx(1 / (2 + EPS), rel=1e-12)


# ------------------------------------------------------------------------------------------------
# cross-check against pycocotools
# ------------------------------------------------------------------------------------------------


def _synthetic(seed: int, n_images: int, axis_aligned: bool):
    """Seeded GT and detections (perturbed GT, misses, false positives, ignore flags, crowded
    images beyond 10 and 100 detections). Axis-aligned boxes share the y-range [-0.5, 0.5]."""
    rng = np.random.default_rng(seed)
    cats = ["bed", "chair", "lamp", "sofa"]
    gts, preds = [], []
    for img in range(n_images):
        n = int(rng.integers(0, 7))
        xyz = np.c_[rng.uniform(-6, 6, n), np.zeros(n), rng.uniform(1, 60, n)]
        size = np.c_[rng.uniform(0.5, 3, n), np.ones(n), rng.uniform(0.5, 3, n)]
        ang = np.zeros((n, 3)) if axis_aligned else rng.uniform(-40, 40, (n, 3))
        g = np.c_[xyz, size, ang]
        if not axis_aligned:
            g[:, 4] = rng.uniform(0.5, 3, n)
        labels = [cats[i] for i in rng.integers(0, len(cats), n)]
        ignore = list(rng.random(n) < 0.15)
        gts.append({"image_id": img, "boxes": g, "labels": labels, "ignore": ignore})
        keep = rng.random(n) > 0.2
        p = g[keep].copy()
        p[:, [0, 2]] += rng.normal(0, 0.35, (len(p), 2))
        p[:, [3, 5]] *= rng.uniform(0.7, 1.3, (len(p), 2))
        if not axis_aligned:
            p[:, 6:9] += rng.normal(0, 8, (len(p), 3))
        plabels = [lab for lab, k in zip(labels, keep, strict=True) if k]
        n_fp = int(rng.integers(0, 4)) + (120 if img == 3 else 12 if img % 9 == 0 else 0)
        fp = np.c_[
            rng.uniform(-6, 6, n_fp),
            np.zeros(n_fp),
            rng.uniform(-2, 62, n_fp),
            rng.uniform(0.5, 3, n_fp),
            np.ones(n_fp),
            rng.uniform(0.5, 3, n_fp),
            np.zeros((n_fp, 3)) if axis_aligned else rng.uniform(-40, 40, (n_fp, 3)),
        ]
        fplabels = [cats[i] for i in rng.integers(0, len(cats), n_fp)]
        if img == 3:
            fplabels[:120] = ["chair"] * 120
        boxes = np.r_[p, fp]
        preds.append(
            {
                "image_id": img,
                "boxes": boxes,
                "labels": plabels + fplabels,
                "scores": rng.random(len(boxes)),
            }
        )
    return gts, preds, cats


def _coco_eval(gts, preds, cats, iou_fn=None):
    """pycocotools COCOeval on the same problem: 2D rectangles (x, z) as COCO boxes; COCO's area
    field carries the centre depth (ignored GT: area -1, outside every range), areaRng = the depth
    ranges. ``iou_fn`` replaces computeIoU (detections sorted by score, as COCOeval passes them)."""
    pytest.importorskip("pycocotools", reason="pycocotools not installed (dev extra)")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    cat_id = {c: i + 1 for i, c in enumerate(cats)}
    anns, dets, dt_depth = [], [], []
    for g in gts:
        for b, lab, ig in zip(g["boxes"], g["labels"], g["ignore"], strict=True):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": g["image_id"],
                    "category_id": cat_id[lab],
                    "bbox": [b[0] - b[3] / 2, b[2] - b[5] / 2, b[3], b[5]],
                    "area": -1.0 if ig else float(b[2]),
                    "iscrowd": 0,
                    "box9": b,
                }
            )
    for p in preds:
        for b, lab, s in zip(p["boxes"], p["labels"], p["scores"], strict=True):
            dets.append(
                {
                    "image_id": p["image_id"],
                    "category_id": cat_id[lab],
                    "bbox": [b[0] - b[3] / 2, b[2] - b[5] / 2, b[3], b[5]],
                    "score": float(s),
                    "box9": b,
                }
            )
            dt_depth.append(float(b[2]))
    gt_api = COCO()
    gt_api.dataset = {
        "images": [{"id": g["image_id"]} for g in gts],
        "annotations": anns,
        "categories": [{"id": i} for i in cat_id.values()],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        dt_api = gt_api.loadRes(dets)
    for ann in dt_api.dataset["annotations"]:
        ann["area"] = dt_depth[ann["id"] - 1]  # loadRes numbers results 1.. in the given order

    class Eval(COCOeval):
        def computeIoU(self, imgId, catId):  # noqa: N802 - COCOeval's name
            if iou_fn is None:
                return super().computeIoU(imgId, catId)
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
            if not gt or not dt:
                return []
            order = np.argsort([-d["score"] for d in dt], kind="mergesort")
            dt = [dt[i] for i in order][: self.params.maxDets[-1]]
            return iou_fn(np.array([d["box9"] for d in dt]), np.array([g["box9"] for g in gt]))

    ev = Eval(gt_api, dt_api, "bbox")
    ev.params.iouThrs = np.linspace(0.05, 0.5, 10)
    ev.params.areaRng = [list(v) for v in DEPTH_RANGES.values()]
    ev.params.areaRngLbl = list(DEPTH_RANGES)
    ev.params.maxDets = [1, 10, 100]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"], ev.eval["recall"]


def _rect_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """2D IoU of the (x, z) rectangles, for checking no pair sits on a threshold."""
    lo = np.maximum(
        a[:, None, [0, 2]] - a[:, None, [3, 5]] / 2, b[None, :, [0, 2]] - b[None, :, [3, 5]] / 2
    )
    hi = np.minimum(
        a[:, None, [0, 2]] + a[:, None, [3, 5]] / 2, b[None, :, [0, 2]] + b[None, :, [3, 5]] / 2
    )
    inter = np.prod(np.clip(hi - lo, 0, None), axis=2)
    area_a = a[:, 3] * a[:, 5]
    area_b = b[:, 3] * b[:, 5]
    return inter / (area_a[:, None] + area_b[None, :] - inter)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_pycocotools_on_equivalent_2d_problem(seed):
    """Axis-aligned boxes with one shared vertical extent: 3D IoU = 2D IoU of the (x, z)
    rectangles, which pycocotools computes itself. All figures per threshold, recall point,
    category, depth range and max-dets agree."""
    gts, preds, cats = _synthetic(seed, 80, axis_aligned=True)
    for g, p in zip(gts, preds, strict=True):  # no IoU within 1e-9 of a threshold, and 3D = 2D
        if len(g["boxes"]) and len(p["boxes"]):
            iou2 = _rect_iou(p["boxes"], g["boxes"])
            assert np.abs(iou2[..., None] - np.array(IOU_THRESHOLDS)).min() > 1e-9
            assert np.abs(box3d_iou(p["boxes"], g["boxes"]) - iou2).max() < 1e-12
    ref_p, ref_r = _coco_eval(gts, preds, cats)
    r = evaluate_det3d(gts, preds)
    assert r["categories"] == cats
    assert r["precision"].shape == ref_p.shape == (10, 101, 4, 4, 3)
    assert np.abs(r["precision"] - ref_p).max() <= 1e-6
    assert np.abs(r["recall"] - ref_r).max() <= 1e-6
    # the data exercise every depth range and max-dets setting
    assert (ref_p > 0).any(axis=(0, 1, 2)).all()
    assert not np.allclose(ref_r[..., 0], ref_r[..., 2])
    # summaries as COCOeval would average them
    assert r["AP"] == pytest.approx(ref_p[:, :, :, 0, 2][ref_p[:, :, :, 0, 2] > -1].mean())
    assert r["AR1"] == pytest.approx(ref_r[:, :, 0, 0][ref_r[:, :, 0, 0] > -1].mean())


def test_matches_pycocotools_with_rotated_boxes():
    """General rotated boxes: COCOeval given the same 3D IoU matrices through computeIoU."""
    gts, preds, cats = _synthetic(7, 80, axis_aligned=False)
    ref_p, ref_r = _coco_eval(gts, preds, cats, iou_fn=box3d_iou)
    r = evaluate_det3d(gts, preds)
    assert np.abs(r["precision"] - ref_p).max() <= 1e-6
    assert np.abs(r["recall"] - ref_r).max() <= 1e-6
    assert 0.05 < r["AP"] < 0.95


def test_recall_points_are_cocos():
    assert len(RECALL_THRESHOLDS) == 101 and RECALL_THRESHOLDS[50] == 0.5
    assert np.array_equal(np.array(IOU_THRESHOLDS), np.linspace(0.05, 0.5, 10))
