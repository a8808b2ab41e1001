"""Quality audit of a generated dataset (``vst data audit``): per-task checks a reviewer would
make, as a JSON + markdown report, with thresholds that fail the audit when crossed.

Checks (each per task; a check whose input the shards do not carry says "not recorded", which
is not a failure — older shards lack the newer ``meta`` keys):

* ``visibility`` — ``meta["visible_fraction"]`` (``{object id: fraction}`` of every referent):
  share of referents below ``min_visible_fraction`` and the minimum. Fails when the share
  exceeds ``max_low_visible_share``.
* ``floor_coverage`` — ``meta["floor_coverage"]`` of ``video_metric`` samples that ask the
  room's area: share below ``min_floor_coverage``. Fails above ``max_low_coverage_share``.
* ``letter_balance`` — multiple-choice answers' option labels against a uniform draw over each
  sample's options (option lines counted in the question; else the task's highest label):
  chi-square test, judged only from ``min_mcq_samples`` samples. Fails when p <
  ``min_balance_p``.
* ``repetition`` — duplicate questions (the same question text twice for one task and scene)
  and repeated facts (the same task, scene, question kind and objects — turns of multi-turn
  samples count one by one). Fails above ``max_duplicate_question_share`` /
  ``max_repeated_fact_share``.
* ``instructions`` — every user turn's instruction against its assistant target: "letter only"
  needs a bare option label, "number only" a bare number, "single word or phrase" at most
  five words, "single number" one number (a unit may follow), "in centimeters" / "in meters" /
  "square meters" a target in that unit, "one of these words: a, b, c" / "a single direction
  (a, b, ...)" one of the listed words, "JSON" a parsable JSON target. Fails above
  ``max_instruction_violation_share``.
* ``answer_styles`` (dataset-wide) — multiple-choice targets written as a bare label
  (``"B"``), as ``"B. text"`` or as ``"B: text"`` (the paper's two forms count as one style):
  more than one style in a dataset fails unless ``allow_mixed_styles``.
* ``scenes`` (with a scenes folder) — samples whose scene is not under it. Any fails.

Thresholds default to values a reviewer would accept on the engine's own output (documented on
:class:`Thresholds`); every one can be overridden.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from vst.engine.writer import iter_rows

__all__ = [
    "AuditReport",
    "Thresholds",
    "audit_rows",
    "audit_shards",
    "render_markdown",
    "write_report",
]

NOT_RECORDED = "not recorded"


@dataclass(frozen=True)
class Thresholds:
    """Limits of the audit (shares are fractions of the task's samples / referents / facts)."""

    min_visible_fraction: float = 0.5
    """A referent less visible than this is one a person could not answer about (the engine's
    default ``min_visible_fraction``)."""
    max_low_visible_share: float = 0.02
    min_floor_coverage: float = 0.8
    """Room-area questions need the clip to show most of the floor (``video_metric``'s rule)."""
    max_low_coverage_share: float = 0.0
    min_mcq_samples: int = 30
    """Letter balance is judged only from this many multiple-choice samples of a task."""
    min_balance_p: float = 0.001
    """Chi-square p-value below which the answer labels are called unbalanced."""
    max_duplicate_question_share: float = 0.25
    max_repeated_fact_share: float = 0.25
    """The issue that asked for this audit found 36% of video_metric facts repeated in one clip."""
    max_instruction_violation_share: float = 0.0
    allow_mixed_styles: bool = False


@dataclass
class AuditReport:
    """The audit's findings: ``tasks[task][check]`` dicts, dataset-wide ``checks``, and
    ``failures`` (one line per crossed threshold)."""

    samples: int = 0
    thresholds: dict[str, Any] = field(default_factory=dict)
    tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **asdict(self)}


# --------------------------------------------------------------------------------------------
# reading rows
# --------------------------------------------------------------------------------------------

