"""The common harnesses' multiple-choice answer extraction, reproduced rule for rule (no LLM).

* :func:`lmms_first_letter` — lmms-eval's CV-Bench / BLINK rule: the reply stripped, then
  ``re.match(r"[\\(\\s]*([A-Z])[\\)\\.\\s]*", reply, re.IGNORECASE)``, upper-cased: the first
  letter of the reply, so "The answer is B" parses as ``T``; ``""`` when none.
* :func:`vlmevalkit_can_infer` — VLMEvalKit's ``can_infer`` through
  :mod:`vst.eval.benchmarks.vlmevalkit_rules` (option letter among the last tokens, else an
  option's text as a substring of a short reply). Where VLMEvalKit would call its LLM judge
  next, this returns ``None`` (its ``exact_matching`` fallback: wrong).

Sources: lmms-eval ``lmms_eval/tasks/{cv_bench,blink}/utils.py``; VLMEvalKit
``vlmeval/utils/matching_util.py`` and ``vlmeval/dataset/utils/multiple_choice.py``
(BENCHMARKS.md section 0). The ``answer is **X**`` step of ``extract_answer_from_item`` is
UNVERIFIED in its exact regex; here ``(correct )?answer is **X**`` case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from vst.eval.benchmarks.vlmevalkit_rules import REFUSALS, vlmevalkit_choice

__all__ = ["lmms_first_letter", "vlmevalkit_can_infer"]

_LMMS_LETTER = re.compile(r"[\(\s]*([A-Z])[\)\.\s]*", re.IGNORECASE)


def lmms_first_letter(reply: object) -> str:
    """lmms-eval's extraction: the first letter of the stripped reply (after optional ``(`` and
    spaces), upper-cased; ``""`` for no letter or a non-string reply."""
    if not isinstance(reply, str):
        return ""
    m = _LMMS_LETTER.match(reply.strip())
    return m.group(1).upper() if m else ""


def vlmevalkit_can_infer(reply: object, options: Mapping[str, str]) -> str | None:
    """VLMEvalKit's rule-based extraction (:func:`~vst.eval.benchmarks.vlmevalkit_rules.
    vlmevalkit_choice`, the one implementation) with "nothing inferred" as ``None``: where
    VLMEvalKit would ask its LLM judge next (under ``exact_matching``: wrong). A refusal is
    ``"Z"``. Never raises."""
    letter = vlmevalkit_choice(reply, options)
    if letter != "Z":
        return letter
    if isinstance(reply, str) and any(phrase in reply for phrase in REFUSALS):
        return "Z"
    return None
