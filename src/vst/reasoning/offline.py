"""Offline chain-of-thought written from ground truth, without a teacher.

Kinds (the paper's, appendix C.1): ``num`` reasons with the 3D boxes and numbers (box centres
and sizes, the computation, the answer); ``rt`` reconstructs the layout in sentences, then
infers the answer in words. Camera motion reasons with parallax (how the shared objects shift
between the two images as the camera moves).

Conventions of the texts:

* Positions are stated in camera 1's frame *levelled with gravity* (x to the right and z forward
  along the floor from where camera 1 faces, y downward; metres, 2 decimals; camera 1 at the
  origin; :func:`vst.geometry.motion.level_points`). It differs from camera 1's own frame only
  by camera 1's tilt and roll, so distances are the same and floor directions are exact.
* A floor angle ``atan2(dx, dz)`` is measured clockwise seen from above from the +z axis
  (camera 1's heading) toward +x (its right); a bearing is the difference of two such angles,
  in ``[0, 360)``; sector ``k`` (45 degrees wide) is centred on ``45 k`` (the engine's
  :mod:`~vst.engine.tasks.multi_image._compass` rules).
* Sizes are the teacher facts' ``width x height x length``
  (:class:`~vst.engine.teacher.ObjectFact`).
* The answer is the sample's own reference reply (its last assistant turn: ``"C. east"``,
  ``"3.56 m"``, ``"right"``), after the reasoning's conclusion was checked against the sample's
  meta; a disagreement is a skip, never a wrong CoT.

Covered tasks (every question form): ``mi_object_object`` (direction, distance, closer),
``mi_camera_object`` (facing, object_north, distance), ``mi_camera_camera`` (position, heading),
``mi_camera_motion`` (every family), and the single-image ``si_distance`` (which candidate is
closest to / farthest from an anchor; every style, metric replies included) and
``si_depth_point`` (which marked point is nearer / farther, from the depths the engine read off
the depth map). Others (the other single-image tasks, video, captions, 3D detection,
correspondence) get None; :func:`explain_offline_cot` says why.
Deterministic: no randomness, the text depends only on the sample and the scene.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from vst.engine.choices import LETTERS
from vst.engine.tasks.multi_image._compass import COMPASS, RELATIVE, SECTOR_DEG
from vst.engine.teacher import ObjectFact
from vst.geometry.motion import camera_motion, level_points
from vst.reasoning.facts import SampleFacts

__all__ = [
    "COVERED_TASKS",
    "OFFLINE_KINDS",
    "OfflineCot",
    "explain_offline_cot",
    "floor_angle",
    "offline_cot",
]

OFFLINE_KINDS = ("num", "rt")

FRAME_NOTE = (
    "I use camera 1's frame levelled with gravity: x to the right, y downward, z forward along "
    "the floor, in metres, with camera 1 at (0.00, 0.00, 0.00)."
)


@dataclass(frozen=True)
class OfflineCot:
    """``reasoning`` (the text inside ``<think>``) and ``answer`` (the final answer text, which
    the sample's reward checker scores 1.0)."""

    reasoning: str
    answer: str


class _SkipError(Exception):
    """A sample this module cannot explain (the message is the reason)."""


# -- numbers and words -------------------------------------------------------------------------


def _f(v: float, d: int = 2) -> str:
    out = f"{v:.{d}f}"
    return out[1:] if out.startswith("-") and float(out) == 0 else out


def floor_angle(dx: float, dz: float) -> float:
    """Angle (degrees, ``[0, 360)``) of the floor vector ``(dx, dz)`` clockwise seen from above
    from +z (forward) toward +x (right)."""
    return math.degrees(math.atan2(dx, dz)) % 360.0


def _sector(deg: float) -> int:
    return math.floor(((deg + SECTOR_DEG / 2) % 360.0) / SECTOR_DEG) % 8


def _sector_text(deg: float, words: Sequence[str]) -> str:
    k = _sector(deg)
    lo, hi = (45 * k - 22.5) % 360, (45 * k + 22.5) % 360
    return (
        f"{_f(deg, 1)} deg lies in the sector from {_f(lo, 1)} to {_f(hi, 1)} deg, "
        f"which is {words[k]}"
    )


def _side(x: float) -> str:
    return "right" if x >= 0 else "left"


def _ahead(z: float) -> str:
    return "ahead of" if z >= 0 else "behind"


def _turn_words(deg: float) -> str:
    """A clockwise angle in [0, 360) in words."""
    if deg <= 180:
        return f"about {round(deg)} degrees clockwise"
    return f"about {round(360 - deg)} degrees counter-clockwise"


def _options_line(meta: dict, words: Sequence[str]) -> str:
    opts = meta.get("options") or []
    return "The options are " + ", ".join(f"{LETTERS[i]}. {words[k]}" for i, k in enumerate(opts))


def _conclude(facts: SampleFacts, word: str, words: Sequence[str]) -> str:
    """The closing sentence of a direction question (mcq: the letter of ``word``)."""
    meta = facts.meta
    if meta.get("style") == "mcq":
        k = list(words).index(word)
        if k not in (meta.get("options") or []):
            raise _SkipError("the derived direction is not among the options")
        letter = LETTERS[meta["options"].index(k)]
        return f"{_options_line(meta, words)}; {word} is option {letter}."
    return f"The direction is {word}."


# -- geometry from the facts -------------------------------------------------------------------


def _levelled(facts: SampleFacts, ids: Sequence[int], pose_index: int = 0) -> dict[int, np.ndarray]:
    """World box centres of ``ids`` on camera ``pose_index``'s levelled axes."""
    scene = facts.mv.scene
    pts = level_points(
        facts.mv.frames[pose_index].cam_to_world, [scene.object(i).box[:3] for i in ids]
    )
    if pts is None:
        raise _SkipError("camera 1 looks straight up or down (no levelled frame)")
    return {i: pts[k] for k, i in enumerate(ids)}


def _fact(facts: SampleFacts, oid: int) -> ObjectFact:
    for f in facts.objects:
        if f.object_id == oid:
            return f
    raise _SkipError(f"object {oid} is not among the sample's facts")


def _object_lines(
    facts: SampleFacts,
    ids: Sequence[int],
    pos: dict[int, np.ndarray],
    names: dict[int, str] | None = None,
) -> list[str]:
    out = ["Objects (3D centres and sizes):"]
    for i in ids:
        f = _fact(facts, i)
        x, y, z = pos[i]
        w, h, ln = f.size
        out.append(
            f"- {(names or {}).get(i, f.name)}: centre (x, y, z) = ({_f(x)}, {_f(y)}, {_f(z)}), "
            f"size {_f(w)} x {_f(h)} x {_f(ln)} m"
        )
    return out


def _layout_sentence(name: str, p: np.ndarray) -> str:
    x, y, z = (float(v) for v in p)
    height = "above" if y < 0 else "below"
    return (
        f"The {name} is about {_f(abs(z), 1)} m {_ahead(z)} camera 1 and {_f(abs(x), 1)} m to its "
        f"{_side(x)}, {_f(abs(y), 1)} m {height} the camera's height."
    )


def _distance_lines(a: str, b: str, pa: np.ndarray, pb: np.ndarray) -> tuple[list[str], float]:
    d = pb - pa
    sq = d * d
    dist = float(math.sqrt(float(sq.sum())))
    return [
        f"Difference {b} minus {a}: (dx, dy, dz) = ({_f(d[0])}, {_f(d[1])}, {_f(d[2])}).",
        f"Distance = sqrt(dx^2 + dy^2 + dz^2) = sqrt({_f(sq[0], 3)} + {_f(sq[1], 3)} + "
        f"{_f(sq[2], 3)}) = {_f(dist, 3)} m, i.e. {_f(_round2(dist))} m.",
    ], dist


def _round2(v: float) -> float:
    return math.floor(float(v) * 100.0 + 0.5) / 100.0


def _check_metres(facts: SampleFacts, dist: float) -> None:
    truth = facts.reward.get("ground_truth")
    if not isinstance(truth, int | float) or abs(_round2(dist) - float(truth)) > 0.011:
        raise _SkipError(f"the recomputed distance {dist:.3f} m disagrees with the reference")


def _bearing_lines(
    origin: str, north: str, target: str, vn: np.ndarray, vt: np.ndarray
) -> tuple[list[str], float]:
    """Floor angles of ``vn`` (origin -> north object) and ``vt`` (origin -> target)."""
    an, at = floor_angle(vn[0], vn[1]), floor_angle(vt[0], vt[1])
    bearing = (at - an) % 360.0
    return [
        f"Floor vector {origin} -> {north}: (dx, dz) = ({_f(vn[0])}, {_f(vn[1])}); "
        f"atan2({_f(vn[0])}, {_f(vn[1])}) = {_f(an, 1)} deg.",
        f"Floor vector {origin} -> {target}: (dx, dz) = ({_f(vt[0])}, {_f(vt[1])}); "
        f"atan2({_f(vt[0])}, {_f(vt[1])}) = {_f(at, 1)} deg.",
        f"Bearing of {target} from {origin}, clockwise from north: {_f(at, 1)} - {_f(an, 1)} "
        f"= {_f(bearing, 1)} deg (mod 360).",
    ], bearing


def _check_word(facts: SampleFacts, word: str) -> None:
    if facts.meta.get("direction") != word:
        raise _SkipError(f"the recomputed direction {word!r} disagrees with the meta")


# -- mi_object_object --------------------------------------------------------------------------


def _object_object(facts: SampleFacts, kind: str) -> str:
    meta = facts.meta
    q = meta.get("kind")
    if q == "direction":
        a, b, c = meta["north_id"], meta["origin_id"], meta["target_id"]
        ids = [a, b, c]
    elif q == "distance":
        ids = list(meta["object_ids"])
    elif q == "closer":
        ids = [meta["anchor_id"], *meta["candidate_ids"]]
    else:
        raise _SkipError(f"mi_object_object question kind {q!r} is not covered")
    pos = _levelled(facts, ids)
    name = {i: _fact(facts, i).name for i in ids}
    lines: list[str] = []
    if kind == "num":
        lines += [FRAME_NOTE, *_object_lines(facts, ids, pos)]
    else:
        lines += [_layout_sentence(name[i], pos[i]) for i in ids]
    if q == "direction":
        vn = pos[a][[0, 2]] - pos[b][[0, 2]]
        vt = pos[c][[0, 2]] - pos[b][[0, 2]]
        bl, bearing = _bearing_lines(name[b], name[a], name[c], vn, vt)
        word = COMPASS[_sector(bearing)]
        _check_word(facts, word)
        if kind == "num":
            lines += [f"North points from {name[b]} to {name[a]}.", *bl]
            lines.append(_sector_text(bearing, COMPASS) + ".")
        else:
            lines.append(
                f"Standing at the {name[b]} and facing the {name[a]} (north), the {name[c]} is "
                f"{_turn_words(bearing)} from that line, so it lies to the {word} of the "
                f"{name[b]}."
            )
        lines.append(_conclude(facts, word, COMPASS))
    elif q == "distance":
        i, j = ids
        dl, dist = _distance_lines(name[i], name[j], pos[i], pos[j])
        _check_metres(facts, dist)
        if kind == "num":
            lines += dl
        else:
            d = np.abs(pos[j] - pos[i])
            lines.append(
                f"They are about {_f(d[0], 1)} m apart from left to right, {_f(d[2], 1)} m in "
                f"depth and {_f(d[1], 1)} m in height, so the straight-line distance between their "
                f"centres is about {_f(_round2(dist))} m."
            )
    else:
        x, cands = meta["anchor_id"], list(meta["candidate_ids"])
        dists = [float(np.linalg.norm(pos[c] - pos[x])) for c in cands]
        best = int(np.argmin(dists)) if meta["query"] == "closest" else int(np.argmax(dists))
        order = list(meta["options"])
        letters = {c: LETTERS[order.index(k)] for k, c in enumerate(cands)}
        for c, dd in zip(cands, dists, strict=True):
            if kind == "num":
                lines += _distance_lines(name[x], name[c], pos[x], pos[c])[0]
            else:
                lines.append(f"The {name[c]} is about {_f(dd, 1)} m from the {name[x]}.")
        other = cands[1 - best]
        rel = "<" if dists[best] < dists[1 - best] else ">"
        adj = "closer" if meta["query"] == "closest" else "farther"
        lines.append(
            f"The {name[cands[best]]} ({_f(dists[best])} m {rel} {_f(dists[1 - best])} m) is "
            f"{adj} to the {name[x]} than the {name[other]}; it is option "
            f"{letters[cands[best]]}."
        )
    return "\n".join(lines)


# -- mi_camera_object --------------------------------------------------------------------------


def _camera_object(facts: SampleFacts, kind: str) -> str:
    meta = facts.meta
    q = meta.get("kind")
    c = meta["target_id"]
    a = meta.get("north_id")
    ids = [a, c] if q == "object_north" else [c]
    pos = _levelled(facts, ids)
    name = {i: _fact(facts, i).name for i in ids}
    lines = [FRAME_NOTE, *_object_lines(facts, ids, pos)] if kind == "num" else []
    if kind == "rt":
        lines += [_layout_sentence(name[i], pos[i]) for i in ids]
    if q == "distance":
        p = pos[c]
        dist = float(np.linalg.norm(p))
        _check_metres(facts, dist)
        if kind == "num":
            lines += _distance_lines("camera 1", name[c], np.zeros(3), p)[0]
        else:
            lines.append(
                f"Combining {_f(abs(p[2]), 1)} m in depth, {_f(abs(p[0]), 1)} m sideways and "
                f"{_f(abs(p[1]), 1)} m in height, the {name[c]} is about {_f(_round2(dist))} m "
                "from camera 1."
            )
        return "\n".join(lines)
    zero = np.zeros(2)
    vt = pos[c][[0, 2]]
    if q == "facing":
        vn = np.array([0.0, 1.0])
        north = "camera 1's heading (+z)"
    elif q == "object_north":
        vn = pos[a][[0, 2]] - zero
        north = name[a]
    else:
        raise _SkipError(f"mi_camera_object question kind {q!r} is not covered")
    bl, bearing = _bearing_lines("camera 1", north, name[c], vn, vt)
    word = COMPASS[_sector(bearing)]
    _check_word(facts, word)
    if kind == "num":
        lines.append(f"North points from camera 1 along {north}.")
        lines += bl
        lines.append(_sector_text(bearing, COMPASS) + ".")
    else:
        ref = "straight ahead of camera 1" if q == "facing" else f"toward the {name[a]}"
        lines.append(
            f"North points {ref}; seen from camera 1 the {name[c]} is {_turn_words(bearing)} "
            f"from north, so it lies to the {word}."
        )
    lines.append(_conclude(facts, word, COMPASS))
    return "\n".join(lines)


# -- mi_camera_camera --------------------------------------------------------------------------


def _camera_camera(facts: SampleFacts, kind: str) -> str:
    meta = facts.meta
    poses = [f.cam_to_world for f in facts.mv.frames[:2]]
    motion = camera_motion(*poses)
    if motion.translation is None or motion.angles is None:
        raise _SkipError("a camera looks straight up or down")
    tx, ty, tz = motion.translation
    pan, tilt, roll = motion.angles
    lines: list[str] = []
    if kind == "num":
        lines += [
            FRAME_NOTE,
            f"Camera 2: centre (x, y, z) = ({_f(tx)}, {_f(ty)}, {_f(tz)}); "
            f"pan {_f(pan, 1)} deg, tilt {_f(tilt, 1)} deg, roll {_f(roll, 1)} deg "
            "(pan > 0 turned right, tilt > 0 up, roll > 0 clockwise).",
        ]
    else:
        lines.append(
            f"Camera 2 stands about {_f(abs(tz), 1)} m {_ahead(tz)} camera 1 and "
            f"{_f(abs(tx), 1)} m to its {_side(tx)}, and it is turned {_turn_words(pan % 360)} "
            "(seen from above) relative to camera 1."
        )
    if meta.get("kind") == "position":
        obs = int(meta["observer"])
        if obs == 0:
            v, who, whom = np.array([tx, tz]), "camera 1", "camera 2"
        else:
            p = level_points(poses[1], [poses[0][:3, 3]])
            if p is None:
                raise _SkipError("camera 2 looks straight up or down")
            v, who, whom = np.array([p[0][0], p[0][2]]), "camera 2", "camera 1"
        angle = floor_angle(v[0], v[1])
        word = RELATIVE[_sector(angle)]
        _check_word(facts, word)
        if kind == "num":
            if obs == 1:
                lines.append(
                    f"In camera 2's levelled frame, camera 1's centre is at (x, z) = "
                    f"({_f(v[0])}, {_f(v[1])})."
                )
            lines.append(
                f"Angle of {whom} from {who}'s heading: atan2({_f(v[0])}, {_f(v[1])}) = "
                f"{_f(angle, 1)} deg (clockwise, 90 = right)."
            )
            lines.append(_sector_text(angle, RELATIVE) + ".")
        else:
            lines.append(
                f"From {who}, looking the way it looks, {whom} is {_f(abs(v[1]), 1)} m "
                f"{'ahead' if v[1] >= 0 else 'behind'} and {_f(abs(v[0]), 1)} m to the "
                f"{_side(v[0])}, so it is at the {word}."
            )
        lines.append(_conclude(facts, word, RELATIVE))
    elif meta.get("kind") == "heading":
        turn = pan % 360.0
        base = COMPASS.index(meta["base"])
        k = (base + _sector(turn)) % 8
        word = COMPASS[k]
        _check_word(facts, word)
        if kind == "num":
            lines.append(
                f"Camera 2's heading is camera 1's turned clockwise by {_f(pan, 1)} mod 360 = "
                f"{_f(turn, 1)} deg, i.e. {_sector(turn)} steps of 45 deg "
                f"({_sector_text(turn, [f'{45 * j} deg' for j in range(8)])})."
            )
            lines.append(
                f"Camera 1 faces {meta['base']}; {meta['base']} turned {_sector(turn)} steps "
                f"clockwise is {word}."
            )
        else:
            lines.append(
                f"Camera 1 faces {meta['base']}; camera 2 looks {_turn_words(turn)} from that, "
                f"so it faces {word}."
            )
        lines.append(_conclude(facts, word, COMPASS))
    else:
        raise _SkipError(f"mi_camera_camera question kind {meta.get('kind')!r} is not covered")
    return "\n".join(lines)


# -- mi_camera_motion --------------------------------------------------------------------------


def _shared_shifts(facts: SampleFacts) -> list[tuple[ObjectFact, float, float, float]]:
    """``(fact, dx px, dy px, depth)`` of the objects seen in both images, nearest first."""
    out = []
    for f in facts.objects:
        if len(f.view_boxes) < 2 or f.view_boxes[0] is None or f.view_boxes[1] is None:
            continue
        (a0, b0, a1, b1), (c0, d0, c1, d1) = f.view_boxes[0], f.view_boxes[1]
        dx = (c0 + c1) / 2 - (a0 + a1) / 2
        dy = (d0 + d1) / 2 - (b0 + b1) / 2
        out.append((f, dx, dy, float(np.linalg.norm(f.center))))
    return sorted(out, key=lambda t: (t[3], t[0].object_id))[:3]


def _parallax(facts: SampleFacts, family: str, axis: str | None, motion) -> list[str]:
    """Sentences on how the image content moves for this motion, with the observed shifts."""
    pan = (motion.angles or (0.0, 0.0, 0.0))[0]
    tx = (motion.translation or (0.0, 0.0, 0.0))[0]
    out = []
    if family.startswith("rotation"):
        out.append(
            "Parallax check: when the camera pans right, the whole scene slides left in the "
            "image, about equally near and far; tilting up moves it down; a clockwise roll "
            "turns the image content counter-clockwise."
        )
        expect_x = -1 if pan > 0 else 1
    else:
        out.append(
            "Parallax check: when the camera moves right, objects slide left in the image and "
            "nearer objects slide more than far ones; moving forward makes objects grow and "
            "spread away from the image centre."
        )
        expect_x = -1 if tx > 0 else 1
    if not family.startswith("rotation") and abs(pan) >= 5:
        out.append(
            f"The turn of {round(abs(pan))} degrees to the {'right' if pan > 0 else 'left'} alone "
            f"slides the whole scene {'left' if pan > 0 else 'right'}, so the shifts below mix "
            "turn and move; the move itself follows from the camera poses."
        )
    for f, dx, dy, depth in _shared_shifts(facts):
        agree = (dx < 0) == (expect_x < 0) and abs(dx) >= 2
        verdict = ", as expected for this motion" if agree else ""
        out.append(
            f"The {f.name} ({_f(depth, 1)} m away) shifts {abs(round(dx))} px "
            f"{'left' if dx < 0 else 'right'} and {abs(round(dy))} px "
            f"{'up' if dy < 0 else 'down'} from image 1 to image 2{verdict}."
        )
    return out


def _camera_motion(facts: SampleFacts, kind: str) -> str:
    from vst.engine.tasks.multi_image import camera_motion as cm

    meta = facts.meta
    family, axis, style = meta.get("family"), meta.get("axis"), meta.get("style")
    motion = camera_motion(*(f.cam_to_world for f in facts.mv.frames[:2]))
    task = cm.CameraMotionTask()
    try:
        _, value = cm.answer_of(meta, motion, task)
    except (ValueError, KeyError) as exc:
        raise _SkipError(f"mi_camera_motion: {exc}") from None
    truth = facts.reward.get("ground_truth")
    same = (
        abs(float(value) - float(truth)) < 1e-6
        if isinstance(value, int | float) and isinstance(truth, int | float)
        else value == truth
    )
    if not same:
        raise _SkipError("the recomputed camera motion answer disagrees with the reference")
    lines: list[str] = []
    angles = motion.angles
    t = motion.translation
    if kind == "num":
        if angles is not None:
            lines.append(
                f"Rotation from camera 1 to camera 2 against gravity: pan {_f(angles[0], 1)} deg "
                f"(> 0 right), tilt {_f(angles[1], 1)} deg (> 0 up), roll {_f(angles[2], 1)} deg "
                "(> 0 clockwise)."
            )
        if t is not None:
            lines.append(
                f"Translation of camera 2 in camera 1's levelled frame: (x, y, z) = "
                f"({_f(t[0])}, {_f(t[1])}, {_f(t[2])}) m (x right, y down, z forward)."
            )
    else:
        if angles is not None:
            pan, tilt, roll = angles
            lines.append(
                "Between the two images the camera "
                + ", ".join(
                    (
                        f"{verb} {round(abs(v))} degrees {words[v > 0]}"
                        if round(abs(v))
                        else f"did not {verb.removesuffix('ed').removesuffix('e')} noticeably"
                    )
                    for verb, v, words in (
                        ("turned", pan, ("to the left", "to the right")),
                        ("tilted", tilt, ("down", "up")),
                        ("rolled", roll, ("counter-clockwise", "clockwise")),
                    )
                )
                + "."
            )
        if t is not None:
            lines.append(
                f"It moved about {_f(abs(t[0]), 1)} m to the {_side(t[0])}, {_f(abs(t[2]), 1)} m "
                f"{'forward' if t[2] >= 0 else 'backward'} and {_f(abs(t[1]), 1)} m "
                f"{'down' if t[1] >= 0 else 'up'}."
            )
    lines += _parallax(facts, family, axis, motion)
    lines += _motion_conclusion(facts, kind, family, axis, style, motion, task, cm)
    return "\n".join(lines)


def _motion_conclusion(facts, kind, family, axis, style, motion, task, cm) -> list[str]:
    meta = facts.meta
    out: list[str] = []
    if family == "rotation_angle":
        v = motion.angle(axis)
        deg = int(cm.round_half_up(abs(v)))
        out.append(f"The {axis} angle is {_f(v, 1)} deg, so its size is {deg} degrees.")
        return out
    if family == "translation_distance":
        t = np.array(motion.translation if motion.translation else (0.0, 0.0, 0.0))
        if kind == "num" and motion.translation is not None:
            out += _distance_lines("camera 1", "camera 2", np.zeros(3), t)[0]
        out.append(f"The camera centres are {_f(cm.round_half_up(motion.distance, 2))} m apart.")
        return out
    if family in ("rotation_binary", "rotation_main"):
        angles = motion.angles
        if family == "rotation_binary":
            k = cm.ROTATION_AXES.index(axis)
            sign = 1 if angles[k] > 0 else -1
            key = cm._key(axis, sign)
            others = [
                f"|{n}| = {_f(abs(angles[j]), 1)}" for j, n in enumerate(cm.ROTATION_AXES) if j != k
            ]
            if kind == "num":
                out.append(
                    f"The {axis} is {_f(angles[k], 1)} deg ({', '.join(others)} deg are "
                    f"smaller), so the camera is {cm.rotation_option(key)}."
                )
            else:
                out.append(
                    f"The {axis} of about {round(abs(angles[k]))} degrees is clearly larger than "
                    f"the other rotations, so the camera is {cm.rotation_option(key)}."
                )
            word = cm.ROTATION_WORDS[axis][1 if sign > 0 else 0]
        else:
            key = cm._rotation_main_key(motion, task.MIN_ANGLE_DEG, task.DOMINANCE)
            mags = ", ".join(
                f"|{n}| = {_f(abs(angles[j]), 1)}" for j, n in enumerate(cm.ROTATION_AXES)
            )
            if kind == "num":
                out.append(
                    f"Comparing the angles ({mags} deg), the main rotation is "
                    f"{cm.rotation_option(key)}."
                )
            else:
                main = cm.ROTATION_AXES.index(key[:-1])
                out.append(
                    f"The largest rotation is the {key[:-1]} of about "
                    f"{round(abs(angles[main]))} degrees and the others are smaller, so the main "
                    f"motion is {cm.rotation_option(key)}."
                )
            word = ""
    else:  # translation_binary / translation_direction
        signs = task._translation_signs(motion)
        t = motion.translation
        if family == "translation_binary":
            k = cm.TRANSLATION_AXES.index(axis)
            key = cm._key(axis, signs[k])
            adverb = cm.translation_option(key).removeprefix("moving ")
            if kind == "num":
                out.append(f"The {axis} component is {_f(t[k])} m, clearly {adverb}.")
            else:
                out.append(
                    f"In its {cm.TRANS_DESC[axis]} the camera clearly went {adverb}, by about "
                    f"{_f(abs(t[k]), 1)} m."
                )
            word = cm.TRANSLATION_WORDS[axis][1 if signs[k] > 0 else 0]
        else:
            key = list(signs)
            parts = []
            for j, ax in enumerate(cm.TRANSLATION_AXES):
                state = "still" if not signs[j] else cm.TRANSLATION_ADVERBS[ax][signs[j] > 0]
                parts.append(f"{ax} {_f(t[j])} m: {state}")
            if kind == "num":
                out.append(
                    f"Per axis ({'; '.join(parts)}), the camera is "
                    f"{cm.direction_text(tuple(signs))}."
                )
            else:
                still = [
                    cm.TRANS_DESC[ax] for j, ax in enumerate(cm.TRANSLATION_AXES) if not signs[j]
                ]
                rest = f"Its {' and '.join(still)} is negligible; p" if still else "P"
                out.append(
                    f"{rest}utting the clear parts of the move together, the camera is "
                    f"{cm.direction_text(tuple(signs))}."
                )
            word = ""
    if style == "short":
        out.append(f"In one word: {word}.")
        return out
    keys = meta.get("option_keys") or []
    if key not in keys:
        raise _SkipError("the derived motion is not among the options")
    texts = [cm.CameraMotionTask._option_text(family, k) for k in keys]
    letter = LETTERS[keys.index(key)]
    out.append(
        "The options are "
        + ", ".join(f"{LETTERS[i]}. {x}" for i, x in enumerate(texts))
        + f"; that is option {letter}."
    )
    return out


# -- single image: si_distance, si_depth_point -------------------------------------------------


def _single(text: str) -> str:
    """Single-image wording: the one camera instead of camera 1."""
    return text.replace("camera 1's", "the camera's").replace("camera 1", "the camera")


def _si_distance(facts: SampleFacts, kind: str) -> str:
    meta = facts.meta
    x, cands = meta["anchor_id"], list(meta["candidate_ids"])
    ids = [x, *cands]
    pos = _levelled(facts, ids)
    handles = {r["id"]: r.get("handle") for r in meta.get("refs") or [] if "id" in r}
    name = {}
    for i in ids:
        label, handle = _fact(facts, i).label, handles.get(i)
        name[i] = label if not handle or handle == label else f"{label} ({handle})"
    dists = [float(np.linalg.norm(pos[c] - pos[x])) for c in cands]
    if not np.allclose(dists, meta["distances"], atol=1e-3):
        raise _SkipError("the recomputed distances disagree with the meta")
    pick = np.argmin if meta["query"] == "closest" else np.argmax
    best = int(pick(dists))
    if best != int(pick(meta["distances"])):
        raise _SkipError("the recomputed answer disagrees with the meta")
    lines = [FRAME_NOTE, *_object_lines(facts, ids, pos, name)] if kind == "num" else []
    if kind == "rt":
        lines += [_layout_sentence(name[i], pos[i]) for i in ids]
    for c, d in zip(cands, dists, strict=True):
        if kind == "num":
            lines += _distance_lines(name[x], name[c], pos[x], pos[c])[0]
        else:
            lines.append(f"The {name[c]} is about {_f(d, 1)} m from the {name[x]}.")
    word = "closest to" if meta["query"] == "closest" else "farthest from"
    tail = ""
    if meta.get("style") == "mcq":
        tail = f"; it is option {LETTERS[list(meta['options']).index(best)]}"
    ranked = " < ".join(_f(d) for d in sorted(dists))
    lines.append(
        f"Sorted distances: {ranked} m; the {name[cands[best]]} ({_f(dists[best])} m) is the one "
        f"{word} the {name[x]}{tail}."
    )
    return _single("\n".join(lines))


def _si_depth_point(facts: SampleFacts, kind: str) -> str:
    from vst.engine.tasks.single_image.depth_point import answer_index

    meta = facts.meta
    points, depths = meta["points"], [float(d) for d in meta["depths"]]
    best = answer_index(depths, meta["query"])
    if LETTERS[best] != facts.reward.get("ground_truth"):
        raise _SkipError("the depths' answer disagrees with the reference")
    scene = facts.mv.scene
    lines = []
    for p, d in zip(points, depths, strict=True):
        where = (
            f"on the {scene.object(p['object_id']).label}"
            if p.get("object_id") is not None and scene.object(p["object_id"]).label in facts.labels
            else "on a surface"
        )
        u, v = (round(c) for c in p["xy"])
        if kind == "num":
            lines.append(f"Point {p['label']} at ({u}, {v}) in the image: depth {_f(d)} m.")
        else:
            lines.append(f"Point {p['label']} lies {where}, about {_f(d, 1)} m from the camera.")
    order = sorted(range(len(depths)), key=lambda k: depths[k])
    word = "closest to" if meta["query"] == "closer" else "farthest from"
    if kind == "num":
        ranked = " < ".join(f"{points[k]['label']} {_f(depths[k])} m" for k in order)
        lines.append(f"Ordered by depth: {ranked}.")
    else:
        ranked = ", ".join(points[k]["label"] for k in order)
        lines.append(f"From near to far the points are {ranked}.")
    lines.append(f"So point {LETTERS[best]} is the one {word} the camera.")
    return "\n".join(lines)


# -- dispatch ----------------------------------------------------------------------------------

_BUILDERS: dict[str, Callable[[SampleFacts, str], str]] = {
    "mi_object_object": _object_object,
    "mi_camera_object": _camera_object,
    "mi_camera_camera": _camera_camera,
    "mi_camera_motion": _camera_motion,
    "si_distance": _si_distance,
    "si_depth_point": _si_depth_point,
}

COVERED_TASKS: tuple[str, ...] = tuple(_BUILDERS)
"""Tasks with an offline CoT (every question form of each)."""


def explain_offline_cot(facts: SampleFacts, kind: str) -> OfflineCot | str:
    """The ``kind`` CoT of a sample, or the reason (one line) why there is none."""
    if kind not in OFFLINE_KINDS:
        raise ValueError(f"unknown offline CoT kind {kind!r}; choose from {OFFLINE_KINDS}")
    build = _BUILDERS.get(facts.task)
    if build is None:
        return f"no offline CoT for task {facts.task!r}"
    try:
        text = build(facts, kind)
    except _SkipError as exc:
        return str(exc)
    except (KeyError, TypeError, IndexError, ValueError, AttributeError) as exc:
        return f"meta does not fit {facts.task}: {type(exc).__name__}: {exc}"
    return OfflineCot(reasoning=text, answer=facts.answer)


def offline_cot(facts: SampleFacts, kind: str) -> OfflineCot | None:
    """The ``kind`` CoT of a sample from its scene facts (module docstring), or None when the
    sample's task (or question form) has no offline CoT (:func:`explain_offline_cot` gives
    the reason)."""
    out = explain_offline_cot(facts, kind)
    return out if isinstance(out, OfflineCot) else None
