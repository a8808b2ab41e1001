"""Speed of the detection reward and of AP3D on one core, each against baselines in the same run.

Run: ``.venv/bin/python benchmarks/rewards.py``.

(a) 640 calls of :func:`vst.rewards.det3d_reward` (one GRPO batch of 128 prompts x 5 rollouts),
    each a 10-box answer text against 10 ground-truth boxes (8 perturbed ground truths + 2 false
    positives, all three angles non-zero). Budget: the whole batch in < 100 ms (median of 5
    runs). Baselines: the same work split into its parts (text parsing alone, ``box3d_iou``
    alone, Hungarian matching alone) and a naive reward that computes its IoU matrix pair by pair
    (100 ``box3d_iou`` calls per reward), timed on 32 rewards and scaled to 640.
(b) :func:`vst.eval.evaluate_det3d` on a SUN RGB-D sized synthetic split: 5,050 images, 10
    categories, 1-15 boxes per image (mean about 4), depths mostly 1-8 m with a tail to 45 m,
    5% ignore flags; detections = perturbed ground truths (80% recalled, some duplicated) + false
    positives, with scores. Budget: < 30 s. Baselines: the IoU alone (per image and category, as a
    straightforward evaluator calls it), a naive pair-by-pair IoU loop on 300 images scaled to
    5,050, and pycocotools' COCOeval (if installed) fed the same 3D IoU matrices through
    ``computeIoU``, which also checks the figures (max |difference| of precision and recall must
    be <= 1e-6).

(c) :func:`vst.rewards.compute_reward` on hostile 1 MB answers (``vst.testing.hostile_text``:
    combining-mark runs, lone surrogates, NUL, bidi marks, digits, deep brackets, ``\\boxed{``,
    fences, end tokens, think tags, 13,000 boxes, ...), each after ``<think>x</think>``, without
    think tags, and inside the reasoning, in the mcq, exact, numeric, order, ocr, math and det3d
    modes. Budget: every call < 1 s (median of 3). Baseline: the same mode on a normal answer
    (median of 200 calls) in the same run; the figure is the worst hostile call per mode.

Prints a PASS/FAIL line per budget and exits non-zero on any FAIL. Pinned to one core
(``os.sched_setaffinity``, ``NUMBA_NUM_THREADS=1``; the kernels are serial).
"""

from __future__ import annotations

import contextlib
import io
import os
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

REWARD_BUDGET_S = 0.100
"""640 detection rewards of 10-box responses, seconds on one core."""

AP3D_BUDGET_S = 30.0
"""AP3D on 5,050 images, seconds on one core."""

HOSTILE_BUDGET_S = 1.0
"""One reward of a 1 MB hostile answer, seconds on one core."""

ACCURACY_BUDGET = 1e-6
"""Allowed max |difference| of AP3D precision / recall against pycocotools."""

CATEGORIES = [
    "bed",
    "bookshelf",
    "cabinet",
    "chair",
    "desk",
    "lamp",
    "sofa",
    "table",
    "toilet",
    "tv",
]


