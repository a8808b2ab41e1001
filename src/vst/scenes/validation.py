"""Semantic checks of a :class:`~vst.scenes.model.Scene`.

Each problem is reported as one sentence naming the scene, the frame or object and the field
(and the file for pixel data): non-finite numbers, non-positive sizes, non-orthonormal
rotations, bad intrinsics, missing or unreadable files, and image/depth/mask shape mismatches.
"""

from __future__ import annotations

import re

import numpy as np
from PIL import Image

from vst.scenes.errors import SceneError, SceneValidationError
from vst.scenes.model import Frame, Scene

ROTATION_ATOL = 1e-4
"""Tolerance of the orthonormality check of pose rotations (|R R^T - I| and |det R - 1|)."""

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


def _check_frame_geometry(frame: Frame, where: str) -> list[str]:
    problems: list[str] = []
    K = frame.K
    if frame.width <= 0 or frame.height <= 0:
        problems.append(
            f"{where}, field 'width'/'height': must be positive, got {frame.width}x{frame.height}"
        )
    if K.shape != (3, 3):
        problems.append(f"{where}, field 'K': expected shape (3, 3), got {K.shape}")
    elif not np.all(np.isfinite(K)):
        problems.append(f"{where}, field 'K': non-finite values")
    else:
        if K[0, 0] <= 0 or K[1, 1] <= 0:
            problems.append(
                f"{where}, field 'K': focal lengths must be positive, got "
                f"fx={K[0, 0]:g}, fy={K[1, 1]:g}"
            )
        if not np.allclose(K[2], [0.0, 0.0, 1.0]) or K[1, 0] != 0:
            problems.append(
                f"{where}, field 'K': not an intrinsics matrix (last row must be "
                f"[0, 0, 1] and K[1, 0] = 0), got {K.tolist()}"
            )
        if frame.width > 0 and not (0.0 <= K[0, 2] <= frame.width):
            problems.append(
                f"{where}, field 'K': principal point cx={K[0, 2]:g} outside the "
                f"image width {frame.width}"
            )
        if frame.height > 0 and not (0.0 <= K[1, 2] <= frame.height):
            problems.append(
                f"{where}, field 'K': principal point cy={K[1, 2]:g} outside the "
                f"image height {frame.height}"
            )
    T = frame.cam_to_world
    if T.shape != (4, 4):
        problems.append(f"{where}, field 'cam_to_world': expected shape (4, 4), got {T.shape}")
    elif not np.all(np.isfinite(T)):
        problems.append(f"{where}, field 'cam_to_world': non-finite values")
    else:
        R = T[:3, :3]
        if not np.allclose(T[3], [0.0, 0.0, 0.0, 1.0]):
            problems.append(
                f"{where}, field 'cam_to_world': last row must be [0, 0, 0, 1], got {T[3].tolist()}"
            )
        err = float(np.abs(R @ R.T - np.eye(3)).max())
        det = float(np.linalg.det(R))
        if err > ROTATION_ATOL or abs(det - 1.0) > ROTATION_ATOL:
            problems.append(
                f"{where}, field 'cam_to_world': rotation is not orthonormal with "
                f"det +1 (max |R R^T - I| = {err:.2e}, det = {det:.6f})"
            )
    return problems


def _image_size(frame: Frame, where: str, problems: list[str]) -> None:
    """Check the RGB image exists, is readable, and matches width x height."""
    if isinstance(frame.image, np.ndarray):
        shape = frame.image.shape
        if frame.image.ndim != 3 or shape[2] != 3 or shape[:2] != (frame.height, frame.width):
            problems.append(
                f"{where}, field 'image': array shape {shape} does not match "
                f"({frame.height}, {frame.width}, 3)"
            )
        return
    path = frame.path_of(frame.image)
    if path is None:
        return
    if not path.is_file():
        problems.append(f"{where}, field 'image': file {path} does not exist")
        return
    try:
        with Image.open(path) as im:
            size = im.size
            im.verify()
    except OSError as exc:
        problems.append(f"{where}, field 'image': cannot read {path}: {exc}")
        return
    if size != (frame.width, frame.height):
        problems.append(
            f"{where}, field 'image': {path} is {size[0]}x{size[1]}, the frame says "
            f"{frame.width}x{frame.height}"
        )


