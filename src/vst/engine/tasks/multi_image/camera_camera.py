"""``mi_camera_camera``: where the two cameras of an image pair stand and face relative to each
other.

Question kinds (``meta["kind"]``), on the floor plane (world X-Y; :mod:`._compass`):

* ``position``: where one camera (the *target*) stands relative to the other (the *observer*),
  in the observer's own terms: front, front right, right, back right, back, back left, left,
  front left (:data:`~._compass.RELATIVE`). The floor displacement observer -> target is
  measured clockwise (seen from above) from the observer's heading (its optical axis projected
  on the floor); 90 degrees is the observer's right, its image X axis for an upright camera.
  ``meta["observer"]`` is 0 ("where is camera 2, seen from camera 1") or 1 ("standing at image
  2's spot, where is camera 1"). Kept when the floor displacement is at least
  :attr:`CameraCamera.MIN_DISPLACEMENT` (0.5 m; ``meta["baseline_m"]``), the observer's roll
  is at most
  :attr:`CameraCamera.MAX_ROLL_DEG` (left/right stay meaningful) and the angle is at least
  :attr:`CameraCamera.MARGIN_DEG` from a sector boundary.
* ``heading``: "if image 1 was taken facing <base>, which compass direction does the camera of
  image 2 face?" The answer is ``base`` turned by the sector of camera 2's heading measured
  clockwise from camera 1's (``base`` is drawn uniformly from the eight directions, so the
  answers are balanced; the turn itself is balanced by drawing it uniformly among the turns
  the scene offers). Kept when the turn is at least :attr:`CameraCamera.MARGIN_DEG` from a
  sector boundary.

Both cameras need a heading (optical axis at most 60 degrees from the horizontal). Answer
styles: ``mcq`` (4 of the 8 directions, shuffled) or ``exact`` (the word). Pairs come from
:func:`~vst.engine.multiview.frame_pairs` (sharing an object, each showing one of its own).

``meta``: ``frame_ids`` (image 1, image 2), ``kind``, ``observer`` (position) or ``base``
(heading), ``style``, ``options`` (``mcq``: the shown direction indices, in letter order), the
computed ``angle_deg`` / ``turn_deg``, ``margin_deg``, ``displacement_m``, ``direction`` and
``phrasing``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import ClassVar

import numpy as np

from vst.engine.choices import pick
from vst.engine.context import EngineContext
from vst.engine.registry import register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.multi_image._compass import (
    COMPASS,
    IMAGE_LABELS,
    MIN_CAMERA_BASELINE_M,
    RELATIVE,
    bearing_deg,
    boundary_margin,
    camera_heading,
    camera_roll_deg,
    direction_answer,
    mcq_letter,
    sector,
)
from vst.engine.tasks.multi_image._compass_refer import CompassTask, Pair
from vst.scenes.model import Scene

KINDS: tuple[str, ...] = ("position", "heading")

POSITION_TEMPLATES: tuple[str, ...] = (
    "Seen from the camera of image {o}, looking the way it looks, where is the camera of "
    "image {t}?",
    "From the position and viewing direction of image {o}, in which direction was image {t} taken?",
    "Standing where image {o} was taken and looking the same way, where would the {t_word} "
    "camera be?",
    "Relative to the {o_word} camera's own front, back, left and right, where is the {t_word} "
    "camera placed?",
    "The photos come from someone walking through the room. If I stand where image {o} was "
    "shot, looking the same way, where is the camera of image {t} relative to me?",
    "Seen from the {o_word} shooting position, facing the way that photo looks, in which "
    "direction is the {t_word} shooting position?",
)
"""``position`` questions: observer ``o``, target ``t`` (1-based image numbers and words)."""

HEADING_TEMPLATES: tuple[str, ...] = (
    "Assume the camera was pointing {base} when image 1 was captured. Which direction was it "
    "pointing for image 2?",
    "The camera of image 1 points {base}. In which compass direction does the camera of image 2 "
    "point?",
    "Suppose image 1 was shot looking {base}. What direction was the camera facing for image 2?",
    "Taking the viewing direction of image 1 as {base}, which way is the second camera facing?",
    "The first photo faces {base}. Toward which direction does the second photo look?",
)
"""``heading`` questions: camera 1 faces ``base``; the answer is camera 2's facing."""

ORDINALS = ("first", "second")


def relative_position(observer_pose: np.ndarray, target_pose: np.ndarray) -> float:
    """Angle (degrees, ``[0, 360)``) of the target camera's floor position seen from the observer
    camera, clockwise (from above) from the observer's heading: 0 front, 90 right, 180 back,
    270 left. Poses are 4x4 camera-to-world matrices (world Z up)."""
    heading = camera_heading(observer_pose, 0.0)
    return float(bearing_deg(heading, target_pose[:2, 3] - observer_pose[:2, 3]))


def heading_turn(first_pose: np.ndarray, second_pose: np.ndarray) -> float:
    """Angle (degrees, ``[0, 360)``) from the first camera's heading to the second's, clockwise
    seen from above (90: the second camera faces the first one's right)."""
    return float(bearing_deg(camera_heading(first_pose, 0.0), camera_heading(second_pose, 0.0)))


