"""vst.rewards.adapters: TRL, verl and EasyR1 call signatures with realistic inputs."""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path

import pytest

from vst.rewards.adapters import (
    completion_text,
    easyr1_compute_score,
    make_trl_reward,
    trl_reward,
    verl_compute_score,
)

MCQ = json.dumps({"mode": "mcq", "ground_truth": "B"})
NUMERIC = json.dumps({"mode": "numeric", "ground_truth": 44})
CAPTION = json.dumps({"mode": "caption", "ground_truth": "A room."})
DET = json.dumps(
    {"mode": "det3d", "ground_truth": [{"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "c"}]}
)
DET_ANSWER = (
    '```json\n[{"bbox_3d": [0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0], "label": "c"}]\n```'
)


def test_trl_conversational_completions():
    # TRL conversational format: each completion is a list of message dicts; dataset columns
    # (here "reward", one JSON spec per completion) arrive as keyword lists
    prompts = [[{"role": "user", "content": "Which is closer?\nA. lamp\nB. sofa"}]] * 3 + [
        [{"role": "user", "content": "How tall is the lamp? In centimeters."}]
    ]
    completions = [
        [{"role": "assistant", "content": "<think>the sofa is nearer</think>B"}],
        [{"role": "assistant", "content": "<think>hmm</think>A"}],
        [{"role": "assistant", "content": "B"}],
        [{"role": "assistant", "content": [{"type": "text", "text": "<think>x</think>44 cm"}]}],
    ]
    rewards = trl_reward(
        prompts=prompts,
        completions=completions,
        completion_ids=[[1, 2]] * 4,
        trainer_state=None,
        reward=[MCQ, MCQ, MCQ, NUMERIC],
        task=["si_depth_point"] * 3 + ["si_measurement"],
    )
    assert rewards == [1.0, 0.5, 0.5, 1.0]
    assert all(isinstance(r, float) for r in rewards)
    assert trl_reward.__name__ == "vst_overall"


def test_trl_standard_completions_components_and_caption():
    completions = ["<think>a</think>B", "B", "<think>a</think>A cosy room."]
    specs = [MCQ, json.loads(MCQ), CAPTION]  # JSON strings or dicts
    fmt = make_trl_reward(component="format")
    acc = make_trl_reward(component="accuracy", name="acc")
    assert fmt(prompts=["q"] * 3, completions=completions, reward=specs) == [1.0, 0.0, 1.0]
    assert acc(prompts=["q"] * 3, completions=completions, reward=specs) == [1.0, 1.0, 0.0]
    assert acc.__name__ == "acc"
    drop = make_trl_reward(caption="none")
    assert drop(prompts=["q"] * 3, completions=completions, reward=specs) == [1.0, 0.5, None]
    weighted = make_trl_reward(w_acc=1.0, w_fmt=0.25, column="spec")
    assert weighted(prompts=["q"], completions=["<think>a</think>B"], spec=[MCQ]) == [1.25]


def test_trl_errors():
    with pytest.raises(ValueError):
        trl_reward(prompts=["q"], completions=["B"])  # no reward column
    with pytest.raises(ValueError):
        trl_reward(prompts=["q"], completions=["B", "C"], reward=[MCQ])
    with pytest.raises(ValueError):
        make_trl_reward(component="total")


@pytest.mark.parametrize(
    ("completion", "text"),
    [
        ("plain", "plain"),
        ([{"role": "assistant", "content": "x"}], "x"),
        ([{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}], "a"),
        (
            [{"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}]}],
            "a",
        ),
        ({"role": "assistant", "content": "d"}, "d"),
        ([], ""),
        (None, ""),
        ([{"role": "assistant", "content": None}], ""),
    ],
)
def test_completion_text(completion, text):
    assert completion_text(completion) == text


def test_verl_compute_score():
    # verl's reward manager calls compute_score(data_source=, solution_str=, ground_truth=,
    # extra_info=) with ground_truth = non_tensor_batch["reward_model"]["ground_truth"]
    score = verl_compute_score(
        data_source="vst/si_depth_point",
        solution_str="<think>the sofa is nearer</think>B",
        ground_truth=MCQ,
        extra_info={"index": 3, "num_turns": None},
    )
    assert score == 1.0 and isinstance(score, float)
    assert verl_compute_score("vst", "A", json.loads(MCQ), None) == 0.0
    full = verl_compute_score(
        data_source="vst",
        solution_str="<think>r</think>" + DET_ANSWER,
        ground_truth=DET,
        extra_info={},
        return_dict=True,
    )
    assert full == {"score": 1.0, "format": 1.0, "accuracy": 1.0}
    # a plain ground truth plus the mode in extra_info
    assert (
        verl_compute_score("vst", "<think>r</think>44 cm", "44", {"reward_mode": "numeric"}) == 1.0
    )
    assert verl_compute_score("vst", "<think>r</think>B", "ignored", {"reward": MCQ}) == 1.0
    assert verl_compute_score("vst", "<think>r</think>B", MCQ, None, w_acc=1.0, w_fmt=0.0) == 1.0
    with pytest.raises(ValueError):
        verl_compute_score("vst", "B", "B", None)


def test_easyr1_batch():
    # EasyR1 BatchFunctionRewardManager: a list of {"response", "response_length",
    # "ground_truth"} (ground_truth from data.answer_key, here the reward column)
    inputs = [
        {"response": "<think>r</think>B", "response_length": 7, "ground_truth": MCQ},
        {"response": "<think>r</think>A", "response_length": 7, "ground_truth": MCQ},
        {"response": "<think>r</think>" + DET_ANSWER, "response_length": 40, "ground_truth": DET},
        {"response": "<think>r</think>0.44 m", "response_length": 9, "ground_truth": NUMERIC},
    ]
    scores = easyr1_compute_score(inputs)
    assert scores == [
        {"overall": 1.0, "format": 1.0, "accuracy": 1.0},
        {"overall": 0.5, "format": 1.0, "accuracy": 0.0},
        {"overall": 1.0, "format": 1.0, "accuracy": 1.0},
        {"overall": 0.5, "format": 1.0, "accuracy": 0.0},
    ]
    for s in scores:
        assert set(s) == {"overall", "format", "accuracy"}
        assert all(isinstance(v, float) and math.isfinite(v) for v in s.values())
    # EasyR1's reward_function_kwargs convention: format_weight
    fw = easyr1_compute_score(inputs[:2], format_weight=0.1)
    assert [s["overall"] for s in fw] == pytest.approx([1.0, 0.1])
    # reward_type: sequential passes one dict
    assert easyr1_compute_score(inputs[0]) == {"overall": 1.0, "format": 1.0, "accuracy": 1.0}


def test_adapters_load_by_file_path():
    # EasyR1 and verl import the reward file by path (importlib spec_from_file_location)
    import vst.rewards.adapters as adapters

    path = Path(adapters.__file__)
    spec = importlib.util.spec_from_file_location("custom_reward_fn", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    out = module.easyr1_compute_score([{"response": "<think>r</think>B", "ground_truth": MCQ}])
    assert out[0]["overall"] == 1.0
    assert module.verl_compute_score("vst", "<think>r</think>B", MCQ, None) == 1.0
