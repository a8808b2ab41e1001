"""Hypersim (apple/ml-hypersim) -> :class:`~vst.scenes.Scene` objects.

On-disk layout (README of apple/ml-hypersim, "Working with the Hypersim Dataset")::

    <root>/ai_VVV_NNN/
        _detail/metadata_scene.csv            parameter_name,parameter_value: meters_per_asset_unit
        _detail/metadata_cameras.csv          camera_name (one row per trajectory)
        _detail/cam_XX/camera_keyframe_positions.hdf5     "dataset" (N, 3), asset units
        _detail/cam_XX/camera_keyframe_orientations.hdf5  "dataset" (N, 3, 3) world-from-camera
        _detail/cam_XX/camera_keyframe_frame_indices.hdf5 "dataset" (N,) frame id of each row
        _detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_{positions,
            orientations,extents}.hdf5        per semantic instance id: centre, rotation, lengths
        _detail/mesh/mesh_objects_{si,sii}.hdf5   (optional) NYU40 id / instance id per mesh object
        images/scene_cam_XX_final_preview/frame.IIII.{tonemap,color}.jpg
        images/scene_cam_XX_geometry_hdf5/frame.IIII.depth_meters.hdf5       ray distance, metres
        images/scene_cam_XX_geometry_hdf5/frame.IIII.semantic_instance.hdf5  instance id, -1 none
        images/scene_cam_XX_geometry_hdf5/frame.IIII.semantic.hdf5           NYU40 id, -1 none
    <root>/metadata_camera_parameters.csv     (optional; contrib/mikeroberts3000) per-scene
                                              M_cam_from_uv of scenes with tilt-shift lenses
    <root>/metadata_images_split_scene_v1.csv (optional) scene_name -> split_partition_name

Conversions (see ``docs/sources/hypersim.md``):

* World: Hypersim asset coordinates are gravity-aligned with +Z up (the bounding boxes' +z axis
  "aligns with the world-space gravity vector"); vst keeps the axes and scales by
  ``meters_per_asset_unit``.
* Camera: Hypersim orientations map camera to world with camera +x right, +y up, +z backwards
  (OpenGL). The vst (OpenCV) camera is that camera with Y and Z negated:
  ``R_vst = R_hypersim @ diag(1, -1, -1)``.
* Intrinsics: a pixel (column c, row r) of a W x H image has normalised coordinates
  ``u = (2c + 1) / W - 1``, ``v = 1 - (2r + 1) / H`` and casts the camera-space ray
  ``M_cam_from_uv @ [u, v, 1]`` (contrib/mikeroberts3000, notebook 01). The standard camera is
  ``diag(tan(fov_x / 2), tan(fov_x / 2) * H / W, -1)`` with fov_x = 60 degrees, i.e.
  ``fx = fy = W / (2 tan 30deg)``, ``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``. A tilt-shift matrix
  is decomposed exactly into a pinhole ``K`` and a camera rotation (RQ decomposition); scenes
  whose decomposition needs a skew larger than ``max_skew_px`` are skipped.
* Depth: ``depth_meters`` holds the Euclidean distance to the optical centre; vst z-depth is
  that distance times the cosine between the pixel's ray and the optical axis (for the standard
  camera ``z = d * f / sqrt(f^2 + (c - cx)^2 + (r - cy)^2)``). NaN / inf become 0.
* Boxes: centre and full extents (asset units -> metres) and the object-to-world rotation whose
  columns are the box axes; the axis closest to world Z becomes local Z.
"""

from __future__ import annotations

import csv
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field
from scipy.linalg import rq

from vst.geometry.boxes import make_boxes
from vst.scenes.annotate import annotate_frame
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import image_size
from vst.scenes.model import Frame, Object3D, Scene
from vst.scenes.sources.base import (
    ReaderOptions,
    SceneReader,
    SceneRef,
    SourceReport,
    safe_scene_id,
)

__all__ = [
    "CAMERA_PARAMETERS_FILE",
    "DEFAULT_FOV_X",
    "NYU40_NAMES",
    "SPLIT_FILE",
    "HypersimCamera",
    "HypersimOptions",
    "HypersimReader",
    "distance_to_z",
    "hypersim_box_to_vst",
    "hypersim_camera",
    "hypersim_pose_to_vst",
    "pixel_rays",
    "standard_m_cam_from_uv",
]

