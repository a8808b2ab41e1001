"""Frame pairs and object references for the multi-image relation tasks (``mi_object_object``,
``mi_camera_object``, ``mi_camera_camera``).

:func:`scene_pairs` lists a scene's ordered frame pairs (``frame_pairs``: sharing objects, each
with objects of its own) as :class:`Pair` records holding what the tasks filter on: the
askable objects, which objects each frame shows at all (any mask pixel), world centres.

Objects are referred to across the two images (:data:`XREFER_MODES`), each in an image where it
is visible enough (the image index is part of the mention, 1-based):

* ``name``: ``the sink`` when no other object of that label is visible in either image
  (:meth:`MultiView.label_is_unique`); objects whose label repeats fall back to
  ``named_box_mark`` in the same question (the mode is recorded per reference);
* ``box_text``: ``the object at [12, 40, 88, 130] in image 2`` (model-image pixels);
* ``point_text``: ``the object at point (50, 61) in image 2``;
* ``box_mark`` / ``point_mark``: a mark drawn with a letter tag: ``box-A in image 2``;
* ``named_box_mark``: ``the chair in the red box in image 2``;
* ``named_point_mark``: ``the chair at the red point in image 1``.

Mark colours are distinct over the whole question, and tag letters run A, B, C... over the
question's tagged references in order. Coordinates are pixels of the stored (Qwen2.5-VL sized)
images, as in the single-image tasks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.engine.choices import LETTERS
from vst.engine.context import EngineContext
from vst.engine.multiview import MultiView, frame_pairs
from vst.engine.registry import Task, TaskNeeds
from vst.engine.tasks.single_image._refer import (
    REFER_MODES,
    box_text,
    frame_objects,
    point_text,
)
from vst.engine.visual_prompts import BoxMark, PointMark, draw_marks, pick_colors
from vst.scenes.model import Scene

XREFER_MODES: tuple[str, ...] = REFER_MODES
"""Ways of referring to an object across two images: the single-image modes (see the module
docstring for how each reads with two images)."""

NAME_FALLBACK = "named_box_mark"
"""Mode used in a ``name`` question for an object whose label is not unique."""


@dataclass
class Pair:
    """An ordered frame pair (``mv.frames[0]`` is image 1). ``objects``: askable objects (visible
    enough in at least one frame), sorted; ``seen[k]``: objects with any mask pixel in frame
    ``k``; ``centres``: world box centres (n, 3) aligned with ``objects``."""

    mv: MultiView
    objects: list[int]
    seen: tuple[frozenset[int], frozenset[int]]
    centres: np.ndarray

    def seen_mask(self, k: int) -> np.ndarray:
        """Bool (n,) aligned with ``objects``: shown (any pixel) in frame ``k``."""
        return np.array([o in self.seen[k] for o in self.objects], dtype=bool)


def scene_pairs(
    ctx: EngineContext, scene: Scene, min_shared: int = 1, min_unique: int = 1
) -> list[Pair]:
    """The scene's ordered frame pairs with instance masks that share at least ``min_shared``
    askable objects and each show ``min_unique`` the other does not (sorted by frame ids)."""
    frames = [f for f in scene.frames if f.mask is not None]
    out = []
    for f1, f2 in frame_pairs(ctx, scene, min_shared, min_unique, frames):
        mv = MultiView(scene, [f1, f2], ctx)
        seen = tuple(frozenset(o for o, c in v.pixel_counts.items() if c > 0) for v in mv.views)
        objs = mv.visible_any
        centres = (
            np.array([scene.object(o).box[:3] for o in objs], dtype=float)
            if objs
            else np.zeros((0, 3))
        )
        out.append(Pair(mv, objs, (seen[0], seen[1]), centres))
    return out


@dataclass(frozen=True)
class XRef:
    """How one object is referred to: ``image`` is the 0-based index of the image holding its
    mark or coordinates (None for ``name``); ``box``/``point`` are model-image pixels."""

    object_id: int
    label: str
    mode: str
    mention: str
    image: int | None = None
    color: str | None = None
    tag: str | None = None
    box: tuple[int, int, int, int] | None = None
    point: tuple[int, int] | None = None

    @property
    def mark(self) -> BoxMark | PointMark | None:
        if self.mode in ("box_mark", "named_box_mark"):
            return BoxMark(self.box, self.color, self.tag)
        if self.mode in ("point_mark", "named_point_mark"):
            return PointMark(self.point, self.color, self.tag)
        return None

    def to_meta(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.object_id, "mode": self.mode, "mention": self.mention}
        for key in ("image", "color", "tag", "box", "point"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


def label_is_unique(mv: MultiView, object_id: int) -> bool:
    """:meth:`MultiView.label_is_unique`, cached on the multi-view (asked once per object)."""
    cache = mv.__dict__.setdefault("_compass_unique", {})
    if object_id not in cache:
        cache[object_id] = mv.label_is_unique(object_id)
    return cache[object_id]


def available_modes(mv: MultiView, object_ids: Sequence[int]) -> list[str]:
    """Modes usable for ``object_ids``: ``name`` needs at least one object whose label is unique
    over both images (the others fall back to :data:`NAME_FALLBACK`)."""
    nameable = any(label_is_unique(mv, o) for o in object_ids)
    return [m for m in XREFER_MODES if m != "name" or nameable]


def refer_across(
    mv: MultiView, object_ids: Sequence[int], mode: str, rng: np.random.Generator
) -> list[XRef]:
    """References to ``object_ids`` (in order) with ``mode``; each object is placed in one of
    the images where it is visible enough, chosen with ``rng``."""
    if mode not in XREFER_MODES:
        raise ValueError(f"unknown refer mode {mode!r}; choose from {', '.join(XREFER_MODES)}")
    modes = [
        ("name" if label_is_unique(mv, o) else NAME_FALLBACK) if mode == "name" else mode
        for o in object_ids
    ]
    n_marks = sum(
        m in ("box_mark", "point_mark", "named_box_mark", "named_point_mark") for m in modes
    )
    colors = iter(pick_colors(rng, n_marks)) if n_marks else iter(())
    tags = iter(LETTERS)
    refs = []
    for oid, m in zip(object_ids, modes, strict=True):
        label = mv.scene.object(oid).label
        if m == "name":
            refs.append(XRef(int(oid), label, m, f"the {label}"))
            continue
        where = mv.seen_in(oid)
        k = where[int(rng.integers(len(where)))]
        objs = frame_objects(mv.views[k])
        img = f"image {k + 1}"
        if m == "box_text":
            box = objs.model_box(oid)
            refs.append(
                XRef(int(oid), label, m, f"the object at {box_text(box)} in {img}", k, box=box)
            )
        elif m == "point_text":
            pt = objs.model_point(oid)
            refs.append(
                XRef(
                    int(oid),
                    label,
                    m,
                    f"the object at point {point_text(pt)} in {img}",
                    k,
                    point=pt,
                )
            )
        elif m in ("box_mark", "point_mark"):
            tag = next(tags)
            kind = "box" if m == "box_mark" else "point"
            box = objs.model_box(oid) if kind == "box" else None
            pt = objs.model_point(oid) if kind == "point" else None
            refs.append(
                XRef(int(oid), label, m, f"{kind}-{tag} in {img}", k, next(colors), tag, box, pt)
            )
        else:
            color = next(colors)
            if m == "named_box_mark":
                box = objs.model_box(oid)
                mention = f"the {label} in the {color} box in {img}"
                refs.append(XRef(int(oid), label, m, mention, k, color, box=box))
            else:
                pt = objs.model_point(oid)
                mention = f"the {label} at the {color} point in {img}"
                refs.append(XRef(int(oid), label, m, mention, k, color, point=pt))
    return refs


def render_pair(mv: MultiView, refs: Sequence[XRef]) -> list[Image.Image]:
    """The two model images with the marks of ``refs`` drawn (fresh images where something is
    drawn, the frames' shared model images elsewhere)."""
    out = []
    for k, view in enumerate(mv.views[:2]):
        marks = [r.mark for r in refs if r.image == k and r.mark is not None]
        shared = view.shared_model_image()
        out.append(draw_marks(shared, marks) if marks else shared)
    return out


class CompassTask(Task):
    """Shared set-up of the floor-direction tasks (``mi_object_object``, ``mi_camera_object``,
    ``mi_camera_camera``): their common settings, and the per-scene enumeration (frame pairs,
    then the subclass's :meth:`candidates` tables), memoised once per scene and context."""

    scenario = "multi_image"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    MARGIN_DEG: ClassVar[float] = 10.0
    """Angles closer than this to a sector boundary (22.5 + 45 k degrees) are skipped."""
    N_OPTIONS: ClassVar[int] = 4
    """Options of a direction ``mcq`` (the answer and 3 other directions)."""
    STYLES: ClassVar[tuple[str, ...]] = ("mcq", "exact")
    MIN_SHARED: ClassVar[int] = 1
    MIN_UNIQUE: ClassVar[int] = 1
    ATTEMPTS_PER_SAMPLE: ClassVar[int] = 5
    """Give up after this many draws per requested sample (duplicates of small scenes)."""

    def candidates(self, pairs: Sequence[Pair]) -> Any:
        """Every askable question of the scene's pairs, as tables (defined per task)."""
        raise NotImplementedError

    def scene_tables(self, scene: Scene, ctx: EngineContext) -> tuple[list[Pair], Any]:
        """``(pairs, candidates(pairs))`` of ``scene`` (deterministic: computed once per scene
        and context)."""
        pairs = ctx.memo(
            (self.name, "pairs", scene.id),
            lambda: scene_pairs(ctx, scene, self.MIN_SHARED, self.MIN_UNIQUE),
        )
        return pairs, ctx.memo((self.name, "candidates", scene.id), lambda: self.candidates(pairs))
