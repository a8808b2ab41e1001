"""``video_metric``: metric quantities read from a video clip of the scene (VSI-Bench "Obj. Size",
"Abs. Dist.", "Room Size"); numeric answers, scored by mean relative accuracy.

Question kinds (``turn["kind"]``), all from the scene's world-frame ground truth:

* ``size`` — an object's longest dimension (max of its three box sizes), integer centimetres
  (``"87 cm"``);
* ``distance`` (the default distance kind) — the closest-point distance between two objects'
  3D boxes, as VSI-Bench measures it (:func:`.rel_distance.box_gap`: exact for oriented boxes,
  0 when they overlap), metres with 1 decimal (``"2.3 m"``); pairs closer than
  :attr:`VideoMetric.MIN_GAP_M` are not asked;
* ``center_distance`` — the distance between the boxes' centres, metres with 1 decimal, always
  worded as centre to centre;
* ``room`` — the floor area of the room, ``scene.room.area`` (shoelace formula on the floor
  polygon), square metres with 1 decimal (``"18.6 square meters"``); only when the clip shows
  most of the floor: ``meta["floor_coverage"]`` (:mod:`vst.scenes.floor_coverage`: a floor grid
  back-projected into the clip's frames with a depth test; frames without depth see nothing)
  must reach the run's ``min_floor_coverage`` (:class:`~vst.engine.context.EngineSettings`,
  0.8 by default).

Rounding is half-up. ``turn["value"]`` is the stated (rounded) number and the reward's ground
truth; ``turn["value_exact"]`` the unrounded one in the same unit.

VSI-Bench agreement (checked against the question templates and published ground truths quoted
by public copies of its QA generator and test rows, and against its per-scene metadata in
``shared/data/vsibench-meta``; ``tests/test_vsibench_task_logic.py`` runs this logic on those
288 scans):

* verified: the wording of object size ("What is the length of the longest dimension (length,
  width, or height) of the X, measured in centimeters?"), absolute distance ("Measuring from the
  closest point of each object, what is the distance between the X and the Y (in meters)?") and
  room size ("What is the size of this room (in square meters)? If multiple rooms are shown,
  estimate the size of the combined space."), each one of the phrasings; object size = the
  longest of the oriented box's ``axesLengths`` in cm; ground truths round sizes to whole
  centimetres and distances and room sizes to 1 decimal (e.g. ``"211"``, ``"1.9"``,
  ``"30.9"``);
* UNVERIFIED: VSI-Bench's own distance is computed from points sampled in the two boxes (the
  exact box distance here is its limit); its room size is its metadata's ``room_size``, whose
  construction is unpublished (here: the room polygon's area); whether it rounds half-up or
  half-to-even.

The clip and the object choice follow :mod:`.rel_distance` (at most 16 evenly subsampled frames;
objects visible enough in the clip whose category no other object shows in it, named by
category). Each sample is a conversation of 1-:attr:`VideoMetric.MAX_TURNS` questions about the
same clip (the video in the first user turn); reward ``numeric`` on the last turn. No fact
(kind and objects) is asked twice about one clip, in one conversation or across the samples of
a scene; kinds are drawn by :attr:`VideoMetric.KIND_WEIGHTS` among those with facts left.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from vst.engine.choices import pick
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.tasks.single_image.measurement import round_half_up
from vst.engine.tasks.video._clips import Clip, scene_clip
from vst.engine.tasks.video.rel_distance import _unique_objects, box_gap, gap_matrix
from vst.scenes.floor_coverage import clip_floor_coverage
from vst.scenes.model import Scene

KINDS = ("size", "distance", "center_distance", "room")
UNITS = {"size": "cm", "distance": "m", "center_distance": "m", "room": "m2"}
DISTANCE_DECIMALS = 1
"""Distances are stated in metres with this many decimals (as VSI-Bench's ground truths)."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "size": (
        "What is the length of the longest dimension (length, width, or height) of the {a}, "
        "measured in centimeters?",
        "How long is the longest side of the {a}, in centimeters?",
        "What is the largest dimension (length, width or height) of the {a}? Give it in "
        "centimeters.",
        "Estimate the size of the {a} along its longest dimension, in centimeters.",
        "In centimeters, what is the greatest of the length, width and height of the {a}?",
        "Tell me how many centimeters the {a} measures along its biggest dimension.",
        "Judging from the video, how big is the {a}? State its longest dimension in centimeters.",
    ),
    "distance": (
        "Measuring from the closest point of each object, what is the distance between the {a} "
        "and the {b} (in meters)?",
        "Measuring from the closest point of each object, what is the direct distance between "
        "the {a} and the {b} (in meters)?",
        "What is the shortest distance between the {a} and the {b}, measured between their "
        "closest points, in meters?",
        "In meters, how wide is the gap between the nearest points of the {a} and the {b}?",
        "How far apart are the {a} and the {b} at their closest points? Give the distance in "
        "meters.",
        "Judging from the video, how many meters separate the closest point of the {a} from the "
        "closest point of the {b}?",
    ),
    "center_distance": (
        "How far apart are the {a} and the {b}, measured between their centers, in meters?",
        "What is the distance in meters between the center of the {a} and the center of the {b}?",
        "Estimate the center-to-center distance between the {a} and the {b}, in meters.",
        "In meters, how far is the center of the {a} from the center of the {b}?",
        "Measuring from the center of each object, how many meters separate the {a} and the {b}?",
        "Judging from the video, what is the straight-line distance between the centers of the "
        "{a} and the {b}, in meters?",
    ),
    "room": (
        "What is the size of this room (in square meters)? If multiple rooms are shown, estimate "
        "the size of the combined space.",
        "What is the floor area of this room in square meters?",
        "How large is the room shown in the video? Give its area in square meters.",
        "Estimate the size of the room, in square meters of floor.",
        "In square meters, how much floor space does this room have?",
        "How many square meters does the room in the video cover? If several spaces are shown, "
        "count them all as one room.",
        "Judging from the video, what is the area of the room's floor in square meters?",
    ),
}
"""Questions per kind (objects by category name); the first of ``size``, ``distance`` and
``room`` is VSI-Bench's own wording."""

