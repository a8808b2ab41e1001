"""The rule-checkable RL set (VST-R's RL part): VST-P samples plus general data, balanced per
(task, reward mode), deduplicated against an SFT set and within itself.

Example config (YAML; paths relative to the working folder)::

    output: runs/rlset
    vst: [runs/vstp]              # VST-P runs (shard folders)
    tasks: ["mi_*"]               # optional task filter (names or globs) on the VST-P rows
    general:                      # local general data (format: vst.reasoning.general)
      - {path: data/math.jsonl, task: math}
      - {path: data/ocr.parquet, task: ocr}
    sft: [runs/cot, release/sft]  # SFT set to deduplicate against (vst runs / release SFT)
    per_task_mode: 500            # cap per (task, mode); null = no cap
    caps: {"math": 200, "mi_camera_motion:numeric": 50}   # overrides: "task" or "task:mode"
    seed: 0
    shard_size: 1000              # rows per output shard
    export_trl: true              # write trl/train.parquet
    export_verl: true             # write verl/ (the release's RL form)

Pipeline: every VST-P row that the release's RL form can carry (reward mode not ``caption``, no
video, one question: :func:`vst.engine.export_verl.verl_row` decides, with its reason for the
rest) and every good general row is a candidate of its (task, mode); candidates whose question
and picture bytes (or id) are in the SFT set are dropped, then duplicates within the set
(the first of each key in (task, mode, id) order stays); then each group keeps at most its cap,
drawn with ``random.Random(f"{seed}:{task}:{mode}")`` from the candidates sorted by id. Rows
keep their reward spec (VST-P rows are copied unchanged). Rows are read twice (once to select,
once to write, in input order: VST-P shards, then general files), so only one shard's pictures
are in memory at a time.

Outputs in ``output``: ``data/shard-*.parquet`` (vst shards: ``kind: vst`` reads them for
``vst train grpo``), ``trl/train.parquet`` (TRL GRPO form: :mod:`vst.reasoning.trl_export`),
``verl/`` (the release's RL Parquet, :func:`vst.engine.export_verl.export_verl`; ``kind:
vst_release_rl``) and ``report.md`` / ``report.json``.
"""

from __future__ import annotations

import fnmatch
import json
import random
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vst.atomic import atomic_write_bytes
from vst.engine.config import ConfigError, format_errors, load_yaml
from vst.engine.export_verl import export_verl, verl_row
from vst.engine.writer import iter_rows, list_shards
from vst.reasoning.chunked import write_chunked
from vst.reasoning.dedup import SeenSet, row_key, sft_keys
from vst.reasoning.general import read_general
from vst.reasoning.trl_export import export_trl
from vst.rewards import load_reward_specs

__all__ = [
    "GeneralSource",
    "GroupStats",
    "RLSetConfig",
    "RLSetReport",
    "build_rl_set",
    "load_rl_set_config",
]

_STRICT_INT = Annotated[int, Field(strict=True, ge=0)]


class GeneralSource(BaseModel):
    """A general data file (JSONL or Parquet; format in :mod:`vst.reasoning.general`) and the
    task name its rows get when they name none."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    path: Path
    task: str | None = None


class RLSetConfig(BaseModel):
    """What :func:`build_rl_set` builds (see the module docstring)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    output: Path
    vst: list[Path] = []
    tasks: list[str] | None = None
    general: list[GeneralSource] = []
    sft: list[Path] = []
    per_task_mode: _STRICT_INT | None = 1000
    caps: dict[str, _STRICT_INT] = {}
    seed: _STRICT_INT = 0
    shard_size: Annotated[int, Field(strict=True, gt=0)] = 1000
    export_trl: Annotated[bool, Field(strict=True)] = True
    export_verl: Annotated[bool, Field(strict=True)] = True

    def cap(self, task: str, mode: str) -> int | None:
        """The cap of group (task, mode): ``caps["task:mode"]``, else ``caps["task"]``, else
        ``per_task_mode`` (None: no cap)."""
        for key in (f"{task}:{mode}", task):
            if key in self.caps:
                return self.caps[key]
        return self.per_task_mode


def load_rl_set_config(path: str | Path) -> RLSetConfig:
    """Read and validate an RL set config; :class:`ConfigError` naming the file and field."""
    p = Path(path)
    data = load_yaml(p)
    try:
        return RLSetConfig.model_validate(data)
    except ValidationError as exc:
        text = format_errors(exc).replace("\n", f"\n{p}: ")
        raise ConfigError(f"{p}: {text}") from None


