"""video_metric: sizes, centre distances and room areas recomputed here from the world boxes and
the floor polygon (shoelace written out), rounding, units, unique visible objects, rooms,
determinism, phrasing variety."""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np
import pytest

from test_task_video_rel_direction import generate, make_video_scene, turns, unique_visible
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.video.metric import TEMPLATES, VideoMetric
from vst.scenes.model import Room


def shoelace(poly) -> float:
    """Area of a simple polygon given as (x, y) vertices."""
    total = 0.0
    for (x1, y1), (x2, y2) in zip(poly, [*poly[1:], poly[0]], strict=True):
        total += x1 * y2 - x2 * y1
    return abs(total) / 2.0


def half_up(x: float, decimals: int = 0) -> float:
    return math.floor(x * 10**decimals + 0.5) / 10**decimals


def layout(seed: int, n: int = 8):
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-3.5, 3.5, 2)
        size = rng.uniform(0.1, 2.0, 3)
        out.append((f"obj{i}", [x, y, size[2] / 2, *size, 0, 0, float(rng.uniform(-180, 180))]))
    out.append(("tiny", [0.5, -2.5, 0.02, 0.03, 0.02, 0.04, 0, 0, 0]))  # below 5 cm
    out += [("pair", [2.0, 2.0, 0.4, 0.5, 0.5, 0.8, 0, 0, 0])] * 2  # repeated label
    return out


L_ROOM = Room(floor_polygon=[[-4, -4], [4, -4], [4, 1], [1, 1], [1, 4], [-4, 4]])
"""L-shaped room: 8 x 8 minus a 3 x 3 corner = 55 m^2."""

HAND_SCENES = [
    make_video_scene(layout(0), scene_id="metric0", room=L_ROOM),
    make_video_scene(
        layout(1), scene_id="metric1", room=Room([[-3, -3], [3, -3], [3, 2], [-3, 2]])
    ),
    make_video_scene(layout(2), scene_id="metric2"),  # no room: no room questions
]
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
        a, b = (scene.object(o).box[:3] for o in ids)
        exact = math.dist(a, b)
        return exact, half_up(exact, 2), f"{half_up(exact, 2):.2f} m"
    exact = shoelace([tuple(p) for p in scene.room.floor_polygon])
    return exact, half_up(exact, 1), f"{half_up(exact, 1):.1f} square meters"


def test_shoelace_reference():
    assert shoelace([tuple(p) for p in L_ROOM.floor_polygon]) == pytest.approx(55.0)


def test_values_recomputed(samples):
    assert len(samples) == 3 * PER_SCENE
    task = get_task("video_metric")
    for scene, _, t in turns(samples):
        exact, value, text = expected(scene, t["kind"], t["ids"])
        assert t["value_exact"] == pytest.approx(exact, abs=1e-9)
        assert t["value"] == value and t["answer"] == text
        assert t["unit"] == {"size": "cm", "distance": "m", "room": "m2"}[t["kind"]]
        number = float(re.match(r"[\d.]+", t["answer"]).group())
        assert number == value
        unit = {"size": 1, "distance": 0.01, "room": 0.1}[t["kind"]]
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
                assert t["value_exact"] >= VideoMetric.MIN_DISTANCE_M
                assert len(set(t["ids"])) == 2
            assert "pair" not in t["labels"]
            assert t["kind"] != "size" or t["labels"] != ["tiny"]
    rooms = {round(t["value"], 1) for scene, _, t in turns(samples) if t["kind"] == "room"}
    assert rooms == {55.0, 30.0}


def test_kind_mix_and_turns(samples):
    ts = [t for _, _, t in turns(samples)]
    kinds = Counter(t["kind"] for t in ts)
    assert kinds["size"] > 0.3 * len(ts) and kinds["distance"] > 0.3 * len(ts)
    assert 0.05 * len(ts) < kinds["room"] < 0.25 * len(ts)
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
    assert len(out) == 90
    for scene, s in out:
        assert task.derive_answer(scene, s.meta) == s.answer
        for t in s.meta["turns"]:
            exact, value, _ = expected(scene, t["kind"], t["ids"])
            assert t["value"] == value and t["value_exact"] == pytest.approx(exact)
        # every named object is seen clearly in some frame (instance masks)
        for oid in s.meta["object_ids"]:
            assert max(mask_counts(scene, f).get(oid, 0) for f in s.meta["frame_ids"]) >= 400


def test_determinism():
    task = get_task("video_metric")
    a = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=5)]
    b = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=5, ctx=EngineContext())]
    c = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=6)]
    assert a == b and len(set(a)) == len(a) == 60
    assert a != c


def test_phrasing_variety(samples):
    for kind, templates in TEMPLATES.items():
        assert len(templates) >= 5
        used = {t["phrasing"][1] for _, _, t in turns(samples) if t["kind"] == kind}
        assert used == set(range(len(templates)))
