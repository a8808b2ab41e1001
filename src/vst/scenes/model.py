"""The scene model every source produces: :class:`Scene`, :class:`Frame`, :class:`Object3D`.

Conventions:

* World frame: right-handed, gravity-aligned with +Z up, metres (the convention of ScanNet,
  ARKitScenes and EmbodiedScan; sources convert into it). The floor is at ``room.floor_z`` when
  a room is known.
* Object boxes are 9-DoF vst boxes (see :mod:`vst.geometry.boxes`) in that world frame:
  ``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]``, metres and degrees, with the box's
  local axes X = front, Y = left, Z = up for upright objects (so ``z_size`` is the height and an
  upright object has angles ``[0, 0, heading]``), as in EmbodiedScan and ScanNet.
  :meth:`Scene.boxes_in_camera` converts them to the VST camera convention (local Y vertical).
* Camera frame: X right, Y down, Z forward. ``Frame.cam_to_world`` is the 4x4 rigid transform
  taking camera-frame points to world points.
* Depth is metric z-depth (distance along the optical axis, not along the ray), float32 metres,
  0 where unknown. Instance masks hold :attr:`Object3D.id` per pixel, 0 for no object.
* Pixels: ``K`` follows OpenCV (the centre of pixel row r, column c is at u = c, v = r).

Frames keep their pixels lazily: ``image``/``depth``/``mask`` hold either an array already in
memory or a path (relative to the scene directory ``root``) read on demand, so iterating over
thousands of scenes does not hold their images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vst.geometry.boxes import as_boxes, world_boxes_to_camera
from vst.geometry.polygons import polygon_area
from vst.scenes.errors import FrameFileError, UnreadableFileError
from vst.scenes.files import load_array, open_image, resolve_inside

PixelSource = np.ndarray | str | Path | None


@dataclass
class Object3D:
    """An annotated object: ``id`` (int >= 1, also its value in instance masks), ``label``
    (category name), ``box`` (9,) in the scene's world frame, free-form ``attributes``."""

    id: int
    label: str
    box: np.ndarray
    attributes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.box = np.asarray(self.box, dtype=np.float64).reshape(-1)


@dataclass
class Room:
    """The room's extent: floor polygon (K, 2) in world X-Y (metres, counter-clockwise seen from
    above), floor height and ceiling height (world Z, metres)."""

    floor_polygon: np.ndarray
    floor_z: float = 0.0
    ceiling_z: float | None = None

    def __post_init__(self) -> None:
        self.floor_polygon = np.asarray(self.floor_polygon, dtype=np.float64).reshape(-1, 2)

    @property
    def area(self) -> float:
        """Floor area in square metres (shoelace formula)."""
        return polygon_area(self.floor_polygon)

    @property
    def height(self) -> float | None:
        """Floor-to-ceiling height in metres, if the ceiling is known."""
        return None if self.ceiling_z is None else float(self.ceiling_z - self.floor_z)


