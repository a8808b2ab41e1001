"""video_rel_distance: closest-point box distances recomputed here by bounded least squares
(and in closed form for axis-aligned boxes), answers, margins, unique-category objects, letter
balance, determinism, phrasing variety."""

from __future__ import annotations

from collections import Counter
from functools import cache

import numpy as np
import pytest
from scipy.optimize import lsq_linear
from scipy.spatial.transform import Rotation

from test_task_video_rel_direction import generate, make_video_scene, turns, unique_visible
from vst.engine.choices import LETTERS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.video.rel_distance import (
    MEASURE_NOTES,
    TEMPLATES,
    VideoRelDistance,
    box_gap,
    gap_matrix,
)

# -- independent ground truth -------------------------------------------------------------------


def optimised_gap(a, b) -> float:
    """Closest-point distance of two solid boxes as a bounded least-squares problem: points
    ``ca + Ra u`` and ``cb + Rb v`` with ``u``, ``v`` within the half sizes, minimise
    ``|[Ra, -Rb] [u; v] - (cb - ca)|`` (scipy ``lsq_linear``, BVLS: exact for this convex
    problem)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    Ra = Rotation.from_euler("xyz", a[6:], degrees=True).as_matrix()
    Rb = Rotation.from_euler("xyz", b[6:], degrees=True).as_matrix()
    half = np.concatenate([a[3:6], b[3:6]]) / 2
    res = lsq_linear(np.hstack([Ra, -Rb]), b[:3] - a[:3], bounds=(-half, half), method="bvls")
    return float(np.linalg.norm(res.fun))


@cache
def _cached_gap(a: tuple, b: tuple) -> float:
    return optimised_gap(a, b)


def scene_gap(scene, a: int, b: int) -> float:
    """:func:`optimised_gap` of two objects of a scene (cached, symmetric)."""
    pair = sorted([tuple(scene.object(a).box), tuple(scene.object(b).box)])
    return _cached_gap(*pair)


def layout(seed: int, n: int = 9) -> list[tuple[str, list[float]]]:
    """Unique-label objects at random positions, heights, sizes and yaws (some tilted), plus a
    repeated label twice (never named)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-4, 4, 2)
        size = rng.uniform(0.2, 1.5, 3)
        tilt = rng.uniform(-30, 30, 2) if i % 4 == 0 else (0.0, 0.0)
        box = [x, y, rng.uniform(0.2, 2.0), *size, tilt[0], tilt[1], rng.uniform(-180, 180)]
        out.append((f"item{i}", box))
    out += [("twin", [1.0, 3.0, 0.4, 0.5, 0.5, 0.8, 0, 0, 0])] * 2
    return out


HAND_SCENES = [make_video_scene(layout(s), scene_id=f"dist{s}") for s in range(3)]
PER_SCENE = 500


@pytest.fixture(scope="module")
def samples():
    return generate(get_task("video_rel_distance"), HAND_SCENES, PER_SCENE)


# -- tests --------------------------------------------------------------------------------------


def test_box_gap_closed_form_cases():
    cube = [0, 0, 0, 1, 1, 1, 0, 0, 0]
    assert box_gap(cube, [3, 0, 0, 1, 1, 1, 0, 0, 0]) == pytest.approx(2.0)
    assert box_gap(cube, [2, 2, 0, 1, 1, 1, 0, 0, 0]) == pytest.approx(np.sqrt(2.0))
    assert box_gap(cube, [2, 2, 2, 1, 1, 1, 0, 0, 0]) == pytest.approx(np.sqrt(3.0))
    assert box_gap(cube, [0.5, 0.2, 0.1, 1, 1, 1, 0, 0, 30]) == 0.0  # overlapping
    assert box_gap(cube, [0, 0, 0, 0.2, 0.2, 0.2, 0, 0, 0]) == 0.0  # contained
    # a cube turned 45 degrees about Z presents an edge: its nearest point is sqrt(2)/2 closer
    assert box_gap(cube, [2, 0, 0, 1, 1, 1, 0, 0, 45]) == pytest.approx(1.5 - np.sqrt(0.5))
    # edge-to-edge: both cubes turned 45 degrees, about Z and about X
    a = [0, 0, 0, 1, 1, 1, 0, 0, 45]
    b = [2, 0, 0, 1, 1, 1, 45, 0, 0]
    assert box_gap(a, b) == pytest.approx(2 - np.sqrt(0.5) - 0.5)
    # axis-aligned boxes: per-axis gaps
    rng = np.random.default_rng(1)
    for _ in range(50):
        p, q = rng.uniform(-2, 2, (2, 3))
        s, t = rng.uniform(0.1, 1.5, (2, 3))
        gap = np.linalg.norm(np.maximum(np.abs(p - q) - (s + t) / 2, 0))
        assert box_gap([*p, *s, 0, 0, 0], [*q, *t, 0, 0, 0]) == pytest.approx(gap, abs=1e-9)


def test_box_gap_matches_optimiser():
    rng = np.random.default_rng(2)
    boxes = np.concatenate(
        [
            rng.uniform(-2, 2, (12, 3)),
            rng.uniform(0.1, 1.2, (12, 3)),
            rng.uniform(-180, 180, (12, 3)),
        ],
        axis=1,
    )
    boxes[:6, 6:8] = 0  # half of them upright
    m = gap_matrix(boxes)
    np.testing.assert_allclose(m, m.T)
    assert np.all(np.diag(m) == 0)
    for i in range(12):
        for j in range(i + 1, 12):
            assert m[i, j] == pytest.approx(optimised_gap(boxes[i], boxes[j]), abs=1e-5)


