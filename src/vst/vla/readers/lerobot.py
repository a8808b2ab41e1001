"""LeRobot datasets on disk, format v3.0 and v2.1 (v2.0 is read like v2.1), without the
``lerobot`` package (layouts in ECOSYSTEM.md §C).

Read: ``meta/info.json`` (``codebase_version``, ``fps``, ``features``, ``data_path``,
``video_path``, ``chunks_size``); the episodes (v3.0 ``meta/episodes/chunk-*/file-*.parquet``,
v2.x ``meta/episodes.jsonl``); the tasks (v3.0 ``meta/tasks.parquet``, v2.x
``meta/tasks.jsonl``); the data parquet. Frames of ``image_key`` are either image structs
``{bytes, path}`` (PNG/JPEG bytes) in the data parquet (feature dtype ``image``) or MP4 videos
(dtype ``video``) decoded with PyAV at ``from_timestamp + timestamp`` (v3.0) or ``timestamp``
(v2.x); the nearest decoded frame is used and must lie within half a frame period.

An episode's instruction is the task of its first frame's ``task_index`` (the episode's first
listed task when the frame has none). Success is ``next.success`` of the last frame when that
column exists, else ``None``. Episode ids are ``{task_index}_{episode_index}``. Every path comes
from the dataset's templates and must resolve inside the root.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from vst.scenes.files import decode_image_bytes, read_json, resolve_inside
from vst.vla.episodes import Episode, Step

__all__ = ["DEFAULT_IMAGE_KEY", "LeRobotInfo", "read_info", "read_lerobot"]

DEFAULT_IMAGE_KEY = "observation.images.image"
"""The agentview camera of the LIBERO LeRobot datasets (the wrist camera is ``...image2``)."""

_V3 = "v3.0"
_V2 = ("v2.0", "v2.1")


@dataclass(frozen=True)
class LeRobotInfo:
    """The parts of ``meta/info.json`` the reader uses."""

    root: Path
    version: str
    fps: float
    features: dict[str, Any]
    data_path: str
    video_path: str | None
    chunks_size: int


def read_info(root: str | Path) -> LeRobotInfo:
    """``meta/info.json`` of the dataset at ``root``, checked; ``ValueError`` naming the file
    and field otherwise."""
    root = Path(root)
    path = root / "meta" / "info.json"
    info = read_json(path)
    if not isinstance(info, dict):
        raise ValueError(f"{path}: not a JSON object")
    version = info.get("codebase_version")
    if version != _V3 and version not in _V2:
        raise ValueError(f"{path}: codebase_version {version!r} is not v3.0, v2.1 or v2.0")
    fps = info.get("fps")
    if not isinstance(fps, int | float) or isinstance(fps, bool) or fps <= 0:
        raise ValueError(f"{path}: fps must be a positive number, got {fps!r}")
    features = info.get("features")
    if not isinstance(features, dict):
        raise ValueError(f"{path}: features must be an object")
    data_path = info.get("data_path")
    if not isinstance(data_path, str):
        raise ValueError(f"{path}: data_path must be a string")
    video_path = info.get("video_path")
    if video_path is not None and not isinstance(video_path, str):
        raise ValueError(f"{path}: video_path must be a string or null")
    chunks = info.get("chunks_size", 1000)
    if not isinstance(chunks, int) or isinstance(chunks, bool) or chunks <= 0:
        raise ValueError(f"{path}: chunks_size must be a positive integer, got {chunks!r}")
    return LeRobotInfo(root, version, float(fps), features, data_path, video_path, chunks)


def _format(template: str, info: LeRobotInfo, field: str, **values: Any) -> Path:
    try:
        rel = template.format(**values)
    except (KeyError, IndexError, ValueError) as exc:
        raise ValueError(
            f"{info.root / 'meta' / 'info.json'}: {field} {template!r} cannot be filled ({exc})"
        ) from None
    return resolve_inside(Path(rel), info.root)


def _jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: cannot read ({exc})") from None
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError):
            raise ValueError(f"{path}: line {n} is not JSON") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}: line {n} is not a JSON object")
        rows.append(row)
    return rows


def _read_parquet(path: Path, columns: list[str] | None = None, filters: Any = None) -> Any:
    if not path.is_file():
        raise ValueError(f"{path}: missing file")
    try:
        return pq.read_table(path, columns=columns, filters=filters)
    except Exception as exc:  # pyarrow raises ArrowInvalid / OSError / KeyError variants
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(f"{path}: cannot read parquet ({reason})") from None


def _columns(path: Path) -> list[str]:
    """Column names of a parquet file (empty for a missing file: the read then names it)."""
    if not path.is_file():
        return []
    try:
        return list(pq.ParquetFile(path).schema_arrow.names)
    except Exception as exc:  # corrupt footer
        reason = " ".join(str(exc).split())[:200]
        raise ValueError(f"{path}: cannot read parquet ({reason})") from None


def _tasks(info: LeRobotInfo) -> dict[int, str]:
    """task_index -> task text."""
    meta = info.root / "meta"
    if info.version == _V3:
        path = meta / "tasks.parquet"
        table = _read_parquet(path).to_pylist()
        out = {}
        for row in table:
            text = row.get("task", row.get("__index_level_0__"))
            idx = row.get("task_index")
            if not isinstance(text, str) or not isinstance(idx, int):
                raise ValueError(f"{path}: a row lacks a string task or an integer task_index")
            out[idx] = text
        return out
    path = meta / "tasks.jsonl"
    out = {}
    for row in _jsonl(path):
        if not isinstance(row.get("task"), str) or not isinstance(row.get("task_index"), int):
            raise ValueError(f"{path}: a line lacks a string task or an integer task_index")
        out[row["task_index"]] = row["task"]
    return out


def _episodes(info: LeRobotInfo) -> Iterator[tuple[Path, dict[str, Any]]]:
    """(metadata file, episode row) in episode order within each file."""
    meta = info.root / "meta"
    if info.version == _V3:
        files = sorted((meta / "episodes").glob("chunk-*/file-*.parquet"))
        if not files:
            raise ValueError(f"{meta / 'episodes'}: no chunk-*/file-*.parquet files")
        for path in files:
            resolve_inside(path, info.root)
            names = _columns(path)
            keep = [c for c in names if not c.startswith(("stats/", "meta/"))]
            for row in _read_parquet(path, columns=keep or None).to_pylist():
                yield path, row
        return
    path = meta / "episodes.jsonl"
    for row in _jsonl(path):
        yield path, row


def _int(row: dict[str, Any], key: str, where: str) -> int:
    value = row.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{where}: field {key!r} must be an integer, got {value!r}")
    return value


def _float(row: dict[str, Any], key: str, where: str) -> float:
    value = row.get(key)
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise ValueError(f"{where}: field {key!r} must be a number, got {value!r}")
    return float(value)


def _decode_video(path: Path, times: np.ndarray, fps: float, where: str) -> list[np.ndarray]:
    """RGB frames of ``path`` nearest to ``times`` (seconds); each within half a period."""
    import av

    if not path.is_file():
        raise ValueError(f"{where}: missing video {path}")
    tol = 0.5 / fps + 1e-4
    lo, hi = float(times.min()) - tol, float(times.max()) + tol
    stamps: list[float] = []
    frames: list[np.ndarray] = []
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            if lo > 0 and stream.time_base is not None:
                container.seek(int(lo / stream.time_base), stream=stream, backward=True)
            for frame in container.decode(stream):
                if frame.pts is None or frame.time_base is None:
                    continue
                t = float(frame.pts * frame.time_base)
                if t < lo:
                    continue
                if t > hi:
                    break
                stamps.append(t)
                frames.append(frame.to_ndarray(format="rgb24"))
    except (av.FFmpegError, OSError, IndexError) as exc:
        raise ValueError(f"{where}: cannot decode video {path} ({exc})") from None
    if not frames:
        raise ValueError(f"{where}: video {path} has no frames in [{lo:.3f}, {hi:.3f}] s")
    have = np.asarray(stamps)
    out = []
    for t in times:
        i = int(np.argmin(np.abs(have - t)))
        if abs(have[i] - t) > tol:
            raise ValueError(
                f"{where}: video {path} has no frame within {tol:.4f} s of {t:.4f} s "
                f"(nearest {have[i]:.4f} s)"
            )
        out.append(frames[i])
    return out


def _image_kind(info: LeRobotInfo, key: str) -> str:
    where = f"{info.root / 'meta' / 'info.json'}"
    feat = info.features.get(key)
    if not isinstance(feat, dict):
        raise ValueError(f"{where}: no feature {key!r} (features: {sorted(info.features)})")
    kind = feat.get("dtype")
    if kind not in ("image", "video"):
        raise ValueError(f"{where}: feature {key!r} has dtype {kind!r}, not image or video")
    if kind == "video" and info.video_path is None:
        raise ValueError(f"{where}: feature {key!r} is a video but video_path is null")
    return kind


def _read_episode(
    info: LeRobotInfo,
    meta_path: Path,
    ep: dict[str, Any],
    tasks: dict[int, str],
    image_key: str,
    action_key: str,
    kind: str,
) -> Episode:
    index = _int(ep, "episode_index", str(meta_path))
    where = f"{meta_path}: episode {index}"
    if info.version == _V3:
        data_file = _format(
            info.data_path,
            info,
            "data_path",
            chunk_index=_int(ep, "data/chunk_index", where),
            file_index=_int(ep, "data/file_index", where),
        )
    else:
        data_file = _format(
            info.data_path,
            info,
            "data_path",
            episode_chunk=index // info.chunks_size,
            episode_index=index,
        )
    names = _columns(data_file)
    columns = [action_key, "timestamp", "frame_index", "episode_index"]
    columns += [c for c in ("task_index", "next.success") if c in names]
    if kind == "image":
        columns.append(image_key)
    filters = [("episode_index", "=", index)] if info.version == _V3 else None
    table = _read_parquet(data_file, columns=columns, filters=filters)
    dwhere = f"{data_file}: episode {index}"
    if table.num_rows == 0:
        raise ValueError(f"{dwhere}: no frames")
    length = ep.get("length")
    if isinstance(length, int) and not isinstance(length, bool) and length != table.num_rows:
        raise ValueError(f"{dwhere}: {table.num_rows} frames, but the metadata says {length}")
    table = table.sort_by("frame_index")
    eps = np.asarray(table.column("episode_index").to_pylist())
    if np.any(eps != index):
        raise ValueError(f"{dwhere}: rows of other episodes in the file")
    actions = table.column(action_key).to_pylist()
    try:
        actions_arr = np.asarray(actions, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{dwhere}: field {action_key!r} is not a numeric vector") from None
    if actions_arr.ndim != 2 or actions_arr.shape[1] != 7:
        raise ValueError(f"{dwhere}: field {action_key!r} must be 7-D, got {actions_arr.shape}")
    times = np.asarray(table.column("timestamp").to_pylist(), dtype=np.float64)

    task_text = None
    if "task_index" in table.column_names:
        first = table.column("task_index")[0].as_py()
        task_text = tasks.get(first) if isinstance(first, int) else None
        task_index = first if isinstance(first, int) else -1
    else:
        task_index = -1
    if task_text is None:
        listed = ep.get("tasks")
        if isinstance(listed, list) and listed and isinstance(listed[0], str):
            task_text = listed[0]
            task_index = next((k for k, v in tasks.items() if v == task_text), task_index)
    if task_text is None:
        raise ValueError(f"{where}: no task (neither a known task_index nor tasks)")

    if kind == "image":
        images = []
        for t, cell in enumerate(table.column(image_key).to_pylist()):
            data = cell.get("bytes") if isinstance(cell, dict) else None
            if not isinstance(data, bytes) or not data:
                raise ValueError(f"{dwhere}: frame {t} field {image_key!r} has no image bytes")
            images.append(np.asarray(decode_image_bytes(data, f"{dwhere}: frame {t}")))
    else:
        if info.version == _V3:
            video_file = _format(
                info.video_path or "",
                info,
                "video_path",
                video_key=image_key,
                chunk_index=_int(ep, f"videos/{image_key}/chunk_index", where),
                file_index=_int(ep, f"videos/{image_key}/file_index", where),
            )
            offset = _float(ep, f"videos/{image_key}/from_timestamp", where)
        else:
            video_file = _format(
                info.video_path or "",
                info,
                "video_path",
                video_key=image_key,
                episode_chunk=index // info.chunks_size,
                episode_index=index,
            )
            offset = 0.0
        images = _decode_video(video_file, times + offset, info.fps, dwhere)

    success = None
    if "next.success" in table.column_names:
        last = table.column("next.success")[-1].as_py()
        success = bool(last) if last is not None else None
    steps = [Step(images[t], actions_arr[t], task_text) for t in range(len(images))]
    return Episode(
        id=f"{task_index}_{index}",
        instruction=task_text,
        steps=steps,
        success=success,
        source=str(info.root),
    )


def read_lerobot(
    root: str | Path,
    image_key: str = DEFAULT_IMAGE_KEY,
    action_key: str = "action",
    episodes: set[int] | None = None,
) -> Iterator[Episode]:
    """The episodes of the LeRobot dataset at ``root`` (v3.0 or v2.x), one at a time, in the
    order the episode metadata lists them (``episodes`` restricts to those indices).
    ``ValueError`` naming the file, episode and field on anything that cannot be read."""
    info = read_info(root)
    kind = _image_kind(info, image_key)
    if action_key not in info.features:
        raise ValueError(f"{info.root / 'meta' / 'info.json'}: no feature {action_key!r}")
    tasks = _tasks(info)
    for meta_path, ep in _episodes(info):
        index = ep.get("episode_index")
        if episodes is not None and index not in episodes:
            continue
        yield _read_episode(info, meta_path, ep, tasks, image_key, action_key, kind)
