"""Question text helpers: pick a phrasing, shuffle multiple-choice options with the sample's
generator, format them the way the common benchmarks do (``A. ...`` one per line), and write the
reply of a multiple-choice question in the run's answer style.

Answer styles (``EngineSettings.answer_style``, :data:`ANSWER_STYLES`):

* ``paper`` (default): the letter and the option text, as the VST paper's appendix answers:
  ``"B. northwest"``; correspondence options, which are the marks themselves, ``"B: point-B"``.
* ``letter``: the bare letter ``"B"``.

``Sample.answer`` and the ``mcq`` reward's ground truth are the letter in both styles; only the
assistant's reply changes. The instructions a question ends with follow the style
(:func:`mcq_instruction`): "letter only" promises are made only in the ``letter`` style.

Letters never mean two things in one sample: a question whose objects are marked with letter
tags (``box-A``, ``point-B``) does not offer lettered options over those marks; it is asked
with the marks' handles as the answer instead (the only exception is ``mi_correspondence``,
whose option letters *are* the mark letters: ``"B: point-B"``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LETTERS = "ABCDEFGHIJ"

ANSWER_STYLES: tuple[str, ...] = ("paper", "letter")
"""How multiple-choice replies are written (see the module docstring)."""

MCQ_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "letter": (
        "Answer with the option's letter.",
        "Reply with the option letter only.",
        "Give only the letter.",
        "Answer with the letter of the correct option.",
        "Respond with just the letter.",
    ),
    "paper": (
        "Answer with the option's letter and text.",
        "Reply with the letter and the text of the correct option.",
        "Give the letter followed by the option.",
        "Answer with the letter of the correct option and its text.",
        "Respond with the option letter and what it says.",
    ),
}
"""Instructions that may end a multiple-choice question, per answer style: each promises what
:func:`mcq_reply` writes in that style."""

MARK_INSTRUCTIONS: dict[str, tuple[str, ...]] = {
    "letter": (
        "Answer with the point's letter.",
        "Reply with its letter only.",
        "Give just the letter of the point.",
        "Answer with the letter of the matching point.",
    ),
    "paper": (
        'Answer with the point\'s letter and name, as in "A: point-A".',
        "Reply with the letter followed by the point's name.",
        "Give the letter and the name of the point.",
        "Answer with the letter and name of the matching point.",
    ),
}
"""The same for questions whose options are lettered point marks (``"B: point-B"``)."""


def pick(rng: np.random.Generator, phrasings: Sequence[str]) -> tuple[int, str]:
    """``(index, phrasing)`` chosen uniformly with ``rng``."""
    if not phrasings:
        raise ValueError("no phrasings to pick from")
    i = int(rng.integers(len(phrasings)))
    return i, phrasings[i]


def shuffle_options(
    options: Sequence[str], correct: int, rng: np.random.Generator
) -> tuple[list[str], str, list[int]]:
    """Shuffle ``options`` uniformly with ``rng``.

    Returns ``(shuffled, answer_letter, order)`` where ``shuffled[k] = options[order[k]]`` and
    ``answer_letter`` labels the position of ``options[correct]``. Uniform shuffles give every
    letter the same chance of being the answer.
    """
    if not 0 <= correct < len(options):
        raise ValueError(f"correct index {correct} out of range for {len(options)} options")
    if len(options) > len(LETTERS):
        raise ValueError(f"at most {len(LETTERS)} options, got {len(options)}")
    order = [int(i) for i in rng.permutation(len(options))]
    shuffled = [options[i] for i in order]
    return shuffled, LETTERS[order.index(correct)], order


def format_options(options: Sequence[str]) -> str:
    """``"A. first\\nB. second ..."``."""
    return "\n".join(f"{LETTERS[k]}. {text}" for k, text in enumerate(options))


def letter_of(order: Sequence[int], correct: int) -> str:
    """The letter of original option ``correct`` after a shuffle recorded as ``order``."""
    return LETTERS[list(order).index(correct)]


def check_style(style: str) -> str:
    """``style`` if it is one of :data:`ANSWER_STYLES`, else ValueError."""
    if style not in ANSWER_STYLES:
        raise ValueError(f"unknown answer style {style!r}; choose from {', '.join(ANSWER_STYLES)}")
    return style


def mcq_reply(letter: str, text: str, style: str, sep: str = ".") -> str:
    """The reply to a multiple-choice question whose answer is option ``letter`` reading
    ``text``: ``"B. northwest"`` (``paper``; ``sep=":"`` gives ``"B: point-B"``) or ``"B"``
    (``letter``)."""
    if check_style(style) == "letter":
        return letter
    return f"{letter}{sep} {text}"


def mcq_instruction(rng: np.random.Generator, style: str, marks: bool = False) -> tuple[int, str]:
    """``(index, instruction)`` picked with ``rng`` from :data:`MCQ_INSTRUCTIONS` of ``style``
    (:data:`MARK_INSTRUCTIONS` when ``marks``: the options are lettered point marks)."""
    table = MARK_INSTRUCTIONS if marks else MCQ_INSTRUCTIONS
    return pick(rng, table[check_style(style)])