DATASET = "hypersim"
CAMERA_PARAMETERS_FILE = "metadata_camera_parameters.csv"
SPLIT_FILE = "metadata_images_split_scene_v1.csv"
DEFAULT_FOV_X = math.pi / 3.0
"""Horizontal field of view of the standard Hypersim camera
(``evermotion_dataset/_vray_user_params.py``)."""

BOX_FILE = "metadata_semantic_instance_bounding_box_object_aligned_2d_{}.hdf5"
ROTATION_ATOL = 1e-3
"""Largest ``|R^T R - I|`` entry accepted for a stored (float32) rotation before projecting."""

NYU40_NAMES: dict[int, str] = dict(
    enumerate(
        [
            "wall",
            "floor",
            "cabinet",
            "bed",
            "chair",
            "sofa",
            "table",
            "door",
            "window",
            "bookshelf",
            "picture",
            "counter",
            "blinds",
            "desk",
            "shelves",
            "curtain",
            "dresser",
            "pillow",
            "mirror",
            "floormat",
            "clothes",
            "ceiling",
            "books",
            "refrigerator",
            "television",
            "paper",
            "towel",
            "showercurtain",
            "box",
            "whiteboard",
            "person",
            "nightstand",
            "toilet",
            "sink",
            "lamp",
            "bathtub",
            "bag",
            "otherstructure",
            "otherfurniture",
            "otherprop",
        ],
        start=1,
    )
)
"""NYU40 semantic id -> name (code/cpp/tools/scene_annotation_tool/semantic_label_descs.csv)."""

_SCENE_RE = re.compile(r"^ai_\d{3}_\d{3}$")
_FRAME_RE = re.compile(r"^frame\.(\d{4})\.")
_OPENGL_TO_OPENCV = np.diag([1.0, -1.0, -1.0])


class HypersimOptions(ReaderOptions):
    """Options of the Hypersim reader (plus ``frame_stride`` / ``max_frames`` per scene)."""

    cameras: list[str] | None = Field(
        None, description="Camera trajectories to read (e.g. ['cam_00']); default all."
    )
    image_kind: Literal["tonemap", "color"] = Field(
        "tonemap", description="Preview JPEG: frame.IIII.tonemap.jpg or frame.IIII.color.jpg."
    )
    objects: Literal["visible", "all"] = Field(
        "visible",
        description="'visible': only instances seen in a read frame; 'all': every valid box.",
    )
    exclude_labels: list[str] = Field(
        default_factory=lambda: ["wall", "floor", "ceiling"],
        description="NYU40 classes not turned into objects (room structure).",
    )
    camera_parameters: str | None = Field(
        None,
        description=f"Path of {CAMERA_PARAMETERS_FILE}; default: looked up next to the scenes.",
    )
    split_file: str | None = Field(
        None, description=f"Path of {SPLIT_FILE}; default: looked up next to the scenes."
    )
    max_skew_px: float = Field(
        0.5,
        ge=0.0,
        description="Tilt-shift cameras whose pinhole needs more skew than this (pixels at the "
        "image border) are skipped.",
    )


# -- camera model ------------------------------------------------------------------------------
@dataclass(frozen=True)
class HypersimCamera:
    """A Hypersim camera for one image size as a vst pinhole camera.

    ``P`` maps homogeneous pixels ``[c, r, 1]`` to rays in the OpenCV-flipped Hypersim camera;
    ``Q`` is the rotation from the vst camera to that frame (identity for untilted cameras), so
    ``ray ~ Q @ inv(K) @ [c, r, 1]``; ``skew_px`` is the skew dropped from ``K``."""

    K: np.ndarray
    Q: np.ndarray
    P: np.ndarray
    width: int
    height: int
    skew_px: float
    standard: bool


