"""GRPO metrics: what the rollouts scored, what the filter kept, one JSON line per logged step
and a PNG of the curves.

:class:`RolloutStats` sums, over every rollout round of the steps since the last log (all
processes merged), per task and per reward mode: accuracy and format (means over completions,
apart), completion lengths, the share of truncated completions, and the filter's counts: prompt
groups drawn, kept, dropped because all wrong (mean accuracy <= ``low``) or all right (>=
``high``), dropped per task, refill rounds and groups used unfiltered to fill a short batch. Its
:meth:`~RolloutStats.flush` gives flat ``vst/...`` keys that the trainer adds to TRL's logs.

:class:`GrpoMetricsCallback` appends each training log (TRL's keys: ``loss``, ``grad_norm``,
``learning_rate``, ``entropy``, ``clip_ratio/*``, ``completions/*``, ``reward`` ... and vst's) to
``metrics.jsonl`` with ``step`` and ``epoch``; on resume the rows after the checkpoint's step are
dropped first (from ``completions.jsonl`` too, when the run logs completions).
:func:`plot_grpo_metrics` draws ``metrics.png``: accuracy per task, format per task, the filter's
counts, completion length and truncation.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from transformers import TrainerCallback

from vst.train.metrics import keep_rows_until, read_metrics
from vst.train.rl_reward import Scored

__all__ = ["GrpoMetricsCallback", "RolloutStats", "plot_grpo_metrics"]

_SUMS = ("acc", "fmt", "n")


class RolloutStats:
    """Sums over rollouts since the last :meth:`flush` (module docstring)."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.by_task: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        self.by_mode: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        self.counts: dict[str, float] = defaultdict(float)
        self.dropped_by_task: dict[str, float] = defaultdict(float)
        self.length_max = 0.0

    def round_summary(
        self,
        scored: Sequence[Scored],
        num_generations: int,
        keep: np.ndarray | None,
        low: float,
        high: float,
    ) -> dict[str, Any]:
        """A plain-data summary of one rollout round on this process (for a cross-process
        merge with :meth:`merge`). ``keep``: the filter's group mask (None: no filter)."""
        by_task: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        by_mode: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0.0])
        for s in scored:
            for table, key in ((by_task, s.task), (by_mode, s.mode)):
                row = table[key]
                row[0] += s.accuracy
                row[1] += s.format
                row[2] += 1
        counts = {
            "completions": float(len(scored)),
            "length_sum": float(sum(s.length for s in scored)),
            "truncated": float(sum(s.truncated for s in scored)),
        }
        dropped: dict[str, float] = defaultdict(float)
        if keep is not None:
            groups = len(keep)
            counts["groups_drawn"] = float(groups)
            counts["groups_kept"] = float(np.sum(keep))
            counts["dropped_all_wrong"] = counts["dropped_all_right"] = 0.0
            for g in np.flatnonzero(~keep):
                members = scored[g * num_generations : (g + 1) * num_generations]
                mean = float(np.mean([s.accuracy for s in members]))
                counts["dropped_all_right" if mean >= high else "dropped_all_wrong"] += 1
                dropped[members[0].task] += 1
        return {
            "by_task": dict(by_task),
            "by_mode": dict(by_mode),
            "counts": counts,
            "dropped_by_task": dict(dropped),
            "length_max": float(max((s.length for s in scored), default=0)),
        }

    def merge(self, summary: dict[str, Any]) -> None:
        """Add a :meth:`round_summary` (of any process)."""
        for name in ("by_task", "by_mode"):
            table = getattr(self, name)
            for key, row in summary[name].items():
                for k in range(3):
                    table[key][k] += row[k]
        for key, value in summary["counts"].items():
            self.counts[key] += value
        for key, value in summary["dropped_by_task"].items():
            self.dropped_by_task[key] += value
        self.length_max = max(self.length_max, summary["length_max"])

    def add_count(self, key: str, value: float) -> None:
        """Add to a step counter (``refill_rounds``, ``underfilled_groups``, ...)."""
        self.counts[key] += value

    def flush(self) -> dict[str, float]:
        """The flat ``vst/...`` metrics since the last flush, then reset."""
        out: dict[str, float] = {}
        total = [0.0, 0.0, 0.0]
        for task, (acc, fmt, n) in sorted(self.by_task.items()):
            if n:
                out[f"vst/accuracy/{task}"] = acc / n
                out[f"vst/format/{task}"] = fmt / n
            total = [total[0] + acc, total[1] + fmt, total[2] + n]
        for mode, (acc, fmt, n) in sorted(self.by_mode.items()):
            if n:
                out[f"vst/accuracy_mode/{mode}"] = acc / n
                out[f"vst/format_mode/{mode}"] = fmt / n
        c = self.counts
        if total[2]:
            out["vst/accuracy"] = total[0] / total[2]
            out["vst/format"] = total[1] / total[2]
        if c.get("completions"):
            out["vst/completion_length"] = c["length_sum"] / c["completions"]
            out["vst/completion_length_max"] = self.length_max
            out["vst/truncated_share"] = c["truncated"] / c["completions"]
            out["vst/completions"] = c["completions"]
        for key in (
            "groups_drawn",
            "groups_kept",
            "dropped_all_wrong",
            "dropped_all_right",
            "refill_rounds",
            "underfilled_groups",
            "skipped_prompts",
        ):
            if key in c:
                out[f"vst/{key}"] = c[key]
        for task, n in sorted(self.dropped_by_task.items()):
            out[f"vst/dropped/{task}"] = n
        self.reset()
        return out


