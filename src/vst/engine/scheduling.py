"""Spreading a task's budget over the frames (or view sets) of a scene."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np


def round_robin(
    pending: Sequence[tuple[Any, ...]], budget: int, rng: np.random.Generator
) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """``(entry, item)`` pairs taken in rounds: each round visits the entries of ``pending`` in a
    fresh random order (``rng.permutation``) and pops one item off each entry's last element (its
    to-do list), until ``budget`` items are out or every list is empty. The caller may draw from
    ``rng`` between items: the next round's order is drawn only when that round starts."""
    produced = 0
    while produced < budget:
        progressed = False
        for k in rng.permutation(len(pending)):
            entry = pending[int(k)]
            todo = entry[-1]
            if not todo:
                continue
            yield entry, todo.pop()
            produced += 1
            progressed = True
            if produced >= budget:
                return
        if not progressed:
            return
