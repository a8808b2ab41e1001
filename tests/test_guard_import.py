"""The leakage guard and the importer, on the real VSI-Bench metadata (288 evaluation scans) and
the shared synthetic scenes: default runs exclude benchmark scenes and say so, explicit ones are
refused naming scene and benchmark, the override includes them; imports resume."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vst.cli import app
from vst.engine.config import ConfigError, parse_config
from vst.engine.runner import EngineError, run
from vst.scenes import load_scene
from vst.scenes.annotate import mask_from_depth_and_boxes, points_in_box
from vst.scenes.guard import BenchmarkGuard, BenchmarkSceneError
from vst.scenes.sources.formats import format_names, get_reader_class
from vst.scenes.sources.importer import IMPORT_REPORT, import_scenes
from vst.scenes.sources.vsibench_meta import VsiBenchMetaReader, read_vsibench_meta
from vst.scenes.splits import vsibench_meta_dir

META = vsibench_meta_dir()
needs_meta = pytest.mark.skipif(META is None, reason="shared/data/vsibench-meta not found")
runner = CliRunner()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """All 288 VSI-Bench scenes imported with the override (objects only, no frames)."""
    out = tmp_path_factory.mktemp("vsibench_scenes")
    reader = VsiBenchMetaReader(META)
    result = import_scenes(reader, out, guard=BenchmarkGuard.default(allow=True))
    return out, result


# -- the importer ----------------------------------------------------------------------------
@needs_meta
def test_default_import_excludes_every_benchmark_scene(tmp_path):
    res = runner.invoke(
        app, ["scenes", "import", "vsibench-meta", str(META), "--out", str(tmp_path)]
    )
    assert res.exit_code == 1, res.output  # nothing importable
    assert "288 benchmark scene(s) excluded" in res.output
    report = json.loads((tmp_path / IMPORT_REPORT).read_text())
    assert len(report["excluded_benchmark_scenes"]) == 288
    assert report["written"] == []
    first = report["excluded_benchmark_scenes"][0]
    assert "vsibench" in first["benchmarks"] and first["dataset"] == "arkitscenes"
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


@needs_meta
def test_explicit_benchmark_scene_is_refused_naming_scene_and_benchmark(tmp_path):
    args = ["scenes", "import", "vsibench-meta", str(META), "--out", str(tmp_path)]
    res = runner.invoke(app, [*args, "--scenes", "scene0251_00"])
    assert res.exit_code == 2
    text = " ".join(res.output.split())
    assert re.search(r"'scene0251_00' of scannet is an evaluation scene of [\w, -]*vsibench", text)
    assert "--allow-benchmark-scenes" in text
    with pytest.raises(BenchmarkSceneError, match="41069025"):
        import_scenes(VsiBenchMetaReader(META), tmp_path, scenes=["41069025"])


@needs_meta
def test_override_imports_all_and_matches_the_reader(imported):
    out, result = imported
    assert len(result.written) == 288 and not result.failed
    assert len(result.included_benchmark) == 288
    scenes, _ = read_vsibench_meta(META)
    by_id = {s.id: s for s in scenes}
    for sid in ["scene0251_00", "41069025", result.written[-1]]:
        loaded = load_scene(out / sid)
        ref = by_id[sid]
        assert loaded.source == ref.source
        assert loaded.attributes["native_id"] == sid
        assert loaded.attributes["format"] == "vsibench-meta"
        np.testing.assert_array_equal(loaded.boxes, ref.boxes)
        assert loaded.labels == ref.labels


@needs_meta
def test_import_resumes_after_a_kill_and_reuses_finished_scenes(tmp_path):
    reader = VsiBenchMetaReader(META)
    guard = BenchmarkGuard.default(allow=True)
    seen = []

    def kill_after_three(sid: str, status: str) -> None:
        seen.append(sid)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        import_scenes(reader, tmp_path, limit=6, guard=guard, on_scene=kill_after_three)
    again = import_scenes(reader, tmp_path, limit=6, guard=BenchmarkGuard.default(allow=True))
    assert sorted(again.reused) == sorted(seen)
    assert len(again.written) == 3 and again.scene_ids == sorted(seen + again.written)
    # other options -> another import key -> scenes are rewritten, not reused
    other = VsiBenchMetaReader(META, {"frame_stride": 2})
    third = import_scenes(other, tmp_path, limit=6, guard=BenchmarkGuard.default(allow=True))
    assert third.reused == [] and len(third.written) == 6


def test_formats_and_option_errors(tmp_path):
    assert {"omni3d", "embodiedscan", "arkitscenes", "scannetpp", "hypersim", "images"} <= set(
        format_names()
    )
    with pytest.raises(ValueError, match="unknown scene format 'foo'; known formats: "):
        get_reader_class("foo")
    assert get_reader_class("VSIBench") is VsiBenchMetaReader
    with pytest.raises(ValueError, match="frame_stride"):
        VsiBenchMetaReader(tmp_path, {"frame_stride": 0})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        VsiBenchMetaReader(tmp_path / "nope")


# -- the engine ------------------------------------------------------------------------------
def _config(out: Path, sources: list[dict], **extra) -> dict:
    return {
        "output": str(out),
        "seed": 0,
        "sources": sources,
        "tasks": [{"name": "video_count", "per_scene": 1}],
        **extra,
    }


@pytest.fixture()
def mixed_root(tmp_path, imported, engine_scene_dirs):
    """A folder with one synthetic scene and two VSI-Bench scenes."""
    out, _ = imported
    root = tmp_path / "mixed"
    shutil.copytree(engine_scene_dirs[0], root / engine_scene_dirs[0].name)
    for sid in ["scene0251_00", "41069025"]:
        shutil.copytree(out / sid, root / sid)
    return root


@needs_meta
def test_engine_excludes_benchmark_scenes_found_in_a_folder(tmp_path, mixed_root):
    cfg = parse_config(_config(tmp_path / "run", [{"kind": "scenes", "path": str(mixed_root)}]))
    report = run(cfg, progress=False)
    assert report.scenes_total == 1
    excluded = {e["native_id"]: e for e in report.excluded_benchmark_scenes}
    assert set(excluded) == {"scene0251_00", "41069025"}
    assert excluded["41069025"]["dataset"] == "arkitscenes"
    md = (tmp_path / "run" / "report.md").read_text()
    assert "benchmark scenes excluded (leakage guard): 2" in md
    assert "- arkitscenes `41069025`: " in md and "vsibench" in md


@needs_meta
def test_engine_refuses_an_explicit_benchmark_scene_unless_overridden(tmp_path, mixed_root):
    src = {"kind": "scenes", "path": str(mixed_root), "scenes": ["scene0251_00"]}
    cfg = parse_config(_config(tmp_path / "run", [src]))
    with pytest.raises(EngineError, match=r"'scene0251_00' of scannet .* vsibench"):
        run(cfg, progress=False)
    # a path that is itself one benchmark scene directory is explicit too
    one = {"kind": "scenes", "path": str(mixed_root / "41069025")}
    with pytest.raises(EngineError, match="'41069025' of arkitscenes"):
        run(parse_config(_config(tmp_path / "run2", [one])), progress=False)
    allowed = cfg.with_overrides(allow_benchmark_scenes=True)
    report = run(allowed, progress=False)
    assert report.scenes_total == 1
    assert [e["native_id"] for e in report.included_benchmark_scenes] == ["scene0251_00"]
    assert report.task_skips["video_count"] == {"needs >= 8 frames, scene has 0": 1} or any(
        "frames" in r for r in report.task_skips["video_count"]
    )


@needs_meta
def test_cli_generate_flag_overrides_the_guard(tmp_path, mixed_root):
    cfg_path = tmp_path / "run.yaml"
    src = {"kind": "scenes", "path": str(mixed_root), "scenes": ["41069025"]}
    cfg_path.write_text(json.dumps(_config(tmp_path / "run", [src])))
    res = runner.invoke(app, ["generate", str(cfg_path), "--quiet"])
    assert res.exit_code == 2  # a config naming a benchmark scene: bad input
    assert re.search(r"evaluation scene of [\w, -]*vsibench", " ".join(res.output.split()))
    res = runner.invoke(app, ["generate", str(cfg_path), "--quiet", "--allow-benchmark-scenes"])
    assert res.exit_code == 0, res.output
    assert "leakage guard overridden" in res.output


@needs_meta
def test_dataset_source_imports_into_the_run_and_reports(tmp_path):
    src = {"kind": "vsibench-meta", "path": str(META), "limit": 3}
    report = run(parse_config(_config(tmp_path / "a", [src])), progress=False)
    assert report.scenes_total == 0 and len(report.excluded_benchmark_scenes) == 288
    assert report.imports[0]["format"] == "vsibench-meta"
    cfg = parse_config(
        _config(tmp_path / "b", [src], benchmark_guard={"allow_benchmark_scenes": True})
    )
    report = run(cfg, progress=False)
    assert report.scenes_total == 3
    assert len(list((tmp_path / "b" / "scenes" / "vsibench-meta-0").glob("*/scene.json"))) == 3
    assert "## Import of sources.0 (vsibench-meta)" in (tmp_path / "b" / "report.md").read_text()


def test_config_checks_dataset_options_and_guard_benchmarks(tmp_path):
    bad = _config(tmp_path, [{"kind": "arkitscenes", "path": ".", "options": {"nope": 1}}])
    with pytest.raises(ConfigError, match=r"sources\.0.*invalid arkitscenes option\(s\): nope"):
        parse_config(bad)
    # the union tag is dropped only after the source index, never from a field of that name
    empty = _config(tmp_path, [{"kind": "scenes", "path": ".", "scenes": []}])
    with pytest.raises(ConfigError, match=r"config: sources\.0\.scenes: List should have"):
        parse_config(empty)
    with pytest.raises(ConfigError, match=r"config: sources\.0\.limit: Input should be"):
        parse_config(_config(tmp_path, [{"kind": "hypersim", "path": ".", "limit": 0}]))
    with pytest.raises(ValueError, match="unknown benchmark"):
        BenchmarkGuard.default(benchmarks=["no-such-benchmark"])


@needs_meta
def test_guard_restriction_and_user_lists(tmp_path):
    only_user = tmp_path / "mine.txt"
    only_user.write_text("# held out\nscannet scene0999_00\n")
    guard = BenchmarkGuard.default(benchmarks=["vsibench"], extra_lists=[only_user])
    assert not guard.admit("x", "scannet", "scene0999_00", explicit=False, source="t")
    assert not guard.admit("scene0251_00", "scannet", "scene0251_00", explicit=False, source="t")
    assert guard.admit("scene0000_00", "scannet", "scene0000_00", explicit=False, source="t")
    assert "2 benchmark scene(s) excluded" in guard.summary()


# -- pseudo masks from depth and boxes ---------------------------------------------------------
def test_points_in_rotated_box():
    box = np.array([1.0, 2.0, 0.5, 2.0, 1.0, 1.0, 0.0, 0.0, 90.0])  # heading 90: x along world Y
    pts = np.array([[1.0, 2.9, 0.5], [1.9, 2.0, 0.5], [1.0, 2.0, 1.05], [1.4, 2.0, 0.5]])
    np.testing.assert_array_equal(points_in_box(pts, box), [True, False, False, True])
    assert points_in_box(pts[2:3], box, margin=0.06)[0]


def test_mask_from_depth_and_boxes_hand_case():
    # camera at the origin looking along world +Y (camera Z), 5x5 image, f = 1, centre (2, 2):
    # a wall at 4 m; a 1 m cube centred 4 m ahead touches it, a small box inside the cube wins.
    K = np.array([[1.0, 0, 2], [0, 1.0, 2], [0, 0, 1]])
    cam_to_world = np.eye(4)
    cam_to_world[:3, :3] = [[1, 0, 0], [0, 0, 1], [0, -1, 0]]  # cam X->X, Z->Y, Y->-Z
    depth = np.full((5, 5), 4.0)
    depth[0, 0] = 0.0  # unknown
    cube = [0.0, 4.0, 0.0, 1.0, 1.0, 1.0, 0, 0, 0]
    small = [0.0, 4.0, 0.0, 0.2, 0.2, 0.2, 0, 0, 0]
    mask = mask_from_depth_and_boxes(depth, K, cam_to_world, np.array([cube, small]), [3, 7])
    # pixel (r, c) sees world point ((c-2)*4, 4, -(r-2)*4): only the centre pixel is in a box
    expected = np.zeros((5, 5), dtype=np.int32)
    expected[2, 2] = 7
    np.testing.assert_array_equal(mask, expected)
    depth_near = np.full((5, 5), 0.4)  # a plane 0.4 m away: points within 0.4 * 2 of centre
    wide = [0.0, 0.4, 0.0, 2.0, 0.1, 2.0, 0, 0, 0]
    mask = mask_from_depth_and_boxes(depth_near, K, cam_to_world, np.array([wide]), [5])
    np.testing.assert_array_equal(mask, np.full((5, 5), 5))


def test_benchmarks_a_reader_recorded_travel_with_the_scene(tmp_path, engine_scene_dirs):
    """A scene imported (with the override) from an evaluation split keeps its benchmark in
    scene.json; a later run over the scene folder excludes it, unless the guard is restricted
    to other benchmarks."""
    root = tmp_path / "scenes"
    dest = shutil.copytree(engine_scene_dirs[1], root / engine_scene_dirs[1].name)
    record = json.loads((dest / "scene.json").read_text())
    record["attributes"]["benchmarks"] = ["omni3d-sunrgbd-test"]
    (dest / "scene.json").write_text(json.dumps(record))
    src = [{"kind": "scenes", "path": str(root)}]
    report = run(parse_config(_config(tmp_path / "a", src)), progress=False)
    assert report.scenes_total == 0
    assert report.excluded_benchmark_scenes[0]["benchmarks"] == ["omni3d-sunrgbd-test"]
    only_vsi = _config(tmp_path / "b", src, benchmark_guard={"benchmarks": ["vsibench"]})
    assert run(parse_config(only_vsi), progress=False).scenes_total == 1
    guard = BenchmarkGuard.default(benchmarks=["omni3d-sunrgbd-test"])
    assert not guard.admit(
        "s", "sunrgbd", "s", explicit=False, source="t", known=("omni3d-sunrgbd-test",)
    )
    assert guard.admit("scene0251_00", "scannet", "scene0251_00", explicit=False, source="t")
