"""Hypersim reader: fixture in the real on-disk format vs hand-computed ground truth."""

from __future__ import annotations

import csv
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("h5py")

from vst.geometry.boxes import box3d_corners
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.hypersim import (
    HypersimReader,
    hypersim_box_to_vst,
    hypersim_camera,
    standard_m_cam_from_uv,
)
from vst.scenes.validation import scene_problems
from vst.testing.hypersim_fixture import write_hypersim_fixture

SCENE = "ai_999_001"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_hypersim_fixture(tmp_path_factory.mktemp("hypersim"), tilt_shift_scene=True)


@pytest.fixture(scope="module")
def read(fixture):
    scenes, report = HypersimReader(fixture.root).read_all()
    return {s.id: s for s in scenes}, report


def _hypersim_corners(position, R, extents):
    """Corners the way scene_generate_images_bounding_box.py builds them:
    position + R @ (diag(extents) @ (corner01 - 0.5))."""
    out = []
    for c in np.array(np.meshgrid([0, 1], [0, 1], [0, 1], indexing="ij")).reshape(3, -1).T:
        out.append(position + R @ (np.asarray(extents) * (c - 0.5)))
    return np.array(out)


def _same_point_set(a, b, atol=1e-9):
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return np.all(d.min(axis=1) < atol) and np.all(d.min(axis=0) < atol)


def test_registry_and_listing(fixture):
    assert get_reader_class("hypersim") is HypersimReader
    reader = HypersimReader(fixture.root)
    refs = reader.scene_refs(reader.new_report())
    assert [(r.id, r.dataset, r.native_id) for r in refs] == [
        ("ai_999_001", "hypersim", "ai_999_001"),
        ("ai_999_002", "hypersim", "ai_999_002"),
    ]
    # PATH may also be one scene folder
    one = HypersimReader(fixture.root / SCENE)
    assert [r.id for r in one.scene_refs(one.new_report())] == [SCENE]


def test_intrinsics_hand_computed(fixture, read):
    scenes, _ = read
    f = 128 / (2 * math.tan(math.radians(30)))  # 110.851...
    assert fixture.fx == pytest.approx(f)
    for frame in scenes[SCENE].frames:
        assert (frame.width, frame.height) == (128, 96)
        np.testing.assert_allclose(frame.K, [[f, 0, 63.5], [0, f, 47.5], [0, 0, 1]], atol=1e-9)
    # the real 1024x768 standard camera
    cam = hypersim_camera(standard_m_cam_from_uv(1024, 768), 1024, 768)
    np.testing.assert_allclose(cam.K[0, 0], 886.8100134752652, rtol=1e-12)
    np.testing.assert_allclose(cam.K[:2, 2], [511.5, 383.5], atol=1e-9)
    np.testing.assert_allclose(cam.Q, np.eye(3), atol=1e-12)


def test_poses_hand_computed(fixture, read):
    scenes, _ = read
    s = scenes[SCENE]
    assert [f.id for f in s.frames] == [f"cam_00-frame.{i:04d}" for i in range(3)]
    for i, frame in enumerate(s.frames):
        R_h = fixture.orientations[SCENE][i]
        # vst camera = Hypersim camera with Y and Z negated; translation in metres
        expected = np.eye(4)
        expected[:3, 0], expected[:3, 1], expected[:3, 2] = R_h[:, 0], -R_h[:, 1], -R_h[:, 2]
        expected[:3, 3] = fixture.positions_m[SCENE][i]
        np.testing.assert_allclose(frame.cam_to_world, expected, atol=1e-9)
        # the camera looks at its target: optical axis (vst +Z) points from eye to target
        assert frame.cam_to_world[2, 2] < 0  # looking down
    # positions are stored in inches: 0.3 m -> 11.811 asset units
    assert fixture.meters_per_asset_unit == 0.0254


