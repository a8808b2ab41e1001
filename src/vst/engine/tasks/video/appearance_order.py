"""``video_appearance_order``: order in which 3-4 categories are first seen in a video
(VSI-Bench "appearance order").

Clips as in :mod:`.count`: the whole trajectory plus :attr:`AppearanceOrder.WINDOWS` random
windows, subsampled evenly to at most :attr:`AppearanceOrder.MAX_FRAMES` frames
(``meta["frame_ids"]``, ``meta["video_fps"]``).

When a category is first seen (pixel counts are instance-mask pixels at frame resolution, see
:func:`~vst.engine.tasks.video._clips.label_sightings`):

* ``first_clear``: the first clip frame where any instance covers ``>= clear`` pixels
  (``clear`` = the run's ``EngineSettings.min_object_pixels``, 400 by default) and shows at
  least ``min_visible_fraction`` of its silhouette (0.5 by default) — the category's
  appearance time; categories never seen clearly are not asked about;
* ``first_faint``: the first frame where any instance covers ``>= faint`` pixels
  (``faint`` = ``clear`` x :attr:`AppearanceOrder.FAINT_FRACTION`): a glimpse, from which on
  the appearance time is uncertain.

A set of categories is asked about only if, ordered by ``first_clear``, each category is
clearly seen at least :attr:`AppearanceOrder.MIN_FRAME_GAP` frames before the next one is even
glimpsed (``first_faint(next) - first_clear(prev) >= MIN_FRAME_GAP``): no near ties.

Styles (``meta["style"]``): ``order`` (answer ``"window, door, bed"``, reward ``order`` over
the labels) and ``mcq`` (four candidate orderings, shuffled with the sample's rng; answer the
letter, reward ``mcq``). The categories are listed in the question in a random order. Each
category set is asked once per clip, in one style drawn per set (not once per style).

VSI-Bench agreement: its question "What will be the first-time appearance order of the
following categories in the video: A, B, C, D?" is the last ``mcq`` phrasing, verbatim
(verified against public copies of its templates), with four orderings as options like its own.
UNVERIFIED: how VSI-Bench decides when a category first appears (its threshold is unpublished);
here the first clear sighting with no near ties.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import (
    LETTERS,
    format_options,
    mcq_instruction,
    mcq_reply,
    pick,
    shuffle_options,
)
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import register
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.tasks.single_image._refer import join_items
from vst.engine.tasks.video._clips import (
    Clip,
    Sightings,
    SightingTask,
    candidate_clips,
    clip_from_meta,
    label_sightings,
)
from vst.scenes.model import Scene

ORDER_QUESTIONS: tuple[str, ...] = (
    "In what order do these objects first appear in the video: {items}?",
    "Sort the following categories by the moment they are first seen in the video: {items}.",
    "Arrange {items} by when each of them first comes into view, earliest first.",
    "Give the order of first appearance in this video for {items}, from earliest to latest.",
    "As the camera moves through the scene, in which order are the following first seen: {items}?",
    "Which of {items} shows up first in the video, which next, and so on? List them in order "
    "of first appearance.",
)
ORDER_SUFFIXES: tuple[str, ...] = (
    " Answer with the names separated by commas.",
    " List the names from first to last, separated by commas.",
    " Reply with the category names in order, comma-separated.",
    " Give only the ordered names, separated by commas.",
    " Write the names in order of appearance, separated by commas.",
)
MCQ_QUESTIONS: tuple[str, ...] = (
    "What is the order in which these objects first appear in the video: {items}?",
    "Which option gives the first-appearance order of {items} in this video?",
    "Provide the order of the first sighting of these objects in the video: {items}.",
    "Arrange these categories by the timestamp of their first appearance in the video: {items}.",
    "While watching the video, in which order do you first see {items}?",
    "Which sequence lists {items} by when each first appears in the video?",
    "What will be the first-time appearance order of the following categories in the video: "
    "{commas}?",
)
STYLES: tuple[str, ...] = ("order", "mcq")


def clear_order(sights: Sequence[Sightings], min_gap: int) -> list[str] | None:
    """Labels of ``sights`` in order of first clear sighting, or None when the order has a near
    tie (some category glimpsed less than ``min_gap`` frames after the previous one is clearly
    seen) or a category is never seen clearly."""
    if any(s.first_clear is None for s in sights):
        return None
    ordered = sorted(sights, key=lambda s: (s.first_clear, s.label))
    for prev, nxt in itertools.pairwise(ordered):
        if nxt.first_faint - prev.first_clear < min_gap:
            return None
    return [s.label for s in ordered]


def format_answer(
    style: str, order: Sequence[str], options: Sequence[Sequence[str]] | None
) -> tuple[str, object]:
    """``(answer text, reward ground truth)``."""
    if style == "order":
        return ", ".join(order), list(order)
    if style == "mcq":
        if options is None:
            raise ValueError("mcq style needs options")
        letter = LETTERS[[list(o) for o in options].index(list(order))]
        return letter, letter
    raise ValueError(f"unknown style {style!r}")


@register
class AppearanceOrder(SightingTask):
    """Order of first appearance of 3-4 categories in a video (see the module docstring)."""

    name = "video_appearance_order"
    version = "2"

    MIN_FRAME_GAP: ClassVar[int] = 2
    """Consecutive categories: the later one is first glimpsed at least this many clip frames
    after the earlier one is first clearly seen."""
    SIZES: ClassVar[tuple[int, ...]] = (3, 4)
    """How many categories a question orders."""
    MAX_SETS: ClassVar[int] = 2000
    """Category sets checked per clip and size (all of them when there are fewer; else a
    random sample of this many)."""
    MCQ_OPTIONS: ClassVar[int] = 4
    STYLES: ClassVar[tuple[str, ...]] = STYLES

    def candidate_sets(
        self,
        clip: Clip,
        ctx: EngineContext,
        clear: int,
        faint: int,
        rng: np.random.Generator,
    ) -> list[list[str]]:
        """Category sets of ``clip`` with a clear order (each in that order), by size then in
        enumeration order."""
        if not clip.has_pixel_info:
            return []
        sights = self.sightings(clip, ctx, clear, faint)
        labels = [k for k, s in sights.items() if s.first_clear is not None]
        out: list[list[str]] = []
        for size in self.SIZES:
            if len(labels) < size:
                continue
            if math.comb(len(labels), size) <= self.MAX_SETS:
                out.extend(self._all_clear_orders(sights, labels, size))
            else:
                combos = (
                    tuple(labels[int(i)] for i in sorted(rng.choice(len(labels), size, False)))
                    for _ in range(self.MAX_SETS)
                )
                seen: set[tuple[str, ...]] = set()
                for combo in combos:
                    if combo in seen:
                        continue
                    seen.add(combo)
                    order = clear_order([sights[k] for k in combo], self.MIN_FRAME_GAP)
                    if order is not None:
                        out.append(order)
        return out

    def _all_clear_orders(
        self, sights: dict[str, Sightings], labels: list[str], size: int
    ) -> list[list[str]]:
        """:func:`clear_order` of every ``size``-subset of ``labels`` that has one, in
        ``itertools.combinations`` order (vectorised: a subset's order is clear when each
        consecutive pair, by first clear sighting, is)."""
        by_rank = sorted(labels, key=lambda k: (sights[k].first_clear, k))
        position = {k: i for i, k in enumerate(by_rank)}
        rank = np.array([position[k] for k in labels])
        first_clear = np.array([sights[k].first_clear for k in by_rank])
        first_faint = np.array([sights[k].first_faint for k in by_rank])
        ok = first_faint[None, :] - first_clear[:, None] >= self.MIN_FRAME_GAP
        combos = np.array(list(itertools.combinations(range(len(labels)), size)), dtype=np.int64)
        ranks = np.sort(rank[combos], axis=1)
        valid = ok[ranks[:, :-1], ranks[:, 1:]].all(axis=1)
        return [[by_rank[r] for r in row] for row in ranks[valid].tolist()]

    def sightings(
        self, clip: Clip, ctx: EngineContext, clear: int, faint: int
    ) -> dict[str, Sightings]:
        """:func:`label_sightings` of the clip's views, memoised per scene and clip."""
        fraction = ctx.settings.min_visible_fraction
        key = (self.name, clip.scene.id, tuple(clip.frame_ids), clear, faint, fraction)
        return ctx.memo(key, lambda: label_sightings(clip.views(ctx), clear, faint, fraction))

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        if budget <= 0:
            return
        clips = candidate_clips(scene, rng, self.WINDOWS, max_frames=self.MAX_FRAMES)
        clear, faint = self.thresholds(ctx)
        pool: list[tuple[int, list[str], str]] = []
        asked: set[tuple[str, ...]] = set()
        for c, clip in enumerate(clips):
            for order in self.candidate_sets(clip, ctx, clear, faint, rng):
                if tuple(order) in asked:  # same set, same order in an earlier clip
                    continue
                asked.add(tuple(order))
                style = self.STYLES[int(rng.integers(len(self.STYLES)))]  # one per fact
                pool.append((c, order, style))
        for k in rng.permutation(len(pool))[:budget]:
            c, order, style = pool[int(k)]
            yield self._build(clips[c], ctx, order, style, clear, faint, rng)

    def _build(
        self,
        clip: Clip,
        ctx: EngineContext,
        order: list[str],
        style: str,
        clear: int,
        faint: int,
        rng: np.random.Generator,
    ) -> Sample:
        listed = [order[int(i)] for i in rng.permutation(len(order))]
        items = join_items(listed)
        options = None
        if style == "mcq":
            q_idx, template = pick(rng, MCQ_QUESTIONS)
            options = self._orderings(order, rng)
            s_idx, suffix = mcq_instruction(rng, ctx.settings.answer_style)
            question = (
                template.format(items=items, commas=", ".join(listed))
                + "\nOptions:\n"
                + format_options([", ".join(o) for o in options])
                + "\n"
                + suffix
            )
        else:
            q_idx, template = pick(rng, ORDER_QUESTIONS)
            s_idx, suffix = pick(rng, ORDER_SUFFIXES)
            question = template.format(items=items) + suffix
        answer, truth = format_answer(style, order, options)
        reply = answer
        if style == "mcq":
            reply = mcq_reply(answer, ", ".join(order), ctx.settings.answer_style)
        sights = self.sightings(clip, ctx, clear, faint)
        meta = {
            "scene_id": clip.scene.id,
            **clip.meta(),
            "labels": listed,
            "order": order,
            "first_clear": {k: sights[k].first_clear for k in order},
            "first_faint": {k: sights[k].first_faint for k in order},
            "object_ids": {k: list(sights[k].clear_ids) for k in order},
            "clear_pixels": clear,
            "faint_pixels": faint,
            "min_visible_fraction": ctx.settings.min_visible_fraction,
            "visible_fraction": visible_fractions(
                clip.views(ctx), [o for k in order for o in sights[k].clear_ids]
            ),
            "style": style,
            "phrasing": [q_idx, s_idx],
            "options": options,
        }
        if style == "mcq":
            meta["answer_style"] = ctx.settings.answer_style
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(VIDEO, question), assistant(reply)],
            images=[],
            videos=[clip.images(ctx)],
            answer=answer,
            reward={"mode": "order" if style == "order" else "mcq", "ground_truth": truth},
            meta=meta,
        )

    def _orderings(self, order: list[str], rng: np.random.Generator) -> list[list[str]]:
        """The true order plus ``MCQ_OPTIONS - 1`` distinct wrong permutations, shuffled."""
        wrong = [list(p) for p in itertools.permutations(order) if list(p) != order]
        n_wrong = min(len(wrong), self.MCQ_OPTIONS - 1)
        chosen = [wrong[int(i)] for i in sorted(rng.choice(len(wrong), n_wrong, replace=False))]
        options, _, _ = shuffle_options([list(order), *chosen], 0, rng)
        return options

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute each category's first clear sighting from the clip frames' pixel counts and
        order the categories by it."""
        clip = clip_from_meta(scene, meta)
        sights = label_sightings(
            clip.gt_views(),
            meta["clear_pixels"],
            meta["faint_pixels"],
            meta.get("min_visible_fraction", 0.0),
        )
        labels = list(meta["labels"])
        missing = [k for k in labels if k not in sights or sights[k].first_clear is None]
        if missing:
            raise ValueError(f"categories {missing} are not clearly seen in the clip")
        order = sorted(labels, key=lambda k: (sights[k].first_clear, k))
        return format_answer(meta["style"], order, meta["options"])[0]
