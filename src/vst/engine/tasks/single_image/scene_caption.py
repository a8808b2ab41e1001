"""``si_scene_caption``: a layout caption of one image written from ground truth (paper Table 25).

The visible objects (up to :attr:`SceneCaption.MAX_OBJECTS`: the prominent ones, at least
:attr:`SceneCaption.PROMINENT_SHARE` of the image, first) get drawn point marks: one colour
per category and a number per object, and the text calls them ``"chair (orange point-2)"``
(``"chairs (orange points-3, 4 and 6)"`` for several). Numbers are shuffled, so they say
nothing about the order. The caption, one statement per sentence, in this order:

1. depth progression: every object from the nearest to the farthest with its depth
   (``depth`` = median z-depth of its visible pixels, metres, 2 decimals); consecutive objects
   closer than :attr:`SceneCaption.SAME_DEPTH` in depth are said to be at nearly the same depth.
   "The nearest / farthest object" is said only when no unmarked object in view (at least
   :attr:`SceneCaption.COUNT_PIXELS` mask pixels) is nearer / farther; otherwise the sentence
   says "among the marked objects";
2. the objects left / right of an anchor (the largest marked object, by box volume);
3. up to two more left/right pairs; 4. at most one depth gap ("1.28 m closer than ...");
5. groups: objects of the same category (with their count) and clusters of objects whose
   centres are all within ``SceneCaption.MARGINS.close`` (1 m) of each other;
6. up to three distances between 3D box centres (shortest first, under
   :attr:`SceneCaption.MAX_DISTANCE`).

Left/right use the camera-frame ``x`` of the box centres with the margins of
:class:`~vst.engine.teacher.RelationMargins` (see :func:`~vst.engine.teacher.spatial_relations`).
Every sentence kind has at least five phrasings. ``meta["statements"]`` lists, per sentence,
its kind, the objects and the numbers stated; ``meta["choices"]`` records every random choice
of the writer, so :meth:`SceneCaption.derive_answer` rewrites the same caption from the scene.

Reward: ``caption`` (not rule-checkable; SFT only).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.engine.choices import pick
from vst.engine.context import EngineContext, EngineSettings, FrameView, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import frame_objects, join_items
from vst.engine.teacher import (
    ObjectFact,
    RelationMargins,
    TeacherPrompt,
    build_caption_prompt,
    object_facts,
)
from vst.engine.teacher import spatial_relations as _relations
from vst.engine.visual_prompts import PointMark, draw_marks, pick_colors
from vst.scenes.model import Scene

PROMPTS: tuple[str, ...] = (
    "Analyze the spatial layout of this image and describe where the marked objects are.",
    "Describe how the objects marked with numbered points are arranged in space, from the "
    "nearest to the farthest.",
    "Give a description of this scene's layout: how deep each marked object lies and how the "
    "objects relate to one another.",
    "Write a spatial caption for the picture covering depths, left/right relations and "
    "distances between the marked objects.",
    "Explain where the labelled objects in this image are positioned relative to the camera "
    "and to each other.",
    "Walk me through the spatial organisation of this view, starting with the object closest "
    "to the camera.",
)
"""The user's request (one per sample)."""

