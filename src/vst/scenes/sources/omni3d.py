"""Omni3D annotation JSON -> :class:`~vst.scenes.Scene` objects, one scene per image.

Omni3D (facebookresearch/omni3d, ``DATA.md``) ships one COCO-like JSON per dataset split
(``SUNRGBD_test.json``, ``ARKitScenes_train.json``, ...) with ``info``, ``images`` (``id``,
``dataset_id``, ``width``, ``height``, ``file_path`` relative to the ``datasets/`` folder, ``K``,
``src_90_rotate``, ``src_flagged``), ``categories`` and ``annotations`` (``image_id``,
``category_id``, ``category_name``, ``valid3D``, ``bbox2D_tight`` / ``_proj`` / ``_trunc``,
``bbox3D_cam``, ``center_cam``, ``dimensions = [w, h, l]``, ``R_cam``, ``behind_camera``,
``visibility``, ``truncation``, ``segmentation_pts``, ``lidar_pts``, ``depth_error``; -1 when
unavailable). Boxes are in the camera frame (X right, Y down, Z forward, metres); Omni3D's
corners (``cubercnn/util/math_util.py`` ``get_cuboid_verts_faces``) put ``l`` along the box's
local X, ``h`` along local Y and ``w`` along local Z.

Conversion (see ``docs/sources/omni3d.md``):

* There is no camera pose, so the world frame is the camera frame re-axed to Z up: world X =
  camera X (right), world Y = camera Z (forward), world Z = -camera Y (up in the image), origin at
  the camera. ``Frame.cam_to_world`` is that fixed rotation (:data:`CAM_TO_WORLD`). World Z is
  the camera's up direction, NOT gravity, for a tilted camera.
* Boxes: :func:`~vst.geometry.conventions.from_omni3d` (camera frame, local axes as Omni3D's),
  then the local axes are renamed to vst's Z-up convention (X = Omni3D X, Y = Omni3D Z, Z = -Omni3D
  Y, sizes ``[l, w, h]``), then moved to the world frame. An upright object (``R_cam`` a rotation
  about camera Y by ``theta``) in a level camera comes out as ``[0, 0, -theta]``, and
  :meth:`Scene.boxes_in_camera` gives back Omni3D's own camera-frame box.
* No depth and no instance masks. ``Frame.visible_pixels`` is estimated from the boxes: the
  pixels where the object's box is the nearest annotated box along the pixel's ray (boxes
  ray-cast on a grid of at most :data:`MAX_RAYS` pixels, counts scaled to full resolution),
  times the annotated ``visibility`` when it is given. ``Frame.truncation`` is the annotation's
  ``truncation`` when given, else vst's (:func:`vst.scenes.annotate.truncation`). With the
  ``box_masks`` option each frame also gets a coarse instance mask (every pixel labelled with
  the first box its ray meets: box silhouettes, not object shapes), so the single-image tasks
  that need masks can run.

Skipped, with reasons in the report: annotations with ``valid3D`` false, non-finite or missing
box fields, non-positive dimensions, an ``R_cam`` that is not a rotation; "ignore" annotations
as Omni3D's own loader (``cubercnn/data/datasets.py`` ``is_ignore``) flags them (behind the
camera, ``truncation >= 0.99``, ``visibility <= 0.01``, no LiDAR / segmentation points,
``depth_error > 0.5``, ignore categories such as ``dontcare``) unless ``keep_ignored``;
categories outside the ``categories`` option; images whose file is missing, unreadable or of
another size than annotated; images with no usable annotation.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import numpy as np
from pydantic import Field

from vst.geometry.boxes import (
    ZUP_TO_CAMERA_AXES,
    box3d_corners,
    box_rotations,
    reorient_box_axes,
    transform_boxes,
)
from vst.geometry.conventions import from_omni3d
from vst.scenes.annotate import truncation as vst_truncation
from vst.scenes.errors import SceneFormatError, UnreadableFileError
from vst.scenes.files import image_size, read_json
from vst.scenes.model import Frame, Object3D, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)

__all__ = [
    "CAM_TO_WORLD",
    "IGNORE_CATEGORIES",
    "MAX_RAYS",
    "Omni3DOptions",
    "Omni3DReader",
    "box_owner_map",
    "dataset_of",
    "native_id_of",
    "omni3d_box_to_world",
]

CAM_TO_WORLD = np.array(
    [
        [1.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, -1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
)
"""Camera (X right, Y down, Z forward) -> world (X right, Y forward, Z up): columns are the
camera axes in world coordinates (X -> X, Y -> -Z, Z -> Y); no translation."""

OMNI3D_TO_ZUP_AXES = ZUP_TO_CAMERA_AXES.T
"""vst Z-up local axes in Omni3D local coordinates (columns): X = X, Y = Z, Z = -Y."""

IGNORE_CATEGORIES = frozenset({"dontcare", "ignore", "void"})
"""Category names that mark "ignore" regions rather than objects."""

TRUNCATION_THRES = 0.99
VISIBILITY_THRES = 0.01
DEPTH_ERROR_THRES = 0.5
"""Omni3D's default ignore thresholds (``get_filter_settings_from_cfg`` / ``is_ignore``)."""

