"""The reward's fast paths against their exact reference paths.

* 3D IoU: the kernel skips a face clip when the face rectangle lies wholly inside (or outside)
  the clipping half-space by a margin (``_rect_side``); ``_matrix_3d(..., prune=False)`` clips by
  every plane. Both must give bit-identical matrices.
* Box answers: :func:`vst.rewards.canonical.canonical_boxes3d` reads the engine's layout in one
  compiled pass; ``parse_boxes3d`` / ``box_list_is_valid`` must give the general JSON path's
  results bit for bit on every text (the fast path taken or not).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vst.geometry.iou import _matrix_3d, _rect_side, box3d_intersection_volume, box3d_iou
from vst.geometry.text import box3d_to_text
from vst.rewards import parsing
from vst.rewards.canonical import canonical_boxes3d

UNIT = np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0])


def _random_boxes(rng: np.random.Generator, n: int, spread: float) -> np.ndarray:
    return np.concatenate(
        [
            rng.uniform(-spread, spread, (n, 3)),
            rng.uniform(0.05, 2.0, (n, 3)),
            rng.uniform(-180.0, 180.0, (n, 3)),
        ],
        axis=1,
    )


def _both(a: np.ndarray, b: np.ndarray, want_iou: bool = True) -> tuple[np.ndarray, np.ndarray]:
    return _matrix_3d(a, b, want_iou, True), _matrix_3d(a, b, want_iou, False)


# --- 3D IoU: pruned clipping == clipping by every plane ------------------------------------------


def test_rect_side_hand_values():
    # rectangle |u| <= 1, |v| <= 2; the half-space u + v <= c reaches u + v = 3 at the corner
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 3.5) == 1  # wholly inside
    assert _rect_side(1.0, 1.0, 1.0, 2.0, -3.5) == -1  # wholly outside
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 0.0) == 0  # crossing
    assert _rect_side(1.0, 1.0, 1.0, 2.0, 3.0) == 0  # touching the corner: left to the clip
    assert _rect_side(-1.0, 0.0, 1.0, 2.0, 1.0 + 1e-6) == 1  # -u <= 1 + 1e-6 holds everywhere


@pytest.mark.parametrize("spread", [0.2, 0.6, 1.5])
@pytest.mark.parametrize("want_iou", [True, False])
def test_pruned_kernel_identical_on_random_boxes(spread, want_iou):
    rng = np.random.default_rng(int(spread * 10) + 7 * want_iou)
    a = _random_boxes(rng, 120, spread)
    b = _random_boxes(rng, 120, spread)
    fast, exact = _both(a, b, want_iou)
    assert np.mean(exact > 0) > 0.15  # plenty of overlapping pairs
    assert float(np.max(np.abs(fast - exact))) <= 1e-9
    assert np.array_equal(fast, exact)


def test_pruned_kernel_identical_on_axis_aligned_and_coplanar_boxes():
    # sizes and centres on a 0.1 grid, angles multiples of 90 degrees: many shared face planes
    rng = np.random.default_rng(3)
    a = _random_boxes(rng, 100, 0.5)
    b = _random_boxes(rng, 100, 0.5)
    for boxes in (a, b):
        boxes[:, :6] = np.maximum(np.round(boxes[:, :6], 1), [-9, -9, -9, 0.1, 0.1, 0.1])
        boxes[:, 6:] = np.round(boxes[:, 6:] / 90.0) * 90.0
    fast, exact = _both(a, b)
    assert np.mean(exact > 0) > 0.3
    assert np.array_equal(fast, exact)


@pytest.mark.parametrize(
    ("b", "iou"),
    [
        # disjoint: 3 m apart
        (np.array([3.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 0.0),
        # identical (rotated the same way)
        (UNIT, 1.0),
        # contained: the 0.5 m cube inside the unit cube, IoU 0.125
        (np.array([0.1, -0.1, 0.2, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0]), 0.125),
        # half overlap along x: intersection 0.5, union 1.5
        (np.array([0.5, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 1.0 / 3.0),
        # rotated 45 degrees about y (yaw): octagon 2 (sqrt 2 - 1) times height 1
        (
            np.array([0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 0.0, 45.0, 0.0]),
            2 * (np.sqrt(2) - 1) / (2 - 2 * (np.sqrt(2) - 1)),
        ),
    ],
)
def test_pruned_kernel_hand_cases(b, iou):
    fast, exact = _both(UNIT, b)
    assert fast[0, 0] == pytest.approx(iou, abs=1e-12)
    assert np.array_equal(fast, exact)
    assert box3d_iou(UNIT, b)[0, 0] == fast[0, 0]  # the public function takes the pruned path


def test_contained_rotated_box_volume():
    # a 0.4 m cube turned 30/40/50 degrees sits well inside a 2 m cube: intersection = its volume
    small = np.array([0.1, 0.2, -0.1, 0.4, 0.4, 0.4, 30.0, 40.0, 50.0])
    big = np.array([0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 0.0, 0.0, 0.0])
    fast, exact = _both(small, big, want_iou=False)
    assert fast[0, 0] == pytest.approx(0.064, rel=1e-12)
    assert np.array_equal(fast, exact)
    assert box3d_intersection_volume(small, big)[0, 0] == fast[0, 0]


def test_empty_inputs_keep_their_shapes():
    assert box3d_iou(np.zeros((0, 9)), UNIT).shape == (0, 1)
    assert box3d_iou(np.stack([UNIT, UNIT]), np.zeros((0, 9))).shape == (2, 0)


# --- box answers: the canonical-layout parser == the general JSON path -------------------------


def _general(monkeypatch: pytest.MonkeyPatch, text: str) -> tuple[np.ndarray, list[str], bool]:
    """``parse_boxes3d`` and ``box_list_is_valid`` with the fast path switched off."""
    with monkeypatch.context() as m:
        m.setattr(parsing, "canonical_boxes3d", lambda _text: None)
        boxes, labels = parsing.parse_boxes3d(text)
        return boxes, labels, parsing.box_list_is_valid(text)


def _assert_same(monkeypatch: pytest.MonkeyPatch, text: str) -> bool:
    """The public functions give the general path's results bit for bit; True when the fast
    path took the text."""
    boxes, labels = parsing.parse_boxes3d(text)
    ref_boxes, ref_labels, ref_valid = _general(monkeypatch, text)
    assert labels == ref_labels
    assert boxes.shape == ref_boxes.shape and boxes.dtype == ref_boxes.dtype
    assert boxes.tobytes() == ref_boxes.tobytes()  # bit-identical, signs of zeros included
    assert parsing.box_list_is_valid(text) == ref_valid
    return canonical_boxes3d(text) is not None


def test_engine_answers_take_the_fast_path_with_identical_results(monkeypatch):
    rng = np.random.default_rng(11)
    for n in (1, 2, 10, 40):
        boxes = _random_boxes(rng, n, 3.0)
        labels = [f"object {k}" for k in range(n)]
        assert _assert_same(monkeypatch, box3d_to_text(boxes, labels))


def test_canonical_hand_values():
    entry = '{"bbox_3d": [1, -2, 0.5, 0.25, 3, 1.5, 0.5, -0.25, 0], "label": "cup"}'
    text = "```json\n[\n  " + entry + "\n]\n```"
    boxes, labels = canonical_boxes3d(text)
    assert labels == ["cup"]
    np.testing.assert_array_equal(boxes, [[1.0, -2.0, 0.5, 0.25, 3.0, 1.5, 90.0, -45.0, 0.0]])
    # JSON reads "-0" as the int 0 (so +0.0) but "-0.0" as the float -0.0
    boxes, _ = canonical_boxes3d('[{"bbox_3d": [-0, 0, 0, 1, 1, 1, -0.0, 0, 0], "label": "x"}]')
    assert not np.signbit(boxes[0, 0]) and np.signbit(boxes[0, 6])
    assert canonical_boxes3d("[]")[0].shape == (0, 9)
    assert canonical_boxes3d("```\n[]\n```")[1] == []


@pytest.mark.parametrize(
    "text",
    [
        # layouts the fast path leaves to the general one (which may still read them)
        '[{"label": "cup", "bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0]}]',  # keys swapped
        '[{"bbox_3d": [1e0, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]',  # exponent
        '[{"bbox_3d": [1.0000000000000001, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]',  # 17 digits
        '[{"bbox_3d": [01, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]',  # leading zero
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0], "label": "cup"}]',  # 8 numbers
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0, 0], "label": "cup"}]',  # 10 numbers
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "   "}]',  # blank label
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "caf\\u00e9"}]',  # escape
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "café"}]',  # non-ASCII
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "a`b"}]',  # backtick
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"},]',  # trailing comma
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}',  # cut off
        '```json\n[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]',  # no closing fence
        '```JSON\n[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]\n```',  # tag case
        '```python\n[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]\n```',  # other tag
        'Boxes: [{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}]',  # prose around
        '[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}] done',
        '```json\n[]\n```\n```json\n[{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "a"}]\n```',
        '{"bbox_3d": [1, 2, 3, 1, 1, 1, 0, 0, 0], "label": "cup"}',  # one entry, no list
        "[1, 2, 3]",
        "",
    ],
)
def test_other_layouts_fall_back_with_identical_results(monkeypatch, text):
    assert canonical_boxes3d(text) is None
    _assert_same(monkeypatch, text)


_DECIMALS = st.builds(
    lambda sign, whole, frac: f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**9),
    st.text(alphabet="0123456789", max_size=12),
)
_NUMBERS = st.one_of(
    _DECIMALS,
    st.integers(-(10**17), 10**17).map(str),
    st.floats(-1e6, 1e6, allow_nan=False).map(repr),
    st.sampled_from(["-0", "0", "-0.0", "0.000", "1e3", "1E-2", "-", ".5", "5.", "007", "1.5e1"]),
)
_LABEL_PIECES = [*'ab Z{}[],:`\\"é\t', "\\n", "\\u0041"]  # \\n, \\u0041: JSON escapes
_LABELS = st.lists(st.sampled_from(_LABEL_PIECES), max_size=6).map("".join)
_WS = st.sampled_from(["", " ", "\n", "  ", "\t", "\r\n"])
_CLEAN_NUMBERS = st.one_of(
    st.builds(
        lambda sign, whole, frac: f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}",
        st.sampled_from(["", "-"]),
        st.integers(0, 10**6),
        st.text(alphabet="0123456789", max_size=8),
    ),
    st.sampled_from(["-0", "0", "-0.0", "0.5", "-1"]),
)
_CLEAN_LABELS = st.text(alphabet="ab Z{}[],:", min_size=1, max_size=6).filter(str.strip)


@st.composite
def _answers(draw) -> str:
    clean = draw(st.booleans())  # half of the answers in the fast path's layout (mostly)
    numbers, labels = (_CLEAN_NUMBERS, _CLEAN_LABELS) if clean else (_NUMBERS, _LABELS)
    entries = []
    for _ in range(draw(st.integers(0, 4))):
        nums = [draw(numbers) for _ in range(draw(st.sampled_from([9, 9, 9, 8])))]
        ws = draw(_WS)
        entries.append(
            "{" + ws + '"bbox_3d"' + ws + ":" + draw(_WS) + "[" + (", " + ws).join(nums) + "]"
            + "," + draw(_WS) + '"label": "' + draw(labels) + '"' + ws + "}"
        )  # fmt: skip
    body = draw(_WS) + "[" + ("," + draw(_WS)).join(entries) + "]" + draw(_WS)
    fence = draw(st.sampled_from(["", "", "```json\n", "```json\n", "```\n", "```json \n", "```"]))
    close = "```" if fence and draw(st.integers(0, 3)) else ""
    return draw(_WS) + fence + body + close + draw(_WS)


@settings(max_examples=400, deadline=None)
@given(_answers())
def test_fast_path_agrees_with_the_general_path_on_generated_answers(text):
    with pytest.MonkeyPatch.context() as monkeypatch:
        _assert_same(monkeypatch, text)
