"""The GRPO reward: :func:`vst.rewards.compute_reward` of each completion against its prompt's
reward spec, as a TRL reward function that also keeps what the trainer needs after scoring.

:class:`RolloutScorer` is passed to ``GRPOTrainer(reward_funcs=[...])``. TRL calls it with the
completions of a rollout and the dataset columns (``reward``: the spec JSON, ``task``,
``mode``, ``id``) repeated per completion; it returns ``w_acc * accuracy + w_fmt * format`` per
completion and keeps one :class:`Scored` per completion in :attr:`RolloutScorer.last`: the
online filter reads the accuracies from there (it filters on accuracy, not on the total), and
the metrics read task, mode, accuracy, format, length and truncation.

A completion is *truncated* when it does not end in an end-of-sequence or pad token (it was
cut at ``max_completion_length``; TRL's own rule). ``truncated="zero"`` gives a truncated
completion reward 0 (accuracy and format 0: it counts as wrong for the filter too); ``"score"``
and ``"mask"`` score it as written (``"mask"`` has TRL leave it out of the loss).

A spec list ("any of", the release's multi-mode rows) scores the best accuracy over its specs
(:func:`~vst.rewards.compute_reward`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from vst.rewards import DEFAULT_W_ACC, DEFAULT_W_FMT, compute_reward
from vst.rewards.adapters import completion_text

__all__ = ["RolloutScorer", "Scored", "score_any"]

Score = Callable[[str, Any], dict[str, Any]]
"""``(response, spec or spec list) -> {"accuracy", "format", ...}``."""


@dataclass(frozen=True)
class Scored:
    """One scored completion."""

    task: str
    mode: str
    accuracy: float
    format: float
    overall: float
    length: int
    truncated: bool
    id: str = ""
    text: str = ""


def score_any(response: str, spec: Any) -> dict[str, Any]:
    """:func:`~vst.rewards.compute_reward` with weights 1 / 1 (the scorer applies its own) for
    one spec or a list of specs ("any of")."""
    return compute_reward(response, spec, w_acc=1.0, w_fmt=1.0)


class RolloutScorer:
    """TRL reward function over vst reward specs (module docstring)."""

    __name__ = "vst_reward"

    def __init__(
        self,
        w_acc: float = DEFAULT_W_ACC,
        w_fmt: float = DEFAULT_W_FMT,
        truncated: str = "score",
        score: Score = score_any,
    ) -> None:
        if truncated not in ("score", "zero", "mask"):
            raise ValueError(f"truncated must be score, zero or mask, got {truncated!r}")
        self.w_acc = float(w_acc)
        self.w_fmt = float(w_fmt)
        self.truncated = truncated
        self.score = score
        self.end_ids: set[int] = set()
        """Token ids that end a completion (the trainer sets its EOS and pad ids)."""
        self.last: list[Scored] = []

    def is_truncated(self, ids: Sequence[int] | None) -> bool:
        """True when ``ids`` is empty or does not end in an end id (unknown ids: False)."""
        if ids is None or not self.end_ids:
            return False
        ids = list(ids)
        return not ids or int(ids[-1]) not in self.end_ids

    def __call__(
        self,
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        completion_ids: Sequence[Sequence[int]] | None = None,
        **columns: Any,
    ) -> list[float]:
        completions = list(completions or [])
        n = len(completions)
        specs = columns.get("reward")
        if specs is None or len(specs) != n:
            got = None if specs is None else len(specs)
            raise ValueError(f"GRPO reward: {got} reward specs for {n} completions")
        tasks = columns.get("task") or ["?"] * n
        modes = columns.get("mode") or ["?"] * n
        sample_ids = columns.get("id") or [""] * n
        ids = list(completion_ids) if completion_ids is not None else [None] * n
        out: list[float] = []
        scored: list[Scored] = []
        rows = zip(completions, specs, tasks, modes, ids, sample_ids, strict=True)
        for c, spec, task, mode, cid, sid in rows:
            text = completion_text(c)
            result = self.score(text, spec)
            acc, fmt = float(result["accuracy"]), float(result["format"])
            cut = self.is_truncated(cid)
            if cut and self.truncated == "zero":
                acc = fmt = 0.0
            overall = self.w_acc * acc + self.w_fmt * fmt
            length = len(cid) if cid is not None else 0
            scored.append(
                Scored(str(task), str(mode), acc, fmt, overall, length, cut, str(sid), text)
            )
            out.append(overall)
        self.last = scored
        return out