NEAREST: tuple[str, ...] = (
    "Starting from the camera, the nearest object is {a} at a depth of {d} m.",
    "Closest to the viewer is {a}, with a depth of {d} m.",
    "{A} is the object nearest to the camera, {d} m deep.",
    "In the foreground, {a} sits closest, at a depth of {d} m.",
    "Beginning at the camera, we first meet {a}, whose depth is {d} m.",
    "The first object in depth is {a}, lying {d} m from the camera plane.",
)
NEXT: tuple[str, ...] = (
    "Behind it is {a} at a depth of {d} m.",
    "Next comes {a}, {d} m deep.",
    "Farther back, {a} has a depth of {d} m.",
    "{A} follows at a depth of {d} m.",
    "Moving deeper into the scene, {a} lies at {d} m.",
    "A little further away, {a} is found at a depth of {d} m.",
)
SAME_DEPTH: tuple[str, ...] = (
    "At nearly the same depth, {a} sits at {d} m.",
    "{A} is about as deep, at {d} m.",
    "Almost level in depth with it, {a} lies at {d} m.",
    "Roughly equally far away, {a} has a depth of {d} m.",
    "Right alongside in depth, {a} is at {d} m.",
)
NEAREST_MARKED: tuple[str, ...] = (
    "Among the marked objects, the nearest is {a} at a depth of {d} m.",
    "Of the marked objects, {a} is closest to the camera, {d} m deep.",
    "The nearest marked object is {a}, with a depth of {d} m.",
    "Starting with the marked objects closest to the camera, {a} comes first at {d} m.",
    "Among the marks, {a} sits closest, at a depth of {d} m.",
)
"""An unmarked object is nearer than every marked one: the superlative is about the marks."""
FARTHEST: tuple[str, ...] = (
    "The farthest object is {a}, at a depth of {d} m.",
    "Deepest in the scene lies {a} at {d} m.",
    "Finally, {a} is the most distant, {d} m deep.",
    "At the back of the view, {a} reaches a depth of {d} m.",
    "Last in depth order comes {a}, at {d} m.",
)
FARTHEST_MARKED: tuple[str, ...] = (
    "The farthest of the marked objects is {a}, at a depth of {d} m.",
    "Among the marked objects, {a} lies deepest, at {d} m.",
    "Finally, {a} is the most distant marked object, {d} m deep.",
    "Of the marked objects, {a} is farthest back, at a depth of {d} m.",
    "Last in depth among the marks comes {a}, at {d} m.",
)
"""An unmarked object is farther than every marked one: the superlative is about the marks."""
SIDE: tuple[str, ...] = (
    "To the {side} of {anchor} {be} {objs}.",
    "{Objs} {be} on the {side} side of {anchor}.",
    "Looking to the {side} of {anchor}, you can see {objs}.",
    "From the camera's viewpoint, {objs} {sit} to the {side} of {anchor}.",
    "{Anchor} has {objs} on its {side}.",
    "On the {side} of {anchor}, there {be} {objs}.",
)
"""Objects on one side of the anchor (``side`` is ``left`` or ``right``)."""
LEFT_OF: tuple[str, ...] = (
    "{A} is to the left of {b}.",
    "From the camera's viewpoint, {a} sits left of {b}.",
    "{B} is to the right of {a}.",
    "{A} appears on the left and {b} on the right.",
    "{A} is farther to the left than {b}.",
    "{B} lies on the right-hand side of {a}.",
)
"""``a`` is left of ``b`` (the first object named is the one on the side named first)."""
DEPTH_GAP: tuple[str, ...] = (
    "{A} is {g} m closer to the camera than {b}.",
    "{B} lies {g} m farther back than {a}.",
    "In depth, {a} is {g} m in front of {b}.",
    "{B} sits {g} m deeper in the scene than {a}.",
    "The depth gap between {a} and {b} is {g} m, with {a} being closer.",
)
"""``a`` is nearer than ``b`` by ``g`` metres of depth."""
GROUP_ALL: tuple[str, ...] = (
    "There are {n} {plural} ({refs}) in view.",
    "The scene contains {n} {plural} ({refs}).",
    "{N} {plural} ({refs}) appear in the image.",
    "You can spot {n} {plural} ({refs}) in total.",
    "Altogether, {n} {plural} ({refs}) are visible.",
)
"""Every visible object of the category is marked: a full count."""
GROUP_MARKED: tuple[str, ...] = (
    "{N} of the marked objects are {plural} ({refs}).",
    "Among the marked objects, {n} are {plural} ({refs}).",
    "The marks include {n} {plural} ({refs}).",
    "{N} {plural} are marked ({refs}).",
    "Of the marked items, {n} are {plural} ({refs}).",
)
"""Only some visible objects of the category are marked: count the marked ones."""
CLOSE_GROUP: tuple[str, ...] = (
    "{Objs} stand close together.",
    "{Objs} are clustered near one another.",
    "{Objs} form a tight group.",
    "Close to one another we find {objs}.",
    "{Objs} are gathered within a small area.",
)
DISTANCE: tuple[str, ...] = (
    "{A} is {m} m from {b}.",
    "The distance between {a} and {b} is {m} m.",
    "{A} and {b} are {m} m apart.",
    "Measured centre to centre, {a} lies {m} m away from {b}.",
    "From {a} to {b} the distance is {m} m.",
    "{M} m separate {a} from {b}.",
)
SENTENCE_KINDS: dict[str, tuple[str, ...]] = {
    "nearest": NEAREST,
    "nearest_marked": NEAREST_MARKED,
    "next": NEXT,
    "same_depth": SAME_DEPTH,
    "farthest": FARTHEST,
    "farthest_marked": FARTHEST_MARKED,
    "side": SIDE,
    "left_of": LEFT_OF,
    "depth_gap": DEPTH_GAP,
    "group_all": GROUP_ALL,
    "group_marked": GROUP_MARKED,
    "close_group": CLOSE_GROUP,
    "distance": DISTANCE,
}
"""Every sentence kind of the caption and its phrasings."""

