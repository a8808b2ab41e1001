"""``video_rel_distance``: which of 3-4 candidate objects is closest to (or farthest from) an
anchor object, asked about a video clip of the scene (paper Table 31; VSI-Bench "Rel. Dist").

Distance = closest-point distance (m) between the objects' 3D boxes in the scene's world
frame, as VSI-Bench measures it (:func:`box_gap`: 0 for overlapping boxes; exact for oriented
boxes). Centre-to-centre distances are recorded in ``meta`` too. A question is kept only when
the answer's distance and the runner-up's differ by at least :attr:`VideoRelDistance.MIN_REL_GAP`
(relative to the larger) and :attr:`VideoRelDistance.MIN_ABS_GAP` metres.

The clip is the scene's whole video trajectory subsampled evenly to at most
:attr:`VideoRelDistance.CLIP_FRAMES` frames (:func:`._clips.scene_clip`; ``meta["frame_ids"]``,
``meta["video_fps"]`` = the clip's effective rate). Objects are named by category, so only
objects visible enough in some clip frame whose label no other object shows (any pixel) in any
clip frame are asked about (:func:`_unique_objects`).

Each sample is a conversation of 1-:attr:`VideoRelDistance.MAX_TURNS` questions about the same
clip (the video comes in the first user turn). Options are the candidates' names, shuffled;
the answer is the option letter; reward ``mcq`` on the last turn. No question (anchor,
candidate set, closest/farthest) is asked twice about a clip, in one conversation or across
the scene's samples.

VSI-Bench agreement: its wording "Measuring from the closest point of each object, which of
these objects (A, B, C, D) is the closest to the X?" is one of the phrasings (verified against
public copies of its QA templates and published questions), and its distance is the
closest-point distance (verified: published absolute distances match closest-point box
distances, see ``tests/test_vsibench_task_logic.py``). UNVERIFIED: VSI-Bench names categories
with several instances ("measure to the closest" instance); here only uniquely named objects are
asked about. VSI-Bench asks only ``closest``; ``farthest`` is this engine's addition.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import (
    MCQ_INSTRUCTIONS,
    format_options,
    letter_of,
    mcq_reply,
    pick,
    shuffle_options,
)
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.tasks.single_image._refer import separated
from vst.engine.tasks.video._clips import Clip, label_sightings, scene_clip
from vst.geometry.boxes import BOX_EDGES, CORNER_SIGNS, box_rotations
from vst.scenes.model import Scene

# -- objects a clip can name -------------------------------------------------------------------


def _unique_objects(clip: Clip, ctx: EngineContext) -> list[int]:
    """Objects visible enough to ask about in at least one frame of ``clip``
    (``FrameView.visible_ids``) whose label no other object shows (any pixel) in any of its
    frames, so the category name alone refers to them; sorted."""
    s = ctx.settings
    sightings = label_sightings(clip.views(ctx), s.min_object_pixels, 1, s.min_visible_fraction)
    visible = set(clip.visible_any(ctx))
    return sorted(
        s.clear_ids[0]
        for s in sightings.values()
        if len(s.clear_ids) == 1 and not s.faint_ids and s.clear_ids[0] in visible
    )


# -- geometry -------------------------------------------------------------------------------

_EA, _EB = (BOX_EDGES[g.ravel()] for g in np.meshgrid(np.arange(12), np.arange(12), indexing="ij"))
"""All 144 (edge of box a, edge of box b) pairs."""


def _dot(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return np.einsum("...k,...k->...", u, v)


def _point_box_distances(points: np.ndarray, boxes: np.ndarray, rots: np.ndarray) -> np.ndarray:
    """Distances (P, M) from points (P, M, 3) to solid boxes (P, 9) with rotations (P, 3, 3)."""
    local = np.einsum("pmk,pkj->pmj", points - boxes[:, None, :3], rots)  # R^T (p - c)
    out = np.maximum(np.abs(local) - boxes[:, None, 3:6] / 2.0, 0.0)
    return np.linalg.norm(out, axis=-1)


def _segment_distances(p1, q1, p2, q2) -> np.ndarray:
    """Distances between segments ``p1-q1`` and ``p2-q2`` (arrays (..., 3), non-degenerate):
    the clamped closest-point parameters of both segments."""
    d1, d2, r = q1 - p1, q2 - p2, p1 - p2
    a, e, b = _dot(d1, d1), _dot(d2, d2), _dot(d1, d2)
    c, f = _dot(d1, r), _dot(d2, r)
    denom = a * e - b * b
    with np.errstate(divide="ignore", invalid="ignore"):
        s = np.where(denom > 1e-12 * a * e, np.clip((b * f - c * e) / denom, 0.0, 1.0), 0.0)
        t = (b * s + f) / e
        s = np.where(t < 0, np.clip(-c / a, 0, 1), np.where(t > 1, np.clip((b - c) / a, 0, 1), s))
        t = np.clip(t, 0.0, 1.0)
    return np.linalg.norm(p1 + d1 * s[..., None] - p2 - d2 * t[..., None], axis=-1)


def _overlapping(ca: np.ndarray, cb: np.ndarray, ra: np.ndarray, rb: np.ndarray) -> np.ndarray:
    """Separating-axis test (P,) of box pairs from their corners (P, 8, 3) and rotations."""
    cross = np.cross(ra.transpose(0, 2, 1)[:, :, None], rb.transpose(0, 2, 1)[:, None, :])
    axes = np.concatenate(
        [ra.transpose(0, 2, 1), rb.transpose(0, 2, 1), cross.reshape(-1, 9, 3)], 1
    )
    pa = np.einsum("pak,pck->pac", axes, ca)  # (P, 15, 8)
    pb = np.einsum("pak,pck->pac", axes, cb)
    apart = (pa.max(-1) < pb.min(-1)) | (pb.max(-1) < pa.min(-1))
    apart &= _dot(axes, axes) > 1e-12  # parallel edge pairs give no axis
    return ~apart.any(-1)


def _pair_gaps(boxes: np.ndarray, corners: np.ndarray, rots: np.ndarray, i, j) -> np.ndarray:
    """Closest-point distances of box pairs ``(i[k], j[k])`` (index arrays)."""
    ca, cb = corners[i], corners[j]
    gaps = np.minimum(
        _point_box_distances(ca, boxes[j], rots[j]).min(-1),
        _point_box_distances(cb, boxes[i], rots[i]).min(-1),
    )
    seg = _segment_distances(ca[:, _EA[:, 0]], ca[:, _EA[:, 1]], cb[:, _EB[:, 0]], cb[:, _EB[:, 1]])
    gaps = np.minimum(gaps, seg.min(-1))
    return np.where(_overlapping(ca, cb, rots[i], rots[j]), 0.0, gaps)


class GapTable:
    """Closest-point distances (m) between solid 9-DoF boxes (N, 9), computed on demand per
    pair and cached; 0 for boxes that overlap or touch.

    Exact for oriented boxes: separating-axis overlap test, else the minimum over corner-to-box
    and edge-to-edge distances (the closest points of two disjoint convex polytopes are a
    vertex and a face, or two edges)."""

    def __init__(self, boxes: np.ndarray):
        boxes = np.array(boxes, dtype=np.float64).reshape(-1, 9)
        boxes[:, 3:6] = np.maximum(boxes[:, 3:6], 1e-6)  # degenerate boxes as thin slabs
        self.boxes = boxes
        self.rots = box_rotations(boxes)
        local = CORNER_SIGNS[None] * (boxes[:, None, 3:6] / 2.0)
        self.corners = np.einsum("nij,nkj->nki", self.rots, local) + boxes[:, None, :3]
        self._d = np.full((len(boxes), len(boxes)), np.nan)
        np.fill_diagonal(self._d, 0.0)

    def _fill(self, i: np.ndarray, j: np.ndarray, chunk: int = 512) -> None:
        todo = np.isnan(self._d[i, j])
        i, j = i[todo], j[todo]
        for k in range(0, len(i), chunk):
            ii, jj = i[k : k + chunk], j[k : k + chunk]
            self._d[ii, jj] = self._d[jj, ii] = _pair_gaps(
                self.boxes, self.corners, self.rots, ii, jj
            )

    def row(self, i: int, js: Sequence[int]) -> list[float]:
        """Distances from box ``i`` to boxes ``js``."""
        js_arr = np.asarray(js, dtype=int)
        self._fill(np.full(len(js_arr), i), js_arr)
        return [float(d) for d in self._d[i, js_arr]]

    def matrix(self) -> np.ndarray:
        """The full symmetric (N, N) matrix."""
        i, j = np.triu_indices(len(self.boxes), 1)
        self._fill(i, j)
        return self._d.copy()


def gap_matrix(boxes: np.ndarray) -> np.ndarray:
    """Symmetric (N, N) matrix of closest-point distances (m) between boxes (N, 9)
    (:class:`GapTable`)."""
    return GapTable(boxes).matrix()


def box_gap(box_a: np.ndarray, box_b: np.ndarray) -> float:
    """Closest-point distance (m) between two solid 9-DoF boxes (see :func:`gap_matrix`)."""
    return float(gap_matrix(np.stack([box_a, box_b]))[0, 1])


def object_distances(scene: Scene, anchor: int, candidates: Sequence[int]) -> list[float]:
    """Closest-point distances (m) from the anchor's world box to each candidate's."""
    boxes = np.stack([scene.object(o).box for o in (anchor, *candidates)])
    return GapTable(boxes).row(0, range(1, len(boxes)))


def best_index(distances: Sequence[float], query: str) -> int:
    """Index of the smallest (``closest``) or largest (``farthest``) distance."""
    return int(np.argmin(distances)) if query == "closest" else int(np.argmax(distances))


# -- text -------------------------------------------------------------------------------------

QUERIES = ("closest", "farthest")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "closest": (
        "Measuring from the closest point of each object, which of these objects ({names}) is "
        "the closest to the {anchor}?",
        "Which of these objects is nearest to the {anchor}?",
        "Over the course of the video, which object lies closest to the {anchor}?",
        "Among the objects listed below, which one is at the shortest distance from the {anchor}?",
        "Considering the whole room shown in the video, which object is closest to the {anchor}?",
        "Which object is the smallest distance away from the {anchor}?",
        "Which of the following sits nearest the {anchor} in the room?",
    ),
    "farthest": (
        "Measuring from the closest point of each object, which of these objects ({names}) is "
        "the farthest from the {anchor}?",
        "Which of these objects is farthest from the {anchor}?",
        "Over the course of the video, which object lies farthest away from the {anchor}?",
        "Among the objects listed below, which one is at the greatest distance from the {anchor}?",
        "Considering the whole room shown in the video, which object is most distant from the "
        "{anchor}?",
        "Which object is the farthest away from the {anchor}?",
        "Which of the following sits farthest from the {anchor} in the room?",
    ),
}
"""Questions per query (the anchor by its category name; ``{names}``: the options' names in
option order). The first ``closest`` one is VSI-Bench's wording; the first of each query
states the distance convention itself (no :data:`MEASURE_NOTES` after it)."""

MEASURE_NOTES: tuple[str, ...] = (
    "",
    " Measure between the closest points of the objects.",
    " Distances are taken between the nearest points of each pair of objects.",
    " Use the gap between the objects' nearest surfaces.",
    " Count the distance from the closest point of one object to the closest point of the other.",
)
"""Optional statement of the distance convention (the empty note is as likely as each other)."""


def _tail(rng: np.random.Generator, answer_style: str) -> tuple[int, str]:
    """Ending after the options: none (index 0, as likely as each other) or an instruction of
    the run's answer style (:data:`~vst.engine.choices.MCQ_INSTRUCTIONS`)."""
    idx, tail = pick(rng, ("", *MCQ_INSTRUCTIONS[answer_style]))
    return idx, "\n" + tail if tail else ""


