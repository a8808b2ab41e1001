"""The Omni3D reader against the fixture's hand-computed ground truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vst.geometry.boxes import box3d_corners
from vst.geometry.conventions import from_omni3d
from vst.scenes.errors import SceneFormatError
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.omni3d import (
    CAM_TO_WORLD,
    Omni3DReader,
    box_owner_map,
    dataset_of,
    native_id_of,
    omni3d_box_to_world,
)
from vst.scenes.validation import scene_problems
from vst.testing.omni3d_fixture import (
    FIXTURE_K,
    omni3d_corners,
    rot_x,
    rot_y,
    write_omni3d_fixture,
)


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_omni3d_fixture(tmp_path_factory.mktemp("omni3d"))


@pytest.fixture(scope="module")
def read(fx):
    scenes, report = Omni3DReader(fx.json_dir).read_all()
    return {s.id: s for s in scenes}, report


def same_points(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> bool:
    """Two (8, 3) corner sets equal as sets (any order)."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return bool(np.all(d.min(axis=1) < atol) and np.all(d.min(axis=0) < atol))


# -- conventions -------------------------------------------------------------------------------
def test_fixture_corners_follow_omni3d_vertex_order():
    # DATA.md drawing: v0..v3 front face (z = -w/2), v4..v7 back; v0 top-left (-l/2, -h/2)
    c = omni3d_corners([0, 0, 0], [2.0, 4.0, 6.0], np.eye(3))  # w=2, h=4, l=6
    assert c[0].tolist() == [-3.0, -2.0, -1.0]
    assert c[1].tolist() == [3.0, -2.0, -1.0]
    assert c[2].tolist() == [3.0, 2.0, -1.0]
    assert c[3].tolist() == [-3.0, 2.0, -1.0]
    assert c[6].tolist() == [3.0, 2.0, 1.0]
    np.testing.assert_allclose(c[4:] - c[:4], [[0, 0, 2.0]] * 4)


@pytest.mark.parametrize(
    "R",
    [np.eye(3), rot_y(30.0), rot_y(-100.0), rot_x(25.0) @ rot_y(40.0), rot_x(-80) @ rot_y(170)],
)
def test_vst_corners_equal_omni3d_corners(R):
    center, dims = [0.3, -0.2, 2.5], [0.4, 0.9, 1.3]
    official = omni3d_corners(center, dims, R)
    cam_box = from_omni3d(center, dims, R)
    assert same_points(box3d_corners(cam_box)[0], official)
    world = omni3d_box_to_world(center, dims, R)
    expected_world = official @ CAM_TO_WORLD[:3, :3].T
    assert same_points(box3d_corners(world)[0], expected_world)


def test_upright_box_in_level_camera_has_heading_only():
    world = omni3d_box_to_world([1.0, 0.5, 3.0], [0.6, 0.8, 1.5], rot_y(35.0))
    np.testing.assert_allclose(world, [1.0, 3.0, -0.5, 1.5, 0.6, 0.8, 0, 0, -35.0], atol=1e-9)


def test_mirrored_rotation_keeps_the_corners():
    R = rot_y(20.0) @ np.diag([1.0, 1.0, -1.0])
    world = omni3d_box_to_world([0, 0, 2], [0.5, 0.6, 0.7], R)
    official = omni3d_corners([0, 0, 2], [0.5, 0.6, 0.7], R) @ CAM_TO_WORLD[:3, :3].T
    assert same_points(box3d_corners(world)[0], official)


def test_cam_to_world_axes():
    R = CAM_TO_WORLD[:3, :3]
    np.testing.assert_allclose(R @ [1, 0, 0], [1, 0, 0])  # right stays right
    np.testing.assert_allclose(R @ [0, 0, 1], [0, 1, 0])  # forward -> world Y
    np.testing.assert_allclose(R @ [0, -1, 0], [0, 0, 1])  # image up -> world Z
    assert np.isclose(np.linalg.det(R), 1.0)