COLUMNS = ["id", "task", "answer", "reward", "meta", "messages"]


def _texts(message: dict) -> str:
    return "\n".join(
        c.get("text") or "" for c in message.get("content", []) if c.get("type") == "text"
    )


def _turns(messages: Sequence[dict]) -> list[tuple[str, str]]:
    """``(user text, assistant text)`` pairs in order."""
    pairs, user = [], None
    for m in messages:
        if m.get("role") == "user":
            user = _texts(m)
        elif m.get("role") == "assistant" and user is not None:
            pairs.append((user, _texts(m)))
            user = None
    return pairs


def _loads(text: Any) -> dict:
    try:
        value = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


# --------------------------------------------------------------------------------------------
# checks
# --------------------------------------------------------------------------------------------


def _visibility(rows: list[dict], th: Thresholds) -> dict[str, Any]:
    fractions = []
    recorded = 0
    for r in rows:
        vf = r["meta"].get("visible_fraction")
        if isinstance(vf, dict):
            recorded += 1
            fractions += [float(v) for v in vf.values() if isinstance(v, int | float)]
    if not recorded:
        return {"status": NOT_RECORDED}
    low = sum(f < th.min_visible_fraction for f in fractions)
    share = low / len(fractions) if fractions else 0.0
    return {
        "samples_recorded": recorded,
        "referents": len(fractions),
        "below_threshold": low,
        "share_below": round(share, 4),
        "min": round(min(fractions), 3) if fractions else None,
        "fail": share > th.max_low_visible_share,
    }


_ROOM_KINDS = ("room", "room_area", "room_size")


def _floor_coverage(task: str, rows: list[dict], th: Thresholds) -> dict[str, Any] | None:
    if task != "video_metric":
        return None
    room = [
        r
        for r in rows
        if "floor_coverage" in r["meta"]
        or any(t.get("kind") in _ROOM_KINDS for t in r["meta"].get("turns") or [])
    ]
    values = [r["meta"]["floor_coverage"] for r in room if "floor_coverage" in r["meta"]]
    values = [float(v) for v in values if isinstance(v, int | float)]
    if not values:
        return {"status": NOT_RECORDED, "room_samples": len(room)}
    low = sum(v < th.min_floor_coverage for v in values)
    share = low / len(values)
    return {
        "room_samples": len(room),
        "recorded": len(values),
        "below_threshold": low,
        "share_below": round(share, 4),
        "min": round(min(values), 3),
        "fail": share > th.max_low_coverage_share,
    }


_OPTION_LINE_RE = re.compile(r"^\s*\(?([A-J]|[1-9])[.:)]\s", re.MULTILINE)


def _option_count(question: str) -> int:
    """Options listed one per line (``A. ...`` / ``1. ...``) in a question, 0 if none."""
    labels = _OPTION_LINE_RE.findall(question)
    return len(dict.fromkeys(labels)) if len(labels) >= 2 else 0


def _label_index(label: str) -> int:
    return int(label) - 1 if label.isdigit() else ord(label) - ord("A")


def _mcq_label(row: dict) -> str | None:
    from vst.rewards.parsing import split_choice

    gt = row["reward"].get("ground_truth")
    if not isinstance(gt, str):
        return None
    parts = split_choice(gt) or split_choice(gt, numbered=True)
    return parts[0] if parts else None


