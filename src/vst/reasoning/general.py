"""General rule-checkable data (math, OCR, knowledge) from local files, as RL shard rows.

Format: a JSONL file (one JSON object per line) or a Parquet file, one sample per row:

* ``question`` (str, required): the prompt text. ``<image>`` marks where each picture goes;
  without any marker the pictures come first, in order; a marker count different from the
  picture count is a bad row.
* ``answer`` (str or number, required): the ground truth.
* ``mode`` (str, required): a vst reward mode (``mcq``, ``exact``, ``numeric``, ``ocr``,
  ``math``, ``order``) or a release mode name (``multi_choices_score``, ``vqa_score``,
  ``relaxed_score``, ``anls_score``, ``math_score``; :func:`vst.rewards.release.release_spec`).
* optional ``options`` (mcq option texts: a list or a dict of strings), ``unit`` (str) and
  ``tolerance`` (number >= 0) for numeric: checked and copied into the reward spec; ``task``
  (str): the row's task name (default: the source's task, else ``general``); ``id``: kept as
  ``meta["source_id"]`` (the sample id is a content hash).
* optional ``images``: a list of picture paths relative to the data file's folder (read only
  inside that folder: :func:`vst.scenes.files.resolve_inside`), or, in Parquet, of
  ``{"bytes", "path"}`` structs (bytes used; the path is never opened). JPEG/PNG bytes are kept
  as they are; other formats are re-encoded as PNG. Pictures are checked under the project's
  size policy.

A row that breaks any rule is skipped as ``"<file>:<line>: <reason>"`` (Parquet: the 1-based row
number); an unreadable file is one skip. Nothing in a file makes the reader raise.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from vst.engine.imaging import encode_image
from vst.engine.sample import canonical_json
from vst.engine.writer import image_extension
from vst.rewards import accuracy_reward
from vst.rewards.release import TO_VST, release_spec
from vst.scenes.errors import UnreadableFileError
from vst.scenes.files import decode_image_bytes, resolve_inside

__all__ = [
    "GENERAL_MODES",
    "IMAGE_MARKER",
    "GeneralRow",
    "general_row",
    "question_key_text",
    "read_general",
]

GENERAL_MODES = ("mcq", "exact", "numeric", "ocr", "math", "order")
"""The vst reward modes general data may use (``det3d`` and ``caption`` are refused)."""

IMAGE_MARKER = "<image>"
MAX_LINE_BYTES = 1 << 20
"""A JSONL line longer than this is a bad row (bounds memory on hostile files)."""
MAX_IMAGE_BYTES = 32 << 20
_EXTRA_SPEC_FIELDS = ("options", "unit", "tolerance")


@dataclass(frozen=True)
class GeneralRow:
    """One read row: a shard row (``row``) or the reason it was skipped (``error``), with its
    ``where`` (``file:line``) and ``line`` (Parquet: row number; 0: the whole file)."""

    where: str
    line: int
    row: dict[str, Any] | None = None
    error: str | None = None


def _number_text(value: float) -> str:
    text = repr(float(value))
    return text[:-2] if text.endswith(".0") else text


def _spec(record: Mapping[str, Any], answer: Any) -> dict[str, Any]:
    mode = record.get("mode")
    if not isinstance(mode, str) or not mode:
        raise ValueError("mode is missing")
    if mode in TO_VST:
        spec = release_spec(mode, answer if isinstance(answer, str) else _number_text(answer))
        if spec["mode"] not in GENERAL_MODES:
            raise ValueError(f"mode {mode!r} is not for general data")
        return spec
    if mode not in GENERAL_MODES:
        raise ValueError(
            f"unknown mode {mode!r} (vst: {', '.join(GENERAL_MODES)}; or a release mode)"
        )
    spec = {"mode": mode, "ground_truth": answer}
    for key in _EXTRA_SPEC_FIELDS:
        if record.get(key) is not None:
            spec[key] = _extra(key, record[key])
    accuracy_reward("", spec)  # a ground truth the mode cannot read raises here
    return spec


def _extra(key: str, value: Any) -> Any:
    """An optional spec field, checked: ``options`` a list of strings or a dict of strings,
    ``unit`` a string, ``tolerance`` a finite number >= 0."""
    if key == "options":
        items = value.values() if isinstance(value, Mapping) else value
        keys_ok = not isinstance(value, Mapping) or all(isinstance(k, str) for k in value)
        if (
            not isinstance(value, list | Mapping)
            or not keys_ok
            or not all(isinstance(v, str) for v in items)
        ):
            raise ValueError("options must be a list of strings or a dict of strings")
    elif key == "unit" and not isinstance(value, str):
        raise ValueError("unit must be a string")
    elif key == "tolerance" and (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value < 0
    ):
        raise ValueError("tolerance must be a finite number >= 0")
    return value


def _picture(entry: Any, folder: Path, k: int, where: str) -> bytes:
    if isinstance(entry, str):
        path = resolve_inside(Path(entry), folder)
        if not path.is_file():
            raise ValueError(f"image {k}: {entry} is not a file")
        if path.stat().st_size > MAX_IMAGE_BYTES:
            raise ValueError(f"image {k}: {entry} is larger than {MAX_IMAGE_BYTES} bytes")
        data = path.read_bytes()
    elif isinstance(entry, Mapping) and isinstance(entry.get("bytes"), bytes | bytearray):
        data = bytes(entry["bytes"])
    else:
        raise ValueError(f"image {k}: expected a relative path or a {{bytes, path}} struct")
    image = decode_image_bytes(data, f"{where}: image {k}")
    return data if image_extension(data) in ("jpg", "png") else encode_image(image, "PNG")


def _content(question: str, n_images: int) -> list[dict[str, Any]]:
    markers = question.count(IMAGE_MARKER)
    if markers and markers != n_images:
        raise ValueError(f"{markers} {IMAGE_MARKER} marker(s) for {n_images} image(s)")
    if not markers:
        items = [{"type": "image", "text": None} for _ in range(n_images)]
        return [*items, {"type": "text", "text": question}]
    items: list[dict[str, Any]] = []
    for k, part in enumerate(question.split(IMAGE_MARKER)):
        if k:
            items.append({"type": "image", "text": None})
        if part.strip():
            items.append({"type": "text", "text": part.strip()})
    return items


def general_row(record: Any, path: Path, line: int, task: str | None = None) -> dict[str, Any]:
    """The shard row of one general record (see the module docstring); ValueError naming the
    field otherwise. ``path`` is the data file (pictures are read inside its folder), ``line``
    the record's line (Parquet: row) number."""
    where, folder = f"{path}:{line}", path.parent
    if not isinstance(record, Mapping):
        raise ValueError("not a JSON object")
    question = record.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question is missing or empty")
    answer = record.get("answer")
    if answer is None:
        raise ValueError("answer is missing")
    if isinstance(answer, bool) or not isinstance(answer, str | int | float):
        raise ValueError("answer must be a string or a number")
    if isinstance(answer, str) and not answer.strip():
        raise ValueError("answer is empty")
    if isinstance(answer, float) and not math.isfinite(answer):
        raise ValueError(f"answer {answer} is not a finite number")
    spec = _spec(record, answer.strip() if isinstance(answer, str) else answer)
    entries = record.get("images")
    if entries is None:
        entries = []
    if not isinstance(entries, list | tuple):
        raise ValueError("images must be a list")
    try:
        pictures = [_picture(e, folder, k, where) for k, e in enumerate(entries)]
    except UnreadableFileError as exc:
        raise ValueError(str(exc).removeprefix(f"{where}: ")) from None
    row_task = record.get("task")
    name = row_task if isinstance(row_task, str) and row_task else (task or "general")
    text = answer.strip() if isinstance(answer, str) else _number_text(answer)
    hashes = [hashlib.sha256(p).hexdigest() for p in pictures]
    sid = hashlib.sha256(
        canonical_json(
            {"task": name, "question": question, "reward": spec, "images": hashes}
        ).encode()
    ).hexdigest()[:16]
    meta: dict[str, Any] = {"source": "general", "file": path.name, "line": line}
    if record.get("id") is not None:
        meta["source_id"] = str(record["id"])
    return {
        "id": sid,
        "task": name,
        "scenario": "multi_image" if len(pictures) > 1 else "single_image",
        "messages": [
            {"role": "user", "content": _content(question.strip(), len(pictures))},
            {"role": "assistant", "content": [{"type": "text", "text": text}]},
        ],
        "images": [{"bytes": p, "path": None} for p in pictures],
        "videos": [],
        "answer": text,
        "reward": canonical_json(spec),
        "meta": canonical_json(meta),
    }


