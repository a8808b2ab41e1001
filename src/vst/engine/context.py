"""What tasks share while generating: the run's settings and per-frame views with caches.

:class:`FrameView` answers the questions every single-image task asks of a frame — which
objects are visible enough to ask about, their boxes in the camera frame (VST convention),
their 2D boxes and a pixel on each from the instance mask, their depth — and gives the image
as the model will see it, with the map from frame pixels to model pixels.

Pixel convention: OpenCV (centre of pixel row r, column c at u = c, v = r). 2D boxes are
``[x1, y1, x2, y2]`` inclusive pixel bounds; on model images they are rounded to integers, as
Qwen2.5-VL grounds in absolute pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TypeVar

import numpy as np
from PIL import Image

from vst.engine import visibility as vis
from vst.engine.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, PATCH_FACTOR, smart_resize
from vst.geometry.cameras import DEFAULT_UNIFIED_FOCAL
from vst.scenes.model import Frame, Object3D, Scene

T = TypeVar("T")


def _clamp(value: float, hi: int) -> int:
    """``value`` as an int in ``[0, hi]`` (scalar: cheaper than ``np.clip`` per call)."""
    return min(max(int(value), 0), hi)


@dataclass(frozen=True)
class EngineSettings:
    """Settings every task reads. ``min_object_pixels``: an object must cover at least this many
    mask pixels in a frame (at the frame's own resolution) to be asked about;
    ``max_truncation``: and have at most this fraction of its projected box outside the image;
    ``min_visible_fraction``: and show at least this fraction of its own silhouette (the rest
    hidden behind other surfaces; :meth:`FrameView.visible_fraction`).
    ``min_floor_coverage``: a video clip must show at least this fraction of the room's floor
    for the room's area to be asked (:mod:`vst.scenes.floor_coverage`).
    ``answer_style``: how multiple-choice replies are written (:data:`vst.engine.choices.
    ANSWER_STYLES`: ``"paper"`` = ``"B. northwest"``, ``"letter"`` = ``"B"``)."""

    unified_focal: float = DEFAULT_UNIFIED_FOCAL
    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    image_factor: int = PATCH_FACTOR
    min_object_pixels: int = 400
    max_truncation: float = 0.5
    min_visible_fraction: float = 0.5
    min_floor_coverage: float = 0.8
    answer_style: str = "paper"


@dataclass
class EngineContext:
    """Run settings plus a per-scene cache of frame views (call :meth:`reset` between scenes)."""

    settings: EngineSettings = field(default_factory=EngineSettings)
    _views: dict[tuple[str, str], FrameView] = field(default_factory=dict, repr=False)
    _memo: dict[tuple, object] = field(default_factory=dict, repr=False)

    def view(self, scene: Scene, frame: Frame) -> FrameView:
        """The (cached) view of ``frame`` of ``scene``."""
        key = (scene.id, frame.id)
        if key not in self._views:
            self._views[key] = FrameView(scene, frame, self.settings)
        return self._views[key]

    def memo(self, key: tuple, factory: Callable[[], T]) -> T:
        """``factory()`` computed once per key until :meth:`reset` — for per-scene work a task
        repeats on every call (e.g. enumerating frame pairs). Keys should start with the task
        name and the scene id."""
        if key not in self._memo:
            self._memo[key] = factory()
        return self._memo[key]  # type: ignore[return-value]

    def reset(self) -> None:
        """Drop cached views (and their pixels) and memos: call when moving to the next
        scene."""
        self._views.clear()
        self._memo.clear()


def visible_fractions(views: Iterable[FrameView], object_ids: Iterable[int]) -> dict[str, float]:
    """``meta["visible_fraction"]`` of a sample showing several frames: ``{str(id): the highest
    visible fraction among ``views``, rounded to 3 decimals}``."""
    ids = [int(o) for o in object_ids]
    best = dict.fromkeys(ids, 0.0)
    for view in views:
        for o, value in view.visible_fractions(ids).items():
            best[o] = max(best[o], value)
    return {str(o): round(best[o], 3) for o in ids}


class FrameView:
    """One frame of one scene as single-image tasks see it (lazy, cached)."""

    def __init__(self, scene: Scene, frame: Frame, settings: EngineSettings):
        self.scene = scene
        self.frame = frame
        self.settings = settings
        self._objects = {o.id: o for o in scene.objects}
        self._index = {o.id: i for i, o in enumerate(scene.objects)}

    # -- pixels --------------------------------------------------------------------------
    @cached_property
    def image(self) -> np.ndarray:
        """RGB uint8 (H, W, 3) at the frame's resolution."""
        return self.frame.load_image()

    @cached_property
    def depth(self) -> np.ndarray | None:
        """Metric z-depth float32 (H, W), 0 = unknown; None if the frame has none."""
        return self.frame.load_depth()

    @cached_property
    def mask(self) -> np.ndarray | None:
        """Instance mask int32 (H, W) of object ids; None if the frame has none."""
        return self.frame.load_mask()

    # -- objects -------------------------------------------------------------------------
    def object(self, object_id: int) -> Object3D:
        return self._objects[object_id]

    @cached_property
    def boxes_cam(self) -> np.ndarray:
        """All scene objects' boxes (N, 9) in this camera's frame, VST convention (local Y
        vertical), aligned with ``scene.objects``."""
        return self.scene.boxes_in_camera(self.frame)

    def box_cam(self, object_id: int) -> np.ndarray:
        """One object's (9,) box in this camera's frame."""
        return self.boxes_cam[self._index[object_id]]

    @cached_property
    def pixel_counts(self) -> dict[int, int]:
        """Visible mask pixels per object (from the frame's annotation, else from the mask)."""
        if self.frame.visible_pixels:
            return dict(self.frame.visible_pixels)
        if self.mask is None:
            return {}
        ids, counts = np.unique(self.mask[self.mask > 0], return_counts=True)
        return {int(i): int(c) for i, c in zip(ids, counts, strict=True)}

    @cached_property
    def visible_ids(self) -> list[int]:
        """Objects visible enough to ask about: enough mask pixels, not too truncated, centre in
        front of the camera, enough of the silhouette not occluded. Sorted by id."""
        s = self.settings
        out = []
        for oid, count in sorted(self.pixel_counts.items()):
            if oid not in self._objects or count < s.min_object_pixels:
                continue
            if self.frame.truncation.get(oid, 0.0) > s.max_truncation:
                continue
            if self.box_cam(oid)[2] <= 0:
                continue
            out.append(oid)
        fractions = self.visible_fractions(out)
        return [o for o in out if fractions[o] >= s.min_visible_fraction]

    def visible_fraction(self, object_id: int) -> float:
        """Share of the object's own in-image silhouette that the frame shows, in [0, 1] (0
        without visible pixels): visible mask pixels / (visible + occluded pixels of its
        projected box). Definition and fallbacks (no depth, no mask): :mod:`vst.engine.visibility`.
        Cached per object."""
        return self.visible_fractions([object_id])[int(object_id)]

    def visible_fractions(self, object_ids: Iterable[int]) -> dict[int, float]:
        """:meth:`visible_fraction` of several objects (computed together, one vectorised pass
        for those not cached yet)."""
        cache: dict[int, float] = self.__dict__.setdefault("_visible_fractions", {})
        ids = [int(o) for o in object_ids]
        todo = sorted({o for o in ids if o not in cache})
        if todo:
            cache.update(self._compute_fractions(todo))
        return {o: cache[o] for o in ids}

    @cached_property
    def _box_frames(self) -> vis.BoxFrames:
        """Every scene object's box in this camera (for :mod:`vst.engine.visibility`)."""
        return vis.BoxFrames.of(self.scene.boxes.reshape(-1, 9), self.frame.world_to_cam)

    def _compute_fractions(self, ids: list[int]) -> dict[int, float]:
        """Visible fractions of ``ids`` (fallback order: :mod:`vst.engine.visibility`)."""
        frame = self.frame
        out = {o: 0.0 for o in ids if self.pixel_counts.get(o, 0) <= 0 or o not in self._objects}
        ids = [o for o in ids if o not in out]
        if self.depth is None and len(self.scene.frames) == 1:  # Omni3D's annotation
            for o in ids:
                value = self._objects[o].attributes.get("visibility")
                if isinstance(value, int | float) and 0 <= value <= 1:
                    out[o] = float(value)
            ids = [o for o in ids if o not in out]
        if not ids:
            return out
        for kind, pixels in (("depth", self.depth), ("mask", self.mask)):
            if pixels is not None and pixels.shape[:2] != (frame.height, frame.width):
                raise ValueError(
                    f"scene {self.scene.id!r} frame {frame.id!r}: {kind} is "
                    f"{pixels.shape[1]}x{pixels.shape[0]}, the frame {frame.width}x{frame.height}"
                )
        values = vis.fractions(
            self._box_frames,
            [self._index[o] for o in ids],
            ids,
            [self.pixel_counts[o] for o in ids],
            frame.K,
            (frame.width, frame.height),
            self.depth,
            self.mask,
            self._index,
        )
        return dict(zip(ids, values, strict=True)) | out

    def label_is_unique(self, object_id: int) -> bool:
        """True if no other object with the same label is visible at all in this frame (any
        pixel count), so naming it alone refers to it unambiguously."""
        label = self._objects[object_id].label
        return not any(
            self._objects[o].label == label
            for o, c in self.pixel_counts.items()
            if o != object_id and c > 0 and o in self._objects
        )

    @cached_property
    def _bboxes2d(self) -> dict[int, tuple[int, int, int, int]]:
        """Tight 2D boxes of every object in the mask, from one pass over it."""
        from scipy.ndimage import find_objects

        mask = self._require_mask()
        out = {}
        for index, slc in enumerate(find_objects(np.maximum(mask, 0))):
            if slc is not None:
                rows, cols = slc
                out[index + 1] = (cols.start, rows.start, cols.stop - 1, rows.stop - 1)
        return out

    def bbox2d(self, object_id: int) -> tuple[int, int, int, int]:
        """Tight 2D box ``(x1, y1, x2, y2)`` of the object's mask pixels (frame pixels)."""
        box = self._bboxes2d.get(int(object_id))
        if box is None:
            raise ValueError(f"object {object_id} has no mask pixels in frame {self.frame.id!r}")
        return box

    INNER_PIXEL_MAX_CELLS = 4096
    """Masks larger than this many pixels are strided before the distance transform (the
    chosen pixel is still a mask pixel; it is the deepest one on the strided grid)."""

    def inner_pixel(self, object_id: int) -> tuple[int, int]:
        """``(u, v)`` of a mask pixel of the object, the one deepest inside the mask (farthest
        from its border), so a point drawn there lands on the object. Cached per object."""
        cache = self.__dict__.setdefault("_inner_pixels", {})
        if object_id not in cache:
            from scipy.ndimage import distance_transform_edt

            x1, y1, x2, y2 = self.bbox2d(object_id)
            area = (x2 - x1 + 1) * (y2 - y1 + 1)
            step = max(1, int(np.ceil(np.sqrt(area / self.INNER_PIXEL_MAX_CELLS))))
            crop = self._require_mask()[y1 : y2 + 1 : step, x1 : x2 + 1 : step] == object_id
            dist = distance_transform_edt(np.pad(crop, 1))
            r, c = np.unravel_index(int(np.argmax(dist)), dist.shape)
            cache[object_id] = (int(x1 + (c - 1) * step), int(y1 + (r - 1) * step))
        return cache[object_id]

    def object_depth(self, object_id: int) -> float:
        """Median z-depth (m) of the object's visible pixels; the box centre's z if the frame
        has no depth map. Cached per object."""
        cache = self.__dict__.setdefault("_object_depths", {})
        if object_id not in cache:
            value = float(self.box_cam(object_id)[2])
            if self.depth is not None and self.mask is not None:
                box = self._bboxes2d.get(int(object_id))
                if box is not None:
                    x1, y1, x2, y2 = box
                    d = self.depth[y1 : y2 + 1, x1 : x2 + 1]
                    vals = d[(self.mask[y1 : y2 + 1, x1 : x2 + 1] == object_id) & (d > 0)]
                    if len(vals):
                        value = float(np.median(vals))
            cache[object_id] = value
        return cache[object_id]

    def _require_mask(self) -> np.ndarray:
        if self.mask is None:
            raise ValueError(f"frame {self.frame.id!r} of scene {self.scene.id!r} has no mask")
        return self.mask

    # -- the image the model sees ----------------------------------------------------------
    @cached_property
    def model_size(self) -> tuple[int, int]:
        """``(width, height)`` of the image as stored in samples (Qwen2.5-VL smart size)."""
        s = self.settings
        h, w = smart_resize(
            self.frame.height, self.frame.width, s.image_factor, s.min_pixels, s.max_pixels
        )
        return w, h

    @property
    def model_scale(self) -> tuple[float, float]:
        """``(sx, sy)``: model pixels per frame pixel along x and y."""
        w, h = self.model_size
        return w / self.frame.width, h / self.frame.height

    @cached_property
    def _model_image(self) -> Image.Image:
        img = Image.fromarray(self.image, "RGB")
        if img.size != self.model_size:
            img = img.resize(self.model_size, Image.Resampling.BICUBIC)
        return img

    def model_image(self) -> Image.Image:
        """A fresh copy of the RGB image at :attr:`model_size` (bicubic, resized once per
        frame), safe to draw on."""
        return self._model_image.copy()

    def shared_model_image(self) -> Image.Image:
        """The frame's model image itself, shared by every sample that shows it unmarked. Do
        not draw on it (``draw_marks`` copies by default)."""
        return self._model_image

    def to_model_xy(self, u: float, v: float) -> tuple[int, int]:
        """Frame pixel ``(u, v)`` -> integer model-image pixel (pixel centres map to centres)."""
        sx, sy = self.model_scale
        w, h = self.model_size
        x = _clamp(round((u + 0.5) * sx - 0.5), w - 1)
        y = _clamp(round((v + 0.5) * sy - 0.5), h - 1)
        return x, y

    def model_bbox2d(self, object_id: int) -> tuple[int, int, int, int]:
        """:meth:`bbox2d` in model-image pixels (outer edges scaled, then rounded)."""
        x1, y1, x2, y2 = self.bbox2d(object_id)
        sx, sy = self.model_scale
        w, h = self.model_size
        return (
            _clamp(round(x1 * sx), w - 1),
            _clamp(round(y1 * sy), h - 1),
            _clamp(round((x2 + 1) * sx) - 1, w - 1),
            _clamp(round((y2 + 1) * sy) - 1, h - 1),
        )
