"""Writing a stream of shard rows as numbered shards (``shard-NNNNN-<key>.parquet``, the key a
hash of the chunk's ids), replacing the shards a previous run left in the folder."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vst.engine.writer import ShardWriter, parse_shard_name, shard_name

__all__ = ["write_chunked"]


def write_chunked(
    rows: Iterable[dict[str, Any]],
    folder: Path,
    size: int = 1000,
    meta: dict[str, Any] | None = None,
) -> list[Path]:
    """Write ``rows`` (shard rows, streamed) into ``folder`` in shards of ``size`` rows, each
    atomically, after deleting the folder's existing shards; the paths written. ``meta`` (plus
    ``rows``) goes into each shard's ``vst`` metadata."""
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("shard-*.parquet"):
        if parse_shard_name(old.name):
            old.unlink()
    paths: list[Path] = []

    def flush(chunk: list[dict[str, Any]]) -> None:
        key = hashlib.sha256(",".join(r["id"] for r in chunk).encode()).hexdigest()
        writer = ShardWriter(folder / shard_name(len(paths), key))
        with writer:
            for row in chunk:
                writer.write(row)
            paths.append(writer.close({**(meta or {}), "rows": len(chunk)}).path)

    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= size:
            flush(chunk)
            chunk = []
    if chunk:
        flush(chunk)
    return paths
