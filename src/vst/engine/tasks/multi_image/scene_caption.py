"""``mi_scene_caption``: a caption of two views of a scene and of how the view changed, written
from ground truth (paper Table 25, second example).

Frames: ordered pairs of a scene's frames (any source: single views, multi-view sets, video
frames) sharing at least one askable object (:func:`~vst.engine.multiview.frame_pairs`);
frame 1's camera frame is the world frame of every stated position. Objects described: those
visible enough to ask about (``FrameView.visible_ids``) in either view, at most
:attr:`MiSceneCaption.MAX_OBJECTS` (prominent ones first). A view's list is worded as all it
shows ("the first image shows A and B") only when no other object has at least
:attr:`MiSceneCaption.COMPLETE_PIXELS` mask pixels there; otherwise as a part ("objects seen
in the first image include A and B").

Referring: an object whose label no other object shows (any pixel, either view) is named
(``"the sink"``); the others get point marks drawn in every view where they are visible, one
colour per category and a number per object (``"the chair (orange point-2)"``), the same mark
in both images.

Visibility (what stayed / left / entered): ``stayed`` = visible enough in both views; ``left``
= visible enough in view 1 and without a single mask pixel in view 2; ``entered`` = the
reverse. An object visible enough in one view and with some pixels in the other (cut off or
mostly hidden there) is in no transition sentence (ambiguous): a ``partial`` sentence says it
is only partly visible in that other view.

Camera motion (camera 2 relative to camera 1, against gravity: :mod:`vst.geometry.motion`, the
decomposition ``mi_camera_motion`` and the teacher's camera lines use): pan = turn about the
world vertical (> 0 right), tilt = change of the optical axis' pitch (> 0 up), roll = change of
the roll about the optical axis (> 0 clockwise seen from behind the camera); translation =
camera 2's centre on camera 1's levelled axes (x right and z forward on the floor plane, y down
along gravity). Pairs where a camera looks (almost) straight up or down are skipped. A
translation component is stated when ``|v| >=``
:attr:`MiSceneCaption.MOVE_MIN` m (one decimal, "about 1.1 m forward"), an angle when ``|a| >=``
:attr:`MiSceneCaption.TURN_MIN` degrees (integer). "Stayed in place" / "kept its orientation"
are said only below :attr:`MiSceneCaption.STILL_MAX` m / :attr:`MiSceneCaption.NO_TURN_MAX`
degrees; in between, that half of the motion is not described. Pairs with nothing to state
are skipped.

The caption, one statement per sentence: what image 1 shows, what image 2 shows, the camera
motion, what stayed / left / entered / is only partly visible, the positions of a few objects
(preferably those that entered) from the first camera along the floor, on the same levelled
axes as the motion ("2.31 m ahead and 0.84 m to the right" of its heading; box centres, 2
decimals), and one distance between an object seen in only one view and an object
of the other view.
``meta["statements"]`` records each sentence's kind, objects and numbers; ``meta["choices"]``
every random choice of the writer, so :meth:`MiSceneCaption.derive_answer` rewrites it.

Reward: ``caption`` (not rule-checkable; SFT only). :meth:`MiSceneCaption.teacher_prompt`
builds the teacher-VLM request with a BEV image (:mod:`vst.engine.teacher`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np
from PIL import Image

from vst.engine.choices import pick
from vst.engine.context import EngineContext, EngineSettings, visible_fractions
from vst.engine.multiview import MultiView, frame_pairs
from vst.engine.registry import Task, TaskNeeds, register
from vst.engine.sample import Sample, assistant, user
from vst.engine.tasks.single_image._refer import frame_objects, join_items
from vst.engine.tasks.single_image.scene_caption import Chooser, mark_name, pick_objects
from vst.engine.teacher import TeacherPrompt, multiview_caption_prompt
from vst.engine.visual_prompts import PointMark, draw_marks, pick_colors
from vst.geometry.motion import camera_motion as levelled_motion
from vst.geometry.motion import level_points
from vst.scenes.model import Scene

PROMPTS: tuple[str, ...] = (
    "These two images were taken one after the other in the same room. Describe what each "
    "shows and how the view changed.",
    "Describe the two views: what the first image shows, what the second shows, which objects "
    "stay in view, and how the camera moved.",
    "Image 1 and image 2 show the same scene from different viewpoints. Explain what changed "
    "between them.",
    "Compare the two pictures of this scene: which objects are visible in each, which remain, "
    "which disappear or appear, and how did the camera move?",
    "The camera moved between the first and the second photo. Describe both views and the "
    "camera's motion, using the first camera as the reference.",
    "The observer's viewpoint changes from the first frame to the second. Give a spatial "
    "description of this pair of images.",
)
"""The user's request (one per sample)."""

