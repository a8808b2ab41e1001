"""vst train grpo: the paper's preset and config errors, RL prompts from the data mix (system
prompt per mode, pictures, skips), the reward recorder (truncation), the online filter inside
the trainer (dropped groups refilled, counts logged, filtering on accuracy, a short batch
filled), every reward mode reaching the reward with its spec, resume after a kill, the CLI.

Runs use the tiny random Qwen2.5-VL on CPU; the reward is scripted where the test needs known
accuracies (a random model's completions are not).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from transformers import TrainerCallback
from typer.testing import CliRunner

from test_train_trainer import _image
from vst.cli import app
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import iter_rows, list_shards, shard_name, write_shard
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.rewards import compute_reward
from vst.train.config import ConfigError
from vst.train.grpo import (
    EpochRepeatSampler,
    build_grpo_trainer,
    grpo_arguments,
    load_rl_prompts,
    run_grpo,
    vision_token_ids,
)
from vst.train.grpo_config import GRPO_PRESET, load_grpo_config, parse_grpo_config
from vst.train.metrics import read_metrics
from vst.train.rl_reward import RolloutScorer

SMALL = {
    "bf16": False,
    "gradient_checkpointing": False,
    "use_cpu": True,
    "attn_implementation": "sdpa",
    "min_pixels": 3136,
    "max_pixels": 3136,
    "max_length": 1024,
    "max_completion_length": 4,
}
"""Settings of every CPU GRPO run (56 x 56 pictures: 4 image tokens; 4-token completions)."""


def _config(model: Path, out: Path, data: list[dict[str, Any]], **kw: Any):
    base = {
        "stage": "grpo",
        "model": str(model),
        "output_dir": str(out),
        "data": data,
        "learning_rate": 1e-3,
        "global_batch_size": 4,
        "num_generations": 2,
        "per_device_batch_size": 4,
        "save_steps": 1000,
        **SMALL,
    }
    return parse_grpo_config({**base, **kw})


def _write(folder: Path, samples: list[Sample]) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    write_shard(data / shard_name(0, hashlib.sha256(b"0").hexdigest()), samples, "PNG")
    return folder


def _mcq_shard(folder: Path, letters: str) -> Path:
    """One single-image multiple-choice sample per letter (the letter is the ground truth)."""
    samples = [
        Sample(
            task=f"t_{letter}",
            scenario="single_image",
            messages=[user(None, f"Q{k}: which?\nA. a\nB. b\nC. c\nD. d"), assistant(letter)],
            images=[_image(k)],
            answer=letter,
            reward={"mode": "mcq", "ground_truth": letter},
        )
        for k, letter in enumerate(letters)
    ]
    return _write(folder, samples)


class ScriptedScore:
    """Accuracy scripted by the ground-truth letter, whatever the completion: ``A`` always
    right; ``B`` always wrong but well formatted (total 0.5 everywhere); ``C`` always wrong with
    the format alternating (total varies, accuracy does not); ``D`` right and wrong in turn.
    Records every spec it is asked about, in call order."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.turn = 0

    def __call__(self, response: str, spec: Any) -> dict[str, Any]:
        letter = json.loads(spec)["ground_truth"]
        self.calls.append(letter)
        self.turn += 1
        odd = self.turn % 2
        acc = {"A": 1.0, "B": 0.0, "C": 0.0, "D": float(odd)}[letter]
        fmt = float(odd) if letter == "C" else 1.0
        return {"accuracy": acc, "format": fmt, "checkable": True}


