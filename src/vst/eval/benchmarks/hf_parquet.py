"""Reading Hugging Face dataset files at the benchmark boundary: parquet rows, JSONL rows and
``Image`` cells.

Conventions: an HF ``Image`` column is stored in parquet as a struct ``{bytes, path}``; its
bytes are decoded here (header size checked against
:data:`vst.scenes.files.MAX_IMAGE_PIXELS` before any pixel is decoded) into an RGB PIL image.
A cell without bytes but with a relative ``path`` is opened under the dataset root (never
outside it). Every failure is a :class:`BenchmarkDataError` naming the file (and row).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from PIL import Image

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.scenes.errors import SceneFormatError, UnreadableFileError
from vst.scenes.files import decode_image_bytes, open_image, resolve_inside

__all__ = ["decode_image_cell", "iter_jsonl", "iter_parquet"]


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


def decode_image_cell(cell: Any, where: str, root: Path | None = None) -> Image.Image:
    """An RGB image from an HF ``Image`` cell (``{"bytes", "path"}``, raw bytes, or a path
    string relative to ``root``). ``where`` names the file and row in errors."""
    data: Any = None
    rel: Any = None
    if isinstance(cell, dict):
        data, rel = cell.get("bytes"), cell.get("path")
    elif isinstance(cell, bytes | bytearray):
        data = cell
    elif isinstance(cell, str):
        rel = cell
    if isinstance(data, bytes | bytearray) and data:
        return _decode_bytes(bytes(data), where)
    if isinstance(rel, str) and rel and root is not None:
        try:
            full = resolve_inside(Path(rel), root)
            with open_image(full) as im:
                return im.convert("RGB")
        except SceneFormatError as exc:
            raise BenchmarkDataError(f"{where}: {exc}") from None
    raise BenchmarkDataError(f"{where}: no image (expected image bytes)")


def _decode_bytes(data: bytes, where: str) -> Image.Image:
    try:
        return decode_image_bytes(data, where)
    except UnreadableFileError as exc:
        raise BenchmarkDataError(str(exc)) from None


def _short(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."
