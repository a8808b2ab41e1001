"""``si_det3d``: 9-DoF 3D detection of one category per turn on a FoV-unified image.

Sample: the FoV-unified frame (:mod:`vst.engine.fov`, at Qwen2.5-VL's size) in the first user turn,
with the camera / axes / box-format preamble, the output instruction and a request for one
category; the answer is the fenced JSON list of ``{"bbox_3d": [...], "label": ...}`` of every
target of that category (:func:`vst.geometry.text.box3d_to_text`: camera frame X right, Y down,
Z forward, metres, angles in degrees / 180, 2 decimals), ordered near to far (box centre z,
then object id). Multi-turn samples (:attr:`Det3DTask.MULTI_TURN_FRACTION` of the frames with
two or more categories) ask for 2..:attr:`Det3DTask.MAX_TURNS` distinct categories one after
another, one answer per turn; the image comes in the first turn only.

Rules:

* Targets are the frame's ``FrameView.visible_ids`` (enough mask pixels, not too truncated,
  centre in front of the camera, not mostly occluded); boxes are ``FrameView.box_cam``.
* Ambiguous categories are skipped: if any instance of a category has at least
  :attr:`Det3DTask.AMBIGUOUS_MIN_PIXELS` mask pixels in the frame but is not a target (too few
  pixels, too truncated, mostly occluded, centre behind the camera), nobody could say whether it
  belongs in the answer, so the category is not asked about in that frame. Instances with no
  pixels at all (fully occluded or out of view) are not part of the answer.
* Each (frame, last-turn category) pair is used at most once per scene; frames are visited in a
  shuffled round-robin so the budget spreads over the scene.

Meta: ``turns`` = per turn ``{"label", "object_ids" (answer order), "phrasing"}`` (index into
:data:`REQUESTS` for the first turn, into ``REQUESTS + FOLLOW_UPS`` after it), ``variant``
(``single_turn`` | ``multi_turn``), ``preamble`` / ``output_line`` indices, ``unified`` (stored
image size, stated FoV, focal), ``intrinsics`` (the source camera), ``askable_categories``.

Reward: ``det3d`` with ground truth = the LAST turn's boxes ``[{"bbox_3d": [9 floats, angles in
degrees, full precision], "label": ...}]``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.detection import category_answer, derive_turn_answer, turn_sequence
from vst.engine.fov import N_PREAMBLES, camera_preamble, unified_view
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.scheduling import round_robin
from vst.geometry.cameras import FovUnified
from vst.scenes.model import Scene

REQUESTS = (
    "Detect every {label} in the image and give its 3D bounding box.",
    'Find all objects of the category "{label}" and output their 3D bounding boxes.',
    "Where is each {label} in 3D? List the 3D bounding box of every one.",
    "Give the 3D bounding box of every {label} you can see.",
    "Localize each {label} in the camera coordinate system with a 3D bounding box.",
    "Output 3D boxes for all instances of {label} in this image.",
)
"""Request phrasings (any turn)."""

FOLLOW_UPS = (
    "Now do the same for {label}.",
    "Next, the 3D bounding boxes of every {label}, please.",
    "Same format, this time for {label}.",
    "And every {label}?",
    "Continue with the category {label}.",
)
"""Extra phrasings for turns after the first (they lean on the conversation)."""

OUTPUT_LINES = (
    'Answer with a JSON list; each entry holds the object\'s category in "label" and its 3D '
    'bounding box in "bbox_3d".',
    'Reply with a json list of objects, each with a "label" (the category name) and a '
    '"bbox_3d" (its 3D box in the format above).',
    'Return the detections as a JSON list of {"bbox_3d": [...], "label": ...} entries.',
)
"""Output instruction of the first turn."""


def first_turn_text(
    unified: FovUnified, label: str, preamble: int = 0, output_line: int = 0, phrasing: int = 0
) -> str:
    """The text of a sample's first user turn: the camera preamble of ``unified``
    (:func:`~vst.engine.fov.camera_preamble` wording ``preamble``), output instruction
    ``OUTPUT_LINES[output_line]`` and request ``REQUESTS[phrasing]`` for ``label``, one per
    line. Inference on a user's image asks with the same text (:mod:`vst.models.detect`)."""
    request = REQUESTS[phrasing].format(label=label)
    return "\n".join([camera_preamble(unified, preamble), OUTPUT_LINES[output_line], request])


