"""Training metrics: one JSON line per optimizer step and a PNG plot of the curves.

The trainer adds every micro-batch's loss and the collator's ``vst_stats`` to a
:class:`StepStats`; at the end of each optimizer step :class:`MetricsCallback` takes the sums
(added up over all processes) and appends a row to ``metrics.jsonl``:

* ``step`` (1-based optimizer step), ``epoch``;
* ``loss``: the step's token-mean cross-entropy over all its label tokens (all micro-batches,
  all processes);
* ``lr``: the learning rate each optimizer group used in this step (``{"vision": ..,
  "merger": .., "language": ..}``; frozen groups are absent);
* ``real_tokens``, ``total_tokens`` (real tokens plus padding), ``real_token_share``
  (their ratio), ``row_capacity`` (packed rows x ``max_length``) and ``row_fill`` (real tokens
  / row capacity: how full the packed sequences are), ``label_tokens``, ``samples``,
  ``skipped_too_long``;
* ``seconds`` (wall time since the previous step ended, data collation included) and
  ``tokens_per_s`` (real tokens / seconds).

On resume the rows after the checkpoint's step are dropped first, so the file always tells
one run's history. :func:`plot_metrics` draws loss, learning rates, tokens/s and real-token
share into ``metrics.png`` (at the end of training, and on request).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

__all__ = [
    "STAT_KEYS",
    "MetricsCallback",
    "StepStats",
    "keep_rows_until",
    "plot_metrics",
    "read_metrics",
]

STAT_KEYS = (
    "real_tokens",
    "total_tokens",
    "row_capacity",
    "label_tokens",
    "samples",
    "skipped_too_long",
)
"""The collator's ``vst_stats`` counters (summed per step)."""


class StepStats:
    """Sums of one optimizer step on this process: the loss contributions and the counters."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.loss = 0.0
        self.counts = dict.fromkeys(STAT_KEYS, 0)

    def add(self, stats: dict[str, Any] | None, loss: float) -> None:
        """Add one micro-batch: its ``vst_stats`` (may be None) and its loss contribution."""
        self.loss += float(loss)
        for key in STAT_KEYS:
            value = (stats or {}).get(key, 0)
            self.counts[key] += int(value.item() if hasattr(value, "item") else value)

    def values(self) -> list[float]:
        """``[loss, *counts]`` in :data:`STAT_KEYS` order (for a cross-process sum)."""
        return [self.loss, *(float(self.counts[k]) for k in STAT_KEYS)]


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (empty if the file does not exist)."""
    p = Path(path)
    if not p.is_file():
        return []
    return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines() if line]


def keep_rows_until(path: str | Path, step: int) -> None:
    """Rewrite a ``metrics.jsonl`` with only its rows up to ``step`` (a resumed run continues
    one history); creates the folder and an empty file when there is none."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    kept = [r for r in read_metrics(p) if r["step"] <= step]
    p.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept), encoding="utf-8")


class MetricsCallback(TrainerCallback):
    """Writes ``metrics.jsonl`` (and ``metrics.png`` at the end) into ``out_dir``. ``collect``
    returns the step's summed ``[loss, *counts]`` over all processes and resets the step (it
    is called on every process; only ``state.is_world_process_zero`` writes)."""

    def __init__(self, out_dir: str | Path, collect: Callable[[], list[float]]) -> None:
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / "metrics.jsonl"
        self.png = self.out_dir / "metrics.png"
        self._collect = collect
        self._lrs: dict[str, float] = {}
        self._last = time.perf_counter()

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            keep_rows_until(self.jsonl, state.global_step)
        self._last = time.perf_counter()

    def on_pre_optimizer_step(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        optimizer = kwargs.get("optimizer")
        groups = getattr(optimizer, "param_groups", None) or []
        self._lrs = {
            str(g.get("name", i)): float(g["lr"]) for i, g in enumerate(groups) if g.get("params")
        }

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        loss, *counts = self._collect()
        now = time.perf_counter()
        seconds, self._last = now - self._last, now
        if not state.is_world_process_zero:
            return
        c = dict(zip(STAT_KEYS, (int(v) for v in counts), strict=True))
        row = {
            "step": state.global_step,
            "epoch": state.epoch,
            "loss": loss,
            "lr": self._lrs,
            **c,
            "real_token_share": c["real_tokens"] / c["total_tokens"] if c["total_tokens"] else None,
            "row_fill": c["real_tokens"] / c["row_capacity"] if c["row_capacity"] else None,
            "seconds": seconds,
            "tokens_per_s": c["real_tokens"] / seconds if seconds > 0 else None,
        }
        with self.jsonl.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, sort_keys=True) + "\n")

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            plot_metrics(self.jsonl, self.png)


def plot_metrics(jsonl: str | Path, png: str | Path) -> Path | None:
    """Draw loss, learning rate per group, tokens/s and real-token share per step from
    ``jsonl`` into ``png``; None (no file) when there are no rows."""
    rows = read_metrics(jsonl)
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [r["step"] for r in rows]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), constrained_layout=True)
    ax = axes[0][0]
    ax.plot(steps, [r["loss"] for r in rows], color="tab:blue")
    ax.set_title("loss (token mean)")
    ax = axes[0][1]
    styles = {"vision": "-", "merger": "--", "language": "-"}  # vision and merger coincide
    for name in sorted({n for r in rows for n in r["lr"]}):
        ax.plot(steps, [r["lr"].get(name) for r in rows], styles.get(name, "-"), label=name)
    ax.set_title("learning rate per group")
    ax.legend()
    ax = axes[1][0]
    ax.plot(steps, [r["tokens_per_s"] for r in rows], color="tab:green")
    ax.set_title("real tokens / s")
    ax = axes[1][1]
    ax.plot(steps, [r["real_token_share"] for r in rows], color="tab:purple", label="of batch")
    ax.plot(steps, [r.get("row_fill") for r in rows], color="tab:orange", label="of max_length")
    ax.set_ylim(0, 1.05)
    ax.set_title("real-token share")
    ax.legend()
    for ax in axes.flat:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    out = Path(png)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
