"""Hostile dataset files met by the readers (issue 11, "what the engine lets through" items 3, 5
and 10): deep JSON nesting, decompression bombs, garbage arrays, paths leaving the dataset and
pickles failing inside an allowed global are per-scene/per-frame skips or one clear error that
names the file, never a traceback that ends the import."""

from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest

from vst.scenes.errors import SceneFormatError
from vst.scenes.guard import BenchmarkGuard
from vst.scenes.sources.arkitscenes import ARKitScenesReader
from vst.scenes.sources.embodiedscan import EmbodiedScanReader, load_info_file
from vst.scenes.sources.images_depth import ImagesDepthReader
from vst.scenes.sources.importer import import_scenes
from vst.scenes.sources.omni3d import Omni3DReader
from vst.scenes.sources.scannetpp import ScanNetPPReader
from vst.scenes.splits import BenchmarkRegistry
from vst.testing.arkitscenes_fixture import write_arkitscenes_fixture
from vst.testing.embodiedscan_fixture import write_embodiedscan_fixture
from vst.testing.hostile_fixture import NESTED_JSON, write_bomb_png
from vst.testing.images_fixture import write_images_fixture
from vst.testing.omni3d_fixture import write_omni3d_fixture
from vst.testing.scannetpp_fixture import write_scannetpp_fixture


def _no_guard() -> BenchmarkGuard:
    return BenchmarkGuard(BenchmarkRegistry(), allow=True)


# -- Omni3D ---------------------------------------------------------------------------------------
def test_omni3d_nested_file_bomb_and_outside_paths(tmp_path):
    fx = write_omni3d_fixture(tmp_path / "o")
    (fx.json_dir / "zz_nested.json").write_text(NESTED_JSON)
    sun_path, ark_path = fx.json_dir / "SUNRGBD_test.json", fx.json_dir / "ARKitScenes_test.json"
    sun, ark = json.loads(sun_path.read_text()), json.loads(ark_path.read_text())
    secret = tmp_path / "secret.jpg"
    shutil.copy(fx.image_root / sun["images"][0]["file_path"], secret)
    sun["images"][0]["file_path"] = str(secret)  # absolute
    depth = len(Path(ark["images"][0]["file_path"]).parts)
    ark["images"][0]["file_path"] = "../" * (depth + 2) + "secret.jpg"  # climbs out
    write_bomb_png(fx.image_root / ark["images"][1]["file_path"])
    sun_path.write_text(json.dumps(sun))
    ark_path.write_text(json.dumps(ark))
    ids = [sun["images"][0]["id"], ark["images"][0]["id"], ark["images"][1]["id"]]

    result = import_scenes(Omni3DReader(fx.json_dir), tmp_path / "out", guard=_no_guard())
    reasons = {s.item: s.reason for s in result.report.skipped}
    assert "nested too deeply" in reasons[str(fx.json_dir / "zz_nested.json")]
    by_id = {i: r for item, r in reasons.items() for i in ids if item.endswith(f"-{i}")}
    assert "resolves outside" in by_id[ids[0]] and "resolves outside" in by_id[ids[1]]
    assert "exceeds the limit" in by_id[ids[2]]
    assert not result.written  # every scene of the fixture was hostile; nothing aborted

    opted, _ = Omni3DReader(fx.json_dir, {"allow_outside_root": True}).read_all()
    assert [s.id for s in opted] == [f"sunrgbd-{ids[0]}"]


# -- ARKitScenes / ScanNet++ ----------------------------------------------------------------
def test_arkitscenes_nested_annotation_fails_that_scene_only(tmp_path):
    truth = write_arkitscenes_fixture(tmp_path / "a")
    vid, video = sorted(truth["videos"].items())[0]
    (video["dir"] / f"{vid}_3dod_annotation.json").write_text(NESTED_JSON)
    result = import_scenes(
        ARKitScenesReader(truth["dataset_dir"]), tmp_path / "out", guard=_no_guard()
    )
    [failed] = result.failed
    assert vid in failed["scene_id"] and "nested too deeply" in failed["reason"]
    assert "_3dod_annotation.json" in failed["reason"]
    assert len(result.written) == len(truth["videos"]) - 1


