"""Benchmark metrics (deterministic, no LLM judge).

* :func:`mra` — VSI-Bench Mean Relative Accuracy for numeric answers.
* :func:`extract_choice` — the option letter a free-form response picks (rule-based), with
  :func:`mcq_score` and :func:`parse_options`.
* :func:`vsibench_first_token` / :func:`vsibench_mcq_score` — VSI-Bench's own multiple-choice
  rule (case-insensitive exact match on the first space-separated token, trailing "." stripped).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence

MRA_THRESHOLDS: tuple[float, ...] = tuple(round(0.50 + 0.05 * k, 2) for k in range(10))
"""VSI-Bench's confidence thresholds: exactly 0.50, 0.55, ..., 0.95 (ten of them)."""


def mra(pred: float | None, gt: float) -> float:
    """Mean Relative Accuracy (VSI-Bench): the fraction of the ten thresholds ``t`` in
    0.50..0.95 with ``|pred - gt| / |gt| <= 1 - t``. A missing, non-finite or unparsable
    prediction scores 0; ``gt`` must be non-zero and finite.

    lmms-eval's ``np.linspace(0.5, 0.95, int((0.95 - 0.5) / 0.05 + 2))`` gives the same ten
    thresholds (the float quotient is 8.999..., so the count is 10). This function counts exact
    boundary cases as in (a 1e-12 tolerance: 4 against 5 scores 0.7); VSI-Bench's own script
    compares plain floats, where ``1 - 0.8`` falls just under 0.2 (4 against 5 scores 0.6):
    :mod:`vst.eval.benchmarks.vsibench_scoring` reproduces that arithmetic for the official
    number."""
    if not isinstance(gt, int | float) or not math.isfinite(gt) or gt == 0:
        raise ValueError(f"mra needs a finite non-zero ground truth, got {gt!r}")
    if pred is None or not isinstance(pred, int | float) or not math.isfinite(pred):
        return 0.0
    rel = abs(pred - gt) / abs(gt)
    # a tiny tolerance so that exact boundary cases (e.g. 10% off at t = 0.90) count as in
    return sum(rel <= (1.0 - t) + 1e-12 for t in MRA_THRESHOLDS) / len(MRA_THRESHOLDS)


# --------------------------------------------------------------------------------------------
# Multiple-choice answer extraction (rule-based, deterministic, never raises)
# --------------------------------------------------------------------------------------------

ALL_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
"""Option letters accepted when neither ``options`` nor ``letters`` is given."""

_CONNECTIVES = frozenset(
    {"because", "since", "as", "is", "was", "which", "given", "due", "and", "or", "so", "for"}
)
"""Words that may follow an option letter "A"/"I" without making it an article or pronoun."""

_EMPHASIS = re.compile(r"\*+|__+|`+|\$+")
_LATEX_TEXT = re.compile(r"\\(?:text|textbf|textrm|mathrm|mathbf|mathit)\s*\{([^{}]*)\}")
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_ONLY_LETTER = re.compile(r"^[\(\[]?\s*([A-Za-z])\s*[\)\]]?\s*[.:)]?$")
_LEADING_LETTER = re.compile(r"^(?:[\(\[]\s*([A-Z])\s*[\)\]]|([A-Z])\s*[.:)])(?=\s|$)")
_LINE_LETTER = re.compile(
    r"^[ \t]*(?:[\(\[][ \t]*([A-Z])[ \t]*[\)\]]|([A-Z])[ \t]*[.:)])(?=\s|$)", re.MULTILINE
)
_LEADING_LINE = re.compile(r"^[\(\[]?\s*([A-Z])\s*[\)\]]?\s*[.:)]?\s*\n")
_PHRASE = re.compile(
    r"(?i:\b(?:answer|option|choice)\b(?:\s+(?:is|would\s+be|should\s+be|will\s+be))?"
    r"\s*[:=\-]?\s*(?:(?:the\s+)?(?:option|choice|letter)\s*)?)"
    r"(?:[\(\[]\s*([A-Za-z])\s*[\)\]]|([A-Z])(?![\w'’\-])|([a-z])(?=[.)]?[ \t]*(?:\n|$)))"
)
_CONTINUATION = re.compile(
    r"\s*(?:,|/|&|\bor\b|\band\b)\s*(?:[\(\[]\s*([A-Za-z])\s*[\)\]]|([A-Z])(?![\w'’\-]))"
)
_BARE = re.compile(r"(?<![\w'’\-])(?:[\(\[]\s*([A-Za-z])\s*[\)\]]|([A-Z]))(?![\w'’\-])")
_NEXT_WORD = re.compile(r"\s+([a-z]+)")
_NON_WORD = re.compile(r"[^\w]+")
_THINK_OPEN = re.compile(r"<think>", re.IGNORECASE)
_THINK_CLOSE = re.compile(r"</think>", re.IGNORECASE)
_ANSWER_OPEN = re.compile(r"<answer>", re.IGNORECASE)
_ANSWER_CLOSE = re.compile(r"</answer>", re.IGNORECASE)
_OPTION_LINE = re.compile(r"^[ \t]*[\(\[]?([A-Z])[\)\].:][ \t]*(\S[^\n]*?)[ \t]*$", re.MULTILINE)


