"""vst.train.planning: packed rows planned over the mix, the lengths cache, the batch sampler,
the collator packing rows as given, and the trainer's planned data loader (resume included)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch

from test_train_trainer import SMALL, _examples, _KillAt, _KilledError, _write_shards
from vst.models.processor import load_processor
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT
from vst.models.vision import PixelLimits
from vst.train import planning
from vst.train.collate import VLMCollator
from vst.train.config import ConfigError, parse_train_config
from vst.train.data import mix, source_from_dict
from vst.train.encode import encode_example, encoded_length
from vst.train.metrics import read_metrics
from vst.train.packing import first_fit_decreasing
from vst.train.planning import (
    LENGTHS_FILE,
    RowBatchSampler,
    draw_keys,
    keep_own_shards,
    measure_lengths,
    plan_rows,
    too_long,
)
from vst.train.trainer import build_trainer, run_training

LIMITS = PixelLimits(min_pixels=3136, max_pixels=3136, video_min_pixels=3136, video_max_pixels=3136)
"""SMALL's pixel limits (56 x 56 pictures: 4 image tokens each)."""


# -- plan_rows -------------------------------------------------------------------------------


def test_plan_rows_by_hand():
    lengths = [5, 9, 3, 7, 2, 12, 4, 13]
    # FFD at 12 (longest first): 12 -> A; 9 -> B; 7 -> C; 5 -> C (room 5); 4 -> D (B has 3);
    # 3 -> B; 2 -> D. The 13-token example does not fit anywhere: left out.
    rows = plan_rows(lengths, 12, seed=0)
    assert sorted(rows) == [[0, 3], [1, 2], [4, 6], [5]]
    assert too_long(lengths, 12) == [7]
    # windows of 3 consecutive examples: [5, 9, 3] -> [9, 3] [5]; [7, 2, 12] -> [12] [7, 2];
    # [4, 13] -> [4] (13 left out)
    rows = plan_rows(lengths, 12, seed=0, window=3)
    assert sorted(rows) == [[0], [1, 2], [3, 4], [5], [6]]
    assert plan_rows([], 12, seed=0) == []
    with pytest.raises(ValueError, match="window must be positive"):
        plan_rows(lengths, 12, seed=0, window=0)


def test_plan_rows_is_deterministic_and_shuffled_by_the_seed():
    rng = np.random.default_rng(7)
    lengths = [int(n) for n in rng.integers(50, 3000, 400)]
    a = plan_rows(lengths, 4096, seed=3)
    assert a == plan_rows(lengths, 4096, seed=3)
    b = plan_rows(lengths, 4096, seed=4)
    assert sorted(a) == sorted(b) and a != b  # the same rows, another order
    # FFD alone opens rows longest first; the plan does not keep that order
    ffd = [list(r) for r in first_fit_decreasing(lengths, 4096).rows]
    assert sorted(ffd) == sorted(a) and ffd != a
    assert sorted(i for row in a for i in row) == list(range(400))
    assert all(sum(lengths[i] for i in row) <= 4096 for row in a)


def _first_fit_by_scan(lengths: list[int], cap: int) -> tuple[tuple[int, ...], ...]:
    """First-fit decreasing the plain way: each example into the first row with room."""
    order = sorted((i for i, n in enumerate(lengths) if n <= cap), key=lambda i: (-lengths[i], i))
    rows: list[list[int]] = []
    room: list[int] = []
    for i in order:
        r = next((r for r, free in enumerate(room) if lengths[i] <= free), len(rows))
        if r == len(rows):
            rows.append([])
            room.append(cap)
        rows[r].append(i)
        room[r] -= lengths[i]
    return tuple(tuple(sorted(row)) for row in rows)


def test_first_fit_decreasing_equals_the_plain_scan():
    # first_fit_decreasing finds the first row with room in a tree (whole mixes of millions)
    rng = np.random.default_rng(11)
    for _ in range(200):
        cap = int(rng.integers(1, 50))
        lengths = [int(n) for n in rng.integers(1, 60, int(rng.integers(0, 40)))]
        assert first_fit_decreasing(lengths, cap).rows == _first_fit_by_scan(lengths, cap)
    lengths = _paper_like_lengths(3000)
    assert first_fit_decreasing(lengths, 16384).rows == _first_fit_by_scan(lengths, 16384)