# -- config ----------------------------------------------------------------------------------
def test_preset_is_the_papers_stage_3(tiny_model_dir, tmp_path):
    cfg = parse_grpo_config(
        {"stage": "grpo", "model": str(tiny_model_dir), "output_dir": str(tmp_path), "data": [{}]}
    )
    assert cfg.bf16 and not cfg.use_cpu
    assert (cfg.num_generations, cfg.temperature, cfg.top_p) == (5, 1.0, 1.0)
    assert (cfg.epsilon_low, cfg.epsilon_high, cfg.beta) == (0.2, 0.28, 0.0)
    assert (cfg.learning_rate, cfg.lr_scheduler, cfg.warmup_ratio) == (1e-6, "constant", 0.0)
    assert cfg.vision_learning_rate is None  # the vision tower trains at the same rate
    assert (cfg.global_batch_size, cfg.max_length, cfg.max_completion_length) == (128, 8192, 2048)
    assert (cfg.system, cfg.w_acc, cfg.w_fmt) == ("think", 0.5, 0.5)
    assert (cfg.filter.enabled, cfg.filter.low, cfg.filter.high) == (True, 0.01, 0.99)
    assert cfg.max_prompt_length() == 8192 - 2048
    # 128 prompts x 5 = 640 completions per step: 4 per device x 20 accumulation x 8 GPUs
    assert cfg.batch_plan(8) == (20, 20)
    cpu = cfg.model_copy(update={"bf16": False, "use_cpu": True})  # TRL refuses bf16 on CPU
    args = grpo_arguments(cpu, world_size=1)
    assert (args.num_generations, args.beta, args.epsilon) == (5, 0.0, 0.2)
    assert args.epsilon_high == 0.28 and args.learning_rate == 1e-6
    assert (args.lr_scheduler_type, args.loss_type) == ("constant", "dapo")
    assert args.generation_batch_size == 640
    assert (args.gradient_accumulation_steps, args.steps_per_generation) == (160, 160)
    assert args.max_completion_length == 2048 and args.temperature == 1.0
    assert args.mask_truncated_completions is False and args.use_vllm is False
    assert set(GRPO_PRESET) <= set(type(cfg).model_fields)


def test_rollout_batches_and_vllm_options_reach_trl(tiny_model_dir, tmp_path):
    cfg = parse_grpo_config(
        {
            "stage": "grpo",
            "model": str(tiny_model_dir),
            "output_dir": str(tmp_path),
            "data": [{}],
            "rollout_batch_size": 256,
            "truncated": "mask",
            "use_vllm": True,
            "vllm_mode": "server",
            "vllm_server_base_url": "http://127.0.0.1:8000",
            "bf16": False,
            "use_cpu": True,
        }
    )
    args = grpo_arguments(cfg, world_size=4)
    # 256 prompts x 5 per rollout = 2 optimizer steps of 128 x 5, 4 completions x 4 processes
    assert (args.gradient_accumulation_steps, args.steps_per_generation) == (40, 80)
    # TRL multiplies by the processes it runs on (1 here): 320 completions each on 4 processes
    assert args.generation_batch_size * 4 == 256 * 5
    assert args.use_vllm and args.vllm_mode == "server"
    assert args.vllm_server_base_url == "http://127.0.0.1:8000"
    assert args.vllm_max_model_length == 8192 and args.mask_truncated_completions


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage": "sft"}, "stage: must be grpo"),
        ({"num_generations": 1}, "num_generations"),
        ({"max_completion_length": 9000}, "must be below max_length"),
        ({"rollout_batch_size": 100}, "multiple of global_batch_size"),
        ({"per_device_batch_size": 7}, "per_device_batch_size"),
        ({"filter": {"low": 0.5, "high": 0.4}}, "low (0.5) must be below high"),
        ({"truncated": "drop"}, "truncated"),
        ({"kl": 0.1}, "kl"),
    ],
)
def test_config_errors_name_the_field(tiny_model_dir, tmp_path, change, message):
    data = {"stage": "grpo", "model": str(tiny_model_dir), "output_dir": str(tmp_path)}
    data["data"] = [{}]
    with pytest.raises(ConfigError) as err:
        parse_grpo_config({**data, **change}, "run.yaml")
    assert message in str(err.value) and str(err.value).startswith("run.yaml")


def test_batch_plan_refuses_groups_split_over_processes(tiny_model_dir, tmp_path):
    cfg = _config(tiny_model_dir, tmp_path, [{}], global_batch_size=6, per_device_batch_size=1)
    assert cfg.batch_plan(1) == (12, 12) and cfg.batch_plan(3) == (4, 4)
    with pytest.raises(ConfigError, match="do not share out over 4 processes"):
        cfg.batch_plan(4)


