"""vst vla train: the VLA config, the LIBERO parquet source, the held-out split, both action
vocabularies through the SFT trainer, and a tiny checkpoint that measurably learns actions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from typer.testing import CliRunner

from vst.engine.config import ConfigError
from vst.models.processor import load_processor
from vst.train.sources.base import ItemError
from vst.vla.action_tokens import ActionTokenizer, action_token
from vst.vla.convert import kept_steps
from vst.vla.dataset import convert_dataset
from vst.vla.episodes import Episode, Step
from vst.vla.policy import VLAPolicy
from vst.vla.train import ActionCollator, action_vocabulary, run_vla_training
from vst.vla.train_config import VLA_PRESET, load_vla_config, parse_vla_config
from vst.vla.train_data import LiberoParquetSource, action_text, split_episodes

INSTRUCTIONS = [
    "pick up the red bowl",
    "open the top drawer",
    "push the plate left",
    "turn on the stove",
    "put the cup on the plate",
]
STEPS = 6


def fixture_episodes() -> list[Episode]:
    """Five episodes of six steps: a picture per step (a colour per episode, a bright band per
    step), seeded random arm actions in [-0.9, 0.9] and an alternating -1/+1 gripper."""
    rng = np.random.default_rng(0)
    out = []
    for e, instruction in enumerate(INSTRUCTIONS):
        steps = []
        for t in range(STEPS):
            image = np.zeros((64, 64, 3), np.uint8)
            image[..., e % 3] = 60 + 30 * t
            image[8 * t : 8 * t + 8, :, (e + 1) % 3] = 255
            action = rng.uniform(-0.9, 0.9, 7)
            action[6] = 1.0 if (t + e) % 2 else -1.0
            steps.append(Step(image, action, instruction))
        out.append(Episode(f"demo_{e}", instruction, steps, True, "fixture"))
    return out


@pytest.fixture(scope="module")
def vla_data(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("vla_data") / "libero_fix"
    convert_dataset(fixture_episodes, out, "libero_fix")
    return out


def _config(model: Path, data: Path, out: Path, **kw):
    base = {
        "model": str(model),
        "output_dir": str(out),
        "data": [{"path": str(data), "name": "fix"}],  # mix order from the name, not tmp paths
        "global_batch_size": 4,
        "rows_per_device": 1,
        "max_length": 512,
        "learning_rate": 1e-2,
        "vision_learning_rate": 1e-2,
        "warmup_ratio": 0.0,
        "lr_scheduler": "constant",
        "held_out": 0.2,
        "save_steps": 1000,
        "gradient_checkpointing": False,
        "use_cpu": True,
    }
    return parse_vla_config({**base, **kw})


# ------------------------------------------------------------------ config


def test_preset_is_the_release_recipe(tiny_model_dir, tmp_path):
    cfg = parse_vla_config(
        {"model": str(tiny_model_dir), "output_dir": str(tmp_path), "data": [{"path": "d"}]}
    )
    assert (cfg.learning_rate, cfg.vision_learning_rate, cfg.warmup_ratio) == (5e-5, 5e-6, 0.1)
    assert (cfg.epochs, cfg.max_length, cfg.global_batch_size, cfg.rows_per_device) == (
        200.0,
        1024,
        128,
        16,
    )
    assert cfg.bf16 is False and cfg.lr_scheduler == "cosine" and cfg.packing is True
    assert cfg.system_text() is None  # no system turn, as the release trains
    assert cfg.vocabulary == "added" and cfg.bins == 256 and cfg.eval_every == 500
    assert set(VLA_PRESET) <= set(type(cfg).model_fields)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"stage": "sft"}, "stage: must be vla"),
        ({"system": "plain"}, "system: Input should be 'none'"),
        ({"vocabulary": "middle"}, "vocabulary: Input should be 'added' or 'last'"),
        ({"data": [{"path": "d", "kinds": 1}]}, "data.0.kinds: Extra inputs are not permitted"),
        ({"held_out": 1.0}, "held_out: Input should be less than 1"),
        ({"norm_stats": "missing.json"}, "norm_stats: missing.json is not a file"),
    ],
)
def test_bad_configs_name_the_field(tiny_model_dir, tmp_path, change, message):
    path = tmp_path / "vla.yaml"
    data = {
        "model": str(tiny_model_dir),
        "output_dir": str(tmp_path / "o"),
        "data": [{"path": "d"}],
    }
    path.write_text(json.dumps({**data, **change}))
    with pytest.raises(ConfigError, match=f"{path}: {message}"):
        load_vla_config(path)


# ------------------------------------------------------------------ data


def test_action_text_bins():
    text = action_text([-1.0, 0.0, 1.0, -3.0, 0.999, -0.9961, 2.0])
    # -1 -> bin 0; 0 -> bin 128 (edges at k/128 - 1); 1 and above -> 255; -3 clipped to bin 0
    assert text == "".join(action_token(b) for b in (0, 128, 255, 0, 255, 0, 255))


def test_source_examples_are_the_release_samples(vla_data):
    source = LiberoParquetSource("fix", vla_data)
    episodes = fixture_episodes()
    assert len(source) == sum(len(kept_steps(s.action for s in e.steps)) for e in episodes)
    ex = source.load(0)
    first = pq.read_table(sorted(vla_data.glob("*.parquet"))[0]).to_pylist()[0]
    assert ex.id == first["id"]
    user, answer = ex.messages
    assert user["role"] == "user" and user["content"][0] == {"type": "image"}
    assert user["content"][1]["text"] == f"What action should the robot take to {INSTRUCTIONS[0]}?"
    action = np.asarray(first["meta_info"]["action"])
    assert answer["content"][0]["text"] == action_text(action)
    assert ex.meta["episode"] == "libero_fix/demo_0" and ex.meta["step"] == 0
    assert ex.meta["action"] == pytest.approx(action.tolist())
    # the stored picture is the episode's frame rotated 180 degrees, pixel for pixel
    np.testing.assert_array_equal(np.asarray(ex.images[0]), episodes[0].steps[0].image[::-1, ::-1])
    assert not any(m["role"] == "system" for m in ex.messages)


def test_bad_rows_name_file_row_and_field(tmp_path, vla_data):
    table = pq.read_table(sorted(vla_data.glob("*.parquet"))[0]).to_pylist()
    table[1]["meta_info"]["action"] = [0.1, 0.2]
    table[2]["meta_info"]["action"] = None
    table[3]["images"] = []
    import pyarrow as pa

    from vst.vla.convert import LIBERO_SCHEMA

    path = tmp_path / "bad.parquet"
    pq.write_table(pa.Table.from_pylist(table, schema=LIBERO_SCHEMA), path)
    source = LiberoParquetSource("bad", path)
    source.load(0)
    with pytest.raises(ItemError, match=r"bad.parquet row 1: meta_info.action: expected 7"):
        source.load(1)
    with pytest.raises(ItemError, match=r"row 2: meta_info.action: missing"):
        source.load(2)
    with pytest.raises(ItemError, match=r"row 3: images: expected one image, got 0"):
        source.load(3)
    assert len(list(source.examples())) == len(table) - 3 and len(source.skipped) == 3


def test_split_holds_out_whole_episodes_reproducibly():
    episodes = [f"ep{k // 3}" for k in range(30)]  # 10 episodes of 3 rows
    split = split_episodes(episodes, 0.2, seed=4)
    assert len(split.held_out_episodes) == 2 and len(split.held_out) == 6
    assert {episodes[i] for i in split.held_out} == set(split.held_out_episodes)
    assert not {episodes[i] for i in split.train} & set(split.held_out_episodes)
    assert sorted(split.train + split.held_out) == list(range(30))
    again = split_episodes(episodes, 0.2, seed=4)
    assert again.held_out == split.held_out
    assert split_episodes(episodes, 0.0, seed=4).held_out == []
    assert len(split_episodes(episodes, 0.01, seed=4).held_out_episodes) == 1  # at least one
    with pytest.raises(ValueError, match=r"held_out: a fraction in \[0, 1\)"):
        split_episodes(episodes, 1.0, seed=0)


# ------------------------------------------------------------------ vocabularies


@pytest.mark.parametrize("vocabulary", ["added", "last"])
def test_targets_are_one_action_id_per_dimension(tiny_model_dir, vla_data, vocabulary):
    processor = load_processor(tiny_model_dir)
    base = processor.tokenizer.vocab_size
    tokens, remap = action_vocabulary(processor, vocabulary, 256)
    collator = ActionCollator(processor, remap=remap, packing=False, max_length=512)
    ex = LiberoParquetSource("fix", vla_data).load(3)
    enc = collator.encode(ex)
    trained = [int(t) for t in enc.labels if t != -100]
    bins = ActionTokenizer(bins=256).bin_indices(ex.meta["action"])
    im_end = processor.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert trained == [*tokens.encode(np.asarray(ex.meta["action"])), im_end]
    if vocabulary == "last":
        assert trained[:7] == [base - 1 - int(b) for b in bins]
        assert all(
            int(i) < base or int(i) == im_end or int(i) in processor.tokenizer.all_special_ids
            for i in enc.input_ids
        )  # no placeholder id reaches the model
    else:
        assert trained[:7] == [
            processor.tokenizer.convert_tokens_to_ids(action_token(int(b))) for b in bins
        ]


# ------------------------------------------------------------------ training


def _policy_hits(checkpoint: Path, skip: tuple[str, ...] = (), **kw) -> float:
    """The share of action values the policy gets within 0.02 of the demo's (a few bins), over
    every kept step of the fixture's episodes but those in ``skip`` (``libero_fix/demo_N``)."""
    policy = VLAPolicy(checkpoint, **kw)
    images, texts, actions = [], [], []
    for ep in fixture_episodes():
        if f"libero_fix/{ep.id}" in skip:
            continue
        for t in kept_steps(s.action for s in ep.steps):
            images.append(ep.steps[t].image)
            texts.append(ep.instruction)
            actions.append(ep.steps[t].action)
    return float((np.abs(policy.act_batch(images, texts) - np.array(actions)) < 0.02).mean())


