"""Shards: Parquet files of samples, written atomically with deterministic bytes.

Schema (one row per :class:`~vst.engine.sample.Sample`)::

    id        string
    task      string
    scenario  string
    messages  list<struct<role: string, content: list<struct<type: string, text: string>>>>
    images    list<struct<bytes: binary, path: string>>   (encoded JPEG/PNG, path null)
    videos    list<list<struct<bytes: binary, path: string>>>   (frames of each video)
    answer    string
    reward    string   (canonical JSON: {"mode", "ground_truth"})
    meta      string   (canonical JSON)

``messages`` is a nested column, not a JSON string: ``datasets.load_dataset("parquet", ...)``
yields plain dicts (image items come back as ``{"type": "image", "text": None}``), the form
TRL's vision-language SFT path and ``processor.apply_chat_template`` take. The Hugging Face
features are embedded in the schema metadata (key ``huggingface``) so ``datasets`` decodes
``images`` to PIL images. The writer's own summary of the work unit (scene ids, skipped scenes,
sample counts) is stored under the key ``vst``.

Determinism: rows are written in the order given, in row groups of :data:`ROW_GROUP_SIZE`, with
fixed writer options (the image bytes dictionary-encoded per row group, so a picture the rows
of a group share is stored once, and not compressed again; zstd for the other columns), so the
same samples give the same bytes (for one pyarrow version).
Atomicity: the file is written as a hidden temporary file in the same folder and renamed into
place when complete; a killed write leaves no shard behind (temporaries are swept by the
runner).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from vst.atomic import commit, temp_file
from vst.engine.encode_cache import EncodedImageCache
from vst.engine.imaging import encode_image
from vst.engine.sample import Sample, canonical_json

SHARD_FORMAT_VERSION = 3
"""Bumped when the shard schema or encoding changes (3: dictionary-encoded image bytes)."""

ROW_GROUP_SIZE = 128
"""Rows per Parquet row group (bounds the writer's memory: one group of encoded rows)."""

SHARD_GLOB = "shard-*.parquet"
_SHARD_RE = re.compile(r"^shard-(\d{5,})-([0-9a-f]{12})\.parquet$")
TMP_PREFIX = ".tmp-"

_TEXT_ITEM = pa.struct([("type", pa.string()), ("text", pa.string())])
_MESSAGE = pa.struct([("role", pa.string()), ("content", pa.list_(_TEXT_ITEM))])
_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])

_V = {"dtype": "string", "_type": "Value"}
HF_FEATURES: dict[str, Any] = {
    "id": _V,
    "task": _V,
    "scenario": _V,
    # lists of structs / of images in the list form every datasets version reads
    "messages": [{"role": _V, "content": [{"type": _V, "text": _V}]}],
    "images": [{"_type": "Image"}],
    "videos": [[{"_type": "Image"}]],
    "answer": _V,
    "reward": _V,
    "meta": _V,
}
"""The Hugging Face ``datasets`` features of a shard (``Features.from_dict`` form)."""

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("task", pa.string()),
        ("scenario", pa.string()),
        ("messages", pa.list_(_MESSAGE)),
        ("images", pa.list_(_IMAGE)),
        ("videos", pa.list_(pa.list_(_IMAGE))),
        ("answer", pa.string()),
        ("reward", pa.string()),
        ("meta", pa.string()),
    ],
    metadata={"huggingface": json.dumps({"info": {"features": HF_FEATURES}}, sort_keys=True)},
)
"""Arrow schema of a shard, with the ``datasets`` features in its metadata."""

_IMAGE_BYTES = ("images.list.element.bytes", "videos.list.element.list.element.bytes")
"""Leaf columns of the encoded pictures."""


def _leaf_columns(fields: Iterable[pa.Field], prefix: str = "") -> list[str]:
    """Dotted Parquet paths of the leaf columns of ``fields`` (lists as ``.list.element``)."""
    out: list[str] = []
    for f in fields:
        name, t = prefix + f.name, f.type
        while pa.types.is_list(t):
            name, t = name + ".list.element", t.value_type
        if pa.types.is_struct(t):
            out += _leaf_columns(list(t), name + ".")
        else:
            out.append(name)
    return out


_WRITER_OPTIONS: dict[str, Any] = {
    # JPEG/PNG bytes do not compress: stored as they are; zstd (level 1) for the rest
    "compression": {c: ("none" if c in _IMAGE_BYTES else "zstd") for c in _leaf_columns(SCHEMA)},
    # the samples of a scene repeat pictures (a video task's clip, a shared frame): a
    # dictionary per row group stores each distinct picture once (smaller, faster to write)
    "use_dictionary": ["id", "task", "scenario", *_IMAGE_BYTES],
    "dictionary_pagesize_limit": 64 * 1024 * 1024,
    "write_statistics": ["task", "scenario"],
    "version": "2.6",
    "data_page_version": "1.0",
}


def shard_name(index: int, key: str) -> str:
    """File name of the shard of work unit ``index`` with input key ``key`` (hex)."""
    return f"shard-{index:05d}-{key[:12]}.parquet"


def parse_shard_name(name: str) -> tuple[int, str] | None:
    """``(index, key12)`` of a shard file name, or None if it is not one."""
    m = _SHARD_RE.match(name)
    return (int(m.group(1)), m.group(2)) if m else None


