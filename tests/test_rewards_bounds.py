"""Rewards on hostile model output: bounded work (a 1 MB answer of any content scores in < 1 s of
CPU in every mode), never an exception on any str, and the capped parse still reads normal
answers right (issue 11, "What the engine lets through" item 2)."""

from __future__ import annotations

import json
import math
import time
import unicodedata

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vst.geometry.text import box3d_to_text
from vst.rewards import compute_reward, det3d_score, ocr_accuracy
from vst.rewards.bounds import MAX_ANSWER_CHARS, MAX_NONSTARTERS, clip_answer, safe_nfkc
from vst.rewards.parsing import normalize_text, parse_boxes3d, split_think
from vst.testing.hostile_text import BOX, hostile_answers

SPECS = {
    "mcq": {"mode": "mcq", "ground_truth": "B"},
    "mcq_text": {"mode": "mcq", "ground_truth": "B. northwest"},
    "mcq_numbered": {"mode": "mcq", "ground_truth": "2"},
    "exact": {"mode": "exact", "ground_truth": "front-left"},
    "exact_box": {"mode": "exact", "ground_truth": {"label": "lamp", "bbox_2d": [0, 0, 9, 9]}},
    "numeric": {"mode": "numeric", "ground_truth": 2.35},
    "order": {"mode": "order", "ground_truth": ["point-A", "point-C", "point-B"]},
    "order_xy": {"mode": "order", "ground_truth": ["(199, 301)", "(573, 187)"]},
    "ocr": {"mode": "ocr", "ground_truth": "ITC Limited"},
    "ocr_long": {"mode": "ocr", "ground_truth": "x" * 70},  # the numpy edit-distance path
    "math": {"mode": "math", "ground_truth": r"\frac{1}{2}"},
    "det3d": {"mode": "det3d", "ground_truth": [BOX]},
    "det3d_empty": {"mode": "det3d", "ground_truth": []},
    "caption": {"mode": "caption", "ground_truth": "A room."},
}


ADVERSARIAL = hostile_answers()


def think(answer: str) -> str:
    return f"<think>reasoning</think>{answer}"


def _cpu_seconds(response: str, spec: dict) -> float:
    """CPU time (not wall time: the test machine is shared) of one scoring."""
    start = time.process_time()
    r = compute_reward(response, spec)
    elapsed = time.process_time() - start
    assert 0.0 <= r["accuracy"] <= 1.0 and r["format"] in (0.0, 1.0)
    return elapsed


@pytest.fixture(scope="module", autouse=True)
def _warm_up():
    # numba box IoU kernels load once per process: not part of a reward's cost
    compute_reward(think(json.dumps([BOX])), SPECS["det3d"])


def test_issue_combining_marks_score_fast_in_every_text_mode():
    """The issue's input: seconds per call before (quadratic NFKC), now milliseconds."""
    response = "<think>x</think>A" + "\u0301\u0316" * 25_000
    for name in ("mcq", "exact", "numeric", "order", "ocr", "math"):
        assert _cpu_seconds(response, SPECS[name]) < 0.25, name


@pytest.mark.parametrize("case", ["combining", "end_tokens", "lt_spaces", "think_tags", "boxes"])
def test_one_megabyte_answers_score_under_a_second(case):
    text = ADVERSARIAL[case]
    for name, spec in SPECS.items():
        for response in (think(text), text, f"<think>{text}</think>B"):
            assert _cpu_seconds(response, spec) < 1.0, (case, name)


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(ADVERSARIAL))
def test_one_megabyte_answers_score_under_a_second_all_cases(case):
    text = ADVERSARIAL[case]
    for name, spec in SPECS.items():
        for response in (think(text), text, f"<think>{text}</think>B"):
            assert _cpu_seconds(response, spec) < 1.0, (case, name)


def test_ocr_lone_surrogates_do_not_raise():
    """The numpy edit distance encoded the shorter string as UTF-32: lone surrogates raised."""
    assert ocr_accuracy("\ud800" * 69, "x" * 70) == 0.0
    assert ocr_accuracy("x" * 69 + "\udfff", "x" * 70) == pytest.approx(69 / 70)
    r = compute_reward(think("\ud800" * 69), SPECS["ocr_long"])
    assert r == {"overall": 0.5, "format": 1.0, "accuracy": 0.0, "checkable": True}


# --------------------------------------------------------------------------------------------
# property test: no input raises, every score stays in range
# --------------------------------------------------------------------------------------------

FRAGMENTS = [
    "\u0301",
    "\u0316",
    "\u0f73",
    "\ud800",
    "\udfff",
    "\x00",
    "\u202e",
    "\u200f",
    "\u2066",
    "\ufeff",
    "9" * 400,
    "1e999",
    "-1e-999",
    "NaN",
    "Infinity",
    "[" * 300,
    "]" * 300,
    '{"a":' * 300,
    '{"bbox_3d": [1e400, 0, 0, 1, 1, 1, 0, 0, 0], "label": "x"}',
    json.dumps(BOX),
    "\\boxed{",
    "}",
    "```json\n",
    "```",
    "<think>",
    "</think>",
    "< / think >",
    "<answer>",
    "</answer>",
    "</s>",
    "<|im_end|>",
    "the answer is ",
    "B",
    "B. northwest",
    "B: point-B",
    "(2)",
    "2. box-A",
    "\n",
    " ",
    "(199, 301)",
    "point-A, ",
    "\\frac{1}{2}",
    "1/0",
    "m²",
]

