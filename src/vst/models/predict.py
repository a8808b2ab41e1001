"""``vst predict``: run a model on a vst dataset and write the predictions JSONL with the reward of
every answer, plus a per-task accuracy report.

:func:`run_predict` plans the samples (shards in name order, rows in file order; optional task
and split filters; ``limit`` keeps the first N), skips those whose lines are already in the
predictions file, sends the rest to the backend in chunks (a chunk's lines are appended and
fsync'd once it is answered), and at the end sorts the file into plan order and writes
``FILE.report.json`` and ``FILE.report.md`` next to it. A killed run loses at most the chunk in
flight; the next run sends only what is missing and ends with the same bytes.

* A row that cannot become a request (:func:`vst.models.samples.sample_request`) is *skipped*:
  reported with its id, shard and reason, never sent.
* A request the backend fails for good is *failed*: counted, listed in the report, not
  written, and sent again by the next run.
* Every existing line must come from the same dataset name, model, sampling and system prompt
  (a :class:`PredictError` otherwise: write another model's predictions to another file); lines
  of samples outside this run's plan (another ``--task`` or ``--limit``) are kept, after the
  planned ones.
"""

from __future__ import annotations

import fnmatch
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.engine.sample import canonical_json
from vst.engine.writer import iter_rows, list_shards
from vst.models.backends.base import Backend, Completion, Sampling
from vst.models.predictions import PredictionStore
from vst.models.samples import SampleRequest, sample_request
from vst.rewards import compute_reward
from vst.rewards.parsing import final_answer, split_think

__all__ = [
    "PlanItem",
    "PredictError",
    "PredictReport",
    "dataset_name",
    "plan_samples",
    "report_paths",
    "run_predict",
]

CHUNK_SIZE = 32
"""Requests per ``generate`` call (and per fsync'd append)."""
CHUNK_PICTURES = 256
"""A chunk also ends once its requests hold this many pictures (images + video frames)."""


class PredictError(Exception):
    """The run cannot start (bad data folder, filter or predictions file): one line."""


@dataclass(frozen=True)
class PlanItem:
    """One planned sample: its shard, row number in the shard, id and task."""

    shard: Path
    row: int
    id: str
    task: str