@dataclass
class GroupStats:
    """One (task, mode): rows ``available`` (usable candidates), dropped as ``sft_duplicates``
    / ``self_duplicates``, ``selected``, and rows ``skipped`` by reason."""

    available: int = 0
    sft_duplicates: int = 0
    self_duplicates: int = 0
    selected: int = 0
    skipped: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, Any]:
        return {
            "available": self.available,
            "sft_duplicates": self.sft_duplicates,
            "self_duplicates": self.self_duplicates,
            "selected": self.selected,
            "skipped": dict(sorted(self.skipped.items())),
        }


@dataclass
class RLSetReport:
    """What :func:`build_rl_set` did: per-group stats, bad rows (``"file:line: reason"``),
    the SFT set's size, and the files written."""

    output: Path
    groups: dict[tuple[str, str], GroupStats] = field(default_factory=dict)
    bad_rows: list[str] = field(default_factory=list)
    sft_rows: int = 0
    sft_bad: list[str] = field(default_factory=list)
    shards: list[Path] = field(default_factory=list)
    trl_rows: int = 0
    verl_rows: int = 0
    verl_skipped: list[str] = field(default_factory=list)

    def group(self, task: str, mode: str) -> GroupStats:
        return self.groups.setdefault((task, mode), GroupStats())

    @property
    def selected(self) -> int:
        return sum(g.selected for g in self.groups.values())

    def totals(self) -> dict[str, int]:
        keys = ("available", "sft_duplicates", "self_duplicates", "selected")
        out = {k: sum(getattr(g, k) for g in self.groups.values()) for k in keys}
        out["skipped"] = sum(sum(g.skipped.values()) for g in self.groups.values())
        out["bad_rows"] = len(self.bad_rows)
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "output": str(self.output),
            "totals": self.totals(),
            "groups": [
                {"task": t, "mode": m, **g.to_json()} for (t, m), g in sorted(self.groups.items())
            ],
            "bad_rows": self.bad_rows,
            "sft": {"rows": self.sft_rows, "bad": self.sft_bad},
            "shards": [p.name for p in self.shards],
            "trl_rows": self.trl_rows,
            "verl_rows": self.verl_rows,
            "verl_skipped": self.verl_skipped,
        }

    def to_markdown(self, max_lines: int = 20) -> str:
        t = self.totals()
        lines = [
            f"# RL set: {self.output}",
            "",
            f"{t['selected']} selected of {t['available']} available; "
            f"{t['sft_duplicates']} dropped as in the SFT set ({self.sft_rows} SFT rows), "
            f"{t['self_duplicates']} as duplicates within the set; {t['skipped']} VST-P rows "
            f"skipped, {t['bad_rows']} bad general rows.",
            f"Exports: {self.trl_rows} TRL GRPO rows, {self.verl_rows} release RL rows.",
            "",
            "| task | mode | available | SFT dup | self dup | selected | skipped |",
            "|---|---|---:|---:|---:|---:|---|",
        ]
        for (task, mode), g in sorted(self.groups.items()):
            skipped = "; ".join(f"{n} {r}" for r, n in sorted(g.skipped.items())) or "-"
            lines.append(
                f"| {task} | {mode} | {g.available} | {g.sft_duplicates} | "
                f"{g.self_duplicates} | {g.selected} | {skipped} |"
            )
        for title, items in (("Bad general rows", self.bad_rows), ("SFT set", self.sft_bad)):
            if items:
                lines += ["", f"## {title} ({len(items)})", ""]
                lines += [f"- {x}" for x in items[:max_lines]]
                if len(items) > max_lines:
                    lines.append(f"- ... {len(items) - max_lines} more (report.json)")
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class _Candidate:
    """A usable row, without its pixels: where it is (a shard or general file and the row's
    index / line there), its group and its dedup key."""

    id: str
    task: str
    mode: str
    key: str
    file: Path
    index: int
    general: GeneralSource | None = None


def _mode(row: dict[str, Any]) -> str:
    specs = load_reward_specs(row.get("reward"))
    return specs[0]["mode"]


def _vst_candidates(config: RLSetConfig, report: RLSetReport) -> list[_Candidate]:
    out: list[_Candidate] = []
    for run in config.vst:
        shards = list_shards(run)
        if not shards:
            raise ValueError(f"{run}: no vst shards (shard-*.parquet) here or in its data/")
        for shard in shards:
            try:
                rows = list(iter_rows(shard))  # one shard in memory at a time
            except Exception as exc:  # a corrupt shard is one bad entry, not a crash
                report.bad_rows.append(f"{shard}: cannot read ({type(exc).__name__}: {exc})")
                continue
            for r, row in enumerate(rows):
                task = row.get("task") if isinstance(row.get("task"), str) else "?"
                if config.tasks and not any(fnmatch.fnmatch(task, p) for p in config.tasks):
                    continue
                if not isinstance(row.get("id"), str) or not row["id"]:
                    report.bad_rows.append(f"{shard}: row {r + 1}: no id")
                    continue
                try:
                    mode = _mode(row)
                except ValueError:
                    report.group(task, "?").skipped["no valid reward spec"] += 1
                    continue
                try:
                    verl_row(row)
                    key = row_key(row)
                except ValueError as exc:
                    report.group(task, mode).skipped[str(exc)] += 1
                    continue
                out.append(_Candidate(row["id"], task, mode, key, shard, r))
    return out