NUMBER_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
_IRREGULAR_PLURALS = {"shelf": "shelves", "knife": "knives", "person": "people", "leaf": "leaves"}


def plural(label: str) -> str:
    """English plural of a category name (last word): box -> boxes, shelf -> shelves."""
    head, _, last = label.rpartition(" ")
    if last in _IRREGULAR_PLURALS:
        word = _IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "z", "ch", "sh")):
        word = last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        word = last[:-1] + "ies"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, **values: str) -> str:
    """Format ``template``; a capitalised placeholder (``{A}``) gets the capitalised value."""
    full = dict(values)
    for k, v in values.items():
        if "{" + k.capitalize() in template:
            full[k.capitalize()] = _cap(v)
    return _cap(template.format(**full))


class Chooser:
    """Random choices that can be replayed: draws from ``rng`` and records them, or (with
    ``replay``) returns the recorded choices in order."""

    def __init__(self, rng: np.random.Generator | None = None, replay: Sequence[int] = ()):
        self.rng = rng
        self._replay = list(replay)
        self._pos = 0
        self.record: list[int] = []

    def index(self, n: int) -> int:
        """A choice in ``range(n)``."""
        if n <= 0:
            raise ValueError("nothing to choose from")
        if self.rng is not None:
            k = int(self.rng.integers(n))
        else:
            if self._pos >= len(self._replay):
                raise ValueError("replayed choices ran out: the scene no longer matches meta")
            k = int(self._replay[self._pos])
            self._pos += 1
        self.record.append(k)
        return k

    def phrasing(self, kind: str) -> tuple[int, str]:
        """A phrasing of sentence kind ``kind``."""
        options = SENTENCE_KINDS[kind]
        k = self.index(len(options))
        return k, options[k]


def mark_name(label: str, color: str, number: int) -> str:
    """``"chair (orange point-2)"``."""
    return f"{label} ({color} point-{number})"


def group_refs(color: str, numbers: Sequence[int]) -> str:
    """``"orange points-3, 4 and 6"`` (numbers sorted)."""
    return f"{color} points-" + join_items([str(n) for n in sorted(numbers)])