def _timed(fn: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(median, best) wall time of ``fn`` over ``repeats`` runs, seconds."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), min(times)


def _random_boxes(rng: np.random.Generator, n: int, depth: np.ndarray | None = None) -> np.ndarray:
    """Boxes in the camera frame (x right, y down, z forward), degrees."""
    z = rng.uniform(1.0, 6.0, n) if depth is None else depth
    x = rng.uniform(-0.6, 0.6, n) * z
    y = rng.uniform(-0.2, 0.5, n) * z
    size = rng.uniform(0.3, 2.0, (n, 3))
    ang = np.c_[rng.uniform(-10, 10, n), rng.uniform(-180, 180, n), rng.uniform(-10, 10, n)]
    return np.c_[x, y, z, size, ang]


def _perturb(rng: np.random.Generator, boxes: np.ndarray) -> np.ndarray:
    out = boxes.copy()
    scale = 0.03 * np.maximum(boxes[:, 2:3], 1.0)
    out[:, 0:3] += rng.normal(0.0, 1.0, (len(boxes), 3)) * scale
    out[:, 3:6] *= rng.uniform(0.8, 1.2, (len(boxes), 3))
    out[:, 6:9] += rng.normal(0.0, [3.0, 10.0, 3.0], (len(boxes), 3))
    return out


# ------------------------------------------------------------------------------------------------
# (a) detection reward
# ------------------------------------------------------------------------------------------------


def bench_reward(rng: np.random.Generator) -> tuple[bool, list[str]]:
    from scipy.optimize import linear_sum_assignment

    from vst.geometry.iou import box3d_iou
    from vst.geometry.text import box3d_to_text

    det3d_reward = _wait_for_reward()
    from vst.rewards.parsing import parse_boxes3d

    cases = []
    for _ in range(640):
        gt = _random_boxes(rng, 10)
        labels = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), 10)]
        pred = np.r_[_perturb(rng, gt[:8]), _random_boxes(rng, 2)]
        plabels = labels[:8] + [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), 2)]
        order = rng.permutation(10)
        text = box3d_to_text(pred[order], [plabels[i] for i in order])
        spec = [{"bbox_3d": b.tolist(), "label": lab} for b, lab in zip(gt, labels, strict=True)]
        cases.append((text, spec, gt))
    parsed = [parse_boxes3d(text)[0] for text, _, _ in cases]
    ious = [box3d_iou(p, gt) for p, (_, _, gt) in zip(parsed, cases, strict=True)]
    rewards = [det3d_reward(text, spec) for text, spec, _ in cases[:8]]  # warm-up (JIT, caches)

    def run_rewards() -> None:
        for text, spec, _ in cases:
            det3d_reward(text, spec)

    def run_parse() -> None:
        for text, _, _ in cases:
            parse_boxes3d(text)

    def run_iou() -> None:
        for p, (_, _, gt) in zip(parsed, cases, strict=True):
            box3d_iou(p, gt)

    def run_hungarian() -> None:
        for m in ious:
            linear_sum_assignment(m, maximize=True)

    def run_naive() -> None:  # parse, IoU pair by pair, Hungarian, F1: 32 rewards
        for text, _, gt in cases[:32]:
            p = parse_boxes3d(text)[0]
            m = np.array([[box3d_iou(a, b)[0, 0] for b in gt] for a in p])
            r, c = linear_sum_assignment(m, maximize=True)
            tp = int(np.count_nonzero(m[r, c] >= 0.25))
            _ = 0.5 * m[r, c].sum() / len(gt) + 0.5 * 2 * tp / (len(p) + len(gt))

    rewards = [det3d_reward(text, spec) for text, spec, _ in cases]
    t_reward, t_reward_best = _timed(run_rewards, 5)
    t_parse, _ = _timed(run_parse, 5)
    t_iou, _ = _timed(run_iou, 5)
    t_hung, _ = _timed(run_hungarian, 5)
    t_naive, _ = _timed(run_naive, 3)
    t_naive *= 640 / 32
    ok = t_reward < REWARD_BUDGET_S
    lines = [
        "(a) det3d_reward: 640 responses of 10 boxes vs 10 ground truths (mean reward "
        f"{np.mean(rewards):.3f})",
        f"    vst det3d_reward, whole batch     {t_reward * 1e3:8.1f} ms median "
        f"({t_reward_best * 1e3:.1f} best) = {t_reward / 640 * 1e6:6.1f} us/reward",
        f"    part: parse_boxes3d alone         {t_parse * 1e3:8.1f} ms",
        f"    part: box3d_iou alone (10 x 10)   {t_iou * 1e3:8.1f} ms",
        f"    part: Hungarian alone             {t_hung * 1e3:8.1f} ms",
        f"    baseline: naive pair-by-pair IoU  {t_naive * 1e3:8.1f} ms (32 timed, x20)"
        f" -> vst is {t_naive / t_reward:.1f}x faster",
        f"    budget < {REWARD_BUDGET_S * 1e3:.0f} ms: {'PASS' if ok else 'FAIL'} "
        f"({t_reward * 1e3:.1f} ms)",
    ]
    return ok, lines


