"""The 3D-detection benchmarks' files -> one :class:`Det3DQuestion` per (image, category).

Two on-disk formats (facts: ``BENCHMARKS.md`` §6, ``VST-RELEASE.md`` §5):

* **Omni3D JSON** (``<root>/Omni3D/<Name>_<split>.json`` or ``<root>/datasets/Omni3D/...``;
  ``SUNRGBD_val`` / ``SUNRGBD_test`` / ``ARKitScenes_test``), read with
  :class:`vst.scenes.sources.omni3d.Omni3DReader` (``keep_ignored``: Omni3D's ``is_ignore``
  annotations stay, flagged ``ignore`` for the evaluation; images' ``file_path`` relative to the
  folder holding ``Omni3D/``). Ground-truth boxes are :meth:`Scene.boxes_in_camera`: the boxes
  a detection answer states (camera frame X right, Y down, Z forward, metres, Euler ``xyz``
  degrees). One question per (image, category of the dataset's set with at least one
  non-ignored box), images in the reader's order, categories sorted. The reader drops
  annotations with ``valid3D`` false or non-positive dimensions outright (Omni3D flags them
  ignore instead: a detection overlapping one is a false positive here).
* **The VST release's question-format JSON** (HF ``rayruiyang/vst_3d_grounding_benchmark``): a
  ground-truth file of items ``uid, image_path, height, width, category,
  camera_intrinsics{fx, fy, cx, cy}, answer = [[x, y, z, sx, sy, sz, pitch, yaw, roll], ...]``
  (camera frame, angles in degrees, Euler ``xyz``): one question per item. The prompt file, when
  present, fixes the questions and their order (its ``uid`` / ``question_id`` / ``id`` must name
  ground-truth items); its prompt text is not used: vst asks in its own FoV-unified wording.
  UNVERIFIED: the top-level layout of both files (a list of items is assumed; a dict holding one
  list is accepted), the folder ``image_path`` is relative to (tried in order: the data root,
  the dataset folder, the image folder, the image folder + file name) and the ARKit
  annotation folder (``arkit/annotations/``).

Every failure is :class:`~vst.eval.benchmarks.base.BenchmarkDataError` naming the file: a
missing or unreadable annotation file, a missing image, a malformed item.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.geometry.cameras import Intrinsics
from vst.scenes.errors import SceneFormatError, UnreadableFileError
from vst.scenes.files import resolve_inside
from vst.scenes.sources.omni3d import Omni3DReader

__all__ = [
    "ARKITSCENES_CATEGORIES",
    "DATASETS",
    "OMNI3D_IN_CATEGORIES",
    "Det3DDataset",
    "Det3DQuestion",
    "find_source",
    "read_omni3d",
    "read_vst_qa",
]

OMNI3D_IN_CATEGORIES: tuple[str, ...] = (
    "stationery", "sink", "table", "floor mat", "bottle", "bookcase", "bin", "blinds", "pillow",
    "bicycle", "refrigerator", "night stand", "chair", "sofa", "books", "oven", "towel",
    "cabinet", "window", "curtain", "bathtub", "laptop", "desk", "television", "clothes", "stove",
    "cup", "shelves", "box", "shoes", "mirror", "door", "picture", "lamp", "machine", "counter",
    "bed", "toilet",
)  # fmt: skip
"""Omni3D's 38 indoor categories (``get_omni3d_categories("omni3d_in")``): SUN RGB-D's set."""

ARKITSCENES_CATEGORIES: tuple[str, ...] = (
    "table", "bed", "sofa", "television", "refrigerator", "chair", "oven", "machine", "stove",
    "shelves", "sink", "cabinet", "bathtub", "toilet",
)  # fmt: skip
"""Omni3D's 14 ARKitScenes categories."""


@dataclass(frozen=True)
class Det3DDataset:
    """Where one dataset's files are: Omni3D JSON stem, category set, VST release files."""

    key: str
    omni3d_name: str
    categories: tuple[str, ...]
    vst_dir: str
    vst_gt: str
    vst_prompts: str
    vst_images: str


DATASETS: dict[str, Det3DDataset] = {
    "sunrgbd": Det3DDataset(
        "sunrgbd",
        "SUNRGBD",
        OMNI3D_IN_CATEGORIES,
        "sunrgbd",
        "annotations/sunrgbd_total3d_val_metaqa_20250321.json",
        "annotations/sunrgbd_val_total3d-prompt_v4_norm.json",
        "sunrgbd/val",
    ),
    "arkitscenes": Det3DDataset(
        "arkitscenes",
        "ARKitScenes",
        ARKITSCENES_CATEGORIES,
        "arkit",
        "annotations/arkit_omni3d_test_640x480_metaqa_20250317.json",
        "annotations/arkit_omni3d_test_640x480_prompt_v4_norm.json",
        "arkit_wo_rotation/arkit_omni3d_test_640x480",
    ),
}
"""The two datasets (VST release paths relative to ``<data_root>/<vst_dir>/``)."""