PREAMBLES: tuple[str, ...] = (
    "",
    "",
    "",
    "These frames come from a video walking through a room. ",
    "The video shows one room from a moving camera. ",
    "Watch the frames of this indoor video. ",
)
"""Optional openings of a conversation's first question (none half of the time)."""

TAILS: tuple[str, ...] = (
    "",
    "",
    " Answer with a number and its unit.",
    " Reply with the number and its unit.",
    " Give a short numeric answer.",
    " Keep the answer brief.",
)
"""Optional endings (the empty one is twice as likely)."""


def _metres(exact: float) -> tuple[float, str]:
    m = round_half_up(exact, DISTANCE_DECIMALS)
    return m, f"{m:.{DISTANCE_DECIMALS}f} m"


def metric_value(scene: Scene, kind: str, ids: list[int]) -> tuple[float, int | float, str]:
    """``(exact value, stated value, answer text)`` of a question, from the scene's ground
    truth: size in cm (stated as an int), closest-point or centre distance in m (1 decimal),
    room area in m^2 (1 decimal)."""
    if kind == "size":
        exact = float(np.max(scene.object(ids[0]).box[3:6])) * 100.0
        cm = int(round_half_up(exact))
        return exact, cm, f"{cm} cm"
    if kind == "distance":
        exact = box_gap(*(scene.object(o).box for o in ids))
        return exact, *_metres(exact)
    if kind == "center_distance":
        a, b = (scene.object(o).box[:3] for o in ids)
        exact = float(np.linalg.norm(a - b))
        return exact, *_metres(exact)
    if kind == "room":
        if scene.room is None:
            raise ValueError(f"scene {scene.id!r} has no room")
        exact = float(scene.room.area)
        m2 = round_half_up(exact, 1)
        return exact, m2, f"{m2:.1f} square meters"
    raise ValueError(f"unknown metric kind {kind!r}; expected one of {KINDS}")