def parse_options(question: str) -> dict[str, str]:
    """Options listed one per line in a question (``"A. text"``, ``"(B) text"``, ``"C) text"``,
    ``"D: text"``): ``{"A": "text", ...}`` in order of appearance. A letter's first line wins."""
    out: dict[str, str] = {}
    for m in _OPTION_LINE.finditer(question if isinstance(question, str) else ""):
        out.setdefault(m.group(1), m.group(2))
    return out


def _last(pattern: re.Pattern[str], text: str, end: int | None = None) -> re.Match[str] | None:
    """The last match of ``pattern`` in ``text[:end]``."""
    last = None
    for last in pattern.finditer(text, 0, len(text) if end is None else end):  # noqa: B007
        pass
    return last


def _answer_region(text: str) -> str | None:
    """The part of a response holding the answer: the last ``<answer>...</answer>`` block, else
    the text after the last ``</think>``; ``None`` for an unclosed ``<think>`` (no answer yet)."""
    close = _last(_THINK_CLOSE, text)
    if close is not None:
        text = text[close.end() :]
    elif _THINK_OPEN.search(text):
        return None
    close = _last(_ANSWER_CLOSE, text)
    if close is not None:
        opening = _last(_ANSWER_OPEN, text, close.start())
        if opening is not None:
            text = text[opening.end() : close.start()]
    text = _LATEX_TEXT.sub(r"\1", _EMPHASIS.sub("", text))
    return text.strip().strip("\"'“”‘’").strip()


def _article_like(text: str, end: int, letter: str) -> bool:
    """True when an upper-case ``A``/``I`` at ``text[:end]`` is followed by a lower-case word other
    than a connective, i.e. it reads as the article "A" or the pronoun "I", not an option."""
    if letter not in ("A", "I"):
        return False
    m = _NEXT_WORD.match(text, end)
    return bool(m) and m.group(1) not in _CONNECTIVES


def _norm_text(s: str) -> str:
    return " ".join(_NON_WORD.sub(" ", s.lower()).split())


def _match_option_text(text: str, options: dict[str, str]) -> str | None:
    """The letter whose option text the response names unambiguously, else ``None``.

    Texts are compared lower-cased with punctuation as spaces. A response equal to one option's
    text selects it; otherwise options are searched as whole-word phrases, longest first, and
    each found phrase is blanked out before shorter ones are searched (so "front right" does not
    also count as "right"). Exactly one option named selects it."""
    resp = _norm_text(text)
    if not resp:
        return None
    normed = {k: _norm_text(v) for k, v in options.items()}
    exact = [k for k, v in normed.items() if v and v == resp]
    if len(exact) == 1:
        return exact[0]
    hay = f" {resp} "
    found: set[str] = set()
    for key, val in sorted(normed.items(), key=lambda kv: -len(kv[1])):
        if not val:
            continue
        # blank every whole-word occurrence so shorter options cannot match inside it
        hay, hits = re.subn(rf"(?<= ){re.escape(val)}(?= )", "\0" * len(val), hay)
        if hits:
            found.add(key)
    return found.pop() if len(found) == 1 else None


def _letters_in(content: str, valid: str) -> set[str] | None:
    """Letters the string states as a whole (``"B"``, ``"(B)"``, ``"B."``, ``"B) text"``; with
    ``"(A) or (B)"`` both); ``None`` when it states none."""
    m = _ONLY_LETTER.match(content)
    if m:
        letter = m.group(1).upper()
        return {letter} if letter in valid else set()
    m = _LEADING_LETTER.match(content)
    if not m:
        return None
    out = {m.group(1) or m.group(2)}
    more = _CONTINUATION.match(content, m.end())
    if more:
        out.add((more.group(1) or more.group(2)).upper())
    return out & set(valid)


