"""A tiny ScanNet++ release in its real on-disk layout, built from known ground truth.

Layout written (as the official toolkit names it: ``common/scene_release.py``,
``iphone/prepare_iphone_data.py`` and ``iphone/arkit_pcl.py`` of scannetpp/scannetpp)::

    <root>/
      splits/nvs_sem_train.txt            scene ids, one a line
      metadata/semantic_classes.txt       class names, one a line
      metadata/instance_classes.txt
      data/ffff000001/
        scans/mesh_aligned_0.05.ply       binary little-endian PLY: vertex x y z (float) red green
                                          blue (uchar), face vertex_indices (uchar count, int ids)
        scans/segments.json               {"sceneId", "segIndices": segment id per mesh vertex}
        scans/segments_anno.json          {"sceneId", "segGroups": [{"id", "objectId", "index",
                                          "label", "segments", "obb"}]}; obb = {"centroid",
                                          "axesLengths", "normalizedAxes" (3 unit axes, one per
                                          row, flattened), "min", "max"}
        iphone/pose_intrinsic_imu.json    {"frame_000000": {"timestamp", "intrinsic" (3x3, for the
                                          RGB frames), "pose" (ARKit frame), "aligned_pose"
                                          (4x4 camera-to-world, OpenCV camera, mesh frame)}}
        iphone/rgb/frame_000000.jpg       1920x1440 RGB, as ffmpeg extracts rgb.mp4
        iphone/depth/frame_000000.png     256x192 uint16 depth in millimetres, 0 = no depth

The scene holds a floor (z = 0, 8 m x 8 m, label ``floor``) and four box-shaped objects whose
mesh vertices are exactly the corners and face centres of known boxes (one turned 30 degrees
about Z, one -60, one 15), a ``cup`` group with too few vertices and a flat ``picture`` group
whose vertices are collinear seen from above. Eight iPhone frames along an arc look at the
boxes; depth and RGB are ray-cast analytically (floor square + boxes) with
:mod:`vst.testing.raycast`, the depth through the depth-size intrinsics derived from the RGB
ones by the pixel-centre rule ``c' = (c + 0.5) s - 0.5``, ``f' = f s``.

The scene id ``ffff000001`` is made up (real ScanNet++ ids are 10 hex digits from a random
space; this one is not in any benchmark list).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vst.geometry.boxes import box3d_corners, make_boxes
from vst.testing.raycast import Plane, cast, look_at, pixel_rays

__all__ = [
    "DEPTH_SIZE",
    "RGB_SIZE",
    "SCENE_ID",
    "FixtureObject",
    "ScanNetPPFixture",
    "depth_intrinsics",
    "look_at",
    "write_scannetpp_fixture",
]

SCENE_ID = "ffff000001"
RGB_SIZE = (1920, 1440)
"""(width, height) of the extracted iPhone RGB frames."""
DEPTH_SIZE = (256, 192)
"""(width, height) of the iPhone LiDAR depth frames."""
K_RGB = np.array([[1450.0, 0.0, 962.3], [0.0, 1452.0, 718.9], [0.0, 0.0, 1.0]])
FLOOR_HALF = 4.0
"""The floor covers [-4, 4] x [-4, 4] metres at z = 0."""
ALIGNMENT = np.array(
    [[0.0, -1.0, 0.0, 0.7], [1.0, 0.0, 0.0, -0.2], [0.0, 0.0, 1.0, 0.1], [0.0, 0.0, 0.0, 1.0]]
)
"""Made-up ARKit-world -> mesh transform: ``pose = inv(ALIGNMENT) @ aligned_pose``."""


@dataclass(frozen=True)
class FixtureObject:
    """One annotated box: label, centre (world, m), sizes (local X, Y, Z, m), heading about +Z
    (degrees), RGB colour."""

    label: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    heading_deg: float
    color: tuple[int, int, int]

    @property
    def box(self) -> np.ndarray:
        """The vst 9-DoF box ``[x, y, z, dx, dy, dz, 0, 0, heading]`` (canonical spelling)."""
        return make_boxes(self.center, self.size, _rz(self.heading_deg)[None])[0]


OBJECTS = (
    FixtureObject("table", (1.0, 0.5, 0.4), (1.2, 0.6, 0.8), 0.0, (200, 60, 40)),
    FixtureObject("cabinet", (-1.0, 1.0, 0.5), (0.8, 0.5, 1.0), 30.0, (40, 90, 200)),
    FixtureObject("chair", (0.5, -1.2, 0.45), (0.5, 0.45, 0.9), -60.0, (60, 170, 70)),
    FixtureObject("trash can", (-0.5, -0.6, 0.2), (0.35, 0.3, 0.4), 15.0, (230, 200, 40)),
)
"""The boxes the reader must recover (local X is the longer horizontal side of each)."""

N_FRAMES = 8
"""Frames ``frame_000000``, ``frame_000010``, ... (every 10th video frame, as a sparse
extraction): a camera walking an arc of radius 3.2 m round the objects, 25 degrees a step."""


def camera_path(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Eye and look-at target of frame ``n`` (world, metres)."""
    a = np.radians(-150.0 + 25.0 * n)
    eye = np.array([3.2 * np.cos(a), 3.2 * np.sin(a), 1.5 + 0.1 * np.sin(n)])
    b = a + np.radians(100.0)
    target = np.array([0.7 * np.cos(b), 0.7 * np.sin(b), 0.4])
    return eye, target