def test_dataset_and_native_ids():
    sun = (
        "SUNRGBD/kv2/kinect2data/000065_2014-05-16_20-14-38_260595134347_rgbf000121-resize"
        "/image/0000121.jpg"
    )
    assert dataset_of(sun) == "sunrgbd"
    assert native_id_of("sunrgbd", sun, 5) == (
        "kv2/kinect2data/000065_2014-05-16_20-14-38_260595134347_rgbf000121-resize"
    )
    assert native_id_of("sunrgbd", "SUNRGBD/kv1/NYUdata/NYU0001//image/NYU0001.jpg", 1) == (
        "kv1/NYUdata/NYU0001"
    )
    ark = "ARKitScenes/train/41069025/41069025_3250.120.jpg"
    assert dataset_of(ark) == "arkitscenes"
    assert native_id_of("arkitscenes", ark, 7) == "41069025"
    hyp = "hypersim/ai_001_010/images/scene_cam_00_final_preview/frame.0007.tonemap.jpg"
    assert dataset_of(hyp) == "hypersim"
    assert native_id_of("hypersim", hyp, 9) == "ai_001_010"
    assert dataset_of("KITTI_object/training/image_2/000123.png") == "kitti"
    assert native_id_of("kitti", "KITTI_object/training/image_2/000123.png", 3) == "000123"
    assert dataset_of("nuScenes/samples/CAM_FRONT/x.jpg") == "nuscenes"
    assert dataset_of("elsewhere/a.jpg", "Objectron_val.json") == "objectron"
    assert dataset_of("elsewhere/a.jpg", "mine.json") == "omni3d"
    assert native_id_of("omni3d", "elsewhere/a.jpg", 42) == "42"


# -- reading -----------------------------------------------------------------------------------
def test_scene_refs(fx):
    reader = Omni3DReader(fx.json_dir)
    refs = reader.scene_refs(reader.new_report())
    assert [r.id for r in refs] == sorted(
        ["arkitscenes-900101", "arkitscenes-900102", "sunrgbd-900001"]
    )
    by_id = {r.id: r for r in refs}
    assert by_id["sunrgbd-900001"].native_id == "kv1/NYUdata/NYU9901"
    assert by_id["sunrgbd-900001"].dataset == "sunrgbd"
    assert by_id["arkitscenes-900101"].native_id == "90000001"
    assert by_id["arkitscenes-900102"].native_id == "90000001"
    # the JSON files are parsed once; every listing still reports the non-annotation file
    for _ in range(2):
        report = reader.new_report()
        reader.scene_refs(report)
        assert [s.item.endswith("stats.json") for s in report.skipped_of("file")] == [True]


def test_scenes_match_ground_truth(fx, read):
    scenes, _ = read
    assert sorted(scenes) == sorted(fx.scenes)
    for sid, truth in fx.scenes.items():
        scene = scenes[sid]
        assert scene.source == truth["dataset"]
        assert scene.split == truth["split"] == "test"
        assert scene.attributes["native_id"] == truth["native_id"]
        assert scene.attributes["format"] == "omni3d"
        assert scene.attributes["image_id"] == truth["image_id"]
        (frame,) = scene.frames
        np.testing.assert_allclose(frame.K, FIXTURE_K)
        assert (frame.width, frame.height) == (160, 120)
        np.testing.assert_allclose(frame.cam_to_world, CAM_TO_WORLD)
        assert Path(frame.image).is_file()
        assert [o.label for o in scene.objects] == [t["label"] for t in truth["objects"]]
        assert [o.id for o in scene.objects] == list(range(1, len(truth["objects"]) + 1))
        for obj, t in zip(scene.objects, truth["objects"], strict=True):
            assert obj.attributes["omni3d_id"] == t["omni3d_id"]
            if t["world_box"] is not None:
                np.testing.assert_allclose(obj.box, t["world_box"], atol=1e-9)
            # always: corners equal the file's bbox3D_cam moved to the world, as point sets
            expected = np.asarray(t["bbox3D_cam"]) @ CAM_TO_WORLD[:3, :3].T
            assert same_points(box3d_corners(obj.box)[0], expected)
            # and back in the camera the box is Omni3D's own box (VST camera convention)
            cam = scene.boxes_in_camera(frame)[obj.id - 1]
            assert same_points(box3d_corners(cam)[0], np.asarray(t["bbox3D_cam"]))


def test_hand_computed_values(read):
    scenes, _ = read
    chair = scenes["sunrgbd-900001"].objects[0]
    # center_cam (-0.45, 0.35, 2.4), [w, h, l] = [0.5, 0.9, 0.55], R_cam = Ry(30 deg)
    np.testing.assert_allclose(chair.box, [-0.45, 2.4, -0.35, 0.55, 0.5, 0.9, 0, 0, -30], atol=1e-9)
    frame = scenes["arkitscenes-900101"].frames[0]
    # cabinet straight ahead, R = I, front face at z = 2.5 - 0.25 = 2.25 m: u in 80 +- 120 *
    # 0.31 / 2.25 = [63.47, 96.53] -> 33 columns, v in 60 +- 120 * 0.4 / 2.25 = [38.67, 81.33]
    # -> 43 rows; 1419 pixels, times the annotated visibility 0.5 -> 709.5 -> 710
    assert frame.visible_pixels[2] == 710
    cab = scenes["arkitscenes-900101"].objects[1]
    assert cab.attributes["visibility"] == 0.5
    assert frame.truncation[2] == 0.0  # from the annotation
    assert "truncation" not in scenes["arkitscenes-900101"].objects[0].attributes  # was -1
    assert 0.0 <= frame.truncation[1] <= 1.0  # computed by vst