VIEW_1: tuple[str, ...] = (
    "The first image shows {objs}.",
    "In the first image we can see {objs}.",
    "The first view contains {objs}.",
    "Image 1 captures {objs}.",
    "Looking at the first picture, {objs} {be} visible.",
)
VIEW_2: tuple[str, ...] = (
    "The second image shows {objs}.",
    "In the second image we can see {objs}.",
    "The second view contains {objs}.",
    "Image 2 captures {objs}.",
    "Looking at the second picture, {objs} {be} visible.",
)
"""``view_1`` / ``view_2`` phrasings claim the list is all the view shows: used only when no
other object has at least :attr:`MiSceneCaption.COMPLETE_PIXELS` mask pixels there."""
VIEW_1_SOME: tuple[str, ...] = (
    "Objects seen in the first image include {objs}.",
    "Among the objects in the first image {be} {objs}.",
    "The first image shows, among other things, {objs}.",
    "In the first image we can see, among others, {objs}.",
    "Looking at the first picture, {objs} {be} among the visible objects.",
)
VIEW_2_SOME: tuple[str, ...] = (
    "Objects seen in the second image include {objs}.",
    "Among the objects in the second image {be} {objs}.",
    "The second image shows, among other things, {objs}.",
    "In the second image we can see, among others, {objs}.",
    "Looking at the second picture, {objs} {be} among the visible objects.",
)
"""The view shows other objects too: the list is worded as a part."""
MOTION: tuple[str, ...] = (
    "Between the two shots, the camera {motion}.",
    "From the first image to the second, the camera {motion}.",
    "To take the second picture, the camera {motion}.",
    "Relative to the first view, the camera {motion}.",
    "The second view was taken after the camera {motion}.",
)
MOVE: tuple[str, ...] = (
    "moved about {parts}",
    "moved roughly {parts}",
    "shifted about {parts}",
    "travelled about {parts}",
    "moved some {parts}",
)
"""``parts``: translation components, e.g. ``"1.1 m forward and 0.3 m to the left"``."""
STILL: tuple[str, ...] = (
    "stayed at about the same spot",
    "hardly changed position",
    "kept roughly the same position",
    "stayed nearly in place",
    "did not move noticeably",
)
PAN: tuple[str, ...] = (
    "turned {a} degrees to the {dir}",
    "panned {a} degrees to the {dir}",
    "rotated {a} degrees to the {dir}",
    "swung {a} degrees to the {dir}",
    "turned {dir} by {a} degrees",
)
"""``dir``: ``left`` / ``right``."""
TILT: tuple[str, ...] = (
    "tilted {a} degrees {dir}",
    "pitched {a} degrees {dir}",
    "tilted {dir} by {a} degrees",
    "angled {a} degrees {dir}ward",
    "tipped {dir} by {a} degrees",
)
"""``dir``: ``up`` / ``down``."""
ROLL: tuple[str, ...] = (
    "rolled {a} degrees {dir}",
    "rotated {a} degrees {dir} about its viewing direction",
    "rolled {dir} by {a} degrees",
    "twisted {a} degrees {dir} around its optical axis",
    "leaned {a} degrees {dir}",
)
"""``dir``: ``clockwise`` / ``counter-clockwise`` (seen from behind the camera)."""
NO_TURN: tuple[str, ...] = (
    "kept its orientation",
    "did not turn noticeably",
    "kept facing the same way",
    "stayed pointed in the same direction",
    "barely changed its orientation",
)
STAYED: tuple[str, ...] = (
    "{Objs} {be} visible in both images.",
    "{Objs} {remain} in view in both shots.",
    "{Objs} {appear} in both images.",
    "{Objs} {stay} in the picture after the camera moves.",
    "In both views one can see {objs}.",
)
"""No phrasing claims the listed objects are all the views share."""
LEFT: tuple[str, ...] = (
    "{Objs} {be} no longer in view in the second image.",
    "{Objs} {drop} out of view in the second image.",
    "The second image no longer shows {objs}.",
    "After the camera moves, {objs} {be} out of sight.",
    "{Objs}, seen in the first image, {do} not appear in the second.",
)
ENTERED: tuple[str, ...] = (
    "{Objs} {come} into view in the second image.",
    "New in the second image {be} {objs}.",
    "The second image reveals {objs}, which {be} not visible in the first.",
    "{Objs} {appear} only in the second image.",
    "After the camera moves, {objs} {become} visible.",
)
PARTIAL: tuple[str, ...] = (
    "{Objs} {be} only partly visible in the {nth} image.",
    "In the {nth} image, {objs} {be} only partly in view.",
    "{Objs} {show} up only partially in the {nth} image.",
    "The {nth} image shows just part of {objs}.",
    "Only a portion of {objs} {be} visible in the {nth} image.",
)
"""Objects clearly visible in one view and partly (cut off or mostly hidden) in the other;
``nth`` is ``first`` or ``second``."""
POSITION: tuple[str, ...] = (
    "Measured from the first camera, {a} is {pos}.",
    "Along the floor from the first camera, {a} lies {pos}.",
    "Relative to where the first image was taken, {a} sits {pos}.",
    "Seen from the first camera's position, {a} is located {pos}.",
    "{A} is {pos} of the first camera.",
)
"""``pos``: e.g. ``"2.31 m ahead and 0.84 m to the right"`` (the first camera's levelled axes:
ahead and right along the floor from where it faces)."""
DISTANCE: tuple[str, ...] = (
    "{A} is {m} m from {b}.",
    "The distance between {a} and {b} is {m} m.",
    "{A} and {b} are {m} m apart.",
    "Centre to centre, {a} lies {m} m away from {b}.",
    "From {a} to {b} the distance is {m} m.",
)
SENTENCE_KINDS: dict[str, tuple[str, ...]] = {
    "view_1": VIEW_1,
    "view_1_some": VIEW_1_SOME,
    "view_2": VIEW_2,
    "view_2_some": VIEW_2_SOME,
    "motion": MOTION,
    "stayed": STAYED,
    "left": LEFT,
    "entered": ENTERED,
    "partial": PARTIAL,
    "position": POSITION,
    "distance": DISTANCE,
}
"""Every sentence kind of the caption and its phrasings."""
CLAUSES: dict[str, tuple[str, ...]] = {
    "move": MOVE,
    "still": STILL,
    "pan": PAN,
    "tilt": TILT,
    "roll": ROLL,
    "no_turn": NO_TURN,
}
"""The pieces of the motion sentence and their phrasings."""

