"""The report of a CoT run (:func:`vst.reasoning.cot.run_cot`): samples tried and kept,
rejections per task and reason, reasoning length in words, examples, tokens and cost."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REASONS", "CotReport", "summarise"]

REASONS = ("wrong_answer", "malformed", "hallucination", "timeout", "error", "skipped")
"""Why a sample was not kept: the teacher's answer fails the reward check; no usable triplet;
the reasoning names an absent object; the request timed out / failed otherwise (after the
backend's retries); no CoT could be asked for (unreadable facts, unchecked reward mode, no
offline CoT)."""


@dataclass
class CotReport:
    """What a run did: samples tried and kept, rejections per task and reason, reasoning
    length (words), examples, tokens, cost (when priced) and where things were written."""

    kind: str
    teacher: str | None
    prompt_version: str
    selected: int = 0
    kept: int = 0
    per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    attempt_failures: dict[str, int] = field(default_factory=dict)
    words: dict[str, float] = field(default_factory=dict)
    tokens: dict[str, int] = field(default_factory=lambda: {"prompt": 0, "completion": 0})
    calls: int = 0
    cached: int = 0
    cost: float | None = None
    rewritten: int = 0
    chunks_done: int = 0
    chunks_resumed: int = 0
    removed_stale: int = 0
    examples_kept: list[dict[str, Any]] = field(default_factory=list)
    examples_rejected: list[dict[str, Any]] = field(default_factory=list)
    output_dir: str = ""

    @property
    def rejected(self) -> dict[str, int]:
        """Rejected samples per reason (all tasks)."""
        total: Counter[str] = Counter()
        for counts in self.per_task.values():
            total.update({k: v for k, v in counts.items() if k != "kept"})
        return {r: total[r] for r in REASONS if total[r]}

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "teacher": self.teacher,
            "prompt_version": self.prompt_version,
            "selected": self.selected,
            "kept": self.kept,
            "rejected": self.rejected,
            "per_task": self.per_task,
            "attempt_failures": self.attempt_failures,
            "reasoning_words": self.words,
            "tokens": self.tokens,
            "calls": self.calls,
            "cached": self.cached,
            "cost": self.cost,
            "rewritten": self.rewritten,
            "chunks": {
                "done": self.chunks_done,
                "resumed": self.chunks_resumed,
                "removed_stale": self.removed_stale,
            },
            "examples": {"kept": self.examples_kept, "rejected": self.examples_rejected},
            "output_dir": self.output_dir,
        }

    def to_markdown(self) -> str:
        src = f"teacher `{self.teacher}`" if self.teacher else "offline"
        lines = [
            f"# CoT run ({self.kind}, {src}, prompt {self.prompt_version})",
            "",
            f"- kept {self.kept} of {self.selected} samples"
            + (f" ({100 * self.kept / self.selected:.1f} %)" if self.selected else ""),
            f"- rejected: {', '.join(f'{k} {v}' for k, v in self.rejected.items()) or 'none'}",
            f"- failed attempts: "
            f"{', '.join(f'{k} {v}' for k, v in self.attempt_failures.items()) or 'none'}",
            f"- reasoning words: {self.words or 'n/a'}",
            f"- tokens: prompt {self.tokens['prompt']}, completion {self.tokens['completion']}"
            + (f"; cost {self.cost:.4f}" if self.cost is not None else ""),
            f"- teacher requests sent {self.calls}, answered from cache {self.cached}; "
            f"rewritten {self.rewritten}",
            f"- chunks {self.chunks_done} ({self.chunks_resumed} resumed, "
            f"{self.removed_stale} stale removed)",
            "",
            "| task | kept | " + " | ".join(REASONS) + " |",
            "|---|---:|" + "---:|" * len(REASONS),
        ]
        for task, counts in sorted(self.per_task.items()):
            cells = [str(counts.get(k, 0)) for k in ("kept", *REASONS)]
            lines.append(f"| {task} | " + " | ".join(cells) + " |")
        for title, examples in (("Kept", self.examples_kept), ("Rejected", self.examples_rejected)):
            if examples:
                lines += ["", f"## {title} examples", ""]
                for ex in examples:
                    body = ex.get("reasoning") or ex.get("reply") or ""
                    lines.append(
                        f"- `{ex['id']}` {ex['task']} ({ex['status']}"
                        + (f": {ex['detail']}" if ex.get("detail") else "")
                        + f"): {' '.join(str(body).split())[:300]}"
                    )
        return "\n".join(lines) + "\n"


def summarise(
    report: CotReport,
    records: Sequence[dict[str, Any]],
    prices: tuple[float | None, float | None] | None = None,
) -> None:
    """Fill ``report`` from the chunk records' sample outcomes; ``prices`` per 1000 prompt and
    completion tokens give the cost."""
    per_task: dict[str, Counter[str]] = {}
    words: list[int] = []
    for record in records:
        for o in record["samples"]:
            per_task.setdefault(o["task"], Counter())[o["status"]] += 1
            tokens = o.get("tokens") or {}
            report.tokens["prompt"] += int(tokens.get("prompt", 0))
            report.tokens["completion"] += int(tokens.get("completion", 0))
            example = {k: o.get(k) for k in ("id", "task", "status", "detail", "attempts")}
            if o["status"] == "kept":
                words.append(int(o.get("words", 0)))
                report.rewritten += bool(o.get("rewritten"))
                if len(report.examples_kept) < 3:
                    report.examples_kept.append({**example, "reasoning": o.get("reasoning")})
            elif len(report.examples_rejected) < 3:
                report.examples_rejected.append({**example, "reply": o.get("reply")})
    report.per_task = {t: dict(c) for t, c in sorted(per_task.items())}
    report.kept = sum(c.get("kept", 0) for c in report.per_task.values())
    if words:
        report.words = {
            "min": min(words),
            "median": float(statistics.median(words)),
            "max": max(words),
        }
    if prices is not None and any(p is not None for p in prices):
        report.cost = report.tokens["prompt"] / 1000 * (prices[0] or 0.0) + report.tokens[
            "completion"
        ] / 1000 * (prices[1] or 0.0)
