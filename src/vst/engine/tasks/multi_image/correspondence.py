"""``mi_correspondence``: which labelled point in image 2 is the point marked in image 1.

Points (paper, "Correspondence": image boundary, depth validity and occlusion checks):

* Reference points are pixels of frame 1 on object surfaces (instance mask > 0, an object of
  the scene, at least ``EDGE_MARGIN`` of the short side away from the mask's border, on a grid
  of step ``GRID`` of the short side), unprojected with frame 1's metric z-depth, then moved
  into camera 2 (poses) and projected with its intrinsics.
* A point is visible in a frame when its pixel ``(floor(u + 0.5), floor(v + 0.5))`` lies inside
  the image (``-0.5 <= u < W - 0.5``, same for v), its camera z is > 0 and
  ``|z - depth| / z <= MAX_REL_DEPTH_ERROR`` (5%) against that frame's depth map (depth > 0).
  Kept correspondences are visible in both frames and also land on the same object, away from
  its mask border, in frame 2 (so the mark cannot sit on an edge).
* Distractors are other object-surface pixels of frame 2 (same grid and border margin), at
  least ``MIN_SEPARATION`` of frame 2's short side from the true point and from each other.
* No shortcut by coordinates: small camera motions leave the true point near the reference
  point's own pixel coordinates, so the option nearest to them would be right far more often
  than 1 in ``N_OPTIONS``. The *rank* of the true option (0 = nearest) by its distance, in
  model-image pixels, from the reference point's model-image coordinates is drawn uniformly
  first; the distractors are then picked so that exactly that many lie strictly nearer
  (``meta["truth_rank"]``). A drawn rank is kept until a correspondence offers it.

Modes (``meta["mode"]``): ``marks`` (the paper's form: the reference point circled in image 1,
the ``N_OPTIONS`` candidates circled and lettered in image 2, one colour) and ``coords`` (the
reference pixel and the candidates as ``(x, y)`` text, images unmarked). Coordinates are
integer pixels of the stored (model-size) images. The candidates' letters follow a uniform
shuffle; the answer is the letter (reward ``mcq``); the reply follows the run's answer style
(``"B: point-B"`` / ``"B. (120, 45)"`` or ``"B"``, see :mod:`vst.engine.choices`).

Pairs: ordered pairs of frames with depth and masks that share at least ``MIN_SHARED`` askable
objects (:func:`vst.engine.multiview.frame_pairs`); each sample draws a pair, then an unused
correspondence of it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
from scipy.ndimage import maximum_filter, minimum_filter

from vst.engine.choices import (
    LETTERS,
    MARK_INSTRUCTIONS,
    MCQ_INSTRUCTIONS,
    check_style,
    mcq_reply,
    pick,
)
from vst.engine.context import EngineContext, FrameView, visible_fractions
from vst.engine.multiview import frame_pairs
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import ground_truth_view, join_items
from vst.engine.visual_prompts import PointMark, draw_marks, pick_colors
from vst.geometry.cameras import relative_pose
from vst.scenes.model import Scene

MODES: tuple[str, ...] = ("marks", "coords")

INTROS: tuple[str, ...] = (
    "Image 1 and image 2 show the same scene from two different camera positions.",
    "The two pictures were taken in the same room after the camera moved.",
    "These are two views of one indoor scene, taken from different viewpoints.",
    "A camera photographed the scene (image 1), moved, and photographed it again (image 2).",
    "Both images show the same place; only the camera pose differs between them.",
)

TEMPLATES: dict[str, tuple[str, ...]] = {
    "marks": (
        "A point on a surface is circled in {color} in image 1. In image 2, several {color} "
        "circles are labelled {letters}. Which label marks the same 3D point?",
        "Image 1 has one {color} circle. Image 2 has {color} circles tagged {letters}. Which "
        "of them shows the same spot as the circle in image 1?",
        "Find the point of image 2 that corresponds to the {color}-circled point of image 1. "
        "The candidates are the circles labelled {letters}.",
        "The {color} circle in the first image marks a physical point. Which of the labelled "
        "{color} circles ({letters}) in the second image is that same point?",
        "Match the circled point: the {color} mark in image 1 corresponds to which lettered "
        "mark ({letters}) in image 2?",
    ),
    "coords": (
        "Pixel {ref} of image 1 lies on an object's surface. Which pixel of image 2 shows the "
        "same 3D point?",
        "Consider the point at {ref} in the first image. Where is it in the second image?",
        "The surface point seen at {ref} in image 1 appears in image 2 at which location?",
        "Which location in image 2 corresponds to the point {ref} of image 1?",
        "Track the point at {ref} of image 1 into image 2: which candidate pixel is it?",
    ),
}

COORD_NOTES: tuple[str, ...] = (
    "Coordinates are (x, y) pixels of each image.",
    "Points are given as (x, y) in pixels, x to the right and y down.",
    "Each coordinate pair is (column, row) in pixels of its own image.",
    "(x, y) are pixel positions measured from the top-left corner of each image.",
    "Positions are in pixels of the respective image, as (x, y).",
)


def interior_mask(mask: np.ndarray, radius: int) -> np.ndarray:
    """Pixels whose whole ``(2 radius + 1)``-square neighbourhood holds their own (non-zero)
    instance id (away from mask borders)."""
    size = 2 * radius + 1
    lo = minimum_filter(mask, size=size, mode="nearest")
    hi = maximum_filter(mask, size=size, mode="nearest")
    return (mask > 0) & (lo == mask) & (hi == mask)


def visible_in(
    points_cam: np.ndarray, K: np.ndarray, depth: np.ndarray, max_rel: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Visibility of camera-frame points (N, 3) in a frame: inside the image, z > 0 and
    ``|z - depth| / z <= max_rel`` at their pixel (depth > 0). Returns ``(ok, uv, pixel)``:
    float projections (N, 2) and integer pixels ``(u, v)`` (N, 2) (-1 where outside)."""
    h, w = depth.shape
    z = points_cam[:, 2]
    front = z > 0
    zs = np.where(front, z, 1.0)
    u = K[0, 0] * points_cam[:, 0] / zs + K[0, 1] * points_cam[:, 1] / zs + K[0, 2]
    v = K[1, 1] * points_cam[:, 1] / zs + K[1, 2]
    uv = np.stack([u, v], axis=1)
    pu, pv = np.floor(u + 0.5).astype(np.int64), np.floor(v + 0.5).astype(np.int64)
    inside = front & (pu >= 0) & (pu < w) & (pv >= 0) & (pv < h)
    pu, pv = np.where(inside, pu, -1), np.where(inside, pv, -1)
    d = np.where(inside, depth[np.clip(pv, 0, h - 1), np.clip(pu, 0, w - 1)], 0.0)
    ok = inside & (d > 0) & (np.abs(zs - d) <= max_rel * zs)
    return ok, uv, np.stack([pu, pv], axis=1)


