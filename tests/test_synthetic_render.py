"""Synthetic source with MuJoCo rendering: ground truth agrees with the renders, determinism,
GL backend errors. Images are small (160x120) to keep the suite fast."""

from __future__ import annotations

import ctypes.util
import hashlib
import itertools
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from vst.geometry.boxes import box3d_corners
from vst.geometry.cameras import depth_to_points, rotation_to_pan_tilt_roll
from vst.scenes import load_scene, scene_problems
from vst.scenes.annotate import (
    points_in_convex,
    projected_box_hull,
    truncation,
)
from vst.scenes.sources.synthetic.config import SynthConfig
from vst.scenes.sources.synthetic.generate import make_layout, write_scenes
from vst.scenes.sources.synthetic.render import (
    MujocoRenderer,
    RenderBackendError,
    backend_error,
    intrinsics_matrix,
)

W, H = 160, 120
SMALL = {"width": W, "height": H, "single_views": 2, "multiview_sets": 1, "views_per_set": 2,
         "video_frames": 6}  # fmt: skip


@pytest.fixture(scope="module")
def renderer():
    with MujocoRenderer(W, H) as r:
        yield r


@pytest.fixture(scope="module")
def scenes(tmp_path_factory, renderer):
    out = tmp_path_factory.mktemp("synth")
    cfg = SynthConfig(seed=11, num_scenes=3, **SMALL)
    paths = write_scenes(cfg, out)
    return [load_scene(p) for p in paths]


def _frames(scenes):
    for s in scenes:
        for f in s.frames:
            yield s, f


def test_scenes_are_valid_and_complete(scenes):
    for s in scenes:
        assert scene_problems(s) == []
        assert s.source == "synthetic" and s.room is not None
        assert 2.4 <= s.room.height <= 3.2
        kinds = [f.id.split("_")[0] for f in s.frames]
        assert kinds.count("single") == 2 and kinds.count("mv00") == 2
        assert kinds.count("video") == 6
        for o in s.objects:
            assert o.attributes["axes"] == "x=front, y=left, z=up"
        for f in s.frames:
            assert (f.width, f.height) == (W, H)
            np.testing.assert_allclose(
                f.K, intrinsics_matrix(W, H, s.attributes["synthetic"]["vfov_deg"])
            )
            assert f.load_image().shape == (H, W, 3)
            assert f.load_depth().dtype == np.float32


def test_single_views_at_eye_height_see_several_objects(scenes):
    for _s, f in _frames(scenes):
        if f.id.startswith("single"):
            assert 1.2 <= f.cam_to_world[2, 3] <= 1.8
            assert len(f.visible_pixels) >= 3


def test_visible_pixels_and_truncation_match_the_masks(scenes):
    for s, f in _frames(scenes):
        mask = f.load_mask()
        ids, counts = np.unique(mask[mask > 0], return_counts=True)
        assert f.visible_pixels == dict(zip(ids.tolist(), counts.tolist(), strict=True))
        assert set(f.truncation) == set(f.visible_pixels)
        for k, t in f.truncation.items():
            assert 0.0 <= t <= 1.0
            expected = truncation(s.object(k).box, f.world_to_cam, f.K, W, H)
            assert math.isclose(t, expected, abs_tol=1e-5)
    # some object somewhere is cut by the image border
    assert any(t > 0.05 for _, f in _frames(scenes) for t in f.truncation.values())


def test_projected_boxes_contain_the_instance_masks(scenes):
    """For every object visible in a frame, >= 99% of its mask pixels lie inside its projected
    3D box."""
    checked = 0
    for s, f in _frames(scenes):
        mask = f.load_mask()
        for oid in f.visible_pixels:
            rows, cols = np.nonzero(mask == oid)
            hull = projected_box_hull(s.object(oid).box, f.world_to_cam, f.K)
            inside = points_in_convex(hull, np.stack([cols, rows], axis=1).astype(float))
            assert inside.mean() >= 0.99, (s.id, f.id, oid, inside.mean())
            checked += 1
    assert checked > 50


def test_depth_points_lie_inside_their_boxes(scenes):
    """Unprojected depth of each visible object lies in its box (>= 95%, 2 cm margin)."""
    for s, f in _frames(scenes):
        depth, mask = f.load_depth(), f.load_mask()
        for oid in f.visible_pixels:
            pts, _ = depth_to_points(depth, f.K, mask == oid)
            world = pts @ f.cam_to_world[:3, :3].T + f.cam_to_world[:3, 3]
            box = s.object(oid).box
            R = box3d_corners(box)[0]
            # local coordinates: project onto the box axes
            axes = np.stack([R[1] - R[0], R[3] - R[0], R[4] - R[0]])
            axes /= np.linalg.norm(axes, axis=1, keepdims=True)
            local = (world - box[:3]) @ axes.T
            inside = np.all(np.abs(local) <= box[3:6] / 2 + 0.02, axis=1)
            assert inside.mean() >= 0.95, (s.id, f.id, oid, inside.mean())


