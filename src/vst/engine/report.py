"""The report of an engine run (``report.json`` and ``report.md`` in the output folder).

A :class:`Report` is built from unit summaries (:class:`~vst.engine.runner.UnitResult`, fresh or
read back from a shard's metadata) and does not know which executor ran them. :meth:`Report.finish`
sorts every list and dict, so two runs of the same config give the same report whatever the
executor, the worker count or the order in which units finished, except ``timings``: seconds
measured in this run (``wall``, ``sources`` and per-stage sums over the units processed in it),
shown in ``report.md`` as the "wall time" line and the "Timings" table.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vst.scenes.io import atomic_write_bytes

if TYPE_CHECKING:
    from vst.engine.runner import UnitResult

__all__ = ["Report", "without_timings"]


@dataclass
class Report:
    """What a run did: samples and answer distributions per task, skipped scenes and tasks,
    shards written and reused, timings. Saved as ``report.json`` and ``report.md``."""

    output: str
    config: dict[str, Any]
    scenes_total: int = 0
    scenes_used: int = 0
    units_total: int = 0
    shards_written: int = 0
    shards_reused: int = 0
    stale_removed: list[str] = field(default_factory=list)
    samples_total: int = 0
    bytes_total: int = 0
    samples_per_task: dict[str, int] = field(default_factory=dict)
    scenario_of_task: dict[str, str] = field(default_factory=dict)
    answers_per_task: dict[str, dict[str, int]] = field(default_factory=dict)
    skipped_scenes: list[dict[str, Any]] = field(default_factory=list)
    skipped_frames: list[dict[str, Any]] = field(default_factory=list)
    task_skips: dict[str, dict[str, int]] = field(default_factory=dict)
    task_errors: list[dict[str, Any]] = field(default_factory=list)
    failed_units: list[dict[str, Any]] = field(default_factory=list)
    duplicates_dropped: dict[str, int] = field(default_factory=dict)
    duplicate_scene_ids: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    shards: list[dict[str, Any]] = field(default_factory=list)
    excluded_benchmark_scenes: list[dict[str, Any]] = field(default_factory=list)
    included_benchmark_scenes: list[dict[str, Any]] = field(default_factory=list)
    imports: list[dict[str, Any]] = field(default_factory=list)

    def add(self, res: UnitResult) -> None:
        self.shards_reused += res.reused
        self.shards_written += not res.reused
        self.samples_total += res.rows
        self.bytes_total += res.bytes
        self.shards.append(
            {"shard": res.shard, "rows": res.rows, "bytes": res.bytes, "reused": res.reused}
        )
        self.scenes_used += len(res.scene_ids)
        for k, v in res.counts.items():
            self.samples_per_task[k] = self.samples_per_task.get(k, 0) + v
        self.scenario_of_task.update(res.scenarios)
        for task, dist in res.answers.items():
            mine = self.answers_per_task.setdefault(task, {})
            for k, v in dist.items():
                mine[k] = mine.get(k, 0) + v
        self.skipped_scenes.extend(res.skipped_scenes)
        self.skipped_frames.extend(res.skipped_frames)
        for s in res.task_skips:
            per = self.task_skips.setdefault(s["task"], {})
            for reason in s["reasons"]:
                per[reason] = per.get(reason, 0) + 1
        self.task_errors.extend(res.task_errors)
        for k, v in res.duplicates.items():
            self.duplicates_dropped[k] = self.duplicates_dropped.get(k, 0) + v
        for k, v in res.timings.items():
            self.timings[k] = self.timings.get(k, 0.0) + v

    def add_failure(self, index: int, shard: str, error: str, attempts: int) -> None:
        """A unit that failed ``attempts`` times (its worker died or raised): no shard was
        written for it, a rerun tries it again."""
        self.failed_units.append(
            {"index": index, "shard": shard, "error": error, "attempts": attempts}
        )

    def finish(self) -> None:
        """Sort lists and dicts so the report reads the same for the same run."""
        self.shards.sort(key=lambda s: s["shard"])
        self.skipped_scenes.sort(key=lambda s: s["dir"])
        self.skipped_frames.sort(key=lambda s: s["dir"])
        self.task_errors.sort(key=lambda e: (e["scene_id"], e["task"]))
        self.failed_units.sort(key=lambda u: u["index"])
        self.scenario_of_task = dict(sorted(self.scenario_of_task.items()))
        self.samples_per_task = dict(sorted(self.samples_per_task.items()))
        self.answers_per_task = {
            t: dict(sorted(d.items())) for t, d in sorted(self.answers_per_task.items())
        }
        self.task_skips = {t: dict(sorted(d.items())) for t, d in sorted(self.task_skips.items())}
        self.duplicates_dropped = dict(sorted(self.duplicates_dropped.items()))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, sort_keys=False, default=str) + "\n"

    def to_markdown(self) -> str:
        lines = [
            "# Data engine report",
            "",
            f"- output: `{self.output}`",
            f"- scenes: {self.scenes_used} used of {self.scenes_total} "
            f"({len(self.skipped_scenes)} skipped)",
            f"- shards: {self.units_total} ({self.shards_written} written, "
            f"{self.shards_reused} reused from an earlier run"
            + (f", {len(self.stale_removed)} stale removed" if self.stale_removed else "")
            + ")",
            f"- samples: {self.samples_total} ({self.bytes_total / 1e6:.1f} MB)",
            f"- benchmark scenes excluded (leakage guard): {len(self.excluded_benchmark_scenes)}"
            + (
                f"; included by override: {len(self.included_benchmark_scenes)}"
                if self.included_benchmark_scenes
                else ""
            ),
        ]
        if "wall" in self.timings:
            lines.append(f"- wall time: {self.timings['wall']:.1f} s")
        lines += ["", "## Samples per task", "", "| task | scenario | samples |"]
        lines.append("| --- | --- | ---: |")
        for t, n in self.samples_per_task.items():
            lines.append(f"| {t} | {self.scenario_of_task.get(t, '')} | {n} |")
        lines += ["", "## Answer distribution per task", ""]
        for t, dist in self.answers_per_task.items():
            total = sum(dist.values()) or 1
            top = sorted(dist.items(), key=lambda kv: (-kv[1], kv[0]))
            shown = ", ".join(f"{k}: {v} ({100 * v / total:.0f}%)" for k, v in top[:12])
            more = f", ... {len(top) - 12} more values" if len(top) > 12 else ""
            lines.append(f"- **{t}**: {shown}{more}")
        for title, entries in (
            ("Benchmark scenes excluded (leakage guard)", self.excluded_benchmark_scenes),
            ("Benchmark scenes included (override)", self.included_benchmark_scenes),
        ):
            if entries:
                lines += ["", f"## {title}", ""]
                for e in entries[:200]:
                    lines.append(
                        f"- {e['dataset']} `{e['native_id']}`: {', '.join(e['benchmarks'])}"
                        f" ({e['source']})"
                    )
                if len(entries) > 200:
                    lines.append(f"- ... and {len(entries) - 200} more (see report.json)")
        for imp in self.imports:
            lines += ["", f"## Import of sources.{imp['source']} ({imp['format']})", ""]
            lines.append(f"- {imp['summary']}")
            for f in imp["failed"][:50]:
                lines.append(f"- failed: `{f['scene_id']}`: {f['reason']}")
            for sk in imp["skipped"][:50]:
                lines.append(f"- skipped {sk['kind']}: {sk['item']}: {sk['reason']}")
            more = len(imp["skipped"]) - 50
            if more > 0:
                lines.append(f"- ... and {more} more skipped items (see import_report.json)")
        if self.skipped_scenes:
            lines += ["", "## Skipped scenes", ""]
            for s in self.skipped_scenes:
                lines.append(f"- `{s['dir']}` ({s.get('scene_id') or 'unreadable'}):")
                lines.extend(f"  - {r}" for r in s["reasons"][:10])
        if self.skipped_frames:
            lines += ["", "## Skipped frames (bad files; the rest of the scene was used)", ""]
            for s in self.skipped_frames:
                lines.append(f"- `{s['dir']}` ({s['scene_id']}):")
                lines.extend(f"  - {r}" for r in s["reasons"][:10])
        if self.task_skips:
            lines += ["", "## Tasks a scene could not serve", ""]
            for t, reasons in self.task_skips.items():
                for r, n in reasons.items():
                    lines.append(f"- {t}: {r} ({n} scene(s))")
        if self.task_errors:
            lines += ["", "## Task errors (samples of these pairs were dropped)", ""]
            for e in self.task_errors:
                lines.append(f"- {e['task']} on {e['scene_id']}: {e['error']}")
        if self.failed_units:
            lines += ["", "## Failed units (no shard written; rerun to try them again)", ""]
            for u in self.failed_units:
                lines.append(f"- `{u['shard']}` after {u['attempts']} attempt(s): {u['error']}")
        if self.duplicates_dropped:
            lines += ["", "## Repeated samples dropped (same id within a scene and task)", ""]
            lines.extend(f"- {t}: {n}" for t, n in self.duplicates_dropped.items())
        if self.duplicate_scene_ids:
            lines += ["", "## Duplicate scene ids", "", ", ".join(self.duplicate_scene_ids)]
        if self.timings:
            lines += ["", "## Timings (seconds, summed over workers)", ""]
            lines.append("| stage | seconds |")
            lines.append("| --- | ---: |")
            for k, v in self.timings.items():
                lines.append(f"| {k} | {v:.2f} |")
        return "\n".join(lines) + "\n"

    def save(self, output: Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``output`` (atomically)."""
        j, m = output / "report.json", output / "report.md"
        atomic_write_bytes(j, self.to_json().encode("utf-8"))
        atomic_write_bytes(m, self.to_markdown().encode("utf-8"))
        return j, m


def without_timings(output: Path) -> tuple[str, str]:
    """``(report.json, report.md)`` of the run folder ``output`` without what depends on the
    clock: the ``timings`` key, the "wall time" line and the "Timings" table. Two runs of the
    same config give the same two strings (byte for byte) whatever executed them."""
    data = json.loads((output / "report.json").read_text(encoding="utf-8"))
    data.pop("timings", None)
    md = (output / "report.md").read_text(encoding="utf-8")
    head, _sep, _timings = md.partition("\n## Timings (seconds")
    lines = [line for line in head.splitlines() if not line.startswith("- wall time: ")]
    return json.dumps(data, indent=1) + "\n", "\n".join(lines).rstrip("\n") + "\n"
