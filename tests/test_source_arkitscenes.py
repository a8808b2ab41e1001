"""ARKitScenes 3DOD reader: fixture in the real on-disk format -> scenes equal to the hand-set
truth (poses, intrinsics, boxes, depth), upright rotation of sky-Left videos, skip reasons,
determinism, save/load, and samples from every kind of task."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.geometry.boxes import box3d_corners
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.arkitscenes import (
    ARKitScenesReader,
    arkit_box,
    parse_pincam,
    parse_traj_line,
    rotate_pixels,
    sky_from_pose,
    upright_camera,
)
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.validation import scene_problems
from vst.testing.arkitscenes_fixture import K_RAW, render, write_arkitscenes_fixture

UP, LEFT = "90000001", "90000002"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_arkitscenes_fixture(tmp_path_factory.mktemp("arkit"))


@pytest.fixture(scope="module")
def scenes(fixture):
    scenes, report = ARKitScenesReader(fixture["root"]).read_all()
    assert report.skipped == []
    return {s.id: s for s in scenes}


def _copy(fixture, tmp_path) -> Path:
    dst = tmp_path / "copy"
    shutil.copytree(fixture["root"], dst)
    return dst


def _project(K, cam_to_world, pts):
    R, t = cam_to_world[:3, :3], cam_to_world[:3, 3]
    cam = (pts - t) @ R  # R.T @ (p - t)
    uv = cam @ K.T
    return uv[:, :2] / uv[:, 2:3], cam[:, 2]


# -- format helpers, hand-computed -----------------------------------------------------------
def test_traj_line_is_world_to_camera_angle_axis():
    # rotation of +90 deg about Z (world -> camera), translation (1, 2, 3)
    ts, T = parse_traj_line(f"12.5 0 0 {math.pi / 2} 1 2 3")
    assert ts == 12.5
    # cam_to_world = inverse: R = Rz(-90) = [[0,1,0],[-1,0,0],[0,0,1]], t = -R @ (1,2,3)
    np.testing.assert_allclose(T[:3, :3], [[0, 1, 0], [-1, 0, 0], [0, 0, 1]], atol=1e-12)
    np.testing.assert_allclose(T[:3, 3], [-2.0, 1.0, -3.0], atol=1e-12)
    for bad in ("1 2 3", "1 a 0 0 0 0 0", "1 nan 0 0 0 0 0"):
        with pytest.raises(ValueError):
            parse_traj_line(bad)


def test_pincam():
    w, h, K = parse_pincam("256 192 211.5 212.5 127.9 95.1\n")
    assert (w, h) == (256, 192)
    np.testing.assert_array_equal(K, [[211.5, 0, 127.9], [0, 212.5, 95.1], [0, 0, 1]])
    for bad in ("256 192 211", "256 192 -1 1 1 1", "0 192 1 1 1 1"):
        with pytest.raises(ValueError):
            parse_pincam(bad)


def _arkit_corners(centroid, lengths, axes):
    """Corners the way ARKitScenes' box_utils.compute_box_3d builds them: local corner
    offsets (+-l, +-h, +-w)/2 mapped by normalizedAxes.reshape(3, 3).T, plus the centroid."""
    rot = np.asarray(axes, dtype=np.float64).reshape(3, 3)
    l, h, w = (x / 2 for x in lengths)  # noqa: E741
    local = np.array(
        [[l, l, -l, -l, l, l, -l, -l], [h, -h, -h, h, h, -h, -h, h], [w, w, w, w, -w, -w, -w, -w]]
    )
    return (rot.T @ local).T + np.asarray(centroid)


def _same_point_set(a, b, atol=1e-9):
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=2)
    return np.all(d.min(axis=1) < atol) and np.all(d.min(axis=0) < atol)


def test_box_converter_matches_arkitscenes_corners():
    rng = np.random.default_rng(3)
    for _ in range(50):
        R = np.linalg.qr(rng.normal(size=(3, 3)))[0]
        axes = R.T.reshape(-1)  # rows = box axes (possibly a left-handed triple)
        centroid, lengths = rng.normal(size=3), rng.uniform(0.1, 2.0, size=3)
        box = arkit_box(centroid, lengths, axes)
        assert _same_point_set(box3d_corners(box)[0], _arkit_corners(centroid, lengths, axes))


def test_box_converter_puts_the_vertical_axis_at_local_z(fixture):
    for obj in fixture["objects"]:
        obb = obj["obb"]
        box = arkit_box(obb["centroid"], obb["axesLengths"], obb["normalizedAxes"])
        np.testing.assert_allclose(box, obj["box"], atol=1e-9)
        corners = _arkit_corners(obb["centroid"], obb["axesLengths"], obb["normalizedAxes"])
        assert _same_point_set(box3d_corners(box)[0], corners)
    # the table is annotated with its vertical axis first: (up, front, left) lengths
    table = fixture["objects"][0]
    assert table["obb"]["axesLengths"] == [0.75, 1.2, 0.8]
    np.testing.assert_allclose(table["box"], [2.0, 0.0, 0.375, 1.2, 0.8, 0.75, 0, 0, 20.0])
    with pytest.raises(ValueError, match="positive"):
        arkit_box([0, 0, 0], [0.0, 1, 1], np.eye(3).reshape(-1))
    with pytest.raises(ValueError, match="not a rotation"):
        arkit_box([0, 0, 0], [1, 1, 1], [1, 0, 0, 0.5, 1, 0, 0, 0, 1])


@pytest.mark.parametrize("sky", ["Up", "Left", "Down", "Right"])
def test_upright_camera_maps_pixels_exactly(sky):
    W, H = 8, 6
    K = np.array([[5.0, 0, 3.3], [0, 6.0, 2.2], [0, 0, 1]])
    K2, W2, H2, R = upright_camera(K, W, H, sky)
    idx = np.arange(W * H).reshape(H, W)
    rot = rotate_pixels(idx, sky)
    assert rot.shape == (H2, W2)
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    new = rays.reshape(-1, 3) @ R.T @ K2.T
    uv2 = new[:, :2] / new[:, 2:3]
    np.testing.assert_allclose(uv2, np.round(uv2), atol=1e-9)
    c2, r2 = np.round(uv2).astype(int).T
    np.testing.assert_array_equal(rot[r2, c2], idx.reshape(-1))
    assert np.isclose(np.linalg.det(R), 1.0)


# -- listing ---------------------------------------------------------------------------------
def test_scene_refs_from_any_level(fixture):
    ds = fixture["dataset_dir"]
    for path, ids in [
        (fixture["root"], [UP, LEFT]),
        (ds, [UP, LEFT]),
        (ds / "Training", [UP]),
        (ds / "Validation" / LEFT, [LEFT]),
    ]:
        reader = ARKitScenesReader(path)
        report = reader.new_report()
        refs = reader.scene_refs(report)
        assert [r.id for r in refs] == ids and report.skipped == []
        assert all(r.dataset == "arkitscenes" and r.native_id == r.id for r in refs)
    assert get_reader_class("arkitscenes") is ARKitScenesReader
    with pytest.raises(ValueError, match="pose_tolerance_s"):
        ARKitScenesReader(ds, {"pose_tolerance_s": 0})
    with pytest.raises(ValueError, match="bogus"):
        ARKitScenesReader(ds, {"bogus": 1})


# -- reader output vs truth ------------------------------------------------------------------
def test_scene_fields(scenes, fixture):
    assert sorted(scenes) == [UP, LEFT]
    for vid, truth in fixture["videos"].items():
        s = scenes[vid]
        assert s.source == "arkitscenes" and s.split == truth["split"]
        assert s.attributes["native_id"] == vid and s.attributes["format"] == "arkitscenes"
        assert s.attributes["sky_direction"] == truth["sky"]
        assert s.attributes["sky_direction_source"].startswith("metadata")
        assert [f.id for f in s.frames] == [f["frame_id"] for f in truth["frames"]]
        assert [o.label for o in s.objects] == [o["label"] for o in fixture["objects"]]
        assert [o.label for o in s.objects][:3] == ["table", "chair", "cabinet"]
        assert [o.attributes["uid"] for o in s.objects] == [o["uid"] for o in fixture["objects"]]
        for o, t in zip(s.objects, fixture["objects"], strict=True):
            np.testing.assert_allclose(o.box, t["box"], atol=1e-6)
        assert scene_problems(s) == []


def test_up_video_intrinsics_and_poses(scenes, fixture):
    truth = fixture["videos"][UP]
    for f, t in zip(scenes[UP].frames, truth["frames"], strict=True):
        assert (f.width, f.height) == (256, 192)
        np.testing.assert_array_equal(f.K, K_RAW)
        np.testing.assert_allclose(f.cam_to_world, t["cam_to_world"], atol=1e-7)
        assert f.timestamp == pytest.approx(t["timestamp"])
        # the camera is level: image-down is world-down tilted by 15 degrees
        assert f.cam_to_world[2, 1] == pytest.approx(-math.cos(math.radians(15.0)))


def test_up_video_depth_and_mask(scenes, fixture):
    boxes = [o["box"] for o in fixture["objects"]]
    cols = [o["colour"] for o in fixture["objects"]]
    for f in scenes[UP].frames[::3]:
        rgb, depth, which = render(f.cam_to_world, f.K, f.width, f.height, boxes, cols)
        got = f.load_depth()
        assert got.dtype == np.float32
        valid = (depth > 0) & (depth <= 8.0)
        np.testing.assert_allclose(got[valid], depth[valid], atol=6e-4)
        assert np.all(got[~valid] == 0)
        # the pose went through the 9-decimal .traj text: far checker edges may flip
        assert np.mean(np.any(f.load_image() != rgb, axis=2)) < 1e-3
        mask = f.load_mask()
        agree = (mask == which + 1) | ((which < 0) & (mask == 0))
        assert agree[valid].mean() > 0.98
        assert f.visible_pixels == {int(k): int(v) for k, v in f.visible_pixels.items()}
        assert set(f.visible_pixels) == set(np.unique(mask[mask > 0]).tolist())


def test_left_video_is_rotated_upright(scenes, fixture):
    truth = fixture["videos"][LEFT]
    K2 = np.array([[213.0, 0.0, 191 - 94.7], [0.0, 211.0, 128.3], [0.0, 0.0, 1.0]])
    corners = box3d_corners(np.stack([o["box"] for o in fixture["objects"]])).reshape(-1, 3)
    for f, t in zip(scenes[LEFT].frames, truth["frames"], strict=True):
        assert (f.width, f.height) == (192, 256)
        np.testing.assert_allclose(f.K, K2, atol=1e-12)
        # the upright pose is the level view the device was rolled from
        np.testing.assert_allclose(f.cam_to_world, t["level_cam_to_world"], atol=1e-7)
        assert sky_from_pose(f.cam_to_world) == "Up"
        assert sky_from_pose(t["cam_to_world"]) == "Left"
        raw_path = truth["dir"] / f"{LEFT}_frames" / "lowres_wide" / f"{f.id}.png"
        raw = np.asarray(Image.open(raw_path))
        img = f.load_image()
        np.testing.assert_array_equal(img, np.rot90(raw, k=-1))
        # a world point projects with the new K/pose to the rotated pixel of its raw projection
        uv_raw, z_raw = _project(truth["K"], t["cam_to_world"], corners)
        uv_new, z_new = _project(f.K, f.cam_to_world, corners)
        np.testing.assert_allclose(z_new, z_raw, atol=1e-9)
        np.testing.assert_allclose(uv_new[:, 0], 192 - 1 - uv_raw[:, 1], atol=1e-7)
        np.testing.assert_allclose(uv_new[:, 1], uv_raw[:, 0], atol=1e-7)
        # same pixel content: box centres seen in the raw image
        centers = np.stack([o["box"][:3] for o in fixture["objects"]])
        uvr, _ = _project(truth["K"], t["cam_to_world"], centers)
        uvn, _ = _project(f.K, f.cam_to_world, centers)
        for (ur, vr), (un, vn) in zip(
            np.round(uvr).astype(int), np.round(uvn).astype(int), strict=True
        ):
            if 0 <= ur < 256 and 0 <= vr < 192:
                np.testing.assert_array_equal(img[vn, un], raw[vr, ur])
        # depth rotated with the image and still z-depth of the level camera
        boxes = [o["box"] for o in fixture["objects"]]
        _, depth, _ = render(f.cam_to_world, f.K, f.width, f.height, boxes, [(0, 0, 0)] * 5)
        valid = (depth > 0) & (depth <= 8.0)
        np.testing.assert_allclose(f.load_depth()[valid], depth[valid], atol=6e-4)


def test_sky_direction_from_poses_without_metadata(fixture, tmp_path):
    root = _copy(fixture, tmp_path)
    (root / "3dod" / "metadata.csv").unlink()
    scenes, report = ARKitScenesReader(root).read_all()
    assert report.skipped == []
    by_id = {s.id: s for s in scenes}
    assert by_id[LEFT].attributes["sky_direction"] == "Left"
    assert by_id[UP].attributes["sky_direction"] == "Up"
    assert "camera poses" in by_id[LEFT].attributes["sky_direction_source"]
    # an explicit metadata_csv is used (and a missing one is an error naming it)
    meta = tmp_path / "meta.csv"
    meta.write_text("video_id,visit_id,fold,sky_direction\n90000002.0,NA,Validation,Up\n")
    s, _ = ARKitScenesReader(root / "3dod" / "Validation", {"metadata_csv": str(meta)}).read_all()
    assert s[0].attributes["sky_direction"] == "Up" and s[0].frames[0].width == 256
    assert "visit_id" not in s[0].attributes
    with pytest.raises(Exception, match=r"nope\.csv"):
        ARKitScenesReader(root, {"metadata_csv": str(tmp_path / "nope.csv")}).read_all()


def test_options_upright_depth_stride(fixture):
    ds = fixture["dataset_dir"]
    s, _ = ARKitScenesReader(ds / "Validation", {"upright": False}).read_all()
    f = s[0].frames[0]
    assert (f.width, f.height) == (256, 192)
    np.testing.assert_allclose(f.cam_to_world, fixture["videos"][LEFT]["frames"][0]["cam_to_world"],
                               atol=1e-7)  # fmt: skip
    s, _ = ARKitScenesReader(ds / "Training", {"depth": False}).read_all()
    assert all(f.depth is None and f.mask is None for f in s[0].frames)
    assert any(f.truncation for f in s[0].frames)
    s, _ = ARKitScenesReader(ds / "Training", {"frame_stride": 2, "max_frames": 3}).read_all()
    assert [f.id for f in s[0].frames] == [
        fixture["videos"][UP]["frames"][i]["frame_id"] for i in (0, 4, 10)
    ]


def test_raw_dataset_layout_without_frames_folder(fixture, tmp_path):
    # raw/<fold>/<vid>/{lowres_wide.traj, lowres_wide/, ...} next to the annotation
    root = _copy(fixture, tmp_path)
    vdir = root / "3dod" / "Training" / UP
    for item in sorted((vdir / f"{UP}_frames").iterdir()):
        item.rename(vdir / item.name)
    (vdir / f"{UP}_frames").rmdir()
    scenes, report = ARKitScenesReader(root / "3dod" / "Training").read_all()
    assert report.skipped == [] and len(scenes[0].frames) == 12


def test_pose_tolerance(fixture):
    # the trajectory is sampled 0.31-0.53 ms off the frames: a 0.1 ms tolerance finds nothing
    reader = ARKitScenesReader(fixture["dataset_dir"] / "Training", {"pose_tolerance_s": 1e-4})
    scenes, report = reader.read_all()
    assert scenes == []
    frames = report.skipped_of("frame")
    assert len(frames) == 12
    assert all("no pose in lowres_wide.traj within 0.1 ms" in s.reason for s in frames)
    assert report.skipped_of("scene")[0].reason.startswith("no usable frame")


# -- skipped items ---------------------------------------------------------------------------
def test_broken_copy_reports_every_skip(fixture, tmp_path):
    root = _copy(fixture, tmp_path)
    vdir = root / "3dod" / "Training" / UP
    fdir = vdir / f"{UP}_frames"
    ids = [f["frame_id"] for f in fixture["videos"][UP]["frames"]]
    traj = fdir / "lowres_wide.traj"
    lines = traj.read_text().splitlines()
    traj.write_text("\n".join([*lines[:1], *lines[2:], "garbage line"]) + "\n")  # no pose: #1
    (fdir / "lowres_wide" / f"{ids[2]}.png").write_bytes(b"not a png")  # broken image
    (fdir / "lowres_wide_intrinsics" / f"{ids[3]}.pincam").unlink()  # no intrinsics
    (fdir / "lowres_wide_intrinsics" / f"{ids[4]}.pincam").write_text("256 192 0 0 1 1")
    (fdir / "lowres_depth" / f"{ids[5]}.png").unlink()  # no depth
    Image.fromarray(np.zeros((10, 10, 3), np.uint8)).save(fdir / "lowres_wide" / "junk.png")
    ann_path = vdir / f"{UP}_3dod_annotation.json"
    ann = json.loads(ann_path.read_text())
    good = ann["data"][1]
    zero = json.loads(json.dumps(good)) | {"uid": "zero"}
    zero["segments"]["obbAligned"]["axesLengths"] = [0.0, 1.0, 1.0]
    skew = json.loads(json.dumps(good)) | {"uid": "skew"}
    skew["segments"]["obbAligned"]["normalizedAxes"] = [1, 0, 0, 0.6, 0.8, 0, 0, 0, 1]
    nolabel = json.loads(json.dumps(good)) | {"uid": "nolabel", "label": ""}
    ann["data"] += [zero, skew, nolabel]
    ann_path.write_text(json.dumps(ann))
    (root / "3dod" / "Training" / "notes").mkdir()
    novid = root / "3dod" / "Training" / "90000003"
    (novid / "90000003_frames").mkdir(parents=True)

    scenes, report = ARKitScenesReader(root / "3dod" / "Training").read_all()
    assert [s.id for s in scenes] == [UP]
    s = scenes[0]
    assert [f.id for f in s.frames] == [ids[0], *ids[6:]]
    assert len(s.objects) == 5 and scene_problems(s) == []
    reasons = {(k.kind, k.item): k.reason for k in report.skipped}

    def reason(kind, item_part):
        hits = [r for (k, i), r in reasons.items() if k == kind and item_part in i]
        assert len(hits) == 1, (kind, item_part, reasons)
        return hits[0]

    assert "no pose in lowres_wide.traj within 5 ms" in reason("frame", ids[1])
    assert "cannot read image" in reason("frame", ids[2])
    assert "no lowres_wide_intrinsics" in reason("frame", ids[3])
    assert "bad intrinsics" in reason("frame", ids[4])
    assert "no lowres_depth" in reason("frame", ids[5])
    assert "not named" in reason("file", "junk.png")
    assert "bad trajectory line" in reason("file", "lowres_wide.traj:")
    assert "axesLengths must be positive" in reason("object", "uid zero")
    assert "not a rotation" in reason("object", "uid skew")
    assert "empty label" in reason("object", "uid nolabel")
    assert "not an ARKitScenes video folder" in reason("file", "notes")
    assert "no 90000003_3dod_annotation.json" in reason("scene", "90000003")


def test_unreadable_annotation_names_the_file(fixture, tmp_path):
    from vst.scenes.errors import SceneFormatError

    root = _copy(fixture, tmp_path)
    ann = root / "3dod" / "Training" / UP / f"{UP}_3dod_annotation.json"
    ann.write_text("{not json")
    reader = ARKitScenesReader(root / "3dod" / "Training")
    report = reader.new_report()
    (ref,) = reader.scene_refs(report)
    with pytest.raises(SceneFormatError, match=f"{UP}_3dod_annotation.json"):
        reader.read_scene(ref, report)


# -- determinism, round trip, engine ---------------------------------------------------------
def test_deterministic_and_round_trip(fixture, scenes, tmp_path):
    again, _ = ARKitScenesReader(fixture["root"]).read_all()
    for s in again:
        ref = scenes[s.id]
        assert [f.id for f in s.frames] == [f.id for f in ref.frames]
        for a, b in zip(s.frames, ref.frames, strict=True):
            np.testing.assert_array_equal(a.cam_to_world, b.cam_to_world)
            np.testing.assert_array_equal(a.load_depth(), b.load_depth())
            np.testing.assert_array_equal(a.mask, b.mask)
            assert a.visible_pixels == b.visible_pixels and a.truncation == b.truncation
        np.testing.assert_array_equal(s.boxes, ref.boxes)
    for s in scenes.values():
        loaded = load_scene(save_scene(s, tmp_path / s.id))
        assert scene_problems(loaded) == []
        assert loaded.split == s.split and loaded.attributes == s.attributes
        for a, b in zip(loaded.frames, s.frames, strict=True):
            np.testing.assert_array_equal(a.load_image(), b.load_image())
            np.testing.assert_array_equal(a.load_mask(), b.load_mask())
            np.testing.assert_allclose(a.load_depth(), b.load_depth())


def test_cli_import(fixture, tmp_path):
    from vst.cli import app

    out = tmp_path / "out"
    args = ["scenes", "import", "arkitscenes", str(fixture["root"]), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "-o", "frame_stride=2"])
    assert result.exit_code == 0, result.output
    for vid in (UP, LEFT):
        s = load_scene(out / vid)
        assert scene_problems(s) == [] and len(s.frames) == 6


def test_engine_generates_and_verifies(scenes, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    root = tmp_path / "scenes"
    for s in scenes.values():
        save_scene(s, root / s.id)
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["*"], per_scene=3)
    assert result.ok, result
    counts = report.samples_per_task
    assert not report.task_errors, report.task_errors
    expected = [
        "si_det3d", "si_depth_point", "si_depth_order", "si_distance", "si_measurement",
        "si_grounding3d", "mi_det3d", "mi_camera_camera", "mi_camera_motion", "mi_correspondence",
        "video_count", "video_appearance_order", "video_rel_distance", "video_rel_direction",
    ]  # fmt: skip
    for task in expected:
        assert counts.get(task, 0) > 0, (task, counts, report.task_skips)
