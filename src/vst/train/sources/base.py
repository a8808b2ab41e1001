"""What every training data source is: an index of its examples, decoded one at a time.

A :class:`Source` is built by reading only what it needs to count and locate its examples (ids,
text, file positions), never the pictures; :meth:`Source.load` decodes example ``i`` when it is
asked for. Examples found unusable while indexing are in :attr:`Source.skipped`; one that fails
to decode raises :class:`ItemError` (id + one-line reason) and :meth:`Source.examples` records it
and goes on.

The system prompt: a source's ``system`` (``"plain"`` / ``"think"``) puts that system turn first
in every example that has none, and ``meta["system"]`` records which prompt an example trains
with (``"plain"``, ``"think"``, ``"custom"``, or absent when the run's default applies). An
example on the thinking prompt must have its last assistant turn well formed as
``<think>...</think> answer`` (:func:`vst.rewards.parsing.split_think`), else it is skipped.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT, system_prompt, with_system
from vst.rewards.parsing import split_think
from vst.train.examples import TrainExample

__all__ = ["ItemError", "Skip", "Source", "one_line", "system_name"]


@dataclass(frozen=True)
class Skip:
    """An example left out: its ``source``, ``id`` (or position) and a one-line ``reason``."""

    source: str
    id: str
    reason: str


class ItemError(ValueError):
    """Example ``id`` of a source cannot be used, for ``reason``."""

    def __init__(self, id: str, reason: str):
        super().__init__(f"{id}: {reason}")
        self.id = id
        self.reason = reason


def one_line(exc: BaseException, limit: int = 160) -> str:
    """An exception's message on one line, at most ``limit`` characters (its type if empty)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."


def system_name(messages: list[dict[str, Any]]) -> str | None:
    """``"plain"`` / ``"think"`` / ``"custom"`` for the system turn ``messages`` start with,
    None without one."""
    if not messages or messages[0].get("role") != "system":
        return None
    text = "".join(c.get("text") or "" for c in messages[0]["content"] if c["type"] == "text")
    return {PLAIN_SYSTEM_PROMPT: "plain", THINK_SYSTEM_PROMPT: "think"}.get(text, "custom")


class Source(ABC):
    """Indexed examples of one data source (``name`` is the key in mix reports)."""

    kind = ""

    def __init__(self, name: str, system: str | None = None):
        if system is not None:
            system_prompt(system)  # refuse unknown names early
        self.name = name
        self.system = system
        self.skipped: list[Skip] = []

    @abstractmethod
    def __len__(self) -> int:
        """Number of indexed examples (those skipped while indexing not counted)."""

    @abstractmethod
    def _load(self, i: int) -> TrainExample:
        """Example ``i`` as read (raise :class:`ItemError` when it cannot be used)."""

    def skip(self, id: str, reason: str) -> None:
        """Record an example left out while indexing."""
        self.skipped.append(Skip(self.name, id, reason))

    def load(self, i: int) -> TrainExample:
        """Example ``i`` decoded, with the source's system turn and the CoT format checked;
        raises :class:`ItemError` when it cannot be used."""
        if not 0 <= i < len(self):
            raise IndexError(f"{self.name}: example {i} out of range (0..{len(self) - 1})")
        ex = self._load(i)
        messages = ex.messages
        if self.system is not None:
            messages = with_system(messages, system_prompt(self.system))
        kind = system_name(messages)
        if kind == "think":
            last = [m for m in messages if m["role"] == "assistant"][-1]
            text = "".join(c["text"] for c in last["content"] if c["type"] == "text")
            if not split_think(text).well_formed:
                raise ItemError(
                    ex.id, "thinking prompt but the last answer is not '<think>...</think> answer'"
                )
        meta = {**ex.meta, "system": kind} if kind else dict(ex.meta)
        if messages is ex.messages and meta == ex.meta:
            return ex
        return replace(ex, messages=messages, meta=meta)

    def examples(self) -> Iterator[TrainExample]:
        """Every usable example in index order; failures go to :attr:`skipped`."""
        for i in range(len(self)):
            try:
                yield self.load(i)
            except ItemError as exc:
                self.skip(exc.id, exc.reason)
