"""The release's RL reward modes <-> vst specs, and "any of" (list) reward specs."""

from __future__ import annotations

import json

import pytest

from vst.rewards import accuracy_reward, compute_reward, load_reward_specs
from vst.rewards.release import (
    release_answer,
    release_det3d_truth,
    release_mode,
    release_reward,
    release_spec,
)

BOX_TEXT = (
    '```json\n[\n  {"bbox_3d": [1, 2, 3, 0.5, 0.5, 0.5, 0.5, 0, -0.25], "label": "chair"}\n]\n```'
)
BOX_TRUTH = [{"bbox_3d": [1.0, 2.0, 3.0, 0.5, 0.5, 0.5, 90.0, 0.0, -45.0], "label": "chair"}]


def think(answer: str) -> str:
    return f"<think>r</think> {answer}"


# -- "any of" specs ---------------------------------------------------------------------------
def test_any_of_takes_the_best_spec():
    specs = [{"mode": "mcq", "ground_truth": "B"}, {"mode": "exact", "ground_truth": "lamp"}]
    assert compute_reward(think("lamp"), specs)["accuracy"] == 1.0  # exact, not mcq
    assert compute_reward(think("B"), specs)["accuracy"] == 1.0  # mcq
    assert compute_reward(think("C"), specs)["accuracy"] == 0.0
    assert compute_reward(think("B"), json.dumps(specs))["overall"] == 1.0  # JSON string
    # MRA of 1.8 against 2 (10% off: thresholds 0.50..0.90 pass) is 0.9; exact gives 0
    specs = [{"mode": "numeric", "ground_truth": 2}, {"mode": "exact", "ground_truth": "two"}]
    assert compute_reward(think("1.8"), specs)["accuracy"] == pytest.approx(0.9)
    assert accuracy_reward("two", specs) == (1.0, True)


def test_any_of_format_and_checkable():
    det = {"mode": "det3d", "ground_truth": BOX_TRUTH}
    word = {"mode": "exact", "ground_truth": "x"}
    r = compute_reward(think("x"), [det, word])
    assert (r["format"], r["accuracy"]) == (0.0, 1.0)  # det3d rule: the answer has no boxes
    assert compute_reward(think("x"), [word, word])["format"] == 1.0
    assert compute_reward(think(BOX_TEXT), [word, det])["format"] == 1.0
    caption = {"mode": "caption", "ground_truth": "a room"}
    assert compute_reward(think("a room"), [caption, caption])["checkable"] is False
    r = compute_reward(think("x"), [caption, word])
    assert (r["checkable"], r["accuracy"]) == (True, 1.0)


def test_any_of_errors_and_single_specs_unchanged():
    with pytest.raises(ValueError, match="list is empty"):
        compute_reward("x", [])
    with pytest.raises(ValueError, match="reward spec 1: unknown reward mode 'bogus'"):
        load_reward_specs([{"mode": "exact", "ground_truth": "a"}, {"mode": "bogus"}])
    one = {"mode": "exact", "ground_truth": "a"}
    assert load_reward_specs(one) == [one]
    assert compute_reward(think("a"), one) == {
        "overall": 1.0,
        "format": 1.0,
        "accuracy": 1.0,
        "checkable": True,
    }


# -- release -> vst ---------------------------------------------------------------------------
def test_mode_names_map_to_vst_specs():
    assert release_spec("multi_choices_score", "B") == {"mode": "mcq", "ground_truth": "B"}
    assert release_spec("vqa_score", " yes ") == {"mode": "exact", "ground_truth": "yes"}
    assert release_spec("relaxed_score", "10") == {
        "mode": "numeric",
        "ground_truth": "10",
        "tolerance": 0.05,
    }
    assert release_spec("anls_score", "exit")["mode"] == "ocr"
    assert release_spec("math_score", "\\frac{1}{2}")["mode"] == "math"
    assert release_spec("bbox3d", BOX_TEXT) == {"mode": "det3d", "ground_truth": BOX_TRUTH}


def test_relaxed_score_rules():
    spec = release_spec("relaxed_score", "10")
    assert accuracy_reward("10.5", spec)[0] == 1.0  # 5% off
    assert accuracy_reward("10.6", spec)[0] == 0.0
    year = release_spec("relaxed_score", "2019")
    assert year["tolerance"] == 0.0
    assert accuracy_reward("2020", year)[0] == 0.0  # within 5% but a year: exact only
    assert accuracy_reward("2019", year)[0] == 1.0
    percent = release_spec("relaxed_score", "45%")  # '%' ignored, not / 100
    assert accuracy_reward("45", percent)[0] == 1.0
    assert accuracy_reward("0.45", percent)[0] == 0.0


def test_anls_is_the_similarity_not_the_release_distance():
    spec = release_spec("anls_score", "hello world")
    assert accuracy_reward("hello worle", spec)[0] == pytest.approx(1 - 1 / 11)
    assert accuracy_reward("goodbye", spec)[0] == 0.0  # similarity below 0.5


def test_bbox3d_answers():
    assert release_det3d_truth("```json\n[]\n```") == []
    with pytest.raises(ValueError, match="bbox_3d has 2 values, expected 9"):
        release_det3d_truth('```json\n[{"bbox_3d": [1, 2], "label": "x"}]\n```')
    with pytest.raises(ValueError, match="not a ```json box list"):
        release_spec("bbox3d", "a chair somewhere")
    specs, dropped = release_reward(["bbox3d"], BOX_TEXT)
    assert (specs, dropped) == ([{"mode": "det3d", "ground_truth": BOX_TRUTH}], [])
    assert compute_reward(think(BOX_TEXT), specs)["accuracy"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="bbox3d with other modes"):
        release_reward(["bbox3d", "vqa_score"], BOX_TEXT)