def test_zdepth_exact(fixture, read):
    scenes, _ = read
    s = scenes[SCENE]
    for i, frame in enumerate(s.frames):
        z = frame.load_depth()
        d = fixture.distance[SCENE][i].astype(np.float64)
        hit = np.isfinite(d)
        # analytic z: the hit point's coordinate along the optical axis (world -> camera)
        hp = fixture.hit_points[SCENE][i]
        forward = -fixture.orientations[SCENE][i][:, 2]
        z_true = (hp - fixture.positions_m[SCENE][i]) @ forward
        np.testing.assert_allclose(z[hit], z_true[hit], rtol=2e-6, atol=1e-6)
        # formula of the brief with the pixel-centre convention
        rows, cols = np.mgrid[0:96, 0:128]
        f = fixture.fx
        z_formula = d * f / np.sqrt(f**2 + (cols - 63.5) ** 2 + (rows - 47.5) ** 2)
        np.testing.assert_allclose(z[hit], z_formula[hit], rtol=1e-6)
        assert np.all(z[~hit] == 0)  # NaN distances (rays hitting nothing) -> 0
        assert (~hit).sum() > 0


def test_tilt_shift_scene_backprojects_exactly(fixture, read):
    scenes, _ = read
    s = scenes["ai_999_002"]
    frame = s.frames[0]
    K = frame.K
    assert K[0, 1] == 0 and abs(K[1, 2] - 47.5) > 1  # principal point shifted vertically
    z = frame.load_depth()
    rows, cols = np.mgrid[0:96, 0:128]
    cam = np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], -1)
    world = cam @ frame.cam_to_world[:3, :3].T + frame.cam_to_world[:3, 3]
    hp = fixture.hit_points["ai_999_002"][0]
    ok = z > 0
    err = np.linalg.norm(world[ok] - hp[ok], axis=1)
    dist = np.linalg.norm(hp[ok] - fixture.positions_m["ai_999_002"][0], axis=1)
    assert np.all(err <= 1e-6 * dist + 1e-6)
    assert s.attributes["camera_model"].startswith("M_cam_from_uv")