def hypersim_camera(M_cam_from_uv: np.ndarray, width: int, height: int) -> HypersimCamera:
    """Pinhole ``K`` (skew dropped) and camera rotation ``Q`` for a W x H image rendered with
    ``M_cam_from_uv`` (rays ``M @ [u, v, 1]``, u right in [-1, 1], v up in [-1, 1] at pixel
    centres, OpenGL camera axes)."""
    M = np.asarray(M_cam_from_uv, dtype=np.float64).reshape(3, 3)
    A = np.array(
        [[2.0 / width, 0.0, 1.0 / width - 1.0], [0.0, -2.0 / height, 1.0 - 1.0 / height], [0, 0, 1]]
    )
    P = _OPENGL_TO_OPENCV @ M @ A
    Kr, Qr = rq(np.linalg.inv(P))
    S = np.diag(np.sign(np.diag(Kr)))  # make the diagonal of K positive
    Kr, Qr = Kr @ S, S @ Qr
    if np.linalg.det(Qr) < 0:  # P ~ -(...) : flip the overall sign
        Qr = -Qr
        Kr = -Kr
    K = Kr / Kr[2, 2]
    Q = Qr.T
    standard = bool(np.allclose(Q, np.eye(3), atol=1e-12) and abs(K[0, 1]) < 1e-9 * K[0, 0])
    # pixel shift from dropping the skew, at the image row farthest from cy
    y_far = max(abs(K[1, 2]), abs(height - 1 - K[1, 2])) / K[1, 1]
    skew_px = float(abs(K[0, 1]) * y_far)
    K = K.copy()
    K[0, 1] = 0.0
    K[1, 0] = K[2, 0] = K[2, 1] = 0.0
    return HypersimCamera(K, Q, P, int(width), int(height), skew_px, standard)


def standard_m_cam_from_uv(width: int, height: int, fov_x: float = DEFAULT_FOV_X) -> np.ndarray:
    """``M_cam_from_uv`` of the standard Hypersim camera (square pixels, horizontal fov)."""
    tx = math.tan(fov_x / 2.0)
    return np.diag([tx, tx * height / width, -1.0])


def pixel_rays(camera: HypersimCamera) -> np.ndarray:
    """Unit ray of every pixel (H, W, 3) in the vst camera frame."""
    rows, cols = np.mgrid[0 : camera.height, 0 : camera.width].astype(np.float64)
    pix = np.stack([cols, rows, np.ones_like(cols)], axis=-1)
    rays = pix @ camera.P.T @ camera.Q  # rows: Q^T P [c, r, 1]
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def distance_to_z(
    distance: np.ndarray, camera: HypersimCamera, rays: np.ndarray | None = None
) -> np.ndarray:
    """Ray distance (metres, NaN/inf allowed) -> vst z-depth float32, 0 where unknown
    (``rays``: :func:`pixel_rays` of ``camera``, when already computed)."""
    d = np.asarray(distance, dtype=np.float64)
    rays = pixel_rays(camera) if rays is None else rays
    with np.errstate(invalid="ignore"):
        z = d * rays[..., 2]
    z[~np.isfinite(z) | (z <= 0)] = 0.0
    return z.astype(np.float32)


# -- poses and boxes ---------------------------------------------------------------------------
def _nearest_rotation(M: np.ndarray) -> np.ndarray:
    U, _, Vt = np.linalg.svd(M)
    D = np.diag([1.0, 1.0, np.sign(np.linalg.det(U @ Vt)) or 1.0])
    return U @ D @ Vt


def _check_rotation(R: np.ndarray, what: str) -> np.ndarray:
    """``R`` projected onto SO(3); ValueError if it is not a rotation within ROTATION_ATOL."""
    R = np.asarray(R, dtype=np.float64)
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ValueError(f"{what} is not a finite 3x3 matrix")
    err = float(np.max(np.abs(R.T @ R - np.eye(3))))
    if err > ROTATION_ATOL or np.linalg.det(R) <= 0:
        raise ValueError(
            f"{what} is not a rotation (max |R^T R - I| = {err:.3g}, det = {np.linalg.det(R):.3g})"
        )
    return _nearest_rotation(R)


def hypersim_pose_to_vst(
    position: np.ndarray,
    orientation: np.ndarray,
    meters_per_asset_unit: float,
    Q: np.ndarray | None = None,
) -> np.ndarray:
    """4x4 vst ``cam_to_world`` from a Hypersim camera position (asset units) and
    world-from-camera orientation (OpenGL axes); ``Q`` is the tilt-shift camera rotation of
    :func:`hypersim_camera`. ValueError on non-finite or non-rotation input."""
    pos = np.asarray(position, dtype=np.float64).reshape(-1)
    if pos.shape != (3,) or not np.all(np.isfinite(pos)):
        raise ValueError(f"camera position {pos.tolist()} is not 3 finite numbers")
    R = _check_rotation(orientation, "camera orientation") @ _OPENGL_TO_OPENCV
    if Q is not None:
        R = R @ Q
    T = np.eye(4)
    T[:3, :3] = R
    T[:3, 3] = pos * meters_per_asset_unit
    return T


