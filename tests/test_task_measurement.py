"""si_measurement: heights (cm) and largest dimensions (m) of referred objects, multi-turn."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.single_image import measurement as meas
from vst.engine.visual_prompts import PALETTE

SEED = 11


def _generate(scenes, seed=SEED, budget=1000):
    task = get_task("si_measurement")
    ctx = EngineContext()
    out = []
    for scene in scenes:
        out += list(task.generate(scene, np.random.default_rng(seed), budget, ctx))
        ctx.reset()
    return out


@pytest.fixture(scope="module")
def samples(engine_scenes):
    out = _generate(engine_scenes)
    assert len(out) >= 100
    return out


@pytest.fixture(scope="module")
def scenes_by_id(engine_scenes):
    return {s.id: s for s in engine_scenes}


def _frame_pixel(model_xy, frame, model_size):
    """Model-image pixel -> frame pixel (inverse of the pixel-centre scaling)."""
    sx, sy = model_size[0] / frame.width, model_size[1] / frame.height
    u = round((model_xy[0] + 0.5) / sx - 0.5)
    v = round((model_xy[1] + 0.5) / sy - 0.5)
    return min(max(u, 0), frame.width - 1), min(max(v, 0), frame.height - 1)


def test_answers_equal_world_box_sizes(samples, scenes_by_id):
    for s in samples:
        scene = scenes_by_id[s.meta["scene_id"]]
        frame = scene.frame(s.meta["frame_ids"][0])
        boxes_cam = scene.boxes_in_camera(frame)
        index = {o.id: i for i, o in enumerate(scene.objects)}
        answers = [m["content"][0]["text"] for m in s.messages if m["role"] == "assistant"]
        questions = [
            " ".join(c["text"] for c in m["content"] if c["type"] == "text")
            for m in s.messages
            if m["role"] == "user"
        ]
        for turn, answer, question in zip(s.meta["turns"], answers, questions, strict=True):
            box = scene.object(turn["object_id"]).box
            if turn["kind"] == "height":
                # upright in the world: the camera box's vertical size is the same height
                assert abs(box[6]) < 5 and abs(box[7]) < 5
                assert abs(boxes_cam[index[turn["object_id"]]][4] - box[5]) < 1e-6
                cm = int(np.floor(box[5] * 100 + 0.5))
                assert answer == f"{cm} cm"
                assert "centimeter" in question and " meters" not in question
                expected = cm
            else:
                m = np.floor(max(box[3:6]) * 100 + 0.5) / 100
                assert answer == f"{m:.2f} m"
                assert re.fullmatch(r"\d+\.\d\d m", answer)
                assert "meters" in question and "centimeter" not in question
                expected = m
            assert turn["answer"] == answer
        assert s.answer == answers[-1]
        assert s.reward["mode"] == "numeric"
        assert s.reward["ground_truth"] == pytest.approx(expected)


def test_multi_turn_structure(samples):
    turns = Counter()
    for s in samples:
        roles = [m["role"] for m in s.messages]
        n = len(s.meta["object_ids"])
        assert roles == ["user", "assistant"] * n
        assert len(s.images) == 1
        first = s.messages[0]["content"]
        assert first[0] == {"type": "image"}
        assert sum(c["type"] == "image" for m in s.messages for c in m["content"]) == 1
        assert len(set(s.meta["object_ids"])) == n
        assert [t["object_id"] for t in s.meta["turns"]] == s.meta["object_ids"]
        assert s.images[0].size == tuple(np.asarray(s.images[0]).shape[1::-1])  # a real picture
        turns[n] += 1
    assert set(turns) <= {1, 2, 3, 4}
    assert turns[2] + turns[3] + turns[4] > 0.7 * len(samples)
    assert turns[3] + turns[4] > 0


def test_marks_lie_on_the_right_objects(samples, scenes_by_id):
    n_point = n_box = 0
    for s in samples:
        scene = scenes_by_id[s.meta["scene_id"]]
        frame = scene.frame(s.meta["frame_ids"][0])
        mask = frame.load_mask()
        model_size = s.images[0].size
        arr = np.asarray(s.images[0])
        questions = [
            " ".join(c["text"] for c in m["content"] if c["type"] == "text")
            for m in s.messages
            if m["role"] == "user"
        ]
        colors = [r.get("color") for r in s.meta["refs"]]
        if s.meta["ref_mode"] != "name":
            assert len(set(colors)) == len(colors)
        for ref, question in zip(s.meta["refs"], questions, strict=True):
            oid = ref["id"]
            if "point" in ref:
                u, v = _frame_pixel(ref["point"], frame, model_size)
                assert mask[v, u] == oid
                x, y = ref["point"]
                assert tuple(arr[y, x]) == PALETTE[ref["color"]]  # the centre dot
                n_point += 1
            if "box" in ref:
                ys, xs = np.nonzero(mask == oid)
                sx, sy = model_size[0] / frame.width, model_size[1] / frame.height
                expected = (
                    round(xs.min() * sx),
                    round(ys.min() * sy),
                    round((xs.max() + 1) * sx) - 1,
                    round((ys.max() + 1) * sy) - 1,
                )
                assert tuple(ref["box"]) == expected
                n_box += 1
            if "color" in ref:
                assert ref["color"] in question
            if s.meta["ref_mode"] == "name":
                label = scene.object(oid).label
                assert label in question
                others = {int(o) for o in np.unique(mask)} - {0, oid}
                assert all(scene.object(o).label != label for o in others if o > 0)
            if s.meta["ref_mode"] in ("box_mark", "point_mark"):
                assert ref["handle"] in question
                assert scene.object(oid).label in question
    assert n_point > 20 and n_box > 20


def test_only_whole_large_enough_objects(samples, scenes_by_id):
    for s in samples:
        frame = scenes_by_id[s.meta["scene_id"]].frame(s.meta["frame_ids"][0])
        mask = frame.load_mask()
        for oid in s.meta["object_ids"]:
            assert frame.truncation.get(oid, 0.0) <= meas.MeasurementTask.MAX_TRUNCATION
            assert int((mask == oid).sum()) >= meas.MeasurementTask.MIN_OBJECT_PIXELS


def test_derive_answer_and_determinism(samples, engine_scenes, scenes_by_id):
    task = get_task("si_measurement")
    for s in samples:
        assert task.derive_answer(scenes_by_id[s.meta["scene_id"]], s.meta) == s.answer
    again = _generate(engine_scenes)
    assert [s.id for s in again] == [s.id for s in samples]
    other = _generate(engine_scenes, seed=SEED + 1)
    assert [s.id for s in other] != [s.id for s in samples]
    assert len({s.id for s in samples}) == len(samples)
    assert len(_generate(engine_scenes[:1], budget=5)) == 5


def test_phrasing_variety(samples):
    for phrasings in (meas.HEIGHT_PHRASINGS, meas.LARGEST_PHRASINGS, *meas.REF_PHRASINGS.values()):
        assert len(set(phrasings)) >= 5
    used = {"height": set(), "largest": set()}
    for s in samples:
        for t in s.meta["turns"]:
            used[t["kind"]].add(t["phrasing"])
    assert len(used["height"]) >= 5 and len(used["largest"]) >= 5
    modes = Counter(s.meta["ref_mode"] for s in samples)
    assert set(modes) == set(meas.REF_MODES)
    kinds = Counter(t["kind"] for s in samples for t in s.meta["turns"])
    assert kinds["height"] > 0.25 * sum(kinds.values())
    assert kinds["largest"] > 0.25 * sum(kinds.values())


def test_rounding_and_upright():
    box = np.array([0, 0, 0, 0.40, 0.61, 0.7149, 0, 0, 35.0])
    assert meas.measurement_value(box, "height") == (71, "71 cm")
    box[5] = 0.7151
    assert meas.measurement_value(box, "height") == (72, "72 cm")
    assert meas.measurement_value(box, "largest") == (0.72, "0.72 m")
    box[3] = 1.2349
    assert meas.measurement_value(box, "largest") == (1.23, "1.23 m")
    assert meas.round_half_up(2.5) == 3 and meas.round_half_up(-0.4) == 0
    assert meas.is_upright(box, 5.0)
    tilted = box.copy()
    tilted[6] = 30.0
    assert not meas.is_upright(tilted, 5.0)
    with pytest.raises(ValueError):
        meas.measurement_value(box, "width")
