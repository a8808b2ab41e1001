"""`vst scenes view`: one scene directory -> a Rerun recording (``.rrd``) to open in the viewer.

Needs the optional extra ``vst[rerun]`` (``rerun-sdk``); it is imported only when a recording is
written, and a missing install raises :class:`RerunMissingError` naming the extra.

What the recording holds (entity paths are the ``*_PATH`` constants below):

* ``world``: the scene's world frame, right-handed, +Z up, metres (:mod:`vst.scenes.model`);
  everything else is logged in it or below it.
* ``world/objects`` (static): the objects' oriented boxes (``Boxes3D``) with their labels.
  A vst world box ``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]`` becomes centre
  ``(x, y, z)``, half sizes ``sizes / 2`` along the box's local X, Y, Z axes and the rotation
  ``R = Rz(roll) @ Ry(yaw) @ Rx(pitch)`` (:mod:`vst.geometry.boxes`) as an ``xyzw`` quaternion.
* ``world/room`` (static, when the scene has a room): the floor outline at ``floor_z``.
* On the ``frame`` timeline (sequence = the frame's index in ``scene.json``, 0-based):
  ``world/camera`` gets the frame's pose (``Transform3D``: ``cam_to_world``, camera -> world)
  and its ``Pinhole`` (``K``, width x height, camera axes X right, Y down, Z forward = Rerun's
  ``RDF``), which the viewer draws as a frustum; ``world/camera/image`` the RGB image (the
  scene's PNG/JPEG bytes as they are);
  ``world/points/<frame id>`` the frame's depth as a coloured point cloud in the world frame.
  Each frame's cloud is its own entity, so at the end of the timeline all clouds show together.

Point clouds: pixel (row r, column c) with metric z-depth ``d > 0`` (0 = unknown, skipped)
back-projects to the camera point ``d * K^-1 @ [c, r, 1]`` (OpenCV pixel centres) and to the
world point ``cam_to_world @ [p, 1]``. Only every ``stride``-th row and column is used, and a
frame keeps at most ``max_points`` of them, picked evenly spaced in row-major order, so the
same options always give the same points.

Positions are stored as float32 (Rerun's format). The recording's content is deterministic;
its bytes are not (Rerun stamps row ids and a start time into the file).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from vst.atomic import commit, temp_file
from vst.geometry.boxes import as_boxes, box_rotations
from vst.scenes.io import load_scene
from vst.scenes.model import Frame, Scene

__all__ = [
    "CAMERA_PATH",
    "IMAGE_PATH",
    "OBJECTS_PATH",
    "POINTS_PATH",
    "ROOM_PATH",
    "TIMELINE",
    "WORLD_PATH",
    "RerunMissingError",
    "ViewSummary",
    "backproject_depth",
    "boxes_to_rerun",
    "even_subsample",
    "points_entity",
    "select_frames",
    "write_scene_recording",
]

WORLD_PATH = "world"
OBJECTS_PATH = "world/objects"
ROOM_PATH = "world/room"
CAMERA_PATH = "world/camera"
IMAGE_PATH = "world/camera/image"
POINTS_PATH = "world/points"
TIMELINE = "frame"
APPLICATION_ID = "vst_scene_view"
DEFAULT_STRIDE = 4
DEFAULT_MAX_POINTS = 20_000
_MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg"}


class RerunMissingError(ImportError):
    """``rerun-sdk`` is not installed: install the ``vst[rerun]`` extra."""


def _rerun() -> Any:
    """The ``rerun`` module, imported on first use."""
    try:
        import rerun
    except ImportError as exc:
        raise RerunMissingError(
            "the 3D scene view needs the optional extra vst[rerun] (rerun-sdk): "
            "pip install 'vst[rerun]'"
        ) from exc
    return rerun


@dataclass(frozen=True)
class ViewSummary:
    """What :func:`write_scene_recording` wrote: the ``.rrd`` path, the scene id, how many
    frames, points (over all frames) and objects were logged."""

    path: Path
    scene_id: str
    frames: int
    points: int
    objects: int


def backproject_depth(
    depth: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """World points of a z-depth map: ``(points (N, 3) float64 metres, rows (N,), cols (N,))``.

    ``depth`` is metric z-depth (H, W), 0 where unknown (skipped); ``K`` the OpenCV intrinsics
    (pixel row r, column c at u = c, v = r); ``cam_to_world`` the 4x4 camera -> world transform.
    Every ``stride``-th row and column (starting at 0) is used; points are in row-major order.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    rows, cols = np.mgrid[0 : depth.shape[0] : stride, 0 : depth.shape[1] : stride]
    d = depth[rows, cols].astype(np.float64)
    keep = d > 0
    rows, cols, d = rows[keep], cols[keep], d[keep]
    pix = np.stack([cols, rows, np.ones_like(cols)], axis=0).astype(np.float64)  # (3, N)
    cam = np.linalg.solve(np.asarray(K, dtype=np.float64), pix) * d  # (3, N)
    T = np.asarray(cam_to_world, dtype=np.float64)
    world = (T[:3, :3] @ cam).T + T[:3, 3]
    return world, rows, cols