def test_boxes_hand_computed(fixture, read):
    scenes, _ = read
    s = scenes[SCENE]
    # visible instances 2, 4, 6, 7 -> object ids 1..4 in instance order
    assert [(o.id, o.label, o.attributes["hypersim_instance_id"]) for o in s.objects] == [
        (1, "table", 2),
        (2, "cabinet", 4),
        (3, "lamp", 6),
        (4, "box", 7),
    ]
    assert [o.attributes["nyu40_id"] for o in s.objects] == [7, 3, 35, 29]
    table, cabinet = s.objects[:2]
    np.testing.assert_allclose(table.box[:6], [0.0, 3.0, 0.375, 1.2, 0.8, 0.75], atol=1e-9)
    np.testing.assert_allclose(table.box[6:], [0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(cabinet.box[:3], [1.4, 3.6, 0.5], atol=1e-9)
    # extents (0.6, 0.4, 1.0) m along the box axes, yawed 30 degrees about world Z
    np.testing.assert_allclose(cabinet.box[3:], [0.6, 0.4, 1.0, 0.0, 0.0, 30.0], atol=1e-9)
    # same corners as Hypersim's own construction (asset units scaled to metres)
    b = fixture.boxes[4]
    ref = _hypersim_corners(b.center_m, b.rotation, b.extents_m)
    assert _same_point_set(box3d_corners(cabinet.box)[0], ref)


def test_box_reorientation_axis_closest_to_z():
    # a box stored with its up axis as local X (columns: world z, -y, x) -> local Z is up
    R = np.array([[0.0, 0.0, 1.0], [0.0, -1.0, 0.0], [1.0, 0.0, 0.0]])
    assert np.linalg.det(R) == pytest.approx(1.0)
    box = hypersim_box_to_vst([10.0, 20.0, 30.0], R, [5.0, 2.0, 3.0], 0.1)
    np.testing.assert_allclose(box[:3], [1.0, 2.0, 3.0])
    assert box[5] == pytest.approx(0.5)  # the 5-unit extent was along world Z
    np.testing.assert_allclose(box[6:8], [0, 0], atol=1e-9)
    ref = _hypersim_corners(np.array([1.0, 2.0, 3.0]), R, np.array([0.5, 0.2, 0.3]))
    assert _same_point_set(box3d_corners(box)[0], ref)
    for bad in ([np.nan, 0, 0], [np.inf] * 3):
        with pytest.raises(ValueError, match="non-finite"):
            hypersim_box_to_vst(bad, np.eye(3), [1, 1, 1], 1.0)
    with pytest.raises(ValueError, match="non-positive"):
        hypersim_box_to_vst([0, 0, 0], np.eye(3), [1, 0, 1], 1.0)


def test_masks_and_annotations(fixture, read):
    scenes, _ = read
    s = scenes[SCENE]
    for i, frame in enumerate(s.frames):
        inst = fixture.instance[SCENE][i]
        mask = frame.load_mask()
        expected = np.select([inst == 2, inst == 4, inst == 6, inst == 7], [1, 2, 3, 4], 0)
        np.testing.assert_array_equal(mask, expected)
        assert frame.visible_pixels == {k: int((expected == k).sum()) for k in (1, 2, 3, 4)}
        assert set(frame.truncation) == set(frame.visible_pixels)


def test_skips_reported(fixture, read):
    _, report = read
    reasons = {(s.kind, s.item): s.reason for s in report.skipped}
    assert "floor" in reasons[("object", f"scene {SCENE}, instance 0")]
    assert "not visible" in reasons[("object", f"scene {SCENE}, instance 5")]
    assert "non-finite" in reasons[("object", f"scene {SCENE}")]


def test_split_labels_and_options(fixture, read, tmp_path):
    scenes, _ = read
    s = scenes[SCENE]
    assert s.split == "train" and s.source == "hypersim"
    assert s.attributes["native_id"] == SCENE and s.attributes["format"] == "hypersim"
    assert s.attributes["label_source"] == "semantic image majority"
    # objects="all" keeps the never-seen chair; exclude_labels=[] keeps the floor
    # (the chair has no pixels, so no pixel-majority label: skipped with that reason)
    r = HypersimReader(fixture.root, {"objects": "all", "exclude_labels": []})
    rep = r.new_report()
    s2 = r.read_scene(r.scene_refs(rep)[0], rep)
    assert [o.label for o in s2.objects] == ["floor", "table", "cabinet", "lamp", "box"]
    assert "no NYU40 label" in {s.item: s.reason for s in rep.skipped}[f"scene {SCENE}, instance 5"]
    # labels from the mesh annotation files
    fx2 = write_hypersim_fixture(tmp_path / "mesh", mesh_labels=True)
    r3 = HypersimReader(fx2.root, {"objects": "all"})
    s3, _ = r3.read_all()
    assert s3[0].attributes["label_source"] == "mesh_objects_si"
    assert [o.label for o in s3[0].objects] == ["table", "cabinet", "chair", "lamp", "box"]
    # frame selection and image kind
    r4 = HypersimReader(fixture.root / SCENE, {"max_frames": 2, "image_kind": "color"})
    s4, _ = r4.read_all()
    assert [f.id for f in s4[0].frames] == ["cam_00-frame.0000", "cam_00-frame.0002"]
    assert str(s4[0].frames[0].image).endswith("frame.0000.color.jpg")
    with pytest.raises(ValueError, match="image_kind"):
        HypersimReader(fixture.root, {"image_kind": "hdr"})


def _broken_copy(fixture, tmp_path) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(fixture.root, root)
    return root


def test_broken_inputs_skipped_with_reasons(fixture, tmp_path):
    root = _broken_copy(fixture, tmp_path)
    sdir = root / SCENE
    (sdir / "images/scene_cam_00_final_preview/frame.0001.tonemap.jpg").unlink()
    (sdir / "images/scene_cam_00_geometry_hdf5/frame.0002.depth_meters.hdf5").unlink()
    # a tilt-shift lens with horizontal and vertical tilt needs skew -> scene skipped
    path = root / "metadata_camera_parameters.csv"
    rows = list(csv.DictReader(path.open()))
    for r in rows:
        if r["scene_name"] == "ai_999_002":
            r["M_cam_from_uv_20"], r["M_cam_from_uv_21"] = "-0.0586", "-0.074"
    with path.open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    scenes, report = HypersimReader(root).read_all()
    assert [s.id for s in scenes] == [SCENE]
    assert [f.id for f in scenes[0].frames] == ["cam_00-frame.0000"]
    reasons = {s.item: s.reason for s in report.skipped}
    assert "missing image" in reasons[f"scene {SCENE}, frame cam_00-frame.0001"]
    assert "missing depth" in reasons[f"scene {SCENE}, frame cam_00-frame.0002"]
    assert "skew" in reasons["scene ai_999_002, frame cam_00-frame.0000"]
    assert "no usable frame" in reasons["ai_999_002"]

    # missing boxes / scale -> scene skipped; missing poses -> frames skipped
    (
        sdir / "_detail/mesh/metadata_semantic_instance_bounding_box_object_aligned_2d_extents.hdf5"
    ).unlink()
    scenes, report = HypersimReader(sdir).read_all()
    assert scenes == [] and "no 3D boxes" in report.skipped_of("scene")[0].reason
    root2 = _broken_copy(fixture, tmp_path / "b2")
    (root2 / SCENE / "_detail/cam_00/camera_keyframe_positions.hdf5").unlink()
    (root2 / SCENE / "_detail/metadata_scene.csv").write_text("parameter_name,parameter_value\n")
    with pytest.raises(Exception, match="meters_per_asset_unit"):
        HypersimReader(root2 / SCENE).read_all()


def test_without_camera_parameters_file(fixture, tmp_path):
    root = _broken_copy(fixture, tmp_path)
    (root / "metadata_camera_parameters.csv").unlink()
    (root / "metadata_images_split_scene_v1.csv").unlink()
    scenes, report = HypersimReader(root / SCENE).read_all()
    assert scenes[0].split == "unknown"
    assert "standard" in scenes[0].attributes["camera_model"]
    assert any(s.kind == "file" and "standard 60-degree" in s.reason for s in report.skipped)
    np.testing.assert_allclose(scenes[0].frames[0].K[0, 0], fixture.fx)
    # missing poses -> the camera's frames are skipped with the reason
    (root / SCENE / "_detail/cam_00/camera_keyframe_orientations.hdf5").unlink()
    scenes, report = HypersimReader(root / SCENE).read_all()
    assert scenes == []
    assert any("no poses" in s.reason for s in report.skipped_of("frame"))


def test_deterministic_and_round_trip(fixture, read, tmp_path):
    scenes, _ = read
    again, _ = HypersimReader(fixture.root).read_all()
    for a in again:
        b = scenes[a.id]
        assert [f.id for f in a.frames] == [f.id for f in b.frames]
        np.testing.assert_array_equal(a.boxes, b.boxes)
        for fa, fb in zip(a.frames, b.frames, strict=True):
            np.testing.assert_array_equal(fa.load_depth(), fb.load_depth())
            np.testing.assert_array_equal(fa.load_mask(), fb.load_mask())
    for s in scenes.values():
        assert scene_problems(s) == []
        out = save_scene(s, tmp_path / s.id)
        loaded = load_scene(out)
        assert scene_problems(loaded) == []
        np.testing.assert_allclose(loaded.boxes, s.boxes)
        np.testing.assert_allclose(loaded.frames[0].load_depth(), s.frames[0].load_depth())


def test_end_to_end_engine(fixture, read, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    scenes, _ = read
    root = tmp_path / "scenes"
    for s in scenes.values():
        save_scene(s, root / s.id)
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["*"])
    assert result.ok
    counts = report.samples_per_task
    assert not report.task_errors, report.task_errors
    expected = [
        "si_det3d", "si_depth_order", "si_distance", "si_measurement", "si_grounding3d",
        "mi_det3d", "mi_camera_motion", "mi_correspondence",
    ]  # fmt: skip
    for task in expected:
        assert counts.get(task, 0) > 0, (task, counts)


def test_cli_import(fixture, tmp_path):
    from typer.testing import CliRunner

    from vst.cli import app

    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "scenes",
            "import",
            "hypersim",
            str(fixture.root),
            "--out",
            str(out),
            "-o",
            "max_frames=2",
        ],
    )
    assert result.exit_code == 0, result.output
    for sid, n in ((SCENE, 2), ("ai_999_002", 1)):
        s = load_scene(out / sid)
        assert scene_problems(s) == [] and len(s.frames) == n
