"""Generate samples from scene directories and verify every one of them (used by the reader
tests: samples made from imported real-format scenes must pass ``vst data verify``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["generate_and_verify"]


def generate_and_verify(
    scenes_root: str | Path,
    out: str | Path,
    tasks: list[str] | None = None,
    per_scene: int = 4,
    seed: int = 0,
    allow_benchmark_scenes: bool = False,
) -> tuple[Any, Any]:
    """Run the engine on the scene directories under ``scenes_root`` with ``tasks`` (globs,
    default every task; ``per_scene`` samples asked of each per scene), then re-derive every
    sample's answer from the scenes. Returns ``(report, verify_result)``; callers assert
    ``verify_result.ok`` and the sample counts they expect."""
    from vst.engine.config import parse_config
    from vst.engine.runner import run
    from vst.engine.verify import SceneIndex, verify_shards

    config = parse_config(
        {
            "output": str(out),
            "seed": seed,
            "sources": [{"kind": "scenes", "path": str(scenes_root)}],
            "tasks": [{"name": t, "per_scene": per_scene} for t in (tasks or ["*"])],
            "scenes_per_shard": 4,
            "workers": 1,
            "benchmark_guard": {"allow_benchmark_scenes": allow_benchmark_scenes},
        }
    )
    report = run(config, progress=False)
    shards = sorted(config.data_dir.glob("*.parquet"))
    result = verify_shards(shards, SceneIndex(Path(scenes_root)))
    return report, result
