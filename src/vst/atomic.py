"""Atomic file writes: a hidden temporary file in the target's folder, renamed into place.

Every file vst writes atomically (scene files, shards, reports, exports) goes through
:func:`temp_file` and :func:`commit`, so a killed write never leaves a half-written file behind
and every finished file gets the mode a plain ``open(path, "w")`` would give it: ``0o666``
minus the process umask (``mkstemp`` alone creates ``0o600`` files).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

__all__ = ["atomic_write_bytes", "commit", "file_mode", "temp_file"]


def file_mode() -> int:
    """``0o666`` minus the current umask (read from ``/proc`` where possible, which leaves the
    process umask untouched; else set and restored at once)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return 0o666 & ~int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


def temp_file(path: Path, prefix: str | None = None, suffix: str = ".tmp") -> Path:
    """Create an empty temporary file next to ``path`` (its folder is created if needed);
    ``prefix`` defaults to ``.<name>.``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        dir=path.parent, prefix=prefix if prefix is not None else f".{path.name}.", suffix=suffix
    )
    os.close(fd)
    return Path(tmp)


def commit(tmp: Path, path: Path) -> None:
    """Give the finished temporary ``tmp`` the umask's normal mode and rename it to ``path``."""
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same folder, then rename."""
    path = Path(path)
    tmp = temp_file(path)
    try:
        tmp.write_bytes(data)
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
