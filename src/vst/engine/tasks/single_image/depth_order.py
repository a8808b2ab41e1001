"""``si_depth_order``: order 2-4 objects of one image by their distance from the camera.

Depth of an object = :meth:`FrameView.object_depth` (median z-depth of its visible mask pixels,
metres, camera frame). A set is asked about only when its sorted depths are pairwise
:func:`~vst.engine.tasks.single_image._refer.separated` by :attr:`DepthOrder.MIN_REL_GAP` and
:attr:`DepthOrder.MIN_ABS_GAP` (every adjacent pair: the whole order must be clear).

Objects are referred to as in :mod:`._refer` (name, 2D box text, point text, drawn marks).
Answer styles (``meta["style"]``):

* ``letters``: the objects are listed with letters; the answer is the letters in order
  (``"C, A, B"``), reward ``order`` over the letters.
* ``handles``: the answer lists the objects' handles in order (``"box-B (chair), box-A (lamp)"``,
  ``"sink, lamp"``), reward ``order`` over the handles.
* ``json``: objects given as 2D box (or point) text; the answer is a fenced JSON list of
  ``{"bbox_2d": [...], "label": ...}`` (``"point_2d"`` for points) in order, reward ``order``
  over the box/point texts.
* ``mcq``: options are candidate orderings (2 for two objects, else 4); reward ``mcq`` over
  the letter; the reply follows the run's answer style (``"B. sink, lamp"`` or ``"B"``, see
  :mod:`vst.engine.choices`). Lettered marks (``box-A``) are never used with lettered options.
* ``pick``: which single object is nearest / farthest; the answer is its handle, reward
  ``exact``.
"""

from __future__ import annotations

import itertools
import json
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
from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import (
    REFER_MODES,
    TAGGED_MODES,
    all_separated,
    available_modes,
    frame_objects,
    ground_truth_view,
    join_items,
    refer,
    render,
)
from vst.scenes.model import Scene

DIRECTIONS = ("near_to_far", "far_to_near")

DIR_PHRASES: dict[str, tuple[str, ...]] = {
    "near_to_far": (
        "from nearest to farthest",
        "from the closest one to the most distant one",
        "in order of increasing distance from the camera",
        "starting with the one closest to the camera",
        "from near to far",
        "closest first",
    ),
    "far_to_near": (
        "from farthest to nearest",
        "from the most distant one to the closest one",
        "in order of decreasing distance from the camera",
        "starting with the one farthest from the camera",
        "from far to near",
        "most distant first",
    ),
}
"""How a question states the direction of the order."""

PICK_PHRASES: dict[str, tuple[str, ...]] = {
    "near_to_far": (
        "closest to the camera",
        "nearest to the camera",
        "nearest to the viewer",
        "least distant from the camera",
        "closest to where the photo was taken",
    ),
    "far_to_near": (
        "farthest from the camera",
        "most distant from the camera",
        "farthest from the viewer",
        "furthest away from the camera",
        "farthest from where the photo was taken",
    ),
}
"""How a ``pick`` question names the extreme it asks for."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "letters": (
        "Sort the following objects {dir} and answer with their letters only:\n{items}",
        "Looking at the image, what is the depth order of these objects, {dir}? "
        "Reply with the letters.\n{items}",
        "Rank these objects {dir}. Give the letters, comma-separated.\n{items}",
        "Arrange the objects listed below {dir}, using their letters:\n{items}",
        "How are these objects ordered in depth? List their letters {dir}.\n{items}",
        "Each object below has a letter. Write the letters in order {dir}.\n{items}",
    ),
    "handles": (
        "Sort {items} {dir}.",
        "List {items} {dir}.",
        "In this image, put {items} in order {dir}.",
        "Order {items} by their depth in the scene, {dir}.",
        "Going by distance to the camera, rank {items} {dir}.",
        "Judging by the image, arrange {items} {dir}.",
    ),
    "json": (
        "The image contains these 2D {kinds}: {items}. Sort the objects they mark {dir} and "
        "name each one. Output a JSON list of {key} and label.",
        "Given the {kinds} {items} in the image, arrange the objects {dir}. Answer in JSON "
        "with each {kind}'s {key} and the object's label.",
        "Here are some {kinds} on the image: {items}. Order their objects {dir} and label "
        "them, as a JSON list with {key} and label entries.",
        "For the objects at the {kinds} {items}, give the depth order {dir}. Write the sorted "
        "{kinds} with their labels in JSON ({key}, label).",
        "Objects are located by the {kinds} {items}. Put them {dir} and identify each, "
        "returning JSON items with {key} and label.",
    ),
    "mcq": (
        "Which option lists {items} {dir}?\n{options}\n{instruction}",
        "Which sequence orders {items} {dir}?\n{options}",
        "Consider {items}. Which of these orderings goes {dir}?\n{options}\n{instruction}",
        "Choose the option that sorts {items} {dir}.\n{options}",
        "Which is the correct order of {items}, {dir}?\n{options}",
        "Pick the list that ranks {items} {dir}.\n{options}\n{instruction}",
    ),
    "pick": (
        "Which one is {which}: {items}?",
        "Which is {which}, {items}?",
        "Looking at the image, which object is {which}, {items}?",
        "Tell me which is {which}: {items}.",
        "Which would you say is {which}: {items}?",
        "In this picture, which is {which}, {items}?",
    ),
}
"""Question templates per answer style (at least five each); ``{instruction}``: an instruction
of the run's answer style (:func:`~vst.engine.choices.mcq_instruction`)."""

