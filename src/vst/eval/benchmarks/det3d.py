"""3D detection AP on SUN RGB-D and ARKitScenes (``det3d-sunrgbd``, ``det3d-arkitscenes``).

Facts: ``BENCHMARKS.md`` §6 and ``VST-RELEASE.md`` §5 "3D detection".

* **Files** (:mod:`vst.eval.benchmarks.det3d_sources`): the VST release's question-format JSON
  when present under the data root (the paper's numbers), else Omni3D JSON (``<Name>_test``,
  then ``_val``). One question per (image, category) as the release does; categories are the
  dataset's Omni3D set (38 for SUN RGB-D, 14 for ARKitScenes).
* **Prompt**: :func:`vst.models.detect.detection_frame` + ``DetectionFrame.request`` (what
  :func:`~vst.models.detect.detection_request` does): the image FoV-unified (the engine's
  focal, the file's intrinsics), system prompt ``"You are a helpful assistant."``, the engine's
  ``si_det3d`` wording (preamble 0, output line 0, phrasing 0) for the one category. The
  release's own prompt text is not sent (vst's models are trained on vst's wording).
* **Extraction**: :func:`vst.models.detect.parse_detections` (lenient; garbage gives no boxes):
  ``parsed = {"boxes": [[x, y, z, sx, sy, sz, pitch, yaw, roll], ...] (camera frame, metres,
  degrees), "labels", "notes"}``. As the release does, every box counts for the question's
  category with score 1.0, whatever label the model wrote.
* **Per-item scores** (information only): ``official`` = vst's detection reward (0.5 IoU term +
  0.5 F1 at IoU 0.25, :mod:`vst.rewards.det3d`) against the non-ignored boxes, ``f1`` its F1.
* **Aggregate**: :func:`vst.eval.det3d.evaluate_det3d` over all judged items (each question one
  "image", as the release), exact 3D IoU. ``official`` = AP15 (the figure the VST README
  reports); variants ``AP`` (Omni3D's AP3D, mean over IoU 0.05..0.50), ``AP15``, ``AP25``,
  ``AP50``, ``AR`` (AR at 100 detections), ``APn`` / ``APm`` / ``APf`` and ``reward`` (mean
  per-item reward); breakdowns ``category_AP`` and ``category_AP15``.

UNVERIFIED / deviations: the release's layout details (see the sources module); the release
decodes with temperature 0.2, top_p 0.95 (vst uses greedy, 1,024 tokens); the release relaxes
Omni3D's ignore thresholds (trunc 1.0, vis 0.0, max_height 10.5); the QA ground truth carries
no ignore fields, so here every one of its boxes counts (UNVERIFIED that the release ignores
none), while the Omni3D-JSON path keeps Omni3D's default ignore flags; the release does not
say that the VST README's ARKitScenes figure is also AP15.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.engine.fov import model_sized, unify_camera
from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.eval.benchmarks.det3d_sources import (
    DATASETS,
    Det3DQuestion,
    find_source,
    read_omni3d,
    read_vst_qa,
)
from vst.eval.det3d import evaluate_det3d
from vst.geometry.cameras import DEFAULT_UNIFIED_FOCAL, Intrinsics
from vst.models.backends.base import Sampling
from vst.models.detect import DetectionFrame, camera_json, detection_frame, parse_detections
from vst.models.vision import PixelLimits
from vst.rewards.det3d import det3d_score
from vst.scenes.errors import UnreadableFileError
from vst.scenes.files import open_image

__all__ = ["ARKitScenesDet3D", "Det3DBenchmark", "SunRGBDDet3D"]

_FIGURES = ("AP", "AP15", "AP25", "AP50", "APn", "APm", "APf")


@lru_cache(maxsize=256)
def _frame_of(
    fx: float, fy: float, cx: float, cy: float, width: int, height: int
) -> DetectionFrame:
    """The detection geometry of a camera without its pixels (parsing needs no image)."""
    camera = Intrinsics(fx, fy, cx, cy, width, height)
    limits = PixelLimits()
    fov = unify_camera(camera, DEFAULT_UNIFIED_FOCAL)
    unified = model_sized(fov, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels)
    return DetectionFrame(Image.new("RGB", (1, 1)), camera, unified, fov.size)


def _truth_boxes(truth: Any) -> tuple[np.ndarray, np.ndarray]:
    boxes = np.asarray(truth.get("boxes") or [], dtype=np.float64).reshape(-1, 9)
    ignore = np.asarray(truth.get("ignore") or [False] * len(boxes), dtype=bool).reshape(-1)
    return boxes, ignore


def _finite(value: float) -> float | None:
    return None if value is None or not math.isfinite(value) else float(value)


class Det3DBenchmark(Benchmark):
    """3D detection on one dataset (``"sunrgbd"`` or ``"arkitscenes"``); ``source``: ``"auto"``,
    ``"vst"`` (the release's QA JSON) or ``"omni3d"``; ``split``: the Omni3D split."""

    name: ClassVar[str] = "det3d"
    sampling: ClassVar[Sampling] = Sampling(max_tokens=1024)

    def __init__(self, dataset: str = "sunrgbd", source: str = "auto", split: str | None = None):
        if dataset not in DATASETS:
            raise ValueError(f"dataset must be one of {sorted(DATASETS)}, got {dataset!r}")
        if source not in ("auto", "vst", "omni3d"):
            raise ValueError(f"source must be 'auto', 'vst' or 'omni3d', got {source!r}")
        self.dataset = DATASETS[dataset]
        self.source = source
        self.split = split
        self.name = f"det3d-{dataset}"  # type: ignore[misc] - per-instance name
        self.used_file: str | None = None

    # -- reading ---------------------------------------------------------------------------
    def questions(self, data_root: Path) -> Iterator[Det3DQuestion]:
        """The dataset's questions under ``data_root`` (see the sources module)."""
        kind, path = find_source(Path(data_root), self.dataset, self.source, self.split)
        self.used_file = str(path)
        if kind == "vst":
            prompts = path.parent.parent / self.dataset.vst_prompts
            return read_vst_qa(path, self.dataset, Path(data_root), prompts)
        return read_omni3d(path, self.dataset)

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        """One item per question; an image shared by consecutive questions (Omni3D: one per
        category) is decoded and FoV-unified once."""
        last: tuple[Path, Intrinsics] | None = None
        frame: DetectionFrame | None = None
        for q in self.questions(data_root):
            if frame is None or last != (q.image_path, q.camera):
                frame = self._frame(q)
                last = (q.image_path, q.camera)
            truth = {
                "category": q.category,
                "boxes": q.boxes.tolist(),
                "ignore": list(q.ignore),
                "camera": camera_json(q.camera),
            }
            fields = {"category": q.category, "image": q.image_key, "source": q.source}
            yield BenchItem(q.id, frame.request(q.category), truth, fields)

    @staticmethod
    def _frame(q: Det3DQuestion) -> DetectionFrame:
        """The question's image, FoV-unified with its file's intrinsics."""
        try:
            with open_image(q.image_path) as im:
                image = im.convert("RGB")
        except UnreadableFileError as exc:
            raise BenchmarkDataError(f"{q.source}: question {q.id}: {exc}") from None
        if image.size != (q.camera.width, q.camera.height):
            raise BenchmarkDataError(
                f"{q.image_path}: image is {image.width}x{image.height}, "
                f"{q.source} says {q.camera.width}x{q.camera.height}"
            )
        return detection_frame(image, intrinsics=q.camera)

    # -- judging ---------------------------------------------------------------------------
    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        """Boxes of ``reply`` (the original camera) and the per-item reward (information)."""
        truth = item.truth
        cam = truth["camera"]
        frame = _frame_of(
            float(cam["fx"]),
            float(cam["fy"]),
            float(cam["cx"]),
            float(cam["cy"]),
            int(cam["width"]),
            int(cam["height"]),
        )
        found = parse_detections(reply if isinstance(reply, str) else "", frame, to_original=True)
        boxes = found.boxes
        parsed = {
            "boxes": [[float(v) for v in b] for b in boxes],
            "labels": found.labels,
            "notes": list(found.notes),
        }
        gt, ignore = _truth_boxes(truth)
        score = det3d_score(boxes, gt[~ignore])
        scores = {"official": score.reward, "f1": score.f1}
        return JudgedItem(item.id, dict(item.fields), truth, parsed, scores)

    # -- aggregation -----------------------------------------------------------------------
    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        """AP figures over all judged items (see the module docstring)."""
        latest: dict[str, JudgedItem] = {}
        for j in judged:
            latest[j.id] = j  # a re-judged item counts once (its last judgement)
        notes = [
            "official = AP15 (the VST README's figure); AP = Omni3D's AP3D (IoU 0.05..0.50)",
            "every predicted box gets the question's category and score 1.0 (as the release)",
        ]
        if self.used_file:
            notes.append(f"ground truth: {self.used_file}")
        if len(latest) < len(judged):
            notes.append(f"{len(judged) - len(latest)} duplicate judgement(s) ignored")
        items = list(latest.values())
        if not items:
            empty = dict.fromkeys(("official", "reward", "AR", *_FIGURES))
            return BenchScore(self.name, None, empty, {}, 0, notes)
        gts, preds = [], []
        for j in items:
            category = j.truth["category"]
            boxes, ignore = _truth_boxes(j.truth)
            gts.append(
                {
                    "image_id": j.id,
                    "boxes": boxes,
                    "labels": [category] * len(boxes),
                    "ignore": ignore,
                }
            )
            pboxes = np.asarray((j.parsed or {}).get("boxes") or [], dtype=np.float64)
            pboxes = pboxes.reshape(-1, 9)
            preds.append(
                {
                    "image_id": j.id,
                    "boxes": pboxes,
                    "labels": [category] * len(pboxes),
                    "scores": np.ones(len(pboxes)),
                }
            )
        result = evaluate_det3d(gts, preds)
        variants: dict[str, float | None] = {k: _finite(result[k]) for k in _FIGURES}
        variants["AR"] = _finite(result["AR100"])
        rewards = [j.scores.get("official") for j in items]
        rewards = [r for r in rewards if r is not None]
        variants["reward"] = float(np.mean(rewards)) if rewards else None
        variants["official"] = variants["AP15"]
        breakdown: dict[str, dict[str, float]] = {"category_AP": {}, "category_AP15": {}}
        for category, figures in result["per_category"].items():
            for key, name in (("AP", "category_AP"), ("AP15", "category_AP15")):
                value = _finite(figures[key])
                if value is not None:
                    breakdown[name][str(category)] = value
        return BenchScore(self.name, variants["official"], variants, breakdown, len(items), notes)

    def describe(self) -> dict[str, Any]:
        out = super().describe()
        out.update(
            {
                "dataset": self.dataset.key,
                "source": self.source,
                "categories": list(self.dataset.categories),
                "prompt": "vst.models.detect.detection_request (FoV-unified, si_det3d wording)",
                "extraction": "vst.models.detect.parse_detections; score 1.0 per box",
                "official": "AP15 (Omni3D COCO-style AP at 3D IoU 0.15, exact IoU)",
                "release_sampling": "temperature 0.2, top_p 0.95, max 1024 tokens (vLLM)",
            }
        )
        if self.used_file:
            out["ground_truth"] = self.used_file
        return out


class SunRGBDDet3D(Det3DBenchmark):
    """``det3d-sunrgbd``: the 38 Omni3D indoor categories."""

    name: ClassVar[str] = "det3d-sunrgbd"

    def __init__(self, source: str = "auto", split: str | None = None):
        super().__init__("sunrgbd", source, split)


class ARKitScenesDet3D(Det3DBenchmark):
    """``det3d-arkitscenes``: Omni3D's 14 ARKitScenes categories."""

    name: ClassVar[str] = "det3d-arkitscenes"

    def __init__(self, source: str = "auto", split: str | None = None):
        super().__init__("arkitscenes", source, split)