VERBS: dict[str, tuple[str, str]] = {
    "be": ("is", "are"),
    "remain": ("remains", "remain"),
    "stay": ("stays", "stay"),
    "drop": ("drops", "drop"),
    "do": ("does", "do"),
    "come": ("comes", "come"),
    "appear": ("appears", "appear"),
    "become": ("becomes", "become"),
    "show": ("shows", "show"),
}
"""Verb forms (singular, plural) agreeing with the listed objects."""

ROTATION_WORDS: dict[str, tuple[str, str]] = {
    "pan": ("left", "right"),
    "tilt": ("down", "up"),
    "roll": ("counter-clockwise", "clockwise"),
}
"""``(negative, positive)`` direction words per rotation angle."""
TRANSLATION_WORDS: tuple[tuple[str, str], ...] = (
    ("to the left", "to the right"),
    ("up", "down"),
    ("backward", "forward"),
)
"""``(negative, positive)`` words per levelled axis x, y, z (y points down along gravity)."""
TRANSLATION_ORDER: tuple[int, ...] = (2, 0, 1)
"""Translation components are stated forward/backward first, then sideways, then up/down."""


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _fill(template: str, **values: str) -> str:
    """Format ``template``; ``{A}``-style placeholders get the capitalised value."""
    full = dict(values)
    for k, v in values.items():
        full[k[:1].upper() + k[1:]] = _cap(v)
    return _cap(template.format(**full))


