"""The ``images`` reader (images + depth + COCO instances) and the optional depth estimation."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest

from vst.scenes.errors import SceneFormatError
from vst.scenes.io import load_scene, save_scene
from vst.scenes.sources.formats import get_reader_class
from vst.scenes.sources.images_depth import (
    CAM_TO_WORLD,
    ImagesDepthReader,
    decode_rle,
    encode_rle_string,
    intrinsics_from_fov,
    polygons_to_mask,
    read_depth_file,
)
from vst.scenes.validation import scene_problems
from vst.testing.images_fixture import write_images_fixture


@pytest.fixture(scope="module")
def fixture(tmp_path_factory):
    return write_images_fixture(tmp_path_factory.mktemp("images") / "data")


@pytest.fixture(scope="module")
def read(fixture):
    scenes, report = ImagesDepthReader(fixture.root).read_all()
    return {s.attributes["native_id"]: s for s in scenes}, report


def _copy(fixture, tmp_path):
    dst = tmp_path / "copy"
    shutil.copytree(fixture.root, dst)
    return dst


def _hit_points(truth, index):
    """World points of box ``index`` from the analytic ray-cast: ``t * (x, 1, -y)`` for the
    pixel-centre ray of each pixel whose ray hits the box first (t = z-depth)."""
    rows, cols = np.nonzero(truth.surface == index + 1)
    K = truth.K
    t = truth.depth[rows, cols].astype(np.float64)
    return np.stack([t * (cols - K[0, 2]) / K[0, 0], t, -t * (rows - K[1, 2]) / K[1, 1]], axis=1)


def _aabb(box):
    return box[:3] - box[3:6] / 2, box[:3] + box[3:6] / 2


def test_registered_format():
    assert get_reader_class("images") is ImagesDepthReader


def test_scenes_and_camera(fixture, read):
    scenes, report = read
    assert sorted(scenes) == ["room_0001", "room_0002"]
    assert report.scenes_read == ["coco-room_0001", "coco-room_0002"]
    s1, s2 = scenes["room_0001"], scenes["room_0002"]
    assert s1.id == "coco-room_0001" and s1.source == "coco" and s1.split == "train"
    assert s1.attributes["format"] == "images" and s1.attributes["coco_image_id"] == 90000001
    # Assumed 60 degree horizontal FoV on a 192 x 144 image: fx = 96 / tan(30 deg) = 166.277.
    f = 96.0 / math.tan(math.radians(30.0))
    assert f == pytest.approx(166.2769, abs=1e-4)
    np.testing.assert_allclose(s1.frames[0].K, [[f, 0, 95.5], [0, f, 71.5], [0, 0, 1]])
    assert s1.attributes["intrinsics"] == "assumed" and s1.attributes["fov_x_deg"] == 60.0
    np.testing.assert_allclose(s2.frames[0].K, [[150, 0, 97], [0, 150, 70], [0, 0, 1]])
    assert s2.attributes["intrinsics"] == "given"
    # Camera X -> world X, camera Z -> world Y, camera Y -> world -Z.
    T = s1.frames[0].cam_to_world
    np.testing.assert_allclose(T[:3, :3] @ [1, 0, 0], [1, 0, 0])
    np.testing.assert_allclose(T[:3, :3] @ [0, 0, 1], [0, 1, 0])
    np.testing.assert_allclose(T[:3, :3] @ [0, 1, 0], [0, 0, -1])
    np.testing.assert_allclose(T, CAM_TO_WORLD)
    for scene, truth in zip((s1, s2), fixture.images[:2], strict=True):
        frame = scene.frames[0]
        assert (frame.width, frame.height) == (192, 144)
        # npy metres and png millimetres both give the analytic depth.
        np.testing.assert_allclose(frame.load_depth(), truth.depth, atol=6e-4)
        assert scene_problems(scene) == []


def test_intrinsics_from_fov_by_hand():
    K = intrinsics_from_fov(100, 50, 90.0)  # tan(45) = 1 -> fx = 50
    np.testing.assert_allclose(K, [[50, 0, 49.5], [0, 50, 24.5], [0, 0, 1]])


def test_pseudo_boxes_match_raycast(fixture, read):
    scenes, _ = read
    for truth in fixture.images[:2]:
        scene = scenes[truth.stem]
        assert scene.labels == truth.labels
        for i, obj in enumerate(scene.objects):
            assert obj.id == i + 1 and obj.attributes["box_kind"] == "pseudo_aabb_from_depth"
            np.testing.assert_allclose(obj.box[6:], 0.0)
            # Same trim (5-95 percentiles per axis) of the analytic hit points.
            pts = _hit_points(truth, i)
            lo, hi = np.percentile(pts, 5, axis=0), np.percentile(pts, 95, axis=0)
            got_lo, got_hi = _aabb(obj.box)
            np.testing.assert_allclose(got_lo, lo, atol=0.03)
            np.testing.assert_allclose(got_hi, hi, atol=0.03)
            # A pseudo box spans the visible surface: inside the true box.
            tlo, thi = truth.aabbs[i]
            assert np.all(got_lo >= tlo - 0.03) and np.all(got_hi <= thi + 0.03)


def test_untrimmed_boxes_close_to_truth(fixture):
    scenes, _ = ImagesDepthReader(fixture.root, {"trim_percent": 0}).read_all()
    for scene, truth in zip(scenes, fixture.images[:2], strict=True):
        for obj, (tlo, thi) in zip(scene.objects, truth.aabbs, strict=True):
            lo, hi = _aabb(obj.box)
            # Within the footprint of a pixel row on a grazing top face (~0.11 m at 4 m).
            np.testing.assert_allclose(lo, tlo, atol=0.12)
            np.testing.assert_allclose(hi, thi, atol=0.12)
            np.testing.assert_allclose(lo[[0, 2]], tlo[[0, 2]], atol=0.015)  # front faces


def test_mask_and_annotation(fixture, read):
    scenes, _ = read
    for truth in fixture.images[:2]:
        scene = scenes[truth.stem]
        frame = scene.frames[0]
        mask = frame.load_mask()
        # Polygons of exact silhouettes (pixel-centre rule) and RLE give the ray-cast pixels.
        assert np.mean(mask == truth.surface) > 0.998
        assert frame.visible_pixels == {
            i + 1: int((mask == i + 1).sum()) for i in range(len(truth.labels))
        }
        assert set(frame.truncation) == set(frame.visible_pixels)
        assert all(0.0 <= v <= 1.0 for v in frame.truncation.values())


def test_skips_with_reasons(read):
    _, report = read
    reasons = {s.item.split("annotation ")[-1].split(" ")[0]: s.reason for s in report.skipped}
    assert "no usable segmentation" in reasons["100"]
    assert "min_depth_pixels" in reasons["101"] and reasons["101"].startswith("9 ")
    assert "crowd" in reasons["102"]
    scene_skips = report.skipped_of("scene")
    assert len(scene_skips) == 1 and "room_0003" in scene_skips[0].item
    assert "no depth file" in scene_skips[0].reason and "depth_model" in scene_skips[0].reason


def test_bbox_masks_option(fixture):
    scenes, report = ImagesDepthReader(fixture.root, {"bbox_masks": True}).read_all()
    s1 = next(s for s in scenes if s.id == "coco-room_0001")
    pic = next(o for o in s1.objects if o.label == "picture")
    assert pic.attributes["mask_source"] == "bbox"
    # A wall patch 8 m ahead: flat in depth -> widened to min_box_size.
    assert pic.box[1] == pytest.approx(8.0, abs=1e-3)
    assert pic.box[4] == pytest.approx(0.02)
    assert not any(s.item.endswith("annotation 100") for s in report.skipped)


def test_rle_and_polygons_agree_with_pycocotools(fixture):
    mask_utils = pytest.importorskip("pycocotools.mask", reason="pycocotools (dev) missing")
    coco = json.loads((fixture.root / "annotations.json").read_text())
    H, W = 144, 192
    for ann in coco["annotations"]:
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            rle = dict(seg)
            if isinstance(rle["counts"], list):
                rle = mask_utils.frPyObjects(rle, H, W)
            ref = mask_utils.decode(rle).astype(bool)
            np.testing.assert_array_equal(decode_rle(seg), ref)
        elif seg:
            ref = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(seg, H, W)))
            ours = polygons_to_mask(seg, W, H)
            assert int((ours ^ ref.astype(bool)).sum()) <= 3
    m = np.zeros((H, W), dtype=np.uint8)
    m[10:40, 5:90] = 1
    m[60:61, 100:180] = 1
    enc = mask_utils.encode(np.asfortranarray(m))
    counts = decode_rle({"size": [H, W], "counts": enc["counts"].decode()})
    np.testing.assert_array_equal(counts, m.astype(bool))
    flat = m.T.reshape(-1).astype(int)
    edges = np.flatnonzero(np.diff(flat)) + 1  # run boundaries, column-major
    runs = np.diff(np.r_[0, edges, flat.size]).tolist()  # first run is zeros (m[0, 0] = 0)
    assert encode_rle_string(runs) == enc["counts"].decode()


def test_depth_file_formats(tmp_path):
    d = np.array([[1.5, 0.0], [np.nan, -2.0]], dtype=np.float32)
    np.save(tmp_path / "a.npy", d)
    np.savez(tmp_path / "b.npz", depth=d)
    from PIL import Image

    Image.fromarray(np.array([[1500, 0], [65535, 20]], dtype=np.uint16)).save(tmp_path / "c.png")
    for name in ("a.npy", "b.npz"):
        np.testing.assert_allclose(read_depth_file(tmp_path / name), [[1.5, 0], [0, 0]])
    np.testing.assert_allclose(read_depth_file(tmp_path / "c.png"), [[1.5, 0], [65.535, 0.02]])
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "d.png")
    with pytest.raises(SceneFormatError, match=r"d\.png"):
        read_depth_file(tmp_path / "d.png")
    (tmp_path / "e.npy").write_bytes(b"garbage")
    with pytest.raises(SceneFormatError, match=r"e\.npy"):
        read_depth_file(tmp_path / "e.npy")


def test_broken_copies(fixture, tmp_path):
    root = _copy(fixture, tmp_path)
    # npz depth instead of npy gives the same scene.
    depth = np.load(root / "depth" / "room_0001.npy")
    (root / "depth" / "room_0001.npy").unlink()
    np.savez_compressed(root / "depth" / "room_0001.npz", depth=depth)
    np.save(root / "depth" / "room_0002.npy", np.ones((10, 10), np.float32))  # wins over .png
    coco = json.loads((root / "annotations.json").read_text())
    coco["images"].append({"id": 5, "file_name": "gone.png", "width": 192, "height": 144})
    coco["images"][0]["width"] = 200  # room_0001 now disagrees with its file
    (root / "annotations.json").write_text(json.dumps(coco))
    shutil.copy(root / "images" / "room_0003.png", root / "images" / "extra.png")
    reader = ImagesDepthReader(root)
    scenes, report = reader.read_all()
    assert scenes == []
    reasons = {s.item: s.reason for s in report.skipped}
    assert any("200x144" in r and "192x144" in r for r in reasons.values())
    assert any("10x10" in r for r in reasons.values())
    assert any("gone.png" in r and "does not exist" in r for r in reasons.values())
    assert reasons["image extra.png"].startswith("not listed")
    coco["images"][0]["width"] = 192
    (root / "annotations.json").write_text(json.dumps(coco))
    scenes, _ = ImagesDepthReader(root).read_all()
    assert [s.id for s in scenes] == ["coco-room_0001"]
    # Global FoV in intrinsics.json, invalid per-image K.
    (root / "intrinsics.json").write_text(
        json.dumps({"fov_x_deg": 90, "images": {"room_0003": {"K": [[-1, 0, 0]]}}})
    )
    (root / "depth" / "room_0002.npy").unlink()
    np.save(root / "depth" / "room_0003.npy", np.ones((144, 192), np.float32))
    scenes, report = ImagesDepthReader(root).read_all()
    s1 = next(s for s in scenes if s.id == "coco-room_0001")
    np.testing.assert_allclose(s1.frames[0].K[0, 0], 96.0)  # 192 / (2 tan 45)
    assert s1.attributes["intrinsics"] == "given_fov"
    assert any("invalid K" in s.reason and "room_0003" in s.item for s in report.skipped)
    (root / "annotations.json").write_text("{not json")
    with pytest.raises(SceneFormatError, match=r"annotations\.json"):
        ImagesDepthReader(root).read_all()


def test_without_annotations_and_image_ids(fixture, tmp_path):
    scenes, _ = ImagesDepthReader(fixture.root, {"native_id": "image_id"}).read_all()
    assert [s.id for s in scenes] == ["coco-90000001", "coco-90000002"]
    assert scenes[0].attributes["native_id"] == "90000001"
    root = _copy(fixture, tmp_path)
    (root / "annotations.json").unlink()
    scenes, _ = ImagesDepthReader(root, {"dataset": "mypics", "split": "val"}).read_all()
    assert [s.id for s in scenes] == ["mypics-room_0001", "mypics-room_0002"]
    assert all(not s.objects and s.frames[0].mask is None for s in scenes)
    assert scenes[0].source == "mypics" and scenes[0].split == "val"
    with pytest.raises(ValueError, match="trim_percent"):
        ImagesDepthReader(root, {"trim_percent": 60})


def test_determinism_and_round_trip(fixture, read, tmp_path):
    scenes, _ = read
    again, _ = ImagesDepthReader(fixture.root).read_all()
    for b in again:
        a = scenes[b.attributes["native_id"]]
        np.testing.assert_array_equal(a.boxes, b.boxes)
        np.testing.assert_array_equal(a.frames[0].load_mask(), b.frames[0].load_mask())
    for scene in scenes.values():
        loaded = load_scene(save_scene(scene, tmp_path / scene.id))
        assert scene_problems(loaded) == []
        np.testing.assert_allclose(loaded.boxes, scene.boxes)
        np.testing.assert_array_equal(loaded.frames[0].load_mask(), scene.frames[0].load_mask())
        np.testing.assert_allclose(loaded.frames[0].load_depth(), scene.frames[0].load_depth())
        assert loaded.frames[0].load_image().shape == (144, 192, 3)


def test_engine_end_to_end(read, tmp_path):
    from vst.testing.engine_check import generate_and_verify

    scenes, _ = read
    root = tmp_path / "scenes"
    for scene in scenes.values():
        save_scene(scene, root / scene.id)
    report, result = generate_and_verify(root, tmp_path / "out", tasks=["si_*"], per_scene=3)
    assert result.ok, result
    counts = report.samples_per_task
    assert counts.get("si_depth_point", 0) > 0
    assert counts.get("si_depth_order", 0) > 0
    assert sum(counts.values()) > 0


def test_cli_import(fixture, tmp_path):
    from typer.testing import CliRunner

    from vst.cli import app

    out = tmp_path / "imported"
    result = CliRunner().invoke(
        app, ["scenes", "import", "images", str(fixture.root), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert (out / "coco-room_0001").is_dir() and (out / "coco-room_0002").is_dir()
    assert scene_problems(load_scene(out / "coco-room_0002")) == []


# -- depth estimation ----------------------------------------------------------------------------
def _tiny_depth_model(path):
    """A randomly initialised Depth Anything (tiny DINOv2 backbone) saved with its processor;
    the head's last bias is set so the (ReLU) prediction is positive everywhere."""
    import torch
    import transformers
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=32,
        num_hidden_layers=4,
        num_attention_heads=2,
        intermediate_size=64,
        patch_size=14,
        image_size=56,
        out_features=["stage1", "stage2", "stage3", "stage4"],
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        reassemble_hidden_size=32,
        depth_estimation_type="relative",
    )
    model = DepthAnythingForDepthEstimation(config)
    with torch.no_grad():
        model.head.conv3.bias.fill_(2.0)
    model.save_pretrained(path)
    cls = getattr(transformers, "DPTImageProcessorPil", None) or transformers.DPTImageProcessor
    cls(
        size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14
    ).save_pretrained(path)


