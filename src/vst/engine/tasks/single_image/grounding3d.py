"""``si_grounding3d``: interpret a given 3D box — name the object it encloses (and its 2D box).

Sample: the FoV-unified frame (:mod:`vst.engine.fov`, stored at the size Qwen2.5-VL's processor
gives it, which the prompt states) with the same camera /
axes / box-format preamble as ``si_det3d``, then a question stating one object's 9-DoF box in
the camera frame (``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]``, metres, angles in
degrees / 180, 2 decimals, exactly as detection answers write it).

Variants (:attr:`Grounding3DTask.BOX2D_FRACTION` of the samples ask for the 2D box too):

* ``label``: the answer is the object's category name, e.g. ``chair``.
* ``label_bbox2d``: the answer is ``<name>: [x1, y1, x2, y2]`` (:func:`format_grounding_answer`,
  parsed back by :func:`parse_grounding_answer`): the tight box of the object's instance mask,
  scaled to the stored image (the pixels the model gets), inclusive integer pixel bounds.

Rules: any object of ``FrameView.visible_ids`` can be asked about (the box is the reference,
so the label need not be unique in the image), unless the box does not single out one object:
another scene object's box overlapping it with 3D IoU >= :attr:`Grounding3DTask.MAX_OTHER_IOU`.
Each (frame, object) pair is used at most once per scene.

Reward: ``exact``; ground truth = the name (variant ``label``) or ``{"label": name, "bbox_2d":
[x1, y1, x2, y2]}`` (variant ``label_bbox2d``: the label is matched exactly, the box is stored
for IoU-style scoring).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.fov import N_PREAMBLES, resize_unified, scale_bbox2d, unified_view, unify_frame
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.scheduling import round_robin
from vst.geometry.iou import box3d_iou
from vst.geometry.text import ANGLE_SCALE, DECIMALS, wrap_degrees
from vst.scenes.model import Scene

QUESTIONS = (
    "Which object is enclosed by the 3D bounding box {box}?",
    "What is inside the 3D box {box}?",
    "Name the object whose 3D bounding box is {box}.",
    "The 3D box {box} fits exactly one object in the image. What is it?",
    "Identify the object located in the 3D bounding box {box}.",
    "Tell me which object occupies the 3D region {box}.",
)
"""Question phrasings; ``{box}`` is the 9-number box text."""

LABEL_INSTRUCTIONS = (
    "Answer with the object's category name only.",
    "Reply with a single word or phrase: the category of the object.",
    "Give just the object's name.",
)
"""Answer instructions of the ``label`` variant."""

BOX2D_INSTRUCTIONS = (
    "Answer with its category name, a colon and its 2D bounding box in pixels of this image, "
    "as name: [x1, y1, x2, y2].",
    "Reply in the form name: [x1, y1, x2, y2], where the 2D box is given in absolute pixel "
    "coordinates of the image (top-left and bottom-right corners).",
    "Give the object's name and then its tight 2D box in image pixels, written as "
    "name: [x1, y1, x2, y2].",
)
"""Answer instructions of the ``label_bbox2d`` variant."""

_ANSWER_RE = re.compile(
    r"^\s*(?P<label>[^:\[\]]*?)\s*(?::\s*\[\s*(?P<box>-?\d+(?:\s*,\s*-?\d+){3})\s*\])?\s*\.?\s*$"
)


def box_text(box: np.ndarray | list[float]) -> str:
    """One 9-DoF box (angles in degrees) as answer-format text: ``[x, y, z, ..., roll]`` with
    angles wrapped to (-180, 180] and divided by 180, every value rounded to 2 decimals."""
    b = np.asarray(box, dtype=np.float64).reshape(9)
    values = np.concatenate([b[:6], wrap_degrees(b[6:9]) / ANGLE_SCALE])
    return json.dumps([round(float(v), DECIMALS) + 0.0 for v in values])


def format_grounding_answer(label: str, bbox: tuple[int, int, int, int] | None = None) -> str:
    """``label`` alone, or ``"label: [x1, y1, x2, y2]"`` with integer pixel bounds."""
    if bbox is None:
        return label
    return f"{label}: [{', '.join(str(int(v)) for v in bbox)}]"


def parse_grounding_answer(text: str) -> tuple[str, tuple[int, int, int, int] | None]:
    """Inverse of :func:`format_grounding_answer`: ``(label, bbox or None)``.

    The label is stripped (a trailing full stop dropped); text that does not match the format
    comes back as ``(text.strip(), None)``.
    """
    m = _ANSWER_RE.match(text)
    if m is None:
        return text.strip(), None
    box = m.group("box")
    bbox = None if box is None else tuple(int(v) for v in box.split(","))
    return m.group("label"), bbox  # type: ignore[return-value]


@register
class Grounding3DTask(Task):
    """Name the object a given 3D box encloses (optionally with its 2D box)."""

    name = "si_grounding3d"
    scenario = "single_image"
    needs = TaskNeeds(mask=True)
    version = "2"

    MAX_OTHER_IOU: ClassVar[float] = 0.5
    """Skip a target whose box has 3D IoU >= this with any other object's box."""
    BOX2D_FRACTION: ClassVar[float] = 0.5
    """Share of samples that also ask for the 2D box."""

    def candidates(self, view: FrameView) -> list[int]:
        """Visible objects whose box singles them out (IoU with every other box below the
        margin), sorted by id."""
        ids = view.visible_ids
        if not ids or view.mask is None:
            return []
        boxes = view.boxes_cam
        index = {o.id: i for i, o in enumerate(view.scene.objects)}
        rows = [index[i] for i in ids]
        iou = box3d_iou(boxes[rows], boxes)
        iou[np.arange(len(rows)), rows] = 0.0
        return [oid for oid, r in zip(ids, iou.max(axis=1), strict=True) if r < self.MAX_OTHER_IOU]

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        frames = sorted(scene.frames, key=lambda f: f.id)
        askable: list[tuple[FrameView, list[int]]] = []
        for frame in frames:
            view = ctx.view(scene, frame)
            ids = self.candidates(view)
            if ids:
                askable.append((view, [int(i) for i in rng.permutation(ids)]))
        for (view, _), oid in round_robin(askable, budget, rng):
            yield self._sample(scene, view, oid, rng)

    def _sample(self, scene: Scene, view: FrameView, oid: int, rng: np.random.Generator) -> Sample:
        uview = unified_view(view)
        label = view.object(oid).label
        box = view.box_cam(oid)
        with_box = bool(rng.random() < self.BOX2D_FRACTION)
        preamble = int(rng.integers(N_PREAMBLES))
        phrasing = int(rng.integers(len(QUESTIONS)))
        instructions = BOX2D_INSTRUCTIONS if with_box else LABEL_INSTRUCTIONS
        instruction = int(rng.integers(len(instructions)))
        question = QUESTIONS[phrasing].format(box=box_text(box))
        text = "\n".join([uview.preamble(preamble), question, instructions[instruction]])
        bbox = uview.bbox2d(oid) if with_box else None
        answer = format_grounding_answer(label, bbox)
        ground_truth: Any = label if bbox is None else {"label": label, "bbox_2d": list(bbox)}
        box_deg = box.copy()
        box_deg[6:9] = wrap_degrees(box_deg[6:9])
        meta = {
            "scene_id": scene.id,
            "frame_ids": [view.frame.id],
            "object_id": oid,
            "visible_fraction": visible_fractions([view], [oid]),
            "label": label,
            "variant": "label_bbox2d" if with_box else "label",
            "phrasing": phrasing,
            "instruction": instruction,
            "preamble": preamble,
            "box_3d": box_deg,
            "bbox_2d": None if bbox is None else list(bbox),
            "bbox_2d_frame": list(view.bbox2d(oid)) if with_box else None,
            "unified": uview.meta(),
            "intrinsics": uview.intrinsics(),
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(uview.image, text), assistant(answer)],
            images=[uview.image],
            answer=answer,
            reward={"mode": "exact", "ground_truth": ground_truth},
            meta=meta,
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The label of ``meta["object_id"]``; with its mask box (frame mask, scaled to the
        stored image: the frame unified to ``meta["unified"]["focal"]``, resized to the stored
        ``width`` x ``height``) for the ``label_bbox2d`` variant."""
        obj = scene.object(int(meta["object_id"]))
        if meta["variant"] == "label":
            return format_grounding_answer(obj.label)
        frame = scene.frame(meta["frame_ids"][0])
        mask = frame.load_mask()
        if mask is None:
            raise ValueError(f"frame {frame.id!r} has no mask")
        ys, xs = np.nonzero(mask == obj.id)
        if len(xs) == 0:
            raise ValueError(f"object {obj.id} has no mask pixels in frame {frame.id!r}")
        u = meta["unified"]
        unified = resize_unified(
            unify_frame(frame, float(u["focal"])), int(u["width"]), int(u["height"])
        )
        bbox = scale_bbox2d((xs.min(), ys.min(), xs.max(), ys.max()), unified)
        return format_grounding_answer(obj.label, bbox)