@dataclass
class ScanNetPPFixture:
    """What :func:`write_scannetpp_fixture` wrote, for hand-computed expectations."""

    root: Path
    scene_id: str
    scene_dir: Path
    objects: tuple[FixtureObject, ...]
    frame_ids: list[str]
    cam_to_world: dict[str, np.ndarray]
    """frame id -> aligned_pose (4x4 camera-to-world, OpenCV camera, mesh frame)."""
    K_rgb: np.ndarray
    K_depth: np.ndarray
    rgb_size: tuple[int, int]
    depth_size: tuple[int, int]
    depth: dict[str, np.ndarray] = field(default_factory=dict)
    """frame id -> analytic z-depth (float64 metres, 0 = no hit) at the depth size."""
    skipped_groups: dict[str, str] = field(default_factory=dict)
    """label -> why the reader must skip that segGroup (``few`` vertices / ``degenerate``)."""


# -- geometry --------------------------------------------------------------------------------
def _rz(deg: float) -> np.ndarray:
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def depth_intrinsics(K_rgb: np.ndarray, rgb_size, depth_size) -> np.ndarray:
    """Intrinsics of the depth grid from the RGB ones: ``f' = f s`` and ``c' = (c + 0.5) s - 0.5``
    per axis with ``s = depth / rgb`` (pixel centres at integer coordinates)."""
    sx = depth_size[0] / rgb_size[0]
    sy = depth_size[1] / rgb_size[1]
    K = np.array(K_rgb, dtype=np.float64).copy()
    K[0, 0] *= sx
    K[1, 1] *= sy
    K[0, 2] = (K[0, 2] + 0.5) * sx - 0.5
    K[1, 2] = (K[1, 2] + 0.5) * sy - 0.5
    return K


FLOOR_SQUARE = Plane((0.0, 0.0, 1.0), 0.0, lo=(-FLOOR_HALF, -FLOOR_HALF, -np.inf),
                     hi=(FLOOR_HALF, FLOOR_HALF, np.inf))  # fmt: skip


