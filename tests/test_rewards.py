"""vst.rewards: format, accuracy per mode, 3D detection, total, anti-gaming and property tests,
and the rewards run over real data-engine samples (the engine and the rewards must agree)."""

from __future__ import annotations

import itertools
import json
import math
import re
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vst.geometry.text import box3d_to_text
from vst.rewards import (
    accuracy_reward,
    anls,
    compute_reward,
    det3d_reward,
    det3d_score,
    exact_accuracy,
    format_reward,
    load_reward_spec,
    math_accuracy,
    mcq_accuracy,
    numeric_accuracy,
    ocr_accuracy,
    order_accuracy,
)
from vst.rewards.accuracy import levenshtein


def think(answer: str) -> str:
    return f"<think>reasoning</think>{answer}"


# --------------------------------------------------------------------------------------------
# format
# --------------------------------------------------------------------------------------------

DET_OK = '```json\n[{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, 0], "label": "chair"}]\n```'


@pytest.mark.parametrize(
    ("response", "mode", "score"),
    [
        (think("B"), "mcq", 1.0),
        ("<think></think>B", "mcq", 1.0),
        (think(""), "mcq", 0.0),
        ("B", "mcq", 0.0),
        ("<think>a<think>b</think>c</think>B", "mcq", 0.0),
        (think("B <think>x</think>"), "mcq", 0.0),
        (think("B</think>"), "mcq", 0.0),
        ("x <think>r</think>B", "mcq", 0.0),
        ("<think>never closed B", "mcq", 0.0),
        (think(DET_OK), "det3d", 1.0),
        (think("```json\n[]\n```"), "det3d", 1.0),
        (think("[]"), "det3d", 1.0),
        (think('[{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0], "label": "chair"}]'), "det3d", 0.0),
        (think('[{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, 0]}]'), "det3d", 0.0),
        (think('{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, 0], "label": "chair"}'), "det3d", 0.0),
        (think("a chair at the back"), "det3d", 0.0),
        (DET_OK, "det3d", 1.0),  # no thinking prompt for detection: no tags needed
        ("<think>x " + DET_OK, "det3d", 0.0),  # unfinished reasoning
        ("<think>a</think><think>b</think>" + DET_OK, "det3d", 0.0),  # malformed tags
        ("x </think>" + DET_OK, "det3d", 0.0),
        ("a chair at the back", "det3d", 0.0),
    ],
)
def test_format_reward(response, mode, score):
    assert format_reward(response, mode) == score


# --------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------

OPTIONS = ["north", "northwest", "west", "southeast"]


@pytest.mark.parametrize(
    ("answer", "options", "score"),
    [
        ("B", None, 1.0),
        ("(b)", None, 1.0),
        ("Option B.", None, 1.0),
        ("B. northwest", None, 1.0),
        ("B. northwest", OPTIONS, 1.0),
        ("northwest", OPTIONS, 1.0),
        ("B. north", OPTIONS, 0.0),
        ("north", OPTIONS, 0.0),
        ("A", None, 0.0),
        ("A, B", None, 0.0),
        ("A or B", None, 0.0),
        ("A B C D", None, 0.0),
        ("ABCD", None, 0.0),
        ("A. B", None, 0.0),
        ("A. Actually the answer is B", None, 0.0),
        (r"\boxed{B}", None, 1.0),
        (r"\boxed{A} the answer is B", None, 0.0),  # the boxed answer is the one judged
        ("", None, 0.0),
    ],
)
def test_mcq(answer, options, score):
    assert mcq_accuracy(answer, "B", options) == score


def test_mcq_ground_truth_forms():
    assert mcq_accuracy("B", "(B)") == 1.0
    assert mcq_accuracy("B", "northwest", OPTIONS) == 1.0  # option text as ground truth
    with pytest.raises(ValueError):
        mcq_accuracy("B", "northwest")  # not a letter and no options
    with pytest.raises(ValueError):
        mcq_accuracy("B", 2)  # type: ignore[arg-type]


MARKS = ["box-B", "box-A", "box-C"]