def test_load_grpo_config_with_overrides(tiny_model_dir, tmp_path):
    path = tmp_path / "g.yaml"
    path.write_text(
        f"stage: grpo\nmodel: {tiny_model_dir}\noutput_dir: {tmp_path}/o\ndata: [{{}}]\n"
    )
    cfg = load_grpo_config(path, ["filter.max_rounds=2", "num_generations=4"])
    assert (cfg.filter.max_rounds, cfg.num_generations) == (2, 4)
    with pytest.raises(ConfigError, match=r"model: .* is not a directory"):
        load_grpo_config(path, [f"model={tmp_path}/none"])


# -- the reward recorder ---------------------------------------------------------------------
def test_scorer_rewards_truncation_and_records():
    spec = json.dumps({"mode": "mcq", "ground_truth": "B"})
    det = json.dumps({"mode": "det3d", "ground_truth": []})
    completions = ["<think>x</think>B", "<think>x</think>B", "B", "```json\n[]\n```"]
    ids = [[5, 9], [5, 6], [5, 9], [7, 9]]  # 9 ends a completion; the second was cut
    columns = {"reward": [spec, spec, spec, det], "task": ["t"] * 4, "mode": ["mcq"] * 3 + ["d"]}
    for policy, second in (("score", 1.0), ("mask", 1.0), ("zero", 0.0)):
        scorer = RolloutScorer(truncated=policy)
        scorer.end_ids = {9}
        rewards = scorer(completions=completions, completion_ids=ids, **columns)
        # 0.5 acc + 0.5 format; a bare "B" is right but has no think block; det3d needs none
        assert rewards == [1.0, second, 0.5, 1.0]
        assert [s.truncated for s in scorer.last] == [False, True, False, False]
        assert [s.length for s in scorer.last] == [2, 2, 2, 2]
        assert scorer.last[1].accuracy == (0.0 if policy == "zero" else 1.0)
    with pytest.raises(ValueError, match="2 reward specs for 4 completions"):
        RolloutScorer()(completions=completions, reward=[spec, spec])


def test_scorer_takes_any_of_specs_and_chat_completions():
    specs = json.dumps(
        [{"mode": "mcq", "ground_truth": "B"}, {"mode": "exact", "ground_truth": "left"}]
    )
    scorer = RolloutScorer()
    out = scorer(
        completions=[[{"role": "assistant", "content": "<think>r</think>left"}]], reward=[specs]
    )
    assert out == [1.0] and scorer.last[0].accuracy == 1.0


# -- RL prompts ------------------------------------------------------------------------------
def test_rl_prompts_from_an_engine_run(tiny_model_dir, tmp_path, all_tasks_run):
    from vst.models.processor import load_processor

    cfg = _config(tiny_model_dir, tmp_path, [{"kind": "vst", "path": str(all_tasks_run)}])
    tokenizer = load_processor(tiny_model_dir).tokenizer
    prompts, report = load_rl_prompts(cfg, "g.yaml", tokenizer)
    truth: dict[str, tuple[str, dict]] = {}
    videos = captions = 0
    for shard in list_shards(all_tasks_run):
        for row in iter_rows(shard, ["id", "task", "reward", "videos", "messages"]):
            mode = json.loads(row["reward"])["mode"]
            if row["videos"]:
                videos += 1
            elif mode == "caption":
                captions += 1
            else:
                truth[row["id"]] = (row["task"], json.loads(row["reward"]))
    assert len(prompts) == len(truth)
    reasons = {s.id: s.reason for s in report.sources[0].skipped}
    assert reasons["video"].startswith(f"{videos} video sample(s)")
    assert reasons["caption"].startswith(f"{captions} sample(s) in the caption mode")
    modes = Counter()
    for i in range(len(prompts)):
        row = prompts.row(i)
        task, spec = truth[row["id"]]
        assert row["task"] == task and json.loads(row["reward"]) == spec
        assert row["mode"] == spec["mode"] and row["index"] == i
        modes[spec["mode"]] += 1
        first = row["prompt"][0]
        if spec["mode"] == "det3d":  # the release prompts detection without a system turn
            assert first["role"] == "user"
        else:
            assert first["role"] == "system"
            assert first["content"] == [{"type": "text", "text": THINK_SYSTEM_PROMPT}]
        assert row["prompt"][-1]["role"] == "user"  # the answer turn is not in the prompt
        items = [c for m in row["prompt"] for c in m["content"] if c["type"] == "image"]
        assert len(items) == len(row["images"]) >= 1
        for im in row["images"]:  # fitted once to the 3,136-pixel budget, 28-pixel multiples
            assert im.width * im.height <= 3136 and im.width % 28 == im.height % 28 == 0
    assert set(modes) == {"mcq", "exact", "numeric", "order", "det3d"}
    assert prompts.skipped == []