def _verbs(n: int) -> dict[str, str]:
    return {k: forms[0] if n == 1 else forms[1] for k, forms in VERBS.items()}


def camera_motion(mv: MultiView) -> dict[str, Any] | None:
    """Camera 2 relative to camera 1 against gravity (:func:`vst.geometry.motion.camera_motion`):
    ``{"pan", "tilt", "roll"}`` (degrees) and ``"translation"`` (camera 2's centre on camera 1's
    levelled axes: x right, y down, z forward, metres); None when a camera looks (almost)
    straight up or down."""
    m = levelled_motion(mv.frames[0].cam_to_world, mv.frames[1].cam_to_world)
    if m.angles is None or m.translation is None:
        return None
    pan, tilt, roll = m.angles
    return {"pan": pan, "tilt": tilt, "roll": roll, "translation": list(m.translation)}


def ref_centers(mv: MultiView, ids: Sequence[int]) -> dict[int, np.ndarray]:
    """Box centres of ``ids`` in camera 1's frame (m): the world centres moved by
    ``mv.world_to_ref`` (the same point as ``mv.box_ref(o)[:3]``, without re-deriving the
    boxes' angles)."""
    T = mv.world_to_ref
    return {int(o): T[:3, :3] @ mv.views[0].object(int(o)).box[:3] + T[:3, 3] for o in ids}


def repeated_labels(mv: MultiView, ids: Sequence[int]) -> list[int]:
    """Those of ``ids`` whose label another object shares with a pixel in some view (the same
    test as :meth:`MultiView.label_is_unique`, in one pass): they need marks."""
    label = {o.id: o.label for o in mv.scene.objects}
    present: set[int] = set()
    for view in mv.views:
        present.update(o for o, c in view.pixel_counts.items() if c > 0 and o in label)
    per_label = Counter(label[o] for o in present)
    return [o for o in ids if per_label[label[o]] - (o in present) > 0]


