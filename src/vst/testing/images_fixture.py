"""A tiny images + depth + COCO dataset with analytic ground truth, for the ``images`` reader.

Layout written (see :mod:`vst.scenes.sources.images_depth`)::

    root/images/room_0001.png, room_0002.jpg, room_0003.png
    root/depth/room_0001.npy     float32 metres
    root/depth/room_0002.png     uint16 millimetres          (room_0003 has NO depth)
    root/annotations.json        COCO instances (images / annotations / categories)
    root/intrinsics.json         {"images": {"room_0002": {"K": ...}}}  (others: assumed 60 deg)

``annotations.json`` follows the COCO "object detection" format (cocodataset.org, "Data
format"; cocodataset/cocoapi ``PythonAPI/pycocotools/coco.py``): ``images`` ``{id, file_name,
width, height}``, ``annotations`` ``{id, image_id, category_id, segmentation, area, bbox
[x, y, w, h], iscrowd}``, ``categories`` ``{id, name, supercategory}``. Polygons are flat
``[x0, y0, x1, y1, ...]`` lists in COCO pixel coordinates (top-left pixel spans [0, 1]^2); RLE
masks are ``{"size": [H, W], "counts": ...}`` over column-major pixels, compressed as in
``maskApi.c`` (``rleToString``).

Each image shows a level camera 1.5 m above a floor plane, a back wall 8 m ahead and two
axis-aligned boxes, ray-cast analytically. Coordinates are in the reader's world frame (the
camera frame re-axed: X right, Y forward, Z up; camera at the origin), so the truth boxes are
directly comparable with the reader's pseudo boxes. Deliberate problems (for skip tests): an
annotation without segmentation (image 1), a tiny object and a crowd region (image 2), and an
image without depth (image 3).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

from vst.geometry.conventions import from_aabb
from vst.scenes.sources.images_depth import encode_rle_string
from vst.testing.raycast import Plane, cast, pixel_rays, project

__all__ = ["FixtureImage", "ImagesFixture", "raycast", "write_images_fixture"]

WIDTH, HEIGHT = 192, 144
CAMERA_HEIGHT = 1.5
WALL_Y = 8.0
FOV_X_DEG = 60.0
CATEGORIES = {1: "table", 2: "cabinet", 3: "chair", 4: "box", 5: "picture", 6: "person"}


@dataclass
class FixtureImage:
    """Truth of one fixture image: file names, K, the boxes' world AABBs (min, max), labels,
    the rendered depth and the surface map (box index + 1 where a box is hit, 0 elsewhere)."""

    stem: str
    file_name: str
    image_id: int
    K: np.ndarray
    aabbs: list[tuple[np.ndarray, np.ndarray]]
    labels: list[str]
    depth: np.ndarray
    surface: np.ndarray
    has_depth: bool = True
    intrinsics: str = "assumed"

    @property
    def boxes(self) -> np.ndarray:
        """(N, 9) vst boxes of the truth AABBs."""
        return np.stack([from_aabb(lo, hi) for lo, hi in self.aabbs])


@dataclass
class ImagesFixture:
    root: Path
    images: list[FixtureImage]
    skipped_annotations: dict[int, str] = field(default_factory=dict)
    """Annotation id -> why the reader must skip it (with default options)."""


def _k(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])


CAM_TO_WORLD = np.array(
    [[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]
)
"""The fixture camera in the reader's world frame: at the origin, camera X = world X, camera Y
(down) = world -Z, camera Z (forward) = world Y."""
WALL = Plane((0.0, 1.0, 0.0), WALL_Y)
FLOOR = Plane((0.0, 0.0, 1.0), -CAMERA_HEIGHT)


def raycast(
    K: np.ndarray, width: int, height: int, aabbs: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Z-depth (H, W), surface map (H, W: 0 background, i + 1 box i) and a floor/wall flag map
    (1 floor, 2 wall, 0 box) of a level camera at the origin of the world frame (X right,
    Y forward, Z up) above the floor ``z = -CAMERA_HEIGHT`` facing the wall ``y = WALL_Y``.

    Rays go through pixel centres and are parametrised by z-depth (:mod:`vst.testing.raycast`)."""
    origin, dirs = pixel_rays(K, width, height, CAM_TO_WORLD)
    t, index = cast(origin, dirs, aabbs=aabbs, planes=[WALL, FLOOR])  # every ray meets the wall
    surface = np.where(index >= 2, index - 1, 0).astype(np.int32)
    kind = np.where(index == 0, 2, np.where(index == 1, 1, 0)).astype(np.int32)
    return t.astype(np.float32), surface, kind


