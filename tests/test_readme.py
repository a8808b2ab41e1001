"""The README's Python examples run as written (docs with runnable examples stay runnable)."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), flags=re.S)


def test_readme_has_setup_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text


def test_readme_python_examples_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples write under outputs/: keep them out of the repo
    blocks = _python_blocks()
    assert blocks, "README has no python example"
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), {"__name__": "readme"})
        printed = out.getvalue()
        # the printed values the README promises in its comments
        for expected in re.findall(r"# (\[\[.*\]\])", block):
            assert expected in printed, (expected, printed)
        for expected in re.findall(r"print\(.*\)\s+# (\d+ \w+ \(\d+, \d+\))", block):
            assert expected in printed, (expected, printed)
        # numeric comments: "print(...)   # 0.9 1.0" or "# 0.6667 (explanation)"
        for expected in re.findall(r"print\(.*\)\s+# ([\d.]+(?: [\d.]+)*)(?: \(|$)", block, re.M):
            assert expected in printed, (expected, printed)