def hypersim_box_to_vst(
    position: np.ndarray,
    orientation: np.ndarray,
    extents: np.ndarray,
    meters_per_asset_unit: float,
) -> np.ndarray:
    """vst (9,) box from a Hypersim bounding box: centre (asset units), object-to-world rotation
    (columns = box axes), full extents along those axes (asset units). The box axis closest to
    world Z becomes local Z (pointing up), keeping the frame right-handed. ValueError naming the
    problem for non-finite values, non-positive extents or a non-rotation."""
    c = np.asarray(position, dtype=np.float64).reshape(-1)
    e = np.asarray(extents, dtype=np.float64).reshape(-1)
    if c.shape != (3,) or not np.all(np.isfinite(c)):
        raise ValueError(f"non-finite box position {c.tolist()}")
    if e.shape != (3,) or not np.all(np.isfinite(e)):
        raise ValueError(f"non-finite box extents {e.tolist()}")
    if np.any(e <= 0):
        raise ValueError(f"non-positive box extents {e.tolist()}")
    R = _check_rotation(orientation, "box orientation")
    up = int(np.argmax(np.abs(R[2, :])))
    order = [(up + 1) % 3, (up + 2) % 3, up]  # cyclic: keeps det = +1
    R, e = R[:, order], e[order]
    if R[2, 2] < 0:  # turn the box half-way about its local X: Z up, still right-handed
        R = R @ np.diag([1.0, -1.0, -1.0])
    m = float(meters_per_asset_unit)
    return make_boxes(c * m, e * m, R[None])[0]


# -- file helpers ------------------------------------------------------------------------------
class _MissingFileError(Exception):
    """A file that should be there is not."""


def _read_h5(path: Path) -> np.ndarray:
    """The ``dataset`` array of a Hypersim HDF5 file (_MissingFileError / SceneFormatError)."""
    import h5py

    if not path.is_file():
        raise _MissingFileError(f"missing {path.name}")
    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f["dataset"][()])
    except (OSError, KeyError, ValueError) as exc:
        raise SceneFormatError(f"cannot read HDF5 dataset 'dataset' of {path}: {exc}") from exc


