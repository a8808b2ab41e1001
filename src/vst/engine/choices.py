"""Question text helpers: pick a phrasing, shuffle multiple-choice options with the sample's
generator, and format them the way the common benchmarks do (``A. ...`` one per line)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

LETTERS = "ABCDEFGHIJ"


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
