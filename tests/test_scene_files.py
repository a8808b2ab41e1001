"""Hostile and broken scene files: each becomes a named per-frame or per-scene skip, never a
traceback, a stretched image or a foreign file in a shard (issue 11, "what the engine lets
through" items 1, 3, 5, 8)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.scenes import SceneFormatError, load_scene, scene_problems
from vst.scenes.errors import FrameFileError
from vst.scenes.files import MAX_IMAGE_PIXELS, image_size, read_json
from vst.scenes.validation import Bounds, check_frame_files, label_problem, screen_frames
from vst.testing.hostile_fixture import NESTED_JSON, write_bomb_png

TASK = "si_depth_order"


@pytest.fixture
def scene_copy(tmp_path, engine_scene_dirs) -> Path:
    """A writable copy of the first shared synthetic scene."""
    return Path(shutil.copytree(engine_scene_dirs[0], tmp_path / "scenes" / "s0"))


def _record(d: Path) -> dict:
    return json.loads((d / "scene.json").read_text())


def _write_record(d: Path, rec: dict) -> None:
    (d / "scene.json").write_text(json.dumps(rec))


def _frame_file(d: Path, kind: str, index: int = 0) -> tuple[str, Path]:
    frame = _record(d)["frames"][index]
    return frame["id"], d / frame[kind]


# -- item 1: silent corruption ------------------------------------------------------------------
def test_resized_image_wrong_depth_nan_depth_and_unknown_mask_ids_skip_their_frames(scene_copy):
    fid0, img = _frame_file(scene_copy, "image", 0)
    with Image.open(img) as im:
        im.resize((im.width // 2, im.height // 2)).save(img)  # same name, half the pixels
    fid1, depth1 = _frame_file(scene_copy, "depth", 1)
    np.savez(depth1, depth=np.ones((7, 5), dtype=np.float32))
    fid2, depth2 = _frame_file(scene_copy, "depth", 2)
    with np.load(depth2) as data:
        d = data["depth"].copy()
    d[3, 4] = np.nan
    np.savez(depth2, depth=d)
    fid3, mask3 = _frame_file(scene_copy, "mask", 3)
    m = np.asarray(Image.open(mask3)).copy()
    m[0, 0] = 999
    Image.fromarray(m).save(mask3)

    scene = load_scene(scene_copy)
    n = len(scene.frames)
    reasons = screen_frames(scene)
    assert [f.id for f in scene.frames] == [f.id for f in load_scene(scene_copy).frames][4:]
    assert len(scene.frames) == n - 4
    text = "\n".join(reasons)
    assert f"frame {fid0!r}, field 'image'" in text and "160x120, the frame says 320x240" in text
    assert f"frame {fid1!r}, field 'depth'" in text and "(7, 5)" in text and str(depth1) in text
    assert f"frame {fid2!r}, field 'depth'" in text and "1 non-finite" in text
    assert f"frame {fid3!r}, field 'mask'" in text and "[999]" in text
    # the validate command's checks are the same ones
    problems = scene_problems(load_scene(scene_copy))
    assert sum(f"frame {f!r}" in p for p in problems for f in (fid0, fid1, fid2, fid3)) == 4


def test_loading_a_corrupt_file_names_scene_frame_and_file(scene_copy):
    fid, depth = _frame_file(scene_copy, "depth", 0)
    np.savez(depth, depth=np.full((240, 320), -1.0, dtype=np.float32))
    _, img = _frame_file(scene_copy, "image", 1)
    img.write_bytes(img.read_bytes()[:200])  # truncated: the header is fine, the pixels not
    scene = load_scene(scene_copy)
    with pytest.raises(FrameFileError) as err:
        scene.frames[0].load_depth()
    msg = str(err.value)
    assert f"scene {scene.id!r}, frame {fid!r}, field 'depth', file {depth}" in msg
    assert "negative" in msg and err.value.frame_id == fid
    with pytest.raises(FrameFileError, match=rf"frame {scene.frames[1].id!r}.*{img.name}"):
        scene.frames[1].load_image()
    # the header check cannot see a truncated body, the load does
    assert check_frame_files(scene.frames[1], deep=False) == []


def test_generate_skips_bad_frames_and_reports_them(scene_copy, tmp_path):
    from vst.engine.config import parse_config
    from vst.engine.runner import run
    from vst.engine.writer import iter_rows

    fid, img = _frame_file(scene_copy, "image", 0)
    with Image.open(img) as im:
        im.resize((im.width + 16, im.height)).save(img)
    cfg = parse_config(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"kind": "scenes", "path": str(scene_copy.parent)}],
            "tasks": [{"name": TASK, "per_scene": 50}],
        }
    )
    report = run(cfg, progress=False)
    assert report.scenes_used == 1 and not report.skipped_scenes
    [entry] = report.skipped_frames
    assert f"frame {fid!r}" in entry["reasons"][0] and "336x240" in entry["reasons"][0]
    rows = [r for shard in sorted(cfg.data_dir.glob("*.parquet")) for r in iter_rows(shard)]
    assert rows and all(fid not in json.loads(r["meta"])["frame_ids"] for r in rows)
    assert "Skipped frames" in (tmp_path / "out" / "report.md").read_text()


def test_a_file_found_corrupt_by_a_task_drops_its_frame_not_the_task(scene_copy, tmp_path):
    from vst.engine.config import parse_config
    from vst.engine.runner import run
    from vst.engine.writer import iter_rows

    fid, depth = _frame_file(scene_copy, "depth", 0)
    with np.load(depth) as data:
        d = data["depth"].copy()
    d[10:20, 10:20] = np.nan  # the header is fine: only loading the pixels finds it
    np.savez(depth, depth=d)
    cfg = parse_config(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"kind": "scenes", "path": str(scene_copy.parent)}],
            "tasks": [{"name": TASK, "per_scene": 50}],
        }
    )
    report = run(cfg, progress=False)
    assert report.task_errors == [] and report.samples_total > 0
    [entry] = report.skipped_frames
    [reason] = entry["reasons"]
    assert f"frame {fid!r}, field 'depth', file {depth}: 100 non-finite values" in reason
    rows = [r for shard in sorted(cfg.data_dir.glob("*.parquet")) for r in iter_rows(shard)]
    assert all(fid not in json.loads(r["meta"])["frame_ids"] for r in rows)


# -- item 3: one bad file aborts everything -----------------------------------------------------
def test_deeply_nested_scene_json_is_a_per_scene_skip(tmp_path, engine_scene_dirs):
    src = tmp_path / "scenes"
    for d in engine_scene_dirs:
        shutil.copytree(d, src / d.name)
    nested = src / "aa_nested"
    nested.mkdir()
    (nested / "scene.json").write_text(NESTED_JSON)
    with pytest.raises(SceneFormatError, match="nested too deeply"):
        load_scene(nested)
    with pytest.raises(SceneFormatError, match=r"scene\.json"):
        read_json(nested / "scene.json")

    from vst.scenes.cli import app

    result = CliRunner().invoke(app, ["validate", str(src)])
    assert result.exit_code == 1
    assert "nested too deeply" in result.output
    assert f"{len(engine_scene_dirs)} of {len(engine_scene_dirs) + 1} scene(s) valid" in (
        result.output
    )

    from vst.engine.config import parse_config
    from vst.engine.runner import run

    cfg = parse_config(
        {
            "output": str(tmp_path / "out"),
            "sources": [{"kind": "scenes", "path": str(src)}],
            "tasks": [{"name": TASK, "per_scene": 2}],
        }
    )
    report = run(cfg, progress=False)
    assert report.scenes_used == len(engine_scene_dirs) and report.samples_total > 0
    [skipped] = report.skipped_scenes
    assert skipped["dir"].endswith("aa_nested") and "nested too deeply" in skipped["reasons"][0]


def test_decompression_bomb_and_garbage_npz_are_frame_skips(scene_copy):
    fid0, img = _frame_file(scene_copy, "image", 0)
    write_bomb_png(img)
    assert img.stat().st_size < 200
    with pytest.raises(SceneFormatError, match=r"decompression bomb|exceeds"):
        image_size(img)
    fid1, depth = _frame_file(scene_copy, "depth", 1)
    depth.write_bytes(b"PK\x03\x04 this is not a zip archive" * 10)
    fid2, depth2 = _frame_file(scene_copy, "depth", 2)
    np.savez(depth2, depth=np.array([{"a": 1}], dtype=object))  # a pickled member

    scene = load_scene(scene_copy)
    reasons = "\n".join(screen_frames(scene))
    assert f"frame {fid0!r}, field 'image'" in reasons and str(img) in reasons
    assert f"frame {fid1!r}, field 'depth'" in reasons and str(depth) in reasons
    assert f"frame {fid2!r}, field 'depth'" in reasons
    assert {fid0, fid1, fid2}.isdisjoint(f.id for f in scene.frames)
    assert len(scene.frames) > 0


def test_image_limit_is_checked_on_the_header(tmp_path):
    side = int(MAX_IMAGE_PIXELS**0.5) + 1
    path = write_bomb_png(tmp_path / "big.png", side, side)  # under PIL's own limit, over ours
    with pytest.raises(SceneFormatError, match=f"{side}x{side}"):
        image_size(path)


# -- item 5: reading outside the dataset --------------------------------------------------------
def test_paths_outside_the_scene_directory_are_refused(scene_copy, tmp_path):
    secret = tmp_path / "secret.png"
    Image.new("RGB", (320, 240), (255, 0, 0)).save(secret)
    rec = _record(scene_copy)
    rec["frames"][0]["image"] = str(secret)  # absolute
    rec["frames"][1]["image"] = "../../secret.png"  # climbs out
    os.symlink(secret, scene_copy / "images" / "link.png")
    rec["frames"][2]["image"] = "images/link.png"  # symlink out
    _write_record(scene_copy, rec)
    ids = [f["id"] for f in rec["frames"][:3]]

    scene = load_scene(scene_copy)
    reasons = screen_frames(scene)
    assert len(reasons) == 3 and all("resolves outside" in r for r in reasons)
    assert all(f"frame {i!r}" in r for i, r in zip(ids, reasons, strict=True))
    assert set(ids).isdisjoint(f.id for f in scene.frames)
    with pytest.raises(FrameFileError, match="resolves outside"):
        load_scene(scene_copy).frames[1].load_image()

    opted_in = load_scene(scene_copy, allow_outside_root=True)
    assert screen_frames(opted_in) == []
    assert opted_in.frames[0].load_image()[0, 0].tolist() == [255, 0, 0]

    from vst.scenes.cli import app

    refused = CliRunner().invoke(app, ["validate", str(scene_copy)])
    assert refused.exit_code == 1 and refused.output.count("resolves outside") == 3
    allowed = CliRunner().invoke(app, ["validate", str(scene_copy), "--allow-outside-root"])
    assert allowed.exit_code == 0, allowed.output


def test_generate_opt_in_for_outside_paths(scene_copy, tmp_path):
    from vst.engine.config import parse_config
    from vst.engine.runner import run

    secret = tmp_path / "elsewhere.png"
    rec = _record(scene_copy)
    shutil.copy(scene_copy / rec["frames"][0]["image"], secret)
    rec["frames"][0]["image"] = str(secret)
    _write_record(scene_copy, rec)
    base = {
        "sources": [{"kind": "scenes", "path": str(scene_copy.parent)}],
        "tasks": [{"name": TASK, "per_scene": 2}],
    }
    refused = run(parse_config({**base, "output": str(tmp_path / "a")}), progress=False)
    assert "resolves outside" in refused.skipped_frames[0]["reasons"][0]
    cfg = parse_config({**base, "output": str(tmp_path / "b"), "allow_outside_root": True})
    assert run(cfg, progress=False).skipped_frames == []


def test_relative_scene_directory_is_fine(scene_copy, monkeypatch):
    monkeypatch.chdir(scene_copy.parent.parent)
    scene = load_scene(Path("scenes") / scene_copy.name)
    assert screen_frames(scene) == []
    assert scene.frames[0].load_mask().shape == (240, 320)


def test_symlinked_scene_directory_itself_is_fine(scene_copy, tmp_path):
    link = tmp_path / "linked_scene"
    link.symlink_to(scene_copy, target_is_directory=True)
    scene = load_scene(link)
    assert screen_frames(scene) == []


# -- item 8: implausible values -----------------------------------------------------------------
def test_plausibility_bounds_name_the_field(scene_copy):
    rec = _record(scene_copy)
    objs = rec["objects"]
    objs[0]["box"][3] = 1e300
    objs[1]["id"] = 10**30
    objs[2]["label"] = "\u200b"
    objs[3]["label"] = "sofa\u202e"
    objs[4]["box"][0] = 5000.0
    _write_record(scene_copy, rec)
    problems = [
        p for p in scene_problems(load_scene(scene_copy), check_files=False) if ", object " in p
    ]
    text = "\n".join(problems)
    assert (
        f"object {objs[0]['id']}" in text
        and "field 'box': sizes must be positive and at most 100 m" in text
    )
    assert f"object {10**30}" in text and "field 'id': must be an integer in 1..2147483647" in text
    assert "field 'label': holds control or invisible formatting characters (U+200B)" in text
    assert "(U+202E)" in text
    assert "more than 1000 m from the origin" in text
    assert len(problems) == 5
    loose = Bounds(max_box_size=1e301, max_coordinate=1e4, max_object_id=10**31)
    relaxed = scene_problems(load_scene(scene_copy), check_files=False, bounds=loose)
    assert len([p for p in relaxed if ", object " in p]) == 2  # the two labels


def test_unknown_mask_ids():
    from vst.scenes.model import unknown_mask_ids

    mask = np.array([[0, 1, 2], [2, 7, 0]], dtype=np.int32)
    assert unknown_mask_ids(mask, {1, 2}) == [7]
    assert unknown_mask_ids(mask, {1, 2, 7, 10**30}) == []  # a huge known id needs no table
    mask[0, 0] = 2**31 - 1
    assert unknown_mask_ids(mask, {1, 2}) == [7, 2**31 - 1]
    assert unknown_mask_ids(mask - 5, {1, 2}) == [-5, -4, -3, 2**31 - 6]  # 7 - 5 = 2 is known


def test_label_rules():
    assert label_problem("coffee table") is None
    assert label_problem("Stuhl · groß") is None
    assert label_problem("   ") == "empty (nothing visible)"
    assert label_problem("\u3000\u00a0") == "empty (nothing visible)"
    assert "U+0007" in label_problem("bell\x07")
    assert "U+2066" in label_problem("\u2066chair")
    assert label_problem(3) == "must be a string, got int"
