"""Benchmark metrics (deterministic, no LLM judge).

* :func:`mra` — VSI-Bench Mean Relative Accuracy for numeric answers.
"""

from __future__ import annotations

import math

MRA_THRESHOLDS: tuple[float, ...] = tuple(round(0.50 + 0.05 * k, 2) for k in range(10))
"""VSI-Bench's confidence thresholds: exactly 0.50, 0.55, ..., 0.95 (ten of them)."""


def mra(pred: float | None, gt: float) -> float:
    """Mean Relative Accuracy (VSI-Bench): the fraction of the ten thresholds ``t`` in
    0.50..0.95 with ``|pred - gt| / |gt| <= 1 - t``. A missing, non-finite or unparsable
    prediction scores 0; ``gt`` must be non-zero and finite.

    Note: lmms-eval's VSI-Bench task builds its thresholds with
    ``np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))``, which yields 11 points spaced
    0.045 apart; the benchmark's definition (and this function) uses the ten 0.05 steps."""
    if not isinstance(gt, int | float) or not math.isfinite(gt) or gt == 0:
        raise ValueError(f"mra needs a finite non-zero ground truth, got {gt!r}")
    if pred is None or not isinstance(pred, int | float) or not math.isfinite(pred):
        return 0.0
    rel = abs(pred - gt) / abs(gt)
    # a tiny tolerance so that exact boundary cases (e.g. 10% off at t = 0.90) count as in
    return sum(rel <= (1.0 - t) + 1e-12 for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)
