"""A tiny Hypersim dataset in the real on-disk format, built from known ground truth.

Layout and encodings follow the apple/ml-hypersim README ("Working with the Hypersim Dataset",
"Coordinate conventions", "Camera trajectories", "3D bounding boxes"),
``code/python/tools/scene_generate_images_bounding_box.py`` (box corners
``position + R @ (extents * (corner01 - 0.5))``, poses ``R_world_from_cam`` / positions in asset
units, keyframe frame indices), ``generate_scene_metadata_from_vrscene.py``
(``metadata_scene.csv``: ``parameter_name,parameter_value``) and
``contrib/mikeroberts3000`` (``metadata_camera_parameters.csv``, pixel rays
``M_cam_from_uv @ [u, v, 1]`` with ``u, v`` the pixel centres in [-1, 1], v up). All arrays are
HDF5 datasets named ``dataset``.

Deviations from the real data, for speed: frames are 128x96 instead of 1024x768 (same 4:3 aspect
and the same 60-degree horizontal field of view, so the per-scene ``M_cam_from_uv`` applies
unchanged), and there are 3 frames per camera. Everything else (units, axes, NaN for rays that
hit nothing, -1 for pixels without an instance / class) is as in Hypersim.

Scene ``ai_999_001`` (made-up volume 999, cannot collide with a real scene): meters_per_asset_unit
= 0.0254 (inches), floor plane z = 0, one camera ``cam_00`` with 3 frames, semantic instances
0 = floor (NYU40 2), 1 = unused (NaN box), 2 = table (NYU40 7, axis-aligned), 3 = unused
(inf box), 4 = cabinet (NYU40 3, yawed 30 degrees), 5 = chair (NYU40 5) far behind the cameras
(valid box, never visible), 6 = lamp (NYU40 35), 7 = box (NYU40 29, yawed 15 degrees).
Optionally scene ``ai_999_002``: the same room seen by one camera
with a vertical tilt-shift ``M_cam_from_uv`` (as ai_043_004 in the real table).
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vst.testing.raycast import FLOOR as FLOOR_PLANE
from vst.testing.raycast import cast, look_at

__all__ = ["HypersimFixture", "write_hypersim_fixture"]

WIDTH, HEIGHT = 128, 96
METERS_PER_ASSET_UNIT = 0.0254
FOV_X = math.pi / 3.0

NYU = {"floor": 2, "table": 7, "cabinet": 3, "chair": 5, "lamp": 35, "box": 29}
_COLORS = {
    -1: (20, 20, 30),
    0: (150, 150, 140),
    2: (200, 60, 50),
    4: (60, 90, 200),
    5: (0, 200, 0),
    6: (230, 210, 90),
    7: (160, 100, 40),
}


@dataclass
class _Box:
    instance: int
    label: str
    center_m: np.ndarray
    extents_m: np.ndarray
    yaw_deg: float

    @property
    def rotation(self) -> np.ndarray:
        a = math.radians(self.yaw_deg)
        return np.array([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]])


BOXES = [
    _Box(2, "table", np.array([0.0, 3.0, 0.375]), np.array([1.2, 0.8, 0.75]), 0.0),
    _Box(4, "cabinet", np.array([1.4, 3.6, 0.5]), np.array([0.6, 0.4, 1.0]), 30.0),
    _Box(5, "chair", np.array([0.0, -6.0, 0.45]), np.array([0.5, 0.5, 0.9]), 0.0),
    _Box(6, "lamp", np.array([-1.1, 2.8, 0.6]), np.array([0.3, 0.3, 1.2]), 0.0),
    _Box(7, "box", np.array([0.9, 2.2, 0.15]), np.array([0.3, 0.3, 0.3]), 15.0),
]
FLOOR = _Box(0, "floor", np.array([0.0, 2.0, -0.01]), np.array([20.0, 20.0, 0.02]), 0.0)
"""The floor instance's box (a thin slab under z = 0; rays hit the plane z = 0)."""


