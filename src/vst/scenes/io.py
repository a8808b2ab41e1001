"""Scene directories: save a :class:`~vst.scenes.model.Scene` and load it back identically.

Layout of a scene directory::

    scene.json             ids, source, split, room, objects, frames (intrinsics, poses, file names)
    images/<frame>.png     RGB (a source may keep its own JPEG/PNG files here as they are)
    depth/<frame>.npz      key "depth": float32 (H, W) metric z-depth in metres, 0 = unknown
    masks/<frame>.png      16-bit PNG of object ids, 0 = no object

Files are written deterministically (fixed zip timestamps, no PNG metadata) and atomically
(temporary file, then rename), so the same scene gives the same bytes and a killed write never
leaves a half-written file behind.
"""

from __future__ import annotations

import io
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vst.atomic import atomic_write_bytes
from vst.scenes.errors import SceneFormatError
from vst.scenes.files import read_json
from vst.scenes.model import Frame, Object3D, Room, Scene

SCENE_FILE = "scene.json"
FORMAT_NAME = "vst-scene"
FORMAT_VERSION = 1
_SUBDIRS = {"image": "images", "depth": "depth", "mask": "masks"}


# -- low-level deterministic, atomic writers ------------------------------------------------
def encode_png(array: np.ndarray) -> bytes:
    """PNG bytes of a uint8 (H, W, 3)/(H, W) or uint16 (H, W) array, with no metadata."""
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def encode_npz(**arrays: np.ndarray) -> bytes:
    """Compressed npz bytes with fixed zip timestamps (``np.savez_compressed`` stamps the
    current time into the archive, which would make identical scenes differ byte-wise)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), allow_pickle=False)
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def _mask_to_png_array(mask: np.ndarray, frame_id: str) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.size and (mask.min() < 0 or mask.max() > np.iinfo(np.uint16).max):
        raise SceneFormatError(
            f"frame {frame_id!r}: mask ids must lie in 0..65535 to be stored as a 16-bit PNG, "
            f"got {mask.min()}..{mask.max()}"
        )
    return mask.astype(np.uint16)


# -- save ------------------------------------------------------------------------------------
def _store_pixels(frame: Frame, kind: str, out_dir: Path) -> str | None:
    """Write or copy one pixel source of ``frame`` into ``out_dir``; return its relative path."""
    source = getattr(frame, kind)
    if source is None:
        return None
    sub = _SUBDIRS[kind]
    if isinstance(source, np.ndarray):
        if kind == "depth":
            rel = f"{sub}/{frame.id}.npz"
            data = encode_npz(depth=source.astype(np.float32))
        elif kind == "mask":
            rel = f"{sub}/{frame.id}.png"
            data = encode_png(_mask_to_png_array(source, frame.id))
        else:
            rel = f"{sub}/{frame.id}.png"
            data = encode_png(np.asarray(source, dtype=np.uint8))
        atomic_write_bytes(out_dir / rel, data)
        return rel
    src = frame.path_of(source)
    if src is None or not src.is_file():
        raise SceneFormatError(f"frame {frame.id!r}: {kind} file {src} does not exist")
    try:
        rel = src.resolve().relative_to(out_dir.resolve()).as_posix()
    except ValueError:  # lives elsewhere: copy it into the scene directory
        rel = f"{sub}/{frame.id}{src.suffix.lower()}"
        atomic_write_bytes(out_dir / rel, src.read_bytes())
    return rel


def _frame_record(frame: Frame, out_dir: Path) -> dict[str, Any]:
    return {
        "id": frame.id,
        "timestamp": frame.timestamp,
        "width": frame.width,
        "height": frame.height,
        "K": frame.K.tolist(),
        "cam_to_world": frame.cam_to_world.tolist(),
        "image": _store_pixels(frame, "image", out_dir),
        "depth": _store_pixels(frame, "depth", out_dir),
        "mask": _store_pixels(frame, "mask", out_dir),
        "visible_pixels": {str(k): int(v) for k, v in sorted(frame.visible_pixels.items())},
        "truncation": {str(k): float(v) for k, v in sorted(frame.truncation.items())},
    }


def scene_to_record(scene: Scene, out_dir: Path) -> dict[str, Any]:
    """The JSON record of ``scene``, writing its arrays under ``out_dir``."""
    room = None
    if scene.room is not None:
        room = {
            "floor_polygon": scene.room.floor_polygon.tolist(),
            "floor_z": scene.room.floor_z,
            "ceiling_z": scene.room.ceiling_z,
        }
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "id": scene.id,
        "source": scene.source,
        "split": scene.split,
        "world_frame": "z_up",
        "room": room,
        "attributes": scene.attributes,
        "objects": [
            {"id": o.id, "label": o.label, "box": o.box.tolist(), "attributes": o.attributes}
            for o in scene.objects
        ],
        "frames": [_frame_record(f, out_dir) for f in scene.frames],
    }


def save_scene(scene: Scene, out_dir: str | Path) -> Path:
    """Write ``scene`` as a scene directory at ``out_dir`` (created if needed); return it."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    record = scene_to_record(scene, out)
    text = json.dumps(record, indent=1, sort_keys=False, allow_nan=True) + "\n"
    atomic_write_bytes(out / SCENE_FILE, text.encode("utf-8"))
    return out


