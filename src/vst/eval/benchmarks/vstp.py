"""``vstp``: vst's own VST-P test split, the 19 perception skills measured directly.

Reads a vst dataset (an engine run folder, or a folder of shards) and keeps the samples of one
scene split (``meta["split"]``, default ``test``: scenes held out of training, which the leakage
guard tracks). Each sample is asked as ``vst predict`` asks it (the chat without its last
answer turn, earlier turns as given, the plain system prompt) and judged with the sample's own
reward spec (:func:`vst.rewards.compute_reward`): ``official`` is the accuracy term (multiple
choice letters, exact names, numbers by relative accuracy, orders, 3D boxes by IoU and F1),
``format`` the format term. Caption samples (not rule-checkable) are left out.

Aggregation: ``official`` is the macro mean over tasks of each task's mean accuracy (every
skill counts the same, however many samples it has); the ``micro`` variant is the mean over
samples. The breakdown gives each task and each scenario.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path

from vst.engine.writer import iter_rows, list_shards
from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.models.backends.base import Sampling
from vst.models.samples import sample_request
from vst.rewards import compute_reward
from vst.rewards.parsing import final_answer

__all__ = ["VstP"]


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


class VstP(Benchmark):
    """The VST-P test split of a vst dataset (see the module docstring). ``split=None`` keeps
    every sample (e.g. a dataset generated only from held-out scenes)."""

    name = "vstp"
    sampling = Sampling(max_tokens=1024)

    def __init__(self, split: str | None = "test", per_task: int | None = None) -> None:
        self.split = split
        self.per_task = per_task

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        shards = list_shards(data_root)
        if not shards:
            raise BenchmarkDataError(f"{data_root}: no vst shards (shard-*.parquet)")
        counts: dict[str, int] = defaultdict(int)
        found = 0
        for shard in shards:
            for row in iter_rows(shard):
                try:
                    meta = json.loads(row.get("meta") or "{}")
                except ValueError:
                    meta = {}
                if self.split is not None and meta.get("split") != self.split:
                    continue
                task = row.get("task") or ""
                if self.per_task is not None and counts[task] >= self.per_task:
                    continue
                try:
                    asked = sample_request(row, system="plain", where=shard.name)
                except ValueError:
                    continue  # unreadable rows are for `vst data verify` to report
                if asked.reward.get("mode") == "caption":
                    continue
                counts[task] += 1
                found += 1
                yield BenchItem(
                    asked.id,
                    asked.request,
                    asked.reward,
                    {"task": asked.task, "scenario": asked.scenario},
                )
        if not found:
            which = f"split {self.split!r}" if self.split else "any split"
            raise BenchmarkDataError(f"{data_root}: no checkable samples of {which}")

    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        reward = compute_reward(reply if isinstance(reply, str) else "", item.truth)
        scores = {"official": reward["accuracy"], "format": reward["format"]}
        return JudgedItem(item.id, item.fields, item.truth, final_answer(reply or ""), scores)

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        by_task: dict[str, list[float]] = defaultdict(list)
        by_scenario: dict[str, list[float]] = defaultdict(list)
        for j in judged:
            score = float(j.scores["official"] or 0.0)
            by_task[str(j.fields.get("task"))].append(score)
            by_scenario[str(j.fields.get("scenario"))].append(score)
        task_means = {t: _mean(v) for t, v in sorted(by_task.items())}
        official = _mean([v for v in task_means.values() if v is not None])
        micro = _mean([float(j.scores["official"] or 0.0) for j in judged])
        fmt = _mean([float(j.scores.get("format") or 0.0) for j in judged])
        return BenchScore(
            self.name,
            official,
            {"official": official, "micro": micro, "format": fmt},
            {
                "task": {k: v for k, v in task_means.items() if v is not None},
                "scenario": {k: _mean(v) for k, v in sorted(by_scenario.items()) if v},
            },
            len(judged),
            (f"split: {self.split or 'all'}",),
        )