@pytest.mark.parametrize(
    ("answer", "gt", "options", "score"),
    [
        # every answer style the engine writes scores 1 against a bare-letter ground truth
        ("B", "B", None, 1.0),  # letter style
        ("B. northwest", "B", None, 1.0),  # paper style
        ("B: point-B", "B", None, 1.0),  # paper style, correspondence
        ("A. northwest", "B", None, 0.0),
        # a ground truth written in the paper's style: the letter and its text must both hold
        ("B", "B. northwest", None, 1.0),
        ("B. northwest", "B. northwest", None, 1.0),
        ("northwest", "B. northwest", None, 1.0),
        ("A. northwest", "B. northwest", None, 0.0),
        ("B. southeast", "B. northwest", None, 0.0),
        ("B: point-B", "B: point-B", None, 1.0),
        ("B. point-B", "B: point-B", None, 1.0),
        ("B: point-C", "B: point-B", None, 0.0),
        ("A: point-A", "B: point-B", None, 0.0),
        # a wrong letter with the right option's text is not that option (the "A" of "A. ..."
        # used to be dropped as an article and the text matched)
        ("A. northwest", "B", OPTIONS, 0.0),
        # numbered options (marks carry letters): numbers are the labels, letters are not
        ("2", "2", None, 1.0),
        ("(2)", "2", None, 1.0),
        ("2. box-A", "2", None, 1.0),
        ("Option 2", "2", None, 1.0),
        ("The answer is 2.", "2", None, 1.0),
        ("2", "(2)", None, 1.0),
        ("B", "2", None, 0.0),
        ("1", "2", None, 0.0),
        ("1, 2", "2", None, 0.0),
        ("2.5", "2", None, 0.0),
        ("12", "2", None, 0.0),
        ("2\n1. box-B is nearer", "2", None, 0.0),
        ("box-A", "2. box-A", None, 1.0),
        ("1. box-A", "2. box-A", None, 0.0),
        ("2. box-B", "2. box-A", None, 0.0),
        ("box-A", "2", MARKS, 1.0),
        ("2. box-A", "2", MARKS, 1.0),
        ("2. box-B", "2", MARKS, 0.0),
        ("B. 3", "B", None, 1.0),  # a letter whose option text is a number
    ],
)
def test_mcq_answer_styles(answer, gt, options, score):
    assert mcq_accuracy(answer, gt, options) == score


# --------------------------------------------------------------------------------------------
# open-ended exact match
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gt", "score"),
    [
        ("left", "left", 1.0),
        ("Left.", "left", 1.0),
        ("front left", "front-left", 1.0),
        ("**box-C**", "box-C", 1.0),
        ("Distance[A,B]=5.56m\nTherefore, the answer is box-C.", "box-C", 1.0),
        ("The sofa", "sofa", 1.0),
        ("couch", ["sofa", "couch"], 1.0),
        ("left or right", "left", 0.0),
        ("left, right", "left", 0.0),
        ("right", "left", 0.0),
        ("box-B", "box-C", 0.0),
        ("", "left", 0.0),
        (r"\boxed{left} the answer is right", "right", 0.0),
    ],
)
def test_exact(answer, gt, score):
    assert exact_accuracy(answer, gt) == score


def test_exact_label_and_2d_box():
    gt = {"label": "pillow", "bbox_2d": [0, 0, 10, 10]}
    assert exact_accuracy("pillow: [0, 0, 10, 10]", gt) == 1.0
    assert exact_accuracy('{"label": "pillow", "bbox_2d": [0, 0, 10, 10]}', gt) == 1.0
    assert exact_accuracy("pillow: [0, 0, 10, 5]", gt) == pytest.approx(0.5)  # IoU 50 / 100
    assert exact_accuracy("pillow: [0, 0, 20, 20]", gt) == pytest.approx(0.25)
    assert exact_accuracy("sofa: [0, 0, 10, 10]", gt) == 0.0  # wrong label
    assert exact_accuracy("pillow: [10, 10, 0, 0]", gt) == 0.0  # degenerate box
    assert exact_accuracy("pillow", gt) == 0.0
    assert exact_accuracy("pillow: [0, 0, 10]", gt) == 0.0


