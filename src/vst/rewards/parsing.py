"""Rule-based, deterministic parsers for untrusted model output (they never raise on any ``str``).

* :func:`split_think` — ``<think>reasoning</think> answer`` into its parts, and whether the
  structure is well formed (exactly one canonical ``<think>`` at the start, exactly one
  ``</think>``, a non-empty answer after it).
* :func:`extract_boxed` — the content of the last ``\\boxed{...}`` (nested braces balanced).
* :func:`final_answer` — the one string an answer is judged on: the last ``\\boxed{}`` if any,
  else the clause after the last "answer is" / "answer:" cue, else the whole answer. Exactly one
  candidate, so hedged answers cannot score twice.
* :func:`extract_json` — a JSON list/dict from the last fenced block (```json or untagged), else
  the whole text, else its outermost ``[...]`` / ``{...}``.
* :func:`parse_boxes3d` / :func:`box_list_is_valid` — the VST 3D box answer
  (``[{"bbox_3d": [9 numbers], "label": str}, ...]``, angles written as degrees / 180), lenient
  (malformed entries skipped) and strict.
* :func:`extract_choice` / :func:`split_choice` — one multiple-choice label (a letter, or with
  ``numbered`` an option number; several labels, or a label contradicting its option text, give
  ``None``) / the label and text of ``"B. northwest"``, ``"B: point-B"``, ``"2. box-A"``.
* :func:`parse_quantity` / :func:`parse_unit` / :func:`convert_unit` — a number with an optional
  unit (lengths, areas, volumes, angles), e.g. ``"45 cm"``, ``"12 m²"``, ``"12 sq m"``.
* :func:`parse_sequence` — an ordered list of handles/names for the ``order`` mode.
* :func:`normalize_text` — the normalisation behind every text comparison.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np

from vst.geometry.text import ANGLE_SCALE, is_finite_number, loads_or_none, parse_json_region
from vst.rewards.bounds import MAX_DET3D_CHARS, clip_answer, safe_nfkc
from vst.rewards.canonical import canonical_boxes3d

__all__ = [
    "Quantity",
    "ThinkSplit",
    "box_list_is_valid",
    "convert_unit",
    "extract_boxed",
    "extract_choice",
    "extract_json",
    "final_answer",
    "normalize_text",
    "options_map",
    "parse_boxes3d",
    "parse_quantity",
    "parse_sequence",
    "parse_unit",
    "sequence_token",
    "split_choice",
    "split_think",
]

# --------------------------------------------------------------------------------------------
# <think> ... </think>
# --------------------------------------------------------------------------------------------

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

_TAG_RE = re.compile(r"<\s*+(?:(/)\s*+)?think\s*+>", re.IGNORECASE)
"""Any think tag, including variants (``< think >``, ``<THINK>``), so nesting is always seen.
(Possessive whitespace runs: with backtracking runs around an optional slash, ``"<"`` and
many spaces cost quadratic time.)"""

_CLOSE_RE = re.compile(r"<\s*+/\s*+think\s*+>", re.IGNORECASE)
"""A think-close tag (variants included)."""

_END_TOKENS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "</s>", "<|end|>")
"""End-of-turn tokens a decoder may leave at the end of a response; stripped first."""

_END_RE = re.compile("(?:\\s+|" + "|".join(re.escape(t[::-1]) for t in _END_TOKENS) + ")*")
"""Trailing whitespace and end tokens, matched on the reversed text (linear)."""

_ANSWER_TAG_RE = re.compile(r"^\s*<answer>(.*)</answer>\s*$", re.DOTALL | re.IGNORECASE)


class ThinkSplit(NamedTuple):
    """``think``: the reasoning (``None`` without a ``</think>``); ``answer``: the text judged for
    accuracy; ``well_formed``: the format condition (see :func:`split_think`)."""

    think: str | None
    answer: str
    well_formed: bool


def _strip_end_tokens(text: str) -> str:
    return text[: len(text) - _END_RE.match(text[::-1]).end()]


def split_think(response: str) -> ThinkSplit:
    """Split a response into reasoning and answer.

    Well formed iff the response (trailing end-of-turn tokens and whitespace ignored) starts with
    the exact tag ``<think>``, contains exactly one think-open and one think-close tag (variants
    such as ``< think >`` count as tags, so nested or repeated tags fail) in that order, the
    close tag is exactly ``</think>``, and the answer after it is non-empty. Empty reasoning is
    allowed (as in the public release's ``<think>.*</think>.*`` pattern).

    The answer is the text after the last think-close tag, with stray think tags and one
    enclosing ``<answer>...</answer>`` removed. With open tags but no close tag (unfinished
    reasoning) the answer is empty; with no tags at all it is the whole response. Linear time
    in the response's length.
    """
    if not isinstance(response, str):
        return ThinkSplit(None, "", False)
    text = _strip_end_tokens(response)
    first = _TAG_RE.search(text)
    last = None
    if first is not None:
        for last in _CLOSE_RE.finditer(text, first.start()):  # noqa: B007 - the last one
            pass
    if first is None:
        think, answer = None, text.strip()
    elif last is None:
        think, answer = None, ""
    else:
        think = _TAG_RE.sub("", text[: last.start()]).strip()
        answer = _TAG_RE.sub("", text[last.end() :]).strip()
    m = _ANSWER_TAG_RE.match(answer)
    if m:
        answer = m.group(1).strip()
    # exactly two tags (a third is looked for, never more), "<think>" first at the start
    second = _TAG_RE.search(text, first.end()) if first is not None else None
    well_formed = (
        second is not None
        and first.group(0) == THINK_OPEN
        and second.group(0) == THINK_CLOSE
        and _TAG_RE.search(text, second.end()) is None
        and text[: first.start()].strip() == ""
        and answer != ""
    )
    return ThinkSplit(think, answer, well_formed)


# --------------------------------------------------------------------------------------------
# \boxed{} and answer cues
# --------------------------------------------------------------------------------------------

_BOXED_RE = re.compile(r"\\(?:boxed|fbox)\s*\{")


def extract_boxed(text: str) -> str | None:
    """Content of the last ``\\boxed{...}`` (or ``\\fbox{...}``) with balanced braces, stripped;
    ``None`` if there is none or it is never closed."""
    if not isinstance(text, str):
        return None
    starts = [m.end() for m in _BOXED_RE.finditer(text)]
    if not starts:
        return None
    # one pass pairing braces (a brace's partner depends only on the text after it)
    closing: dict[int, int] = {}
    stack: list[int] = []
    for i, c in enumerate(text):
        if c == "{":
            stack.append(i)
        elif c == "}" and stack:
            closing[stack.pop()] = i
    for start in reversed(starts):
        end = closing.get(start - 1)
        if end is not None:
            return text[start:end].strip()
    return None


_CUE_RE = re.compile(
    r"\b(?:final\s+answer|answer|option|choice)\s*(?:is\b|:|=)\s*:?", re.IGNORECASE
)
_CLAUSE_END_RE = re.compile(r"\n|\.(?:\s|$)")
_LABEL_PREFIX_RE = re.compile(r"\(?(?:[A-J]|\d{1,2})\)?[.:](?=[ \t]+\S)")
"""An option label opening a clause ("B. northwest", "2: point-2"): its dot ends no clause."""


def _answer_tail(text: str) -> str | None:
    """The clause after the last answer cue ("the answer is X." -> "X"; "the answer is B. the
    lamp." -> "B. the lamp"), or ``None``."""
    last = None
    for last in _CUE_RE.finditer(text):  # noqa: B007 - we want the last match
        pass
    if last is None:
        return None
    tail = text[last.end() :].strip()
    label = _LABEL_PREFIX_RE.match(tail)
    end = _CLAUSE_END_RE.search(tail, label.end() if label else 0)
    if end:
        tail = tail[: end.start()]
    tail = tail.strip()
    return tail or None


def final_answer(answer: str) -> str:
    """The single candidate an answer is judged on: the last ``\\boxed{}`` content, else the
    clause after the last "answer is" / "answer:" cue, else the whole (stripped) answer. A long
    answer is first cut to its ends (:func:`vst.rewards.bounds.clip_answer`)."""
    if not isinstance(answer, str):
        return ""
    answer = clip_answer(answer)
    boxed = extract_boxed(answer)
    if boxed is not None:
        return boxed
    tail = _answer_tail(answer)
    return tail if tail is not None else answer.strip()


# --------------------------------------------------------------------------------------------
# text normalisation
# --------------------------------------------------------------------------------------------

_PUNCT_RE = re.compile(r"[^\w\s.]|_")
_LOOSE_DOT_RE = re.compile(r"(?<!\d)\.|\.(?!\d)")
_ARTICLES = frozenset({"the", "a", "an"})


def normalize_text(text: Any) -> str:
    """Unicode NFKC, case-folded, punctuation (except a decimal point between digits) turned
    into spaces, whitespace collapsed, one leading article dropped when more words follow.

    ``"The Front-Left."`` -> ``"front left"``; ``"2.35 m"`` -> ``"2.35 m"``; ``"A"`` -> ``"a"``.
    """
    if not isinstance(text, str):
        text = "" if text is None else str(text)
    s = safe_nfkc(text).casefold()
    s = _LOOSE_DOT_RE.sub(" ", _PUNCT_RE.sub(" ", s))
    words = s.split()
    if len(words) > 1 and words[0] in _ARTICLES:
        words = words[1:]
    return " ".join(words)


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


_FENCE_TAG_RE = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")


def _fenced_json_blocks(text: str) -> list[str]:
    """Bodies of the ```-fenced blocks tagged ``json`` or untagged, in order (fences pair up
    left to right; the rest of the opening line after the tag is not part of the body)."""
    blocks = []
    start = text.find("```")
    while start >= 0:
        end = text.find("```", start + 3)
        if end < 0:
            break
        newline = text.find("\n", start + 3, end)
        header = text[start + 3 : end if newline < 0 else newline]
        tag = _FENCE_TAG_RE.match(header).group(1)  # always matches (possibly empty)
        if "`" not in header and tag.lower() in ("", "json"):
            blocks.append("" if newline < 0 else text[newline + 1 : end])
        start = text.find("```", end + 3)
    return blocks


def _json_regions(text: str) -> list[str]:
    blocks = _fenced_json_blocks(text)
    return [blocks[-1], text] if blocks else [text]


def extract_json(text: str) -> list | dict | None:
    """A JSON list or dict from ``text``: the last fenced block tagged ``json`` (or untagged),
    else the whole text; each tried whole, then from its first ``[`` to its last ``]``, then
    from its first ``{`` to its last ``}``. ``None`` when nothing parses."""
    if not isinstance(text, str):
        return None
    for region in _json_regions(text):
        value = parse_json_region(region)
        if value is not None:
            return value
    return None


# --------------------------------------------------------------------------------------------
# 3D boxes (VST answer format)
# --------------------------------------------------------------------------------------------

_OBJECT_RE = re.compile(r"\{[^{}]*\}")


def _box_entry(item: Any) -> tuple[np.ndarray, str] | None:
    """Box (9,) in DEGREES and label of a valid entry, else ``None``. Valid: a dict with
    ``bbox_3d`` a list of exactly 9 finite numbers (booleans are not numbers) and ``label`` a
    non-empty string; other keys are ignored."""
    if not isinstance(item, dict):
        return None
    bbox, label = item.get("bbox_3d"), item.get("label")
    if not isinstance(bbox, list) or len(bbox) != 9 or not all(is_finite_number(v) for v in bbox):
        return None
    if not isinstance(label, str) or not label.strip():
        return None
    try:
        box = np.asarray(bbox, dtype=np.float64)
    except (OverflowError, ValueError):  # integers beyond float range
        return None
    with np.errstate(over="ignore"):  # an angle near the float limit overflows when scaled
        box[6:9] *= ANGLE_SCALE
    if not np.all(np.isfinite(box)):
        return None
    return box, label


def parse_boxes3d(text: str) -> tuple[np.ndarray, list[str]]:
    """Lenient parse of a VST box answer into boxes ``(N, 9)`` (angles in DEGREES, i.e. the
    written values times 180) and their labels.

    Reads :func:`extract_json`'s value (a list, or one entry as a dict); without any parsable
    JSON, complete ``{...}`` objects are salvaged (e.g. from a truncated list). Malformed entries
    are skipped; unparsable text gives ``(0, 9)``. Only the first
    :data:`~vst.rewards.bounds.MAX_DET3D_CHARS` characters are read. Answers in the engine's
    own layout go through :func:`vst.rewards.canonical.canonical_boxes3d` (one compiled pass,
    the same result)."""
    if not isinstance(text, str):
        return np.zeros((0, 9)), []
    text = clip_answer(text, MAX_DET3D_CHARS, head_only=True)
    fast = canonical_boxes3d(text)  # the engine's own layout: same result, ~5x faster
    if fast is not None:
        return fast
    value = extract_json(text)
    if value is None:
        value = []
        for region in _json_regions(text):
            found = [v for m in _OBJECT_RE.finditer(region) if (v := loads_or_none(m.group(0)))]
            if found:
                value = found
                break
    items = [value] if isinstance(value, dict) else value
    return _boxes_from_items(items)


_PLAIN_NUMBER = frozenset({int, float})


def _boxes_from_items(items: list) -> tuple[np.ndarray, list[str]]:
    """Valid entries of ``items`` as boxes (DEGREES) and labels (see :func:`_box_entry`)."""
    # fast path: screen the entries in Python, convert and check finiteness in one numpy call
    rows, labels = [], []
    for item in items:
        if not isinstance(item, dict):
            continue
        bbox, label = item.get("bbox_3d"), item.get("label")
        if (
            isinstance(bbox, list)
            and len(bbox) == 9
            and isinstance(label, str)
            and label.strip()
            and _PLAIN_NUMBER.issuperset(map(type, bbox))  # excludes bool, str, None, ...
        ):
            rows.append(bbox)
            labels.append(label)
    if not rows:
        return np.zeros((0, 9)), []
    try:
        arr = np.array(rows, dtype=np.float64)
    except (OverflowError, ValueError, TypeError):  # an int beyond float range, exotic types
        entries = [e for item in items if (e := _box_entry(item)) is not None]
        if not entries:
            return np.zeros((0, 9)), []
        return np.stack([e[0] for e in entries]), [e[1] for e in entries]
    with np.errstate(over="ignore"):  # an angle near the float limit overflows when scaled
        arr[:, 6:9] *= ANGLE_SCALE
    keep = np.isfinite(arr).all(axis=1)
    if not keep.all():
        arr = arr[keep]
        labels = [lab for lab, k in zip(labels, keep, strict=True) if k]
    return (arr, labels) if len(arr) else (np.zeros((0, 9)), [])


def box_list_is_valid(text: str) -> bool:
    """Strict detection-format check: :func:`extract_json` finds a JSON *list* (fenced or bare,
    surrounding prose allowed; ``[]`` is valid) and every entry is valid (see
    :func:`parse_boxes3d`); a text longer than :data:`~vst.rewards.bounds.MAX_DET3D_CHARS`
    is not."""
    if not isinstance(text, str) or len(text) > MAX_DET3D_CHARS:
        return False
    if canonical_boxes3d(text) is not None:  # every entry of the engine's layout is valid
        return True
    value = extract_json(text)
    return isinstance(value, list) and all(_box_entry(item) is not None for item in value)


# --------------------------------------------------------------------------------------------
# multiple choice
# --------------------------------------------------------------------------------------------

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
MAX_OPTION_NUMBER = 99
"""Highest option number read in numbered multiple choice (``1.`` ... ``99.``)."""

_LEAD_RE = re.compile(
    r"^(?:(?:so|thus|therefore|hence)\b[\s,]*)?(?:the\s+)?"
    r"(?:final\s+|correct\s+|best\s+|right\s+)?(?:answer|option|choice)\b\s*(?:is\b)?\s*[:=]?\s*",
    re.IGNORECASE,
)
_LETTER_CHOICE_RE = re.compile(
    r"^(?:\((?P<a>[A-Za-z])\)|\[(?P<b>[A-Za-z])\]|(?P<c>[A-Za-z])(?P<d>[.:)])?(?=\W|$))"
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_NUMBER_CHOICE_RE = re.compile(
    r"^(?:\((?P<a>\d{1,2})\)|\[(?P<b>\d{1,2})\]|(?P<c>\d{1,2})(?P<d>[.:)])?(?=[^\w.]|\.(?!\d)|$))"
    r"(?P<rest>.*)$",
    re.DOTALL,
)
_BARE_LETTER_RE = re.compile(r"^[(\[]?[A-Z][)\]]?(?:[.,;:)]|\s|$)")
_BARE_NUMBER_RE = re.compile(r"^[(\[]?\d{1,2}[)\]]?(?:[.,;:)]|\s|$)")


class _Labels(NamedTuple):
    """How options are labelled: letters ``A``.. or numbers ``1``.."""

    numbered: bool
    choice: re.Pattern
    bare: re.Pattern

    def label(self, raw: str) -> str | None:
        """The canonical label (upper-case letter, or number without leading zeros)."""
        if self.numbered:
            n = int(raw)
            return str(n) if 1 <= n <= MAX_OPTION_NUMBER else None
        return raw.upper()


_LETTERED = _Labels(False, _LETTER_CHOICE_RE, _BARE_LETTER_RE)
_NUMBERED = _Labels(True, _NUMBER_CHOICE_RE, _BARE_NUMBER_RE)


def options_map(options: Any, numbered: bool = False) -> dict[str, str]:
    """``{"A": text, ...}`` (numbered: ``{"1": text, ...}``) from a list (in label order) or a
    label-keyed mapping; anything else gives ``{}``."""
    if isinstance(options, Mapping):
        out = {}
        for k, v in options.items():
            key = str(k).strip().upper() if isinstance(k, str | int) else ""
            if numbered and key.isdigit() and 1 <= int(key) <= MAX_OPTION_NUMBER:
                out[str(int(key))] = str(v)
            elif not numbered and len(key) == 1 and key in _LETTERS:
                out[key] = str(v)
        return out
    if isinstance(options, Sequence) and not isinstance(options, str):
        items = list(options)[: MAX_OPTION_NUMBER if numbered else len(_LETTERS)]
        return {(str(i + 1) if numbered else _LETTERS[i]): str(v) for i, v in enumerate(items)}
    return {}


def _clean_choice_text(text: str) -> str:
    text = safe_nfkc(text).replace("*", "").replace("`", "").strip()
    return text.strip("\"'“”‘’ \t\n")


def split_choice(text: str, numbered: bool = False) -> tuple[str, str] | None:
    """``(label, option text)`` of an option written as ``"B"``, ``"(B)"``, ``"B. northwest"``,
    ``"B: point-B"`` (numbered: ``"2"``, ``"(2)"``, ``"2. box-A"``); the text is ``""`` for a
    bare label. ``None`` when ``text`` does not start with a label, or a label is followed by
    undelimited text (``"A lamp"``) or starts with a lower-case letter and carries text."""
    labels = _NUMBERED if numbered else _LETTERED
    m = labels.choice.match(_clean_choice_text(text)) if isinstance(text, str) else None
    if not m:
        return None
    raw = m.group("a") or m.group("b") or m.group("c")
    label = labels.label(raw)
    rest = m.group("rest").strip()
    if label is None:
        return None
    if not normalize_text(rest):
        return label, ""
    delimited = m.group("c") is None or m.group("d") is not None
    if not delimited or (not numbered and not raw.isupper()):
        return None
    return label, rest


def _label_from(text: str, opts: dict[str, str], labels: _Labels) -> str | None:
    first, newline, after = text.partition("\n")
    if newline and after.strip():
        # a choice on the first line, then an explanation: fine unless a later line starts
        # with another label ("A\nB", "A. lamp\nB. sofa")
        label = _label_from(first.strip(), opts, labels)
        lines = [ln.strip() for ln in after.splitlines()]
        if label is not None and not any(labels.bare.match(ln) for ln in lines):
            return label
        return None
    parts = split_choice(text, numbered=labels.numbered)
    if parts is None:
        return None
    label, rest = parts
    if not rest:
        return label
    if opts:  # the option text after the label must be that option's
        if label in opts and normalize_text(rest) == normalize_text(opts[label]):
            return label
        return None
    if labels.bare.match(rest):  # "A. B", "A) C) D)": several labels
        return None
    return label


def _option_text_match(text: str, opts: dict[str, str]) -> str | None:
    norm = normalize_text(text)
    if not norm:
        return None
    hits = [k for k, v in opts.items() if normalize_text(v) == norm]
    return hits[0] if len(hits) == 1 else None


def extract_choice(text: str, options: Any = None, *, numbered: bool = False) -> str | None:
    """One option label from an answer, or ``None``: an upper-case letter, or with ``numbered``
    (options labelled 1, 2, ...) a number string such as ``"2"``.

    Accepted: ``"B"``, ``"b"``, ``"B."``, ``"(B)"``, ``"[B]"``, ``"B)"``, ``"Option B"``,
    ``"The answer is (B)."``, ``"B. northwest"`` / ``"(B) northwest"`` / ``"B: point-B"`` (with
    ``options`` the text must be option B's, else ``None``; without, the letter decides), the
    option text alone when ``options`` (a list in label order or a label-keyed dict) are given,
    and the clause after the last "answer is" cue or ``\\boxed{}`` (only the boxed content when
    there is one). Numbered: ``"2"``, ``"(2)"``, ``"2."``, ``"2. box-A"``, ``"Option 2"``; a
    letter is then no label (letters name marks). A choice on the first line may be followed by
    explanation lines. Rejected: several labels (``"A, B"``, ``"A or B"``, ``"A. B"``,
    ``"A\\nB"``), the answer and its "answer is" clause naming different labels, a letter
    followed by undelimited text (``"A lamp"``), anything else. A long answer is cut to its ends
    first (:func:`vst.rewards.bounds.clip_answer`).
    """
    if not isinstance(text, str):
        return None
    text = clip_answer(text)
    labels = _NUMBERED if numbered else _LETTERED
    opts = options_map(options, numbered)
    boxed = extract_boxed(text)
    if boxed is not None:
        candidates = [boxed]
    else:
        tail = _answer_tail(text)
        candidates = [text] if tail is None else [text, tail]
    found = set()
    for cand in candidates:
        cand = _clean_choice_text(cand)
        lead = _LEAD_RE.match(cand)
        if lead and lead.end() < len(cand):
            cand = _clean_choice_text(cand[lead.end() :])
        label = _label_from(cand, opts, labels)
        if label is None and opts and split_choice(cand, labels.numbered) is None:
            # the option text alone ("A. northwest" is a label with the wrong text, not a text:
            # normalisation would drop its "A" as an article)
            label = _option_text_match(cand, opts)
        if label is not None:
            found.add(label)
    # the whole answer and its "answer is" clause naming different labels is a hedge
    return found.pop() if len(found) == 1 else None


# --------------------------------------------------------------------------------------------
# numbers with units
# --------------------------------------------------------------------------------------------

_UNITS: dict[str, tuple[str, float]] = {
    "m": ("length", 1.0),
    "cm": ("length", 0.01),
    "mm": ("length", 0.001),
    "dm": ("length", 0.1),
    "km": ("length", 1000.0),
    "in": ("length", 0.0254),
    "ft": ("length", 0.3048),
    "yd": ("length", 0.9144),
    "m2": ("area", 1.0),
    "cm2": ("area", 1e-4),
    "mm2": ("area", 1e-6),
    "km2": ("area", 1e6),
    "ft2": ("area", 0.09290304),
    "m3": ("volume", 1.0),
    "cm3": ("volume", 1e-6),
    "l": ("volume", 1e-3),
    "deg": ("angle", 1.0),
    "rad": ("angle", 180.0 / math.pi),
}
"""Canonical unit -> (dimension, factor to the dimension's base unit: m, m², m³, degree)."""


def _plural(*words: str) -> list[str]:
    return [w for word in words for w in (word, word + "s")]


_LENGTH_WORDS = {
    "m": ("meter", "metre"),
    "cm": ("centimeter", "centimetre"),
    "mm": ("millimeter", "millimetre"),
    "dm": ("decimeter", "decimetre"),
    "km": ("kilometer", "kilometre"),
}

_ALIASES: dict[str, list[str]] = {
    "in": ["inch", "inches"],
    "ft": ["ft", "foot", "feet"],
    "yd": ["yd", *_plural("yard")],
    "ft2": ["ft2", "ft^2", "sq ft", "sq. ft", "sqft", "square feet", "square foot"],
    "l": _plural("liter", "litre"),
    "deg": ["°", "deg", *_plural("degree")],
    "rad": ["rad", *_plural("radian")],
}
for _u, _words in _LENGTH_WORDS.items():
    _ALIASES[_u] = [_u, *_plural(*_words)]
    _ALIASES[_u + "2"] = [
        f"{_u}2",
        f"{_u}^2",
        f"sq {_u}",
        f"sq. {_u}",
        f"sq{_u}",
        f"square {_u}",
        *[f"square {w}" for w in _plural(*_words)],
        *[f"sq {w}" for w in _plural(*_words)],
        *[f"{w} squared" for w in _plural(*_words)],
    ]
    _ALIASES[_u + "3"] = [
        f"{_u}3",
        f"{_u}^3",
        f"cubic {_u}",
        *[f"cubic {w}" for w in _plural(*_words)],
        *[f"{w} cubed" for w in _plural(*_words)],
    ]
for _u in ("dm2", "dm3", "km3", "mm3"):
    del _ALIASES[_u]
_ALIAS_TO_UNIT = {alias.lower(): unit for unit, aliases in _ALIASES.items() for alias in aliases}
_UNIT_PATTERN = "|".join(
    re.escape(a).replace(r"\ ", r"\s+") for a in sorted(_ALIAS_TO_UNIT, key=len, reverse=True)
)
_SPACE_RE = re.compile(r"\s+")

_NUMBER_RE = re.compile(
    r"(?<![\w.])(?P<sign>[-+−]?)"
    r"(?P<num>\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+)"
    r"(?:[eE](?P<exp>[-+]?\d{1,4}))?"
    r"(?:\s*/\s*(?P<den>\d+(?:\.\d+)?))?"
    r"(?:\s*(?P<unit>" + _UNIT_PATTERN + r")(?![A-Za-z0-9]))?"
    r"(?![A-Za-z0-9_])",
    re.IGNORECASE,
)
_WORD_NUMBERS = [
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
    "nineteen", "twenty",
]  # fmt: skip
_WORD_NUMBER_RE = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\b", re.IGNORECASE)


class Quantity(NamedTuple):
    """A parsed number and its canonical unit (``None`` when none was written)."""

    value: float
    unit: str | None


def parse_unit(text: Any) -> str | None:
    """Canonical unit (a key of the unit table: ``"m"``, ``"cm"``, ``"m2"``, ``"deg"``, ...) for
    a unit string in any accepted spelling (``"metres"``, ``"m²"``, ``"sq m"``), else ``None``."""
    if not isinstance(text, str):
        return None
    key = _SPACE_RE.sub(" ", safe_nfkc(text).strip().lower())
    return _ALIAS_TO_UNIT.get(key, key if key in _UNITS else None)


def convert_unit(value: float, from_unit: str, to_unit: str) -> float | None:
    """``value`` in ``from_unit`` expressed in ``to_unit`` (canonical units); ``None`` when the
    dimensions differ (e.g. metres vs square metres) or a unit is unknown."""
    a, b = _UNITS.get(from_unit), _UNITS.get(to_unit)
    if a is None or b is None or a[0] != b[0]:
        return None
    return value * a[1] / b[1]


def parse_quantity(text: str) -> Quantity | None:
    """The number an answer states, with its unit, or ``None``.

    Judged on :func:`final_answer`'s candidate (so "... the answer is 4.83 m" reads 4.83 m);
    of several numbers the last is taken. Understands signs (also ``−``), thousands commas
    (``1,200``), decimals, exponents, simple fractions (``3/4``), number words zero..twenty
    (only when no digits are present), and units after the number in the unit table's spellings
    (``"45 cm"``, ``"1.2m"``, ``"12 m²"``, ``"12 sq m"``, ``"12 square meters"``, ``"30°"``).
    Non-finite values (``1e999``) give ``None``."""
    if not isinstance(text, str):
        return None
    cand = safe_nfkc(final_answer(text))
    last = None
    for last in _NUMBER_RE.finditer(cand):  # noqa: B007 - we want the last match
        pass
    if last is None:
        words = _WORD_NUMBER_RE.findall(cand)
        if not words:
            return None
        return Quantity(float(_WORD_NUMBERS.index(words[-1].lower())), None)
    try:
        value = float(last.group("num").replace(",", ""))
        if last.group("exp"):
            value = float(f"{last.group('num').replace(',', '')}e{last.group('exp')}")
        if last.group("den"):
            den = float(last.group("den"))
            if den == 0:
                return None
            value /= den
    except (ValueError, OverflowError):
        return None
    if last.group("sign") in ("-", "−"):
        value = -value
    if not math.isfinite(value):
        return None
    unit = parse_unit(last.group("unit")) if last.group("unit") else None
    return Quantity(value, unit)


# --------------------------------------------------------------------------------------------
# ordered sequences (the engine's ``order`` mode)
# --------------------------------------------------------------------------------------------

_NUM = r"[-+]?\d+(?:\.\d+)?"
_TUPLE_RE = re.compile(r"[(\[]\s*(" + _NUM + r"(?:\s*,\s*" + _NUM + r")*)\s*[)\]]")
_PAREN_RE = re.compile(r"\([^()]*\)")
_SPLIT_RE = re.compile(r"[,;\n]|->|→|=>|>|\band\b|\bthen\b", re.IGNORECASE)
_ENUM_RE = re.compile(r"^\s*(?:\d+\s*[.)]|[-*•])\s+")
_HANDLE_KEYS = ("handle", "id", "name", "label", "object", "category")
_COORD_KEYS = ("point_2d", "bbox_2d", "point", "bbox", "box_2d", "box")

Token = tuple[str, Any]
"""A sequence item: ``("n", (numbers...))`` for coordinate handles, ``("t", text)`` otherwise."""


def _numbers(values: Any) -> tuple[float, ...] | None:
    if isinstance(values, list) and values and all(is_finite_number(v) for v in values):
        return tuple(float(v) for v in values)
    return None


def sequence_token(item: Any) -> Token | None:
    """Token of one ground-truth or predicted item: a coordinate string ``"(199, 301)"`` /
    ``"[1, 2, 3, 4]"`` or a list of numbers -> numeric; other strings -> normalised text."""
    if isinstance(item, str):
        m = _TUPLE_RE.fullmatch(item.strip())
        if m:
            return ("n", tuple(float(v) for v in m.group(1).split(",")))
        text = normalize_text(item)
        return ("t", text) if text else None
    nums = _numbers(item)
    if nums is not None:
        return ("n", nums)
    if is_finite_number(item):
        return ("t", normalize_text(str(item)))
    return None


def _json_item_token(item: Any, numeric: bool) -> Token | None:
    if isinstance(item, dict):
        if numeric:
            for key in _COORD_KEYS:
                nums = _numbers(item.get(key))
                if nums is not None:
                    return ("n", nums)
            for value in item.values():
                nums = _numbers(value)
                if nums is not None:
                    return ("n", nums)
            return None
        for key in _HANDLE_KEYS:
            if isinstance(item.get(key), str):
                return sequence_token(_PAREN_RE.sub(" ", item[key]))
        return None
    if isinstance(item, str):
        return sequence_token(item if numeric else _PAREN_RE.sub(" ", item))
    return sequence_token(item) if numeric else None


def parse_sequence(text: str, numeric: bool = False, expected_len: int | None = None) -> list:
    """Ordered tokens (see :func:`sequence_token`) from an ``order`` answer.

    A JSON list (fenced or bare) is read item by item (dict items by their coordinates when
    ``numeric``, else by their handle/name/label). Otherwise, with ``numeric``, every
    ``(x, y)`` / ``[x1, y1, x2, y2]`` in the text in order; without, the text is split on
    commas, semicolons, new lines, arrows, "and", "then", after dropping ``(...)`` groups (the
    engine's ``"point-A (window)"`` label suffixes) and list enumerations; if that yields one
    item but ``expected_len`` > 1, it is split on whitespace (``"A C B"``)."""
    if not isinstance(text, str):
        return []
    cand = final_answer(text)
    value = extract_json(cand)
    if numeric and _numbers(value) is not None:
        return [("n", _numbers(value))]
    if isinstance(value, list) and value:
        tokens = [_json_item_token(v, numeric) for v in value]
        if all(t is not None for t in tokens):
            return tokens
    if numeric:
        return [
            ("n", tuple(float(v) for v in m.group(1).split(","))) for m in _TUPLE_RE.finditer(cand)
        ]
    stripped = _PAREN_RE.sub(" ", cand.replace("```", " "))
    parts = [p for p in (_ENUM_RE.sub("", p) for p in _SPLIT_RE.split(stripped)) if p.strip()]
    if len(parts) == 1 and expected_len is not None and expected_len > 1:
        parts = parts[0].split()
    return [t for p in parts if (t := sequence_token(p)) is not None]
