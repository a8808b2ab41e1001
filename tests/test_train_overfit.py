"""The whole training path learns: the tiny random Qwen2.5-VL overfits 32 vst samples (single
images, multi-image, videos, multi-turn) on CPU through vst's data, encoding, loss masks, packing
and trainer, and greedy decoding then gives back their answers exactly (the last answer turn of
each, asked with the earlier turns as given, as `vst predict` asks)."""

from __future__ import annotations

import json

import pytest

from vst.engine.writer import iter_rows, list_shards
from vst.models.backends import Sampling, open_backend
from vst.models.samples import sample_chat, sample_request
from vst.train.config import parse_train_config
from vst.train.examples import TrainExample
from vst.train.trainer import build_trainer


def _last_answer(row: dict) -> str:
    return [m for m in row["messages"] if m["role"] == "assistant"][-1]["content"][0]["text"]


def _chosen(run) -> list[dict]:
    """32 samples with short answers, at most 3 per task, in shard order."""
    chosen, per_task = [], {}
    for shard in list_shards(run):
        for row in iter_rows(shard):
            if len(_last_answer(row)) > 20 or per_task.get(row["task"], 0) >= 3:
                continue
            per_task[row["task"]] = per_task.get(row["task"], 0) + 1
            chosen.append(row)
    return chosen[:32]


@pytest.mark.slow
def test_tiny_model_overfits_32_samples_and_reproduces_their_answers(
    all_tasks_run, tiny_model_dir, tmp_path
):
    rows = _chosen(all_tasks_run)
    assert len(rows) == 32
    kinds = {r["scenario"] for r in rows}
    assert kinds == {"single_image", "multi_image", "video"}
    assert any(sum(m["role"] == "assistant" for m in r["messages"]) > 1 for r in rows)
    examples = []
    for row in rows:
        chat = sample_chat(row)
        examples.append(TrainExample(row["id"], "vst", chat.messages, chat.images, chat.videos))
    out = tmp_path / "overfit"
    config = parse_train_config(
        {
            "stage": "sft",
            "model": str(tiny_model_dir),
            "output_dir": str(out),
            "data": [{"kind": "vst", "path": str(all_tasks_run)}],
            "learning_rate": 5e-3,
            "vision_learning_rate": 5e-4,
            "warmup_ratio": 0.05,
            # packed: one planned row of up to 2,048 tokens (a handful of examples) per step
            "global_batch_size": 1,
            "rows_per_device": 1,
            "max_length": 2048,
            "max_steps": 200,
            "packing": True,
            "bf16": False,
            "gradient_checkpointing": False,
            "attn_implementation": "sdpa",
            "use_cpu": True,
            "save_steps": 1000,
            # small pictures keep the CPU steps short; the same limits are used to ask
            "min_pixels": 3136,
            "max_pixels": 12544,
            "video_min_pixels": 784,
            "video_max_pixels": 3136,
        }
    )
    limits = config.pixel_limits()
    requests = [sample_request(r, system="plain").request for r in rows]
    answers = [_last_answer(r) for r in rows]

    before = open_backend(tiny_model_dir, limits=limits, batch_size=8)
    untrained = before.generate(requests, Sampling(max_tokens=24))
    assert sum(c.text == a for c, a in zip(untrained, answers, strict=True)) == 0

    trainer = build_trainer(config, examples)
    trainer.train()
    trainer.save_model(str(out))
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    losses = [m["loss"] for m in metrics]
    # planned rows: real tokens over (rows x max_length), one row per step
    fills = [m["real_tokens"] / 2048 for m in metrics]
    assert [m["row_fill"] for m in metrics] == pytest.approx(fills)
    assert losses[0] > 5.0 and max(losses[-5:]) < 0.1, losses[-5:]

    after = open_backend(out, limits=limits, batch_size=8)
    trained = after.generate(requests, Sampling(max_tokens=24))
    exact = sum(c.text == a for c, a in zip(trained, answers, strict=True))
    assert exact >= 29, [(c.text, a) for c, a in zip(trained, answers, strict=True) if c.text != a]
