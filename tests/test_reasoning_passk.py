"""The pass@k difficulty filter with a scripted model whose correctness per prompt is known."""

from __future__ import annotations

import json
from collections import Counter

import pytest
from PIL import Image

from vst.engine.writer import iter_rows, list_shards
from vst.models.backends import Sampling, ScriptedBackend
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.reasoning.passk import run_pass_k
from vst.rewards import compute_reward, load_reward_specs

K = 4
WRONG = "<think>guess</think> zzqx"


def _usable(run):
    """The rows the filter asks (not caption, no video), in id order, and the skips expected."""
    rows, skipped = [], Counter()
    for shard in list_shards(run):
        for row in iter_rows(shard):
            mode = load_reward_specs(row["reward"])[0]["mode"]
            if mode == "caption":
                skipped["caption"] += 1
            elif row["videos"]:
                skipped["video"] += 1
            else:
                rows.append(row)
    return sorted(rows, key=lambda r: r["id"]), skipped


@pytest.fixture(scope="module")
def plan(all_tasks_run):
    """Prompt i (in id order) is right on its first i % (K + 1) samples."""
    rows, skipped = _usable(all_tasks_run)
    right = {}
    for i, row in enumerate(rows):
        spec = row["reward"]
        det3d = load_reward_specs(spec)[0]["mode"] == "det3d"
        good = compute_reward(f"<think>ok</think> {row['answer']}", spec)["accuracy"]
        assert good >= (0.5 if det3d else 1.0)  # the filter's default thresholds
        assert compute_reward(WRONG, spec)["accuracy"] == 0.0
        right[row["id"]] = (i % (K + 1), row["answer"])
    return rows, skipped, right


def _backend(right, fail=frozenset()):
    def answer(request, index):
        if request.id in fail:
            raise RuntimeError("scripted outage")
        n, text = right[request.id]
        return f"<think>step {index}</think> {text}" if index < n else WRONG

    return ScriptedBackend(answer)


def test_pass_k_keeps_exactly_the_mixed_prompts(all_tasks_run, plan, tmp_path):
    rows, skipped, right = plan
    out = tmp_path / "filter"
    backend = _backend(right)
    report = run_pass_k(
        all_tasks_run, backend, k=K, out=out, sampling=Sampling(temperature=1.0), prices=(2.0, 10.0)
    )

    expected = {sid for sid, (n, _) in right.items() if 0 < n < K}
    kept = [r for s in list_shards(out / "data") for r in iter_rows(s)]
    assert {r["id"] for r in kept} == expected
    assert report.kept == len(expected) and report.scored == len(rows)
    counts = Counter(n for n, _ in right.values())
    assert report.histogram == [counts[j] for j in range(K + 1)]
    assert report.too_hard == counts[0] and report.too_easy == counts[K]
    assert sum(report.skipped.values()) == sum(skipped.values())
    assert report.skipped["caption mode (not rule-checkable)"] == skipped["caption"]
    assert report.calls == len(rows) and report.cached == 0

    # kept rows are the source rows plus meta.pass_k
    by_id = {r["id"]: r for r in rows}
    for row in kept:
        meta = json.loads(row["meta"])
        n = right[row["id"]][0]
        assert meta.pop("pass_k") == {"k": K, "correct": n, "rate": n / K}
        assert meta == json.loads(by_id[row["id"]]["meta"])
        assert row["reward"] == by_id[row["id"]]["reward"]

    # the pass-rate lines: every scored prompt, exact counts and rates
    lines = [json.loads(x) for x in (out / "pass_rates.jsonl").read_text().splitlines()]
    assert len(lines) == len(rows)
    for line in lines:
        n = right[line["id"]][0]
        assert (line["k"], line["correct"], line["rate"]) == (K, n, n / K)
        assert line["task"] == by_id[line["id"]]["task"]
    with Image.open(out / "pass_rates.png") as im:
        assert im.format == "PNG" and im.size[0] > 100
    assert json.loads((out / "report.json").read_text())["histogram"] == report.histogram
    assert f"| 1/{K} | {counts[1]} |" in (out / "report.md").read_text()

    # one request per prompt with n = k; thinking system prompt except det3d
    sent = [r for call in backend.calls for r in call]
    assert len(sent) == len(rows)
    for request in sent:
        det3d = load_reward_specs(by_id[request.id]["reward"])[0]["mode"] == "det3d"
        first = request.messages[0]
        if det3d:
            assert first["role"] == "user"
        else:
            assert first == {
                "role": "system",
                "content": [{"type": "text", "text": THINK_SYSTEM_PROMPT}],
            }

    # tokens as the scripted backend counts them (words), and their cost
    answers = [_backend(right)._answer(r, i) for r in sent for i in range(K)]
    completion = sum(max(1, len(a.split())) for a in answers)
    prompt = sum(
        len(" ".join(c["text"] for m in r.messages for c in m["content"] if "text" in c).split())
        for r in sent
    )
    assert (report.prompt_tokens, report.completion_tokens) == (prompt, completion)
    assert report.cost == pytest.approx((prompt * 2.0 + completion * 10.0) / 1e6)

    # a rerun asks nothing new and gives the same result
    again = _backend(right)
    report2 = run_pass_k(all_tasks_run, again, k=K, out=out, sampling=Sampling(temperature=1.0))
    assert again.calls == []
    assert report2.calls == 0 and report2.cached == len(rows)
    assert report2.histogram == report.histogram and report2.kept == report.kept
    assert report2.prompt_tokens == report2.completion_tokens == 0  # nothing paid for