@register
class VideoMetric(Task):
    """Object size / closest-point or centre distance / room area from a video clip (module
    docstring)."""

    name = "video_metric"
    scenario = "video"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    CLIP_FRAMES: ClassVar[int] = 16
    """Clips hold at most this many frames (the trajectory is subsampled evenly)."""
    MIN_SIZE_M: ClassVar[float] = 0.05
    """Skip objects whose longest dimension is below this (metres)."""
    MIN_GAP_M: ClassVar[float] = 0.2
    """Skip ``distance`` pairs whose boxes' closest points are nearer than this (metres; touching
    objects would ask for 0, which relative accuracy cannot score)."""
    MIN_DISTANCE_M: ClassVar[float] = 0.3
    """Skip ``center_distance`` pairs whose centres are closer than this (metres)."""
    MIN_ROOM_AREA_M2: ClassVar[float] = 1.0
    """Skip room questions below this area (degenerate polygons)."""
    KIND_WEIGHTS: ClassVar[dict[str, float]] = {
        "size": 0.35,
        "distance": 0.35,
        "center_distance": 0.1,
        "room": 0.2,
    }
    """Relative odds of each kind per turn, among the kinds with facts left (closest-point
    distance is the default distance kind; a clip has one room fact)."""
    MAX_TURNS: ClassVar[int] = 3
    """At most this many questions per conversation."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` conversations about the scene's clip, no fact asked twice."""
        clip = scene_clip(scene, self.CLIP_FRAMES)
        if budget <= 0 or clip is None:
            return
        objects = _unique_objects(clip, ctx)
        items, coverage = ctx.memo(
            (self.name, scene.id, tuple(clip.frame_ids)),
            lambda: self._items(scene, clip, objects, ctx),
        )
        left = {k: list(range(len(v))) for k, v in items.items()}
        if not any(left.values()):
            return
        images = clip.images(ctx)
        fractions = visible_fractions(clip.views(ctx), objects)
        made = 0
        while made < budget and any(left.values()):
            yield self._conversation(scene, clip, items, left, coverage, images, rng, fractions)
            made += 1

    def floor_coverage(self, scene: Scene, clip: Clip, ctx: EngineContext) -> float:
        """Fraction of the room's floor the clip shows (0 without a room), rounded to 3
        decimals."""
        if scene.room is None:
            return 0.0
        views = clip.views(ctx)
        cover = clip_floor_coverage(scene.room, scene.boxes, clip.frames, [v.depth for v in views])
        return round(cover, 3)

    def _items(
        self, scene: Scene, clip: Clip, objects: list[int], ctx: EngineContext
    ) -> tuple[dict[str, list[list[int]]], float | None]:
        """What can be asked, per kind (object id lists: one id, a pair, or none for room), and
        the clip's floor coverage (None without a room big enough to ask about). Read-only:
        ``generate`` memoises it per scene and clip."""
        boxes = np.stack([scene.object(o).box for o in objects]) if objects else np.zeros((0, 9))
        sizes = [
            [o] for o, b in zip(objects, boxes, strict=True) if b[3:6].max() >= self.MIN_SIZE_M
        ]
        i, j = np.triu_indices(len(objects), 1)
        gaps = gap_matrix(boxes)[i, j] if len(objects) > 1 else np.zeros(0)
        centres = np.linalg.norm(boxes[i, :3] - boxes[j, :3], axis=1)
        pairs = {
            "distance": [
                [objects[a], objects[b]]
                for a, b in zip(i[gaps >= self.MIN_GAP_M], j[gaps >= self.MIN_GAP_M], strict=True)
            ],
            "center_distance": [
                [objects[a], objects[b]]
                for a, b in zip(
                    i[centres >= self.MIN_DISTANCE_M],
                    j[centres >= self.MIN_DISTANCE_M],
                    strict=True,
                )
            ],
        }
        coverage = None
        room: list[list[int]] = []
        if scene.room is not None and scene.room.area >= self.MIN_ROOM_AREA_M2:
            coverage = self.floor_coverage(scene, clip, ctx)
            if coverage >= ctx.settings.min_floor_coverage:
                room = [[]]
        return {"size": sizes, **pairs, "room": room}, coverage

    def _conversation(
        self, scene, clip, items, left, coverage, images, rng, fractions: dict
    ) -> Sample:
        """One conversation; draws its facts out of ``left`` (shared by the scene's samples)."""
        n_turns = int(rng.integers(1, self.MAX_TURNS + 1))
        messages: list[dict] = []
        turns: list[dict] = []
        for t in range(n_turns):
            kinds = [k for k in KINDS if left[k]]
            if not kinds:
                break
            w = np.array([self.KIND_WEIGHTS[k] for k in kinds])
            kind = kinds[int(rng.choice(len(kinds), p=w / w.sum()))]
            j = left[kind].pop(int(rng.integers(len(left[kind]))))
            ids = [int(o) for o in items[kind][j]]
            labels = [scene.object(o).label for o in ids]
            q_idx, template = pick(rng, TEMPLATES[kind])
            t_idx, tail = pick(rng, TAILS)
            p_idx, preamble = pick(rng, PREAMBLES) if t == 0 else (0, "")
            names = dict(zip("ab", labels, strict=False))
            question = preamble + template.format(**names) + tail
            exact, value, answer = metric_value(scene, kind, ids)
            messages.append(user(VIDEO, question) if t == 0 else user(question))
            messages.append(assistant(answer))
            turns.append(
                {
                    "kind": kind,
                    "ids": ids,
                    "labels": labels,
                    "unit": UNITS[kind],
                    "value": value,
                    "value_exact": exact,
                    "answer": answer,
                    "phrasing": [p_idx, q_idx, t_idx],
                }
            )
        last = turns[-1]
        room = any(tr["kind"] == "room" for tr in turns)
        ids = sorted({o for tr in turns for o in tr["ids"]})
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[],
            videos=[list(images)],
            answer=last["answer"],
            reward={"mode": "numeric", "ground_truth": last["value"]},
            meta={
                "scene_id": scene.id,
                **clip.meta(),
                "object_ids": ids,
                "visible_fraction": {str(o): fractions[str(o)] for o in ids},
                "turns": turns,
                **({"floor_coverage": coverage} if room else {}),
            },
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer text, recomputed from the world boxes / room polygon."""
        last = meta["turns"][-1]
        return metric_value(scene, last["kind"], [int(o) for o in last["ids"]])[2]
