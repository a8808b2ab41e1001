"""VSI-Bench MRA against hand-computed values."""

import math

import pytest

from vst.eval.metrics import MRA_THRESHOLDS, mra


def test_thresholds_are_exactly_the_ten_of_vsibench():
    assert MRA_THRESHOLDS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)


@pytest.mark.parametrize(
    ("pred", "gt", "expected"),
    [
        (2.0, 2.0, 1.0),  # exact
        (2.1, 2.0, 1.0),  # 5% off: inside every threshold (1 - 0.95 = 0.05)
        (2.2, 2.0, 0.9),  # 10% off: all but t = 0.95
        (3.0, 2.0, 0.1),  # 50% off: only t = 0.50
        (3.2, 2.0, 0.0),  # 60% off: none
        (0.0, 2.0, 0.0),
        (-2.0, -2.0, 1.0),
        (None, 2.0, 0.0),
        (math.nan, 2.0, 0.0),
        (math.inf, 2.0, 0.0),
    ],
)
def test_hand_cases(pred, gt, expected):
    assert mra(pred, gt) == pytest.approx(expected)


def test_zero_ground_truth_is_refused():
    with pytest.raises(ValueError):
        mra(1.0, 0.0)
