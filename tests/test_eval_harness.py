"""The evaluation harness on a small benchmark defined here: predictions files, judging under
every rule, resume after a kill, cached reruns, failures, reports, the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app
from vst.eval.benchmarks.base import BenchItem, Benchmark, BenchScore, JudgedItem
from vst.eval.harness import EvalError, predictions_path, run_benchmark, score_path
from vst.eval.registry import register
from vst.eval.report import compare_runs, s_avg, write_report
from vst.models import Request
from vst.models.backends import CachedBackend, ScriptedBackend


class Letters(Benchmark):
    """Questions 'q<i>' with answer letter 'A' for even i, 'B' for odd; category by i % 3.
    Rules: official = the reply's first character; lenient = any A/B letter in the reply."""

    name = "letters"

    def __init__(self, n: int = 10) -> None:
        self.n = n

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        for i in range(self.n):
            content = [{"type": "image"}, {"type": "text", "text": f"q{i}: A or B?"}]
            yield BenchItem(
                f"q{i}",
                Request([{"role": "user", "content": content}], [Image.new("RGB", (28, 28))]),
                "A" if i % 2 == 0 else "B",
                {"category": f"c{i % 3}"},
            )

    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        first = reply[:1]
        lenient = next((ch for ch in reply if ch in "AB"), None)
        scores = {"official": float(first == item.truth), "lenient": float(lenient == item.truth)}
        return JudgedItem(item.id, item.fields, item.truth, first, scores)

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        def mean(rule: str, rows: Sequence[JudgedItem]) -> float:
            return sum(j.scores[rule] for j in rows) / len(rows) if rows else 0.0

        cats = sorted({j.fields["category"] for j in judged})
        by_cat = {
            c: mean("official", [j for j in judged if j.fields["category"] == c]) for c in cats
        }
        variants = {"official": mean("official", judged), "lenient": mean("lenient", judged)}
        return BenchScore(
            self.name, variants["official"], variants, {"category": by_cat}, len(judged)
        )


register("letters", Letters)


def _answer(request: Request, index: int) -> str:
    i = int(request.messages[0]["content"][1]["text"].split(":")[0][1:])
    truth = "A" if i % 2 == 0 else "B"
    return truth if i % 4 != 3 else f"I think {truth}"  # i = 3, 7: verbose (lenient only)


def test_run_writes_predictions_and_scores(tmp_path):
    backend = ScriptedBackend(_answer, model_id="m")
    run = run_benchmark(Letters(), backend, tmp_path, tmp_path / "run")
    assert (run.items, run.asked, run.reused, run.failed) == (10, 10, 0, [])
    # official: 8 of 10 (q3 and q7 are verbose); lenient: 10 of 10
    assert run.score.official == pytest.approx(0.8)
    assert run.score.variants["lenient"] == 1.0
    # by category: c0 = q0 q3 q6 q9 -> 3/4; c1 = q1 q4 q7 -> 2/3; c2 = q2 q5 q8 -> 1
    assert run.score.breakdown["category"] == pytest.approx({"c0": 0.75, "c1": 2 / 3, "c2": 1.0})
    lines = [
        json.loads(x)
        for x in predictions_path(tmp_path / "run", "letters").read_text().splitlines()
    ]
    assert [ln["id"] for ln in lines] == [f"q{i}" for i in range(10)]
    assert lines[3]["text"] == "I think B" and lines[3]["scores"] == {
        "official": 0.0,
        "lenient": 1.0,
    }
    assert lines[0]["model"] == "m" and lines[0]["dataset"] == "letters"
    assert lines[0]["request"] == next(Letters().read(tmp_path)).request.fingerprint()
    score = json.loads(score_path(tmp_path / "run", "letters").read_text())
    assert score["official"] == pytest.approx(0.8) and score["items"] == 10


