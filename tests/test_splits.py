"""Tests for vst.scenes.splits: the benchmark-leakage registry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vst.scenes import Scene
from vst.scenes.splits import (
    BENCHMARK_DATA_DIR,
    BENCHMARK_SCENES_FILE,
    SHARED_DATA_ENV,
    BenchmarkRegistry,
    benchmark_file_payload,
    default_shared_data_dir,
    normalize_scene_id,
    shipped_benchmark_files,
    shipped_benchmark_lists,
    sunrgbd_scene_id,
    vsibench_meta_dir,
    vsibench_scene_records,
)

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
META = SHARED / "vsibench-meta"
needs_shared = pytest.mark.skipif(
    not META.is_dir(), reason=f"shared VSI-Bench metadata not found at {META}"
)
VSIBENCH_COUNTS = {"arkitscenes": 150, "scannet": 88, "scannetpp": 50}
SHIPPED_FILES = [
    "arkitscenes_3dod_val.json",
    "benchmark_scenes.json",
    "scannet_val.json",
    "scannetpp_nvs_sem_val.json",
    "sunrgbd_test.json",
]
SHIPPED_COUNTS = {  # benchmark -> scenes per dataset
    "arkitscenes-3dod-val": {"arkitscenes": 549},
    "scannet-val": {"scannet": 312},
    "scannetpp-nvs-sem-val": {"scannetpp": 50},
    "sunrgbd-test": {"sunrgbd": 5050},
    "vsibench": VSIBENCH_COUNTS,
}
# Union: every VSI-Bench scene is also in one of the official splits.
ALL_COUNTS = {"arkitscenes": 549, "scannet": 312, "scannetpp": 50, "sunrgbd": 5050}


@pytest.fixture
def shipped() -> BenchmarkRegistry:
    """The VSI-Bench part of the shipped registry (what load_default gave before more lists)."""
    return BenchmarkRegistry.load_default(use_shared=False, benchmarks=["vsibench"])


@pytest.fixture(scope="module")
def full() -> BenchmarkRegistry:
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
    assert len(reg) == sum(ALL_COUNTS.values())
    assert reg.sources == [str(BENCHMARK_DATA_DIR / name) for name in SHIPPED_FILES]


@needs_shared
def test_shipped_file_equals_shared_metadata():
    shipped = json.loads(BENCHMARK_SCENES_FILE.read_text(encoding="utf-8"))
    assert shipped == benchmark_file_payload(META)
    assert "thinking-in-space" in shipped["source"]
    records = vsibench_scene_records(META)
    assert len(records) == 288
    derived = BenchmarkRegistry.from_vsibench_meta(META)
    assert derived.counts() == VSIBENCH_COUNTS
    shipped_vsi = BenchmarkRegistry.load_default(use_shared=False, benchmarks="vsibench")
    assert derived.scenes() == shipped_vsi.scenes()


@needs_shared
def test_load_default_merges_shared(monkeypatch):
    monkeypatch.setenv(SHARED_DATA_ENV, str(SHARED))
    reg = BenchmarkRegistry.load_default()
    assert reg.sources == [str(BENCHMARK_DATA_DIR / name) for name in SHIPPED_FILES] + [str(META)]
    assert len(reg) == sum(ALL_COUNTS.values())
    assert reg.counts("vsibench") == VSIBENCH_COUNTS
    vsi = BenchmarkRegistry.load_default(benchmarks=["vsibench"])
    assert vsi.sources == [str(BENCHMARK_SCENES_FILE), str(META)] and len(vsi) == 288
    no_vsi = BenchmarkRegistry.load_default(exclude=["vsibench"])
    assert str(META) not in no_vsi.sources  # the shared metadata is read only for VSI-Bench
    assert vsibench_meta_dir(META) == META  # the vsibench-meta folder itself is accepted


@needs_shared
@pytest.mark.parametrize(
    ("dataset", "benchmark", "n"),
    [
        ("arkitscenes", "arkitscenes-3dod-val", 150),
        ("scannet", "scannet-val", 88),
        ("scannetpp", "scannetpp-nvs-sem-val", 50),
    ],
)
def test_vsibench_scenes_are_inside_the_official_splits(full, dataset, benchmark, n):
    vsi = {sid for ds, sid in BenchmarkRegistry.from_vsibench_meta(META).scenes(dataset=dataset)}
    official = {sid for _, sid in full.scenes(benchmark)}
    assert len(vsi) == n and vsi <= official


# -- the other shipped lists ---------------------------------------------------------------------
def test_every_shipped_file_is_loaded_and_described(full):
    assert [p.name for p in shipped_benchmark_files()] == SHIPPED_FILES
    assert full.sources == [str(BENCHMARK_DATA_DIR / name) for name in SHIPPED_FILES]
    assert full.benchmarks == sorted(SHIPPED_COUNTS)
    for bench, counts in SHIPPED_COUNTS.items():
        assert full.counts(bench) == counts, bench
    assert full.counts() == ALL_COUNTS
    assert len(full) == sum(ALL_COUNTS.values()) == 5961

    lists = shipped_benchmark_lists()
    assert [e["file"] for e in lists] == SHIPPED_FILES
    for entry in lists:
        assert entry["source"] and entry["description"]
        for name, desc in entry["benchmarks"].items():
            # each file's own description of its counts matches its content
            assert desc["scenes_per_dataset"] == SHIPPED_COUNTS[name], name
            assert desc["license"] and desc["url"]
    by_file = {e["file"]: e for e in lists}
    assert "apple/ARKitScenes" in by_file["arkitscenes_3dod_val.json"]["source"]
    assert "3dod_train_val_splits.csv" in by_file["arkitscenes_3dod_val.json"]["source"]
    assert "scannetv2_val.txt" in by_file["scannet_val.json"]["source"]
    assert "allsplit.mat" in by_file["sunrgbd_test.json"]["source"]
    assert by_file["sunrgbd_test.json"]["scenes"] == 5050


def test_benchmark_info(full):
    info = full.benchmark_info()
    assert sorted(info) == sorted(SHIPPED_COUNTS)
    arkit = full.benchmark_info("arkitscenes-3dod-val")
    assert arkit["scenes"] == 549 and arkit["scenes_per_dataset"] == {"arkitscenes": 549}
    assert arkit["file"].endswith("arkitscenes_3dod_val.json")
    assert "42a27f75a93fda8ecacf7453eacbbcb9be20693a" in arkit["source"]
    assert "id_format" in arkit and arkit["used_by"]
    assert full.benchmark_info("vsibench")["license"] == "Apache-2.0"
    with pytest.raises(KeyError, match="nope"):
        full.benchmark_info("nope")


def test_spot_checks_of_known_ids(full):
    # ARKitScenes 3DOD: first and last Validation rows, a Training row, a VSI-Bench scene.
    assert full.lookup("41069021", "arkitscenes") == ["arkitscenes-3dod-val"]
    assert full.lookup("48458747", "arkitscenes") == ["arkitscenes-3dod-val"]
    assert full.lookup(41069025, "arkitscenes") == ["arkitscenes-3dod-val", "vsibench"]
    assert full.lookup("40753679", "arkitscenes") == []  # fold "Training"
    # ScanNet v2 val (and not train).
    assert full.lookup("scene0568_00", "scannet") == ["scannet-val"]
    assert full.lookup("scene0685_02", "scannet") == ["scannet-val"]
    assert full.lookup("scene0251_00", "scannet") == ["scannet-val", "vsibench"]
    assert full.lookup("scene0000_00", "scannet") == []  # ScanNet train
    # ScanNet++ nvs_sem_val = VSI-Bench's ScanNet++ scenes.
    assert full.lookup("7b6477cb95", "scannetpp") == ["scannetpp-nvs-sem-val", "vsibench"]
    # SUN RGB-D test: SUNRGBDMeta image ids 1..5050; 5051.. are training.
    assert full.lookup("000001", "sunrgbd") == ["sunrgbd-test"]
    assert full.lookup("005050", "sunrgbd") == ["sunrgbd-test"]
    assert full.lookup(17, "sunrgbd") == ["sunrgbd-test"]  # padded to "000017"
    assert full.lookup("5050", "SUNRGBD") == ["sunrgbd-test"]
    assert full.lookup("005051", "sunrgbd") == [] and full.lookup(10335, "sunrgbd") == []
    assert full.lookup("000001", "scannet") == []  # datasets are kept apart
    assert full.lookup("000001") == ["sunrgbd-test"]  # without a dataset: exact spelling


def test_sunrgbd_ids():
    assert normalize_scene_id(17, "sunrgbd") == "000017"
    assert normalize_scene_id("17") == "17"  # only SUN RGB-D ids are padded
    assert normalize_scene_id("kv1/NYUdata/NYU0001", "sunrgbd") == "kv1/NYUdata/NYU0001"
    assert sunrgbd_scene_id("SUNRGBD/kv1/NYUdata/NYU0001/image/NYU0001.jpg") == (
        "kv1/NYUdata/NYU0001"
    )
    path = (
        "/data/SUNRGBD/kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize"
        "/image/0000103.jpg"
    )
    assert sunrgbd_scene_id(path) == (
        "kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize"
    )
    assert sunrgbd_scene_id("kv1/NYUdata/NYU0001/") == "kv1/NYUdata/NYU0001"
    assert sunrgbd_scene_id("realsense/lg/2014_10_24-14_42_34-1311000073/depth") == (
        "realsense/lg/2014_10_24-14_42_34-1311000073"
    )
    with pytest.raises(ValueError):
        sunrgbd_scene_id("SUNRGBD/")


def test_choose_benchmarks_at_load(full):
    only = BenchmarkRegistry.load_default(use_shared=False, benchmarks=["scannet-val"])
    assert only.benchmarks == ["scannet-val"] and len(only) == 312
    assert only.sources == [str(BENCHMARK_DATA_DIR / "scannet_val.json")]

    no_scannet = BenchmarkRegistry.load_default(use_shared=False, exclude="scannet-val")
    assert "scannet-val" not in no_scannet.benchmarks
    assert no_scannet.counts()["scannet"] == 88  # VSI-Bench still guards its ScanNet scenes
    assert no_scannet.lookup("scene0568_00", "scannet") == []
    assert no_scannet.lookup("scene0251_00", "scannet") == ["vsibench"]

    none = BenchmarkRegistry.load_default(
        use_shared=False, exclude=["scannet-val", "vsibench"], benchmarks=["scannet-val"]
    )
    assert len(none) == 0 and none.benchmarks == []

    with pytest.raises(ValueError, match=r"unknown benchmark.*scanet-val.*scannet-val"):
        BenchmarkRegistry.load_default(use_shared=False, exclude=["scanet-val"])
    with pytest.raises(ValueError, match="unknown benchmark"):
        BenchmarkRegistry.load_default(use_shared=False, benchmarks="omni3d")


def test_without_and_only_return_new_registries(full):
    before = len(full)
    reduced = full.without(["scannet-val", "sunrgbd-test"])
    assert len(full) == before  # the original is untouched
    assert reduced.benchmarks == ["arkitscenes-3dod-val", "scannetpp-nvs-sem-val", "vsibench"]
    assert reduced.counts() == {"arkitscenes": 549, "scannet": 88, "scannetpp": 50}
    assert reduced.lookup("scene0251_00", "scannet") == ["vsibench"]
    assert reduced.lookup("000001", "sunrgbd") == []
    assert reduced.benchmark_info("vsibench")["scenes"] == 288
    with pytest.raises(KeyError):
        reduced.benchmark_info("scannet-val")
    assert (
        full.only("vsibench").scenes()
        == full.without([b for b in full.benchmarks if b != "vsibench"]).scenes()
    )
    assert len(full.only([])) == 0
    with pytest.raises(ValueError, match="empty"):
        full.without([" "])


def test_user_lists_on_top_of_the_full_registry(full, tmp_path):
    reg = full.without([])  # a copy
    path = tmp_path / "mine.txt"
    path.write_text("scannet scene0000_00\nsunrgbd 42\nhypersim ai_001_001\n")
    assert reg.load_user_list(path, benchmark="my-eval") == 3
    assert reg.lookup("scene0000_00", "scannet") == ["my-eval"]
    assert reg.lookup("000042", "sunrgbd") == ["my-eval", "sunrgbd-test"]
    assert reg.lookup("ai_001_001", "hypersim") == ["my-eval"]
    assert reg.benchmark_info("my-eval")["source"] == str(path)
    assert reg.without("my-eval").lookup("ai_001_001", "hypersim") == []
    assert full.lookup("ai_001_001", "hypersim") == []  # the copy did not share state


def test_scene_native_id_is_checked(full):
    scene = Scene(id="kv1_NYUdata_NYU0001", source="sunrgbd", attributes={"native_id": "000001"})
    assert full.is_benchmark_scene(scene)
    scene = Scene(id="x", source="sunrgbd", attributes={"native_id": "009999"})
    assert not full.is_benchmark_scene(scene)
