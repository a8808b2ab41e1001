"""``si_depth_point``: which of 2-4 points drawn on the image is closest to (or farthest from)
the camera, answered from the depth map.

Points are drawn as labelled rings (tags ``A``, ``B``...; distinct colours) on the model image
(``FrameView.model_image()``). A point is either an object's mask centre
(:meth:`FrameView.inner_pixel`) or a random pixel. Every point must sit on a *flat* patch of the
depth map: all depths in the square of half-size :meth:`DepthPoint.neighbourhood` frame pixels
around it (at least the drawn ring's radius) are known (> 0) and within
:attr:`DepthPoint.MAX_LOCAL_SPREAD` of the point's depth, so the mark does not straddle a depth
edge and its depth is not in doubt. Points keep :attr:`DepthPoint.MIN_SPACING` model pixels
apart and :attr:`DepthPoint.BORDER` frame pixels from the image border (more on the right,
where the letter tags go).

A point's depth is the metric z-depth (m, camera frame) of its frame pixel. The answer point's
depth must be :func:`~vst.engine.tasks.single_image._refer.separated` from every other point's
by :attr:`DepthPoint.MIN_REL_GAP` and :attr:`DepthPoint.MIN_ABS_GAP`. The answer is the point's
letter (reward ``mcq``); the reply follows the run's answer style (``"B: point-B"`` or ``"B"``,
see :mod:`vst.engine.choices`).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator
from typing import ClassVar

import numpy as np
from scipy.ndimage import maximum_filter, minimum_filter

from vst.engine.choices import LETTERS, mcq_instruction, mcq_reply, pick
from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import (
    frame_objects,
    ground_truth_view,
    join_items,
    separated,
)
from vst.engine.visual_prompts import PointMark, draw_marks, mark_sizes, pick_colors
from vst.scenes.model import Scene

QUERIES = ("closer", "farther")
SOURCES = ("object", "random", "mixed")

COMPARE_PHRASES: dict[tuple[str, bool], tuple[str, ...]] = {
    ("closer", False): (
        "closer to the camera",
        "nearer to the camera",
        "closer to the viewer",
        "less distant from the camera",
        "at a smaller depth",
    ),
    ("closer", True): (
        "closest to the camera",
        "nearest to the camera",
        "closest to the viewer",
        "least distant from the camera",
        "at the smallest depth",
    ),
    ("farther", False): (
        "farther from the camera",
        "more distant from the camera",
        "farther from the viewer",
        "further away from the camera",
        "at a greater depth",
    ),
    ("farther", True): (
        "farthest from the camera",
        "most distant from the camera",
        "farthest from the viewer",
        "furthest away from the camera",
        "at the greatest depth",
    ),
}
"""``(query, more than two points)`` -> comparative / superlative phrases."""

_FLAT: weakref.WeakKeyDictionary[FrameView, tuple[np.ndarray, np.ndarray]] = (
    weakref.WeakKeyDictionary()
)
"""Per-view cache of the pixels points may be drawn from (known depth, off the borders; see
:meth:`DepthPoint._candidates`) and their flat indices."""

TEMPLATES: tuple[str, ...] = (
    "The image shows {points}. Which point is {cmp}?",
    "Which of {points} is {cmp}? {instruction}",
    "Some points are drawn on the image: {points}. Decide which one is {cmp}.",
    "Look at {points} marked in the picture. Which of them lies {cmp}?",
    "Of the marked points ({points}), which one is {cmp}? {instruction}",
    "Judging the depth of the surfaces under {points}, which point is {cmp}?",
)
"""Question templates (``{points}`` lists the marks, ``{cmp}`` the comparison,
``{instruction}`` an instruction of the run's answer style)."""


def point_depths(depth: np.ndarray, pixels: list[list[int]]) -> list[float]:
    """Depth-map values (m) at frame pixels ``(u, v)``."""
    return [float(depth[v, u]) for u, v in pixels]


def answer_index(depths: list[float], query: str) -> int:
    """Index of the closest (``closer``) or farthest (``farther``) depth."""
    return int(np.argmin(depths)) if query == "closer" else int(np.argmax(depths))


@register
class DepthPoint(Task):
    """Which marked point is closer / farther (see the module docstring)."""

    name = "si_depth_point"
    scenario = "single_image"
    needs = TaskNeeds(depth=True)
    version = "2"

    MIN_REL_GAP: ClassVar[float] = 0.10
    """The answer point's depth differs from every other by at least this fraction..."""
    MIN_ABS_GAP: ClassVar[float] = 0.15
    """...and by at least this many metres."""
    MAX_LOCAL_SPREAD: ClassVar[float] = 0.03
    """Max (max - min) depth in a point's neighbourhood, as a fraction of its depth."""
    MIN_NEIGHBOURHOOD: ClassVar[int] = 2
    """Smallest half-size (frame pixels) of the neighbourhood checked around a point."""
    BORDER: ClassVar[int] = 6
    """Points stay this many frame pixels inside the image."""
    MIN_SPACING_FRACTION: ClassVar[float] = 0.1
    """Points keep at least this fraction of the model image's shorter side apart."""
    MIN_POINTS: ClassVar[int] = 2
    MAX_POINTS: ClassVar[int] = 4
    ATTEMPTS_PER_SAMPLE: ClassVar[int] = 20
    """Give up after this many tries per requested sample."""
    RANDOM_POINT_TRIES: ClassVar[int] = 32
    """Random pixels drawn per point before giving up (each checked with :meth:`flat_at`)."""
    ATTEMPTS_PER_PLAN: ClassVar[int] = 10
    """Tries with one drawn point count and source before drawing others."""

    # -- where points may go ---------------------------------------------------------------
    @classmethod
    def neighbourhood(cls, view: FrameView) -> int:
        """Half-size (frame pixels) of the square checked around a point: the drawn ring's
        radius mapped back to frame pixels, at least :attr:`MIN_NEIGHBOURHOOD`."""
        radius = mark_sizes(view.model_size)[1]
        return max(cls.MIN_NEIGHBOURHOOD, math.ceil(radius / min(view.model_scale)))

    @classmethod
    def flat_mask(cls, view: FrameView) -> np.ndarray:
        """Boolean (H, W): pixels a point may be placed on (flat known depth, off the
        border)."""
        depth = view.depth
        size = 2 * cls.neighbourhood(view) + 1
        known = depth > 0
        lo = minimum_filter(np.where(known, depth, 0.0), size=size, mode="constant", cval=0.0)
        hi = maximum_filter(depth, size=size, mode="nearest")
        ok = known & (lo > 0) & (hi - lo <= cls.MAX_LOCAL_SPREAD * depth)
        b = cls.BORDER
        # the letter tag sits right of the ring: leave room for it (a clamped tag would cover
        # the point)
        _, radius, font = mark_sizes(view.model_size)
        right = max(b, math.ceil((radius + font + 12) / view.model_scale[0]))
        ok[:b], ok[-b:], ok[:, :b], ok[:, -right:] = False, False, False, False
        return ok

    @classmethod
    def _allowed(cls, view: FrameView) -> np.ndarray:
        """Boolean (H, W): known depth, off the border and the tag margin (no flatness test)."""
        ok = view.depth > 0
        b = cls.BORDER
        _, radius, font = mark_sizes(view.model_size)
        right = max(b, math.ceil((radius + font + 12) / view.model_scale[0]))
        ok[:b], ok[-b:], ok[:, :b], ok[:, -right:] = False, False, False, False
        return ok

    @classmethod
    def flat_at(cls, view: FrameView, u: int, v: int, allowed: np.ndarray | None = None) -> bool:
        """:meth:`flat_mask` at one pixel, computed on its own window only (the same rule:
        every depth in the window known, spread at most :attr:`MAX_LOCAL_SPREAD` of the
        pixel's depth, the window inside the image)."""
        allowed = cls._allowed(view) if allowed is None else allowed
        if not allowed[v, u]:
            return False
        n = cls.neighbourhood(view)
        depth = view.depth
        if v - n < 0 or u - n < 0 or v + n >= depth.shape[0] or u + n >= depth.shape[1]:
            return False
        patch = depth[v - n : v + n + 1, u - n : u + n + 1]
        lo = float(patch.min())
        return lo > 0 and float(patch.max()) - lo <= cls.MAX_LOCAL_SPREAD * float(depth[v, u])

    def _candidates(self, view: FrameView) -> tuple[np.ndarray, np.ndarray]:
        """``(allowed mask, flat indices of its True pixels)``, cached per view; points drawn
        from them are kept only where :meth:`flat_at` holds (checking a few windows is far
        cheaper than filtering the whole frame, and uniform draws accepted by the test are
        uniform over the flat pixels, as before)."""
        cached = _FLAT.get(view)
        if cached is None:
            ok = self._allowed(view)
            cached = _FLAT[view] = (ok, np.flatnonzero(ok))
        return cached

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: random frame, 2-4 points (object centres, random flat
        pixels, or both), a query passing the margin, a phrasing."""
        frames = sorted(scene.frames, key=lambda f: f.id)
        if not frames or budget <= 0:
            return
        made = attempts = tries = 0
        n, source = 0, ""
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            if tries % self.ATTEMPTS_PER_PLAN == 0:
                # drawn per sample, not per try, so hard plans (4 points, object centres only)
                # are not rarer than easy ones
                n = int(rng.integers(self.MIN_POINTS, self.MAX_POINTS + 1))
                source = SOURCES[int(rng.integers(len(SOURCES)))]
            tries += 1
            view = ctx.view(scene, frames[int(rng.integers(len(frames)))])
            if view.depth is None:
                continue
            points = self._place(view, n, source, rng)
            if points is None:
                continue
            depths = point_depths(view.depth, [p[:2] for p in points])
            query = QUERIES[int(rng.integers(2))]
            best = answer_index(depths, query)
            if not all(
                separated(depths[best], d, self.MIN_REL_GAP, self.MIN_ABS_GAP)
                for i, d in enumerate(depths)
                if i != best
            ):
                continue
            yield self._build(view, points, depths, query, source, rng)
            made += 1
            tries = 0

    def _place(
        self, view: FrameView, n: int, source: str, rng: np.random.Generator
    ) -> list[tuple[int, int, str, int | None]] | None:
        """``n`` spaced points ``(u, v, source, object_id)`` (frame pixels) or None when the
        frame cannot hold them."""
        ok, flat_idx = self._candidates(view)
        # spacing in frame pixels (the model image is the frame resized)
        spacing2 = (self.MIN_SPACING_FRACTION * min(view.model_size) / min(view.model_scale)) ** 2
        obj_pool: list[int] | None = None
        points: list[tuple[int, int, str, int | None]] = []

        def free(u: int, v: int) -> bool:
            return all((u - p[0]) ** 2 + (v - p[1]) ** 2 >= spacing2 for p in points)

        for _ in range(n):
            use_object = source == "object" or (source == "mixed" and rng.random() < 0.5)
            placed = None
            if use_object:
                if view.mask is None:
                    return None
                if obj_pool is None:
                    obj_pool = [int(o) for o in rng.permutation(view.visible_ids)]
                objs = frame_objects(view)
                while obj_pool and placed is None:
                    oid = obj_pool.pop()
                    u, v = objs.pixel(oid)
                    if self.flat_at(view, u, v, ok) and free(u, v):
                        placed = (u, v, "object", oid)
            elif len(flat_idx):
                for _ in range(self.RANDOM_POINT_TRIES):
                    v, u = divmod(int(flat_idx[int(rng.integers(len(flat_idx)))]), ok.shape[1])
                    if self.flat_at(view, u, v, ok) and free(u, v):
                        placed = (u, v, "random", None)
                        break
            if placed is None:
                return None
            points.append(placed)
        return points

    def _build(
        self,
        view: FrameView,
        placed: list[tuple[int, int, str, int | None]],
        depths: list[float],
        query: str,
        source: str,
        rng: np.random.Generator,
    ) -> Sample:
        # letters follow a uniform shuffle, not the placement order (object points are placed
        # first in "mixed" sets): every letter is equally likely to be the answer
        perm = [int(i) for i in rng.permutation(len(placed))]
        placed, depths = [placed[i] for i in perm], [depths[i] for i in perm]
        colors = pick_colors(rng, len(placed))
        points = [
            {
                "label": LETTERS[k],
                "color": color,
                "pixel": [u, v],
                "xy": list(view.to_model_xy(u, v)),
                "source": src,
                "object_id": oid,
            }
            for k, ((u, v, src, oid), color) in enumerate(zip(placed, colors, strict=True))
        ]
        with_colors = bool(rng.random() < 0.5)
        mentions = [
            f"the {p['color']} point-{p['label']}" if with_colors else f"point-{p['label']}"
            for p in points
        ]
        t_idx, template = pick(rng, TEMPLATES)
        c_idx, cmp = pick(rng, COMPARE_PHRASES[(query, len(points) > 2)])
        answer_style = view.settings.answer_style
        i_idx, instruction = -1, ""
        if "{instruction}" in template:
            i_idx, instruction = mcq_instruction(rng, answer_style, marks=True)
        question = template.format(points=join_items(mentions), cmp=cmp, instruction=instruction)
        answer = LETTERS[answer_index(depths, query)]
        reply = mcq_reply(answer, f"point-{answer}", answer_style, sep=":")
        image = draw_marks(
            frame_objects(view).image(),
            [PointMark(tuple(p["xy"]), p["color"], p["label"]) for p in points],
            copy=False,
        )
        meta = {
            "scene_id": view.scene.id,
            "frame_ids": [view.frame.id],
            "points": points,
            "object_ids": [p["object_id"] for p in points if p["object_id"] is not None],
            "visible_fraction": visible_fractions(
                [view], [p["object_id"] for p in points if p["object_id"] is not None]
            ),
            "query": query,
            "point_source": source,
            "depths": depths,
            "phrasing": [t_idx, c_idx, int(with_colors), i_idx],
            "image_size": list(view.model_size),
            "answer_style": answer_style,
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(image, question), assistant(reply)],
            images=[image],
            answer=answer,
            reward={"mode": "mcq", "ground_truth": answer},
            meta=meta,
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Read the depth map at the points' frame pixels and pick the extreme one."""
        depth = ground_truth_view(scene, meta["frame_ids"][0]).depth
        depths = point_depths(depth, [p["pixel"] for p in meta["points"]])
        return LETTERS[answer_index(depths, meta["query"])]
