"""``video_metric``: metric quantities read from a video clip of the scene (VSI-Bench "Obj. Size",
"Abs. Dist.", "Room Size"); numeric answers, scored by mean relative accuracy.

Question kinds (``turn["kind"]``), all from the scene's world-frame ground truth:

* ``size`` — an object's longest dimension (max of its three box sizes), integer centimetres
  (``"87 cm"``);
* ``distance`` — the distance between two objects' box centres, metres with 2 decimals
  (``"2.35 m"``);
* ``room`` — the floor area of the room, ``scene.room.area`` (shoelace formula on the floor
  polygon), square metres with 1 decimal (``"18.6 square meters"``); only for scenes with a
  room.

Rounding is half-up. ``turn["value"]`` is the stated (rounded) number and the reward's ground
truth; ``turn["value_exact"]`` the unrounded one in the same unit.

The clip and the object choice follow :mod:`.rel_distance` (at most 16 evenly subsampled frames;
objects visible enough in the clip whose category no other object shows in it, named by
category). Each sample is a conversation of 1-:attr:`VideoMetric.MAX_TURNS` questions about the
same clip (the video in the first user turn; one room question at most); reward ``numeric`` on
the last turn.
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
from vst.engine.tasks.video._clips import scene_clip
from vst.engine.tasks.video.rel_distance import _unique_objects
from vst.scenes.model import Scene

KINDS = ("size", "distance", "room")
UNITS = {"size": "cm", "distance": "m", "room": "m2"}

TEMPLATES: dict[str, tuple[str, ...]] = {
    "size": (
        "How long is the longest side of the {a}, in centimeters?",
        "What is the largest dimension (length, width or height) of the {a}? Give it in "
        "centimeters.",
        "Estimate the size of the {a} along its longest dimension, in centimeters.",
        "In centimeters, what is the greatest of the length, width and height of the {a}?",
        "Tell me how many centimeters the {a} measures along its biggest dimension.",
        "Judging from the video, how big is the {a}? State its longest dimension in centimeters.",
    ),
    "distance": (
        "How far apart are the {a} and the {b}, measured between their centers, in meters?",
        "What is the distance in meters between the center of the {a} and the center of the {b}?",
        "Estimate the center-to-center distance between the {a} and the {b}, in meters.",
        "In meters, how far is the {a} from the {b} (center to center)?",
        "Measuring from the middle of each object, how many meters separate the {a} and the {b}?",
        "Judging from the video, what is the straight-line distance between the centers of the "
        "{a} and the {b}, in meters?",
    ),
    "room": (
        "What is the floor area of this room in square meters?",
        "How large is the room shown in the video? Give its area in square meters.",
        "Estimate the size of the room, in square meters of floor.",
        "In square meters, how much floor space does this room have?",
        "How many square meters does the room in the video cover? If several spaces are shown, "
        "count them all as one room.",
        "Judging from the video, what is the area of the room's floor in square meters?",
    ),
}
"""Questions per kind (objects by category name)."""

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


def metric_value(scene: Scene, kind: str, ids: list[int]) -> tuple[float, int | float, str]:
    """``(exact value, stated value, answer text)`` of a question, from the scene's ground
    truth: size in cm (stated as an int), distance in m (2 decimals), room area in m^2
    (1 decimal)."""
    if kind == "size":
        exact = float(np.max(scene.object(ids[0]).box[3:6])) * 100.0
        cm = int(round_half_up(exact))
        return exact, cm, f"{cm} cm"
    if kind == "distance":
        a, b = (scene.object(o).box[:3] for o in ids)
        exact = float(np.linalg.norm(a - b))
        m = round_half_up(exact, 2)
        return exact, m, f"{m:.2f} m"
    if kind == "room":
        if scene.room is None:
            raise ValueError(f"scene {scene.id!r} has no room")
        exact = float(scene.room.area)
        m2 = round_half_up(exact, 1)
        return exact, m2, f"{m2:.1f} square meters"
    raise ValueError(f"unknown metric kind {kind!r}; expected one of {KINDS}")


@register
class VideoMetric(Task):
    """Object size / centre distance / room area from a video clip (module docstring)."""

    name = "video_metric"
    scenario = "video"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    CLIP_FRAMES: ClassVar[int] = 16
    """Clips hold at most this many frames (the trajectory is subsampled evenly)."""
    MIN_SIZE_M: ClassVar[float] = 0.05
    """Skip objects whose longest dimension is below this (metres)."""
    MIN_DISTANCE_M: ClassVar[float] = 0.3
    """Skip object pairs whose centres are closer than this (metres)."""
    MIN_ROOM_AREA_M2: ClassVar[float] = 1.0
    """Skip room questions below this area (degenerate polygons)."""
    KIND_WEIGHTS: ClassVar[dict[str, float]] = {"size": 0.4, "distance": 0.4, "room": 0.2}
    """Relative odds of each kind per turn, among the kinds the scene still offers (a room has
    one area, so its questions repeat most)."""
    MAX_TURNS: ClassVar[int] = 3
    """At most this many questions per conversation."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` distinct conversations about the scene's clip."""
        clip = scene_clip(scene, self.CLIP_FRAMES)
        if budget <= 0 or clip is None:
            return
        objects = _unique_objects(clip, ctx)
        items = self._items(scene, objects)
        if not any(items.values()):
            return
        images = clip.images(ctx)
        fractions = visible_fractions(clip.views(ctx), objects)
        seen: set[str] = set()
        made = fails = 0
        while made < budget and fails < 5 * budget + 20:
            sample = self._conversation(scene, clip, items, images, rng, fractions)
            if sample.id in seen:
                fails += 1
                continue
            seen.add(sample.id)
            made += 1
            yield sample

    def _items(self, scene: Scene, objects: list[int]) -> dict[str, list[list[int]]]:
        """What can be asked, per kind: object id lists (one id, a pair, or none for room)."""
        boxes = np.stack([scene.object(o).box for o in objects]) if objects else np.zeros((0, 9))
        sizes = [
            [o] for o, b in zip(objects, boxes, strict=True) if b[3:6].max() >= self.MIN_SIZE_M
        ]
        i, j = np.triu_indices(len(objects), 1)
        far = np.linalg.norm(boxes[i, :3] - boxes[j, :3], axis=1) >= self.MIN_DISTANCE_M
        pairs = [[objects[a], objects[b]] for a, b in zip(i[far], j[far], strict=True)]
        room = scene.room is not None and scene.room.area >= self.MIN_ROOM_AREA_M2
        return {"size": sizes, "distance": pairs, "room": [[]] if room else []}

    def _conversation(self, scene, clip, items, images, rng, fractions) -> Sample:
        n_turns = int(rng.integers(1, self.MAX_TURNS + 1))
        left = {k: list(range(len(v))) for k, v in items.items()}
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
            },
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer text, recomputed from the world boxes / room polygon."""
        last = meta["turns"][-1]
        return metric_value(scene, last["kind"], [int(o) for o in last["ids"]])[2]
