"""si_depth_order (and the shared ``_refer`` helper): answers against depths recomputed here from
the depth maps and masks, referring expressions against the masks, margins, letter balance,
determinism, phrasing variety."""

from __future__ import annotations

import itertools
import json
import re
from collections import Counter
from functools import partial

import numpy as np
import pytest

from vst.engine.choices import LETTERS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.single_image import _refer
from vst.engine.tasks.single_image.depth_order import (
    DIR_PHRASES,
    NAME_REQUESTS,
    PICK_PHRASES,
    TEMPLATES,
    DepthOrder,
)
from vst.engine.visual_prompts import PALETTE
from vst.testing.tasks import generate_samples

PER_SCENE = 200


CTX = EngineContext()
"""Shared by the module's generators: frame views (pixels, caches) are built once."""


generate = partial(generate_samples, ctx=CTX)
"""``(scene, sample)`` pairs of a task over scenes (:func:`vst.testing.tasks.generate_samples`)."""


@pytest.fixture(scope="module")
def samples(engine_scenes):
    return generate(get_task("si_depth_order"), engine_scenes, PER_SCENE)


_PIXELS: dict[tuple[str, str], tuple[np.ndarray, np.ndarray]] = {}


def pixels(scene, frame_id):
    """(depth, mask) of a frame, read from disk once per test module."""
    key = (scene.id, frame_id)
    if key not in _PIXELS:
        frame = scene.frame(frame_id)
        _PIXELS[key] = (frame.load_depth(), frame.load_mask())
    return _PIXELS[key]


def true_depth(scene, frame_id, oid):
    """Median of the depth map over the object's mask pixels with known depth."""
    depth, mask = pixels(scene, frame_id)
    return float(np.median(depth[(mask == oid) & (depth > 0)]))


def model_scale(scene, s):
    frame = scene.frame(s.meta["frame_ids"][0])
    w, h = s.images[0].size
    return frame, w / frame.width, h / frame.height


def option_lines(text):
    return dict(re.findall(r"^([A-J])\. (.+)$", text, flags=re.M))


def test_samples_cover_every_style_and_mode(samples):
    assert len(samples) == 3 * PER_SCENE
    styles = Counter(s.meta["style"] for _, s in samples)
    modes = Counter(s.meta["refer_mode"] for _, s in samples)
    sizes = Counter(len(s.meta["object_ids"]) for _, s in samples)
    assert set(styles) == set(TEMPLATES)
    assert set(modes) == set(_refer.REFER_MODES)
    assert set(sizes) == {2, 3, 4}
    rewards = {s.meta["style"]: s.reward["mode"] for _, s in samples}
    assert rewards == {
        "letters": "order",
        "handles": "order",
        "json": "order",
        "mcq": "mcq",
        "pick": "exact",
    }


def test_answers_follow_ground_truth_depths(samples):
    for scene, s in samples:
        m = s.meta
        ids = m["object_ids"]
        depths = [true_depth(scene, m["frame_ids"][0], o) for o in ids]
        np.testing.assert_allclose(m["depths"], depths, rtol=1e-6)
        order = sorted(range(len(ids)), key=lambda i: depths[i])
        if m["direction"] == "far_to_near":
            order = order[::-1]
        handles = [r["handle"] for r in m["refs"]]
        labels = [scene.object(o).label for o in ids]
        q = s.last_user_text
        style = m["style"]
        if style == "letters":
            assert s.answer == ", ".join(LETTERS[i] for i in order)
            assert s.reward["ground_truth"] == [LETTERS[i] for i in order]
            for i, r in enumerate(m["refs"]):
                assert f"{LETTERS[i]}. " in q
                assert r["handle"] in q
        elif style == "handles":
            parts = s.answer.split(", ")
            assert [p.split(" (")[0] for p in parts] == [handles[i] for i in order]
            if m["refer_mode"] in ("box_mark", "point_mark"):
                assert parts == [f"{handles[i]} ({labels[i]})" for i in order]
            assert s.reward["ground_truth"] == [handles[i] for i in order]
        elif style == "json":
            body = re.fullmatch(r"```json\n(.*)\n```", s.answer, flags=re.S)
            items = json.loads(body.group(1))
            key = "bbox_2d" if m["refer_mode"] == "box_text" else "point_2d"
            assert [it["label"] for it in items] == [labels[i] for i in order]
            field = "box" if key == "bbox_2d" else "point"
            assert [it[key] for it in items] == [m["refs"][i][field] for i in order]
            # the question states the same coordinates, in the referred order
            for r in m["refs"]:
                assert r["handle"] in q
        elif style == "mcq":
            opts = option_lines(q)
            assert len(opts) == (2 if len(ids) == 2 else 4)
            assert opts[s.answer] == ", ".join(handles[i] for i in order)
            assert len(set(opts.values())) == len(opts)
            assert s.reward["ground_truth"] == s.answer
            assert m["refer_mode"] not in _refer.TAGGED_MODES  # letters mean options only
            # default answer style "paper": the letter and the option's text
            assert s.messages[-1]["content"][0]["text"] == f"{s.answer}. {opts[s.answer]}"
        else:  # pick
            assert s.answer == handles[order[0]] == s.reward["ground_truth"]
        if style != "mcq":
            assert s.messages[-1]["content"][0]["text"] == s.answer