def even_subsample(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` of ``n`` items, evenly spaced, first item included
    (all of them when ``n <= limit``)."""
    if limit < 1:
        raise ValueError(f"max points must be >= 1, got {limit}")
    if n <= limit:
        return np.arange(n)
    return (np.arange(limit) * n) // limit


def boxes_to_rerun(boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centers (N, 3), half_sizes (N, 3), quaternions (N, 4) xyzw)`` of vst 9-DoF boxes, for
    ``rr.Boxes3D``: the rotation is the box's local -> frame rotation of
    :func:`vst.geometry.boxes.box_rotations` (``Rz(roll) @ Ry(yaw) @ Rx(pitch)``)."""
    arr = as_boxes(boxes)
    if not len(arr):
        return np.zeros((0, 3)), np.zeros((0, 3)), np.zeros((0, 4))
    quats = Rotation.from_matrix(box_rotations(arr)).as_quat()  # scalar last: x, y, z, w
    return arr[:, 0:3].copy(), arr[:, 3:6] / 2.0, quats


def select_frames(scene: Scene, frame_ids: Sequence[str] | None) -> list[tuple[int, Frame]]:
    """``(index in the scene, frame)`` of the frames to log: all when ``frame_ids`` is None,
    else those ids in the scene's order (ValueError naming the scene and the unknown ids)."""
    indexed = list(enumerate(scene.frames))
    if frame_ids is None:
        return indexed
    wanted = list(dict.fromkeys(frame_ids))
    if not wanted:
        raise ValueError(f"scene {scene.id!r}: frames: give at least one frame id")
    known = {f.id for f in scene.frames}
    unknown = [i for i in wanted if i not in known]
    if unknown:
        some = ", ".join(f.id for f in scene.frames[:8])
        more = ", ..." if len(scene.frames) > 8 else ""
        raise ValueError(
            f"scene {scene.id!r} has no frame(s) {', '.join(map(repr, unknown))} "
            f"(its {len(scene.frames)} frames: {some}{more})"
        )
    return [(i, f) for i, f in indexed if f.id in set(wanted)]


def points_entity(frame_id: str) -> str:
    """Entity path of a frame's point cloud: ``world/points/<frame id>`` (id escaped)."""
    return f"{POINTS_PATH}/{_rerun().escape_entity_path_part(frame_id)}"


def _label_color(label: str) -> tuple[int, int, int]:
    """A stable colour per label (from its CRC32), bright enough to see on dark backgrounds."""
    h = zlib.crc32(label.encode("utf-8"))
    return (64 + (h & 0xBF), 64 + ((h >> 8) & 0xBF), 64 + ((h >> 16) & 0xBF))


def _log_static(rec: Any, rr: Any, scene: Scene) -> None:
    rec.log(WORLD_PATH, rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
    if scene.objects:
        centers, half_sizes, quats = boxes_to_rerun(scene.boxes)
        rec.log(
            OBJECTS_PATH,
            rr.Boxes3D(
                centers=centers,
                half_sizes=half_sizes,
                quaternions=[rr.Quaternion(xyzw=q) for q in quats],
                labels=scene.labels,
                colors=[_label_color(lb) for lb in scene.labels],
            ),
            static=True,
        )
    if scene.room is not None and len(scene.room.floor_polygon):
        poly = scene.room.floor_polygon
        ring = np.concatenate([poly, poly[:1]])
        strip = np.column_stack([ring, np.full(len(ring), scene.room.floor_z)])
        rec.log(ROOM_PATH, rr.LineStrips3D([strip], colors=[(200, 200, 200)]), static=True)


def _image_archetype(rr: Any, frame: Frame, rgb: np.ndarray) -> Any:
    """The scene's own PNG/JPEG bytes when the image is such a file, else the decoded pixels."""
    path = frame.checked_path("image")
    if path is not None and path.suffix.lower() in _MEDIA_TYPES:
        return rr.EncodedImage(
            contents=path.read_bytes(), media_type=_MEDIA_TYPES[path.suffix.lower()]
        )
    return rr.Image(rgb)


def _log_frame(
    rec: Any, rr: Any, index: int, frame: Frame, stride: int, max_points: int, plane: float
) -> int:
    """Log one frame at ``frame = index``; return its number of points."""
    rec.set_time(TIMELINE, sequence=index)
    rec.log(
        CAMERA_PATH,
        rr.Transform3D(translation=frame.cam_to_world[:3, 3], mat3x3=frame.cam_to_world[:3, :3]),
        rr.Pinhole(
            image_from_camera=frame.K,
            resolution=[frame.width, frame.height],
            camera_xyz=rr.ViewCoordinates.RDF,
            image_plane_distance=plane,
        ),
    )
    rgb = frame.load_image() if frame.image is not None else None
    if rgb is not None:
        rec.log(IMAGE_PATH, _image_archetype(rr, frame, rgb))
    depth = frame.load_depth()
    if depth is None:
        return 0
    world, rows, cols = backproject_depth(depth, frame.K, frame.cam_to_world, stride)
    keep = even_subsample(len(world), max_points)
    colors = rgb[rows[keep], cols[keep]] if rgb is not None else None
    rec.log(
        points_entity(frame.id),
        rr.Points3D(world[keep], colors=colors, radii=rr.Radius.ui_points(2.0)),
    )
    return len(keep)


def write_scene_recording(
    scene: Scene | str | Path,
    out: str | Path,
    *,
    stride: int = DEFAULT_STRIDE,
    max_points: int = DEFAULT_MAX_POINTS,
    frames: Sequence[str] | None = None,
    image_plane_distance: float = 0.3,
    on_frame: Callable[[str], None] | None = None,
) -> ViewSummary:
    """Write ``scene`` (a :class:`Scene` or a scene directory) as a Rerun recording at ``out``.

    ``stride``: use every stride-th pixel row and column for the point clouds; ``max_points``:
    at most this many points per frame; ``frames``: frame ids to log (default all, in the
    scene's order); ``image_plane_distance``: frustum depth drawn in the viewer (metres);
    ``on_frame(frame_id)`` is called after each frame (progress). The file is written to a
    temporary name and renamed when complete. Raises SceneError for an unreadable scene or
    frame file, ValueError for bad options, :class:`RerunMissingError` without ``vst[rerun]``.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if max_points < 1:
        raise ValueError(f"max points must be >= 1, got {max_points}")
    if not np.isfinite(image_plane_distance) or image_plane_distance <= 0:
        raise ValueError(f"image plane distance must be > 0, got {image_plane_distance}")
    rr = _rerun()
    if not isinstance(scene, Scene):
        scene = load_scene(scene)
    chosen = select_frames(scene, frames)
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"out: {out} is a folder; give a file name such as {out / 'scene.rrd'}")
    tmp = temp_file(out)
    points = 0
    try:
        rec = rr.RecordingStream(
            APPLICATION_ID, recording_id=f"vst-scene-{scene.id}", send_properties=False
        )
        rec.set_log_time_enabled(False)  # the frame index is the only timeline
        rec.set_log_tick_enabled(False)
        rec.save(tmp, default_blueprint=_blueprint())
        try:
            rec.send_recording_name(f"{scene.source} scene {scene.id}")
            _log_static(rec, rr, scene)
            for index, frame in chosen:
                points += _log_frame(
                    rec, rr, index, frame, stride, max_points, image_plane_distance
                )
                if on_frame is not None:
                    on_frame(frame.id)
            rec.flush()
        finally:
            rec.disconnect()
        commit(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ViewSummary(out, scene.id, len(chosen), points, len(scene.objects))


def _blueprint() -> Any:
    """Viewer layout: the 3D world on the left, the current camera's image on the right."""
    import rerun.blueprint as rrb

    return rrb.Blueprint(
        rrb.Horizontal(
            rrb.Spatial3DView(origin=WORLD_PATH, name="world"),
            rrb.Spatial2DView(origin=CAMERA_PATH, name="camera"),
            column_shares=[3, 2],
        ),
        collapse_panels=False,
    )