def _wait_for_reward(timeout_s: float = 0.0) -> Callable[..., float]:
    """``vst.rewards.det3d_reward`` (optionally polling until it imports)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            from vst.rewards import det3d_reward

            return det3d_reward
        except ImportError:
            if time.monotonic() >= deadline:
                raise
            time.sleep(10)


# ------------------------------------------------------------------------------------------------
# (b) AP3D
# ------------------------------------------------------------------------------------------------


def synthetic_split(rng: np.random.Generator, n_images: int = 5050) -> tuple[list, list]:
    """SUN RGB-D sized synthetic ground truth and detections (see the module docstring)."""
    gts, preds = [], []
    for img in range(n_images):
        n = int(min(15, 1 + rng.poisson(3.0)))
        depth = np.where(rng.random(n) < 0.03, rng.uniform(8, 45, n), rng.uniform(1, 8, n))
        gt = _random_boxes(rng, n, depth)
        labels = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), n)]
        ignore = rng.random(n) < 0.05
        gts.append({"image_id": img, "boxes": gt, "labels": labels, "ignore": ignore})
        hit = rng.random(n) < 0.8
        dup = hit & (rng.random(n) < 0.1)
        n_fp = int(rng.poisson(3.0))
        boxes = np.r_[_perturb(rng, gt[hit]), _perturb(rng, gt[dup]), _random_boxes(rng, n_fp)]
        plabels = (
            [lab for lab, h in zip(labels, hit, strict=True) if h]
            + [lab for lab, d in zip(labels, dup, strict=True) if d]
            + [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), n_fp)]
        )
        scores = np.r_[
            rng.uniform(0.3, 1.0, int(hit.sum())),
            rng.uniform(0.1, 0.6, int(dup.sum())),
            rng.uniform(0.0, 0.7, n_fp),
        ]
        preds.append({"image_id": img, "boxes": boxes, "labels": plabels, "scores": scores})
    return gts, preds


def _groups(gts: list, preds: list):
    """Per (image, category): detections sorted by score (top 100) and ground truths."""
    for g, p in zip(gts, preds, strict=True):
        for cat in set(g["labels"]) | set(p["labels"]):
            gi = [i for i, lab in enumerate(g["labels"]) if lab == cat]
            pi = [i for i, lab in enumerate(p["labels"]) if lab == cat]
            pi = [pi[i] for i in np.argsort(-p["scores"][pi], kind="stable")][:100]
            yield g["image_id"], cat, p["boxes"][pi], g["boxes"][gi]


def _coco_reference(gts: list, preds: list, iou_fn) -> tuple[np.ndarray, np.ndarray] | None:
    """pycocotools COCOeval with the Omni3D parameters and 3D IoU injected via computeIoU; depth
    goes through COCO's area field (ignored ground truths get area -1: outside every range)."""
    try:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
    except ImportError:
        return None
    from vst.eval.det3d import DEPTH_RANGES

    cat_id = {c: i + 1 for i, c in enumerate(sorted({c for g in gts for c in g["labels"]}))}
    anns, dets, depth = [], [], []
    for g in gts:
        for b, lab, ig in zip(g["boxes"], g["labels"], g["ignore"], strict=True):
            anns.append(
                {
                    "id": len(anns) + 1,
                    "image_id": g["image_id"],
                    "category_id": cat_id[lab],
                    "bbox": [0.0, 0.0, 1.0, 1.0],
                    "area": -1.0 if ig else float(b[2]),
                    "iscrowd": 0,
                    "box9": b,
                }
            )
    for p in preds:
        for b, lab, s in zip(p["boxes"], p["labels"], p["scores"], strict=True):
            if lab in cat_id:
                dets.append(
                    {
                        "image_id": p["image_id"],
                        "category_id": cat_id[lab],
                        "bbox": [0.0, 0.0, 1.0, 1.0],
                        "score": float(s),
                        "box9": b,
                    }
                )
                depth.append(float(b[2]))
    gt_api = COCO()
    gt_api.dataset = {
        "images": [{"id": g["image_id"]} for g in gts],
        "annotations": anns,
        "categories": [{"id": i} for i in cat_id.values()],
    }

    class Eval(COCOeval):
        def computeIoU(self, imgId, catId):  # noqa: N802 - COCOeval's name
            gt = self._gts[imgId, catId]
            dt = self._dts[imgId, catId]
            if not gt or not dt:
                return []
            order = np.argsort([-d["score"] for d in dt], kind="mergesort")
            dt = [dt[i] for i in order][: self.params.maxDets[-1]]
            return iou_fn(np.array([d["box9"] for d in dt]), np.array([g["box9"] for g in gt]))

    with contextlib.redirect_stdout(io.StringIO()):
        gt_api.createIndex()
        dt_api = gt_api.loadRes(dets)
        for ann in dt_api.dataset["annotations"]:
            ann["area"] = depth[ann["id"] - 1]
        ev = Eval(gt_api, dt_api, "bbox")
        ev.params.iouThrs = np.linspace(0.05, 0.5, 10)
        ev.params.areaRng = [list(v) for v in DEPTH_RANGES.values()]
        ev.params.areaRngLbl = list(DEPTH_RANGES)
        ev.params.maxDets = [1, 10, 100]
        ev.evaluate()
        ev.accumulate()
    return ev.eval["precision"], ev.eval["recall"]


