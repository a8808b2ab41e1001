"""Packed rows planned over the whole mix: token lengths, the row plan, and the batch sampler.

The collator packs only the examples of one call; planning the rows over the whole mix (or over
large windows of it) fills rows of ``max_length`` tokens almost completely (99.3% real tokens on
the paper mix at 16,384, ``benchmarks/train.py``). The steps:

1. :func:`measure_lengths`: :func:`vst.train.encode.encoded_length` of every example of the mix
   (picture sizes only, no pixel work; but a lazy mix decodes an example when it is indexed, so
   this pass reads every example once; with several processes each measures its share).
   Lengths are cached as JSON (:class:`LengthCache`) keyed
   by each draw of the mix (``source#index``; ``source/id`` for a plain list of examples) under
   a hash of everything a length depends on (processor files, pixel limits, system prompt,
   ``max_length``): a resumed run reads them back instead of decoding the mix again.
2. :func:`plan_rows`: first-fit decreasing (:mod:`vst.train.packing`) over the whole list or
   over consecutive windows of the mix order, then the rows shuffled with the seed (FFD opens
   rows longest first). Examples longer than ``max_length`` are left out (:func:`too_long`).
3. :class:`RowBatchSampler`: one micro-batch = ``rows_per_device`` planned rows. Epoch ``e``
   uses the plan with seed ``seed + e`` (the same rows, FFD depends on the lengths only, in a new
   order; so every epoch has the same number of micro-batches). With ``W`` processes the
   shuffled rows are taken in groups of ``rows_per_device x W``: group ``k`` is micro-batch
   ``k`` of every process, and process ``r`` takes rows ``r, r + W, r + 2W, ...`` of the group.
   The last group may be short: some processes then get fewer rows (or none: an empty batch,
   which trains nothing but keeps the processes in step). Every planned row is used exactly
   once per epoch, none twice.

The trainer's data loader (:meth:`vst.train.trainer.VstTrainer.get_train_dataloader`) reads
the rows' examples through :class:`RowDataset` and gives them to the collator row by row
(:meth:`vst.train.collate.VLMCollator.collate_rows`), which packs them exactly as planned.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
from torch.utils.data import Dataset, Sampler

from vst.models.vision import PixelLimits
from vst.train.encode import encoded_length
from vst.train.examples import TrainExample
from vst.train.packing import first_fit_decreasing

__all__ = [
    "LENGTHS_FILE",
    "LengthCache",
    "RowBatchSampler",
    "RowDataset",
    "draw_keys",
    "keep_own_shards",
    "length_settings",
    "measure_lengths",
    "plan_rows",
    "too_long",
]

log = logging.getLogger(__name__)

LENGTHS_FILE = "row_lengths.json"
"""The lengths cache's file name in a run's ``output_dir``."""


# -- the plan --------------------------------------------------------------------------------


def too_long(lengths: Sequence[int], max_length: int) -> list[int]:
    """Indices of the examples longer than ``max_length`` (left out of every plan)."""
    return [i for i, n in enumerate(lengths) if n > max_length]


def plan_rows(
    lengths: Sequence[int], max_length: int, seed: int, window: int | None = None
) -> list[list[int]]:
    """Rows of example indices (ascending within a row), each holding at most ``max_length``
    tokens: first-fit decreasing over all of ``lengths`` (``window`` None) or over each run of
    ``window`` consecutive examples, then the rows in a random order drawn from ``seed``.
    Examples longer than ``max_length`` are in no row (:func:`too_long`). Deterministic."""
    return _shuffled(_packed_rows(lengths, max_length, window), seed)


def _packed_rows(lengths: Sequence[int], max_length: int, window: int | None) -> list[list[int]]:
    """The rows of :func:`plan_rows` before shuffling (FFD's order, window by window)."""
    if window is not None and window < 1:
        raise ValueError(f"window must be positive, got {window}")
    size = len(lengths) if window is None else window
    rows: list[list[int]] = []
    for start in range(0, len(lengths), max(size, 1)):
        packed = first_fit_decreasing(lengths[start : start + size], max_length)
        rows += [[start + i for i in row] for row in packed.rows]
    return rows


def _shuffled(rows: list[list[int]], seed: int) -> list[list[int]]:
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    order = np.random.default_rng(seed).permutation(len(rows))
    return [rows[k] for k in order]


# -- lengths and their cache -----------------------------------------------------------------


def draw_keys(examples: Sequence[TrainExample]) -> list[str]:
    """A key per example of ``examples`` that names it without decoding it when possible: for a
    mix (:class:`vst.train.data.MixedExamples`, which has ``plan()``) ``source#index`` of each
    draw; otherwise ``source/id`` of each example (read from the examples)."""
    plan = getattr(examples, "plan", None)
    if callable(plan):
        return [f"{name}#{index}" for name, index in plan()]
    return [f"{e.source}/{e.id}" for e in examples]


def _processor_fingerprint(processor: Any) -> str:
    """A hash of what token counts depend on in ``processor``: chat template, tokenizer (its
    whole serialised form when available), patch, merge and temporal patch sizes."""
    h = hashlib.sha256()
    tok = processor.tokenizer
    backend = getattr(tok, "backend_tokenizer", None)
    vocab = backend.to_str() if backend is not None else json.dumps(sorted(tok.get_vocab().items()))
    image = processor.image_processor
    video = getattr(processor, "video_processor", None)
    parts = [
        str(getattr(processor, "chat_template", None)),
        vocab,
        str((image.patch_size, image.merge_size)),
        str(getattr(video, "temporal_patch_size", None)),
    ]
    for part in parts:
        h.update(part.encode("utf-8"))
        h.update(b"\0")
    return h.hexdigest()


def length_settings(
    processor: Any, limits: PixelLimits, system: str | None, max_length: int
) -> dict[str, Any]:
    """What the lengths depend on, as JSON-able values (hashed into the cache key)."""
    return {
        "processor": _processor_fingerprint(processor),
        "limits": asdict(limits),
        "system": system,
        "max_length": int(max_length),
    }


class LengthCache:
    """Token lengths by draw key in ``path`` (JSON: ``{"version", "settings": sha256,
    "lengths": {key: n}}``). A file made under other settings, or unreadable, is ignored (and
    replaced on :meth:`save`)."""

    VERSION = 1

    def __init__(self, path: Path, settings: dict[str, Any]) -> None:
        self.path = Path(path)
        text = json.dumps(settings, sort_keys=True)
        self.key = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.lengths: dict[str, int] = {}
        self.loaded = False
        if not self.path.is_file():
            return
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            ok = data.get("version") == self.VERSION and data.get("settings") == self.key
            lengths = data["lengths"] if ok else {}
            if not all(isinstance(v, int) and v > 0 for v in lengths.values()):
                raise ValueError("a length is not a positive integer")
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("lengths cache %s unreadable (%s): measuring again", self.path, exc)
            return
        if not ok:
            log.info("lengths cache %s was made under other settings: measuring again", self.path)
            return
        self.lengths = {str(k): int(v) for k, v in lengths.items()}
        self.loaded = True

    def save(self) -> None:
        """Write the cache atomically (a temporary file renamed over the old one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        data = {"version": self.VERSION, "settings": self.key, "lengths": self.lengths}
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.path)


class _Lengths(Dataset):
    """``length(examples[i])`` for the indices asked (for a data loader's worker processes)."""

    def __init__(self, examples: Sequence[TrainExample], indices: list[int], length: Any):
        self.examples = examples
        self.indices = indices
        self.length = length

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> int:
        return int(self.length(self.examples[self.indices[k]]))


def _process_group() -> tuple[int, int]:
    """``(rank, world size)`` of the initialised ``torch.distributed`` group, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def measure_lengths(
    examples: Sequence[TrainExample],
    processor: Any,
    *,
    system: str | None,
    limits: PixelLimits,
    max_length: int,
    cache: Path | None = None,
    workers: int = 0,
    distributed: bool = False,
) -> list[int]:
    """The token length of every example (:func:`~vst.train.encode.encoded_length`), in order;
    read from the JSON ``cache`` when it holds them under the same settings, else measured
    (each example decoded once; ``workers`` > 0 measures in that many worker processes) and
    written back to ``cache``.

    ``distributed`` (with ``torch.distributed`` initialised; every process must call): process
    0 reads the cache and sends what it holds to all, each process measures every ``W``-th of
    the missing examples, all processes get all lengths, and process 0 writes the cache."""
    import torch.distributed as dist
    from torch.utils.data import DataLoader

    rank, world = _process_group() if distributed else (0, 1)
    keys = draw_keys(examples)
    store = None
    if cache is not None and rank == 0:
        store = LengthCache(cache, length_settings(processor, limits, system, max_length))
    known = store.lengths if store is not None else {}
    if world > 1:
        box: list[Any] = [known]
        dist.broadcast_object_list(box, src=0)
        known = box[0]
    todo = sorted({k: i for i, k in reversed(list(enumerate(keys))) if k not in known}.values())
    if not todo:
        return [known[k] for k in keys]
    mine = todo[rank::world]

    def length(example: TrainExample) -> int:
        return encoded_length(processor, example, system=system, limits=limits)

    loader = DataLoader(
        _Lengths(examples, mine, length), batch_size=64, num_workers=workers, collate_fn=list
    )
    measured = [n for batch in loader for n in batch]
    fresh = {keys[i]: n for i, n in zip(mine, measured, strict=True)}
    if world > 1:
        parts: list[Any] = [None] * world
        dist.all_gather_object(parts, fresh)
        fresh = {k: n for part in parts for k, n in part.items()}
    known = {**known, **fresh}
    if store is not None:
        store.lengths = known
        store.save()
    return [known[k] for k in keys]


# -- sampling --------------------------------------------------------------------------------


class RowDataset(Dataset):
    """``dataset[row]`` for a row of example indices (a tuple) is the tuple of those examples;
    ``len`` is the number of examples."""

    def __init__(self, examples: Sequence[TrainExample]) -> None:
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, row: tuple[int, ...]) -> tuple[TrainExample, ...]:
        return tuple(self.examples[i] for i in row)


class RowBatchSampler(Sampler[list[tuple[int, ...]]]):
    """Micro-batches of planned rows for process ``rank`` of ``world_size`` (module docstring):
    each item is a list of at most ``rows_per_device`` rows, each row a tuple of example
    indices. ``set_epoch`` picks the epoch's plan; ``skip_next(n)`` makes the next iteration
    start at micro-batch ``n`` (resuming mid-epoch without decoding the skipped examples)."""

    def __init__(
        self,
        lengths: Sequence[int],
        max_length: int,
        rows_per_device: int,
        seed: int,
        *,
        window: int | None = None,
        world_size: int = 1,
        rank: int = 0,
    ) -> None:
        if rows_per_device < 1 or world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(
                f"rows_per_device {rows_per_device}, world_size {world_size}, rank {rank}: "
                "need rows_per_device >= 1 and 0 <= rank < world_size"
            )
        self.lengths = list(lengths)
        self.max_length = max_length
        self.rows_per_device = rows_per_device
        self.seed = seed
        self.window = window
        self.world_size = world_size
        self.rank = rank
        self.epoch = 0
        self._skip = 0
        self.skipped = too_long(self.lengths, max_length)
        self._rows = _packed_rows(self.lengths, max_length, window)  # the same every epoch
        self.num_rows = len(self._rows)
        if not self.num_rows:
            raise ValueError(f"no example fits in max_length {max_length}")

    def rows(self, epoch: int) -> list[list[int]]:
        """The planned rows of ``epoch`` in their shuffled order (all processes):
        ``plan_rows(lengths, max_length, seed + epoch, window)``."""
        return _shuffled(self._rows, self.seed + epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def skip_next(self, batches: int) -> None:
        """Start the next iteration at micro-batch ``batches`` (once)."""
        self._skip = int(batches)

    def __len__(self) -> int:
        return math.ceil(self.num_rows / (self.rows_per_device * self.world_size))

    def __iter__(self) -> Iterator[list[tuple[int, ...]]]:
        rows = self.rows(self.epoch)
        per_step = self.rows_per_device * self.world_size
        skip, self._skip = self._skip, 0
        for k in range(skip, len(self)):
            group = rows[k * per_step : (k + 1) * per_step]
            yield [tuple(row) for row in group[self.rank :: self.world_size]]


def keep_own_shards(loader: Any, sampler: RowBatchSampler) -> Any:
    """``loader`` as ``accelerator.prepare`` returned it, with accelerate's
    ``BatchSamplerShard`` around ``sampler`` (several processes) made a passthrough:
    ``sampler`` already yields only this process's rows, sharding it again would drop rows."""
    shard = getattr(loader, "batch_sampler", None)
    if shard is not sampler and getattr(shard, "batch_sampler", None) is sampler:
        shard.num_processes = 1
        shard.process_index = 0
    return loader