@dataclass(frozen=True)
class Det3DQuestion:
    """One question: ``id`` (stable), the image file, its camera (intrinsics of the file as
    stored), the category asked, ground-truth ``boxes`` (N, 9; camera frame, degrees) with
    ``ignore`` flags, ``image_key`` (the image's id in its file) and ``source`` file name."""

    id: str
    image_path: Path
    camera: Intrinsics
    category: str
    boxes: np.ndarray
    ignore: tuple[bool, ...]
    image_key: str
    source: str


def find_source(
    data_root: Path, dataset: Det3DDataset, source: str = "auto", split: str | None = None
) -> tuple[str, Path]:
    """``("vst", gt file)`` or ``("omni3d", json file)`` under ``data_root``. ``source``:
    ``"vst"``, ``"omni3d"`` or ``"auto"`` (the VST release's file when present: the paper's
    numbers; else Omni3D ``test``, then ``val``); ``split`` picks the Omni3D split."""
    root = Path(data_root)
    tried: list[Path] = []
    if source in ("auto", "vst"):
        gt = root / dataset.vst_dir / dataset.vst_gt
        tried.append(gt)
        if gt.is_file():
            return "vst", gt
    if source in ("auto", "omni3d"):
        for sp in [split] if split else ["test", "val"]:
            for folder in (root / "Omni3D", root / "datasets" / "Omni3D", root):
                path = folder / f"{dataset.omni3d_name}_{sp}.json"
                tried.append(path)
                if path.is_file():
                    return "omni3d", path
    if source not in ("auto", "vst", "omni3d"):
        raise ValueError(f"source must be 'auto', 'vst' or 'omni3d', got {source!r}")
    raise BenchmarkDataError(
        f"{dataset.key}: no annotation file under {root} (tried {', '.join(map(str, tried))})"
    )


# -- Omni3D JSON ---------------------------------------------------------------------------
def read_omni3d(path: Path, dataset: Det3DDataset) -> Iterator[Det3DQuestion]:
    """The questions of one Omni3D JSON file (see the module docstring)."""
    path = Path(path)
    image_root = path.parent.parent if path.parent.name == "Omni3D" else path.parent
    reader = Omni3DReader(
        path,
        {
            "image_root": str(image_root),
            "keep_ignored": True,
            "categories": list(dataset.categories),
        },
    )
    report = reader.new_report()
    try:
        refs = reader.scene_refs(report)
    except (SceneFormatError, UnreadableFileError, OSError) as exc:
        raise BenchmarkDataError(f"{path}: {exc}") from None
    wanted = set(dataset.categories)
    for ref in refs:
        n_skipped = len(report.skipped)
        try:
            scene = reader.read_scene(ref, report)
        except (SceneFormatError, UnreadableFileError, OSError, ValueError) as exc:
            raise BenchmarkDataError(f"{path}: image {ref.locator[2]}: {exc}") from None
        for skip in report.skipped[n_skipped:]:
            if skip.kind == "scene" and "no usable annotation" not in skip.reason:
                raise BenchmarkDataError(f"{path}: image {ref.locator[2]}: {skip.reason}")
        if scene is None:
            continue
        frame = scene.frames[0]
        K = np.asarray(frame.K, dtype=np.float64)
        camera = Intrinsics(K[0, 0], K[1, 1], K[0, 2], K[1, 2], frame.width, frame.height)
        boxes = scene.boxes_in_camera(frame)
        labels = [o.label for o in scene.objects]
        ignored = [bool(o.attributes.get("omni3d_ignore")) for o in scene.objects]
        image_id = scene.attributes.get("image_id", ref.locator[2])
        for category in sorted({lab for lab in labels if lab in wanted}):
            rows = [i for i, lab in enumerate(labels) if lab == category]
            if all(ignored[i] for i in rows):
                continue  # nothing to find: no question (Omni3D evaluates no detection there)
            yield Det3DQuestion(
                id=f"{image_id}:{category}",
                image_path=Path(frame.image),
                camera=camera,
                category=category,
                boxes=boxes[rows],
                ignore=tuple(ignored[i] for i in rows),
                image_key=str(image_id),
                source=path.name,
            )


