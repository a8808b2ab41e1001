"""vst.rewards.parsing: hand cases per parser, and property tests that no parser ever raises."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vst.geometry.text import box3d_to_text
from vst.rewards.parsing import (
    box_list_is_valid,
    convert_unit,
    extract_boxed,
    extract_choice,
    extract_json,
    final_answer,
    normalize_text,
    parse_boxes3d,
    parse_quantity,
    parse_sequence,
    parse_unit,
    split_think,
)

# --------------------------------------------------------------------------------------------
# think / answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("response", "answer", "ok"),
    [
        ("<think>reason</think>B", "B", True),
        ("  <think>reason</think>\n B \n", "B", True),
        ("<think></think>B", "B", True),  # empty reasoning is allowed (release pattern)
        ("<think>reason</think>B<|im_end|>", "B", True),
        ("<think>r</think><answer> B </answer>", "B", True),
        ("<think>reason</think>", "", False),  # empty answer
        ("<think>reason</think>   \n", "", False),
        ("B", "B", False),  # no tags: judged whole, but no format
        ("intro <think>r</think>B", "B", False),  # text before <think>
        ("<think>a<think>b</think>c</think>B", "B", False),  # nested
        ("<think>r</think>B <think>x</think>", "", False),  # think tags inside the answer
        ("<think>r</think>B</think>", "", False),
        ("<think>r</think><think>s</think>B", "B", False),  # two blocks
        ("<think>r</think>B<think>", "B", False),
        ("<think>unfinished reasoning, the answer is B", "", False),  # no close tag
        ("<THINK>r</THINK>B", "B", False),  # only the canonical tags are well formed
        ("< think >r</think>B", "B", False),
        ("</think>B", "B", False),
    ],
)
def test_split_think(response, answer, ok):
    split = split_think(response)
    assert split.answer == answer
    assert split.well_formed is ok


def test_split_think_parts():
    split = split_think("<think> step 1\nstep 2 </think>\nThe answer is B.")
    assert split.think == "step 1\nstep 2"
    assert split.answer == "The answer is B."
    assert split_think("no tags").think is None
    assert split_think(None) == (None, "", False)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------
# boxed / final answer
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "content"),
    [
        (r"so \boxed{42}", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        (r"\boxed{1} then \boxed{ 2 }", "2"),  # the last one
        (r"\boxed{1} then \boxed{2", "1"),  # an unclosed last box falls back to the one before
        (r"\boxed{", None),
        ("no box", None),
        (r"\fbox{C}", "C"),
        (r"\boxed {x}", "x"),
    ],
)
def test_extract_boxed(text, content):
    assert extract_boxed(text) == content


@pytest.mark.parametrize(
    ("text", "final"),
    [
        ("box-C", "box-C"),
        ("Distance[A,B]=5.56m\nTherefore, the answer is box-C.", "box-C"),
        ("The answer is 2.35 m. It is long.", "2.35 m"),
        ("Answer: left", "left"),
        (r"I think 3, so \boxed{4}. The answer is 5", "4"),  # \boxed wins over the cue
        ("the answer is", "the answer is"),  # a cue with nothing after it is not a cue
        # an option label's dot ends no clause: the paper-style reply keeps its option text
        (
            "Distance[a, b]=3.4m\nTherefore, the answer is B. the lamp (red box).",
            "B. the lamp (red box)",
        ),
        ("So the answer is C: point-C.", "C: point-C"),
        ("The answer is (2). the box", "(2). the box"),
        ("The answer is B.", "B"),
        ("The answer is 12. It fits.", "12. It fits"),
    ],
)
def test_final_answer(text, final):
    assert final_answer(text) == final


@pytest.mark.parametrize(
    ("text", "norm"),
    [
        ("The Front-Left.", "front left"),
        ("  box-C ", "box c"),
        ("2.35 m", "2.35 m"),
        ("A", "a"),
        ("the", "the"),  # a lone article stays
        ("**Sofa**", "sofa"),
        ("ＦＵＬＬ width", "full width"),  # NFKC
    ],
)
def test_normalize_text(text, norm):
    assert normalize_text(text) == norm


# --------------------------------------------------------------------------------------------
# JSON and 3D boxes
# --------------------------------------------------------------------------------------------


def test_extract_json_forms():
    assert extract_json('```json\n[{"a": 1}]\n```') == [{"a": 1}]
    assert extract_json("```\n[1, 2]\n```") == [1, 2]
    assert extract_json("Here you go: [1, 2] hope it helps") == [1, 2]
    assert extract_json('{"label": "x"}') == {"label": "x"}
    # the last fenced block wins
    assert extract_json("```json\n[1]\n```\nfix:\n```json\n[2]\n```") == [2]
    assert extract_json("no json here") is None
    assert extract_json("[" * 100_000 + "]" * 100_000) is None  # too deep: no crash
    assert extract_json("[" + "1" * 5000 + "]") is None  # beyond int conversion limits


BOX_TEXT = box3d_to_text(
    np.array([[0.1, -0.2, 2.0, 0.5, 0.6, 0.7, 18.0, -90.0, 36.0], [1, 0, 3, 1, 1, 1, 0, 0, 0]]),
    ["chair", "table"],
)


def test_parse_boxes3d_engine_text_degrees():
    boxes, labels = parse_boxes3d(BOX_TEXT)
    assert labels == ["chair", "table"]
    np.testing.assert_allclose(boxes[0], [0.1, -0.2, 2.0, 0.5, 0.6, 0.7, 18.0, -90.0, 36.0])
    assert boxes.shape == (2, 9)


def test_parse_boxes3d_tolerates_prose_whitespace_and_bad_entries():
    text = (
        "Sure! Here are the boxes:\n```json\n[\n"
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0.5, 0], "label": "a"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0], "label": "eight numbers"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, 0]},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, true], "label": "bool"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, NaN], "label": "nan"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, "0"], "label": "string"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, 1e999], "label": "inf"},\n'
        '  {"bbox_3d": [0, 0, 1, 1, 1, 1, 0, 0, 0], "label": ""},\n'
        '  "not an object",\n'
        '  {"bbox_3d": [2, 0, 1, 1, 1, 1, 0, 0, 0], "label": "b", "score": 0.9}\n'
        "]\n```\nAnything else?"
    )
    boxes, labels = parse_boxes3d(text)
    assert labels == ["a", "b"]
    assert boxes[0, 7] == 90.0  # 0.5 * 180
    assert not box_list_is_valid(text)  # strict: one bad entry fails the format


def test_parse_boxes3d_salvages_truncated_list_and_single_object():
    truncated = '```json\n[{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": "a"}, {"bbox_3d": [0,0'
    boxes, labels = parse_boxes3d(truncated)
    assert labels == ["a"] and boxes.shape == (1, 9)
    boxes, labels = parse_boxes3d('{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": "a"}')
    assert labels == ["a"]
    assert parse_boxes3d("nothing")[0].shape == (0, 9)


def test_parse_boxes3d_huge_integer_does_not_raise():
    text = '[{"bbox_3d": [' + "9" * 400 + ', 0, 1, 1, 1, 1, 0, 0, 0], "label": "a"}]'
    assert parse_boxes3d(text)[1] == []


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        (BOX_TEXT, True),
        ("```json\n[]\n```", True),
        ("[]", True),
        ('[{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": "a"}]', True),
        ('The result: [{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": "a"}].', True),
        ('{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": "a"}', False),  # not a list
        ('[{"bbox_3d": [0,0,1,1,1,1,0,0], "label": "a"}]', False),
        ('[{"bbox_3d": [0,0,1,1,1,1,0,0,0]}]', False),
        ('[{"bbox_3d": [0,0,1,1,1,1,0,0,0], "label": 3}]', False),
        ("no boxes", False),
        ("[1, 2]", False),
    ],
)
def test_box_list_is_valid(text, ok):
    assert box_list_is_valid(text) is ok


# --------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------

OPTIONS = ["north", "northwest", "west", "southeast"]


@pytest.mark.parametrize(
    ("text", "options", "letter"),
    [
        ("B", None, "B"),
        ("b", None, "B"),
        ("B.", None, "B"),
        ("(B)", None, "B"),
        ("[B]", None, "B"),
        ("B)", None, "B"),
        ("**B**", None, "B"),
        ("Option B", None, "B"),
        ("Answer: B", None, "B"),
        ("The answer is (B).", None, "B"),
        ("Looking at both images, the answer is B.", None, "B"),
        (r"\boxed{B}", None, "B"),
        ("B. northwest", None, "B"),
        ("B. northwest", OPTIONS, "B"),
        ("(B) Northwest.", OPTIONS, "B"),
        ("northwest", OPTIONS, "B"),
        ("The answer is northwest", OPTIONS, "B"),
        ("B. north", OPTIONS, None),  # the letter contradicts its option text
        ("northwest", None, None),  # option text without the options
        ("up", OPTIONS, None),
        # several letters never count
        ("A, B", None, None),
        ("A B", None, None),
        ("A or B", None, None),
        ("A and C", None, None),
        ("A/B", None, None),
        ("A. B", None, None),
        ("A) C) D)", None, None),
        ("AB", None, None),
        ("ABCD", None, None),
        ("A\nB", None, None),
        ("B\nThe sofa is nearer to the camera.", None, "B"),  # a letter line, then prose
        ("B.\n\nBecause it is nearer.", OPTIONS, "B"),
        ("A\nwait\n(B)", None, None),
        ("B. northwest\nIt is to the left.", OPTIONS, "B"),
        ("B. north\nIt is to the left.", OPTIONS, None),
        ("A. lamp\nB. sofa", None, None),
        ("A\nActually, the answer is B.", None, None),
        ("The answer is A or B", None, None),
        ("A. Actually the answer is B", None, None),  # two different letters: a hedge
        ("A lamp", None, None),  # a letter without a delimiter before text is not a choice
        ("", None, None),
        ("Bed", None, None),
    ],
)
def test_extract_choice(text, options, letter):
    assert extract_choice(text, options) == letter


def test_extract_choice_dict_options():
    assert extract_choice("west", {"A": "east", "B": "west"}) == "B"


# --------------------------------------------------------------------------------------------
# numbers and units
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value", "unit"),
    [
        ("44 cm", 44.0, "cm"),
        ("1.24 m", 1.24, "m"),
        ("1.2m", 1.2, "m"),
        ("34.5 square meters", 34.5, "m2"),
        ("12 m²", 12.0, "m2"),
        ("12 m^2", 12.0, "m2"),
        ("12 sq m", 12.0, "m2"),
        ("12 sq. m", 12.0, "m2"),
        ("12 square metres", 12.0, "m2"),
        ("12 metres squared", 12.0, "m2"),
        ("52 degrees", 52.0, "deg"),
        ("30°", 30.0, "deg"),
        ("3 ft", 3.0, "ft"),
        ("2", 2.0, None),
        ("-3.5", -3.5, None),
        ("−3.5 m", -3.5, "m"),
        ("1,200 cm", 1200.0, "cm"),
        ("3/4", 0.75, None),
        ("1e3", 1000.0, None),
        ("two", 2.0, None),
        ("There are 2 mirrors", 2.0, None),  # "m" of "mirrors" is no unit
        ("Distance[A,B]=5.56m\nTherefore, the answer is 4.83 m.", 4.83, "m"),
        ("between 2-3 m", 3.0, "m"),  # the last number
        ("about 5 in the room", 5.0, None),  # "in" is not read as inches
    ],
)
def test_parse_quantity(text, value, unit):
    q = parse_quantity(text)
    assert q is not None
    assert q.value == pytest.approx(value)
    assert q.unit == unit


@pytest.mark.parametrize("text", ["", "none", "no idea", "1e999", "5/0", "9" * 400 + "e9"])
def test_parse_quantity_none(text):
    assert parse_quantity(text) is None


@pytest.mark.parametrize(
    ("unit", "canonical"),
    [("cm", "cm"), ("Metres", "m"), ("m²", "m2"), ("sq m", "m2"), ("degrees", "deg"), ("x", None)],
)
def test_parse_unit(unit, canonical):
    assert parse_unit(unit) == canonical


def test_convert_unit():
    assert convert_unit(45, "cm", "m") == pytest.approx(0.45)
    assert convert_unit(1.2, "m", "cm") == pytest.approx(120)
    assert convert_unit(1, "m2", "cm2") == pytest.approx(10_000)
    assert convert_unit(math.pi, "rad", "deg") == pytest.approx(180)
    assert convert_unit(1, "m", "m2") is None
    assert convert_unit(1, "m", "parsec") is None


# --------------------------------------------------------------------------------------------
# sequences
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "numeric", "n", "tokens"),
    [
        ("A, C, B", False, 3, ["a", "c", "b"]),
        ("A C B", False, 3, ["a", "c", "b"]),
        ("A > C > B", False, 3, ["a", "c", "b"]),
        ('["A", "C", "B"]', False, 3, ["a", "c", "b"]),
        ("1. monitor\n2. picture\n3. door", False, 3, ["monitor", "picture", "door"]),
        ("box, picture and door.", False, 3, ["box", "picture", "door"]),
        ("point-C (toilet), point-A (sink)", False, 2, ["point c", "point a"]),
        ("trash can, sink-A", False, 2, ["trash can", "sink a"]),
    ],
)
def test_parse_sequence_text(text, numeric, n, tokens):
    assert parse_sequence(text, numeric, n) == [("t", t) for t in tokens]


def test_parse_sequence_coordinates():
    json_text = '```json\n[{"point_2d": [199, 301], "label": "pillow"}, {"point_2d": [5, 6]}]\n```'
    assert parse_sequence(json_text, numeric=True) == [("n", (199.0, 301.0)), ("n", (5.0, 6.0))]
    text = "[397, 109, 534, 312], [325, 162, 399, 289]"
    assert parse_sequence(text, numeric=True) == [
        ("n", (397.0, 109.0, 534.0, 312.0)),
        ("n", (325.0, 162.0, 399.0, 289.0)),
    ]
    assert parse_sequence("[1, 2, 3, 4]", numeric=True) == [("n", (1.0, 2.0, 3.0, 4.0))]


# --------------------------------------------------------------------------------------------
# property tests: never raise, stay fast
# --------------------------------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.sampled_from(["bbox_3d", "label", "point_2d", "x"]), children)
    ),
    max_leaves=30,
)

nasty = st.one_of(
    st.text(),
    st.text(alphabet="<>/thinkTHINK[]{}()\"',.:;0123456789 \n`\\boxed-eE+−ABCDm²°", max_size=200),
    json_values.map(lambda v: json.dumps(v, allow_nan=True)),
    json_values.map(lambda v: "```json\n" + json.dumps(v, allow_nan=True) + "\n```"),
    st.integers(min_value=1, max_value=3000).map(lambda n: "[" * n + "]" * n),
    st.integers(min_value=1, max_value=6000).map(lambda n: "1" * n),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "[NaN]", '{"bbox_3d": NaN}']),
)

PARSERS = [
    split_think,
    extract_boxed,
    final_answer,
    normalize_text,
    extract_json,
    parse_boxes3d,
    box_list_is_valid,
    extract_choice,
    lambda t: extract_choice(t, OPTIONS),
    parse_quantity,
    parse_unit,
    lambda t: parse_sequence(t, False, 3),
    lambda t: parse_sequence(t, True, 2),
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(nasty)
def test_parsers_never_raise(text):
    for parser in PARSERS:
        parser(text)
    boxes, labels = parse_boxes3d(text)
    assert boxes.shape == (len(labels), 9)
    assert np.all(np.isfinite(boxes))
    letter = extract_choice(text)
    assert letter is None or (len(letter) == 1 and letter.isupper())
    q = parse_quantity(text)
    assert q is None or math.isfinite(q.value)


@pytest.mark.parametrize(
    "text",
    [
        "\\boxed{" * 50_000,
        "(1," * 50_000,
        " " * 200_000 + "x",
        "1" * 200_000 + "x",
        "```" * 50_000,
        "{" * 100_000,
        "<think>" * 30_000,
        "A, " * 50_000,
        "the answer is " * 20_000,
    ],
)
def test_parsers_are_linear_on_adversarial_input(text):
    start = time.perf_counter()
    for parser in PARSERS:
        parser(text)
    assert time.perf_counter() - start < 5.0


def test_a_box_whose_angle_overflows_when_scaled_is_dropped_without_warnings():
    import warnings

    from vst.rewards.parsing import parse_boxes3d

    text = (
        '[{"bbox_3d": [0, 0, 1, 1, 1, 1, 1e307, 0, 0], "label": "a"},'
        ' {"bbox_3d": [0, 0, 1, 1, 1, 1, 0.5, 0, 0], "label": "b"}]'
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        boxes, labels = parse_boxes3d(text)
    assert labels == ["b"] and boxes[0, 6] == 90.0
