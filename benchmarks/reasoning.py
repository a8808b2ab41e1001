"""Speed of VST-R's pipelines on one engine run, each against a baseline in the same run.

Run: ``.venv/bin/python benchmarks/reasoning.py [--num-scenes 3] [--per-scene 24]``.

Set-up: synthetic rooms (320 x 240) and one engine run of the four VST-R CoT tasks
(mi_object_object, mi_camera_object, mi_camera_camera, mi_camera_motion) plus si_distance.

(a) offline CoT (``run_offline_cot``, kinds num and rt): source samples per second end to end
    (facts, both texts, reward checks, shard writing). Baseline: ``sample_facts`` alone on the
    same rows (the scene rebuild every CoT needs).
(b) the teacher pipeline (``run_cot`` kind rt_bev) with an instant scripted teacher that answers
    every request right: samples per second of vst's own work per request (facts, BEV, prompt,
    parse, reward and hallucination checks, shards, chunk records, report). Baseline: building
    the requests alone (``sample_facts`` with the BEV + ``cot_request``). A real teacher's
    latency comes on top (its concurrency hides it: the backend sends ``concurrency`` at once).
(c) the pass@k filter (``run_pass_k``, k = 4) with an instant scripted model: prompts per second
    (requests, scoring, pass rates, shards, histogram). Baseline: ``compute_reward`` of the same
    k answers per prompt alone.

Prints one line per measurement with the ratio to its baseline. No budgets: the teacher's
latency dominates a real run; these figures say what vst adds.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from small_run import small_engine_run

TASKS = ("mi_object_object", "mi_camera_object", "mi_camera_camera", "mi_camera_motion")


def _engine_run(root: Path, num_scenes: int, per_scene: int) -> tuple[Path, Path]:
    tasks = [{"name": t, "per_scene": per_scene} for t in (*TASKS, "si_distance")]
    return small_engine_run(root, num_scenes, tasks, "benchmarks/reasoning.py")


def _rows(run_dir: Path, tasks: tuple[str, ...]) -> list[dict]:
    from vst.engine.writer import iter_rows, list_shards

    return [r for s in list_shards(run_dir) for r in iter_rows(s) if r["task"] in tasks]


def bench_offline(run_dir: Path, scenes: Path, out: Path) -> list[str]:
    from vst.engine.verify import SceneIndex
    from vst.reasoning.facts import sample_facts
    from vst.reasoning.offline_run import run_offline_cot

    rows = _rows(run_dir, TASKS)
    index = SceneIndex(scenes)
    t0 = time.perf_counter()
    for row in rows:
        sample_facts(row, index)
    t_facts = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = run_offline_cot(run_dir, scenes, out, kinds=("num", "rt"), tasks=TASKS)
    t_run = time.perf_counter() - t0
    n = len(rows)
    return [
        f"(a) offline CoT (num + rt) of {n} samples: kept {report.kept}, skipped {report.skipped}",
        f"    run_offline_cot          {t_run:6.2f} s = {n / t_run:7.1f} samples/s "
        f"({report.kept / t_run:.1f} CoT/s)",
        f"    baseline: sample_facts   {t_facts:6.2f} s = {n / t_facts:7.1f} samples/s; the run "
        f"takes {t_run / t_facts:.2f}x the facts alone",
    ]


def bench_teacher(run_dir: Path, scenes: Path, out: Path) -> list[str]:
    from vst.engine.verify import SceneIndex
    from vst.models.backends import ScriptedBackend
    from vst.reasoning.cot import parse_cot_config, run_cot
    from vst.reasoning.facts import sample_facts
    from vst.reasoning.prompts import cot_request

    pattern = re.compile(r"Question:\n(.*?)\n\nReference answer: (.*?)\n\n", re.DOTALL)

    def reply(request, _index: int) -> str:
        question, answer = pattern.search(request.messages[-1]["content"][-1]["text"]).groups()
        reasoning = "Comparing the two views and the top view, the layout gives the answer."
        return json.dumps({"question": question, "reasoning": reasoning, "answer": answer})

    rows = _rows(run_dir, TASKS)
    index = SceneIndex(scenes)
    t0 = time.perf_counter()
    for row in rows:
        cot_request(sample_facts(row, index, bev=True), "rt_bev")
    t_build = time.perf_counter() - t0
    config = parse_cot_config(
        {
            "data": str(run_dir),
            "scenes": str(scenes),
            "kind": "rt_bev",
            "output_dir": str(out),
            "teacher": {"url": "http://127.0.0.1:9", "model": "scripted"},
        }
    )
    t0 = time.perf_counter()
    report = run_cot(config, backend=ScriptedBackend(reply))
    t_run = time.perf_counter() - t0
    n = report.selected
    return [
        f"(b) teacher CoT (rt_bev), instant scripted teacher: {n} samples, kept {report.kept}",
        f"    run_cot                  {t_run:6.2f} s = {n / t_run:7.1f} samples/s",
        f"    baseline: requests alone {t_build:6.2f} s = {len(rows) / t_build:7.1f} samples/s "
        f"(facts + BEV + prompt); the run takes {t_run / t_build:.2f}x the requests alone",
    ]


def bench_passk(run_dir: Path, out: Path) -> list[str]:
    from vst.models.backends import ScriptedBackend
    from vst.reasoning.passk import run_pass_k
    from vst.rewards import compute_reward

    rows = [
        r
        for r in _rows(run_dir, ("si_distance", *TASKS))
        if json.loads(r["reward"])["mode"] != "caption"
    ]
    answers = {r["id"]: r["messages"][-1]["content"][0]["text"] for r in rows}

    def reply(request, index: int) -> str:  # right on the even samples: every prompt is kept
        answer = answers.get(request.id, "")
        return f"<think>r</think>{answer}" if index % 2 == 0 else "<think>r</think>none"

    t0 = time.perf_counter()
    for r in rows:
        for j in range(4):
            text = f"<think>r</think>{answers[r['id']]}" if j % 2 == 0 else "<think>r</think>none"
            compute_reward(text, r["reward"])
    t_score = time.perf_counter() - t0
    t0 = time.perf_counter()
    report = run_pass_k(run_dir, ScriptedBackend(reply), k=4, out=out, cache=False)
    t_run = time.perf_counter() - t0
    return [
        f"(c) pass@4 filter, instant scripted model: {report.scored} prompts, kept {report.kept}",
        f"    run_pass_k               {t_run:6.2f} s = {report.scored / t_run:7.1f} prompts/s",
        f"    baseline: rewards alone  {t_score:6.2f} s = {len(rows) / t_score:7.1f} prompts/s"
        f"; the run takes {t_run / t_score:.1f}x the rewards alone",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--num-scenes", type=int, default=3)
    parser.add_argument("--per-scene", type=int, default=24)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="vst-bench-reasoning-"))
    try:
        t0 = time.perf_counter()
        run_dir, scenes = _engine_run(root, args.num_scenes, args.per_scene)
        print(f"set-up: {args.num_scenes} scenes, engine run in {time.perf_counter() - t0:.1f} s")
        for lines in (
            bench_offline(run_dir, scenes, root / "offline"),
            bench_teacher(run_dir, scenes, root / "teacher"),
            bench_passk(run_dir, root / "passk"),
        ):
            print("\n".join(lines), flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
