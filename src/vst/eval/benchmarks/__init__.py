"""One module per benchmark (reader + prompt + extraction + official scorer and variants), all
implementing :class:`vst.eval.benchmarks.base.Benchmark`."""

from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)

__all__ = ["BenchItem", "BenchScore", "Benchmark", "BenchmarkDataError", "JudgedItem"]
