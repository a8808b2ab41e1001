"""Task registry: a task is one module defining one :class:`Task` subclass, registered by name.

A task states its scenario and what it needs from a scene, generates samples from a scene with
a seeded generator, and re-derives the answer of one of its samples from the scene's ground
truth and the sample's ``meta`` (``vst data verify`` and the rewards use that).

Adding a task: create ``vst/engine/tasks/<scenario>/<name>.py`` with::

    @register
    class MyTask(Task):
        name = "si_my_task"
        scenario = "single_image"
        needs = TaskNeeds(mask=True)

        def generate(self, scene, rng, budget, ctx): ...
        def derive_answer(self, scene, meta): ...

and import it in ``vst/engine/tasks/__init__.py``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from vst.engine.sample import Sample, Scenario

if TYPE_CHECKING:
    from vst.engine.context import EngineContext
    from vst.scenes.model import Scene


@dataclass(frozen=True)
class TaskNeeds:
    """What a task needs from a scene: depth maps, instance masks, a minimum number of frames."""

    depth: bool = False
    mask: bool = False
    min_frames: int = 1

    def missing(self, scene: Scene) -> list[str]:
        """Reasons the scene cannot serve the task (empty if it can)."""
        reasons = []
        if len(scene.frames) < self.min_frames:
            reasons.append(f"needs >= {self.min_frames} frames, scene has {len(scene.frames)}")
        if self.depth and not any(f.depth is not None for f in scene.frames):
            reasons.append("needs depth maps, scene has none")
        if self.mask and not any(f.mask is not None for f in scene.frames):
            reasons.append("needs instance masks, scene has none")
        if not scene.objects:
            reasons.append("scene has no objects")
        return reasons


class Task(ABC):
    """Base class of every task. Subclasses set ``name``, ``scenario``, ``needs``."""

    name: ClassVar[str]
    scenario: ClassVar[Scenario]
    needs: ClassVar[TaskNeeds] = TaskNeeds()
    version: ClassVar[str] = "1"
    """Bumped when the task's output for the same scene and seed changes."""

    @abstractmethod
    def generate(
        self, scene: Scene, rng: np.random.Generator, budget: int, ctx: EngineContext
    ) -> Iterator[Sample]:
        """Yield up to ``budget`` samples from ``scene``. Every random choice comes from ``rng``;
        ``ctx`` carries the run's settings (image limits, unified focal) and per-frame caches."""

    @abstractmethod
    def derive_answer(self, scene: Scene, meta: dict) -> str:
        """Recompute the final answer of a sample from the scene's ground truth and the
        sample's ``meta`` alone (no stored answer)."""


_REGISTRY: dict[str, type[Task]] = {}


def register(cls: type[Task]) -> type[Task]:
    """Class decorator: add a task to the registry (names must be unique)."""
    name = getattr(cls, "name", None)
    if not name:
        raise TypeError(f"{cls.__name__} has no task name")
    if name in _REGISTRY and _REGISTRY[name] is not cls:
        raise ValueError(
            f"task {name!r} is registered twice ({_REGISTRY[name].__name__}, {cls.__name__})"
        )
    _REGISTRY[name] = cls
    return cls


def _load_builtin_tasks() -> None:
    import vst.engine.tasks  # noqa: F401  (registers the built-in tasks)


def task_names() -> list[str]:
    """Names of all registered tasks, sorted."""
    _load_builtin_tasks()
    return sorted(_REGISTRY)


def get_task(name: str) -> Task:
    """A new instance of the task called ``name`` (KeyError listing the known names)."""
    _load_builtin_tasks()
    if name not in _REGISTRY:
        raise KeyError(f"unknown task {name!r}; known tasks: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]()
