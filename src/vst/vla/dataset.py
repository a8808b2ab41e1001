"""A whole VLA dataset conversion: episodes -> ``norm_stats.json`` + the release's LIBERO parquet
with normalised actions (``vst vla convert``).

Two passes over the episodes (they are streamed, never all in memory): the first collects the
raw actions of the steps the conversion keeps (successful or unknown episodes, no-op steps
dropped: :func:`vst.vla.convert.kept_steps`) and computes the statistics
(:func:`vst.vla.norm_stats.compute_norm_stats`; the gripper dimension kept in its own
convention, never through q01/q99); the second writes the records with ``meta_info.action`` =
the normalised action (:func:`vst.vla.norm_stats.normalize`) beside the raw
``action_unnorm`` (:func:`vst.vla.convert.write_libero_parquet`). ``norm_stats.json`` lands in the
output folder in the release's layout.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vst.vla.convert import ConvertReport, episode_records, write_libero_parquet
from vst.vla.episodes import Episode
from vst.vla.norm_stats import (
    LIBERO_ENV_GRIPPER,
    GripperConvention,
    NormStats,
    compute_norm_stats,
    normalize,
    save_norm_stats,
)

__all__ = ["DatasetConversion", "convert_dataset", "kept_actions"]

NORM_STATS_FILE = "norm_stats.json"


@dataclass(frozen=True)
class DatasetConversion:
    """What :func:`convert_dataset` wrote: the statistics (and their file) and the parquet
    report (counts, shards)."""

    stats: NormStats
    stats_path: Path
    report: ConvertReport


def kept_actions(episodes: Iterable[Episode], suite: str) -> tuple[np.ndarray, int]:
    """``(raw actions (N, 7) of every record the conversion writes, trajectories used)``."""
    actions: list[np.ndarray] = []
    trajectories = 0
    for episode in episodes:
        before = len(actions)
        actions.extend(r.action for r in episode_records(episode, suite))
        trajectories += len(actions) > before
    if not actions:
        raise ValueError(f"{suite}: no step to convert (every episode failed or is empty)")
    return np.stack(actions), trajectories


def convert_dataset(
    episodes: Callable[[], Iterable[Episode]],
    out: str | Path,
    suite: str,
    *,
    gripper_dim: int | None = 6,
    gripper: GripperConvention = LIBERO_ENV_GRIPPER,
    data_source: str | None = None,
    shard_rows: int = 500,
) -> DatasetConversion:
    """Convert the episodes ``episodes()`` yields (called twice: once for the statistics, once
    to write) into ``out``: ``norm_stats.json`` and ``{suite}-{k:05d}.parquet`` shards with
    normalised actions (module docstring)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    actions, trajectories = kept_actions(episodes(), suite)
    stats = compute_norm_stats(
        actions, trajectories, gripper_dim=gripper_dim, gripper=gripper, source=suite
    )
    stats_path = save_norm_stats(stats, out / NORM_STATS_FILE)
    report = write_libero_parquet(
        episodes(),
        out,
        suite,
        data_source=data_source,
        normalise=lambda a: normalize(a, stats),
        shard_rows=shard_rows,
    )
    return DatasetConversion(stats, stats_path, report)