def _letter_balance(rows: list[dict], th: Thresholds) -> dict[str, Any]:
    mcq = [(r, lab) for r in rows if r["reward"].get("mode") == "mcq" if (lab := _mcq_label(r))]
    if not mcq:
        return {"status": "no multiple-choice samples"}
    counts = Counter(lab for _, lab in mcq)
    fallback = max(2, max(_label_index(lab) for _, lab in mcq) + 1)
    expected: Counter[int] = Counter()
    for r, _ in mcq:
        turns = _turns(r["messages"])
        k = _option_count(turns[-1][0]) if turns else 0
        for i in range(k or fallback):
            expected[i] += 1.0 / (k or fallback)
    observed = Counter(_label_index(lab) for _, lab in mcq)
    out: dict[str, Any] = {
        "samples": len(mcq),
        "counts": dict(sorted(counts.items())),
        "expected": {str(i): round(v, 2) for i, v in sorted(expected.items())},
    }
    if len(mcq) < th.min_mcq_samples:
        return {**out, "status": f"fewer than {th.min_mcq_samples} samples: not judged"}
    from scipy.stats import chisquare

    idx = sorted(set(expected) | set(observed))
    obs = [observed[i] for i in idx]
    exp = [max(expected[i], 1e-9) for i in idx]
    scale = sum(obs) / sum(exp)
    p = float(chisquare(obs, [e * scale for e in exp]).pvalue) if len(idx) > 1 else 1.0
    return {**out, "p_value": round(p, 6), "fail": p < th.min_balance_p}


_KIND_KEYS = ("kind", "query", "variant", "family", "axis", "distance")
"""``meta`` / turn keys that say what is asked about the objects."""


def _objects(d: dict) -> tuple:
    """The objects a question is about, in their roles' order (``ids``, else anchor + sorted
    candidates, else ``object_ids`` / ``object_id`` / ``label``); ``()`` if none."""
    if isinstance(d.get("ids"), list):
        return tuple(map(str, d["ids"]))
    if "anchor_id" in d and isinstance(d.get("candidate_ids"), list):
        return (str(d["anchor_id"]), *sorted(map(str, d["candidate_ids"])))
    v = d.get("object_ids", d.get("object_id", d.get("label")))
    if isinstance(v, dict):
        return tuple(sorted((str(k), str(x)) for k, x in v.items()))
    if isinstance(v, list):
        return tuple(map(str, v))
    return () if v is None else (str(v),)


def _facts(task: str, meta: dict) -> list[tuple]:
    """The answer-determining facts of a sample, each ``(task, scene, frames, kind, objects)``:
    per turn for multi-turn samples, else one. The frames shown are part of the fact (the same
    objects in another image are another question; the same clip asked twice is not)."""
    where = (task, meta.get("scene_id"), tuple(map(str, meta.get("frame_ids") or [])))

    def fact(d: dict) -> tuple:
        kind = tuple(str(d[k]) for k in _KIND_KEYS if k in d and not isinstance(d[k], dict | list))
        return (*where, kind, _objects(d))

    turns = meta.get("turns")
    if isinstance(turns, list) and turns and all(isinstance(t, dict) for t in turns):
        return [fact(t) for t in turns]
    return [fact(meta)]


def _repetition(task: str, rows: list[dict], th: Thresholds) -> dict[str, Any]:
    seen_q: set[tuple] = set()
    dup_q = 0
    for r in rows:
        frames = tuple(map(str, r["meta"].get("frame_ids") or []))
        key = (r["meta"].get("scene_id"), frames, "\n".join(u for u, _ in _turns(r["messages"])))
        dup_q += key in seen_q
        seen_q.add(key)
    facts = [f for r in rows for f in _facts(task, r["meta"])]
    repeated = len(facts) - len(set(facts))
    q_share = dup_q / len(rows) if rows else 0.0
    f_share = repeated / len(facts) if facts else 0.0
    return {
        "samples": len(rows),
        "duplicate_questions": dup_q,
        "duplicate_question_share": round(q_share, 4),
        "facts": len(facts),
        "repeated_facts": repeated,
        "repeated_fact_share": round(f_share, 4),
        "fail": q_share > th.max_duplicate_question_share or f_share > th.max_repeated_fact_share,
    }


