"""Reading a teacher's reply (untrusted text) and checking its reasoning for invented objects.

:func:`parse_triplet` finds the JSON object ``{"question", "reasoning", "answer"}`` anywhere in
a reply: inside a fenced block or bare, with any text around it. It never raises: a reply it
cannot use gives a :class:`Malformed` with a one-line reason (no JSON object, a missing key, a
value that is not a non-empty string, think tags inside the reasoning).

:func:`hallucinated` lists the object categories a reasoning names that the sample's scene
facts do not hold: categories come from a vocabulary (every label of the scenes, or a given
list), matched case-insensitively as whole words, singular or plural, longest first (so
"coffee table" is one mention, not also "table"). Categories that are also ordinary words of
spatial reasoning (:data:`GENERIC_WORDS`: "box", "picture", ...) are not checked unless asked.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "GENERIC_WORDS",
    "MAX_REPLY_CHARS",
    "Malformed",
    "Triplet",
    "Vocabulary",
    "hallucinated",
    "parse_triplet",
    "plural_forms",
]

MAX_REPLY_CHARS = 200_000
"""Replies are cut to this many characters before parsing (bounds the work on hostile text)."""
_MAX_STARTS = 200

GENERIC_WORDS = ("box", "picture", "frame", "object", "point", "mark", "image", "view", "photo")
"""Category names that reasoning also uses in their ordinary sense ("the 3D box", "the first
picture"): left out of the hallucination check by default."""
_KEYS = ("question", "reasoning", "answer")
_FENCE = re.compile(r"```(?:json|JSON)?\s*\n?(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Triplet:
    """A teacher's revised ``question``, its ``reasoning`` and final ``answer`` (stripped)."""

    question: str
    reasoning: str
    answer: str


@dataclass(frozen=True)
class Malformed:
    """A reply that gives no usable triplet; ``reason`` is one line."""

    reason: str


def _objects(text: str) -> Iterable[dict]:
    """JSON objects in ``text``: fenced blocks first, then every ``{`` (bounded)."""
    decoder = json.JSONDecoder()
    for block in _FENCE.findall(text):
        try:
            value = json.loads(block.strip())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            yield value
    starts = 0
    for match in re.finditer(r"\{", text):
        starts += 1
        if starts > _MAX_STARTS:
            return
        try:
            value, _ = decoder.raw_decode(text, match.start())
        except (ValueError, RecursionError):
            continue
        if isinstance(value, dict):
            yield value


def parse_triplet(reply: object) -> Triplet | Malformed:
    """The triplet in ``reply`` or why there is none (module docstring). The first JSON object
    holding any of the three keys is the one judged."""
    if not isinstance(reply, str) or not reply.strip():
        return Malformed("empty reply")
    text = reply[:MAX_REPLY_CHARS]
    found = next((o for o in _objects(text) if any(k in o for k in _KEYS)), None)
    if found is None:
        return Malformed("no JSON object with question/reasoning/answer in the reply")
    values = []
    for key in _KEYS:
        if key not in found:
            return Malformed(f"missing key {key!r}")
        value = found[key]
        if not isinstance(value, str):
            return Malformed(f"{key!r} is not a string ({type(value).__name__})")
        if not value.strip():
            return Malformed(f"{key!r} is empty")
        values.append(value.strip())
    if re.search(r"</?think>", values[1] + values[2], re.IGNORECASE):
        return Malformed("think tags inside the reasoning or answer")
    return Triplet(*values)


def plural_forms(label: str) -> set[str]:
    """``label`` (lower case) and its plural spellings: +s, +es, y -> ies, f/fe -> ves (on the
    last word of a multi-word label)."""
    word = label.strip().lower()
    forms = {word, word + "s", word + "es"}
    if word.endswith("y") and len(word) > 1 and word[-2] not in "aeiou":
        forms.add(word[:-1] + "ies")
    if word.endswith("fe"):
        forms.add(word[:-2] + "ves")
    elif word.endswith("f"):
        forms.add(word[:-1] + "ves")
    return forms


class Vocabulary:
    """Object categories to look for in reasoning text (module docstring)."""

    def __init__(self, labels: Iterable[str], ignore: Iterable[str] = GENERIC_WORDS) -> None:
        skip = {str(x).strip().lower() for x in ignore}
        words = {str(x).strip().lower() for x in labels}
        self.labels = sorted(w for w in words if w and w not in skip)
        self._form_of: dict[str, str] = {}
        for label in self.labels:
            for form in plural_forms(label):
                self._form_of.setdefault(form, label)
        forms = sorted(self._form_of, key=lambda f: (-len(f), f))
        body = "|".join(re.escape(f).replace(r"\ ", r"\s+") for f in forms)
        self._re = re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE) if forms else None

    def mentions(self, text: str) -> list[str]:
        """Categories named in ``text`` (in order of first mention, each once)."""
        if self._re is None:
            return []
        out: list[str] = []
        for match in self._re.finditer(text[:MAX_REPLY_CHARS]):
            label = self._form_of[" ".join(match.group(0).lower().split())]
            if label not in out:
                out.append(label)
        return out


def hallucinated(text: str, allowed: Iterable[str], vocabulary: Vocabulary) -> list[str]:
    """Categories of ``vocabulary`` named in ``text`` that are not in ``allowed``."""
    ok = {a.strip().lower() for a in allowed}
    return [label for label in vocabulary.mentions(text) if label not in ok]
