"""VSI-Bench metadata -> :class:`~vst.scenes.Scene` objects (objects only, no frames).

The metadata files (``{scannet,scannetpp,arkitscenes}_meta_info_val.json`` of the public
thinking-in-space repository) map each scene id to ``room_size`` (m^2), ``room_center``,
``object_counts`` per category and ``object_bbox``: per category a list of oriented boxes
(``centroid``, ``axesLengths``, ``normalizedAxes``, plus their axis-aligned ``min`` / ``max``),
in the scan's world frame (Z up, metres). See ``shared/data/vsibench-meta/README.md``.

Each scene becomes ``Scene(id, source=<dataset>, split="val")`` with ``attributes``
``{"benchmark": "vsibench", "room_size_m2", "room_center", "object_counts"}`` and ``room=None``
(the metadata gives only an area). Objects get ids 1..N in a deterministic order: categories
sorted by name, boxes in file order within a category; ``label`` is the category key and
``attributes["source_index"]`` the box's position in its category's list.

Nothing is dropped silently: a box that cannot be converted (missing fields, non-finite values,
non-positive sizes, axes that are not a rotation) is skipped and recorded in a
:class:`VsiBenchMetaReport`, as are categories whose ``object_counts`` disagree with the number
of listed boxes and boxes that exactly repeat an earlier box of the same category (kept, with
``attributes["duplicate_of"]`` = the first one's id; the ScanNet file repeats some printers).
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from vst.geometry.conventions import from_vsibench
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import read_json
from vst.scenes.model import Object3D, Scene
from vst.scenes.sources.base import SceneReader, SceneRef, SourceReport
from vst.scenes.splits import normalize_dataset

__all__ = [
    "META_FILE_GLOB",
    "VsiBenchMetaReader",
    "VsiBenchMetaReport",
    "load_vsibench_meta",
    "read_vsibench_meta",
]

META_FILE_GLOB = "*_meta_info_val.json"
BENCHMARK = "vsibench"


@dataclass
class VsiBenchMetaReport:
    """What the reader skipped or found odd. Each entry is a JSON-friendly dict naming the file,
    dataset, scene and category."""

    files: list[str] = field(default_factory=list)
    skipped_boxes: list[dict[str, Any]] = field(default_factory=list)
    """Boxes not converted: ``{file, dataset, scene_id, category, index, reason}``."""
    count_mismatches: list[dict[str, Any]] = field(default_factory=list)
    """Categories whose ``object_counts`` differ from the number of listed boxes:
    ``{file, dataset, scene_id, category, count, boxes}`` (``count`` None if absent)."""
    duplicate_boxes: list[dict[str, Any]] = field(default_factory=list)
    """Boxes identical to an earlier one of the same category (kept):
    ``{dataset, scene_id, category, index, duplicate_of_index, object_id, duplicate_of}``."""
    scene_problems: list[dict[str, Any]] = field(default_factory=list)
    """Scene-level oddities (bad ``room_size``, non-object entries): ``{..., reason}``."""

    @property
    def ok(self) -> bool:
        """No box skipped and no scene-level problem (count mismatches/duplicates are notes)."""
        return not self.skipped_boxes and not self.scene_problems

    def summary(self) -> str:
        """One line: files read and how many of each kind of entry."""
        return (
            f"{len(self.files)} file(s); {len(self.skipped_boxes)} box(es) skipped, "
            f"{len(self.count_mismatches)} count mismatch(es), "
            f"{len(self.duplicate_boxes)} duplicate box(es), "
            f"{len(self.scene_problems)} scene problem(s)"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": list(self.files),
            "skipped_boxes": list(self.skipped_boxes),
            "count_mismatches": list(self.count_mismatches),
            "duplicate_boxes": list(self.duplicate_boxes),
            "scene_problems": list(self.scene_problems),
        }


def _meta_files(path_or_dir: str | Path) -> list[Path]:
    path = Path(path_or_dir)
    if path.is_dir():
        files = sorted(path.glob(META_FILE_GLOB))
        if not files:
            raise FileNotFoundError(f"no {META_FILE_GLOB} file in {path}")
        return files
    if not path.is_file():
        raise FileNotFoundError(f"VSI-Bench metadata not found: {path}")
    return [path]


def read_meta_files(path_or_dir: str | Path) -> list[tuple[Path, dict[str, Any]]]:
    """``(file, its object of scenes)`` for one metadata file or every ``*_meta_info_val.json``
    of a folder (in name order). FileNotFoundError without a file; ValueError naming the file if
    one is not JSON or not an object."""
    out = []
    for path in _meta_files(path_or_dir):
        try:
            data = read_json(path)
        except SceneFormatError as exc:
            raise ValueError(f"cannot read VSI-Bench metadata {exc}") from None
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected an object of scenes, got {type(data).__name__}")
        out.append((path, data))
    return out


def dataset_of(entry: Any, path: Path) -> str:
    """Canonical dataset of a scene entry: its ``dataset`` field, else the file name's prefix
    (aliases resolved by :func:`vst.scenes.splits.normalize_dataset`)."""
    name = entry.get("dataset") if isinstance(entry, dict) else None
    return normalize_dataset(name or path.name.split("_meta_info")[0])


def _box_of(raw: Any) -> np.ndarray:
    """Canonical box of one ``object_bbox`` entry; ValueError with the reason if invalid."""
    if not isinstance(raw, dict):
        raise ValueError(f"box entry must be an object, got {type(raw).__name__}")
    missing = [k for k in ("centroid", "axesLengths", "normalizedAxes") if k not in raw]
    if missing:
        raise ValueError(f"missing field(s) {missing}")
    try:
        sizes = np.asarray(raw["axesLengths"], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"axesLengths not numeric: {raw['axesLengths']!r}") from exc
    if sizes.shape == (3,) and np.all(np.isfinite(sizes)) and np.any(sizes <= 0):
        raise ValueError(f"axesLengths must be positive, got {sizes.tolist()}")
    return from_vsibench(raw["centroid"], raw["axesLengths"], raw["normalizedAxes"])


def _finite_number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _scene_from_entry(
    scene_id: str, entry: dict[str, Any], path: Path, report: VsiBenchMetaReport
) -> Scene:
    dataset = dataset_of(entry, path)
    where = {"file": path.name, "dataset": dataset, "scene_id": scene_id}

    room_size = _finite_number(entry.get("room_size"))
    if room_size is None or room_size <= 0:
        report.scene_problems.append(
            {**where, "reason": f"room_size {entry.get('room_size')!r} is not positive; None"}
        )
        room_size = None
    center = entry.get("room_center")
    try:
        center_arr = np.asarray(center, dtype=np.float64)
        room_center = center_arr.tolist() if center_arr.shape == (3,) else None
    except (TypeError, ValueError):
        room_center = None

    counts_raw = entry.get("object_counts") or {}
    bboxes = entry.get("object_bbox") or {}
    if not isinstance(counts_raw, dict) or not isinstance(bboxes, dict):
        report.scene_problems.append(
            {**where, "reason": "object_counts/object_bbox are not objects; no objects read"}
        )
        counts_raw, bboxes = {}, {}
    counts = {str(k): v for k, v in counts_raw.items()}

    objects: list[Object3D] = []
    for category in sorted(set(bboxes) | set(counts)):
        boxes = bboxes.get(category, [])
        if not isinstance(boxes, list):
            report.skipped_boxes.append(
                {**where, "category": category, "index": None, "reason": "not a list of boxes"}
            )
            boxes = []
        count = counts.get(category)
        if count != len(boxes):
            report.count_mismatches.append(
                {**where, "category": category, "count": count, "boxes": len(boxes)}
            )
        first_seen: dict[str, tuple[int, int]] = {}  # box JSON -> (index, object id)
        for index, raw in enumerate(boxes):
            try:
                box = _box_of(raw)
            except ValueError as exc:
                report.skipped_boxes.append(
                    {**where, "category": category, "index": index, "reason": str(exc)}
                )
                continue
            obj = Object3D(
                id=len(objects) + 1,
                label=category,
                box=box,
                attributes={"source_index": index},
            )
            key = json.dumps(raw, sort_keys=True)
            if key in first_seen:
                first_index, first_id = first_seen[key]
                obj.attributes["duplicate_of"] = first_id
                report.duplicate_boxes.append(
                    {
                        "dataset": dataset,
                        "scene_id": scene_id,
                        "category": category,
                        "index": index,
                        "duplicate_of_index": first_index,
                        "object_id": obj.id,
                        "duplicate_of": first_id,
                    }
                )
            else:
                first_seen[key] = (index, obj.id)
            objects.append(obj)

    return Scene(
        id=scene_id,
        source=dataset,
        split="val",
        objects=objects,
        room=None,
        attributes={
            "benchmark": BENCHMARK,
            "room_size_m2": room_size,
            "room_center": room_center,
            "object_counts": dict(sorted(counts.items())),
        },
    )


def read_vsibench_meta(path_or_dir: str | Path) -> tuple[list[Scene], VsiBenchMetaReport]:
    """Scenes of one metadata file, or of every ``*_meta_info_val.json`` in a folder (files in
    name order, scenes in file order), and the report of what was skipped or odd.

    Raises FileNotFoundError if there is no metadata file, ValueError if one is not JSON or
    not an object of scenes, or if a scene id appears twice for the same dataset."""
    report = VsiBenchMetaReport()
    scenes: list[Scene] = []
    seen: set[tuple[str, str]] = set()
    for path, data in read_meta_files(path_or_dir):
        report.files.append(str(path))
        for scene_id, entry in data.items():
            if not isinstance(entry, dict):
                report.scene_problems.append(
                    {
                        "file": path.name,
                        "dataset": None,
                        "scene_id": scene_id,
                        "reason": f"scene entry is a {type(entry).__name__}, not an object",
                    }
                )
                continue
            scene = _scene_from_entry(str(scene_id), entry, path, report)
            key = (scene.source, scene.id)
            if key in seen:
                raise ValueError(f"{path}: scene {scene.id!r} of {scene.source} appears twice")
            seen.add(key)
            scenes.append(scene)
    return scenes, report


def load_vsibench_meta(
    path_or_dir: str | Path, report: VsiBenchMetaReport | None = None
) -> list[Scene]:
    """Scenes of VSI-Bench metadata (see :func:`read_vsibench_meta`).

    Pass a :class:`VsiBenchMetaReport` to receive what was skipped or odd (its lists are
    extended); without one, a warning summarises any skipped box or scene problem."""
    scenes, found = read_vsibench_meta(path_or_dir)
    if report is not None:
        report.files.extend(found.files)
        report.skipped_boxes.extend(found.skipped_boxes)
        report.count_mismatches.extend(found.count_mismatches)
        report.duplicate_boxes.extend(found.duplicate_boxes)
        report.scene_problems.extend(found.scene_problems)
    elif not found.ok:
        warnings.warn(
            f"VSI-Bench metadata {path_or_dir}: {found.summary()}; pass a VsiBenchMetaReport "
            "to see them",
            stacklevel=2,
        )
    return scenes


class VsiBenchMetaReader(SceneReader):
    """Format ``vsibench-meta``: the VSI-Bench metadata files as scenes with objects and no
    frames (PATH: one ``*_meta_info_val.json`` or a folder of them). Every scene is a VSI-Bench
    evaluation scene, so the leakage guard excludes all of them unless overridden: use them to
    check answer logic on real scans, not as training data."""

    format = "vsibench-meta"
    description = "VSI-Bench scene metadata (boxes, counts, room sizes; no images)"

    @cached_property
    def _scenes(self) -> tuple[list[Scene], VsiBenchMetaReport]:
        """The metadata read once per reader."""
        return read_vsibench_meta(self.path)

    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        scenes, found = self._scenes
        for item in found.skipped_boxes:
            report.skip(
                "object",
                f"scene {item['scene_id']} ({item['dataset']}), {item['category']} "
                f"#{item['index']}",
                item["reason"],
            )
        for item in found.scene_problems:
            report.skip("scene", f"scene {item['scene_id']}", item["reason"])
        refs = [SceneRef(s.id, s.source, s.id, locator=i) for i, s in enumerate(scenes)]
        return sorted(refs, key=lambda r: (r.dataset, r.id))

    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        scene = self._scenes[0][ref.locator]
        return scene