MAX_RAYS = 120_000
"""At most this many pixel rays per image when estimating visible pixels (a regular grid)."""

_DATASET_DIRS = {
    "sunrgbd": "sunrgbd",
    "arkitscenes": "arkitscenes",
    "hypersim": "hypersim",
    "objectron": "objectron",
    "kitti_object": "kitti",
    "kitti": "kitti",
    "nuscenes": "nuscenes",
}
"""First folder of ``file_path`` (lower-cased) -> dataset name."""

_SPLITS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
_ARKIT_VIDEO = re.compile(r"^\d{8}$")
_ARKIT_FILE = re.compile(r"^(\d{8})_")
_HYPERSIM_SCENE = re.compile(r"^ai_\d{3}_\d{3}$")


class Omni3DOptions(ReaderOptions):
    """Options of the Omni3D reader (``frame_stride`` / ``max_frames`` do not apply: one image
    per scene)."""

    image_root: str | None = Field(
        None,
        description="Folder that images' file_path is relative to (default: the folder holding "
        "the JSON file's folder, i.e. datasets/ for datasets/Omni3D/SUNRGBD_test.json).",
    )
    categories: list[str] | None = Field(
        None, description="Keep only these category names (case-insensitive); default all."
    )
    keep_ignored: bool = Field(
        False,
        description="Keep annotations Omni3D flags as ignore (behind the camera, truncated, "
        "invisible, ignore categories), with attributes['omni3d_ignore'] listing why.",
    )
    box_masks: bool = Field(
        False,
        description="Store a coarse instance mask per image: each pixel gets the id of the "
        "first annotated box its ray meets (box silhouettes, not object shapes; unannotated "
        "occluders ignored). Lets mask-needing single-image tasks run.",
    )


# -- pure helpers ---------------------------------------------------------------------------
def _parts(file_path: str) -> list[str]:
    return [
        p for p in PurePosixPath(str(file_path).replace("\\", "/")).parts if p not in ("/", ".")
    ]


def dataset_of(file_path: str, json_name: str = "") -> str:
    """Dataset of an image: from the first known folder in ``file_path`` (``SUNRGBD/...`` ->
    ``sunrgbd``), else from the JSON file name (``Hypersim_train.json`` -> ``hypersim``), else
    ``omni3d``."""
    for part in _parts(file_path):
        name = _DATASET_DIRS.get(part.lower())
        if name:
            return name
    prefix = Path(json_name).stem.split("_")[0].lower()
    return _DATASET_DIRS.get(prefix, "omni3d")


def native_id_of(dataset: str, file_path: str, image_id: int | str) -> str:
    """The dataset's own id of the scene an image shows: SUN RGB-D image folder below
    ``SUNRGBD/`` (``kv1/NYUdata/NYU0001``), ARKitScenes 8-digit video id, Hypersim scene
    ``ai_XXX_YYY``, the file stem for KITTI / nuScenes / Objectron, else the image id."""
    parts = _parts(file_path)
    if dataset == "sunrgbd":
        lower = [p.lower() for p in parts]
        start = lower.index("sunrgbd") + 1 if "sunrgbd" in lower else 0
        end = len(parts) - 1
        if "image" in lower[start:]:
            end = start + lower[start:].index("image")
        if end > start:
            return "/".join(parts[start:end])
    elif dataset == "arkitscenes":
        for part in parts[:-1]:
            if _ARKIT_VIDEO.match(part):
                return part
        if parts and (m := _ARKIT_FILE.match(parts[-1])):
            return m.group(1)
    elif dataset == "hypersim":
        for part in parts:
            if _HYPERSIM_SCENE.match(part):
                return part
    elif dataset in ("kitti", "nuscenes", "objectron") and parts:
        return PurePosixPath(parts[-1]).stem
    return str(image_id)