class GrpoMetricsCallback(TrainerCallback):
    """Appends every training log to ``out_dir/metrics.jsonl`` and draws ``metrics.png`` at
    the end (process 0 only)."""

    def __init__(self, out_dir: str | Path) -> None:
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / "metrics.jsonl"
        self.png = self.out_dir / "metrics.png"

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            keep_rows_until(self.jsonl, state.global_step)
            completions = self.out_dir / "completions.jsonl"
            if completions.is_file():  # a resumed run continues one history there too
                keep_rows_until(completions, state.global_step)

    def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return  # the final summary log (train_runtime, ...) has no loss
        row: dict[str, Any] = {"step": state.global_step, "epoch": state.epoch}
        for key, value in logs.items():
            if isinstance(value, int | float) and math.isfinite(value):
                row[key] = float(value)
        with self.jsonl.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            plot_grpo_metrics(self.jsonl, self.png)


def _series(rows: list[dict[str, Any]], prefix: str) -> dict[str, list[float | None]]:
    names = sorted({k[len(prefix) :] for r in rows for k in r if k.startswith(prefix)})
    return {n: [r.get(prefix + n) for r in rows] for n in names}


def plot_grpo_metrics(jsonl: str | Path, png: str | Path) -> Path | None:
    """Draw accuracy per task, format per task, the filter's group counts and completion
    length / truncated share over steps from ``jsonl`` into ``png``; None when empty."""
    rows = read_metrics(jsonl)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8), constrained_layout=True)
    for ax, prefix, title, overall in (
        (axes[0][0], "vst/accuracy/", "accuracy reward per task", "vst/accuracy"),
        (axes[0][1], "vst/format/", "format reward per task", "vst/format"),
    ):
        for name, values in _series(rows, prefix).items():
            ax.plot(steps, values, label=name, linewidth=1)
        ax.plot(steps, [r.get(overall) for r in rows], "k-", linewidth=2.5, label="all")
        ax.set_ylim(-0.02, 1.02)
        ax.set_title(title)
        ax.legend(fontsize=7, ncol=2)
    ax = axes[1][0]
    for key, label in (
        ("vst/groups_kept", "kept"),
        ("vst/dropped_all_wrong", "dropped: all wrong"),
        ("vst/dropped_all_right", "dropped: all right"),
        ("vst/underfilled_groups", "unfiltered fill"),
    ):
        if any(key in r for r in rows):
            ax.plot(steps, [r.get(key, 0) for r in rows], label=label)
    ax.set_title("prompt groups per step (online filter)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    ax = axes[1][1]
    ax.plot(steps, [r.get("vst/completion_length") for r in rows], label="mean length (tokens)")
    ax.set_title("completions")
    twin = ax.twinx()
    twin.plot(
        steps,
        [r.get("vst/truncated_share") for r in rows],
        color="tab:red",
        label="truncated share",
    )
    twin.set_ylim(-0.02, 1.02)
    ax.legend(loc="upper left", fontsize=8)
    twin.legend(loc="upper right", fontsize=8)
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    out = Path(png)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
