"""Running one task over scenes the way the task tests do."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def generate_samples(
    task: Any, scenes: Sequence[Any], per_scene: int, seed: int = 0, ctx: Any = None
) -> list[tuple[Any, Any]]:
    """``(scene, sample)`` pairs of ``task`` over ``scenes``: scene ``k`` gets ``per_scene``
    samples asked with ``numpy.random.default_rng([seed, k])``; ``ctx`` is the
    :class:`~vst.engine.context.EngineContext` (default: a fresh one, shared by the scenes)."""
    from vst.engine.context import EngineContext

    ctx = ctx if ctx is not None else EngineContext()
    out = []
    for k, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, k])
        out += [(scene, s) for s in task.generate(scene, rng, per_scene, ctx)]
    return out