# --------------------------------------------------------------------------------------------
# numeric and units
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gt", "unit", "score"),
    [
        ("44 cm", 44, None, 1.0),
        ("2.35 m", 2.35, None, 1.0),
        ("34.5 square meters", 34.5, None, 1.0),
        ("45 cm", 0.45, "m", 1.0),  # converted to the ground truth's unit
        ("45 cm", "0.45 m", None, 1.0),
        ("1.2 m", "120 cm", None, 1.0),
        ("1.2 m", 120, "centimetres", 1.0),
        ("12 square meters", 12, "m²", 1.0),
        ("12 m²", 12, "m2", 1.0),
        ("12 sq m", "12 square metres", None, 1.0),
        ("120000 cm²", 12, "m2", 1.0),
        ("12 m", 12, "m2", 0.0),  # metres for an area: wrong dimension
        ("45", 0.45, "m", 0.0),  # a bare number is read in the ground truth's unit
        ("0.44 m", 44, None, 0.0),  # bare ground truth: the number as written (see docs)
        ("9", 10, None, 0.9),  # MRA: 10% off passes 9 of 10 thresholds (0.50 .. 0.90)
        ("8 m", 10, None, 0.7),
        ("11.5", 10, None, 0.8),
        ("5", 10, None, 0.1),  # 50% off: only t = 0.50
        ("4", 10, None, 0.0),
        ("0", 0, None, 1.0),  # zero ground truth needs an exact zero
        ("0.1", 0, None, 0.0),
        ("many", 10, None, 0.0),
        ("1e999", 10, None, 0.0),
        ("two", 2, None, 1.0),
        ("The answer is 3 chairs", 3, None, 1.0),
    ],
)
def test_numeric(answer, gt, unit, score):
    assert numeric_accuracy(answer, gt, unit) == pytest.approx(score)


def test_numeric_tolerance():
    assert numeric_accuracy("10.4", 10, tolerance=0.05) == 1.0
    assert numeric_accuracy("10.5", 10, tolerance=0.05) == 1.0  # boundary is inside
    assert numeric_accuracy("10.6", 10, tolerance=0.05) == 0.0
    assert numeric_accuracy("3", 3, tolerance=0.0) == 1.0
    with pytest.raises(ValueError):
        numeric_accuracy("3", 3, tolerance=-1)
    with pytest.raises(ValueError):
        numeric_accuracy("3", "unknown")
    with pytest.raises(ValueError):
        numeric_accuracy("3", 3, unit="furlongs")


# --------------------------------------------------------------------------------------------
# order
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("answer", "gt", "score"),
    [
        ("A, C, B", ["A", "C", "B"], 1.0),
        ("A C B", ["A", "C", "B"], 1.0),
        ('["A", "C", "B"]', ["A", "C", "B"], 1.0),
        ("A -> C -> B", ["A", "C", "B"], 1.0),
        ("A, B, C", ["A", "C", "B"], 0.0),
        ("A, C", ["A", "C", "B"], 0.0),
        ("A, C, B, D", ["A", "C", "B"], 0.0),
        ("A, C, B or A, B, C", ["A", "C", "B"], 0.0),
        ("point-C (toilet), point-A (sink)", ["point-C", "point-A"], 1.0),
        ("point-A (sink), point-C (toilet)", ["point-C", "point-A"], 0.0),
        ("trash can, sink-A, sink-B", ["trash can", "sink-A", "sink-B"], 1.0),
        ("monitor, picture, door", ["monitor", "picture", "door"], 1.0),
        ("1. monitor\n2. picture\n3. door", ["monitor", "picture", "door"], 1.0),
        (
            '```json\n[\n  {"point_2d": [199, 301], "label": "pillow"},\n'
            '  {"point_2d": [573, 187], "label": "table"}\n]\n```',
            ["(199, 301)", "(573, 187)"],
            1.0,
        ),
        (
            '[{"point_2d": [573, 187], "label": "table"}, {"point_2d": [199, 301]}]',
            ["(199, 301)", "(573, 187)"],
            0.0,
        ),
        ("(199, 301), (573, 187)", ["(199, 301)", "(573, 187)"], 1.0),
        ("(199, 300), (573, 187)", ["(199, 301)", "(573, 187)"], 0.0),
        (
            "[590, 194, 614, 239] (lamp), [397, 109, 534, 312] (shelf)",
            ["[590, 194, 614, 239]", "[397, 109, 534, 312]"],
            1.0,
        ),
        ("", ["A", "B"], 0.0),
    ],
)
def test_order(answer, gt, score):
    assert order_accuracy(answer, gt) == score


