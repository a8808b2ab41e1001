"""vst.train: config presets and errors, optimizer groups and freezing, the exact token-mean
loss, the learning-rate schedule per group, resume after a kill, the saved checkpoint, the CLI.

Runs use the tiny random Qwen2.5-VL on CPU, vst's data sources and packing collator.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import TrainerCallback
from typer.testing import CliRunner

from vst.cli import app
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import shard_name, write_shard
from vst.models.prompts import PLAIN_SYSTEM_PROMPT
from vst.models.requests import Video
from vst.train.collate import VLMCollator
from vst.train.config import (
    STAGE_PRESETS,
    ConfigError,
    apply_overrides,
    load_train_config,
    parse_train_config,
)
from vst.train.examples import TrainExample
from vst.train.metrics import read_metrics
from vst.train.optim import group_of, param_groups
from vst.train.trainer import (
    PROCESSOR_FILES,
    build_trainer,
    data_sources,
    run_training,
    token_mean_loss,
)

# -- data ------------------------------------------------------------------------------------


def _image(seed: int, size: tuple[int, int] = (56, 56)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _examples(n: int = 8) -> list[TrainExample]:
    """Single-image, multi-turn and video examples with answers of different lengths."""
    out = []
    for k in range(n):
        q = [{"type": "image"}, {"type": "text", "text": f"how far is the chair {k}?"}]
        if k % 4 == 3:
            frames = tuple(_image(100 + 10 * k + f) for f in range(4))
            msgs = [
                {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "count"}]},
                {"role": "assistant", "content": f"{k} chairs"},
            ]
            out.append(TrainExample(f"v{k}", "t", msgs, (), (Video(frames, 2.0),)))
        elif k % 4 == 2:
            msgs = [
                {"role": "user", "content": q},
                {"role": "assistant", "content": "0.5"},
                {"role": "user", "content": "and the table?"},
                {"role": "assistant", "content": f"{k}.25 meters away"},
            ]
            out.append(TrainExample(f"m{k}", "t", msgs, (_image(k),)))
        else:
            msgs = [{"role": "user", "content": q}, {"role": "assistant", "content": f"{k}.5"}]
            out.append(TrainExample(f"s{k}", "t", msgs, (_image(k),)))
    return out


def _write_shards(folder: Path, n: int = 8) -> Path:
    samples = []
    for k in range(n):
        letter = "AB"[k % 2]
        samples.append(
            Sample(
                task="t_mcq",
                scenario="single_image",
                messages=[user(None, f"Q{k}: closer?\nA. chair\nB. table"), assistant(letter)],
                images=[_image(k)],
                answer=letter,
                reward={"mode": "mcq", "ground_truth": letter},
            )
        )
    data = folder / "data"
    data.mkdir(parents=True)
    write_shard(data / shard_name(0, hashlib.sha256(b"0").hexdigest()), samples, "PNG")
    return folder


SMALL = {
    "bf16": False,
    "gradient_checkpointing": False,
    "use_cpu": True,
    "attn_implementation": "sdpa",
    "max_length": 4096,
    "min_pixels": 3136,
    "max_pixels": 3136,
    "video_min_pixels": 3136,
    "video_max_pixels": 3136,
}
"""Settings of every CPU test run (56 x 56 pictures: 4 image tokens each)."""


def _config(model: Path, out: Path, data: Path | None = None, **kw):
    base = {
        "stage": "sft",
        "model": str(model),
        "output_dir": str(out),
        "data": [{"kind": "vst", "path": str(data or out)}],
        "learning_rate": 1e-3,
        "vision_learning_rate": 1e-4,
        "global_batch_size": 4,
        **SMALL,
    }
    return parse_train_config({**base, **kw})


def _weights(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


# -- config ----------------------------------------------------------------------------------


def _yaml(tmp_path: Path, text: str) -> Path:
    p = tmp_path / "run.yaml"
    p.write_text(text, encoding="utf-8")
    return p


def test_stage_presets_and_overrides(tiny_model_dir, tmp_path):
    base = f"model: {tiny_model_dir}\noutput_dir: {tmp_path / 'o'}\ndata: [{{kind: vst}}]\n"
    sft = load_train_config(_yaml(tmp_path, "stage: sft\n" + base))
    assert (sft.learning_rate, sft.vision_learning_rate, sft.warmup_ratio) == (5e-5, 5e-6, 0.03)
    assert (sft.lr_scheduler, sft.epochs, sft.global_batch_size) == ("cosine", 1.0, 128)
    assert (sft.max_length, sft.system) == (16384, "plain")
    assert sft.accumulation(1) == 128 and sft.accumulation(8) == 16
    cot = load_train_config(_yaml(tmp_path, "stage: cot\n" + base))
    assert (cot.learning_rate, cot.vision_learning_rate, cot.epochs) == (1e-5, 1e-6, 2.0)
    assert (cot.system, cot.max_length, cot.global_batch_size) == ("think", 16384, 128)
    # every preset value can be overridden, in the file or on the command line
    mine = load_train_config(
        _yaml(tmp_path, "stage: cot\nlearning_rate: 3.0e-4\nsystem: plain\n" + base),
        ["epochs=3", "data.0.weight=2", "rows_per_device=4"],
    )
    assert (mine.learning_rate, mine.system, mine.epochs) == (3e-4, "plain", 3.0)
    assert mine.vision_learning_rate == 1e-6  # untouched preset value
    assert mine.data == [{"kind": "vst", "weight": 2}]
    assert mine.accumulation(2) == 16
    assert STAGE_PRESETS["sft"]["learning_rate"] == 5e-5  # the presets themselves unchanged
    assert apply_overrides({"a": {"b": 1}}, ["a.c=x", "bf16=false"]) == {
        "a": {"b": 1, "c": "x"},
        "bf16": False,
    }


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stage: sft\nlearnig_rate: 1.0e-4\n", "learnig_rate: unknown field"),
        ("stage: rl\n", "stage: must be one of sft, cot (got 'rl')"),
        ("seed: 1\n", "stage: must be one of sft, cot (missing)"),
        ("stage: sft\nseed: true\n", "seed: Input should be a valid integer"),
        ("stage: sft\nlearning_rate: -1\n", "learning_rate: Input should be greater than 0"),
        ("stage: sft\nwarmup_ratio: .nan\n", "warmup_ratio: Input should be a finite number"),
        ("stage: sft\nglobal_batch_size: 10\nrows_per_device: 4\n", "not a multiple"),
        ("stage: sft\nstage: cot\n", "duplicate key 'stage'"),
        ("stage: sft\ndata: []\n", "data: List should have at least 1 item"),
    ],
)
def test_config_errors_name_file_and_field(tiny_model_dir, tmp_path, text, message):
    base = f"model: {tiny_model_dir}\noutput_dir: {tmp_path / 'o'}\n"
    if "data:" not in text:
        base += "data: [{kind: vst}]\n"
    path = _yaml(tmp_path, text + base)
    with pytest.raises(ConfigError) as err:
        load_train_config(path)
    assert str(err.value).startswith(f"{path}: ")
    assert message in str(err.value)


def test_config_errors_for_paths_overrides_and_sources(tiny_model_dir, tmp_path):
    source = f"data: [{{kind: vst, path: {tmp_path / 'no'}}}]\n"
    base = f"stage: sft\noutput_dir: {tmp_path / 'o'}\n" + source
    path = _yaml(tmp_path, base + f"model: {tmp_path / 'missing'}\n")
    with pytest.raises(ConfigError, match=r"run\.yaml: model: .*missing is not a directory"):
        load_train_config(path)
    path = _yaml(tmp_path, base + f"model: {tiny_model_dir}\n")
    with pytest.raises(ConfigError, match="override 'epochs': expected key=value"):
        load_train_config(path, ["epochs"])
    with pytest.raises(ConfigError, match=r"with overrides: max_steps: Input should be"):
        load_train_config(path, ["max_steps=many"])
    cfg = load_train_config(path, ["data.0.kind=nonsense"])
    with pytest.raises(ConfigError) as err:
        data_sources(cfg, str(path))
    assert str(err.value).startswith(f"{path}: data.0: kind: ")
    cfg = load_train_config(path)  # a source whose folder does not exist: named at load time
    with pytest.raises(ConfigError) as err:
        run_training(cfg, where=str(path))
    assert str(err.value).startswith(f"{path}: data: ") and str(tmp_path / "no") in str(err.value)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError, match="gradient_accumulation_steps: 2 per device x 8 x 3"):
        parse_train_config(
            {**cfg.model_dump(mode="json"), "rows_per_device": 2, "global_batch_size": 16}
            | {"gradient_accumulation_steps": 8}
        ).accumulation(3)


# -- loss ------------------------------------------------------------------------------------


def test_token_mean_loss_by_hand():
    # uniform logits over 4 tokens: every label token costs ln 4
    logits = torch.zeros(2, 5, 4)
    labels = torch.tensor([[-100, 1, 2, -100, -100], [-100, -100, 3, 0, 1]])
    out = {"logits": logits}
    # shifted labels hold 2 + 3 = 5 targets
    assert token_mean_loss(out, labels).item() == pytest.approx(math.log(4))
    # normalised by the step's count (two micro-batches of 5 tokens each -> 10)
    assert token_mean_loss(out, labels, torch.tensor(10)).item() == pytest.approx(
        5 * math.log(4) / 10
    )
    # a confident right prediction costs ~0; only label positions count
    logits = torch.full((1, 3, 4), -30.0)
    logits[0, 0, 2] = 30.0  # predicts token 2 at position 1
    logits[0, 1, 0] = 30.0  # predicts 0 at position 2, whose label is -100 (not counted)
    loss = token_mean_loss({"logits": logits}, torch.tensor([[-100, 2, -100]]))
    assert loss.item() == pytest.approx(0.0, abs=1e-6)


# -- optimizer groups ------------------------------------------------------------------------


def test_parameter_groups_cover_the_model(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir))
    names = {n: group_of(n) for n, _ in model.named_parameters()}
    assert names["model.visual.patch_embed.proj.weight"] == "vision"
    assert names["model.visual.blocks.0.attn.qkv.weight"] == "vision"
    assert names["model.visual.merger.mlp.0.weight"] == "merger"
    assert names["model.language_model.embed_tokens.weight"] == "language"
    assert names["lm_head.weight"] == "language"
    assert group_of("module._fsdp_wrapped_module.model.visual.merger.ln_q.weight") == "merger"
    with pytest.raises(ValueError, match="in no optimizer group"):
        group_of("model.rope.inv_freq")
    groups = param_groups(model, lr=1e-3, vision_lr=1e-4)
    assert [(g["name"], g["lr"]) for g in groups] == [
        ("vision", 1e-4),
        ("merger", 1e-4),
        ("language", 1e-3),
    ]
    in_groups = sum(p.numel() for g in groups for p in g["params"])
    assert in_groups == sum(p.numel() for p in model.parameters())


def test_freezing_keeps_frozen_weights_and_trains_the_rest(tiny_model_dir, tmp_path):
    cfg = _config(tiny_model_dir, tmp_path / "o", max_steps=2, freeze_vision=True)
    trainer = build_trainer(cfg, _examples(8))
    before = _weights(trainer.model)
    trainer.train()
    groups = {g["name"]: g for g in trainer.optimizer.param_groups}
    assert sorted(groups) == ["language", "merger"]
    assert groups["merger"]["initial_lr"] == 1e-4 and groups["language"]["initial_lr"] == 1e-3
    after = _weights(trainer.model)
    changed = {g: [] for g in ("vision", "merger", "language")}
    for name, w in after.items():
        changed[group_of(name)].append(not torch.equal(w, before[name]))
    assert not any(changed["vision"])  # frozen: untouched
    assert all(changed["merger"]) and any(changed["language"])
    frozen = [n for n, p in trainer.model.named_parameters() if not p.requires_grad]
    assert frozen and all(group_of(n) == "vision" for n in frozen)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        param_groups(trainer.model.model.visual.blocks, 1e-3, 1e-4)


# -- schedule, metrics, gradient accumulation ------------------------------------------------


def _expected_lr(base: float, step: int, warmup: int, total: int) -> float:
    """transformers' cosine with linear warmup, by hand (``step`` counted from 0)."""
    if step < warmup:
        return base * step / warmup
    progress = (step - warmup) / (total - warmup)
    return base * 0.5 * (1 + math.cos(math.pi * progress))


