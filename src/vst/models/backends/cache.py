"""A disk cache in front of any backend: a rerun of the same requests costs nothing.

:class:`CachedBackend` keys every request by the sha256 of the canonical JSON of
``(inner.model_id, inner.settings, request.fingerprint(), sampling.key())``: the model, whatever
else changes its outputs (pixel limits, dtype), what the model sees (messages and pixels) and the
decoding settings. Each answer is one small JSON file ``cache_dir/<key[:2]>/<key>.json`` holding
its format version, its own key, the model id, the choices and the prompt's token count, written
atomically (a temporary file renamed into place), so processes sharing a cache directory never
see half an entry; when two write the same key the last rename wins, with the same content.

An entry is trusted only when it parses and matches exactly what was asked: same format, same
key, same model id, ``sampling.n`` well-formed choices. Anything else (missing, truncated, not
JSON, a symlink, a directory, a wrong key or shape) is a miss: the request goes to the inner
backend and the entry is rewritten with its answer. Failed completions are never stored, so a
failure is retried by the next run. Paths are built from hex keys only and entries are opened
without following symlinks, so the cache never reads or writes outside ``cache_dir``.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vst.atomic import atomic_write_bytes
from vst.models.backends.base import (
    Backend,
    Choice,
    Completion,
    ProgressCallback,
    Sampling,
)
from vst.models.requests import Request

__all__ = ["CACHE_FORMAT", "CacheStats", "CachedBackend", "cache_key"]

CACHE_FORMAT = 1
"""Version of the entry layout; an entry of another version is a miss (and is rewritten)."""

MAX_ENTRY_BYTES = 16 * 1024 * 1024
"""Entries larger than this are not read (a cache entry is a few kB; this bounds hostile files)."""

_FINISH_REASONS = ("stop", "length")


def _canonical(value: Any) -> bytes:
    """Canonical JSON bytes (sorted keys, no whitespace); non-JSON values become their ``str``."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=True, default=str
    ).encode()


def cache_key(model_id: str, settings: dict[str, Any], request: Request, sampling: Sampling) -> str:
    """sha256 (hex) of the canonical JSON of the model id, the backend settings, the request's
    fingerprint and the sampling settings."""
    payload = {
        "model_id": model_id,
        "settings": settings,
        "request": request.fingerprint(),
        "sampling": sampling.key(),
    }
    return hashlib.sha256(_canonical(payload)).hexdigest()


