"""Semantic checks of a :class:`~vst.scenes.model.Scene`.

Each problem is reported as one sentence naming the scene, the frame or object and the field
(and the file for pixel data): non-finite numbers, values outside the plausibility
:class:`Bounds`, labels that render empty or carry control/bidi characters, non-orthonormal
rotations, bad intrinsics, and the frame files (:func:`check_frame_files`: paths leaving the
scene directory, missing, unreadable or oversized files, image/depth/mask shapes, depth and
mask content). :func:`screen_frames` is what ``vst generate`` runs on every loaded scene: the
header-level file checks, dropping the frames that fail. The rules are listed for users in
``docs/scene-checks.md``.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vst.scenes.errors import FrameFileError, SceneError, SceneValidationError, UnreadableFileError
from vst.scenes.files import array_header, image_size, resolve_inside
from vst.scenes.model import Frame, Scene

ROTATION_ATOL = 1e-4
"""Tolerance of the orthonormality check of pose rotations (|R R^T - I| and |det R - 1|)."""

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class Bounds:
    """Plausibility bounds of scene values (indoor scenes, metres). A value outside them is
    almost surely a unit or parsing error, and would reach answers verbatim (a 1e300 m box).
    Override by passing another ``Bounds`` to :func:`scene_problems`.

    ``max_box_size``: each box size in (0, max] metres; ``max_coordinate``: box centres and
    floor-polygon points within this distance of the world origin on every axis;
    ``max_object_id``: ids in 1..max (int32, as stored in masks)."""

    max_box_size: float = 100.0
    max_coordinate: float = 1000.0
    max_object_id: int = 2**31 - 1


DEFAULT_BOUNDS = Bounds()

_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}
"""Unicode categories a label may not contain: control, format (zero-width and bidi
overrides), surrogates, private use, line/paragraph separators."""


def label_problem(label: object) -> str | None:
    """Why ``label`` cannot name an object in a prompt (None if it can): not a string, empty
    or only spaces, or holding control/format/bidi characters (named by code point)."""
    if not isinstance(label, str):
        return f"must be a string, got {type(label).__name__}"
    bad = sorted({c for c in label if unicodedata.category(c) in _REFUSED_CATEGORIES})
    if bad:
        codes = ", ".join(f"U+{ord(c):04X}" for c in bad[:5])
        return f"holds control or invisible formatting characters ({codes})"
    if not "".join(c for c in label if not unicodedata.category(c).startswith("Z")):
        return "empty (nothing visible)"
    return None


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


def _image_problem(frame: Frame, path: Path) -> str | None:
    """The image's header size against the frame's (no decode); None when they agree."""
    try:
        size = image_size(path)
    except UnreadableFileError as exc:
        return str(exc)
    if size != (frame.width, frame.height):
        return f"{path} is {size[0]}x{size[1]}, the frame says {frame.width}x{frame.height}"
    return None


def _array_problem(frame: Frame, kind: str, path: Path) -> str | None:
    """Shape (and dtype) of a depth map or mask from its file header (npy/npz header or image
    header, no decode); None when it matches the frame."""
    try:
        if path.suffix in (".npz", ".npy"):
            shape, dtype = array_header(path, kind)
            if kind == "mask" and not np.issubdtype(dtype, np.integer):
                return f"{path} holds {dtype}, masks must be integer ids"
            if kind == "depth" and not (
                np.issubdtype(dtype, np.floating) or np.issubdtype(dtype, np.integer)
            ):
                return f"{path} holds {dtype}, depth must be real numbers"
        else:
            w, h = image_size(path)
            shape = (h, w)
    except UnreadableFileError as exc:
        return str(exc)
    if shape != (frame.height, frame.width):
        return f"{path} has shape {shape}, the frame says ({frame.height}, {frame.width})"
    return None


def check_frame_files(
    frame: Frame, object_ids: set[int] | None = None, deep: bool = True
) -> list[str]:
    """Problems of one frame's pixel files, each naming the frame, field and file: paths that
    resolve outside the scene directory, missing or unreadable files, decompression bombs,
    images/depth/masks whose size differs from the frame's (read from file headers, no
    decode); with ``deep`` also depth and masks loaded in full (non-finite or negative depth,
    mask ids not in ``object_ids``). In-memory arrays are checked by shape (and content when
    ``deep``)."""
    where = frame.where
    problems: list[str] = []
    for kind in ("image", "depth", "mask"):
        source = getattr(frame, kind)
        if source is None:
            continue
        if isinstance(source, np.ndarray):
            expected = (frame.height, frame.width) + ((3,) if kind == "image" else ())
            if source.shape != expected:
                problems.append(
                    f"{where}, field {kind!r}: array shape {source.shape} does not match {expected}"
                )
            continue
        path = frame.path_of(source)
        if frame.root is not None:
            try:
                resolve_inside(Path(source), frame.root, frame.allow_outside_root)
            except UnreadableFileError as exc:
                problems.append(f"{where}, field {kind!r}: {exc}")
                continue
        if not path.is_file():
            problems.append(f"{where}, field {kind!r}: file {path} does not exist")
            continue
        if kind == "image":
            problem = _image_problem(frame, path)
        else:
            problem = _array_problem(frame, kind, path)
        if problem:
            problems.append(f"{where}, field {kind!r}: {problem}")
    if deep and not problems:
        saved = frame.object_ids
        if object_ids is not None:
            frame.object_ids = frozenset(object_ids)
        try:
            for loader in (frame.load_depth, frame.load_mask):
                try:
                    loader()
                except SceneError as exc:
                    problems.append(str(exc))
        finally:
            frame.object_ids = saved
    return problems


def screen_frames(scene: Scene, deep: bool = True) -> list[str]:
    """Drop the frames of ``scene`` whose files fail :func:`check_frame_files` (in place) and
    return one reason per dropped frame problem: what ``vst generate`` runs before any task,
    the same file checks as ``vst scenes validate``. A scene left without frames keeps none."""
    ids = {o.id for o in scene.objects}
    kept, reasons = [], []
    for frame in scene.frames:
        frame.scene_id = frame.scene_id or scene.id
        problems = check_frame_files(frame, ids, deep=deep)
        if problems:
            reasons.extend(f"frame skipped: {p}" for p in problems)
        else:
            kept.append(frame)
    scene.frames = kept
    return reasons


def scene_problems(
    scene: Scene, check_files: bool = True, bounds: Bounds = DEFAULT_BOUNDS
) -> list[str]:
    """Every problem found in ``scene`` as a sentence; empty when the scene is valid.

    ``check_files`` also opens the images, depth maps and masks (see
    :func:`check_frame_files`). Numbers are checked against the plausibility ``bounds``.
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
        if not isinstance(obj.id, int | np.integer) or not 1 <= obj.id <= bounds.max_object_id:
            problems.append(
                f"{where}, field 'id': must be an integer in 1..{bounds.max_object_id} "
                "(0 marks background in masks, which store int32 ids)"
            )
        if obj.id in seen_objects:
            problems.append(f"{where}, field 'id': duplicate object id")
        seen_objects.add(obj.id)
        bad_label = label_problem(obj.label)
        if bad_label:
            problems.append(f"{where}, field 'label': {bad_label}")
        box = obj.box
        if box.shape != (9,):
            problems.append(f"{where}, field 'box': expected 9 numbers, got shape {box.shape}")
            continue
        if not np.all(np.isfinite(box)):
            problems.append(f"{where}, field 'box': non-finite values {box.tolist()}")
        elif np.any(box[3:6] <= 0) or np.any(box[3:6] > bounds.max_box_size):
            problems.append(
                f"{where}, field 'box': sizes must be positive and at most "
                f"{bounds.max_box_size:g} m, got {box[3:6].tolist()}"
            )
        elif np.any(np.abs(box[:3]) > bounds.max_coordinate):
            problems.append(
                f"{where}, field 'box': centre {box[:3].tolist()} is more than "
                f"{bounds.max_coordinate:g} m from the origin"
            )

    if scene.room is not None:
        poly = scene.room.floor_polygon
        if poly.shape[0] < 3 or not np.all(np.isfinite(poly)):
            problems.append(f"{sid}, field 'room.floor_polygon': needs >= 3 finite points")
        elif np.any(np.abs(poly) > bounds.max_coordinate):
            problems.append(
                f"{sid}, field 'room.floor_polygon': points beyond {bounds.max_coordinate:g} m"
            )
        elif scene.room.area <= 0:
            problems.append(f"{sid}, field 'room.floor_polygon': zero area")
        if scene.room.height is not None and not scene.room.height > 0:
            problems.append(f"{sid}, field 'room.ceiling_z': ceiling not above the floor")

    seen_frames: set[str] = set()
    for frame in scene.frames:
        frame.scene_id = frame.scene_id or scene.id
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
            problems.extend(check_frame_files(frame, seen_objects))
    return problems


def validate_scene(scene: Scene, check_files: bool = True) -> Scene:
    """Return ``scene`` unchanged if valid; raise :class:`SceneValidationError` listing every
    problem otherwise."""
    problems = scene_problems(scene, check_files=check_files)
    if problems:
        raise SceneValidationError(scene.id, problems)
    return scene


def drop_frame(scene: Scene, error: FrameFileError) -> bool:
    """Remove the frame a :class:`FrameFileError` names from ``scene`` (a file found corrupt
    while a task loads it: the engine drops the frame and runs the task again). False if the
    error names no frame of this scene."""
    if error.scene_id not in (None, scene.id):
        return False
    kept = [f for f in scene.frames if f.id != error.frame_id]
    if len(kept) == len(scene.frames):
        return False
    scene.frames = kept
    return True