@register
class CameraCamera(CompassTask):
    """Relative position and facing of the two cameras of an image pair."""

    name = "mi_camera_camera"
    version = "2"
    MIN_DISPLACEMENT: ClassVar[float] = MIN_CAMERA_BASELINE_M
    """``position``: the cameras' floor distance (m) must be at least this."""
    MAX_ROLL_DEG: ClassVar[float] = 30.0
    """``position``: the observer's image X axis may leave the horizontal by at most this."""
    MIN_AXIS_HORIZONTAL: ClassVar[float] = 0.5
    """Both optical axes need at least this horizontal part (tilt <= 60 degrees)."""
    KINDS: ClassVar[tuple[str, ...]] = KINDS
    KIND_WEIGHTS: ClassVar[tuple[float, ...]] = (0.5, 0.5)

    def candidates(self, pairs: Sequence[Pair]) -> dict[str, np.ndarray]:
        """Every askable question as integer rows over ``pairs``: ``position`` ->
        ``(pair, observer, answer)``, ``heading`` -> ``(pair, turn sector)``."""
        pos, head = [], []
        for p, pair in enumerate(pairs):
            poses = [f.cam_to_world for f in pair.mv.frames[:2]]
            if any(camera_heading(T, self.MIN_AXIS_HORIZONTAL) is None for T in poses):
                continue
            turn = heading_turn(*poses)
            if boundary_margin(turn) >= self.MARGIN_DEG:
                head.append((p, sector(turn)))
            disp = float(np.linalg.norm(poses[1][:2, 3] - poses[0][:2, 3]))
            if disp < self.MIN_DISPLACEMENT:
                continue
            for obs in (0, 1):
                if camera_roll_deg(poses[obs]) > self.MAX_ROLL_DEG:
                    continue
                angle = relative_position(poses[obs], poses[1 - obs])
                if boundary_margin(angle) >= self.MARGIN_DEG:
                    pos.append((p, obs, sector(angle)))
        return {
            "position": np.array(pos, dtype=int).reshape(-1, 3),
            "heading": np.array(head, dtype=int).reshape(-1, 2),
        }

    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples: kind by :attr:`KIND_WEIGHTS` (among the kinds the scene
        can ask), then the answer sector (position) or turn sector (heading) uniformly among
        those available, then a pair."""
        if budget <= 0 or len(scene.frames) < 2:
            return
        pairs, tables = self.scene_tables(scene, ctx)
        kinds = [k for k in self.KINDS if len(tables[k])]
        if not kinds:
            return
        buckets = {
            k: [b for b in (tables[k][tables[k][:, -1] == d] for d in range(8)) if len(b)]
            for k in kinds
        }
        w = np.array([self.KIND_WEIGHTS[self.KINDS.index(k)] for k in kinds], dtype=float)
        w /= w.sum()
        made = attempts = 0
        seen: set[str] = set()
        while made < budget and attempts < self.ATTEMPTS_PER_SAMPLE * budget + 20:
            attempts += 1
            kind = kinds[int(rng.choice(len(kinds), p=w))]
            bucket = buckets[kind][int(rng.integers(len(buckets[kind])))]
            row = bucket[int(rng.integers(len(bucket)))]
            sample = self._build(scene, pairs[int(row[0])], kind, row, rng)
            if sample.id in seen:
                continue
            seen.add(sample.id)
            yield sample
            made += 1

    def _build(
        self, scene: Scene, pair: Pair, kind: str, row: np.ndarray, rng: np.random.Generator
    ) -> Sample:
        mv = pair.mv
        poses = [f.cam_to_world for f in mv.frames[:2]]
        meta: dict = {"scene_id": scene.id, "frame_ids": mv.frame_ids, "kind": kind}
        if kind == "position":
            obs = int(row[1])
            angle = relative_position(poses[obs], poses[1 - obs])
            k = int(sector(angle))
            words = RELATIVE
            t_idx, template = pick(rng, POSITION_TEMPLATES)
            question = template.format(
                o=obs + 1, t=2 - obs, o_word=ORDINALS[obs], t_word=ORDINALS[1 - obs]
            )
            disp = float(np.linalg.norm(poses[1][:2, 3] - poses[0][:2, 3]))
            meta.update(
                observer=obs,
                angle_deg=angle,
                margin_deg=float(boundary_margin(angle)),
                displacement_m=disp,
                baseline_m=disp,
            )
        else:
            turn = heading_turn(*poses)
            base = int(rng.integers(len(COMPASS)))
            k = (base + int(sector(turn))) % len(COMPASS)
            words = COMPASS
            t_idx, template = pick(rng, HEADING_TEMPLATES)
            question = template.format(base=COMPASS[base])
            meta.update(base=COMPASS[base], turn_deg=turn, margin_deg=float(boundary_margin(turn)))
        style = self.STYLES[int(rng.integers(len(self.STYLES)))]
        answer_style = mv.views[0].settings.answer_style
        tail, answer, reply, options, s_idx = direction_answer(
            style, k, words, self.N_OPTIONS, rng, answer_style
        )
        question += tail
        meta.update(style=style, options=options, direction=words[k], phrasing=[t_idx, s_idx])
        if style == "mcq":
            meta["answer_style"] = answer_style
        img1, img2 = (v.shared_model_image() for v in mv.views[:2])
        meta["image_sizes"] = [list(v.model_size) for v in mv.views]
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[
                user(IMAGE_LABELS[0], img1, IMAGE_LABELS[1], img2, question),
                assistant(reply),
            ],
            images=[img1, img2],
            answer=answer,
            reward={"mode": style, "ground_truth": answer},
            meta=meta,
        )

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the answer from the two cameras' poses."""
        poses = [scene.frame(f).cam_to_world for f in meta["frame_ids"]]
        if meta["kind"] == "position":
            obs = int(meta["observer"])
            k = int(sector(relative_position(poses[obs], poses[1 - obs])))
            words = RELATIVE
        else:
            turn = heading_turn(*poses)
            k = (COMPASS.index(meta["base"]) + int(sector(turn))) % len(COMPASS)
            words = COMPASS
        if meta["style"] == "exact":
            return words[k]
        return mcq_letter(meta["options"], k) if k in meta["options"] else ""
