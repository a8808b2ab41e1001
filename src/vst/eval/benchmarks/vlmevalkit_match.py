"""VLMEvalKit's rule-based answer matching for its spatial benchmarks, re-implemented.

Behaviour of ``vlmeval/dataset/utils/spatial_bench/matching_func.py`` (``can_match_option``,
``can_match_na``), as read from the stored VLMEvalKit source (see BENCHMARKS.md §5); used as
the ``vlmevalkit`` variant of VSI-Bench (and usable by other VLMEvalKit spatial benchmarks).

:func:`vlmevalkit_option` (a letter, or None where VLMEvalKit returns False), in order:

1. an ``<answer>`` block whose content starts with a letter A-J (any case);
2. in the last 800 characters, a letter (any case) right before ``</answer>``, then right
   before ``</think>``;
3. the last 6 lines after the last ``</think>`` (else after the last ``<think>``, else the whole
   reply), scanned from the bottom, skipping ``"option X:"`` lines: a line that is a single
   letter A-F (any case, markdown/brackets around allowed); a line starting ``"X. "`` /
   ``"X) "`` (any case, whitespace after); a line whose stand-alone upper-case A-F tokens are
   all one letter;
4. the same scan on the last 6 lines of the last 800 characters;
5. the first answer phrase (``"answer is B"``, ``"final answer: (B)"``...) followed by a letter;
6. a single distinct stand-alone upper-case letter in the whole reply (``"option X:"`` lines
   removed).

:func:`vlmevalkit_number`: number words zero..twenty become digits; a number leading an
``<answer>`` block; else the last number after the last ``</think>`` (or ``<think>``); else the
last number anywhere. A reply that is a bracketed list uses its first element.
"""

from __future__ import annotations

import ast
import re

__all__ = ["vlmevalkit_number", "vlmevalkit_option"]

_ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\ufeff]")
_NUMBER = re.compile(r"[-+]?(?:\d*\.\d+|\d+)(?:[eE][-+]?\d+)?")
_WORDS = (
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"),
    *("eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen"),
    *("eighteen", "nineteen", "twenty"),
)
WORD_VALUE = {w: i for i, w in enumerate(_WORDS)}
WORD = re.compile(r"\b(" + "|".join(_WORDS) + r")\b", re.I)
_THINK_END = re.compile(r"</\s*think\s*>", re.I)
_THINK_START = re.compile(r"<\s*think\s*>", re.I)
_ANSWER_NUMBER = re.compile(
    r"<\s*answer\b[^>]*>\s*(" + _NUMBER.pattern + r")(?:[^\d<][^<]*)?<\s*/\s*answer\s*>",
    re.I | re.S,
)
_ANSWER_LETTER = re.compile(
    r"<\s*answer\b[^>]*>\s*([A-Ja-j])(?:\s*[.．:：)\]】、])?.*?<\s*/\s*answer\s*>", re.I | re.S
)
_OPEN = r"[(\[{（【]"
_CLOSE = r"[)\]}）】]"
_OPTION_PREFIX = re.compile(r"^[*_>\-\s]*(?:option|选项)\s+[A-J]\s*[:：]", re.I)
_SINGLE = re.compile(r"\s*[*_`>（）\[\]【】()]*\s*([A-Fa-f])\s*[*_`（）\[\]【】()]*\s*")
_LABELED = re.compile(r"\s*([A-F])\s*[.．:：)\]】、-]\s+", re.I)
_TIGHT = r".,:;!?)\]】》」』，。；、：）"
_INLINE = re.compile(r"(?<![A-Za-z])[*_`（\[{(]*\s*([A-F])\s*[*_`）\]})]*(?=$|[\s" + _TIGHT + "])")
_TAIL_CHARS = 800
_TAIL_LINES = 6


def _after_think(text: str) -> str:
    ends = list(_THINK_END.finditer(text)) or list(_THINK_START.finditer(text))
    return text[ends[-1].end() :].strip() if ends else text


def _from_lines(lines: list[str]) -> str | None:
    for line in reversed([ln.strip() for ln in lines if ln.strip()]):
        if _OPTION_PREFIX.search(line):
            continue
        m = _SINGLE.fullmatch(line) or _LABELED.match(line)
        if m:
            return m.group(1).upper()
        tokens = set(_INLINE.findall(line))
        if len(tokens) == 1:
            return tokens.pop()
    return None


def vlmevalkit_option(reply: object, letters: str = "ABCDEF") -> str | None:
    """The option letter VLMEvalKit's ``can_match_option`` finds (module docstring), or
    None. ``letters``: the letters steps 2, 5 and 6 accept (VLMEvalKit's default A-F)."""
    if not isinstance(reply, str):
        return None
    text = _ZERO_WIDTH.sub("", reply.strip())
    m = _ANSWER_LETTER.search(text)
    if m:
        return m.group(1).upper()
    tail = text[-_TAIL_CHARS:]
    cls = "[" + re.escape(letters) + "]"
    for tag in ("answer", "think"):
        pat = rf"(?<![A-Za-z]){_OPEN}?\s*({cls})\s*{_CLOSE}?\s*</\s*{tag}\s*>"
        m = re.search(pat, tail, re.I)
        if m:
            return m.group(1).upper()
    for segment in (_after_think(text), tail):
        pick = _from_lines(segment.splitlines()[-_TAIL_LINES:])
        if pick:
            return pick
    phrase = (
        r"(?i:final\s*answer|the\s*answer\s*is|answer(?:\s*is)?|correct\s*answer|"
        r"答案|最终答案|结论|所以|因此|我选(?:择)?|选择|选)"
        rf"\s*[:：>＝=]?\s*{_OPEN}?\s*((?i:{cls}))\s*{_CLOSE}?(?:\b|[.)、。])"
    )
    m = re.search(phrase, text)
    if m:
        return m.group(1).upper()
    kept = "\n".join(ln for ln in text.splitlines() if not _OPTION_PREFIX.search(ln))
    tokens = set(re.findall(rf"(?<![A-Za-z]){_OPEN}?\s*({cls})\s*{_CLOSE}?(?![A-Za-z])", kept))
    return tokens.pop() if len(tokens) == 1 else None


def _float(text: str) -> float | None:
    try:
        return float(text)
    except (ValueError, OverflowError):
        return None


def _last_number(text: str) -> float | None:
    found = _NUMBER.findall(text)
    return _float(found[-1]) if found else None


def vlmevalkit_number(reply: object) -> float | None:
    """The number VLMEvalKit's ``can_match_na`` finds (module docstring), or None."""
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    if text.startswith("[") and text.endswith("]"):
        try:
            seq = ast.literal_eval(text)
        except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
            return None  # VLMEvalKit's own try/except gives None here
        if isinstance(seq, list) and seq:
            text = str(seq[0])
    text = _ZERO_WIDTH.sub("", text.strip())
    text = WORD.sub(lambda m: str(WORD_VALUE[m.group(1).lower()]), text)
    m = _ANSWER_NUMBER.search(text)
    if m is not None and _float(m.group(1)) is not None:
        return _float(m.group(1))
    value = _last_number(_after_think(text))
    return value if value is not None else _last_number(text)