def _paper_like_lengths(n: int, seed: int = 0) -> list[int]:
    """Token counts shaped like the paper mix at the engine's picture sizes: mostly single
    images (~400 picture tokens + text), multi-image (2-4 pictures), videos (1.5-7k), some
    text-heavy ones, and a few longer than 16,384."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(4, size=n, p=[0.55, 0.25, 0.15, 0.05])
    text = rng.integers(40, 400, n)
    images = np.where(kind == 0, 1, np.where(kind == 1, rng.integers(2, 5, n), 0))
    video = np.where(kind == 2, rng.integers(1500, 7000, n), 0)
    long = np.where(kind == 3, rng.integers(2000, 9000, n), 0)
    lengths = text + 391 * images + video + long
    lengths[:3] = [16385, 20000, 17000]
    return [int(x) for x in lengths]


def test_planned_rows_are_full_on_paper_like_lengths():
    lengths = _paper_like_lengths(3000)
    n = 16384
    for window in (None, 1024):
        rows = plan_rows(lengths, n, seed=0, window=window)
        fills = [sum(lengths[i] for i in row) for row in rows]
        share = sum(fills) / (len(rows) * n)
        assert share >= 0.95, (window, share)
    # what one collator call of 32 examples gives (rows padded to the call's fullest row)
    real = held = 0
    for k in range(0, len(lengths), 32):
        fills = first_fit_decreasing(lengths[k : k + 32], n).fills(lengths[k : k + 32])
        real, held = real + sum(fills), held + len(fills) * max(fills)
    assert real / held < 0.95
    assert sorted(i for row in plan_rows(lengths, n, seed=0) for i in row) == list(range(3, 3000))


# -- the sampler -----------------------------------------------------------------------------


def test_sampler_uses_every_example_once_per_epoch_over_all_processes():
    rng = np.random.default_rng(1)
    lengths = [int(n) for n in rng.integers(100, 2000, 300)] + [5000]  # the last is too long
    r, w = 2, 3
    samplers = [RowBatchSampler(lengths, 4096, r, seed=5, world_size=w, rank=k) for k in range(w)]
    assert samplers[0].skipped == [300]
    assert all(s.rows(e) == plan_rows(lengths, 4096, 5 + e) for s in samplers for e in (0, 3))
    n_rows = samplers[0].num_rows
    assert all(len(s) == -(-n_rows // (r * w)) for s in samplers)
    orders = []
    for epoch in (0, 1):
        rows = plan_rows(lengths, 4096, seed=5 + epoch)
        per_rank = []
        for s in samplers:
            s.set_epoch(epoch)
            batches = list(s)
            assert len(batches) == len(s) and all(len(b) <= r for b in batches)
            per_rank.append(batches)
        # micro-batch k of process p: rows p, p + W, ... of the k-th group of R x W rows
        for k in range(len(samplers[0])):
            group = rows[k * r * w : (k + 1) * r * w]
            for p in range(w):
                assert per_rank[p][k] == [tuple(row) for row in group[p::w]]
        used = [i for batches in per_rank for b in batches for row in b for i in row]
        assert sorted(used) == list(range(300))  # each once, the too-long one never
        orders.append([row for b in per_rank[0] for row in b])
    assert orders[0] != orders[1]  # each epoch has its own order
    # resuming: skip_next(n) starts the next iteration at micro-batch n, once
    s = samplers[1]
    s.set_epoch(1)
    full = list(s)
    s.skip_next(3)
    assert list(s) == full[3:]
    assert list(s) == full
    with pytest.raises(ValueError, match="no example fits"):
        RowBatchSampler([10, 20], 5, 1, seed=0)


def test_each_process_keeps_its_own_rows_through_accelerate():
    from accelerate.data_loader import BatchSamplerShard, prepare_data_loader
    from torch.utils.data import DataLoader

    lengths = [100 + 7 * k for k in range(40)]
    per_rank = []
    for rank in (0, 1):
        sampler = RowBatchSampler(lengths, 1000, 2, seed=0, world_size=2, rank=rank)
        loader = DataLoader(range(40), batch_sampler=sampler, collate_fn=lambda rows: rows)
        prepared = prepare_data_loader(loader, num_processes=2, process_index=rank)
        assert isinstance(prepared.batch_sampler, BatchSamplerShard)  # accelerate re-shards
        assert len(list(prepared.batch_sampler)) < len(sampler)
        keep_own_shards(prepared, sampler)
        assert list(prepared.batch_sampler) == list(sampler)
        per_rank.append(list(sampler))
    assert sorted(i for b in per_rank for rows in b for row in rows for i in row) == list(range(40))


# -- the collator packs rows as given --------------------------------------------------------


def test_collate_rows_packs_exactly_the_given_rows(tiny_model_dir, caplog):
    from transformers import AutoModelForImageTextToText

    proc = load_processor(tiny_model_dir)
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir))
    kw = {"system": PLAIN_SYSTEM_PROMPT, "limits": LIMITS, "rope_index": model.model.get_rope_index}
    ex = _examples(6)
    enc = [encode_example(proc, e, **kw) for e in ex]
    lens = [e.length for e in enc]  # [56, 56, 82, 53, 56, 56]
    collator = VLMCollator(proc, max_length=200, **kw)
    # FFD would put the 82-token example first; the plan's rows are kept, in their order
    rows = [[ex[5], ex[0], ex[2]], [ex[3]], [ex[1], ex[4]]]
    batch = collator.collate_rows(rows)
    ids = batch["input_ids"]
    assert ids.shape == (3, lens[5] + lens[0] + lens[2])
    want = torch.cat([enc[5].input_ids, enc[0].input_ids, enc[2].input_ids])
    assert torch.equal(ids[0], want)
    assert torch.equal(ids[1, : lens[3]], enc[3].input_ids)
    assert torch.equal(ids[2, : lens[1] + lens[4]], torch.cat([enc[1].input_ids, enc[4].input_ids]))
    # text positions restart per example
    pos = batch["position_ids"][0, 0]
    assert pos[lens[5]].item() == 0 and pos[lens[5] + lens[0]].item() == 0
    assert batch["vst_stats"]["samples"] == 6 and batch["vst_stats"]["real_tokens"] == sum(lens)
    assert batch["image_grid_thw"].shape[0] + batch["video_grid_thw"].shape[0] == 6
    # a row that does not fit (lengths unlike the plan's) is packed again, with a warning
    with caplog.at_level(logging.WARNING, logger="vst.train.collate"):
        batch = collator.collate_rows([[ex[0], ex[1], ex[2], ex[4]]])
    assert "packed again" in caplog.text
    assert batch["input_ids"].shape[0] == 2 and batch["vst_stats"]["samples"] == 4
    # no rows (a process's share of the last group can be empty): one pad token, nothing trained
    empty = collator.collate_rows([])
    assert empty["vst_stats"]["samples"] == 0 and (empty["labels"] == -100).all()


# -- lengths and their cache -----------------------------------------------------------------


def test_lengths_cache_keys_settings_and_reuse(tiny_model_dir, tmp_path, monkeypatch):
    proc = load_processor(tiny_model_dir)
    data = _write_shards(tmp_path / "ds", 6)
    examples, _ = mix([source_from_dict({"kind": "vst", "path": str(data), "weight": 2}, "x")])
    keys = draw_keys(examples)
    name = examples.sources[0].name
    assert keys == [f"{name}#{i}" for _, i in examples.plan()]
    assert len(keys) == 12 and len(set(keys)) == 6
    assert draw_keys(_examples(2)) == ["t/s0", "t/s1"]
    cache = tmp_path / "run" / LENGTHS_FILE
    calls = []

    def counting(processor, example, **kw):
        calls.append(example.id)
        return encoded_length(processor, example, **kw)

    monkeypatch.setattr(planning, "encoded_length", counting)
    kw = {"system": PLAIN_SYSTEM_PROMPT, "limits": LIMITS, "max_length": 512, "cache": cache}
    lengths = measure_lengths(examples, proc, **kw)
    expected = [
        encoded_length(proc, e, system=PLAIN_SYSTEM_PROMPT, limits=LIMITS) for e in examples
    ]
    assert lengths == expected and len(calls) == 6  # each distinct example measured once
    saved = json.loads(cache.read_text())
    assert saved["version"] == 1 and len(saved["settings"]) == 64
    assert sorted(saved["lengths"]) == sorted(set(keys))
    # the same settings again: read back, nothing measured (nothing decoded)
    calls.clear()
    assert measure_lengths(examples, proc, **kw) == expected and calls == []
    # another system prompt, pixel budget or max_length: measured again
    for change in (
        {"system": THINK_SYSTEM_PROMPT},
        {"limits": PixelLimits()},
        {"max_length": 1024},
    ):
        calls.clear()
        again = measure_lengths(examples, proc, **{**kw, **change})
        assert len(calls) == 6
        if "system" in change:  # the longer thinking prompt
            assert all(a > b for a, b in zip(again, expected, strict=True))
    # an unreadable cache is measured again and replaced
    cache.write_text("{not json", encoding="utf-8")
    calls.clear()
    assert measure_lengths(examples, proc, **kw) == expected and len(calls) == 6
    assert json.loads(cache.read_text())["lengths"] == saved["lengths"]
    # workers measure the same lengths
    assert measure_lengths(examples, proc, **{**kw, "cache": None}, workers=2) == expected


def _measure_in_process(rank: int, tiny: str, folder: str) -> None:
    """One of two gloo processes: measure with ``distributed=True``, write what it saw."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{folder}/pg", rank=rank, world_size=2)
    try:
        calls = []
        real = planning.encoded_length
        planning.encoded_length = lambda *a, **k: calls.append(1) or real(*a, **k)
        out = {}
        for run in (0, 1):  # the second time the cache (written by process 0) has them all
            lengths = measure_lengths(
                _examples(8),
                load_processor(tiny),
                system=PLAIN_SYSTEM_PROMPT,
                limits=LIMITS,
                max_length=512,
                cache=Path(folder) / LENGTHS_FILE,
                distributed=True,
            )
            out[run] = {"lengths": lengths, "measured": len(calls)}
        Path(folder, f"rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def test_processes_measure_their_shares_and_share_the_lengths(tiny_model_dir, tmp_path):
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    procs = [
        ctx.Process(target=_measure_in_process, args=(r, str(tiny_model_dir), str(tmp_path)))
        for r in (0, 1)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    seen = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    proc = load_processor(tiny_model_dir)
    want = [
        encoded_length(proc, e, system=PLAIN_SYSTEM_PROMPT, limits=LIMITS) for e in _examples(8)
    ]
    for s in seen:
        assert s["0"]["lengths"] == s["1"]["lengths"] == want
    # each process measured half of the 8 examples, and nothing the second time
    assert [s["0"]["measured"] for s in seen] == [4, 4]
    assert [s["1"]["measured"] for s in seen] == [4, 4]
    saved = json.loads((tmp_path / LENGTHS_FILE).read_text())["lengths"]
    assert saved == {f"t/{e.id}": n for e, n in zip(_examples(8), want, strict=True)}


# -- config ----------------------------------------------------------------------------------


def _config(model: Path, out: Path, data: Path | None = None, **kw):
    base = {
        "stage": "sft",
        "model": str(model),
        "output_dir": str(out),
        "data": [{"kind": "vst", "path": str(data or out)}],
        "learning_rate": 1e-3,
        "vision_learning_rate": 1e-4,
        **SMALL,
    }
    return parse_train_config({**base, **kw})


def test_config_counts_rows_with_packing(tiny_model_dir, tmp_path):
    cfg = _config(tiny_model_dir, tmp_path, global_batch_size=128, rows_per_device=2)
    assert cfg.micro_batch() == ("rows_per_device", 2)
    assert cfg.accumulation(8) == 8 and cfg.accumulation(1) == 64
    with pytest.raises(ConfigError, match="not a multiple of rows_per_device 2 x 3 process"):
        cfg.accumulation(3)
    with pytest.raises(ConfigError, match="per_device_batch_size \\(4\\) counts examples"):
        _config(tiny_model_dir, tmp_path, global_batch_size=8, per_device_batch_size=4)
    with pytest.raises(ConfigError, match="rows_per_device and plan_window are for packing"):
        _config(tiny_model_dir, tmp_path, global_batch_size=8, packing=False, plan_window=64)
    with pytest.raises(ConfigError, match="plan_window: Input should be greater than 0"):
        _config(tiny_model_dir, tmp_path, global_batch_size=8, plan_window=0)
    padded = _config(
        tiny_model_dir, tmp_path, global_batch_size=8, packing=False, per_device_batch_size=4
    )
    assert padded.micro_batch() == ("per_device_batch_size", 4) and padded.accumulation(1) == 2


# -- the trainer's data loader ---------------------------------------------------------------


def test_trainer_micro_batches_are_the_planned_rows(tiny_model_dir, tmp_path):
    out = tmp_path / "o"
    cfg = _config(
        tiny_model_dir, out, global_batch_size=4, rows_per_device=2, max_length=150, seed=3
    )
    examples = _examples(8)  # 56, 56, 82, 53, ... tokens: two or three per row of 150
    trainer = build_trainer(cfg, examples)
    loader = trainer.get_train_dataloader()
    lengths = [
        encoded_length(load_processor(tiny_model_dir), e, system=PLAIN_SYSTEM_PROMPT, limits=LIMITS)
        for e in examples
    ]
    assert trainer.example_lengths == lengths
    rows = plan_rows(lengths, 150, seed=3)
    assert len(rows) >= 3 and len(loader) == -(-len(rows) // 2)
    got = list(loader)
    assert len(got) == len(loader)
    collator = trainer.data_collator
    for k, batch in enumerate(got):
        want = collator.collate_rows(
            [[examples[i] for i in row] for row in rows[2 * k : 2 * k + 2]]
        )
        assert torch.equal(batch["input_ids"], want["input_ids"])
        assert torch.equal(batch["position_ids"], want["position_ids"])
        assert batch["vst_stats"] == want["vst_stats"]
    assert sum(b["vst_stats"]["samples"] for b in got) == 8
    saved = json.loads((out / LENGTHS_FILE).read_text())
    assert sorted(saved["lengths"].values()) == sorted(lengths)
    with pytest.raises(ConfigError, match="max_length: no example fits in max_length 50"):
        build_trainer(cfg.model_copy(update={"max_length": 50}), examples).get_train_dataloader()
    # the Trainer's epochs reach the sampler: epoch 1 is the plan with seed 3 + 1
    loader.set_epoch(1)
    first = next(iter(loader))
    rows1 = plan_rows(lengths, 150, seed=4)
    want = collator.collate_rows([[examples[i] for i in row] for row in rows1[:2]])
    assert torch.equal(first["input_ids"], want["input_ids"])


@pytest.mark.slow
def test_resume_mid_epoch_with_planned_rows(tiny_model_dir, tmp_path, monkeypatch):
    data = _write_shards(tmp_path / "ds", 8)  # 61 tokens each: rows of 3, 3 and 2 at 192
    kw = {"max_steps": 5, "save_steps": 2, "global_batch_size": 1, "max_length": 192}
    full = run_training(_config(tiny_model_dir, tmp_path / "full", data, **kw))
    cfg = _config(tiny_model_dir, tmp_path / "killed", data, **kw)
    lengths = [61] * 8
    # 3 steps per epoch: checkpoint-4 is one step into epoch 1, whose rows differ from epoch 0's
    assert len(plan_rows(lengths, 192, 0)) == 3
    assert plan_rows(lengths, 192, 1)[1] != plan_rows(lengths, 192, 0)[1]
    with pytest.raises(_KilledError):
        run_training(cfg, callbacks=[_KillAt(4)])
    assert (tmp_path / "killed" / LENGTHS_FILE).is_file()
    calls = []
    monkeypatch.setattr(planning, "encoded_length", lambda *a, **k: calls.append(1) or 0)
    resumed = run_training(cfg, resume=True)
    assert calls == []  # the lengths came from the cache
    assert resumed.resumed_from == tmp_path / "killed" / "checkpoint-4"
    rows_full = read_metrics(full.metrics)
    rows_resumed = read_metrics(resumed.metrics)
    assert [r["step"] for r in rows_resumed] == [1, 2, 3, 4, 5]
    assert sorted(r["samples"] for r in rows_full[:3]) == [2, 3, 3]  # one planned row a step
    assert [r["loss"] for r in rows_resumed] == [r["loss"] for r in rows_full]
    assert [r["samples"] for r in rows_resumed] == [r["samples"] for r in rows_full]
    from safetensors.torch import load_file

    a = load_file(full.output_dir / "model.safetensors")
    b = load_file(resumed.output_dir / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)