def test_answers_follow_closest_point_distances(samples):
    assert len(samples) == 3 * PER_SCENE
    task = get_task("video_rel_distance")
    for scene, s, t in turns(samples):
        anchor, cands = t["anchor_id"], t["candidate_ids"]
        assert 3 <= len(cands) <= 4 and anchor not in cands and len(set(cands)) == len(cands)
        d = [scene_gap(scene, anchor, c) for c in cands]
        np.testing.assert_allclose(t["distances"], d, atol=1e-5)
        centre = [
            np.linalg.norm(scene.object(anchor).box[:3] - scene.object(c).box[:3]) for c in cands
        ]
        np.testing.assert_allclose(t["centre_distances"], centre, atol=1e-9)
        best = int(np.argmin(d)) if t["query"] == "closest" else int(np.argmax(d))
        assert t["answer_label"] == scene.object(cands[best]).label
        # the options as written in the question, and the answer letter among them
        q = s.messages[s.meta["turns"].index(t) * 2]["content"][-1]["text"]
        lines = [ln for ln in q.splitlines() if ln[:2] in {f"{x}." for x in LETTERS[:4]}]
        shown = [ln[3:] for ln in lines]
        assert sorted(shown) == sorted(t["labels"])
        assert shown[LETTERS.index(t["answer"])] == t["answer_label"]
        assert f"the {t['anchor_label']}" in q
        # default answer style "paper": each turn's reply is the letter and the option's text
        reply = s.messages[s.meta["turns"].index(t) * 2 + 1]["content"][0]["text"]
        assert reply == f"{t['answer']}. {t['answer_label']}"
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
        assert s.reward == {"mode": "mcq", "ground_truth": s.answer}
        assert s.messages[-1]["content"][0]["text"].split(".")[0] == s.answer


def test_margin_respected(samples):
    for _scene, _s, t in turns(samples):
        d = sorted(t["distances"], reverse=t["query"] == "farthest")
        gap = abs(d[0] - d[1])
        assert gap >= VideoRelDistance.MIN_ABS_GAP
        assert gap >= VideoRelDistance.MIN_REL_GAP * max(d[0], d[1])
        assert gap >= 0.15 and gap >= 0.1 * max(d[0], d[1])


def test_unique_visible_objects_only(samples):
    for scene, s in samples:
        allowed = unique_visible(scene, s.meta["frame_ids"])
        assert set(s.meta["object_ids"]) <= allowed
        assert all(scene.object(o).label != "twin" for o in s.meta["object_ids"])
    used = {(scene.id, o) for scene, s in samples for o in s.meta["object_ids"]}
    assert len(used) >= 20  # most of the 27 unique objects get asked about


def test_balance(samples):
    ts = [t for _, _, t in turns(samples)]
    assert len(ts) >= 1000
    queries = Counter(t["query"] for t in ts)
    assert abs(queries["closest"] / len(ts) - 0.5) <= 0.05
    for n_opt in (3, 4):
        letters = Counter(t["answer"] for t in ts if len(t["candidate_ids"]) == n_opt)
        total = sum(letters.values())
        assert total >= 500
        share = np.array([letters[x] for x in LETTERS[:n_opt]]) / total
        assert np.all(np.abs(share - 1 / n_opt) <= 0.05), (n_opt, letters)


def test_fixture_scenes(engine_scenes):
    task = get_task("video_rel_distance")
    out = generate(task, engine_scenes, 20, ctx=EngineContext())
    assert out, "the third fixture room shows four unique categories"
    for scene, s in out:
        assert task.derive_answer(scene, s.meta) == s.answer
        assert len(s.videos[0]) == len(s.meta["frame_ids"]) == 16
        assert s.meta["video_fps"] == pytest.approx(2.0)
        for t in s.meta["turns"]:
            d = [scene_gap(scene, t["anchor_id"], c) for c in t["candidate_ids"]]
            np.testing.assert_allclose(t["distances"], d, atol=1e-5)


def test_determinism():
    task = get_task("video_rel_distance")
    a = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=7)]
    b = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=7, ctx=EngineContext())]
    c = [s.id for _, s in generate(task, HAND_SCENES, 20, seed=8)]
    assert a == b and len(set(a)) == len(a) == 60
    assert a != c


def test_phrasing_variety(samples):
    for query, templates in TEMPLATES.items():
        assert len(templates) >= 5
        used = Counter(t["phrasing"][0] for _, _, t in turns(samples) if t["query"] == query)
        assert set(used) == set(range(len(templates)))
    assert len({t["phrasing"][1] for _, _, t in turns(samples)}) == len(MEASURE_NOTES)


def test_vsibench_wording_lists_the_options_in_order(samples):
    assert TEMPLATES["closest"][0] == (
        "Measuring from the closest point of each object, which of these objects ({names}) is "
        "the closest to the {anchor}?"
    )
    checked = 0
    for _, s in samples:
        for k, t in enumerate(s.meta["turns"]):
            if t["phrasing"][0] != 0:
                continue
            question = s.messages[2 * k]["content"][-1]["text"]
            names = ", ".join(t["labels"][i] for i in t["options"])
            word = "closest to" if t["query"] == "closest" else "farthest from"
            head = (
                "Measuring from the closest point of each object, which of these objects "
                f"({names}) is the {word} the {t['anchor_label']}?\n"
            )
            assert question.startswith(head), question  # no second statement of the convention
            checked += 1
    assert checked > 50


def test_no_question_repeated_across_the_samples_of_a_clip(samples):
    asked: dict[str, list] = {}
    for scene, s in samples:
        asked.setdefault(scene.id, []).extend(
            (t["anchor_id"], frozenset(t["candidate_ids"]), t["query"]) for t in s.meta["turns"]
        )
    for scene_id, keys in asked.items():
        assert len(keys) == len(set(keys)), scene_id
