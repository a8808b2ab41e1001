"""Write a tiny EmbodiedScan info file with its RGB-D images, built from known ground truth.

The layout follows the official EmbodiedScan repository (OpenRobotLab/EmbodiedScan):

* ``data/README.md``: the info pickles sit in the data root next to ``scannet/``,
  ``matterport3d/``...; ScanNet frames are extracted to ``scannet/posed_images/<scan>/<NNNNN>.jpg``
  (colour) and ``<NNNNN>.png`` (16-bit depth in millimetres), see
  ``embodiedscan/converter/generate_image_scannet.py``.
* ``embodiedscan/datasets/embodiedscan_dataset.py``: the pickle is a dict with ``metainfo``
  (``categories``: name -> id) and ``data_list``; each scan has ``sample_idx``
  (``scannet/<scan>``, ``matterport3d/<building>/<region>``), ``axis_align_matrix`` (4x4),
  ``cam2img`` / ``depth_cam2img`` (4x4 intrinsics; Matterport3D stores ``cam2img`` per image),
  ``images`` (``img_path``, ``depth_path``, ``cam2global``, ``visible_instance_ids``) and
  ``instances`` (``bbox_3d``, ``bbox_label_3d``, ``bbox_id``). Camera-to-aligned-world is
  ``axis_align_matrix @ cam2global``; depth is the PNG value divided by 1000 (4000 for
  Matterport3D).
* ``embodiedscan/structures/bbox_3d/euler_box3d.py``: ``bbox_3d`` is ``[x, y, z, dx, dy, dz,
  alpha, beta, gamma]``, centre origin, box-to-world rotation pytorch3d
  ``euler_angles_to_matrix(angles, "ZXY") = Rz(alpha) @ Rx(beta) @ Ry(gamma)``.

Everything is made from known truth: boxes with chosen centres, sizes and ZXY angles in the
axis-aligned (Z up) world, cameras with chosen poses, and depth/colour images ray-cast
analytically (floor plane ``z = 0`` plus the boxes) with :mod:`vst.testing.raycast`. The scan
ids are made up and cannot collide with real scans (ScanNet ends at ``scene0806``).
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vst.testing.raycast import FLOOR, cast, look_at, pixel_rays

__all__ = [
    "CATEGORIES",
    "EmbodiedScanFixture",
    "ScanTruth",
    "embodiedscan_corners",
    "look_at",
    "pytorch3d_zxy_matrix",
    "raycast",
    "write_embodiedscan_fixture",
]

CATEGORIES = {"cabinet": 23, "chair": 37, "table": 255, "bed": 17}
"""``metainfo["categories"]`` of the fixture (name -> id; a few EmbodiedScan-like ids)."""

FLOOR_COLOUR = np.array([150, 150, 150], dtype=np.uint8)
OBJECT_COLOURS = np.array(
    [[220, 40, 40], [40, 200, 40], [40, 60, 220], [230, 200, 30]], dtype=np.uint8
)


# -- EmbodiedScan's own geometry, written independently of vst --------------------------------
def pytorch3d_zxy_matrix(angles: np.ndarray) -> np.ndarray:
    """``pytorch3d.transforms.euler_angles_to_matrix(angles, "ZXY")``: the product of the three
    elementary rotations in convention order, ``Rz(a0) @ Rx(a1) @ Ry(a2)`` (radians)."""
    a, b, g = (float(x) for x in angles)
    ca, sa, cb, sb, cg, sg = np.cos(a), np.sin(a), np.cos(b), np.sin(b), np.cos(g), np.sin(g)
    rz = np.array([[ca, -sa, 0.0], [sa, ca, 0.0], [0.0, 0.0, 1.0]])
    rx = np.array([[1.0, 0.0, 0.0], [0.0, cb, -sb], [0.0, sb, cb]])
    ry = np.array([[cg, 0.0, sg], [0.0, 1.0, 0.0], [-sg, 0.0, cg]])
    return rz @ rx @ ry


def embodiedscan_corners(bbox_3d: np.ndarray) -> np.ndarray:
    """The 8 corners (8, 3) of an EmbodiedScan 9-DoF box the way ``EulerInstance3DBoxes.corners``
    builds them: unit corners from ``unravel_index(arange(8), [2, 2, 2])`` reordered
    ``[0, 1, 3, 2, 4, 5, 7, 6]``, minus the origin (0.5, 0.5, 0.5), scaled by the sizes, rotated
    as row vectors by the transposed ZXY matrix, shifted by the centre."""
    box = np.asarray(bbox_3d, dtype=np.float64)
    unit = np.stack(np.unravel_index(np.arange(8), [2, 2, 2]), axis=1).astype(np.float64)
    unit = unit[[0, 1, 3, 2, 4, 5, 7, 6]] - 0.5
    local = unit * box[3:6]
    return local @ pytorch3d_zxy_matrix(box[6:9]).T + box[:3]


def raycast(
    K: np.ndarray, cam_to_world: np.ndarray, width: int, height: int, boxes: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Ray-cast the floor ``z = 0`` and the EmbodiedScan boxes (N, 9) through every pixel centre.

    Returns ``(depth, hit)``: metric z-depth (H, W) float64 (0 where nothing is hit) and the index
    of the hit surface (-1 none, 0 floor, i + 1 box i)."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 9)
    origin, dirs = pixel_rays(K, width, height, cam_to_world)
    rotations = [pytorch3d_zxy_matrix(box[6:9]) for box in boxes]
    t, hit = cast(origin, dirs, boxes, planes=[FLOOR], rotations=rotations)
    return np.where(np.isfinite(t), t, 0.0), hit


def _colour_image(hit: np.ndarray) -> np.ndarray:
    img = np.zeros((*hit.shape, 3), dtype=np.uint8)
    img[hit == 0] = FLOOR_COLOUR
    for i in range(1, int(hit.max(initial=0)) + 1):
        img[hit == i] = OBJECT_COLOURS[(i - 1) % len(OBJECT_COLOURS)]
    return img


def _k4(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    K = np.eye(4)
    K[0, 0], K[1, 1], K[0, 2], K[1, 2] = fx, fy, cx, cy
    return K


def _rz(theta: float, t: tuple[float, float, float]) -> np.ndarray:
    T = np.eye(4)
    c, s = np.cos(theta), np.sin(theta)
    T[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
    T[:3, 3] = t
    return T


# -- truth -----------------------------------------------------------------------------------
@dataclass
class ScanTruth:
    """Ground truth of one fixture scan. Poses are camera-to-AXIS-ALIGNED-world (what the reader
    must return); ``cam2global`` = ``inv(axis_align_matrix) @ cam_to_world`` is what the pickle
    stores. ``depths`` are metric z-depth at the depth camera (``K_depth``, ``depth_size``)."""

    sample_idx: str
    dataset: str
    native_id: str
    axis_align_matrix: np.ndarray
    boxes: np.ndarray  # (N, 9) EmbodiedScan boxes in the aligned world (radians)
    labels: list[str]
    bbox_ids: list[int]
    K_color: np.ndarray  # 3x3
    K_depth: np.ndarray  # 3x3
    color_size: tuple[int, int]  # (width, height)
    depth_size: tuple[int, int]
    depth_scale: float
    frame_ids: list[str]
    cam_to_world: list[np.ndarray]
    cam2global: list[np.ndarray]
    depths: list[np.ndarray]
    hits_depth: list[np.ndarray]  # surface index at the depth camera (-1 none, 0 floor, i+1)
    img_paths: list[str]
    depth_paths: list[str]


@dataclass
class EmbodiedScanFixture:
    """What :func:`write_embodiedscan_fixture` wrote: the data root, the info pickle and the
    truth of each scan (in ``data_list`` order)."""

    root: Path
    info_file: Path
    scans: list[ScanTruth] = field(default_factory=list)

    def scan(self, sample_idx: str) -> ScanTruth:
        return next(s for s in self.scans if s.sample_idx == sample_idx)


SCANNET_IDX = "scannet/scene0999_00"
MATTERPORT_IDX = "matterport3d/zzFakeBld01/region0"


def _scannet_scan() -> dict:
    # axis_align_matrix: rotation about Z by 35 degrees plus a translation (ScanNet-like)
    align = _rz(np.deg2rad(35.0), (-1.3, 2.1, 0.0))
    boxes = np.array(
        [
            [1.3, 0.5, 0.375, 1.2, 0.7, 0.75, 0.3, 0.0, 0.0],  # table
            [0.1, -0.7, 0.45, 0.5, 0.55, 0.9, -0.7, 0.0, 0.0],  # chair
            [1.6, -1.0, 0.6, 0.6, 0.4, 1.2, 1.1, 0.05, -0.04],  # cabinet, slightly tilted
        ]
    )
    cams = [
        look_at([-2.2, 0.2, 1.6], [0.9, -0.2, 0.4]),
        look_at([-2.0, -1.3, 1.55], [0.9, -0.2, 0.45]),
        look_at([-1.6, -2.4, 1.5], [0.9, -0.2, 0.5]),
        look_at([-1.8, 1.4, 1.65], [0.9, -0.3, 0.4]),
        look_at([-0.8, 2.4, 1.7], [0.9, -0.3, 0.4]),
    ]
    return {
        "sample_idx": SCANNET_IDX,
        "dataset": "scannet",
        "native_id": "scene0999_00",
        "align": align,
        "boxes": boxes,
        "labels": ["table", "chair", "cabinet"],
        "bbox_ids": [4, 9, 11],
        # colour and depth cameras differ (like ScanNet's 1296x968 colour vs 640x480 depth)
        "K_color": _k4(186.0, 184.0, 119.6, 89.3),
        "K_depth": _k4(124.0, 124.0, 79.5, 59.5),
        "color_size": (240, 180),
        "depth_size": (160, 120),
        "depth_scale": 1000.0,
        "cams": cams,
        "names": ["00000", "00010", "00020", "00030", "00040"],
        "img_path": lambda n: f"scannet/posed_images/scene0999_00/{n}.jpg",
        "depth_path": lambda n: f"scannet/posed_images/scene0999_00/{n}.png",
        "per_image_K": False,
    }


def _matterport_scan() -> dict:
    align = _rz(np.deg2rad(-20.0), (0.5, -0.4, 0.1))
    boxes = np.array(
        [
            [0.8, 0.3, 0.3, 1.9, 1.4, 0.6, 0.2, 0.0, 0.0],  # bed
            [-0.4, -0.8, 0.45, 0.5, 0.5, 0.9, 2.0, 0.0, 0.0],  # chair
        ]
    )
    cams = [look_at([-2.5, 0.5, 1.5], [0.3, -0.2, 0.3]), look_at([0.5, -3.0, 1.6], [0.3, 0.0, 0.3])]
    return {
        "sample_idx": MATTERPORT_IDX,
        "dataset": "matterport3d",
        "native_id": "zzFakeBld01/region0",
        "align": align,
        "boxes": boxes,
        "labels": ["bed", "chair"],
        "bbox_ids": [1, 2],
        "K_color": _k4(120.0, 120.0, 79.5, 59.5),
        "K_depth": _k4(120.0, 120.0, 79.5, 59.5),
        "color_size": (160, 120),
        "depth_size": (160, 120),
        "depth_scale": 4000.0,
        "cams": cams,
        "names": ["zzpano0_i1_2", "zzpano1_i1_4"],
        "img_path": lambda n: f"matterport3d/zzFakeBld01/matterport_color_images/{n}.jpg",
        "depth_path": lambda n: (
            f"matterport3d/zzFakeBld01/matterport_depth_images/{n.replace('_i', '_d')}.png"
        ),
        "per_image_K": True,  # Matterport3D infos carry cam2img per image
    }


def _write_scan(root: Path, spec: dict) -> tuple[dict, ScanTruth]:
    align = spec["align"]
    boxes = spec["boxes"]
    Kc, Kd = spec["K_color"], spec["K_depth"]
    wc, hc = spec["color_size"]
    wd, hd = spec["depth_size"]
    images, truth_poses, cam2globals, depths, hits = [], [], [], [], []
    img_paths, depth_paths = [], []
    for name, T in zip(spec["names"], spec["cams"], strict=True):
        depth, hit = raycast(Kd[:3, :3], T, wd, hd, boxes)
        _, hit_c = raycast(Kc[:3, :3], T, wc, hc, boxes)
        img_rel, depth_rel = spec["img_path"](name), spec["depth_path"](name)
        (root / img_rel).parent.mkdir(parents=True, exist_ok=True)
        (root / depth_rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_colour_image(hit_c)).save(root / img_rel, quality=95)
        raw = np.round(depth * spec["depth_scale"]).astype(np.uint16)
        Image.fromarray(raw).save(root / depth_rel)
        cam2global = np.linalg.inv(align) @ T
        entry = {
            "img_path": img_rel,
            "depth_path": depth_rel,
            "cam2global": cam2global,
            "visible_instance_ids": [int(i) - 1 for i in np.unique(hit) if i >= 1],
        }
        if spec["per_image_K"]:
            entry["cam2img"] = Kc.copy()
        images.append(entry)
        truth_poses.append(T)
        cam2globals.append(cam2global)
        depths.append(raw.astype(np.float64) / spec["depth_scale"])
        hits.append(hit)
        img_paths.append(img_rel)
        depth_paths.append(depth_rel)
    info = {
        "sample_idx": spec["sample_idx"],
        "axis_align_matrix": align.copy(),
        "images": images,
        "instances": [
            {
                "bbox_3d": [float(x) for x in box],
                "bbox_label_3d": CATEGORIES[label],
                "bbox_id": bid,
            }
            for box, label, bid in zip(boxes, spec["labels"], spec["bbox_ids"], strict=True)
        ],
    }
    if not spec["per_image_K"]:
        info["cam2img"] = Kc.copy()
        info["depth_cam2img"] = Kd.copy()
    truth = ScanTruth(
        sample_idx=spec["sample_idx"],
        dataset=spec["dataset"],
        native_id=spec["native_id"],
        axis_align_matrix=align,
        boxes=boxes,
        labels=list(spec["labels"]),
        bbox_ids=list(spec["bbox_ids"]),
        K_color=Kc[:3, :3].copy(),
        K_depth=Kd[:3, :3].copy(),
        color_size=(wc, hc),
        depth_size=(wd, hd),
        depth_scale=spec["depth_scale"],
        frame_ids=list(spec["names"]),
        cam_to_world=truth_poses,
        cam2global=cam2globals,
        depths=depths,
        hits_depth=hits,
        img_paths=img_paths,
        depth_paths=depth_paths,
    )
    return info, truth


def write_embodiedscan_fixture(
    root: str | Path, info_name: str = "embodiedscan_infos_train.pkl", matterport: bool = True
) -> EmbodiedScanFixture:
    """Lay out a ScanNet-style scan (5 frames, colour 240x180 and depth 160x120 with different
    intrinsics, 3 boxes) and, with ``matterport``, a Matterport3D-style region (2 frames, per-image
    ``cam2img``, depth in 0.25 mm units) under ``root``, plus the info pickle ``info_name``."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    specs = [_scannet_scan()] + ([_matterport_scan()] if matterport else [])
    data_list, truths = [], []
    for spec in specs:
        info, truth = _write_scan(root, spec)
        data_list.append(info)
        truths.append(truth)
    payload = {
        "metainfo": {"categories": dict(CATEGORIES), "DATASET": "EmbodiedScan"},
        "data_list": data_list,
    }
    info_file = root / info_name
    with info_file.open("wb") as f:
        pickle.dump(payload, f)
    return EmbodiedScanFixture(root=root, info_file=info_file, scans=truths)