def test_rl_prompts_skip_and_replace_too_long(tiny_model_dir, tmp_path):
    from vst.models.processor import load_processor

    long_q = " ".join(str(k) for k in range(700))  # well over 1,020 tokens
    samples = [
        Sample(
            task="t",
            scenario="single_image",
            messages=[user(None, q), assistant("A")],
            images=[_image(k)],
            answer="A",
            reward={"mode": "mcq", "ground_truth": "A"},
        )
        for k, q in enumerate(["short 0 A. a B. b", long_q, "short 2 A. a B. b"])
    ]
    data = _write(tmp_path / "d", samples)
    cfg = _config(tiny_model_dir, tmp_path / "o", [{"kind": "vst", "path": str(data)}])
    tokenizer = load_processor(tiny_model_dir).tokenizer
    prompts, _ = load_rl_prompts(cfg, "g.yaml", tokenizer)
    rows = [prompts.row(i) for i in range(3)]
    ids = [r["id"] for r in rows]
    long_id = samples[1].id
    assert long_id not in ids and len(set(ids)) == 2  # replaced by the next usable example
    assert len(prompts.skipped) == 1 and prompts.skipped[0][0] == long_id
    assert "longer than 1020" in prompts.skipped[0][1] and prompts.skip_counts["too_long"] == 1
    n = prompts.prompt_length(rows[0]["prompt"], rows[0]["images"])
    assert 10 < n < 1020


def test_epoch_sampler_orders_differ_and_repeat():
    s = EpochRepeatSampler(list(range(6)), mini_repeat_count=2, batch_size=3, seed=4)
    first = list(s)
    assert first[::2] == first[1::2] and sorted(first[::2]) == list(range(6))
    s.set_epoch(1)
    second = list(s)
    s.set_epoch(0)
    assert list(s) == first and second != first  # each epoch its own order, reproducible


# -- the trainer -----------------------------------------------------------------------------
def _trace_batches(monkeypatch) -> list[dict[str, Any]]:
    """Capture every batch the trainer's rollout step returns."""
    from vst.train.grpo import VstGRPOTrainer

    seen: list[dict[str, Any]] = []
    original = VstGRPOTrainer._generate_and_score_completions

    def traced(self, inputs):
        out = original(self, inputs)
        seen.append(out)
        return out

    monkeypatch.setattr(VstGRPOTrainer, "_generate_and_score_completions", traced)
    return seen