def _records(path: Path) -> Iterator[tuple[int, Any, str | None]]:
    """``(line, record, error)`` of a JSONL or Parquet file; a file error is one entry at
    line 0."""
    if path.suffix.lower() == ".parquet":
        try:
            pf = pq.ParquetFile(path)
            line = 0
            for batch in pf.iter_batches(batch_size=256):
                for record in batch.to_pylist():
                    line += 1
                    yield line, record, None
        except Exception as exc:
            yield 0, None, f"cannot read Parquet: {type(exc).__name__}: {exc}"
        return
    try:
        with path.open("rb") as fh:
            for line, raw in enumerate(fh, 1):
                if len(raw) > MAX_LINE_BYTES:
                    yield line, None, f"line longer than {MAX_LINE_BYTES} bytes"
                    continue
                if not raw.strip():
                    continue
                try:
                    yield line, json.loads(raw.decode("utf-8")), None
                except (UnicodeDecodeError, ValueError, RecursionError) as exc:
                    yield line, None, f"not valid JSON ({type(exc).__name__})"
    except OSError as exc:
        yield 0, None, f"cannot read: {exc}"


def read_general(path: str | Path, task: str | None = None) -> Iterator[GeneralRow]:
    """The rows of a general data file (``.jsonl`` / ``.json`` lines, or ``.parquet``), each a
    shard row or a skip reason (see the module docstring)."""
    path = Path(path)
    for line, record, error in _records(path):
        where = f"{path}:{line}"
        if error is not None:
            yield GeneralRow(where, line, error=error)
            continue
        try:
            yield GeneralRow(where, line, row=general_row(record, path, line, task))
        except Exception as exc:  # any cell of any type: a bad row, never a crash
            yield GeneralRow(where, line, error=" ".join(str(exc).split()) or type(exc).__name__)


def question_key_text(text: str) -> str:
    """A question text normalised for deduplication: picture markers removed, lower case,
    whitespace collapsed."""
    text = re.sub(r"<\|image_pad\|>|<\|video_pad\|>|<image>|<video>", " ", text)
    return " ".join(text.lower().split())