def test_learning_rate_of_each_group_follows_the_schedule(tiny_model_dir, tmp_path):
    out = tmp_path / "o"
    cfg = _config(  # batches of examples (packing off): 2 per device x 2 accumulation
        tiny_model_dir,
        out,
        max_steps=8,
        warmup_ratio=0.3,
        save_steps=100,
        packing=False,
        per_device_batch_size=2,
    )
    trainer = build_trainer(cfg, _examples(8))
    trainer.train()
    rows = read_metrics(out / "metrics.jsonl")
    assert [r["step"] for r in rows] == list(range(1, 9))
    warmup = math.ceil(8 * 0.3)  # 3 steps
    for k, row in enumerate(rows):
        for group, base in (("vision", 1e-4), ("merger", 1e-4), ("language", 1e-3)):
            assert row["lr"][group] == pytest.approx(_expected_lr(base, k, warmup, 8), abs=1e-15)
    assert rows[0]["lr"]["language"] == 0.0 and rows[3]["lr"]["language"] == pytest.approx(1e-3)
    # each row sums both micro-batches (2 x 2 examples) of its step
    assert all(r["samples"] == 4 and r["skipped_too_long"] == 0 for r in rows)
    assert all(0 < r["real_token_share"] <= 1 and r["tokens_per_s"] > 0 for r in rows)
    assert all(r["real_tokens"] <= r["total_tokens"] for r in rows)
    # unpacked: the capacity is the padded batch, so row fill is the real-token share
    assert all(r["row_fill"] == r["real_token_share"] for r in rows)
    assert (out / "metrics.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


class _Grads(TrainerCallback):
    """Keeps the gradients the optimizer is about to apply (after accumulation)."""

    def __init__(self) -> None:
        self.grads: dict[str, torch.Tensor] = {}

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
        self.grads = {n: p.grad.clone() for n, p in model.named_parameters()}


def _one_step(tiny_model_dir, out: Path, per_device: int) -> tuple[float, dict, int]:
    cfg = _config(
        tiny_model_dir,
        out,
        max_steps=1,
        per_device_batch_size=per_device,
        packing=False,  # batches of examples: 1 x 4 vs 4 x 1
        global_batch_size=4,
        max_grad_norm=0.0,  # no clipping: the raw gradients are compared
    )
    grads = _Grads()
    trainer = build_trainer(cfg, _examples(4), callbacks=[grads])
    trainer.train()
    row = read_metrics(out / "metrics.jsonl")[0]
    return row["loss"], grads.grads, row["label_tokens"]


def test_gradient_accumulation_is_exact_token_mean(tiny_model_dir, tmp_path):
    # one batch of 4 vs 4 accumulated micro-batches of 1 (different label counts each)
    loss_1, g_1, labels_1 = _one_step(tiny_model_dir, tmp_path / "a", per_device=4)
    loss_4, g_4, labels_4 = _one_step(tiny_model_dir, tmp_path / "b", per_device=1)
    assert labels_1 == labels_4 > 0
    assert loss_4 == pytest.approx(loss_1, rel=1e-5)
    assert g_1.keys() == g_4.keys() and len(g_1) > 10
    for name, g in g_1.items():
        torch.testing.assert_close(g_4[name], g, rtol=1e-4, atol=1e-7, msg=name)
    # and the logged loss is the model's own token mean over the whole batch
    from transformers import AutoModelForImageTextToText

    from vst.models.processor import load_processor

    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir)).eval()
    cfg = _config(tiny_model_dir, tmp_path / "c")
    collate = VLMCollator(  # one padded row per example, positions from the model
        load_processor(tiny_model_dir),
        packing=False,
        system=PLAIN_SYSTEM_PROMPT,
        limits=cfg.pixel_limits(),
    )
    batch = collate(_examples(4))
    batch.pop("vst_stats")
    with torch.no_grad():
        reference = model(**batch).loss.item()
    assert loss_1 == pytest.approx(reference, rel=1e-5)


