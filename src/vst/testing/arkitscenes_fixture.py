"""A tiny ARKitScenes 3DOD dataset in the real on-disk format, built from known ground truth.

Layout and encodings follow apple/ARKitScenes ``DATA.md``, ``threedod/README.md``,
``download_data.py`` (``<dir>/3dod/metadata.csv``, ``<dir>/3dod/<fold>/<video_id>/``) and
``threedod/benchmark_scripts/utils/tenFpsDataLoader.py`` (file names, ``.traj`` = world-to-camera
angle-axis + translation, ``.pincam`` = ``w h fx fy cx cy``, depth uint16 millimetres)::

    <root>/3dod/metadata.csv
    <root>/3dod/Training/90000001/            sky_direction Up    (12 frames, landscape)
    <root>/3dod/Validation/90000002/          sky_direction Left  (12 frames, captured rolled)
        <vid>_3dod_annotation.json, <vid>_3dod_mesh.ply,
        <vid>_frames/{lowres_wide.traj, lowres_wide/, lowres_depth/, lowres_wide_intrinsics/}

The video ids are made up (ARKitScenes ids are 8-digit numbers from 40... to 48...). The world
is a floor plane (z = 0, grey checker), a back wall and five boxes with flat colours; colour and
depth images (256x192, the real low-res size) are ray-cast analytically, so depth agrees with the
boxes exactly (to 1 mm rounding; 0 beyond 8 m). The camera pans from right to left so objects
come into view one after another. Video 90000002 is filmed with the device rolled so the sky is
on the image's left, as ARKitScenes' ``Left`` videos are.

:func:`write_arkitscenes_fixture` returns the ground truth (hand-set boxes in vst form, raw
intrinsics and camera poses) for tests.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy.spatial.transform import Rotation

from vst.testing.raycast import FLOOR, Plane, cast, look_at, pixel_rays

__all__ = ["FIXTURE_VIDEOS", "look_at_pose", "render", "write_arkitscenes_fixture"]

WIDTH, HEIGHT = 256, 192
K_RAW = np.array([[211.0, 0.0, 128.3], [0.0, 213.0, 94.7], [0.0, 0.0, 1.0]])
"""Raw low-res intrinsics of every fixture frame (as in the .pincam files)."""

FIXTURE_VIDEOS = {"90000001": ("Training", "Up"), "90000002": ("Validation", "Left")}
"""video id -> (fold folder, sky direction)."""

N_FRAMES = 12
TILT_DEG = 15.0
"""Every fixture camera looks 15 degrees down; it pans from heading -40 to +40 degrees."""
MAX_DEPTH_M = 8.0
"""Depth beyond this is written as 0 (unknown), like the LiDAR's limited range."""
T0 = {"90000001": 6845.807, "90000002": 1203.414}
"""First frame timestamp (s) of each video; frames are 0.1 s apart."""

FLOOR_RGB = (np.array([150, 150, 150], np.uint8), np.array([110, 110, 110], np.uint8))
WALL_X, WALL_TOP = 4.5, 2.6
"""A back wall: the plane x = 4.5 m from the floor up to 2.6 m."""
WALL_RGB = (np.array([215, 200, 170], np.uint8), np.array([190, 175, 150], np.uint8))


def _obb(center, heading_deg, lengths, layout="z_up"):
    """An annotation ``obbAligned`` (rows of ``normalizedAxes`` = box axes) and the vst box it
    means (hand-derived: vertical axis as local Z, angles ``[0, 0, heading]``)."""
    h = math.radians(heading_deg)
    c, s = math.cos(h), math.sin(h)
    front, left, up = [c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]
    if layout == "z_up":  # lengths = (front, left, up)
        rows, lens = [front, left, up], list(lengths)
        vst = [*center, lengths[0], lengths[1], lengths[2], 0.0, 0.0, heading_deg]
    elif layout == "vertical_first":  # rows (up, front, left): lengths = (up, front, left)
        rows, lens = [up, front, left], list(lengths)
        vst = [*center, lengths[1], lengths[2], lengths[0], 0.0, 0.0, heading_deg]
    elif layout == "z_down":  # rows (front, -left, -up): a proper rotation with Z down
        rows = [front, [s, -c, 0.0], [0.0, 0.0, -1.0]]
        lens = list(lengths)
        vst = [*center, lengths[0], lengths[1], lengths[2], 0.0, 0.0, heading_deg]
    else:
        raise ValueError(layout)
    obb = {
        "centroid": [float(v) for v in center],
        "axesLengths": [float(v) for v in lens],
        "normalizedAxes": [float(v) for row in rows for v in row],
    }
    return obb, np.array(vst, dtype=np.float64)


