"""`vst scenes view`: the Rerun recording of a scene, read back from the .rrd file.

A small hand-made scene (3 frames of 40x30, one without depth, two boxes, one of them tilted)
checks the values exactly; one of the shared synthetic scenes checks a real scene end to end.
"""

from __future__ import annotations

import io
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from rerun.chunk import RrdReader  # the vst[rerun] extra, part of vst[dev]
from typer.testing import CliRunner

from vst.geometry.boxes import box3d_corners
from vst.scenes import Frame, Object3D, Room, Scene
from vst.scenes.cli import app
from vst.scenes.io import load_scene, save_scene
from vst.scenes.rerun_view import (
    CAMERA_PATH,
    IMAGE_PATH,
    OBJECTS_PATH,
    ROOM_PATH,
    RerunMissingError,
    backproject_depth,
    boxes_to_rerun,
    even_subsample,
    points_entity,
    write_scene_recording,
)

W, H = 40, 30
ROW_ID = "rerun.controls.RowId"
K = np.array([[50.0, 0.0, 19.5], [0.0, 55.0, 14.5], [0.0, 0.0, 1.0]])
# camera at (0, -3, 1.2) looking along world +Y: camera X = world +X, Y (down) = world -Z,
# Z (forward) = world +Y (the columns of R are the camera axes in world coordinates)
LEVEL = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, -3.0], [0.0, -1.0, 0.0, 1.2], [0, 0, 0, 1]])


def _turned(yaw_deg: float, t: tuple[float, float, float]) -> np.ndarray:
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = LEVEL.copy()
    T[:3, :3] = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ LEVEL[:3, :3]
    T[:3, 3] = t
    return T