# -- resume, checkpoint, CLI -----------------------------------------------------------------


class _KilledError(Exception):
    pass


class _KillAt(TrainerCallback):
    """Dies at the start of optimizer step ``step + 1`` (as a killed process would)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_step_begin(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise _KilledError


def test_resume_after_kill_matches_an_uninterrupted_run(tiny_model_dir, tmp_path):
    data = _write_shards(tmp_path / "ds", 8)
    kw = {"max_steps": 6, "save_steps": 2, "global_batch_size": 2}
    full = run_training(_config(tiny_model_dir, tmp_path / "full", data, **kw))
    assert full.steps == 6 and full.resumed_from is None
    cfg = _config(tiny_model_dir, tmp_path / "killed", data, **kw)
    with pytest.raises(_KilledError):
        run_training(cfg, callbacks=[_KillAt(5)])  # after checkpoint-4 and step 5
    assert len(read_metrics(tmp_path / "killed" / "metrics.jsonl")) == 5
    with pytest.raises(ConfigError, match=r"holds checkpoints .*checkpoint-4.*--resume"):
        run_training(cfg)
    resumed = run_training(cfg, resume=True)
    assert resumed.resumed_from == tmp_path / "killed" / "checkpoint-4"
    rows_full = read_metrics(full.metrics)
    rows_resumed = read_metrics(resumed.metrics)
    assert [r["step"] for r in rows_resumed] == list(range(1, 7))
    assert [r["loss"] for r in rows_resumed] == [r["loss"] for r in rows_full]
    assert [r["lr"] for r in rows_resumed] == [r["lr"] for r in rows_full]
    from safetensors.torch import load_file

    a = load_file(full.output_dir / "model.safetensors")
    b = load_file(resumed.output_dir / "model.safetensors")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], load_file(tiny_model_dir / "model.safetensors")[k]) for k in a)


def test_saved_checkpoint_reloads_through_vst_models_and_generates(tiny_model_dir, tmp_path):
    from transformers import AutoModelForImageTextToText

    from vst.models.backends import Sampling
    from vst.models.backends.transformers import TransformersBackend
    from vst.models.processor import load_processor
    from vst.models.requests import Request

    out = tmp_path / "o"
    cfg = _config(tiny_model_dir, out, max_steps=2, save_steps=1)
    trainer = build_trainer(cfg, _examples(8))
    trainer.train()
    trainer.save_model(str(out))
    for folder in (out, out / "checkpoint-1", out / "checkpoint-2"):
        for name in PROCESSOR_FILES:
            if (tiny_model_dir / name).is_file():
                assert (folder / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
        assert (folder / "model.safetensors").is_file() and (folder / "config.json").is_file()
    assert json.loads((out / "generation_config.json").read_text())["do_sample"] is False
    assert json.loads((out / "processor_config.json").read_text())["processor_class"] == (
        "Qwen2_5_VLProcessor"
    )
    model = AutoModelForImageTextToText.from_pretrained(str(out))
    trained = dict(trainer.model.named_parameters())
    for name, p in model.named_parameters():
        assert torch.equal(p, trained[name].detach()), name
    assert load_processor(out).tokenizer.eos_token == "<|im_end|>"
    backend = TransformersBackend(out, device="cpu", dtype="float32")
    q = [{"type": "image"}, {"type": "text", "text": "how far is the chair?"}]
    [done] = backend.generate(
        [Request([{"role": "user", "content": q}], (_image(1),), id="q")], Sampling(max_tokens=4)
    )
    assert done.error is None and len(done.choices) == 1
    assert done.prompt_tokens > 4 and isinstance(done.choices[0].text, str)


def test_cli_trains_resumes_and_reports(tiny_model_dir, tmp_path):
    data = _write_shards(tmp_path / "ds", 4)
    out = tmp_path / "run"
    lines = [f"{k}: {json.dumps(v)}" for k, v in SMALL.items()]
    config = _yaml(
        tmp_path,
        "\n".join(
            [
                "stage: sft",
                f"model: {tiny_model_dir}",
                f"output_dir: {out}",
                f"data: [{{kind: vst, path: {data}}}]",
                "global_batch_size: 2",
                "learning_rate: 1.0e-3",
                "save_steps: 1",
                *lines,
            ]
        ),
    )
    runner = CliRunner()
    res = runner.invoke(app, ["train", "sft", str(config), "-o", "max_steps=2"])
    assert res.exit_code == 0, res.output
    assert "stage" in res.output and "2 = 1 per device x 2 accumulation x 1" in res.output
    assert f"plot {out / 'metrics.png'}" in " ".join(res.output.split())
    assert (out / "metrics.png").is_file() and len(read_metrics(out / "metrics.jsonl")) == 2
    # the same output again without --resume: refused, nothing touched
    res = runner.invoke(app, ["train", "sft", str(config), "-o", "max_steps=3"])
    assert res.exit_code == 2 and "--resume" in res.output
    res = runner.invoke(app, ["train", "sft", str(config), "--resume", "-o", "max_steps=3"])
    assert res.exit_code == 0, res.output
    assert "resumed from" in res.output
    assert [r["step"] for r in read_metrics(out / "metrics.jsonl")] == [1, 2, 3]
    res = runner.invoke(app, ["train", "sft", str(config), "-o", "nonsense=1"])
    assert res.exit_code == 2 and "nonsense: unknown field" in res.output


# -- shipped configs -------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("name", "stage", "lr", "vision_lr", "epochs", "system"),
    [
        ("qwen2_5_vl_3b_sft", "sft", 5e-5, 5e-6, 1.0, "plain"),
        ("qwen2_5_vl_7b_sft", "sft", 5e-5, 5e-6, 1.0, "plain"),
        ("qwen2_5_vl_3b_cot", "cot", 1e-5, 1e-6, 2.0, "think"),
        ("qwen2_5_vl_7b_cot", "cot", 1e-5, 1e-6, 2.0, "think"),
    ],
)
def test_paper_recipes(name, stage, lr, vision_lr, epochs, system):
    from vst.engine.config import load_yaml

    cfg = parse_train_config(load_yaml(ROOT / "configs" / "train" / f"{name}.yaml"), name)
    assert (cfg.stage, cfg.learning_rate, cfg.vision_learning_rate) == (stage, lr, vision_lr)
    assert (cfg.epochs, cfg.system, cfg.max_length, cfg.global_batch_size) == (
        epochs,
        system,
        16384,
        128,
    )
    assert cfg.warmup_ratio == 0.03 and cfg.lr_scheduler == "cosine" and cfg.packing
    assert (
        cfg.bf16
        and cfg.gradient_checkpointing
        and cfg.accumulation(8) * 8 * (cfg.per_device_batch_size) == 128
    )


def test_tiny_cpu_demo_recipe():
    from vst.engine.config import load_yaml

    cfg = parse_train_config(load_yaml(ROOT / "configs" / "train" / "tiny_cpu_demo.yaml"), "demo")
    assert cfg.use_cpu and not cfg.bf16 and cfg.attention() == "sdpa"
    assert cfg.accumulation(1) == 2 and cfg.max_steps == 30
    assert str(cfg.model) == "outputs/tiny-model"  # `vst models tiny --out outputs/tiny-model`
    assert cfg.data == [{"kind": "vst", "path": "outputs/engine-demo", "weight": 1.0}]


def test_accelerate_configs_load():
    from accelerate.commands.config.config_args import load_config_from_file

    folder = ROOT / "configs" / "accelerate"
    for name, kind in (("zero2", "DEEPSPEED"), ("zero3", "DEEPSPEED"), ("fsdp", "FSDP")):
        cfg = load_config_from_file(str(folder / f"{name}.yaml"))
        assert cfg.distributed_type.value == kind
    for stage in (2, 3):
        ds = json.loads((folder / f"ds_zero{stage}.json").read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert ds["gradient_accumulation_steps"] == "auto"  # the Trainer fills it in
    fsdp = load_config_from_file(str(folder / "fsdp.yaml")).fsdp_config
    assert fsdp["fsdp_state_dict_type"] == "FULL_STATE_DICT"
