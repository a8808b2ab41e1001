"""si_distance: answers against centre distances recomputed here from the world boxes (rigid
motions keep distances, so camera-frame and world-frame distances agree), stated metric
distances, margins, references, letter balance, determinism, phrasing variety."""

from __future__ import annotations

import re
from collections import Counter
from functools import partial

import numpy as np
import pytest

from vst.engine.choices import LETTERS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.single_image import _refer
from vst.engine.tasks.single_image.distance import (
    METRIC_REQUESTS,
    TEMPLATES,
    WHICH_PHRASES,
    Distance,
)
from vst.testing.tasks import generate_samples

PER_SCENE = 200


CTX = EngineContext()
"""Shared by the module's generators: frame views (pixels, caches) are built once."""


generate = partial(generate_samples, ctx=CTX)
"""``(scene, sample)`` pairs of a task over scenes (:func:`vst.testing.tasks.generate_samples`)."""


@pytest.fixture(scope="module")
def samples(engine_scenes):
    return generate(get_task("si_distance"), engine_scenes, PER_SCENE)


def world_distance(scene, a, b):
    return float(np.linalg.norm(scene.object(a).box[:3] - scene.object(b).box[:3]))


def mention(ref):
    """How the question names an object, rebuilt from its meta record."""
    mode, handle = ref["mode"], ref["handle"]
    if mode == "name":
        return f"the {handle}"
    if mode == "box_text":
        return f"the object in {handle}"
    if mode == "point_text":
        return f"the object at {handle}"
    if mode in ("box_mark", "point_mark"):
        return handle
    kind = "box" if mode == "named_box_mark" else "point"
    return f"the {handle} ({ref['color']} {kind})"


def option_lines(text):
    return dict(re.findall(r"^([A-J])\. (.+)$", text, flags=re.M))


def test_answers_follow_ground_truth_distances(samples):
    assert len(samples) == 3 * PER_SCENE
    seen = Counter()
    for scene, s in samples:
        m = s.meta
        anchor, cands = m["anchor_id"], m["candidate_ids"]
        assert anchor not in cands and len(set(cands)) == len(cands)
        assert sorted([anchor, *cands]) == sorted(m["object_ids"])
        d = [world_distance(scene, anchor, c) for c in cands]
        np.testing.assert_allclose(m["distances"], d, atol=1e-6)
        best = int(np.argmin(d)) if m["query"] == "closest" else int(np.argmax(d))
        refs = {r["id"]: r for r in m["refs"]}
        q = s.last_user_text
        text = s.messages[-1]["content"][0]["text"]
        seen[(m["style"], m["metric"])] += 1
        # the reply states the answer in the run's answer style (default "paper": "B. the lamp")
        reply = f"{s.answer}. {option_lines(q)[s.answer]}" if m["style"] == "mcq" else s.answer
        if m["style"] == "mcq":
            assert m["refer_mode"] not in _refer.TAGGED_MODES  # letters mean options only
            opts = option_lines(q)
            assert sorted(opts.values()) == sorted(mention(refs[c]) for c in cands)
            assert opts[s.answer] == mention(refs[cands[best]])
            assert s.reward == {"mode": "mcq", "ground_truth": s.answer}
        else:
            assert s.answer == refs[cands[best]]["handle"]
            assert s.reward == {"mode": "exact", "ground_truth": s.answer}
            assert m["refer_mode"] not in _refer.COORD_MODES
        if m["metric"]:
            stated = re.findall(r"^Distance\[(.+?), (.+?)\]=(\d+\.\d\d)m$", text, flags=re.M)
            assert len(stated) == len(cands)
            by_handle = {refs[c]["handle"]: dist for c, dist in zip(cands, d, strict=True)}
            for a_h, c_h, val in stated:
                assert a_h == refs[anchor]["handle"]
                assert float(val) == pytest.approx(round(by_handle[c_h], 2), abs=1e-9)
            assert text.endswith(f"the answer is {reply}.")
            assert m["refer_mode"] not in _refer.COORD_MODES
        else:
            assert text == reply
            assert "Distance[" not in text
        # every referred object is named in the question
        for r in m["refs"]:
            assert mention(r) in q
    assert set(seen) == {(st, me) for st in ("exact", "mcq") for me in (False, True)}


def test_margin_between_the_two_best_candidates(samples):
    rel, gap = Distance.MIN_REL_GAP, Distance.MIN_ABS_GAP
    assert (rel, gap) == (0.10, 0.15)
    for _, s in samples:
        d = sorted(s.meta["distances"], reverse=s.meta["query"] == "farthest")
        diff = abs(d[0] - d[1])
        assert diff >= gap and diff >= rel * max(d[0], d[1])


def test_references_are_unambiguous(samples):
    modes = Counter()
    for scene, s in samples:
        m = s.meta
        modes[m["refer_mode"]] += 1
        mask = scene.frame(m["frame_ids"][0]).load_mask() if m["refer_mode"] == "name" else None
        for r in m["refs"]:
            if r["mode"] == "name":
                label = scene.object(r["id"]).label
                same = [o.id for o in scene.objects if o.label == label and (mask == o.id).any()]
                assert same == [r["id"]], "named objects are the only visible one of their label"
        handles = [r["handle"] for r in m["refs"]]
        assert len(set(handles)) == len(handles)
    assert set(modes) == set(_refer.REFER_MODES)


def test_derive_answer_recomputes_every_answer(samples):
    task = get_task("si_distance")
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
    scene, s = samples[0]
    flipped = dict(s.meta, query="farthest" if s.meta["query"] == "closest" else "closest")
    assert task.derive_answer(scene, flipped) != s.answer


def test_letters_are_balanced(engine_scenes):
    class McqOnly(Distance):
        STYLES = ("mcq",)

    samples = generate(McqOnly(), engine_scenes, 450, seed=2)
    by_n: dict[int, Counter] = {}
    for _, s in samples:
        by_n.setdefault(len(s.meta["candidate_ids"]), Counter())[s.answer] += 1
    assert sum(sum(c.values()) for c in by_n.values()) >= 1000
    assert set(by_n) == {2, 3, 4}
    for n, counts in by_n.items():
        total = sum(counts.values())
        assert total >= 250
        for letter in LETTERS[:n]:
            assert abs(counts[letter] / total - 1 / n) <= 0.05, (n, counts)


def test_deterministic(engine_scenes):
    task = get_task("si_distance")
    a = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=3)]
    b = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=3)]
    c = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=4)]
    assert a == b and a != c


def test_phrasing_variety(samples):
    for style, templates in TEMPLATES.items():
        assert len(set(templates)) >= 5
        used = {s.meta["phrasing"][0] for _, s in samples if s.meta["style"] == style}
        assert used == set(range(len(templates))), style
    for phrases in (*WHICH_PHRASES.values(), METRIC_REQUESTS):
        assert len(set(phrases)) >= 5
    for _, s in samples:
        assert any(p in s.last_user_text for p in WHICH_PHRASES[s.meta["query"]])
        if s.meta["metric"]:
            assert any(r in s.last_user_text for r in METRIC_REQUESTS)
