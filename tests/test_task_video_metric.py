"""video_metric: sizes, closest-point and centre distances and room areas recomputed here from the
world boxes and the floor polygon (shoelace written out), rounding, units, unique visible
objects, rooms only when the clip covers the floor, no fact asked twice per clip, VSI-Bench
wording, determinism, phrasing variety."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest

from test_task_video_rel_direction import generate, make_video_scene, turns, unique_visible
from vst.engine.config import parse_config
from vst.engine.context import EngineContext, EngineSettings
from vst.engine.registry import get_task
from vst.engine.tasks.video._clips import scene_clip
from vst.engine.tasks.video.metric import TEMPLATES, VideoMetric, metric_value
from vst.scenes.model import Frame, Object3D, Room, Scene


def shoelace(poly) -> float:
    """Area of a simple polygon given as (x, y) vertices."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(poly, [*poly[1:], poly[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def half_up(x: float, decimals: int = 0) -> float:
    return math.floor(x * 10**decimals + 0.5) / 10**decimals


def layout(seed: int, n: int = 8):
    """Objects in quarter turns (world-axis-aligned boxes: their closest-point distance is the
    axis-aligned gap written out in :func:`aabb_gap`)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-3.5, 3.5, 2)
        size = rng.uniform(0.1, 2.0, 3)
        yaw = float(rng.choice([0.0, 90.0, 180.0, -90.0]))
        out.append((f"obj{i}", [x, y, size[2] / 2, *size, 0, 0, yaw]))
    out.append(("tiny", [0.5, -2.5, 0.02, 0.03, 0.02, 0.04, 0, 0, 0]))  # below 5 cm
    out += [("pair", [2.0, 2.0, 0.4, 0.5, 0.5, 0.8, 0, 0, 0])] * 2  # repeated label
    return out


def aabb_gap(a, b) -> float:
    """Closest-point distance of two boxes turned by a multiple of 90 degrees about Z."""

    def extent(box):
        sx, sy, sz = box[3:6]
        if round(box[8]) % 180 == 90:
            sx, sy = sy, sx
        half = np.array([sx, sy, sz]) / 2
        return box[:3] - half, box[:3] + half

    (lo_a, hi_a), (lo_b, hi_b) = extent(a), extent(b)
    return float(np.linalg.norm(np.maximum(0.0, np.maximum(lo_b - hi_a, lo_a - hi_b))))


L_ROOM = Room(floor_polygon=[[-4, -4], [4, -4], [4, 1], [1, 1], [1, 4], [-4, 4]])
"""L-shaped room: 8 x 8 minus a 3 x 3 corner = 55 m^2."""

HAND_SCENES = [
    make_video_scene(layout(0), scene_id="metric0", room=L_ROOM),
    make_video_scene(
        layout(1), scene_id="metric1", room=Room([[-3, -3], [3, -3], [3, 2], [-3, 2]])
    ),
    make_video_scene(layout(2), scene_id="metric2"),  # no room: no room questions
]
"""Panning videos without depth: their floor coverage is 0, so no room questions."""
PER_SCENE = 400


@pytest.fixture(scope="module")
def samples():
    return generate(get_task("video_metric"), HAND_SCENES, PER_SCENE)


def expected(scene, kind, ids):
    """(exact value, stated value, answer text) recomputed from the scene."""
    if kind == "size":
        exact = max(scene.object(ids[0]).box[3:6]) * 100
        return exact, int(half_up(exact)), f"{int(half_up(exact))} cm"
    if kind == "distance":
        exact = aabb_gap(scene.object(ids[0]).box, scene.object(ids[1]).box)
        return exact, half_up(exact, 1), f"{half_up(exact, 1):.1f} m"
    if kind == "center_distance":
        a, b = (scene.object(o).box[:3] for o in ids)
        exact = math.dist(a, b)
        return exact, half_up(exact, 1), f"{half_up(exact, 1):.1f} m"
    exact = shoelace([tuple(p) for p in scene.room.floor_polygon])
    return exact, half_up(exact, 1), f"{half_up(exact, 1):.1f} square meters"


# -- overhead videos with depth: floor coverage known by construction ---------------------------

DOWN = np.array([[1.0, 0, 0], [0, -1.0, 0], [0, 0, -1.0]])
"""Camera looking straight down (columns: camera X = world +X, Y = world -Y, Z = world -Z)."""
K_OVER = np.array([[60.0, 0, 19.5], [0, 60.0, 19.5], [0, 0, 1]])
"""40 x 40 pixels; from 3 m up a frame shows exactly a 2 x 2 m floor square."""


def overhead_scene(centres, scene_id: str, objects=(), depth: bool = True) -> Scene:
    """A video of overhead frames 3 m above the floor of the room [-2, 2]^2 (16 m^2), one per
    ``centres`` (x, y) (each frame shows the 2 x 2 m square around it); z-depth 3 m everywhere
    (no objects are tall enough to matter). Objects get 1000 pixels in every frame."""
    frames = []
    for k, (x, y) in enumerate(centres):
        pose = np.eye(4)
        pose[:3, :3], pose[:3, 3] = DOWN, [x, y, 3.0]
        frames.append(
            Frame(
                id=f"over_{k:03d}",
                K=K_OVER,
                width=40,
                height=40,
                cam_to_world=pose,
                timestamp=0.5 * k,
                image=np.zeros((40, 40, 3), np.uint8),
                depth=np.full((40, 40), 3.0, np.float32) if depth else None,
                mask=np.zeros((40, 40), np.int32),
                visible_pixels={i + 1: 1000 for i in range(len(objects))},
            )
        )
    objs = [Object3D(i + 1, label, np.array(box, float)) for i, (label, box) in enumerate(objects)]
    room = Room([[-2, -2], [2, -2], [2, 2], [-2, 2]])
    return Scene(id=scene_id, source="test", frames=frames, objects=objs, room=room)


QUARTERS = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
EAST_HALF = [(1, -1), (1, -0.5), (1, 0.5), (1, 1)]


def test_room_area_only_when_the_clip_covers_the_floor():
    task = get_task("video_metric")
    full = overhead_scene(QUARTERS, "cover_full")
    half = overhead_scene(EAST_HALF, "cover_half")
    blind = overhead_scene(QUARTERS, "cover_nodepth", depth=False)
    ctx = EngineContext()
    assert task.floor_coverage(full, scene_clip(full), ctx) == 1.0
    assert task.floor_coverage(half, scene_clip(half), ctx) == 0.5
    assert task.floor_coverage(blind, scene_clip(blind), ctx) == 0.0
    out = generate(task, [full, half, blind], 5)
    by_scene = Counter(scene.id for scene, _ in out)
    assert by_scene == {"cover_full": 1}  # the room is the only fact; asked once
    ((_, s),) = out
    assert s.meta["floor_coverage"] == 1.0
    assert s.meta["turns"][0]["kind"] == "room" and s.answer == "16.0 square meters"
    assert task.derive_answer(full, s.meta) == s.answer


def test_coverage_threshold_is_an_engine_setting():
    half = overhead_scene(EAST_HALF, "cover_half_lenient")
    lenient = EngineContext(EngineSettings(min_floor_coverage=0.5))
    out = generate(VideoMetric(), [half], 5, ctx=lenient)
    assert [s.meta["floor_coverage"] for _, s in out] == [0.5]
    assert EngineSettings().min_floor_coverage == 0.8
    assert not generate(VideoMetric(), [half], 5, ctx=EngineContext())
    config = parse_config(
        {
            "output": "o",
            "sources": [{"kind": "synthetic", "num_scenes": 1}],
            "tasks": [{"name": "video_metric", "per_scene": 1}],
            "min_floor_coverage": 0.5,
        },
        "test",
    )
    assert config.settings().min_floor_coverage == 0.5


def test_closest_point_and_centre_distances_of_hand_placed_boxes():
    objects = [
        ("crate", [0, 0, 0.5, 1, 1, 1, 0, 0, 0]),
        ("shelf", [3, 2, 0.5, 1, 2, 1, 0, 0, 0]),  # gap (2.0, 0.5, 0): sqrt(4.25)
        ("drum", [2, 0, 0.5, 1, 1, 1, 0, 0, 45]),  # corner at x = 2 - sqrt(2) / 2
    ]
    scene = overhead_scene(QUARTERS, "gaps", objects)
    assert metric_value(scene, "distance", [1, 2])[:2] == (pytest.approx(math.sqrt(4.25)), 2.1)
    assert metric_value(scene, "distance", [1, 2])[2] == "2.1 m"
    assert metric_value(scene, "center_distance", [1, 2])[1:] == (3.6, "3.6 m")  # sqrt(13)
    exact, value, text = metric_value(scene, "distance", [1, 3])
    assert exact == pytest.approx(1.5 - math.sqrt(2) / 2) and (value, text) == (0.8, "0.8 m")
    assert metric_value(scene, "center_distance", [1, 3])[1:] == (2.0, "2.0 m")
    assert metric_value(scene, "size", [2])[1:] == (200, "200 cm")


def test_vsibench_wording():
    assert TEMPLATES["distance"][0] == (
        "Measuring from the closest point of each object, what is the distance between the {a} "
        "and the {b} (in meters)?"
    )
    assert TEMPLATES["size"][0] == (
        "What is the length of the longest dimension (length, width, or height) of the {a}, "
        "measured in centimeters?"
    )
    assert TEMPLATES["room"][0] == (
        "What is the size of this room (in square meters)? If multiple rooms are shown, "
        "estimate the size of the combined space."
    )
    for template in TEMPLATES["distance"]:
        assert "closest point" in template or "nearest points" in template
    for template in TEMPLATES["center_distance"]:
        assert "center" in template and "closest" not in template


def test_no_fact_repeated_across_the_samples_of_a_clip(samples):
    facts: dict[str, list] = {}
    for scene, s in samples:
        facts.setdefault(scene.id, []).extend((t["kind"], tuple(t["ids"])) for t in s.meta["turns"])
    for scene_id, seen in facts.items():
        assert len(seen) == len(set(seen)), scene_id
    # large budgets use up every fact of a clip: all sizes and pairs are asked exactly once
    task = get_task("video_metric")
    ctx = EngineContext()
    for scene in HAND_SCENES:
        objects = sorted(unique_visible(scene, [f.id for f in scene.frames]))
        items, _ = task._items(scene, scene_clip(scene), objects, ctx)
        assert len(facts[scene.id]) == sum(len(v) for v in items.values())


def test_shoelace_reference():
    assert shoelace([tuple(p) for p in L_ROOM.floor_polygon]) == pytest.approx(55.0)


def test_values_recomputed(samples):
    assert 50 < len(samples) < 3 * PER_SCENE  # every fact of each clip, once
    task = get_task("video_metric")
    for scene, _, t in turns(samples):
        exact, value, text = expected(scene, t["kind"], t["ids"])
        assert t["value_exact"] == pytest.approx(exact, abs=1e-9)
        assert t["value"] == value and t["answer"] == text
        assert t["unit"] == {"size": "cm", "room": "m2"}.get(t["kind"], "m")
        number = float(re.match(r"[\d.]+", t["answer"]).group())
        assert number == value
        unit = {"size": 1, "distance": 0.1, "center_distance": 0.1, "room": 0.1}[t["kind"]]
        assert abs(number - exact) <= unit / 2 + 1e-9
        if t["kind"] == "size":
            assert isinstance(t["value"], int)
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
        assert s.reward == {"mode": "numeric", "ground_truth": s.meta["turns"][-1]["value"]}
        assert s.messages[-1]["content"][0]["text"] == s.answer


def test_objects_rooms_and_filters(samples):
    for scene, s in samples:
        allowed = unique_visible(scene, s.meta["frame_ids"])
        assert set(s.meta["object_ids"]) <= allowed
        kinds = Counter(t["kind"] for t in s.meta["turns"])
        assert kinds["room"] <= 1
        if scene.room is None:
            assert kinds["room"] == 0
        items = [(t["kind"], tuple(t["ids"])) for t in s.meta["turns"]]
        assert len(set(items)) == len(items)  # nothing asked twice in a conversation
        for t in s.meta["turns"]:
            if t["kind"] == "size":
                assert max(scene.object(t["ids"][0]).box[3:6]) >= VideoMetric.MIN_SIZE_M
            if t["kind"] == "distance":
                assert t["value_exact"] >= VideoMetric.MIN_GAP_M
            if t["kind"] == "center_distance":
                assert t["value_exact"] >= VideoMetric.MIN_DISTANCE_M
            if "distance" in t["kind"]:
                assert len(set(t["ids"])) == 2
            assert "pair" not in t["labels"]
            assert t["kind"] != "size" or t["labels"] != ["tiny"]
    assert not [t for _, _, t in turns(samples) if t["kind"] == "room"]  # no depth, no room
    assert not any("floor_coverage" in s.meta for _, s in samples)


def test_kind_mix_and_turns(samples):
    """Kinds follow KIND_WEIGHTS while facts last (small budgets over many clips), closest-point
    distance being the main distance kind."""
    scenes = [make_video_scene(layout(10 + k), scene_id=f"mix{k}") for k in range(12)]
    scenes += [overhead_scene(QUARTERS, f"mixroom{k}", layout(30 + k)) for k in range(12)]
    ts = [t for _, _, t in turns(generate(get_task("video_metric"), scenes, 3))]
    kinds = Counter(t["kind"] for t in ts)
    assert kinds["size"] > 0.25 * len(ts) and kinds["distance"] > 0.25 * len(ts)
    assert 0.03 * len(ts) < kinds["center_distance"] < 0.2 * len(ts)
    assert 0 < kinds["room"] <= 12  # at most one per clip that covers its floor
    n_turns = Counter(len(s.meta["turns"]) for _, s in samples)
    assert set(n_turns) == {1, 2, 3}
    for _, s in samples[:100]:
        assert s.messages[0]["content"][0] == {"type": "video"}
        assert len(s.videos[0]) == len(s.meta["frame_ids"]) == 8


_COUNTS: dict[tuple[str, str], dict[int, int]] = {}


def mask_counts(scene, frame_id) -> dict[int, int]:
    """Pixels per object id in a frame's instance mask (cached)."""
    key = (scene.id, frame_id)
    if key not in _COUNTS:
        ids, n = np.unique(scene.frame(frame_id).load_mask(), return_counts=True)
        _COUNTS[key] = {int(i): int(c) for i, c in zip(ids, n, strict=True)}
    return _COUNTS[key]


