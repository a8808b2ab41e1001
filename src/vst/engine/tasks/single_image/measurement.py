"""``si_measurement``: metric size of marked objects, asked one after another (paper Table 24).

Each sample is a multi-turn conversation about one image: every user turn asks for one object's

* ``height`` — its vertical size, in integer centimetres (``"71 cm"``), only for upright
  objects (local up axis within :attr:`MeasurementTask.UPRIGHT_TOLERANCE_DEG` of world up); or
* ``largest`` — its largest dimension (max of the three box sizes), in metres with 2 decimals
  (``"0.97 m"``).

Sizes come from the object's box in the scene's world frame (local Z = up, so ``z_size`` is the
height, exactly; it equals ``y_size`` of the VST camera-frame box). Rounding is half-up.
Objects are referred to (one mode per sample, :mod:`._refer`) by drawn coloured marks — tagged
points or boxes (``"the chair (orange point-A)"``, ``"the chair inside the cyan box-B"``) or
untagged ones named by label (``"the chair-A (orange point)"``) — or by name alone when no
other object of the same label is visible. Marks are drawn on the model image (the image as
stored in the sample): points on the mask pixel deepest inside the object, boxes on its mask's
2D box. The image comes in the first user turn only; 1-4 objects (turns) per sample.

Reward: ``numeric`` with the last turn's value in the unit asked (cm or m).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import ClassVar

import numpy as np

from vst.engine.choices import pick
from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import refer, render
from vst.scenes.model import Scene

HEIGHT_PHRASINGS: tuple[str, ...] = (
    "How tall is {ref}? Give the answer in centimeters.",
    "What is the height of {ref} in centimeters?",
    "Could you estimate the height of {ref}? State it in centimeters.",
    "Measure how tall {ref} is, from bottom to top, in centimeters.",
    "In centimeters, what height does {ref} have?",
    "Please tell me the vertical size of {ref}, expressed in centimeters.",
    "Estimate the height of {ref}. Use centimeters as the unit.",
)
"""Height questions (answer in integer centimetres)."""

LARGEST_PHRASINGS: tuple[str, ...] = (
    "What is the largest dimension (length, width or height) of {ref}, in meters?",
    "Of the length, width and height of {ref}, which is the greatest? Give its value in meters.",
    "How long is the longest side of {ref}? Answer in meters.",
    "Estimate the maximum extent of {ref} across its length, width and height, in meters.",
    "In meters, what is the biggest of the three dimensions of {ref}?",
    "Tell me the size of {ref} along its longest dimension, measured in meters.",
)
"""Largest-dimension questions (answer in metres, 2 decimals)."""

ANSWER_SUFFIXES: tuple[str, ...] = (
    "",
    "",
    " Answer with a single number and its unit.",
    " Please answer with a short phrase.",
    " Reply with just the measurement.",
    " Keep the answer brief.",
)
"""Optional endings of a question (the empty ending is twice as likely)."""

REF_PHRASINGS: dict[str, tuple[str, ...]] = {
    "point_mark": (
        "the {label} ({color} {handle})",
        "the {label} marked by the {color} {handle}",
        "the {label} at the {color} {handle}",
        "the {label} (indicated by the {color} {handle})",
        "the {label} that the {color} {handle} sits on",
    ),
    "box_mark": (
        "the {label} ({color} {handle})",
        "the {label} inside the {color} {handle}",
        "the {label} outlined by the {color} {handle}",
        "the {label} (framed by the {color} {handle})",
        "the {label} enclosed in the {color} {handle}",
    ),
    "named_point_mark": (
        "the {handle} ({color} point)",
        "the {handle} marked by the {color} point",
        "the {handle} at the {color} point",
        "the {handle} (shown by the {color} point)",
        "the {handle} that the {color} point sits on",
    ),
    "named_box_mark": (
        "the {handle} ({color} box)",
        "the {handle} inside the {color} box",
        "the {handle} outlined in {color}",
        "the {handle} (framed by the {color} box)",
        "the {handle} enclosed in the {color} box",
    ),
    "name": (
        "the {label}",
        "the {label} in the image",
        "the {label} shown here",
        "the {label} in this picture",
        "the visible {label}",
    ),
}
"""How a question names an object, per :mod:`._refer` mode (``handle`` is ``point-A``,
``box-B`` for tagged marks (``rectangle-B`` when the category contains "box"), the label or
``chair-1`` for named marks)."""

REF_MODES: tuple[str, ...] = tuple(REF_PHRASINGS)
"""Drawn marks (tagged or named, points or boxes) or the bare name (unique labels only)."""

KINDS = ("height", "largest")


def round_half_up(value: float, decimals: int = 0) -> float:
    """``value`` rounded half-up to ``decimals`` decimals (not banker's rounding)."""
    scale = 10**decimals
    return math.floor(value * scale + 0.5) / scale


def object_height_m(box_world: np.ndarray) -> float:
    """Vertical size (m) of a world box (local Z = up): its ``z_size``."""
    return float(box_world[5])


def object_largest_m(box_world: np.ndarray) -> float:
    """Largest of the three box sizes (m)."""
    return float(np.max(box_world[3:6]))


def is_upright(box_world: np.ndarray, tolerance_deg: float) -> bool:
    """True if the box's local Z axis is within ``tolerance_deg`` of world up (or down)."""
    # R = Rz(roll) Ry(yaw) Rx(pitch) (scipy "xyz" extrinsic), so R[2, 2] = cos(yaw) cos(pitch)
    pitch, yaw = math.radians(float(box_world[6])), math.radians(float(box_world[7]))
    return abs(math.cos(yaw) * math.cos(pitch)) >= math.cos(math.radians(tolerance_deg))


def measurement_value(box_world: np.ndarray, kind: str) -> tuple[int | float, str]:
    """``(value, answer_text)`` in the unit of ``kind``: height -> integer cm (int), largest ->
    metres rounded to 2 decimals (float)."""
    if kind == "height":
        cm = int(round_half_up(object_height_m(box_world) * 100.0))
        return cm, f"{cm} cm"
    if kind == "largest":
        m = round_half_up(object_largest_m(box_world), 2)
        return m, f"{m:.2f} m"
    raise ValueError(f"unknown measurement kind {kind!r}; expected one of {KINDS}")


@register
class MeasurementTask(Task):
    """Height (cm) / largest dimension (m) of 1-4 referred objects, one per turn."""

    name = "si_measurement"
    scenario = "single_image"
    needs = TaskNeeds(mask=True)
    version = "2"

    MAX_TRUNCATION: ClassVar[float] = 0.1
    """Skip objects with more than this fraction of their projected box outside the image (a
    cut-off object's size cannot be read from the picture); the run's ``max_truncation``
    applies too when it is stricter."""
    MIN_OBJECT_PIXELS: ClassVar[int] = 400
    """Skip objects with fewer mask pixels than this (frame resolution); the run's
    ``min_object_pixels`` applies too when larger."""
    MIN_SIZE_M: ClassVar[float] = 0.05
    """Skip objects whose largest dimension is below 5 cm."""
    UPRIGHT_TOLERANCE_DEG: ClassVar[float] = 5.0
    """Ask heights only of objects whose up axis is within this angle of world up."""
    MAX_TURNS: ClassVar[int] = 4
    """At most this many objects (turns) per conversation."""
    MAX_PER_FRAME: ClassVar[int] = 4
    """At most this many conversations per frame (each round visits every frame once)."""

    # -- candidates --------------------------------------------------------------------------
    def candidates(self, view: FrameView) -> list[int]:
        """Object ids that may be measured in this frame, sorted."""
        s = view.settings
        max_trunc = min(self.MAX_TRUNCATION, s.max_truncation)
        min_px = max(self.MIN_OBJECT_PIXELS, s.min_object_pixels)
        out = []
        for oid in view.visible_ids:
            if view.frame.truncation.get(oid, 0.0) > max_trunc:
                continue
            if view.pixel_counts.get(oid, 0) < min_px:
                continue
            if object_largest_m(view.object(oid).box) < self.MIN_SIZE_M:
                continue
            out.append(oid)
        return out

    # -- generation --------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        frames = [f for f in sorted(scene.frames, key=lambda f: f.id) if f.mask is not None]
        pool: list[tuple[FrameView, list[int]]] = []
        for frame in frames:
            view = ctx.view(scene, frame)
            cands = self.candidates(view)
            if cands:
                pool.append((view, cands))
        if not pool or budget <= 0:
            return
        emitted = 0
        seen: set[str] = set()
        for _ in range(self.MAX_PER_FRAME):
            for k in rng.permutation(len(pool)):
                view, cands = pool[int(k)]
                sample = self._make(scene, view, cands, rng)
                if sample.id in seen:
                    continue
                seen.add(sample.id)
                yield sample
                emitted += 1
                if emitted >= budget:
                    return

    def _make(
        self, scene: Scene, view: FrameView, cands: list[int], rng: np.random.Generator
    ) -> Sample:
        unique = [o for o in cands if view.label_is_unique(o)]
        modes = [m for m in REF_MODES if m != "name" or unique]
        mode = modes[int(rng.integers(len(modes)))]
        pool = unique if mode == "name" else cands
        hi = min(self.MAX_TURNS, len(pool))
        n = int(rng.integers(min(2, hi), hi + 1))
        ids = [pool[int(i)] for i in rng.choice(len(pool), size=n, replace=False)]
        refs = refer(view, ids, mode, rng)

        turns_meta = []
        messages = []
        for t, ref in enumerate(refs):
            box_world = view.object(ref.object_id).box
            upright = is_upright(box_world, self.UPRIGHT_TOLERANCE_DEG)
            kind = "largest" if not upright or rng.random() < 0.5 else "height"
            phrasings = HEIGHT_PHRASINGS if kind == "height" else LARGEST_PHRASINGS
            q_idx, q_tpl = pick(rng, phrasings)
            r_idx, r_tpl = pick(rng, REF_PHRASINGS[mode])
            s_idx, suffix = pick(rng, ANSWER_SUFFIXES)
            mention = r_tpl.format(label=ref.label, color=ref.color, handle=ref.handle)
            question = q_tpl.format(ref=mention) + suffix
            value, answer = measurement_value(box_world, kind)
            messages.append(user(None, question) if t == 0 else user(question))
            messages.append(assistant(answer))
            turns_meta.append(
                {
                    "object_id": ref.object_id,
                    "kind": kind,
                    "unit": "cm" if kind == "height" else "m",
                    "phrasing": q_idx,
                    "ref_phrasing": r_idx,
                    "suffix": s_idx,
                    "value": value,
                    "height_m": object_height_m(box_world),
                    "largest_m": object_largest_m(box_world),
                    "answer": answer,
                }
            )

        last = turns_meta[-1]
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[render(view, refs)],
            answer=last["answer"],
            reward={"mode": "numeric", "ground_truth": last["value"]},
            meta={
                "scene_id": scene.id,
                "frame_ids": [view.frame.id],
                "object_ids": [r.object_id for r in refs],
                "visible_fraction": visible_fractions([view], [r.object_id for r in refs]),
                "ref_mode": mode,
                "refs": [r.to_meta() for r in refs],
                "turns": turns_meta,
            },
        )

    # -- checking ----------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's answer, recomputed from the object's world box."""
        last = meta["turns"][-1]
        return measurement_value(scene.object(int(last["object_id"])).box, last["kind"])[1]