def test_filter_drops_on_accuracy_refills_and_logs_counts(tiny_model_dir, tmp_path, monkeypatch):
    data = _mcq_shard(tmp_path / "d", "ABCD" * 4)
    cfg = _config(
        tiny_model_dir,
        tmp_path / "o",
        [{"kind": "vst", "path": str(data)}],
        max_steps=3,
        filter={"max_rounds": 6},
    )
    script = ScriptedScore()
    batches = _trace_batches(monkeypatch)
    result = run_grpo(cfg, score=script)
    rows = read_metrics(result.metrics)
    assert [r["step"] for r in rows] == [1, 2, 3]
    # the scripted calls, in groups of num_generations = 2, one group per prompt drawn
    groups = script.calls[::2]
    assert script.calls[1::2] == groups
    drawn = Counter(groups)
    logged = {k: sum(r.get(f"vst/{k}", 0) for r in rows) for k in ("groups_drawn", "groups_kept")}
    assert logged["groups_drawn"] == len(groups) == sum(drawn.values())
    assert sum(r["vst/dropped_all_right"] for r in rows) == drawn["A"]
    # all wrong: B (total constant 0.5) and C (total varies with the format: a filter on the
    # total would keep C; on accuracy it is dropped)
    assert sum(r["vst/dropped_all_wrong"] for r in rows) == drawn["B"] + drawn["C"]
    assert drawn["C"] > 0 and drawn["D"] >= 12
    # every step trains on 4 kept groups: all D, none filled from dropped ones
    assert logged["groups_kept"] == 12 and sum(r["vst/underfilled_groups"] for r in rows) == 0
    per_task = sum(r.get("vst/dropped/t_C", 0) for r in rows)
    assert per_task == drawn["C"]
    assert len(batches) == 3
    for batch in batches:
        assert batch["completion_ids"].shape[0] == 8  # 4 prompts x 2 completions
        adv = batch["advantages"]
        assert torch.all(adv != 0)  # D groups only: one right, one wrong
        assert torch.allclose(adv.view(4, 2).sum(dim=1), torch.zeros(4), atol=1e-5)
        mask = batch["completion_mask"]
        assert int(batch["num_items_in_batch"]) == int(mask.sum())
        assert batch["prompt_ids"].shape[0] == batch["prompt_mask"].shape[0] == 8
        assert batch["pixel_values"].shape[0] == batch["image_grid_thw"].prod(-1).sum()
        assert batch["num_images"] == [1] * 8


def test_short_batch_is_filled_and_counted(tiny_model_dir, tmp_path, monkeypatch):
    data = _mcq_shard(tmp_path / "d", "AAAAAAAA")  # every group all right: nothing to keep
    cfg = _config(
        tiny_model_dir,
        tmp_path / "o",
        [{"kind": "vst", "path": str(data)}],
        max_steps=1,
        filter={"max_rounds": 2},
    )
    batches = _trace_batches(monkeypatch)
    script = ScriptedScore()
    result = run_grpo(cfg, score=script)
    (row,) = read_metrics(result.metrics)
    assert row["vst/refill_rounds"] == 2 and row["vst/underfilled_groups"] == 4
    assert row["vst/groups_kept"] == 0 and row["vst/groups_drawn"] == len(script.calls) // 2
    (batch,) = batches
    assert batch["completion_ids"].shape[0] == 8 and torch.all(batch["advantages"] == 0)


def test_filter_off_is_trls_step(tiny_model_dir, tmp_path):
    data = _mcq_shard(tmp_path / "d", "ABCD")
    cfg = _config(
        tiny_model_dir,
        tmp_path / "o",
        [{"kind": "vst", "path": str(data)}],
        max_steps=1,
        filter={"enabled": False},
        log_completions=3,
    )
    script = ScriptedScore()
    result = run_grpo(cfg, score=script)
    (row,) = read_metrics(result.metrics)
    assert len(script.calls) == 8 and "vst/groups_drawn" not in row
    logged = read_metrics(tmp_path / "o" / "completions.jsonl")
    assert len(logged) == 3 and {r["step"] for r in logged} == {1}
    for r in logged:
        assert r["task"].startswith("t_") and len(r["id"]) == 16
        assert r["accuracy"] in (0.0, 1.0) and r["kept"] is None and "completion" in r
    assert row["vst/accuracy"] == pytest.approx(np.mean([1, 0, 0, 0.5]))
    for letter, acc in (("A", 1.0), ("B", 0.0), ("C", 0.0), ("D", 0.5)):
        assert row[f"vst/accuracy/t_{letter}"] == pytest.approx(acc)
    assert row["vst/format/t_C"] == pytest.approx(0.5)
    assert row["vst/accuracy_mode/mcq"] == pytest.approx(0.375)
    assert 0 <= row["vst/truncated_share"] <= 1 and row["vst/completions"] == 8


