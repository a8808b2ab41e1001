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
    "sunrgbd_test_folders.json",
]
SHIPPED_COUNTS = {  # benchmark -> scenes per dataset
    "arkitscenes-3dod-val": {"arkitscenes": 549},
    "scannet-val": {"scannet": 312},
    "scannetpp-nvs-sem-val": {"scannetpp": 50},
    # 5,050 test images, each under two spellings: SUNRGBDMeta image id and image folder.
    "sunrgbd-test": {"sunrgbd": 2 * 5050},
    "vsibench": VSIBENCH_COUNTS,
}
# Union: every VSI-Bench scene is also in one of the official splits.
ALL_COUNTS = {"arkitscenes": 549, "scannet": 312, "scannetpp": 50, "sunrgbd": 2 * 5050}


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
    assert len(full) == sum(ALL_COUNTS.values()) == 5961 + 5050

    lists = shipped_benchmark_lists()
    assert [e["file"] for e in lists] == SHIPPED_FILES
    for entry in lists:
        assert entry["source"] and entry["description"]
        records = json.loads(Path(entry["path"]).read_text(encoding="utf-8"))["scenes"]
        for name, desc in entry["benchmarks"].items():
            # each file's own description of its counts matches its content
            own: dict[str, int] = {}
            for rec in records:
                if rec["benchmark"] == name:
                    own[rec["dataset"]] = own.get(rec["dataset"], 0) + 1
            assert desc["scenes_per_dataset"] == own, name
            assert desc["license"] and desc["url"]
    by_file = {e["file"]: e for e in lists}
    assert "apple/ARKitScenes" in by_file["arkitscenes_3dod_val.json"]["source"]
    assert "3dod_train_val_splits.csv" in by_file["arkitscenes_3dod_val.json"]["source"]
    assert "scannetv2_val.txt" in by_file["scannet_val.json"]["source"]
    assert "allsplit.mat" in by_file["sunrgbd_test.json"]["source"]
    assert by_file["sunrgbd_test.json"]["scenes"] == 5050
    folders = by_file["sunrgbd_test_folders.json"]
    assert folders["scenes"] == 5050
    assert "ankurhanda/sunrgbd-meta-data" in folders["source"]
    commit = "4543ec8a46a349563fafd2820211b0d87580a380"
    assert f"sunrgbd_testing_images.txt @ {commit}" in folders["source"]
    assert "447,564 characters, 5,050 lines" in folders["source"]


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


# -- SUN RGB-D test images spelled as image folders ---------------------------------------------
SUN_FOLDERS_FILE = BENCHMARK_DATA_DIR / "sunrgbd_test_folders.json"
KV2_FIRST = "kv2/kinect2data/000002_2014-05-26_14-23-37_260595134347_rgbf000103-resize"


def test_sunrgbd_folder_ids_are_the_test_images():
    reg = BenchmarkRegistry()
    assert reg.load_file(SUN_FOLDERS_FILE) == 5050
    assert reg.benchmarks == ["sunrgbd-test"] and reg.counts() == {"sunrgbd": 5050}
    ids = [sid for _, sid in reg.scenes()]
    assert all(sid.count("/") >= 2 and not sid.endswith(("/image", "/")) for sid in ids)
    per_sensor: dict[str, int] = {}
    for sid in ids:
        group = "/".join(sid.split("/")[:2])
        per_sensor[group] = per_sensor.get(group, 0) + 1
    assert per_sensor == {
        "kv1/NYUdata": 654,  # = NYU Depth v2's test split
        "kv1/b3dodata": 276,
        "kv2/align_kv2": 149,
        "kv2/kinect2data": 1711,
        "realsense/lg": 548,
        "realsense/sa": 24,
        "xtion/sun3ddata": 1539,
        "xtion/xtion_align_data": 149,
    }
    data = json.loads(SUN_FOLDERS_FILE.read_text(encoding="utf-8"))
    assert [r["scene_id"] for r in data["scenes"]][:1] == [KV2_FIRST]  # file order kept
    assert data["scenes"][-1]["scene_id"] == "realsense/sa/2014_10_21-18_19_07-1311000073"


