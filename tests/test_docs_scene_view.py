"""docs/scene_view.md's example runs as written (with /tmp/ moved into a temporary folder): the
`vst` commands of its example block through the CLI, then its Python block."""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

from typer.testing import CliRunner

from vst.cli import app

PAGE = Path(__file__).resolve().parents[1] / "docs" / "scene_view.md"


def test_scene_view_page_example_runs(tmp_path):
    text = PAGE.read_text(encoding="utf-8").replace("/tmp/", f"{tmp_path}/")
    commands = [
        shlex.split(line.split("#")[0])[1:]
        for block in re.findall(r"```bash\n(.*?)```", text, re.S)
        for line in block.splitlines()
        if line.startswith("vst ")
    ]
    assert [c[:2] for c in commands] == [["scenes", "synth"], ["scenes", "view"]]
    runner = CliRunner()
    for args in commands:
        res = runner.invoke(app, args)
        assert res.exit_code == 0, res.output
    assert "12 frame(s)" in res.output
    assert (tmp_path / "vst_view" / "scene.rrd").stat().st_size > 0

    [block] = re.findall(r"```python\n(.*?)```", text, re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/scene_view.md", "exec"), {"__name__": "docs"})
    lines = out.getvalue().splitlines()
    assert re.fullmatch(r"2 frames, \d+ points, \d+ objects", lines[0])
    entities = {line.split()[0] for line in lines[1:]}
    assert {"/world/objects", "/world/camera", "/world/camera/image"} <= entities
    assert {"/world/points/single_000", "/world/points/single_001"} <= entities
