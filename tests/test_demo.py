"""`vst demo` end to end: the README's main job writes its outputs, its data passes its own
answer verification and quality audit (the command fails otherwise), the tiny model is trained
on the train split only and evaluated on the held-out ``vstp`` split and every benchmark
fixture, and a rerun reuses everything."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vst.cli import app
from vst.demo import (
    BENCH_LIMIT,
    DEMO_PER_TASK,
    FIXTURE_BENCHMARKS,
    RL_STEPS,
    TRAIN_STEPS,
    rl_config,
    train_config,
)
from vst.engine.writer import iter_rows, list_shards


def _scene_splits(data) -> tuple[dict[str, str], dict[str, str]]:
    """sample id -> scene id, scene id -> split, over the demo's shards."""
    scene_of, split_of = {}, {}
    for shard in list_shards(data):
        for row in iter_rows(shard):
            meta = json.loads(row["meta"])
            scene_of[row["id"]] = meta["scene_id"]
            split_of[meta["scene_id"]] = meta["split"]
    return scene_of, split_of


@pytest.mark.slow
def test_demo_writes_outputs_that_pass_verify_and_audit(tmp_path, monkeypatch):
    monkeypatch.setenv("MUJOCO_GL", "egl")
    out = tmp_path / "demo"
    result = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    for name in ("report.md", "audit.md", "audit.json"):
        assert (out / name).is_file(), name
    assert list((out / "data").glob("*.parquet"))
    assert list((out / "sheets").glob("*.png"))
    audit = json.loads((out / "audit.json").read_text())
    assert audit["ok"] is True and not audit["failures"]
    # every task of the demo produced samples; the room scans let video_metric ask room areas,
    # each from a clip that shows at least 0.8 of the floor
    assert len(audit["tasks"]) == 19
    rooms = audit["tasks"]["video_metric"]["floor_coverage"]
    assert rooms["room_samples"] >= 1 and rooms["min"] >= 0.8
    for task, checks in audit["tasks"].items():
        if "visibility" in checks and "min" in checks["visibility"]:
            assert checks["visibility"]["min"] >= 0.5, task
    assert "problem" not in result.output

    # 3 training rooms and 1 held-out room, every task drawn from both splits
    scene_of, split_of = _scene_splits(out / "data")
    assert sorted(split_of.values()) == ["test", "train", "train", "train"]
    test_scenes = {s for s, split in split_of.items() if split == "test"}

    # VST-R offline CoT from ground truth: loads as thinking-prompt training data
    from vst.train.data import open_source, source_from_dict

    cot = open_source(
        source_from_dict({"kind": "vst", "path": str(out / "cot"), "system": "think"}, "cot")
    )
    assert len(cot) >= 20 and not cot.skipped
    first = cot.load(0)
    assert first.messages[-1]["content"][0]["text"].startswith("<think>")
    assert first.meta["task"] in (
        "mi_object_object",
        "mi_camera_object",
        "mi_camera_camera",
        "mi_camera_motion",
    )

    # the tiny model was fine-tuned for TRAIN_STEPS steps on train-split samples only
    from vst.train.config import parse_train_config
    from vst.train.trainer import load_examples

    assert (out / "tiny-model" / "model.safetensors").is_file()
    trained = out / "trained-model"
    assert (trained / "model.safetensors").is_file()
    metrics = [json.loads(ln) for ln in (trained / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics if "loss" in m]
    assert len(losses) == TRAIN_STEPS and metrics[-1]["step"] == TRAIN_STEPS
    # it learned something: the last 5 steps' mean loss is well below the first 5 steps'
    assert sum(losses[:5]) / 5 - sum(losses[-5:]) / 5 > 0.5, losses
    examples, _ = load_examples(parse_train_config(train_config(out)), "demo")
    used = {scene_of[ex.id] for ex in examples}
    assert used and not used & test_scenes
    assert len(examples) == sum(split_of[s] == "train" for s in scene_of.values())

    # then RL_STEPS GRPO steps on the SFT model, train split only, online filter on
    from vst.train.grpo import load_rl_prompts
    from vst.train.grpo_config import parse_grpo_config

    rl = out / "rl-model"
    assert (rl / "model.safetensors").is_file() and (rl / "metrics.png").is_file()
    rows = [json.loads(ln) for ln in (rl / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == list(range(1, RL_STEPS + 1))
    assert all(r["vst/groups_drawn"] >= 4 and "vst/accuracy" in r for r in rows)
    prompts, _ = load_rl_prompts(parse_grpo_config(rl_config(out)), "demo")
    rl_ids = {prompts.examples[i].id for i in range(len(prompts))}
    assert rl_ids and not {scene_of[i] for i in rl_ids} & test_scenes

    # the eval run: a score file per benchmark and the report
    run = out / "eval"
    for name in ("vstp", *FIXTURE_BENCHMARKS):
        score = json.loads((run / f"{name}.score.json").read_text())
        assert score["benchmark"] == name and score["items"] > 0 and not score["failed"], name
        assert score["model"].startswith("transformers:rl-model:"), name
        if name != "vstp":
            assert 0 < score["items"] <= BENCH_LIMIT, name
        lines = (run / f"{name}.predictions.jsonl").read_text().splitlines()
        assert len(lines) == score["items"], name
    report = (run / "report.md").read_text()
    assert all(f"| {name} |" in report for name in ("vstp", *FIXTURE_BENCHMARKS))
    assert (run / "report.json").is_file()
    # vstp asked the held-out room's samples only: DEMO_PER_TASK of each checkable task
    vstp = [json.loads(ln) for ln in (run / "vstp.predictions.jsonl").read_text().splitlines()]
    assert {scene_of[r["id"]] for r in vstp} == test_scenes
    per_task = {}
    for r in vstp:
        per_task[r["task"]] = per_task.get(r["task"], 0) + 1
    assert len(per_task) >= 17 and set(per_task.values()) == {DEMO_PER_TASK}
    # the trained model carries its training-data manifest: no training scene is in vstp
    overlap = json.loads((run / "vstp.score.json").read_text())["training_overlap"]
    assert overlap["manifest"] is True and overlap["overlap"] == []
    outputs = ("trained model", "GRPO model", "eval run", "eval report", "benchmark fixtures")
    for name in (*outputs, "CoT data"):
        assert name in result.output, name
    # the viewer of the dataset, with the vstp answers of the trained model, is printed last
    site = out / "site"
    index = site / "index.html"
    assert index.is_file() and (site / "failures.html").is_file()
    assert f"viewer: {sum(1 for _ in scene_of)} samples, {len(vstp)} with the model's answer" in (
        " ".join(result.output.split())
    )
    assert str(index) in "".join(result.output.split())

    # a rerun reuses every output: no training, no model call, the same predictions
    before = {p.name: p.read_bytes() for p in run.glob("*.predictions.jsonl")}
    again = CliRunner().invoke(app, ["demo", "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert "trained model found, kept" in again.output
    assert "GRPO model found, kept" in again.output
    assert {p.name: p.read_bytes() for p in run.glob("*.predictions.jsonl")} == before
    for name in ("vstp", *FIXTURE_BENCHMARKS):
        assert json.loads((run / f"{name}.score.json").read_text())["items"] > 0
