"""Reports of evaluation runs (``vst eval report``): markdown, JSON and a PNG chart per run, and
a side-by-side table of several runs.

A run folder holds ``<benchmark>.score.json`` files (:mod:`vst.eval.harness`). The report lists
per benchmark the official number and every variant (percentages), the breakdowns, and S-AVG:
the mean of the official numbers of the paper's five spatial benchmarks (CV-Bench, 3DSRBench,
BLINK, MMSI-Bench, VSI-Bench), given only when all five are in the run.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes

__all__ = ["SPATIAL_BENCHMARKS", "compare_runs", "load_scores", "s_avg", "write_report"]

SPATIAL_BENCHMARKS = ("cvbench", "3dsrbench", "blink", "mmsi", "vsibench")
"""The benchmarks whose official numbers S-AVG averages (the paper's spatial set)."""


def load_scores(run_dir: Path) -> dict[str, dict[str, Any]]:
    """``{benchmark: score record}`` of a run folder (unreadable score files are skipped)."""
    scores = {}
    for path in sorted(Path(run_dir).glob("*.score.json")):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and isinstance(data.get("benchmark"), str):
            scores[data["benchmark"]] = data
    return scores


def s_avg(scores: dict[str, dict[str, Any]]) -> float | None:
    """Mean official score of :data:`SPATIAL_BENCHMARKS` (None unless all are present)."""
    values = [scores.get(b, {}).get("official") for b in SPATIAL_BENCHMARKS]
    if any(v is None for v in values):
        return None
    return sum(values) / len(values)


def _pct(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def _overlap_line(t: dict[str, Any]) -> str:
    overlap = t.get("overlap")
    if overlap is None:
        return f"overlap not checked ({t.get('note', '')})"
    if not overlap:
        return f"no training scene in this benchmark ({t.get('note', '')})"
    shown = ", ".join(overlap[:10]) + (", ..." if len(overlap) > 10 else "")
    return f"OVERLAP: {len(overlap)} training scene(s) in this benchmark: {shown}"


def _markdown(run_dir: Path, scores: dict[str, dict[str, Any]]) -> str:
    lines = [f"# Evaluation: {run_dir.name}", ""]
    models = sorted({s.get("model", "") for s in scores.values()})
    if models:
        lines += [f"Model: {', '.join(models)}", ""]
    lines += ["| benchmark | items | official | variants | failed |", "|---|---:|---:|---|---:|"]
    for name, s in scores.items():
        variants = ", ".join(
            f"{k} {_pct(v)}"
            for k, v in sorted((s.get("variants") or {}).items())
            if k != "official"
        )
        failed = len(s.get("failed") or [])
        lines.append(
            f"| {name} | {s.get('items', 0)} | {_pct(s.get('official'))} | {variants} | {failed} |"
        )
    leaks = [(n, s["training_overlap"]) for n, s in scores.items() if s.get("training_overlap")]
    if leaks:
        lines += ["", "Training data (vst_training_data.json):", ""]
        lines += [f"- {name}: {_overlap_line(t)}" for name, t in leaks]
    avg = s_avg(scores)
    lines += ["", f"S-AVG (official, {', '.join(SPATIAL_BENCHMARKS)}): {_pct(avg)}", ""]
    for name, s in scores.items():
        for group, values in sorted((s.get("breakdown") or {}).items()):
            lines += [f"## {name}: by {group}", "", "| value | score |", "|---|---:|"]
            lines += [f"| {k} | {_pct(v)} |" for k, v in sorted(values.items())]
            lines.append("")
        for note in s.get("notes") or []:
            lines.append(f"- {name}: {note}")
    return "\n".join(lines).rstrip() + "\n"


def _chart(path: Path, scores: dict[str, dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(scores)
    rules = sorted({r for s in scores.values() for r in (s.get("variants") or {})} | {"official"})
    rules.remove("official")
    rules = ["official", *rules]
    fig, ax = plt.subplots(figsize=(max(4, 1.6 * len(names) + 2), 3.6))
    width = 0.8 / max(1, len(rules))
    for k, rule in enumerate(rules):
        values = [
            100 * ((scores[n].get("variants") or {}).get(rule) or 0)
            if rule != "official"
            else 100 * (scores[n].get("official") or 0)
            for n in names
        ]
        ax.bar([i + k * width for i in range(len(names))], values, width, label=rule)
    ax.set_xticks([i + 0.4 - width / 2 for i in range(len(names))], names)
    ax.set_ylabel("score (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def write_report(run_dir: Path) -> tuple[Path, Path, Path | None]:
    """Write ``report.md``, ``report.json`` and ``report.png`` into ``run_dir``."""
    run_dir = Path(run_dir)
    scores = load_scores(run_dir)
    md = run_dir / "report.md"
    js = run_dir / "report.json"
    atomic_write_bytes(md, _markdown(run_dir, scores).encode())
    payload = {"run": run_dir.name, "s_avg": s_avg(scores), "benchmarks": scores}
    atomic_write_bytes(js, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode())
    png = None
    if scores:
        png = run_dir / "report.png"
        _chart(png, scores)
    return md, js, png


def compare_runs(run_dirs: Sequence[Path]) -> str:
    """A markdown table with one column per run: official number per benchmark, then S-AVG."""
    runs = [(Path(r).name, load_scores(Path(r))) for r in run_dirs]
    names = sorted({n for _, s in runs for n in s})
    lines = [
        "| benchmark | " + " | ".join(name for name, _ in runs) + " |",
        "|---|" + "---:|" * len(runs),
    ]
    for n in names:
        lines.append(
            f"| {n} | " + " | ".join(_pct(s.get(n, {}).get("official")) for _, s in runs) + " |"
        )
    lines.append("| S-AVG | " + " | ".join(_pct(s_avg(s)) for _, s in runs) + " |")
    return "\n".join(lines) + "\n"