NAME_REQUESTS: tuple[str, ...] = (
    " Also name the object each mark shows.",
    " Give the category of each object after its mark.",
    " Say what each marked object is.",
    " Name the marked objects as well.",
    " Identify the object behind each mark too.",
)
"""Appended to ``handles`` questions whose marks are tags (``box-A``): answers add names."""

STYLE_MODES: dict[str, tuple[str, ...]] = {
    "letters": ("name", "box_text", "point_text", "named_box_mark", "named_point_mark"),
    "handles": ("name", "box_mark", "point_mark", "named_box_mark", "named_point_mark"),
    "json": ("box_text", "point_text"),
    "mcq": tuple(m for m in REFER_MODES if m not in TAGGED_MODES),  # letters mean options
    "pick": ("name", "box_mark", "point_mark", "named_box_mark", "named_point_mark"),
}
"""Refer modes each style uses (coordinates only where the answer can carry them)."""

REWARD_OF_STYLE = {
    "letters": "order",
    "handles": "order",
    "json": "order",
    "mcq": "mcq",
    "pick": "exact",
}


def depth_rank(depths: Sequence[float], direction: str) -> list[int]:
    """Indices of ``depths`` in the asked order (``near_to_far`` ascending)."""
    order = sorted(range(len(depths)), key=lambda i: depths[i])
    return order if direction == "near_to_far" else order[::-1]


def format_answer(
    style: str,
    refs: Sequence[dict],
    labels: Sequence[str],
    rank: Sequence[int],
    options: Sequence[Sequence[int]] | None = None,
) -> tuple[str, object]:
    """``(answer text, reward ground truth)`` for a style, from the refs' meta records
    (``handle``, ``mode``), the objects' labels and the true ``rank`` (indices into refs)."""
    handles = [r["handle"] for r in refs]
    if style == "letters":
        seq = [LETTERS[i] for i in rank]
        return ", ".join(seq), seq
    if style == "handles":
        seq = [handles[i] for i in rank]
        named = [
            f"{handles[i]} ({labels[i]})" if refs[i]["mode"] in TAGGED_MODES else handles[i]
            for i in rank
        ]
        return ", ".join(named), seq
    if style == "json":
        key = "bbox_2d" if refs[0]["mode"] == "box_text" else "point_2d"
        field = "box" if key == "bbox_2d" else "point"
        lines = [
            json.dumps({key: list(refs[i][field]), "label": labels[i]}, ensure_ascii=False)
            for i in rank
        ]
        text = "```json\n[\n" + ",\n".join(f"  {ln}" for ln in lines) + "\n]\n```"
        return text, [handles[i] for i in rank]
    if style == "mcq":
        if options is None:
            raise ValueError("mcq style needs options")
        letter = LETTERS[[list(o) for o in options].index(list(rank))]
        return letter, letter
    if style == "pick":
        return handles[rank[0]], handles[rank[0]]
    raise ValueError(f"unknown style {style!r}")


