"""GRPO learns: from the tiny checkpoint, on rule-checkable multiple-choice samples of a real
engine run, the accuracy reward rises from chance to >= 0.8.

The set: the engine's ``si_distance`` multiple-choice samples (four options, A-D) whose true
answer is ``C``: a policy can pick that answer up without seeing 3D. The tiny random model
first learns the answer *format* by a short SFT on the same questions with a random letter
each (so it answers one letter, right by chance about a quarter of the time); GRPO (vst's
reward, online filtering on) must then find the answer from the reward alone.
"""

from __future__ import annotations

import hashlib
import json
import random
from pathlib import Path

import numpy as np
import pytest

from vst.engine.config import parse_config
from vst.engine.imaging import decode_image
from vst.engine.runner import run
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import iter_rows, list_shards, shard_name, write_shard
from vst.train.config import parse_train_config
from vst.train.grpo import run_grpo
from vst.train.grpo_config import parse_grpo_config
from vst.train.metrics import read_metrics
from vst.train.trainer import run_training

CPU = {
    "bf16": False,
    "gradient_checkpointing": False,
    "use_cpu": True,
    "attn_implementation": "sdpa",
    "min_pixels": 3136,
    "max_pixels": 3136,
}


def _sets(engine: Path, out: Path) -> int:
    """Write the SFT warm-up set (random letters) and the RL set (true answers, all ``C``);
    returns the number of questions."""
    rng = random.Random(0)
    sft, rl = [], []
    for shard in list_shards(engine):
        for row in iter_rows(shard, ["task", "messages", "images", "reward"]):
            spec = json.loads(row["reward"])
            if spec["mode"] != "mcq" or spec["ground_truth"] != "C":
                continue
            turn = row["messages"][0]["content"]
            text = "".join(c["text"] or "" for c in turn if c["type"] == "text")
            picture = decode_image(row["images"][0]["bytes"])
            for samples, letter in ((sft, rng.choice("ABCD")), (rl, spec["ground_truth"])):
                samples.append(
                    Sample(
                        task=row["task"],
                        scenario="single_image",
                        messages=[user(None, text), assistant(letter)],
                        images=[picture],
                        answer=letter,
                        reward={"mode": "mcq", "ground_truth": letter},
                    )
                )
    for name, samples in (("sft", sft), ("rl", rl)):
        data = out / name / "data"
        data.mkdir(parents=True)
        key = hashlib.sha256(name.encode()).hexdigest()
        write_shard(data / shard_name(0, key), samples, "PNG")
    return len(rl)


@pytest.mark.slow
def test_grpo_raises_accuracy_from_chance(engine_scene_dirs, tiny_model_dir, tmp_path):
    engine = tmp_path / "engine"
    scenes = str(Path(engine_scene_dirs[0]).parent)
    config = {
        "output": str(engine),
        "seed": 3,
        "sources": [{"kind": "scenes", "path": scenes}],
        "tasks": [{"name": "si_distance", "per_scene": 40}],
        "workers": 1,
    }
    run(parse_config(config, "si_distance run"), progress=False)
    assert _sets(engine, tmp_path) >= 12
    sft = parse_train_config(
        {
            "stage": "sft",
            "model": str(tiny_model_dir),
            "output_dir": str(tmp_path / "sft_out"),
            "data": [{"kind": "vst", "path": str(tmp_path / "sft")}],
            "system": "plain",
            "learning_rate": 1e-2,
            "vision_learning_rate": 1e-2,
            "warmup_ratio": 0.0,
            "lr_scheduler": "constant",
            "global_batch_size": 8,
            "packing": False,
            "max_steps": 40,
            "max_length": 1024,
            "save_steps": 1000,
            "video_min_pixels": 3136,
            "video_max_pixels": 3136,
            **CPU,
        }
    )
    run_training(sft)
    grpo = parse_grpo_config(
        {
            "stage": "grpo",
            "model": str(tmp_path / "sft_out"),
            "output_dir": str(tmp_path / "rl_out"),
            "data": [{"kind": "vst", "path": str(tmp_path / "rl")}],
            "system": "plain",
            "learning_rate": 2e-3,
            "global_batch_size": 8,
            "num_generations": 4,
            "per_device_batch_size": 16,
            "max_completion_length": 4,
            "max_length": 1024,
            "max_steps": 16,
            "save_steps": 1000,
            "seed": 0,
            **CPU,
        }
    )
    rows = read_metrics(run_grpo(grpo).metrics)
    accuracy = [r["vst/accuracy"] for r in rows]
    assert len(accuracy) == 16
    # the first rollout samples the warmed-up model before any update: about one in four
    assert accuracy[0] <= 0.45, accuracy
    assert float(np.mean(accuracy[-4:])) >= 0.8, accuracy
    # as the policy gets it right, whole groups are all right and the filter drops them
    assert sum(r["vst/dropped_all_right"] for r in rows[-4:]) > 0
