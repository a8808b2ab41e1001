"""Referring to the objects of one frame in question text (shared by single-image tasks).

A question can point at an object in seven ways (:data:`REFER_MODES`):

* ``name``: handle ``sink``, mention ``the sink``, nothing drawn.
* ``box_text``: handle ``[12, 40, 88, 130]``, mention ``the object in [12, 40, 88, 130]``.
* ``point_text``: handle ``(50, 61)``, mention ``the object at (50, 61)``.
* ``box_mark``: a box drawn with the tag ``A``; handle and mention ``box-A``.
* ``point_mark``: a point drawn with the tag ``A``; handle and mention ``point-A``.
* ``named_box_mark``: a box drawn without a tag; handle ``window-1`` (or ``window`` when the
  label is not repeated among the referred objects), mention ``the window-1 (orange box)``.
* ``named_point_mark``: the same with a point: ``the pillow (purple point)``.

* ``name`` is only allowed when no other object of that label is visible in the frame
  (:meth:`FrameView.label_is_unique`); :func:`available_modes` enforces it.
* Coordinates are absolute pixels of the image stored in the sample (the Qwen2.5-VL sized
  ``FrameView.model_image()``), integers, boxes ``[x1, y1, x2, y2]`` inclusive (the tight box of
  the object's mask), points ``(x, y)`` at :meth:`FrameView.inner_pixel` (the mask pixel
  farthest from the mask border, so the point lies on the object).
* Tagged marks (``box_mark``/``point_mark``) carry the letters A, B, C... in the order the
  objects are given, so shuffle the objects first. Named marks add ``-1``, ``-2``... to labels
  that repeat among the referred objects; their colour tells them apart in the text.
* Handles never collide: letters appear only in tagged handles (``box-A``, ``point-B``), named
  handles carry digits (``box-1``). A tagged handle's word is ``box`` / ``point`` unless a
  referred object's category contains that word (a "box", a "storage box"): then the marks
  of that sample are ``rectangle-A`` / ``dot-A`` (:func:`mark_word`), so "the box (red
  rectangle-A)" never reads as two boxes. Questions with lettered options never use tagged
  marks (:mod:`vst.engine.choices`).
* Every mark gets a distinct :data:`~vst.engine.visual_prompts.PALETTE` colour from ``rng``.

Typical use::

    modes = available_modes(view, ids)           # e.g. without "name" for a repeated label
    refs = refer(view, ids, modes[int(rng.integers(len(modes)))], rng)
    image = render(view, refs)                   # model image with the refs' marks drawn
    text = f"Which is nearer, {refs[0].mention} or {refs[1].mention}?"
    meta["refs"] = [r.to_meta() for r in refs]   # derive_answer reads handles from here

Also here: :func:`frame_objects` (per-view cache of object depths, model boxes, mask-centre
points and the model image), :func:`ground_truth_view` (a cached view for ``derive_answer``),
:func:`separated` / :func:`all_separated` (the ambiguity margin), :func:`box_text`,
:func:`point_text`, :func:`join_items`.
"""

from __future__ import annotations

import weakref
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from vst.engine.choices import LETTERS
from vst.engine.context import EngineSettings, FrameView
from vst.engine.visual_prompts import BoxMark, PointMark, draw_marks, pick_colors
from vst.scenes.model import Scene

REFER_MODES: tuple[str, ...] = (
    "name",
    "box_text",
    "point_text",
    "box_mark",
    "point_mark",
    "named_box_mark",
    "named_point_mark",
)
"""All ways of referring to an object."""

TEXT_MODES: tuple[str, ...] = ("name", "box_text", "point_text")
"""Modes that only use the question text (no marks drawn)."""

MARK_MODES: tuple[str, ...] = ("box_mark", "point_mark", "named_box_mark", "named_point_mark")
"""Modes that draw a mark on the image."""

COORD_MODES: tuple[str, ...] = ("box_text", "point_text")
"""Modes whose handle is a coordinate string (awkward as a one-word answer)."""

TAGGED_MODES: tuple[str, ...] = ("box_mark", "point_mark")
"""Modes whose handle says nothing about the object's category (``box-A``)."""


MARK_WORDS: dict[str, tuple[str, str]] = {
    "box_mark": ("box", "rectangle"),
    "point_mark": ("point", "dot"),
}
"""Handle words of tagged marks: the usual one, and the one used when a referred object's
category contains the usual word (:func:`mark_word`)."""


def mark_word(mode: str, labels: Sequence[str]) -> str:
    """The handle word of tagged ``mode`` (``box_mark`` / ``point_mark``) for a question about
    objects labelled ``labels``: ``box`` / ``point``, or ``rectangle`` / ``dot`` when a label
    contains that word (``box``, ``pizza box``)."""
    usual, other = MARK_WORDS[mode]
    words = {w for label in labels for w in label.lower().replace("-", " ").split()}
    return other if usual in words else usual