EVALUATION_SPLITS = ("val", "test")
"""Omni3D splits that evaluations use: their images are benchmark scenes for the leakage guard
(``omni3d-<dataset>-<split>``, e.g. ``omni3d-sunrgbd-test``), on top of the shipped lists."""


def evaluation_benchmarks(dataset: str, split: str) -> tuple[str, ...]:
    """The benchmark an image of ``dataset``'s ``split`` file belongs to (empty for train)."""
    return (f"omni3d-{dataset}-{split}",) if split in EVALUATION_SPLITS else ()


def _split_of(info: Any, json_name: str) -> str:
    infos = info if isinstance(info, list) else [info]
    for item in infos:
        if isinstance(item, dict) and isinstance(item.get("split"), str):
            split = _SPLITS.get(item["split"].strip().lower())
            if split:
                return split
    suffix = Path(json_name).stem.split("_")[-1].lower()
    return _SPLITS.get(suffix, "unknown")


def omni3d_box_to_world(center_cam: Any, dimensions: Any, R_cam: Any) -> np.ndarray:
    """vst world box (9,) of an Omni3D box (world = camera re-axed to Z up, see module doc)."""
    R = np.asarray(R_cam, dtype=np.float64)
    if R.shape == (9,):
        R = R.reshape(3, 3)
    if R.shape == (3, 3) and np.all(np.isfinite(R)) and np.linalg.det(R) < 0:
        # a mirrored axis triple describes the same (symmetric) cuboid
        R = R.copy()
        R[:, 2] = -R[:, 2]
    box_cam = from_omni3d(center_cam, dimensions, R)
    box_zup = reorient_box_axes(box_cam, OMNI3D_TO_ZUP_AXES)
    return transform_boxes(box_zup, CAM_TO_WORLD)[0]


def _num(value: Any) -> float | None:
    """A finite float, or None for missing / non-numeric / non-finite values."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _ignore_reasons(ann: dict[str, Any], label: str) -> list[str]:
    """Why Omni3D's loader would flag this annotation as ignore (empty if it would not)."""
    reasons = []
    if label.strip().lower() in IGNORE_CATEGORIES:
        reasons.append(f"ignore category {label!r}")
    cat = ann.get("category_id")
    if isinstance(cat, int) and not isinstance(cat, bool) and cat < 0:
        reasons.append(f"category_id {cat} < 0")
    if ann.get("behind_camera") is True:
        reasons.append("behind_camera is true")
    trunc = _num(ann.get("truncation"))
    if trunc is not None and trunc >= TRUNCATION_THRES:
        reasons.append(f"truncation {trunc:g} >= {TRUNCATION_THRES}")
    vis = _num(ann.get("visibility"))
    if vis is not None and 0 <= vis <= VISIBILITY_THRES:
        reasons.append(f"visibility {vis:g} <= {VISIBILITY_THRES}")
    for key in ("lidar_pts", "segmentation_pts"):
        if _num(ann.get(key)) == 0:
            reasons.append(f"{key} is 0")
    err = _num(ann.get("depth_error"))
    if err is not None and err > DEPTH_ERROR_THRES:
        reasons.append(f"depth_error {err:g} > {DEPTH_ERROR_THRES}")
    return reasons


