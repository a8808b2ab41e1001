"""The scene facts behind a VST-P sample: what chain-of-thought about it may use.

:func:`sample_facts` takes a shard row (:func:`vst.engine.writer.iter_rows`) and the scenes it was
generated from, and rebuilds, from ``meta["scene_id"]`` and ``meta["frame_ids"]``, the
:class:`~vst.engine.multiview.MultiView` of the sample's images and the facts of its objects as
the engine's teacher prompts state them (:mod:`vst.engine.teacher`):

* ``objects``: :class:`~vst.engine.teacher.ObjectFact` of the objects the sample refers to
  (``meta`` ``refs``, ``object_ids``, ``target_id``, ``object_id``, ``origin_id``,
  ``north_id``, in that order; none named: every object visible in some image), in the first
  image's camera frame (X right, Y down, Z forward, metres). An object the question refers to
  is *named* as the question names it (``"chair (the object at point (281, 65) in image 1)"``);
  others by their category;
* ``cameras``: one line per image on its camera's motion relative to camera 1
  (:func:`~vst.engine.teacher.camera_context`);
* ``bev``: the top view of those objects and the cameras (:func:`~vst.engine.teacher.
  multiview_bev`), when asked for;
* ``labels``: the categories of ``objects``; ``scene_labels``: every category in the scene;
* ``question`` (the text of the sample's last user turn), ``answer`` (its reference answer),
  ``reward`` (the spec), ``images`` (the sample's pictures as the model sees them: decoded from
  the row, marks drawn), ``meta``.

A row without a scene id or frame ids, a scene that is not under the scenes folder or a frame
that is not in it raise ``ValueError`` naming the sample.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from PIL import Image

from vst.engine.context import EngineContext, EngineSettings
from vst.engine.imaging import decode_image
from vst.engine.multiview import MultiView
from vst.engine.teacher import ObjectFact, camera_context, multiview_bev, multiview_object_facts
from vst.engine.verify import SceneIndex
from vst.rewards import load_reward_spec

__all__ = ["SampleFacts", "referred_objects", "sample_facts"]

_ID_KEYS = ("object_ids", "target_id", "object_id", "origin_id", "north_id")


@dataclass
class SampleFacts:
    """A sample with the facts of its scene (module docstring)."""

    id: str
    task: str
    question: str
    answer: str
    reward: dict[str, Any]
    images: list[Image.Image]
    mv: MultiView
    objects: list[ObjectFact]
    cameras: list[str]
    bev: Image.Image | None
    labels: frozenset[str]
    scene_labels: frozenset[str]
    meta: dict[str, Any] = field(default_factory=dict)


def referred_objects(meta: Mapping[str, Any]) -> tuple[list[int], dict[int, str]]:
    """``(object ids in order, {id: mention})`` of the objects a sample's meta refers to."""
    ids: list[int] = []
    mentions: dict[int, str] = {}

    def add(value: Any) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            return
        if value not in ids:
            ids.append(value)

    for ref in meta.get("refs") or []:
        if isinstance(ref, Mapping):
            add(ref.get("id"))
            if isinstance(ref.get("id"), int) and isinstance(ref.get("mention"), str):
                mentions.setdefault(ref["id"], ref["mention"])
    for key in _ID_KEYS:
        value = meta.get(key)
        for v in value if isinstance(value, list) else [value]:
            add(v)
    return ids, mentions


def _text(turn: Mapping[str, Any]) -> str:
    return "".join(c.get("text") or "" for c in turn.get("content") or [] if c["type"] == "text")


def sample_facts(
    row: Mapping[str, Any],
    scenes: SceneIndex,
    *,
    bev: bool = False,
    settings: EngineSettings | None = None,
) -> SampleFacts:
    """The facts of one shard row (module docstring); ``bev`` also draws the top view."""
    sid = str(row.get("id") or "?")
    try:
        meta = json.loads(row["meta"]) if isinstance(row.get("meta"), str) else row.get("meta")
    except ValueError:
        raise ValueError(f"sample {sid}: meta is not valid JSON") from None
    if not isinstance(meta, dict) or not meta.get("scene_id") or not meta.get("frame_ids"):
        raise ValueError(f"sample {sid}: meta has no scene_id / frame_ids")
    try:
        scene = scenes.get(str(meta["scene_id"]))
    except KeyError as exc:
        raise ValueError(f"sample {sid}: {exc.args[0]}") from None
    by_id = {f.id: f for f in scene.frames}
    missing = [f for f in meta["frame_ids"] if f not in by_id]
    if missing:
        raise ValueError(f"sample {sid}: scene {scene.id} has no frame {missing[0]!r}")
    ctx = EngineContext(settings or EngineSettings())
    mv = MultiView(scene, [by_id[f] for f in meta["frame_ids"]], ctx)
    ids, mentions = referred_objects(meta)
    known = {o.id for o in scene.objects}
    ids = [i for i in ids if i in known] or list(mv.visible_any)
    names = {
        i: f"{scene.object(i).label} ({mentions[i]})" if i in mentions else scene.object(i).label
        for i in ids
    }
    objects = multiview_object_facts(mv, ids, names=names)
    messages = row.get("messages") or []
    users = [m for m in messages if m.get("role") == "user"]
    answers = [m for m in messages if m.get("role") == "assistant"]
    pictures = [decode_image(im["bytes"]) for im in row.get("images") or []]
    return SampleFacts(
        id=sid,
        task=str(row.get("task") or ""),
        question=_text(users[-1]) if users else "",
        answer=_text(answers[-1]) if answers else "",
        reward=load_reward_spec(row["reward"]),
        images=pictures,
        mv=mv,
        objects=objects,
        cameras=camera_context(mv) if len(mv.frames) > 1 else [],
        bev=multiview_bev(mv, ids, names) if bev and ids else None,
        labels=frozenset(f.label for f in objects),
        scene_labels=frozenset(o.label for o in scene.objects),
        meta=meta,
    )


def facts_for_rows(
    rows: Sequence[Mapping[str, Any]], scenes: SceneIndex, *, bev: bool = False
) -> list[SampleFacts]:
    """:func:`sample_facts` of each row."""
    return [sample_facts(r, scenes, bev=bev) for r in rows]