def box_text(box: Sequence[int]) -> str:
    """``[x1, y1, x2, y2]`` as Qwen2.5-VL writes 2D boxes (integers, comma + space)."""
    return "[" + ", ".join(str(int(v)) for v in box) + "]"


def point_text(xy: Sequence[int]) -> str:
    """``(x, y)`` (integers)."""
    return f"({int(xy[0])}, {int(xy[1])})"


def join_items(items: Sequence[str], conj: str = "and") -> str:
    """``"a"``, ``"a and b"``, ``"a, b and c"``."""
    items = list(items)
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {conj} " + items[-1]


def separated(a: float, b: float, rel: float, abs_min: float) -> bool:
    """True when ``a`` and ``b`` differ by at least ``abs_min`` (absolute, e.g. metres) and by
    at least ``rel`` of the larger magnitude: the margin every comparison task skips below."""
    diff = abs(a - b)
    return diff >= abs_min and diff >= rel * max(abs(a), abs(b))


def all_separated(values: Sequence[float], rel: float, abs_min: float) -> bool:
    """True when every pair of adjacent sorted ``values`` is :func:`separated` (a strict order
    that cannot be misread)."""
    v = sorted(values)
    return all(separated(v[i], v[i + 1], rel, abs_min) for i in range(len(v) - 1))


class FrameObjects:
    """Per-frame cache of what referring needs, computed lazily once per object.

    Get it with :func:`frame_objects` (one per :class:`FrameView`). Frame-pixel values come from
    the view; ``model_*`` values are pixels of ``view.model_image()``.
    """

    def __init__(self, view: FrameView):
        self._view = weakref.ref(view)
        self._box: dict[int, tuple[int, int, int, int]] = {}

    @property
    def view(self) -> FrameView:
        view = self._view()
        if view is None:  # pragma: no cover - the cache dies with its view
            raise RuntimeError("the FrameView of this cache is gone")
        return view

    def depth(self, object_id: int) -> float:
        """:meth:`FrameView.object_depth` (median visible z-depth, m; cached by the view)."""
        return self.view.object_depth(object_id)

    def model_box(self, object_id: int) -> tuple[int, int, int, int]:
        """:meth:`FrameView.model_bbox2d`, cached."""
        if object_id not in self._box:
            self._box[object_id] = self.view.model_bbox2d(object_id)
        return self._box[object_id]

    def pixel(self, object_id: int) -> tuple[int, int]:
        """:meth:`FrameView.inner_pixel` ``(u, v)`` in frame pixels (cached by the view)."""
        return self.view.inner_pixel(object_id)

    def model_point(self, object_id: int) -> tuple[int, int]:
        """:meth:`pixel` mapped to model-image pixels."""
        return self.view.to_model_xy(*self.pixel(object_id))

    def image(self) -> Image.Image:
        """A fresh copy of the model image (resized once per frame), safe to draw on."""
        return self.view.model_image()


_GT_VIEWS: OrderedDict[tuple[int, str], tuple[Scene, FrameView]] = OrderedDict()
_GT_VIEWS_MAX = 8


def ground_truth_view(scene: Scene, frame_id: str) -> FrameView:
    """A :class:`FrameView` (default settings) of ``scene``'s frame ``frame_id``, for
    ``derive_answer``: the last few are kept, so checking many samples of one frame reads its
    depth map and mask once."""
    key = (id(scene), frame_id)
    hit = _GT_VIEWS.get(key)
    if hit is not None and hit[0] is scene:
        _GT_VIEWS.move_to_end(key)
        return hit[1]
    view = FrameView(scene, scene.frame(frame_id), EngineSettings())
    _GT_VIEWS[key] = (scene, view)  # holding the scene keeps id(scene) from being reused
    while len(_GT_VIEWS) > _GT_VIEWS_MAX:
        _GT_VIEWS.popitem(last=False)
    return view


_CACHES: weakref.WeakKeyDictionary[FrameView, FrameObjects] = weakref.WeakKeyDictionary()


def frame_objects(view: FrameView) -> FrameObjects:
    """The :class:`FrameObjects` cache of ``view`` (created on first use, freed with the view)."""
    cache = _CACHES.get(view)
    if cache is None:
        cache = _CACHES[view] = FrameObjects(view)
    return cache


