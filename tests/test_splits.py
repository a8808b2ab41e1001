"""Tests for vst.scenes.splits: the benchmark-leakage registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vst.scenes import Scene
from vst.scenes.splits import (
    BENCHMARK_SCENES_FILE,
    SHARED_DATA_ENV,
    BenchmarkRegistry,
    benchmark_file_payload,
    default_shared_data_dir,
    vsibench_meta_dir,
    vsibench_scene_records,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
META = SHARED / "vsibench-meta"
needs_shared = pytest.mark.skipif(
    not META.is_dir(), reason=f"shared VSI-Bench metadata not found at {META}"
)
VSIBENCH_COUNTS = {"arkitscenes": 150, "scannet": 88, "scannetpp": 50}


@pytest.fixture
def shipped() -> BenchmarkRegistry:
    return BenchmarkRegistry.load_default(use_shared=False)


def test_shipped_registry_knows_all_vsibench_scenes(shipped):
    assert len(shipped) == 288
    assert shipped.counts("vsibench") == VSIBENCH_COUNTS
    assert shipped.benchmarks == ["vsibench"]
    assert shipped.sources == [str(BENCHMARK_SCENES_FILE)]


def test_lookup_known_and_unknown(shipped):
    assert shipped.lookup("scene0251_00") == ["vsibench"]
    assert shipped.lookup("scene0251_00", "scannet") == ["vsibench"]
    assert shipped.lookup("scene0251_00", "arkitscenes") == []
    assert shipped.lookup(" scene0251_00 ") == ["vsibench"]
    assert shipped.lookup("7b6477cb95", "scannet++") == ["vsibench"]  # alias of scannetpp
    assert shipped.lookup(41069025) == ["vsibench"]  # ARKitScenes ids may come as ints
    assert shipped.lookup("41069025", "arkitscenes") == ["vsibench"]
    assert shipped.lookup("scene9999_00") == []
    assert shipped.lookup("") == []
    assert shipped.lookup(None) == []
    assert shipped.is_benchmark_scene("scene0251_00")
    assert not shipped.is_benchmark_scene("scene0000_00", "scannet")
    assert "scene0251_00" in shipped and "nope" not in shipped


def test_is_benchmark_scene_accepts_a_scene(shipped):
    assert shipped.is_benchmark_scene(Scene(id="scene0251_00", source="scannet"))
    assert not shipped.is_benchmark_scene(Scene(id="scene0251_00", source="synthetic"))
    assert not shipped.is_benchmark_scene(Scene(id="room_0001", source="synthetic"))


def test_add_and_lookup_several_benchmarks(shipped):
    shipped.add("scannet", "scene0251_00", "sqa3d")
    shipped.add("ScanNet", "scene0000_00", "scanqa")
    assert shipped.lookup("scene0251_00") == ["sqa3d", "vsibench"]
    assert shipped.lookup("scene0000_00", "scannet") == ["scanqa"]
    assert shipped.scenes("scanqa") == [("scannet", "scene0000_00")]
    with pytest.raises(ValueError, match="benchmark"):
        shipped.add("scannet", "scene0001_00", " ")
    with pytest.raises(ValueError, match="scene id"):
        shipped.add("scannet", 1.5, "x")


def test_user_text_list(shipped, tmp_path):
    path = tmp_path / "held_out.txt"
    path.write_text(
        "# held-out scenes\n\nscene0000_00\nscannetpp, abcdef0123  # with a dataset\n"
        "arkitscenes 42445173\n"
    )
    assert shipped.load_user_list(path, benchmark="heldout") == 3
    assert shipped.lookup("scene0000_00") == ["heldout"]
    assert shipped.lookup("scene0000_00", "arkitscenes") == ["heldout"]  # no dataset: any
    assert shipped.lookup("abcdef0123", "scannetpp") == ["heldout"]
    assert shipped.lookup("abcdef0123", "scannet") == []
    assert shipped.lookup("42445173") == ["heldout"]
    assert len(shipped) == 291
    assert shipped.sources[-1] == str(path)

    bad = tmp_path / "bad.txt"
    bad.write_text("a b c\n")
    with pytest.raises(ValueError, match=r"bad.txt:1"):
        shipped.load_user_list(bad)


def test_user_json_lists(shipped, tmp_path):
    ids = tmp_path / "ids.json"
    ids.write_text(json.dumps(["scene0001_00", 47333462]))
    assert shipped.load_user_list(ids, dataset="scannet") == 2
    assert shipped.lookup("scene0001_00", "scannet") == ["user"]
    assert shipped.lookup("scene0001_00", "scannetpp") == []

    records = tmp_path / "records.json"
    records.write_text(
        json.dumps(
            {"scenes": [{"scene_id": "scene0002_00", "dataset": "scannet", "benchmark": "b1"}]}
        )
    )
    assert shipped.load_user_list(records) == 1
    assert shipped.lookup("scene0002_00") == ["b1"]

    broken = tmp_path / "broken.json"
    broken.write_text('{"scenes": 3}')
    with pytest.raises(ValueError, match=r"broken\.json"):
        shipped.load_user_list(broken)
    with pytest.raises(ValueError, match="cannot read"):
        shipped.load_user_list(tmp_path / "missing.txt")


def test_shared_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(tmp_path))
    assert default_shared_data_dir() == tmp_path
    assert vsibench_meta_dir() is None  # no vsibench-meta inside
    assert default_shared_data_dir(tmp_path / "absent") is None
    reg = BenchmarkRegistry.load_default()  # still works without the shared data
    assert len(reg) == 288 and reg.sources == [str(BENCHMARK_SCENES_FILE)]


@needs_shared
def test_shipped_file_equals_shared_metadata():
    shipped = json.loads(BENCHMARK_SCENES_FILE.read_text(encoding="utf-8"))
    assert shipped == benchmark_file_payload(META)
    assert "thinking-in-space" in shipped["source"]
    records = vsibench_scene_records(META)
    assert len(records) == 288
    derived = BenchmarkRegistry.from_vsibench_meta(META)
    assert derived.counts() == VSIBENCH_COUNTS
    assert derived.scenes() == BenchmarkRegistry.load_default(use_shared=False).scenes()


@needs_shared
def test_load_default_merges_shared(monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(SHARED))
    reg = BenchmarkRegistry.load_default()
    assert reg.sources == [str(BENCHMARK_SCENES_FILE), str(META)]
    assert len(reg) == 288
    assert vsibench_meta_dir(META) == META  # the vsibench-meta folder itself is accepted