def test_depth_and_mask_equal_the_rendered_geometry(scenes, renderer):
    """Ray casting the MuJoCo model through every pixel centre gives the same z-depth and the
    same object as the GL render (away from edges, where a pixel straddles two surfaces)."""
    s = scenes[0]
    from vst.scenes.sources.synthetic.mjcf import build_mjcf, sample_style

    cfg = SynthConfig(seed=11, **SMALL)
    layout, rngs = make_layout(cfg, 0)
    renderer.load(
        build_mjcf(layout.room, layout.objects, sample_style(rngs["style"], layout.room), W, H)
    )
    vv, uu = np.mgrid[0:H, 0:W]
    uv = np.stack([uu.ravel(), vv.ravel()], axis=1).astype(float)
    for f in s.frames[:4]:
        ids, z = renderer.raycast(f.cam_to_world, f.K, uv)
        depth, mask = f.load_depth().ravel(), f.load_mask().ravel()
        rel = np.abs(z - depth) / np.maximum(z, 1e-6)
        assert np.mean(rel < 1e-3) >= 0.97, np.mean(rel < 1e-3)
        assert np.median(rel) < 1e-4
        assert np.mean(ids == mask) >= 0.97


def test_depth_is_z_depth_not_ray_length():
    """A camera facing a wall 2.5 m away: the depth map is 2.5 everywhere (ray length would grow
    toward the corners)."""
    xml = f"""<mujoco><visual><global offwidth="{W}" offheight="{H}"/>
    <map znear="0.03" zfar="40"/></visual><statistic extent="1"/>
    <worldbody><light pos="0 0 3"/><camera name="cam" pos="0 0 0" fovy="60"/>
    <geom name="wall" type="box" size="0.05 10 10" pos="2.55 0 0"/></worldbody></mujoco>"""
    with MujocoRenderer(W, H) as r:
        r.load(xml)
        T = np.eye(4)
        T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)  # looks along +X
        _rgb, depth, mask = r.render(T, 60.0)
        np.testing.assert_allclose(depth, 2.5, rtol=2e-5)
        assert (mask == 0).all()
        # the analytic ray length at a corner would be much larger than the z-depth
        K = intrinsics_matrix(W, H, 60.0)
        ray = np.linalg.inv(K) @ [0.0, 0.0, 1.0]
        assert 2.5 * np.linalg.norm(ray) > 2.5 * 1.1


def test_intrinsics_match_the_renderer():
    """A small box at a known point projects where K says (mask centroid within 0.5 px)."""
    xml = f"""<mujoco><visual><global offwidth="{W}" offheight="{H}"/>
    <map znear="0.03" zfar="40"/></visual><statistic extent="1"/>
    <worldbody><camera name="cam" pos="0 0 0"/>
    <geom name="obj1_0" type="box" size="0.04 0.04 0.04" pos="3 0.4 -0.25"/></worldbody></mujoco>"""
    with MujocoRenderer(W, H) as r:
        r.load(xml)
        T = np.eye(4)
        T[:3, :3] = np.array([[0, 0, 1], [-1, 0, 0], [0, -1, 0]], dtype=float)
        _, depth, mask = r.render(T, 50.0)
        K = intrinsics_matrix(W, H, 50.0)
        p_cam = T[:3, :3].T @ np.array([3.0, 0.4, -0.25])
        uv = (K @ p_cam)[:2] / p_cam[2]
        rows, cols = np.nonzero(mask == 1)
        assert abs(cols.mean() - uv[0]) < 0.5 and abs(rows.mean() - uv[1]) < 0.5
        np.testing.assert_allclose(depth[mask == 1].min(), 2.96, atol=1e-3)


def test_multiview_motion_and_overlap(scenes):
    for s in scenes:
        mv = s.attributes["synthetic"]["frames"]["multiview"][0]
        a, b = (s.frame(fid) for fid in mv["frames"])
        motion = mv["motions"][0]
        assert motion["kind"]
        assert motion["shared"] and motion["unique"], "shared and view-unique objects"
        rel = np.linalg.inv(a.cam_to_world) @ b.cam_to_world
        np.testing.assert_allclose(
            rotation_to_pan_tilt_roll(rel[:3, :3]), motion["relative_pan_tilt_roll_deg"], atol=1e-3
        )


