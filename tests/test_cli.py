"""The `vst` command: version, help, and `vst scenes validate` on good and bad scenes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from typer.testing import CliRunner

import vst
from test_scenes import make_scene
from vst.cli import app
from vst.scenes import save_scene

runner = CliRunner()


def test_version_and_help():
    result = runner.invoke(app, ["version"])
    assert result.exit_code == 0 and result.output.strip() == f"vst {vst.__version__}"
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("version", "demo", "scenes"):
        assert command in result.output


def test_scenes_validate_reports_each_problem(tmp_path: Path):
    good = make_scene()
    save_scene(good, tmp_path / "good")
    bad = make_scene()
    bad.id = "bad_scene"
    bad.objects[0].box[3] = 0.0
    bad.frames[1].cam_to_world = np.diag([2.0, 1.0, 1.0, 1.0])
    save_scene(bad, tmp_path / "bad")

    ok = runner.invoke(app, ["scenes", "validate", str(tmp_path / "good")])
    assert ok.exit_code == 0, ok.output
    assert "1 of 1 scene(s) valid" in ok.output

    result = runner.invoke(app, ["scenes", "validate", str(tmp_path)])
    assert result.exit_code == 1
    out = " ".join(result.output.split())  # undo rich's line wrapping
    assert "1 of 2 scene(s) valid" in out
    assert "scene 'bad_scene', object 1 ('chair'), field 'box': sizes must be positive" in out
    assert "frame 'f001', field 'cam_to_world'" in out


def test_scenes_validate_missing_root(tmp_path: Path):
    result = runner.invoke(app, ["scenes", "validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in " ".join(result.output.split())
