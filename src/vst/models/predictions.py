"""The predictions file (DESIGN.md, "Predictions"): JSONL, one line per (dataset, item id,
sample index), appended as answers arrive and resumable after a kill.

A line is the canonical JSON (sorted keys, no spaces) of::

    {"dataset", "id", "task", "index",            # which sample, which of the n choices
     "request",                                   # Request.fingerprint() of what was asked
     "model", "sampling", "system",               # who answered, how (Sampling.key())
     "text",                                      # the raw answer
     "answer",                                    # the parsed final answer
     "reward": {"overall", "format", "accuracy", "checkable"},   # compute_reward(text, spec)
     "reference",                                 # the sample's answer
     "finish_reason", "prompt_tokens", "completion_tokens"}

:class:`PredictionStore` opens a file for a run: it reads the lines already there (a truncated
last line, as a kill mid-write leaves, is cut off; unreadable lines are dropped and counted),
holds an exclusive lock on the file for the run, appends new lines with ``fsync`` after each
batch, and :meth:`PredictionStore.finish` rewrites the file (atomically) in a fixed order, so
a killed and resumed run ends with the same bytes as an uninterrupted one.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.engine.sample import canonical_json

__all__ = ["PredictionStore", "PredictionsLockedError", "record_key", "valid_record"]

Key = tuple[str, int]
"""(sample id, choice index): what a line is the prediction of."""


class PredictionsLockedError(RuntimeError):
    """Another run is writing the same predictions file."""


def record_key(record: dict[str, Any]) -> Key:
    return record["id"], record["index"]


_STR_FIELDS = ("dataset", "id", "task", "request", "model", "text")


def valid_record(record: Any) -> bool:
    """True if ``record`` (a parsed line) has the fields vst reads back, with their types."""
    if not isinstance(record, dict):
        return False
    if not all(isinstance(record.get(k), str) for k in _STR_FIELDS):
        return False
    index = record.get("index")
    if isinstance(index, bool) or not isinstance(index, int) or index < 0:
        return False
    reward = record.get("reward")
    if not isinstance(reward, dict):
        return False
    return all(
        isinstance(reward.get(k), int | float) and not isinstance(reward.get(k), bool)
        for k in ("accuracy", "format", "overall")
    ) and isinstance(record.get("sampling"), dict)


def encode_line(record: dict[str, Any]) -> bytes:
    """One line (canonical JSON + newline, UTF-8; lone surrogates in model text replaced)."""
    text = canonical_json(record)
    return (text + "\n").encode("utf-8", errors="replace")


@dataclass
class PredictionStore:
    """An open predictions file (use :meth:`open`). ``records`` maps each key to its parsed
    line and ``lines`` to its bytes; ``dropped`` counts unreadable lines found on opening and
    ``truncated`` tells whether a partial last line was cut off."""

    path: Path
    records: dict[Key, dict[str, Any]] = field(default_factory=dict)
    lines: dict[Key, bytes] = field(default_factory=dict)
    dropped: int = 0
    truncated: bool = False
    _fh: Any = None
    validate: Callable[[Any], bool] = valid_record

    @classmethod
    def open(
        cls, path: str | Path, validate: Callable[[Any], bool] = valid_record
    ) -> PredictionStore:
        """Lock ``path`` (created if missing) and read its lines (``validate(record)`` says
        which lines count; others are dropped). Raises :class:`PredictionsLockedError` if
        another process holds it, ``OSError`` if it cannot be opened."""
        store = cls(Path(path), validate=validate)
        store.path.parent.mkdir(parents=True, exist_ok=True)
        store._lock()
        try:
            store._load()
        except BaseException:
            store.close()
            raise
        return store

    def _lock(self) -> None:
        try:
            import fcntl
        except ImportError:  # pragma: no cover - not POSIX: no lock
            self._fh = open(self.path, "ab+")  # noqa: SIM115 - kept open for the run
            return
        while True:
            fh = open(self.path, "ab+")  # noqa: SIM115 - kept open for the run
            try:
                fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                fh.close()
                raise PredictionsLockedError(
                    f"another run is writing {self.path}; wait for it or use another --out"
                ) from None
            # the file may have been replaced (finish() renames) between open and lock
            try:
                same = os.fstat(fh.fileno()).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fh = fh
                return
            fh.close()

    def _load(self) -> None:
        fh = self._fh
        fh.seek(0)
        data = fh.read()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # a kill mid-line: drop the partial line
            fh.truncate(end)
            fh.flush()
            os.fsync(fh.fileno())
            self.truncated = True
        for raw in data[:end].splitlines():
            try:
                record = json.loads(raw)
            except (ValueError, RecursionError):
                record = None
            if not self.validate(record):
                self.dropped += 1
                continue
            key = record_key(record)
            if key in self.records:  # a duplicate: the first one stands
                self.dropped += 1
                continue
            self.records[key] = record
            self.lines[key] = raw + b"\n"
        fh.seek(0, os.SEEK_END)

    def append(self, records: Iterable[dict[str, Any]]) -> int:
        """Append ``records`` (new keys only) and fsync; returns how many were written."""
        chunk: list[bytes] = []
        for record in records:
            key = record_key(record)
            if key in self.records:
                continue
            line = encode_line(record)
            self.records[key] = record
            self.lines[key] = line
            chunk.append(line)
        if chunk:
            self._fh.write(b"".join(chunk))
            self._fh.flush()
            os.fsync(self._fh.fileno())
        return len(chunk)

    def finish(self, order: Callable[[Key], Any]) -> bool:
        """Rewrite the file with its lines sorted by ``order(key)`` (atomically; skipped when
        the file already holds exactly those bytes). Returns True if it was rewritten."""
        data = b"".join(self.lines[k] for k in sorted(self.lines, key=order))
        self._fh.flush()
        self._fh.seek(0)
        if self._fh.read() == data:
            self._fh.seek(0, os.SEEK_END)
            return False
        atomic_write_bytes(self.path, data)
        return True

    def close(self) -> None:
        """Release the lock."""
        if self._fh is not None:
            with contextlib.suppress(OSError):
                self._fh.close()
            self._fh = None

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
