"""The runnable Python examples of docs/sources/*.md run as written (with /tmp/ paths moved into
a temporary folder). Examples that need the user's own files (a depth model, a downloaded list)
are recognised by those paths and left out."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs" / "sources"
NEEDS_USER_FILES = ("models/", 'open("')


def _examples() -> list[tuple[str, int, str]]:
    out = []
    for page in sorted(DOCS.glob("*.md")):
        for k, block in enumerate(re.findall(r"```python\n(.*?)```", page.read_text(), re.S)):
            if not any(marker in block for marker in NEEDS_USER_FILES):
                out.append((page.name, k, block))
    return out


def test_every_format_page_has_a_runnable_example():
    pages = {name for name, _, _ in _examples()}
    expected = {"arkitscenes", "embodiedscan", "hypersim", "images", "omni3d", "scannetpp"}
    assert {f"{p}.md" for p in expected} <= pages


@pytest.mark.parametrize(("page", "index", "block"), _examples(), ids=lambda v: str(v)[:20])
def test_docs_example_runs(page, index, block, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code = block.replace("/tmp/", f"{tmp_path}/")
    with contextlib.redirect_stdout(io.StringIO()):
        exec(compile(code, f"{page} example {index}", "exec"), {"__name__": "docs"})