_LETTER_ONLY_RE = re.compile(
    r"\b(?:(?:option|answer)(?:'s)?\s+)?letter\s+only\b|\bonly\s+(?:the\s+)?"
    r"(?:option\s+)?letter\b|\bjust\s+the\s+(?:option\s+)?letter\b",
    re.IGNORECASE,
)
_NUMBER_ONLY_RE = re.compile(
    r"\b(?:option\s+)?number\s+only\b|\bonly\s+(?:the\s+)?(?:option\s+)?number\b",
    re.IGNORECASE,
)
_BARE_NUMBER_RE = re.compile(r"^[-+]?\d+(?:\.\d+)?$")
_WORD_RE = re.compile(r"\b(?:single|one)\s+word\s+or\s+(?:short\s+)?phrase\b", re.IGNORECASE)
_NUMBER_RE = re.compile(r"\b(?:single|one)\s+(?:integer|number)\b", re.IGNORECASE)
_ONE_NUMBER_RE = re.compile(r"^[-+]?\d+(?:\.\d+)?(?:\s*[^\W\d_][^\d\n]{0,24})?$")
"""One number, optionally followed by a unit (``"22 degrees"``, ``"1.06 m"``, ``"34.8 m²"``)."""
_UNIT_RULES = [
    (re.compile(r"\bsquare\s+met(?:er|re)s?\b|\bm²", re.IGNORECASE), "m2"),
    (re.compile(r"\bin\s+(?:centimet(?:er|re)s|cm)\b", re.IGNORECASE), "cm"),
    (re.compile(r"\bin\s+(?:met(?:er|re)s|m)\b", re.IGNORECASE), "m"),
]
_WORDS_RE = re.compile(
    r"(?:one of these words|single direction|one of)\s*(?::|\()\s*([a-z][a-z ,\-]*?)\s*[.)]",
    re.IGNORECASE,
)
_JSON_RE = re.compile(r"\bJSON\b")


def instruction_violations(user: str, target: str) -> list[str]:
    """The instruction promises in ``user`` that ``target`` breaks (rule names)."""
    from vst.rewards.parsing import extract_json, parse_quantity, split_choice

    out = []
    t = target.strip()
    if _LETTER_ONLY_RE.search(user):
        parts = split_choice(t) or split_choice(t, numbered=True)
        if parts is None or parts[1] or "\n" in t:
            out.append("letter only")
    if _NUMBER_ONLY_RE.search(user) and not _BARE_NUMBER_RE.match(t.rstrip(".")):
        out.append("number only")  # an option number or a value, nothing else
    if _WORD_RE.search(user) and (len(t.split()) > 5 or "\n" in t):
        out.append("single word or phrase")
    if _NUMBER_RE.search(user) and not _ONE_NUMBER_RE.match(t):
        out.append("single number")
    for pattern, unit in _UNIT_RULES:
        if pattern.search(user):
            q = parse_quantity(t)
            if q is not None and q.unit is not None and q.unit != unit:
                out.append(f"unit {unit}")
            break
    m = _WORDS_RE.search(user)
    if m and "," in m.group(1):
        words = {w.strip().lower() for w in m.group(1).split(",") if w.strip()}
        if t.lower().rstrip(".") not in words:
            out.append("listed words")
    if _JSON_RE.search(user) and extract_json(t) is None:
        out.append("json")
    return out


def _instructions(rows: list[dict], th: Thresholds, show: int = 3) -> dict[str, Any]:
    per_rule: Counter[str] = Counter()
    examples: list[dict[str, str]] = []
    bad = 0
    for r in rows:
        found = []
        for user, target in _turns(r["messages"]):
            found += instruction_violations(user, target)
        if found:
            bad += 1
            per_rule.update(set(found))
            if len(examples) < show:
                examples.append({"id": r["id"], "rules": ", ".join(sorted(set(found)))})
    share = bad / len(rows) if rows else 0.0
    return {
        "samples": len(rows),
        "violating_samples": bad,
        "share": round(share, 4),
        "rules": dict(sorted(per_rule.items())),
        "examples": examples,
        "fail": share > th.max_instruction_violation_share,
    }