@pytest.mark.slow  # ~10 s: imports transformers, builds and runs a model
def test_estimate_depth_with_tiny_model(fixture, tmp_path):
    pytest.importorskip("transformers", reason="transformers (optional 'depth' extra) missing")
    from vst.scenes.sources.depth_estimation import estimate_depth, prediction_to_depth

    model_dir = tmp_path / "tiny-depth"
    _tiny_depth_model(model_dir)
    out = tmp_path / "est"
    written = estimate_depth(fixture.root / "images", out, model_dir, kind="relative-inverse")
    assert [p.name for p in written] == ["room_0001.npy", "room_0002.npy", "room_0003.npy"]
    for p in written:
        d = np.load(p)
        assert d.shape == (144, 192) and d.dtype == np.float32
        assert np.all(np.isfinite(d)) and np.all(d > 0)
    assert estimate_depth(fixture.root / "images", out, model_dir) == []  # kept
    # The reader runs the model for the image without a depth file (room_0003).
    root = _copy(fixture, tmp_path)
    scenes, report = ImagesDepthReader(
        root, {"depth_model": str(model_dir), "depth_scale": 3.0}
    ).read_all()
    s3 = next(s for s in scenes if s.attributes["native_id"] == "room_0003")
    assert s3.attributes["depth_source"] == "estimated"
    assert s3.attributes["depth_kind"] == "relative-inverse"
    d3 = s3.frames[0].load_depth()
    np.testing.assert_allclose(d3, 3.0 * np.load(out / "room_0003.npy"), rtol=1e-5)
    assert (root / "depth_estimated" / "room_0003.npy").is_file()
    assert len(s3.objects) == 1 and scene_problems(s3) == []
    assert not report.skipped_of("scene")
    # Conversions.
    pred = np.array([[2.0, 0.5], [0.0, np.nan]])
    np.testing.assert_allclose(prediction_to_depth(pred, "metric", 2.0), [[4, 1], [0, 0]])
    np.testing.assert_allclose(prediction_to_depth(pred, "relative-inverse", 2.0), [[1, 4], [0, 0]])


def test_depth_model_dir_must_exist(tmp_path):
    from vst.scenes.sources.depth_estimation import DepthEstimator

    with pytest.raises(FileNotFoundError, match="never a hub id"):
        DepthEstimator(tmp_path / "missing")
