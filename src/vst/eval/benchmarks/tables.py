"""Reading benchmark tables (VLMEvalKit TSV, parquet) row by row, with errors naming the file.

Rows are yielded as ``(row_number, {column: value})`` with 0-based data-row numbers, read in
chunks so an 800 MB base64 TSV never sits in memory whole. TSV cells are strings (empty cells
are ``""``: a literal ``NA`` option stays text); parquet cells keep their Arrow types as Python
values (bytes, lists, dicts for structs).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vst.eval.benchmarks.base import BenchmarkDataError

__all__ = ["iter_parquet_rows", "iter_tsv_rows"]

CHUNK_ROWS = 256


def _check_columns(path: Path, columns: Sequence[str], required: Sequence[str]) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise BenchmarkDataError(
            f"{path}: missing column(s) {', '.join(missing)} (has {', '.join(map(str, columns))})"
        )


def iter_tsv_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a tab-separated file with a header (pandas' quoting, as VLMEvalKit writes)."""
    import pandas as pd

    try:
        reader = pd.read_csv(
            path,
            sep="\t",
            dtype=str,
            keep_default_na=False,
            chunksize=CHUNK_ROWS,
            engine="c",
        )
        n = 0
        for k, chunk in enumerate(reader):
            if k == 0:
                _check_columns(path, list(chunk.columns), required)
            for row in chunk.to_dict(orient="records"):
                yield n, row
                n += 1
        if n == 0:
            raise BenchmarkDataError(f"{path}: no rows")
    except BenchmarkDataError:
        raise
    except (OSError, ValueError, UnicodeDecodeError, pd.errors.ParserError) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BenchmarkDataError(f"{path}: cannot read the TSV: {text}") from None


def iter_parquet_rows(path: Path, required: Sequence[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows of a parquet file, read in record batches."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
        _check_columns(path, pf.schema_arrow.names, required)
        n = 0
        for batch in pf.iter_batches(batch_size=CHUNK_ROWS):
            for row in batch.to_pylist():
                yield n, row
                n += 1
        if n == 0:
            raise BenchmarkDataError(f"{path}: no rows")
    except BenchmarkDataError:
        raise
    except (OSError, ValueError, pa.ArrowException) as exc:
        text = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
        raise BenchmarkDataError(f"{path}: cannot read the parquet file: {text}") from None