def test_every_mode_reaches_the_reward_with_its_spec(
    tiny_model_dir, tmp_path, all_tasks_run, monkeypatch
):
    """One image sample of each rule-checkable mode of an engine run, one GRPO step: the reward
    sees each sample's own spec, and the detection prompt has no system turn."""
    picked: dict[str, dict] = {}
    for shard in list_shards(all_tasks_run):
        for row in iter_rows(shard, ["id", "task", "reward", "videos"]):
            mode = json.loads(row["reward"])["mode"]
            if mode != "caption" and not row["videos"] and mode not in picked:
                picked[mode] = row
    assert set(picked) == {"mcq", "exact", "numeric", "order", "det3d"}
    import pyarrow.parquet as pq

    out = tmp_path / "modes" / "data"
    out.mkdir(parents=True)
    ids = {r["id"] for r in picked.values()}
    for shard in list_shards(all_tasks_run):
        table = pq.read_table(shard)
        keep = [i for i, sid in enumerate(table.column("id").to_pylist()) if sid in ids]
        if keep:
            pq.write_table(table.take(keep), out / shard.name)
    seen: list[tuple[Any, Any]] = []

    def spy(response: str, spec: Any) -> dict[str, Any]:
        seen.append(json.loads(spec))
        return compute_reward(response, spec, w_acc=1.0, w_fmt=1.0)

    prompts_seen: list[Any] = []
    scorer_call = RolloutScorer.__call__

    def spy_call(self, prompts=None, **kw):
        prompts_seen.extend(zip(prompts, kw["reward"], strict=True))
        return scorer_call(self, prompts=prompts, **kw)

    monkeypatch.setattr(RolloutScorer, "__call__", spy_call)
    cfg = _config(
        tiny_model_dir,
        tmp_path / "o",
        [{"kind": "vst", "path": str(tmp_path / "modes")}],
        global_batch_size=5,
        per_device_batch_size=10,
        max_steps=1,
        filter={"enabled": False},
    )
    run_grpo(cfg, score=spy)
    expected = sorted(json.dumps(json.loads(r["reward"]), sort_keys=True) for r in picked.values())
    got = sorted({json.dumps(s, sort_keys=True) for s in seen})
    assert got == expected and len(seen) == 10
    for prompt, spec in prompts_seen:
        roles = [m["role"] for m in prompt]
        if json.loads(spec)["mode"] == "det3d":
            assert roles[0] == "user"
        else:
            assert roles[0] == "system" and prompt[0]["content"][0]["text"] == THINK_SYSTEM_PROMPT


def test_generation_never_samples_vision_tokens(tiny_model_dir, tmp_path):
    data = _mcq_shard(tmp_path / "d", "ABCD")
    cfg = _config(tiny_model_dir, tmp_path / "o", [{"kind": "vst", "path": str(data)}])
    trainer, _ = build_grpo_trainer(cfg)
    tok = trainer.processing_class.tokenizer
    ids = vision_token_ids(tok)
    assert len(ids) == 5 and tok.convert_tokens_to_ids("<|vision_start|>") in ids
    assert set(ids) <= set(trainer.generation_config.suppress_tokens)
    assert tok.padding_side == "left"