hostile = st.lists(
    st.one_of(
        st.sampled_from(FRAGMENTS),
        st.tuples(st.sampled_from(FRAGMENTS), st.integers(1, 3000)).map(lambda t: t[0] * t[1]),
        st.text(alphabet=st.characters(exclude_categories=()), max_size=40),  # surrogates too
    ),
    max_size=12,
).map("".join)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile, st.sampled_from(["think", "whole", "in_think"]))
def test_rewards_never_raise_on_hostile_text(text, wrap):
    response = {"think": think(text), "whole": text, "in_think": f"<think>{text}</think>B"}[wrap]
    for spec in SPECS.values():
        r = compute_reward(response, spec)
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["format"] in (0.0, 1.0)
        assert math.isfinite(r["overall"])


# --------------------------------------------------------------------------------------------
# the capped parse still reads normal answers right
# --------------------------------------------------------------------------------------------

PROSE = "The lamp stands next to the sofa, so we compare their depths carefully. " * 80


def test_clip_answer_keeps_both_ends_and_is_idempotent():
    text = "B. northwest\n" + PROSE + "So the answer is B."
    assert len(text) > MAX_ANSWER_CHARS
    clipped = clip_answer(text)
    assert len(clipped) == MAX_ANSWER_CHARS
    assert clipped.startswith("B. northwest\n") and clipped.endswith("So the answer is B.")
    assert clip_answer(clipped) == clipped
    assert clip_answer("short") == "short"
    assert clip_answer("x" * 10, 4, head_only=True) == "xxxx"


@pytest.mark.parametrize(
    ("answer", "spec", "accuracy"),
    [
        ("B. northwest\n" + PROSE, SPECS["mcq"], 1.0),  # leading choice, long explanation
        (PROSE + "Therefore the answer is (B).", SPECS["mcq"], 1.0),  # trailing cue
        (PROSE + "Therefore the answer is (A).", SPECS["mcq"], 0.0),
        (PROSE + r"\boxed{B}", SPECS["mcq_text"], 1.0),
        (PROSE + "The answer is 2.", SPECS["mcq_numbered"], 1.0),
        (PROSE + "Answer: front left", SPECS["exact"], 1.0),
        (PROSE + "Answer: front right", SPECS["exact"], 0.0),
        (PROSE + "so the answer is 2.35 m", SPECS["numeric"], 1.0),
        (PROSE + "so the answer is 235 cm", {**SPECS["numeric"], "unit": "m"}, 1.0),
        (PROSE + "Answer: point-A, point-C, point-B", SPECS["order"], 1.0),
        (PROSE + "Answer: ITC Limited", SPECS["ocr"], 1.0),
        (PROSE + r"\boxed{0.5}", SPECS["math"], 1.0),
    ],
)
def test_capped_parse_reads_long_normal_answers(answer, spec, accuracy):
    assert len(answer) > MAX_ANSWER_CHARS
    assert compute_reward(think(answer), spec)["accuracy"] == accuracy
    assert compute_reward(answer, spec)["accuracy"] == accuracy  # no think tags: judged whole


def test_det3d_reads_every_box_of_a_long_legitimate_answer():
    boxes = [[float(i), 0.0, 3.0, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0] for i in range(300)]
    text = box3d_to_text(boxes, ["chair"] * 300)
    assert len(text) > 5 * MAX_ANSWER_CHARS
    pred, labels = parse_boxes3d(text)
    assert len(pred) == 300 and labels == ["chair"] * 300
    gt = [{"bbox_3d": b, "label": "chair"} for b in boxes]
    r = compute_reward(think(text), {"mode": "det3d", "ground_truth": gt})
    assert r["format"] == 1.0
    assert r["accuracy"] == pytest.approx(det3d_score(pred, [g["bbox_3d"] for g in gt]).reward)
    assert r["accuracy"] > 0.99


def test_safe_nfkc_equals_nfkc_on_real_text_and_cuts_long_mark_runs():
    for text in ["café", "cafe\u0301", "ﬁle", "①", "Ｂ", "e\u0301\u0316\u0323", "m²", "ǘ"]:
        assert safe_nfkc(text) == unicodedata.normalize("NFKC", text)
    assert normalize_text("Cafe\u0301") == normalize_text("café") == "café"
    runs = safe_nfkc("a" + "\u0301" * 1000 + "b")
    assert runs[0] == "á" and runs[-1] == "b"
    assert len(runs) == 2 + MAX_NONSTARTERS - 1  # "a" + 30 marks, the first composed with it


def test_split_think_on_long_inputs_keeps_its_meaning():
    assert split_think("<think>r</think>B" + "</s>" * 1000) == ("r", "B", True)
    assert split_think("<think>r</think>B <|im_end|>\n</s> \n").well_formed
    assert split_think("<think>r</think>B" + "<think>" * 1000).answer == "B"
    assert not split_think("<think>r</think>B" + "<think>" * 1000).well_formed
    assert split_think("<" + " " * 10_000 + "/think>B") == ("", "B", False)
    assert split_think("< / THINK >B").answer == "B"