@dataclass
class PredictReport:
    """What a run did. ``per_task`` maps each task (and ``"all"``) to ``{"samples", "n"
    (prediction lines), "accuracy" (mean over checkable lines, None without any), "format",
    "failed", "skipped"}``; ``failed`` / ``skipped`` list ``{"id", "task", "error"}`` (skips also
    name their ``shard``). ``written`` / ``reused`` count this run's new lines and the lines it
    found."""

    out: Path
    dataset: str
    model: str
    sampling: dict[str, Any]
    system: str | None
    samples: int = 0
    written: int = 0
    reused: int = 0
    dropped: int = 0
    truncated: bool = False
    per_task: dict[str, dict[str, Any]] = field(default_factory=dict)
    failed: list[dict[str, str]] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The report's content (what ``FILE.report.json`` holds): a function of the final
        predictions and this run's failures and skips only, so a resumed run reports as an
        uninterrupted one."""
        return {
            "dataset": self.dataset,
            "model": self.model,
            "sampling": self.sampling,
            "system": self.system,
            "predictions": self.out.name,
            "samples": self.samples,
            "per_task": self.per_task,
            "failed": self.failed,
            "skipped": self.skipped,
        }


def report_paths(out: str | Path) -> tuple[Path, Path]:
    """``(FILE.report.json, FILE.report.md)`` of predictions file ``out``."""
    out = Path(out)
    return out.with_name(out.name + ".report.json"), out.with_name(out.name + ".report.md")


def dataset_name(data: str | Path) -> str:
    """The dataset's name in prediction lines: its folder's name (the run folder's name when
    ``data`` is an engine run's ``data/`` folder)."""
    root = Path(data).resolve()
    return root.parent.name if root.name == "data" and root.parent.name else root.name


def _one_line(exc: BaseException) -> str:
    return _clip(" ".join(str(exc).split()) or type(exc).__name__)


def _clip(text: str, limit: int = 500) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _matches(name: str, patterns: Sequence[str]) -> bool:
    return any(fnmatch.fnmatchcase(name, p) for p in patterns)


def plan_samples(
    data: str | Path,
    tasks: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    limit: int | None = None,
    per_task: int | None = None,
) -> tuple[list[PlanItem], list[dict[str, str]]]:
    """The samples a run covers, in a fixed order (shards by name, rows in file order), and the
    rows skipped while planning (unreadable shard, no id, duplicate id, unreadable meta with a
    split filter). ``tasks`` are names or globs, ``splits`` match ``meta["split"]``; ``limit``
    keeps the first N, ``per_task`` the first N of each task. Raises :class:`PredictError`
    when there is nothing to plan from."""
    folder = Path(data)
    if not folder.is_dir():
        raise PredictError(f"--data: {folder} is not a folder")
    shards = list_shards(folder)
    if not shards:
        raise PredictError(f"--data: no shards (shard-*.parquet) in {folder} or {folder / 'data'}")
    if limit is not None and limit < 0:
        raise PredictError(f"--limit must be >= 0, got {limit}")
    if per_task is not None and per_task < 0:
        raise PredictError(f"--per-task must be >= 0, got {per_task}")
    task_counts: dict[str, int] = {}
    columns = ["id", "task", "meta"] if splits else ["id", "task"]
    plan: list[PlanItem] = []
    skipped: list[dict[str, str]] = []
    seen: dict[str, str] = {}
    tasks_seen: set[str] = set()
    for shard in shards:
        if limit is not None and len(plan) >= limit:
            break
        try:
            rows = list(iter_rows(shard, columns))
        except Exception as exc:  # a damaged shard is skipped whole, and said so
            skipped.append(
                {
                    "id": "",
                    "task": "",
                    "shard": shard.name,
                    "error": f"unreadable: {_one_line(exc)}",
                }
            )
            continue
        for r, row in enumerate(rows):
            if limit is not None and len(plan) >= limit:
                break
            task, sid = row.get("task"), row.get("id")
            task = task if isinstance(task, str) else ""
            tasks_seen.add(task)
            if tasks and not _matches(task, tasks):
                continue
            if per_task is not None and task_counts.get(task, 0) >= per_task:
                continue
            if not isinstance(sid, str) or not sid:
                skipped.append(
                    {"id": "", "task": task, "shard": shard.name, "error": f"row {r} has no id"}
                )
                continue
            if splits:
                try:
                    meta = json.loads(row.get("meta") or "{}")
                except (ValueError, TypeError, RecursionError):
                    meta = None
                if not isinstance(meta, dict):
                    skipped.append(
                        {"id": sid, "task": task, "shard": shard.name, "error": "meta unreadable"}
                    )
                    continue
                if meta.get("split") not in splits:
                    continue
            if sid in seen:
                skipped.append(
                    {
                        "id": sid,
                        "task": task,
                        "shard": shard.name,
                        "error": f"duplicate id (first in {seen[sid]})",
                    }
                )
                continue
            seen[sid] = shard.name
            task_counts[task] = task_counts.get(task, 0) + 1
            plan.append(PlanItem(shard, r, sid, task))
    if tasks and not any(_matches(t, tasks) for t in tasks_seen) and tasks_seen:
        raise PredictError(
            f"--task {', '.join(tasks)}: no such task in {folder} "
            f"(tasks: {', '.join(sorted(t for t in tasks_seen if t))})"
        )
    return plan, skipped


def _built(
    items: Sequence[PlanItem], system: str | None
) -> Iterator[SampleRequest | tuple[PlanItem, str]]:
    """Each item as a request, or ``(item, reason)`` when its row is bad, in item order."""
    by_shard: dict[Path, dict[int, PlanItem]] = {}
    for item in items:
        by_shard.setdefault(item.shard, {})[item.row] = item
    for shard, wanted in by_shard.items():
        last = max(wanted)
        done: set[int] = set()
        try:
            for r, row in enumerate(iter_rows(shard)):
                if r > last:
                    break
                item = wanted.get(r)
                if item is None:
                    continue
                done.add(r)
                if row.get("id") != item.id:
                    yield item, f"{shard.name}: row {r} changed since planning"
                    continue
                try:
                    yield sample_request(row, system, where=shard.name)
                except ValueError as exc:
                    yield item, _one_line(exc)
        except Exception as exc:  # damaged row groups: the rest of the shard is skipped
            reason = f"{shard.name}: unreadable ({_one_line(exc)})"
            for r in sorted(set(wanted) - done):
                yield wanted[r], reason


def _chunks(
    built: Iterator[SampleRequest | tuple[PlanItem, str]],
    on_skip: Callable[[PlanItem, str], None],
    size: int,
    pictures: int,
) -> Iterator[list[SampleRequest]]:
    chunk: list[SampleRequest] = []
    held = 0
    for entry in built:
        if isinstance(entry, tuple):
            on_skip(*entry)
            continue
        chunk.append(entry)
        held += len(entry.request.images) + sum(len(v.frames) for v in entry.request.videos)
        if len(chunk) >= size or held >= pictures:
            yield chunk
            chunk, held = [], 0
    if chunk:
        yield chunk


def _records(
    item: SampleRequest, completion: Completion, common: dict[str, Any]
) -> list[dict[str, Any]]:
    out = []
    for index, choice in enumerate(completion.choices):
        text = choice.text if isinstance(choice.text, str) else ""
        out.append(
            {
                **common,
                "id": item.id,
                "task": item.task,
                "index": index,
                "request": item.request.fingerprint(),
                "text": text,
                "answer": final_answer(split_think(text).answer),
                "reward": compute_reward(text, item.reward),
                "reference": item.answer,
                "finish_reason": choice.finish_reason,
                "prompt_tokens": int(completion.prompt_tokens),
                "completion_tokens": int(choice.completion_tokens),
            }
        )
    return out


def _check_compatible(store: PredictionStore, common: dict[str, Any]) -> None:
    for record in store.records.values():
        for key, want in common.items():
            if record.get(key) != want:
                raise PredictError(
                    f"{store.path} holds predictions with another {key} "
                    f"({canonical_json(record.get(key))}, this run: {canonical_json(want)}); "
                    "write to another --out or remove the file"
                )


def _per_task(
    plan: Sequence[PlanItem],
    records: dict[tuple[str, int], dict[str, Any]],
    n: int,
    failed: Sequence[dict[str, str]],
    skipped: Sequence[dict[str, str]],
) -> dict[str, dict[str, Any]]:
    stats: dict[str, dict[str, Any]] = {}

    def entry(task: str) -> dict[str, Any]:
        return stats.setdefault(
            task, {"samples": 0, "n": 0, "acc": [], "fmt": [], "failed": 0, "skipped": 0}
        )

    for item in plan:
        for key in ("all", item.task):
            entry(key)["samples"] += 1
        for index in range(n):
            record = records.get((item.id, index))
            if record is None:
                continue
            for key in ("all", item.task):
                e = entry(key)
                e["n"] += 1
                e["fmt"].append(float(record["reward"]["format"]))
                if record["reward"].get("checkable", True):
                    e["acc"].append(float(record["reward"]["accuracy"]))
    for kind, rows in (("failed", failed), ("skipped", skipped)):
        for row in rows:
            for key in ("all", row["task"] or "?"):
                entry(key)[kind] += 1
    out = {}
    for task in sorted(stats, key=lambda t: (t == "all", t)):
        e = stats[task]
        out[task] = {
            "samples": e["samples"],
            "n": e["n"],
            "accuracy": sum(e["acc"]) / len(e["acc"]) if e["acc"] else None,
            "format": sum(e["fmt"]) / len(e["fmt"]) if e["fmt"] else None,
            "failed": e["failed"],
            "skipped": e["skipped"],
        }
    return out


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def report_markdown(report: PredictReport) -> str:
    """The report as Markdown: the run's settings, the per-task table, failures and skips."""
    lines = [
        f"# Predictions of {report.model} on {report.dataset}",
        "",
        f"- predictions: `{report.out.name}` ({report.per_task.get('all', {}).get('n', 0)} lines, "
        f"{report.samples} samples planned)",
        f"- sampling: `{canonical_json(report.sampling)}`",
        f"- system prompt: {report.system or 'as in the samples'}",
        "",
        "| task | samples | n | accuracy | format | failed | skipped |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for task, s in report.per_task.items():
        lines.append(
            f"| {task} | {s['samples']} | {s['n']} | {_fmt(s['accuracy'])} | "
            f"{_fmt(s['format'])} | {s['failed']} | {s['skipped']} |"
        )
    for kind, rows in (("Failed requests", report.failed), ("Skipped samples", report.skipped)):
        if rows:
            lines += ["", f"## {kind} ({len(rows)})", ""]
            lines += [f"- `{r['id'] or '-'}` ({r['task'] or '?'}): {r['error']}" for r in rows]
    return "\n".join(lines) + "\n"


def run_predict(
    backend: Backend,
    data: str | Path,
    out: str | Path,
    *,
    tasks: Sequence[str] | None = None,
    splits: Sequence[str] | None = None,
    limit: int | None = None,
    per_task: int | None = None,
    system: str | None = None,
    sampling: Sampling | None = None,
    chunk_size: int = CHUNK_SIZE,
    chunk_pictures: int = CHUNK_PICTURES,
    progress: Callable[[int, int], None] | None = None,
) -> PredictReport:
    """Predict every planned sample of dataset ``data`` with ``backend`` into the JSONL ``out``
    (resuming what is there) and write its report files; see the module docstring.
    ``progress(done, total)`` is called as requests finish. Raises :class:`PredictError` for
    bad input; a ``KeyboardInterrupt`` leaves every answered chunk on disk."""
    sampling = sampling or Sampling()
    if chunk_size < 1 or chunk_pictures < 1:
        raise PredictError("chunk_size and chunk_pictures must be >= 1")
    plan, skipped = plan_samples(data, tasks, splits, limit, per_task)
    common = json.loads(
        canonical_json(
            {
                "dataset": dataset_name(data),
                "model": backend.model_id,
                "sampling": sampling.key(),
                "system": system,
            }
        )
    )
    report = PredictReport(
        Path(out), common["dataset"], common["model"], common["sampling"], system, len(plan)
    )
    try:
        store = PredictionStore.open(out)
    except OSError as exc:
        raise PredictError(f"--out: cannot open {out}: {_one_line(exc)}") from None
    except RuntimeError as exc:  # locked by another run
        raise PredictError(str(exc)) from None
    with store:
        _check_compatible(store, common)
        report.reused, report.dropped, report.truncated = (
            len(store.records),
            store.dropped,
            store.truncated,
        )
        n = sampling.n
        pending = [
            item for item in plan if any((item.id, i) not in store.records for i in range(n))
        ]
        planned = {item.id: item for item in pending}
        done = 0

        def advance(k: int) -> None:
            nonlocal done
            done += k
            if progress is not None:
                progress(done, len(pending))

        def on_skip(item: PlanItem, reason: str) -> None:
            skipped.append(
                {"id": item.id, "task": item.task, "shard": item.shard.name, "error": reason}
            )
            advance(1)

        def on_skip_scored(item: SampleRequest, reason: str) -> None:
            on_skip(planned[item.id], f"reward: {reason}")
            advance(-1)  # it was counted as answered already

        advance(0)
        for chunk in _chunks(_built(pending, system), on_skip, chunk_size, chunk_pictures):
            before = done
            completions = backend.generate([s.request for s in chunk], sampling, progress=advance)
            if done - before < len(chunk):  # a backend that reports no progress
                advance(len(chunk) - (done - before))
            if len(completions) != len(chunk):
                reason = f"backend returned {len(completions)} answers for {len(chunk)} requests"
                completions = [Completion.failed(reason)] * len(chunk)
            records: list[dict[str, Any]] = []
            for item, completion in zip(chunk, completions, strict=True):
                if completion.ok and len(completion.choices) == n:
                    try:
                        records += _records(item, completion, common)
                    except ValueError as exc:  # a ground truth its reward mode rejects
                        on_skip_scored(item, _one_line(exc))
                    continue
                error = completion.error or (
                    f"backend returned {len(completion.choices)} of {n} choices"
                )
                error = _clip(" ".join(str(error).split()))  # untrusted: one bounded line
                report.failed.append({"id": item.id, "task": item.task, "error": error})
            report.written += store.append(records)
        position = {item.id: i for i, item in enumerate(plan)}
        store.finish(
            lambda key: (
                (0, position[key[0]], "", key[1]) if key[0] in position else (1, 0, key[0], key[1])
            )
        )
        report.skipped = skipped
        report.per_task = _per_task(plan, store.records, n, report.failed, skipped)
    json_path, md_path = report_paths(out)
    atomic_write_bytes(json_path, (canonical_json(report.summary()) + "\n").encode())
    atomic_write_bytes(md_path, report_markdown(report).encode())
    return report
