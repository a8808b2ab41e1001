"""The viewer's index page: samples per task, answer distributions, the audit's figures and,
with predictions, the mean score per task, all as inline SVG charts (:mod:`vst.viz.charts`).

The audit is read from the dataset's ``audit.json`` (what ``vst data audit`` writes into the run
folder) when present; otherwise it is computed (:func:`vst.engine.audit.audit_shards`, text
columns only) unless asked not to.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from vst.viz import html
from vst.viz.charts import bar_chart, histogram
from vst.viz.stats import TaskStats

__all__ = ["index_page", "load_audit"]

TOP_ANSWERS = 12
"""Answers shown per task in its distribution chart (the rest are summed as "(rest)")."""

_AUDIT_FIGURES = (
    # (title, check, key, threshold key)
    (
        "referents below the visibility threshold (share)",
        "visibility",
        "share_below",
        "max_low_visible_share",
    ),
    (
        "duplicate questions (share)",
        "repetition",
        "duplicate_question_share",
        "max_duplicate_question_share",
    ),
    ("repeated facts (share)", "repetition", "repeated_fact_share", "max_repeated_fact_share"),
    (
        "targets breaking their instruction (share)",
        "instructions",
        "share",
        "max_instruction_violation_share",
    ),
    ("answer-label balance, chi-square p", "letter_balance", "p_value", "min_balance_p"),
    (
        "room-area clips below the floor coverage (share)",
        "floor_coverage",
        "share_below",
        "max_low_coverage_share",
    ),
)


def load_audit(dataset: Path, shards: Sequence[Path], compute: bool = True) -> dict | None:
    """The audit report as JSON: ``audit.json`` of the run folder if present, else computed
    (``compute``), else None."""
    for folder in (dataset, dataset.parent if dataset.name == "data" else None):
        if folder is not None and (folder / "audit.json").is_file():
            try:
                return json.loads((folder / "audit.json").read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                break
    if not compute:
        return None
    from vst.engine.audit import audit_shards

    return audit_shards(shards).to_json()


def _answer_chart(task: str, s: TaskStats) -> str:
    if s.numeric and not s.answers:
        return histogram(f"{task}: ground-truth values", s.numeric)
    ranked = sorted(s.answers.items(), key=lambda kv: (-kv[1], kv[0]))
    items = [(k, float(v)) for k, v in ranked[:TOP_ANSWERS]]
    rest = sum(v for _, v in ranked[TOP_ANSWERS:])
    if rest:
        items.append(("(rest)", float(rest)))
    return bar_chart(f"{task}: answers", items, color="#6a8f3b")


def _audit_section(audit: Mapping[str, Any]) -> str:
    tasks: Mapping[str, Any] = audit.get("tasks") or {}
    thresholds: Mapping[str, Any] = audit.get("thresholds") or {}
    charts = []
    for title, check, key, th in _AUDIT_FIGURES:
        items = [
            (task, float(c[check][key]))
            for task, c in sorted(tasks.items())
            if isinstance(c.get(check), dict) and isinstance(c[check].get(key), int | float)
        ]
        if items:
            limit = thresholds.get(th)
            charts.append(
                bar_chart(
                    title,
                    items,
                    threshold=float(limit) if isinstance(limit, int | float) else None,
                    max_value=1.0,
                    color="#8e5ea2",
                )
            )
    failures = audit.get("failures") or []
    verdict = "PASS" if not failures else f"FAIL ({len(failures)} finding(s))"
    found = "".join(f"<li>{escape(str(f))}</li>" for f in failures)
    return (
        f'<h2 id="audit">Audit: {verdict}</h2><p>dashed line: the threshold.</p>'
        f'<div class="charts">{"".join(charts)}</div>'
        + (f'<ul class="audit-failures">{found}</ul>' if found else "")
    )


def index_page(
    name: str,
    stats: Mapping[str, TaskStats],
    pages: Mapping[str, int],
    audit: Mapping[str, Any] | None,
    has_predictions: bool,
) -> str:
    """The index page's HTML."""
    tasks = sorted(stats)
    total = sum(stats[t].samples for t in tasks)
    head = ["task", "samples", "scenes", "pages"]
    if has_predictions:
        head += ["mean score", "failures (score < 1)"]
    rows = []
    for t in tasks:
        s = stats[t]
        links = " ".join(
            f'<a href="tasks/{escape(t)}/{html.page_name(k)}">{k}</a>'
            for k in range(1, pages.get(t, 0) + 1)
        )
        cells = [
            f'<a href="tasks/{escape(t)}/{html.page_name(1)}">{escape(t)}</a>',
            str(s.samples),
            str(len(s.scenes)),
            links,
        ]
        if has_predictions:
            mean = s.mean_score
            cells += ["-" if mean is None else f"{mean:.3f}", f"{s.failures} of {s.scored}"]
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    table = (
        '<table id="tasks"><thead><tr>'
        + "".join(f"<th>{h}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join(rows)
        + "</tbody></table>"
    )
    charts = [bar_chart("samples per task", [(t, float(stats[t].samples)) for t in tasks])]
    if has_predictions:
        scored = [(t, stats[t].mean_score) for t in tasks if stats[t].mean_score is not None]
        charts.append(
            bar_chart("mean score per task", [(t, float(v)) for t, v in scored], max_value=1.0)
        )
    body = [
        f"<h1>{escape(name)}</h1>",
        f"<p>{total} samples in {len(tasks)} tasks.</p>",
    ]
    if has_predictions:
        body.append(
            '<p><a id="failures-link" href="failures.html">predictions, failures first</a></p>'
        )
    body += [
        table,
        f'<div class="charts">{"".join(charts)}</div>',
        '<h2>Answer distributions</h2><div class="charts">'
        + "".join(_answer_chart(t, stats[t]) for t in tasks)
        + "</div>",
    ]
    if audit is not None:
        body.append(_audit_section(audit))
    return html.document(f"{name}: dataset viewer", "\n".join(body), "")
