"""ScanNet++ reader: fixture in the real on-disk layout -> scenes vs hand-computed truth."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.geometry.boxes import box3d_corners
from vst.scenes.errors import SceneFormatError
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.scannetpp import ScanNetPPReader, fit_upright_box, resize_intrinsics
from vst.scenes.validation import scene_problems
from vst.testing.scannetpp_fixture import SCENE_ID, write_scannetpp_fixture


@pytest.fixture(scope="module")
def fx(tmp_path_factory):
    return write_scannetpp_fixture(tmp_path_factory.mktemp("spp") / "scannetpp")


@pytest.fixture(scope="module")
def read(fx):
    scenes, report = ScanNetPPReader(fx.root).read_all()
    return scenes, report


def _copy(fx, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(fx.root, dst)
    return dst


def _same_corners(a, b, atol=1e-6) -> None:
    ca, cb = box3d_corners(a)[0], box3d_corners(b)[0]
    dist = np.linalg.norm(ca[:, None] - cb[None], axis=-1)
    assert dist.min(axis=1).max() < atol and dist.min(axis=0).max() < atol


# -- layout -----------------------------------------------------------------------------------
def test_fixture_uses_the_official_layout(fx):
    s = fx.scene_dir
    header = (s / "scans/mesh_aligned_0.05.ply").read_bytes()[:400].split(b"end_header")[0]
    assert b"format binary_little_endian 1.0" in header
    assert b"property list uchar int vertex_indices" in header
    poses = json.loads((s / "iphone/pose_intrinsic_imu.json").read_text())
    assert sorted(poses) == [f"frame_{10 * n:06d}" for n in range(8)]
    assert set(poses["frame_000000"]) >= {"intrinsic", "pose", "aligned_pose", "timestamp"}
    with Image.open(s / "iphone/depth/frame_000000.png") as im:
        assert im.size == (256, 192) and np.asarray(im).dtype == np.uint16
    with Image.open(s / "iphone/rgb/frame_000000.jpg") as im:
        assert im.size == (1920, 1440) and im.format == "JPEG"
    anno = json.loads((s / "scans/segments_anno.json").read_text())
    assert set(anno["segGroups"][1]) >= {"id", "objectId", "label", "segments", "obb"}
    assert (fx.root / "splits/nvs_sem_train.txt").read_text().split() == [SCENE_ID]


def test_registered_under_its_format_name():
    assert get_reader_class("scannetpp") is ScanNetPPReader
    assert get_reader_class("ScanNet++") is ScanNetPPReader


# -- boxes ------------------------------------------------------------------------------------
def test_fit_upright_box_hand_computed():
    # a 2 x 1 x 0.5 box turned 30 degrees about Z, centred at (1, 2, 0.25): corners + inner points
    a = np.radians(30.0)
    ux, uy = np.array([np.cos(a), np.sin(a)]), np.array([-np.sin(a), np.cos(a)])
    pts = []
    for sx in (-1, 1):
        for sy in (-1, 1):
            for z in (0.0, 0.5):
                xy = np.array([1.0, 2.0]) + sx * 1.0 * ux + sy * 0.5 * uy
                pts.append([xy[0], xy[1], z])
    pts += [[1.0, 2.0, 0.25], [1.1, 2.05, 0.1]]
    box = fit_upright_box(np.array(pts))
    np.testing.assert_allclose(box, [1.0, 2.0, 0.25, 2.0, 1.0, 0.5, 0.0, 0.0, 30.0], atol=1e-9)
    # the longer side is local X even when the points list the short side first (heading -60)
    turned = np.array(pts) - [1.0, 2.0, 0.0]
    R = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # -90 degrees
    box = fit_upright_box(turned @ R.T)
    np.testing.assert_allclose(box, [0.0, 0.0, 0.25, 2.0, 1.0, 0.5, 0.0, 0.0, -60.0], atol=1e-9)
    # a square footprint: heading in [-45, 45)
    sq = np.array([[x, y, z] for x in (0, 1) for y in (0, 1) for z in (0, 1)], dtype=float)
    np.testing.assert_allclose(fit_upright_box(sq), [0.5, 0.5, 0.5, 1, 1, 1, 0, 0, 0], atol=1e-9)
    # collinear from above: no box
    assert fit_upright_box(np.array([[0, 0, 0], [1, 1, 0], [2, 2, 1.0], [0.5, 0.5, 2]])) is None


def test_boxes_equal_the_known_boxes(read, fx):
    scene = read[0][0]
    assert [o.label for o in scene.objects] == ["table", "cabinet", "chair", "trash can"]
    assert [o.id for o in scene.objects] == [1, 2, 3, 4]
    truth = {
        "table": [1.0, 0.5, 0.4, 1.2, 0.6, 0.8, 0.0, 0.0, 0.0],
        "cabinet": [-1.0, 1.0, 0.5, 0.8, 0.5, 1.0, 0.0, 0.0, 30.0],
        "chair": [0.5, -1.2, 0.45, 0.5, 0.45, 0.9, 0.0, 0.0, -60.0],
        "trash can": [-0.5, -0.6, 0.2, 0.35, 0.3, 0.4, 0.0, 0.0, 15.0],
    }
    for obj in scene.objects:
        np.testing.assert_allclose(obj.box, truth[obj.label], atol=1e-6)
        _same_corners(obj.box, np.array(truth[obj.label]))
        assert obj.box[3] >= obj.box[4]  # local X = the longer horizontal side
        assert obj.attributes["n_vertices"] == 14
        assert obj.attributes["obb_corner_deviation_m"] < 1e-6
    assert scene.object(2).attributes["object_id"] == 2


def test_obb_boxes_agree_with_the_mesh_fit(fx, read):
    scenes, _ = ScanNetPPReader(fx.root, {"boxes": "obb", "max_frames": 1}).read_all()
    mesh = {o.label: o.box for o in read[0][0].objects}
    obb = {o.label: o.box for o in scenes[0].objects}
    # obb mode has no vertex minimum (the cup keeps its annotated box); the flat picture's obb
    # is thinner than min_extent
    assert list(obb) == ["table", "cabinet", "chair", "trash can", "cup"]
    for label, box in mesh.items():
        _same_corners(box, obb[label])


def test_skipped_groups_have_reasons(read):
    reasons = {
        s.item.split("label ")[1].strip("')"): s.reason for s in read[1].skipped_of("object")
    }
    assert reasons["floor"] == "label is in exclude_labels (room structure)"
    assert reasons["cup"] == "only 3 mesh vertices (min_vertices=8)"
    assert reasons["picture"].startswith("degenerate: the vertices' XY footprint has no area")


def test_class_list_and_all_labels(fx, tmp_path):
    root = _copy(fx, tmp_path)
    (root / "metadata/instance_classes.txt").write_text("table\ncabinet\n")
    scenes, report = ScanNetPPReader(root, {"max_frames": 1}).read_all()
    assert [o.label for o in scenes[0].objects] == ["table", "cabinet"]
    assert any(
        "'chair'" in s.item and s.reason == "label not in metadata/instance_classes.txt"
        for s in report.skipped
    )
    scenes, report = ScanNetPPReader(
        root, {"classes": "all", "exclude_labels": [], "max_frames": 1}
    ).read_all()
    assert [o.label for o in scenes[0].objects] == ["table", "cabinet", "chair", "trash can"]
    floor = next(s for s in report.skipped if "'floor'" in s.item)
    assert floor.reason.startswith("degenerate: box sizes (8.0000, 8.0000, 0.0000)")
    (root / "metadata/instance_classes.txt").unlink()
    _, report = ScanNetPPReader(root, {"max_frames": 1}).read_all()
    assert [s.reason for s in report.skipped_of("file")] == [
        "not found; labels are not filtered by a class list"
    ]


# -- frames -----------------------------------------------------------------------------------
def test_poses_intrinsics_and_depth(read, fx):
    scene = read[0][0]
    assert [f.id for f in scene.frames] == fx.frame_ids
    # depth-size K, hand-computed: s = 256 / 1920 = 192 / 1440 = 2 / 15
    s = 2.0 / 15.0
    K = np.array(
        [[1450 * s, 0, (962.3 + 0.5) * s - 0.5], [0, 1452 * s, (718.9 + 0.5) * s - 0.5], [0, 0, 1]]
    )
    np.testing.assert_allclose(
        K, [[193.33333, 0, 127.87333], [0, 193.6, 95.42], [0, 0, 1]], atol=1e-5
    )
    for f in scene.frames:
        assert (f.width, f.height) == (256, 192)
        np.testing.assert_allclose(f.K, K, atol=1e-9)
        np.testing.assert_allclose(f.cam_to_world, fx.cam_to_world[f.id], atol=1e-12)
        depth = f.load_depth()
        assert depth.dtype == np.float32 and depth.shape == (192, 256)
        np.testing.assert_allclose(depth, fx.depth[f.id], atol=0.0006)
        assert f.load_image().shape == (192, 256, 3)
        assert set(f.visible_pixels) <= {1, 2, 3, 4} and len(f.visible_pixels) >= 3
        assert f.visible_pixels == {
            int(i): int(n)
            for i, n in zip(*np.unique(f.load_mask(), return_counts=True), strict=True)
            if i
        }
    assert scene.frames[1].timestamp == pytest.approx(1000.0 + 10 / 60.0)


def test_depth_back_projects_onto_the_table_top(read):
    scene = read[0][0]
    f = scene.frames[0]
    mask, depth = f.load_mask(), f.load_depth()
    rows, cols = np.nonzero(mask == 1)
    z = depth[rows, cols]
    cam = np.stack([(cols - f.K[0, 2]) * z / f.K[0, 0], (rows - f.K[1, 2]) * z / f.K[1, 1], z], 1)
    world = cam @ f.cam_to_world[:3, :3].T + f.cam_to_world[:3, 3]
    assert world[:, 2].max() == pytest.approx(0.8, abs=0.003)  # table top
    lo, hi = np.array([0.4 - 0.02, -0.1]), np.array([1.6 + 0.02, 1.1])
    assert np.all((world[:, :2] >= lo - 0.03) & (world[:, :2] <= hi + 0.03))


def test_rgb_image_size_keeps_the_jpeg_and_upsamples_depth(fx):
    reader = ScanNetPPReader(fx.root, {"image_size": "rgb", "max_frames": 1})
    scene = reader.read_all()[0][0]
    f = scene.frames[0]
    assert (f.width, f.height) == (1920, 1440)
    np.testing.assert_allclose(f.K, fx.K_rgb, atol=1e-12)
    assert Path(f.image).name == "frame_000000.jpg"
    depth = f.load_depth()
    small = np.asarray(Image.open(fx.scene_dir / "iphone/depth/frame_000000.png")) / 1000.0
    # nearest: RGB pixel (r, c) takes depth pixel (floor((r + .5) / 7.5), floor((c + .5) / 7.5))
    for r, c in [(0, 0), (7, 7), (8, 8), (719, 960), (1439, 1919), (100, 1500)]:
        assert depth[r, c] == pytest.approx(small[int((r + 0.5) / 7.5), int((c + 0.5) / 7.5)])
    assert scene_problems(scene) == []


def test_resize_intrinsics_round_trip():
    K = np.array([[1450.0, 0, 962.3], [0, 1452.0, 718.9], [0, 0, 1]])
    back = resize_intrinsics(
        resize_intrinsics(K, (1920, 1440), (256, 192)), (256, 192), (1920, 1440)
    )
    np.testing.assert_allclose(back, K, atol=1e-9)


def test_frame_selection(fx):
    scene = ScanNetPPReader(fx.root, {"frame_stride": 2}).read_all()[0][0]
    assert [f.id for f in scene.frames] == [
        "frame_000000",
        "frame_000020",
        "frame_000040",
        "frame_000060",
    ]
    scene = ScanNetPPReader(fx.root, {"max_frames": 2}).read_all()[0][0]
    assert [f.id for f in scene.frames] == ["frame_000000", "frame_000070"]


def test_broken_frames_are_skipped_with_reasons(fx, tmp_path):
    root = _copy(fx, tmp_path)
    iphone = root / "data" / SCENE_ID / "iphone"
    poses = json.loads((iphone / "pose_intrinsic_imu.json").read_text())
    del poses["frame_000010"]["aligned_pose"]
    poses["frame_000020"]["intrinsic"] = [[0, 0, 0], [0, 0, 0], [0, 0, 1]]
    (iphone / "pose_intrinsic_imu.json").write_text(json.dumps(poses))
    (iphone / "rgb/frame_000030.jpg").unlink()
    (iphone / "depth/frame_000040.png").unlink()
    shutil.copy(iphone / "depth/frame_000000.png", iphone / "depth/frame_000080.png")
    scenes, report = ScanNetPPReader(root).read_all()
    assert [f.id for f in scenes[0].frames] == [
        "frame_000000",
        "frame_000050",
        "frame_000060",
        "frame_000070",
    ]
    reasons = {s.item: s.reason for s in report.skipped_of("frame")}
    where = f"scene {SCENE_ID}, frame "
    assert reasons == {
        where
        + "frame_000010": "no valid aligned_pose (4x4 finite) in iphone/pose_intrinsic_imu.json",
        where
        + "frame_000020": "no valid 'intrinsic' (3x3 pinhole) in iphone/pose_intrinsic_imu.json",
        where + "frame_000030": "missing iphone/rgb/frame_000030.jpg",
        where + "frame_000040": "missing iphone/depth/frame_000040.png",
        where + "frame_000080": "no record in iphone/pose_intrinsic_imu.json",
    }


def test_broken_scenes(fx, tmp_path):
    root = _copy(fx, tmp_path)
    scene_dir = root / "data" / SCENE_ID
    shutil.rmtree(scene_dir / "iphone/rgb")
    scenes, report = ScanNetPPReader(root).read_all()
    assert scenes == []
    assert report.skipped_of("scene")[0].reason.startswith("no extracted frames")
    (scene_dir / "scans/mesh_aligned_0.05.ply").unlink()
    _, report = ScanNetPPReader(root).read_all()
    assert report.skipped_of("scene")[0].reason == "missing scans/mesh_aligned_0.05.ply"

    root = _copy(fx, tmp_path / "b")
    seg = root / "data" / SCENE_ID / "scans/segments.json"
    seg.write_text(json.dumps({"segIndices": [0, 1, 2]}))
    with pytest.raises(SceneFormatError, match="segIndices but"):
        ScanNetPPReader(root).read_all()


# -- paths, splits, determinism, round trip ---------------------------------------------------
@pytest.mark.parametrize("sub", ["", "data", f"data/{SCENE_ID}"])
def test_path_forms_and_split(fx, sub):
    reader = ScanNetPPReader(fx.root / sub)
    refs = reader.scene_refs(reader.new_report())
    assert [(r.id, r.dataset, r.native_id) for r in refs] == [(SCENE_ID, "scannetpp", SCENE_ID)]
    assert refs[0].locator["split"] == "train"


def test_room_from_floor_hull(fx):
    scene = ScanNetPPReader(fx.root, {"room": "floor_hull", "max_frames": 1}).read_all()[0][0]
    assert scene.room.area == pytest.approx(64.0)
    assert scene.room.floor_z == 0.0 and scene.room.ceiling_z is None


def test_deterministic_and_round_trip(fx, read, tmp_path):
    again = ScanNetPPReader(fx.root).read_all()[0][0]
    a = save_scene(read[0][0], tmp_path / "a")
    b = save_scene(again, tmp_path / "b")
    assert (a / "scene.json").read_bytes() == (b / "scene.json").read_bytes()
    for sub in ("images", "depth", "masks"):
        for p in sorted((a / sub).iterdir()):
            assert p.read_bytes() == (b / sub / p.name).read_bytes()
    loaded = load_scene(a)
    assert scene_problems(loaded) == []
    assert loaded.split == "train" and loaded.attributes["native_id"] == SCENE_ID
    np.testing.assert_allclose(loaded.boxes, read[0][0].boxes)
    assert loaded.frames[0].visible_pixels == read[0][0].frames[0].visible_pixels


# -- end to end -------------------------------------------------------------------------------
def test_end_to_end_samples_verify(read, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    scenes_root = tmp_path / "scenes"
    for scene in read[0]:
        save_scene(scene, scenes_root / scene.id)
    report, result = generate_and_verify(scenes_root, tmp_path / "out", tasks=["*"], per_scene=4)
    assert result.ok, result
    counts = report.samples_per_task
    for task in (
        "mi_camera_motion",
        "video_rel_distance",
        "si_det3d",
        "si_depth_order",
        "si_distance",
        "si_measurement",
        "si_grounding3d",
        "mi_det3d",
        "video_count",
        "video_rel_direction",
    ):
        assert counts.get(task, 0) > 0, (task, counts)


def test_cli_import(fx, tmp_path):
    from typer.testing import CliRunner

    from vst.cli import app

    out = tmp_path / "imported"
    res = CliRunner().invoke(
        app,
        ["scenes", "import", "scannetpp", str(fx.root), "--out", str(out), "-o", "max_frames=2"],
    )
    assert res.exit_code == 0, res.output
    scene = load_scene(out / SCENE_ID)
    assert len(scene.frames) == 2 and len(scene.objects) == 4
    report = json.loads((out / "import_report.json").read_text())
    assert any("cup" in s["item"] for s in report["skipped"])
