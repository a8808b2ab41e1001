"""Episodes -> VLA records, and records -> the release's LIBERO parquet (VST-RELEASE.md §1, §4).

What the conversion does, in order:
- Episodes with ``success is False`` are dropped (``None``, unknown, is kept).
- No-op steps are dropped. Rule (OpenVLA's LIBERO regeneration, as the release uses it): step
  ``t`` is a no-op when ``‖a_t[:6]‖₂ < 1e-4`` and, if a step of the episode was kept before,
  ``a_t[6] == a_prev[6]`` exactly, ``a_prev`` being the *last kept* step's action. Before the
  first kept step only the movement counts (a first step with zero movement is a no-op whatever
  its gripper). A step that changes the gripper is always kept.
- The image is rotated 180° (``image[::-1, ::-1]``: row and column order reversed; the LIBERO
  renders are upside down) and stored as PNG at its stored size; the resize to what Qwen2.5-VL
  takes (256 -> 252 by smart resize) happens when the training sample is built, as in the release.
- One record per kept step: the prompt ``"What action should the robot take to {instruction}?"``
  (no system message), one 7-D action, ``meta`` with the instruction, episode id, step index
  (the step's index in the *source* episode, before filtering) and source.

Normalisation: none here. A record's raw action is stored as ``meta_info.action_unnorm``;
``meta_info.action`` is ``normalise(raw)`` when a ``normalise`` callable is passed to
:func:`write_libero_parquet`, else null (the normaliser and ``norm_stats.json`` come later).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vst.atomic import commit, temp_file
from vst.vla.episodes import Episode

__all__ = [
    "LIBERO_SCHEMA",
    "NOOP_THRESHOLD",
    "SHARD_ROWS",
    "ConvertReport",
    "VLARecord",
    "episode_records",
    "kept_steps",
    "prompt_for",
    "rotate_180",
    "write_libero_parquet",
]

NOOP_THRESHOLD = 1e-4
"""A step moves when the L2 norm of its first six action dimensions reaches this."""

SHARD_ROWS = 500
"""Rows per parquet shard, as the release writes them."""

PROMPT = "What action should the robot take to {instruction}?"

LIBERO_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        (
            "meta_info",
            pa.struct(
                [
                    ("action", pa.list_(pa.float32())),
                    ("action_unnorm", pa.list_(pa.float32())),
                    ("language_instruction", pa.string()),
                    ("data_source", pa.string()),
                    ("episode_id", pa.string()),
                    ("step", pa.int64()),
                    ("source", pa.string()),
                ]
            ),
        ),
    ]
)
"""The release's LIBERO parquet columns; ``meta_info`` is a struct whose first four fields are
the release's, plus ``episode_id``, ``step`` and ``source`` (vst's provenance)."""


def prompt_for(instruction: str) -> str:
    """The user text of a VLA sample (the image comes before it; no system message)."""
    return PROMPT.format(instruction=" ".join(instruction.split()))


def rotate_180(image: np.ndarray) -> np.ndarray:
    """``image[::-1, ::-1]`` (H, W, C): pixel (r, c) moves to (H-1-r, W-1-c); a contiguous copy."""
    return np.ascontiguousarray(image[::-1, ::-1])


def kept_steps(actions: Iterable[np.ndarray], threshold: float = NOOP_THRESHOLD) -> list[int]:
    """Indices of the steps that are not no-ops (rule in the module docstring)."""
    kept: list[int] = []
    prev: np.ndarray | None = None
    for t, a in enumerate(actions):
        a = np.asarray(a, dtype=np.float64)
        still = float(np.linalg.norm(a[:6])) < threshold
        if still and (prev is None or a[6] == prev[6]):
            continue
        kept.append(t)
        prev = a
    return kept


@dataclass(frozen=True)
class VLARecord:
    """One training sample: ``image`` (H, W, 3) uint8 already rotated 180°; ``prompt``;
    ``action`` (7,) raw (un-normalised); ``meta``: instruction, episode_id, step, source."""

    id: str
    image: np.ndarray
    prompt: str
    action: np.ndarray
    meta: dict[str, Any]


@dataclass
class ConvertReport:
    """Counts of one conversion and the shards written."""

    episodes_read: int = 0
    failed_dropped: int = 0
    noop_steps_dropped: int = 0
    records_written: int = 0
    files: list[Path] = field(default_factory=list)


def episode_records(
    episode: Episode, suite: str, report: ConvertReport | None = None
) -> Iterator[VLARecord]:
    """The records of one episode (none for a failed one); ids ``{suite}_{episode.id}_{t}``
    with ``t`` the source step index. Counts go to ``report`` when given."""
    if report is not None:
        report.episodes_read += 1
    if episode.success is False:
        if report is not None:
            report.failed_dropped += 1
        return
    kept = kept_steps(s.action for s in episode.steps)
    if report is not None:
        report.noop_steps_dropped += len(episode.steps) - len(kept)
    prompt = prompt_for(episode.instruction)
    for t in kept:
        step = episode.steps[t]
        yield VLARecord(
            id=f"{suite}_{episode.id}_{t}",
            image=rotate_180(step.image),
            prompt=prompt,
            action=step.action.copy(),
            meta={
                "instruction": episode.instruction,
                "episode_id": episode.id,
                "step": t,
                "source": episode.source,
            },
        )


def _png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def _row(
    rec: VLARecord, data_source: str, normalise: Callable[[np.ndarray], np.ndarray] | None
) -> dict[str, Any]:
    norm = None
    if normalise is not None:
        norm = np.asarray(normalise(rec.action), dtype=np.float64)
        if norm.shape != (7,) or not np.all(np.isfinite(norm)):
            raise ValueError(f"record {rec.id}: normalise returned {norm.tolist()}, not 7 finite")
        norm = norm.tolist()
    return {
        "id": rec.id,
        "images": [{"bytes": _png(rec.image), "path": f"{rec.id}.png"}],
        "meta_info": {
            "action": norm,
            "action_unnorm": rec.action.tolist(),
            "language_instruction": rec.meta["instruction"],
            "data_source": data_source,
            "episode_id": rec.meta["episode_id"],
            "step": rec.meta["step"],
            "source": rec.meta["source"],
        },
    }


def _write_shard(rows: list[dict[str, Any]], path: Path) -> None:
    tmp = temp_file(path)
    try:
        pq.write_table(pa.Table.from_pylist(rows, schema=LIBERO_SCHEMA), tmp, compression="zstd")
        commit(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_libero_parquet(
    episodes: Iterable[Episode],
    out: str | Path,
    suite: str,
    data_source: str | None = None,
    normalise: Callable[[np.ndarray], np.ndarray] | None = None,
    shard_rows: int = SHARD_ROWS,
) -> ConvertReport:
    """Convert ``episodes`` (streamed) and write ``out/{suite}-{k:05d}.parquet`` shards of
    ``shard_rows`` rows (the last may be shorter), each written atomically. ``data_source``
    defaults to ``suite``. Returns the counts and files."""
    if shard_rows <= 0:
        raise ValueError(f"shard_rows must be positive, got {shard_rows}")
    out = Path(out)
    source = data_source if data_source is not None else suite
    report = ConvertReport()
    rows: list[dict[str, Any]] = []

    def flush() -> None:
        path = out / f"{suite}-{len(report.files):05d}.parquet"
        _write_shard(rows, path)
        report.files.append(path)
        report.records_written += len(rows)
        rows.clear()

    for episode in episodes:
        for rec in episode_records(episode, suite, report):
            rows.append(_row(rec, source, normalise))
            if len(rows) == shard_rows:
                flush()
    if rows:
        flush()
    return report