@dataclass
class Frame:
    """One camera view: intrinsics, pose and (lazily loaded) pixels.

    ``visible_pixels`` maps object id -> number of mask pixels of that object in this frame;
    ``truncation`` maps object id -> fraction (0..1) of the object's projected box outside the
    image. Both are optional (empty when the source does not know them).
    """

    id: str
    K: np.ndarray
    width: int
    height: int
    cam_to_world: np.ndarray
    timestamp: float | None = None
    image: PixelSource = None
    depth: PixelSource = None
    mask: PixelSource = None
    visible_pixels: dict[int, int] = field(default_factory=dict)
    truncation: dict[int, float] = field(default_factory=dict)
    root: Path | None = None
    scene_id: str | None = field(default=None, repr=False, compare=False)
    """The scene this frame belongs to (set by :func:`vst.scenes.io.load_scene`; named in
    errors)."""
    object_ids: frozenset[int] | None = field(default=None, repr=False, compare=False)
    """The scene's object ids, when known: a loaded mask holding another id is an error."""
    allow_outside_root: bool = field(default=False, repr=False, compare=False)
    """Follow pixel paths that resolve outside ``root`` (refused by default)."""

    def __post_init__(self) -> None:
        self.K = np.asarray(self.K, dtype=np.float64)
        self.cam_to_world = np.asarray(self.cam_to_world, dtype=np.float64)
        self.width = int(self.width)
        self.height = int(self.height)

    # -- pixels -----------------------------------------------------------------------------
    def path_of(self, source: PixelSource) -> Path | None:
        """Absolute path of a path-valued pixel source (None for arrays or missing)."""
        if source is None or isinstance(source, np.ndarray):
            return None
        path = Path(source)
        if not path.is_absolute() and self.root is not None:
            path = self.root / path
        return path

    @property
    def where(self) -> str:
        """``scene 'S', frame 'F'`` (or ``frame 'F'`` when the scene is unknown), for errors."""
        scene = f"scene {self.scene_id!r}, " if self.scene_id else ""
        return f"{scene}frame {self.id!r}"

    def _fail(self, kind: str, path: Path | None, problem: str) -> FrameFileError:
        file = f", file {path}" if path is not None else ""
        return FrameFileError(
            f"{self.where}, field {kind!r}{file}: {problem}",
            self.scene_id,
            self.id,
            None if path is None else str(path),
        )

    def checked_path(self, kind: str) -> Path | None:
        """Path of the ``kind`` file (``image``/``depth``/``mask``), refused with a
        FrameFileError when it resolves outside the scene directory ``root`` (unless
        ``allow_outside_root``); None for arrays or no file."""
        source = getattr(self, kind)
        path = self.path_of(source)
        if path is None or self.root is None:
            return path
        try:
            return resolve_inside(Path(source), self.root, self.allow_outside_root)
        except UnreadableFileError as exc:
            raise self._fail(kind, path, str(exc)) from None

    def _read(self, kind: str) -> np.ndarray | None:
        source = getattr(self, kind)
        if source is None or isinstance(source, np.ndarray):
            return source
        path = self.checked_path(kind)
        try:
            if path.suffix in (".npz", ".npy"):
                return load_array(path, kind)
            with open_image(path) as im:
                return np.asarray(im.convert("RGB") if kind == "image" else im)
        except UnreadableFileError as exc:
            raise self._fail(kind, path, str(exc)) from None

    def _check_shape(self, kind: str, arr: np.ndarray, expected: tuple[int, ...]) -> None:
        if arr.shape != expected:
            raise self._fail(
                kind,
                self.path_of(getattr(self, kind)),
                f"shape {arr.shape} does not match the frame's {expected} "
                f"({self.width}x{self.height})",
            )

    def load_image(self) -> np.ndarray:
        """RGB image, uint8 (H, W, 3). Raises FrameFileError (a SceneFormatError naming the
        scene, frame and file) if missing, unreadable or not the frame's declared size."""
        img = self._read("image")
        if img is None:
            raise self._fail("image", None, "no image")
        self._check_shape("image", img, (self.height, self.width, 3))
        return img

    def load_depth(self) -> np.ndarray | None:
        """Metric z-depth, float32 (H, W) metres, 0 where unknown; None if the frame has none.
        FrameFileError for a wrong shape, non-finite or negative values."""
        depth = self._read("depth")
        if depth is None:
            return None
        self._check_shape("depth", depth, (self.height, self.width))
        if not np.issubdtype(depth.dtype, np.number) or np.issubdtype(
            depth.dtype, np.complexfloating
        ):
            raise self._fail("depth", self.path_of(self.depth), f"dtype {depth.dtype} is not real")
        depth = depth.astype(np.float32, copy=False)
        finite = np.isfinite(depth)
        if not finite.all():
            raise self._fail(
                "depth",
                self.path_of(self.depth),
                f"{int((~finite).sum())} non-finite values (0 marks unknown depth)",
            )
        if depth.size and depth.min() < 0:
            raise self._fail(
                "depth", self.path_of(self.depth), f"negative values (min {depth.min():g})"
            )
        return depth

    def load_mask(self) -> np.ndarray | None:
        """Instance mask, int32 (H, W) of object ids, 0 for none; None if the frame has none.
        FrameFileError for a wrong shape or (when ``object_ids`` is known) unknown ids."""
        mask = self._read("mask")
        if mask is None:
            return None
        self._check_shape("mask", mask, (self.height, self.width))
        if not np.issubdtype(mask.dtype, np.integer) and not np.issubdtype(mask.dtype, np.bool_):
            raise self._fail("mask", self.path_of(self.mask), f"dtype {mask.dtype} is not integer")
        if mask.size and (mask.min() < 0 or mask.max() > np.iinfo(np.int32).max):
            raise self._fail("mask", self.path_of(self.mask), "ids outside 0..2**31-1")
        mask = mask.astype(np.int32, copy=False)
        if self.object_ids is not None:
            unknown = unknown_mask_ids(mask, self.object_ids)
            if unknown:
                raise self._fail(
                    "mask", self.path_of(self.mask), f"ids {unknown} are not objects of the scene"
                )
        return mask

    # -- geometry ---------------------------------------------------------------------------
    @property
    def world_to_cam(self) -> np.ndarray:
        """4x4 transform from world points to this camera's frame (closed-form rigid inverse)."""
        R, t = self.cam_to_world[:3, :3], self.cam_to_world[:3, 3]
        T = np.eye(4)
        T[:3, :3] = R.T
        T[:3, 3] = -R.T @ t
        return T