# -- load ------------------------------------------------------------------------------------
class _Reader:
    """Pulls typed fields out of a JSON record, naming the scene, item and field on errors."""

    def __init__(self, path: Path, where: str):
        self.path = path
        self.where = where

    def fail(self, field_name: str, problem: str) -> SceneFormatError:
        return SceneFormatError(f"{self.path}: {self.where}, field {field_name!r}: {problem}")

    def get(self, record: dict, key: str, kind: type | tuple, *, optional: bool = False):
        if key not in record or record[key] is None:
            if optional:
                return None
            raise self.fail(key, "missing")
        value = record[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            try:
                value = float(value)
            except OverflowError:
                raise self.fail(key, f"number too large: {str(value)[:20]}...") from None
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise self.fail(key, f"expected {getattr(kind, '__name__', kind)}, got {value!r}")
        return value

    def array(self, record: dict, key: str, shape: tuple[int, ...]) -> np.ndarray:
        value = self.get(record, key, list)
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError, OverflowError) as exc:
            raise self.fail(key, f"not a numeric array: {exc}") from None
        if arr.shape != shape and not (shape[0] == -1 and arr.ndim == len(shape)):
            raise self.fail(key, f"expected shape {shape}, got {arr.shape}")
        return arr


def _int_keys(reader: _Reader, record: dict, key: str, cast: type) -> dict:
    raw = reader.get(record, key, dict, optional=True) or {}
    try:
        return {int(k): cast(v) for k, v in raw.items()}
    except (TypeError, ValueError, OverflowError) as exc:
        raise reader.fail(key, f"keys must be object ids and values numbers: {exc}") from exc


def load_scene(scene_dir: str | Path, allow_outside_root: bool = False) -> Scene:
    """Read a scene directory written by :func:`save_scene` (or by a source).

    Pixels stay on disk and load lazily; a frame's pixel paths must resolve inside the scene
    directory (no absolute, ``..`` or symlinked escapes) unless ``allow_outside_root``.
    Raises :class:`SceneFormatError` naming the file, scene, frame or object, and field on
    malformed input (including a ``scene.json`` nested too deeply to parse); call
    :func:`vst.scenes.validation.validate_scene` for the semantic checks.
    """
    root = Path(scene_dir)
    path = root / SCENE_FILE
    if not path.is_file():
        raise SceneFormatError(f"{root}: not a scene directory (no {SCENE_FILE})")
    record = read_json(path)
    if not isinstance(record, dict) or record.get("format") != FORMAT_NAME:
        raise SceneFormatError(f"{path}: not a {FORMAT_NAME} file (missing 'format' marker)")
    if record.get("version") != FORMAT_VERSION:
        raise SceneFormatError(
            f"{path}: format version {record.get('version')!r} is not supported "
            f"(this vst reads version {FORMAT_VERSION})"
        )
    top = _Reader(path, "scene")
    scene_id = top.get(record, "id", str)
    top.where = f"scene {scene_id!r}"

    room = None
    if record.get("room") is not None:
        room_rec = top.get(record, "room", dict)
        rr = _Reader(path, f"scene {scene_id!r}, room")
        room = Room(
            floor_polygon=rr.array(room_rec, "floor_polygon", (-1, 2)),
            floor_z=rr.get(room_rec, "floor_z", float),
            ceiling_z=rr.get(room_rec, "ceiling_z", float, optional=True),
        )

    objects = []
    for i, rec in enumerate(top.get(record, "objects", list)):
        orr = _Reader(path, f"scene {scene_id!r}, object #{i}")
        if not isinstance(rec, dict):
            raise orr.fail("objects", "each object must be a JSON object")
        oid = orr.get(rec, "id", int)
        orr.where = f"scene {scene_id!r}, object {oid}"
        objects.append(
            Object3D(
                id=oid,
                label=orr.get(rec, "label", str),
                box=orr.array(rec, "box", (9,)),
                attributes=orr.get(rec, "attributes", dict, optional=True) or {},
            )
        )

    object_ids = frozenset(o.id for o in objects)
    frames = []
    for i, rec in enumerate(top.get(record, "frames", list)):
        frr = _Reader(path, f"scene {scene_id!r}, frame #{i}")
        if not isinstance(rec, dict):
            raise frr.fail("frames", "each frame must be a JSON object")
        fid = frr.get(rec, "id", str)
        frr.where = f"scene {scene_id!r}, frame {fid!r}"
        frames.append(
            Frame(
                id=fid,
                timestamp=frr.get(rec, "timestamp", float, optional=True),
                width=frr.get(rec, "width", int),
                height=frr.get(rec, "height", int),
                K=frr.array(rec, "K", (3, 3)),
                cam_to_world=frr.array(rec, "cam_to_world", (4, 4)),
                image=frr.get(rec, "image", str, optional=True),
                depth=frr.get(rec, "depth", str, optional=True),
                mask=frr.get(rec, "mask", str, optional=True),
                visible_pixels=_int_keys(frr, rec, "visible_pixels", int),
                truncation=_int_keys(frr, rec, "truncation", float),
                root=root,
                scene_id=scene_id,
                object_ids=object_ids,
                allow_outside_root=allow_outside_root,
            )
        )

    return Scene(
        id=scene_id,
        source=top.get(record, "source", str),
        split=top.get(record, "split", str),
        frames=frames,
        objects=objects,
        room=room,
        attributes=top.get(record, "attributes", dict, optional=True) or {},
        root=root,
    )


def find_scene_dirs(root: str | Path) -> list[Path]:
    """All scene directories at or below ``root`` (folders holding ``scene.json``), sorted."""
    root = Path(root)
    if (root / SCENE_FILE).is_file():
        return [root]
    return sorted(p.parent for p in root.rglob(SCENE_FILE))


def copy_scene(scene_dir: str | Path, out_dir: str | Path) -> Path:
    """Copy a scene directory as it is (all files), e.g. to edit a fixture in a test."""
    return Path(shutil.copytree(scene_dir, out_dir, dirs_exist_ok=True))