def _render_rgb(surface: np.ndarray, kind: np.ndarray, depth: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    palette = np.array([[200, 60, 50], [60, 90, 200], [60, 170, 80], [220, 180, 40]], float)
    rgb = np.zeros((*surface.shape, 3))
    rgb[kind == 1] = [150, 140, 130]
    rgb[kind == 2] = [225, 215, 190]
    for i in range(1, int(surface.max()) + 1):
        rgb[surface == i] = palette[(i - 1) % len(palette)]
    shade = np.clip(1.1 - depth[..., None] / 20.0, 0.5, 1.0)
    rgb = rgb * shade + rng.normal(0, 4, rgb.shape)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def _silhouette_polygon(K: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> list[float]:
    """COCO polygon (corner pixel coordinates) of a box's silhouette: the convex hull of its
    projected corners (the box is convex and fully in front of the camera)."""
    from vst.geometry.polygons import convex_hull

    corners = np.array(
        [[x, y, z] for x in (lo[0], hi[0]) for y in (lo[1], hi[1]) for z in (lo[2], hi[2])]
    )
    uv = project(K, corners @ CAM_TO_WORLD[:3, :3])  # world -> camera: R.T @ p (camera at 0)
    hull = convex_hull(uv) + 0.5  # pixel centres -> COCO corners
    return [round(float(c), 2) for c in hull.reshape(-1)]


def _rle_counts(mask: np.ndarray) -> list[int]:
    """Run lengths of a boolean mask in column-major order, starting with a 0 run."""
    flat = np.asarray(mask, dtype=np.uint8).T.reshape(-1)
    counts, current, run = [], 0, 0
    for value in flat:
        if value != current:
            counts.append(run)
            current, run = int(value), 0
        run += 1
    counts.append(run)
    return counts


def _bbox_of(mask: np.ndarray) -> list[float]:
    rows, cols = np.nonzero(mask)
    return [float(cols.min()), float(rows.min()), float(np.ptp(cols) + 1), float(np.ptp(rows) + 1)]


def _polygon_bbox(poly: list[float]) -> list[float]:
    xy = np.asarray(poly).reshape(-1, 2)
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    return [round(float(x0), 2), round(float(y0), 2), round(float(x1 - x0), 2),
            round(float(y1 - y0), 2)]  # fmt: skip


def _aabb(lo: tuple[float, float, float], hi: tuple[float, float, float]):
    return (np.array(lo, dtype=float), np.array(hi, dtype=float))


def write_images_fixture(root: str | Path) -> ImagesFixture:
    """Write the fixture dataset under ``root`` and return its ground truth."""
    root = Path(root)
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "depth").mkdir(parents=True, exist_ok=True)
    f60 = WIDTH / (2.0 * math.tan(math.radians(FOV_X_DEG) / 2.0))
    K_default = _k(f60, f60, (WIDTH - 1) / 2.0, (HEIGHT - 1) / 2.0)
    K2 = _k(150.0, 150.0, 97.0, 70.0)
    h = CAMERA_HEIGHT
    specs = [
        # stem, suffix, image id, K, intrinsics kind, [(label, lo, hi)], depth format
        ("room_0001", ".png", 90000001, K_default, "assumed",
         [("table", (-1.5, 3.8, -h), (-0.3, 4.8, -h + 0.45)),
          ("cabinet", (1.4, 4.2, -h), (2.2, 5.0, -h + 0.7))], ".npy"),
        ("room_0002", ".jpg", 90000002, K2, "given",
         [("chair", (-0.4, 3.6, -h), (0.2, 4.2, -h + 0.9)),
          ("box", (-2.0, 4.4, -h), (-1.4, 5.0, -h + 0.4))], ".png"),
        ("room_0003", ".png", 90000003, K_default, "assumed",
         [("box", (-0.5, 4.0, -h), (0.5, 4.8, -h + 0.5))], None),
    ]  # fmt: skip
    cat_ids = {name: cid for cid, name in CATEGORIES.items()}
    coco_images, annotations = [], []
    truth: list[FixtureImage] = []
    skipped: dict[int, str] = {}
    ann_id = 1
    for n, (stem, suffix, image_id, K, intr, objs, depth_fmt) in enumerate(specs):
        aabbs = [_aabb(lo, hi) for _, lo, hi in objs]
        depth, surface, kind = raycast(K, WIDTH, HEIGHT, aabbs)
        Image.fromarray(_render_rgb(surface, kind, depth, seed=n)).save(
            root / "images" / f"{stem}{suffix}", quality=95
        )
        if depth_fmt == ".npy":
            np.save(root / "depth" / f"{stem}.npy", depth)
        elif depth_fmt == ".png":
            mm = np.round(depth.astype(np.float64) * 1000.0).astype(np.uint16)
            Image.fromarray(mm).save(root / "depth" / f"{stem}.png")
        coco_images.append(
            {"id": image_id, "file_name": f"{stem}{suffix}", "width": WIDTH, "height": HEIGHT}
        )
        for i, (label, lo, hi) in enumerate(objs):
            sil = surface == i + 1
            if stem == "room_0002" and label == "box":  # compressed RLE of the exact silhouette
                seg = {"size": [HEIGHT, WIDTH], "counts": encode_rle_string(_rle_counts(sil))}
                bbox = _bbox_of(sil)
            else:
                poly = _silhouette_polygon(K, np.array(lo), np.array(hi))
                seg = [poly]
                bbox = _polygon_bbox(poly)
            annotations.append(
                {"id": ann_id, "image_id": image_id, "category_id": cat_ids[label],
                 "segmentation": seg, "area": float(sil.sum()), "bbox": bbox, "iscrowd": 0}
            )  # fmt: skip
            ann_id += 1
        truth.append(
            FixtureImage(
                stem=stem,
                file_name=f"{stem}{suffix}",
                image_id=image_id,
                K=K,
                aabbs=aabbs,
                labels=[o[0] for o in objs],
                depth=depth,
                surface=surface,
                has_depth=depth_fmt is not None,
                intrinsics=intr,
            )
        )
    # Deliberate problems.
    annotations.append(  # no segmentation: skipped unless bbox_masks (a picture on the wall)
        {"id": 100, "image_id": 90000001, "category_id": 5, "segmentation": [],
         "area": 600.0, "bbox": [80.0, 10.0, 30.0, 20.0], "iscrowd": 0}
    )  # fmt: skip
    skipped[100] = "no usable segmentation"
    annotations.append(  # 3 x 3 pixels: too few depth pixels
        {"id": 101, "image_id": 90000002, "category_id": 5,
         "segmentation": [[150.0, 20.0, 153.0, 20.0, 153.0, 23.0, 150.0, 23.0]],
         "area": 9.0, "bbox": [150.0, 20.0, 3.0, 3.0], "iscrowd": 0}
    )  # fmt: skip
    skipped[101] = "min_depth_pixels"
    crowd = np.zeros((HEIGHT, WIDTH), dtype=bool)
    crowd[30:50, 120:160] = True
    annotations.append(
        {"id": 102, "image_id": 90000002, "category_id": 6,
         "segmentation": {"size": [HEIGHT, WIDTH], "counts": _rle_counts(crowd)},
         "area": float(crowd.sum()), "bbox": _bbox_of(crowd), "iscrowd": 1}
    )  # fmt: skip
    skipped[102] = "crowd"
    coco = {
        "info": {"description": "vst images fixture (synthetic)", "version": "1.0"},
        "licenses": [],
        "images": coco_images,
        "annotations": annotations,
        "categories": [
            {"id": cid, "name": name, "supercategory": "indoor"} for cid, name in CATEGORIES.items()
        ],
    }
    (root / "annotations.json").write_text(json.dumps(coco, indent=1))
    intrinsics = {"images": {"room_0002": {"K": K2.tolist()}}}
    (root / "intrinsics.json").write_text(json.dumps(intrinsics, indent=1))
    return ImagesFixture(root=root, images=truth, skipped_annotations=skipped)
