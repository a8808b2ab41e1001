"""docs/vla.md's Python example runs as written, from a folder holding a LIBERO HDF5 file in the
real layout (written by the readers' test helper) and the tiny checkpoint; then the page's
fine-tuning smoke (configs/vla/tiny_cpu.yaml) on the parquet it wrote."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

from test_vla_readers import LIBERO_NAME, write_libero

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "vla.md"


def test_vla_page_example_runs(tmp_path, monkeypatch, tiny_model_dir):
    (tmp_path / "libero").mkdir()
    write_libero(tmp_path / "libero" / LIBERO_NAME)
    (tmp_path / "outputs").mkdir()
    (tmp_path / "outputs" / "tiny-model").symlink_to(tiny_model_dir)
    monkeypatch.chdir(tmp_path)
    [block] = re.findall(r"```python\n(.*?)```", PAGE.read_text(encoding="utf-8"), re.S)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(block, "docs/vla.md", "exec"), {"__name__": "docs"})
    assert out.getvalue().splitlines() == ["3 1", "7 True"]
    assert (tmp_path / "outputs" / "vla" / "libero_test" / "norm_stats.json").is_file()
    # the fine-tuning smoke of the page, on the parquet the example wrote
    from typer.testing import CliRunner

    from vst.cli import app

    command = "vst vla train configs/vla/tiny_cpu.yaml"
    assert f"{command}\n" in PAGE.read_text(encoding="utf-8")
    config = ROOT / "configs" / "vla" / "tiny_cpu.yaml"
    result = CliRunner().invoke(app, ["vla", "train", str(config)])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "3 drawn, 0 held out" in text and "train action-token accuracy" in text
    run = tmp_path / "outputs" / "vla" / "train-tiny"
    assert (run / "vla.json").is_file() and (run / "vla_eval.jsonl").is_file()