def _check_pixels(frame: Frame, where: str, object_ids: set[int]) -> list[str]:
    problems: list[str] = []
    _image_size(frame, where, problems)
    for kind, loader in (("depth", frame.load_depth), ("mask", frame.load_mask)):
        source = getattr(frame, kind)
        if source is None:
            continue
        path = frame.path_of(source)
        if path is not None and not path.is_file():
            problems.append(f"{where}, field {kind!r}: file {path} does not exist")
            continue
        try:
            arr = loader()
        except SceneError as exc:
            problems.append(f"{where}, field {kind!r}: {exc}")
            continue
        if arr.shape != (frame.height, frame.width):
            problems.append(
                f"{where}, field {kind!r}: shape {arr.shape} does not match the image "
                f"({frame.height}, {frame.width})" + (f" in {path}" if path else "")
            )
            continue
        if kind == "depth":
            if not np.all(np.isfinite(arr)):
                problems.append(
                    f"{where}, field 'depth': {int((~np.isfinite(arr)).sum())} "
                    f"non-finite values (use 0 for unknown depth)"
                )
            elif (arr < 0).any():
                problems.append(f"{where}, field 'depth': negative values (min {arr.min():g})")
        else:
            unknown = sorted(set(np.unique(arr).tolist()) - object_ids - {0})
            if unknown:
                problems.append(
                    f"{where}, field 'mask': ids {unknown[:10]} are not objects of the scene"
                )
    return problems


def scene_problems(scene: Scene, check_files: bool = True) -> list[str]:
    """Every problem found in ``scene`` as a sentence; empty when the scene is valid.

    ``check_files`` also opens the images, depth maps and masks (slower: reads the pixels).
    """
    problems: list[str] = []
    sid = f"scene {scene.id!r}"
    if not scene.id or not _SAFE_ID.match(scene.id):
        problems.append(f"{sid}, field 'id': must be non-empty letters, digits, '_', '-', '.'")
    if not scene.source:
        problems.append(f"{sid}, field 'source': empty")

    seen_objects: set[int] = set()
    for obj in scene.objects:
        where = f"{sid}, object {obj.id} ({obj.label!r})"
        if not isinstance(obj.id, int | np.integer) or obj.id < 1:
            problems.append(
                f"{where}, field 'id': must be an integer >= 1 (0 marks background in masks)"
            )
        if obj.id in seen_objects:
            problems.append(f"{where}, field 'id': duplicate object id")
        seen_objects.add(obj.id)
        if not obj.label or not obj.label.strip():
            problems.append(f"{where}, field 'label': empty")
        box = obj.box
        if box.shape != (9,):
            problems.append(f"{where}, field 'box': expected 9 numbers, got shape {box.shape}")
            continue
        if not np.all(np.isfinite(box)):
            problems.append(f"{where}, field 'box': non-finite values {box.tolist()}")
        elif np.any(box[3:6] <= 0):
            problems.append(
                f"{where}, field 'box': sizes must be positive, got {box[3:6].tolist()}"
            )

    if scene.room is not None:
        poly = scene.room.floor_polygon
        if poly.shape[0] < 3 or not np.all(np.isfinite(poly)):
            problems.append(f"{sid}, field 'room.floor_polygon': needs >= 3 finite points")
        elif scene.room.area <= 0:
            problems.append(f"{sid}, field 'room.floor_polygon': zero area")
        if scene.room.height is not None and not scene.room.height > 0:
            problems.append(f"{sid}, field 'room.ceiling_z': ceiling not above the floor")

    seen_frames: set[str] = set()
    for frame in scene.frames:
        where = f"{sid}, frame {frame.id!r}"
        if not frame.id or not _SAFE_ID.match(frame.id):
            problems.append(
                f"{where}, field 'id': must be non-empty letters, digits, '_', '-', "
                f"'.' (it names files)"
            )
        if frame.id in seen_frames:
            problems.append(f"{where}, field 'id': duplicate frame id")
        seen_frames.add(frame.id)
        if frame.timestamp is not None and not np.isfinite(frame.timestamp):
            problems.append(f"{where}, field 'timestamp': non-finite")
        problems.extend(_check_frame_geometry(frame, where))
        for key, count in frame.visible_pixels.items():
            if key not in seen_objects:
                problems.append(
                    f"{where}, field 'visible_pixels': object {key} is not in the scene"
                )
            elif count < 0:
                problems.append(f"{where}, field 'visible_pixels': negative count for object {key}")
        for key, frac in frame.truncation.items():
            if key not in seen_objects:
                problems.append(f"{where}, field 'truncation': object {key} is not in the scene")
            elif not 0.0 <= frac <= 1.0:
                problems.append(
                    f"{where}, field 'truncation': object {key} has {frac}, expected 0..1"
                )
        if check_files:
            problems.extend(_check_pixels(frame, where, seen_objects))
    return problems


def validate_scene(scene: Scene, check_files: bool = True) -> Scene:
    """Return ``scene`` unchanged if valid; raise :class:`SceneValidationError` listing every
    problem otherwise."""
    problems = scene_problems(scene, check_files=check_files)
    if problems:
        raise SceneValidationError(scene.id, problems)
    return scene