@register
class Det3DTask(Task):
    """9-DoF detection of one category per turn (single- and multi-turn), FoV-unified image."""

    name = "si_det3d"
    scenario = "single_image"
    needs = TaskNeeds()  # visibility from Frame.visible_pixels or the instance mask
    version = "2"

    MULTI_TURN_FRACTION: ClassVar[float] = 0.5
    """Share of multi-turn samples among frames with >= 2 askable categories."""
    MAX_TURNS: ClassVar[int] = 4
    """Most categories asked in one conversation."""
    AMBIGUOUS_MIN_PIXELS: ClassVar[int] = 1
    """A non-target instance with at least this many mask pixels makes its category ambiguous."""

    # -- selection -------------------------------------------------------------------------
    def categories(self, view: FrameView, labels: dict[int, str]) -> dict[str, list[int]]:
        """Askable categories of a frame -> their target ids (sorted); ambiguous ones dropped."""
        visible = set(view.visible_ids)
        targets: dict[str, list[int]] = {}
        for oid in view.visible_ids:
            targets.setdefault(labels[oid], []).append(oid)
        ambiguous = {
            labels[oid]
            for oid, count in view.pixel_counts.items()
            if oid in labels and oid not in visible and count >= self.AMBIGUOUS_MIN_PIXELS
        }
        return {lab: ids for lab, ids in sorted(targets.items()) if lab not in ambiguous}

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        labels = {o.id: o.label for o in scene.objects}
        frames = sorted(scene.frames, key=lambda f: f.id)
        askable: list[tuple[FrameView, dict[str, list[int]], list[str]]] = []
        for frame in frames:
            view = ctx.view(scene, frame)
            cats = self.categories(view, labels)
            if cats:
                todo = [str(c) for c in rng.permutation(sorted(cats))]
                askable.append((view, cats, todo))
        for (view, cats, _), last in round_robin(askable, budget, rng):
            yield self._sample(scene, view, cats, last, rng)

    def _sample(
        self,
        scene: Scene,
        view: FrameView,
        cats: dict[str, list[int]],
        last: str,
        rng: np.random.Generator,
    ) -> Sample:
        sequence = turn_sequence(list(cats), last, rng, self.MULTI_TURN_FRACTION, self.MAX_TURNS)
        uview = unified_view(view)
        preamble = int(rng.integers(N_PREAMBLES))
        output_line = int(rng.integers(len(OUTPUT_LINES)))
        messages: list[dict[str, Any]] = []
        turns: list[dict[str, Any]] = []
        answer = ""
        ground_truth: list[dict[str, Any]] = []
        for t, label in enumerate(sequence):
            pool = REQUESTS if t == 0 else REQUESTS + FOLLOW_UPS
            phrasing = int(rng.integers(len(pool)))
            request = pool[phrasing].format(label=label)
            ids, answer, turn_truth = category_answer(
                label, cats[label], np.stack([view.box_cam(i) for i in cats[label]])
            )
            if t == 0:
                text = first_turn_text(uview.unified, label, preamble, output_line, phrasing)
                messages.append(user(uview.image, text))
            else:
                messages.append(user(request))
            messages.append(assistant(answer))
            turns.append({"label": label, "object_ids": ids, "phrasing": phrasing})
            # the reward checks the last turn only
            ground_truth = turn_truth
        meta = {
            "scene_id": scene.id,
            "frame_ids": [view.frame.id],
            "variant": "multi_turn" if len(sequence) > 1 else "single_turn",
            "turns": turns,
            "preamble": preamble,
            "output_line": output_line,
            "unified": uview.meta(),
            "intrinsics": uview.intrinsics(),
            "askable_categories": sorted(cats),
            "visible_fraction": visible_fractions(
                [view], [o for t in turns for o in t["object_ids"]]
            ),
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[uview.image],
            answer=answer,
            reward={"mode": "det3d", "ground_truth": ground_truth},
            meta=meta,
        )

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer from the scene's boxes in the frame's camera."""
        frame = scene.frame(meta["frame_ids"][0])
        return derive_turn_answer(scene, frame, meta["turns"][-1])
