"""The common harnesses' multiple-choice answer extraction, reproduced rule for rule (no LLM).

* :func:`lmms_first_letter` — lmms-eval's CV-Bench / BLINK rule: the reply stripped, then
  ``re.match(r"[\\(\\s]*([A-Z])[\\)\\.\\s]*", reply, re.IGNORECASE)``, upper-cased: the first
  letter of the reply, so "The answer is B" parses as ``T``; ``""`` when none.
* :func:`vlmevalkit_can_infer` — VLMEvalKit's ``can_infer`` (option letter among the last
  tokens, else an option's text as a substring of a short reply). Where VLMEvalKit would call
  its LLM judge next, this returns ``None`` (its ``exact_matching`` fallback: wrong).

Sources: lmms-eval ``lmms_eval/tasks/{cv_bench,blink}/utils.py``; VLMEvalKit
``vlmeval/utils/matching_util.py`` and ``vlmeval/dataset/utils/multiple_choice.py``
(BENCHMARKS.md section 0). The ``answer is **X**`` step of ``extract_answer_from_item`` is
UNVERIFIED in its exact regex; here ``(correct )?answer is **X**`` case-insensitively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["lmms_first_letter", "vlmevalkit_can_infer"]

_LMMS_LETTER = re.compile(r"[\(\s]*([A-Z])[\)\.\s]*", re.IGNORECASE)
_VLM_PUNCT = ".()[],:;!*#{}"
_VLM_REJECTS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
_VLM_BOLD = re.compile(r"(?:correct\s+)?answer\s+is\s+\*\*\s*\(?([A-Z])\)?\s*\*\*", re.IGNORECASE)


def lmms_first_letter(reply: object) -> str:
    """lmms-eval's extraction: the first letter of the stripped reply (after optional ``(`` and
    spaces), upper-cased; ``""`` for no letter or a non-string reply."""
    if not isinstance(reply, str):
        return ""
    m = _LMMS_LETTER.match(reply.strip())
    return m.group(1).upper() if m else ""


def vlmevalkit_can_infer(reply: object, options: Mapping[str, str]) -> str | None:
    """VLMEvalKit's rule-based answer extraction over ``options`` (``{"A": text, ...}``), on
    the stripped reply:

    1. a refusal string VLMEvalKit knows gives ``"Z"``; otherwise ``.()[],:;!*#{}`` become
       spaces and the reply is split on whitespace; if exactly one option letter is a token and
       its first occurrence is at index ``> len(tokens) - 5``, that letter; if no option letter
       but a ``Z`` token, ``"Z"``;
    2. else ``(correct )?answer is **X**`` with X an option letter;
    3. else, when the reply is at most twice the options' total text length, the one option
       whose lower-cased text is a substring of the lower-cased reply;
    4. else ``None`` (VLMEvalKit would ask its LLM judge; without it the row is wrong).
    ``"Z"`` never equals a ground truth. Never raises."""
    if not isinstance(reply, str):
        return None
    reply = reply.strip()  # extract_answer_from_item strips the prediction first
    letters = [k for k in options if isinstance(k, str) and len(k) == 1]
    if "Failed to obtain answer via API" not in reply:
        if any(r in reply for r in _VLM_REJECTS):
            return "Z"
        mod = reply
        for ch in _VLM_PUNCT:
            mod = mod.replace(ch, " ")
        tokens = mod.split()
        present = [c for c in letters if c in tokens]
        if len(present) == 1 and tokens.index(present[0]) > len(tokens) - 5:
            return present[0]
        if not present and "Z" in tokens:
            return "Z"
    m = _VLM_BOLD.search(reply)
    if m and m.group(1).upper() in letters:
        return m.group(1).upper()
    texts = {k: str(v).lower() for k, v in options.items() if k in letters}
    if len(reply) > 2 * sum(len(str(v)) for v in options.values()):
        return None
    low = reply.lower()
    hits = [k for k, v in texts.items() if v in low]
    return hits[0] if len(hits) == 1 else None
