"""Adapters exposing :func:`vst.rewards.compute_reward` with the call signatures of three RL
frameworks. The sample's reward spec travels as a dataset column (the engine's ``reward``
field, a JSON string per sample, or a dict; a list of specs means "any of"), or inside the
``meta_info`` JSON of ``vst data export --format verl`` (``{"mode", "reward", "task"}``: its
``reward`` is used). No framework is imported here.

TRL (``GRPOTrainer(reward_funcs=...)``)
    Matched against TRL ``docs/source/grpo_trainer.md`` ("Using a custom reward function",
    huggingface/trl commit 010dd23f) and ``trl/trainer/grpo_trainer.py``: the trainer calls
    ``reward_func(prompts=..., completions=..., completion_ids=..., trainer_state=...,
    **columns)`` with every dataset column except ``prompt`` as a keyword list; completions are
    strings (standard format) or lists of message dicts (conversational format,
    ``[{"role": "assistant", "content": ...}]``, content possibly a list of ``{"type": "text"}``
    parts); it must return one float per completion, or ``None`` for "not applicable"
    (turned into NaN and ignored). Use :data:`trl_reward` or :func:`make_trl_reward`.

verl (``custom_reward_function.path=.../adapters.py``, ``.name=verl_compute_score``)
    Matched against volcengine/verl ``verl/workers/reward_manager/naive.py`` (commit 10a6180e):
    ``compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)`` with
    ``ground_truth = non_tensor_batch["reward_model"]["ground_truth"]``, returning a float or a
    dict with a ``"score"`` key (other keys are logged). Extra keyword arguments come from
    ``custom_reward_function.reward_kwargs``.

EasyR1 (``worker.reward.reward_type: batch``,
``worker.reward.reward_function: .../adapters.py:easyr1_compute_score``)
    Matched against hiyouga/EasyR1 ``verl/workers/reward/function.py`` (commit 46c6c210;
    ``BatchFunctionRewardManager``) and ``examples/reward_function/math.py``: the function gets
    a list of ``{"response": str, "response_length": int, "ground_truth": str}`` (ground truth
    from ``data.answer_key`` — set it to the ``reward`` column) plus
    ``reward_function_kwargs`` as keywords, and returns one ``{"overall", "format",
    "accuracy"}`` dict of floats per input (every key is averaged into the metrics).

    Training EasyR1 on ``vst data export RUN --format verl --out DIR``: ``data.train_files=DIR``
    (its Parquet files), ``data.prompt_key=question``, ``data.image_key=images``,
    ``data.answer_key=meta_info`` (the ground truth this function gets is then the row's
    ``meta_info`` JSON, whose ``reward`` is the exact vst spec; the ``answer`` column is what
    the release's own reward function reads), ``worker.reward.reward_function=
    .../vst/rewards/adapters.py:easyr1_compute_score``. The think system prompt comes from
    EasyR1's prompt template (the export leaves it out of ``question``); 3D detection rows
    (``meta_info.mode == ["bbox3d"]``) are trained without it in the release. The same
    ``meta_info`` string works as verl's ``reward_model.ground_truth``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from vst.rewards.reward import DEFAULT_W_ACC, DEFAULT_W_FMT, compute_reward, load_reward_specs

__all__ = [
    "completion_text",
    "easyr1_compute_score",
    "make_trl_reward",
    "reward_specs",
    "trl_reward",
    "verl_compute_score",
]

_COMPONENTS = ("overall", "format", "accuracy")


def completion_text(completion: Any) -> str:
    """The generated text of a TRL completion: a string as is; a message dict's content; for a
    list of messages, the last assistant message (else the last message). List contents join
    their ``{"type": "text", "text": ...}`` parts. Anything else gives ``""``."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, Mapping):
        content = completion.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, Sequence):
            return "".join(
                part["text"]
                for part in content
                if isinstance(part, Mapping) and isinstance(part.get("text"), str)
            )
        return ""
    if isinstance(completion, Sequence) and completion:
        messages = [m for m in completion if isinstance(m, Mapping)]
        assistant = [m for m in messages if m.get("role") == "assistant"]
        pick = assistant[-1] if assistant else (messages[-1] if messages else None)
        return completion_text(pick) if pick is not None else ""
    return ""


def _weights(w_acc: float | None, w_fmt: float | None, format_weight: float | None):
    if format_weight is not None:  # EasyR1 convention: overall = (1 - fw) * acc + fw * fmt
        return 1.0 - float(format_weight), float(format_weight)
    return (
        DEFAULT_W_ACC if w_acc is None else float(w_acc),
        DEFAULT_W_FMT if w_fmt is None else float(w_fmt),
    )


