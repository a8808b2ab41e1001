"""`vst demo` end to end: the README's main job writes its outputs, and its data passes its own
answer verification and quality audit (the command fails otherwise)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vst.cli import app


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
    # the tiny model answered the first 3 samples of every task, each answer scored
    lines = [json.loads(ln) for ln in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 19 * 3
    assert {ln["task"] for ln in lines} == set(audit["tasks"])
    assert all(set(ln["reward"]) >= {"accuracy", "format"} for ln in lines)
    assert (out / "tiny-model" / "model.safetensors").is_file()
    assert (out / "predictions.jsonl.report.md").is_file()
