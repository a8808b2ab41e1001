"""Running benchmarks through a backend: predictions files, resume, scores (``vst eval run``).

For each benchmark, :func:`run_benchmark` reads its items (from ``data_root/<name>`` when that
folder exists, else from ``data_root`` itself), asks the backend for the items not yet in
``<run>/<name>.predictions.jsonl`` (in chunks; each answered chunk is appended and fsync'd),
judges every reply under every rule the benchmark knows, rewrites the file in item order, and
aggregates the judged items into ``<run>/<name>.score.json``. A killed run, run again, asks
only what is missing and ends with the same bytes; a backend behind a disk cache makes a rerun
free. Failed requests are not written: they are listed in the score file and asked again by
the next run.

A predictions line is the canonical JSON of ``{"dataset": benchmark, "id", "index": 0,
"task": the item's category or task, "request": Request.fingerprint(), "model", "sampling",
"text", "parsed", "scores": {rule: score}, "fields", "truth", "finish_reason", "prompt_tokens",
"completion_tokens"}`` (DESIGN.md "Predictions").
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.engine.sample import canonical_json
from vst.eval.benchmarks.base import BenchItem, Benchmark, BenchScore, JudgedItem
from vst.models.backends.base import Backend
from vst.models.predictions import PredictionStore

__all__ = [
    "BenchRun",
    "EvalError",
    "benchmark_root",
    "judged_from_records",
    "predictions_path",
    "run_benchmark",
    "score_path",
    "valid_eval_record",
]

CHUNK = 32
"""Requests per backend call (each answered chunk is on disk before the next is asked)."""


class EvalError(Exception):
    """An evaluation cannot start or go on (bad data root, another model's predictions file):
    one line."""


def predictions_path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.predictions.jsonl"


def score_path(run_dir: Path, name: str) -> Path:
    return Path(run_dir) / f"{name}.score.json"


def benchmark_root(data_root: Path, name: str) -> Path:
    """``data_root/name`` when that folder exists, else ``data_root``."""
    sub = Path(data_root) / name
    return sub if sub.is_dir() else Path(data_root)


def _task_of(item: BenchItem) -> str:
    for key in ("category", "task", "question_type", "subtask"):
        value = item.fields.get(key)
        if isinstance(value, str):
            return value
    return ""


def _record(bench: Benchmark, item: BenchItem, common: dict, completion: Any) -> dict:
    judged = bench.judge(item, completion.text)
    choice = completion.choices[0]
    return json.loads(
        canonical_json(
            {
                **common,
                "id": item.id,
                "index": 0,
                "task": _task_of(item),
                "request": item.request.fingerprint(),
                "text": completion.text,
                "parsed": judged.parsed,
                "scores": dict(judged.scores),
                "fields": dict(item.fields),
                "truth": item.truth,
                "finish_reason": choice.finish_reason,
                "prompt_tokens": completion.prompt_tokens,
                "completion_tokens": completion.completion_tokens,
            }
        )
    )


def valid_eval_record(record: Any) -> bool:
    """True if a parsed predictions line has what the harness reads back (id, index, model,
    text, and scores as numbers or None)."""
    if not isinstance(record, dict):
        return False
    if not all(isinstance(record.get(k), str) for k in ("dataset", "id", "model", "text")):
        return False
    index, scores = record.get("index"), record.get("scores")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return False
    return isinstance(scores, dict) and all(
        v is None or (isinstance(v, int | float) and not isinstance(v, bool))
        for v in scores.values()
    )


def judged_from_records(records: Sequence[dict[str, Any]]) -> list[JudgedItem]:
    """Predictions lines back as :class:`JudgedItem` s (scores as written)."""
    return [
        JudgedItem(r["id"], r.get("fields") or {}, r.get("truth"), r.get("parsed"), r["scores"])
        for r in records
    ]


@dataclass
class BenchRun:
    """One benchmark of a run: the score, items asked now / found on disk, failures."""

    name: str
    score: BenchScore
    items: int
    asked: int = 0
    reused: int = 0
    failed: list[dict[str, str]] = field(default_factory=list)


def _write_score(
    path: Path, run: BenchRun, model: str, describe: dict, extra: dict | None = None
) -> None:
    payload = {
        **(extra or {}),
        "benchmark": run.name,
        "model": model,
        "items": run.items,
        "failed": run.failed,
        "protocol": describe,
        **{k: v for k, v in asdict(run.score).items() if k != "benchmark"},
    }
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())


def run_benchmark(
    bench: Benchmark,
    backend: Backend,
    data_root: Path,
    run_dir: Path,
    *,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
    chunk: int = CHUNK,
    model_dir: Path | None = None,
) -> BenchRun:
    """Run ``bench`` on ``backend`` into ``run_dir`` (see the module docstring). With
    ``model_dir`` (the model as a folder) holding vst's training-data manifest, the score file
    gets ``training_overlap`` (:func:`vst.eval.leakage.training_overlap`)."""
    items = list(bench.read(benchmark_root(data_root, bench.name)))
    if limit is not None:
        items = items[:limit]
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise EvalError(f"{bench.name}: item id {item.id!r} repeats")
        seen.add(item.id)
    common = json.loads(
        canonical_json(
            {"dataset": bench.name, "model": backend.model_id, "sampling": bench.sampling.key()}
        )
    )
    order = {item.id: i for i, item in enumerate(items)}
    run = BenchRun(bench.name, BenchScore(bench.name, None, {}), len(items))
    path = predictions_path(run_dir, bench.name)
    with PredictionStore.open(path, valid_eval_record) as store:
        for record in store.records.values():
            if (
                record.get("model") != common["model"]
                or record.get("sampling") != common["sampling"]
            ):
                raise EvalError(
                    f"{path} holds predictions of another model or sampling "
                    f"({record.get('model')}); use another run folder"
                )
        pending = [it for it in items if (it.id, 0) not in store.records]
        run.reused = len(items) - len(pending)
        done = run.reused
        if progress is not None:
            progress(done, len(items))
        for start in range(0, len(pending), chunk):
            part = pending[start : start + chunk]
            requests = [
                it.request if it.request.id else dataclasses.replace(it.request, id=it.id)
                for it in part
            ]  # the id names the item in a backend's error messages
            completions = backend.generate(requests, bench.sampling)
            records = []
            for item, completion in zip(part, completions, strict=True):
                if not completion.ok:
                    run.failed.append({"id": item.id, "error": completion.error or "no answer"})
                    continue
                records.append(_record(bench, item, common, completion))
            run.asked += store.append(records)
            done += len(part)
            if progress is not None:
                progress(done, len(items))
        store.finish(order=lambda key: (order.get(key[0], len(order)), key))
        records = [store.records[(it.id, 0)] for it in items if (it.id, 0) in store.records]
    run.score = bench.aggregate(judged_from_records(records))
    extra = None
    if model_dir is not None and Path(model_dir).is_dir():
        from vst.eval.leakage import training_overlap

        overlap = training_overlap(model_dir, bench.name)
        extra = {"training_overlap": overlap} if overlap["manifest"] else None
    _write_score(score_path(run_dir, bench.name), run, common["model"], bench.describe(), extra)
    return run