@pytest.mark.parametrize(
    "folder",
    [
        # first page of sunrgbd_testing_images.txt
        KV2_FIRST,
        "kv2/kinect2data/000130_2014-04-11_17-21-46-RobotInRoom_094959634447_rgbf000614-resize",
        "kv2/kinect2data/000326_2014-06-02_15-25-49_260595134347_rgbf000087-resize",
        # middle pages
        "kv2/align_kv2/2014-12-18_11-31-54_260595134347",
        "kv1/NYUdata/NYU0001",
        "kv1/b3dodata/img_0406",
        "xtion/sun3ddata/mit_32_d530/d530_scan_oldest/0000012-000092380997",
        "xtion/sun3ddata/mit_gym_dupont/gym_dupont_nov_1_2012_scan1.erika/0001828-000076785156",
        "xtion/xtion_align_data/2014_12_18_11_38_5",
        # last page
        "realsense/lg/2014_10_30-16_19_24-1311000073",
        "realsense/sa/2014_10_21-18_19_07-1311000073",
    ],
)
def test_sunrgbd_folder_spot_checks(full, folder):
    assert full.lookup(folder, "sunrgbd") == ["sunrgbd-test"]
    assert full.lookup(folder, "scannet") == []


def test_sunrgbd_training_folders_are_not_guarded(full):
    assert full.lookup("kv1/NYUdata/NYU0003", "sunrgbd") == []  # NYU Depth v2 train
    omni3d_fixture = "kv2/kinect2data/000065_2014-05-16_20-14-38_260595134347_rgbf000121-resize"
    assert full.lookup(omni3d_fixture, "sunrgbd") == []
    assert full.lookup("kv1/b3dodata/img_0407", "sunrgbd") == []


def test_registry_finds_sunrgbd_folders_from_omni3d_paths(full):
    assert ("sunrgbd", KV2_FIRST) in full.scenes("sunrgbd-test")
    assert "sunrgbd-test" in full.benchmark_info()
    # Omni3D's file_path is "SUNRGBD/<sensor>/.../<folder>/image/<name>.jpg"
    path = f"SUNRGBD/{KV2_FIRST}/image/0000103.jpg"
    assert sunrgbd_scene_id(path) == KV2_FIRST
    assert full.lookup(sunrgbd_scene_id(path), "sunrgbd") == ["sunrgbd-test"]
    # the paths in sunrgbd_testing_images.txt (often with "//image/") give the same ids
    nyu = sunrgbd_scene_id("SUNRGBD/kv1/NYUdata/NYU0001//image/NYU0001.jpg")
    assert nyu == "kv1/NYUdata/NYU0001"
    assert full.lookup(nyu, "sunrgbd") == ["sunrgbd-test"]
    scene = Scene(id="sunrgbd-000001", source="sunrgbd", attributes={"native_id": KV2_FIRST})
    assert full.is_benchmark_scene(scene)
    # both spellings belong to the one benchmark; dropping it drops both
    without = full.without("sunrgbd-test")
    assert without.lookup(KV2_FIRST, "sunrgbd") == [] and without.lookup("000001", "sunrgbd") == []
    only = BenchmarkRegistry.load_default(use_shared=False, benchmarks="sunrgbd-test")
    assert only.counts() == {"sunrgbd": 2 * 5050}
    assert only.sources == [
        str(BENCHMARK_DATA_DIR / "sunrgbd_test.json"),
        str(SUN_FOLDERS_FILE),
    ]
    # the benchmark description is the one of sunrgbd_test.json (loaded first)
    assert "allsplit.mat" in only.benchmark_info("sunrgbd-test")["source"]