def _depth(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    depth = rng.uniform(1.0, 4.0, (H, W)).astype(np.float32)
    depth[rng.random((H, W)) < 0.2] = 0.0  # unknown pixels
    depth[8, 12] = 2.5  # the hand-checked pixel
    return depth


def make_scene(root: Path) -> Path:
    """Three frames (``a``, ``b`` with depth, ``c`` without), two objects, a room."""
    rng = np.random.default_rng(0)
    poses = [LEVEL, _turned(30.0, (0.5, -2.5, 1.4)), _turned(-20.0, (-0.5, -2.0, 1.0))]
    frames = [
        Frame(
            id=fid,
            K=K,
            width=W,
            height=H,
            cam_to_world=pose,
            image=rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
            depth=_depth(k) if fid != "c" else None,
        )
        for k, (fid, pose) in enumerate(zip("abc", poses, strict=True))
    ]
    objects = [
        Object3D(1, "chair", [0.5, 1.0, 0.45, 0.6, 0.5, 0.9, 0.0, 0.0, 35.0]),
        Object3D(2, "lamp", [-1.0, 2.0, 1.0, 0.3, 0.4, 1.2, 10.0, -20.0, 70.0]),
    ]
    room = Room(floor_polygon=[[-3, -4], [3, -4], [3, 4], [-3, 4]], floor_z=0.0, ceiling_z=2.6)
    scene = Scene(id="hand", source="test", frames=frames, objects=objects, room=room)
    return save_scene(scene, root / "hand")


def read_recording(path: Path) -> dict[str, dict[str, list]]:
    """entity path -> column name -> values over its rows (time columns included), read back
    from the .rrd with rerun's own reader."""
    out: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    for chunk in RrdReader(path).stream().to_chunks():
        batch = chunk.to_record_batch()
        for name, column in zip(batch.schema.names, batch.columns, strict=True):
            out[chunk.entity_path.lstrip("/")][name].extend(column.to_pylist())
    return out


@pytest.fixture(scope="module")
def hand_dir(tmp_path_factory) -> Path:
    return make_scene(tmp_path_factory.mktemp("view"))


@pytest.fixture(scope="module")
def hand_rec(hand_dir, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("rrd") / "hand.rrd"
    summary = write_scene_recording(hand_dir, out, stride=4, max_points=10_000)
    assert summary.frames == 3 and summary.objects == 2
    return out, read_recording(out)


def test_points_are_the_world_back_projection_of_the_depth(hand_dir, hand_rec):
    _, rec = hand_rec
    scene = load_scene(hand_dir)
    a = rec[points_entity("a")]
    assert a["frame"] == [0]
    points = np.array(a["Points3D:positions"][0])
    depth = scene.frame("a").load_depth()
    assert len(points) == int((depth[::4, ::4] > 0).sum())  # every 4th pixel with depth
    # pixel (row 8, col 12), depth 2.5: camera (-0.375, -0.29545, 2.5), by hand through LEVEL
    hand = np.array([-0.375, 2.5 - 3.0, 2.5 * 6.5 / 55.0 + 1.2])
    dist = np.linalg.norm(points - hand, axis=1)
    k = int(np.argmin(dist))
    assert dist[k] < 1e-5
    rgb = scene.frame("a").load_image()[8, 12]
    packed = rec[points_entity("a")]["Points3D:colors"][0][k]  # RGBA packed in a uint32
    assert [(packed >> s) & 0xFF for s in (24, 16, 8, 0)] == [*rgb.tolist(), 255]
    # frame b (turned camera): all points equal an independent back-projection
    b = np.array(rec[points_entity("b")]["Points3D:positions"][0])
    fb = scene.frame("b")
    d = fb.load_depth()
    rows, cols = np.nonzero(d[::4, ::4] > 0)
    rows, cols = rows * 4, cols * 4
    z = d[rows, cols]
    cam = np.stack([(cols - K[0, 2]) * z / K[0, 0], (rows - K[1, 2]) * z / K[1, 1], z], 1)
    expected = cam @ fb.cam_to_world[:3, :3].T + fb.cam_to_world[:3, 3]
    np.testing.assert_allclose(b, expected, atol=1e-5)
    assert points_entity("c") not in rec  # no depth, no cloud


def test_cameras_pinholes_and_images(hand_dir, hand_rec):
    _, rec = hand_rec
    scene = load_scene(hand_dir)
    cam = rec[CAMERA_PATH]
    assert cam["frame"] == [0, 1, 2]
    for i, frame in enumerate(scene.frames):
        # rerun stores 3x3 matrices column-major
        k = np.array(cam["Pinhole:image_from_camera"][i][0]).reshape(3, 3).T
        np.testing.assert_allclose(k, K, atol=1e-6)
        assert cam["Pinhole:resolution"][i] == [[W, H]]
        assert cam["Pinhole:camera_xyz"][i] == [[3, 2, 5]]  # R, D, F: vst's camera axes
        rot = np.array(cam["Transform3D:mat3x3"][i][0]).reshape(3, 3).T
        np.testing.assert_allclose(rot, frame.cam_to_world[:3, :3], atol=1e-6)
        np.testing.assert_allclose(
            cam["Transform3D:translation"][i][0], frame.cam_to_world[:3, 3], atol=1e-6
        )
    images = rec[IMAGE_PATH]
    assert images["frame"] == [0, 1, 2]
    assert images["EncodedImage:media_type"] == [["image/png"]] * 3
    for i, frame in enumerate(scene.frames):
        blob = bytes(images["EncodedImage:blob"][i][0])
        np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(blob))), frame.load_image())
    assert rec["world"]["ViewCoordinates:xyz"] == [[[3, 5, 1]]]  # right-handed, Z up (R, F, U)