OBJECTS = [
    # label, uid, colour, (centre, heading, lengths, layout)
    ("table", "a1f0c7e2-0001", (200, 60, 40), ((2.0, 0.0, 0.375), 20.0, (0.75, 1.2, 0.8),
                                               "vertical_first")),
    ("chair", "a1f0c7e2-0002", (40, 160, 60), ((1.8, 0.9, 0.45), 30.0, (0.5, 0.55, 0.9), "z_up")),
    ("cabinet", "a1f0c7e2-0003", (50, 80, 200), ((2.8, -1.3, 0.5), -40.0, (0.6, 1.0, 1.0),
                                                 "z_down")),
    ("sofa", "a1f0c7e2-0004", (160, 60, 170), ((2.6, 2.3, 0.4), -80.0, (0.9, 2.0, 0.8), "z_up")),
    ("trash_can", "a1f0c7e2-0005", (230, 200, 30), ((1.6, -2.1, 0.3), 10.0, (0.35, 0.35, 0.6),
                                                    "z_up")),
]  # fmt: skip


WALL = Plane((1.0, 0.0, 0.0), WALL_X, lo=(-np.inf, -np.inf, 0.0), hi=(np.inf, np.inf, WALL_TOP))


def look_at_pose(eye, yaw_deg: float, tilt_deg: float) -> np.ndarray:
    """Level OpenCV camera (X right, Y down, Z forward) at ``eye`` looking along heading
    ``yaw_deg`` (about world +Z from +X), pitched down by ``tilt_deg``: cam_to_world 4x4."""
    y, t = math.radians(yaw_deg), math.radians(tilt_deg)
    forward = np.array([math.cos(y) * math.cos(t), math.sin(y) * math.cos(t), -math.sin(t)])
    return look_at(eye, np.asarray(eye, dtype=np.float64) + forward)