def test_unknown_or_unusable_modes():
    with pytest.raises(ValueError, match="unknown release reward mode 'exp_rate'"):
        release_reward(["vqa_score", "exp_rate"], "1")
    with pytest.raises(ValueError, match="unknown release reward mode 'foo'"):
        release_spec("foo", "1")
    # a mode that cannot read this answer is left out when another one can
    specs, dropped = release_reward(["multi_choices_score", "vqa_score"], "yes")
    assert specs == [{"mode": "exact", "ground_truth": "yes"}]
    assert dropped == ["multi_choices_score: mcq ground truth 'yes' is not an option label"]
    with pytest.raises(ValueError, match="relaxed_score: numeric ground truth 'yes' has no"):
        release_reward(["relaxed_score"], "yes")


def test_release_exact_step():
    # vst's ANLS judges the final clause: the whole answer repeated back is not enough
    specs, _ = release_reward(["anls_score"], "The answer is B")
    assert accuracy_reward("the answer is b", specs[:1])[0] == 0.0
    assert specs[1] == {"mode": "exact", "ground_truth": ["The answer is B", "B"]}
    assert accuracy_reward("the answer is b", specs) == (1.0, True)
    # a multi-mode row: vqa + relaxed, the exact step already given by vqa_score
    specs, _ = release_reward(["vqa_score", "relaxed_score"], "12")
    assert [s["mode"] for s in specs] == ["exact", "numeric"]
    assert accuracy_reward("12.5", specs)[0] == 1.0  # relaxed: 4% off


# -- vst -> release ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("spec", "mode", "answer"),
    [
        ({"mode": "mcq", "ground_truth": "B"}, "multi_choices_score", "B"),
        ({"mode": "mcq", "ground_truth": "D. east"}, "multi_choices_score", "D"),
        ({"mode": "mcq", "ground_truth": "2. box-A"}, "multi_choices_score", "2"),
        ({"mode": "exact", "ground_truth": "front-left"}, "vqa_score", "front-left"),
        ({"mode": "exact", "ground_truth": ["yes", "yeah"]}, "vqa_score", "yes"),
        (
            {"mode": "exact", "ground_truth": {"label": "sofa", "bbox_2d": [0, 237, 167, 606]}},
            "vqa_score",
            "sofa: [0, 237, 167, 606]",
        ),
        ({"mode": "numeric", "ground_truth": 23}, "relaxed_score", "23"),
        ({"mode": "numeric", "ground_truth": 6.1}, "relaxed_score", "6.1"),
        ({"mode": "numeric", "ground_truth": 3.0}, "relaxed_score", "3"),
        ({"mode": "order", "ground_truth": ["plant", "door"]}, "vqa_score", "plant, door"),
        ({"mode": "ocr", "ground_truth": "EXIT"}, "anls_score", "EXIT"),
        ({"mode": "math", "ground_truth": "\\frac{1}{2}"}, "math_score", "\\frac{1}{2}"),
        (
            {"mode": "det3d", "ground_truth": BOX_TRUTH},
            "bbox3d",
            '```json\n[\n  {"bbox_3d": [1.0, 2.0, 3.0, 0.5, 0.5, 0.5, 0.5, 0.0, -0.25], '
            '"label": "chair"}\n]\n```',
        ),
    ],
)
def test_vst_to_release(spec, mode, answer):
    assert release_mode(spec) == mode
    assert release_answer(spec) == answer


def test_release_answers_read_back():
    det = {"mode": "det3d", "ground_truth": BOX_TRUTH}
    assert release_spec("bbox3d", release_answer(det)) == det
    order = {"mode": "order", "ground_truth": ["plant", "door", "chair"]}
    specs, _ = release_reward([release_mode(order)], release_answer(order))
    assert accuracy_reward("Plant, door, chair", specs)[0] == 1.0
    with pytest.raises(ValueError, match="'caption' has no release form"):
        release_mode({"mode": "caption", "ground_truth": "a room"})


def test_adapters_read_exported_meta_info_and_spec_lists():
    from vst.rewards.adapters import easyr1_compute_score, reward_specs, verl_compute_score

    spec = {"mode": "numeric", "ground_truth": 2}
    info = json.dumps({"mode": ["relaxed_score"], "reward": spec, "task": "si_distance"})
    assert reward_specs(info) == [spec]
    assert reward_specs({"mode": ["relaxed_score"], "reward": [spec, spec]}) == [spec, spec]
    # 1.8 against 2: MRA 0.9 (vst's spec), not the release's 5% pass/fail
    got = easyr1_compute_score([{"response": "<think>r</think>1.8", "ground_truth": info}])
    assert got == [{"overall": pytest.approx(0.95), "format": 1.0, "accuracy": pytest.approx(0.9)}]
    assert verl_compute_score("si_distance", "1.8", info) == pytest.approx(0.45)  # no think
    any_of = [{"mode": "mcq", "ground_truth": "B"}, {"mode": "exact", "ground_truth": "lamp"}]
    assert verl_compute_score(None, "<think>r</think>lamp", json.dumps(any_of)) == 1.0
    with pytest.raises(ValueError, match="unknown reward mode"):
        reward_specs({"mode": ["vqa_score"], "ground_truth": "x"})
