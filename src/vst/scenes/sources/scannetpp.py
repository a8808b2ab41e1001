"""ScanNet++ (iPhone RGB-D frames + annotated laser-scan mesh) -> vst scenes.

Reads a ScanNet++ release laid out as the official toolkit names it (scannetpp/scannetpp:
``common/scene_release.py``; frames extracted with ``iphone/prepare_iphone_data.py``)::

    <root>/splits/nvs_sem_train.txt, nvs_sem_val.txt, ...   scene ids per split (optional)
    <root>/metadata/instance_classes.txt, semantic_classes.txt  (optional, label filter)
    <root>/data/<scene_id>/scans/mesh_aligned_0.05.ply       mesh in the aligned (Z-up) frame
    <root>/data/<scene_id>/scans/segments.json               {"segIndices": segment id per vertex}
    <root>/data/<scene_id>/scans/segments_anno.json          {"segGroups": [{"objectId", "label",
                                                              "segments", "obb"?, ...}]}
    <root>/data/<scene_id>/iphone/pose_intrinsic_imu.json    {"frame_000000": {"intrinsic" 3x3,
                                                              "aligned_pose" 4x4, "pose", ...}}
    <root>/data/<scene_id>/iphone/rgb/frame_000000.jpg       1920x1440 RGB
    <root>/data/<scene_id>/iphone/depth/frame_000000.png     256x192 uint16 millimetres

Conventions (as the official ``iphone/arkit_pcl.py`` uses them):

* World frame = the aligned mesh frame (Z up, metres), the frame of the annotations.
* ``aligned_pose`` is the camera-to-world 4x4 in that frame with an OpenCV camera (X right,
  Y down, Z forward), used as ``Frame.cam_to_world`` as is. ``pose`` is the ARKit pose in the
  ARKit world frame and is not used (it does not match the mesh).
* ``intrinsic`` is the pinhole K of the RGB frames. Depth PNGs hold millimetres (0 = none) on a
  coarser grid with the same field of view; depth = png / 1000 metres (z-depth).
* One K per vst frame: with ``image_size: depth`` (default) the RGB is resized (PIL bilinear)
  to the depth grid; with ``image_size: rgb`` the depth is upsampled (nearest) to the RGB size.
  K is rescaled per axis with pixel centres at integer coordinates:
  ``f' = f s``, ``c' = (c + 0.5) s - 0.5`` (the official tool scales ``c`` by ``s``; the two
  differ by under half a pixel).

Objects: each segGroup's mesh vertices (those whose ``segIndices`` entry is one of the group's
``segments``, as ``semantic/transforms/mesh.py`` selects them) get a gravity-aligned box (see
:func:`fit_upright_box`). Masks come from depth and boxes
(:func:`~vst.scenes.annotate.mask_from_depth_and_boxes`); ScanNet++ ships no 2D instance masks.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import Field

from vst.geometry.boxes import box3d_corners, make_boxes
from vst.geometry.conventions import from_vsibench
from vst.scenes.annotate import annotate_frame, mask_from_depth_and_boxes
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import open_image, read_json
from vst.scenes.model import Frame, Object3D, Room, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)

__all__ = ["ScanNetPPOptions", "ScanNetPPReader", "fit_upright_box", "resize_intrinsics"]

DATASET = "scannetpp"
MESH_FILE = "scans/mesh_aligned_0.05.ply"
SEGMENTS_FILE = "scans/segments.json"
ANNO_FILE = "scans/segments_anno.json"
POSES_FILE = "iphone/pose_intrinsic_imu.json"
RGB_DIR = "iphone/rgb"
DEPTH_DIR = "iphone/depth"
DEPTH_SCALE = 1000.0
"""Depth PNG units per metre (millimetres)."""
POSE_KEY = "aligned_pose"
_FRAME_RE = re.compile(r"^frame_(\d+)$")
_SPLIT_ORDER = (("val", "val"), ("train", "train"), ("test", "test"))
"""Split-file stem substring -> vst split, checked in this order (``nvs_sem_val`` -> val)."""
_POSE_ATOL = 1e-3
"""Largest ``|R R^T - I|`` entry of an aligned_pose rotation accepted (then re-orthonormalised)."""


class ScanNetPPOptions(ReaderOptions):
    """Options of the ScanNet++ reader (plus ``frame_stride`` / ``max_frames``: real sequences
    have thousands of frames, so set one of them)."""

    image_size: Literal["depth", "rgb"] = Field(
        "depth",
        description="Frame size: the depth grid (RGB resized down) or the RGB size (depth "
        "upsampled nearest; large: ~25 MB of arrays per frame).",
    )
    min_vertices: int = Field(8, ge=4, description="Skip segGroups with fewer mesh vertices.")
    min_extent: float = Field(
        0.01, gt=0, description="Skip boxes with a side shorter than this (metres)."
    )
    boxes: Literal["mesh", "obb"] = Field(
        "mesh",
        description="Box source: fitted to the group's mesh vertices (gravity-aligned), or the "
        "annotation's own 'obb' (may be tilted).",
    )
    classes: Literal["instance", "semantic", "all"] = Field(
        "instance",
        description="Keep labels listed in metadata/instance_classes.txt, semantic_classes.txt, "
        "or every label (when the list file is missing, every label is kept and noted).",
    )
    exclude_labels: list[str] = Field(
        default_factory=lambda: ["wall", "floor", "ceiling"],
        description="Labels never made objects (room structure).",
    )
    room: Literal["none", "floor_hull"] = Field(
        "none",
        description="Room extent: none, or the convex hull of the 'floor' vertices (floor_z = "
        "their median z; over-estimates non-convex rooms).",
    )
    mask_margin: float = Field(0.02, ge=0, description="Box growth (m) for depth-derived masks.")


# -- geometry helpers --------------------------------------------------------------------------
def resize_intrinsics(
    K: np.ndarray, src_size: tuple[int, int], dst_size: tuple[int, int]
) -> np.ndarray:
    """K of an image resized from ``src_size`` to ``dst_size`` ((width, height) each), pixel
    centres at integer coordinates: ``f' = f s``, ``c' = (c + 0.5) s - 0.5`` per axis."""
    sx = dst_size[0] / src_size[0]
    sy = dst_size[1] / src_size[1]
    out = np.array(K, dtype=np.float64).copy()
    out[0, 0] *= sx
    out[0, 1] *= sx
    out[1, 1] *= sy
    out[0, 2] = (out[0, 2] + 0.5) * sx - 0.5
    out[1, 2] = (out[1, 2] + 0.5) * sy - 0.5
    return out


def _min_area_rectangle(xy: np.ndarray) -> tuple[np.ndarray, float, float, float] | None:
    """Minimum-area rectangle of 2D points: (centre (2,), length along the local X axis, length
    along local Y, angle of local X in degrees). None if the points span no area.

    Rotating calipers over the convex hull's edges; local X is the longer side (ties: the
    direction with angle in [-45, 45)), its angle normalised to (-90, 90]."""
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = ConvexHull(xy)
    except (QhullError, ValueError):
        return None
    pts = xy[hull.vertices]
    if hull.volume <= 1e-12:
        return None
    best: tuple[float, float, np.ndarray, np.ndarray, np.ndarray] | None = None
    for i in range(len(pts)):
        edge = pts[(i + 1) % len(pts)] - pts[i]
        n = float(np.hypot(*edge))
        if n <= 1e-12:
            continue
        ux = edge / n
        uy = np.array([-ux[1], ux[0]])
        a, b = pts @ ux, pts @ uy
        area = float((a.max() - a.min()) * (b.max() - b.min()))
        if best is None or area < best[0] - 1e-12:
            lo = np.array([a.min(), b.min()])
            hi = np.array([a.max(), b.max()])
            best = (area, 0.0, ux, lo, hi)
    if best is None:
        return None
    _, _, ux, lo, hi = best
    uy = np.array([-ux[1], ux[0]])
    mid = (lo + hi) / 2.0
    center = mid[0] * ux + mid[1] * uy
    lx, ly = float(hi[0] - lo[0]), float(hi[1] - lo[1])
    angle = math.degrees(math.atan2(ux[1], ux[0]))
    if ly > lx + 1e-9 * max(lx, ly, 1.0):
        lx, ly = ly, lx
        angle += 90.0
    elif abs(lx - ly) <= 1e-9 * max(lx, ly, 1.0):
        angle = (angle + 45.0) % 90.0 - 45.0
    angle = (angle + 90.0) % 180.0 - 90.0  # [-90, 90)
    if angle <= -90.0 + 1e-12:
        angle += 180.0
    return center, lx, ly, angle


def fit_upright_box(points: np.ndarray) -> np.ndarray | None:
    """Gravity-aligned box (9,) around world points (N, 3), Z up: z range from the points'
    z, the footprint the minimum-area rectangle of their XY convex hull. Local X is the
    rectangle's longer side (``x_size >= y_size``), the angles ``[0, 0, heading]`` with heading
    about +Z in degrees, canonical spelling. None if the footprint spans no area."""
    pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    rect = _min_area_rectangle(pts[:, :2])
    if rect is None:
        return None
    center_xy, lx, ly, heading = rect
    z0, z1 = float(pts[:, 2].min()), float(pts[:, 2].max())
    a = math.radians(heading)
    R = np.array([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0], [0, 0, 1.0]])
    center = [center_xy[0], center_xy[1], (z0 + z1) / 2.0]
    return make_boxes(center, [lx, ly, z1 - z0], R[None])[0]


def _read_json(path: Path) -> Any:
    try:
        return read_json(path)
    except SceneFormatError as exc:
        raise SceneFormatError(f"scannetpp: {exc}") from None


def _read_mesh_vertices(path: Path) -> np.ndarray:
    """Vertex positions (N, 3) float64 of a PLY mesh (any PLY encoding)."""
    from plyfile import PlyData

    try:
        ply = PlyData.read(str(path))
        v = ply["vertex"]
        return np.stack([np.asarray(v[k], dtype=np.float64) for k in ("x", "y", "z")], axis=1)
    except Exception as exc:  # plyfile raises several kinds on broken files
        raise SceneFormatError(f"scannetpp: cannot read mesh {path}: {exc}") from exc


def _read_list(path: Path) -> list[str]:
    return [s.strip() for s in path.read_text(encoding="utf-8").splitlines() if s.strip()]


def _frame_index(name: str) -> int:
    m = _FRAME_RE.match(name)
    return int(m.group(1)) if m else -1


def _matrix(value: Any, shape: tuple[int, int]) -> np.ndarray | None:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if arr.size != shape[0] * shape[1] or not np.all(np.isfinite(arr)):
        return None
    return arr.reshape(shape)


# -- the reader --------------------------------------------------------------------------------
class ScanNetPPReader(SceneReader):
    """ScanNet++ iPhone frames + mesh annotations (PATH = release root holding ``data/``, a
    ``data/`` folder, or one scene folder)."""

    format = "scannetpp"
    description = "ScanNet++ iPhone RGB-D frames with boxes fitted to the annotated mesh"
    Options = ScanNetPPOptions

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        super().__init__(path, options)
        self._class_list_noted = False  # a missing class list is reported once per reader

    # -- listing ---------------------------------------------------------------------------
    def _layout(self) -> tuple[Path | None, list[Path]]:
        """(release root or None, scene folders)."""
        p = self.path
        if (p / "iphone").is_dir() or (p / "scans").is_dir():
            root = p.parent.parent if p.parent.name == "data" else None
            return root, [p]
        data = p / "data" if (p / "data").is_dir() else p
        root = data.parent if data.name == "data" else None
        scenes = [d for d in sorted(data.iterdir()) if d.is_dir() and not d.name.startswith(".")]
        return root, scenes

    def _splits(self, root: Path | None) -> dict[str, str]:
        out: dict[str, str] = {}
        if root is None or not (root / "splits").is_dir():
            return out
        files = sorted((root / "splits").glob("*.txt"))
        for key, split in _SPLIT_ORDER:
            for f in files:
                if key in f.stem:
                    for sid in _read_list(f):
                        out.setdefault(sid, split)
        return out

    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        root, dirs = self._layout()
        splits = self._splits(root)
        refs = []
        for d in dirs:
            if not ((d / "iphone").is_dir() or (d / "scans").is_dir()):
                report.skip("scene", f"scene {d.name}", "no iphone/ or scans/ folder")
                continue
            refs.append(
                SceneRef(
                    id=safe_scene_id(d.name),
                    dataset=DATASET,
                    native_id=d.name,
                    locator={
                        "dir": str(d),
                        "root": str(root) if root else None,
                        "split": splits.get(d.name, "unknown"),
                    },
                )
            )
        return sorted(refs, key=lambda r: r.id)

    # -- reading ---------------------------------------------------------------------------
    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        d = Path(ref.locator["dir"])
        root = Path(ref.locator["root"]) if ref.locator.get("root") else None
        where = f"scene {ref.native_id}"
        for rel in (MESH_FILE, SEGMENTS_FILE, ANNO_FILE, POSES_FILE):
            if not (d / rel).is_file():
                report.skip("scene", where, f"missing {rel}")
                return None
        if not (d / RGB_DIR).is_dir() or not (d / DEPTH_DIR).is_dir():
            report.skip(
                "scene",
                where,
                f"no extracted frames ({RGB_DIR}/ and {DEPTH_DIR}/): run the official "
                "iphone.prepare_iphone_data extraction first",
            )
            return None

        objects, floor_pts, ceiling_pts = self._objects(d, root, where, report)
        frames = self._frames(d, where, report)
        if not frames:
            report.skip("scene", where, "no usable iPhone frame")
            return None
        self._annotate(frames, objects)

        room = None
        if self.options.room == "floor_hull":
            room = self._room(floor_pts, ceiling_pts, where, report)
        return Scene(
            id=ref.id,
            source=DATASET,
            split=ref.locator.get("split", "unknown"),
            frames=frames,
            objects=objects,
            room=room,
            attributes={
                "native_id": ref.native_id,
                "format": self.format,
                "pose": POSE_KEY,
                "image_size": self.options.image_size,
                "boxes": self.options.boxes,
            },
        )

    # objects ------------------------------------------------------------------------------
    def _class_filter(self, root: Path | None, report: SourceReport) -> set[str] | None:
        if self.options.classes == "all":
            return None
        name = f"metadata/{self.options.classes}_classes.txt"
        path = root / name if root is not None else None
        if path is None or not path.is_file():
            if not self._class_list_noted:
                self._class_list_noted = True
                report.skip("file", name, "not found; labels are not filtered by a class list")
            return None
        return set(_read_list(path))

    def _objects(
        self, d: Path, root: Path | None, where: str, report: SourceReport
    ) -> tuple[list[Object3D], np.ndarray, np.ndarray]:
        verts = _read_mesh_vertices(d / MESH_FILE)
        seg_json = _read_json(d / SEGMENTS_FILE)
        anno = _read_json(d / ANNO_FILE)
        try:
            seg = np.asarray(seg_json["segIndices"], dtype=np.int64)
            groups = list(anno["segGroups"])
        except (KeyError, TypeError, ValueError) as exc:
            raise SceneFormatError(
                f"scannetpp: {d / SEGMENTS_FILE} needs 'segIndices' and {d / ANNO_FILE} "
                f"'segGroups': {exc}"
            ) from exc
        if len(seg) != len(verts):
            raise SceneFormatError(
                f"scannetpp: {d / SEGMENTS_FILE} has {len(seg)} segIndices but "
                f"{d / MESH_FILE} has {len(verts)} vertices"
            )
        keep = self._class_filter(root, report)
        excluded = {s.strip().lower() for s in self.options.exclude_labels}
        objects: list[Object3D] = []
        floor_pts = np.zeros((0, 3))
        ceiling_pts = np.zeros((0, 3))
        for pos, grp in enumerate(groups):
            label = str(grp.get("label", "")).strip() if isinstance(grp, dict) else ""
            oid = grp.get("objectId", grp.get("id", pos)) if isinstance(grp, dict) else pos
            item = f"{where}, segGroup {pos} (objectId {oid}, label {label!r})"
            if not isinstance(grp, dict) or not label:
                report.skip("object", item, "segGroup without a label")
                continue
            try:
                sel = np.isin(seg, np.asarray(grp.get("segments", []), dtype=np.int64))
            except (TypeError, ValueError):
                report.skip("object", item, "'segments' is not a list of segment ids")
                continue
            pts = verts[sel]
            if label.lower() == "floor":
                floor_pts = np.concatenate([floor_pts, pts])
            elif label.lower() == "ceiling":
                ceiling_pts = np.concatenate([ceiling_pts, pts])
            if label.lower() in excluded:
                report.skip("object", item, "label is in exclude_labels (room structure)")
                continue
            if keep is not None and label not in keep:
                report.skip(
                    "object", item, f"label not in metadata/{self.options.classes}_classes.txt"
                )
                continue
            box, attrs, reason = self._box(grp, pts)
            if box is None:
                report.skip("object", item, reason)
                continue
            attrs.update(
                {"object_id": oid, "seg_group_index": grp.get("index", pos), "n_vertices": len(pts)}
            )
            objects.append(Object3D(id=len(objects) + 1, label=label, box=box, attributes=attrs))
        return objects, floor_pts, ceiling_pts

    def _box(self, grp: dict, pts: np.ndarray) -> tuple[np.ndarray | None, dict, str]:
        """(box, attributes, reason if None)."""
        opts = self.options
        obb_box = None
        if isinstance(grp.get("obb"), dict):
            o = grp["obb"]
            try:
                obb_box = from_vsibench(o["centroid"], o["axesLengths"], o["normalizedAxes"])
            except (KeyError, ValueError) as exc:
                obb_box = None
                obb_error = f"invalid obb: {exc}"
            else:
                obb_error = ""
        else:
            obb_error = "no obb"
        attrs: dict[str, Any] = {"box_source": opts.boxes}
        if opts.boxes == "obb":
            if obb_box is None:
                return None, attrs, obb_error
            box = obb_box
        else:
            if len(pts) < opts.min_vertices:
                return (
                    None,
                    attrs,
                    (f"only {len(pts)} mesh vertices (min_vertices={opts.min_vertices})"),
                )
            box = fit_upright_box(pts)
            if box is None:
                return (
                    None,
                    attrs,
                    ("degenerate: the vertices' XY footprint has no area (collinear from above)"),
                )
            if obb_box is not None:
                dev = _corner_set_distance(box, obb_box)
                attrs["obb_corner_deviation_m"] = round(dev, 6)
        if np.any(box[3:6] < opts.min_extent):
            sizes = ", ".join(f"{v:.4f}" for v in box[3:6])
            return (
                None,
                attrs,
                f"degenerate: box sizes ({sizes}) m below min_extent={opts.min_extent}",
            )
        return box, attrs, ""

    # frames -------------------------------------------------------------------------------
    def _frames(self, d: Path, where: str, report: SourceReport) -> list[Frame]:
        records = _read_json(d / POSES_FILE)
        if not isinstance(records, dict):
            raise SceneFormatError(f"scannetpp: {d / POSES_FILE} is not a frame -> record object")
        rgb_dir, depth_dir = d / RGB_DIR, d / DEPTH_DIR
        names = set(records)
        names |= {p.stem for p in rgb_dir.glob("frame_*.jpg")}
        names |= {p.stem for p in depth_dir.glob("frame_*.png")}
        usable: list[tuple[str, np.ndarray, np.ndarray, float | None]] = []
        for name in sorted(names, key=lambda n: (_frame_index(n), n)):
            item = f"{where}, frame {name}"
            rec = records.get(name)
            if not isinstance(rec, dict):
                report.skip("frame", item, f"no record in {POSES_FILE}")
                continue
            T = _matrix(rec.get(POSE_KEY), (4, 4))
            if T is None:
                report.skip("frame", item, f"no valid {POSE_KEY} (4x4 finite) in {POSES_FILE}")
                continue
            T = _rigid(T)
            if T is None:
                report.skip("frame", item, f"{POSE_KEY} is not a rigid transform")
                continue
            K = _matrix(rec.get("intrinsic"), (3, 3))
            if K is None or K[0, 0] <= 0 or K[1, 1] <= 0 or not np.allclose(K[2], [0, 0, 1]):
                report.skip("frame", item, f"no valid 'intrinsic' (3x3 pinhole) in {POSES_FILE}")
                continue
            if not (rgb_dir / f"{name}.jpg").is_file():
                report.skip("frame", item, f"missing {RGB_DIR}/{name}.jpg")
                continue
            if not (depth_dir / f"{name}.png").is_file():
                report.skip("frame", item, f"missing {DEPTH_DIR}/{name}.png")
                continue
            ts = rec.get("timestamp")
            ts = float(ts) if isinstance(ts, int | float) and math.isfinite(ts) else None
            usable.append((name, T, K, ts))
        frames = []
        for name, T, K, ts in self.select_frames(usable):
            frame = self._frame(d, name, T, K, ts, f"{where}, frame {name}", report)
            if frame is not None:
                frames.append(frame)
        return frames

    def _frame(
        self,
        d: Path,
        name: str,
        T: np.ndarray,
        K: np.ndarray,
        ts: float | None,
        item: str,
        report: SourceReport,
    ) -> Frame | None:
        rgb_path = d / RGB_DIR / f"{name}.jpg"
        depth_path = d / DEPTH_DIR / f"{name}.png"
        try:
            with open_image(rgb_path) as im:
                rgb_size = im.size
                rgb = np.asarray(im.convert("RGB")) if self.options.image_size == "depth" else None
        except (OSError, ValueError) as exc:
            report.skip("frame", item, f"cannot read {RGB_DIR}/{name}.jpg: {exc}")
            return None
        try:
            with open_image(depth_path) as im:
                raw = np.asarray(im)
        except (OSError, ValueError) as exc:
            report.skip("frame", item, f"cannot read {DEPTH_DIR}/{name}.png: {exc}")
            return None
        if raw.ndim != 2 or not np.issubdtype(raw.dtype, np.integer):
            report.skip("frame", item, f"{DEPTH_DIR}/{name}.png is not a 16-bit depth image")
            return None
        depth = raw.astype(np.float32) / np.float32(DEPTH_SCALE)
        depth_size = (raw.shape[1], raw.shape[0])
        if abs(rgb_size[0] * depth_size[1] - rgb_size[1] * depth_size[0]) > 0.01 * (
            rgb_size[0] * depth_size[1]
        ):
            report.skip(
                "frame",
                item,
                f"RGB {rgb_size[0]}x{rgb_size[1]} and depth {depth_size[0]}x{depth_size[1]} "
                "have different aspect ratios",
            )
            return None
        if self.options.image_size == "depth":
            size = depth_size
            image: Any = (
                rgb
                if rgb_size == depth_size
                else np.asarray(Image.fromarray(rgb).resize(size, Image.Resampling.BILINEAR))
            )
        else:
            size = rgb_size
            image = rgb_path
            if depth_size != rgb_size:
                cols = np.minimum(
                    ((np.arange(size[0]) + 0.5) * depth_size[0] / size[0]).astype(int),
                    depth_size[0] - 1,
                )
                rows = np.minimum(
                    ((np.arange(size[1]) + 0.5) * depth_size[1] / size[1]).astype(int),
                    depth_size[1] - 1,
                )
                depth = depth[rows[:, None], cols[None, :]]
        return Frame(
            id=name,
            K=resize_intrinsics(K, rgb_size, size),
            width=size[0],
            height=size[1],
            cam_to_world=T,
            timestamp=ts,
            image=image,
            depth=np.ascontiguousarray(depth, dtype=np.float32),
        )

    def _annotate(self, frames: list[Frame], objects: list[Object3D]) -> None:
        boxes = np.stack([o.box for o in objects]) if objects else np.zeros((0, 9))
        ids = [o.id for o in objects]
        for frame in frames:
            mask = mask_from_depth_and_boxes(
                frame.depth,
                frame.K,
                frame.cam_to_world,
                boxes,
                ids,
                margin=self.options.mask_margin,
            )
            frame.mask = mask
            annotate_frame(frame, objects, mask)

    def _room(
        self, floor: np.ndarray, ceiling: np.ndarray, where: str, report: SourceReport
    ) -> Room | None:
        from scipy.spatial import ConvexHull, QhullError

        if len(floor) < 3:
            report.skip("file", f"{where}, room", "no 'floor' segGroup vertices: no room extent")
            return None
        try:
            hull = ConvexHull(floor[:, :2])
        except (QhullError, ValueError):
            report.skip("file", f"{where}, room", "floor vertices span no area: no room extent")
            return None
        poly = floor[hull.vertices, :2]  # counter-clockwise for 2D hulls
        ceiling_z = float(np.median(ceiling[:, 2])) if len(ceiling) else None
        return Room(floor_polygon=poly, floor_z=float(np.median(floor[:, 2])), ceiling_z=ceiling_z)


def _rigid(T: np.ndarray) -> np.ndarray | None:
    """``T`` with its rotation re-orthonormalised, or None if it is not close to rigid."""
    if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        return None
    R = T[:3, :3]
    if np.abs(R @ R.T - np.eye(3)).max() > _POSE_ATOL or np.linalg.det(R) <= 0:
        return None
    U, _, Vt = np.linalg.svd(R)
    out = T.copy()
    out[:3, :3] = U @ Vt
    out[3] = [0.0, 0.0, 0.0, 1.0]
    return out


def _corner_set_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Largest distance from a corner of box ``a`` to the nearest corner of box ``b`` (and back)."""
    ca, cb = box3d_corners(a)[0], box3d_corners(b)[0]
    dist = np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=-1)
    return float(max(dist.min(axis=1).max(), dist.min(axis=0).max()))
