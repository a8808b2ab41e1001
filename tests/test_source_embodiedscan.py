"""EmbodiedScan info-file reader: output vs the fixture's hand-made truth, the box convention vs
EmbodiedScan's own corner code, skips with reasons, determinism, round trip, engine end to end."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_erosion
from typer.testing import CliRunner

from vst.geometry.boxes import box3d_corners
from vst.geometry.conventions import from_embodiedscan
from vst.scenes.errors import SceneFormatError
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.embodiedscan import EmbodiedScanReader, load_info_file
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.validation import scene_problems
from vst.testing.embodiedscan_fixture import (
    MATTERPORT_IDX,
    SCANNET_IDX,
    embodiedscan_corners,
    raycast,
    write_embodiedscan_fixture,
)

SCANNET_ID = "scannet__scene0999_00"
MATTERPORT_ID = "matterport3d__zzFakeBld01__region0"


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_embodiedscan_fixture(tmp_path_factory.mktemp("embodiedscan") / "data")


@pytest.fixture(scope="module")
def scenes(fixture):
    scenes, report = EmbodiedScanReader(fixture.info_file).read_all()
    assert report.skipped == []
    return {s.id: s for s in scenes}


def _same_point_sets(a: np.ndarray, b: np.ndarray, atol: float = 1e-6) -> bool:
    """Every point of ``a`` has a point of ``b`` within ``atol`` and vice versa."""
    d = np.linalg.norm(a[:, None, :] - b[None, :, :], axis=-1)
    return bool(d.min(axis=1).max() < atol and d.min(axis=0).max() < atol)


# -- the box convention --------------------------------------------------------------------
def test_from_embodiedscan_matches_embodiedscan_corner_code():
    rng = np.random.default_rng(3)
    for _ in range(200):
        box = np.concatenate(
            [rng.uniform(-3, 3, 3), rng.uniform(0.1, 2.0, 3), rng.uniform(-np.pi, np.pi, 3)]
        )
        ours = box3d_corners(from_embodiedscan(box))[0]
        assert _same_point_sets(ours, embodiedscan_corners(box))


def test_pytorch3d_zxy_is_intrinsic_zxy():
    # a pure alpha turns local X (size dx) towards +Y: the box's long side follows the yaw
    box = np.array([0, 0, 0, 2.0, 0.2, 0.2, np.pi / 2, 0, 0])
    corners = embodiedscan_corners(box)
    assert np.ptp(corners[:, 1]) == pytest.approx(2.0)
    assert np.ptp(corners[:, 0]) == pytest.approx(0.2)


# -- listing -------------------------------------------------------------------------------
def test_scene_refs(fixture):
    reader = get_reader_class("embodiedscan")(fixture.info_file)
    refs = reader.scene_refs(reader.new_report())
    assert [r.id for r in refs] == [MATTERPORT_ID, SCANNET_ID]
    assert [(r.dataset, r.native_id) for r in refs] == [
        ("matterport3d", "zzFakeBld01/region0"),
        ("scannet", "scene0999_00"),
    ]


# -- ScanNet-style scan: colour and depth cameras differ -----------------------------------
def test_scannet_scene_objects(fixture, scenes):
    truth = fixture.scan(SCANNET_IDX)
    scene = scenes[SCANNET_ID]
    assert scene.source == "scannet" and scene.split == "train"
    assert scene.attributes["native_id"] == "scene0999_00"
    assert scene.attributes["format"] == "embodiedscan"
    assert scene.labels == ["table", "chair", "cabinet"]
    assert [o.id for o in scene.objects] == [1, 2, 3]
    assert [o.attributes["bbox_id"] for o in scene.objects] == truth.bbox_ids
    for obj, box in zip(scene.objects, truth.boxes, strict=True):
        assert np.allclose(obj.box[:6], box[:6])
        assert _same_point_sets(box3d_corners(obj.box)[0], embodiedscan_corners(box))
    # the table: yaw 0.3 rad about world Z, upright
    assert np.allclose(scene.objects[0].box[6:], [0.0, 0.0, np.degrees(0.3)])


def test_scannet_scene_frames(fixture, scenes):
    truth = fixture.scan(SCANNET_IDX)
    scene = scenes[SCANNET_ID]
    assert [f.id for f in scene.frames] == truth.frame_ids
    assert [f.timestamp for f in scene.frames] == pytest.approx([0, 1 / 3, 2 / 3, 1, 4 / 3])
    for i, frame in enumerate(scene.frames):
        # camera-to-aligned-world = axis_align_matrix @ cam2global, and that is the truth pose
        assert np.allclose(frame.cam_to_world, truth.axis_align_matrix @ truth.cam2global[i])
        assert np.allclose(frame.cam_to_world, truth.cam_to_world[i], atol=1e-9)
        assert not np.allclose(frame.cam_to_world, truth.cam2global[i], atol=1e-3)
        # frames use the depth camera
        assert (frame.width, frame.height) == truth.depth_size == (160, 120)
        assert np.allclose(frame.K, truth.K_depth)
        depth = frame.load_depth()
        assert depth.dtype == np.float32
        assert np.allclose(depth, truth.depths[i], atol=1e-6)
        # the pseudo mask agrees with the analytic ray cast (different code path: truth geometry)
        mask, hit = frame.load_mask(), truth.hits_depth[i]
        objects = hit >= 1
        assert np.mean(mask[objects] == hit[objects]) > 0.97
        assert np.mean(mask[hit == 0] == 0) > 0.9
        assert frame.visible_pixels == {
            k: int((mask == k).sum()) for k in range(1, 4) if (mask == k).any()
        }
        # the colour image resampled into the depth camera shows the same surfaces
        image = frame.load_image()
        assert image.shape == (120, 160, 3)
        for surface, colour in ((0, (150, 150, 150)), (1, (220, 40, 40)), (2, (40, 200, 40))):
            inner = binary_erosion(hit == surface, iterations=2)
            if inner.sum() > 20:
                err = np.abs(image[inner].astype(int) - colour).max(axis=1)
                assert np.mean(err < 40) > 0.95, (frame.id, surface)


def test_frame_size_color_resamples_depth(fixture):
    truth = fixture.scan(SCANNET_IDX)
    reader = EmbodiedScanReader(fixture.info_file, {"frame_size": "color", "datasets": ["scannet"]})
    (scene,), report = reader.read_all()
    assert report.skipped == []
    frame = scene.frames[0]
    assert (frame.width, frame.height) == truth.color_size
    assert np.allclose(frame.K, truth.K_color)
    assert Path(frame.image).name == "00000.jpg"
    expected, _ = raycast(truth.K_color, truth.cam_to_world[0], *truth.color_size, truth.boxes)
    depth = frame.load_depth()
    assert depth.shape == (180, 240)
    # geometry: the surfaces seen agree (nearest-neighbour resampling, 1.5x upsampling)
    assert np.mean((depth > 0) == (expected > 0)) > 0.98
    both = (depth > 0) & (expected > 0)
    rel = np.abs(depth[both] - expected[both]) / expected[both]
    assert np.median(rel) < 0.01 and np.mean(rel < 0.05) > 0.9
    # exact: each colour pixel takes the depth pixel its ray hits in the depth camera
    Kc, Kd = truth.K_color, truth.K_depth
    for v, u in ((0, 0), (90, 120), (178, 238), (179, 239), (45, 200)):
        x = (u - Kc[0, 2]) / Kc[0, 0] * Kd[0, 0] + Kd[0, 2]
        y = (v - Kc[1, 2]) / Kc[1, 1] * Kd[1, 1] + Kd[1, 2]
        if -0.5 <= x <= 159.5 and -0.5 <= y <= 119.5:
            want = truth.depths[0][min(round(y), 119), min(round(x), 159)]
        else:  # the ray leaves the depth image's extent: unknown
            want = 0.0
        assert depth[v, u] == pytest.approx(want, abs=1e-6), (v, u)
    assert scene_problems(scene) == []


# -- Matterport3D-style region: per-image cam2img, 0.25 mm depth ---------------------------
def test_matterport_scene(fixture, scenes):
    truth = fixture.scan(MATTERPORT_IDX)
    scene = scenes[MATTERPORT_ID]
    assert scene.source == "matterport3d"
    assert scene.attributes["native_id"] == "zzFakeBld01/region0"
    assert scene.labels == ["bed", "chair"]
    for i, frame in enumerate(scene.frames):
        assert frame.timestamp is None  # not a video
        assert np.allclose(frame.K, truth.K_color)
        assert np.allclose(frame.cam_to_world, truth.cam_to_world[i], atol=1e-9)
        assert Path(frame.image) == fixture.root / truth.img_paths[i]  # no resampling needed
        assert np.allclose(frame.load_depth(), truth.depths[i], atol=1e-6)  # /4000, not /1000


def test_depth_scale_option(fixture):
    reader = EmbodiedScanReader(
        fixture.info_file, {"depth_scale": {"matterport3d": 1000}, "datasets": ["matterport3d"]}
    )
    (scene,), _ = reader.read_all()
    truth = fixture.scan(MATTERPORT_IDX)
    assert np.allclose(scene.frames[0].load_depth(), truth.depths[0] * 4, atol=1e-5)


def test_options(fixture, tmp_path):
    with pytest.raises(ValueError, match="depth_scale"):
        EmbodiedScanReader(fixture.info_file, {"depth_scale": {"scannet": 0}})
    with pytest.raises(ValueError, match="bogus"):
        EmbodiedScanReader(fixture.info_file, {"bogus": 1})
    with pytest.raises(ValueError, match="pkl"):
        EmbodiedScanReader(fixture.root)
    with pytest.raises(FileNotFoundError):
        EmbodiedScanReader(tmp_path / "missing.pkl")
    reader = EmbodiedScanReader(
        fixture.info_file, {"datasets": ["scannet"], "frame_stride": 2, "split": "val"}
    )
    (scene,), _ = reader.read_all()
    assert [f.id for f in scene.frames] == ["00000", "00020", "00040"]
    assert scene.split == "val"
    reader = EmbodiedScanReader(fixture.info_file, {"datasets": ["scannet"], "max_frames": 2})
    (scene,), _ = reader.read_all()
    assert [f.id for f in scene.frames] == ["00000", "00040"]


def test_data_root_option(fixture, tmp_path):
    moved = tmp_path / "infos" / "embodiedscan_infos_train.pkl"
    moved.parent.mkdir()
    shutil.copy(fixture.info_file, moved)
    scenes, report = EmbodiedScanReader(moved, {"data_root": str(fixture.root)}).read_all()
    assert len(scenes) == 2 and report.skipped == []
    # without it the images are looked for next to the pkl: every frame skipped, with the path
    scenes, report = EmbodiedScanReader(moved).read_all()
    frames = report.skipped_of("frame")
    assert len(frames) == 7 and all("does not exist" in s.reason for s in frames)
    assert all(s.frames == [] and s.objects for s in scenes)


# -- skips -----------------------------------------------------------------------------------
def _broken_copy(fixture, tmp_path: Path) -> Path:
    root = tmp_path / "broken"
    shutil.copytree(fixture.root, root)
    info_file = root / fixture.info_file.name
    data = pickle.loads(info_file.read_bytes())
    scan = data["data_list"][0]
    scan["images"][1]["cam2global"] = np.full((4, 4), -np.inf)  # ScanNet's invalid poses
    (root / scan["images"][2]["img_path"]).unlink()
    scan["instances"][1]["bbox_3d"][4] = 0.0  # zero size
    scan["instances"][2]["bbox_label_3d"] = 9999  # not a category
    data["data_list"].append({"images": []})  # no sample_idx
    data["data_list"].append(dict(scan))  # the same scan again
    info_file.write_bytes(pickle.dumps(data))
    return info_file


def test_broken_items_are_skipped_with_reasons(fixture, tmp_path):
    info_file = _broken_copy(fixture, tmp_path)
    scenes, report = EmbodiedScanReader(info_file).read_all()
    assert sorted(s.id for s in scenes) == [MATTERPORT_ID, SCANNET_ID]
    scene = next(s for s in scenes if s.id == SCANNET_ID)
    assert [f.id for f in scene.frames] == ["00000", "00030", "00040"]
    assert scene.labels == ["table"]
    reasons = {(s.kind, s.item): s.reason for s in report.skipped}
    assert "non-finite" in reasons[("frame", f"scene {SCANNET_IDX}, frame 00010")]
    assert "does not exist" in reasons[("frame", f"scene {SCANNET_IDX}, frame 00020")]
    assert "positive" in reasons[("object", f"scene {SCANNET_IDX}, instance 1")]
    assert "9999" in reasons[("object", f"scene {SCANNET_IDX}, instance 2")]
    assert "sample_idx" in reasons[("scene", "data_list[2]")]
    assert "repeats" in reasons[("scene", f"data_list[3] ({SCANNET_IDX})")]
    assert len(report.skipped) == 6
    for s in scenes:
        assert scene_problems(s) == []


def test_unreadable_and_unsafe_info_files(tmp_path):
    bad = tmp_path / "embodiedscan_infos_val.pkl"
    bad.write_bytes(b"not a pickle")
    with pytest.raises(SceneFormatError, match=r"embodiedscan_infos_val\.pkl"):
        load_info_file(bad)
    bad.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(SceneFormatError, match="data_list"):
        load_info_file(bad)

    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad.write_bytes(pickle.dumps({"metainfo": {"categories": {}}, "data_list": [Evil()]}))
    with pytest.raises(SceneFormatError, match="not allowed"):
        load_info_file(bad)


# -- determinism, round trip, engine, CLI -----------------------------------------------------
def test_deterministic_and_round_trip(fixture, scenes, tmp_path):
    again, _ = EmbodiedScanReader(fixture.info_file).read_all()
    for scene in again:
        first = scenes[scene.id]
        assert [o.box.tolist() for o in scene.objects] == [o.box.tolist() for o in first.objects]
        for a, b in zip(scene.frames, first.frames, strict=True):
            assert np.array_equal(a.load_image(), b.load_image())
            assert np.array_equal(a.load_mask(), b.load_mask())
            assert a.visible_pixels == b.visible_pixels and a.truncation == b.truncation
    for scene in scenes.values():
        assert scene_problems(scene) == []
        out = save_scene(scene, tmp_path / scene.id)
        loaded = load_scene(out)
        assert scene_problems(loaded) == []
        assert loaded.attributes["native_id"] == scene.attributes["native_id"]
        for a, b in zip(loaded.frames, scene.frames, strict=True):
            assert np.allclose(a.cam_to_world, b.cam_to_world)
            assert np.array_equal(a.load_depth(), b.load_depth())
            assert np.array_equal(a.load_mask(), b.load_mask())


def test_engine_end_to_end(scenes, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    root = tmp_path / "scenes"
    for scene in scenes.values():
        save_scene(scene, root / scene.id)
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["*"], per_scene=4)
    assert result.ok
    counts = report.samples_per_task
    for task in ("si_det3d", "si_depth_order", "si_grounding3d", "si_measurement"):
        assert counts.get(task, 0) > 0, (task, counts)
    for task in ("mi_det3d", "mi_correspondence", "mi_camera_motion", "video_count"):
        assert counts.get(task, 0) > 0, (task, counts)


def test_cli_import(fixture, tmp_path):
    from vst.cli import app

    out = tmp_path / "imported"
    res = CliRunner().invoke(
        app,
        [
            "scenes",
            "import",
            "embodiedscan",
            str(fixture.info_file),
            "--out",
            str(out),
            "-o",
            "max_frames=2",
        ],
    )
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == [MATTERPORT_ID, SCANNET_ID]
    assert len(load_scene(out / SCANNET_ID).frames) == 2
    assert json.loads((out / "import_report.json").read_text())["format"] == "embodiedscan"


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_info_unpickler_reads_numpy_of_any_protocol_and_numpy_1_names(tmp_path, protocol):
    info = {"metainfo": {"categories": {"chair": 1}}, "data_list": [{"m": np.eye(4)}]}
    raw = pickle.dumps(info, protocol=protocol)
    variants = [raw]
    if protocol == 2:  # text GLOBAL opcodes: the module names numpy 1.x writers used
        variants.append(raw.replace(b"numpy._core", b"numpy.core"))
    for variant in variants:
        path = tmp_path / f"p{protocol}.pkl"
        path.write_bytes(variant)
        np.testing.assert_array_equal(load_info_file(path)["data_list"][0]["m"], np.eye(4))


def test_info_unpickler_refuses_numpy_functions(tmp_path):
    # a pickle whose only global is a numpy function that runs a string
    evil = b"cnumpy.testing._private.utils\nrunstring\n(Vprint(1)\n}tR."
    path = tmp_path / "evil.pkl"
    path.write_bytes(evil)
    with pytest.raises(SceneFormatError, match=r"evil\.pkl"):
        load_info_file(path)
