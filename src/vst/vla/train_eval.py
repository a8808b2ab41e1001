"""Scoring action tokens during VLA training: action-token accuracy and the L1 of the decoded
actions, teacher-forced, on a held-out split and on training samples.

For every example the model reads the prompt and the true action tokens (one forward pass, no
generation) and predicts each action token from the ones before it, as greedy decoding would
when its earlier tokens were right. At each action position:

* ``token_accuracy``: the prediction restricted to the action ids (as the policy decodes) is
  the true bin;
* ``unconstrained_token_accuracy``: the arg-max over the whole vocabulary is the true token
  (a model that still prefers text there scores low here first);
* ``l1_normalised``: mean |decoded bin centre - true normalised action| over dimensions and
  samples (actions in [-1, 1]); ``l1_per_dim`` the same per dimension;
* ``l1``: the same in the environment's units after un-normalising both with the run's
  statistics (None without them).

Chance is 1 / bins (1/256) for the token accuracies. Rows go to ``vla_eval.jsonl`` in the run
folder (``step``, ``split`` = ``held_out`` | ``train``, ``samples`` and the values above) and
``vla_eval.png`` is drawn at the end. Scoring runs on process 0 only, under ``no_grad``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import TrainerCallback

from vst.train.encode import IGNORE_INDEX
from vst.train.examples import TrainExample
from vst.train.metrics import keep_rows_until, read_metrics
from vst.vla.action_tokens import ActionTokenizer
from vst.vla.norm_stats import NormStats, unnormalize

__all__ = ["ActionEvalCallback", "plot_vla_eval", "score_actions"]

EVAL_FILE = "vla_eval.jsonl"
EVAL_PLOT = "vla_eval.png"


def score_actions(
    model: Any,
    collator: Any,
    examples: Sequence[TrainExample],
    tokens: ActionTokenizer,
    stats: NormStats | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """The scores of the module docstring for ``examples`` (their ``meta["action"]``
    normalised and, with ``stats``, ``meta["action_unnorm"]``) with ``model``; ``collator``
    encodes unpacked, padded batches (labels mark the action tokens); ``tokens`` maps bins to
    the model's ids."""
    ids = torch.as_tensor(tokens.allowed_ids(), dtype=torch.long)
    lookup = {int(t): b for b, t in enumerate(ids.tolist())}
    right = free_right = count = 0
    pred_rows, true_rows, raw_rows = [], [], []
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        for start in range(0, len(examples), batch_size):
            chunk = list(examples[start : start + batch_size])
            batch = collator(chunk)
            labels = batch.pop("labels")
            batch.pop("vst_stats", None)
            inputs = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
            with torch.no_grad():
                logits = model(**inputs).logits[:, :-1].float().cpu()
            target = labels[:, 1:]
            for r in range(target.shape[0]):
                pos = [
                    p
                    for p in range(target.shape[1])
                    if int(target[r, p]) != IGNORE_INDEX and int(target[r, p]) in lookup
                ]
                row_logits = logits[r, pos]
                truth = target[r, pos]
                free_right += int((row_logits.argmax(-1) == truth).sum())
                best = ids[row_logits[:, ids].argmax(-1)]
                right += int((best == truth).sum())
                count += len(pos)
                bins = np.array([lookup[int(t)] for t in best.tolist()])
                pred_rows.append(tokens.centres[bins])
                meta = chunk[r].meta
                true_rows.append(np.asarray(meta["action"], dtype=np.float64))
                if stats is not None and meta.get("action_unnorm") is not None:
                    raw_rows.append(np.asarray(meta["action_unnorm"], dtype=np.float64))
    finally:
        model.train(was_training)
    scores: dict[str, Any] = {"samples": len(pred_rows), "token_accuracy": None}
    if not pred_rows:
        return scores
    pred, true = np.stack(pred_rows), np.stack(true_rows)
    scores.update(
        token_accuracy=right / count if count else None,
        unconstrained_token_accuracy=free_right / count if count else None,
        l1_normalised=float(np.abs(pred - true).mean()),
        l1_per_dim=np.abs(pred - true).mean(axis=0).round(6).tolist(),
        l1=None,
    )
    if stats is not None and len(raw_rows) == len(pred_rows):
        back = np.stack([unnormalize(p, stats) for p in pred])
        scores["l1"] = float(np.abs(back - np.stack(raw_rows)).mean())
    return scores


class ActionEvalCallback(TrainerCallback):
    """Scores ``splits`` (name -> examples) every ``every`` optimizer steps and at the end of
    training into ``out_dir``/vla_eval.jsonl (see the module docstring)."""

    def __init__(
        self,
        out_dir: str | Path,
        splits: dict[str, Sequence[TrainExample]],
        collator: Any,
        tokens: ActionTokenizer,
        stats: NormStats | None,
        every: int,
        batch_size: int = 8,
    ) -> None:
        self.out_dir = Path(out_dir)
        self.jsonl = self.out_dir / EVAL_FILE
        self.png = self.out_dir / EVAL_PLOT
        self.splits = {k: v for k, v in splits.items() if len(v)}
        self.collator = collator
        self.tokens = tokens
        self.stats = stats
        self.every = every
        self.batch_size = batch_size
        self.last: dict[str, dict[str, Any]] = {}
        self._done_step = -1

    def evaluate(self, model: Any, step: int) -> None:
        """Score every split with ``model`` and append the rows for ``step``."""
        rows = []
        for name, examples in self.splits.items():
            scores = score_actions(
                model, self.collator, examples, self.tokens, self.stats, self.batch_size
            )
            self.last[name] = scores
            rows.append({"step": step, "split": name, **scores})
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with self.jsonl.open("a", encoding="utf-8") as f:
            f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in rows)
        self._done_step = step

    def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero:
            keep_rows_until(self.jsonl, state.global_step)

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if state.is_world_process_zero and state.global_step % self.every == 0:
            self.evaluate(kwargs["model"], state.global_step)

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if not state.is_world_process_zero:
            return
        if self._done_step != state.global_step:
            self.evaluate(kwargs["model"], state.global_step)
        plot_vla_eval(self.jsonl, self.png)


def plot_vla_eval(jsonl: str | Path, png: str | Path) -> Path | None:
    """Token accuracy and L1 per step and split from ``jsonl`` into ``png`` (None: no rows)."""
    rows = [r for r in read_metrics(jsonl) if r.get("token_accuracy") is not None]
    if not rows:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for split in sorted({r["split"] for r in rows}):
        mine = [r for r in rows if r["split"] == split]
        steps = [r["step"] for r in mine]
        axes[0].plot(steps, [r["token_accuracy"] for r in mine], marker="o", label=split)
        axes[1].plot(steps, [r["l1_normalised"] for r in mine], marker="o", label=split)
    axes[0].set_title("action-token accuracy (constrained, teacher-forced)")
    axes[0].set_ylim(0, 1.02)
    axes[1].set_title("L1 of decoded actions (normalised units)")
    for ax in axes:
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
        ax.legend()
    out = Path(png)
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out