@register
class DepthOrder(Task):
    """Order objects by depth (see the module docstring)."""

    name = "si_depth_order"
    scenario = "single_image"
    needs = TaskNeeds(mask=True)
    version = "2"

    MIN_REL_GAP: ClassVar[float] = 0.10
    """Adjacent depths must differ by at least this fraction of the larger one..."""
    MIN_ABS_GAP: ClassVar[float] = 0.15
    """...and by at least this many metres."""
    MIN_OBJECTS: ClassVar[int] = 2
    MAX_OBJECTS: ClassVar[int] = 4
    MCQ_OPTIONS: ClassVar[int] = 4
    """Options of an ``mcq`` question with 3+ objects (two objects: the 2 orderings)."""
    STYLES: ClassVar[tuple[str, ...]] = tuple(TEMPLATES)
    ATTEMPTS_PER_SAMPLE: ClassVar[int] = 20
    """Give up after this many tries per requested sample (scenes with few objects)."""
    ATTEMPTS_PER_PLAN: ClassVar[int] = 10
    """Tries with one drawn set size before drawing another."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: random frame, random object set passing the margin, random
        style / refer mode / direction / phrasing."""
        frames = sorted(scene.frames, key=lambda f: f.id)
        if not frames or budget <= 0:
            return
        made = attempts = tries = 0
        k = 0
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            if tries % self.ATTEMPTS_PER_PLAN == 0:
                # the set size is drawn per sample, not per try, so large sets (which fail the
                # margin more often) are not rarer than small ones
                k = int(rng.integers(self.MIN_OBJECTS, self.MAX_OBJECTS + 1))
            tries += 1
            view = ctx.view(scene, frames[int(rng.integers(len(frames)))])
            if view.mask is None:
                continue
            ids = view.visible_ids
            if len(ids) < k:
                continue
            subset = [int(ids[i]) for i in rng.permutation(len(ids))[:k]]
            objs = frame_objects(view)
            depths = [objs.depth(o) for o in subset]
            if not all_separated(depths, self.MIN_REL_GAP, self.MIN_ABS_GAP):
                continue
            style = self.STYLES[int(rng.integers(len(self.STYLES)))]
            modes = available_modes(view, subset, STYLE_MODES[style])
            mode = modes[int(rng.integers(len(modes)))]
            direction = DIRECTIONS[int(rng.integers(2))]
            yield self._build(view, subset, depths, style, mode, direction, rng)
            made += 1
            tries = 0

    def _build(
        self,
        view: FrameView,
        ids: list[int],
        depths: list[float],
        style: str,
        mode: str,
        direction: str,
        rng: np.random.Generator,
    ) -> Sample:
        refs = refer(view, ids, mode, rng)
        ref_meta = [r.to_meta() for r in refs]
        labels = [r.label for r in refs]
        rank = depth_rank(depths, direction)
        t_idx, template = pick(rng, TEMPLATES[style])
        d_idx, dir_text = pick(rng, DIR_PHRASES[direction])
        options_idx: list[list[int]] | None = None
        fields: dict[str, str] = {"dir": dir_text}
        if style == "letters":
            fields["items"] = "\n".join(f"{LETTERS[i]}. {r.mention}" for i, r in enumerate(refs))
        elif style == "json":
            kind = "box" if mode == "box_text" else "point"
            fields.update(
                kind=kind,
                kinds="boxes" if kind == "box" else "points",
                key="bbox_2d" if kind == "box" else "point_2d",
                items=" ".join(r.handle for r in refs),
            )
        elif style == "pick":
            d_idx, which = pick(rng, PICK_PHRASES[direction])
            fields["which"] = which
            fields["items"] = join_items([r.mention for r in refs], "or")
        else:
            fields["items"] = join_items([r.mention for r in refs])
        if style == "mcq":
            options_idx = self._orderings(rank, rng)
            fields["options"] = format_options(
                [", ".join(refs[i].handle for i in o) for o in options_idx]
            )
        answer_style = view.settings.answer_style
        i_idx = -1
        if "{instruction}" in template:
            i_idx, fields["instruction"] = mcq_instruction(rng, answer_style)
        question = template.format(**fields)
        if style == "handles" and mode in TAGGED_MODES:
            question += pick(rng, NAME_REQUESTS)[1]
        answer, truth = format_answer(style, ref_meta, labels, rank, options_idx)
        reply = answer
        if style == "mcq":
            assert options_idx is not None
            k = LETTERS.index(answer)
            reply = mcq_reply(
                answer, ", ".join(refs[i].handle for i in options_idx[k]), answer_style
            )
        meta = {
            "scene_id": view.scene.id,
            "frame_ids": [view.frame.id],
            "object_ids": ids,
            "visible_fraction": visible_fractions([view], ids),
            "labels": labels,
            "refs": ref_meta,
            "style": style,
            "refer_mode": mode,
            "direction": direction,
            "phrasing": [t_idx, d_idx, i_idx],
            "depths": depths,
            "rank": rank,
            "options": options_idx,
            "image_size": list(view.model_size),
        }
        if style == "mcq":
            meta["answer_style"] = answer_style
        image = render(view, refs)
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(image, question), assistant(reply)],
            images=[image],
            answer=answer,
            reward={"mode": REWARD_OF_STYLE[style], "ground_truth": truth},
            meta=meta,
        )

    def _orderings(self, rank: list[int], rng: np.random.Generator) -> list[list[int]]:
        """Shuffled options: the true ``rank`` plus wrong orderings (all of them for two
        objects, else ``MCQ_OPTIONS - 1`` distinct ones drawn with ``rng``)."""
        wrong = [list(p) for p in itertools.permutations(rank) if list(p) != rank]
        n_wrong = min(len(wrong), self.MCQ_OPTIONS - 1)
        chosen = [wrong[i] for i in sorted(rng.choice(len(wrong), n_wrong, replace=False))]
        options, _, _ = shuffle_options([rank, *chosen], 0, rng)
        return options

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute depths from the scene's depth map and masks, then format the answer."""
        view = ground_truth_view(scene, meta["frame_ids"][0])
        ids = meta["object_ids"]
        depths = [view.object_depth(o) for o in ids]
        labels = [scene.object(o).label for o in ids]
        rank = depth_rank(depths, meta["direction"])
        return format_answer(meta["style"], meta["refs"], labels, rank, meta["options"])[0]