def test_order_bad_ground_truth():
    for gt in ("A, B", [], ["A", ""]):
        with pytest.raises(ValueError):
            order_accuracy("A, B", gt)


# --------------------------------------------------------------------------------------------
# OCR: ANLS
# --------------------------------------------------------------------------------------------


def test_anls_hand_values():
    assert anls("ITC Limited", "itc limited") == 1.0  # case and spacing do not count
    assert anls("  itc   limited ", ["xyz", "ITC Limited"]) == 1.0
    assert anls("abcdefghij", "abcdefghiX") == pytest.approx(0.9)  # one edit in 10 chars
    assert anls("abcdefghi", "abcdefghij") == pytest.approx(0.9)  # one deletion
    assert anls("abcd", "abxy") == pytest.approx(0.5)  # similarity 0.5 is kept
    assert anls("abcde", "abxyz") == 0.0  # similarity 0.4 < 0.5
    assert anls("cat", "dog") == 0.0  # unrelated
    assert anls("", "") == 1.0
    assert anls("", "abc") == 0.0
    assert anls("a very long unrelated answer", "7") == 0.0
    # not inverted (the public release's defect): right beats wrong
    assert anls("invoice", "invoice") > anls("receipt", "invoice")


def test_ocr_accuracy_uses_final_answer():
    assert ocr_accuracy("The answer is ITC Limited.", "itc limited") == 1.0
    assert ocr_accuracy(r"\boxed{ITC Limted}", ["itc limited"]) == pytest.approx(10 / 11)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=150), st.text(max_size=150))
def test_levenshtein_numpy_path_matches_python(a, b):
    def reference(x: str, y: str) -> int:
        prev = list(range(len(y) + 1))
        for i, cx in enumerate(x, 1):
            cur = [i]
            for j, cy in enumerate(y, 1):
                cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (cx != cy)))
            prev = cur
        return prev[-1]

    assert levenshtein(a, b) == reference(a, b)
    assert levenshtein(a * 3, b) == reference(a * 3, b)


# --------------------------------------------------------------------------------------------
# math
# --------------------------------------------------------------------------------------------


@pytest.fixture
def no_math_verify(monkeypatch):
    monkeypatch.setitem(sys.modules, "math_verify", None)  # import raises ImportError


@pytest.mark.parametrize(
    ("answer", "gt", "score"),
    [
        ("0.5", r"\frac{1}{2}", 1.0),
        (r"\boxed{\dfrac{1}{2}}", "1/2", 1.0),
        ("$x = 3$", "3", 1.0),
        ("1,000", "1000", 1.0),
        (r"45^\circ", "45", 1.0),
        (r"\text{(B)}", "(B)", 1.0),
        ("The answer is 12.", "12", 1.0),
        ("4", "3", 0.0),
        (r"\boxed{5} but maybe 3", "3", 0.0),  # the boxed content is judged, nothing else
        (r"\boxed{5} but maybe 3", "5", 1.0),
        ("", "3", 0.0),
    ],
)
def test_math_fallback(no_math_verify, answer, gt, score):
    assert math_accuracy(answer, gt) == score


def test_math_uses_math_verify_when_installed(monkeypatch):
    calls = []

    class FakeMathVerify:
        @staticmethod
        def parse(text):
            calls.append(text)
            return [text]

        @staticmethod
        def verify(gold, pred):
            return gold == ["$x^2$"] and pred == ["x*x"]

    monkeypatch.setitem(sys.modules, "math_verify", FakeMathVerify)
    assert math_accuracy("x*x", "x^2") == 1.0
    assert calls == ["$x^2$", "x*x"]
    assert math_accuracy("y", "x^2") == 0.0

    class Broken:
        @staticmethod
        def parse(text):
            raise ValueError("signal only works in main thread")

    monkeypatch.setitem(sys.modules, "math_verify", Broken)
    assert math_accuracy("0.5", "1/2") == 1.0  # falls back to the normalised comparison


# --------------------------------------------------------------------------------------------
# 3D detection
# --------------------------------------------------------------------------------------------

