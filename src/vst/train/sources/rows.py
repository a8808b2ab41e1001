"""Random access to the rows of a set of Parquet files, one row group in memory at a time.

:class:`ParquetRows` indexes files by their footers (row-group sizes, no data read) and returns
row ``i`` of the concatenation by reading the row group that holds it; the last few row groups
read are kept (a small LRU cache), so reading in order or near it costs one read per group. The
cache is not pickled (a DataLoader worker starts empty).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vst.train.examples import TrainExample
from vst.train.sources.base import ItemError, Source, one_line

__all__ = ["ParquetRowSource", "ParquetRows", "parquet_files"]


def parquet_files(path: Path, pattern: str = "*.parquet") -> list[Path]:
    """``path`` itself (a file) or the files matching ``pattern`` under it (recursively,
    sorted by relative path)."""
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob(pattern) if p.is_file() and not p.name.startswith("."))


class ParquetRows:
    """Rows of ``files`` (in that order) by global position. ``columns``: the columns to read
    where a file has them (None: all); a file without every ``required`` column, or whose footer
    cannot be read, is left out and listed in :attr:`bad` as ``(file, reason)``."""

    def __init__(
        self,
        files: list[Path],
        columns: list[str] | None = None,
        required: tuple[str, ...] = (),
        cache: int = 4,
    ):
        self.files: list[Path] = []
        self.bad: list[tuple[Path, str]] = []
        self._columns: list[list[str] | None] = []
        self._cache_size = cache
        self._cache: OrderedDict[tuple[int, int], list[dict[str, Any]]] = OrderedDict()
        self._starts: list[int] = []  # global index of each (file, group)'s first row
        self._groups: list[tuple[int, int]] = []
        self._file_starts: list[int] = []
        n = 0
        for path in files:
            try:
                pf = pq.ParquetFile(path)
                names = set(pf.schema_arrow.names)
            except Exception as exc:  # not Parquet, truncated, unreadable: pyarrow/OS errors
                self.bad.append((path, f"not a readable Parquet file ({one_line(exc)})"))
                continue
            missing = [c for c in required if c not in names]
            if missing:
                self.bad.append((path, f"no column {', '.join(missing)} (has {sorted(names)})"))
                continue
            f = len(self.files)
            self.files.append(path)
            self._columns.append(None if columns is None else [c for c in columns if c in names])
            self._file_starts.append(n)
            meta = pf.metadata
            for g in range(meta.num_row_groups):
                self._starts.append(n)
                self._groups.append((f, g))
                n += meta.row_group(g).num_rows
        self._n = n

    def __len__(self) -> int:
        return self._n

    def locate(self, i: int) -> tuple[Path, int]:
        """``(file, row within the file)`` of global row ``i``."""
        k = bisect.bisect_right(self._starts, i) - 1
        f, _ = self._groups[k]
        return self.files[f], i - self._file_starts[f]

    def column(self, name: str, optional: bool = False) -> list[Any]:
        """One column of every row, in order (for indexing: ids, tasks, types); with
        ``optional``, None in the rows of files that lack the column."""
        out: list[Any] = []
        ends = [*self._file_starts[1:], self._n]
        for f, path in enumerate(self.files):
            if optional and name not in pq.ParquetFile(path).schema_arrow.names:
                out += [None] * (ends[f] - self._file_starts[f])
                continue
            try:
                out += pq.read_table(path, columns=[name]).column(name).to_pylist()
            except Exception as exc:  # pyarrow/OS errors on a broken file
                raise ValueError(f"{path}: cannot read column {name} ({one_line(exc)})") from None
        return out

    def row(self, i: int) -> dict[str, Any]:
        """Row ``i`` as a dict (binary columns as bytes); ``ValueError`` naming the file when
        its row group cannot be read."""
        k = bisect.bisect_right(self._starts, i) - 1
        key = self._groups[k]
        rows = self._cache.get(key)
        if rows is None:
            f, g = key
            try:
                pf = pq.ParquetFile(self.files[f])
                rows = pf.read_row_group(g, columns=self._columns[f]).to_pylist()
            except Exception as exc:  # pyarrow/OS errors on a broken file
                raise ValueError(
                    f"{self.files[f]}: cannot read row group {g} ({one_line(exc)})"
                ) from None
            self._cache[key] = rows
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(key)
        return rows[i - self._starts[k]]

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_cache"] = OrderedDict()
        return state


class ParquetRowSource(Source):
    """A source whose examples are the rows of a :class:`ParquetRows` (``self.rows``): each row
    becomes an example through :meth:`_example`; a row that cannot is an :class:`ItemError`
    naming the file and row (the row's ``id`` when it has one, else ``file:row``)."""

    rows: ParquetRows

    def __len__(self) -> int:
        return len(self.rows)

    def _load(self, i: int) -> TrainExample:
        file, r = self.rows.locate(i)
        sid = f"{file.name}:{r}"
        try:
            row = self.rows.row(i)
            sid = str(row["id"]) if row.get("id") not in (None, "") else sid
            return self._example(sid, row, file)
        except (ValueError, TypeError, RecursionError) as exc:  # untrusted cells of any type
            raise ItemError(sid, f"{file} row {r}: {exc}") from None

    def _example(self, sid: str, row: dict[str, Any], file: Path) -> TrainExample:
        raise NotImplementedError
