"""Executors: where the work units of a run are processed.

An :class:`Executor` takes the units that still need a shard and yields, as units finish, a
:class:`~vst.engine.runner.UnitResult` (its shard is written) or a :class:`UnitFailure` (it
failed on every attempt; no shard). Planning (:mod:`vst.engine.planning`) decides the units and
their shard names, the runner merges the results into the :class:`~vst.engine.report.Report`;
neither knows which executor ran. Every executor runs the same :class:`UnitRunner` on the same
units, so the shards are byte-identical whichever ran them.

- :class:`LocalExecutor`: in-process (``workers: 1`` or one unit), else a process pool of
  ``workers`` processes with at most two units in flight per process. An error is raised at
  once (no retries: a local failure is deterministic or fatal to the machine).
- :class:`RayExecutor`: one plain Ray task per unit (:func:`vst.distributed.ray_map`). A task
  whose worker dies or that raises an unexpected error is retried up to ``retries`` times; a
  unit that still fails is yielded as a :class:`UnitFailure`. :class:`EngineError` and
  ``OSError`` (strict-mode failures, a full disk) fail the run as they do locally.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import uuid
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from vst.distributed import DEFAULT_RETRIES, TaskFailure, import_ray, ray_map, ray_session
from vst.engine.config import EngineConfig
from vst.engine.errors import EngineError
from vst.engine.planning import WorkUnit
from vst.engine.registry import Task

if TYPE_CHECKING:
    from vst.engine.runner import UnitResult, UnitRunner

__all__ = ["EXECUTORS", "Executor", "LocalExecutor", "RayExecutor", "UnitFailure", "make_executor"]

EXECUTORS = ("local", "ray")


@dataclass(frozen=True)
class UnitFailure:
    """A unit that failed on every attempt: no shard was written; a rerun tries it again."""

    index: int
    shard: str
    error: str
    attempts: int


class Executor(Protocol):
    """Runs work units; see the module docstring."""

    def run(
        self, config: EngineConfig, classes: list[type[Task]], units: Sequence[WorkUnit]
    ) -> Iterator[UnitResult | UnitFailure]:
        """Process ``units`` (each writes its shard into ``config.data_dir``); yield one
        result or failure per unit, in the order they finish. Closing the iterator early
        stops the work not finished."""
        ...


def _mp_context() -> mp.context.BaseContext:
    return mp.get_context("fork" if "fork" in mp.get_all_start_methods() else "spawn")


@dataclass(frozen=True)
class LocalExecutor:
    """This machine: in-process for ``workers <= 1`` or a single unit, else a process pool."""

    workers: int = 1

    def run(
        self, config: EngineConfig, classes: list[type[Task]], units: Sequence[WorkUnit]
    ) -> Iterator[UnitResult | UnitFailure]:
        from vst.engine.runner import UnitRunner

        if self.workers <= 1 or len(units) <= 1:
            runner = UnitRunner(config, classes)
            for u in units:
                yield runner.run_unit(u)
        else:
            yield from self._pool(config, classes, units)

    def _pool(
        self, config: EngineConfig, classes: list[type[Task]], units: Sequence[WorkUnit]
    ) -> Iterator[UnitResult]:
        """At most two units in flight per worker process."""
        from vst.engine.runner import _init_worker, _run_in_worker

        workers = min(self.workers, len(units))
        ex = ProcessPoolExecutor(
            max_workers=workers,
            mp_context=_mp_context(),
            initializer=_init_worker,
            initargs=(os.getpid(), config, classes),
        )
        pending: set[Future] = set()
        queue = list(reversed(units))
        try:
            while queue or pending:
                while queue and len(pending) < 2 * workers:
                    pending.add(ex.submit(_run_in_worker, queue.pop()))
                finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in finished:
                    yield f.result()
        except BaseException:
            ex.shutdown(wait=False, cancel_futures=True)
            raise
        ex.shutdown(wait=True)


# -- Ray -------------------------------------------------------------------------------------
_RAY_RUNNER: tuple[str, UnitRunner] | None = None
"""The Ray worker's runner of the current run (one :class:`EngineContext` per worker process,
as in the local pool), rebuilt when a task of another run arrives."""


def _ray_unit(shared: tuple[str, EngineConfig, list[type[Task]]], unit: WorkUnit) -> UnitResult:
    """The body of a unit's Ray task (runs in a Ray worker)."""
    global _RAY_RUNNER
    from vst.engine.runner import UnitRunner

    token, config, classes = shared
    if _RAY_RUNNER is None or _RAY_RUNNER[0] != token:
        _RAY_RUNNER = None  # drop the old run's caches first
        _RAY_RUNNER = (token, UnitRunner(config, classes))
    return _RAY_RUNNER[1].run_unit(unit)


def unit_tag(unit: WorkUnit) -> str:
    """The name of ``unit`` for the test crash hook (:data:`vst.distributed.CRASH_ENV`)."""
    return f"unit-{unit.index:05d}"


@dataclass(frozen=True)
class RayExecutor:
    """Plain Ray tasks, one per unit. ``address``: None starts a local Ray with ``num_cpus``
    CPUs (loopback only) for the run; ``auto`` or ``ray://host:port`` connects to a cluster. An
    already initialised Ray (``ray.init`` by the caller) is used as it is. Scenes and output
    must be on a file system every node sees."""

    address: str | None = None
    num_cpus: int | None = None
    retries: int = DEFAULT_RETRIES
    in_flight: int | None = None

    def __post_init__(self) -> None:
        import_ray()  # fail before the run starts when Ray is missing

    def run(
        self, config: EngineConfig, classes: list[type[Task]], units: Sequence[WorkUnit]
    ) -> Iterator[UnitResult | UnitFailure]:
        if not units:
            return
        shared = (uuid.uuid4().hex, config, classes)
        with ray_session(self.address, self.num_cpus):
            for i, out in ray_map(
                _ray_unit,
                [(u,) for u in units],
                shared=shared,
                tags=[unit_tag(u) for u in units],
                retries=self.retries,
                in_flight=self.in_flight,
                fatal=(EngineError, OSError),
            ):
                if isinstance(out, TaskFailure):
                    u = units[i]
                    yield UnitFailure(u.index, u.shard, out.error, out.attempts)
                else:
                    yield out


def make_executor(
    name: str, *, workers: int = 1, address: str | None = None, retries: int | None = None
) -> Executor:
    """The executor called ``name`` (``local`` or ``ray``). For ``ray`` without ``address``,
    the local Ray gets ``workers`` CPUs. ``ValueError`` for an unknown name or an address
    given to the local executor; :class:`~vst.distributed.RayUnavailableError` without Ray."""
    if name == "local":
        if address is not None:
            raise ValueError("--address is only for --executor ray")
        return LocalExecutor(workers)
    if name == "ray":
        kw: dict[str, Any] = {} if retries is None else {"retries": retries}
        return RayExecutor(address=address, num_cpus=workers if address is None else None, **kw)
    raise ValueError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}")