def compose_caption(
    facts: Sequence[ObjectFact],
    marks: dict[int, dict[str, Any]],
    complete_labels: set[str],
    chooser: Chooser,
    margins: RelationMargins,
    same_depth: float,
    max_distance: float,
    max_distances: int = 3,
    max_pairs: int = 2,
    unmarked_depths: Sequence[float] = (),
) -> tuple[str, list[dict[str, Any]]]:
    """The caption text and one statement record per sentence.

    ``marks`` maps object id -> ``{"color", "number"}``; ``complete_labels`` are categories
    whose visible objects are all marked (a full count may be stated); ``unmarked_depths`` are
    the depths of the other objects in view: when one is nearer (farther) than every marked
    object, the nearest (farthest) sentence says "among the marked objects".
    """
    by_id = {f.object_id: f for f in facts}
    the = {f.object_id: "the " + f.name for f in facts}
    sentences: list[str] = []
    records: list[dict[str, Any]] = []

    def say(kind: str, ids: Sequence[int], text: str, **extra: Any) -> None:
        sentences.append(text)
        records.append({"kind": kind, "ids": [int(i) for i in ids], **extra})

    # 1. nearest -> farthest
    order = sorted(facts, key=lambda f: (f.depth, f.object_id))
    nearer = any(u < order[0].depth for u in unmarked_depths)
    farther = any(u > order[-1].depth for u in unmarked_depths)
    for k, f in enumerate(order):
        d = f"{f.depth:.2f}"
        if k == 0:
            kind = "nearest_marked" if nearer else "nearest"
        elif k == len(order) - 1:
            kind = "farthest_marked" if farther else "farthest"
        elif f.depth - order[k - 1].depth < same_depth:
            kind = "same_depth"
        else:
            kind = "next"
        _, tpl = chooser.phrasing(kind)
        say(kind, [f.object_id], _fill(tpl, a=the[f.object_id], d=d), depth=float(d))

    rels = _relations(facts, margins)
    left_pairs = [r.ids for r in rels if r.kind == "left_of"]

    # 2. sides of the anchor (largest box volume)
    anchor = max(facts, key=lambda f: (f.size[0] * f.size[1] * f.size[2], -f.object_id))
    aid = anchor.object_id
    sides = {
        "left": [b for b, a in ((p[0], p[1]) for p in left_pairs) if a == aid],
        "right": [b for a, b in ((p[0], p[1]) for p in left_pairs) if a == aid],
    }
    side_order = ["left", "right"] if chooser.index(2) == 0 else ["right", "left"]
    for side in side_order:
        ids = sorted(sides[side], key=lambda i: by_id[i].center[0])
        if not ids:
            continue
        _, tpl = chooser.phrasing("side")
        many = len(ids) > 1
        text = _fill(
            tpl,
            side=side,
            anchor=the[aid],
            objs=join_items([the[i] for i in ids]),
            be="are" if many else "is",
            sit="sit" if many else "sits",
        )
        say("side", [aid, *ids], text, side=side)

    # 3. a few more left/right pairs (not involving the anchor)
    others = [p for p in left_pairs if aid not in p]
    for _ in range(min(max_pairs, len(others))):
        a, b = others.pop(chooser.index(len(others)))
        _, tpl = chooser.phrasing("left_of")
        say("left_of", [a, b], _fill(tpl, a=the[a], b=the[b]))

    # 4. one depth gap
    gaps = [r for r in rels if r.kind == "nearer_than"]
    if gaps and chooser.index(3) > 0:
        r = gaps[chooser.index(len(gaps))]
        a, b = r.ids
        g = f"{by_id[b].depth - by_id[a].depth:.2f}"
        _, tpl = chooser.phrasing("depth_gap")
        say("depth_gap", [a, b], _fill(tpl, a=the[a], b=the[b], g=g), gap=float(g))

    # 5. groups
    for r in rels:
        if r.kind == "same_category":
            label = by_id[r.ids[0]].label
            color = marks[r.ids[0]]["color"]
            refs = group_refs(color, [marks[i]["number"] for i in r.ids])
            kind = "group_all" if label in complete_labels else "group_marked"
            _, tpl = chooser.phrasing(kind)
            n = NUMBER_WORDS[len(r.ids)] if len(r.ids) < len(NUMBER_WORDS) else str(len(r.ids))
            say(kind, r.ids, _fill(tpl, n=n, plural=plural(label), refs=refs), count=len(r.ids))
    for r in rels:
        if r.kind == "close_group":
            _, tpl = chooser.phrasing("close_group")
            say("close_group", r.ids, _fill(tpl, objs=join_items([the[i] for i in r.ids])))

    # 6. distances, shortest first
    dists = sorted(
        (r for r in rels if r.kind == "distance" and r.value <= max_distance),
        key=lambda r: (r.value, r.ids),
    )
    if dists:
        n_dist = 1 + chooser.index(min(max_distances, len(dists)))
        for r in dists[:n_dist]:
            a, b = r.ids if chooser.index(2) == 0 else r.ids[::-1]
            m = f"{r.value:.2f}"
            _, tpl = chooser.phrasing("distance")
            say("distance", [a, b], _fill(tpl, a=the[a], b=the[b], m=m), distance=float(m))
    return " ".join(sentences), records


