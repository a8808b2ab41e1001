"""A small engine run for the benchmarks that need real samples (rewards (d), reasoning):
synthetic 320 x 240 rooms (the test suite's shared-scene settings) and one engine run."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def small_engine_run(
    folder: Path, num_scenes: int, tasks: Sequence[dict[str, Any]], where: str
) -> tuple[Path, Path]:
    """Write ``num_scenes`` synthetic rooms to ``folder/scenes`` and run the engine's ``tasks``
    (``[{"name", "per_scene"}]``) over them into ``folder/run`` (seed 3, one worker, quiet);
    returns ``(run folder, scenes folder)``."""
    from vst.engine.config import parse_config
    from vst.engine.runner import run
    from vst.scenes.sources.synthetic import SynthConfig, write_scenes

    synth = SynthConfig(
        num_scenes=num_scenes,
        seed=5,
        width=320,
        height=240,
        single_views=3,
        multiview_sets=1,
        views_per_set=2,
        video_frames=16,
    )
    scenes = folder / "scenes"
    write_scenes(synth, scenes)
    config = {
        "output": str(folder / "run"),
        "seed": 3,
        "sources": [{"kind": "scenes", "path": str(scenes)}],
        "tasks": list(tasks),
        "workers": 1,
    }
    with contextlib.redirect_stdout(io.StringIO()):
        run(parse_config(config, where), progress=False)
    return folder / "run", scenes
