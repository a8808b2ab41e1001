"""Errors of an engine run (shared by planning, execution and the runner).

:class:`EngineError` fails a run (exit 1), :class:`EngineInputError` is bad input (exit 2),
:class:`StopRun` is a control-flow signal an ``on_unit`` hook raises to stop a run early.
"""

from __future__ import annotations

from vst.fserrors import exit_code_of, os_error_line

__all__ = ["EngineError", "EngineInputError", "StopRun", "os_failure"]


class EngineError(RuntimeError):
    """The run cannot go on (invalid scene with ``strict``, a task failure with ``strict``, disk
    full); the message names the scene / task / file. ``vst generate`` exits with
    :attr:`exit_code`."""

    exit_code = 1


class EngineInputError(EngineError):
    """The run cannot start or go on because of its input: a source path or scene list, a
    benchmark scene named explicitly, the output folder (not a folder, not writable, held by
    another run). ``vst generate`` exits 2."""

    exit_code = 2


def os_failure(exc: OSError) -> EngineError:
    """The :class:`EngineError` of a file-system error: one line naming the path; disk full
    and I/O errors fail the run (exit 1), others are bad paths (exit 2)."""
    cls = EngineError if exit_code_of(exc) == 1 else EngineInputError
    return cls(os_error_line(exc))


class StopRun(Exception):  # noqa: N818 - a control-flow signal, not an error
    """Raise from an ``on_unit`` hook to stop a run early (tests simulate a kill with it)."""
