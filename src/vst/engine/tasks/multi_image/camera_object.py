"""``mi_camera_object``: directions and distances from the camera of image 1 to objects seen
across two images.

Question kinds (``meta["kind"]``), all on the floor plane (world X-Y; :mod:`._compass`):

* ``facing``: "the camera of image 1 faces north (its optical axis projected on the floor);
  which direction is C from that camera?" C is shown only by image 2 (no mask pixel in image
  1). The answer is the compass sector of the floor vector camera -> C, clockwise from the
  heading (east = north rotated by -90 degrees about +Z, the camera's right).
* ``object_north``: "if A is north of the camera of image 1, which direction is C from that
  camera?" north = the floor vector camera -> A; at least one of A and C is shown only by
  image 2.
* ``distance``: the distance (m, 2 decimals) from camera 1's centre to the 3D box centre of
  an object shown only by image 2; reward ``numeric``.

Direction kinds are asked as ``mcq`` (4 of the 8 directions, shuffled) or ``exact`` (the
word). Margins: bearings at least :attr:`CameraObject.MARGIN_DEG` from a sector boundary;
the floor distance camera-A defining north (``object_north``; ``meta["baseline_m"]``, None for
``facing``) at least :attr:`CameraObject.MIN_BASELINE` (1 m); camera-C at least
:attr:`CameraObject.MIN_FLOOR_DIST`; camera 1
must have a heading (optical axis at most 60 degrees from the horizontal,
:attr:`CameraObject.MIN_AXIS_HORIZONTAL`). Direction answers are balanced: a direction is drawn
uniformly among those the scene can ask, then a question with that answer.

Objects are referred to as in :mod:`._compass_refer`. Distances and directions are frame
independent, so they hold in frame 1's camera frame, the world frame of multi-image samples.

``meta``: ``frame_ids`` (image 1, image 2), ``kind``, ``target_id``, ``north_id`` (None for
``facing`` and ``distance``), ``style``, ``options`` (``mcq``: the shown direction indices into
:data:`~._compass.COMPASS`, in letter order), the computed ``bearing_deg``, ``margin_deg``,
``direction`` or ``distance_m``, ``refs`` and ``phrasing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import pick
from vst.engine.context import EngineContext, visible_fractions
from vst.engine.registry import register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.multi_image._compass import (
    COMPASS,
    IMAGE_LABELS,
    MIN_OBJECT_BASELINE_M,
    bearing_deg,
    boundary_margin,
    camera_heading,
    direction_answer,
    mcq_letter,
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

KINDS: tuple[str, ...] = ("facing", "object_north", "distance")

FACING_TEMPLATES: tuple[str, ...] = (
    "The camera that took image 1 faces north. In which direction is {c} from that camera?",
    "Suppose the first image was taken facing north. Which compass direction is {c} from the "
    "spot where the first photo was taken?",
    "Take the viewing direction of image 1, projected on the floor, as north. Where does {c} lie "
    "relative to the first camera?",
    "If the camera of image 1 points north, which way is {c} from the camera's position?",
    "Standing where image 1 was taken and looking north along its view, in what direction "
    "would {c} be?",
)
"""``facing`` questions: camera 1's heading is north; ``c`` is the target."""

OBJECT_NORTH_TEMPLATES: tuple[str, ...] = (
    "With north defined by the line from image 1's camera to {a}, what is the compass direction "
    "of {c} from that camera?",
    "Let north point from the first camera toward {a}. Which direction is {c} from the first "
    "camera?",
    "Suppose {a} lies north of the camera that took image 1. Where is {c} relative to this camera?",
    "Taking the direction from the first image's camera to {a} as north, what is the direction "
    "of {c} from that camera?",
    "Seen from the spot where image 1 was taken, {a} is to the north. Which way is {c} from that "
    "spot?",
)
"""``object_north`` questions: north = camera 1 -> ``a``; ``c`` is the target."""

DISTANCE_TEMPLATES: tuple[str, ...] = (
    "How far is {c} from the camera of image 1, in metres?",
    "What is the distance between the first camera and {c}? Answer in meters.",
    "Estimate how many metres separate the position where image 1 was taken from {c}.",
    "From the viewpoint of image 1, how far away is the centre of {c} (in metres)?",
    "What is the straight-line distance from the first image's camera to {c}, in metres?",
)
"""``distance`` questions: camera 1's centre to the box centre of ``c`` (shown by image 2)."""


def camera_bearing(scene: Scene, frame_id: str, target: int, north_to: int | None) -> float:
    """Bearing (degrees clockwise from north, seen from above) of object ``target`` from the
    camera centre of frame ``frame_id``; north is the camera's heading when ``north_to`` is
    None, else the floor direction camera -> ``north_to``."""
    pose = scene.frame(frame_id).cam_to_world
    cam = pose[:2, 3]
    north = camera_heading(pose, 0.0) if north_to is None else scene.object(north_to).box[:2] - cam
    return float(bearing_deg(north, scene.object(target).box[:2] - cam))


