"""ARKitScenes 3DOD (raw per-video folders) -> :class:`~vst.scenes.Scene` objects.

On-disk layout (as ``download_data.py 3dod`` of apple/ARKitScenes unpacks it)::

    <root>/3dod/metadata.csv                       video_id, visit_id, sky_direction, ...
    <root>/3dod/Training/<video_id>/
        <video_id>_3dod_annotation.json            {"data": [{uid, label, segments: {obbAligned:
                                                     {centroid, axesLengths, normalizedAxes}}}]}
        <video_id>_3dod_mesh.ply                   (not read)
        <video_id>_frames/
            lowres_wide.traj                       "ts rx ry rz tx ty tz" per line
            lowres_wide/<video_id>_<ts>.png        RGB, 256x192
            lowres_depth/<video_id>_<ts>.png       uint16 depth in millimetres
            lowres_wide_intrinsics/<video_id>_<ts>.pincam   "w h fx fy cx cy"

The raw dataset (``download_data.py raw``) keeps the same files without the ``<video_id>_frames``
level (``<root>/raw/<fold>/<video_id>/lowres_wide.traj`` ...); both layouts are read.

Conventions (checked against ``threedod/benchmark_scripts/utils/tenFpsDataLoader.py``,
``box_utils.py`` and ``rectify_im.py`` of apple/ARKitScenes):

* World frame: the annotation / trajectory frame, metres, gravity-aligned with +Z up (an upright
  camera has its image-down axis along world -Z, see ``rectify_im.decide_pose``). vst uses it
  unchanged.
* Trajectory: the angle-axis (radians, Rodrigues) rotation and translation of a line form the
  WORLD-TO-CAMERA transform; ``TrajStringToMatrix`` inverts it to get the camera pose, so
  ``cam_to_world = inv([R(r) | t])``. The camera frame is OpenCV (X right, Y down, Z forward).
* Frames are matched to trajectory lines by nearest timestamp within ``pose_tolerance_s``
  (default 5 ms, the tolerance of ``TenFpsDataLoader``); the intrinsics file may be named by a
  timestamp 1 ms off (as that loader also accepts).
* Boxes: ``compute_box_3d`` builds corners as ``normalizedAxes.reshape(3, 3).T @ local +
  centroid`` with ``axesLengths[i]`` along row ``i`` of ``normalizedAxes``: exactly
  :func:`~vst.geometry.conventions.from_vsibench`. The box is then re-described so that the
  local axis closest to world Z is local Z (upright objects get angles ``[0, 0, heading]``).
* Sky direction (``metadata.csv``): ``Up`` frames are kept; ``Left`` frames are rotated 90
  degrees clockwise, ``Right`` 90 degrees counter-clockwise, ``Down`` 180 degrees, and the
  intrinsics and camera pose are rotated with them so every projection stays exact and the world
  (boxes) is unchanged. A video missing from ``metadata.csv`` gets the direction most of its
  camera poses imply (the ``decide_pose`` rule), recorded in ``attributes``.
* Depth: uint16 millimetres -> float32 metres (0 = unknown). Instance masks come from depth and
  boxes (:func:`~vst.scenes.annotate.mask_from_depth_and_boxes`).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field
from scipy.spatial.transform import Rotation

from vst.geometry.boxes import reorient_box_axes
from vst.geometry.conventions import from_vsibench
from vst.scenes.annotate import annotate_frame, mask_from_depth_and_boxes
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import open_image, read_json
from vst.scenes.model import Frame, Object3D, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)

__all__ = [
    "SKY_DIRECTIONS",
    "ARKitScenesOptions",
    "ARKitScenesReader",
    "arkit_box",
    "parse_pincam",
    "parse_traj_line",
    "rotate_pixels",
    "upright_camera",
]

DATASET = "arkitscenes"
SKY_DIRECTIONS = ("Up", "Left", "Down", "Right")
"""Where the sky is in the captured image; the image is rotated so it ends up at the top."""

_ROT90_K = {"Up": 0, "Left": -1, "Down": 2, "Right": 1}
"""``np.rot90`` k bringing the sky to the top (negative = clockwise)."""

_SPLITS = {"training": "train", "validation": "val", "test": "test"}
_TIMESTAMP_DIGITS = 3
"""Timestamps in file names carry 3 decimals (``TenFpsDataLoader`` rounds to ``.3f``)."""


class ARKitScenesOptions(ReaderOptions):
    """Options of the ARKitScenes reader."""

    metadata_csv: str | None = Field(
        None,
        description="metadata.csv with each video's sky_direction (default: the first "
        "metadata.csv found in the video folder or up to three folders above it).",
    )
    pose_tolerance_s: float = Field(
        0.005, gt=0, description="Largest |frame - trajectory| timestamp gap (s) for a pose."
    )
    depth: bool = Field(True, description="Read lowres_depth (and derive instance masks).")
    upright: bool = Field(True, description="Rotate frames whose sky is not up upright.")


def _video_of_name(stem: str) -> tuple[str, str] | None:
    """``(video_id, timestamp string)`` of a file stem ``<video_id>_<ts>``."""
    vid, sep, ts = stem.partition("_")
    if not sep or not vid or not ts:
        return None
    try:
        value = float(ts)
    except ValueError:
        return None
    return (vid, ts) if math.isfinite(value) else None


def parse_traj_line(line: str) -> tuple[float, np.ndarray]:
    """``(timestamp, cam_to_world 4x4)`` of one ``lowres_wide.traj`` line.

    The line is ``ts rx ry rz tx ty tz``: an angle-axis rotation (radians) and a translation
    (metres) of the world-to-camera transform, inverted here. ValueError if malformed."""
    tokens = line.split()
    if len(tokens) != 7:
        raise ValueError(f"expected 7 numbers, got {len(tokens)}")
    try:
        values = np.array([float(t) for t in tokens], dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"not numeric: {line.strip()!r}") from exc
    if not np.all(np.isfinite(values)):
        raise ValueError(f"non-finite values: {line.strip()!r}")
    R_wc = Rotation.from_rotvec(values[1:4]).as_matrix()  # world -> camera
    t_wc = values[4:7]
    T = np.eye(4)
    T[:3, :3] = R_wc.T
    T[:3, 3] = -R_wc.T @ t_wc
    return float(values[0]), T


def parse_pincam(text: str) -> tuple[int, int, np.ndarray]:
    """``(width, height, K)`` of a ``.pincam`` file: ``w h fx fy cx cy``. ValueError if bad."""
    tokens = text.split()
    if len(tokens) != 6:
        raise ValueError(f"expected 6 numbers 'w h fx fy cx cy', got {len(tokens)}")
    w, h, fx, fy, cx, cy = (float(t) for t in tokens)
    if not all(math.isfinite(v) for v in (w, h, fx, fy, cx, cy)):
        raise ValueError("non-finite values")
    if w <= 0 or h <= 0 or w != int(w) or h != int(h):
        raise ValueError(f"bad image size {w:g}x{h:g}")
    if fx <= 0 or fy <= 0:
        raise ValueError(f"focal lengths must be positive, got fx={fx:g}, fy={fy:g}")
    K = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return int(w), int(h), K


def arkit_box(centroid: Any, axes_lengths: Any, normalized_axes: Any) -> np.ndarray:
    """vst (9,) world box of an ARKitScenes ``obbAligned`` entry, local Z = the box axis closest
    to world Z (so upright objects have angles ``[0, 0, heading]``).

    ``normalized_axes`` is 9 numbers, row-major 3x3, one unit box axis per row with
    ``axes_lengths[i]`` along row ``i`` (``box_utils.compute_box_3d``). ValueError if sizes are
    not positive or the axes are not orthonormal."""
    sizes = np.asarray(axes_lengths, dtype=np.float64).reshape(-1)
    if sizes.shape == (3,) and np.all(np.isfinite(sizes)) and np.any(sizes <= 0):
        raise ValueError(f"axesLengths must be positive, got {sizes.tolist()}")
    box = from_vsibench(centroid, axes_lengths, normalized_axes)
    R = np.asarray(normalized_axes, dtype=np.float64).reshape(3, 3).T  # columns = box axes
    up = int(np.argmax(np.abs(R[2])))
    if up == 2:
        return box
    # cyclic permutation putting old axis `up` at local Z (det +1): columns = new axes in old
    order = {0: (1, 2, 0), 1: (2, 0, 1)}[up]
    P = np.zeros((3, 3))
    for new, old in enumerate(order):
        P[old, new] = 1.0
    return reorient_box_axes(box, P)[0]


def upright_camera(
    K: np.ndarray, width: int, height: int, sky: str
) -> tuple[np.ndarray, int, int, np.ndarray]:
    """Intrinsics after rotating the image so ``sky`` ends up at the top.

    Returns ``(K_new, width_new, height_new, R)`` where ``R`` (3x3) maps old camera coordinates
    to new ones (``p_new = R @ p_old``), so ``cam_to_world_new = cam_to_world_old @ inv(R)``.
    Pixel centres follow OpenCV (pixel column c at u = c): a clockwise turn maps ``(u, v)`` to
    ``(H - 1 - v, u)``, counter-clockwise to ``(v, W - 1 - u)``, a half turn to
    ``(W - 1 - u, H - 1 - v)``."""
    fx, fy, cx, cy = K[0, 0], K[1, 1], K[0, 2], K[1, 2]
    if sky == "Up":
        return K.copy(), width, height, np.eye(3)
    if sky == "Left":  # clockwise: X' = -Y, Y' = X
        R = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        K2 = np.array([[fy, 0.0, height - 1 - cy], [0.0, fx, cx], [0.0, 0.0, 1.0]])
        return K2, height, width, R
    if sky == "Right":  # counter-clockwise: X' = Y, Y' = -X
        R = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
        K2 = np.array([[fy, 0.0, cy], [0.0, fx, width - 1 - cx], [0.0, 0.0, 1.0]])
        return K2, height, width, R
    if sky == "Down":  # half turn: X' = -X, Y' = -Y
        R = np.diag([-1.0, -1.0, 1.0])
        K2 = np.array([[fx, 0.0, width - 1 - cx], [0.0, fy, height - 1 - cy], [0.0, 0.0, 1.0]])
        return K2, width, height, R
    raise ValueError(f"unknown sky direction {sky!r}; expected one of {SKY_DIRECTIONS}")


def rotate_pixels(array: np.ndarray, sky: str) -> np.ndarray:
    """``array`` (H, W[, C]) rotated so ``sky`` ends up at the top (contiguous copy)."""
    return np.ascontiguousarray(np.rot90(array, k=_ROT90_K[sky], axes=(0, 1)))


def sky_from_pose(cam_to_world: np.ndarray) -> str:
    """Where world up points in the image of a camera (``rectify_im.decide_pose``'s rule)."""
    up_cam = cam_to_world[:3, :3].T @ np.array([0.0, 0.0, 1.0])
    dirs = {"Up": -up_cam[1], "Left": -up_cam[0], "Down": up_cam[1], "Right": up_cam[0]}
    return max(SKY_DIRECTIONS, key=lambda k: dirs[k])


def _norm_video_id(value: str) -> str:
    s = str(value).strip()
    try:
        f = float(s)
    except ValueError:
        return s
    return str(int(f)) if math.isfinite(f) and f == int(f) else s


@dataclass(frozen=True)
class _Candidate:
    frame_id: str
    timestamp: float
    image: Path
    pincam: Path
    cam_to_world: np.ndarray


class ARKitScenesReader(SceneReader):
    """ARKitScenes 3DOD videos (``<split>/<video_id>/``) with 3D box annotations.

    ``PATH`` is one video folder, a split folder (``Training`` / ``Validation``) of video
    folders, or the dataset root holding the split folders (directly or under ``3dod/``)."""

    format = "arkitscenes"
    description = "ARKitScenes 3DOD videos: lowres RGB-D frames, poses, oriented 3D boxes"
    Options = ARKitScenesOptions
    options: ARKitScenesOptions

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        super().__init__(path, options)
        self._metadata_cache: dict[Path, dict[str, dict[str, str]]] = {}

    # -- listing ----------------------------------------------------------------------------
    @staticmethod
    def _is_video_dir(path: Path) -> bool:
        name = path.name
        return (
            (path / f"{name}_3dod_annotation.json").is_file()
            or (path / f"{name}_frames").is_dir()
            or (path / "lowres_wide.traj").is_file()
        )

    @staticmethod
    def _frames_dir(video_dir: Path, vid: str) -> Path:
        """``<vid>_frames/`` (3DOD) or the video folder itself (the raw dataset's layout)."""
        nested = video_dir / f"{vid}_frames"
        if nested.is_dir() or not (video_dir / "lowres_wide.traj").is_file():
            return nested
        return video_dir

    def _split_dirs(self) -> list[Path]:
        root = self.path
        for base in (root, root / "3dod"):
            if not base.is_dir():
                continue
            splits = [
                p
                for p in sorted(base.iterdir())
                if p.is_dir() and p.name.lower() in ("training", "validation")
            ]
            if splits:
                return splits
        return [root]

    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        if not self.path.is_dir():
            raise SceneFormatError(f"{self.format}: {self.path} is not a folder")
        if self._is_video_dir(self.path):
            videos = [(self.path, self.path.parent.name)]
        else:
            videos = []
            for split_dir in self._split_dirs():
                for child in sorted(split_dir.iterdir()):
                    if not child.is_dir():
                        continue
                    if self._is_video_dir(child):
                        videos.append((child, split_dir.name))
                    else:
                        report.skip(
                            "file",
                            str(child),
                            f"not an ARKitScenes video folder (no {child.name}_3dod_annotation"
                            f".json and no {child.name}_frames/)",
                        )
        refs: dict[str, SceneRef] = {}
        for video_dir, fold in videos:
            vid = video_dir.name
            sid = safe_scene_id(vid)
            if sid in refs:
                report.skip(
                    "scene",
                    f"scene {vid} ({video_dir})",
                    f"duplicate video id: already listed from {refs[sid].locator[0]}",
                )
                continue
            refs[sid] = SceneRef(sid, DATASET, vid, locator=(video_dir, fold))
        return [refs[k] for k in sorted(refs)]

    # -- metadata ---------------------------------------------------------------------------
    def _metadata_file(self, video_dir: Path) -> Path | None:
        if self.options.metadata_csv:
            path = Path(self.options.metadata_csv)
            if not path.is_file():
                raise SceneFormatError(f"{self.format}: metadata_csv {path} does not exist")
            return path
        for folder in [video_dir, *list(video_dir.parents)[:3]]:
            cand = folder / "metadata.csv"
            if cand.is_file():
                return cand
        return None

    def _metadata(self, path: Path) -> dict[str, dict[str, str]]:
        if path not in self._metadata_cache:
            try:
                with path.open(newline="") as fh:
                    rows = list(csv.DictReader(fh))
            except (OSError, UnicodeDecodeError, csv.Error) as exc:
                raise SceneFormatError(f"{self.format}: cannot read {path}: {exc}") from exc
            table: dict[str, dict[str, str]] = {}
            for row in rows:
                vid = row.get("video_id")
                if vid:
                    table[_norm_video_id(vid)] = {k: (v or "").strip() for k, v in row.items() if k}
            self._metadata_cache[path] = table
        return self._metadata_cache[path]

    # -- reading ----------------------------------------------------------------------------
    def _read_objects(self, vid: str, ann_path: Path, report: SourceReport) -> list[Object3D]:
        try:
            data = read_json(ann_path)
        except SceneFormatError as exc:
            raise SceneFormatError(f"{self.format}: {exc}") from None
        entries = data.get("data") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise SceneFormatError(f"{self.format}: {ann_path} has no 'data' list of boxes")
        objects: list[Object3D] = []
        for index, entry in enumerate(entries):
            uid = entry.get("uid") if isinstance(entry, dict) else None
            item = f"scene {vid}, box {index}" + (f" (uid {uid})" if uid else "")
            try:
                if not isinstance(entry, dict):
                    raise ValueError(f"entry is a {type(entry).__name__}, not an object")
                label = str(entry.get("label") or "").strip()
                if not label:
                    raise ValueError("empty label")
                obb = (entry.get("segments") or {}).get("obbAligned")
                if not isinstance(obb, dict):
                    raise ValueError("no segments.obbAligned")
                missing = [k for k in ("centroid", "axesLengths", "normalizedAxes") if k not in obb]
                if missing:
                    raise ValueError(f"obbAligned lacks {missing}")
                box = arkit_box(obb["centroid"], obb["axesLengths"], obb["normalizedAxes"])
            except (ValueError, TypeError, AttributeError) as exc:
                report.skip("object", item, str(exc))
                continue
            attrs: dict[str, Any] = {"source_index": index, "axes": "x=front, y=left, z=up"}
            if uid:
                attrs["uid"] = str(uid)
            objects.append(Object3D(len(objects) + 1, label, box, attrs))
        return objects

    def _read_traj(self, traj: Path, report: SourceReport) -> tuple[np.ndarray, list[np.ndarray]]:
        try:
            lines = traj.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise SceneFormatError(f"{self.format}: cannot read {traj}: {exc}") from exc
        stamps: list[float] = []
        poses: list[np.ndarray] = []
        for n, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                ts, T = parse_traj_line(line)
            except ValueError as exc:
                report.skip("file", f"{traj}:{n}", f"bad trajectory line: {exc}")
                continue
            stamps.append(ts)
            poses.append(T)
        order = np.argsort(np.asarray(stamps), kind="stable")
        return np.asarray(stamps)[order], [poses[i] for i in order]

    def _candidates(self, vid: str, frames_dir: Path, report: SourceReport) -> list[_Candidate]:
        """Frames with an image, a pose within tolerance and an intrinsics file, sorted by time."""
        stamps, poses = self._read_traj(frames_dir / "lowres_wide.traj", report)
        tol = self.options.pose_tolerance_s
        named: list[tuple[float, str, Path]] = []
        for img in sorted((frames_dir / "lowres_wide").glob("*.png")):
            parsed = _video_of_name(img.stem)
            if parsed is None or parsed[0] != vid:
                report.skip("file", str(img), f"not named {vid}_<timestamp>.png")
                continue
            named.append((float(parsed[1]), parsed[1], img))
        named.sort()
        out: list[_Candidate] = []
        for ts, ts_str, img in named:
            frame_id = f"{vid}_{ts_str}"
            item = f"scene {vid}, frame {frame_id}"
            if len(stamps) == 0:
                report.skip("frame", item, "lowres_wide.traj has no pose")
                continue
            j = int(np.searchsorted(stamps, ts))
            near = [i for i in (j - 1, j) if 0 <= i < len(stamps)]
            best = min(near, key=lambda i: abs(stamps[i] - ts))
            gap = abs(stamps[best] - ts)
            if gap > tol + 1e-9:
                report.skip(
                    "frame",
                    item,
                    f"no pose in lowres_wide.traj within {tol * 1000:g} ms "
                    f"(nearest {gap * 1000:.1f} ms away)",
                )
                continue
            pincam = self._pincam_path(frames_dir, vid, ts_str, ts)
            if pincam is None:
                report.skip(
                    "frame", item, f"no lowres_wide_intrinsics/{vid}_{ts_str}.pincam (+-1 ms)"
                )
                continue
            out.append(_Candidate(frame_id, ts, img, pincam, poses[best]))
        return out

    @staticmethod
    def _pincam_path(frames_dir: Path, vid: str, ts_str: str, ts: float) -> Path | None:
        folder = frames_dir / "lowres_wide_intrinsics"
        names = [ts_str] + [f"{ts + d:.{_TIMESTAMP_DIGITS}f}" for d in (-0.001, 0.001)]
        for name in names:
            path = folder / f"{vid}_{name}.pincam"
            if path.is_file():
                return path
        return None

    def _sky_direction(
        self, vid: str, video_dir: Path, candidates: list[_Candidate]
    ) -> tuple[str, str, dict[str, str]]:
        """``(sky direction, where it came from, metadata row)`` of a video."""
        if not self.options.upright:
            return "Up", "not rotated (upright=False)", {}
        meta_path = self._metadata_file(video_dir)
        row = self._metadata(meta_path).get(vid, {}) if meta_path else {}
        value = row.get("sky_direction", "").strip().capitalize()
        if value in SKY_DIRECTIONS:
            return value, f"metadata ({meta_path.name})", row
        votes: dict[str, int] = {}
        for c in candidates:
            s = sky_from_pose(c.cam_to_world)
            votes[s] = votes.get(s, 0) + 1
        best = max(SKY_DIRECTIONS, key=lambda k: (votes.get(k, 0), k == "Up"))
        why = (
            f"camera poses ({meta_path.name} has no sky_direction for {vid})"
            if meta_path
            else "camera poses (no metadata.csv found)"
        )
        return best, why, row

    def _read_frame(
        self,
        vid: str,
        frames_dir: Path,
        cand: _Candidate,
        sky: str,
        objects: list[Object3D],
        report: SourceReport,
    ) -> Frame | None:
        item = f"scene {vid}, frame {cand.frame_id}"
        try:
            w, h, K = parse_pincam(cand.pincam.read_text())
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            report.skip("frame", item, f"bad intrinsics {cand.pincam.name}: {exc}")
            return None
        try:
            with open_image(cand.image) as im:
                image = np.asarray(im.convert("RGB"))
        except (OSError, ValueError) as exc:
            report.skip("frame", item, f"cannot read image {cand.image.name}: {exc}")
            return None
        if image.shape[:2] != (h, w):
            report.skip(
                "frame",
                item,
                f"image {cand.image.name} is {image.shape[1]}x{image.shape[0]} but "
                f"{cand.pincam.name} says {w}x{h}",
            )
            return None
        depth = None
        if self.options.depth:
            depth_path = frames_dir / "lowres_depth" / cand.image.name
            if not depth_path.is_file():
                report.skip("frame", item, f"no lowres_depth/{cand.image.name}")
                return None
            try:
                with open_image(depth_path) as im:
                    raw = np.asarray(im)
            except (OSError, ValueError) as exc:
                report.skip("frame", item, f"cannot read depth {depth_path.name}: {exc}")
                return None
            if raw.ndim != 2 or raw.shape != (h, w):
                report.skip(
                    "frame",
                    item,
                    f"depth {depth_path.name} has shape {raw.shape}, expected ({h}, {w}) "
                    "single-channel uint16 millimetres",
                )
                return None
            depth = raw.astype(np.float32) / np.float32(1000.0)
        K2, w2, h2, R = upright_camera(K, w, h, sky)
        T = np.eye(4)
        T[:3, :3] = R.T
        cam_to_world = cand.cam_to_world @ T
        img_src: np.ndarray | str = str(cand.image)
        if sky != "Up":
            img_src = rotate_pixels(image, sky)
            if depth is not None:
                depth = rotate_pixels(depth, sky)
        frame = Frame(
            id=cand.frame_id,
            K=K2,
            width=w2,
            height=h2,
            cam_to_world=cam_to_world,
            timestamp=cand.timestamp,
            image=img_src,
            depth=depth,
        )
        mask = None
        if depth is not None:
            boxes = np.stack([o.box for o in objects])
            mask = mask_from_depth_and_boxes(
                depth, K2, cam_to_world, boxes, [o.id for o in objects]
            )
            frame.mask = mask
        annotate_frame(frame, objects, mask)
        return frame

    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        video_dir, fold = ref.locator
        vid = ref.native_id
        ann_path = video_dir / f"{vid}_3dod_annotation.json"
        if not ann_path.is_file():
            report.skip("scene", f"scene {vid}", f"no {ann_path.name} (no 3D boxes)")
            return None
        objects = self._read_objects(vid, ann_path, report)
        if not objects:
            report.skip("scene", f"scene {vid}", f"no valid box in {ann_path.name}")
            return None
        frames_dir = self._frames_dir(video_dir, vid)
        if not (frames_dir / "lowres_wide.traj").is_file():
            report.skip("scene", f"scene {vid}", f"no {vid}_frames/lowres_wide.traj")
            return None
        candidates = self._candidates(vid, frames_dir, report)
        sky, sky_source, meta_row = self._sky_direction(vid, video_dir, candidates)
        frames: list[Frame] = []
        for cand in self.select_frames(candidates):
            frame = self._read_frame(vid, frames_dir, cand, sky, objects, report)
            if frame is not None:
                frames.append(frame)
        if not frames:
            report.skip("scene", f"scene {vid}", "no usable frame (see the frame skips)")
            return None
        attributes: dict[str, Any] = {
            "native_id": vid,
            "format": self.format,
            "sky_direction": sky,
            "sky_direction_source": sky_source,
            "upright_rotation_deg_cw": {"Up": 0, "Left": 90, "Down": 180, "Right": 270}[sky],
        }
        split = _SPLITS.get(fold.lower()) or _SPLITS.get(meta_row.get("fold", "").lower())
        visit = meta_row.get("visit_id", "")
        if visit and visit.upper() != "NA":
            attributes["visit_id"] = _norm_video_id(visit)
        return Scene(
            id=ref.id,
            source=DATASET,
            split=split or "unknown",
            frames=frames,
            objects=objects,
            room=None,
            attributes=attributes,
        )
