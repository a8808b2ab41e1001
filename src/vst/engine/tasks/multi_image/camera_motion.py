"""``mi_camera_motion``: how the camera moved from image 1 to image 2 (rotation or translation).

Geometry (:mod:`._motion`): camera 2's pose in camera 1's frame (X right, Y down, Z forward).
Rotation = its ``(pan, tilt, roll)`` Euler angles (degrees, intrinsic ``"YXZ"``: pan > 0 turns
right, tilt > 0 up, roll > 0 clockwise seen from behind the camera); translation = camera 2's
centre in camera 1's frame (x > 0 right, y > 0 down, z > 0 forward; metres).

Question families (``meta["family"]``):

* ``rotation_binary`` (axis pan / tilt / roll): "considering only the pan, left or right?" —
  two options (``mcq``) or a one-word answer (``short``, reward ``exact``);
* ``rotation_main``: which of four rotation labels (pan left/right, tilt up/down, roll
  clockwise/counter-clockwise) describes the motion (``mcq``);
* ``rotation_angle`` (axis): the asked angle's magnitude, integer degrees (reward ``numeric``);
* ``translation_binary`` (axis x / y / z): left/right, up/down or forward/backward (``mcq`` or
  ``short``);
* ``translation_direction``: the full direction, one to three axes combined ("moving rightward
  and forward"), four options (``mcq``);
* ``translation_distance``: the distance between the camera centres, metres with 2 decimals
  (reward ``numeric``).

Rules (class constants of :class:`CameraMotionTask`):

* Pairs: ordered pairs of distinct frames that share at least ``MIN_SHARED`` askable objects
  (any frames of the scene: single views, multi-view sets, video frames near or far apart), with
  a total rotation of at most ``MAX_ROTATION_DEG`` and a distance of at most ``MAX_DISTANCE_M``.
  Frames without visibility information fall back to objects whose box centre projects inside
  both images.
* A rotation axis is asked when its angle is at least ``MIN_ANGLE_DEG`` and every other axis is
  at most ``DOMINANCE`` times it (the asked rotation is the main one; this also skips the roll a
  pan about the vertical shows in Euler angles when the camera looks down). ``rotation_main``
  distractors never name a rotation present with at least ``STILL_ANGLE_DEG`` in its sign.
* A translation axis is clear when its component is at least ``MIN_TRANSLATION_M`` and at least
  ``INCLUDE_REL`` of the largest component, still when at most ``STILL_TRANSLATION_M`` or at
  most ``STILL_REL`` of the largest, ambiguous otherwise. Binary questions need the asked axis
  clear, ``translation_direction`` needs no ambiguous axis (its distractors are never a part of
  the answer, e.g. "rightward" for "rightward and forward"); both need the same labels in camera
  1's gravity-levelled frame (:func:`._motion.level_translation`), so "up" means the same for
  the camera and for the room. ``translation_distance`` needs at least ``MIN_TRANSLATION_M``.
* Every (pair, family, axis) slot is used at most once per call; families are drawn with
  ``FAMILY_WEIGHTS`` among those with slots left.

Answers: ``mcq`` -> the letter (options shuffled with the sample's generator), ``short`` -> the
word, numeric -> ``"35 degrees"`` / ``"1.24 m"`` with the number as the reward ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from vst.engine.choices import LETTERS, format_options, pick
from vst.engine.context import EngineContext
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.multi_image._motion import (
    ROTATION_AXES,
    ROTATION_PHRASES,
    ROTATION_WORDS,
    TRANSLATION_ADVERBS,
    TRANSLATION_AXES,
    TRANSLATION_WORDS,
    Motion,
    all_directions,
    camera_motion,
    camera_motions,
    direction_text,
    rotation_sign,
    round_half_up,
    translation_signs,
)
from vst.scenes.model import Frame, Scene

FAMILIES: tuple[str, ...] = (
    "rotation_binary",
    "rotation_main",
    "rotation_angle",
    "translation_binary",
    "translation_direction",
    "translation_distance",
)

INTROS: tuple[str, ...] = (
    "Two images of the same indoor scene were taken by one moving camera: image 1 first, then "
    "image 2.",
    "The camera captured image 1 and, after moving, image 2, both from a first-person view.",
    "These two frames come from a camera moving through a room; image 1 was taken before image 2.",
    "Both pictures show the same place, photographed first from the viewpoint of image 1 and "
    "then from that of image 2.",
    "A camera took the first picture, changed its pose, and then took the second one.",
)
"""Opening sentence of every question."""

ROT_DESC: dict[str, str] = {
    "pan": "horizontal rotation (pan)",
    "tilt": "vertical rotation (tilt)",
    "roll": "rotation about the viewing direction (roll)",
}

ROLL_NOTES: tuple[str, ...] = (
    "Clockwise is meant as seen from behind the camera, looking where it looks.",
    "Judge clockwise from the camera's own point of view (from behind it).",
    "Directions of roll are as seen by someone standing behind the camera.",
    "A clockwise roll makes the picture itself appear to turn counter-clockwise.",
    "Clockwise refers to the camera's rotation viewed from behind the camera.",
)
"""One is added to every question about roll."""

TRANS_DESC: dict[str, str] = {
    "x": "left-right movement",
    "y": "up-down movement",
    "z": "forward-backward movement",
}

FRAME_NOTES: tuple[str, ...] = (
    "Directions are relative to where the camera of image 1 is facing.",
    "Left, right, up, down, forward and backward refer to the first camera's viewpoint.",
    "Describe the motion from the point of view of the first camera.",
    "Use the first image's camera as the reference for directions.",
    "Interpret the directions relative to the camera that took image 1.",
)
"""One is added to every translation question."""

TEMPLATES: dict[str, tuple[str, ...]] = {
    "rotation_binary": (
        "Considering only the {rot}, how does the camera rotate from image 1 to image 2?",
        "Looking only at the {rot}, which way did the camera turn between the two images?",
        "If we only consider the {rot}, what does the camera do from the first image to the "
        "second?",
        "Ignoring every other motion, describe the camera's {rot} from image 1 to image 2.",
        "Taking only the {rot} into account, in which direction does the camera rotate "
        "between the two shots?",
    ),
    "rotation_main": (
        "Which rotation best describes how the camera turns from image 1 to image 2?",
        "What is the main rotation of the camera between the first and the second image?",
        "Going from image 1 to image 2, how does the camera mainly rotate?",
        "Which of these camera rotations takes the view of image 1 to the view of image 2?",
        "Identify the dominant rotation of the camera between the two images.",
    ),
    "rotation_angle": (
        "By about how many degrees does the camera turn in {rot} from image 1 to image 2?",
        "Estimate the camera's {rot} between the two images, in degrees.",
        "How large is the {rot} of the camera from the first image to the second, in degrees?",
        "What angle, in degrees, does the camera's {rot} cover between the two shots?",
        "Give the size of the camera's {rot} from image 1 to image 2 in degrees.",
    ),
    "translation_binary": (
        "Considering only the {trans}, which way does the camera move from image 1 to image 2?",
        "Looking only at the camera's {trans}, where did it go between the two images?",
        "If we only consider the {trans}, how is the camera displaced from the first image to "
        "the second?",
        "Ignoring rotation and the other directions, describe the camera's {trans} from image "
        "1 to image 2.",
        "Taking only the {trans} into account, in which direction was the camera moved "
        "between the two shots?",
    ),
    "translation_direction": (
        "Disregarding small shakes, which way is the camera moving from image 1 to image 2?",
        "In which direction is the camera translated between the first and the second image?",
        "What best describes the camera's change of position from image 1 to image 2?",
        "Where does the camera move between the two shots?",
        "Which option describes the camera's displacement from the first view to the second?",
    ),
    "translation_distance": (
        "How far did the camera move between image 1 and image 2, in metres?",
        "Estimate the distance between the two camera positions, in metres.",
        "By how many metres was the camera displaced from the first shot to the second?",
        "What is the straight-line distance the camera travelled between the two images (in "
        "meters)?",
        "Roughly how many metres apart were the camera positions of image 1 and image 2?",
    ),
}
"""Question phrasings per family."""

MCQ_HINTS: tuple[str, ...] = (
    "",
    "Answer with the option's letter.",
    "Reply with the letter only.",
    "Choose one option.",
    "Pick the correct letter.",
)
SHORT_HINTS: tuple[str, ...] = (
    "Answer with one word: {a} or {b}.",
    "Reply {a} or {b}.",
    "Answer in a single word ({a} / {b}).",
    "Say {a} or {b}.",
    "One word, please: {a} or {b}.",
)
NUMERIC_HINTS: dict[str, tuple[str, ...]] = {
    "rotation_angle": (
        "Answer with a number of degrees.",
        "Give a single number in degrees.",
        "Reply like '25 degrees'.",
        "",
        "A whole number of degrees is enough.",
    ),
    "translation_distance": (
        "Answer with a number of metres.",
        "Give a single number in metres.",
        "Reply like '1.50 m'.",
        "",
        "Two decimals are enough.",
    ),
}


def rotation_option(key: str) -> str:
    """``"pan+"`` -> ``"panning to the right"``."""
    return ROTATION_PHRASES[key[:-1]][1 if key[-1] == "+" else 0]


def translation_option(key: str) -> str:
    """``"x+"`` -> ``"moving rightward"``."""
    return "moving " + TRANSLATION_ADVERBS[key[:-1]][1 if key[-1] == "+" else 0]


def _key(axis: str, sign: int) -> str:
    return f"{axis}{'+' if sign > 0 else '-'}"


def _shared_objects(scene: Scene, frame: Frame, ctx: EngineContext) -> set[int]:
    """Askable objects of a frame; without visibility information, the objects whose box
    centre projects inside the image in front of the camera."""
    view = ctx.view(scene, frame)
    if view.frame.visible_pixels or view.frame.mask is not None:
        return set(view.visible_ids)
    out = set()
    K = frame.K
    for o, box in zip(scene.objects, view.boxes_cam, strict=True):
        x, y, z = box[:3]
        if z <= 0.1:
            continue
        u, v = K[0, 0] * x / z + K[0, 2], K[1, 1] * y / z + K[1, 2]
        if -0.5 <= u < frame.width - 0.5 and -0.5 <= v < frame.height - 0.5:
            out.add(o.id)
    return out


@register
class CameraMotionTask(Task):
    """Rotation / translation of the camera between two frames (see the module docstring)."""

    name = "mi_camera_motion"
    scenario = "multi_image"
    needs = TaskNeeds(min_frames=2)
    version = "2"

    MIN_ANGLE_DEG: ClassVar[float] = 10.0
    """An asked rotation axis turns by at least this many degrees..."""
    DOMINANCE: ClassVar[float] = 0.5
    """...and every other axis by at most this fraction of it."""
    STILL_ANGLE_DEG: ClassVar[float] = 5.0
    """``rotation_main`` distractors avoid rotations present with at least this angle."""
    MIN_TRANSLATION_M: ClassVar[float] = 0.3
    """A clear translation component is at least this long (m)..."""
    INCLUDE_REL: ClassVar[float] = 0.5
    """...and at least this fraction of the largest component."""
    STILL_TRANSLATION_M: ClassVar[float] = 0.15
    """A component is still when at most this long (m)..."""
    STILL_REL: ClassVar[float] = 0.25
    """...or at most this fraction of the largest component; in between it is ambiguous."""
    MIN_SHARED: ClassVar[int] = 1
    """Askable objects both frames must show."""
    MAX_ROTATION_DEG: ClassVar[float] = 90.0
    """Largest total rotation between the two cameras."""
    MAX_DISTANCE_M: ClassVar[float] = 4.0
    """Largest distance between the two camera centres."""
    SHORT_FRACTION: ClassVar[float] = 0.3
    """Share of binary questions answered with a word instead of a letter."""
    N_OPTIONS: ClassVar[int] = 4
    """Options of ``rotation_main`` and ``translation_direction``."""
    MAX_DIRECTION_AXES: ClassVar[int] = 2
    """Distractor directions combine at most this many axes (answers may combine three)."""
    FAMILY_WEIGHTS: ClassVar[dict[str, float]] = {
        "rotation_binary": 2.0,
        "rotation_main": 1.0,
        "rotation_angle": 1.0,
        "translation_binary": 2.0,
        "translation_direction": 1.5,
        "translation_distance": 1.0,
    }

    # -- selection -------------------------------------------------------------------------
    def pairs(self, scene: Scene, ctx: EngineContext) -> list[tuple[Frame, Frame, Motion]]:
        """Ordered frame pairs (sorted by ids) that share objects, with their motion (computed
        once per scene and context)."""
        return ctx.memo((self.name, "pairs", scene.id), lambda: self._pairs(scene, ctx))

    def _pairs(self, scene: Scene, ctx: EngineContext) -> list[tuple[Frame, Frame, Motion]]:
        frames = sorted(scene.frames, key=lambda f: f.id)
        seen = {f.id: _shared_objects(scene, f, ctx) for f in frames}
        candidates = [
            (a, b)
            for a in frames
            for b in frames
            if a.id != b.id and len(seen[a.id] & seen[b.id]) >= self.MIN_SHARED
        ]
        motions = camera_motions([(a.cam_to_world, b.cam_to_world) for a, b in candidates])
        return [
            (a, b, m)
            for (a, b), m in zip(candidates, motions, strict=True)
            if m.rotation_deg <= self.MAX_ROTATION_DEG and m.distance <= self.MAX_DISTANCE_M
        ]

    def slots(self, motion: Motion) -> dict[str, list[str | None]]:
        """Askable (family -> axes) of one motion (axis None for axis-free families)."""
        out: dict[str, list[str | None]] = {f: [] for f in FAMILIES}
        for axis in ROTATION_AXES:
            if rotation_sign(motion.angles, axis, self.MIN_ANGLE_DEG, self.DOMINANCE):
                out["rotation_binary"].append(axis)
                out["rotation_main"].append(None)
                out["rotation_angle"].append(axis)
        cam, lev = self._translation_signs(motion)
        if lev is not None:
            for k, axis in enumerate(TRANSLATION_AXES):
                if cam[k] and cam[k] == lev[k]:
                    out["translation_binary"].append(axis)
            if None not in cam and cam == lev and any(cam):
                out["translation_direction"].append(None)
        if motion.distance >= self.MIN_TRANSLATION_M:
            out["translation_distance"].append(None)
        return out

    def _translation_signs(
        self, motion: Motion
    ) -> tuple[tuple[int | None, ...], tuple[int | None, ...] | None]:
        args = (self.MIN_TRANSLATION_M, self.INCLUDE_REL, self.STILL_TRANSLATION_M, self.STILL_REL)
        cam = translation_signs(motion.translation, *args)
        lev = None if motion.level is None else translation_signs(motion.level, *args)
        return cam, lev

    # -- generation ------------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Up to ``budget`` samples, each (pair, family, axis) slot at most once."""
        if budget <= 0 or len(scene.frames) < 2:
            return
        pairs = self.pairs(scene, ctx)
        remaining: dict[str, list[tuple[int, str | None]]] = {f: [] for f in FAMILIES}
        for i, (_, _, m) in enumerate(pairs):
            for fam, axes in self.slots(m).items():
                remaining[fam].extend((i, axis) for axis in axes)
        made = 0
        while made < budget:
            fams = [f for f in FAMILIES if remaining[f]]
            if not fams:
                return
            w = np.array([self.FAMILY_WEIGHTS[f] for f in fams])
            fam = fams[int(rng.choice(len(fams), p=w / w.sum()))]
            pool = remaining[fam]
            j = int(rng.integers(len(pool)))
            (i, axis), pool[j] = pool[j], pool[-1]
            pool.pop()
            a, b, m = pairs[i]
            yield self._sample(scene, ctx, a, b, m, fam, axis, rng)
            made += 1

    def _sample(
        self,
        scene: Scene,
        ctx: EngineContext,
        a: Frame,
        b: Frame,
        motion: Motion,
        family: str,
        axis: str | None,
        rng: np.random.Generator,
    ) -> Sample:
        binary = family in ("rotation_binary", "translation_binary")
        numeric = family in ("rotation_angle", "translation_distance")
        style = "numeric" if numeric else "mcq"
        if binary and rng.random() < self.SHORT_FRACTION:
            style = "short"
        i_intro, intro = pick(rng, INTROS)
        i_q, template = pick(rng, TEMPLATES[family])
        fields = {"rot": ROT_DESC.get(axis or "", ""), "trans": TRANS_DESC.get(axis or "", "")}
        parts = [intro, template.format(**fields)]
        note = -1
        if axis == "roll":
            note, text = pick(rng, ROLL_NOTES)
            parts.append(text)
        elif family.startswith("translation") and family != "translation_distance":
            note, text = pick(rng, FRAME_NOTES)
            parts.append(text)
        option_keys: list[Any] | None = None
        if style == "mcq":
            option_keys = self._options(family, axis, motion, rng)
            texts = [self._option_text(family, k) for k in option_keys]
            parts.append(format_options(texts))
            i_hint, hint = pick(rng, MCQ_HINTS)
        elif style == "short":
            words = (ROTATION_WORDS if family == "rotation_binary" else TRANSLATION_WORDS)[axis]
            i_hint, hint = pick(rng, SHORT_HINTS)
            hint = hint.format(a=words[0], b=words[1])
        else:
            i_hint, hint = pick(rng, NUMERIC_HINTS[family])
        if hint:
            parts.append(hint)
        question = "\n".join(parts)
        layout = int(rng.integers(2))
        img1 = ctx.view(scene, a).shared_model_image()
        img2 = ctx.view(scene, b).shared_model_image()
        if layout == 0:
            message = user(img1, img2, question)
        else:
            message = user("Image 1:", img1, "Image 2:", img2, question)
        meta: dict[str, Any] = {
            "scene_id": scene.id,
            "frame_ids": [a.id, b.id],
            "family": family,
            "axis": axis,
            "style": style,
            "option_keys": option_keys,
            "pan_tilt_roll_deg": list(motion.angles),
            "translation_m": list(motion.translation),
            "level_translation_m": None if motion.level is None else list(motion.level),
            "distance_m": motion.distance,
            "rotation_deg": motion.rotation_deg,
            "phrasing": [i_intro, i_q, note, i_hint],
            "layout": layout,
        }
        answer, value = answer_of(meta, motion, self)
        if style == "numeric":
            reward = {"mode": "numeric", "ground_truth": value}
        else:
            reward = {"mode": "mcq" if style == "mcq" else "exact", "ground_truth": answer}
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[message, assistant(answer)],
            images=[img1, img2],
            answer=answer,
            reward=reward,
            meta=meta,
        )

    def _options(
        self, family: str, axis: str | None, motion: Motion, rng: np.random.Generator
    ) -> list[Any]:
        """Option keys in the order shown (shuffled with ``rng``)."""
        if family == "rotation_binary":
            keys: list[Any] = [_key(axis, -1), _key(axis, 1)]
        elif family == "translation_binary":
            keys = [_key(axis, -1), _key(axis, 1)]
        elif family == "rotation_main":
            truth = _rotation_main_key(motion, self.MIN_ANGLE_DEG, self.DOMINANCE)
            others = []
            for ax in ROTATION_AXES:
                for s in (1, -1):
                    k = _key(ax, s)
                    v = motion.angle(ax)
                    if k == truth or (
                        ax != truth[:-1] and v * s > 0 and abs(v) >= self.STILL_ANGLE_DEG
                    ):
                        continue
                    others.append(k)
            picked = rng.choice(len(others), size=self.N_OPTIONS - 1, replace=False)
            keys = [truth] + [others[int(p)] for p in picked]
        else:  # translation_direction
            truth_signs = list(self._translation_signs(motion)[0])
            # no distractor that is a part of the answer ("rightward" for "rightward and
            # forward"): it would be half true
            others = [
                list(d)
                for d in all_directions(self.MAX_DIRECTION_AXES)
                if any(v and v != t for v, t in zip(d, truth_signs, strict=True))
            ]
            picked = rng.choice(len(others), size=self.N_OPTIONS - 1, replace=False)
            keys = [truth_signs] + [others[int(p)] for p in picked]
        return [keys[int(i)] for i in rng.permutation(len(keys))]

    @staticmethod
    def _option_text(family: str, key: Any) -> str:
        if family in ("rotation_binary", "rotation_main"):
            return rotation_option(key)
        if family == "translation_binary":
            return translation_option(key)
        return direction_text(tuple(key))

    # -- checking --------------------------------------------------------------------------
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the motion from the two frames' poses and answer the recorded question."""
        a, b = (scene.frame(f) for f in meta["frame_ids"])
        motion = camera_motion(a.cam_to_world, b.cam_to_world)
        return answer_of(meta, motion, self)[0]