def answer_style(target: str) -> str | None:
    """``"letter"`` (``"B"``), ``"letter. text"`` (``"B. text"`` / ``"B: text"``, the paper's
    forms) or ``None`` (not an option label) for a multiple-choice target (the assistant's
    text; after reasoning lines, the clause after its "the answer is" cue)."""
    from vst.rewards.parsing import final_answer, split_choice

    answer = final_answer(target).strip().rstrip(".")
    parts = split_choice(answer) or split_choice(answer, numbered=True)
    if parts is None or "\n" in answer:
        return None
    return "letter. text" if parts[1] else "letter"


# --------------------------------------------------------------------------------------------
# the audit
# --------------------------------------------------------------------------------------------


def audit_rows(
    rows: Iterable[dict],
    thresholds: Thresholds | None = None,
    scene_ids: set[str] | None = None,
) -> AuditReport:
    """Audit shard rows (``id``, ``task``, ``answer``, ``reward`` and ``meta`` as JSON strings or
    dicts, ``messages``). ``scene_ids``: the scenes available (None: not checked)."""
    th = thresholds or Thresholds()
    by_task: dict[str, list[dict]] = defaultdict(list)
    report = AuditReport(thresholds=asdict(th))
    for row in rows:
        r = dict(row)
        r["meta"], r["reward"] = _loads(r.get("meta")), _loads(r.get("reward"))
        r["messages"] = r.get("messages") or []
        by_task[str(r.get("task"))].append(r)
        report.samples += 1
    styles: dict[str, Counter[str]] = defaultdict(Counter)
    missing_scenes: Counter[str] = Counter()
    for task in sorted(by_task):
        rows_t = by_task[task]
        checks: dict[str, Any] = {"samples": len(rows_t)}
        checks["visibility"] = _visibility(rows_t, th)
        cov = _floor_coverage(task, rows_t, th)
        if cov is not None:
            checks["floor_coverage"] = cov
        checks["letter_balance"] = _letter_balance(rows_t, th)
        checks["repetition"] = _repetition(task, rows_t, th)
        checks["instructions"] = _instructions(rows_t, th)
        for r in rows_t:
            turns = _turns(r["messages"])
            if r["reward"].get("mode") == "mcq" and turns:
                style = answer_style(turns[-1][1])
                if style:
                    styles[style][task] += 1
            if scene_ids is not None and str(r["meta"].get("scene_id")) not in scene_ids:
                missing_scenes[task] += 1
        report.tasks[task] = checks
        for name, check in checks.items():
            if isinstance(check, dict) and check.get("fail"):
                report.failures.append(f"{task}: {name} {_summary(name, check, th)}")
    report.checks["answer_styles"] = {
        s: dict(sorted(tasks.items())) for s, tasks in sorted(styles.items())
    }
    if len(styles) > 1 and not th.allow_mixed_styles:
        report.failures.append(
            "answer styles mixed: "
            + "; ".join(f"{s!r} in {', '.join(sorted(t))}" for s, t in sorted(styles.items()))
        )
    if scene_ids is not None:
        report.checks["scenes"] = {"samples_without_scene": dict(sorted(missing_scenes.items()))}
        for task, n in sorted(missing_scenes.items()):
            report.failures.append(f"{task}: {n} sample(s) whose scene is not under --scenes")
    return report