def test_owner_map_counts_front_face():
    box = omni3d_box_to_world([0, 0, 2.5], [0.5, 0.8, 0.62], np.eye(3))[None]
    owner = box_owner_map(box, np.linalg.inv(CAM_TO_WORLD), np.asarray(FIXTURE_K), 160, 120)
    assert owner.shape == (120, 160)
    rows, cols = np.nonzero(owner == 0)
    assert (cols.min(), cols.max(), rows.min(), rows.max()) == (64, 96, 39, 81)
    assert len(rows) == 33 * 43
    # a nearer box in front hides the part behind it
    front = omni3d_box_to_world([0, 0, 1.0], [0.1, 0.2, 0.2], np.eye(3))[None]
    both = np.concatenate([box, front])
    owner2 = box_owner_map(both, np.linalg.inv(CAM_TO_WORLD), np.asarray(FIXTURE_K), 160, 120)
    assert owner2[60, 80] == 1 and owner2[45, 70] == 0


def test_skipped_items_have_reasons(fx, read):
    _, report = read
    objects = {s.item: s.reason for s in report.skipped_of("object")}
    for aid, reason in fx.skipped_objects.items():
        hits = [r for item, r in objects.items() if f"annotation {aid} " in item]
        assert len(hits) == 1 and reason in hits[0], (aid, objects)
    scenes = {s.item: s.reason for s in report.skipped_of("scene")}
    assert "not found" in scenes[f"scene {fx.missing_image_scene}"]
    files = report.skipped_of("file")
    assert len(files) == 1 and files[0].item.endswith("stats.json")


def test_keep_ignored_and_categories(fx):
    scenes, _ = Omni3DReader(fx.json_dir, {"keep_ignored": True}).read_all()
    sun = {s.id: s for s in scenes}["sunrgbd-900001"]
    labels = [o.label for o in sun.objects]
    assert labels == ["chair", "table", "box", "pillow", "dontcare", "picture"]
    pillow = sun.objects[3]
    assert pillow.attributes["omni3d_ignore"] == ["behind_camera is true"]
    assert sun.attributes["ignored_kept"] == 3
    assert scene_problems(sun) == []

    scenes, report = Omni3DReader(fx.json_dir, {"categories": ["Chair"]}).read_all()
    assert [s.id for s in scenes] == ["sunrgbd-900001"]
    assert [o.label for o in scenes[0].objects] == ["chair"]
    reasons = [s.reason for s in report.skipped_of("scene")]
    assert any("no usable annotation" in r for r in reasons)


def test_single_file_and_image_root(fx, tmp_path):
    moved = tmp_path / "ann.json"
    shutil.copy(fx.json_dir / "SUNRGBD_test.json", moved)
    reader = Omni3DReader(moved, {"image_root": str(fx.image_root)})
    scenes, report = reader.read_all()
    assert [s.id for s in scenes] == ["sunrgbd-900001"]
    # without image_root the default (the JSON's grandparent) has no images
    scenes, report = Omni3DReader(moved).read_all()
    assert scenes == [] and "not found" in report.skipped_of("scene")[0].reason