def bench_ap3d(rng: np.random.Generator) -> tuple[bool, list[str]]:
    from vst.eval import evaluate_det3d
    from vst.geometry.iou import box3d_iou

    gts, preds = synthetic_split(rng)
    n_gt = sum(len(g["boxes"]) for g in gts)
    n_dt = sum(len(p["boxes"]) for p in preds)
    t0 = time.perf_counter()
    evaluate_det3d(gts[:3], preds[:3])  # warm-up: numba cache load (or first compile)
    t_warm = time.perf_counter() - t0

    t0 = time.perf_counter()
    result = evaluate_det3d(gts, preds)
    t_ap = time.perf_counter() - t0

    groups = list(_groups(gts, preds))
    t0 = time.perf_counter()
    for _, _, d, g in groups:
        if len(d) and len(g):
            box3d_iou(d, g)
    t_iou = time.perf_counter() - t0
    n_pairs = sum(len(d) * len(g) for _, _, d, g in groups)

    sub = [grp for grp in groups if grp[0] < 300]
    t0 = time.perf_counter()
    for _, _, d, g in sub:
        [[box3d_iou(a, b) for b in g] for a in d]
    t_naive = (time.perf_counter() - t0) * len(gts) / 300

    lines = [
        f"(b) evaluate_det3d: {len(gts):,} images, {len(result['categories'])} categories, "
        f"{n_gt:,} ground truths, {n_dt:,} detections, {n_pairs:,} same-category pairs",
        f"    AP {result['AP']:.4f}  AP15 {result['AP15']:.4f}  AP25 {result['AP25']:.4f}  "
        f"AP50 {result['AP50']:.4f}  APn {result['APn']:.4f}  APm {result['APm']:.4f}  "
        f"APf {result['APf']:.4f}  AR1 {result['AR1']:.4f}  AR10 {result['AR10']:.4f}  "
        f"AR100 {result['AR100']:.4f}",
        f"    vst evaluate_det3d                 {t_ap:8.2f} s (warm-up {t_warm:.2f} s apart)",
        f"    baseline: box3d_iou alone per (image, category) {t_iou:8.2f} s "
        f"({len(groups):,} calls)",
        f"    baseline: naive pair-by-pair IoU   {t_naive:8.2f} s (300 images timed, scaled)",
    ]
    ok = t_ap < AP3D_BUDGET_S
    t0 = time.perf_counter()
    ref = _coco_reference(gts, preds, box3d_iou)
    t_coco = time.perf_counter() - t0
    acc_ok = True
    if ref is None:
        lines.append("    baseline: pycocotools not installed, cross-check skipped")
    else:
        diff = max(
            float(np.abs(result["precision"] - ref[0]).max()),
            float(np.abs(result["recall"] - ref[1]).max()),
        )
        acc_ok = diff <= ACCURACY_BUDGET
        lines += [
            f"    baseline: pycocotools COCOeval, same 3D IoU {t_coco:8.2f} s "
            f"-> vst is {t_coco / t_ap:.1f}x faster",
            f"    max |difference| vs COCOeval (precision, recall): {diff:.2e}: "
            f"{'PASS' if acc_ok else 'FAIL'} (<= {ACCURACY_BUDGET:g})",
        ]
    lines.append(f"    budget < {AP3D_BUDGET_S:.0f} s: {'PASS' if ok else 'FAIL'} ({t_ap:.2f} s)")
    return ok and acc_ok, lines