def test_fixture_scenes(engine_scenes):
    task = get_task("video_metric")
    out = generate(task, engine_scenes, 30, ctx=EngineContext())
    assert 9 < len(out) < 90  # facts run out: each is asked once per clip
    for scene, s in out:
        assert task.derive_answer(scene, s.meta) == s.answer
        for t in s.meta["turns"]:
            if t["kind"] == "distance":  # oriented boxes: bounded by the centre distance
                a, b = (scene.object(o).box for o in t["ids"])
                assert VideoMetric.MIN_GAP_M <= t["value_exact"] <= math.dist(a[:3], b[:3])
                assert t["value"] == half_up(t["value_exact"], 1)
                continue
            exact, value, _ = expected(scene, t["kind"], t["ids"])
            assert t["value"] == value and t["value_exact"] == pytest.approx(exact)
        # every named object is seen clearly in some frame (instance masks)
        for oid in s.meta["object_ids"]:
            assert max(mask_counts(scene, f).get(oid, 0) for f in s.meta["frame_ids"]) >= 400


def test_determinism():
    task = get_task("video_metric")
    a = [s.id for _, s in generate(task, HAND_SCENES, 10, seed=5)]
    b = [s.id for _, s in generate(task, HAND_SCENES, 10, seed=5, ctx=EngineContext())]
    c = [s.id for _, s in generate(task, HAND_SCENES, 10, seed=6)]
    assert a == b and len(set(a)) == len(a) == 30
    assert a != c


def test_phrasing_variety(samples):
    for kind, templates in TEMPLATES.items():
        assert len(templates) >= 5
        if kind == "room":
            continue  # one room fact per clip; these clips have no depth
        used = {t["phrasing"][1] for _, _, t in turns(samples) if t["kind"] == kind}
        assert used == set(range(len(templates)))
