"""The pass@k difficulty filter (paper Sec. 2.2): answer each rule-checkable prompt k times and
keep the prompts the model gets sometimes right and sometimes wrong (``0 < rate < 1``).

* Prompts: the rows of a vst run or an RL set (:func:`vst.engine.writer.list_shards`) whose
  reward mode is not ``caption`` and that have no video; each is asked as GRPO asks it: the
  thinking system prompt first, except ``det3d`` rows (none).
* Sampling: one request per prompt with ``n = k`` choices (``Sampling`` from the caller, default
  temperature 1.0, ``seed`` 0; each choice's seed comes from the request: reproducible).
* Scoring: an answer is right when :func:`vst.rewards.compute_reward`'s accuracy is at least
  ``threshold`` (default 1.0: binary modes need the right answer, MRA ``numeric`` less than 5%
  error); ``det3d`` rows use ``det3d_threshold`` (default 0.5 of ``0.5 IoU + 0.5 F1``: the
  reference boxes themselves, rounded in the text, score about 0.93). ``rate = right / k``.
* A prompt whose request failed (or gave fewer than k answers) is neither kept nor dropped: it
  is counted as ``failed`` and asked again by the next run.
* Resumable: the backend is wrapped in a :class:`~vst.models.backends.CachedBackend` on
  ``<out>/cache`` (unless it is one already), so a rerun asks nothing it has an answer for.

Outputs in ``out``: ``data/shard-*.parquet`` (the kept rows, unchanged except ``meta["pass_k"]
= {"k", "correct", "rate"}``), ``pass_rates.jsonl`` (one line per scored prompt: id, task, mode,
k, correct, rate, mean accuracy), ``pass_rates.png`` (histogram of the number right out of k),
``report.md`` / ``report.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from itertools import islice
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.engine.sample import canonical_json
from vst.engine.writer import iter_rows, list_shards
from vst.models.backends import Backend, CachedBackend, Sampling, open_backend
from vst.models.samples import sample_request
from vst.reasoning.chunked import write_chunked
from vst.rewards import compute_reward, load_reward_specs

__all__ = ["PassKReport", "pass_rate_histogram", "run_pass_k"]


@dataclass
class PassKReport:
    """What :func:`run_pass_k` did: ``k``; prompts ``scored``, ``kept``, ``too_easy`` (k of k
    right), ``too_hard`` (none right), ``failed`` (request errors, retried next run),
    ``skipped`` by reason; ``histogram[j]`` = prompts with j right (j = 0..k); per-task counts;
    backend ``calls`` (requests sent, cache misses) and ``cached`` answers; the tokens of the
    answers this run paid for (cached ones are free) and their ``cost`` when prices were given;
    the files written."""

    out: Path
    k: int
    scored: int = 0
    kept: int = 0
    too_easy: int = 0
    too_hard: int = 0
    failed: list[str] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    histogram: list[int] = field(default_factory=list)
    per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    calls: int = 0
    cached: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    shards: list[Path] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "k": self.k,
            "scored": self.scored,
            "kept": self.kept,
            "too_easy": self.too_easy,
            "too_hard": self.too_hard,
            "failed": self.failed,
            "skipped": dict(sorted(self.skipped.items())),
            "histogram": self.histogram,
            "per_task": self.per_task,
            "calls": self.calls,
            "cached": self.cached,
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
            "cost": self.cost,
            "shards": [p.name for p in self.shards],
        }

    def to_markdown(self) -> str:
        lines = [
            f"# pass@{self.k} filter: {self.out}",
            "",
            f"{self.kept} kept (0 < rate < 1) of {self.scored} scored; {self.too_easy} always "
            f"right, {self.too_hard} never right, {len(self.failed)} failed (asked again next "
            f"run), {sum(self.skipped.values())} skipped.",
            f"Requests sent: {self.calls}; answered from the cache: {self.cached}; tokens: "
            f"{self.prompt_tokens} prompt, {self.completion_tokens} completion"
            + (f"; cost {self.cost:.4f}." if self.cost is not None else "."),
            "",
            "| right of k | prompts |",
            "|---:|---:|",
            *(f"| {j}/{self.k} | {n} |" for j, n in enumerate(self.histogram)),
            "",
            "| task | scored | kept | always right | never right |",
            "|---|---:|---:|---:|---:|",
        ]
        for task, c in sorted(self.per_task.items()):
            lines.append(
                f"| {task} | {c['scored']} | {c['kept']} | {c['too_easy']} | {c['too_hard']} |"
            )
        if self.skipped:
            lines += ["", "Skipped:", *(f"- {n} {r}" for r, n in sorted(self.skipped.items()))]
        if self.failed:
            lines += ["", "Failed:", *(f"- {x}" for x in self.failed[:20])]
        return "\n".join(lines) + "\n"


def pass_rate_histogram(counts: list[int], k: int, path: Path) -> None:
    """Bar chart of ``counts[j]`` = prompts with j of k right, saved as PNG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    try:
        xs = [j / k for j in range(k + 1)]
        colors = ["#bbbbbb" if j in (0, k) else "#3b75af" for j in range(k + 1)]
        ax.bar(xs, counts, width=0.8 / k, color=colors)
        ax.set_xticks(xs, [f"{j}/{k}" for j in range(k + 1)])
        ax.set_xlabel("pass rate (right of k)")
        ax.set_ylabel("prompts")
        ax.set_title(f"pass@{k}: kept = blue bars")
        fig.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.png")
        fig.savefig(tmp, format="png")
        tmp.replace(path)
    finally:
        plt.close(fig)


