"""Speed of the rewards and of AP3D on one core, each against baselines in the same run.

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

(d) :func:`vst.rewards.compute_reward` over one GRPO step: 640 completions (128 prompts x 5) in
    the engine's mix of modes, taken from a real engine run of every task over 2 synthetic
    scenes (320x240; the share of each mode among the rule-checkable samples, ``caption``
    left out). Completions are ``<think>reasoning</think>answer``; per prompt a random share is
    right (the sample's answer) and the rest wrong (another sample's answer of that mode);
    det3d prompts get 10 ground-truth boxes and 10-box answers as in (a). The spec is the
    dataset's JSON string, as the trainer passes it. Budget: the step in < 100 ms (median of
    5); the time per mode is printed. Then the dynamic-sampling filter
    (:mod:`vst.train.dynamic_sampling`: ``keep_groups`` on both rounds' accuracies,
    ``gather_rows`` of the kept groups of two rounds into one batch of 640 rows; baseline:
    ``select_rows`` of each round then ``concat_batches``, which copies every row twice) on
    synthetic TRL batches (sizes printed), against the step's reward time of the same run, and
    again without the image tensors. No budget for the filter.

Prints a PASS/FAIL line per budget and exits non-zero on any FAIL. Pinned to one core
(``os.sched_setaffinity``, ``NUMBA_NUM_THREADS=1``; the kernels are serial).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

REWARD_BUDGET_S = 0.100
"""640 detection rewards of 10-box responses, seconds on one core."""

AP3D_BUDGET_S = 30.0
"""AP3D on 5,050 images, seconds on one core."""

HOSTILE_BUDGET_S = 1.0
"""One reward of a 1 MB hostile answer, seconds on one core."""

ACCURACY_BUDGET = 1e-6
"""Allowed max |difference| of AP3D precision / recall against pycocotools."""

STEP_BUDGET_S = 0.100
"""The rewards of one GRPO step (640 completions in the engine's mix of modes), seconds."""

GROUPS, GENERATIONS = 128, 5
"""One GRPO step: prompts x completions per prompt."""

PROMPT_WIDTH, COMPLETION_WIDTH = 700, 300
"""Padded widths of the synthetic GRPO batch (tokens)."""

IMAGES_PER_ROW, IMAGE_GRID = 2, (1, 8, 8)
"""Images per row of the synthetic batch and their (t, h, w) patch grid (112 x 112 pixels)."""

PAD_ID = 151_643
"""Qwen2.5's pad token id."""

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


# ------------------------------------------------------------------------------------------------
# (d) the reward time of one GRPO step, and the dynamic-sampling filter's overhead
# ------------------------------------------------------------------------------------------------


def engine_samples(folder: Path, num_scenes: int = 2) -> list[dict]:
    """Rule-checkable samples (``mode != "caption"``) of one engine run of every registered
    task over ``num_scenes`` synthetic scenes (320x240; 8 samples asked per scene and task):
    ``{"task", "answer", "reward" (the JSON string), "mode"}``."""
    import pyarrow.parquet as pq

    from small_run import small_engine_run
    from vst.engine.writer import list_shards

    tasks = [{"name": "*", "per_scene": 8}]
    small_engine_run(folder, num_scenes, tasks, "benchmarks/rewards.py (d)")
    rows = []
    for path in list_shards(folder / "run" / "data"):
        rows += pq.read_table(path, columns=["task", "answer", "reward"]).to_pylist()
    for row in rows:
        row["mode"] = json.loads(row["reward"])["mode"]
    return [row for row in rows if row["mode"] != "caption"]


def _apportion(counts: dict[str, int], total: int) -> dict[str, int]:
    """``total`` split in proportion to ``counts`` (largest remainder; ties by name)."""
    n = sum(counts.values())
    exact = {k: total * v / n for k, v in counts.items()}
    out = {k: int(v) for k, v in exact.items()}
    by_rest = sorted(exact, key=lambda k: (-(exact[k] - out[k]), k))
    for k in by_rest[: total - sum(out.values())]:
        out[k] += 1
    return out


_REASONING = (
    "Let me look at the image carefully. The camera faces the room; the objects in question "
    "are visible in the frame, and their positions and sizes can be estimated from the "
    "perspective and the floor. "
)


def step_responses(
    samples: list[dict], rng: np.random.Generator
) -> tuple[list[tuple[str, str, str]], dict[str, int]]:
    """640 ``(response, reward spec JSON, mode)`` in GRPO order (128 prompts x 5 completions),
    the prompts split over the modes in the engine's proportions. Each completion is
    ``<think>reasoning</think>answer``; each prompt draws a share of right answers (its own) and
    the rest are wrong (another sample's answer of that mode). det3d prompts get 10 ground-truth
    boxes and 10-box answers as in (a) (8 perturbed + 2 false positives)."""
    by_mode: dict[str, list[dict]] = {}
    for row in samples:
        by_mode.setdefault(row["mode"], []).append(row)
    prompts = _apportion({m: len(v) for m, v in by_mode.items()}, GROUPS)
    from vst.geometry.text import box3d_to_text

    out = []
    for mode in sorted(prompts):
        pool = by_mode[mode]
        for k in range(prompts[mode]):
            row = pool[k % len(pool)]
            spec = json.loads(row["reward"])
            if mode == "det3d":
                gt = _random_boxes(rng, 10)
                labels = [CATEGORIES[i] for i in rng.integers(0, len(CATEGORIES), 10)]
                spec["ground_truth"] = [
                    {"bbox_3d": b.tolist(), "label": lab} for b, lab in zip(gt, labels, strict=True)
                ]
            spec_json = json.dumps(spec)
            p_right = rng.uniform(0.0, 1.0)
            for _ in range(GENERATIONS):
                if mode == "det3d":
                    pred = np.r_[_perturb(rng, gt[:8]), _random_boxes(rng, 2)]
                    order = rng.permutation(10)
                    plabels = labels[:8] + [CATEGORIES[i] for i in rng.integers(0, 10, 2)]
                    answer = box3d_to_text(pred[order], [plabels[i] for i in order])
                elif rng.uniform() < p_right:
                    answer = row["answer"]
                else:
                    others = [r["answer"] for r in pool if r["answer"] != row["answer"]]
                    answer = others[rng.integers(len(others))] if others else "I am not sure."
                reasoning = _REASONING * int(rng.integers(2, 5))
                out.append((f"<think>{reasoning}</think>{answer}", spec_json, mode))
    return out, {m: n * GENERATIONS for m, n in prompts.items()}


def grpo_batch(rng: np.random.Generator, prompt_w: int, completion_w: int) -> dict:
    """A synthetic TRL GRPO batch of ``GROUPS * GENERATIONS`` rows in TRL's layout (see
    :mod:`vst.train.dynamic_sampling`): prompt ids/mask left-padded to ``prompt_w``,
    completion ids/mask and old log-probabilities right-padded to ``completion_w``,
    advantages, ``IMAGES_PER_ROW`` images per row of ``IMAGE_GRID`` patches of 1176 float32
    features each, ``mm_token_type_ids`` over prompt + completion."""
    import torch

    n = GROUPS * GENERATIONS
    gen = torch.Generator().manual_seed(int(rng.integers(2**31)))
    prompt_len = torch.randint(prompt_w - 120, prompt_w + 1, (n,), generator=gen)
    completion_len = torch.randint(40, completion_w + 1, (n,), generator=gen)
    cols_p = torch.arange(prompt_w)[None, :]
    cols_c = torch.arange(completion_w)[None, :]
    prompt_mask = (cols_p >= prompt_w - prompt_len[:, None]).long()
    completion_mask = (cols_c < completion_len[:, None]).long()
    prompt_ids = torch.where(
        prompt_mask.bool(), torch.randint(0, 150_000, (n, prompt_w), generator=gen), PAD_ID
    )
    completion_ids = torch.where(
        completion_mask.bool(), torch.randint(0, 150_000, (n, completion_w), generator=gen), PAD_ID
    )
    t, h, w = IMAGE_GRID
    images = n * IMAGES_PER_ROW
    mm = torch.zeros((n, prompt_w + completion_w), dtype=torch.long)
    image_tokens = IMAGES_PER_ROW * t * h * w // 4  # 2x2 patches merge into one token
    for r in range(n):
        start = prompt_w - int(prompt_len[r]) + 5
        mm[r, start : start + image_tokens] = 1
    return {
        "prompt_ids": prompt_ids,
        "prompt_mask": prompt_mask,
        "completion_ids": completion_ids,
        "completion_mask": completion_mask,
        "advantages": torch.randn(n, generator=gen),
        "num_items_in_batch": completion_mask.sum(),
        "old_per_token_logps": torch.randn((n, completion_w), generator=gen) * completion_mask,
        "pixel_values": torch.rand((images * t * h * w, 1176), generator=gen),
        "image_grid_thw": torch.tensor([[t, h, w]] * images),
        "num_images": [IMAGES_PER_ROW] * n,
        "mm_token_type_ids": mm,
    }


def bench_step(rng: np.random.Generator) -> tuple[bool, list[str]]:
    import tempfile

    from vst.rewards import compute_reward

    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vst-bench-rewards-") as tmp:
        samples = engine_samples(Path(tmp))
    t_setup = time.perf_counter() - t0
    share: dict[str, int] = {}
    for row in samples:
        share[row["mode"]] = share.get(row["mode"], 0) + 1
    responses, counts = step_responses(samples, rng)
    for response, spec, _ in responses[::GENERATIONS]:  # warm-up (numba kernels, caches)
        compute_reward(response, spec)

    def run_all(items=responses) -> list[dict]:
        return [compute_reward(r, s) for r, s, _ in items]

    results = run_all()
    t_step, t_step_best = _timed(run_all, 5)
    ok = t_step < STEP_BUDGET_S
    mix = ", ".join(f"{m} {share[m]}" for m in sorted(share))
    lines = [
        f"(d) compute_reward over one GRPO step: {len(responses)} completions "
        f"({GROUPS} prompts x {GENERATIONS}) in the engine's mix of modes",
        f"    engine run: {len(samples)} rule-checkable samples over 2 synthetic scenes ({mix}); "
        f"set-up {t_setup:.1f} s",
    ]
    for mode in sorted(counts):
        items = [x for x in responses if x[2] == mode]
        acc = np.mean(
            [r["accuracy"] for r, x in zip(results, responses, strict=True) if x[2] == mode]
        )
        t_mode, _ = _timed(lambda items=items: run_all(items), 5)
        lines.append(
            f"    {mode:8s} {len(items):4d} completions ({100 * len(items) / len(responses):4.1f}%)"
            f" {t_mode * 1e3:7.1f} ms = {t_mode / len(items) * 1e6:6.1f} us each, mean accuracy "
            f"{acc:.2f}"
        )
    lines += [
        f"    whole step                        {t_step * 1e3:7.1f} ms median "
        f"({t_step_best * 1e3:.1f} best)",
        f"    budget < {STEP_BUDGET_S * 1e3:.0f} ms: {'PASS' if ok else 'FAIL'} "
        f"({t_step * 1e3:.1f} ms)",
    ]
    lines += _filter_lines(rng, [r["accuracy"] for r in results], t_step)
    return ok, lines


def _filter_lines(rng: np.random.Generator, accuracy: list[float], t_step: float) -> list[str]:
    """Time the dynamic-sampling filter on a synthetic batch against the step's reward time."""
    try:
        import torch

        from vst.train.dynamic_sampling import (
            concat_batches,
            gather_rows,
            keep_groups,
            select_rows,
        )
    except ImportError as exc:
        return [f"    filter overhead: skipped ({exc.name} not installed)"]
    torch.set_num_threads(1)
    n = GROUPS * GENERATIONS
    first = grpo_batch(rng, PROMPT_WIDTH, COMPLETION_WIDTH)
    second = grpo_batch(rng, PROMPT_WIDTH - 40, COMPLETION_WIDTH + 40)  # the refill round
    accuracy2 = np.roll(np.asarray(accuracy), GENERATIONS * 7)  # other prompts' groups

    def rows_of(mask: np.ndarray) -> list[int]:
        return [int(g) * GENERATIONS + i for g in np.flatnonzero(mask) for i in range(GENERATIONS)]

    def time_filter(a: dict, b: dict) -> tuple[float, dict[str, float], dict[str, int]]:
        parts: dict[str, list[float]] = {}
        sizes: dict[str, int] = {}

        def run_filter() -> None:
            t0 = time.perf_counter()
            keep1 = keep_groups(accuracy, GENERATIONS)
            keep2 = keep_groups(accuracy2, GENERATIONS)
            t1 = time.perf_counter()
            rows1 = rows_of(keep1)
            rows2 = rows_of(keep2)[: n - len(rows1)]
            full = gather_rows([(a, rows1), (b, rows2)], PAD_ID)  # the trainer's path
            t2 = time.perf_counter()
            for key, dt in (("keep", t1 - t0), ("gather", t2 - t1)):
                parts.setdefault(key, []).append(dt)
            sizes.update(rows1=len(rows1), rows2=len(rows2), rows=len(full["prompt_ids"]))

        def run_baseline() -> None:  # select each round's rows, then concatenate: two copies
            rows1 = rows_of(keep_groups(accuracy, GENERATIONS))
            rows2 = rows_of(keep_groups(accuracy2, GENERATIONS))[: n - len(rows1)]
            concat_batches([select_rows(a, rows1), select_rows(b, rows2)], PAD_ID)

        run_filter()  # warm-up
        parts.clear()
        total, _ = _timed(run_filter, 5)
        parts["baseline"] = [_timed(run_baseline, 3)[0]]
        return total, {k: statistics.median(v) for k, v in parts.items()}, sizes

    t_filter, med, sizes = time_filter(first, second)
    no_images = ("pixel_values", "image_grid_thw", "num_images", "mm_token_type_ids")
    t_text, _, _ = time_filter(
        *({k: v for k, v in x.items() if k not in no_images} for x in (first, second))
    )
    t, h, w = IMAGE_GRID
    mb = (
        sum(v.numel() * v.element_size() for v in first.values() if isinstance(v, torch.Tensor))
        / 2**20
    )
    return [
        f"    filter (vst.train.dynamic_sampling), synthetic TRL batches of {n} rows "
        f"({mb:,.0f} MB each): prompt [{n}, {PROMPT_WIDTH}] left-padded, completion "
        f"[{n}, {COMPLETION_WIDTH}] right-padded (refill round {PROMPT_WIDTH - 40} / "
        f"{COMPLETION_WIDTH + 40}), {IMAGES_PER_ROW} images per row of {t}x{h}x{w} patches "
        f"x 1176 float32",
        f"    kept {sizes['rows1']} rows of round 1 + {sizes['rows2']} of round 2 -> "
        f"{sizes['rows']} rows; keep_groups x2 {med['keep'] * 1e3:.2f} ms, gather_rows "
        f"{med['gather'] * 1e3:.1f} ms (baseline select_rows x2 + concat_batches, two copies: "
        f"{med['baseline'] * 1e3:.1f} ms)",
        f"    filter total {t_filter * 1e3:7.1f} ms median = {100 * t_filter / t_step:.0f}% of the "
        f"step's reward time ({t_step * 1e3:.1f} ms, same run); without the image tensors "
        f"{t_text * 1e3:.1f} ms = {100 * t_text / t_step:.0f}%",
    ]


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
    ok_d, lines_d = bench_step(np.random.default_rng(640))
    print("\n".join(lines_d), flush=True)
    return 0 if ok_a and ok_b and ok_c and ok_d else 1


if __name__ == "__main__":
    sys.exit(main())