@register
class VideoRelDistance(Task):
    """Closest / farthest of 3-4 candidates to an anchor, over a video clip (module docstring)."""

    name = "video_rel_distance"
    scenario = "video"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    CLIP_FRAMES: ClassVar[int] = 16
    """Clips hold at most this many frames (the trajectory is subsampled evenly)."""
    MIN_REL_GAP: ClassVar[float] = 0.10
    """The answer's distance and the runner-up's differ by at least this fraction of the
    larger one..."""
    MIN_ABS_GAP: ClassVar[float] = 0.15
    """...and by at least this many metres."""
    MIN_CANDIDATES: ClassVar[int] = 3
    MAX_CANDIDATES: ClassVar[int] = 4
    MAX_TURNS: ClassVar[int] = 3
    """At most this many questions per conversation."""
    ATTEMPTS_PER_TURN: ClassVar[int] = 30
    """Random draws tried per question before giving up on the scene."""

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` conversations about the scene's clip (distinct samples)."""
        clip = scene_clip(scene, self.CLIP_FRAMES)
        if budget <= 0 or clip is None:
            return
        objects = _unique_objects(clip, ctx)
        if len(objects) < 1 + self.MIN_CANDIDATES:
            return
        boxes = np.stack([scene.object(o).box for o in objects])
        gaps = GapTable(boxes)
        centres = np.linalg.norm(boxes[:, None, :3] - boxes[None, :, :3], axis=-1)
        images = clip.images(ctx)
        fractions = visible_fractions(clip.views(ctx), objects)
        seen: set[str] = set()
        used: set = set()  # questions asked about this clip, by any conversation
        made = fails = 0
        while made < budget and fails < 5 * budget + 20:
            sample = self._conversation(
                scene,
                clip,
                objects,
                gaps,
                centres,
                images,
                rng,
                used,
                fractions,
                ctx.settings.answer_style,
            )
            if sample is None or sample.id in seen:
                fails += 1
                continue
            seen.add(sample.id)
            made += 1
            yield sample

    def _draw_turn(
        self, n: int, gaps: GapTable, rng: np.random.Generator, used: set
    ) -> tuple[int, list[int], str] | None:
        """(anchor index, candidate indices, query) passing the margin and not in ``used``
        (questions already asked about the clip), or None."""
        hi = min(self.MAX_CANDIDATES, n - 1)
        query = QUERIES[int(rng.integers(2))]  # drawn once: retries must not favour one query
        for _ in range(self.ATTEMPTS_PER_TURN):
            k = int(rng.integers(self.MIN_CANDIDATES, hi + 1))
            chosen = [int(i) for i in rng.permutation(n)[: k + 1]]
            anchor, cands = chosen[0], chosen[1:]
            key = (anchor, frozenset(cands), query)
            if key in used:
                continue
            ranked = sorted(gaps.row(anchor, cands), reverse=query == "farthest")
            if separated(ranked[0], ranked[1], self.MIN_REL_GAP, self.MIN_ABS_GAP):
                used.add(key)
                return anchor, cands, query
        return None

    def _conversation(
        self,
        scene,
        clip,
        objects,
        gaps,
        centres,
        images,
        rng,
        used: set,
        fractions: dict,
        answer_style: str = "paper",
    ) -> Sample | None:
        """One conversation; its questions join ``used`` (shared by the clip's samples)."""
        n_turns = int(rng.integers(1, self.MAX_TURNS + 1))
        messages: list[dict] = []
        turns: list[dict] = []
        for t in range(n_turns):
            drawn = self._draw_turn(len(objects), gaps, rng, used)
            if drawn is None:
                break
            anchor, cands, query = drawn
            labels = [scene.object(objects[c]).label for c in cands]
            dists = gaps.row(anchor, cands)
            best = best_index(dists, query)
            shuffled, letter, order = shuffle_options(labels, best, rng)
            q_idx, template = pick(rng, TEMPLATES[query])
            n_idx, note = pick(rng, MEASURE_NOTES)
            if "{names}" in template:  # states the convention itself
                n_idx, note = 0, ""
            e_idx, tail = _tail(rng, answer_style)
            anchor_label = scene.object(objects[anchor]).label
            question = (
                template.format(anchor=anchor_label, names=", ".join(shuffled))
                + note
                + "\n"
                + format_options(shuffled)
                + tail
            )
            messages.append(user(VIDEO, question) if t == 0 else user(question))
            messages.append(assistant(mcq_reply(letter, labels[best], answer_style)))
            turns.append(
                {
                    "anchor_id": objects[anchor],
                    "candidate_ids": [objects[c] for c in cands],
                    "anchor_label": anchor_label,
                    "labels": labels,
                    "query": query,
                    "options": order,
                    "distances": dists,
                    "centre_distances": [float(centres[anchor, c]) for c in cands],
                    "answer_label": labels[best],
                    "answer": letter,
                    "phrasing": [q_idx, n_idx, e_idx],
                }
            )
        if not turns:
            return None
        last = turns[-1]
        ids = sorted({o for tr in turns for o in (tr["anchor_id"], *tr["candidate_ids"])})
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=messages,
            images=[],
            videos=[list(images)],
            answer=last["answer"],
            reward={"mode": "mcq", "ground_truth": last["answer"]},
            meta={
                "scene_id": scene.id,
                **clip.meta(),
                "object_ids": ids,
                "visible_fraction": {str(o): fractions[str(o)] for o in ids},
                "distance": "closest_point",
                "answer_style": answer_style,
                "turns": turns,
            },
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """The last turn's letter, from closest-point distances of the world boxes."""
        last = meta["turns"][-1]
        dists = object_distances(scene, last["anchor_id"], last["candidate_ids"])
        return letter_of(last["options"], best_index(dists, last["query"]))