# ------------------------------------------------------------------------------------------------
# (c) hostile 1 MB answers
# ------------------------------------------------------------------------------------------------


def bench_hostile() -> tuple[bool, list[str]]:
    from vst.rewards import compute_reward
    from vst.testing.hostile_text import REWARD_SPECS, hostile_answers, normal_answers

    hostile = hostile_answers()
    normal = normal_answers()
    wraps = {
        "answer": lambda t: "<think>x</think>" + t,
        "whole": lambda t: t,
        "reasoning": lambda t: "<think>" + t + "</think>B",
    }
    lines = [
        f"(c) compute_reward on {len(hostile)} hostile 1 MB answers x {len(wraps)} placements "
        f"(after </think>, no tags, inside <think>) per mode; baseline: a normal answer"
    ]
    ok = True
    for mode, spec in REWARD_SPECS.items():
        response = "<think>x</think>" + normal[mode]
        compute_reward(response, spec)  # warm-up (numba kernels for det3d)
        t_base, _ = _timed(lambda r=response, s=spec: [compute_reward(r, s) for _ in range(200)], 3)
        t_base /= 200
        worst, worst_case, total = 0.0, "", 0.0
        for case, text in hostile.items():
            for place, wrap in wraps.items():
                response = wrap(text)
                t, _ = _timed(lambda r=response, s=spec: compute_reward(r, s), 3)
                total += t
                if t > worst:
                    worst, worst_case = t, f"{case}/{place}"
        n = len(hostile) * len(wraps)
        mode_ok = worst < HOSTILE_BUDGET_S
        ok &= mode_ok
        lines.append(
            f"    {mode:8s} normal {t_base * 1e6:7.1f} us | 1 MB hostile: mean "
            f"{total / n * 1e3:6.1f} ms, worst {worst * 1e3:6.1f} ms ({worst_case}) "
            f"= {worst / t_base:,.0f}x normal: {'PASS' if mode_ok else 'FAIL'}"
        )
    lines.append(f"    budget every call < {HOSTILE_BUDGET_S:.0f} s: {'PASS' if ok else 'FAIL'}")
    return ok, lines


def main() -> int:
    os.environ["NUMBA_NUM_THREADS"] = "1"
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # pin to one core
    ok_a, lines_a = bench_reward(np.random.default_rng(20261121))
    print("\n".join(lines_a), flush=True)
    ok_b, lines_b = bench_ap3d(np.random.default_rng(5050))
    print("\n".join(lines_b), flush=True)
    ok_c, lines_c = bench_hostile()
    print("\n".join(lines_c), flush=True)
    return 0 if ok_a and ok_b and ok_c else 1


if __name__ == "__main__":
    sys.exit(main())