def _general_candidates(config: RLSetConfig, report: RLSetReport) -> list[_Candidate]:
    out: list[_Candidate] = []
    for source in config.general:
        if not source.path.is_file():
            raise ValueError(f"{source.path}: general data file not found")
        for item in read_general(source.path, source.task):
            if item.row is None:
                report.bad_rows.append(f"{item.where}: {item.error}")
                continue
            row = item.row
            cand = _Candidate(
                row["id"], row["task"], _mode(row), row_key(row), source.path, item.line
            )
            out.append(replace(cand, general=source))
    return out


def _select(
    config: RLSetConfig, cands: list[_Candidate], seen: SeenSet, report: RLSetReport
) -> list[_Candidate]:
    """The kept candidates, with the report's counts filled (see the module docstring)."""
    groups: dict[tuple[str, str], list[_Candidate]] = {}
    for c in sorted(cands, key=lambda c: (c.task, c.mode, c.id)):
        report.group(c.task, c.mode).available += 1
        groups.setdefault((c.task, c.mode), []).append(c)
    kept_keys: set[str] = set()
    kept_ids: set[str] = set()
    out: list[_Candidate] = []
    for (task, mode), group in sorted(groups.items()):
        stats = report.group(task, mode)
        fresh = []
        for c in group:
            if (c.key, c.id) in seen:
                stats.sft_duplicates += 1
            elif c.key in kept_keys or c.id in kept_ids:
                stats.self_duplicates += 1
            else:
                kept_keys.add(c.key)
                kept_ids.add(c.id)
                fresh.append(c)
        cap = config.cap(task, mode)
        if cap is not None and len(fresh) > cap:
            rng = random.Random(f"{config.seed}:{task}:{mode}")
            fresh = rng.sample(fresh, cap)
        stats.selected = len(fresh)
        out.extend(fresh)
    return out


def _selected_rows(kept: list[_Candidate]) -> Iterator[dict[str, Any]]:
    """The rows of ``kept``, read again file by file (input order: VST-P shards, then general
    files), so that only one shard's pixels are in memory at a time."""
    wanted: dict[Path, set[int]] = {}
    sources: dict[Path, GeneralSource | None] = {}
    for c in kept:
        wanted.setdefault(c.file, set()).add(c.index)
        sources[c.file] = c.general
    for file, indices in wanted.items():
        source = sources[file]
        if source is None:
            for r, row in enumerate(iter_rows(file)):
                if r in indices:
                    yield row
        else:
            for item in read_general(file, source.task):
                if item.row is not None and item.line in indices:
                    yield item.row


def _check_output(config: RLSetConfig) -> None:
    """ValueError when the output folder is one of the inputs (its shards would be replaced)."""
    outs = {config.output.resolve(), (config.output / "data").resolve()}
    for path in [*config.vst, *config.sft]:
        if path.resolve() in outs:
            raise ValueError(f"output {config.output} is also the input {path}")


def build_rl_set(config: RLSetConfig) -> RLSetReport:
    """Build the RL set of ``config`` (see the module docstring) and write its report.
    ValueError naming the path for a VST-P run without shards, a missing general file or an
    SFT path with no data; bad rows inside files are skipped and reported, never raised."""
    out = config.output
    _check_output(config)
    report = RLSetReport(out)
    seen = sft_keys(config.sft) if config.sft else SeenSet()
    report.sft_rows, report.sft_bad = seen.rows, list(seen.bad)
    cands = _vst_candidates(config, report) + _general_candidates(config, report)
    kept = _select(config, cands, seen, report)
    data = out / "data"
    report.shards = write_chunked(_selected_rows(kept), data, config.shard_size, {"rl_set": True})
    if config.export_trl:
        rows = (row for shard in report.shards for row in iter_rows(shard))
        report.trl_rows = export_trl(rows, out / "trl" / "train.parquet")
    if config.export_verl:
        verl_dir = out / "verl"
        if verl_dir.is_dir():
            for old in verl_dir.glob("shard-*.parquet"):
                old.unlink()
        result = export_verl(report.shards, verl_dir)
        report.verl_rows = result.rows
        report.verl_skipped = [f"{shard}: {sid}: {why}" for shard, sid, why in result.skipped]
    atomic_write_bytes(out / "report.md", report.to_markdown().encode())
    text = json.dumps(report.to_json(), indent=2, ensure_ascii=False, sort_keys=True)
    atomic_write_bytes(out / "report.json", text.encode())
    return report
