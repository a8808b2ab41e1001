"""End to end through the command line: an engine config names a dataset in its own format
(ARKitScenes raw, the fixture of vst.testing), `vst generate` imports and generates, and
`vst data verify` re-derives every answer from the imported scenes."""

from __future__ import annotations

import json
import re

from typer.testing import CliRunner

from vst.cli import app
from vst.testing.arkitscenes_fixture import write_arkitscenes_fixture


def test_generate_from_a_dataset_source_and_verify(tmp_path):
    write_arkitscenes_fixture(tmp_path / "arkit")
    run_dir = tmp_path / "run"
    config = {
        "output": str(run_dir),
        "seed": 1,
        "sources": [
            {
                "kind": "arkitscenes",
                "path": str(tmp_path / "arkit" / "3dod"),
                "options": {"frame_stride": 2},
            }
        ],
        "tasks": [{"name": "*", "per_scene": 2}],
        "scenes_per_shard": 2,
    }
    cfg = tmp_path / "run.yaml"
    cfg.write_text(json.dumps(config))
    runner = CliRunner()
    res = runner.invoke(app, ["generate", str(cfg), "--quiet"])
    assert res.exit_code == 0, res.output
    assert "import: arkitscenes" in res.output and "2 written" in res.output
    report = json.loads((run_dir / "report.json").read_text())
    assert report["scenes_total"] == 2 and report["excluded_benchmark_scenes"] == []
    made = {t for t, n in report["samples_per_task"].items() if n > 0}
    assert {"si_det3d", "mi_camera_motion", "video_count"} <= made, made
    scenes = run_dir / "scenes" / "arkitscenes-0"
    res = runner.invoke(app, ["data", "verify", str(run_dir), "--scenes", str(scenes)])
    assert res.exit_code == 0, res.output
    checked = re.search(r"checked (\d+) samples: 0 mismatch\(es\), 0 could not", res.output)
    assert checked and int(checked.group(1)) == sum(report["samples_per_task"].values())
    again = runner.invoke(app, ["generate", str(cfg), "--quiet"])  # resumes: all reused
    assert again.exit_code == 0 and "2 kept from an earlier run" in again.output


def test_parallel_import_writes_the_same_bytes_and_report(tmp_path):
    from vst.scenes.guard import BenchmarkGuard
    from vst.scenes.sources.arkitscenes import ARKitScenesReader
    from vst.scenes.sources.importer import IMPORT_REPORT, import_scenes

    write_arkitscenes_fixture(tmp_path / "arkit")
    results = {}
    for workers in (1, 2):
        reader = ARKitScenesReader(tmp_path / "arkit" / "3dod", {"frame_stride": 3})
        out = tmp_path / f"w{workers}"
        results[workers] = import_scenes(
            reader, out, guard=BenchmarkGuard.default(), workers=workers
        )
    assert results[1].written == results[2].written == ["90000001", "90000002"]
    one, two = tmp_path / "w1", tmp_path / "w2"
    files = sorted(p.relative_to(one) for p in one.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(two) for p in two.rglob("*") if p.is_file())
    for rel in files:
        if rel.name == IMPORT_REPORT:  # holds the output folder's own path
            continue
        assert (one / rel).read_bytes() == (two / rel).read_bytes(), rel
    assert results[1].to_dict()["skipped"] == results[2].to_dict()["skipped"]