def extract_choice(
    response: str,
    options: Mapping[str, str] | Sequence[str] | None = None,
    *,
    letters: str | None = None,
) -> str | None:
    """The option letter a free-form response picks, or ``None`` (rule-based, no LLM judge).

    ``options``: ``{"A": "text", ...}`` or a list of option texts (lettered A, B, ...); when given,
    only their letters count and an option's text can stand for its letter. ``letters`` restricts
    the letters otherwise (default A-Z). Upper-case letters are returned.

    The answer region is the last ``<answer>...</answer>`` block or the text after the last
    ``</think>`` (an unclosed ``<think>`` gives ``None``); markdown emphasis, backticks and
    ``\\text{}`` wrappers are dropped. Then, in order:

    1. ``\\boxed{...}``: the letter (or option text) inside; several boxes must agree.
    2. Answer phrases: ``"Answer: B"``, ``"The answer is (B)"``, ``"the correct option is B"``;
       all must agree.
    3. Letter statements: the whole answer is a letter (``"B"``, ``"(b)"``, ``"B."``); it starts
       with ``"B. text"``, ``"(B) text"``, ``"B) text"``, ``"B: text"`` or a letter alone on the
       first line; or its last line is a letter alone. All must agree, and several lines starting
       with different option letters (echoed options) give ``None``.
    4. Otherwise stand-alone capital letters and parenthesised letters anywhere (not inside
       words or hyphenated names such as ``box-A``; ``"A"``/``"I"`` followed by a lower-case
       word read as article/pronoun); exactly one distinct letter must occur.
    5. If no letter occurs at all: the unambiguous option-text match (see ``options``).

    Several different letters at the deciding step, or ``"A or B"`` / ``"A, B"`` after an
    answer phrase, give ``None``. Never raises; non-strings give ``None``.
    """
    try:
        return _extract_choice(response, options, letters)
    except Exception:  # pragma: no cover - a defensive net; the rules are total on strings
        return None


def _extract_choice(
    response: object, options: Mapping[str, str] | Sequence[str] | None, letters: str | None
) -> str | None:
    if not isinstance(response, str):
        return None
    opts: dict[str, str] = {}
    if isinstance(options, Mapping):
        opts = {str(k).strip().upper(): str(v) for k, v in options.items()}
    elif options is not None and not isinstance(options, str):
        opts = {ALL_LETTERS[i]: str(v) for i, v in enumerate(list(options)[: len(ALL_LETTERS)])}
    if opts:
        valid = "".join(k for k in opts if len(k) == 1 and k in ALL_LETTERS)
    else:
        valid = (letters or ALL_LETTERS).upper()
    text = _answer_region(unicodedata.normalize("NFKC", response))
    if not text:
        return None

    # 1. \boxed{...}
    boxed: set[str] = set()
    for content in _BOXED.findall(text):
        content = content.strip()
        got = _letters_in(content, valid)
        if got is None and opts:
            hit = _match_option_text(content, opts)
            got = {hit} if hit else None
        boxed |= got or set()
    if len(boxed) == 1:
        return boxed.pop()
    if len(boxed) > 1:
        return None

    # 2. answer phrases ("Answer: B", "the answer is (B)")
    stated: set[str] = set()
    for m in _PHRASE.finditer(text):
        letter = m.group(1) or m.group(2) or m.group(3)
        if m.group(2) and _article_like(text, m.end(), letter):
            continue
        if _CONTINUATION.match(text, m.end()):
            return None  # "the answer is A or B"
        if letter.upper() in valid:
            stated.add(letter.upper())
    if stated:
        return stated.pop() if len(stated) == 1 else None

    # 3. the answer is a letter, starts with one, or ends with a letter alone on its line
    listed = {m.group(1) or m.group(2) for m in _LINE_LETTER.finditer(text)}
    if len(listed & set(valid)) > 1:
        return None  # several lines start with option letters: the options echoed
    strong: set[str] = set()
    whole = _letters_in(text, valid)
    if whole is not None:
        strong |= whole
    m = _LEADING_LINE.match(text)
    if m and m.group(1) in valid:
        strong.add(m.group(1))
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if len(lines) > 1:
        m = _ONLY_LETTER.match(lines[-1])
        if m and m.group(1).isupper() and m.group(1) in valid:
            strong.add(m.group(1))
    if strong:
        return strong.pop() if len(strong) == 1 else None

    # 4. stand-alone letters anywhere
    weak: set[str] = set()
    for m in _BARE.finditer(text):
        if m.group(1):
            letter = m.group(1).upper()
        else:
            letter = m.group(2)
            if _article_like(text, m.end(), letter):
                continue
        if letter in valid:
            weak.add(letter)
    if len(weak) == 1:
        return weak.pop()
    if weak:
        return None

    # 5. option text
    return _match_option_text(text, opts) if opts else None


def mcq_score(
    response: str, answer: str, options: Mapping[str, str] | Sequence[str] | None = None
) -> float:
    """1.0 when :func:`extract_choice` finds exactly the letter ``answer`` (case-insensitive),
    else 0.0."""
    got = extract_choice(response, options)
    return float(got is not None and isinstance(answer, str) and got == answer.strip().upper())


def vsibench_first_token(pred: str) -> str:
    """VSI-Bench's multiple-choice post-processing, reproduced exactly: the text before the first
    space character (``str.split(" ")``, so a leading space gives ``""`` and a newline does not
    split), trailing ``"."`` stripped, then surrounding whitespace stripped."""
    return pred.split(" ")[0].rstrip(".").strip()


def vsibench_mcq_score(pred: str, gt: str) -> float:
    """VSI-Bench multiple-choice accuracy of one answer: 1.0 when :func:`vsibench_first_token` of
    ``pred`` equals ``gt`` case-insensitively, else 0.0 (no other extraction)."""
    return float(vsibench_first_token(pred).lower() == gt.lower())
