"""docs/reasoning.md's Python example runs as written, from a folder laid out as its commands
leave it (outputs/engine-demo with its data and scenes)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "reasoning.md"


def test_reasoning_page_example_runs(tmp_path, monkeypatch, all_tasks_run, engine_scene_dirs):
    demo = tmp_path / "outputs" / "engine-demo"
    demo.mkdir(parents=True)
    (demo / "data").symlink_to(all_tasks_run / "data")
    (demo / "scenes").symlink_to(Path(engine_scene_dirs[0]).parent)
    monkeypatch.chdir(tmp_path)
    [block] = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/reasoning.md", "exec"), {"__name__": "docs"})
    lines = out.getvalue().splitlines()
    assert lines[0] == "True 0"
    assert lines[1].startswith("offline CoT (num, rt) -> outputs/reason/cot-offline/data: kept")
    shards = list((tmp_path / "outputs" / "reason" / "cot-offline" / "data").glob("*.parquet"))
    assert shards