CUBE = np.array([0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


def gt_list(boxes, labels=None):
    labels = labels or ["chair"] * len(boxes)
    return [
        {"bbox_3d": list(map(float, b)), "label": lab} for b, lab in zip(boxes, labels, strict=True)
    ]


def det_text(boxes, labels=None):
    labels = labels or ["chair"] * len(boxes)
    return box3d_to_text(np.asarray(boxes, dtype=float).reshape(-1, 9), labels)


def shifted(box, dx=0.0, dy=0.0, dz=0.0):
    out = np.array(box, dtype=float)
    out[:3] += (dx, dy, dz)
    return out


def test_det3d_perfect():
    assert det3d_reward(think(det_text([CUBE])), gt_list([CUBE])) == pytest.approx(1.0)


def test_det3d_half_cube_shift_is_a_true_positive():
    # overlap 0.5, union 1.5: IoU 1/3 >= 0.25 -> TP, F1 = 1
    reward = det3d_reward(think(det_text([shifted(CUBE, dx=0.5)])), gt_list([CUBE]))
    assert reward == pytest.approx(0.5 * (1 / 3) + 0.5 * 1.0)


def test_det3d_below_threshold_is_not_a_true_positive():
    # overlap 0.3, union 1.7: IoU 0.17647 < 0.25 -> TP 0, FP 1, FN 1, F1 0
    s = det3d_score([shifted(CUBE, dx=0.7)], [CUBE])
    assert (s.tp, s.fp, s.fn, s.f1) == (0, 1, 1, 0.0)
    assert s.reward == pytest.approx(0.5 * 0.3 / 1.7)


def test_det3d_rotation_degrees_convention():
    box = np.array([0.0, 0.0, 3.0, 2.0, 1.0, 0.5, 0.0, 90.0, 0.0])  # yaw 90 degrees
    text = think(det_text([box]))  # written as yaw 0.5 (= 90 / 180)
    assert '"bbox_3d": [0.0, 0.0, 3.0, 2.0, 1.0, 0.5, 0.0, 0.5, 0.0]' in text
    assert det3d_reward(text, gt_list([box])) == pytest.approx(1.0)
    wrong = box.copy()
    wrong[7] = 0.0
    assert det3d_reward(text, gt_list([wrong])) < 0.9


def test_det3d_permutation_invariant():
    gts = [shifted(CUBE, dx=k * 2.0) for k in range(4)]
    preds = [shifted(b, dx=0.1 * k, dz=-0.05 * k) for k, b in enumerate(gts)]
    ref = det3d_reward(think(det_text(preds)), gt_list(gts))
    rng = np.random.default_rng(0)
    for _ in range(5):
        perm_p, perm_g = rng.permutation(4), rng.permutation(4)
        pred_text = think(det_text([preds[i] for i in perm_p]))
        assert det3d_reward(pred_text, gt_list([gts[i] for i in perm_g])) == pytest.approx(ref)
    assert 0.5 < ref < 1.0


def iou_recall_reward(pred, gt):
    """Paper Table 13's collapsing alternative: 0.5 * IoU + 0.5 * recall."""
    s = det3d_score(pred, gt)
    return 0.5 * s.iou_term + 0.5 * s.tp / len(gt)


def test_det3d_false_positives_lower_the_reward_table13():
    gts = [CUBE, shifted(CUBE, dx=3.0)]
    preds = [shifted(CUBE, dx=0.1), shifted(CUBE, dx=3.1)]
    far = [shifted(CUBE, dx=-10.0 - 2 * k) for k in range(6)]
    rewards, alternative = [], []
    for k in range(len(far) + 1):
        boxes = preds + far[:k]
        rewards.append(det3d_reward(think(det_text(boxes)), gt_list(gts)))
        alternative.append(iou_recall_reward(np.array(boxes), np.array(gts)))
    assert all(a > b for a, b in itertools.pairwise(rewards))  # strictly lower
    assert alternative == pytest.approx([alternative[0]] * len(alternative))  # free FPs
    # hand value with 2 false positives: TP 2, FP 2, FN 0 -> F1 = 4 / 6
    iou = (0.9 / 1.1 + 0.9 / 1.1) / 2
    assert rewards[2] == pytest.approx(0.5 * iou + 0.5 * 4 / 6)


def test_det3d_duplicates_and_degenerate_boxes_do_not_help():
    one = det3d_reward(think(det_text([CUBE])), gt_list([CUBE]))
    dup = det3d_reward(think(det_text([CUBE] * 5)), gt_list([CUBE]))
    assert dup == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 6) and dup < one
    flat = CUBE.copy()
    flat[3] = 0.0
    assert det3d_reward(think(det_text([flat])), gt_list([CUBE])) == 0.0


def test_det3d_class_aware():
    gts = [CUBE, shifted(CUBE, dx=3.0)]
    text = think(det_text(gts, ["table", "chair"]))  # right boxes, swapped labels
    gt = gt_list(gts, ["chair", "table"])
    assert det3d_reward(text, gt) == pytest.approx(1.0)
    assert det3d_reward(text, gt, class_aware=True) == 0.0
    right = think(det_text(gts, ["Chair", "table"]))  # labels compared normalised
    assert det3d_reward(right, gt, class_aware=True) == pytest.approx(1.0)
    spec = {"mode": "det3d", "ground_truth": gt, "class_aware": True}
    assert compute_reward(text, spec)["accuracy"] == 0.0


def test_det3d_empty_ground_truth():
    assert det3d_reward(think("```json\n[]\n```"), []) == 1.0
    assert det3d_reward(think("[]"), []) == 1.0
    assert det3d_reward(think(det_text([CUBE])), []) == 0.0
    assert det3d_reward(think("nothing to see"), []) == 0.0  # unparsable is not "no boxes"
    assert det3d_reward(think('[{"label": "chair"}]'), []) == 0.0
    assert det3d_score(np.zeros((0, 9)), np.zeros((0, 9))).reward == 1.0
    assert det3d_score([CUBE], np.zeros((0, 9))).reward == 0.0
    assert det3d_reward(think("[]"), gt_list([CUBE])) == 0.0


def test_det3d_reward_inputs():
    arr = np.stack([CUBE])
    assert det3d_reward(det_text([CUBE]), arr) == pytest.approx(1.0)  # no think: whole text
    assert det3d_reward(None, arr) == 0.0  # type: ignore[arg-type]
    assert det3d_reward("<think>" + det_text([CUBE]), arr) == 0.0  # unfinished reasoning
    with pytest.raises(ValueError):
        det3d_reward("[]", [{"label": "chair"}])


# --------------------------------------------------------------------------------------------
# total, dispatch, spec handling
# --------------------------------------------------------------------------------------------


def test_compute_reward_total_and_weights():
    spec = {"mode": "mcq", "ground_truth": "B"}
    assert compute_reward(think("B"), spec) == {
        "overall": 1.0,
        "format": 1.0,
        "accuracy": 1.0,
        "checkable": True,
    }
    assert compute_reward("B", spec)["overall"] == 0.5  # right answer, no format
    assert compute_reward(think("A"), spec)["overall"] == 0.5  # format only
    r = compute_reward(think("B"), json.dumps(spec), w_acc=1.0, w_fmt=0.2)
    assert r["overall"] == pytest.approx(1.2)
    with pytest.raises(ValueError):
        compute_reward(think("B"), spec, w_acc=-1)


def test_caption_is_not_checkable():
    r = compute_reward(think("A cosy room."), {"mode": "caption", "ground_truth": "A room."})
    assert r == {"overall": 0.5, "format": 1.0, "accuracy": 0.0, "checkable": False}
    assert accuracy_reward("A room.", {"mode": "caption", "ground_truth": "A room."}) == (
        0.0,
        False,
    )


@pytest.mark.parametrize(
    "spec",
    [
        {"mode": "nope", "ground_truth": 1},
        {"mode": "mcq"},
        "not json",
        '{"mode": "mcq"',
        42,
        {"mode": "numeric", "ground_truth": None},
        {"mode": "det3d", "ground_truth": "boxes"},
    ],
)
def test_bad_specs_raise(spec):
    with pytest.raises(ValueError):
        compute_reward(think("B"), spec)


def test_spec_aliases_and_extras():
    assert load_reward_spec('{"mode": "multiple_choice", "ground_truth": "A"}')["mode"] == "mcq"
    spec = {"mode": "mcq", "ground_truth": "B", "options": OPTIONS}
    assert compute_reward(think("northwest"), spec)["accuracy"] == 1.0
    spec = {"mode": "numeric", "ground_truth": 0.45, "unit": "m"}
    assert compute_reward(think("45 cm"), spec)["accuracy"] == 1.0
    spec = {"mode": "numeric", "ground_truth": 10, "tolerance": 0.05}
    assert compute_reward(think("10.4"), spec)["accuracy"] == 1.0
    assert compute_reward(think("8"), spec)["accuracy"] == 0.0
    spec = {"mode": "ocr", "ground_truth": ["ITC Limited"]}
    assert compute_reward(think("itc limited"), spec)["accuracy"] == 1.0
    spec = {"mode": "math", "ground_truth": "1/2"}
    assert compute_reward(think(r"\boxed{0.5}"), spec)["accuracy"] == 1.0


def test_accuracy_ignores_reasoning():
    spec = {"mode": "exact", "ground_truth": "left"}
    assert compute_reward("<think>the answer is left</think>right", spec)["accuracy"] == 0.0
    assert compute_reward("<think>the answer is left</think>", spec)["accuracy"] == 0.0


# --------------------------------------------------------------------------------------------
# property tests: rewards never raise and stay in range
# --------------------------------------------------------------------------------------------

SPECS = [
    {"mode": "mcq", "ground_truth": "B"},
    {"mode": "mcq", "ground_truth": "C", "options": OPTIONS},
    {"mode": "exact", "ground_truth": "front-left"},
    {"mode": "exact", "ground_truth": {"label": "pillow", "bbox_2d": [0, 399, 149, 491]}},
    {"mode": "numeric", "ground_truth": 2.35},
    {"mode": "numeric", "ground_truth": 0, "tolerance": 0.1},
    {"mode": "numeric", "ground_truth": "120 cm"},
    {"mode": "order", "ground_truth": ["A", "C", "B"]},
    {"mode": "order", "ground_truth": ["(199, 301)", "(573, 187)"]},
    {"mode": "det3d", "ground_truth": gt_list([CUBE, shifted(CUBE, dx=2)])},
    {"mode": "det3d", "ground_truth": []},
    {"mode": "caption", "ground_truth": "A room."},
    {"mode": "ocr", "ground_truth": ["ITC Limited", "itc"]},
    {"mode": "math", "ground_truth": r"\frac{1}{2}"},
]

box_entry = st.fixed_dictionaries(
    {
        "bbox_3d": st.lists(
            st.floats(allow_nan=True, allow_infinity=True) | st.integers(), min_size=8, max_size=10
        ),
        "label": st.text(max_size=5),
    }
)
responses = st.one_of(
    st.text(),
    st.text().map(think),
    st.lists(box_entry, max_size=6).map(lambda v: think(json.dumps(v))),
    st.sampled_from(
        [
            think("B"),
            think("A, B, C, D"),
            think("<think>B</think>"),
            think("1e999 m"),
            think("[" * 5000),
            think("9" * 5000),
            think("NaN"),
            "<think>" * 3 + "B",
        ]
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    responses,
    st.floats(min_value=0, max_value=3, allow_nan=False),
    st.floats(min_value=0, max_value=3, allow_nan=False),
)
def test_rewards_in_range_and_never_raise(response, w_acc, w_fmt):
    for spec in SPECS:
        r = compute_reward(response, spec, w_acc=w_acc, w_fmt=w_fmt)
        assert 0.0 <= r["accuracy"] <= 1.0
        assert r["format"] in (0.0, 1.0)
        assert 0.0 <= r["overall"] <= w_acc + w_fmt + 1e-12
        assert math.isfinite(r["overall"])
    assert 0.0 <= anls(response, ["abc", response[:5]]) <= 1.0


finite = st.floats(min_value=-5, max_value=5, allow_nan=False)
sizes = st.floats(min_value=0.0, max_value=3, allow_nan=False)
angles = st.floats(min_value=-180, max_value=180, allow_nan=False)
boxes9 = st.tuples(finite, finite, finite, sizes, sizes, sizes, angles, angles, angles)


@settings(max_examples=100, deadline=None)
@given(st.lists(boxes9, max_size=6), st.lists(boxes9, max_size=6), st.booleans())
def test_det3d_score_in_range_and_permutation_invariant(pred, gt, class_aware):
    labels_p = [["a", "b"][i % 2] for i in range(len(pred))]
    labels_g = [["a", "b"][i % 2] for i in range(len(gt))]
    s = det3d_score(pred, gt, labels_p, labels_g, class_aware=class_aware)
    assert 0.0 <= s.reward <= 1.0
    assert s.tp + s.fp == len(pred) and s.tp + s.fn == len(gt)
    r = det3d_score(pred[::-1], gt, labels_p[::-1], labels_g, class_aware=class_aware)
    assert r.reward == pytest.approx(s.reward, abs=1e-9)


# --------------------------------------------------------------------------------------------
# real data-engine samples: the engine's answers must score accuracy 1 (det3d: F1 1)
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_rows(all_tasks_run):
    import pyarrow.parquet as pq

    from vst.engine.writer import list_shards

    rows = []
    for path in list_shards(all_tasks_run / "data"):
        rows += pq.read_table(path, columns=["task", "answer", "reward", "messages"]).to_pylist()
    return rows


def _corrupt(answer: str, spec: dict) -> str:
    mode, gt = spec["mode"], spec["ground_truth"]
    if mode == "mcq":
        return "A" if gt != "A" else "B"
    if mode == "exact":
        if isinstance(gt, dict):
            return answer.replace(gt["label"], "qqq", 1)
        return answer + " nope"
    if mode == "numeric":
        return re.sub(r"\d+(?:\.\d+)?", lambda m: str(float(m.group(0)) * 3 + 1), answer, count=1)
    if mode == "order":
        value = None
        if answer.lstrip().startswith("```"):
            value = json.loads(answer.strip().strip("`").removeprefix("json"))
        if value is not None:
            return json.dumps(value[::-1])
        parts = [p.strip() for p in answer.split(", ")]
        if len(parts) < 2:  # coordinate handles hold commas: reverse those instead
            parts = re.findall(r"[\[(][^\])]*[\])](?: \([^)]*\))?", answer)
        return ", ".join(parts[::-1])
    if mode == "det3d":
        value = json.loads(answer.strip().strip("`").removeprefix("json"))
        far = {"bbox_3d": [50, 50, 50, 1, 1, 1, 0, 0, 0], "label": "ghost"}
        return json.dumps([*value, far])
    raise AssertionError(mode)


def test_engine_answers_score_full_accuracy(engine_rows):
    modes_seen: dict[str, int] = {}
    unverifiable = []
    for row in engine_rows:
        spec = json.loads(row["reward"])
        mode = spec["mode"]
        modes_seen[mode] = modes_seen.get(mode, 0) + 1
        r = compute_reward(think(row["answer"]), spec)
        assert r["format"] == 1.0, (row["task"], row["answer"])
        if mode == "caption":
            assert r["checkable"] is False
            unverifiable.append(row["task"])
            continue
        if mode == "det3d":
            # answers are rounded to 2 decimals: every box still matches (F1 = 1), IoU < 1
            gt = spec["ground_truth"]
            s = det3d_score(*_det_parts(row["answer"], gt), class_aware=True)  # labels agree too
            assert s.f1 == 1.0, (row["task"], row["answer"])
            assert r["accuracy"] >= 0.75
        else:
            assert r["accuracy"] == 1.0, (row["task"], mode, row["answer"], spec)
        # the full assistant turn (which may carry the engine's short reasoning) scores too
        last = [m for m in row["messages"] if m["role"] == "assistant"][-1]
        full = compute_reward(think(last["content"][0]["text"]), spec)
        assert full["accuracy"] == pytest.approx(r["accuracy"]), (row["task"], last)
        # and a corrupted answer does not
        bad = compute_reward(think(_corrupt(row["answer"], spec)), spec)
        assert bad["accuracy"] < r["accuracy"], (row["task"], mode, row["answer"])
    assert set(modes_seen) == {"mcq", "exact", "numeric", "order", "det3d", "caption"}
    assert set(unverifiable) <= {"si_scene_caption", "mi_scene_caption"}


def _det_parts(answer, gt):
    from vst.rewards.det3d import det3d_ground_truth
    from vst.rewards.parsing import parse_boxes3d

    pred, pred_labels = parse_boxes3d(answer)
    boxes, labels = det3d_ground_truth(gt)
    return pred, boxes, pred_labels, labels
