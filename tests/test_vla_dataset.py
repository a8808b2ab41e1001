"""vst.vla.dataset: norm_stats.json over the kept steps, parquet with normalised actions."""

from __future__ import annotations

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from test_vla_readers import DEMO0_ACTIONS, DEMO0_KEPT, LIBERO_NAME, write_libero
from vst.vla.dataset import convert_dataset
from vst.vla.norm_stats import load_norm_stats, normalize
from vst.vla.readers import read_libero_hdf5


def test_stats_over_kept_steps_and_normalised_actions(tmp_path):
    path = write_libero(tmp_path / LIBERO_NAME)
    result = convert_dataset(lambda: read_libero_hdf5(path), tmp_path / "out", "libero_test")
    kept = DEMO0_ACTIONS[DEMO0_KEPT]  # demo_1 failed: its steps are not in the statistics
    stats = result.stats
    assert stats.num_transitions == 3 and stats.num_trajectories == 1
    np.testing.assert_allclose(stats.q01, np.quantile(kept, 0.01, axis=0))
    np.testing.assert_allclose(stats.q99, np.quantile(kept, 0.99, axis=0))
    assert stats.mask.tolist() == [True] * 6 + [False]  # the gripper keeps its -1/+1
    again = load_norm_stats(result.stats_path)
    np.testing.assert_allclose(again.q99, stats.q99)
    assert json.loads(result.stats_path.read_text())["norm_stats"]["action"]["mask"][6] is False
    rows = [r for f in result.report.files for r in pq.read_table(f).to_pylist()]
    assert [r["id"] for r in rows] == [
        f"libero_test_turn_on_the_stove_0_{t}" for t in DEMO0_KEPT
    ] or len(rows) == 3
    for row, raw in zip(rows, kept, strict=True):
        info = row["meta_info"]
        np.testing.assert_allclose(info["action_unnorm"], raw, rtol=1e-6)
        np.testing.assert_allclose(info["action"], normalize(raw, stats), atol=1e-6)
        assert info["action"][6] == pytest.approx(raw[6])  # gripper passed through
        assert all(-1 <= v <= 1 for v in info["action"])
    assert result.report.failed_dropped == 1 and result.report.records_written == 3


def test_nothing_to_convert_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="no step to convert"):
        convert_dataset(lambda: iter(()), tmp_path / "out", "empty")


def test_cli_convert(tmp_path):
    from typer.testing import CliRunner

    from vst.cli import app

    (tmp_path / "suite").mkdir()
    write_libero(tmp_path / "suite" / LIBERO_NAME)
    runner = CliRunner()
    args = ["vla", "convert", "--libero-hdf5", str(tmp_path / "suite"), "--suite", "s"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "2 episode(s) read, 1 failed dropped, 4 no-op step(s) dropped, 3 record(s)" in (
        " ".join(result.output.split())
    )
    assert (tmp_path / "out" / "norm_stats.json").is_file()
    assert (tmp_path / "out" / "s-00000.parquet").is_file()
    both = runner.invoke(app, [*args, "--lerobot", str(tmp_path), "--out", str(tmp_path / "o2")])
    assert both.exit_code == 2 and "one of --libero-hdf5 and --lerobot" in both.output
    bad = runner.invoke(
        app, ["vla", "convert", "--lerobot", str(tmp_path), "--suite", "s", "--out", "o3"]
    )
    assert bad.exit_code == 2 and "error" in bad.output
