"""The one interface every benchmark module implements (reader, prompt, extraction, scorer).

A benchmark turns its files under a data root into :class:`BenchItem` s (the request the
official protocol sends, the ground truth and the fields its scoring groups by), judges one
model reply against one item under every rule it knows (:meth:`Benchmark.judge`: the official
rule and the common harnesses' variants, each a score in [0, 1] or None when the rule cannot
score the item), and aggregates judged items into a :class:`BenchScore` (the official number,
each variant's number, and breakdowns such as per category). The harness (``vst eval run``)
asks the model, writes one predictions line per item with the reply and :meth:`judge`'s scores,
and calls :meth:`Benchmark.aggregate` on them; ``vst eval score`` re-judges a predictions file.

Conventions: scores are fractions in [0, 1] (reports print percentages); rule names are short
identifiers (``official``, ``lmms_eval``, ``vlmevalkit``, ``vanilla``, ...); the official
number is always under ``official``. Untrusted replies never raise: a reply a rule cannot parse
scores 0 under that rule (as the official scripts do), never None (None means "this rule does
not apply to this item").
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from vst.models.backends.base import Sampling
from vst.models.requests import Request

__all__ = ["BenchItem", "BenchScore", "Benchmark", "BenchmarkDataError", "JudgedItem"]


class BenchmarkDataError(ValueError):
    """The benchmark's files are missing or malformed: one line naming the file (and row)."""


@dataclass(frozen=True)
class BenchItem:
    """One question: ``id`` (unique within the benchmark, stable across runs), the ``request``
    sent to the model, the ground ``truth`` (JSON-able: a letter, a number, boxes...) and
    ``fields`` the scoring groups by (category, task, source, ...; JSON-able)."""

    id: str
    request: Request
    truth: Any
    fields: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JudgedItem:
    """An item's id, its fields and truth, the reply's parsed answer (for reports) and its
    score under each rule."""

    id: str
    fields: Mapping[str, Any]
    truth: Any
    parsed: Any
    scores: Mapping[str, float | None]


@dataclass(frozen=True)
class BenchScore:
    """A benchmark's result: ``official`` (fraction), ``variants`` (rule name -> fraction, the
    official one included), ``breakdown`` (e.g. ``{"category": {"Depth": 0.8, ...}}``), the
    number of items scored and notes (what was assumed, what is unverified)."""

    benchmark: str
    official: float | None
    variants: Mapping[str, float | None]
    breakdown: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    items: int = 0
    notes: Sequence[str] = ()


class Benchmark(ABC):
    """A benchmark module: ``name`` (the ``--benchmarks`` key), ``sampling`` (the decoding the
    official protocol uses; greedy by default), and the three methods below."""

    name: ClassVar[str]
    sampling: ClassVar[Sampling] = Sampling(max_tokens=512)

    @abstractmethod
    def read(self, data_root: Path) -> Iterator[BenchItem]:
        """The items, in a fixed order, from the benchmark's files under ``data_root`` (its
        own folder layout, as downloaded). Raises :class:`BenchmarkDataError` naming the file
        when they are missing or malformed; a single bad row is skipped only where the official
        script would skip it (say so in the docstring)."""

    @abstractmethod
    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        """Parse ``reply`` and score it against ``item`` under every rule (never raises)."""

    @abstractmethod
    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        """The official number, the variants and the breakdowns of ``judged``."""

    def describe(self) -> dict[str, Any]:
        """What the report states about this benchmark's protocol (prompt, extraction,
        aggregation, sources); modules override to add facts."""
        return {"name": self.name, "sampling": self.sampling.key()}
