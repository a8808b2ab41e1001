"""Reading Hugging Face dataset files at the benchmark boundary: parquet rows and JSONL rows.

``Image`` cells (``{bytes, path}`` structs) are decoded by
:func:`vst.eval.benchmarks.encoded_images.image_from_cell`. Every failure is a
:class:`BenchmarkDataError` naming the file (and row).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from vst.eval.benchmarks.base import BenchmarkDataError

__all__ = ["iter_jsonl", "iter_parquet"]


def iter_parquet(path: Path, required: Iterable[str], batch_size: int = 64) -> Iterator[dict]:
    """Rows of a parquet file as dicts, read in small batches (images stay compressed until
    used). Raises BenchmarkDataError naming ``path`` when the file is unreadable or lacks one
    of the ``required`` columns."""
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        names = set(pf.schema_arrow.names)
    except Exception as exc:  # pyarrow raises several unrelated types on garbage
        raise BenchmarkDataError(f"{path}: cannot read parquet: {_short(exc)}") from None
    missing = [c for c in required if c not in names]
    if missing:
        raise BenchmarkDataError(f"{path}: missing column(s) {missing} (has {sorted(names)})")
    try:
        for batch in pf.iter_batches(batch_size=batch_size):
            yield from batch.to_pylist()
    except BenchmarkDataError:
        raise
    except Exception as exc:
        raise BenchmarkDataError(f"{path}: cannot read parquet rows: {_short(exc)}") from None


def iter_jsonl(path: Path, required: Iterable[str]) -> Iterator[dict]:
    """Rows of a JSONL file (blank lines skipped); BenchmarkDataError naming the file and line
    on bad JSON, a non-object line or a missing ``required`` key."""
    required = list(required)
    try:
        fh = open(path, encoding="utf-8")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise BenchmarkDataError(f"{path}: cannot open: {_short(exc)}") from None
    with fh:
        try:
            for n, line in enumerate(fh, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except (ValueError, RecursionError) as exc:
                    raise BenchmarkDataError(f"{path}:{n}: bad JSON: {_short(exc)}") from None
                if not isinstance(row, dict):
                    raise BenchmarkDataError(f"{path}:{n}: expected a JSON object")
                missing = [k for k in required if k not in row]
                if missing:
                    raise BenchmarkDataError(f"{path}:{n}: missing key(s) {missing}")
                yield row
        except UnicodeDecodeError as exc:
            raise BenchmarkDataError(f"{path}: not UTF-8: {_short(exc)}") from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
