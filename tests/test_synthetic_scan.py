"""Synthetic videos are room scans that show the room the way a VSI-Bench walk-through does:
free routes (hand-checked on a grid with a wall), smooth steady motion at eye height, and a
rendered room whose video covers >= 0.8 of its floor, so ``video_metric`` asks its area."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from vst.engine.registry import get_task
from vst.scenes import load_scene
from vst.scenes.floor_coverage import clip_floor_coverage
from vst.scenes.sources.synthetic.cameras import (
    MAX_TURN,
    PATH_OBJECT_MARGIN,
    PATH_WALL_MARGIN,
    SCAN_PITCH,
    SCAN_STEP,
    CameraSampler,
)
from vst.scenes.sources.synthetic.config import SynthConfig
from vst.scenes.sources.synthetic.generate import make_layout, write_scenes
from vst.scenes.sources.synthetic.routes import FreeGrid, far_route
from vst.testing.tasks import generate_samples

# -- routes -----------------------------------------------------------------------------------


def _walled_grid() -> FreeGrid:
    """A 4 x 2 m floor (grid step 0.25 m) split by a wall 1.8 < x < 2.2 with a gap at y > 1.5."""

    def free(xy):
        return not (1.8 < xy[0] < 2.2 and xy[1] < 1.5)

    return FreeGrid.build((0.0, 0.0, 4.0, 2.0), free)


def test_route_distances_go_round_the_wall():
    g = _walled_grid()
    assert g.free.shape == (16, 8)
    assert not g.free[7, 0] and not g.free[8, 5] and g.free[7, 6]  # wall at i = 7, 8; gap j >= 6
    dist, _ = g.distances((0, 0))  # from (0.125, 0.125)
    # straight along y = 0.125 up to x = 1.625: 6 steps of 0.25 m
    assert dist[6, 0] == pytest.approx(1.5)
    # just beyond the wall (i = 9): 6 diagonals up to (6, 6), 3 steps through the gap, 6 down
    assert dist[9, 0] == pytest.approx(0.25 * (6 * math.sqrt(2) + 9))
    assert g.clear_line(g.point((0, 0)), g.point((6, 0)))
    assert not g.clear_line(g.point((0, 0)), g.point((15, 0)))


def test_far_route_stays_free_and_within_budget():
    g = _walled_grid()
    rng = np.random.default_rng(3)
    for _ in range(20):
        legs = far_route(g, rng, max_length=3.0)
        assert legs is not None
        length = np.linalg.norm(np.diff(legs, axis=0), axis=1).sum()
        assert 1.5 <= length <= 3.0 + 1e-9
        for a, b in itertools.pairwise(legs):
            assert g.clear_line(a, b)
    assert far_route(g, rng, max_length=1.0) is None  # nothing can walk 1.5 m within 1 m


# -- scans in a real layout (no rendering) ------------------------------------------------------


def test_scans_are_smooth_free_and_deterministic():
    cfg = SynthConfig(seed=3)
    layout, _ = make_layout(cfg, 0)

    def scan(seed):
        sampler = CameraSampler(np.random.default_rng(seed), layout, probe=None)
        return sampler, sampler.video(16)

    sampler, (poses, kind) = scan(1)
    assert kind == "scan" and len(poses) == 16
    yaws = []
    for T in poses:
        eye, fwd = T[:3, 3], T[:3, 2]
        assert 1.2 <= eye[2] <= 1.8
        assert sampler.free_at(eye[:2], PATH_WALL_MARGIN, PATH_OBJECT_MARGIN)
        pitch = math.degrees(math.asin(-fwd[2]))
        assert SCAN_PITCH[0] - 1e-6 <= pitch <= SCAN_PITCH[1] + 1e-6
        assert abs(T[:3, 0] @ [0, 0, 1]) < 1e-9  # no roll: the image stays upright
        yaws.append(math.atan2(fwd[1], fwd[0]))
    turns = np.degrees(np.diff(np.unwrap(yaws)))
    np.testing.assert_allclose(np.abs(turns), 170.0 / 15, atol=1e-6)  # <= MAX_TURN per frame
    assert math.degrees(MAX_TURN) > 170.0 / 15
    assert len(set(np.sign(turns))) == 1  # one steady turn of 170 degrees
    steps = np.linalg.norm(np.diff([T[:2, 3] for T in poses], axis=0), axis=1)
    assert steps.max() <= SCAN_STEP + 1e-9
    again = scan(1)[1][0]
    assert all(np.array_equal(a, b) for a, b in zip(poses, again, strict=True))


# -- a rendered room ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    """Scene 0 of seed 10 with the demo's views (3 single, one pair, 16 video frames) at
    160x120."""
    cfg = SynthConfig(
        seed=10, width=160, height=120, single_views=3, multiview_sets=1, video_frames=16
    )
    return load_scene(write_scenes(cfg, tmp_path_factory.mktemp("scan"))[0])


def test_rendered_scan_covers_the_floor_and_room_area_is_asked(scanned):
    video = sorted((f for f in scanned.frames if f.timestamp is not None), key=lambda f: f.id)
    assert len(video) == 16
    assert scanned.attributes["synthetic"]["frames"]["video"]["kind"] == "scan"
    assert scanned.attributes["synthetic"]["version"] == 2
    cover = clip_floor_coverage(scanned.room, scanned.boxes, video, [f.load_depth() for f in video])
    assert cover >= 0.8
    rows = generate_samples(get_task("video_metric"), [scanned], per_scene=12)
    rooms = [s for _, s in rows if any(t["kind"] == "room" for t in s.meta["turns"])]
    assert len(rooms) == 1  # one room fact per clip
    assert rooms[0].meta["floor_coverage"] == pytest.approx(cover, abs=1e-3)
    turn = next(t for t in rooms[0].meta["turns"] if t["kind"] == "room")
    assert turn["value_exact"] == pytest.approx(scanned.room.area)


def test_scenes_of_an_older_generator_are_remade(tmp_path):
    """A rerun keeps finished scenes of this generator version but remakes older ones (their
    videos are not scans)."""
    import json

    cfg = SynthConfig(seed=2, width=64, height=48, single_views=1, multiview_sets=0, video_frames=0)
    calls: list[bool] = []
    (path,) = write_scenes(cfg, tmp_path, on_scene=lambda p, skipped: calls.append(skipped))
    write_scenes(cfg, tmp_path, on_scene=lambda p, skipped: calls.append(skipped))
    rec = json.loads((path / "scene.json").read_text(encoding="utf-8"))
    rec["attributes"]["synthetic"]["version"] = 1
    (path / "scene.json").write_text(json.dumps(rec), encoding="utf-8")
    write_scenes(cfg, tmp_path, on_scene=lambda p, skipped: calls.append(skipped))
    assert calls == [False, True, False]
    assert load_scene(path).attributes["synthetic"]["version"] == 2
