"""vstp: vst's own test split judged with the samples' reward specs, and the whole harness on
the tiny checkpoint, locally and through `vst models serve` (same predictions both ways)."""

from __future__ import annotations

import json

import pytest

from vst.engine.writer import iter_rows, list_shards
from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.vstp import VstP
from vst.eval.harness import predictions_path, run_benchmark
from vst.models.backends import ScriptedBackend


def _references(run) -> dict[str, str]:
    out = {}
    for shard in list_shards(run):
        for row in iter_rows(shard, ["id", "messages"]):
            turns = [m for m in row["messages"] if m["role"] == "assistant"]
            out[row["id"]] = turns[-1]["content"][0]["text"]
    return out


def test_reference_answers_score_one_and_wrong_answers_zero(all_tasks_run, tmp_path):
    refs = _references(all_tasks_run)
    bench = VstP(split=None, per_task=2)
    right = run_benchmark(
        bench, ScriptedBackend(lambda r, i: refs[r.id]), all_tasks_run, tmp_path / "a"
    )
    tasks = right.score.breakdown["task"]
    assert len(tasks) == 17  # 19 tasks minus the two caption tasks (not rule-checkable)
    for task, acc in tasks.items():
        if task.endswith("det3d"):  # answers are rounded to 2 decimals: IoU just below 1
            assert 0.9 < acc <= 1.0, task
        else:
            assert acc == 1.0, task
    wrong = run_benchmark(bench, ScriptedBackend(lambda r, i: "zzz"), all_tasks_run, tmp_path / "b")
    assert wrong.score.official == 0.0 and wrong.score.variants["micro"] == 0.0
    # macro over tasks vs micro over samples: equal weights per task
    assert right.score.official == pytest.approx(sum(tasks.values()) / len(tasks))


def test_split_filter_and_errors(all_tasks_run, tmp_path):
    with pytest.raises(BenchmarkDataError, match="no checkable samples of split 'test'"):
        list(VstP().read(all_tasks_run))
    with pytest.raises(BenchmarkDataError, match="no vst shards"):
        list(VstP(split=None).read(tmp_path))


@pytest.mark.slow
def test_tiny_model_same_predictions_locally_and_served(all_tasks_run, tiny_model_dir, tmp_path):
    from vst.models.backends import open_backend
    from vst.models.backends.openai import OpenAIBackend
    from vst.models.server import ServerThread, create_app

    bench = VstP(split=None, per_task=1)
    local = open_backend(tiny_model_dir, batch_size=4)
    try:
        a = run_benchmark(bench, local, all_tasks_run, tmp_path / "local", limit=6)
        with ServerThread(create_app(local, "tiny")) as server:
            client = OpenAIBackend(server.url, timeout=120.0)
            b = run_benchmark(bench, client, all_tasks_run, tmp_path / "served", limit=6)
            client.close()
    finally:
        local.close()
    assert a.items == b.items == 6 and not a.failed and not b.failed

    def lines(run):
        path = predictions_path(tmp_path / run, "vstp")
        return [json.loads(x) for x in path.read_text().splitlines()]

    for x, y in zip(lines("local"), lines("served"), strict=True):
        if x["fields"]["scenario"] == "video":  # JPEG frames on the wire: pixels differ
            continue
        assert (x["id"], x["request"], x["text"], x["scores"]) == (
            y["id"],
            y["request"],
            y["text"],
            y["scores"],
        )