def box_owner_map(
    boxes_world: np.ndarray,
    world_to_cam: np.ndarray,
    K: np.ndarray,
    width: int,
    height: int,
    step: int = 1,
) -> np.ndarray:
    """Index of the box each pixel's ray meets first (-1: none), on the grid of every
    ``step``-th pixel row and column, shape ``(ceil(height / step), ceil(width / step))``.

    Boxes are exact cuboids (ray/slab intersection); a camera inside a box sees it at depth 0.
    Only the rays inside a box's projected bounding rectangle are tested against it (all rays
    when part of the box is behind the camera).
    """
    us = np.arange(0, width, step, dtype=np.float64)
    vs = np.arange(0, height, step, dtype=np.float64)
    owner = np.full((len(vs), len(us)), -1, dtype=np.int64)
    nearest = np.full(owner.shape, np.inf)
    K_inv = np.linalg.inv(K)
    R_wc, t_wc = world_to_cam[:3, :3], world_to_cam[:3, 3]
    corners = box3d_corners(boxes_world) @ R_wc.T + t_wc  # (N, 8, 3) camera frame
    centers = boxes_world[:, 0:3] @ R_wc.T + t_wc
    rots = np.einsum("ij,njk->nik", R_wc, box_rotations(boxes_world))
    half = boxes_world[:, 3:6] / 2.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for i in range(len(boxes_world)):
            r0, r1, c0, c1 = 0, len(vs), 0, len(us)
            if np.all(corners[i, :, 2] > 1e-6):
                uv = corners[i] @ K.T
                uv = uv[:, :2] / uv[:, 2:3]
                c0 = max(0, math.ceil(uv[:, 0].min() / step))
                c1 = min(len(us), math.floor(uv[:, 0].max() / step) + 1)
                r0 = max(0, math.ceil(uv[:, 1].min() / step))
                r1 = min(len(vs), math.floor(uv[:, 1].max() / step) + 1)
                if c0 >= c1 or r0 >= r1:
                    continue
            uu, vv = np.meshgrid(us[c0:c1], vs[r0:r1])
            pix = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
            d = pix @ (rots[i].T @ K_inv).T  # ray directions (z = 1 in camera) in box coords
            origin = -(rots[i].T @ centers[i])  # camera centre in box coordinates
            t1 = (-half[i] - origin) / d
            t2 = (half[i] - origin) / d
            lo, hi = np.minimum(t1, t2), np.maximum(t1, t2)
            # a zero direction component: the slab is met everywhere or nowhere
            inside = np.abs(origin) <= half[i]
            flat = d == 0
            lo = np.where(flat, np.where(inside, -np.inf, np.inf), lo)
            hi = np.where(flat, np.where(inside, np.inf, -np.inf), hi)
            t_in, t_out = lo.max(axis=-1), hi.min(axis=-1)
            t = np.where((t_in <= t_out) & (t_out > 0), np.maximum(t_in, 0.0), np.inf)
            block = nearest[r0:r1, c0:c1]
            closer = t < block
            block[closer] = t[closer]
            owner[r0:r1, c0:c1][closer] = i
    return owner


# -- the reader -----------------------------------------------------------------------------
@dataclass
class _Source:
    """One parsed Omni3D JSON file: images by id and their annotations."""

    path: Path
    split: str
    images: dict[int, dict[str, Any]]
    annotations: dict[int, list[dict[str, Any]]]
    categories: dict[int, str]