@dataclass
class Scene:
    """A 3D scene: objects in a gravity-aligned, Z-up world frame and the frames that see them.

    ``source`` names the dataset (e.g. ``"synthetic"``, ``"scannet"``), ``split`` its split.
    """

    id: str
    source: str
    split: str = "train"
    frames: list[Frame] = field(default_factory=list)
    objects: list[Object3D] = field(default_factory=list)
    room: Room | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    root: Path | None = None

    def frame(self, frame_id: str) -> Frame:
        """The frame with this id (KeyError naming the scene otherwise)."""
        for f in self.frames:
            if f.id == frame_id:
                return f
        raise KeyError(f"scene {self.id!r} has no frame {frame_id!r}")

    def object(self, object_id: int) -> Object3D:
        """The object with this id (KeyError naming the scene otherwise)."""
        for o in self.objects:
            if o.id == object_id:
                return o
        raise KeyError(f"scene {self.id!r} has no object {object_id!r}")

    @property
    def boxes(self) -> np.ndarray:
        """All object boxes in the world frame, (N, 9)."""
        if not self.objects:
            return np.zeros((0, 9))
        return as_boxes(np.stack([o.box for o in self.objects]))

    @property
    def labels(self) -> list[str]:
        """Object labels, in the order of :attr:`objects`."""
        return [o.label for o in self.objects]

    def boxes_in_camera(self, frame: Frame) -> np.ndarray:
        """All object boxes (N, 9) in ``frame``'s camera frame (X right, Y down, Z forward) and
        the VST box convention (local X front, Y vertical, Z lateral): the boxes a detection
        answer states. Angles are re-derived; the corners are the world corners moved."""
        if not self.objects:
            return np.zeros((0, 9))
        return world_boxes_to_camera(self.boxes, frame.world_to_cam)

    def categories(self) -> dict[str, int]:
        """Object count per label, sorted by label."""
        counts: dict[str, int] = {}
        for o in self.objects:
            counts[o.label] = counts.get(o.label, 0) + 1
        return dict(sorted(counts.items()))


def unknown_mask_ids(mask: np.ndarray, object_ids: frozenset[int] | set[int]) -> list[int]:
    """Sorted ids (at most 10) in ``mask`` other than 0 and ``object_ids``: one pass through a
    lookup table over the ids up to the mask's maximum (a sort of the values when that maximum
    is too large for a table), then a sort of the offending pixels only."""
    if not mask.size:
        return []
    lo, hi = int(mask.min()), int(mask.max())
    if lo >= 0 and hi <= _LUT_LIMIT:
        known = np.zeros(hi + 1, dtype=bool)
        known[0] = True
        known[[i for i in object_ids if 0 < i <= hi]] = True
        bad = ~known[mask]
        return np.unique(mask[bad])[:10].tolist() if bad.any() else []
    values = np.unique(mask)
    return [v for v in values.tolist() if v != 0 and v not in object_ids][:10]


_LUT_LIMIT = 1 << 20
"""Largest mask id :func:`unknown_mask_ids` checks through a lookup table (1 MB)."""
