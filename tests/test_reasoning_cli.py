"""vst reason rl-set / filter from the command line: outputs, report, errors."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vst.cli import app
from vst.engine.writer import iter_rows, list_shards


def test_rl_set_then_filter_with_the_tiny_model(all_tasks_run, tiny_model_dir, tmp_path):
    cfg = tmp_path / "rl.yaml"
    cfg.write_text(
        f"output: {tmp_path / 'rl'}\nvst: [{all_tasks_run}]\ntasks: ['si_*']\n"
        "per_task_mode: 1\nseed: 0\n"
    )
    runner = CliRunner()
    built = runner.invoke(app, ["reason", "rl-set", str(cfg)])
    assert built.exit_code == 0, built.output
    rows = [r for s in list_shards(tmp_path / "rl") for r in iter_rows(s, ["task", "reward"])]
    groups = {(r["task"], json.loads(r["reward"])["mode"]) for r in rows}
    assert len(rows) == len(groups) >= 5  # one per (task, mode), single-image tasks only
    assert all(task.startswith("si_") for task, _ in groups)
    assert (tmp_path / "rl" / "trl" / "train.parquet").is_file()
    assert f"RL set {tmp_path / 'rl' / 'data'}" in built.output

    out = tmp_path / "passk"
    args = ["reason", "filter", str(tmp_path / "rl"), "--model", str(tiny_model_dir)]
    args += ["--out", str(out), "--k", "2", "--max-tokens", "4"]
    filtered = runner.invoke(app, args)
    assert filtered.exit_code == 0, filtered.output
    rates = [json.loads(x) for x in (out / "pass_rates.jsonl").read_text().splitlines()]
    assert len(rates) == len(rows) and all(r["k"] == 2 for r in rates)
    kept = sum(1 for r in rates if 0 < r["correct"] < 2)
    kept_rows = [r for s in list_shards(out) for r in iter_rows(s, ["id"])] if kept else []
    assert len(kept_rows) == kept
    assert (out / "pass_rates.png").is_file() and "histogram" in filtered.output
    first = json.loads((out / "report.json").read_text())
    assert first["calls"] == len(rows) and first["scored"] == len(rows)
    again = runner.invoke(app, args)  # every answer comes from the cache: nothing is asked
    assert again.exit_code == 0, again.output
    second = json.loads((out / "report.json").read_text())
    assert second["calls"] == 0 and second["cached"] == len(rows)
    assert second["histogram"] == first["histogram"] and "Requests sent: 0" in again.output


def test_errors_exit_2(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: x\nvst: [nowhere]\nunknown_key: 1\n")
    result = runner.invoke(app, ["reason", "rl-set", str(bad)])
    assert result.exit_code == 2 and "unknown_key" in result.output
    result = runner.invoke(
        app, ["reason", "filter", str(tmp_path), "--model", str(tmp_path / "none"), "--out", "o"]
    )
    assert result.exit_code == 2 and "error" in result.output


def test_cot_offline_from_the_command_line(all_tasks_run, engine_scene_dirs, tmp_path):
    cfg = tmp_path / "cot.yaml"
    scenes = Path(engine_scene_dirs[0]).parent
    cfg.write_text(
        f"data: {all_tasks_run}\nscenes: {scenes}\nkind: num\nlimit: 12\nseed: 0\n"
        f"output_dir: {tmp_path / 'cot'}\n"
    )
    runner = CliRunner()
    result = runner.invoke(app, ["reason", "cot", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    rows = [r for s in list_shards(tmp_path / "cot") for r in iter_rows(s, ["messages", "meta"])]
    assert 0 < len(rows) <= 12
    for r in rows:
        cot = json.loads(r["meta"])["cot"]
        assert cot["source"] == "offline" and cot["kind"] == "num" and cot["teacher"] is None
        assert r["messages"][-1]["content"][0]["text"].startswith("<think>")
    assert f"CoT data {tmp_path / 'cot' / 'data'}" in result.output
    bad = runner.invoke(app, ["reason", "cot", str(cfg), "-o", "kind=poem"])
    assert bad.exit_code == 2 and "kind" in bad.output


def test_shipped_reason_configs_parse(tmp_path):
    """configs/reason/*.yaml are valid once their input folders exist."""
    import yaml

    from vst.reasoning.cot import parse_cot_config
    from vst.reasoning.rlset import RLSetConfig

    root = Path(__file__).resolve().parents[1] / "configs" / "reason"
    for path in sorted(root.glob("cot_*.yaml")):
        data = yaml.safe_load(path.read_text())
        data.update(data=str(tmp_path), scenes=str(tmp_path))
        cfg = parse_cot_config(data, str(path))
        assert cfg.kind in ("num", "rt", "rt_bev"), path
    rl = RLSetConfig.model_validate(yaml.safe_load((root / "rl_set_demo.yaml").read_text()))
    assert rl.per_task_mode == 40
