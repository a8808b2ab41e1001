"""``mi_object_object``: directions and distances between objects seen across two images.

Question kinds (``meta["kind"]``):

* ``direction``: "if A is north of B, which direction is C from B?" on the floor plane (world
  X-Y; :mod:`._compass`): north = the floor vector B -> A, the answer is the compass sector of
  the floor vector B -> C (bearing clockwise seen from above: east = north rotated by -90
  degrees about +Z). Answer styles: ``mcq`` (4 of the 8 directions, shuffled; reward ``mcq``)
  or ``exact`` (the direction word; reward ``exact``). Kept only when the bearing is at least
  :attr:`ObjectObject.MARGIN_DEG` from a sector boundary, the floor distance B-A (the baseline
  defining north, ``meta["baseline_m"]``) is at least :attr:`ObjectObject.MIN_BASELINE` (1 m),
  B-C at least :attr:`ObjectObject.MIN_FLOOR_DIST`, and the three centres' heights lie within
  :attr:`ObjectObject.MAX_HEIGHT_SPREAD` (the paper's anchor rule: a height difference under a
  metre).
* ``distance``: the distance (m, between 3D box centres, 2 decimals) between two objects that
  no single image shows together; reward ``numeric``.
* ``closer``: which of two objects is closer to (or farther from) an anchor, the three not all
  shown by one image; the two distances differ by :attr:`ObjectObject.MIN_REL_GAP` and
  :attr:`ObjectObject.MIN_ABS_GAP`; reward ``mcq``.

Spread across views: no single image shows (any mask pixel) all the objects of a question, so
at least one of them is visible only in the other image. Pairs come from
:func:`~vst.engine.multiview.frame_pairs` over all the scene's frames (sharing an object, each
showing one of its own). Objects are referred to as in :mod:`._compass_refer` (by name only when
the label is unique over both images). Direction answers are balanced: the answer direction is
drawn uniformly among those the scene can ask, then a question with that answer.

Distances and directions are frame independent (rigid motions), so they hold in frame 1's
camera frame, the world frame of multi-image samples.

``meta``: ``frame_ids`` (image 1, image 2), ``kind``, the object ids by role (``north_id``,
``origin_id``, ``target_id``; ``anchor_id``, ``candidate_ids``; ``object_ids``), ``style``,
``options`` (direction ``mcq``: the shown direction indices into :data:`~._compass.COMPASS`,
in letter order; ``closer``: the candidates' shuffle order), the computed ``bearing_deg``,
``margin_deg``, ``direction``, ``distance_m`` / ``distances``, ``refs`` (one record per referred
object: mode, mention, image index, colour, tag, model-image box/point) and ``phrasing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import format_options, letter_of, mcq_reply, pick, shuffle_options
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.multi_image._compass import (
    COMPASS,
    IMAGE_LABELS,
    MIN_OBJECT_BASELINE_M,
    bearing_deg,
    boundary_margin,
    direction_answer,
    mcq_letter,
    mcq_tail,
    metres_text,
    round_metres,
    sector,
)
from vst.engine.tasks.multi_image._compass_refer import (
    CompassTask,
    Pair,
    available_modes,
    refer_across,
    render_pair,
)
from vst.engine.tasks.single_image._refer import TAGGED_MODES
from vst.scenes.model import Scene

KINDS: tuple[str, ...] = ("direction", "distance", "closer")

DIRECTION_TEMPLATES: tuple[str, ...] = (
    "If {a} is north of {b}, which compass direction leads from {b} to {c}?",
    "Suppose {a} lies due north of {b}. Which compass direction is {c} from {b}?",
    "Treat the direction from {b} toward {a} as north. Where is {c} relative to {b}?",
    "Looking down on the room from above, north points from {b} to {a}. In what direction does "
    "{c} lie as seen from {b}?",
    "Given that {a} is to the north of {b}, what is the direction of {c} from {b}?",
    "Take {b} as the reference point, with {a} straight to its north. Which way is {c} from it?",
)
"""Direction questions: ``a`` defines north from ``b``; ``c`` is the target."""


DISTANCE_TEMPLATES: tuple[str, ...] = (
    "What is the distance between {a} and {b}, in metres?",
    "How far apart are {a} and {b}? Answer in metres.",
    "Estimate the straight-line distance from the centre of {a} to the centre of {b} in meters.",
    "Measuring between their centres, how many metres separate {a} and {b}?",
    "How far is {a} from {b} (in metres)?",
)
"""Numeric distance questions between two objects that no single image shows together."""

CLOSER_WHICH: dict[str, tuple[str, ...]] = {
    "closest": (
        "closer to",
        "nearer to",
        "less distant from",
        "at a shorter distance from",
        "nearer in 3D to",
    ),
    "farthest": (
        "farther from",
        "more distant from",
        "further away from",
        "at a greater distance from",
        "farther in 3D from",
    ),
}
"""``{which}`` followed by the anchor's mention."""

