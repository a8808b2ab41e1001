"""docs/training.md's Python examples (SFT, then GRPO on its model) run as written, from a
folder laid out as its commands leave it (outputs/tiny-model, outputs/engine-demo, the repo's
configs/)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "training.md"


@pytest.mark.slow
def test_training_page_example_runs(tmp_path, monkeypatch, tiny_model_dir, all_tasks_run):
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "tiny-model").symlink_to(tiny_model_dir)
    (tmp_path / "outputs" / "engine-demo").symlink_to(all_tasks_run)
    (tmp_path / "configs").symlink_to(ROOT / "configs")
    monkeypatch.chdir(tmp_path)
    sft, grpo = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(sft, "docs/training.md", "exec"), {"__name__": "docs"})
    printed = out.getvalue().split()
    assert printed[0] == "outputs/train/tiny_cpu_demo" and printed[1] == "5"
    assert (tmp_path / "outputs" / "train" / "tiny_cpu_demo" / "model.safetensors").is_file()
    assert (tmp_path / "outputs" / "train" / "tiny_cpu_demo" / "metrics.png").is_file()
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # stage 3 from the stage 1 model
        exec(compile(grpo, "docs/training.md", "exec"), {"__name__": "docs"})
    printed = out.getvalue().split()
    assert printed[0] == "outputs/train/grpo_tiny_cpu" and printed[1] == "2"
    for name in ("model.safetensors", "metrics.png", "metrics.jsonl", "tokenizer.json"):
        assert (tmp_path / "outputs" / "train" / "grpo_tiny_cpu" / name).is_file()