def camera_floor_distance(scene: Scene, frame_id: str, target: int) -> float:
    """Floor distance (m, world X-Y) from the frame's camera centre to the object's box centre."""
    pose = scene.frame(frame_id).cam_to_world
    return float(np.linalg.norm(scene.object(target).box[:2] - pose[:2, 3]))


def camera_distance(scene: Scene, frame_id: str, target: int) -> float:
    """Euclidean distance (m) from the frame's camera centre to the object's 3D box centre."""
    pose = scene.frame(frame_id).cam_to_world
    return float(np.linalg.norm(scene.object(target).box[:3] - pose[:3, 3]))


@register
class CameraObject(CompassTask):
    """Directions (compass, floor plane) and distances from camera 1 to objects."""

    name = "mi_camera_object"
    version = "2"
    MIN_BASELINE: ClassVar[float] = MIN_OBJECT_BASELINE_M
    """``object_north``: the floor distance camera-A (m) defining north is at least this."""
    MIN_FLOOR_DIST: ClassVar[float] = 0.3
    """Floor distance camera-C (m) below this leaves the target's direction undefined."""
    MIN_AXIS_HORIZONTAL: ClassVar[float] = 0.5
    """Camera 1's optical axis needs at least this horizontal part (tilt <= 60 degrees)."""
    MIN_DISTANCE: ClassVar[float] = 0.3
    """Numeric distance questions need at least this many metres."""
    KINDS: ClassVar[tuple[str, ...]] = KINDS
    KIND_WEIGHTS: ClassVar[tuple[float, ...]] = (0.4, 0.4, 0.2)

    # -- candidates ------------------------------------------------------------------------
    def candidates(self, pairs: Sequence[Pair]) -> dict[str, np.ndarray]:
        """Every askable question per kind, as integer rows over ``pairs`` (object positions in
        ``pair.objects``): ``facing`` -> ``(pair, c, answer)``, ``object_north`` ->
        ``(pair, a, c, answer)``, ``distance`` -> ``(pair, c)``."""
        out: dict[str, list[np.ndarray]] = {k: [] for k in KINDS}
        for p, pair in enumerate(pairs):
            n = len(pair.objects)
            pose = pair.mv.frames[0].cam_to_world
            heading = camera_heading(pose, self.MIN_AXIS_HORIZONTAL)
            if n == 0 or heading is None:
                continue
            only2 = ~pair.seen_mask(0)  # askable objects shown only by image 2
            rel = pair.centres[:, :2] - pose[:2, 3]
            floor = np.linalg.norm(rel, axis=1)
            far = floor >= self.MIN_FLOOR_DIST
            # facing
            bear = bearing_deg(heading, rel)
            ok = only2 & far & (boundary_margin(bear) >= self.MARGIN_DEG)
            idx = np.flatnonzero(ok)
            out["facing"].append(np.stack([np.full(len(idx), p), idx, sector(bear[idx])], axis=1))
            # distance
            d3 = np.linalg.norm(pair.centres - pose[:3, 3], axis=1)
            idx = np.flatnonzero(only2 & (d3 >= self.MIN_DISTANCE))
            out["distance"].append(np.stack([np.full(len(idx), p), idx], axis=1))
            # object_north: a != c, one of them only in image 2
            a, c = (x.ravel() for x in np.indices((n, n)))
            keep = (a != c) & (only2[a] | only2[c]) & (floor[a] >= self.MIN_BASELINE) & far[c]
            a, c = a[keep], c[keep]
            bear = bearing_deg(rel[a], rel[c])
            ok = boundary_margin(bear) >= self.MARGIN_DEG
            out["object_north"].append(
                np.stack([np.full(ok.sum(), p), a[ok], c[ok], sector(bear[ok])], axis=1)
            )
        width = {"facing": 3, "object_north": 4, "distance": 2}
        return {
            k: np.concatenate(v) if v else np.zeros((0, width[k]), dtype=int)
            for k, v in out.items()
        }

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: kind by :attr:`KIND_WEIGHTS` (among the kinds the scene
        can ask); a direction question first draws its answer uniformly over the directions any
        direction kind can ask, then a kind that can ask it (by :attr:`KIND_WEIGHTS`)."""
        if budget <= 0 or len(scene.frames) < 2:
            return
        pairs, tables = self.scene_tables(scene, ctx)
        dir_kinds = [k for k in ("facing", "object_north") if len(tables[k])]
        buckets = {k: {d: tables[k][tables[k][:, -1] == d] for d in range(8)} for k in dir_kinds}
        directions = sorted({d for k in dir_kinds for d in range(8) if len(buckets[k][d])})
        weight = dict(zip(self.KINDS, self.KIND_WEIGHTS, strict=True))
        groups = (["direction"] if dir_kinds else []) + (
            ["distance"] if len(tables["distance"]) else []
        )
        if not groups:
            return
        w = np.array(
            [sum(weight[k] for k in dir_kinds) if g == "direction" else weight[g] for g in groups]
        )
        w /= w.sum()
        made = attempts = 0
        seen: set[str] = set()
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            if groups[int(rng.choice(len(groups), p=w))] == "distance":
                kind = "distance"
                row = tables[kind][int(rng.integers(len(tables[kind])))]
            else:  # a direction first (uniform), then a kind that can ask it
                d = directions[int(rng.integers(len(directions)))]
                can = [k for k in dir_kinds if len(buckets[k][d])]
                kw = np.array([weight[k] for k in can])
                kind = can[int(rng.choice(len(can), p=kw / kw.sum()))]
                bucket = buckets[kind][d]
                row = bucket[int(rng.integers(len(bucket)))]
            pair = pairs[int(row[0])]
            if kind == "object_north":
                ids = [pair.objects[int(row[1])], pair.objects[int(row[2])]]
            else:
                ids = [pair.objects[int(row[1])]]
            sample = self._build(scene, pair, kind, ids, rng)
            if sample.id in seen:
                continue
            seen.add(sample.id)
            yield sample
            made += 1

    def _build(
        self, scene: Scene, pair: Pair, kind: str, ids: list[int], rng: np.random.Generator
    ) -> Sample:
        mv = pair.mv
        f1 = mv.frame_ids[0]
        order = [int(x) for x in rng.permutation(len(ids))]  # tag/colour hand-out order
        # direction questions are asked as mcq or exact; draw that first, since lettered
        # options never go with lettered marks (box-A), whose letters would mean two things
        style = self.STYLES[int(rng.integers(len(self.STYLES)))]
        modes = available_modes(mv, ids)
        if style == "mcq" and kind != "distance":
            modes = [m for m in modes if m not in TAGGED_MODES]
        mode = modes[int(rng.integers(len(modes)))]
        shuffled = refer_across(mv, [ids[x] for x in order], mode, rng)
        refs = [shuffled[order.index(r)] for r in range(len(ids))]
        target = ids[-1]
        meta: dict = {
            "scene_id": scene.id,
            "frame_ids": mv.frame_ids,
            "kind": kind,
            "object_ids": ids,
            "visible_fraction": visible_fractions(mv.views, ids),
            "target_id": target,
            "north_id": ids[0] if kind == "object_north" else None,
            "refer_mode": mode,
        }
        if kind == "distance":
            dist = camera_distance(scene, f1, target)
            t_idx, template = pick(rng, DISTANCE_TEMPLATES)
            question = template.format(c=refs[-1].mention)
            answer = reply = metres_text(dist)
            reward = {"mode": "numeric", "ground_truth": round_metres(dist)}
            meta.update(distance_m=dist, phrasing=[t_idx])
        else:
            bearing = camera_bearing(scene, f1, target, meta["north_id"])
            k = int(sector(bearing))
            templates = FACING_TEMPLATES if kind == "facing" else OBJECT_NORTH_TEMPLATES
            t_idx, template = pick(rng, templates)
            question = template.format(a=refs[0].mention, c=refs[-1].mention)
            answer_style = mv.views[0].settings.answer_style
            tail, answer, reply, options, s_idx = direction_answer(
                style, k, COMPASS, self.N_OPTIONS, rng, answer_style
            )
            if style == "mcq":
                meta["answer_style"] = answer_style
            question += tail
            reward = {"mode": style, "ground_truth": answer}
            meta.update(
                style=style,
                options=options,
                bearing_deg=bearing,
                margin_deg=float(boundary_margin(bearing)),
                direction=COMPASS[k],
                baseline_m=None if kind == "facing" else camera_floor_distance(scene, f1, ids[0]),
                phrasing=[t_idx, s_idx],
            )
        meta["refs"] = [r.to_meta() for r in refs]
        meta["image_sizes"] = [list(v.model_size) for v in mv.views]
        img1, img2 = render_pair(mv, refs)
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

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the answer from camera 1's pose and the world boxes."""
        f1 = meta["frame_ids"][0]
        if meta["kind"] == "distance":
            return metres_text(camera_distance(scene, f1, meta["target_id"]))
        k = int(sector(camera_bearing(scene, f1, meta["target_id"], meta["north_id"])))
        if meta["style"] == "exact":
            return COMPASS[k]
        return mcq_letter(meta["options"], k) if k in meta["options"] else ""