def _read_csv(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as f:
            return [
                {k.strip(): (v or "").strip() for k, v in r.items() if k} for r in csv.DictReader(f)
            ]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SceneFormatError(f"cannot read CSV file {path}: {exc}") from exc


@dataclass
class _FrameData:
    frame: Frame
    instance: np.ndarray


@dataclass
class _SceneInfo:
    name: str
    dir: Path
    meters_per_asset_unit: float
    m_cam_from_uv: np.ndarray | None
    rendered_size: tuple[int, int] | None
    camera_source: str
    split: str
    cameras: dict[tuple[int, int], HypersimCamera] = field(default_factory=dict)
    rays: dict[tuple[int, int], np.ndarray] = field(default_factory=dict)


class HypersimReader(SceneReader):
    """Hypersim scenes: every camera trajectory of a scene in one vst scene.

    ``PATH`` is a Hypersim root holding ``ai_VVV_NNN`` folders or one such folder. Scene id and
    native id are the scene name; frames are named ``cam_XX-frame.IIII``. Frames get the preview
    JPEG, metric z-depth and the instance mask (Hypersim instance ids remapped to object ids
    1..N in increasing instance id); objects get the NYU40 class name of their instance."""

    format = "hypersim"
    description = "Apple Hypersim: ai_VVV_NNN scene folders (HDF5 geometry, preview JPEGs)"
    Options = HypersimOptions

    # -- listing ---------------------------------------------------------------------------
    def _scene_dirs(self, report: SourceReport) -> list[Path]:
        if (self.path / "_detail").is_dir():
            return [self.path]
        dirs = []
        for child in sorted(self.path.iterdir()) if self.path.is_dir() else []:
            if not child.is_dir() or not _SCENE_RE.match(child.name):
                continue
            if (child / "_detail").is_dir():
                dirs.append(child)
            else:
                report.skip("scene", child.name, "no _detail folder (not an unpacked scene)")
        return dirs

    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        refs = [
            SceneRef(id=safe_scene_id(d.name), dataset=DATASET, native_id=d.name, locator=str(d))
            for d in self._scene_dirs(report)
        ]
        return sorted(refs, key=lambda r: r.id)

    def _find_shared(self, option: str | None, name: str) -> Path | None:
        if option:
            p = Path(option)
            if not p.is_file():
                raise FileNotFoundError(f"{self.format}: {p} does not exist")
            return p
        bases = [self.path, self.path.parent] if (self.path / "_detail").is_dir() else [self.path]
        for base in bases:
            if (base / name).is_file():
                return base / name
        return None

    # -- scene-level metadata --------------------------------------------------------------
    def _camera_table(self, report: SourceReport) -> dict[str, dict[str, str]] | None:
        if not hasattr(self, "_cam_table"):
            path = self._find_shared(self.options.camera_parameters, CAMERA_PARAMETERS_FILE)
            self._cam_table = (
                None
                if path is None
                else {r["scene_name"]: r for r in _read_csv(path) if r.get("scene_name")}
            )
            if path is None:
                report.skip(
                    "file",
                    CAMERA_PARAMETERS_FILE,
                    f"not found next to {self.path}: every scene is read with the standard "
                    "60-degree camera (scenes with tilt-shift lenses get slightly wrong "
                    "intrinsics)",
                )
        return self._cam_table

    def _split_table(self) -> dict[str, str]:
        if not hasattr(self, "_splits"):
            path = self._find_shared(self.options.split_file, SPLIT_FILE)
            self._splits = {}
            for r in _read_csv(path) if path else []:
                if r.get("scene_name") and r.get("split_partition_name"):
                    self._splits.setdefault(r["scene_name"], r["split_partition_name"])
        return self._splits

    def _scene_info(self, ref: SceneRef, report: SourceReport) -> _SceneInfo | None:
        d = Path(ref.locator)
        name = ref.native_id
        table = self._camera_table(report)
        row = None if table is None else table.get(name)
        mpau = None
        meta = d / "_detail" / "metadata_scene.csv"
        if meta.is_file():
            for r in _read_csv(meta):
                if r.get("parameter_name") == "meters_per_asset_unit":
                    try:
                        mpau = float(r.get("parameter_value", ""))
                    except ValueError as exc:
                        raise SceneFormatError(
                            f"{meta}: meters_per_asset_unit is not a number: {exc}"
                        ) from exc
            if mpau is None:
                raise SceneFormatError(f"{meta}: no meters_per_asset_unit row")
        elif row is not None and row.get("settings_units_info_meters_scale"):
            mpau = float(row["settings_units_info_meters_scale"])
        if mpau is None or not math.isfinite(mpau) or mpau <= 0:
            report.skip(
                "scene",
                name,
                "no usable meters_per_asset_unit (missing or invalid "
                f"{meta.relative_to(d.parent)})",
            )
            return None
        M, size, source = None, None, "standard 60-degree camera"
        if table is None:
            source += f" (no {CAMERA_PARAMETERS_FILE})"
        elif row is None:
            source += f" (scene not in {CAMERA_PARAMETERS_FILE})"
        else:
            try:
                M = np.array(
                    [[float(row[f"M_cam_from_uv_{i}{j}"]) for j in range(3)] for i in range(3)]
                )
                size = (
                    int(float(row["settings_output_img_width"])),
                    int(float(row["settings_output_img_height"])),
                )
            except (KeyError, ValueError) as exc:
                raise SceneFormatError(
                    f"{CAMERA_PARAMETERS_FILE}: row {name} has no valid M_cam_from_uv / image "
                    f"size: {exc}"
                ) from exc
            source = f"M_cam_from_uv of {CAMERA_PARAMETERS_FILE}"
        split = self._split_table().get(name, "unknown")
        return _SceneInfo(name, d, mpau, M, size, source, split)

    def _camera_for(self, info: _SceneInfo, width: int, height: int) -> HypersimCamera | str:
        """The camera for this image size, or the reason it cannot be used."""
        key = (width, height)
        if key not in info.cameras:
            if info.rendered_size is not None:
                rw, rh = info.rendered_size
                if abs(width * rh - height * rw) > max(rw, rh) * 1e-6 * width:
                    return (
                        f"image size {width}x{height} does not have the aspect of the rendered "
                        f"{rw}x{rh} images, so {CAMERA_PARAMETERS_FILE} does not apply"
                    )
            M = (
                info.m_cam_from_uv
                if info.m_cam_from_uv is not None
                else standard_m_cam_from_uv(width, height)
            )
            info.cameras[key] = hypersim_camera(M, width, height)
        cam = info.cameras[key]
        if cam.skew_px > self.options.max_skew_px:
            return (
                f"non-standard tilt-shift projection needs a pinhole skew of {cam.skew_px:.2f} px "
                f"(> max_skew_px {self.options.max_skew_px:g}); vst intrinsics have no skew"
            )
        if not (0 <= cam.K[0, 2] <= width and 0 <= cam.K[1, 2] <= height):
            return f"principal point ({cam.K[0, 2]:.1f}, {cam.K[1, 2]:.1f}) lies outside the image"
        return cam

    # -- boxes and labels ------------------------------------------------------------------
    def _boxes(
        self, info: _SceneInfo, report: SourceReport
    ) -> tuple[dict[int, np.ndarray], dict[int, str]] | None:
        mesh = info.dir / "_detail" / "mesh"
        try:
            pos = _read_h5(mesh / BOX_FILE.format("positions"))
            rot = _read_h5(mesh / BOX_FILE.format("orientations"))
            ext = _read_h5(mesh / BOX_FILE.format("extents"))
        except _MissingFileError as exc:
            report.skip("scene", info.name, f"no 3D boxes: {exc} in _detail/mesh")
            return None
        pos, rot, ext = (np.asarray(a, dtype=np.float64) for a in (pos, rot, ext))
        n = len(pos)
        if pos.shape != (n, 3) or rot.shape != (n, 3, 3) or ext.shape != (n, 3):
            raise SceneFormatError(
                f"{mesh}: bounding box arrays have inconsistent shapes positions {pos.shape}, "
                f"orientations {rot.shape}, extents {ext.shape}"
            )
        boxes: dict[int, np.ndarray] = {}
        invalid: dict[int, str] = {}
        for i in range(n):
            try:
                boxes[i] = hypersim_box_to_vst(pos[i], rot[i], ext[i], info.meters_per_asset_unit)
            except ValueError as exc:
                invalid[i] = str(exc)
        return boxes, invalid

    def _mesh_labels(self, info: _SceneInfo) -> dict[int, int]:
        """Instance id -> NYU40 id from mesh_objects_si/sii (majority over mesh objects)."""
        mesh = info.dir / "_detail" / "mesh"
        try:
            si = _read_h5(mesh / "mesh_objects_si.hdf5").reshape(-1).astype(np.int64)
            sii = _read_h5(mesh / "mesh_objects_sii.hdf5").reshape(-1).astype(np.int64)
        except _MissingFileError:
            return {}
        if si.shape != sii.shape:
            raise SceneFormatError(
                f"{mesh}: mesh_objects_si {si.shape} and mesh_objects_sii {sii.shape} differ "
                "in length"
            )
        return _majority(sii, si)

    # -- frames ----------------------------------------------------------------------------
    def _camera_names(self, info: _SceneInfo) -> list[str]:
        meta = info.dir / "_detail" / "metadata_cameras.csv"
        if meta.is_file():
            names = [r["camera_name"] for r in _read_csv(meta) if r.get("camera_name")]
        else:
            names = [p.name for p in (info.dir / "_detail").glob("cam_*") if p.is_dir()]
        if self.options.cameras is not None:
            names = [c for c in names if c in set(self.options.cameras)]
        return sorted(set(names))

    def _candidates(self, info: _SceneInfo, report: SourceReport) -> list[tuple[str, int, Any]]:
        """(camera, frame id, pose arrays) of every frame whose files are all present."""
        out = []
        kind = self.options.image_kind
        for cam in self._camera_names(info):
            cdir = info.dir / "_detail" / cam
            try:
                positions = _read_h5(cdir / "camera_keyframe_positions.hdf5")
                orientations = _read_h5(cdir / "camera_keyframe_orientations.hdf5")
            except _MissingFileError as exc:
                report.skip("frame", f"scene {info.name}, camera {cam}", f"no poses: {exc}")
                continue
            try:
                indices = _read_h5(cdir / "camera_keyframe_frame_indices.hdf5").reshape(-1)
            except _MissingFileError:
                indices = np.arange(len(positions))
            if positions.shape != (len(indices), 3) or orientations.shape != (len(indices), 3, 3):
                raise SceneFormatError(
                    f"{cdir}: camera keyframe arrays have inconsistent shapes positions "
                    f"{positions.shape}, orientations {orientations.shape}, indices {indices.shape}"
                )
            row_of = {int(f): i for i, f in enumerate(indices)}
            pdir = info.dir / "images" / f"scene_{cam}_final_preview"
            gdir = info.dir / "images" / f"scene_{cam}_geometry_hdf5"
            ids = set()
            for d in (pdir, gdir):
                if d.is_dir():
                    ids.update(
                        int(m.group(1)) for p in d.iterdir() if (m := _FRAME_RE.match(p.name))
                    )
            ids.update(row_of)
            for fid in sorted(ids):
                stem = f"frame.{fid:04d}"
                item = f"scene {info.name}, frame {cam}-{stem}"
                need = [
                    (pdir / f"{stem}.{kind}.jpg", "image"),
                    (gdir / f"{stem}.depth_meters.hdf5", "depth"),
                    (gdir / f"{stem}.semantic_instance.hdf5", "instance mask"),
                ]
                missing = [
                    f"{what} {p.relative_to(info.dir)}" for p, what in need if not p.is_file()
                ]
                if fid not in row_of:
                    missing.insert(0, f"pose (frame {fid} not in camera_keyframe_frame_indices)")
                if missing:
                    report.skip("frame", item, "missing " + ", ".join(missing))
                    continue
                r = row_of[fid]
                out.append((cam, fid, (positions[r], orientations[r])))
        return out

    def _read_frame(
        self, info: _SceneInfo, cam: str, fid: int, pose: Any, report: SourceReport
    ) -> _FrameData | None:
        stem = f"frame.{fid:04d}"
        frame_id = f"{cam}-{stem}"
        item = f"scene {info.name}, frame {frame_id}"
        pdir = info.dir / "images" / f"scene_{cam}_final_preview"
        gdir = info.dir / "images" / f"scene_{cam}_geometry_hdf5"
        image = pdir / f"{stem}.{self.options.image_kind}.jpg"
        try:
            width, height = image_size(image)
        except (OSError, ValueError) as exc:
            report.skip("frame", item, f"unreadable image {image.name}: {exc}")
            return None
        try:
            distance = _read_h5(gdir / f"{stem}.depth_meters.hdf5")
            instance = _read_h5(gdir / f"{stem}.semantic_instance.hdf5")
        except (_MissingFileError, SceneFormatError) as exc:
            report.skip("frame", item, str(exc))
            return None
        for arr, what in ((distance, "depth_meters"), (instance, "semantic_instance")):
            if arr.shape != (height, width):
                report.skip(
                    "frame", item, f"{what} is {arr.shape}, image {image.name} is {height}x{width}"
                )
                return None
        camera = self._camera_for(info, width, height)
        if isinstance(camera, str):
            report.skip("frame", item, camera)
            return None
        try:
            T = hypersim_pose_to_vst(pose[0], pose[1], info.meters_per_asset_unit, camera.Q)
        except ValueError as exc:
            report.skip("frame", item, f"bad pose: {exc}")
            return None
        frame = Frame(
            id=frame_id,
            K=camera.K,
            width=width,
            height=height,
            cam_to_world=T,
            image=str(image),
            depth=distance_to_z(distance, camera, self._rays(info, camera)),
        )
        return _FrameData(frame, np.asarray(instance).astype(np.int32))

    @staticmethod
    def _rays(info: _SceneInfo, camera: HypersimCamera) -> np.ndarray:
        key = (camera.width, camera.height)
        if key not in info.rays:
            info.rays[key] = pixel_rays(camera)
        return info.rays[key]

    def _semantic(self, info: _SceneInfo, fd: _FrameData) -> np.ndarray | None:
        cam, stem = fd.frame.id.split("-", 1)
        path = info.dir / "images" / f"scene_{cam}_geometry_hdf5" / f"{stem}.semantic.hdf5"
        try:
            sem = _read_h5(path)
        except (_MissingFileError, SceneFormatError):
            return None
        return sem.astype(np.int64) if sem.shape == fd.instance.shape else None

    # -- scene -----------------------------------------------------------------------------
    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        info = self._scene_info(ref, report)
        if info is None:
            return None
        got = self._boxes(info, report)
        if got is None:
            return None
        boxes, invalid = got

        frames: list[_FrameData] = []
        for cam, fid, pose in self.select_frames(self._candidates(info, report)):
            fd = self._read_frame(info, cam, fid, pose, report)
            if fd is not None:
                frames.append(fd)
        if not frames:
            report.skip("scene", info.name, "no usable frame (see the frame entries)")
            return None

        # visibility and pixel-majority labels over the read frames
        seen: dict[int, int] = {}
        pairs_inst, pairs_sem = [], []
        mesh_labels = self._mesh_labels(info)
        for fd in frames:
            ids, counts = np.unique(fd.instance[fd.instance >= 0], return_counts=True)
            for i, c in zip(ids.tolist(), counts.tolist(), strict=True):
                seen[i] = seen.get(i, 0) + c
            if not mesh_labels:
                sem = self._semantic(info, fd)
                if sem is not None:
                    keep = fd.instance >= 0
                    pairs_inst.append(fd.instance[keep].astype(np.int64))
                    pairs_sem.append(sem[keep])
        labels = mesh_labels or (
            _majority(np.concatenate(pairs_inst), np.concatenate(pairs_sem)) if pairs_inst else {}
        )

        kept: list[int] = []
        excluded = {s.lower() for s in self.options.exclude_labels}
        unused = 0
        for i in sorted(set(boxes) | set(invalid) | set(seen)):
            item = f"scene {info.name}, instance {i}"
            if i in invalid:
                if i in seen:
                    report.skip("object", item, f"invalid box: {invalid[i]}")
                else:
                    unused += 1
                continue
            if i not in boxes:
                report.skip(
                    "object", item, "appears in the instance images but has no bounding box"
                )
                continue
            if self.options.objects == "visible" and i not in seen:
                report.skip(
                    "object", item, "not visible in any read frame (option objects='visible')"
                )
                continue
            nyu = labels.get(i)
            if nyu not in NYU40_NAMES:
                report.skip("object", item, f"no NYU40 label (semantic id {nyu})")
                continue
            if NYU40_NAMES[nyu] in excluded:
                report.skip(
                    "object", item, f"class {NYU40_NAMES[nyu]!r} excluded (option exclude_labels)"
                )
                continue
            kept.append(i)
        if unused:
            report.skip(
                "object",
                f"scene {info.name}",
                f"{unused} instance id(s) with non-finite bounding boxes never appear in the "
                "read frames (unused ids)",
            )

        objects = [
            Object3D(
                id=k + 1,
                label=NYU40_NAMES[labels[i]],
                box=boxes[i],
                attributes={"hypersim_instance_id": int(i), "nyu40_id": int(labels[i])},
            )
            for k, i in enumerate(kept)
        ]
        top = max([max(seen, default=-1), *kept, -1]) + 1
        lut = np.zeros(top + 1, dtype=np.int32)
        for k, i in enumerate(kept):
            lut[i] = k + 1
        for fd in frames:
            inst = np.where((fd.instance >= 0) & (fd.instance < top), fd.instance, top)
            mask = lut[inst]
            fd.frame.mask = mask
            annotate_frame(fd.frame, objects, mask)

        return Scene(
            id=ref.id,
            source=DATASET,
            split=info.split,
            frames=[fd.frame for fd in frames],
            objects=objects,
            attributes={
                "native_id": info.name,
                "format": self.format,
                "meters_per_asset_unit": info.meters_per_asset_unit,
                "camera_model": info.camera_source,
                "image_kind": self.options.image_kind,
                "label_source": "mesh_objects_si" if mesh_labels else "semantic image majority",
            },
        )


def _majority(keys: np.ndarray, values: np.ndarray) -> dict[int, int]:
    """For each key >= 0, its most frequent value (ties: the smallest value)."""
    keys = np.asarray(keys, dtype=np.int64).reshape(-1)
    values = np.asarray(values, dtype=np.int64).reshape(-1)
    ok = keys >= 0
    if not np.any(ok):
        return {}
    pairs, counts = np.unique(np.stack([keys[ok], values[ok]], axis=1), axis=0, return_counts=True)
    best: dict[int, tuple[int, int]] = {}
    for (k, v), c in zip(pairs.tolist(), counts.tolist(), strict=True):
        if k not in best or c > best[k][0]:  # pairs are sorted by value: ties keep the smallest
            best[k] = (c, v)
    return {k: v for k, (c, v) in best.items()}