@pytest.mark.slow
def test_tiny_checkpoint_learns_actions_last_vocabulary(tiny_model_dir, vla_data, tmp_path):
    cfg = _config(
        tiny_model_dir, vla_data, tmp_path / "run", vocabulary="last", max_steps=80, eval_steps=40
    )
    result = run_vla_training(cfg)
    rows = [json.loads(line) for line in result.eval_file.read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows] == [
        (40, "held_out"),
        (40, "train"),
        (80, "held_out"),
        (80, "train"),
    ]
    final = result.scores["train"]
    assert final["samples"] == 24 and result.held_out == 6  # 1 of 5 episodes held out
    # chance is 1/256; memorised training samples reach far above it
    assert final["token_accuracy"] >= 0.6, final
    assert final["l1_normalised"] < 0.25 and final["l1"] is not None
    out = result.output_dir
    info = json.loads((out / "vla.json").read_text())
    assert info["vocabulary"] == "last" and info["action_ids"][0] == 1023  # vocab_size - 1
    expected = split_episodes(LiberoParquetSource("fix", vla_data).episodes(), 0.2, seed=0)
    assert info["held_out_episodes"] == {"fix": expected.held_out_episodes}
    assert len(expected.held_out_episodes) == 1
    assert (out / "norm_stats.json").is_file() and (out / "vla_eval.png").is_file()
    assert "<|action_0|>" not in load_processor(out).tokenizer.get_vocab()  # own tokenizer kept
    # the policy (constrained greedy decoding, from vla.json + norm_stats.json) acts as trained
    held = tuple(expected.held_out_episodes)  # on the training episodes
    stats = out / "norm_stats.json"
    before = _policy_hits(tiny_model_dir, held, norm_stats=stats, vocabulary="last")
    after = _policy_hits(out, held)
    assert before < 0.15 and after > 0.4, (before, after)  # free-running: errors compound


