"""Tests for vst.geometry.text: the VST 3D-detection answer format."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vst.geometry.text import box3d_from_text, box3d_to_text, wrap_degrees

PRINTER = (
    "```\n[\n"
    '  {"bbox_3d": [-0.16, 0.12, 1.56, 0.44, 0.51, 0.41, 0.11, 0.28, 0.05], "label": "printer"},\n'
    '  {"bbox_3d": [0.40, -0.02, 1.96, 0.45, 0.51, 0.36, 0.11, 0.27, 0.05], "label": "printer"}\n'
    "]\n```"
)

ENTRY = '{"bbox_3d": [1, 2, 3, 0.5, 0.6, 0.7, 0.5, -0.25, 1.0], "label": "chair"}'


def test_to_text_exact_format() -> None:
    text = box3d_to_text([[-0.1649, 0.123, 1.5561, 0.44, 0.51, 0.41, 19.8, 50.4, 9.0]], ["printer"])
    assert text == (
        "```json\n[\n"
        '  {"bbox_3d": [-0.16, 0.12, 1.56, 0.44, 0.51, 0.41, 0.11, 0.28, 0.05], "label": "printer"}'
        "\n]\n```"
    )


def test_to_text_one_entry_per_line_and_valid_json() -> None:
    text = box3d_to_text(np.zeros((3, 9)) + 1, ["a", "b", "c"])
    lines = text.splitlines()
    assert lines[0] == "```json" and lines[1] == "[" and lines[-2] == "]" and lines[-1] == "```"
    assert len(lines) == 3 + 4
    assert all(line.startswith('  {"bbox_3d": ') for line in lines[2:5])
    data = json.loads("\n".join(lines[1:-1]))
    assert [d["label"] for d in data] == ["a", "b", "c"]


def test_to_text_no_negative_zero() -> None:
    text = box3d_to_text([[-0.001, -0.004, 0.0, 1, 1, 1, -0.1, -0.5, 0.0]], ["x"])
    assert "-0.0" not in text
    assert '"bbox_3d": [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]' in text


@pytest.mark.parametrize(
    ("deg", "written"),
    [(190.0, -0.94), (-190.0, 0.94), (180.0, 1.0), (-180.0, 1.0), (540.0, 1.0), (-350.0, 0.06)],
)
def test_angles_are_wrapped(deg: float, written: float) -> None:
    text = box3d_to_text([[0, 0, 1, 1, 1, 1, deg, 0, 0]], ["x"])
    assert json.loads(text.split("\n", 1)[1].rsplit("\n", 1)[0])[0]["bbox_3d"][6] == written
    boxes, _ = box3d_from_text(text)
    assert boxes[0, 6] == pytest.approx(written * 180)


def test_wrap_degrees_range() -> None:
    a = np.array([-720.0, -540.0, -181.0, -180.0, 0.0, 179.0, 180.0, 181.0, 900.0])
    w = wrap_degrees(a)
    np.testing.assert_allclose(w, [0, 180, 179, 180, 0, 179, 180, -179, 180])
    np.testing.assert_allclose(np.mod(w - a, 360.0), 0.0, atol=1e-9)


def test_parse_paper_printer_example() -> None:
    boxes, labels = box3d_from_text("Answer\n\n" + PRINTER)
    assert labels == ["printer", "printer"]
    assert boxes.shape == (2, 9) and boxes.dtype == np.float64
    np.testing.assert_allclose(
        boxes[0], [-0.16, 0.12, 1.56, 0.44, 0.51, 0.41, 0.11 * 180, 0.28 * 180, 0.05 * 180]
    )
    np.testing.assert_allclose(boxes[1, 6:], [19.8, 48.6, 9.0])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.floats(-20, 20), min_size=6, max_size=6),
            st.lists(st.floats(-179.9, 180), min_size=3, max_size=3),
            st.text(min_size=1, max_size=12),
        ),
        min_size=0,
        max_size=6,
    )
)
def test_round_trip_to_two_decimals(entries) -> None:
    boxes = np.array([e[0] + e[1] for e in entries], dtype=np.float64).reshape(-1, 9)
    labels = [e[2] for e in entries]
    back, back_labels = box3d_from_text(box3d_to_text(boxes, labels), strict=True)
    assert back_labels == labels
    assert back.shape == boxes.shape
    np.testing.assert_allclose(back[:, :6], boxes[:, :6], atol=0.005 + 1e-9)
    # Angles keep 2 decimals of degrees/180, i.e. within 0.9 degrees (mod 360).
    diff = wrap_degrees(back[:, 6:] - boxes[:, 6:])
    assert np.all(np.abs(diff) <= 0.9 + 1e-6)


def test_fenced_and_unfenced() -> None:
    fenced = f"Sure.\n```json\n[{ENTRY}]\n```\nDone."
    unfenced = f"Sure, here: [{ENTRY}] hope that helps"
    for text in (fenced, unfenced, f"[{ENTRY}]", ENTRY, f"```json\n{ENTRY}\n```"):
        boxes, labels = box3d_from_text(text, strict=True)
        assert labels == ["chair"], text
        np.testing.assert_allclose(boxes, [[1, 2, 3, 0.5, 0.6, 0.7, 90, -45, 180]])


def test_last_fenced_block_wins() -> None:
    other = ENTRY.replace("chair", "table")
    text = f"<think>\n```json\n[{ENTRY}]\n```\n</think>\n```json\n[{other}]\n```"
    assert box3d_from_text(text)[1] == ["table"]
    # A non-json fence after the answer is ignored.
    text2 = f"```json\n[{ENTRY}]\n```\n```python\nprint([1, 2])\n```"
    assert box3d_from_text(text2)[1] == ["chair"]


def test_broken_fence_falls_back_to_outer_list() -> None:
    text = f"```json\n[{ENTRY}, oops\n```\nso the list is [{ENTRY}]"
    assert box3d_from_text(text, strict=True)[1] == ["chair"]


@pytest.mark.parametrize(
    "text", ["", "no boxes here", "```json\n[{not json\n```", "[1, 2", "{oops}"]
)
def test_garbage(text: str) -> None:
    boxes, labels = box3d_from_text(text)
    assert boxes.shape == (0, 9) and boxes.dtype == np.float64 and labels == []
    with pytest.raises(ValueError, match="no parsable JSON"):
        box3d_from_text(text, strict=True)


def test_empty_list_is_valid() -> None:
    boxes, labels = box3d_from_text("```json\n[]\n```", strict=True)
    assert boxes.shape == (0, 9) and labels == []
    assert box3d_to_text(np.zeros((0, 9)), []) == "```json\n[]\n```"


MALFORMED = [
    ('{"bbox_3d": [1, 2, 3], "label": "short"}', "3 values"),
    ('{"bbox_3d": [1, 2, 3, 4, 5, 6, 7, 8, "x"], "label": "str"}', "positions \\[8\\]"),
    ('{"bbox_3d": [1, 2, 3, 4, 5, 6, 7, 8, true], "label": "bool"}', "positions \\[8\\]"),
    ('{"bbox_3d": [1, 2, 3, 4, 5, 6, 7, 8, NaN], "label": "nan"}', "positions \\[8\\]"),
    ('{"label": "nobox"}', "missing key"),
    ('{"bbox_3d": [1, 2, 3, 4, 5, 6, 7, 8, 9]}', "missing key"),
    ('{"bbox_3d": [1, 2, 3, 4, 5, 6, 7, 8, 9], "label": 5}', "label is int"),
    ('{"bbox_3d": "1 2 3", "label": "strbox"}', "not a list"),
    ("[1, 2, 3, 4, 5, 6, 7, 8, 9]", "not an object"),
]


@pytest.mark.parametrize(("bad", "why"), MALFORMED)
def test_malformed_entries(bad: str, why: str) -> None:
    text = f"```json\n[\n  {ENTRY},\n  {bad}\n]\n```"
    boxes, labels = box3d_from_text(text)
    assert labels == ["chair"] and boxes.shape == (1, 9)
    with pytest.raises(ValueError, match=f"entry 1: .*{why}"):
        box3d_from_text(text, strict=True)


def test_truncated_answer_salvaged_non_strict() -> None:
    text = f'```json\n[\n  {ENTRY},\n  {ENTRY.replace("chair", "sofa")},\n  {{"bbox_3d": [0.1, 0.'
    assert box3d_from_text(text)[1] == ["chair", "sofa"]
    with pytest.raises(ValueError):
        box3d_from_text(text, strict=True)


@pytest.mark.parametrize(
    "label", ['a "quoted" chair', "back\\slash", "line\nbreak", "curly {braces} [and] ```", "椅子"]
)
def test_labels_survive(label: str) -> None:
    text = box3d_to_text([[0, 0, 1, 1, 1, 1, 0, 0, 0]], [label])
    assert box3d_from_text(text, strict=True)[1] == [label]


def test_to_text_validation() -> None:
    with pytest.raises(ValueError, match="2 boxes but 1 labels"):
        box3d_to_text(np.zeros((2, 9)), ["a"])
    with pytest.raises(ValueError, match="finite"):
        box3d_to_text([[0, 0, np.nan, 1, 1, 1, 0, 0, 0]], ["a"])
    with pytest.raises(ValueError):
        box3d_to_text(np.zeros((1, 8)), ["a"])
    # A single label string for a single (9,) box is accepted.
    assert '"label": "lamp"' in box3d_to_text(np.ones(9), "lamp")


def test_huge_integers_do_not_raise_when_lenient() -> None:
    boxes, labels = box3d_from_text("[" + "1" * 5000 + "]")
    assert boxes.shape == (0, 9) and labels == []


def test_lenient_parse_skips_an_integer_beyond_float_range():
    text = (
        '[{"bbox_3d": [' + "9" * 400 + ', 0, 0, 1, 1, 1, 0, 0, 0], "label": "huge"}, '
        '{"bbox_3d": [0, 0, 2, 1, 1, 1, 0, 0, 0], "label": "ok"}]'
    )
    boxes, labels = box3d_from_text(text)
    assert labels == ["ok"] and boxes.shape == (1, 9)
    with pytest.raises(ValueError, match="not finite numbers"):
        box3d_from_text(text, strict=True)
