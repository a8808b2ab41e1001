"""Rule-based RL rewards for VST samples (format + accuracy), robust to untrusted model output.

* :func:`compute_reward` — ``{"overall", "format", "accuracy", "checkable"}`` of a response for
  a sample's reward spec (``{"mode", "ground_truth", ...}`` from the data engine).
* :func:`det3d_reward` — the 3D detection reward ``0.5 * IoU + 0.5 * F1`` (Hungarian matching).
* :func:`anls` — Average Normalised Levenshtein Similarity (1 - normalised edit distance).
* :mod:`vst.rewards.parsing` — think/answer split, JSON, boxes, letters, numbers with units.
* :mod:`vst.rewards.canonical` — the exact fast path for box answers in the engine's layout.
* :mod:`vst.rewards.adapters` — TRL, verl and EasyR1 call signatures.
* :mod:`vst.rewards.bounds` — the limits on work spent on untrusted text (answers cut to their
  ends, stream-safe NFKC): a 1 MB response of any content scores in well under a second.
"""

from vst.rewards.accuracy import (
    anls,
    exact_accuracy,
    math_accuracy,
    mcq_accuracy,
    numeric_accuracy,
    ocr_accuracy,
    order_accuracy,
)
from vst.rewards.det3d import Det3DScore, det3d_reward, det3d_score
from vst.rewards.reward import (
    DEFAULT_W_ACC,
    DEFAULT_W_FMT,
    MODES,
    accuracy_reward,
    compute_reward,
    format_reward,
    load_reward_spec,
    load_reward_specs,
)

__all__ = [
    "DEFAULT_W_ACC",
    "DEFAULT_W_FMT",
    "MODES",
    "Det3DScore",
    "accuracy_reward",
    "anls",
    "compute_reward",
    "det3d_reward",
    "det3d_score",
    "exact_accuracy",
    "format_reward",
    "load_reward_spec",
    "load_reward_specs",
    "math_accuracy",
    "mcq_accuracy",
    "numeric_accuracy",
    "ocr_accuracy",
    "order_accuracy",
]