def _rotation_main_key(motion: Motion, min_angle: float, dominance: float) -> str:
    for ax in ROTATION_AXES:
        s = rotation_sign(motion.angles, ax, min_angle, dominance)
        if s:
            return _key(ax, s)
    raise ValueError("no dominant rotation")


def answer_of(
    meta: dict, motion: Motion, task: CameraMotionTask | None = None
) -> tuple[str, float | int | str]:
    """``(answer text, reward value)`` of a sample's question for ``motion``. Raises
    ValueError when the motion no longer supports the recorded question."""
    task = task or CameraMotionTask()
    family, axis, style = meta["family"], meta["axis"], meta["style"]
    if family == "rotation_angle":
        deg = int(round_half_up(abs(motion.angle(axis))))
        return f"{deg} degrees", deg
    if family == "translation_distance":
        m = round_half_up(motion.distance, 2)
        return f"{m:.2f} m", m
    if family == "rotation_binary":
        sign = rotation_sign(motion.angles, axis, task.MIN_ANGLE_DEG, task.DOMINANCE)
        if not sign:
            raise ValueError(f"the {axis} is not clear in this motion")
        truth: Any = _key(axis, sign)
        word = ROTATION_WORDS[axis][1 if sign > 0 else 0]
    elif family == "translation_binary":
        cam, _ = task._translation_signs(motion)
        sign = cam[TRANSLATION_AXES.index(axis)]
        if not sign:
            raise ValueError(f"the {axis} translation is not clear in this motion")
        truth = _key(axis, sign)
        word = TRANSLATION_WORDS[axis][1 if sign > 0 else 0]
    elif family == "rotation_main":
        truth, word = _rotation_main_key(motion, task.MIN_ANGLE_DEG, task.DOMINANCE), ""
    elif family == "translation_direction":
        cam, _ = task._translation_signs(motion)
        if None in cam or not any(cam):
            raise ValueError("the translation direction is ambiguous in this motion")
        truth, word = list(cam), ""
    else:
        raise ValueError(f"unknown family {family!r}")
    if style == "short":
        return word, word
    keys = meta["option_keys"]
    letter = LETTERS[keys.index(truth)]
    return letter, letter