def list_shards(folder: str | Path) -> list[Path]:
    """Shard files in ``folder`` (or in ``folder/data`` if that holds them), sorted by name."""
    root = Path(folder)
    if not any(root.glob(SHARD_GLOB)) and (root / "data").is_dir():
        root = root / "data"
    return sorted(p for p in root.glob(SHARD_GLOB) if parse_shard_name(p.name))


def image_extension(data: bytes) -> str:
    """``jpg`` / ``png`` from an encoded image's magic bytes (``bin`` otherwise)."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    return "bin"


def sample_row(
    sample: Sample,
    image_format: str = "JPEG",
    quality: int = 95,
    cache: EncodedImageCache | None = None,
) -> dict[str, Any]:
    """One shard row of ``sample`` (images encoded, reward/meta as canonical JSON). With
    ``cache``, pictures already encoded (same pixels, format and quality) reuse their bytes;
    the row is the same either way."""
    encode = cache.encode if cache is not None else encode_image
    messages = [
        {
            "role": m["role"],
            "content": [
                {"type": c.get("type", "text"), "text": c.get("text")} for c in m["content"]
            ],
        }
        for m in sample.messages
    ]
    return {
        "id": sample.id,
        "task": sample.task,
        "scenario": sample.scenario,
        "messages": messages,
        "images": [
            {"bytes": encode(img, image_format, quality), "path": None} for img in sample.images
        ],
        "videos": [
            [{"bytes": encode(f, image_format, quality), "path": None} for f in frames]
            for frames in sample.videos
        ],
        "answer": sample.answer,
        "reward": canonical_json(sample.reward),
        "meta": canonical_json(sample.meta),
    }


@dataclass(frozen=True)
class ShardInfo:
    """A written shard: its path, row count and size in bytes."""

    path: Path
    rows: int
    bytes: int


class ShardWriter:
    """Stream rows into one shard: ``write(row)`` buffers up to a row group, ``close(meta)``
    finishes the file and renames it into place; ``abort()`` (or an exception inside a
    ``with`` block) deletes the temporary file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._tmp = temp_file(self.path, prefix=TMP_PREFIX, suffix=".parquet")
        self._writer = pq.ParquetWriter(str(self._tmp), SCHEMA, **_WRITER_OPTIONS)
        self._buffer: list[dict[str, Any]] = []
        self.rows = 0

    def write(self, row: dict[str, Any]) -> None:
        """Add one row (see :func:`sample_row`)."""
        self._buffer.append(row)
        if len(self._buffer) >= ROW_GROUP_SIZE:
            self._flush()

    def write_sample(self, sample: Sample, image_format: str = "JPEG", quality: int = 95) -> None:
        self.write(sample_row(sample, image_format, quality))

    def _flush(self) -> None:
        if not self._buffer:
            return
        table = pa.Table.from_pylist(self._buffer, schema=SCHEMA)
        self._writer.write_table(table, row_group_size=ROW_GROUP_SIZE)
        self.rows += len(self._buffer)
        self._buffer = []

    def close(self, meta: dict[str, Any] | None = None) -> ShardInfo:
        """Finish the file (``meta`` is stored as JSON under the ``vst`` metadata key) and
        rename it to :attr:`path`."""
        try:
            self._flush()
            payload = {"format_version": SHARD_FORMAT_VERSION, **(meta or {})}
            self._writer.add_key_value_metadata({"vst": canonical_json(payload)})
            self._writer.close()
            commit(self._tmp, self.path)
        except BaseException:
            self.abort()
            raise
        return ShardInfo(self.path, self.rows, self.path.stat().st_size)

    def abort(self) -> None:
        """Drop the partial file."""
        with contextlib.suppress(Exception):  # already failing: only cleanup remains
            self._writer.close()
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> ShardWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()


def write_shard(
    path: str | Path,
    samples: Iterable[Sample],
    image_format: str = "JPEG",
    quality: int = 95,
    meta: dict[str, Any] | None = None,
) -> ShardInfo:
    """Write ``samples`` (streamed) to the shard at ``path``, atomically."""
    writer = ShardWriter(path)
    with writer:
        for s in samples:
            writer.write_sample(s, image_format, quality)
        return writer.close(meta)


def shard_meta(path: str | Path) -> dict[str, Any]:
    """The ``vst`` summary stored in a shard's metadata (``{}`` if it has none)."""
    md = pq.ParquetFile(path).metadata.metadata or {}
    raw = md.get(b"vst")
    return json.loads(raw) if raw else {}


def iter_rows(
    path: str | Path, columns: list[str] | None = None, batch_size: int = 64
) -> Iterator[dict[str, Any]]:
    """Rows of a shard as dicts (only ``columns`` if given), one batch in memory at a time.
    ``reward`` and ``meta`` stay JSON strings; images stay ``{"bytes", "path"}`` dicts."""
    pf = pq.ParquetFile(path)
    for batch in pf.iter_batches(batch_size=batch_size, columns=columns):
        yield from batch.to_pylist()


def count_rows(path: str | Path) -> int:
    """Number of samples in a shard (from the footer, no data read)."""
    return pq.ParquetFile(path).metadata.num_rows
