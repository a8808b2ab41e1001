"""docs/evaluation.md's Python example runs as written (with /tmp/ moved into a temporary
folder) and prints what the page implies."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "evaluation.md"


def test_evaluation_page_example_runs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    [block] = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block.replace("/tmp/", f"{tmp_path}/"), "docs", "exec"), {"__name__": "d"})
    items, rules = out.getvalue().split(" ", 1)
    assert int(items) > 0 and "'official'" in rules and "'lmms_eval'" in rules
    assert (tmp_path / "eval-run" / "report.md").is_file()
