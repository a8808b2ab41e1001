"""Scene model: save/load round trips, lazy pixels, validation messages that name the culprit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.geometry.boxes import box3d_corners
from vst.scenes import (
    Frame,
    Object3D,
    Room,
    Scene,
    SceneFormatError,
    SceneValidationError,
    load_scene,
    save_scene,
    scene_problems,
    validate_scene,
)

W, H = 32, 24


def _pose(yaw_deg: float = 0.0, t=(0.0, 0.0, 1.5)) -> np.ndarray:
    """Camera looking horizontally along world +Y rotated by yaw about world Z (Z-up world)."""
    # camera axes in world: X right, Y down, Z forward.
    base = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])  # columns: x, y, z
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    rz = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])
    T = np.eye(4)
    T[:3, :3] = rz @ base
    T[:3, 3] = t
    return T


def make_scene(rng: np.random.Generator | None = None) -> Scene:
    rng = rng or np.random.default_rng(0)
    K = np.array([[30.0, 0.0, W / 2], [0.0, 30.0, H / 2], [0.0, 0.0, 1.0]])
    frames = []
    for i in range(2):
        mask = np.zeros((H, W), dtype=np.int32)
        mask[5:10, 3:9] = 1
        mask[12:20, 15:30] = 2
        frames.append(
            Frame(
                id=f"f{i:03d}",
                K=K,
                width=W,
                height=H,
                cam_to_world=_pose(10.0 * i),
                timestamp=0.5 * i,
                image=rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8),
                depth=rng.uniform(0.5, 5.0, size=(H, W)).astype(np.float32),
                mask=mask,
                visible_pixels={1: 30, 2: 120},
                truncation={1: 0.0, 2: 0.25},
            )
        )
    objects = [
        Object3D(1, "chair", [1.0, 2.0, 0.45, 0.5, 0.5, 0.9, 0.0, 0.0, 30.0], {"color": "red"}),
        Object3D(2, "table", [0.0, 3.0, 0.4, 1.2, 0.8, 0.8, 0.0, 0.0, -15.0]),
    ]
    room = Room(floor_polygon=[[-2, 0], [3, 0], [3, 4], [-2, 4]], floor_z=0.0, ceiling_z=2.7)
    return Scene(
        id="unit_scene",
        source="test",
        split="train",
        frames=frames,
        objects=objects,
        room=room,
        attributes={"seed": 0},
    )


def test_room_area_and_height():
    room = Room(floor_polygon=[[0, 0], [4, 0], [4, 2], [2, 2], [2, 5], [0, 5]], ceiling_z=2.5)
    # L-shape: 4x2 + 2x3 = 14 m^2
    assert room.area == pytest.approx(14.0)
    assert room.height == pytest.approx(2.5)


def test_save_load_round_trip_is_identical(tmp_path: Path):
    scene = make_scene()
    save_scene(scene, tmp_path / "s")
    loaded = load_scene(tmp_path / "s")
    assert (loaded.id, loaded.source, loaded.split, loaded.attributes) == (
        "unit_scene",
        "test",
        "train",
        {"seed": 0},
    )
    assert loaded.room.area == pytest.approx(20.0)
    assert loaded.room.ceiling_z == 2.7
    np.testing.assert_array_equal(loaded.boxes, scene.boxes)
    assert loaded.labels == ["chair", "table"]
    assert loaded.objects[0].attributes == {"color": "red"}
    for a, b in zip(scene.frames, loaded.frames, strict=True):
        assert (a.id, a.width, a.height, a.timestamp) == (b.id, b.width, b.height, b.timestamp)
        np.testing.assert_array_equal(a.K, b.K)
        np.testing.assert_array_equal(a.cam_to_world, b.cam_to_world)
        np.testing.assert_array_equal(a.image, b.load_image())
        np.testing.assert_array_equal(a.depth, b.load_depth())
        np.testing.assert_array_equal(a.mask, b.load_mask())
        assert b.load_depth().dtype == np.float32
        assert a.visible_pixels == b.visible_pixels
        assert a.truncation == b.truncation
    # pixels stay on disk until asked for
    assert isinstance(loaded.frames[0].image, str)
    assert validate_scene(loaded) is loaded


def test_save_is_byte_deterministic(tmp_path: Path):
    save_scene(make_scene(np.random.default_rng(3)), tmp_path / "a")
    save_scene(make_scene(np.random.default_rng(3)), tmp_path / "b")
    files_a = sorted(
        p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file()
    )
    files_b = sorted(
        p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file()
    )
    assert files_a == files_b
    assert len(files_a) == 1 + 3 * 2
    for rel in files_a:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes(), rel


def test_resave_of_loaded_scene_keeps_files(tmp_path: Path):
    save_scene(make_scene(), tmp_path / "a")
    loaded = load_scene(tmp_path / "a")
    save_scene(loaded, tmp_path / "b")  # copies the files it points to
    again = load_scene(tmp_path / "b")
    np.testing.assert_array_equal(again.frames[1].load_mask(), loaded.frames[1].load_mask())
    json_a = (tmp_path / "a" / "scene.json").read_text()
    assert json_a == (tmp_path / "b" / "scene.json").read_text()


def test_boxes_in_camera_frame():
    scene = make_scene()
    frame = scene.frames[0]  # camera at (0, 0, 1.5) looking along world +Y
    cam_boxes = scene.boxes_in_camera(frame)
    # chair centre (1, 2, 0.45) world -> camera: x = 1 (right), y = 1.5 - 0.45 (down), z = 2
    np.testing.assert_allclose(cam_boxes[0, :3], [1.0, 1.05, 2.0], atol=1e-12)
    # the same corners (as a set: the local axes change) whichever frame holds the box
    world_corners = box3d_corners(scene.boxes)
    cam_corners = box3d_corners(cam_boxes)
    back = cam_corners @ frame.cam_to_world[:3, :3].T + frame.cam_to_world[:3, 3]
    for b, w in zip(back, world_corners, strict=True):
        np.testing.assert_allclose(np.unique(b.round(9), axis=0), np.unique(w.round(9), axis=0))


def _expect_problem(scene: Scene, *fragments: str, check_files: bool = True) -> str:
    problems = scene_problems(scene, check_files=check_files)
    hits = [p for p in problems if all(f in p for f in fragments)]
    assert hits, f"no problem mentions {fragments}; got {problems}"
    return hits[0]


def test_validation_names_scene_object_and_field():
    scene = make_scene()
    scene.objects[1].box[4] = -0.1
    msg = _expect_problem(scene, "scene 'unit_scene'", "object 2", "'box'", "positive")
    assert "table" in msg
    scene.objects[0].box[0] = np.nan
    _expect_problem(scene, "object 1", "non-finite")
    scene.objects[1].id = 1
    _expect_problem(scene, "duplicate object id")


def test_validation_frame_geometry():
    scene = make_scene()
    scene.frames[1].K = np.array([[0.0, 0, 16], [0, 30, 12], [0, 0, 1]])
    _expect_problem(scene, "frame 'f001'", "'K'", "focal")
    scene.frames[0].cam_to_world = scene.frames[0].cam_to_world.copy()
    scene.frames[0].cam_to_world[:3, :3] *= 1.1
    _expect_problem(scene, "frame 'f000'", "'cam_to_world'", "orthonormal")
    scene.frames[0].cam_to_world[0, 3] = np.inf
    _expect_problem(scene, "frame 'f000'", "'cam_to_world'", "non-finite")


def test_validation_pixels_and_files(tmp_path: Path):
    scene = make_scene()
    scene.frames[0].depth = np.ones((H + 1, W), dtype=np.float32)
    _expect_problem(scene, "frame 'f000'", "'depth'", "does not match")
    scene.frames[1].depth[0, 0] = np.nan
    _expect_problem(scene, "frame 'f001'", "'depth'", "non-finite")
    scene.frames[1].mask[0, 0] = 7
    _expect_problem(scene, "frame 'f001'", "'mask'", "[7]")

    good = make_scene()
    save_scene(good, tmp_path / "s")
    (tmp_path / "s" / "images" / "f001.png").unlink()
    (tmp_path / "s" / "depth" / "f000.npz").write_bytes(b"not a zip")
    loaded = load_scene(tmp_path / "s")
    _expect_problem(loaded, "frame 'f001'", "'image'", "does not exist")
    _expect_problem(loaded, "frame 'f000'", "'depth'", "f000.npz")
    with pytest.raises(SceneValidationError) as info:
        validate_scene(loaded)
    assert "unit_scene" in str(info.value) and len(info.value.problems) == 2
    # the cheap check skips the files
    assert scene_problems(loaded, check_files=False) == []


def test_image_size_mismatch_on_disk(tmp_path: Path):
    save_scene(make_scene(), tmp_path / "s")
    Image.fromarray(np.zeros((H, W + 4, 3), dtype=np.uint8)).save(tmp_path / "s/images/f000.png")
    _expect_problem(load_scene(tmp_path / "s"), "frame 'f000'", "'image'", f"{W + 4}x{H}")


def test_load_errors_name_file_and_field(tmp_path: Path):
    with pytest.raises(SceneFormatError, match="not a scene directory"):
        load_scene(tmp_path)
    save_scene(make_scene(), tmp_path / "s")
    path = tmp_path / "s" / "scene.json"
    record = json.loads(path.read_text())
    record["frames"][1]["K"] = [[1, 0], [0, 1]]
    path.write_text(json.dumps(record))
    with pytest.raises(SceneFormatError) as info:
        load_scene(tmp_path / "s")
    msg = str(info.value)
    assert "scene.json" in msg and "frame 'f001'" in msg and "'K'" in msg and "(3, 3)" in msg

    record["frames"][1]["K"] = [[30, 0, 16], [0, 30, 12], [0, 0, 1]]
    del record["objects"][0]["label"]
    path.write_text(json.dumps(record))
    with pytest.raises(SceneFormatError, match=r"object 1, field 'label': missing"):
        load_scene(tmp_path / "s")
    path.write_text("{broken")
    with pytest.raises(SceneFormatError, match="cannot parse JSON"):
        load_scene(tmp_path / "s")


def test_lazy_frame_reports_unreadable_file(tmp_path: Path):
    frame = Frame(
        id="x",
        K=np.eye(3),
        width=2,
        height=2,
        cam_to_world=np.eye(4),
        image="missing.png",
        root=tmp_path,
    )
    with pytest.raises(SceneFormatError, match=r"frame 'x'.*missing\.png"):
        frame.load_image()


def test_upright_objects_are_level_vst_boxes_in_a_level_camera():
    scene = make_scene()
    # frame 1 is level (camera yawed by 10 degrees about world Z); the chair is upright with a
    # 30 degree heading, 0.9 m tall
    cam = scene.boxes_in_camera(scene.frames[1])
    chair = cam[0]
    np.testing.assert_allclose(chair[3:6], [0.5, 0.9, 0.5], atol=1e-12)  # y_size = height
    np.testing.assert_allclose(chair[[6, 8]], [0.0, 0.0], atol=1e-9)  # no pitch, no roll
    # heading relative to the camera: 30 - 10 = 20 degrees about world Z (up) is a rotation
    # about camera -Y, i.e. yaw = -20 in the camera's Y-down frame
    assert chair[7] == pytest.approx(-20.0, abs=1e-9)
    table = cam[1]
    np.testing.assert_allclose(table[3:6], [1.2, 0.8, 0.8], atol=1e-12)
    assert table[7] == pytest.approx(25.0, abs=1e-9)
