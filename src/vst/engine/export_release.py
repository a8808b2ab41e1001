"""vst shards -> the VST release's SFT Parquet (``vst data export --format vst-release``).

The release's columns, in its order (VST-RELEASE.md §1): ``conversations`` (list of
``{"from": "human"|"gpt", "value"}``), ``id``, ``data_source``, ``images`` (list of
``{"bytes", "path"}``), ``type``, ``meta_info`` (a JSON string: one dict per ``images`` entry,
``resized_width``, ``resized_height``, ``width``, ``height``).

How a sample maps:

* each image item becomes one ``<|image_pad|>`` at its place in the turn's text, each video item
  one ``<|video_pad|>``; a turn's items are joined with newlines (the release strips the text
  around flags, so they do not reach the model);
* ``images`` holds the encoded pictures as the shard stores them (``path`` =
  ``<id>_<k>.<ext>``, a name only); ``meta_info`` gives each one's size as ``width`` /
  ``height`` with ``resized_*`` = -1 (the export does not resize: the engine stored the pictures
  at their model size already);
* **videos as frame lists**: a video's frames are consecutive ``images`` entries (JPEG bytes,
  ``path`` = ``<id>_v<v>_<t>.jpg``), and each frame's ``meta_info`` dict adds ``video_index``,
  ``frame_index`` and ``fps`` (``meta["video_fps"]``). This is the release's "video made of
  many images" form (the release's converter docs; its train-time reader expects one video file
  per ``images`` entry, so the official trainer needs a frames-to-mp4 step or a reader that
  groups frames, as :mod:`vst.train.sources.release` does);
* ``type``: ``bbox_3d`` for ``si_det3d`` (the release's FoV path), ``video`` for video samples,
  ``mm_qa`` otherwise; a sample on the thinking system prompt gets the prefix ``thought_``; the
  plain system prompt is dropped (the release adds it); any other system text cannot be carried
  and the sample is skipped with that reason;
* ``data_source``: the sample's task; ``id``: the sample id.

One output file per input shard with rows to write (``<shard stem>.parquet``, row groups of 100
rows as the release's converters write), each written atomically.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from vst.atomic import commit, temp_file
from vst.engine.writer import image_extension, iter_rows
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT

__all__ = [
    "IMAGE_FLAG",
    "RELEASE_COLUMNS",
    "RELEASE_SCHEMA",
    "VIDEO_FLAG",
    "ExportResult",
    "export_release",
    "export_shards",
    "release_row",
]

IMAGE_FLAG = "<|image_pad|>"
VIDEO_FLAG = "<|video_pad|>"
RELEASE_COLUMNS = ("conversations", "id", "data_source", "images", "type", "meta_info")
ROW_GROUP_SIZE = 100

RELEASE_SCHEMA = pa.schema(
    [
        ("conversations", pa.list_(pa.struct([("from", pa.string()), ("value", pa.string())]))),
        ("id", pa.string()),
        ("data_source", pa.string()),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("type", pa.string()),
        ("meta_info", pa.string()),
    ]
)
"""Arrow schema of a release SFT shard (no ``datasets`` image features: the release's reader
takes ``images[i]["bytes"]`` as stored)."""

_ROLES = {"user": "human", "assistant": "gpt"}
_FLAGS = {"image": IMAGE_FLAG, "video": VIDEO_FLAG}


def _size(data: bytes, what: str) -> tuple[int, int]:
    """(width, height) from an encoded picture's header; ``ValueError`` if it has none."""
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # PIL raises many types on bad bytes; all mean "not a picture"
        raise ValueError(f"{what} is not a readable picture") from None


def release_type(task: str, has_video: bool, think: bool) -> str:
    """The release ``type`` of a sample (see the module docstring)."""
    base = "video" if has_video else "bbox_3d" if task == "si_det3d" else "mm_qa"
    return f"thought_{base}" if think else base