def test_killed_run_resumes_to_the_same_bytes_and_a_cached_rerun_asks_nothing(tmp_path):
    whole = tmp_path / "whole"
    run_benchmark(Letters(), ScriptedBackend(_answer, model_id="m"), tmp_path, whole, chunk=3)
    asked: list[str] = []

    def dying(request: Request, index: int) -> str:
        asked.append(request.id)
        if len(asked) > 5:
            raise KeyboardInterrupt
        return _answer(request, index)

    part = tmp_path / "part"
    with pytest.raises(KeyboardInterrupt):
        run_benchmark(Letters(), ScriptedBackend(dying, model_id="m"), tmp_path, part, chunk=3)
    # the first chunk (3 answers) is on disk; the second died mid-way
    assert len(predictions_path(part, "letters").read_text().splitlines()) == 3
    again = ScriptedBackend(_answer, model_id="m")
    resumed = run_benchmark(Letters(), again, tmp_path, part, chunk=3)
    assert resumed.reused == 3 and resumed.asked == 7
    assert sum(len(c) for c in again.calls) == 7
    for name in ("letters.predictions.jsonl", "letters.score.json"):
        assert (part / name).read_bytes() == (whole / name).read_bytes(), name

    cached = CachedBackend(ScriptedBackend(_answer, model_id="m"), tmp_path / "cache")
    run_benchmark(Letters(), cached, tmp_path, tmp_path / "c1")
    inner = ScriptedBackend(_answer, model_id="m")
    rerun = run_benchmark(
        Letters(), CachedBackend(inner, tmp_path / "cache"), tmp_path, tmp_path / "c2"
    )
    assert inner.calls == [] or all(not c for c in inner.calls)
    assert rerun.score.official == pytest.approx(0.8)


def test_failed_requests_are_listed_not_written_and_retried(tmp_path):
    def flaky(request: Request, index: int) -> str:
        if request.messages[0]["content"][1]["text"].startswith("q4:"):
            raise RuntimeError("HTTP 500")
        return _answer(request, index)

    first = run_benchmark(Letters(), ScriptedBackend(flaky, model_id="m"), tmp_path, tmp_path / "r")
    assert [f["id"] for f in first.failed] == ["q4"] and "HTTP 500" in first.failed[0]["error"]
    assert first.score.items == 9
    again = ScriptedBackend(_answer, model_id="m")
    second = run_benchmark(Letters(), again, tmp_path, tmp_path / "r")
    assert [r.id for c in again.calls for r in c] == ["q4"] and second.failed == []
    with pytest.raises(EvalError, match="another model"):
        run_benchmark(
            Letters(), ScriptedBackend(_answer, model_id="other"), tmp_path, tmp_path / "r"
        )


def test_report_and_comparison(tmp_path):
    run_benchmark(Letters(), ScriptedBackend(_answer, model_id="m"), tmp_path, tmp_path / "a")
    run_benchmark(
        Letters(4), ScriptedBackend(lambda r, i: "A", model_id="m"), tmp_path, tmp_path / "b"
    )
    md, js, png = write_report(tmp_path / "a")
    text = md.read_text()
    assert "| letters | 10 | 80.0 | lenient 100.0 | 0 |" in text
    assert "S-AVG" in text and json.loads(js.read_text())["s_avg"] is None
    assert png.read_bytes()[:4] == b"\x89PNG"
    table = compare_runs([tmp_path / "a", tmp_path / "b"])
    assert "| letters | 80.0 | 50.0 |" in table
    five = {
        b: {"official": v}
        for b, v in zip(
            ("cvbench", "3dsrbench", "blink", "mmsi", "vsibench"),
            (0.5, 0.6, 0.7, 0.8, 0.9),
            strict=True,
        )
    }
    assert s_avg(five) == pytest.approx(0.7)


def test_cli_run_score_report(tmp_path, monkeypatch):
    from vst.models.backends import factory

    monkeypatch.setattr(
        factory, "open_backend", lambda *a, **k: ScriptedBackend(_answer, model_id="m")
    )
    import vst.models.backends as backends

    monkeypatch.setattr(
        backends, "open_backend", lambda *a, **k: ScriptedBackend(_answer, model_id="m")
    )
    (tmp_path / "m").mkdir()
    out = tmp_path / "run"
    runner = CliRunner()
    args = [
        "eval",
        "run",
        "--model",
        str(tmp_path / "m"),
        "--benchmarks",
        "letters",
        "--data-root",
        str(tmp_path),
        "--out",
        str(out),
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "letters: 10 items (10 asked, 0 reused, 0 failed), official 80.0" in result.output
    assert (out / "report.md").is_file()
    scored = runner.invoke(
        app,
        [
            "eval",
            "score",
            "letters",
            "--predictions",
            str(out / "letters.predictions.jsonl"),
            "--data-root",
            str(tmp_path),
        ],
    )
    assert scored.exit_code == 0 and "lenient        100.0" in scored.output
    bad = runner.invoke(app, [*args[:4], "--benchmarks", "nope", *args[6:]])
    assert bad.exit_code == 2 and "unknown benchmark 'nope'" in bad.output
    rep = runner.invoke(app, ["eval", "report", str(out)])
    assert rep.exit_code == 0 and "| letters | 80.0 |" in rep.output
