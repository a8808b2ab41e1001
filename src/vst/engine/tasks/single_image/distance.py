"""``si_distance``: which of 2-4 candidate objects is closest to (or farthest from) an anchor
object of the same image.

Distance = Euclidean distance (m) between the objects' 3D box centres in the camera frame
(``FrameView.box_cam``, VST convention). A question is kept only when the answer's distance and
the runner-up's are :func:`~vst.engine.tasks.single_image._refer.separated` by
:attr:`Distance.MIN_REL_GAP` and :attr:`Distance.MIN_ABS_GAP`.

Objects are referred to as in :mod:`._refer`. Answer styles (``meta["style"]``):

* ``exact``: the answer is the candidate's handle (``pillow-1``, ``box-B``, ``chair``), reward
  ``exact``;
* ``mcq``: the candidates are lettered options, the answer is the letter, reward ``mcq``; the
  reply follows the run's answer style (``"B. the lamp"`` or ``"B"``, see
  :mod:`vst.engine.choices`). Lettered marks (``box-A``) are never used with lettered options.

With ``meta["metric"]`` the assistant first states every candidate's distance to the anchor,
two decimals in metres (``Distance[chair, pillow-1]=3.51m``), then gives the answer; the
``answer`` field holds the final answer only.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import (
    format_options,
    letter_of,
    mcq_instruction,
    mcq_reply,
    pick,
    shuffle_options,
)
from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import (
    COORD_MODES,
    REFER_MODES,
    TAGGED_MODES,
    available_modes,
    ground_truth_view,
    join_items,
    refer,
    render,
    separated,
)
from vst.scenes.model import Scene

QUERIES = ("closest", "farthest")
STYLES = ("exact", "mcq")

WHICH_PHRASES: dict[str, tuple[str, ...]] = {
    "closest": (
        "closest to",
        "nearest to",
        "the closest to",
        "at the shortest distance from",
        "the nearest to",
    ),
    "farthest": (
        "farthest from",
        "most distant from",
        "furthest away from",
        "at the greatest distance from",
        "the farthest from",
    ),
}
"""``{which}`` followed by the anchor's mention."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "exact": (
        "Which object, {cands_or}, is {which} {anchor}?",
        "Of {cands_and}, which one is {which} {anchor} in the actual 3D scene?",
        "Considering real positions, which of {cands_and} is {which} {anchor}?",
        "Which is {which} {anchor}: {cands_or}?",
        "Looking at the image, tell me which of {cands_and} is {which} {anchor}.",
        "In 3D space, which of {cands_and} would you say is {which} {anchor}?",
    ),
    "mcq": (
        "Which object is {which} {anchor}?\n{options}",
        "In 3D space, which of these is {which} {anchor}?\n{options}\n{instruction}",
        "Choose the object that is {which} {anchor}.\n{options}",
        "Considering real positions, which option is {which} {anchor}?\n{options}",
        "Which candidate is {which} {anchor}?\n{options}\n{instruction}",
    ),
}
"""Question templates per answer style; ``{instruction}``: an instruction of the answer style
(:func:`~vst.engine.choices.mcq_instruction`), or the metric request of ``metric`` samples."""

METRIC_REQUESTS: tuple[str, ...] = (
    "Estimate the real distances before answering.",
    "First state each distance in metres.",
    "Give the metric distances first, then your answer.",
    "Work out the distances in metres, then answer.",
    "List the 3D distances before you decide.",
)
"""Appended to ``metric`` questions: the answer states the distances first."""

ANSWER_LEAD = "Therefore, the answer is {answer}."
"""How a ``metric`` answer ends (one fixed form: easy to parse)."""


def centre_distances(boxes_cam: np.ndarray, anchor: int, candidates: Sequence[int]) -> list[float]:
    """Distances (m) between box centres: ``boxes_cam`` rows indexed by position."""
    a = boxes_cam[anchor, :3]
    return [float(np.linalg.norm(boxes_cam[c, :3] - a)) for c in candidates]