def test_margin_between_adjacent_depths(samples):
    rel, gap = DepthOrder.MIN_REL_GAP, DepthOrder.MIN_ABS_GAP
    assert (rel, gap) == (0.10, 0.15)
    for _, s in samples:
        d = sorted(s.meta["depths"])
        for a, b in itertools.pairwise(d):
            assert b - a >= gap and b - a >= rel * b


def test_derive_answer_recomputes_every_answer(samples):
    task = get_task("si_depth_order")
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
    # a changed ground truth changes the derived answer
    scene, s = next((sc, s) for sc, s in samples if s.meta["style"] == "letters")
    meta = dict(
        s.meta, direction="far_to_near" if s.meta["direction"] == "near_to_far" else "near_to_far"
    )
    assert task.derive_answer(scene, meta) != s.answer


def test_references_are_unambiguous_and_on_the_object(samples):
    for scene, s in samples:
        m = s.meta
        _, sx, sy = model_scale(scene, s)
        mask = pixels(scene, m["frame_ids"][0])[1]
        img = np.asarray(s.images[0])
        q = s.last_user_text
        known = {o.id for o in scene.objects}
        visible_labels = Counter(
            scene.object(int(i)).label for i in np.unique(mask) if int(i) in known
        )
        for r in m["refs"]:
            oid = r["id"]
            ys, xs = np.nonzero(mask == oid)
            assert len(xs) >= 400, "referred objects are visible"
            if r["mode"] == "name":
                assert visible_labels[scene.object(oid).label] == 1
                assert f"the {r['handle']}" in q
            if r.get("box") is not None:
                x1, y1, x2, y2 = r["box"]
                # the stated box is the mask's tight box scaled to the stored image (+-1 px)
                assert abs(x1 - xs.min() * sx) <= 1 and abs(y1 - ys.min() * sy) <= 1
                assert abs(x2 - (xs.max() + 1) * sx + 1) <= 1
                assert abs(y2 - (ys.max() + 1) * sy + 1) <= 1
            if r.get("point") is not None:
                x, y = r["point"]
                u = round((x + 0.5) / sx - 0.5)
                v = round((y + 0.5) / sy - 0.5)
                assert mask[v, u] == oid, "points lie on their object"
            if r["mode"] in _refer.MARK_MODES:
                color = np.array(PALETTE[r["color"]])
                if r.get("box") is not None:
                    x1, y1, x2, y2 = r["box"]
                    edge = np.concatenate([img[y1:y2, x1], img[y1:y2, x2], img[y1, x1:x2]])
                else:
                    x, y = r["point"]
                    edge = img[max(0, y - 8) : y + 9, max(0, x - 8) : x + 9].reshape(-1, 3)
                assert (np.abs(edge.astype(int) - color).sum(axis=1) == 0).any()
                if r["mode"].startswith("named"):
                    assert f"({r['color']} " in q
            else:
                assert r.get("color") is None
            if s.meta["style"] != "json":
                assert r["handle"] in q
        if m["refer_mode"] in _refer.TEXT_MODES:
            # nothing drawn: the image is the plain model image
            assert s.images[0].size == tuple(m["image_size"])


def test_letters_are_balanced(engine_scenes):
    class McqOnly(DepthOrder):
        STYLES = ("mcq",)

    samples = generate(McqOnly(), engine_scenes, 500, seed=1)
    by_n: dict[int, Counter] = {}
    for _, s in samples:
        n = len(option_lines(s.last_user_text))
        by_n.setdefault(n, Counter())[s.answer] += 1
    assert set(by_n) == {2, 4}
    assert sum(sum(c.values()) for c in by_n.values()) >= 1000
    for n, counts in by_n.items():
        total = sum(counts.values())
        assert total >= 200
        for letter in LETTERS[:n]:
            assert abs(counts[letter] / total - 1 / n) <= 0.05, (n, counts)