class Omni3DReader(SceneReader):
    """Omni3D JSON file(s) -> one single-frame scene per image (see the module doc)."""

    format: ClassVar[str] = "omni3d"
    description: ClassVar[str] = (
        "Omni3D annotation JSON (SUN RGB-D, ARKitScenes, Hypersim, Objectron, KITTI, nuScenes "
        "images with camera-frame 3D boxes); one scene per image, no depth"
    )
    Options: ClassVar[type[ReaderOptions]] = Omni3DOptions

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        super().__init__(path, options)
        self._sources: list[_Source] | None = None
        self._load_report = self.new_report()

    # -- files ------------------------------------------------------------------------------
    def _json_files(self) -> list[Path]:
        if self.path.is_file():
            return [self.path]
        return sorted(p for p in self.path.glob("*.json") if p.is_file())

    def _load(self, path: Path, report: SourceReport) -> _Source | None:
        try:
            data = read_json(path)
        except UnreadableFileError as exc:
            if self.path.is_file():  # the one file the user named
                raise SceneFormatError(f"omni3d: cannot read annotation file {exc}") from None
            report.skip("file", str(path), str(exc))  # one of a folder's files
            return None
        looks_right = (
            isinstance(data, dict)
            and isinstance(data.get("images"), list)
            and isinstance(data.get("annotations"), list)
        )
        if not looks_right:
            if self.path.is_file():
                raise SceneFormatError(
                    f"omni3d: {path} is not an Omni3D annotation file (needs 'images' and "
                    "'annotations' lists)"
                )
            report.skip(
                "file",
                str(path),
                "not an Omni3D annotation file (no 'images' and 'annotations' lists)",
            )
            return None
        categories: dict[int, str] = {}
        for cat in data.get("categories") or []:
            if isinstance(cat, dict) and isinstance(cat.get("id"), int):
                categories[cat["id"]] = str(cat.get("name", ""))
        images: dict[int, dict[str, Any]] = {}
        for img in data["images"]:
            if not isinstance(img, dict) or not isinstance(img.get("id"), int):
                report.skip(
                    "frame", f"{path.name}: image {img!r:.80}", "image entry has no integer 'id'"
                )
                continue
            images[img["id"]] = img
        annotations: dict[int, list[dict[str, Any]]] = {}
        for ann in data["annotations"]:
            if isinstance(ann, dict) and ann.get("image_id") in images:
                annotations.setdefault(ann["image_id"], []).append(ann)
            else:
                aid = ann.get("id") if isinstance(ann, dict) else None
                report.skip(
                    "object",
                    f"{path.name}: annotation {aid}",
                    "its image_id is not an image of the file",
                )
        for anns in annotations.values():
            anns.sort(key=lambda a: str(a.get("id")).zfill(20))
        return _Source(
            path, _split_of(data.get("info"), path.name), images, annotations, categories
        )

    def _all_sources(self) -> list[_Source]:
        """The parsed JSON files (parsed once; what parsing skipped is kept in
        ``self._load_report`` and copied into every :meth:`scene_refs` report)."""
        if self._sources is None:
            self._load_report = self.new_report()
            loaded = [self._load(p, self._load_report) for p in self._json_files()]
            self._sources = [s for s in loaded if s is not None]
        return self._sources

    def _image_root(self, source: _Source) -> Path:
        root = self.options.image_root
        return Path(root) if root else source.path.parent.parent

    # -- listing ----------------------------------------------------------------------------
    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        refs: dict[str, SceneRef] = {}
        sources = self._all_sources()
        report.skipped.extend(self._load_report.skipped)
        for index, source in enumerate(sources):
            for image_id, img in sorted(source.images.items()):
                file_path = str(img.get("file_path", ""))
                dataset = dataset_of(file_path, source.path.name)
                scene_id = safe_scene_id(f"{dataset}-{image_id}")
                if scene_id in refs:
                    report.skip(
                        "scene",
                        f"scene {scene_id} ({source.path.name})",
                        f"image id {image_id} already read from {refs[scene_id].locator[0]}",
                    )
                    continue
                native = native_id_of(dataset, file_path, image_id)
                refs[scene_id] = SceneRef(
                    scene_id,
                    dataset,
                    native,
                    (source.path.name, index, image_id),
                    benchmarks=evaluation_benchmarks(dataset, source.split),
                )
        return [refs[k] for k in sorted(refs)]

    # -- reading ----------------------------------------------------------------------------
    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        _, index, image_id = ref.locator
        source = self._all_sources()[index]
        img = source.images[image_id]
        where = f"scene {ref.id}"
        frame = self._frame(ref, source, img, report)
        if frame is None:
            return None
        objects, ignored = self._objects(ref, source, img, report)
        if not objects:
            n_anns = len(source.annotations.get(image_id, []))
            report.skip(
                "scene",
                where,
                f"no usable annotation ({n_anns} in the file, all skipped)",
            )
            return None
        self._annotate(frame, objects)
        attributes: dict[str, Any] = {
            "native_id": ref.native_id,
            "format": self.format,
            "omni3d_file": source.path.name,
            "image_id": image_id,
            "file_path": str(img.get("file_path")),
            "world_frame": "camera_z_up",
        }
        for key in ("dataset_id", "src_90_rotate", "src_flagged"):
            if key in img:
                attributes[key] = img[key]
        if ignored:
            attributes["ignored_kept"] = ignored
        return Scene(ref.id, ref.dataset, source.split, [frame], objects, None, attributes)

    def _frame(
        self, ref: SceneRef, source: _Source, img: dict[str, Any], report: SourceReport
    ) -> Frame | None:
        where = f"scene {ref.id}"
        try:
            K = np.asarray(img.get("K"), dtype=np.float64)
            width, height = int(img["width"]), int(img["height"])
        except (KeyError, TypeError, ValueError) as exc:
            report.skip("scene", where, f"image entry lacks a numeric K / width / height: {exc}")
            return None
        if K.shape != (3, 3) or not np.all(np.isfinite(K)) or K[0, 0] <= 0 or K[1, 1] <= 0:
            report.skip("scene", where, f"K is not a 3x3 intrinsics matrix: {img.get('K')!r}")
            return None
        rel = str(img.get("file_path", "")).replace("//", "/")
        try:
            path = self.inside(rel, self._image_root(source))
        except UnreadableFileError as exc:
            report.skip("scene", where, f"image file_path {exc}")
            return None
        if not rel or not path.is_file():
            report.skip("scene", where, f"image file {path} not found")
            return None
        try:
            size = image_size(path)
        except UnreadableFileError as exc:
            report.skip("scene", where, f"image file is unreadable: {exc}")
            return None
        if size != (width, height):
            report.skip(
                "scene",
                where,
                f"image file {path} is {size[0]}x{size[1]}, annotated as {width}x{height}",
            )
            return None
        frame_id = safe_scene_id(PurePosixPath(rel).stem)
        return Frame(frame_id, K, width, height, CAM_TO_WORLD.copy(), image=path.resolve())

    def _objects(
        self, ref: SceneRef, source: _Source, img: dict[str, Any], report: SourceReport
    ) -> tuple[list[Object3D], int]:
        wanted = {c.strip().lower() for c in self.options.categories or []}
        objects: list[Object3D] = []
        ignored = 0
        for ann in source.annotations.get(img["id"], []):
            label = str(
                ann.get("category_name") or source.categories.get(ann.get("category_id"), "")
            )
            item = f"scene {ref.id}, annotation {ann.get('id')} ({label or 'no label'})"
            if not label:
                report.skip("object", item, "no category_name and unknown category_id")
                continue
            if wanted and label.strip().lower() not in wanted:
                report.skip("object", item, f"category {label!r} not in the categories option")
                continue
            if ann.get("valid3D") is False or ann.get("valid3D") == 0:
                report.skip("object", item, "valid3D is false (no reliable 3D box)")
                continue
            dims = ann.get("dimensions")
            try:
                dims_arr = np.asarray(dims, dtype=np.float64)
            except (TypeError, ValueError):
                dims_arr = np.zeros(0)
            if dims_arr.shape == (3,) and np.all(np.isfinite(dims_arr)) and np.any(dims_arr <= 0):
                report.skip("object", item, f"non-positive dimensions {dims_arr.tolist()}")
                continue
            try:
                box = omni3d_box_to_world(ann.get("center_cam"), dims, ann.get("R_cam"))
            except (TypeError, ValueError) as exc:
                report.skip("object", item, f"invalid 3D box: {exc}")
                continue
            reasons = _ignore_reasons(ann, label)
            if reasons and not self.options.keep_ignored:
                report.skip("object", item, "ignore flag: " + "; ".join(reasons))
                continue
            attrs: dict[str, Any] = {
                "omni3d_id": ann.get("id"),
                "category_id": ann.get("category_id"),
            }
            # Omni3D writes -1 for "unavailable": those are left out
            for key in ("visibility", "truncation", "depth_error", "lidar_pts", "segmentation_pts"):
                value = _num(ann.get(key))
                if value is not None and value >= 0:
                    attrs[key] = value
            for key in ("bbox2D_tight", "bbox2D_proj", "bbox2D_trunc"):
                value = ann.get(key)
                if (
                    isinstance(value, list)
                    and len(value) == 4
                    and all(_num(v) is not None for v in value)
                    and any(v != -1 for v in value)
                ):
                    attrs[key] = [float(v) for v in value]
            if reasons:
                attrs["omni3d_ignore"] = reasons
                ignored += 1
            objects.append(Object3D(len(objects) + 1, label, box, attrs))
        return objects, ignored

    def _annotate(self, frame: Frame, objects: list[Object3D]) -> None:
        """Fill ``visible_pixels`` (box ray casting x visibility), ``truncation`` and, with
        ``box_masks``, ``mask``."""
        boxes = np.stack([o.box for o in objects])
        W, H = frame.width, frame.height
        step = 1 if self.options.box_masks else max(1, math.ceil(math.sqrt(W * H / MAX_RAYS)))
        owner = box_owner_map(boxes, frame.world_to_cam, frame.K, W, H, step)
        counts = np.bincount(owner[owner >= 0], minlength=len(objects)) * step * step
        if self.options.box_masks:
            ids = np.array([0] + [o.id for o in objects], dtype=np.int32)
            frame.mask = ids[owner + 1]
        for obj, count in zip(objects, counts, strict=True):
            vis = obj.attributes.get("visibility")
            n = round(float(count) * vis) if vis is not None and 0 <= vis <= 1 else int(count)
            if n > 0:
                frame.visible_pixels[obj.id] = n
            trunc = obj.attributes.get("truncation")
            if trunc is None or not 0 <= trunc <= 1:
                trunc = vst_truncation(obj.box, frame.world_to_cam, frame.K, W, H)
            frame.truncation[obj.id] = float(trunc)