@dataclass
class _Prompt:
    row: dict[str, Any]
    where: str
    specs: list[dict[str, Any]]


def _prompts(shards: list[Path], report: PassKReport) -> Iterator[_Prompt]:
    """The rule-checkable image prompts of ``shards``, one shard in memory at a time; the other
    rows are counted in ``report.skipped`` by reason."""
    for shard in shards:
        try:
            rows = list(iter_rows(shard))
        except Exception as exc:  # a corrupt shard is one skip, not a crash
            report.skipped[f"{shard.name}: cannot read ({type(exc).__name__})"] += 1
            continue
        for row in rows:
            if not isinstance(row.get("id"), str) or not row["id"]:
                report.skipped["no id"] += 1
                continue
            try:
                specs = load_reward_specs(row.get("reward"))
            except ValueError:
                report.skipped["no valid reward spec"] += 1
                continue
            if all(s["mode"] == "caption" for s in specs):
                report.skipped["caption mode (not rule-checkable)"] += 1
            elif row.get("videos"):
                report.skipped["a video (GRPO rollouts take images only)"] += 1
            else:
                yield _Prompt(row, shard.name, specs)


def _meta(value: Any) -> dict[str, Any]:
    """A row's ``meta`` JSON as a dict (``{}`` when absent or unreadable)."""
    try:
        meta = json.loads(value) if isinstance(value, str | bytes) else None
    except (ValueError, RecursionError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _run(
    prompts: Iterator[_Prompt],
    backend: Backend,
    sampling: Sampling,
    thresholds: tuple[float, float],
    batch_size: int,
    report: PassKReport,
    lines: list[str],
) -> Iterator[dict[str, Any]]:
    """Ask, score and count every prompt (``report`` and the pass-rate ``lines`` filled as it
    goes); yields the kept rows (``meta["pass_k"]`` added)."""
    k = sampling.n
    threshold, det3d_threshold = thresholds
    while chunk := list(islice(prompts, batch_size)):
        batch, requests = [], []
        for p in chunk:
            det3d = any(s["mode"] == "det3d" for s in p.specs)
            try:
                sr = sample_request(p.row, system=None if det3d else "think", where=p.where)
            except ValueError as exc:
                report.skipped[str(exc).split(f"sample {p.row.get('id')}: ", 1)[-1]] += 1
                continue
            batch.append(p)
            requests.append(sr.request)
        if not requests:
            continue
        hits_before = backend.stats.hits if isinstance(backend, CachedBackend) else 0
        completions = backend.generate(requests, sampling)
        if isinstance(backend, CachedBackend):
            hits = backend.stats.hits - hits_before
            report.cached += hits
            report.calls += len(requests) - hits
        else:
            report.calls += len(requests)
        for p, completion in zip(batch, completions, strict=True):
            sid, task = p.row["id"], p.row.get("task") or "?"
            if not completion.ok or len(completion.choices) != k:
                reason = completion.error or f"{len(completion.choices)} answers for k={k}"
                report.failed.append(f"{p.where}: {sid}: {reason}")
                continue
            if not completion.cached:
                report.prompt_tokens += completion.prompt_tokens
                report.completion_tokens += completion.completion_tokens
            accs = [compute_reward(c.text, p.specs)["accuracy"] for c in completion.choices]
            det3d = any(s["mode"] == "det3d" for s in p.specs)
            right = sum(a >= (det3d_threshold if det3d else threshold) for a in accs)
            rate = right / k
            report.scored += 1
            report.histogram[right] += 1
            stats = report.per_task.setdefault(
                task, {"scored": 0, "kept": 0, "too_easy": 0, "too_hard": 0}
            )
            stats["scored"] += 1
            if right == 0:
                report.too_hard += 1
                stats["too_hard"] += 1
            elif right == k:
                report.too_easy += 1
                stats["too_easy"] += 1
            else:
                report.kept += 1
                stats["kept"] += 1
                meta = _meta(p.row.get("meta"))
                meta["pass_k"] = {"k": k, "correct": right, "rate": rate}
                yield {**p.row, "meta": canonical_json(meta)}
            record = {
                "id": sid,
                "task": task,
                "mode": p.specs[0]["mode"],
                "k": k,
                "correct": right,
                "rate": rate,
                "accuracy": sum(accs) / k,
            }
            lines.append(json.dumps(record, ensure_ascii=False, sort_keys=True))


def run_pass_k(
    data: str | Path,
    backend: Backend | str | Path,
    k: int = 4,
    out: str | Path = "passk",
    sampling: Sampling | None = None,
    threshold: float = 1.0,
    det3d_threshold: float = 0.5,
    batch_size: int = 32,
    cache: bool = True,
    prices: tuple[float, float] | None = None,
) -> PassKReport:
    """Run the pass@k filter over ``data`` (a vst run or RL set folder) with ``backend`` and
    write the outputs into ``out`` (see the module docstring). ``backend``: a backend, or a
    model directory / endpoint URL for :func:`vst.models.backends.open_backend`. ``sampling``
    gives temperature, max tokens and seed (its ``n`` is replaced by ``k``); default
    ``Sampling(temperature=1.0, max_tokens=1024)``. ``cache``: wrap ``backend`` in a disk cache
    on ``<out>/cache``. ``prices``: (prompt, completion) price per million tokens; the report's
    ``cost`` is the tokens this run paid for at these prices.
    ValueError for ``k < 2``, a threshold outside (0, 1] or a folder without shards."""
    if k < 2:
        raise ValueError(f"k must be at least 2, got {k}")
    for name, value in (("threshold", threshold), ("det3d_threshold", det3d_threshold)):
        if not 0 < value <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {value}")
    out = Path(out)
    if isinstance(backend, str | Path):
        backend = open_backend(str(backend), cache_dir=out / "cache" if cache else None)
    sampling = replace(sampling or Sampling(temperature=1.0, max_tokens=1024), n=k)
    if cache and not isinstance(backend, CachedBackend):
        backend = CachedBackend(backend, out / "cache")
    report = PassKReport(out, k, histogram=[0] * (k + 1))
    shards = list_shards(data)
    if not shards:
        raise ValueError(f"{data}: no vst shards (shard-*.parquet) here or in its data/")
    if (out / "data").resolve() == shards[0].parent.resolve():
        raise ValueError(f"output {out} is also the input {data} (its shards would be replaced)")
    lines: list[str] = []
    prompts = _prompts(shards, report)
    kept = _run(prompts, backend, sampling, (threshold, det3d_threshold), batch_size, report, lines)
    report.shards = write_chunked(kept, out / "data", 1000, {"pass_k": True})
    if prices is not None:
        report.cost = (
            report.prompt_tokens * prices[0] + report.completion_tokens * prices[1]
        ) / 1e6
    atomic_write_bytes(out / "pass_rates.jsonl", "".join(x + "\n" for x in lines).encode())
    pass_rate_histogram(report.histogram, k, out / "pass_rates.png")
    atomic_write_bytes(out / "report.md", report.to_markdown().encode())
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False, sort_keys=True)
    atomic_write_bytes(out / "report.json", text.encode())
    return report