# -- the VST release's question-format JSON ------------------------------------------------
def _items(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchmarkDataError(f"{path}: cannot read the JSON: {exc}") from None
    if isinstance(data, dict):
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) == 1:
            data = lists[0]
    if not isinstance(data, list):
        raise BenchmarkDataError(f"{path}: expected a list of question items")
    return data


def _number(value: Any, what: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise BenchmarkDataError(f"{where}: {what} must be a finite number, got {value!r}")
    return float(value)


def _qa_image(root: Path, dataset: Det3DDataset, image_path: Any, where: str) -> Path:
    if isinstance(image_path, list) and len(image_path) == 1:
        image_path = image_path[0]
    if not isinstance(image_path, str) or not image_path:
        raise BenchmarkDataError(f"{where}: image_path must be one file path, got {image_path!r}")
    ds_root = root / dataset.vst_dir
    images = ds_root / dataset.vst_images
    rel = Path(image_path)
    candidates = [(root, rel), (ds_root, rel), (images, rel), (images, Path(rel.name))]
    for base, name in candidates:
        try:
            full = resolve_inside(name, base)
        except UnreadableFileError:
            continue
        if full.is_file():
            return full
    raise BenchmarkDataError(f"{where}: image {image_path!r} not found under {root}")


def read_vst_qa(
    gt_path: Path, dataset: Det3DDataset, data_root: Path, prompt_path: Path | None = None
) -> Iterator[Det3DQuestion]:
    """The questions of the VST release's ground-truth file (see the module docstring)."""
    gt_path = Path(gt_path)
    items = _items(gt_path)
    by_uid: dict[str, tuple[int, dict[str, Any]]] = {}
    for n, item in enumerate(items):
        if not isinstance(item, dict) or "uid" not in item:
            raise BenchmarkDataError(f"{gt_path}: item {n} is not an object with a 'uid'")
        uid = str(item["uid"])
        if uid in by_uid:
            raise BenchmarkDataError(f"{gt_path}: item {n}: duplicate uid {uid!r}")
        by_uid[uid] = (n, item)
    order: Sequence[str] = list(by_uid)
    if prompt_path is not None and Path(prompt_path).is_file():
        order = []
        for n, item in enumerate(_items(Path(prompt_path))):
            key = next(
                (
                    item[k]
                    for k in ("uid", "question_id", "id")
                    if isinstance(item, dict) and k in item
                ),
                None,
            )
            if key is None or str(key) not in by_uid:
                raise BenchmarkDataError(
                    f"{prompt_path}: item {n} names no question of {gt_path.name} ({key!r})"
                )
            order.append(str(key))
    wanted = set(dataset.categories)
    for uid in order:
        n, item = by_uid[uid]
        where = f"{gt_path}: item {n} (uid {uid})"
        category = item.get("category")
        if not isinstance(category, str) or not category.strip():
            raise BenchmarkDataError(f"{where}: category must be a non-empty string")
        category = category.strip()
        if category not in wanted:
            raise BenchmarkDataError(f"{where}: category {category!r} is not in the dataset's set")
        cam = item.get("camera_intrinsics")
        if not isinstance(cam, dict):
            raise BenchmarkDataError(f"{where}: camera_intrinsics must be {{fx, fy, cx, cy}}")
        fx, fy, cx, cy = (_number(cam.get(k), k, where) for k in ("fx", "fy", "cx", "cy"))
        width = _number(item.get("width"), "width", where)
        height = _number(item.get("height"), "height", where)
        try:
            camera = Intrinsics(fx, fy, cx, cy, int(width), int(height))
        except ValueError as exc:
            raise BenchmarkDataError(f"{where}: {exc}") from None
        answer = item.get("answer")
        try:
            boxes = np.asarray(answer, dtype=np.float64)
        except (TypeError, ValueError):
            boxes = np.zeros((1, 0))
        if boxes.size == 0 and isinstance(answer, list):
            boxes = np.zeros((0, 9))
        if boxes.ndim != 2 or boxes.shape[1] != 9 or not np.all(np.isfinite(boxes)):
            raise BenchmarkDataError(f"{where}: answer must be a list of 9-number boxes")
        yield Det3DQuestion(
            id=uid,
            image_path=_qa_image(Path(data_root), dataset, item.get("image_path"), where),
            camera=camera,
            category=category,
            boxes=boxes,
            ignore=(False,) * len(boxes),
            image_key=str(item.get("image_path")),
            source=gt_path.name,
        )