def make_trl_reward(
    *,
    w_acc: float = DEFAULT_W_ACC,
    w_fmt: float = DEFAULT_W_FMT,
    component: str = "overall",
    column: str = "reward",
    caption: str = "score",
    name: str | None = None,
) -> Callable[..., list[float | None]]:
    """A TRL ``reward_funcs`` callable ``(prompts, completions, **kwargs) -> list[float]``.

    ``column``: the dataset column holding each sample's reward spec (JSON string or dict).
    ``component``: ``"overall"`` (default), ``"format"`` or ``"accuracy"`` (pass several
    callables with TRL's ``reward_weights`` to log the parts separately). ``caption``:
    ``"score"`` gives caption samples their format term (accuracy 0); ``"none"`` returns None
    for them so TRL ignores them. The callable's ``__name__`` (TRL's log key) is ``name`` or
    ``vst_<component>``."""
    if component not in _COMPONENTS:
        raise ValueError(f"component must be one of {_COMPONENTS}, got {component!r}")
    if caption not in ("score", "none"):
        raise ValueError(f"caption must be 'score' or 'none', got {caption!r}")

    def reward_func(
        prompts: Sequence[Any] | None = None,
        completions: Sequence[Any] | None = None,
        **kwargs: Any,
    ) -> list[float | None]:
        completions = list(completions or [])
        specs = kwargs.get(column)
        if specs is None or len(specs) != len(completions):
            raise ValueError(
                f"TRL reward needs a dataset column {column!r} with one reward spec per "
                f"completion (got {None if specs is None else len(specs)} for "
                f"{len(completions)} completions)"
            )
        out: list[float | None] = []
        for completion, spec in zip(completions, specs, strict=True):
            result = compute_reward(completion_text(completion), spec, w_acc=w_acc, w_fmt=w_fmt)
            if caption == "none" and not result["checkable"]:
                out.append(None)
            else:
                out.append(float(result[component]))
        return out

    reward_func.__name__ = name or f"vst_{component}"
    reward_func.__qualname__ = reward_func.__name__
    return reward_func


trl_reward = make_trl_reward()
"""TRL reward function with the default weights, reading the ``reward`` column."""


def reward_specs(value: Any) -> list[dict[str, Any]]:
    """The spec(s) a ground-truth field holds: a spec or a list of specs (dict / list or
    JSON), or an exported ``meta_info`` (a dict or JSON object with ``reward`` and no
    ``ground_truth``: its ``reward``). ValueError otherwise."""
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"reward spec is not valid JSON: {exc}") from None
    if isinstance(value, Mapping) and "reward" in value and "ground_truth" not in value:
        value = value["reward"]
    return load_reward_specs(value)


def _verl_spec(ground_truth: Any, extra_info: Any) -> list[dict[str, Any]]:
    """The reward spec(s) from verl's ``ground_truth`` (:func:`reward_specs`), else from
    ``extra_info["reward"]``, else ``{"mode": extra_info["reward_mode"], "ground_truth":
    ground_truth}``."""
    try:
        return reward_specs(ground_truth)
    except ValueError:
        pass
    if isinstance(extra_info, Mapping):
        if extra_info.get("reward") is not None:
            return reward_specs(extra_info["reward"])
        if extra_info.get("reward_mode") is not None:
            return load_reward_specs(
                {"mode": extra_info["reward_mode"], "ground_truth": ground_truth}
            )
    raise ValueError(
        "verl ground_truth must be a vst reward spec ({'mode', 'ground_truth'}, dict or JSON), "
        "or extra_info must carry 'reward' or 'reward_mode'"
    )


def verl_compute_score(
    data_source: str | None,
    solution_str: str,
    ground_truth: Any,
    extra_info: Mapping[str, Any] | None = None,
    *,
    w_acc: float = DEFAULT_W_ACC,
    w_fmt: float = DEFAULT_W_FMT,
    return_dict: bool = False,
    **kwargs: Any,
) -> float | dict[str, float]:
    """verl ``compute_score``: the overall reward of ``solution_str`` as a float, or with
    ``return_dict`` ``{"score", "format", "accuracy"}`` (verl reads ``"score"`` and logs the
    rest). ``data_source`` is not used (the spec says how to score)."""
    spec = _verl_spec(ground_truth, extra_info)
    result = compute_reward(solution_str, spec, w_acc=w_acc, w_fmt=w_fmt)
    if return_dict:
        return {
            "score": result["overall"],
            "format": result["format"],
            "accuracy": result["accuracy"],
        }
    return result["overall"]


def easyr1_compute_score(
    reward_inputs: Sequence[Mapping[str, Any]] | Mapping[str, Any],
    *,
    w_acc: float | None = None,
    w_fmt: float | None = None,
    format_weight: float | None = None,
    **kwargs: Any,
) -> list[dict[str, float]] | dict[str, float]:
    """EasyR1 batch reward: for each ``{"response", "ground_truth", ...}`` input, a dict
    ``{"overall", "format", "accuracy"}`` of floats. ``ground_truth`` is the reward spec.
    Weights: ``w_acc``/``w_fmt`` (default 0.5/0.5), or EasyR1's ``format_weight`` (overall =
    (1 - fw) * accuracy + fw * format). A single dict (``reward_type: sequential``) gives a
    single dict. The ground truth may also be a list of specs or an exported ``meta_info``
    (:func:`reward_specs`)."""
    wa, wf = _weights(w_acc, w_fmt, format_weight)
    if not all(math.isfinite(w) for w in (wa, wf)):
        raise ValueError("weights must be finite")

    def one(item: Mapping[str, Any]) -> dict[str, float]:
        spec = reward_specs(item["ground_truth"])
        result = compute_reward(item.get("response"), spec, w_acc=wa, w_fmt=wf)
        return {k: float(result[k]) for k in _COMPONENTS}

    if isinstance(reward_inputs, Mapping):
        return one(reward_inputs)
    return [one(item) for item in reward_inputs]