def test_failed_requests_are_retried_next_run(all_tasks_run, plan, tmp_path):
    rows, _, right = plan
    out = tmp_path / "filter"
    fail = {rows[1]["id"], rows[2]["id"]}  # right on 1 and 2 of 4: kept once answered
    report = run_pass_k(all_tasks_run, _backend(right, fail), k=K, out=out)
    assert len(report.failed) == 2 and all("scripted outage" in f for f in report.failed)
    assert report.scored == len(rows) - 2
    kept = {r["id"] for s in list_shards(out / "data") for r in iter_rows(s)}
    assert not kept & fail

    backend = _backend(right)
    report = run_pass_k(all_tasks_run, backend, k=K, out=out)
    assert sorted(r.id for call in backend.calls for r in call) == sorted(fail)
    assert report.failed == [] and report.scored == len(rows)
    kept = {r["id"] for s in list_shards(out / "data") for r in iter_rows(s)}
    assert fail <= kept


def test_bad_arguments(all_tasks_run, tmp_path):
    backend = ScriptedBackend(lambda r, i: "x")
    with pytest.raises(ValueError, match="k must be"):
        run_pass_k(all_tasks_run, backend, k=1, out=tmp_path)
    with pytest.raises(ValueError, match="no vst shards"):
        run_pass_k(tmp_path, backend, k=2, out=tmp_path / "o")


def test_pass_k_over_an_rl_set_through_an_openai_endpoint(all_tasks_run, tmp_path):
    """The filter reads an RL set (vst.reasoning.rlset) and asks a model by URL; the local
    OpenAI-compatible server answers from a script keyed by the question text."""
    from vst.models.server import ServerThread, create_app
    from vst.reasoning.rlset import RLSetConfig, build_rl_set

    rl = tmp_path / "rl"
    build_rl_set(RLSetConfig(output=rl, vst=[all_tasks_run], per_task_mode=1, export_trl=False))
    rows = sorted((r for s in list_shards(rl) for r in iter_rows(s)), key=lambda r: r["id"])
    k = 3

    def question(messages):
        user = [m for m in messages if m["role"] == "user"][-1]
        return " ".join(c["text"] for c in user["content"] if c["type"] == "text")

    plan = {question(r["messages"]): (i % (k + 1), r["answer"]) for i, r in enumerate(rows)}
    assert len(plan) == len(rows)
    served = ScriptedBackend(
        lambda req, i: (
            f"<think>s</think> {plan[question(req.messages)][1]}"
            if i < plan[question(req.messages)][0]
            else WRONG
        )
    )
    out = tmp_path / "filter"
    with ServerThread(create_app(served, "scripted")) as server:
        report = run_pass_k(rl, server.url, k=k, out=out)
        n_calls = len(served.calls)
        again = run_pass_k(rl, server.url, k=k, out=out)
    expected = {r["id"] for i, r in enumerate(rows) if 0 < i % (k + 1) < k}
    assert {r["id"] for s in list_shards(out / "data") for r in iter_rows(s)} == expected
    assert report.scored == len(rows) and report.calls == len(rows) and n_calls > 0
    counts = Counter(i % (k + 1) for i in range(len(rows)))
    assert report.histogram == [counts[j] for j in range(k + 1)]
    assert len(served.calls) == n_calls and again.calls == 0 and again.kept == report.kept


def test_output_must_not_be_the_input(all_tasks_run):
    with pytest.raises(ValueError, match="is also the input"):
        run_pass_k(all_tasks_run, ScriptedBackend(lambda r, i: "x"), k=2, out=all_tasks_run)
