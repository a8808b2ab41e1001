"""Bounds on the work spent on untrusted model text (rewards must stay fast on any input).

A reward judges a short final answer, so only the parts of a response that can hold it are
normalised and parsed:

* :func:`clip_answer` — an answer (the text after ``</think>``) longer than
  :data:`MAX_ANSWER_CHARS` is judged on its first and last characters (a leading option letter,
  a trailing "the answer is ..." clause or ``\\boxed{}`` sit at the ends); a 3D detection answer
  (a JSON box list, legitimately long) is cut to its first :data:`MAX_DET3D_CHARS` characters
  (complete boxes before the cut are still read; the strict format check fails).
* :func:`safe_nfkc` — Unicode NFKC after limiting runs of combining marks to
  :data:`MAX_NONSTARTERS` (UAX #15's stream-safe limit): NFKC's canonical reordering is
  quadratic in the length of a run, so ``"A" + "\\u0301\\u0316" * 25_000`` took seconds
  (a 1 MB run about 258 s). No real text carries more than 30 marks on one character.
"""

from __future__ import annotations

import functools
import unicodedata

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_DET3D_CHARS",
    "MAX_NONSTARTERS",
    "clip_answer",
    "safe_nfkc",
]

MAX_ANSWER_CHARS = 4096
"""Longest answer parsed whole; a longer one is judged on its first 2,048 and last 2,047
characters joined by a new line (4,096 in all)."""

MAX_DET3D_CHARS = 65_536
"""Longest 3D detection answer read (about 700 boxes as the engine writes them)."""

MAX_NONSTARTERS = 30
"""Combining marks (non-starters) kept in a row before NFKC; the rest of the run is dropped."""


def clip_answer(text: str, limit: int = MAX_ANSWER_CHARS, *, head_only: bool = False) -> str:
    """``text`` itself when at most ``limit`` characters; else (``head_only``) its first
    ``limit`` characters, or its first ``limit // 2`` and last ``limit - limit // 2 - 1``
    characters joined by ``"\\n"`` (exactly ``limit`` characters, so clipping is idempotent)."""
    if len(text) <= limit:
        return text
    if head_only:
        return text[:limit]
    head = limit // 2
    return text[:head] + "\n" + text[len(text) - (limit - head - 1) :]


@functools.lru_cache(maxsize=8192)
def _nonstarter(ch: str) -> bool:
    """``ch`` has a non-zero canonical combining class, or its decomposition starts with a
    character that has (e.g. U+0F73, which decomposes into two marks)."""
    if unicodedata.combining(ch):
        return True
    codes = [c for c in unicodedata.decomposition(ch).split() if not c.startswith("<")]
    return bool(codes) and _nonstarter(chr(int(codes[0], 16)))


def safe_nfkc(text: str) -> str:
    """NFKC of ``text`` with every run of combining marks cut to :data:`MAX_NONSTARTERS`
    (linear time on any input; ASCII text is returned as is)."""
    if text.isascii():
        return text
    out = []
    run = 0
    for ch in text:
        if _nonstarter(ch):
            run += 1
            if run > MAX_NONSTARTERS:
                continue
        else:
            run = 0
        out.append(ch)
    return unicodedata.normalize("NFKC", "".join(out))