@dataclass
class CacheStats:
    """Counts since the backend was made: requests answered from disk (``hits``), requests sent
    to the inner backend (``misses``), entries written, entries found unusable and ignored
    (``corrupt``) and entries that could not be written (``write_errors``)."""

    hits: int = 0
    misses: int = 0
    writes: int = 0
    corrupt: int = 0
    write_errors: int = 0


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_bytes(path: Path) -> bytes | None:
    """The file's bytes; ``None`` when it does not exist. Raises ``OSError`` for anything that
    is not a plain file of reasonable size (symlinks are not followed, FIFOs are not waited on)."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise OSError(f"not a regular file: {path}")
        if info.st_size > MAX_ENTRY_BYTES:
            raise OSError(f"entry too large: {path}")
        with os.fdopen(fd, "rb", closefd=False) as fh:
            return fh.read(MAX_ENTRY_BYTES + 1)
    finally:
        os.close(fd)


def _parse_entry(data: bytes, key: str, model_id: str, n: int) -> Completion | None:
    """The completion stored in ``data`` if it is a well-formed entry for exactly ``key``,
    ``model_id`` and ``n`` choices; else ``None``."""
    if len(data) > MAX_ENTRY_BYTES:
        return None
    try:
        entry = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(entry, dict):
        return None
    if entry.get("format") != CACHE_FORMAT or entry.get("key") != key:
        return None
    if entry.get("model_id") != model_id:
        return None
    raw_choices = entry.get("choices")
    prompt_tokens = entry.get("prompt_tokens")
    extra = entry.get("extra", {})
    if not isinstance(raw_choices, list) or len(raw_choices) != n:
        return None
    if not _is_count(prompt_tokens) or not isinstance(extra, dict):
        return None
    choices: list[Choice] = []
    for raw in raw_choices:
        if not isinstance(raw, dict):
            return None
        text, reason, tokens = (
            raw.get("text"),
            raw.get("finish_reason"),
            raw.get("completion_tokens"),
        )
        if not isinstance(text, str) or reason not in _FINISH_REASONS or not _is_count(tokens):
            return None
        choices.append(Choice(text, reason, tokens))
    return Completion(tuple(choices), prompt_tokens=prompt_tokens, cached=True, extra=extra)


def _entry_bytes(key: str, model_id: str, completion: Completion) -> bytes:
    extra = completion.extra
    try:
        json.dumps(extra, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        extra = {}  # extras that are not plain JSON are left out of the entry
    entry = {
        "format": CACHE_FORMAT,
        "key": key,
        "model_id": model_id,
        "prompt_tokens": completion.prompt_tokens,
        "choices": [
            {
                "text": c.text,
                "finish_reason": c.finish_reason,
                "completion_tokens": c.completion_tokens,
            }
            for c in completion.choices
        ],
        "extra": extra,
    }
    # ASCII escapes keep any text (even lone surrogates from a tokenizer) round-trippable.
    return json.dumps(entry, ensure_ascii=True, sort_keys=True, indent=1).encode() + b"\n"


class CachedBackend:
    """``inner`` with a disk cache in ``cache_dir`` (created on first write). Same interface
    as any backend; ``model_id`` and ``settings`` are the inner backend's; :attr:`stats` counts
    hits, misses, writes and ignored entries."""

    def __init__(self, inner: Backend, cache_dir: str | Path) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.cache_dir = Path(cache_dir)
        self.stats = CacheStats()

    @property
    def settings(self) -> dict[str, Any]:
        return self.inner.settings

    def key(self, request: Request, sampling: Sampling) -> str:
        """The cache key of ``request`` under ``sampling`` (see :func:`cache_key`)."""
        return cache_key(self.inner.model_id, self.inner.settings, request, sampling)

    def entry_path(self, key: str) -> Path:
        """Where the entry of ``key`` lives: ``cache_dir/<key[:2]>/<key>.json``."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a cache key: {key!r}")
        return self.cache_dir / key[:2] / f"{key}.json"

    def _load(self, key: str, n: int) -> Completion | None:
        path = self.entry_path(key)
        try:
            if path.parent.is_symlink():
                raise OSError(f"symlinked cache folder: {path.parent}")
            data = _read_bytes(path)
        except OSError:
            self.stats.corrupt += 1
            return None
        if data is None:
            return None
        completion = _parse_entry(data, key, self.inner.model_id, n)
        if completion is None:
            self.stats.corrupt += 1
        return completion

    def _store(self, key: str, completion: Completion) -> None:
        path = self.entry_path(key)
        try:
            if path.parent.is_symlink():
                raise OSError(f"symlinked cache folder: {path.parent}")
            atomic_write_bytes(path, _entry_bytes(key, self.inner.model_id, completion))
        except OSError:
            self.stats.write_errors += 1  # the answer is still returned; only reuse is lost
        else:
            self.stats.writes += 1

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]:
        """Answers from disk where a valid entry exists; every other request goes to the inner
        backend in one ``generate`` call (identical requests once), in order. Good answers with
        ``sampling.n`` choices are written back; failures are returned but never stored."""
        keys = [self.key(r, sampling) for r in requests]
        out: list[Completion | None] = [None] * len(requests)
        pending: dict[str, list[int]] = {}
        for i, key in enumerate(keys):
            if key in pending:
                pending[key].append(i)
                continue
            hit = self._load(key, sampling.n)
            if hit is not None:
                out[i] = hit
                self.stats.hits += 1
            else:
                pending[key] = [i]
        hits = sum(c is not None for c in out)
        if hits and progress is not None:
            progress(hits)
        if pending:
            todo = list(pending)
            self.stats.misses += sum(len(pending[k]) for k in todo)
            answers = self.inner.generate(
                [requests[pending[k][0]] for k in todo], sampling, progress
            )
            if len(answers) != len(todo):
                reason = f"backend returned {len(answers)} completions for {len(todo)} requests"
                answers = [Completion.failed(reason)] * len(todo)
            duplicates = 0
            for key, answer in zip(todo, answers, strict=True):
                if answer.ok and len(answer.choices) == sampling.n:
                    self._store(key, answer)
                for i in pending[key]:
                    out[i] = answer
                duplicates += len(pending[key]) - 1
            if duplicates and progress is not None:
                progress(duplicates)
        return [c if c is not None else Completion.failed("internal: no answer") for c in out]

    def close(self) -> None:
        self.inner.close()