@dataclass(frozen=True)
class Ref:
    """How one object is referred to. ``handle``: the short token an answer uses;
    ``mention``: the noun phrase a question uses; ``mark``: what to draw (None for text modes);
    ``box``/``point``: model-image pixels stated or drawn (None when the mode uses neither)."""

    object_id: int
    label: str
    mode: str
    handle: str
    mention: str
    color: str | None = None
    box: tuple[int, int, int, int] | None = None
    point: tuple[int, int] | None = None
    mark: BoxMark | PointMark | None = None

    @property
    def named_handle(self) -> str:
        """The handle, followed by the category for tagged marks: ``box-A (chair)``."""
        return f"{self.handle} ({self.label})" if self.mode in TAGGED_MODES else self.handle

    def to_meta(self) -> dict[str, Any]:
        """JSON-able record for ``Sample.meta``."""
        out: dict[str, Any] = {"id": self.object_id, "mode": self.mode, "handle": self.handle}
        if self.color is not None:
            out["color"] = self.color
        if self.box is not None:
            out["box"] = list(self.box)
        if self.point is not None:
            out["point"] = list(self.point)
        return out


def available_modes(
    view: FrameView, object_ids: Sequence[int], modes: Sequence[str] = REFER_MODES
) -> list[str]:
    """The ``modes`` that refer to every object of ``object_ids`` unambiguously: ``name`` only
    when each label is unique among the objects visible in the frame (and within the set)."""
    out = []
    for mode in modes:
        if mode not in REFER_MODES:
            raise ValueError(f"unknown refer mode {mode!r}; choose from {', '.join(REFER_MODES)}")
        if mode == "name":
            labels = [view.object(o).label for o in object_ids]
            if len(set(labels)) < len(labels) or not all(
                view.label_is_unique(o) for o in object_ids
            ):
                continue
        out.append(mode)
    return out


def refer(
    view: FrameView,
    object_ids: Sequence[int],
    mode: str,
    rng: np.random.Generator,
) -> list[Ref]:
    """Refer to ``object_ids`` (in this order) of ``view`` with ``mode``.

    Colours for marks are drawn from ``rng`` (distinct per object); tags and ``-1`` suffixes
    follow the given order. Raises ValueError for ``name`` when a label is ambiguous.
    """
    if mode not in REFER_MODES:
        raise ValueError(f"unknown refer mode {mode!r}; choose from {', '.join(REFER_MODES)}")
    if mode == "name" and "name" not in available_modes(view, object_ids, ("name",)):
        raise ValueError("objects cannot be referred to by name: a label is not unique")
    objs = frame_objects(view)
    ids = [int(o) for o in object_ids]
    labels = [view.object(o).label for o in ids]
    colors: list[str | None] = (
        list(pick_colors(rng, len(ids))) if mode in MARK_MODES else [None] * len(ids)
    )

    # -A/-B suffixes for labels repeated within the set (named marks)
    counts: dict[str, int] = {}
    for lab in labels:
        counts[lab] = counts.get(lab, 0) + 1
    seen: dict[str, int] = {}
    refs = []
    for k, (oid, label, color) in enumerate(zip(ids, labels, colors, strict=True)):
        box = point = None
        mark: BoxMark | PointMark | None = None
        if mode == "name":
            handle, mention = label, f"the {label}"
        elif mode == "box_text":
            box = objs.model_box(oid)
            handle = box_text(box)
            mention = f"the object in {handle}"
        elif mode == "point_text":
            point = objs.model_point(oid)
            handle = point_text(point)
            mention = f"the object at {handle}"
        elif mode in TAGGED_MODES:
            handle = mention = f"{mark_word(mode, labels)}-{LETTERS[k]}"
            if mode == "box_mark":
                box = objs.model_box(oid)
                mark = BoxMark(box, color, LETTERS[k])
            else:
                point = objs.model_point(oid)
                mark = PointMark(point, color, LETTERS[k])
        else:  # named marks
            kind = "box" if mode == "named_box_mark" else "point"
            handle = label
            if counts[label] > 1:
                seen[label] = seen.get(label, 0) + 1
                handle = f"{label}-{seen[label]}"
            mention = f"the {handle} ({color} {kind})"
            if kind == "box":
                box = objs.model_box(oid)
                mark = BoxMark(box, color)
            else:
                point = objs.model_point(oid)
                mark = PointMark(point, color)
        refs.append(Ref(oid, label, mode, handle, mention, color, box, point, mark))
    return refs


def render(view: FrameView, refs: Sequence[Ref]) -> Image.Image:
    """The model image of ``view`` with the marks of ``refs`` drawn (a fresh image), or the
    frame's shared model image when nothing is drawn (no copy: samples never draw on it)."""
    marks = [r.mark for r in refs if r.mark is not None]
    shared = view.shared_model_image()
    return draw_marks(shared, marks) if marks else shared