@register
class MiSceneCaption(Task):
    """Ground-truth caption of two views and the camera motion between them."""

    name = "mi_scene_caption"
    scenario = "multi_image"
    needs = TaskNeeds(mask=True, min_frames=2)
    version = "2"

    MIN_OBJECTS: ClassVar[int] = 2
    """Pairs whose views show fewer askable objects in total are skipped."""
    MAX_OBJECTS: ClassVar[int] = 10
    """At most this many objects are described: beyond, the prominent ones (at least
    :attr:`PROMINENT_SHARE` of a view) first, largest first, and a random pick of the rest."""
    PROMINENT_SHARE: ClassVar[float] = 0.02
    """Share of a view's pixels from which an object is prominent (described first)."""
    COMPLETE_PIXELS: ClassVar[int] = 100
    """A view's list is worded as complete ("the first image shows ...") only when no other
    object has at least this many mask pixels in that view; otherwise "... include ..."."""
    MOVE_MIN: ClassVar[float] = 0.2
    """A translation component (m, camera 1's levelled axes) is stated from this size on."""
    STILL_MAX: ClassVar[float] = 0.05
    """'Stayed in place' only when the whole translation is shorter than this (m)."""
    TURN_MIN: ClassVar[float] = 5.0
    """A pan / tilt / roll angle (degrees) is stated from this size on."""
    NO_TURN_MAX: ClassVar[float] = 2.0
    """'Kept its orientation' only when every angle is below this (degrees)."""
    POSITION_MIN: ClassVar[float] = 0.10
    """A position component (ahead/behind, left/right, m) is stated from this size on."""
    MAX_POSITIONS: ClassVar[int] = 3
    """At most this many position sentences."""

    # -- generation ----------------------------------------------------------------------
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        frames = [f for f in sorted(scene.frames, key=lambda f: f.id) if f.mask is not None]
        if len(frames) < 2 or budget <= 0:
            return
        pairs = frame_pairs(ctx, scene, min_shared=1, frames=frames)
        made = 0
        for k in rng.permutation(len(pairs)):
            mv = MultiView(scene, list(pairs[int(k)]), ctx)
            if len(mv.visible_any) < self.MIN_OBJECTS:
                continue
            motion = camera_motion(mv)
            if motion is None or not self.describable(motion):
                continue
            yield self._make(mv, motion, rng)
            made += 1
            if made >= budget:
                return

    def describable(self, motion: dict[str, Any]) -> bool:
        """True if the motion sentence would state at least one component."""
        moved = any(abs(v) >= self.MOVE_MIN for v in motion["translation"])
        turned = any(abs(motion[a]) >= self.TURN_MIN for a in ("pan", "tilt", "roll"))
        return moved or turned

    def _make(self, mv: MultiView, motion: dict[str, Any], rng: np.random.Generator) -> Sample:
        ids = list(mv.visible_any)
        if len(ids) > self.MAX_OBJECTS:
            share: dict[int, float] = {}
            for v in mv.views:
                area = v.frame.width * v.frame.height
                for o, c in v.pixel_counts.items():
                    share[o] = max(share.get(o, 0.0), c / area)
            ids = pick_objects(ids, share, self.PROMINENT_SHARE, self.MAX_OBJECTS, rng)
        to_mark = repeated_labels(mv, ids)
        labels = sorted({mv.views[0].object(o).label for o in to_mark})
        colors = dict(zip(labels, pick_colors(rng, len(labels)), strict=True))
        numbers = [int(n) + 1 for n in rng.permutation(len(to_mark))]
        marks: dict[int, dict[str, Any]] = {}
        for oid, num in zip(to_mark, numbers, strict=True):
            xy = [
                list(frame_objects(v).model_point(oid)) if oid in mv.visible(k) else None
                for k, v in enumerate(mv.views)
            ]
            marks[oid] = {"color": colors[mv.views[0].object(oid).label], "number": num, "xy": xy}
        p_idx, prompt = pick(rng, PROMPTS)
        chooser = Chooser(rng)
        caption, statements, facts = self._caption(mv, ids, marks, chooser, motion)
        images = []
        for k, view in enumerate(mv.views):
            pts = [
                PointMark(tuple(m["xy"][k]), m["color"], str(m["number"]))
                for m in marks.values()
                if m["xy"][k] is not None
            ]
            images.append(
                draw_marks(view.model_image(), pts, copy=False)
                if pts
                else view.shared_model_image()
            )
        s = mv.views[0].settings
        meta = {
            "scene_id": mv.scene.id,
            "frame_ids": mv.frame_ids,
            "object_ids": ids,
            "visible_fraction": visible_fractions(mv.views, ids),
            "marks": {str(k): v for k, v in marks.items()},
            "status": {str(k): v for k, v in facts["status"].items()},
            "camera": facts["camera"],
            "prompt": p_idx,
            "choices": chooser.record,
            "statements": statements,
            "min_object_pixels": s.min_object_pixels,
            "max_truncation": s.max_truncation,
            "min_visible_fraction": s.min_visible_fraction,
            "image_sizes": [list(v.model_size) for v in mv.views],
        }
        return Sample(
            task=self.name,
            scenario=self.scenario,
            messages=[user(None, None, prompt), assistant(caption)],
            images=images,
            answer=caption,
            reward={"mode": "caption", "ground_truth": caption},
            meta=meta,
        )

    # -- the caption -----------------------------------------------------------------------
    @staticmethod
    def names(mv: MultiView, ids: Sequence[int], marks: dict[int, dict[str, Any]]) -> dict:
        """How the caption calls each object: ``"the sink"`` or ``"the chair (orange
        point-2)"``."""
        out = {}
        for oid in ids:
            label = mv.views[0].object(oid).label
            m = marks.get(oid)
            out[oid] = "the " + (label if m is None else mark_name(label, m["color"], m["number"]))
        return out

    @staticmethod
    def status(mv: MultiView, ids: Sequence[int]) -> dict[int, str]:
        """Per object: ``stayed``, ``left``, ``entered`` (see the module docstring), or
        ``first_only`` / ``second_only`` (visible enough in one view, partly in the other)."""
        seen = [{o for o, c in v.pixel_counts.items() if c > 0} for v in mv.views]
        vis = [mv.visible(0), mv.visible(1)]
        out = {}
        for oid in ids:
            if oid in vis[0] and oid in vis[1]:
                out[oid] = "stayed"
            elif oid in vis[0]:
                out[oid] = "left" if oid not in seen[1] else "first_only"
            else:
                out[oid] = "entered" if oid not in seen[0] else "second_only"
        return out

    def _motion_text(self, motion: dict[str, Any], chooser: Chooser) -> tuple[str, dict]:
        """The motion clause (``"moved about 1.1 m forward and turned 20 degrees to the
        right"``) and the stated numbers."""
        t = motion["translation"]
        stated: dict[str, Any] = {"translation": {}, "rotation": {}}
        move = None
        parts = []
        for axis in TRANSLATION_ORDER:
            v = t[axis]
            if abs(v) >= self.MOVE_MIN:
                word = TRANSLATION_WORDS[axis][v > 0]
                parts.append(f"{abs(v):.1f} m {word}")
                stated["translation"][word] = float(f"{abs(v):.1f}")
        if parts:
            move = CLAUSES["move"][chooser.index(5)].format(parts=join_items(parts))
        elif float(np.linalg.norm(t)) < self.STILL_MAX:
            move = CLAUSES["still"][chooser.index(5)]
            stated["still"] = True
        turns = []
        for axis in ("pan", "tilt", "roll"):
            a = motion[axis]
            if abs(a) >= self.TURN_MIN:
                word = ROTATION_WORDS[axis][a > 0]
                tpl = CLAUSES[axis][chooser.index(len(CLAUSES[axis]))]
                turns.append(tpl.format(a=f"{abs(a):.0f}", dir=word))
                stated["rotation"][axis] = [word, int(f"{abs(a):.0f}")]
        if not turns and all(abs(motion[a]) < self.NO_TURN_MAX for a in ("pan", "tilt", "roll")):
            turns.append(CLAUSES["no_turn"][chooser.index(5)])
            stated["no_turn"] = True
        clauses = ([move] if move else []) + turns
        if move and turns and chooser.index(2) == 1:
            clauses = [*turns, move]
        return join_items(clauses), stated

    def _position(self, center: Sequence[float]) -> tuple[str | None, dict]:
        x, _, z = center
        parts, stated = [], {}
        if abs(z) >= self.POSITION_MIN:
            word = "ahead" if z > 0 else "behind"
            parts.append(f"{abs(z):.2f} m {word}")
            stated[word] = float(f"{abs(z):.2f}")
        if abs(x) >= self.POSITION_MIN:
            word = "to the right" if x > 0 else "to the left"
            parts.append(f"{abs(x):.2f} m {word}")
            stated[word] = float(f"{abs(x):.2f}")
        return (join_items(parts) if parts else None), stated

    def _caption(
        self,
        mv: MultiView,
        ids: list[int],
        marks: dict[int, dict[str, Any]],
        chooser: Chooser,
        motion: dict[str, Any] | None = None,
    ) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
        names = self.names(mv, ids, marks)
        status = self.status(mv, ids)
        motion = camera_motion(mv) if motion is None else motion
        if motion is None:
            raise ValueError("the camera motion is undefined: a camera looks straight up or down")
        center = ref_centers(mv, ids)
        sentences: list[str] = []
        records: list[dict[str, Any]] = []

        def phrase(kind: str) -> str:
            options = SENTENCE_KINDS[kind]
            return options[chooser.index(len(options))]

        def say(kind: str, objs: Sequence[int], text: str, **extra: Any) -> None:
            sentences.append(text)
            records.append({"kind": kind, "ids": [int(o) for o in objs], **extra})

        def left_to_right(objs: Sequence[int], k: int) -> list[int]:
            view = mv.views[k]
            return sorted(objs, key=lambda o: (view.box_cam(o)[0] / view.box_cam(o)[2], o))

        def listing(objs: Sequence[int]) -> dict[str, str]:
            return {"objs": join_items([names[o] for o in objs]), **_verbs(len(objs))}

        known = {o.id for o in mv.scene.objects}
        for k, kind in enumerate(("view_1", "view_2")):
            objs = left_to_right([o for o in ids if o in mv.visible(k)], k)
            if not objs:
                continue
            unlisted = [
                o
                for o, c in mv.views[k].pixel_counts.items()
                if o in known and o not in objs and c >= self.COMPLETE_PIXELS
            ]
            if unlisted:
                kind += "_some"
            say(kind, objs, _fill(phrase(kind), **listing(objs)))
        clause, stated = self._motion_text(motion, chooser)
        say("motion", [], _fill(phrase("motion"), motion=clause), **stated)
        for kind, k in (("stayed", 0), ("left", 0), ("entered", 1)):
            objs = left_to_right([o for o in ids if status[o] == kind], k)
            if objs:
                say(kind, objs, _fill(phrase(kind), **listing(objs)))
        for which, k, nth in (("second_only", 1, "first"), ("first_only", 0, "second")):
            objs = left_to_right([o for o in ids if status[o] == which], k)
            if objs:
                text = _fill(phrase("partial"), nth=nth, **listing(objs))
                say("partial", objs, text, image=1 if nth == "first" else 2)

        # positions on the first camera's levelled axes: objects that entered first
        entered = [o for o in ids if status[o] == "entered"]
        others = [o for o in ids if status[o] != "entered"]
        cands = [entered.pop(chooser.index(len(entered))) for _ in range(len(entered))]
        cands += [others.pop(chooser.index(len(others))) for _ in range(len(others))]
        floor = level_points(mv.frames[0].cam_to_world, [mv.scene.object(o).box[:3] for o in cands])
        where = {o: self._position(p) for o, p in zip(cands, floor, strict=True)}
        cands = [o for o in cands if where[o][0] is not None]
        if cands:
            n = 1 + chooser.index(min(self.MAX_POSITIONS, len(cands)))
            for oid in cands[:n]:
                pos, nums = where[oid]
                say("position", [oid], _fill(phrase("position"), a=names[oid], pos=pos), **nums)

        # one distance across the views: an object seen in one view only, and one of the other
        only_1 = [o for o in ids if status[o] == "left"]
        only_2 = [o for o in ids if status[o] == "entered"]
        in_2 = [o for o in ids if o in mv.visible(1)]
        in_1 = [o for o in ids if o in mv.visible(0)]
        pairs = [(a, b) for a in only_2 for b in in_1] + [(a, b) for a in only_1 for b in in_2]
        if pairs:
            a, b = pairs[chooser.index(len(pairs))]
            if chooser.index(2) == 1:
                a, b = b, a
            d = float(np.linalg.norm(center[a] - center[b]))
            m = f"{d:.2f}"
            say(
                "distance",
                [a, b],
                _fill(phrase("distance"), a=names[a], b=names[b], m=m),
                distance=float(m),
            )
        facts = {"status": status, "camera": motion, "names": names}
        return " ".join(sentences), records, facts

    # -- checking and teacher prompts ------------------------------------------------------
    def _multiview(self, scene: Scene, meta: dict) -> MultiView:
        settings = EngineSettings(
            min_object_pixels=int(meta["min_object_pixels"]),
            max_truncation=float(meta["max_truncation"]),
            min_visible_fraction=float(meta.get("min_visible_fraction", 0.0)),
        )
        frames = [scene.frame(fid) for fid in meta["frame_ids"]]
        return MultiView(scene, frames, EngineContext(settings))

    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Rewrite the caption from the scene (masks, boxes, camera poses) and the recorded
        objects, marks and choices."""
        mv = self._multiview(scene, meta)
        marks = {int(k): v for k, v in meta["marks"].items()}
        ids = [int(o) for o in meta["object_ids"]]
        caption, _, _ = self._caption(mv, ids, marks, Chooser(replay=meta["choices"]))
        return caption

    def teacher_prompt(
        self,
        scene: Scene,
        meta: dict,
        images: Sequence[Image.Image] | None = None,
        bev: bool = True,
    ) -> TeacherPrompt:
        """A teacher-VLM request (:func:`~vst.engine.teacher.multiview_caption_prompt`) for the
        views, objects and marks of a sample of this task: ``images`` are the sample's (marked)
        images (default: the plain views), with a BEV image of the objects and both cameras in
        frame 1 when ``bev``."""
        mv = self._multiview(scene, meta)
        marks = {int(k): v for k, v in meta["marks"].items()}
        ids = [int(o) for o in meta["object_ids"]]
        names = {o: n.removeprefix("the ") for o, n in self.names(mv, ids, marks).items()}
        mark_text = {o: f"{m['color']} point-{m['number']}" for o, m in marks.items()}
        return multiview_caption_prompt(
            mv, ids, names=names, marks=mark_text, images=images, bev=bev
        )
