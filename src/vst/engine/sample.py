"""The sample record: one row of a shard (DESIGN.md, "Sample record").

* ``id``: stable content hash (task, scene, frames, messages, answer, meta) — the same sample
  always gets the same id, whatever run or worker made it.
* ``task``, ``scenario`` (``single_image`` | ``multi_image`` | ``video``).
* ``messages``: chat turns in the TRL / transformers multimodal form::

      [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "..."}]},
       {"role": "assistant", "content": [{"type": "text", "text": "..."}]}, ...]

  Each ``{"type": "image"}`` item consumes the next entry of ``images`` in order. Multi-turn
  tasks alternate user/assistant turns; the images all come in the first user turn.
* ``images``: the pictures as the model sees them (PIL images in memory; encoded bytes in
  shards). 2D coordinates in the text are absolute pixels of these images.
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


def user(*items: str | Image.Image | np.ndarray | None) -> dict[str, Any]:
    """A user turn. Strings become text items; images (or ``None`` as a placeholder) become
    ``{"type": "image"}`` items in place. Returns the message dict (images not included: pass
    them to :class:`Sample` in the same order)."""
    content: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            content.append({"type": "text", "text": item})
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
    id: str = ""

    def __post_init__(self) -> None:
        n_slots = sum(
            1
            for m in self.messages
            for c in m["content"]
            if isinstance(c, dict) and c.get("type") == "image"
        )
        if n_slots != len(self.images):
            raise ValueError(
                f"task {self.task!r}: messages have {n_slots} image slots but "
                f"{len(self.images)} images were given"
            )
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