def render(
    cam_to_world: np.ndarray, K: np.ndarray, width: int, height: int, boxes, colours
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast the floor (z = 0), the back wall (x = 4.5 m, up to 2.6 m) and the boxes:
    ``(rgb uint8, z-depth metres float64 with 0 = no hit, object index per pixel with -1 =
    floor, wall or nothing)``."""
    origin, dirs = pixel_rays(K, width, height, cam_to_world)
    dirs = dirs.reshape(-1, 3)
    best, index = cast(origin, dirs, boxes, planes=[FLOOR, WALL])
    which = np.where(index >= 2, index - 2, -1)
    rgb = np.zeros((len(best), 3), np.uint8)
    floor, wall = index == 0, index == 1
    pts = origin + dirs * np.where(np.isfinite(best), best, 0.0)[:, None]
    checker = ((np.floor(pts[:, 0] / 0.5) + np.floor(pts[:, 1] / 0.5)) % 2).astype(int)
    rgb[floor] = np.stack(FLOOR_RGB)[checker[floor]]
    stripes = (np.floor(pts[:, 1] / 0.4) % 2).astype(int)
    rgb[wall] = np.stack(WALL_RGB)[stripes[wall]]
    for i, col in enumerate(colours):
        rgb[which == i] = col
    depth = np.where(np.isfinite(best), best, 0.0)
    return (
        rgb.reshape(height, width, 3),
        depth.reshape(height, width),
        which.reshape(height, width),
    )


def _raw_pose(level: np.ndarray, sky: str) -> np.ndarray:
    """Pose of the device camera when the level (upright) view is captured with the sky on the
    image's ``sky`` side: raw camera axes in terms of the level ones."""
    r, d, f = level[:3, 0], level[:3, 1], level[:3, 2]
    cols = {
        "Up": (r, d, f),
        "Left": (d, -r, f),  # image right points down: the sky is on the left
        "Right": (-d, r, f),
        "Down": (-r, -d, f),
    }[sky]
    T = level.copy()
    T[:3, :3] = np.stack(cols, axis=1)
    return T


def _traj_line(ts: float, cam_to_world: np.ndarray) -> str:
    R_wc = cam_to_world[:3, :3].T
    t_wc = -R_wc @ cam_to_world[:3, 3]
    rv = Rotation.from_matrix(R_wc).as_rotvec()
    return " ".join([f"{ts:.8f}", *(f"{x:.9f}" for x in rv), *(f"{x:.9f}" for x in t_wc)])


def _write_ply(path: Path) -> None:
    """A 4-vertex floor mesh (ASCII PLY); the reader does not use it."""
    verts = [(-1, -3, 0), (4, -3, 0), (4, 3, 0), (-1, 3, 0)]
    lines = ["ply", "format ascii 1.0", "element vertex 4", "property float x",
             "property float y", "property float z", "element face 2",
             "property list uchar int vertex_indices", "end_header"]  # fmt: skip
    lines += [f"{x} {y} {z}" for x, y, z in verts] + ["3 0 1 2", "3 0 2 3"]
    path.write_text("\n".join(lines) + "\n")


def write_arkitscenes_fixture(root: str | Path) -> dict[str, Any]:
    """Write the fixture dataset under ``root`` (creates ``root/3dod``) and return its truth:

    ``{"root", "dataset_dir", "objects": [{"label", "uid", "box" (vst (9,)), "obb"}],
    "videos": {vid: {"fold", "split", "sky", "dir", "K" (raw 3x3), "width", "height",
    "frames": [{"frame_id", "timestamp", "cam_to_world" (raw device pose),
    "level_cam_to_world" (upright view pose), "traj_timestamp"}]}}}``."""
    root = Path(root)
    ds = root / "3dod"
    ds.mkdir(parents=True, exist_ok=True)
    objects = []
    for label, uid, colour, (center, heading, lengths, layout) in OBJECTS:
        obb, box = _obb(center, heading, lengths, layout)
        objects.append({"label": label, "uid": uid, "colour": colour, "obb": obb, "box": box})
    boxes = [o["box"] for o in objects]
    colours = [o["colour"] for o in objects]

    truth: dict[str, Any] = {"root": root, "dataset_dir": ds, "objects": objects, "videos": {}}
    meta_rows = ["video_id,visit_id,fold,sky_direction"]
    for n, (vid, (fold, sky)) in enumerate(sorted(FIXTURE_VIDEOS.items())):
        vdir = ds / fold / vid
        fdir = vdir / f"{vid}_frames"
        for sub in ("lowres_wide", "lowres_depth", "lowres_wide_intrinsics"):
            (fdir / sub).mkdir(parents=True, exist_ok=True)
        annotation = {
            "data": [
                {
                    "uid": o["uid"],
                    "label": o["label"],
                    "modelId": "",
                    "children": [],
                    "objectId": i + 1,
                    "segments": {"obbAligned": o["obb"]},
                    "hierarchy": 0,
                    "isInGroup": False,
                    "labelType": "object",
                    "attributes": {},
                }
                for i, o in enumerate(objects)
            ],
            "stats": {},
            "comment": "",
            "confirm": True,
            "skipped": False,
        }
        (vdir / f"{vid}_3dod_annotation.json").write_text(json.dumps(annotation, indent=1))
        _write_ply(vdir / f"{vid}_3dod_mesh.ply")

        frames, traj = [], []
        for i in range(N_FRAMES):
            ts = round(T0[vid] + 0.1 * i, 3)
            ts_str = f"{ts:.3f}"
            # the trajectory is sampled a fraction of a millisecond off the frame timestamps
            traj_ts = ts + 0.00031 + 0.00002 * i
            a = i / (N_FRAMES - 1)
            eye = np.array([-0.4 + 0.3 * a, -0.5 + 1.0 * a, 1.35 + 0.05 * n])
            level = look_at_pose(eye, yaw_deg=-40.0 + 80.0 * a, tilt_deg=TILT_DEG)
            raw = _raw_pose(level, sky)
            rgb, depth, _ = render(raw, K_RAW, WIDTH, HEIGHT, boxes, colours)
            name = f"{vid}_{ts_str}"
            Image.fromarray(rgb).save(fdir / "lowres_wide" / f"{name}.png")
            depth = np.where(depth <= MAX_DEPTH_M, depth, 0.0)  # the sensor's range
            mm = np.round(depth * 1000.0).astype(np.uint16)
            Image.fromarray(mm).save(fdir / "lowres_depth" / f"{name}.png")
            (fdir / "lowres_wide_intrinsics" / f"{name}.pincam").write_text(
                f"{WIDTH} {HEIGHT} {K_RAW[0, 0]} {K_RAW[1, 1]} {K_RAW[0, 2]} {K_RAW[1, 2]}\n"
            )
            traj.append(_traj_line(traj_ts, raw))
            frames.append(
                {
                    "frame_id": name,
                    "timestamp": ts,
                    "traj_timestamp": traj_ts,
                    "cam_to_world": raw,
                    "level_cam_to_world": level,
                }
            )
        (fdir / "lowres_wide.traj").write_text("\n".join(traj) + "\n")
        meta_rows.append(f"{vid},{990001 + n},{fold},{sky}")
        truth["videos"][vid] = {
            "fold": fold,
            "split": {"Training": "train", "Validation": "val"}[fold],
            "sky": sky,
            "dir": vdir,
            "K": K_RAW.copy(),
            "width": WIDTH,
            "height": HEIGHT,
            "frames": frames,
        }
    (ds / "metadata.csv").write_text("\n".join(meta_rows) + "\n")
    return truth