def test_arkitscenes_bomb_frame_is_a_frame_skip(tmp_path):
    truth = write_arkitscenes_fixture(tmp_path / "a")
    vid, video = sorted(truth["videos"].items())[0]
    frame = video["frames"][0]["frame_id"]
    bomb = next((video["dir"] / f"{vid}_frames" / "lowres_wide").glob(f"*{frame.split('_')[-1]}*"))
    write_bomb_png(bomb)
    scenes, report = ARKitScenesReader(truth["dataset_dir"]).read_all()
    frames = report.skipped_of("frame")
    assert any(bomb.name in s.reason and "exceeds the limit" in s.reason for s in frames)
    assert len(scenes) == len(truth["videos"])


def test_scannetpp_nested_json_fails_the_scene_with_the_file_named(tmp_path):
    fx = write_scannetpp_fixture(tmp_path / "s")
    (fx.scene_dir / "scans" / "segments_anno.json").write_text(NESTED_JSON)
    result = import_scenes(ScanNetPPReader(fx.root), tmp_path / "out", guard=_no_guard())
    [failed] = result.failed
    assert "segments_anno.json" in failed["reason"] and "nested too deeply" in failed["reason"]


# -- images (COCO) ---------------------------------------------------------------------------------
def test_images_outside_paths_bomb_and_garbage_depth(tmp_path):
    fx = write_images_fixture(tmp_path / "i")
    coco = json.loads((fx.root / "annotations.json").read_text())
    secret = tmp_path / "secret.png"
    shutil.copy(fx.root / "images" / fx.images[0].file_name, secret)
    coco["images"][0]["file_name"] = "../../secret.png"
    (fx.root / "annotations.json").write_text(json.dumps(coco))
    write_bomb_png(fx.root / "images" / fx.images[2].file_name)
    (fx.root / "depth" / f"{fx.images[1].stem}.npy").unlink(missing_ok=True)
    (fx.root / "depth" / f"{fx.images[1].stem}.png").unlink(missing_ok=True)
    (fx.root / "depth" / f"{fx.images[1].stem}.npz").write_bytes(b"PK\x03\x04garbage" * 20)

    result = import_scenes(ImagesDepthReader(fx.root), tmp_path / "out", guard=_no_guard())
    text = json.dumps([s.reason for s in result.report.skipped]) + json.dumps(result.failed)
    assert "resolves outside" in text
    assert "exceeds the limit" in text and fx.images[2].file_name in text
    assert f"{fx.images[1].stem}.npz" in text
    assert not result.written

    (fx.root / "annotations.json").write_text(NESTED_JSON)
    with pytest.raises(SceneFormatError, match=r"annotations\.json.*nested too deeply"):
        ImagesDepthReader(fx.root).read_all()


# -- EmbodiedScan ---------------------------------------------------------------------------------
def test_embodiedscan_outside_img_path_is_a_frame_skip(tmp_path):
    fx = write_embodiedscan_fixture(tmp_path / "e")
    data = pickle.loads(fx.info_file.read_bytes())
    scan = data["data_list"][0]
    outside = tmp_path / "outside.jpg"
    shutil.copy(fx.root / scan["images"][0]["img_path"], outside)
    scan["images"][0]["img_path"] = str(outside)
    fx.info_file.write_bytes(pickle.dumps(data))
    scenes, report = EmbodiedScanReader(fx.info_file).read_all()
    [skip] = [s for s in report.skipped if s.kind == "frame"]
    assert "resolves outside" in skip.reason and str(outside) in skip.reason
    assert scenes


def test_embodiedscan_pickle_failing_inside_an_allowed_global_is_a_clear_error(tmp_path):
    path = tmp_path / "embodiedscan_infos_val.pkl"
    path.write_bytes(b"cbuiltins\nset\n(I1\nI2\ntR.")  # set(1, 2): TypeError
    with pytest.raises(SceneFormatError, match=r"embodiedscan_infos_val\.pkl: TypeError"):
        load_info_file(path)
    path.write_bytes(b"cbuiltins\ncomplex\n(Vnot a number\ntR.")  # ValueError
    with pytest.raises(SceneFormatError, match="ValueError"):
        load_info_file(path)