@pytest.mark.slow
def test_added_vocabulary_grows_embeddings_and_saves_the_tokens(tiny_model_dir, vla_data, tmp_path):
    cfg = _config(tiny_model_dir, vla_data, tmp_path / "run", max_steps=100, eval_steps=100)
    result = run_vla_training(cfg)
    out = result.output_dir
    tokenizer = load_processor(out).tokenizer
    assert len(tokenizer) == 1037 + 256
    assert tokenizer.convert_tokens_to_ids("<|action_255|>") == 1037 + 255
    config = json.loads((out / "config.json").read_text())
    assert config["text_config"]["vocab_size"] == 1293
    assert result.scores["train"]["token_accuracy"] >= 0.5  # chance 1/256
    # the policy reads the checkpoint as it was trained: its first generated token is the
    # trained model's teacher-forced choice for the first action dimension
    policy = VLAPolicy(out)
    assert policy.vocabulary == "added"
    source = LiberoParquetSource("fix", vla_data)
    tokens, _ = action_vocabulary(load_processor(out), "added", 256)
    collator = ActionCollator(policy.processor, packing=False, max_length=512)
    ids = torch.tensor(tokens.allowed_ids())
    episodes = fixture_episodes()
    for i in range(0, len(source), 5):
        ex = source.load(i)
        batch = collator([ex])
        labels = batch.pop("labels")[0, 1:]
        batch.pop("vst_stats")
        with torch.no_grad():
            logits = policy.model(**batch).logits[0, :-1]
        first = int(torch.nonzero(torch.isin(labels, ids))[0])
        chosen = int(ids[logits[first, ids].argmax()])
        ep = episodes[int(ex.meta["episode"].rsplit("_", 1)[1])]
        frame = ep.steps[ex.meta["step"]].image  # as the environment renders it
        assert int(policy.generate_ids([frame], [ep.instruction])[0, 0]) == chosen, ex.id


