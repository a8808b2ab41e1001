"""VLMEvalKit's rule-based multiple-choice extraction, as its ``exact_matching`` judge runs it.

Re-implemented from the behaviour described in BENCHMARKS.md §0 (``vlmeval/utils/
matching_util.py: can_infer``), in this order:

0. The reply is stripped (``extract_answer_from_item`` strips the prediction first). A reply
   carrying VLMEvalKit's API-failure marker skips steps 1-2.
1. A reply containing one of VLMEvalKit's refusal phrases is ``"Z"`` (a wrong answer).
2. Option letters as tokens: ``.()[],:;!*#{}`` become spaces and the reply is split on
   whitespace. If exactly one option letter occurs as a token, and its FIRST occurrence has index
   ``> len(tokens) - 5`` (one of the last four tokens), it is the answer. If no option letter
   occurs but the token ``"Z"`` does, the answer is ``"Z"``.
3. ``(correct )?answer is **X**`` (case-insensitive, ``X`` upper-cased, must be an option; the
   asterisks are optional here: the exact regex is UNVERIFIED).
4. Option text: if the lower-cased reply is at most twice the summed length of the option
   texts and exactly one lower-cased option text is a substring of it, that option.
5. Otherwise nothing: under ``exact_matching`` (no LLM judge) VLMEvalKit records ``"Z"``, so
   the item is wrong. With its default gpt-4o-mini judge some of these would be recovered;
   vst never calls an LLM judge.

Note: BENCHMARKS.md words step 2 as "among the last 5 tokens"; the comparison VLMEvalKit makes
(index > len - 5) admits the last four, which is what this module does.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

__all__ = ["API_FAILURE", "REFUSALS", "vlmevalkit_choice"]

API_FAILURE = "Failed to obtain answer via API"
"""VLMEvalKit's marker of a reply it never got (no letter is read from such a reply)."""

REFUSALS: tuple[str, ...] = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)
"""Replies VLMEvalKit maps to ``"Z"`` outright."""

_SPACED = str.maketrans(dict.fromkeys(".()[],:;!*#{}", " "))
_ANSWER_IS = re.compile(r"(?:correct\s+)?answer\s+is\s+\**([A-Za-z])\**", re.IGNORECASE)


def _by_letter_token(reply: str, letters: list[str]) -> str | None:
    tokens = reply.translate(_SPACED).split()
    present = [ch for ch in letters if ch in tokens]
    if len(present) == 1:
        ch = present[0]
        return ch if tokens.index(ch) > len(tokens) - 5 else None
    if not present and "Z" in tokens:
        return "Z"
    return None


def _by_text(reply: str, options: Mapping[str, str]) -> str | None:
    low = reply.lower()
    if len(low) > 2 * sum(len(str(v)) for v in options.values()):
        return None
    hits = [k for k, v in options.items() if str(v).lower() in low]
    return hits[0] if len(hits) == 1 else None


def vlmevalkit_choice(reply: object, options: Mapping[str, str]) -> str:
    """The letter VLMEvalKit's ``exact_matching`` extraction gives ``reply`` for ``options``
    (``{"A": text, ...}``, only the letters present), or ``"Z"`` when it infers none (wrong).
    Never raises."""
    if not isinstance(reply, str) or not options:
        return "Z"
    reply = reply.strip()
    try:
        letters = [str(k) for k in options]
        if API_FAILURE not in reply:
            if any(phrase in reply for phrase in REFUSALS):
                return "Z"
            got = _by_letter_token(reply, letters)
            if got is not None:
                return got
        m = _ANSWER_IS.search(reply)
        if m and m.group(1).upper() in letters:
            return m.group(1).upper()
        return _by_text(reply, options) or "Z"
    except Exception:  # pragma: no cover - defensive: the rules are total on strings
        return "Z"
