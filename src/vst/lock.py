"""One run per output folder: an exclusive, non-blocking ``flock`` on ``<folder>/.lock``.

The lock is held for the life of the ``with`` block and released by the kernel when the process
dies (``kill -9`` included), so a stale ``.lock`` file never blocks a later run.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["LOCK_FILE", "OutputLockedError", "output_lock"]

LOCK_FILE = ".lock"


class OutputLockedError(RuntimeError):
    """Another process holds the lock of an output folder."""


@contextlib.contextmanager
def output_lock(folder: Path) -> Iterator[Path]:
    """Hold the lock of ``folder`` (created if needed) for the ``with`` block;
    :class:`OutputLockedError` ("another run holds <folder>") if another process holds it.
    Without ``fcntl`` (Windows) there is no lock."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX
        yield folder
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise OutputLockedError(
                f"another run holds {folder} (lock file {folder / LOCK_FILE}); wait for it to "
                "finish or use another output folder"
            ) from None
        yield folder
    finally:
        os.close(fd)