CLOSER_TEMPLATES: tuple[str, ...] = (
    "Which object is {which} {x}?",
    "Considering real 3D positions, which of these is {which} {x}?",
    "Choose the object that is {which} {x}.",
    "Across the two images, which option is {which} {x}?",
    "Measuring between object centres, which one is {which} {x}?",
)
"""Which of two objects is closer to / farther from the anchor ``x`` (options follow)."""


def floor_bearing(scene: Scene, north_to: int, origin: int, target: int) -> float:
    """Bearing (degrees clockwise from north, seen from above) of ``target`` from ``origin``
    when ``north_to`` is north of ``origin`` (world box centres projected on the floor)."""
    o = scene.object(origin).box[:2]
    return float(bearing_deg(scene.object(north_to).box[:2] - o, scene.object(target).box[:2] - o))


def centre_distance(scene: Scene, a: int, b: int) -> float:
    """Euclidean distance (m) between two objects' 3D box centres."""
    return float(np.linalg.norm(scene.object(a).box[:3] - scene.object(b).box[:3]))


def _triples(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """All ordered triples of distinct indices below ``n``."""
    i, j, k = (a.ravel() for a in np.indices((n, n, n)))
    keep = (i != j) & (j != k) & (i != k)
    return i[keep], j[keep], k[keep]


@register
class ObjectObject(CompassTask):
    """Directions (compass, floor plane) and distances between objects across two images."""

    name = "mi_object_object"
    version = "2"
    MIN_BASELINE: ClassVar[float] = MIN_OBJECT_BASELINE_M
    """Floor distance B-A (m) defining north must be at least this (else skipped)."""
    MIN_FLOOR_DIST: ClassVar[float] = 0.3
    """Floor distance B-C (m) below this leaves the target's direction undefined: skipped."""
    MAX_HEIGHT_SPREAD: ClassVar[float] = 1.0
    """Centre heights of A, B, C differ by at most this (m) (the paper's anchor rule)."""
    MIN_DISTANCE: ClassVar[float] = 0.3
    """Numeric distance questions need at least this many metres between the centres."""
    MIN_REL_GAP: ClassVar[float] = 0.10
    """``closer``: the two distances differ by at least this fraction of the larger..."""
    MIN_ABS_GAP: ClassVar[float] = 0.15
    """...and by at least this many metres."""
    KINDS: ClassVar[tuple[str, ...]] = KINDS
    KIND_WEIGHTS: ClassVar[tuple[float, ...]] = (0.6, 0.2, 0.2)

    # -- candidates ------------------------------------------------------------------------
    def candidates(self, pairs: Sequence[Pair]) -> dict[str, list[np.ndarray]]:
        """Every askable question per kind, as integer rows over ``pairs``:
        ``direction`` -> ``(pair, a, b, c, answer)`` (positions in ``pair.objects``; a is north
        of b), ``distance`` -> ``(pair, a, b)``, ``closer`` -> ``(pair, anchor, y, z)``."""
        out: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
        for p, pair in enumerate(pairs):
            n = len(pair.objects)
            if n < 2:
                continue
            s0, s1 = pair.seen_mask(0), pair.seen_mask(1)
            xy, z = pair.centres[:, :2], pair.centres[:, 2]
            # distance: pairs of objects that no image shows together
            a, b = np.triu_indices(n, 1)
            d = np.linalg.norm(pair.centres[a] - pair.centres[b], axis=1)
            ok = ~(s0[a] & s0[b]) & ~(s1[a] & s1[b]) & (d >= self.MIN_DISTANCE)
            out["distance"].append(np.stack([np.full(ok.sum(), p), a[ok], b[ok]], axis=1))
            if n < 3:
                continue
            i, j, k = _triples(n)
            spread = ~(s0[i] & s0[j] & s0[k]) & ~(s1[i] & s1[j] & s1[k])
            north, target = xy[i] - xy[j], xy[k] - xy[j]
            bear = bearing_deg(north, target)
            heights = np.stack([z[i], z[j], z[k]])
            ok = (
                spread
                & (np.linalg.norm(north, axis=1) >= self.MIN_BASELINE)
                & (np.linalg.norm(target, axis=1) >= self.MIN_FLOOR_DIST)
                & (heights.max(0) - heights.min(0) <= self.MAX_HEIGHT_SPREAD)
                & (boundary_margin(bear) >= self.MARGIN_DEG)
            )
            ans = sector(bear)
            out["direction"].append(
                np.stack([np.full(ok.sum(), p), i[ok], j[ok], k[ok], ans[ok]], axis=1)
            )
            # closer: anchor i, candidates j < k, distances separated by the margin
            c3 = pair.centres
            dj = np.linalg.norm(c3[j] - c3[i], axis=1)
            dk = np.linalg.norm(c3[k] - c3[i], axis=1)
            gap = np.abs(dj - dk)
            ok = (
                spread
                & (j < k)
                & (gap >= self.MIN_ABS_GAP)
                & (gap >= self.MIN_REL_GAP * np.maximum(dj, dk))
            )
            out["closer"].append(np.stack([np.full(ok.sum(), p), i[ok], j[ok], k[ok]], axis=1))
        return out

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: kind by :attr:`KIND_WEIGHTS` (among the kinds the scene
        can ask), direction answers drawn uniformly over the available directions."""
        if budget <= 0 or len(scene.frames) < 2:
            return
        pairs, raw = self.scene_tables(scene, ctx)
        tables = {k: np.concatenate(v) if v else np.zeros((0, 5), int) for k, v in raw.items()}
        buckets = [tables["direction"][tables["direction"][:, 4] == d] for d in range(8)]
        buckets = [b for b in buckets if len(b)]
        kinds = [k for k in self.KINDS if len(tables[k])]
        if not kinds:
            return
        w = np.array([self.KIND_WEIGHTS[self.KINDS.index(k)] for k in kinds], dtype=float)
        w /= w.sum()
        made = attempts = 0
        seen: set[str] = set()
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            kind = kinds[int(rng.choice(len(kinds), p=w))]
            if kind == "direction":
                bucket = buckets[int(rng.integers(len(buckets)))]
                row = bucket[int(rng.integers(len(bucket)))]
            else:
                row = tables[kind][int(rng.integers(len(tables[kind])))]
            pair = pairs[int(row[0])]
            ids = [pair.objects[int(x)] for x in row[1 : 4 if kind != "distance" else 3]]
            sample = getattr(self, f"_{kind}")(scene, pair, ids, rng)
            if sample.id in seen:
                continue
            seen.add(sample.id)
            yield sample
            made += 1

    def _refs(self, pair: Pair, ids: list[int], rng: np.random.Generator, lettered: bool = False):
        """References to ``ids`` (returned in the order of ``ids``); the order in which tags and
        colours are handed out is shuffled, so tag A is not always the same role. ``lettered``:
        the question has lettered options, so no lettered marks (``box-A``)."""
        order = [int(x) for x in rng.permutation(len(ids))]
        modes = available_modes(pair.mv, ids)
        if lettered:
            modes = [m for m in modes if m not in TAGGED_MODES]
        mode = modes[int(rng.integers(len(modes)))]
        refs = refer_across(pair.mv, [ids[x] for x in order], mode, rng)
        by_role = [refs[order.index(r)] for r in range(len(ids))]
        return mode, by_role

    def _sample(
        self, pair: Pair, refs, question: str, reply: str, answer: str, reward: dict, meta: dict
    ) -> Sample:
        img1, img2 = render_pair(pair.mv, refs)
        meta = {
            "scene_id": pair.mv.scene.id,
            "frame_ids": pair.mv.frame_ids,
            **meta,
            "visible_fraction": visible_fractions(pair.mv.views, meta["object_ids"]),
            "refs": [r.to_meta() for r in refs],
            "image_sizes": [list(v.model_size) for v in pair.mv.views],
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[
                user(IMAGE_LABELS[0], img1, IMAGE_LABELS[1], img2, question),
                assistant(reply),
            ],
            images=[img1, img2],
            answer=answer,
            reward=reward,
            meta=meta,
        )

    def _direction(
        self, scene: Scene, pair: Pair, ids: list[int], rng: np.random.Generator
    ) -> Sample:
        a, b, c = ids
        bearing = floor_bearing(scene, a, b, c)
        floor_dists = [
            float(np.linalg.norm(scene.object(x).box[:2] - scene.object(b).box[:2])) for x in (a, c)
        ]
        k = int(sector(bearing))
        style = self.STYLES[int(rng.integers(len(self.STYLES)))]
        mode, refs = self._refs(pair, ids, rng, lettered=style == "mcq")
        t_idx, template = pick(rng, DIRECTION_TEMPLATES)
        question = template.format(a=refs[0].mention, b=refs[1].mention, c=refs[2].mention)
        answer_style = pair.mv.views[0].settings.answer_style
        tail, answer, reply, options, s_idx = direction_answer(
            style, k, COMPASS, self.N_OPTIONS, rng, answer_style
        )
        question += tail
        meta = {
            "kind": "direction",
            "object_ids": ids,
            "north_id": a,
            "origin_id": b,
            "target_id": c,
            "style": style,
            "refer_mode": mode,
            "options": options,
            "bearing_deg": bearing,
            "margin_deg": float(boundary_margin(bearing)),
            "direction": COMPASS[k],
            "floor_dists": floor_dists,
            "baseline_m": floor_dists[0],
            "phrasing": [t_idx, s_idx],
        }
        if style == "mcq":
            meta["answer_style"] = answer_style
        reward = {"mode": style, "ground_truth": answer}
        return self._sample(pair, refs, question, reply, answer, reward, meta)

    def _distance(
        self, scene: Scene, pair: Pair, ids: list[int], rng: np.random.Generator
    ) -> Sample:
        ids = [ids[int(x)] for x in rng.permutation(2)]
        dist = centre_distance(scene, *ids)
        mode, refs = self._refs(pair, ids, rng)
        t_idx, template = pick(rng, DISTANCE_TEMPLATES)
        question = template.format(a=refs[0].mention, b=refs[1].mention)
        answer = metres_text(dist)
        meta = {
            "kind": "distance",
            "object_ids": ids,
            "refer_mode": mode,
            "distance_m": dist,
            "phrasing": [t_idx],
        }
        reward = {"mode": "numeric", "ground_truth": round_metres(dist)}
        return self._sample(pair, refs, question, answer, answer, reward, meta)

    def _closer(self, scene: Scene, pair: Pair, ids: list[int], rng: np.random.Generator) -> Sample:
        x, y, z = ids
        cands = [y, z] if rng.random() < 0.5 else [z, y]
        dists = [centre_distance(scene, x, c) for c in cands]
        query = ("closest", "farthest")[int(rng.integers(2))]
        best = int(np.argmin(dists)) if query == "closest" else int(np.argmax(dists))
        mode, refs = self._refs(pair, [x, *cands], rng, lettered=True)
        t_idx, template = pick(rng, CLOSER_TEMPLATES)
        w_idx, which = pick(rng, CLOSER_WHICH[query])
        shuffled, answer, order = shuffle_options([r.mention for r in refs[1:]], best, rng)
        answer_style = pair.mv.views[0].settings.answer_style
        s_idx, tail = mcq_tail(rng, format_options(shuffled), answer_style)
        question = template.format(which=which, x=refs[0].mention) + tail
        meta = {
            "kind": "closer",
            "object_ids": [x, *cands],
            "anchor_id": x,
            "candidate_ids": cands,
            "query": query,
            "refer_mode": mode,
            "options": order,
            "distances": dists,
            "phrasing": [t_idx, w_idx, s_idx],
            "answer_style": answer_style,
        }
        reply = mcq_reply(answer, shuffled[order.index(best)], answer_style)
        reward = {"mode": "mcq", "ground_truth": answer}
        return self._sample(pair, refs, question, reply, answer, reward, meta)

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the answer from the world boxes (floor bearings, centre distances)."""
        kind = meta["kind"]
        if kind == "direction":
            k = int(
                sector(floor_bearing(scene, meta["north_id"], meta["origin_id"], meta["target_id"]))
            )
            if meta["style"] == "exact":
                return COMPASS[k]
            return mcq_letter(meta["options"], k) if k in meta["options"] else ""
        if kind == "distance":
            return metres_text(centre_distance(scene, *meta["object_ids"]))
        if kind == "closer":
            d = [centre_distance(scene, meta["anchor_id"], c) for c in meta["candidate_ids"]]
            best = int(np.argmin(d)) if meta["query"] == "closest" else int(np.argmax(d))
            return letter_of(meta["options"], best)
        raise ValueError(f"unknown {self.name} kind {kind!r}")