def pick_objects(
    ids: Sequence[int],
    sizes: dict[int, float],
    prominent: float,
    limit: int,
    rng: np.random.Generator,
) -> list[int]:
    """Up to ``limit`` of ``ids``, sorted: all when they fit; otherwise the prominent ones
    (``sizes`` at least ``prominent``, e.g. mask pixels; largest first) and a random pick of
    the rest (one ``rng`` draw)."""
    ids = sorted(int(o) for o in ids)
    if len(ids) <= limit:
        return ids
    big = sorted((o for o in ids if sizes.get(o, 0) >= prominent), key=lambda o: (-sizes[o], o))[
        :limit
    ]
    rest = [o for o in ids if o not in big]
    n = limit - len(big)
    chosen = [rest[int(i)] for i in rng.choice(len(rest), n, replace=False)] if n else []
    return sorted(big + chosen)


@register
class SceneCaption(Task):
    """Ground-truth layout caption of the marked objects of one image."""

    name = "si_scene_caption"
    scenario = "single_image"
    needs = TaskNeeds(mask=True)
    version = "2"

    MIN_OBJECTS: ClassVar[int] = 2
    """Frames with fewer visible objects get no caption."""
    MAX_OBJECTS: ClassVar[int] = 8
    """At most this many objects are marked (a random subset beyond; the palette has 8 colours
    besides white and black, and categories take one colour each)."""
    SAME_DEPTH: ClassVar[float] = 0.15
    """Consecutive objects closer than this in depth (m) are 'at nearly the same depth'."""
    MARGINS: ClassVar[RelationMargins] = RelationMargins(
        lateral=0.5, depth_abs=0.15, depth_rel=0.10, close=1.0
    )
    """Left/right needs a 0.5 m x gap; a depth gap is stated when >= 0.15 m and >= 10%;
    clusters are objects whose centres are all within 1 m of each other."""
    MAX_DISTANCE: ClassVar[float] = 3.0
    """Only pairs closer than this (m) have their distance stated."""
    COUNT_PIXELS: ClassVar[int] = 100
    """An unmarked object of a category with at least this many mask pixels (frame resolution)
    is 'visible', so the marked ones are not all of them and no full count is stated."""
    PROMINENT_SHARE: ClassVar[float] = 0.02
    """Objects covering at least this share of the image are marked first when more than
    :attr:`MAX_OBJECTS` are visible (largest first; the rest of the budget is a random pick)."""
    MAX_PER_FRAME: ClassVar[int] = 2
    """At most this many captions per frame (different marks and wording)."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        frames = [f for f in sorted(scene.frames, key=lambda f: f.id) if f.mask is not None]
        pool = []
        for frame in frames:
            view = ctx.view(scene, frame)
            if len(view.visible_ids) >= self.MIN_OBJECTS:
                pool.append(view)
        if not pool or budget <= 0:
            return
        emitted = 0
        seen: set[str] = set()
        for _ in range(self.MAX_PER_FRAME):
            for k in rng.permutation(len(pool)):
                sample = self._make(scene, pool[int(k)], rng)
                if sample.id in seen:
                    continue
                seen.add(sample.id)
                yield sample
                emitted += 1
                if emitted >= budget:
                    return

    def _make(self, scene: Scene, view: FrameView, rng: np.random.Generator) -> Sample:
        frame = view.frame
        ids = pick_objects(
            view.visible_ids,
            view.pixel_counts,
            self.PROMINENT_SHARE * frame.width * frame.height,
            self.MAX_OBJECTS,
            rng,
        )
        labels = sorted({view.object(o).label for o in ids})
        colors = dict(zip(labels, pick_colors(rng, len(labels)), strict=True))
        numbers = [int(n) + 1 for n in rng.permutation(len(ids))]
        fo = frame_objects(view)
        marks = {
            oid: {
                "color": colors[view.object(oid).label],
                "number": num,
                "xy": list(fo.model_point(oid)),
            }
            for oid, num in zip(ids, numbers, strict=True)
        }
        p_idx, prompt = pick(rng, PROMPTS)
        chooser = Chooser(rng)
        caption, statements = self._caption(view, ids, marks, chooser)
        image = draw_marks(
            fo.image(),
            [PointMark(tuple(m["xy"]), m["color"], str(m["number"])) for m in marks.values()],
            copy=False,
        )
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(None, prompt), assistant(caption)],
            images=[image],
            answer=caption,
            reward={"mode": "caption", "ground_truth": caption},
            meta={
                "scene_id": scene.id,
                "frame_ids": [view.frame.id],
                "object_ids": ids,
                "visible_fraction": visible_fractions([view], ids),
                "marks": {str(k): v for k, v in marks.items()},
                "prompt": p_idx,
                "choices": chooser.record,
                "statements": statements,
            },
        )

    def _caption(
        self, view: FrameView, ids: list[int], marks: dict[int, dict[str, Any]], chooser: Chooser
    ) -> tuple[str, list[dict[str, Any]]]:
        fo = frame_objects(view)
        names = {
            oid: mark_name(view.object(oid).label, m["color"], m["number"])
            for oid, m in marks.items()
        }
        facts = object_facts(
            view,
            ids,
            names=names,
            marks={oid: f"{m['color']} point-{m['number']}" for oid, m in marks.items()},
            depths={oid: fo.depth(oid) for oid in ids},
            bboxes={oid: fo.model_box(oid) for oid in ids},
        )
        known = {o.id for o in view.scene.objects}
        others = [
            o
            for o, c in view.pixel_counts.items()
            if o in known and o not in marks and c >= self.COUNT_PIXELS
        ]
        complete = {f.label for f in facts} - {view.object(o).label for o in others}
        caption, statements = compose_caption(
            facts,
            marks,
            complete,
            chooser,
            self.MARGINS,
            self.SAME_DEPTH,
            self.MAX_DISTANCE,
            unmarked_depths=[fo.depth(o) for o in others],
        )
        return caption, statements

    def teacher_prompt(self, scene: Scene, meta: dict, image: Image.Image) -> TeacherPrompt:
        """A teacher-VLM request (:func:`~vst.engine.teacher.build_caption_prompt`) for the
        frame and marks of a sample of this task; ``image`` is the sample's marked image."""
        view = FrameView(scene, scene.frame(meta["frame_ids"][0]), EngineSettings())
        marks = {int(k): v for k, v in meta["marks"].items()}
        ids = [int(o) for o in meta["object_ids"]]
        names = {
            o: mark_name(view.object(o).label, m["color"], m["number"]) for o, m in marks.items()
        }
        facts = object_facts(
            view,
            ids,
            names=names,
            marks={o: f"{m['color']} point-{m['number']}" for o, m in marks.items()},
        )
        return build_caption_prompt(image, facts)

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Rewrite the caption from the scene (depths, boxes, masks) and the recorded marks and
        choices."""
        view = FrameView(scene, scene.frame(meta["frame_ids"][0]), EngineSettings())
        marks = {int(k): v for k, v in meta["marks"].items()}
        ids = [int(o) for o in meta["object_ids"]]
        caption, _ = self._caption(view, ids, marks, Chooser(replay=meta["choices"]))
        return caption
