"""A predictions file (DESIGN.md "Predictions") read for the viewer: the JSONL of ``vst predict``
(:mod:`vst.models.predictions`: score = ``reward.overall``) or of the evaluation harness on
VST-P (:mod:`vst.eval.harness`: score = ``scores.official``, else the first rule's score).

Only what the viewer shows is kept per sample id: choice index 0 of each sample (``--n`` > 1
files show their first choice), the raw text, the parsed answer, the reward (``overall``,
``accuracy``, ``format``) and the model id; about 100-300 bytes a sample, so a 100,000-line file
stays small. A line that is not a prediction raises :class:`PredictionsError` naming the file
and the line number.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from vst.eval.harness import valid_eval_record
from vst.models.predictions import valid_record

__all__ = ["Prediction", "PredictionsError", "load_predictions"]


class PredictionsError(ValueError):
    """The predictions file cannot be read (missing, or a line is not a prediction)."""


@dataclass(frozen=True)
class Prediction:
    """One sample's prediction: ``score`` in 0..1 (see the module docstring); ``accuracy`` and
    ``format`` when the file records them."""

    text: str
    answer: str
    score: float
    accuracy: float | None
    format: float | None
    model: str


def _from_eval(record: dict) -> Prediction:
    scores = {k: v for k, v in record["scores"].items() if v is not None}
    score = scores.get("official", next((scores[k] for k in sorted(scores)), 0.0))
    parsed = record.get("parsed")
    return Prediction(
        text=record["text"],
        answer="" if parsed is None else str(parsed),
        score=float(score),
        accuracy=None,
        format=None if scores.get("format") is None else float(scores["format"]),
        model=record["model"],
    )


def load_predictions(path: str | Path) -> dict[str, Prediction]:
    """``{sample id: Prediction}`` of choice 0 of every sample in ``path`` (JSONL)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    out: dict[str, Prediction] = {}
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise PredictionsError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if valid_eval_record(record) and "reward" not in record:
                if record["index"] == 0:
                    out[record["id"]] = _from_eval(record)
                continue
            if not valid_record(record):
                raise PredictionsError(
                    f"{path}:{n}: not a prediction line (needs dataset, id, task, index, "
                    "request, model, text, sampling and reward.overall/accuracy/format, or "
                    "the harness's scores)"
                )
            if record["index"] != 0:
                continue
            reward = record["reward"]
            out[record["id"]] = Prediction(
                text=record["text"],
                answer=str(record.get("answer") or ""),
                score=float(reward["overall"]),
                accuracy=float(reward["accuracy"]),
                format=float(reward["format"]),
                model=record["model"],
            )
    return out
