"""``mi_det3d``: 9-DoF 3D detection of one category per turn across 2-3 views, every box in the
camera frame of image 1 (the world frame of the sample).

Sample: the FoV-unified frames (:mod:`vst.engine.fov`, at Qwen2.5-VL's size) in the first user turn,
then the camera / axes / box-format preamble of image 1 (its stated FoV and size) with a
world-frame note (:data:`WORLD_NOTES`: image 1's camera frame is the world frame, objects seen
only in other images included), the output instruction and a request for one category. The
answer is the fenced JSON list of ``{"bbox_3d": [...], "label": ...}``
(:func:`vst.geometry.text.box3d_to_text`: X right, Y down, Z forward of camera 1, metres,
angles in degrees / 180, 2 decimals), each object once, ordered near to far along camera 1's
Z (then object id). Multi-turn samples (:attr:`MultiViewDet3DTask.MULTI_TURN_FRACTION` of the
sets with two or more categories) ask 2..:attr:`MultiViewDet3DTask.MAX_TURNS` categories one
after another; the images come in the first turn only.

Rules:

* View sets: ordered frame pairs sharing at least ``MIN_SHARED`` askable objects
  (:func:`vst.engine.multiview.frame_pairs`); with probability ``THREE_VIEW_FRACTION`` a third
  frame that also shares objects with frame 1 is added. Frame 1 is the reference.
* Targets of a category: its objects that are askable (``FrameView.visible_ids``: enough mask
  pixels, not too truncated, centre in front of that camera) in at least one view; boxes are the
  scene's boxes moved into camera 1 (:attr:`vst.engine.multiview.MultiView.boxes_ref`).
* Ambiguous categories are skipped: an instance with at least ``AMBIGUOUS_MIN_PIXELS`` mask
  pixels in some view that is askable in none makes its category unaskable for the set.
* Each (view set, last-turn category) pair is used at most once per call; sets are visited in
  a shuffled round-robin.

Meta: ``frame_ids`` (frame 1 first), ``turns`` = per turn ``{"label", "object_ids" (answer
order), "seen_in" (view indices per object), "phrasing"}``, ``variant``, ``preamble`` /
``world_note`` / ``output_line`` indices, ``layout``, ``unified`` and ``intrinsics`` (one per
image), ``askable_categories``. Reward: ``det3d``, ground truth = the LAST turn's boxes
``[{"bbox_3d": [9 floats, angles in degrees], "label"}]`` in camera 1's frame.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from vst.engine.context import EngineContext, visible_fractions
from vst.engine.detection import category_answer, derive_turn_answer, turn_sequence
from vst.engine.fov import N_PREAMBLES, unified_view
from vst.engine.multiview import MultiView, frame_pairs
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.scheduling import round_robin
from vst.scenes.model import Frame, Scene

CAMERA_LEADS: tuple[str, ...] = (
    "The camera details below describe image 1.",
    "Camera of image 1:",
    "The following parameters are those of the camera that took image 1.",
)
"""Sentence before the preamble (the preamble speaks of "this image")."""

WORLD_NOTES: tuple[str, ...] = (
    "This camera frame of image 1 is the world frame for every image: give all boxes in it, "
    "also for objects that only the other images show.",
    "Image 1's camera frame serves as the shared world frame; express every 3D box in it, "
    "whichever image the object appears in.",
    "All images share one world frame, the camera frame of image 1; objects visible only in "
    "later images are also given in that frame.",
)
"""``world_note`` of :func:`vst.engine.fov.camera_preamble`."""

REQUESTS: tuple[str, ...] = (
    "Detect every {label} visible in any of the images and give its 3D bounding box in the "
    "coordinate frame of image 1.",
    'Find all objects of the category "{label}" across the views and output their 3D bounding '
    "boxes in the first camera's frame.",
    "Where is each {label} in 3D? Using all the images, list the 3D bounding box of every one "
    "in image 1's camera coordinates.",
    "Give the 3D bounding box of every {label} that appears in at least one image, expressed "
    "in the camera frame of image 1.",
    "Combine the views and localize each {label} with a 3D bounding box in the world frame "
    "(the camera of image 1).",
    "Output 3D boxes, in image 1 coordinates, for all instances of {label} seen in these images.",
)
"""Request phrasings (any turn)."""

FOLLOW_UPS: tuple[str, ...] = (
    "Now the same for {label}.",
    "Next, every {label} across the images, please.",
    "Same frame and format, this time for {label}.",
    "And each {label}?",
    "Continue with the category {label}.",
)
"""Extra phrasings for turns after the first."""

OUTPUT_LINES: tuple[str, ...] = (
    'Answer with a JSON list; each entry holds the category in "label" and the 3D box in '
    '"bbox_3d". An object seen in several images is listed once.',
    'Reply with a json list of {"bbox_3d": [...], "label": ...} entries, one per physical '
    "object (do not repeat an object that appears in more than one image).",
    'Return a JSON list of objects with "label" and "bbox_3d"; count every real object once, '
    "however many views show it.",
)
"""Output instruction of the first turn."""


@register
class MultiViewDet3DTask(Task):
    """Detection of one category per turn over 2-3 views, boxes in camera 1's frame."""

    name = "mi_det3d"
    scenario = "multi_image"
    needs = TaskNeeds(min_frames=2)
    version = "2"

    MIN_SHARED: ClassVar[int] = 1
    """Askable objects every extra view shares with frame 1."""
    THREE_VIEW_FRACTION: ClassVar[float] = 0.3
    """Share of view sets that get a third frame (when one shares objects with frame 1)."""
    MULTI_TURN_FRACTION: ClassVar[float] = 0.5
    """Share of multi-turn samples among sets with >= 2 askable categories."""
    MAX_TURNS: ClassVar[int] = 4
    AMBIGUOUS_MIN_PIXELS: ClassVar[int] = 1
    """An instance with this many mask pixels in a view but askable in no view makes its
    category ambiguous."""

    # -- selection -------------------------------------------------------------------------
    def view_sets(
        self, scene: Scene, ctx: EngineContext, rng: np.random.Generator
    ) -> list[list[Frame]]:
        """Ordered frame pairs sharing objects, some extended by a third frame (from ``rng``)."""
        pairs = frame_pairs(ctx, scene, min_shared=self.MIN_SHARED)
        partners: dict[str, list[Frame]] = {}
        for a, b in pairs:
            partners.setdefault(a.id, []).append(b)
        sets = []
        for a, b in pairs:
            extra = [c for c in partners[a.id] if c.id != b.id]
            if extra and rng.random() < self.THREE_VIEW_FRACTION:
                sets.append([a, b, extra[int(rng.integers(len(extra)))]])
            else:
                sets.append([a, b])
        return sets

    def categories(self, mv: MultiView) -> dict[str, list[int]]:
        """Askable categories of a view set -> target ids (sorted); ambiguous ones dropped."""
        targets: dict[str, list[int]] = {}
        for oid in mv.visible_any:
            targets.setdefault(mv.scene.object(oid).label, []).append(oid)
        askable = set(mv.visible_any)
        ambiguous = set()
        labels = {o.id: o.label for o in mv.scene.objects}
        for view in mv.views:
            for oid, count in view.pixel_counts.items():
                if oid in labels and oid not in askable and count >= self.AMBIGUOUS_MIN_PIXELS:
                    ambiguous.add(labels[oid])
        return {lab: ids for lab, ids in sorted(targets.items()) if lab not in ambiguous}

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        if budget <= 0 or len(scene.frames) < 2:
            return
        askable: list[tuple[MultiView, dict[str, list[int]], list[str]]] = []
        for frames in self.view_sets(scene, ctx, rng):
            mv = MultiView(scene, frames, ctx)
            cats = self.categories(mv)
            if cats:
                todo = [str(c) for c in rng.permutation(sorted(cats))]
                askable.append((mv, cats, todo))
        for (mv, cats, _), last in round_robin(askable, budget, rng):
            yield self._sample(mv, cats, last, rng)

    def _sample(
        self, mv: MultiView, cats: dict[str, list[int]], last: str, rng: np.random.Generator
    ) -> Sample:
        sequence = turn_sequence(list(cats), last, rng, self.MULTI_TURN_FRACTION, self.MAX_TURNS)
        uviews = [unified_view(v) for v in mv.views]
        preamble = int(rng.integers(N_PREAMBLES))
        lead = int(rng.integers(len(CAMERA_LEADS)))
        world = int(rng.integers(len(WORLD_NOTES)))
        output_line = int(rng.integers(len(OUTPUT_LINES)))
        layout = int(rng.integers(2))
        messages: list[dict[str, Any]] = []
        turns: list[dict[str, Any]] = []
        answer = ""
        ground_truth: list[dict[str, Any]] = []
        for t, label in enumerate(sequence):
            pool = REQUESTS if t == 0 else REQUESTS + FOLLOW_UPS
            phrasing = int(rng.integers(len(pool)))
            request = pool[phrasing].format(label=label)
            ids, answer, turn_truth = category_answer(
                label, cats[label], np.stack([mv.box_ref(i) for i in cats[label]])
            )
            if t == 0:
                text = "\n".join(
                    [
                        CAMERA_LEADS[lead],
                        uviews[0].preamble(preamble, world_note=WORLD_NOTES[world]),
                        OUTPUT_LINES[output_line],
                        request,
                    ]
                )
                images = [u.image for u in uviews]
                if layout == 0:
                    messages.append(user(*images, text))
                else:
                    items: list[Any] = []
                    for k, img in enumerate(images):
                        items += [f"Image {k + 1}:", img]
                    messages.append(user(*items, text))
            else:
                messages.append(user(request))
            messages.append(assistant(answer))
            turns.append(
                {
                    "label": label,
                    "object_ids": ids,
                    "seen_in": [mv.seen_in(i) for i in ids],
                    "phrasing": phrasing,
                }
            )
            ground_truth = turn_truth
        meta = {
            "scene_id": mv.scene.id,
            "frame_ids": mv.frame_ids,
            "variant": "multi_turn" if len(sequence) > 1 else "single_turn",
            "turns": turns,
            "preamble": preamble,
            "camera_lead": lead,
            "world_note": world,
            "output_line": output_line,
            "layout": layout,
            "unified": [u.meta() for u in uviews],
            "intrinsics": [u.intrinsics() for u in uviews],
            "askable_categories": sorted(cats),
            "visible_fraction": visible_fractions(
                mv.views, [o for t in turns for o in t["object_ids"]]
            ),
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[u.image for u in uviews],
            answer=answer,
            reward={"mode": "det3d", "ground_truth": ground_truth},
            meta=meta,
        )

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer from the scene's boxes moved into frame 1's camera."""
        frame = scene.frame(meta["frame_ids"][0])
        return derive_turn_answer(scene, frame, meta["turns"][-1])
