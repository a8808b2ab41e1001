"""Worker processes that die with their parent.

A process pool's workers outlive a parent killed with ``kill -9`` (nothing tells them). Pools
call :func:`die_with_parent` first thing in their initializer: on Linux the kernel sends the
worker ``SIGKILL`` when its parent dies (``prctl(PR_SET_PDEATHSIG)``); everywhere a daemon
thread also checks every :data:`WATCH_INTERVAL` seconds that the parent is still the one that
started the worker and ends the worker (``os._exit``) when it is not.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import sys
import threading
import time

__all__ = ["WATCH_INTERVAL", "die_with_parent"]

WATCH_INTERVAL = 0.5
"""Seconds between the watchdog's checks of the parent pid."""

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> bool:
    """Ask Linux to ``SIGKILL`` this process when its parent dies; False where unsupported."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent_pid: int, interval: float) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(1)
        time.sleep(interval)


def die_with_parent(parent_pid: int, interval: float = WATCH_INTERVAL) -> None:
    """Make this worker end when ``parent_pid`` (the pid of the process that made the pool,
    passed through the initializer's arguments) dies. Call it in the worker."""
    _set_pdeathsig()
    if os.getppid() != parent_pid:  # the parent died before the signal was armed
        os._exit(1)
    threading.Thread(
        target=_watch, args=(parent_pid, interval), name="vst-parent-watch", daemon=True
    ).start()
