"""Packing sequence lengths into rows of a fixed capacity: first-fit decreasing, deterministic.

:func:`first_fit_decreasing` takes the examples longest first (equal lengths in input order),
puts each into the first row (in the order rows were opened) with room for it, and opens a new
row when none has. An example longer than the capacity is never cut: it is skipped and listed.
The result depends on nothing but the lengths and the capacity.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Packing", "first_fit_decreasing"]


@dataclass(frozen=True)
class Packing:
    """Where each example went: ``rows`` (per row, the indices of its examples in input order;
    rows in the order they were opened, so the first holds the longest example) and ``skipped``
    (indices of the examples longer than the capacity, in input order)."""

    rows: tuple[tuple[int, ...], ...]
    skipped: tuple[int, ...]

    def fills(self, lengths: Sequence[int]) -> list[int]:
        """Tokens used in each row, for the ``lengths`` that were packed."""
        return [sum(lengths[i] for i in row) for row in self.rows]


def first_fit_decreasing(lengths: Sequence[int], max_length: int) -> Packing:
    """Pack ``lengths`` (positive ints) into rows of at most ``max_length`` tokens by first-fit
    decreasing; lengths above ``max_length`` are skipped (see :class:`Packing`)."""
    if max_length < 1:
        raise ValueError(f"max_length must be positive, got {max_length}")
    for i, n in enumerate(lengths):
        if n < 1:
            raise ValueError(f"length {i} must be positive, got {n}")
    skipped = tuple(i for i, n in enumerate(lengths) if n > max_length)
    order = sorted(
        (i for i, n in enumerate(lengths) if n <= max_length), key=lambda i: (-lengths[i], i)
    )
    # The first row with room is found in O(log n) with a max-tree over the rooms of
    # len(order) rows (at most one row per example), rows not yet opened holding max_length:
    # the leftmost leaf with room >= n is the first open row that fits, else the next new row.
    size = 1
    while size < max(len(order), 1):
        size *= 2
    tree = [max_length] * (2 * size)
    rows: list[list[int]] = []
    for i in order:
        n = lengths[i]
        node = 1
        while node < size:
            node = 2 * node if tree[2 * node] >= n else 2 * node + 1
        r = node - size
        if r == len(rows):
            rows.append([])
        rows[r].append(i)
        tree[node] -= n
        node //= 2
        while node:
            tree[node] = max(tree[2 * node], tree[2 * node + 1])
            node //= 2
    return Packing(tuple(tuple(sorted(row)) for row in rows), skipped)
