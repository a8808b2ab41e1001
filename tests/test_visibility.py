"""Visible fractions and the occlusion rule on a hand-built, ray-cast scene.

The scene (world Z up, metres), seen by level cameras at (0, 0, 1) looking along +Y (320x240,
f = 200 px, principal point (159.5, 119.5)):

* a "sink" box (id 1) with its front face at y = 4, x in [-1, 1], z in [0.56, 1.44]: the camera
  sees only that face, columns 110..209 (100) x rows 98..141 (44);
* a "panel" box (id 4) with its front face at y = 3 and x >= -0.59625 stands in front of it:
  its left edge projects to u = 159.5 + 200 * (-0.59625) / 3 = 119.75, so it hides columns
  120..209 of the sink and 10 of its 100 columns show: the sink is 10% visible (440 pixels);
* a second "sink" (id 2), a 0.6 m cube left of the panel, nothing in front: fully visible;
* a "chair" (id 3) built from legs, a seat and a back (its box is the bounding box): the floor and
  the back wall show through its gaps, nothing stands in front of it;
* the floor and a back wall (y = 9) are background (mask 0).
"""

from __future__ import annotations

import numpy as np
import pytest

from vst.engine.context import EngineContext, EngineSettings, FrameView, visible_fractions
from vst.engine.registry import get_task
from vst.engine.tasks.video._clips import label_sightings
from vst.scenes.annotate import annotate_frame
from vst.scenes.model import Frame, Object3D, Scene
from vst.testing.raycast import FLOOR, Plane, cast, look_at, pixel_rays
from vst.testing.tasks import generate_samples

W, H = 320, 240
K = np.array([[200.0, 0.0, 159.5], [0.0, 200.0, 119.5], [0.0, 0.0, 1.0]])
CAM = look_at((0.0, 0.0, 1.0), (0.0, 5.0, 1.0))
X_PANEL = (119.75 - 159.5) * 3.0 / 200.0  # -0.59625

SINK_HIDDEN = [0.0, 4.5, 1.0, 2.0, 1.0, 0.88, 0.0, 0.0, 0.0]
SINK_SEEN = [-2.0, 5.4, 1.0, 0.6, 0.6, 0.6, 0.0, 0.0, 0.0]
PANEL = [(X_PANEL + 6.0) / 2, 3.05, 1.5, 6.0 - X_PANEL, 0.1, 3.0, 0.0, 0.0, 0.0]
CHAIR = [-3.0, 4.5, 0.5, 0.6, 0.6, 1.0, 0.0, 0.0, 0.0]
CHAIR_PARTS = [  # (lo, hi) axis-aligned parts inside the chair's box
    *(((x, y, 0.0), (x + 0.05, y + 0.05, 0.45)) for x in (-3.3, -2.75) for y in (4.2, 4.75)),
    ((-3.3, 4.2, 0.45), (-2.7, 4.8, 0.5)),  # seat
    ((-3.3, 4.75, 0.5), (-2.7, 4.8, 1.0)),  # back
]
BACK_WALL = Plane((0.0, 1.0, 0.0), 9.0)