def test_cli_train_prints_scores_and_outputs(tiny_model_dir, vla_data, tmp_path):
    from vst.cli import app

    config = tmp_path / "vla.yaml"
    config.write_text(
        json.dumps(
            {
                "model": str(tiny_model_dir),
                "output_dir": str(tmp_path / "run"),
                "data": [{"path": str(vla_data)}],
                "global_batch_size": 2,
                "rows_per_device": 1,
                "max_length": 512,
                "gradient_checkpointing": False,
                "use_cpu": True,
                "held_out": 0.2,
            }
        )
    )
    runner = CliRunner()
    result = runner.invoke(app, ["vla", "train", str(config), "-o", "max_steps=2"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "vocabulary added, 256 bins, 7 dims" in text
    assert "24 drawn, 6 held out" in text
    assert "held_out action-token accuracy" in text and "train action-token accuracy" in text
    assert (tmp_path / "run" / "vla.json").is_file()
    again = runner.invoke(app, ["vla", "train", str(config), "-o", "max_steps=2"])
    assert again.exit_code == 2 and "holds checkpoints" in " ".join(again.output.split())
    bad = runner.invoke(app, ["vla", "train", str(config), "-o", "vocabulary=middle"])
    assert bad.exit_code == 2 and "vocabulary" in bad.output


def test_shipped_configs_validate():
    from vst.engine.config import load_yaml

    root = Path(__file__).resolve().parents[1] / "configs" / "vla"
    for path in sorted(root.glob("*.yaml")):
        cfg = parse_vla_config(load_yaml(path), str(path))
        assert cfg.stage == "vla" and cfg.data_sources()
    release = parse_vla_config(load_yaml(root / "qwen2_5_vl_3b_libero_spatial.yaml"))
    assert (release.learning_rate, release.epochs, release.bf16) == (5e-5, 200.0, False)


@pytest.mark.slow
def test_resume_keeps_one_score_history(tiny_model_dir, vla_data, tmp_path):
    """A run killed after its step-2 checkpoint resumes there: the scores of the lost steps are
    dropped and scored again, once each, and the final weights equal an uninterrupted run's."""
    import shutil

    kw = {"max_steps": 4, "save_steps": 2, "eval_steps": 2, "eval_samples": 6}
    straight = run_vla_training(_config(tiny_model_dir, vla_data, tmp_path / "a", **kw))
    out = tmp_path / "b"
    run_vla_training(_config(tiny_model_dir, vla_data, out, **kw))
    shutil.rmtree(out / "checkpoint-4")  # as if killed between step 2 and the end
    resumed = run_vla_training(_config(tiny_model_dir, vla_data, out, **kw), resume=True)
    assert resumed.resumed_from == out / "checkpoint-2"
    rows = [json.loads(line) for line in resumed.eval_file.read_text().splitlines()]
    assert [(r["step"], r["split"]) for r in rows] == [
        (2, "held_out"),
        (2, "train"),
        (4, "held_out"),
        (4, "train"),
    ]
    assert resumed.scores == straight.scores
    from safetensors.torch import load_file

    a = load_file(straight.output_dir / "model.safetensors")
    b = load_file(out / "model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)


@pytest.mark.slow
def test_two_processes(tiny_model_dir, vla_data, tmp_path):
    """Two CPU processes (torchrun, gloo, loopback): the run trains, process 0 scores and
    writes; the action scores and vla.json are written once."""
    import os
    import socket
    import subprocess
    import sys

    config = tmp_path / "vla.yaml"
    config.write_text(
        json.dumps(
            {
                "model": str(tiny_model_dir),
                "output_dir": str(tmp_path / "run"),
                "data": [{"path": str(vla_data), "name": "fix"}],
                "global_batch_size": 2,
                "rows_per_device": 1,
                "max_length": 512,
                "max_steps": 2,
                "eval_steps": 1,
                "eval_samples": 4,
                "gradient_checkpointing": False,
                "use_cpu": True,
            }
        )
    )
    torchrun = Path(sys.executable).parent / "torchrun"
    with socket.socket() as s:  # a free loopback port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GLOO_SOCKET_IFNAME": "lo"}
    cmd = [str(torchrun), "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={port}"]
    cmd += ["-m", "vst.cli", "vla", "train", str(config)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    rows = [json.loads(line) for line in (tmp_path / "run" / "vla_eval.jsonl").open()]
    assert [(r["step"], r["split"]) for r in rows] == [
        (1, "held_out"),
        (1, "train"),
        (2, "held_out"),
        (2, "train"),
    ]
    assert proc.stdout.count("train action-token accuracy") == 1
    assert json.loads((tmp_path / "run" / "vla.json").read_text())["vocabulary"] == "added"