@dataclass
class _PairPoints:
    """Valid correspondences of one ordered pair: frame-1 pixels, frame-2 float projections and
    pixels, object ids, and which are still unused."""

    pix1: np.ndarray
    uv2: np.ndarray
    pix2: np.ndarray
    obj: np.ndarray
    unused: list[int]


def _unproject(u: np.ndarray, v: np.ndarray, z: np.ndarray, K: np.ndarray) -> np.ndarray:
    y = (v - K[1, 2]) / K[1, 1] * z
    x = (u - K[0, 2] - K[0, 1] * y / z) / K[0, 0] * z
    return np.stack([x, y, z], axis=1)


def _rank(ref: tuple[int, int], points: list[tuple[int, int]], k: int) -> int:
    """How many of ``points`` lie strictly nearer to ``ref`` than ``points[k]`` (pixels)."""
    d = np.hypot(*(np.asarray(points, dtype=float) - np.asarray(ref, dtype=float)).T)
    return int((d < d[k]).sum())


@register
class CorrespondenceTask(Task):
    """Point correspondence across two views (see the module docstring)."""

    name = "mi_correspondence"
    scenario = "multi_image"
    needs = TaskNeeds(depth=True, mask=True, min_frames=2)
    version = "2"

    MAX_REL_DEPTH_ERROR: ClassVar[float] = 0.05
    """Occlusion check: ``|z - depth| / z`` at most this in both frames (paper: 5%)."""
    MIN_SEPARATION: ClassVar[float] = 0.10
    """Candidates in image 2 are at least this fraction of its short side apart."""
    EDGE_MARGIN: ClassVar[float] = 0.01
    """Points keep this fraction of the short side (at least 1 px) from any mask border."""
    GRID: ClassVar[float] = 1.0 / 80.0
    """Candidate pixels lie on a grid of this fraction of the short side (at least 1 px)."""
    N_OPTIONS: ClassVar[int] = 4
    MIN_SHARED: ClassVar[int] = 1
    """Askable objects both frames must show."""
    COORDS_FRACTION: ClassVar[float] = 0.25
    """Share of samples stating coordinates instead of drawing marks."""
    ATTEMPTS_PER_SAMPLE: ClassVar[int] = 5
    RANK_ATTEMPTS: ClassVar[int] = 50
    """Correspondences tried for one drawn rank before a new rank is drawn (pairs whose
    motion cannot offer it); rare, so the ranks stay uniform."""

    # -- per-frame and per-pair caches -----------------------------------------------------
    def _grid(self, view: FrameView) -> tuple[int, int]:
        short = min(view.frame.width, view.frame.height)
        return max(1, round(self.GRID * short)), max(1, round(self.EDGE_MARGIN * short))

    def _surface(self, view: FrameView) -> tuple[np.ndarray, np.ndarray]:
        """Interior object pixels of a frame on the grid: ``(u, v)`` (M, 2) ints and a boolean
        interior map (H, W). Cached on the view."""
        step, radius = self._grid(view)
        per_view = view.__dict__.setdefault("_mi_corr_surface", {})
        cache = per_view.get((step, radius))
        if cache is None:
            mask = view.mask
            known = np.isin(mask, np.array([o.id for o in view.scene.objects], dtype=mask.dtype))
            inner = interior_mask(np.where(known, mask, 0), radius)
            if view.depth is not None:
                inner &= view.depth > 0
            grid = np.zeros_like(inner)
            grid[step // 2 :: step, step // 2 :: step] = True
            rows, cols = np.nonzero(inner & grid)
            cache = (np.stack([cols, rows], axis=1), inner)
            per_view[(step, radius)] = cache
        return cache

    def _pair_points(self, v1: FrameView, v2: FrameView) -> _PairPoints:
        pix1, _ = self._surface(v1)
        _, inner2 = self._surface(v2)
        u, v = pix1[:, 0].astype(float), pix1[:, 1].astype(float)
        z1 = v1.depth[pix1[:, 1], pix1[:, 0]].astype(np.float64)
        p1 = _unproject(u, v, z1, v1.frame.K)
        T = relative_pose(v2.frame.cam_to_world, v1.frame.cam_to_world)  # camera 1 -> camera 2
        p2 = p1 @ T[:3, :3].T + T[:3, 3]
        ok1, _, _ = visible_in(p1, v1.frame.K, v1.depth, self.MAX_REL_DEPTH_ERROR)
        ok2, uv2, pix2 = visible_in(p2, v2.frame.K, v2.depth, self.MAX_REL_DEPTH_ERROR)
        obj1 = v1.mask[pix1[:, 1], pix1[:, 0]]
        ok = ok1 & ok2
        same = np.zeros_like(ok)
        same[ok] = (v2.mask[pix2[ok, 1], pix2[ok, 0]] == obj1[ok]) & inner2[
            pix2[ok, 1], pix2[ok, 0]
        ]
        keep = np.nonzero(ok & same)[0]
        return _PairPoints(pix1[keep], uv2[keep], pix2[keep], obj1[keep], list(range(len(keep))))

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: random pair with correspondences left, random unused
        correspondence, distractors, mode and phrasing."""
        if budget <= 0:
            return
        frames = [
            f
            for f in sorted(scene.frames, key=lambda f: f.id)
            if f.depth is not None and f.mask is not None
        ]
        pairs = frame_pairs(ctx, scene, min_shared=self.MIN_SHARED, frames=frames)
        cache: dict[int, _PairPoints] = {}
        alive = list(range(len(pairs)))
        made = attempts = 0
        rank, rank_tries = int(rng.integers(self.N_OPTIONS)), 0
        while made < budget and alive and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            k = int(rng.integers(len(alive)))
            i = alive[k]
            a, b = pairs[i]
            v1, v2 = ctx.view(scene, a), ctx.view(scene, b)
            if i not in cache:
                # the point search is deterministic: once per scene and context; each call
                # gets its own "unused" list
                found = ctx.memo(
                    (self.name, "points", scene.id, a.id, b.id),
                    lambda v1=v1, v2=v2: self._pair_points(v1, v2),
                )
                cache[i] = _PairPoints(
                    found.pix1, found.uv2, found.pix2, found.obj, list(range(len(found.obj)))
                )
            pts = cache[i]
            if not pts.unused:
                alive[k] = alive[-1]
                alive.pop()
                continue
            j = int(rng.integers(len(pts.unused)))
            c, pts.unused[j] = pts.unused[j], pts.unused[-1]
            pts.unused.pop()
            ref = v1.to_model_xy(int(pts.pix1[c][0]), int(pts.pix1[c][1]))
            distractors = self._distractors(v2, pts.pix2[c], ref, rank, rng)
            if distractors is None:
                rank_tries += 1
                if rank_tries >= self.RANK_ATTEMPTS:
                    rank, rank_tries = int(rng.integers(self.N_OPTIONS)), 0
                continue
            yield self._sample(scene, v1, v2, pts, c, distractors, rng)
            made += 1
            rank, rank_tries = int(rng.integers(self.N_OPTIONS)), 0

    def _distractors(
        self,
        v2: FrameView,
        truth: np.ndarray,
        ref_model: tuple[int, int],
        rank: int,
        rng: np.random.Generator,
    ) -> list[np.ndarray] | None:
        """``N_OPTIONS - 1`` surface pixels of frame 2, separated from ``truth`` and each other,
        ``rank`` of them strictly nearer to ``ref_model`` (the reference point's model-image
        coordinates) than ``truth`` is, the others strictly farther, all measured in model-image
        pixels of frame 2 (None if the frame has too few)."""
        pool, _ = self._surface(v2)
        sep = self.MIN_SEPARATION * min(v2.frame.width, v2.frame.height)
        keep = np.hypot(*(pool - truth).T) >= sep
        far = pool[keep]
        if len(far) < self.N_OPTIONS - 1:
            return None
        ref = np.asarray(ref_model, dtype=float)
        d = np.hypot(*(self._model_xy(v2)[keep] - ref).T)
        d_truth = float(np.hypot(*(np.asarray(v2.to_model_xy(int(truth[0]), int(truth[1]))) - ref)))
        chosen: list[np.ndarray] = []
        for side, wanted in ((d < d_truth, rank), (d > d_truth, self.N_OPTIONS - 1 - rank)):
            group, got = far[side], 0
            for idx in rng.permutation(len(group))[:200] if wanted else ():
                p = group[int(idx)]
                if all(np.hypot(*(p - q)) >= sep for q in chosen):
                    chosen.append(p)
                    got += 1
                    if got == wanted:
                        break
            if got < wanted:
                return None
        return chosen

    def _model_xy(self, view: FrameView) -> np.ndarray:
        """Model-image pixels (M, 2) of the frame's surface grid (:meth:`_surface`), as
        :meth:`FrameView.to_model_xy` maps them. Cached on the view."""
        pool, _ = self._surface(view)
        per_view = view.__dict__.setdefault("_mi_corr_model_xy", {})
        key = self._grid(view)
        if key not in per_view:
            sx, sy = view.model_scale
            w, h = view.model_size
            x = np.clip(np.round((pool[:, 0] + 0.5) * sx - 0.5), 0, w - 1)
            y = np.clip(np.round((pool[:, 1] + 0.5) * sy - 0.5), 0, h - 1)
            per_view[key] = np.stack([x, y], axis=1)
        return per_view[key]

    def _sample(
        self,
        scene: Scene,
        v1: FrameView,
        v2: FrameView,
        pts: _PairPoints,
        c: int,
        distractors: list[np.ndarray],
        rng: np.random.Generator,
    ) -> Sample:
        mode = "coords" if rng.random() < self.COORDS_FRACTION else "marks"
        options = [pts.pix2[c], *distractors]
        order = [int(i) for i in rng.permutation(len(options))]
        shown = [options[i] for i in order]
        answer = LETTERS[order.index(0)]
        ref = (int(pts.pix1[c][0]), int(pts.pix1[c][1]))
        ref_model = v1.to_model_xy(*ref)
        shown_model = [v2.to_model_xy(int(p[0]), int(p[1])) for p in shown]
        letters = LETTERS[: len(shown)]
        i_intro, intro = pick(rng, INTROS)
        i_q, template = pick(rng, TEMPLATES[mode])
        color = None
        parts = [intro]
        if mode == "marks":
            color = pick_colors(rng, 1)[0]
            parts.append(template.format(color=color, letters=join_items(list(letters), "and")))
            img1 = draw_marks(v1.shared_model_image(), [PointMark(ref_model, color)])
            img2 = draw_marks(
                v2.shared_model_image(),
                [
                    PointMark(xy, color, letter)
                    for xy, letter in zip(shown_model, letters, strict=True)
                ],
            )
            i_note = -1
        else:
            parts.append(template.format(ref=f"({ref_model[0]}, {ref_model[1]})"))
            parts.append(
                "\n".join(
                    f"{L}. ({x}, {y})" for L, (x, y) in zip(letters, shown_model, strict=True)
                )
            )
            i_note, note = pick(rng, COORD_NOTES)
            parts.append(note)
            img1, img2 = v1.shared_model_image(), v2.shared_model_image()
        # no instruction (index 0) or one of the run's answer style (1..)
        answer_style = check_style(v1.settings.answer_style)
        table = (MARK_INSTRUCTIONS if mode == "marks" else MCQ_INSTRUCTIONS)[answer_style]
        i_hint = int(rng.integers(len(table) + 1))
        if i_hint:
            parts.append(table[i_hint - 1])
        if mode == "marks":
            reply = mcq_reply(answer, f"point-{answer}", answer_style, sep=":")
        else:
            x, y = shown_model[order.index(0)]
            reply = mcq_reply(answer, f"({x}, {y})", answer_style)
        question = "\n".join(parts)
        layout = int(rng.integers(2))
        if layout == 0:
            message = user(img1, img2, question)
        else:
            message = user("Image 1:", img1, "Image 2:", img2, question)
        z1 = float(v1.depth[ref[1], ref[0]])
        meta: dict[str, Any] = {
            "scene_id": scene.id,
            "frame_ids": [v1.frame.id, v2.frame.id],
            "mode": mode,
            "color": color,
            "object_id": int(pts.obj[c]),
            "visible_fraction": visible_fractions([v1, v2], [int(pts.obj[c])]),
            "ref_pixel": list(ref),
            "ref_model_xy": list(ref_model),
            "ref_depth": z1,
            "truth_uv": [float(x) for x in pts.uv2[c]],
            "option_pixels": [[int(p[0]), int(p[1])] for p in shown],
            "option_model_xy": [list(xy) for xy in shown_model],
            "options": order,
            "truth_rank": _rank(ref_model, shown_model, order.index(0)),
            "phrasing": [i_intro, i_q, i_note, i_hint],
            "layout": layout,
            "answer_style": answer_style,
            "image_sizes": [list(v1.model_size), list(v2.model_size)],
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[message, assistant(reply)],
            images=[img1, img2],
            answer=answer,
            reward={"mode": "mcq", "ground_truth": answer},
            meta=meta,
        )

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Re-project the reference pixel with frame 1's depth into frame 2, check it is visible
        there (5% rule), and return the letter of the option pixel it lands on (within 1 px)."""
        v1 = ground_truth_view(scene, meta["frame_ids"][0])
        v2 = ground_truth_view(scene, meta["frame_ids"][1])
        u, v = meta["ref_pixel"]
        z = np.array([float(v1.depth[v, u])])
        p1 = _unproject(np.array([float(u)]), np.array([float(v)]), z, v1.frame.K)
        T = relative_pose(v2.frame.cam_to_world, v1.frame.cam_to_world)
        p2 = p1 @ T[:3, :3].T + T[:3, 3]
        ok, uv, _ = visible_in(p2, v2.frame.K, v2.depth, self.MAX_REL_DEPTH_ERROR)
        if not ok[0]:
            raise ValueError("the reference point is not visible in frame 2")
        d = np.hypot(*(np.asarray(meta["option_pixels"], dtype=float) - uv[0]).T)
        k = int(np.argmin(d))
        if d[k] > 1.0:
            raise ValueError("no option lies on the reference point's projection")
        return LETTERS[k]