def _render(cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(depth, mask) of the scene from a camera (ray cast at every pixel centre)."""
    origin, dirs = pixel_rays(K, W, H, cam_to_world)
    boxes = np.array([SINK_HIDDEN, SINK_SEEN, PANEL])
    t, index = cast(origin, dirs, boxes, planes=[FLOOR, BACK_WALL], aabbs=CHAIR_PARTS)
    # surfaces: 0-1 planes, 2-4 the boxes (ids 1, 2, 4), 5.. chair parts (id 3)
    ids = np.array([0, 0, 0, 1, 2, 4] + [3] * len(CHAIR_PARTS), dtype=np.int32)
    return np.where(np.isfinite(t), t, 0.0).astype(np.float32), ids[index + 1]


def make_scene(n_frames: int = 5, depth: bool = True, mask: bool = True) -> Scene:
    """The scene with ``n_frames`` frames from the same pose, timestamped 0, 1, ... s."""
    objects = [
        Object3D(1, "sink", SINK_HIDDEN),
        Object3D(2, "sink", SINK_SEEN),
        Object3D(3, "chair", CHAIR),
        Object3D(4, "panel", PANEL),
    ]
    d, m = _render(CAM)
    frames = []
    for k in range(n_frames):
        frame = Frame(
            f"f{k}",
            K,
            W,
            H,
            CAM,
            timestamp=float(k),
            image=np.full((H, W, 3), 128, dtype=np.uint8),
            depth=d if depth else None,
            mask=m if mask else None,
        )
        annotate_frame(frame, objects, m)  # visible_pixels from the mask, truncation
        frames.append(frame)
    return Scene("occlusion", "test", frames=frames, objects=objects)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


def test_the_rendering_is_what_the_docstring_says(scene):
    frame = scene.frames[0]
    mask = frame.load_mask()
    rows, cols = np.nonzero(mask == 1)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (98, 141, 110, 119)
    assert frame.visible_pixels[1] == 10 * 44
    assert np.all(mask[98:142, 120:210] == 4)  # the panel covers the rest of the sink


def test_fraction_of_a_hidden_a_seen_and_a_see_through_object(scene):
    view = FrameView(scene, scene.frames[0], EngineSettings())
    # 10 of 100 columns; the silhouette is sampled every 3rd pixel here (4,692 cells > 1,024)
    assert view.visible_fraction(1) == pytest.approx(0.1, abs=0.01)
    assert view.visible_fraction(2) == pytest.approx(1.0)
    chair_pixels = view.pixel_counts[3]
    assert chair_pixels < 0.6 * 45 * 48  # the gaps show the floor and the wall behind
    assert view.visible_fraction(3) == pytest.approx(1.0)
    assert view.visible_fraction(99) == 0.0  # not in the frame


def test_mask_without_depth_finds_the_same_occluder():
    no_depth = make_scene(1, depth=False)
    view = EngineContext().view(no_depth, no_depth.frames[0])
    assert view.depth is None and view.mask is not None
    assert view.visible_fraction(1) == pytest.approx(0.1, abs=0.01)
    assert view.visible_fraction(2) == pytest.approx(1.0)
    assert view.visible_fraction(3) == pytest.approx(1.0)


def test_fallbacks_without_pixels():
    # visible_pixels only: visible / the in-image silhouette area (440 / 4,400)
    bare = make_scene(1, depth=False, mask=False)
    view = EngineContext().view(bare, bare.frames[0])
    assert view.mask is None and view.depth is None
    assert view.visible_fraction(1) == pytest.approx(0.1, abs=0.01)
    assert view.visible_fraction(2) == pytest.approx(1.0, abs=0.05)
    # a single image with Omni3D's visibility annotation: that value
    bare.objects[0].attributes["visibility"] = 0.3
    assert EngineContext().view(bare, bare.frames[0]).visible_fraction(1) == 0.3


def test_visible_ids_drop_the_mostly_hidden_object(scene):
    frame = scene.frames[0]
    # the pixel and truncation rules alone keep the hidden sink (440 pixels >= 400)
    pixels_only = EngineSettings(min_visible_fraction=0.0)
    assert FrameView(scene, frame, pixels_only).visible_ids == [1, 2, 3]
    assert FrameView(scene, frame, EngineSettings()).visible_ids == [2, 3]  # panel: truncated


def test_sightings_treat_the_hidden_instance_as_a_glimpse(scene):
    views = [FrameView(scene, f, EngineSettings()) for f in scene.frames]
    sights = label_sightings(views, clear=400, faint=50, min_fraction=0.5)
    assert sights["sink"].clear_ids == (2,)
    assert sights["sink"].faint_ids == (1,) and sights["sink"].ambiguous
    assert sights["chair"].clear_ids == (3,) and not sights["chair"].ambiguous
    assert label_sightings(views, clear=400, faint=50)["sink"].clear_ids == (1, 2)
    assert visible_fractions(views, [1, 3]) == {"1": pytest.approx(0.1, abs=0.01), "3": 1.0}


def test_count_never_counts_the_sink_behind_the_panel(scene):
    task = get_task("video_count")
    samples = generate_samples(task, [scene], 20)
    # one sink clear, one 10% visible: the count is ambiguous, never asked ("2" before)
    assert {s.meta["label"] for _, s in samples} == {"chair", "panel"}
    for sc, s in samples:
        assert s.meta["count"] == 1
        oid = {"chair": "3", "panel": "4"}[s.meta["label"]]
        assert s.meta["visible_fraction"] == {oid: 1.0}
        assert task.derive_answer(sc, s.meta) == s.answer


@pytest.mark.parametrize("name", ["si_det3d", "mi_det3d"])
def test_detection_never_asks_about_the_hidden_sink(scene, name):
    task = get_task(name)
    samples = generate_samples(task, [scene], 8)
    assert samples
    for sc, s in samples:
        labels = {t["label"] for t in s.meta["turns"]}
        assert labels == {"chair"}  # sinks ambiguous (one hidden), the panel truncated
        assert s.meta["visible_fraction"] == {"3": 1.0}
        assert task.derive_answer(sc, s.meta) == s.answer


def test_config_carries_and_bounds_the_setting():
    from vst.engine.config import ConfigError, parse_config

    base = {"output": "out", "sources": [{"kind": "scenes", "path": "x"}]}
    base["tasks"] = [{"name": "si_det3d", "per_scene": 1}]
    assert parse_config(base).settings().min_visible_fraction == 0.5
    assert (
        parse_config({**base, "min_visible_fraction": 0.8}).settings().min_visible_fraction == 0.8
    )
    with pytest.raises(ConfigError, match=r"run\.yaml: min_visible_fraction: .*less than or equal"):
        parse_config({**base, "min_visible_fraction": 1.5}, "run.yaml")


def test_a_depth_map_of_another_size_is_named():
    scene = make_scene(1)
    scene.frames[0].depth = np.zeros((H // 2, W // 2), dtype=np.float32)
    view = EngineContext().view(scene, scene.frames[0])
    with pytest.raises(ValueError, match=r"frame 'f0', field 'depth': shape \(120, 160\)"):
        view.visible_fraction(1)
