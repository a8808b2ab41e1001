"""Teacher requests for chain-of-thought (paper Sec. 2.2, appendix C.1; the wording is ours).

:func:`cot_request` turns a :class:`~vst.reasoning.facts.SampleFacts` into a
:class:`~vst.models.Request`: one user turn ``"Image 1:", image 1, "Image 2:", image 2, ...``,
then (kind ``rt_bev``) the top view as the LAST image part, then one instruction text holding
the reference frame, the camera lines, the object facts (category, centre, size:
:func:`~vst.engine.teacher.render_object_facts` with ``multi_view=True``), the orientation
computation of the task where it has one (:func:`orientation_text`), the question, its
reference answer, what the CoT kind asks for and the reply format: ONE JSON object
``{"question": revised question, "reasoning": ..., "answer": ...}``.

CoT kinds (:data:`COT_KINDS`): ``num`` reasons with the 3D boxes and numbers; ``rt`` first
reconstructs the layout in words, then reasons; ``rt_bev`` is ``rt`` with the top view (BEV)
image. Camera-motion samples get parallax instructions instead of the object ones.

A prompt version (:func:`prompt_version`) is the first 12 hex digits of the sha256 of every
template string a kind uses: it changes exactly when the wording does.

Conventions of the orientation lines: bearings are seen from above, in degrees clockwise from
the stated north (or from the first camera's facing direction); the eight compass (or
front/right/back/left) sectors are 45 degrees wide and centred on their direction.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, Literal

from vst.engine.tasks.multi_image._compass import COMPASS, RELATIVE
from vst.engine.teacher import render_object_facts
from vst.models import Request
from vst.reasoning.facts import SampleFacts
from vst.reasoning.samples import COT_KINDS

__all__ = [
    "COMPASS",
    "COT_KINDS",
    "RELATIVE",
    "CotKind",
    "cot_request",
    "orientation_text",
    "prompt_version",
    "question_text",
    "rewrite_request",
    "sector",
]

CotKind = Literal["num", "rt", "rt_bev"]
MOTION_TASKS = frozenset({"mi_camera_motion"})

TEMPLATES: dict[str, str] = {
    "intro": (
        "You are writing worked spatial reasoning for a training set. The pictures above are "
        "{n} views of one indoor scene, in the order they were taken. Below you get the exact "
        "geometry of the scene, a question about the pictures and its correct answer. Write the "
        "reasoning a careful person would follow to reach that answer from the pictures."
    ),
    "frame": (
        "Coordinates: the camera of image 1 is at (0, 0, 0); x points to its right, y points "
        "down and z points forward along its viewing direction; all numbers are metres."
    ),
    "bev": (
        "The last picture is a top view of the same objects and cameras in the first camera's "
        "frame: x to the right, the first camera's viewing direction up the page, each camera "
        "drawn as a wedge over its field of view."
    ),
    "num": (
        "Kind of reasoning: numeric. Locate each object the question needs in the pictures, "
        "quote its 3D centre (and size when it matters), then compute the asked quantity step by "
        "step with the numbers (coordinate differences, distances, angles), and conclude."
    ),
    "rt": (
        "Kind of reasoning: layout first. Begin by describing in words how the relevant objects "
        "and cameras are arranged (what is left, right, ahead, behind, near or far of what, with "
        "rough distances), as a mental map of the room; then use that map to infer the answer. "
        "Do not list raw coordinates."
    ),
    "rt_bev": (
        "Kind of reasoning: layout first, using the top view. Read the arrangement of the "
        "relevant objects and cameras off the top view and the pictures, describe it in words "
        "(left, right, ahead, behind, near, far, rough distances), then use it to infer the "
        "answer. Do not list raw coordinates."
    ),
    "motion": (
        "This is a camera-motion question: reason from parallax. Compare where the same objects "
        "appear in the two pictures. A pure turn moves near and far objects across the picture "
        "by about the same amount; a sideways or forward move shifts near objects much more than "
        "far ones, and objects grow when the camera comes closer. Say which objects you compare "
        "and how they moved in the picture, deduce the camera's turn and displacement, then "
        "answer."
    ),
    "motion_num": "Back the visual argument with the numbers of the camera lines.",
    "rules": (
        "Rules: name objects only by the categories listed above (as the question refers to "
        "them); never say that facts, a reference answer or instructions were given to you; "
        "the reasoning must lead to exactly the given answer; keep "
        "it focused (no repetition). Also rewrite the question in your own words with the same "
        "meaning, the same object references, options and requested answer form."
    ),
    "format": (
        "Reply with ONE JSON object and nothing else: "
        '{{"question": "<the rewritten question>", "reasoning": "<your reasoning>", '
        '"answer": "<the final answer, written exactly in the form of the reference answer>"}}'
    ),
    "rewrite": (
        "The reasoning below answers the question but repeats itself. Rewrite it concisely: "
        "keep every step needed and every number, drop the repetition, and keep the same final "
        "answer. Reply with ONE JSON object and nothing else: "
        '{{"question": "<the question>", "reasoning": "<the condensed reasoning>", '
        '"answer": "<the final answer>"}}'
        "\n\nQuestion:\n{question}\n\nReasoning:\n{reasoning}\n\nAnswer: {answer}"
    ),
}


def _template_keys(kind: str, motion: bool) -> list[str]:
    keys = ["intro", "frame"] + (["bev"] if kind == "rt_bev" else [])
    keys.append(kind)
    if motion:
        keys += ["motion"] + (["motion_num"] if kind == "num" else [])
    return [*keys, "rules", "format"]


def prompt_version(kind: str, motion: bool = False) -> str:
    """12-hex sha256 of the template strings of ``kind`` (camera-motion variant with
    ``motion``); the rewrite pass has ``kind="rewrite"``."""
    if kind == "rewrite":
        keys = ["rewrite"]
    elif kind in COT_KINDS:
        keys = _template_keys(kind, motion)
    else:
        raise ValueError(f"unknown CoT kind {kind!r} ({', '.join(COT_KINDS)})")
    text = json.dumps([TEMPLATES[k] for k in keys], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def sector(bearing_deg: float, names: tuple[str, ...] = COMPASS) -> str:
    """The 45-degree sector (centred on its direction) that ``bearing_deg`` falls in."""
    return names[int(((bearing_deg % 360.0) + 22.5) // 45.0) % 8]


def _name(facts: SampleFacts, object_id: Any) -> str:
    for f in facts.objects:
        if f.object_id == object_id:
            return f.name
    return f"object {object_id}"


def _num(meta: Mapping[str, Any], key: str) -> float | None:
    value = meta.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def orientation_text(facts: SampleFacts) -> str | None:
    """The worked orientation / distance computation behind the answer, from the sample's meta
    (see the module docstring for conventions), or None when the task has none."""
    m, task = facts.meta, facts.task
    kind, bearing = m.get("kind"), _num(m, "bearing_deg")
    sectors = "sectors of 45 degrees centred on north (0), northeast (45), east (90), and so on"
    if task == "mi_object_object" and kind == "direction" and bearing is not None:
        origin, north, target = (
            _name(facts, m.get(k)) for k in ("origin_id", "north_id", "target_id")
        )
        dists = m.get("floor_dists") or []
        lines = [
            f"Seen from above, north is the direction from {origin} to {north}.",
            f"Measured clockwise from that north, {target} lies at a bearing of {bearing:.1f} "
            f"degrees from {origin}; with {sectors}, that is {sector(bearing)}.",
        ]
        if len(dists) == 2:
            lines.insert(
                1,
                f"Floor distances from {origin}: to {north} {dists[0]:.2f} m, to {target} "
                f"{dists[1]:.2f} m.",
            )
        return " ".join(lines)
    if task == "mi_object_object" and kind == "distance" and _num(m, "distance_m") is not None:
        a, b = (_name(facts, i) for i in (m.get("object_ids") or [None, None])[:2])
        return f"The distance between the centres of {a} and {b} is {m['distance_m']:.2f} m."
    if task == "mi_object_object" and kind == "closer":
        anchor = _name(facts, m.get("anchor_id"))
        pairs = zip(m.get("candidate_ids") or [], m.get("distances") or [], strict=False)
        parts = [f"{_name(facts, i)} {d:.2f} m" for i, d in pairs]
        return f"Centre-to-centre distances from {anchor}: " + "; ".join(parts) + "."
    if task == "mi_camera_object" and kind == "distance" and _num(m, "distance_m") is not None:
        target = _name(facts, m.get("target_id"))
        dist = float(m["distance_m"])
        return f"The distance from the first camera to the centre of {target} is {dist:.2f} m."
    if task == "mi_camera_object" and kind in ("facing", "object_north") and bearing is not None:
        target = _name(facts, m.get("target_id"))
        north = (
            "the first camera's facing direction"
            if kind == "facing"
            else f"the direction from the first camera to {_name(facts, m.get('north_id'))}"
        )
        return (
            f"Seen from above, north is {north}. Measured clockwise from it, {target} lies at a "
            f"bearing of {bearing:.1f} degrees from the first camera; with {sectors}, that is "
            f"{sector(bearing)}."
        )
    if task == "mi_camera_camera" and kind == "position" and _num(m, "angle_deg") is not None:
        angle, base = float(m["angle_deg"]), _num(m, "baseline_m")
        gap = f"{base:.2f} m along the floor from the first camera, " if base is not None else ""
        return (
            f"Seen from above, the second camera stands {gap}at {angle:.1f} degrees clockwise "
            "from the first camera's facing direction; with sectors of 45 degrees centred on "
            "front (0), front right (45), right (90), and so on, that is "
            f"{sector(angle, RELATIVE)}."
        )
    if task == "mi_camera_camera" and kind == "heading" and _num(m, "turn_deg") is not None:
        base = str(m.get("base") or "north")
        start = 45.0 * COMPASS.index(base) if base in COMPASS else 0.0
        turn = float(m["turn_deg"])
        end = (start + turn) % 360.0
        return (
            f"The first camera faces {base} ({start:.0f} degrees). Seen from above, the second "
            f"camera is turned {turn:.1f} degrees clockwise from the first, so it faces "
            f"{start:.0f} + {turn:.1f} = {end:.1f} degrees (mod 360); with {sectors}, that is "
            f"{sector(end)}."
        )
    if task in MOTION_TASKS:
        ptr, t = m.get("pan_tilt_roll_deg"), m.get("translation_m")
        parts = []
        if isinstance(ptr, list) and len(ptr) == 3:
            parts.append(
                f"Camera turn from image 1 to image 2: pan {ptr[0]:+.1f} degrees (positive = "
                f"turned right), tilt {ptr[1]:+.1f} (positive = up), roll {ptr[2]:+.1f} "
                "(positive = clockwise)."
            )
        if isinstance(t, list) and len(t) == 3:
            parts.append(
                f"Camera displacement in the first camera's frame (x right, y down, z "
                f"forward): x {t[0]:+.2f} m, y {t[1]:+.2f} m, z {t[2]:+.2f} m; "
                f"{(t[0] ** 2 + t[1] ** 2 + t[2] ** 2) ** 0.5:.2f} m in all."
            )
        return " ".join(parts) or None
    return None


def question_text(facts: SampleFacts) -> str:
    """The sample's question without the "Image k:" labels that precede its pictures."""
    return re.sub(r"^(?:\s*image \d+:)+\s*", "", facts.question, flags=re.IGNORECASE)


