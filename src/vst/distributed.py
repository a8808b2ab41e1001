"""Plain Ray tasks with bounded retries (the optional extra ``vst[ray]``).

The engine (:class:`vst.engine.executors.RayExecutor`) and the scene importer run their work on
a Ray cluster through :func:`ray_map`: one plain Ray task per item, at most ``in_flight`` at a
time, results yielded as they finish. Where the output goes is decided by the caller (shard and
scene names come from the plan, never from Ray), so the files are the same as with a local
process pool. Every worker reads the inputs and writes the outputs itself: they must be on a
file system all nodes share.

Failures: an exception of a ``fatal`` type (the caller's "the run cannot go on", e.g. a full
disk) is raised in the driver at once, after cancelling the other tasks. Any other exception,
or a worker process that died (killed, out of memory), is retried: a task runs at most
``retries + 1`` times, then :func:`ray_map` yields a :class:`TaskFailure` for its item instead
of a result, so the caller reports it.

Ray is imported lazily (:func:`import_ray`); without it a :class:`RayUnavailableError` says how
to install it. :func:`ray_session` starts a local Ray (bound to 127.0.0.1, no dashboard) or
connects to ``address`` (``auto`` for a cluster started with ``ray start``, ``ray://host:10001``
for Ray Client) and shuts it down afterwards, unless Ray was already initialised by the caller.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = [
    "CRASH_ENV",
    "DEFAULT_RETRIES",
    "RayUnavailableError",
    "TaskFailure",
    "import_ray",
    "ray_map",
    "ray_session",
]

DEFAULT_RETRIES = 2
"""Retries of a failed task (so at most 3 attempts) before its item is reported as failed."""

CRASH_ENV = "VST_TEST_CRASH_DIR"
"""Test hook: when this environment variable names a folder, a task whose tag has a file of the
same name in it deletes the file and kills its own worker process (``os._exit``) before
running, which simulates a node or worker lost mid-way, once per file."""

LOOPBACK_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
"""With ``0``, a local Ray binds its GCS, raylet and workers to 127.0.0.1 (Ray 2.60)."""


class RayUnavailableError(RuntimeError):
    """Ray is not installed, or no Ray could be started or reached; the message says why."""


def import_ray() -> ModuleType:
    """The ``ray`` module; :class:`RayUnavailableError` when it is missing."""
    try:
        import ray
    except ImportError as exc:
        raise RayUnavailableError(
            f"the Ray executor needs Ray (optional extra): pip install 'vst[ray]' ({exc})"
        ) from None
    return ray


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[ModuleType]:
    """Ray, initialised for the ``with`` block: the caller's session if Ray is already
    initialised, else a new local one (``address`` None: ``num_cpus`` CPUs, loopback only, no
    dashboard) or a connection to ``address``; a session started here is shut down at the end."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    try:
        if address is None:
            os.environ.setdefault(LOOPBACK_ENV, "0")
            ray.init(num_cpus=num_cpus, include_dashboard=False)
        else:
            ray.init(address=address)
    except Exception as exc:  # no cluster at the address, a port taken, ...
        where = f"connect to Ray at {address}" if address else "start a local Ray"
        raise RayUnavailableError(f"cannot {where}: {_one_line(exc)}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


@dataclass(frozen=True)
class TaskFailure:
    """An item whose task failed on every attempt: the last error, one line."""

    error: str
    attempts: int


def _crash_hook(tag: str) -> None:
    folder = os.environ.get(CRASH_ENV)
    if not folder or not tag:
        return
    try:
        (Path(folder) / tag).unlink()  # only the process that removed the file crashes
    except FileNotFoundError:
        return
    os._exit(17)


def _call(func: Callable[..., Any], shared: Any, tag: str, *args: Any) -> Any:
    """The body of every task: the test hook, then ``func(shared, *args)``."""
    _crash_hook(tag)
    return func(shared, *args)


_REMOTE: Any = None


def _remote(ray: ModuleType) -> Any:
    global _REMOTE
    if _REMOTE is None:
        _REMOTE = ray.remote(max_retries=0, num_cpus=1)(_call)
    return _REMOTE


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:500]}"


def ray_map(
    func: Callable[..., Any],
    items: Sequence[tuple[Any, ...]],
    *,
    shared: Any = None,
    tags: Sequence[str] | None = None,
    retries: int = DEFAULT_RETRIES,
    in_flight: int | None = None,
    fatal: tuple[type[BaseException], ...] = (),
) -> Iterator[tuple[int, Any]]:
    """Run ``func(shared, *items[i])`` as Ray tasks in an initialised Ray session; yield
    ``(i, result)`` as tasks finish, ``result`` a :class:`TaskFailure` for an item whose task
    failed ``retries + 1`` times. ``func`` must be importable by the workers (a module-level
    function); ``shared`` is put in the object store once. ``tags[i]`` names item ``i`` for the
    test hook (:data:`CRASH_ENV`). ``in_flight`` defaults to twice the cluster's CPUs. Closing
    the iterator early cancels the tasks not finished."""
    ray = import_ray()
    from ray.exceptions import RayTaskError

    remote = _remote(ray)
    shared_ref = ray.put(shared)
    if in_flight is None:
        in_flight = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
    queue = list(range(len(items)))[::-1]
    attempts = [0] * len(items)
    pending: dict[Any, int] = {}

    def submit(i: int) -> None:
        attempts[i] += 1
        tag = tags[i] if tags is not None else ""
        pending[remote.remote(func, shared_ref, tag, *items[i])] = i

    try:
        while queue or pending:
            while queue and len(pending) < in_flight:
                submit(queue.pop())
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i = pending.pop(ref)
                try:
                    result = ray.get(ref)
                except RayTaskError as exc:
                    cause = getattr(exc, "cause", None)
                    if isinstance(cause, fatal):
                        raise cause from None
                    error = _one_line(cause if cause is not None else exc)
                except ray.exceptions.RayError as exc:  # worker died, object lost, ...
                    error = _one_line(exc)
                else:
                    yield i, result
                    continue
                if attempts[i] <= retries:
                    submit(i)
                else:
                    yield i, TaskFailure(error, attempts[i])
    finally:
        for ref in pending:
            with contextlib.suppress(Exception):
                ray.cancel(ref)