def test_boxes_carry_labels_centres_and_the_vst_rotation(hand_dir, hand_rec):
    _, rec = hand_rec
    scene = load_scene(hand_dir)
    boxes = rec[OBJECTS_PATH]
    assert boxes["Boxes3D:labels"] == [["chair", "lamp"]]
    centers = np.array(boxes["Boxes3D:centers"][0])
    np.testing.assert_allclose(centers, [[0.5, 1.0, 0.45], [-1.0, 2.0, 1.0]], atol=1e-6)
    half = np.array(boxes["Boxes3D:half_sizes"][0])
    np.testing.assert_allclose(half, [[0.3, 0.25, 0.45], [0.15, 0.2, 0.6]], atol=1e-6)
    # the box drawn by rerun (centre + quaternion-rotated half sizes) has vst's corners
    quats = np.array(boxes["Boxes3D:quaternions"][0])
    from scipy.spatial.transform import Rotation

    signs = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)])
    for i in range(2):
        drawn = centers[i] + Rotation.from_quat(quats[i]).apply(signs * half[i])
        vst = box3d_corners(scene.objects[i].box)[0]
        gaps = np.linalg.norm(drawn[:, None] - vst[None], axis=2).min(axis=1)
        assert gaps.max() < 1e-5
    # the chair's yaw of 35 degrees about world Z (roll slot in vst's [pitch, yaw, roll])
    np.testing.assert_allclose(
        quats[0], [0, 0, np.sin(np.radians(17.5)), np.cos(np.radians(17.5))], atol=1e-6
    )
    floor = np.array(rec[ROOM_PATH]["LineStrips3D:strips"][0][0])
    assert floor.shape == (5, 3) and np.all(floor[:, 2] == 0.0)


def test_max_points_frames_and_helpers(hand_dir, tmp_path):
    out = tmp_path / "few.rrd"
    summary = write_scene_recording(hand_dir, out, stride=1, max_points=100, frames=["b", "a"])
    assert (summary.frames, summary.points) == (2, 200)
    rec = read_recording(out)
    assert rec[CAMERA_PATH]["frame"] == [0, 1]  # scene order, timeline = index in the scene
    assert len(rec[points_entity("a")]["Points3D:positions"][0]) == 100
    assert even_subsample(10, 4).tolist() == [0, 2, 5, 7]
    assert even_subsample(3, 4).tolist() == [0, 1, 2]
    pts, rows, cols = backproject_depth(np.array([[0.0, 2.0]]), np.eye(3), np.eye(4))
    assert pts.tolist() == [[2.0, 0.0, 2.0]] and (rows.tolist(), cols.tolist()) == ([0], [1])
    c, _, q = boxes_to_rerun(np.zeros((0, 9)))
    assert c.shape == (0, 3) and q.shape == (0, 4)
    with pytest.raises(ValueError, match=r"scene 'hand' has no frame\(s\) 'zz'"):
        write_scene_recording(hand_dir, tmp_path / "x.rrd", frames=["zz"])
    assert not (tmp_path / "x.rrd").exists()


def test_same_options_same_content(hand_dir, hand_rec, tmp_path):
    _, first = hand_rec
    write_scene_recording(hand_dir, tmp_path / "again.rrd", stride=4, max_points=10_000)
    again = read_recording(tmp_path / "again.rrd")

    def content(rec: dict) -> dict:  # all but rerun's random row ids (no wall-clock columns)
        return {e: {c: v for c, v in cols.items() if c != ROW_ID} for e, cols in rec.items()}

    assert content(again) == content(first)
    assert all(set(cols) - {ROW_ID} for cols in first.values())
    assert not any("log_time" in cols or "log_tick" in cols for cols in first.values())


runner = CliRunner()


def test_cli_writes_the_recording_with_options(hand_dir, tmp_path):
    out = tmp_path / "cli.rrd"
    res = runner.invoke(
        app, ["view", str(hand_dir), "--out", str(out), "--frames", "a,c", "--max-points", "7"]
    )
    assert res.exit_code == 0, res.output
    assert "2 frame(s), 7 point(s), 2 object(s)" in res.output
    rec = read_recording(out)
    assert rec[CAMERA_PATH]["frame"] == [0, 2]
    assert len(rec[points_entity("a")]["Points3D:positions"][0]) == 7