def test_broken_copy(fx, tmp_path):
    root = tmp_path / "broken"
    shutil.copytree(fx.root, root)
    path = root / "datasets" / "Omni3D" / "SUNRGBD_test.json"
    data = json.loads(path.read_text())
    anns = {a["id"]: a for a in data["annotations"]}
    anns[1]["center_cam"] = [float("nan"), 0.0, 2.0]
    anns[2]["R_cam"] = [[1, 0, 0], [0, 2, 0], [0, 0, 1]]
    data["images"][0]["width"] = 200  # the file is 160 wide
    path.write_text(json.dumps(data))
    reader = Omni3DReader(path.parent)
    scenes, report = reader.read_all()
    assert "sunrgbd-900001" not in {s.id for s in scenes}
    reasons = {s.item: s.reason for s in report.skipped}
    assert "is 160x120, annotated as 200x120" in reasons["scene sunrgbd-900001"]

    data["images"][0]["width"] = 160
    path.write_text(json.dumps(data))
    scenes, report = Omni3DReader(path.parent).read_all()
    sun = {s.id: s for s in scenes}["sunrgbd-900001"]
    assert [o.label for o in sun.objects] == ["box"]
    reasons = {s.item: s.reason for s in report.skipped_of("object")}
    assert "center_cam must be finite" in reasons["scene sunrgbd-900001, annotation 1 (chair)"]
    assert "not a rotation matrix" in reasons["scene sunrgbd-900001, annotation 2 (table)"]

    path.write_text("{not json")
    with pytest.raises(SceneFormatError, match=r"SUNRGBD_test\.json"):
        Omni3DReader(path).read_all()
    # in a folder, a broken file is skipped with its name; the other files' scenes are read
    scenes, report = Omni3DReader(path.parent).read_all()
    assert scenes and all(not s.id.startswith("sunrgbd") for s in scenes)
    assert "cannot parse JSON" in {s.item: s.reason for s in report.skipped}[str(path)]
    with pytest.raises(SceneFormatError, match="not an Omni3D annotation file"):
        Omni3DReader(root / "datasets" / "Omni3D" / "stats.json").read_all()


def test_options_and_registry(fx):
    assert get_reader_class("omni3d") is Omni3DReader
    with pytest.raises(ValueError, match="keep_ignored"):
        Omni3DReader(fx.json_dir, {"keep_ignored": "maybe"})
    with pytest.raises(ValueError, match="nonsense"):
        Omni3DReader(fx.json_dir, {"nonsense": 1})


def test_deterministic(fx, read, tmp_path):
    scenes, _ = read
    again, _ = Omni3DReader(fx.json_dir).read_all()
    for s in again:
        a = save_scene(s, tmp_path / "a" / s.id)
        b = save_scene(scenes[s.id], tmp_path / "b" / s.id)
        assert (a / "scene.json").read_text() == (b / "scene.json").read_text()


def test_round_trip(read, tmp_path):
    scenes, _ = read
    for sid, scene in scenes.items():
        assert scene_problems(scene) == []
        loaded = load_scene(save_scene(scene, tmp_path / sid))
        assert scene_problems(loaded) == []
        np.testing.assert_allclose(loaded.boxes, scene.boxes)
        assert loaded.frames[0].visible_pixels == scene.frames[0].visible_pixels
        assert loaded.attributes["native_id"] == scene.attributes["native_id"]


# -- end to end --------------------------------------------------------------------------------
def _import(fx, out: Path, options: dict | None = None) -> Path:
    scenes, _ = Omni3DReader(fx.json_dir, options).read_all()
    for s in scenes:
        save_scene(s, out / s.id)
    return out


def test_engine_si_det3d(fx, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    root = _import(fx, tmp_path / "scenes")
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["si_*"], per_scene=4)
    assert result.ok
    assert report.samples_per_task.get("si_det3d", 0) > 0
    # without masks or depth the other single-image tasks say why they cannot run
    skips = report.task_skips
    assert "needs depth maps, scene has none" in skips["si_depth_point"]
    assert "needs instance masks, scene has none" in skips["si_measurement"]


def test_engine_with_box_masks(fx, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    root = _import(fx, tmp_path / "scenes", {"box_masks": True})
    mask = load_scene(root / "sunrgbd-900001").frames[0].load_mask()
    assert mask.shape == (120, 160) and set(np.unique(mask)) == {0, 1, 2, 3}
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["si_*"], per_scene=4)
    assert result.ok
    for task in ("si_det3d", "si_measurement", "si_depth_order"):
        assert report.samples_per_task.get(task, 0) > 0, report.samples_per_task


def test_cli_import(fx, tmp_path):
    from vst.cli import app

    out = tmp_path / "imported"
    args = ["scenes", "import", "omni3d", str(fx.json_dir), "--out", str(out)]
    res = CliRunner().invoke(app, args)  # every fixture image is in an evaluation split file
    assert res.exit_code == 1, res.output
    assert "omni3d-sunrgbd-test" in res.output and not any(p.is_dir() for p in out.iterdir())
    report = json.loads((out / "import_report.json").read_text())
    assert {b for e in report["excluded_benchmark_scenes"] for b in e["benchmarks"]} == {
        "omni3d-sunrgbd-test",
        "omni3d-arkitscenes-test",
    }
    res = CliRunner().invoke(app, [*args, "--allow-benchmark-scenes"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == sorted(fx.scenes)
    report = json.loads((out / "import_report.json").read_text())
    assert any("valid3D" in s["reason"] for s in report["skipped"])
