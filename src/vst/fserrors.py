"""One-line messages and exit codes for file-system errors (``OSError``) met by a command.

Exit codes of ``vst generate`` and ``vst scenes import``: ``2`` for bad input (a config, a path
that cannot be used: missing, not a folder, not writable, read-only, held by another run), ``1``
for a run that failed on the way (disk full, an I/O error, a task error).
"""

from __future__ import annotations

import errno
from pathlib import Path

__all__ = ["RUN_FAILURE_ERRNOS", "exit_code_of", "os_error_line"]

RUN_FAILURE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EFBIG})
"""Errors of the machine, not of the input: a command exits 1 on them (2 on other errors)."""


def _errno_of(exc: OSError) -> int | None:
    if exc.errno is not None:
        return exc.errno
    text = str(exc)  # pyarrow's I/O errors carry the reason in the text only
    return errno.ENOSPC if "No space left on device" in text else None


def exit_code_of(exc: OSError) -> int:
    """1 for disk full / I/O errors, 2 for everything else (paths that cannot be used)."""
    return 1 if _errno_of(exc) in RUN_FAILURE_ERRNOS else 2


def os_error_line(exc: OSError, path: str | Path | None = None) -> str:
    """``<path>: <reason>`` on one line, ``path`` defaulting to the error's own file name."""
    where = path if path is not None else exc.filename
    code = _errno_of(exc)
    reason = exc.strerror or str(exc)
    if code == errno.ENOSPC:
        reason = "no space left on device (disk full)"
    elif code == errno.EROFS:
        reason = "read-only file system"
    reason = " ".join(str(reason).split())
    if exc.filename2 is not None:
        reason += f" (-> {exc.filename2})"
    return f"{where}: {reason}" if where is not None else reason
