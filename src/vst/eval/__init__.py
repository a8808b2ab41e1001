"""Evaluation: answer extraction, VSI-Bench MRA, Omni3D-style AP3D, reports.

Names are loaded on first use, so ``import vst.eval`` stays cheap (AP3D pulls in the numba IoU).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # metrics
    "MRA_THRESHOLDS": "metrics",
    "extract_choice": "metrics",
    "mcq_score": "metrics",
    "mra": "metrics",
    "parse_options": "metrics",
    "vsibench_first_token": "metrics",
    "vsibench_mcq_score": "metrics",
    # det3d
    "DEPTH_RANGES": "det3d",
    "IOU_THRESHOLDS": "det3d",
    "MAX_DETS": "det3d",
    "Det3DGroundTruth": "det3d",
    "Det3DPrediction": "det3d",
    "evaluate_det3d": "det3d",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vst.eval' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vst.eval.{module}"), name)
    globals()[name] = value
    return value