def test_video_is_smooth(scenes):
    for s in scenes:
        video = [f for f in s.frames if f.id.startswith("video")]
        ts = [f.timestamp for f in video]
        assert ts == sorted(ts) and ts[0] == 0.0
        for a, b in itertools.pairwise(video):
            rel = np.linalg.inv(a.cam_to_world) @ b.cam_to_world
            assert np.linalg.norm(rel[:3, 3]) < 0.5
            angle = np.degrees(np.arccos(np.clip((np.trace(rel[:3, :3]) - 1) / 2, -1, 1)))
            assert angle < 20


def _digest(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_same_seed_same_bytes_different_seed_differs(tmp_path):
    small = {**SMALL, "video_frames": 3, "single_views": 1}
    a = write_scenes(SynthConfig(seed=5, num_scenes=2, **small), tmp_path / "a")
    b = write_scenes(SynthConfig(seed=5, num_scenes=1, start_index=1, **small), tmp_path / "b")
    c = write_scenes(SynthConfig(seed=6, num_scenes=1, start_index=1, **small), tmp_path / "c")
    assert _digest(a[1]) == _digest(b[0]), "scene 1 is the same bytes whatever num_scenes is"
    assert len(_digest(b[0])) > 5
    da, dc = _digest(a[1]), _digest(c[0])
    assert da["scene.json"] != dc["scene.json"]
    assert da["images/single_000.png"] != dc["images/single_000.png"]


def test_rerun_skips_finished_scenes(tmp_path):
    cfg = SynthConfig(seed=2, num_scenes=1, **{**SMALL, "video_frames": 0, "multiview_sets": 0})
    calls = []
    write_scenes(cfg, tmp_path, on_scene=lambda p, skipped: calls.append(skipped))
    write_scenes(cfg, tmp_path, on_scene=lambda p, skipped: calls.append(skipped))
    assert calls == [False, True]


def test_backend_error_names_the_fix():
    msg = str(backend_error("libEGL.so.1: cannot open shared object file"))
    for needle in ("MUJOCO_GL=egl", "libegl1", "libegl-mesa0", "MUJOCO_GL=osmesa", "libosmesa6"):
        assert needle in msg


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full, timeout=120
    )


def test_bad_gl_backend_gives_a_clear_error():
    code = (
        "from vst.scenes.sources.synthetic.render import MujocoRenderer, RenderBackendError\n"
        "try:\n    MujocoRenderer(32, 24)\nexcept RenderBackendError as e:\n    print(e)\n"
    )
    res = _run(code, MUJOCO_GL="no-such-backend")
    assert "MUJOCO_GL" in res.stdout and "libosmesa6" in res.stdout, res.stdout + res.stderr


@pytest.mark.skipif(ctypes.util.find_library("OSMesa") is not None, reason="OSMesa installed")
def test_missing_osmesa_gives_a_clear_error():
    code = (
        "from vst.scenes.sources.synthetic.render import MujocoRenderer, RenderBackendError\n"
        "try:\n    MujocoRenderer(32, 24)\nexcept RenderBackendError as e:\n    print(e)\n"
    )
    res = _run(code, MUJOCO_GL="osmesa")
    assert "MUJOCO_GL=osmesa" in res.stdout and "libosmesa6" in res.stdout, res.stdout


def test_importing_vst_does_not_import_mujoco():
    res = _run(
        "import sys, vst, vst.cli, vst.scenes.sources.synthetic\nprint('mujoco' in sys.modules)"
    )
    assert res.stdout.strip() == "False", res.stderr


def test_render_backend_error_is_a_runtime_error():
    assert issubclass(RenderBackendError, RuntimeError)


@pytest.mark.slow
def test_ground_truth_agrees_at_full_resolution(tmp_path):
    """The default 640x480 config: every visible object's mask lies in its projected box
    (>= 99%) and its depth points in its box (>= 95%, 2 cm)."""
    (path,) = write_scenes(SynthConfig(seed=21), tmp_path)
    s = load_scene(path)
    assert scene_problems(s) == []
    for f in s.frames:
        mask, depth = f.load_mask(), f.load_depth()
        assert mask.shape == (480, 640)
        for oid in f.visible_pixels:
            box = s.object(oid).box
            rows, cols = np.nonzero(mask == oid)
            hull = projected_box_hull(box, f.world_to_cam, f.K)
            assert points_in_convex(hull, np.stack([cols, rows], 1).astype(float)).mean() >= 0.99
            pts, _ = depth_to_points(depth, f.K, mask == oid)
            world = pts @ f.cam_to_world[:3, :3].T + f.cam_to_world[:3, 3]
            c = box3d_corners(box)[0]
            axes = np.stack([c[1] - c[0], c[3] - c[0], c[4] - c[0]])
            axes /= np.linalg.norm(axes, axis=1, keepdims=True)
            local = (world - box[:3]) @ axes.T
            assert np.all(np.abs(local) <= box[3:6] / 2 + 0.02, axis=1).mean() >= 0.95
