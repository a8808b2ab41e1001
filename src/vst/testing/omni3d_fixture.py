"""A tiny Omni3D dataset on disk, built from known ground truth (for the reader tests).

Layout (as ``DATA.md`` of facebookresearch/omni3d describes it: the JSON files live in
``datasets/Omni3D/`` and images' ``file_path`` is relative to ``datasets/``)::

    <root>/datasets/
        Omni3D/SUNRGBD_test.json             1 image, 8 annotations (3 usable)
        Omni3D/ARKitScenes_test.json         2 images (one image file missing), 2 annotations
        Omni3D/stats.json                    not an annotation file (the real folder has one)
        SUNRGBD/kv1/NYUdata/NYU9901/image/NYU9901.jpg
        ARKitScenes/test/90000001/90000001_100.000.jpg

JSON keys follow ``DATA.md`` ("Annotation Format"); ``bbox3D_cam`` is built the way Omni3D's
``cubercnn/util/math_util.py`` ``get_cuboid_verts_faces`` builds corners (``l`` along local X,
``h`` along local Y, ``w`` along local Z, vertex order v0..v7 of the ``DATA.md`` drawing, then
``R_cam @ v + center_cam``). Image names and ids are made up (``NYU9901``: NYU has 1449 images;
ARKitScenes video ``90000001`` does not exist). Images are 160x120 renderings of the boxes'
projections (far to near) on a grey background, so they show the objects.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from vst.geometry.polygons import convex_hull
from vst.testing.raycast import project

__all__ = ["FIXTURE_K", "Omni3DFixture", "omni3d_corners", "rot_x", "rot_y", "write_omni3d_fixture"]

WIDTH, HEIGHT = 160, 120
FIXTURE_K = [[120.0, 0.0, 80.0], [0.0, 120.0, 60.0], [0.0, 0.0, 1.0]]
"""Intrinsics of every fixture image (fx = fy = 120 px, principal point at the centre)."""

_COLORS = [(200, 60, 60), (60, 160, 60), (60, 80, 200), (200, 180, 40), (150, 60, 180)]


def rot_y(deg: float) -> np.ndarray:
    """Rotation about the camera Y axis (down) by ``deg`` degrees."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0.0, s], [0.0, 1.0, 0.0], [-s, 0.0, c]])


def rot_x(deg: float) -> np.ndarray:
    """Rotation about the camera X axis by ``deg`` degrees."""
    a = np.radians(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def omni3d_corners(center: Any, dimensions: Any, R: Any) -> np.ndarray:
    """The 8 corners (8, 3) of an Omni3D box in Omni3D's vertex order (our own re-statement of
    ``get_cuboid_verts_faces``: x = -l/2 for v0, v3, v4, v7; y = -h/2 for v0, v1, v4, v5;
    z = -w/2 for v0..v3; then rotate by ``R`` and translate by ``center``)."""
    w, h, l = (float(v) for v in dimensions)  # noqa: E741 - Omni3D's names
    x = np.array([-1, 1, 1, -1, -1, 1, 1, -1]) * l / 2
    y = np.array([-1, -1, 1, 1, -1, -1, 1, 1]) * h / 2
    z = np.array([-1, -1, -1, -1, 1, 1, 1, 1]) * w / 2
    local = np.stack([x, y, z])  # (3, 8)
    return (np.asarray(R, dtype=np.float64) @ local).T + np.asarray(center, dtype=np.float64)


def _project(points: np.ndarray) -> np.ndarray:
    return project(FIXTURE_K, points)


def _bbox2d(corners: np.ndarray) -> tuple[list[float], list[float], float]:
    """(bbox2D_proj, bbox2D_trunc, truncation) of a box in front of the camera, XYXY pixels."""
    uv = _project(corners)
    proj = [
        float(uv[:, 0].min()),
        float(uv[:, 1].min()),
        float(uv[:, 0].max()),
        float(uv[:, 1].max()),
    ]
    trunc = [
        min(max(proj[0], 0.0), WIDTH),
        min(max(proj[1], 0.0), HEIGHT),
        min(max(proj[2], 0.0), WIDTH),
        min(max(proj[3], 0.0), HEIGHT),
    ]
    area = (proj[2] - proj[0]) * (proj[3] - proj[1])
    inside = (trunc[2] - trunc[0]) * (trunc[3] - trunc[1])
    return proj, trunc, float(1.0 - inside / area) if area > 0 else 1.0


@dataclass
class Omni3DFixture:
    """Where the fixture is and what it holds.

    ``scenes``: expected scene id -> ``{"dataset", "native_id", "split", "image_id", "objects"}``
    where ``objects`` lists the annotations the reader must keep, in order, each
    ``{"omni3d_id", "label", "center_cam", "dimensions", "R_cam", "bbox3D_cam", "world_box"}``
    (``world_box`` hand-computed for upright boxes: ``[x, z, -y, l, w, h, 0, 0, -theta]``, None
    for tilted ones). ``skipped_objects``: annotation id -> a substring of the skip reason.
    ``missing_image_scene``: the scene whose image file is absent."""

    root: Path
    image_root: Path
    json_dir: Path
    scenes: dict[str, dict[str, Any]] = field(default_factory=dict)
    skipped_objects: dict[int, str] = field(default_factory=dict)
    missing_image_scene: str = ""


def _annotation(
    aid: int,
    image_id: int,
    cat_id: int,
    name: str,
    center: list[float],
    dims: list[float],
    R: np.ndarray,
    **extra: Any,
) -> dict[str, Any]:
    corners = omni3d_corners(center, dims, R)
    behind = bool(np.any(corners[:, 2] <= 0))
    if behind:
        proj = trunc = [-1.0, -1.0, -1.0, -1.0]
        truncation = -1.0
    else:
        proj, trunc, truncation = _bbox2d(corners)
    ann = {
        "id": aid,
        "image_id": image_id,
        "dataset_id": 0,
        "category_id": cat_id,
        "category_name": name,
        "valid3D": True,
        "bbox2D_tight": [-1, -1, -1, -1],
        "bbox2D_proj": proj,
        "bbox2D_trunc": trunc,
        "bbox3D_cam": corners.tolist(),
        "center_cam": list(center),
        "dimensions": list(dims),
        "R_cam": R.tolist(),
        "behind_camera": behind,
        "visibility": -1,
        "truncation": truncation,
        "segmentation_pts": -1,
        "lidar_pts": -1,
        "depth_error": -1,
    }
    ann.update(extra)
    return ann


def _render(path: Path, anns: list[dict[str, Any]]) -> None:
    """Grey image with each box's projected silhouette filled, far boxes first."""
    im = Image.new("RGB", (WIDTH, HEIGHT), (128, 128, 128))
    draw = ImageDraw.Draw(im)
    drawable = [a for a in anns if not a["behind_camera"] and min(a["dimensions"]) > 0]
    for i, ann in enumerate(sorted(drawable, key=lambda a: -a["center_cam"][2])):
        hull = convex_hull(_project(np.asarray(ann["bbox3D_cam"])))
        draw.polygon([tuple(p) for p in hull.tolist()], fill=_COLORS[i % len(_COLORS)])
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, quality=95)


