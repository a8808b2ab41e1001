"""EmbodiedScan info files -> :class:`~vst.scenes.Scene` objects (RGB-D frames + 9-DoF boxes).

Format (OpenRobotLab/EmbodiedScan, ``embodiedscan/datasets/embodiedscan_dataset.py``,
``embodiedscan/structures/bbox_3d/euler_box3d.py``, ``data/README.md``): an info pickle
(``embodiedscan_infos_{train,val,test}.pkl``) holding a dict with ``metainfo`` (``categories``:
name -> id) and ``data_list``, one entry per scan:

* ``sample_idx``: ``scannet/<scan>``, ``3rscan/<uuid>``, ``matterport3d/<building>/<region>``
  (v2 also ``arkitscenes/<fold>/<video>``); the first component names the dataset.
* ``axis_align_matrix`` (4x4): maps the scan's original frame to the axis-aligned, Z-up frame the
  boxes live in (the official code uses identity when it is absent).
* ``cam2img`` (colour intrinsics, 4x4 or 3x3) and ``depth_cam2img`` (depth intrinsics; falls
  back to ``cam2img``); Matterport3D stores ``cam2img`` per image instead.
* ``images``: ``img_path`` / ``depth_path`` (relative to the data root), ``cam2global`` (4x4
  camera-to-original-frame, OpenCV camera axes), ``visible_instance_ids`` (indices into
  ``instances``).
* ``instances``: ``bbox_3d`` = ``[x, y, z, dx, dy, dz, alpha, beta, gamma]`` (centre, sizes in
  metres, radians; box-to-world rotation ``Rz(alpha) @ Rx(beta) @ Ry(gamma)``, pytorch3d "ZXY"),
  ``bbox_label_3d`` (a category id) and ``bbox_id``.

Conversion: the vst world is the axis-aligned frame (Z up, metres). ``cam_to_world =
axis_align_matrix @ cam2global`` (as the official dataset builds its extrinsics); boxes go
through :func:`~vst.geometry.conventions.from_embodiedscan`. Depth = PNG value / depth scale
(Matterport3D 4000, every other dataset 1000, as the official loader's ``depth_shift``).

Colour and depth cameras: the frame keeps one K for image and depth. Both cameras share the pose
(the official pipeline projects with one extrinsic), so they differ only by intrinsics and image
size, and pixels map between them by the affine map ``K_a @ inv(K_b)``, independent of depth.
With ``frame_size="depth"`` (default) the frame uses the depth camera and the colour image is
resampled into it (bilinear); with ``"color"`` it uses the colour camera and depth is resampled
into it (nearest neighbour, no blending across edges). Pixels with no source stay black / 0.

Masks: EmbodiedScan has no 2D instance masks, so each frame gets
:func:`~vst.scenes.annotate.mask_from_depth_and_boxes`, then
:func:`~vst.scenes.annotate.annotate_frame`. Timestamps: ScanNet frame names are ``.sens``
frame numbers at 30 Hz, so ``timestamp = number / 30``; ARKitScenes names carry the time
(``<video>_<seconds>``); other datasets have none unless ``frame_rate`` names one.

Skipped with a reason: entries without ``sample_idx``, repeated scans, frames with a missing or
non-rigid ``cam2global``, missing intrinsics or files, unreadable depth; boxes that are not 9
finite numbers with positive sizes, or whose label id is not in ``metainfo``.
"""

from __future__ import annotations

import io
import pickle
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field, field_validator

from vst.geometry.conventions import from_embodiedscan
from vst.scenes.annotate import annotate_frame, mask_from_depth_and_boxes
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import open_image
from vst.scenes.model import Frame, Object3D, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)

__all__ = [
    "DEFAULT_DEPTH_SCALE",
    "DEFAULT_FRAME_RATE",
    "EmbodiedScanOptions",
    "EmbodiedScanReader",
    "load_info_file",
]

DEFAULT_DEPTH_SCALE = {"matterport3d": 4000.0}
"""Depth PNG units per metre by dataset; every other dataset uses 1000 (millimetres)."""

DEFAULT_FRAME_RATE = {"scannet": 30.0}
"""Frames per second of datasets whose frame names are frame numbers (ScanNet ``.sens``)."""

KNOWN_DATASETS = ("scannet", "3rscan", "matterport3d", "arkitscenes")
POSE_ATOL = 1e-3
"""Largest ``|R R^T - I|`` entry accepted in a pose (poses are stored in float32)."""


