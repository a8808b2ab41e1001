"""docs/engine-speed.md's Python example runs as written and prints what its comments say."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "engine-speed.md"


def test_engine_speed_page_example_runs():
    [block] = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/engine-speed.md", "exec"), {"__name__": "docs"})
    assert out.getvalue().splitlines() == ["2 15", "True True"]
    # the comments in the page state the same output
    assert "# 2 15" in block and "# True True" in block