def _summary(name: str, c: dict, th: Thresholds) -> str:
    if name == "visibility":
        return (
            f"{c['share_below']:.1%} of referents below {th.min_visible_fraction} visible "
            f"(max {th.max_low_visible_share:.1%}; min {c['min']})"
        )
    if name == "floor_coverage":
        return (
            f"{c['share_below']:.1%} of room-area samples below {th.min_floor_coverage} floor "
            f"coverage (max {th.max_low_coverage_share:.1%}; min {c['min']})"
        )
    if name == "letter_balance":
        return f"unbalanced answer labels {c['counts']} (chi-square p = {c['p_value']:.2g})"
    if name == "repetition":
        return (
            f"duplicate questions {c['duplicate_question_share']:.1%} (max "
            f"{th.max_duplicate_question_share:.0%}), repeated facts "
            f"{c['repeated_fact_share']:.1%} (max {th.max_repeated_fact_share:.0%})"
        )
    if name == "instructions":
        ids = ", ".join(e["id"] for e in c["examples"])
        n = c["violating_samples"]
        return f"{n} target(s) break their instruction {c['rules']} (e.g. {ids})"
    return "failed"


def audit_shards(
    shards: Iterable[Path], thresholds: Thresholds | None = None, scenes: Path | None = None
) -> AuditReport:
    """:func:`audit_rows` over shard files; ``scenes``: a folder of scene directories."""
    scene_ids = None
    if scenes is not None:
        from vst.engine.verify import SceneIndex

        index = SceneIndex(scenes)
        scene_ids = set(index.by_name) | set(index._full_index())
    rows = (row for p in shards for row in iter_rows(p, COLUMNS))
    return audit_rows(rows, thresholds, scene_ids)


def _cell(check: Any) -> str:
    if not isinstance(check, dict):
        return str(check)
    if "status" in check and "fail" not in check:
        return str(check["status"])
    mark = "FAIL" if check.get("fail") else "ok"
    keys = {
        "share_below": "below",
        "min": "min",
        "p_value": "p",
        "duplicate_question_share": "dup q",
        "repeated_fact_share": "rep facts",
        "share": "violations",
    }
    parts = [f"{label} {check[k]}" for k, label in keys.items() if check.get(k) is not None]
    return f"{mark}: " + ", ".join(parts)


def render_markdown(report: AuditReport) -> str:
    """The report as a markdown page (a table per check, then the failures)."""
    cols = ["visibility", "floor_coverage", "letter_balance", "repetition", "instructions"]
    lines = [
        "# Dataset audit",
        "",
        f"{report.samples} samples, {len(report.tasks)} tasks: "
        + ("**PASS**" if report.ok else f"**FAIL** ({len(report.failures)} finding(s))"),
        "",
        "| task | samples | " + " | ".join(c.replace("_", " ") for c in cols) + " |",
        "|---" * (len(cols) + 2) + "|",
    ]
    for task, checks in report.tasks.items():
        cells = [_cell(checks[c]) if c in checks else "-" for c in cols]
        lines.append(f"| {task} | {checks['samples']} | " + " | ".join(cells) + " |")
    lines += ["", "## Answer styles (multiple choice)", ""]
    for style, tasks in report.checks.get("answer_styles", {}).items():
        lines.append(f"- `{style}`: " + ", ".join(f"{t} ({n})" for t, n in tasks.items()))
    if "scenes" in report.checks:
        missing = report.checks["scenes"]["samples_without_scene"]
        lines += ["", f"Samples whose scene is missing: {sum(missing.values())}"]
    lines += ["", "## Thresholds", ""]
    lines += [f"- `{k}`: {v}" for k, v in report.thresholds.items()]
    lines += ["", "## Findings", ""]
    lines += [f"- {f}" for f in report.failures] or ["None: every threshold holds."]
    return "\n".join(lines) + "\n"


def write_report(report: AuditReport, folder: Path) -> Path:
    """Write ``audit.json`` and ``audit.md`` into ``folder`` (created); return the markdown's
    path. Raises OSError when the folder cannot be written."""
    folder.mkdir(parents=True, exist_ok=True)
    text = json.dumps(report.to_json(), indent=2, sort_keys=True) + "\n"
    (folder / "audit.json").write_text(text, encoding="utf-8")
    (folder / "audit.md").write_text(render_markdown(report), encoding="utf-8")
    return folder / "audit.md"