def release_row(row: dict[str, Any]) -> dict[str, Any]:
    """The release row of a shard row; ``ValueError`` naming the reason when the release form
    cannot carry it (a custom system prompt; images and a video in one sample; a picture whose
    size cannot be read)."""
    images, videos = row.get("images") or [], row.get("videos") or []
    if images and videos:
        raise ValueError("images and a video in one sample (the release takes one or the other)")
    think = False
    conversations = []
    for m in row["messages"]:
        texts = [c.get("text") or "" for c in m["content"] if c.get("type") == "text"]
        if m["role"] == "system":
            text = "".join(texts)
            if text == THINK_SYSTEM_PROMPT:
                think = True
            elif text != PLAIN_SYSTEM_PROMPT:
                raise ValueError("a custom system prompt (the release carries plain or think only)")
            continue
        if m["role"] not in _ROLES:
            raise ValueError(f"role {m['role']!r} has no release form")
        value = "\n".join(_FLAGS.get(c["type"]) or (c.get("text") or "") for c in m["content"])
        conversations.append({"from": _ROLES[m["role"]], "value": value})
    sid = row["id"]
    entries: list[dict[str, Any]] = []
    meta_info: list[dict[str, Any]] = []
    for k, im in enumerate(images):
        w, h = _size(im["bytes"], f"image {k}")
        entries.append({"bytes": im["bytes"], "path": f"{sid}_{k}.{image_extension(im['bytes'])}"})
        meta_info.append({"resized_width": -1, "resized_height": -1, "width": w, "height": h})
    fps = json.loads(row.get("meta") or "{}").get("video_fps") if videos else None
    for v, frames in enumerate(videos):
        for t, fr in enumerate(frames):
            w, h = _size(fr["bytes"], f"video {v} frame {t}")
            ext = image_extension(fr["bytes"])
            entries.append({"bytes": fr["bytes"], "path": f"{sid}_v{v}_{t:04d}.{ext}"})
            meta_info.append(
                {
                    "resized_width": -1,
                    "resized_height": -1,
                    "width": w,
                    "height": h,
                    "video_index": v,
                    "frame_index": t,
                    "fps": fps,
                }
            )
    return {
        "conversations": conversations,
        "id": sid,
        "data_source": row.get("task") or "vst",
        "images": entries,
        "type": release_type(row.get("task") or "", bool(videos), think),
        "meta_info": json.dumps(meta_info),
    }


@dataclass
class ExportResult:
    """What an export wrote: ``files``, ``rows``, ``pictures`` (images and frames) and the
    samples ``skipped`` as ``(shard, id, reason)``."""

    files: list[Path] = field(default_factory=list)
    rows: int = 0
    pictures: int = 0
    skipped: list[tuple[str, str, str]] = field(default_factory=list)


class _ShardReadError(Exception):
    """A shard's bytes could not be read (corrupt or truncated Parquet)."""


def _shard_rows(shard: Path) -> Iterator[dict[str, Any]]:
    """The rows of ``shard``; any error reading it becomes :class:`_ShardReadError` (so that
    reading errors are told apart from errors writing the output)."""
    rows = iter_rows(shard, ["id", "task", "messages", "images", "videos", "reward", "meta"])
    while True:
        try:
            row = next(rows)
        except StopIteration:
            return
        except Exception as exc:  # pyarrow raises OSError / ArrowInvalid on corrupt files
            raise _ShardReadError(" ".join(str(exc).split())[:200]) from None
        yield row


Convert = Callable[[dict[str, Any]], dict[str, Any]]
"""A shard row -> an output row (``ValueError`` with the reason when it cannot be carried)."""


def _write_shard(
    shard: Path, tmp: Path, result: ExportResult, convert: Convert, schema: pa.Schema
) -> tuple[int, int]:
    """Write the converted rows of ``shard`` into ``tmp``; returns (rows, pictures) written and
    appends the samples left out to ``result.skipped``."""
    rows = pictures = 0
    with pq.ParquetWriter(str(tmp), schema, compression="zstd") as writer:
        buffer: list[dict[str, Any]] = []
        for row in _shard_rows(shard):
            try:
                rel = convert(row)
            except ValueError as exc:
                result.skipped.append((shard.name, str(row.get("id")), str(exc)))
                continue
            buffer.append(rel)
            pictures += len(rel["images"])
            if len(buffer) == ROW_GROUP_SIZE:
                writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
                rows, buffer = rows + len(buffer), []
        if buffer:
            writer.write_table(pa.Table.from_pylist(buffer, schema=schema))
            rows += len(buffer)
    return rows, pictures


def export_release(shards: Iterable[Path], out: Path) -> ExportResult:
    """Write the release form of every sample of ``shards`` into ``out`` (see the module
    docstring); samples the form cannot carry, and shards that cannot be read, are skipped and
    listed (a whole shard with id ``"*"``). Errors writing ``out`` propagate (``OSError``)."""
    return export_shards(shards, out, release_row, RELEASE_SCHEMA)


def export_shards(
    shards: Iterable[Path], out: Path, convert: Convert, schema: pa.Schema
) -> ExportResult:
    """Write ``convert(row)`` of every row of ``shards`` into ``out`` with ``schema``: one
    ``<shard stem>.parquet`` per shard with rows (atomic; row groups of 100; an output row's
    ``images`` counted as pictures). Rows ``convert`` refuses (``ValueError``) and shards that
    cannot be read are skipped and listed (a whole shard with id ``"*"``). Errors writing
    ``out`` propagate (``OSError``)."""
    out.mkdir(parents=True, exist_ok=True)
    result = ExportResult()
    for shard in shards:
        target = out / f"{shard.stem}.parquet"
        tmp = temp_file(target)
        try:
            rows, pictures = _write_shard(shard, tmp, result, convert, schema)
        except _ShardReadError as exc:
            tmp.unlink(missing_ok=True)
            result.skipped.append((shard.name, "*", f"cannot read the shard ({exc})"))
            continue
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        if not rows:  # nothing the release form can carry: no empty file
            tmp.unlink()
            continue
        commit(tmp, target)
        result.files.append(target)
        result.rows += rows
        result.pictures += pictures
    return result
