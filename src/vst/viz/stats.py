"""Per-task figures gathered while the viewer streams a dataset, in bounded memory.

* samples per task and per scene;
* answer distributions: short answers (at most :data:`MAX_ANSWER_CHARS` characters) are counted
  as labels, at most :data:`MAX_DISTINCT` distinct ones per task (later new ones count as
  "(other)"); ``numeric`` rewards keep their ground-truth values for a histogram (one float per
  sample); long free-text answers (captions, JSON boxes) count as "(long answer)";
* with predictions: the sum and count of scores per task.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

__all__ = ["MAX_ANSWER_CHARS", "MAX_DISTINCT", "TaskStats", "new_stats"]

MAX_ANSWER_CHARS = 40
MAX_DISTINCT = 200
OTHER = "(other)"
LONG = "(long answer)"


@dataclass
class TaskStats:
    """Running figures of one task (see the module docstring)."""

    samples: int = 0
    answers: Counter[str] = field(default_factory=Counter)
    numeric: list[float] = field(default_factory=list)
    scenes: Counter[str] = field(default_factory=Counter)
    score_sum: float = 0.0
    scored: int = 0
    failures: int = 0

    def add(self, answer: str, reward: dict[str, Any], scene: str) -> None:
        """Count one sample: its answer text, its reward spec and its scene id."""
        self.samples += 1
        self.scenes[scene] += 1
        truth = reward.get("ground_truth")
        if reward.get("mode") == "numeric" and isinstance(truth, int | float):
            self.numeric.append(float(truth))
            return
        label = answer.strip() if len(answer.strip()) <= MAX_ANSWER_CHARS else LONG
        if label not in self.answers and len(self.answers) >= MAX_DISTINCT:
            label = OTHER
        self.answers[label] += 1

    def add_score(self, score: float) -> None:
        """Count one prediction's score (``reward.overall``); below 1 is a failure."""
        self.score_sum += score
        self.scored += 1
        self.failures += score < 1.0

    @property
    def mean_score(self) -> float | None:
        return self.score_sum / self.scored if self.scored else None


def new_stats() -> defaultdict[str, TaskStats]:
    """An empty ``{task: TaskStats}`` map."""
    return defaultdict(TaskStats)
