"""The sample record: one row of a shard (DESIGN.md, "Sample record").

* ``id``: stable content hash (task, scene, frames, messages, answer, meta) — the same sample
  always gets the same id, whatever run or worker made it.
* ``task``, ``scenario`` (``single_image`` | ``multi_image`` | ``video``).
* ``messages``: chat turns in the TRL / transformers multimodal form::

      [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]},
       {"role": "assistant", "content": [{"type": "text", "text": "..."}]}, ...]

  Each ``{"type": "image"}`` item consumes the next entry of ``images`` in order, each
  ``{"type": "video"}`` item the next entry of ``videos``. Multi-turn tasks alternate
  user/assistant turns; the images and videos all come in the first user turn.
* ``images``: the pictures as the model sees them (PIL images in memory; encoded bytes in
  shards). 2D coordinates in the text are absolute pixels of these images.
* ``videos``: frame lists (one list of PIL images per video item), in time order; their frame
  rate is ``meta["video_fps"]`` (Qwen2.5-VL reads a video as such a list of frames + fps).
* ``answer``: the final answer of the last turn, for rule checking.
* ``reward``: ``{"mode": ..., "ground_truth": ...}`` for the RL stage (see :data:`REWARD_MODES`).
* ``meta``: JSON-able provenance and the computed quantities behind the answer; it holds
  everything :meth:`vst.engine.registry.Task.derive_answer` needs to recompute the answer from
  the scene's ground truth.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from PIL import Image

Scenario = Literal["single_image", "multi_image", "video"]

REWARD_MODES = ("mcq", "exact", "numeric", "order", "det3d", "caption")
"""How an answer is checked: ``mcq`` option letter; ``exact`` normalised exact match of a
name/word; ``numeric`` a number scored by relative accuracy (MRA); ``order`` a sequence of
names/letters that must match in order; ``det3d`` a fenced JSON list of 9-DoF boxes (IoU + F1);
``caption`` free text, not rule-checkable (SFT only)."""

GENERATOR_VERSION = "0.1.0"
"""Bumped when any task's output for the same scene and seed changes."""


VIDEO = object()
"""Placeholder for :func:`user`: a ``{"type": "video"}`` item (the frames go in
``Sample.videos``)."""


def user(*items: Any) -> dict[str, Any]:
    """A user turn. Strings become text items; :data:`VIDEO` or a list/tuple of frames becomes a
    ``{"type": "video"}`` item; anything else (an image, or ``None`` as a placeholder) becomes an
    ``{"type": "image"}`` item, in place. Returns the message dict (pixels not included: pass
    them to :class:`Sample` as ``images`` / ``videos`` in the same order)."""
    content: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            content.append({"type": "text", "text": item})
        elif item is VIDEO or isinstance(item, list | tuple):
            content.append({"type": "video"})
        else:
            content.append({"type": "image"})
    return {"role": "user", "content": content}


def assistant(text: str) -> dict[str, Any]:
    """An assistant turn with one text item."""
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def _json_default(value: Any) -> Any:
    """JSON fallback for numpy values (arrays -> lists, numpy scalars -> Python scalars)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON-serialisable: {type(value).__name__}")


def to_jsonable(value: Any) -> Any:
    """Numpy scalars/arrays, tuples and non-string keys -> plain JSON types (floats keep full
    precision). A JSON round trip: the walk runs in the C encoder, not in Python."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def canonical_json(value: Any) -> str:
    """Deterministic JSON (sorted keys, no spaces) of a JSON-able value."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_json_default
    )


@dataclass
class Sample:
    """One training/evaluation sample (see the module docstring for each field)."""

    task: str
    scenario: Scenario
    messages: list[dict[str, Any]]
    images: list[Image.Image]
    answer: str
    reward: dict[str, Any]
    meta: dict[str, Any] = field(default_factory=dict)
    videos: list[list[Image.Image]] = field(default_factory=list)
    id: str = ""

    def __post_init__(self) -> None:
        for kind, given in (("image", self.images), ("video", self.videos)):
            n_slots = sum(
                1
                for m in self.messages
                for c in m["content"]
                if isinstance(c, dict) and c.get("type") == kind
            )
            if n_slots != len(given):
                raise ValueError(
                    f"task {self.task!r}: messages have {n_slots} {kind} slots but "
                    f"{len(given)} {kind}s were given"
                )
        if any(len(frames) == 0 for frames in self.videos):
            raise ValueError(f"task {self.task!r}: a video has no frames")
        if self.reward.get("mode") not in REWARD_MODES:
            raise ValueError(f"task {self.task!r}: unknown reward mode {self.reward.get('mode')!r}")
        self.meta = to_jsonable(self.meta)
        self.reward = to_jsonable(self.reward)
        if not self.id:
            self.id = self.content_id()

    def content_id(self) -> str:
        """Stable id: sha256 over task, messages, answer, reward and meta (16 hex chars)."""
        payload = canonical_json(
            {
                "task": self.task,
                "messages": self.messages,
                "answer": self.answer,
                "reward": self.reward,
                "meta": self.meta,
            }
        )
        return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:16]

    @property
    def last_user_text(self) -> str:
        """The text of the last user turn (the question being answered)."""
        for m in reversed(self.messages):
            if m["role"] == "user":
                return " ".join(c["text"] for c in m["content"] if c.get("type") == "text")
        return ""
