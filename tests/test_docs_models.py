"""docs/models.md's Python examples run as written, in order, in one namespace (later examples
use what earlier ones made), with /tmp/ paths moved into a temporary folder; the values their
comments promise are printed."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "models.md"


def test_models_page_examples_run_in_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    namespace: dict = {"__name__": "docs"}
    for k, block in enumerate(blocks):
        code = block.replace("/tmp/", f"{tmp_path}/")
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(code, f"docs/models.md example {k}", "exec"), namespace)
        for expected in re.findall(r"print\(.*\)\s+# (.+)$", block, re.M):
            assert expected.strip() in out.getvalue(), (k, expected, out.getvalue())