def cot_request(facts: SampleFacts, kind: str, *, request_id: str = "") -> tuple[Request, str]:
    """The teacher request of ``facts`` for CoT ``kind`` and its prompt version (module
    docstring). ``rt_bev`` needs ``facts.bev`` (``ValueError`` naming the sample otherwise)."""
    if kind not in COT_KINDS:
        raise ValueError(f"unknown CoT kind {kind!r} ({', '.join(COT_KINDS)})")
    if kind == "rt_bev" and facts.bev is None:
        raise ValueError(f"sample {facts.id}: kind rt_bev needs the top view (bev=True)")
    motion = facts.task in MOTION_TASKS
    t = TEMPLATES
    content: list[dict[str, Any]] = []
    images = list(facts.images)
    for k in range(len(images)):
        content += [{"type": "text", "text": f"Image {k + 1}:"}, {"type": "image"}]
    if kind == "rt_bev":
        content += [{"type": "text", "text": "Top view:"}, {"type": "image"}]
        images.append(facts.bev)
    sections = [t["intro"].format(n=len(facts.images)), t["frame"]]
    if kind == "rt_bev":
        sections.append(t["bev"])
    if facts.cameras:
        sections.append("Cameras:\n" + "\n".join(f"- {c}" for c in facts.cameras))
    if facts.objects:
        sections.append("Objects:\n" + render_object_facts(facts.objects, multi_view=True))
    orient = orientation_text(facts)
    if orient:
        sections.append("Computation behind the answer:\n" + orient)
    sections.append(f"Question:\n{question_text(facts)}")
    sections.append(f"Reference answer: {facts.answer}")
    sections.append(t[kind])
    if motion:
        sections.append(t["motion"] + (" " + t["motion_num"] if kind == "num" else ""))
    sections += [t["rules"], t["format"].format()]
    content.append({"type": "text", "text": "\n\n".join(sections)})
    request = Request([{"role": "user", "content": content}], images=images, id=request_id)
    return request, prompt_version(kind, motion)


def rewrite_request(question: str, reasoning: str, answer: str, *, request_id: str = "") -> Request:
    """A text-only request asking the teacher to condense repetitive ``reasoning`` (same
    triplet format); its version is ``prompt_version("rewrite")``."""
    text = TEMPLATES["rewrite"].format(question=question, reasoning=reasoning, answer=answer)
    return Request([{"role": "user", "content": text}], id=request_id)