def best_index(distances: Sequence[float], query: str) -> int:
    """Index of the smallest (``closest``) or largest (``farthest``) distance."""
    return int(np.argmin(distances)) if query == "closest" else int(np.argmax(distances))


def metric_text(anchor: str, handles: Sequence[str], distances: Sequence[float]) -> str:
    """``Distance[anchor, h]=3.51m`` lines, one per candidate (2 decimals, metres)."""
    return "\n".join(
        f"Distance[{anchor}, {h}]={d:.2f}m" for h, d in zip(handles, distances, strict=True)
    )


@register
class Distance(Task):
    """Closest / farthest candidate to an anchor (see the module docstring)."""

    name = "si_distance"
    scenario = "single_image"
    needs = TaskNeeds(mask=True)
    version = "2"

    MIN_REL_GAP: ClassVar[float] = 0.10
    """The answer's distance and the runner-up's differ by at least this fraction..."""
    MIN_ABS_GAP: ClassVar[float] = 0.15
    """...and by at least this many metres."""
    MIN_CANDIDATES: ClassVar[int] = 2
    MAX_CANDIDATES: ClassVar[int] = 4
    STYLES: ClassVar[tuple[str, ...]] = STYLES
    METRIC_FRACTION: ClassVar[float] = 0.5
    """Share of samples whose answer states the distances first."""
    ATTEMPTS_PER_SAMPLE: ClassVar[int] = 20
    """Give up after this many tries per requested sample (scenes with few objects)."""
    ATTEMPTS_PER_PLAN: ClassVar[int] = 10
    """Tries with one drawn candidate count before drawing another."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: random frame, anchor and candidates, query passing the
        margin, random style / refer mode / phrasing."""
        frames = sorted(scene.frames, key=lambda f: f.id)
        if not frames or budget <= 0:
            return
        made = attempts = tries = 0
        n = 0
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            if tries % self.ATTEMPTS_PER_PLAN == 0:  # per sample, not per try (see depth_order)
                n = int(rng.integers(self.MIN_CANDIDATES, self.MAX_CANDIDATES + 1))
            tries += 1
            view = ctx.view(scene, frames[int(rng.integers(len(frames)))])
            if view.mask is None:
                continue
            ids = view.visible_ids
            if len(ids) < 1 + n:
                continue
            chosen = [int(ids[i]) for i in rng.permutation(len(ids))[: n + 1]]
            anchor_pos = int(rng.integers(n + 1))  # where the anchor sits among the refs
            anchor = chosen[anchor_pos]
            cands = chosen[:anchor_pos] + chosen[anchor_pos + 1 :]
            dists = [
                float(np.linalg.norm(view.box_cam(c)[:3] - view.box_cam(anchor)[:3])) for c in cands
            ]
            query = QUERIES[int(rng.integers(2))]
            ranked = sorted(dists, reverse=query == "farthest")
            if not separated(ranked[0], ranked[1], self.MIN_REL_GAP, self.MIN_ABS_GAP):
                continue
            yield self._build(view, chosen, anchor_pos, dists, query, rng)
            made += 1
            tries = 0

    def _build(
        self,
        view: FrameView,
        chosen: list[int],
        anchor_pos: int,
        dists: list[float],
        query: str,
        rng: np.random.Generator,
    ) -> Sample:
        style = self.STYLES[int(rng.integers(len(self.STYLES)))]
        metric = bool(rng.random() < self.METRIC_FRACTION)
        allowed = REFER_MODES if style == "mcq" and not metric else _SHORT_MODES
        if style == "mcq":  # option letters must not relabel lettered marks
            allowed = tuple(m for m in allowed if m not in TAGGED_MODES)
        modes = available_modes(view, chosen, allowed)
        mode = modes[int(rng.integers(len(modes)))]
        refs = refer(view, chosen, mode, rng)
        anchor_ref = refs[anchor_pos]
        cand_refs = refs[:anchor_pos] + refs[anchor_pos + 1 :]
        cand_ids = [r.object_id for r in cand_refs]

        t_idx, template = pick(rng, TEMPLATES[style])
        w_idx, which = pick(rng, WHICH_PHRASES[query])
        mentions = [r.mention for r in cand_refs]
        fields = {
            "which": which,
            "anchor": anchor_ref.mention,
            "cands_or": join_items(mentions, "or"),
            "cands_and": join_items(mentions, "and"),
        }
        order: list[int] | None = None
        best = best_index(dists, query)
        answer_style = view.settings.answer_style
        reply: str | None = None
        if style == "mcq":
            shuffled, letter, order = shuffle_options(mentions, best, rng)
            fields["options"] = format_options(shuffled)
            reply = mcq_reply(letter, shuffled[order.index(best)], answer_style)
        m_idx = i_idx = -1
        request = ""
        if metric:
            m_idx, request = pick(rng, METRIC_REQUESTS)
        if "{instruction}" in template:
            if not metric:
                i_idx, request = mcq_instruction(rng, answer_style)
            question = template.format(**fields, instruction=request)
        else:
            question = template.format(**fields)
            if metric:
                question += ("\n" if style == "mcq" else " ") + request
        ref_meta = [r.to_meta() for r in refs]
        meta = {
            "scene_id": view.scene.id,
            "frame_ids": [view.frame.id],
            "object_ids": chosen,
            "visible_fraction": visible_fractions([view], chosen),
            "anchor_id": anchor_ref.object_id,
            "candidate_ids": cand_ids,
            "labels": [r.label for r in refs],
            "refs": ref_meta,
            "anchor_index": anchor_pos,
            "style": style,
            "metric": metric,
            "refer_mode": mode,
            "query": query,
            "options": order,
            "distances": dists,
            "phrasing": [t_idx, w_idx, m_idx, i_idx],
            "image_size": list(view.model_size),
        }
        if style == "mcq":
            meta["answer_style"] = answer_style
        answer, text = format_answer(meta, dists, reply)
        image = render(view, refs)
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(image, question), assistant(text)],
            images=[image],
            answer=answer,
            reward={"mode": "mcq" if style == "mcq" else "exact", "ground_truth": answer},
            meta=meta,
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the centre distances from ``scene.boxes_in_camera`` and format."""
        boxes = ground_truth_view(scene, meta["frame_ids"][0]).boxes_cam
        index = {o.id: i for i, o in enumerate(scene.objects)}
        dists = centre_distances(
            boxes, index[meta["anchor_id"]], [index[c] for c in meta["candidate_ids"]]
        )
        return format_answer(meta, dists)[0]


_SHORT_MODES = tuple(m for m in REFER_MODES if m not in COORD_MODES)
"""Refer modes whose handles read well as a one-word answer or inside ``Distance[...]``."""


def format_answer(
    meta: dict, distances: Sequence[float], reply: str | None = None
) -> tuple[str, str]:
    """``(answer, assistant text)`` from a sample's meta and the candidates' distances (in
    ``candidate_ids`` order). Metric lines follow the options' order for ``mcq``. ``reply``: how
    the text states the answer (default: the answer itself)."""
    refs = meta["refs"]
    a = meta["anchor_index"]
    cand_refs = refs[:a] + refs[a + 1 :]
    best = best_index(distances, meta["query"])
    if meta["style"] == "mcq":
        answer = letter_of(meta["options"], best)
    else:
        answer = cand_refs[best]["handle"]
    reply = answer if reply is None else reply
    if not meta["metric"]:
        return answer, reply
    shown = list(meta["options"]) if meta["style"] == "mcq" else list(range(len(cand_refs)))
    lines = metric_text(
        refs[a]["handle"], [cand_refs[i]["handle"] for i in shown], [distances[i] for i in shown]
    )
    return answer, lines + "\n" + ANSWER_LEAD.format(answer=reply)