class _Kill(TrainerCallback):
    """Stop the run like a kill right after checkpoint ``step`` is written."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise KeyboardInterrupt


def test_resume_continues_with_the_same_data_and_weights(tiny_model_dir, tmp_path):
    data = _mcq_shard(tmp_path / "d", "ABCDDCBAABCD")
    common = dict(max_steps=4, save_steps=2, filter={"max_rounds": 2})
    full_script = ScriptedScore()
    full = _config(
        tiny_model_dir, tmp_path / "full", [{"kind": "vst", "path": str(data)}], **common
    )
    run_grpo(full, score=full_script)
    cut = _config(tiny_model_dir, tmp_path / "cut", [{"kind": "vst", "path": str(data)}], **common)
    first = ScriptedScore()
    with pytest.raises(KeyboardInterrupt):
        run_grpo(cut, score=first, callbacks=[_Kill(2)])
    assert (tmp_path / "cut" / "checkpoint-2").is_dir()
    with pytest.raises(ConfigError, match="holds checkpoints"):
        run_grpo(cut, score=ScriptedScore())
    rest = ScriptedScore()
    rest.turn = first.turn  # the scripted alternation continues where the killed run stopped
    result = run_grpo(cut, resume=True, score=rest)
    assert result.resumed_from == tmp_path / "cut" / "checkpoint-2" and result.steps == 4
    # the same prompts in the same order, before and after the kill
    assert first.calls + rest.calls == full_script.calls
    rows = read_metrics(result.metrics)
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    full_rows = read_metrics(tmp_path / "full" / "metrics.jsonl")
    for a, b in zip(rows, full_rows, strict=True):
        assert a["vst/groups_drawn"] == b["vst/groups_drawn"]
        assert a["loss"] == pytest.approx(b["loss"], abs=1e-6)
    from safetensors.torch import load_file

    w_full = load_file(str(tmp_path / "full" / "model.safetensors"))
    w_cut = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert w_full.keys() == w_cut.keys()
    for key in w_full:
        torch.testing.assert_close(w_cut[key], w_full[key], atol=1e-6, rtol=1e-5)
    for name in ("tokenizer.json", "chat_template.jinja", "vst_training_data.json"):
        assert (tmp_path / "cut" / name).is_file()


def test_cli_grpo_runs_and_reports(tiny_model_dir, tmp_path):
    data = _mcq_shard(tmp_path / "d", "ABCDABCD")
    cfg = tmp_path / "g.yaml"
    lines = [
        "stage: grpo",
        f"model: {tiny_model_dir}",
        f"output_dir: {tmp_path / 'o'}",
        f"data: [{{kind: vst, path: {data}}}]",
        "global_batch_size: 2",
        "num_generations: 2",
        "per_device_batch_size: 4",
        "max_steps: 2",
        "save_steps: 1",
        *(f"{k}: {json.dumps(v)}" for k, v in SMALL.items()),
    ]
    cfg.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "grpo", str(cfg), "-o", "filter.max_rounds=1"])
    assert result.exit_code == 0, result.output
    assert "vst train grpo" in result.output and "online filter" in result.output
    for label in ("steps", "model", "metrics", "plot"):
        assert f"{label} " in result.output
    assert (tmp_path / "o" / "metrics.png").is_file()
    assert (tmp_path / "o" / "model.safetensors").is_file()
    bad = runner.invoke(app, ["train", "grpo", str(cfg), "-o", "num_generations=1"])
    assert bad.exit_code == 2 and "num_generations" in bad.output
    again = runner.invoke(app, ["train", "grpo", str(cfg)])
    assert again.exit_code == 2 and "holds checkpoints" in again.output


@pytest.mark.slow
def test_two_processes_filter_in_step(tiny_model_dir, tmp_path):
    """Two CPU processes (torchrun, gloo): every process runs the same refill rounds with the
    same number of prompts (TRL gathers rewards across processes; a mismatch would hang), and
    the logged counts are summed over both. The random tiny model almost never answers a
    letter, so (nearly) every group is all wrong: 2 rounds of refills, then the batch is filled
    and counted."""
    import os
    import socket
    import subprocess
    import sys

    data = _mcq_shard(tmp_path / "d", "ABCDABCDABCD")
    cfg = tmp_path / "g.yaml"
    settings = {**SMALL, "max_completion_length": 8}
    lines = [
        "stage: grpo",
        f"model: {tiny_model_dir}",
        f"output_dir: {tmp_path / 'o'}",
        f"data: [{{kind: vst, path: {data}}}]",
        "global_batch_size: 4",
        "num_generations: 2",
        "per_device_batch_size: 2",
        "max_steps: 2",
        "filter: {max_rounds: 2}",
        *(f"{k}: {json.dumps(v)}" for k, v in settings.items()),
    ]
    cfg.write_text("\n".join(lines) + "\n")
    torchrun = Path(sys.executable).parent / "torchrun"
    with socket.socket() as s:  # a free loopback port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}  # loopback only
    cmd = [str(torchrun), "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={port}"]
    cmd += ["-m", "vst.cli", "train", "grpo", str(cfg)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    rows = read_metrics(tmp_path / "o" / "metrics.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    for r in rows:  # per round 2 prompts on each process; 3 rounds
        assert r["vst/groups_drawn"] == 12 and r["vst/refill_rounds"] == 2
        # all wrong, but a sampled letter is right by chance now and then (a mixed group is
        # kept): every drawn group is either dropped or in the batch, whose short part is filled
        kept = 4 - r["vst/underfilled_groups"]
        assert r["vst/dropped_all_wrong"] >= 10 and r["vst/dropped_all_wrong"] + kept == 12
        assert r["vst/completions"] == 24


def test_text_only_and_image_prompts_in_one_batch(tiny_model_dir, tmp_path, monkeypatch):
    """General text data beside spatial samples: TRL hands Qwen2.5-VL's processor a None image
    list for a text-only prompt, which it refuses unless vst flattens the lists."""
    samples = []
    for k, letter in enumerate("DDDDADBD"):
        text_only = k % 2 == 1
        samples.append(
            Sample(
                task="text" if text_only else "image",
                scenario="text" if text_only else "single_image",
                messages=[
                    user(*(() if text_only else (None,)), f"Q{k}: which?\nA. a\nB. b\nD. d"),
                    assistant(letter),
                ],
                images=[] if text_only else [_image(k)],
                answer=letter,
                reward={"mode": "mcq", "ground_truth": letter},
            )
        )
    data = _write(tmp_path / "d", samples)
    cfg = _config(tiny_model_dir, tmp_path / "o", [{"kind": "vst", "path": str(data)}], max_steps=2)
    batches = _trace_batches(monkeypatch)
    result = run_grpo(cfg, score=ScriptedScore())
    assert result.steps == 2
    images = [n for batch in batches for n in batch["num_images"]]
    assert set(images) == {0, 1}
    for batch in batches:
        assert batch["image_grid_thw"].shape[0] == sum(batch["num_images"])
        assert batch["pixel_values"].shape[0] == int(batch["image_grid_thw"].prod(-1).sum())
    rows = read_metrics(result.metrics)
    assert {"vst/accuracy/text", "vst/accuracy/image"} <= set(rows[0]) | set(rows[1])


@pytest.mark.parametrize("policy", ["zero", "score"])
def test_truncated_completions_through_the_trainer(tiny_model_dir, tmp_path, monkeypatch, policy):
    """One-token completions are cut unless that token ends the turn. With ``zero`` a cut
    completion scores 0 although the script calls every answer right; with ``score`` it
    keeps its score."""
    data = _mcq_shard(tmp_path / "d", "AAAA")
    cfg = _config(
        tiny_model_dir,
        tmp_path / "o",
        [{"kind": "vst", "path": str(data)}],
        max_steps=1,
        max_completion_length=1,
        truncated=policy,
        filter={"enabled": False},
    )
    scorers: list[RolloutScorer] = []
    scorer_call = RolloutScorer.__call__

    def keep(self, **kw):
        scorers.append(self)
        return scorer_call(self, **kw)

    monkeypatch.setattr(RolloutScorer, "__call__", keep)
    (row,) = read_metrics(run_grpo(cfg, score=ScriptedScore()).metrics)
    scorer = scorers[-1]
    cut = [s.truncated for s in scorer.last]
    assert row["vst/truncated_share"] == pytest.approx(np.mean(cut)) and any(cut)
    expected = 1.0 - np.mean(cut) if policy == "zero" else 1.0
    assert row["vst/accuracy"] == pytest.approx(expected)
    assert [s.accuracy for s in scorer.last] == [
        0.0 if c and policy == "zero" else 1.0 for c in cut
    ]