def _raycast(
    K: np.ndarray, cam_to_world: np.ndarray, size: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """z-depth (H, W) (0 = no hit), hit surface index (-1 none, 0 floor, 1+i object i) and the
    hit box face's local axis (0..2; -1 off the boxes) of every pixel centre."""
    origin, dirs = pixel_rays(K, size[0], size[1], cam_to_world)
    t, which, axis = cast(
        origin, dirs, [o.box for o in OBJECTS], planes=[FLOOR_SQUARE], return_face_axis=True
    )
    return np.where(np.isfinite(t), t, 0.0), which, axis


def _render_rgb(K: np.ndarray, cam_to_world: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Flat-shaded colours: floor checkerboard, objects by face axis, black background."""
    depth, which, axis = _raycast(K, cam_to_world, size)
    H, W = depth.shape
    img = np.zeros((H, W, 3), dtype=np.float64)
    floor = which == 0
    if floor.any():
        v, u = np.nonzero(floor)
        z = depth[v, u]
        rays = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=1)
        world = rays @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
        check = (np.floor(world[:, 0] * 2) + np.floor(world[:, 1] * 2)) % 2
        img[v, u] = np.where(check[:, None] > 0, 190.0, 130.0)
    shade = np.array([0.75, 0.9, 1.0])
    for i, obj in enumerate(OBJECTS):
        sel = which == i + 1
        img[sel] = np.asarray(obj.color, dtype=np.float64) * shade[axis[sel]][:, None]
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# -- mesh ------------------------------------------------------------------------------------
def _box_surface(obj: FixtureObject) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (14, 3): 8 corners then 6 face centres, and 24 fan triangles (local indices)."""
    corners = box3d_corners(obj.box)[0]
    faces_quads = [
        (0, 3, 2, 1),
        (4, 5, 6, 7),
        (0, 1, 5, 4),
        (1, 2, 6, 5),
        (2, 3, 7, 6),
        (3, 0, 4, 7),
    ]
    centres = [corners[list(q)].mean(axis=0) for q in faces_quads]
    verts = np.concatenate([corners, np.asarray(centres)], axis=0)
    tris = []
    for k, q in enumerate(faces_quads):
        c = 8 + k
        for j in range(4):
            tris.append((q[j], q[(j + 1) % 4], c))
    return verts, np.asarray(tris)


def _write_ply(path: Path, verts: np.ndarray, colors: np.ndarray, faces: np.ndarray) -> None:
    """Binary little-endian PLY with float x y z, uchar red green blue, and triangle faces."""
    header = (
        "ply\nformat binary_little_endian 1.0\n"
        f"element vertex {len(verts)}\n"
        "property float x\nproperty float y\nproperty float z\n"
        "property uchar red\nproperty uchar green\nproperty uchar blue\n"
        f"element face {len(faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    )
    vdt = np.dtype(
        [("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("r", "u1"), ("g", "u1"), ("b", "u1")]
    )
    varr = np.zeros(len(verts), dtype=vdt)
    varr["x"], varr["y"], varr["z"] = verts[:, 0], verts[:, 1], verts[:, 2]
    varr["r"], varr["g"], varr["b"] = colors[:, 0], colors[:, 1], colors[:, 2]
    fdt = np.dtype([("n", "u1"), ("i", "<i4", (3,))])
    farr = np.zeros(len(faces), dtype=fdt)
    farr["n"] = 3
    farr["i"] = faces
    path.write_bytes(header.encode("ascii") + varr.tobytes() + farr.tobytes())


def _obb(verts: np.ndarray, center, size, R: np.ndarray) -> dict:
    """An annotation-style oriented box record (axes one per row, flattened)."""
    return {
        "centroid": [float(v) for v in center],
        "axesLengths": [float(v) for v in size],
        "normalizedAxes": [float(v) for v in R.T.reshape(-1)],
        "min": [float(v) for v in verts.min(axis=0)],
        "max": [float(v) for v in verts.max(axis=0)],
    }


def _build_mesh() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """Vertices, colours, faces, segIndices and segGroups of the fixture mesh."""
    verts: list[np.ndarray] = []
    colors: list[np.ndarray] = []
    faces: list[np.ndarray] = []
    segs: list[np.ndarray] = []
    groups: list[dict] = []

    def add(v: np.ndarray, f: np.ndarray, seg: np.ndarray, color) -> None:
        base = sum(len(x) for x in verts)
        verts.append(v)
        colors.append(np.tile(np.asarray(color, dtype=np.uint8), (len(v), 1)))
        faces.append(f + base)
        segs.append(seg)

    # floor grid 17 x 17 over [-4, 4]^2, 4 segments by quadrant (ids 500..503)
    g = np.linspace(-FLOOR_HALF, FLOOR_HALF, 17)
    gx, gy = np.meshgrid(g, g, indexing="xy")
    fv = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    ff = []
    for r in range(16):
        for c in range(16):
            a = r * 17 + c
            ff += [(a, a + 1, a + 18), (a, a + 18, a + 17)]
    fseg = 500 + (fv[:, 0] > 0).astype(int) + 2 * (fv[:, 1] > 0).astype(int)
    add(fv, np.asarray(ff), fseg, (160, 160, 160))
    groups.append(_group("floor", [500, 501, 502, 503], fv, (0, 0, 0), (8, 8, 0), np.eye(3)))

    # boxes: corners 0-3 (bottom) in one segment, the rest in another (ids 10*k + 1, 10*k + 2)
    for k, obj in enumerate(OBJECTS, start=1):
        v, f = _box_surface(obj)
        seg = np.where(np.arange(len(v)) < 4, 10 * k + 1, 10 * k + 2)
        add(v, f, seg, obj.color)
        groups.append(
            _group(
                obj.label, [10 * k + 1, 10 * k + 2], v, obj.center, obj.size, _rz(obj.heading_deg)
            )
        )

    # a cup with three vertices (too few), one segment
    cv = np.array([[1.0, 0.5, 0.82], [1.05, 0.5, 0.82], [1.0, 0.55, 0.9]])
    add(cv, np.array([[0, 1, 2]]), np.full(3, 90), (250, 250, 250))
    groups.append(_group("cup", [90], cv, cv.mean(0), np.ptp(cv, 0), np.eye(3)))

    # a flat picture on a wall plane x = 3.9 (vertices collinear seen from above)
    pic_yz = [(-0.5, 1.0), (0.5, 1.0), (0.5, 1.6), (-0.5, 1.6), (0.0, 1.3)]
    pic_yz += [(-0.25, 1.3), (0.25, 1.3), (0.0, 1.1), (0.0, 1.5)]
    pv = np.array([[3.9, y, z] for y, z in pic_yz])
    add(
        pv,
        np.array([[0, 1, 4], [1, 2, 4], [2, 3, 4], [3, 0, 4]]),
        np.full(len(pv), 95),
        (90, 60, 30),
    )
    groups.append(_group("picture", [95], pv, pv.mean(0), np.ptp(pv, 0), np.eye(3)))

    return (
        np.concatenate(verts),
        np.concatenate(colors),
        np.concatenate(faces),
        np.concatenate(segs),
        groups,
    )


def _group(label, segments, verts, center, size, R) -> dict:
    return {
        "label": label,
        "segments": [int(s) for s in segments],
        "obb": _obb(np.asarray(verts), center, size, R),
    }


# -- writer ----------------------------------------------------------------------------------
def write_scannetpp_fixture(
    root: str | Path, rgb_size: tuple[int, int] = RGB_SIZE
) -> ScanNetPPFixture:
    """Write the fixture release under ``root`` (created) and return its ground truth.

    ``rgb_size`` (width, height) of the RGB frames defaults to the real 1920x1440; the intrinsics
    in ``pose_intrinsic_imu.json`` are for that size (scaled from the 1920x1440 ones)."""
    root = Path(root)
    scene_dir = root / "data" / SCENE_ID
    scans = scene_dir / "scans"
    iphone = scene_dir / "iphone"
    for d in (scans, iphone / "rgb", iphone / "depth", root / "splits", root / "metadata"):
        d.mkdir(parents=True, exist_ok=True)

    (root / "splits" / "nvs_sem_train.txt").write_text(f"{SCENE_ID}\n")
    (root / "splits" / "nvs_sem_val.txt").write_text("")
    (root / "metadata" / "semantic_classes.txt").write_text(
        "wall\nfloor\nceiling\ntable\ncabinet\nchair\ntrash can\ncup\npicture\n"
    )
    (root / "metadata" / "instance_classes.txt").write_text(
        "table\ncabinet\nchair\ntrash can\ncup\npicture\n"
    )

    verts, colors, faces, seg_indices, groups = _build_mesh()
    _write_ply(scans / "mesh_aligned_0.05.ply", verts, colors, faces)
    (scans / "segments.json").write_text(
        json.dumps({"sceneId": SCENE_ID, "segIndices": [int(s) for s in seg_indices]})
    )
    seg_groups = []
    for i, grp in enumerate(groups):
        seg_groups.append({"id": i, "objectId": i, "index": i, **grp})
    (scans / "segments_anno.json").write_text(
        json.dumps({"sceneId": SCENE_ID, "segGroups": seg_groups}, indent=1)
    )

    sx, sy = rgb_size[0] / RGB_SIZE[0], rgb_size[1] / RGB_SIZE[1]
    K_rgb = K_RGB.copy()
    K_rgb[0, 0] *= sx
    K_rgb[1, 1] *= sy
    K_rgb[0, 2] = (K_rgb[0, 2] + 0.5) * sx - 0.5
    K_rgb[1, 2] = (K_rgb[1, 2] + 0.5) * sy - 0.5
    K_depth = depth_intrinsics(K_rgb, rgb_size, DEPTH_SIZE)

    records: dict[str, dict] = {}
    frame_ids: list[str] = []
    poses: dict[str, np.ndarray] = {}
    depths: dict[str, np.ndarray] = {}
    for n in range(N_FRAMES):
        fid = f"frame_{n * 10:06d}"
        T = look_at(*camera_path(n))
        frame_ids.append(fid)
        poses[fid] = T
        records[fid] = {
            "timestamp": 1000.0 + n * 10 / 60.0,
            "intrinsic": K_rgb.tolist(),
            "pose": (np.linalg.inv(ALIGNMENT) @ T).tolist(),
            "aligned_pose": T.tolist(),
        }
        # shade at a quarter of the size, then repeat each pixel 4x4 (keeps the writer fast)
        small = (rgb_size[0] // 4, rgb_size[1] // 4)
        rgb = _render_rgb(depth_intrinsics(K_rgb, rgb_size, small), T, small)
        rgb = np.repeat(np.repeat(rgb, 4, axis=0), 4, axis=1)
        pad = ((0, rgb_size[1] - rgb.shape[0]), (0, rgb_size[0] - rgb.shape[1]), (0, 0))
        rgb = np.pad(rgb, pad, mode="edge")
        Image.fromarray(rgb).save(iphone / "rgb" / f"{fid}.jpg", quality=92)
        depth, _, _ = _raycast(K_depth, T, DEPTH_SIZE)
        depths[fid] = depth
        mm = np.round(depth * 1000.0).astype(np.uint16)
        Image.fromarray(mm).save(iphone / "depth" / f"{fid}.png")
    (iphone / "pose_intrinsic_imu.json").write_text(json.dumps(records, indent=1))

    return ScanNetPPFixture(
        root=root,
        scene_id=SCENE_ID,
        scene_dir=scene_dir,
        objects=OBJECTS,
        frame_ids=frame_ids,
        cam_to_world=poses,
        K_rgb=K_rgb,
        K_depth=K_depth,
        rgb_size=tuple(rgb_size),
        depth_size=DEPTH_SIZE,
        depth=depths,
        skipped_groups={"cup": "few", "picture": "degenerate", "floor": "excluded"},
    )