def test_cli_errors_are_clear(hand_dir, tmp_path, monkeypatch):
    out = str(tmp_path / "e.rrd")
    res = runner.invoke(app, ["view", str(tmp_path / "nope"), "--out", out])
    assert res.exit_code == 2 and "does not exist" in res.output
    (tmp_path / "empty").mkdir()
    res = runner.invoke(app, ["view", str(tmp_path / "empty"), "--out", out])
    assert res.exit_code == 2 and "not a scene directory" in res.output
    res = runner.invoke(app, ["view", str(hand_dir), "--out", out, "--frames", "a,q"])
    assert res.exit_code == 2 and "--frames: scene 'hand' has no frame(s) 'q'" in res.output
    res = runner.invoke(app, ["view", str(hand_dir), "--out", str(tmp_path)])
    assert res.exit_code == 2 and "is a folder" in res.output
    res = runner.invoke(app, ["view", str(hand_dir), "--out", out, "--max-points", "0"])
    assert res.exit_code == 2
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "scene.json").write_text('{"format": "vst-scene", "version": 1, "id": 3}')
    res = runner.invoke(app, ["view", str(broken), "--out", out])
    assert res.exit_code == 1 and "field 'id'" in res.output
    assert not Path(out).exists()
    monkeypatch.setitem(__import__("sys").modules, "rerun", None)  # as if not installed
    with pytest.raises(RerunMissingError, match=r"vst\[rerun\]"):
        write_scene_recording(hand_dir, out)
    res = runner.invoke(app, ["view", str(hand_dir), "--out", out])
    assert res.exit_code == 2 and "pip install 'vst[rerun]'" in res.output


def test_a_synthetic_scene(engine_scene_dirs, tmp_path):
    scene = load_scene(engine_scene_dirs[0])
    out = tmp_path / "synth.rrd"
    summary = write_scene_recording(scene, out, max_points=500)
    rec = read_recording(out)
    assert rec[CAMERA_PATH]["frame"] == list(range(len(scene.frames)))
    assert rec[OBJECTS_PATH]["Boxes3D:labels"] == [scene.labels]
    np.testing.assert_allclose(
        rec[OBJECTS_PATH]["Boxes3D:centers"][0], scene.boxes[:, :3], atol=1e-5
    )
    clouds = [points_entity(f.id) for f in scene.frames if f.depth is not None]
    assert clouds and all(len(rec[c]["Points3D:positions"][0]) == 500 for c in clouds)
    assert summary.points == 500 * len(clouds)
    # the points of a frame lie inside the room (a rendered room: walls, floor and objects)
    pts = np.concatenate([np.array(rec[c]["Points3D:positions"][0]) for c in clouds])
    lo, hi = scene.room.floor_polygon.min(0), scene.room.floor_polygon.max(0)
    assert np.all(pts[:, :2] >= lo - 0.05) and np.all(pts[:, :2] <= hi + 0.05)
    assert np.all(pts[:, 2] >= scene.room.floor_z - 0.05)


def test_an_in_memory_scene_and_a_frame_without_image(tmp_path):
    """A Scene built in memory (pixel arrays, no files) logs raw images; a frame with no
    image still gets its camera and an uncoloured cloud; progress is reported per frame."""
    depth = np.full((H, W), 2.0, dtype=np.float32)
    rgb = np.zeros((H, W, 3), dtype=np.uint8)
    rgb[..., 0] = 200
    frames = [
        Frame(id="m0", K=K, width=W, height=H, cam_to_world=LEVEL, image=rgb, depth=depth),
        Frame(id="m1", K=K, width=W, height=H, cam_to_world=LEVEL, depth=depth),
    ]
    seen: list[str] = []
    scene = Scene(id="mem", source="test", frames=frames)
    summary = write_scene_recording(scene, tmp_path / "m.rrd", stride=10, on_frame=seen.append)
    assert seen == ["m0", "m1"] and (summary.points, summary.objects) == (24, 0)
    rec = read_recording(tmp_path / "m.rrd")
    assert rec[IMAGE_PATH]["frame"] == [0]  # only m0 has an image
    buffer = np.array(rec[IMAGE_PATH]["Image:buffer"][0][0], dtype=np.uint8)
    np.testing.assert_array_equal(buffer.reshape(H, W, 3), rgb)
    assert rec[points_entity("m0")]["Points3D:colors"][0][0] == (200 << 24) | 255
    assert "Points3D:colors" not in rec[points_entity("m1")]
    assert OBJECTS_PATH not in rec and ROOM_PATH not in rec
    # every point lies 2 m in front of the camera: world y = -3 + 2
    pts = np.array(rec[points_entity("m1")]["Points3D:positions"][0])
    np.testing.assert_allclose(pts[:, 1], -1.0, atol=1e-6)