def _upright_world(center: list[float], dims: list[float], theta: float) -> list[float]:
    x, y, z = center
    w, h, l = dims  # noqa: E741
    return [x, z, -y, l, w, h, 0.0, 0.0, -theta]


def write_omni3d_fixture(root: str | Path) -> Omni3DFixture:
    """Write the fixture under ``root`` and return its ground truth."""
    root = Path(root)
    datasets = root / "datasets"
    json_dir = datasets / "Omni3D"
    json_dir.mkdir(parents=True, exist_ok=True)
    fx = Omni3DFixture(root=root, image_root=datasets, json_dir=json_dir)
    cats = [
        {"id": i, "name": n, "supercategory": ""}
        for i, n in enumerate(
            ["chair", "table", "box", "lamp", "pillow", "books", "picture", "sofa", "cabinet"]
        )
    ]
    cat_id = {c["name"]: c["id"] for c in cats}

    # -- SUN RGB-D: one image ----------------------------------------------------------------
    sun_path = "SUNRGBD/kv1/NYUdata/NYU9901/image/NYU9901.jpg"
    sun_img = {
        "id": 900001,
        "dataset_id": 0,
        "width": WIDTH,
        "height": HEIGHT,
        "file_path": sun_path,
        "K": FIXTURE_K,
        "src_90_rotate": 0,
        "src_flagged": False,
    }
    chair = ([-0.45, 0.35, 2.4], [0.5, 0.9, 0.55], 30.0)
    table = ([0.5, 0.45, 3.0], [0.8, 0.75, 1.2], -15.0)
    tilt = ([0.05, -0.3, 2.2], [0.3, 0.25, 0.35], rot_x(25.0) @ rot_y(40.0))
    sun_anns = [
        _annotation(1, 900001, cat_id["chair"], "chair", chair[0], chair[1], rot_y(chair[2])),
        _annotation(2, 900001, cat_id["table"], "table", table[0], table[1], rot_y(table[2])),
        _annotation(3, 900001, cat_id["box"], "box", tilt[0], tilt[1], tilt[2]),
        _annotation(
            4,
            900001,
            cat_id["lamp"],
            "lamp",
            [0.9, -0.5, 4.0],
            [0.3, 0.5, 0.3],
            rot_y(0.0),
            valid3D=False,
        ),
        _annotation(
            5, 900001, cat_id["pillow"], "pillow", [0.0, 0.0, -1.0], [0.4, 0.2, 0.5], rot_y(10.0)
        ),
        _annotation(6, 900001, -1, "dontcare", [-1.0, 0.2, 5.0], [0.5, 0.5, 0.5], rot_y(0.0)),
        _annotation(
            7, 900001, cat_id["books"], "books", [0.2, 0.1, 2.0], [0.0, 0.2, 0.3], rot_y(0.0)
        ),
        _annotation(
            8,
            900001,
            cat_id["picture"],
            "picture",
            [0.3, -0.6, 3.5],
            [0.05, 0.4, 0.6],
            rot_y(0.0),
            truncation=0.995,
        ),
    ]
    fx.skipped_objects.update(
        {
            4: "valid3D is false",
            5: "behind_camera",
            6: "dontcare",
            7: "non-positive dimensions",
            8: "truncation 0.995",
        }
    )
    _write_json(json_dir / "SUNRGBD_test.json", "SUNRGBD", "Test", [sun_img], sun_anns, cats)
    _render(datasets / sun_path, sun_anns)
    fx.scenes["sunrgbd-900001"] = {
        "dataset": "sunrgbd",
        "native_id": "kv1/NYUdata/NYU9901",
        "split": "test",
        "image_id": 900001,
        "objects": [
            _truth(sun_anns[0], _upright_world(*chair)),
            _truth(sun_anns[1], _upright_world(*table)),
            _truth(sun_anns[2], None),
        ],
    }

    # -- ARKitScenes: two images of one video, the second image file missing -----------------
    ark_path = "ARKitScenes/test/90000001/90000001_100.000.jpg"
    ark_missing = "ARKitScenes/test/90000001/90000001_101.000.jpg"
    ark_imgs = [
        {
            "id": 900101,
            "dataset_id": 2,
            "width": WIDTH,
            "height": HEIGHT,
            "file_path": ark_path,
            "K": FIXTURE_K,
            "src_90_rotate": 1,
            "src_flagged": False,
        },
        {
            "id": 900102,
            "dataset_id": 2,
            "width": WIDTH,
            "height": HEIGHT,
            "file_path": ark_missing,
            "K": FIXTURE_K,
            "src_90_rotate": 1,
            "src_flagged": False,
        },
    ]
    sofa = ([-1.3, 0.3, 3.6], [0.9, 0.8, 2.0], 80.0)
    cabinet = ([0.0, 0.0, 2.5], [0.5, 0.8, 0.62], 0.0)
    ark_anns = [
        _annotation(
            101, 900101, cat_id["sofa"], "sofa", sofa[0], sofa[1], rot_y(sofa[2]), truncation=-1
        ),
        _annotation(
            102,
            900101,
            cat_id["cabinet"],
            "cabinet",
            cabinet[0],
            cabinet[1],
            rot_y(cabinet[2]),
            visibility=0.5,
        ),
        _annotation(103, 900102, cat_id["sofa"], "sofa", sofa[0], sofa[1], rot_y(sofa[2])),
    ]
    _write_json(json_dir / "ARKitScenes_test.json", "ARKitScenes", "Test", ark_imgs, ark_anns, cats)
    _render(datasets / ark_path, ark_anns[:2])
    fx.scenes["arkitscenes-900101"] = {
        "dataset": "arkitscenes",
        "native_id": "90000001",
        "split": "test",
        "image_id": 900101,
        "objects": [
            _truth(ark_anns[0], _upright_world(*sofa)),
            _truth(ark_anns[1], _upright_world(*cabinet)),
        ],
    }
    fx.missing_image_scene = "arkitscenes-900102"

    # -- the real Omni3D folder also holds stats.json (not an annotation file) ---------------
    stats = {"n_datasets": 2, "n_ims": 3, "n_anns": 11, "categories": cats}
    (json_dir / "stats.json").write_text(json.dumps(stats), encoding="utf-8")
    return fx


def _truth(ann: dict[str, Any], world_box: list[float] | None) -> dict[str, Any]:
    keys = ("center_cam", "dimensions", "R_cam", "bbox3D_cam", "visibility", "truncation")
    out = {"omni3d_id": ann["id"], "label": ann["category_name"], "world_box": world_box}
    out.update({k: ann[k] for k in keys})
    return out


def _write_json(path: Path, name: str, split: str, images: list, anns: list, cats: list) -> None:
    info = {
        "id": f"{name}_{split}",
        "source": 0,
        "name": f"{name} {split}",
        "split": split,
        "version": "0.1",
        "url": "",
    }
    data = {"info": info, "images": images, "categories": cats, "annotations": anns}
    path.write_text(json.dumps(data, indent=1), encoding="utf-8")
