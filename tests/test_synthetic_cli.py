"""`vst scenes synth | info | show` on tiny scenes, and their error messages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app

runner = CliRunner()
TINY = ["--width", "96", "--height", "72", "--single-views", "1", "--multiview-sets", "1",
        "--video-frames", "3"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--num-scenes", "0"], "num_scenes"),
        (["--categories", "unicorn"], "unknown category 'unicorn'"),
        (["--min-side", "6", "--max-side", "4"], "impossible room"),
        (["--room-shape", "l", "--max-side", "3.2"], "L-shaped"),
    ],
)
def test_synth_bad_options(tmp_path: Path, args, needle):
    res = runner.invoke(app, ["scenes", "synth", "--out", str(tmp_path), *args])
    assert res.exit_code == 2, res.output
    assert needle in res.output
    assert not list(tmp_path.iterdir()), "nothing written on bad options"


def test_synth_info_show(tmp_path: Path):
    out = tmp_path / "scenes"
    res = runner.invoke(
        app, ["scenes", "synth", "--num-scenes", "1", "--out", str(out), "--seed", "7", *TINY]
    )
    assert res.exit_code == 0, res.output
    assert "1 scene(s) written" in res.output
    scene_dir = out / "synth_s7_00000"
    assert (scene_dir / "scene.json").is_file()
    res = runner.invoke(app, ["scenes", "info", str(out)])
    assert res.exit_code == 0, res.output
    for needle in ("synth_s7_00000", "categories", "frames", "kind: video", "96x72"):
        assert needle in res.output
    res = runner.invoke(app, ["scenes", "validate", str(out)])
    assert res.exit_code == 0, res.output
    png = tmp_path / "sheet.png"
    res = runner.invoke(app, ["scenes", "show", str(scene_dir), "--out", str(png)])
    assert res.exit_code == 0, res.output
    with Image.open(png) as im:
        assert im.width > 400 and im.height > 200
    # a rerun skips the finished scene
    res = runner.invoke(
        app, ["scenes", "synth", "--num-scenes", "1", "--out", str(out), "--seed", "7", *TINY]
    )
    assert "1 already there" in res.output


def test_show_needs_one_scene(tmp_path: Path):
    res = runner.invoke(app, ["scenes", "show", str(tmp_path), "--out", str(tmp_path / "x.png")])
    assert res.exit_code == 2