def test_deterministic(engine_scenes):
    task = get_task("si_depth_order")
    a = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=3)]
    b = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=3)]
    c = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=4)]
    assert a == b and a != c


def test_phrasing_variety(samples):
    for style, templates in TEMPLATES.items():
        assert len(templates) >= 5 and len(set(templates)) == len(templates)
        used = {s.meta["phrasing"][0] for _, s in samples if s.meta["style"] == style}
        assert len(used) >= 5, style
    for phrases in (*DIR_PHRASES.values(), *PICK_PHRASES.values(), NAME_REQUESTS):
        assert len(set(phrases)) >= 5
    questions = {s.last_user_text for _, s in samples}
    assert len(questions) > 0.8 * len(samples)


# -- the shared referring helper ------------------------------------------------------------


def test_refer_helper_api(engine_scenes):
    ctx = EngineContext()
    scene = engine_scenes[0]
    # a frame with two visible objects sharing a label, and a uniquely labelled one
    for frame in sorted(scene.frames, key=lambda f: f.id):
        view = ctx.view(scene, frame)
        labels = Counter(view.object(o).label for o in view.visible_ids)
        dup = [o for o in view.visible_ids if labels[view.object(o).label] > 1]
        uniq = [o for o in view.visible_ids if view.label_is_unique(o)]
        if len(dup) >= 2 and uniq:
            break
    else:
        pytest.fail("no frame with a repeated label in the fixture scene")
    ids = [dup[0], dup[1], uniq[0]]
    assert "name" not in _refer.available_modes(view, ids)
    assert "name" in _refer.available_modes(view, [uniq[0]])
    with pytest.raises(ValueError, match="not unique"):
        _refer.refer(view, ids, "name", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown refer mode"):
        _refer.available_modes(view, ids, ["telepathy"])

    rng = np.random.default_rng(0)
    tagged = _refer.refer(view, ids, "box_mark", rng)
    assert [r.handle for r in tagged] == ["box-A", "box-B", "box-C"]
    assert tagged[0].named_handle == f"box-A ({view.object(dup[0]).label})"
    assert len({r.color for r in tagged}) == 3
    named = _refer.refer(view, ids, "named_point_mark", rng)
    lab = view.object(dup[0]).label
    # repeated labels get digits, so letters only ever name tagged marks or options
    assert [r.handle for r in named[:2]] == [f"{lab}-1", f"{lab}-2"]
    assert named[2].handle == view.object(uniq[0]).label
    assert named[0].mention == f"the {lab}-1 ({named[0].color} point)"
    boxes = _refer.refer(view, ids, "box_text", rng)
    assert boxes[0].handle == _refer.box_text(view.model_bbox2d(dup[0]))
    assert re.fullmatch(r"\[\d+, \d+, \d+, \d+\]", boxes[0].handle)
    pts = _refer.refer(view, ids, "point_text", rng)
    assert re.fullmatch(r"\(\d+, \d+\)", pts[0].handle)
    assert pts[0].mark is None and pts[0].to_meta()["point"] == list(pts[0].point)

    img = _refer.render(view, tagged)
    plain = _refer.render(view, boxes)
    assert img.size == plain.size == view.model_size
    assert np.asarray(plain).tolist() == np.asarray(view.model_image()).tolist()
    assert (np.asarray(img) != np.asarray(plain)).any()
    assert _refer.frame_objects(view) is _refer.frame_objects(view)

    assert _refer.join_items(["a"]) == "a"
    assert _refer.join_items(["a", "b"], "or") == "a or b"
    assert _refer.join_items(["a", "b", "c"]) == "a, b and c"
    assert _refer.separated(1.0, 1.2, 0.10, 0.15)
    assert not _refer.separated(1.0, 1.1, 0.10, 0.15)  # 0.10 m < 0.15 m
    assert not _refer.separated(5.0, 5.4, 0.10, 0.15)  # 8% < 10%
    assert _refer.all_separated([3.0, 1.0, 2.0], 0.10, 0.15)
    assert not _refer.all_separated([3.0, 1.0, 2.9], 0.10, 0.15)