class EmbodiedScanOptions(ReaderOptions):
    """Options of the EmbodiedScan reader."""

    data_root: str | None = Field(
        None, description="Folder img_path/depth_path are relative to (default: the pkl's folder)."
    )
    datasets: list[str] | None = Field(
        None, description="Only scans of these datasets (sample_idx prefixes), e.g. ['scannet']."
    )
    depth_scale: dict[str, float] = Field(
        default_factory=dict,
        description="Depth PNG units per metre by dataset (default matterport3d 4000, else 1000).",
    )
    frame_rate: dict[str, float] = Field(
        default_factory=dict,
        description="Frames per second by dataset for timestamps from frame numbers "
        "(default scannet 30).",
    )
    frame_size: Literal["depth", "color"] = Field(
        "depth", description="Camera the frames use: the depth camera or the colour camera."
    )
    split: str | None = Field(None, description="Split name (default: from the file name).")
    mask_margin: float = Field(0.02, ge=0.0, description="Box growth (m) for the pseudo masks.")

    @field_validator("depth_scale", "frame_rate")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        bad = {k: v for k, v in value.items() if not (np.isfinite(v) and v > 0)}
        if bad:
            raise ValueError(f"values must be positive numbers, got {bad}")
        return {k.lower(): float(v) for k, v in value.items()}

    @field_validator("datasets")
    @classmethod
    def _lower(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [v.strip().lower() for v in value]


# -- the info pickle -----------------------------------------------------------------------
_NUMPY_GLOBALS = (
    {
        (core, name)
        for core in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {(core, "_frombuffer") for core in ("numpy.core.numeric", "numpy._core.numeric")}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
)
"""What pickled numpy arrays and scalars need (numpy 1.x and 2.x module names; protocol 2 writes
array bytes through ``_codecs.encode``; protocol 5 uses ``_frombuffer``)."""

_ALLOWED_GLOBALS = {
    ("collections", "OrderedDict"),
    ("builtins", "set"),
    ("builtins", "frozenset"),
    ("builtins", "slice"),
    ("builtins", "complex"),
} | _NUMPY_GLOBALS


class _InfoUnpickler(pickle.Unpickler):
    """Unpickler that rebuilds only plain containers and numpy arrays/scalars (an info file
    needs nothing else), so a crafted pickle cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _ALLOWED_GLOBALS:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in an info file")


def load_info_file(path: str | Path) -> dict[str, Any]:
    """Load an EmbodiedScan info pickle (a dict with ``metainfo`` and ``data_list``); raises
    :class:`SceneFormatError` naming the file otherwise."""
    path = Path(path)
    try:
        data = _InfoUnpickler(io.BytesIO(path.read_bytes())).load()
    except Exception as exc:  # untrusted bytes: an allowed global fed bad arguments raises
        # TypeError/ValueError/KeyError..., deep nesting RecursionError; all mean "broken file"
        detail = "nested too deeply" if isinstance(exc, RecursionError) else f"{exc}"[:200]
        raise SceneFormatError(
            f"cannot read EmbodiedScan info file {path}: {type(exc).__name__}: {detail}"
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("data_list"), list):
        raise SceneFormatError(
            f"EmbodiedScan info file {path}: expected a dict with a 'data_list' list"
        )
    meta = data.get("metainfo")
    if not isinstance(meta, dict) or not isinstance(meta.get("categories"), dict):
        raise SceneFormatError(
            f"EmbodiedScan info file {path}: expected metainfo['categories'] (name -> id)"
        )
    return data


# -- small helpers ---------------------------------------------------------------------------
def _matrix(value: Any, what: str) -> np.ndarray:
    """A finite float64 matrix (3x3 or 4x4 input); ValueError naming ``what`` otherwise."""
    if value is None:
        raise ValueError(f"no {what}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not numeric") from exc
    if arr.shape not in ((3, 3), (4, 4)):
        raise ValueError(f"{what} has shape {arr.shape}, expected 3x3 or 4x4")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{what} has non-finite values")
    return arr


def _intrinsics(value: Any, what: str) -> np.ndarray:
    K = _matrix(value, what)[:3, :3].copy()
    if K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]) or K[1, 0] != 0:
        raise ValueError(f"{what} is not a pinhole intrinsics matrix: {K.tolist()}")
    return K


def _rigid(value: Any, what: str) -> np.ndarray:
    T = _matrix(value, what)
    if T.shape != (4, 4):
        raise ValueError(f"{what} has shape {T.shape}, expected 4x4")
    R = T[:3, :3]
    err = float(np.abs(R @ R.T - np.eye(3)).max())
    if (
        err > POSE_ATOL
        or abs(np.linalg.det(R) - 1.0) > POSE_ATOL
        or not np.allclose(T[3], [0, 0, 0, 1])
    ):
        raise ValueError(f"{what} is not a rigid transform (max |R R^T - I| = {err:.2g})")
    # re-orthonormalise (float32 storage) so the frame passes validation exactly
    U, _, Vt = np.linalg.svd(R)
    T = T.copy()
    T[:3, :3] = U @ Vt
    return T


def _split_of(path: Path) -> str:
    m = re.search(r"(?:^|_)(train|val|test)(?:_|$)", path.stem)
    return m.group(1) if m else "unknown"


def _native_id(dataset: str, parts: list[str]) -> str:
    """The dataset's own scan id: the video id for ARKitScenes (``arkitscenes/<fold>/<video>``),
    ``<building>/<region>`` for Matterport3D, else everything after the dataset prefix."""
    if dataset == "arkitscenes":
        return parts[-1]
    return "/".join(parts[1:]) or parts[0]


_FRAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _frame_id(img_path: str) -> str:
    name = Path(img_path).name
    for suffix in (".color.jpg", ".color.png", ".jpg", ".jpeg", ".png"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return _FRAME_UNSAFE.sub("_", name).strip("_") or "frame"


def _read_depth(path: Path, scale: float) -> np.ndarray:
    """Metric depth (H, W) float32 from a 16-bit PNG/PGM in ``1/scale`` metre units."""
    try:
        with open_image(path) as im:
            raw = np.asarray(im)
    except (OSError, ValueError) as exc:
        raise ValueError(f"cannot read depth image {path}: {exc}") from exc
    if raw.ndim != 2:
        raise ValueError(f"depth image {path} has shape {raw.shape}, expected one channel")
    depth = raw.astype(np.float64) / scale
    depth[~np.isfinite(depth) | (depth < 0)] = 0.0
    return depth.astype(np.float32)


def _source_coords(K_src: np.ndarray, K_dst: np.ndarray, width: int, height: int):
    """Pixel coordinates (x, y) in the source camera of every destination pixel centre: the
    affine map ``K_src @ inv(K_dst)`` (same pose, intrinsics differ)."""
    A = K_src @ np.linalg.inv(K_dst)
    us, vs = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    x = A[0, 0] * us + A[0, 1] * vs + A[0, 2]
    y = A[1, 0] * us + A[1, 1] * vs + A[1, 2]
    return x, y


def resample_image(
    image: np.ndarray, K_src: np.ndarray, K_dst: np.ndarray, width: int, height: int
) -> np.ndarray:
    """RGB ``image`` (taken with ``K_src``) seen by a camera with ``K_dst`` and size
    ``width x height`` at the same pose: bilinear, black outside the source."""
    x, y = _source_coords(K_src, K_dst, width, height)
    h, w = image.shape[:2]
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    xc, yc = np.clip(x, 0, w - 1), np.clip(y, 0, h - 1)
    x0, y0 = np.floor(xc).astype(int), np.floor(yc).astype(int)
    x1, y1 = np.minimum(x0 + 1, w - 1), np.minimum(y0 + 1, h - 1)
    fx, fy = (xc - x0)[..., None], (yc - y0)[..., None]
    img = image.astype(np.float64)
    top = img[y0, x0] * (1 - fx) + img[y0, x1] * fx
    bottom = img[y1, x0] * (1 - fx) + img[y1, x1] * fx
    out = np.round(top * (1 - fy) + bottom * fy)
    out[~inside] = 0
    return out.astype(np.uint8)


def resample_depth(
    depth: np.ndarray, K_src: np.ndarray, K_dst: np.ndarray, width: int, height: int
) -> np.ndarray:
    """Z-depth (taken with ``K_src``) seen by a camera with ``K_dst`` at the same pose: nearest
    neighbour (z-depth is unchanged when only intrinsics change), 0 outside the source."""
    x, y = _source_coords(K_src, K_dst, width, height)
    h, w = depth.shape
    inside = (x >= -0.5) & (x <= w - 0.5) & (y >= -0.5) & (y <= h - 0.5)
    xi = np.clip(np.round(x), 0, w - 1).astype(int)
    yi = np.clip(np.round(y), 0, h - 1).astype(int)
    out = np.zeros((height, width), dtype=np.float32)
    out[inside] = depth[yi[inside], xi[inside]]
    return out


class EmbodiedScanReader(SceneReader):
    """Reads an EmbodiedScan info pickle (``PATH`` = the .pkl file): one scene per scan."""

    format = "embodiedscan"
    description = "EmbodiedScan info .pkl (ScanNet / 3RScan / Matterport3D / ARKitScenes RGB-D)"
    Options = EmbodiedScanOptions

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        super().__init__(path, options)
        if self.path.is_dir():
            raise ValueError(f"{self.format}: PATH must be an info .pkl file, got folder {path}")
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        self.data_root = Path(opts.data_root) if opts.data_root else self.path.parent
        self._data: dict[str, Any] | None = None

    # -- loading -------------------------------------------------------------------------------
    @property
    def data(self) -> dict[str, Any]:
        if self._data is None:
            self._data = load_info_file(self.path)
        return self._data

    def depth_scale(self, dataset: str) -> float:
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        return opts.depth_scale.get(dataset, DEFAULT_DEPTH_SCALE.get(dataset, 1000.0))

    def frame_rate(self, dataset: str) -> float | None:
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        return opts.frame_rate.get(dataset, DEFAULT_FRAME_RATE.get(dataset))

    # -- listing -------------------------------------------------------------------------------
    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        refs: dict[str, SceneRef] = {}
        for i, entry in enumerate(self.data["data_list"]):
            sample = entry.get("sample_idx") if isinstance(entry, dict) else None
            if not isinstance(sample, str) or not sample.strip("/"):
                report.skip("scene", f"data_list[{i}]", "no 'sample_idx' string")
                continue
            parts = [p for p in sample.strip().split("/") if p]
            dataset = parts[0].lower()
            if opts.datasets is not None and dataset not in opts.datasets:
                continue
            sid = safe_scene_id(sample)
            if sid in refs:
                report.skip(
                    "scene",
                    f"data_list[{i}] ({sample})",
                    f"repeats scan {sample!r} of data_list[{refs[sid].locator}]",
                )
                continue
            refs[sid] = SceneRef(sid, dataset, _native_id(dataset, parts), locator=i)
        return [refs[k] for k in sorted(refs)]

    # -- reading -------------------------------------------------------------------------------
    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        info = self.data["data_list"][ref.locator]
        sample = info["sample_idx"]
        where = f"scene {sample}"
        if "axis_align_matrix" in info:
            try:
                align = _rigid(info["axis_align_matrix"], "axis_align_matrix")
            except ValueError as exc:
                report.skip("scene", where, f"unusable axis_align_matrix: {exc}")
                return None
        else:
            align = np.eye(4)  # what the official dataset does without one

        objects = self._objects(info, where, report)
        frames = self._frames(info, ref.dataset, align, objects, where, report)
        if not objects and not frames:
            report.skip("scene", where, "no usable frame and no usable box")
            return None
        return Scene(
            id=ref.id,
            source=ref.dataset,
            split=opts.split or _split_of(self.path),
            frames=frames,
            objects=objects,
            attributes={
                "native_id": ref.native_id,
                "format": self.format,
                "sample_idx": sample,
                "info_file": self.path.name,
                "axis_align_matrix": align.tolist(),
                "axis_align_matrix_missing": "axis_align_matrix" not in info,
            },
        )

    def _objects(self, info: dict, where: str, report: SourceReport) -> list[Object3D]:
        names = {int(v): str(k) for k, v in self.data["metainfo"]["categories"].items()}
        objects: list[Object3D] = []
        for k, inst in enumerate(info.get("instances") or []):
            item = f"{where}, instance {k}"
            try:
                raw = np.asarray(inst["bbox_3d"], dtype=np.float64).reshape(-1)
                if raw.shape in ((6,), (7,)):  # EulerInstance3DBoxes pads missing angles with 0
                    raw = np.concatenate([raw, np.zeros(9 - len(raw))])
                box = from_embodiedscan(raw)
                if np.any(raw[3:6] <= 0):
                    raise ValueError(f"sizes must be positive, got {raw[3:6].tolist()}")
            except (KeyError, TypeError, ValueError) as exc:
                report.skip("object", item, f"invalid bbox_3d: {exc}")
                continue
            label_id = inst.get("bbox_label_3d")
            try:
                label = names[int(label_id)]
            except (KeyError, TypeError, ValueError):
                report.skip(
                    "object", item, f"bbox_label_3d {label_id!r} is not in metainfo categories"
                )
                continue
            attrs: dict[str, Any] = {"source_index": k, "label_id": int(label_id)}
            if inst.get("bbox_id") is not None:
                attrs["bbox_id"] = int(inst["bbox_id"])
            objects.append(Object3D(id=k + 1, label=label, box=box, attributes=attrs))
        return objects

    def _timestamp(self, dataset: str, frame_id: str) -> float | None:
        if dataset == "arkitscenes":
            m = re.search(r"_(\d+(?:\.\d+)?)$", frame_id)
            return float(m.group(1)) if m else None
        rate = self.frame_rate(dataset)
        m = re.search(r"(\d+)$", frame_id)
        if rate is None or m is None:
            return None
        return round(int(m.group(1)) / rate, 6)

    def _frames(
        self,
        info: dict,
        dataset: str,
        align: np.ndarray,
        objects: list[Object3D],
        where: str,
        report: SourceReport,
    ) -> list[Frame]:
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        images = info.get("images") or []
        boxes = np.stack([o.box for o in objects]) if objects else np.zeros((0, 9))
        ids = [o.id for o in objects]
        frames: list[Frame] = []
        seen: set[str] = set()
        for index, image in self.select_frames(list(enumerate(images))):
            img_rel = image.get("img_path") if isinstance(image, dict) else None
            if not isinstance(img_rel, str):
                report.skip("frame", f"{where}, images[{index}]", "no 'img_path'")
                continue
            fid = _frame_id(img_rel)
            item = f"{where}, frame {fid}"
            if fid in seen:
                report.skip("frame", item, f"repeats frame id {fid!r} (images[{index}])")
                continue
            try:
                frame = self._frame(image, info, dataset, align, fid)
            except ValueError as exc:
                report.skip("frame", item, str(exc))
                continue
            depth = frame.depth
            mask = mask_from_depth_and_boxes(
                depth, frame.K, frame.cam_to_world, boxes, ids, margin=opts.mask_margin
            )
            frame.mask = mask
            annotate_frame(frame, objects, mask)
            seen.add(fid)
            frames.append(frame)
        return frames

    def _frame(self, image: dict, info: dict, dataset: str, align: np.ndarray, fid: str) -> Frame:
        """One frame; ValueError with the reason when it is unusable."""
        opts: EmbodiedScanOptions = self.options  # type: ignore[assignment]
        cam2global = _rigid(image.get("cam2global"), "cam2global")
        cam_to_world = align @ cam2global
        if "cam2img" in image:  # per-image intrinsics (Matterport3D): colour and depth alike
            K_color = _intrinsics(image["cam2img"], "cam2img")
            K_depth = _intrinsics(image.get("depth_cam2img", image["cam2img"]), "depth_cam2img")
        else:
            K_color = _intrinsics(info.get("cam2img"), "cam2img")
            depth_k = info.get("depth_cam2img", info.get("cam2depth", info.get("cam2img")))
            K_depth = _intrinsics(depth_k, "depth_cam2img")
        depth_rel = image.get("depth_path")
        if not isinstance(depth_rel, str):
            raise ValueError("no 'depth_path'")
        img_path = self.inside(image["img_path"], self.data_root)  # ValueError if outside
        depth_path = self.inside(depth_rel, self.data_root)
        for path, what in ((img_path, "image"), (depth_path, "depth image")):
            if not path.is_file():
                raise ValueError(f"{what} {path} does not exist")
        depth = _read_depth(depth_path, self.depth_scale(dataset))
        try:
            with open_image(img_path) as im:
                color_size = im.size
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read image {img_path}: {exc}") from exc
        depth_size = (depth.shape[1], depth.shape[0])
        same = color_size == depth_size and np.allclose(K_color, K_depth)
        if opts.frame_size == "depth":
            (width, height), K = depth_size, K_depth
            if same:
                pixels: np.ndarray | Path = img_path
            else:
                try:
                    with open_image(img_path) as im:
                        rgb = np.asarray(im.convert("RGB"))
                except (OSError, ValueError) as exc:
                    raise ValueError(f"cannot read image {img_path}: {exc}") from exc
                pixels = resample_image(rgb, K_color, K_depth, width, height)
        else:
            (width, height), K = color_size, K_color
            pixels = img_path
            if not same:
                depth = resample_depth(depth, K_depth, K_color, width, height)
        for c, size, axis in ((K[0, 2], width, "cx"), (K[1, 2], height, "cy")):
            if not 0.0 <= c <= size:
                raise ValueError(f"principal point {axis}={c:g} outside the image size {size}")
        return Frame(
            id=fid,
            K=K,
            width=width,
            height=height,
            cam_to_world=cam_to_world,
            timestamp=self._timestamp(dataset, fid),
            image=pixels,
            depth=depth,
        )