def _world_from_cam_gl(eye: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Hypersim world-from-camera rotation (columns: camera +x right, +y up, +z backwards): the
    OpenCV look-at rotation with its Y and Z axes flipped."""
    return look_at(eye, target)[:3, :3] * np.array([1.0, -1.0, -1.0])


CAMERA_EYES = [
    (np.array([0.3, 0.0, 1.5]), np.array([0.4, 3.2, 0.4])),
    (np.array([-1.2, 0.4, 1.4]), np.array([0.5, 3.3, 0.5])),
    (np.array([1.8, 0.3, 1.6]), np.array([0.2, 3.2, 0.4])),
]
"""(eye, target) in metres of the three frames of cam_00."""

TILT_SHIFT_M = np.array([[0.5792, 0.0, 0.0], [0.0, 0.4330, 0.0], [0.0, 0.0346, -1.0032]])
"""A vertical tilt-shift M_cam_from_uv (rounded from ai_043_004 of the real table)."""


@dataclass
class HypersimFixture:
    """Where the fixture is and the ground truth it was built from (metres, vst conventions
    where stated)."""

    root: Path
    scenes: list[str]
    meters_per_asset_unit: float
    width: int
    height: int
    fx: float
    """Focal length in pixels of the standard camera at this size: W / (2 tan 30deg)."""
    positions_m: dict[str, list[np.ndarray]] = field(default_factory=dict)
    orientations: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Hypersim world-from-camera rotations (OpenGL axes) per scene, per frame."""
    boxes: dict[int, _Box] = field(default_factory=dict)
    distance: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """Ray distance images (metres, NaN = miss) per scene, per frame."""
    hit_points: dict[str, list[np.ndarray]] = field(default_factory=dict)
    """World points (H, W, 3) metres hit by each pixel's ray (NaN = miss)."""
    instance: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _rays_cam(M: np.ndarray, width: int, height: int) -> np.ndarray:
    """Hypersim camera-space ray directions (H, W, 3), unit length, OpenGL axes: ``M_cam_from_uv``
    applied to the pixel centres in uv space (a general 3x3 map, e.g. tilt-shift, not a pinhole
    ``K``, hence not :func:`vst.testing.raycast.pixel_rays`)."""
    u = -1.0 + (2.0 * np.arange(width) + 1.0) / width
    v = 1.0 - (2.0 * np.arange(height) + 1.0) / height
    uu, vv = np.meshgrid(u, v)
    uv1 = np.stack([uu, vv, np.ones_like(uu)], axis=-1)
    rays = uv1 @ M.T
    return rays / np.linalg.norm(rays, axis=-1, keepdims=True)


def _cast(origin: np.ndarray, dirs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Distance (NaN = miss) and instance id (-1 = none) of unit rays (N, 3) from ``origin``:
    the floor plane z = 0 and the boxes."""
    boxes = [np.concatenate([b.center_m, b.extents_m]) for b in BOXES]  # + rotations
    rotations = [b.rotation for b in BOXES]
    t, index = cast(origin, dirs, boxes, planes=[FLOOR_PLANE], rotations=rotations)
    instances = np.array([-1, FLOOR.instance, *(b.instance for b in BOXES)], dtype=np.int32)
    return np.where(np.isfinite(t), t, np.nan), instances[index + 1]


def _write_h5(path: Path, array: np.ndarray) -> None:
    import h5py

    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=array)


def _write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def _camera_parameters_row(scene: str, M: np.ndarray) -> dict[str, str]:
    """The columns of metadata_camera_parameters.csv the reader uses (plus M_proj for form)."""
    row = {
        "scene_name": scene,
        "settings_output_img_height": "768.0",
        "settings_output_img_width": "1024.0",
        "settings_units_info_meters_scale": repr(METERS_PER_ASSET_UNIT),
        "use_camera_physical": "False",
    }
    for i in range(3):
        for j in range(3):
            row[f"M_cam_from_uv_{i}{j}"] = repr(float(M[i, j]))
    proj = np.zeros((4, 4))
    proj[0, 0], proj[1, 1] = 1.0 / M[0, 0], 1.0 / M[1, 1]
    proj[2, 2], proj[2, 3], proj[3, 2] = -1.002002002002002, -2.002002002002002, -1.0
    for i in range(4):
        for j in range(4):
            row[f"M_proj_{i}{j}"] = repr(float(proj[i, j]))
    return row


def _write_scene(
    root: Path,
    scene: str,
    M: np.ndarray,
    eyes: list[tuple[np.ndarray, np.ndarray]],
    fx: HypersimFixture,
    mesh_labels: bool,
) -> None:
    d = root / scene
    m = METERS_PER_ASSET_UNIT
    _write_csv(
        d / "_detail" / "metadata_scene.csv",
        ["parameter_name", "parameter_value"],
        [["meters_per_asset_unit", m]],
    )
    _write_csv(d / "_detail" / "metadata_cameras.csv", ["camera_name"], [["cam_00"]])

    # boxes per semantic instance id, asset units; unused ids hold NaN / inf as in Hypersim
    n = 8
    pos = np.full((n, 3), np.nan)
    rot = np.full((n, 3, 3), np.nan)
    ext = np.full((n, 3), np.nan)
    pos[3], rot[3], ext[3] = np.inf, np.inf, np.inf
    for box in [FLOOR, *BOXES]:
        pos[box.instance] = box.center_m / m
        rot[box.instance] = box.rotation
        ext[box.instance] = box.extents_m / m
    mesh = d / "_detail" / "mesh"
    _write_h5(
        mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_positions.hdf5", pos
    )
    _write_h5(
        mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_orientations.hdf5", rot
    )
    _write_h5(mesh / "metadata_semantic_instance_bounding_box_object_aligned_2d_extents.hdf5", ext)
    if mesh_labels:  # two mesh objects per instance; -1 = unannotated object
        sii = np.array([0, 0, 2, 2, 4, 4, 5, 5, 6, 7, -1], dtype=np.int32)
        label = {b.instance: NYU[b.label] for b in [FLOOR, *BOXES]} | {-1: -1}
        _write_h5(mesh / "mesh_objects_sii.hdf5", sii)
        _write_h5(mesh / "mesh_objects_si.hdf5", np.array([label[i] for i in sii], dtype=np.int32))

    sem_of = {b.instance: NYU[b.label] for b in [FLOOR, *BOXES]} | {-1: -1}
    positions, orientations = [], []
    fx.positions_m[scene], fx.orientations[scene] = [], []
    fx.distance[scene], fx.hit_points[scene], fx.instance[scene] = [], [], []
    rays = _rays_cam(M, WIDTH, HEIGHT).reshape(-1, 3)
    for fid, (eye, target) in enumerate(eyes):
        R = _world_from_cam_gl(eye, target)
        positions.append(eye / m)
        orientations.append(R)
        dirs = rays @ R.T
        dist, inst = _cast(eye, dirs)
        dist_img = dist.reshape(HEIGHT, WIDTH).astype(np.float32)
        inst_img = inst.reshape(HEIGHT, WIDTH)
        sem_img = np.vectorize(sem_of.get)(inst_img).astype(np.int32)
        stem = f"frame.{fid:04d}"
        geo = d / "images" / "scene_cam_00_geometry_hdf5"
        _write_h5(geo / f"{stem}.depth_meters.hdf5", dist_img)
        _write_h5(geo / f"{stem}.semantic_instance.hdf5", inst_img)
        _write_h5(geo / f"{stem}.semantic.hdf5", sem_img)
        rgb = np.zeros((HEIGHT, WIDTH, 3), dtype=np.float64)
        for i, c in _COLORS.items():
            rgb[inst_img == i] = c
        shade = np.clip(1.2 - np.nan_to_num(dist_img, nan=8.0) / 10.0, 0.3, 1.0)[..., None]
        prev = d / "images" / "scene_cam_00_final_preview"
        prev.mkdir(parents=True, exist_ok=True)
        Image.fromarray((rgb * shade).astype(np.uint8)).save(
            prev / f"{stem}.tonemap.jpg", quality=95
        )
        Image.fromarray((rgb * shade * 0.8).astype(np.uint8)).save(
            prev / f"{stem}.color.jpg", quality=95
        )
        fx.positions_m[scene].append(eye)
        fx.orientations[scene].append(R)
        fx.distance[scene].append(dist_img)
        fx.hit_points[scene].append((eye + dirs * dist[:, None]).reshape(HEIGHT, WIDTH, 3))
        fx.instance[scene].append(inst_img)
    cam = d / "_detail" / "cam_00"
    _write_h5(cam / "camera_keyframe_positions.hdf5", np.array(positions))
    _write_h5(cam / "camera_keyframe_orientations.hdf5", np.array(orientations))
    _write_h5(cam / "camera_keyframe_frame_indices.hdf5", np.arange(len(eyes), dtype=np.int64))


def write_hypersim_fixture(
    root: str | Path,
    tilt_shift_scene: bool = False,
    mesh_labels: bool = False,
    camera_parameters: bool = True,
    split_file: bool = True,
) -> HypersimFixture:
    """Write the fixture under ``root`` (see the module docstring) and return its ground truth.

    ``tilt_shift_scene`` adds ``ai_999_002`` (one tilted-lens frame), ``mesh_labels`` writes
    ``mesh_objects_si/sii.hdf5`` (else labels come from the semantic images),
    ``camera_parameters`` / ``split_file`` write ``metadata_camera_parameters.csv`` /
    ``metadata_images_split_scene_v1.csv`` at the root (split ``train``)."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    tx = math.tan(FOV_X / 2.0)
    standard = np.diag([tx, tx * HEIGHT / WIDTH, -1.0])
    fx = HypersimFixture(
        root=root,
        scenes=["ai_999_001"],
        meters_per_asset_unit=METERS_PER_ASSET_UNIT,
        width=WIDTH,
        height=HEIGHT,
        fx=WIDTH / (2.0 * tx),
        boxes={b.instance: b for b in [FLOOR, *BOXES]},
    )
    _write_scene(root, "ai_999_001", standard, CAMERA_EYES, fx, mesh_labels)
    rows = [_camera_parameters_row("ai_999_001", standard)]
    if tilt_shift_scene:
        fx.scenes.append("ai_999_002")
        _write_scene(root, "ai_999_002", TILT_SHIFT_M, CAMERA_EYES[:1], fx, mesh_labels)
        rows.append(_camera_parameters_row("ai_999_002", TILT_SHIFT_M))
    if camera_parameters:
        header = list(rows[0])
        _write_csv(
            root / "metadata_camera_parameters.csv", header, [[r[h] for h in header] for r in rows]
        )
    if split_file:
        _write_csv(
            root / "metadata_images_split_scene_v1.csv",
            [
                "scene_name",
                "camera_name",
                "frame_id",
                "included_in_public_release",
                "exclude_reason",
                "split_partition_name",
            ],
            [
                [s, "cam_00", i, "True", "", "train"]
                for s in fx.scenes
                for i in range(len(fx.positions_m[s]))
            ],
        )
    return fx
