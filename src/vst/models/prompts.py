"""System prompts of the VST release (byte for byte) and how a chat gets one.

``PLAIN_SYSTEM_PROMPT`` is Qwen2.5-VL's default system message, which the release uses for SFT,
evaluation and 3D detection; ``THINK_SYSTEM_PROMPT`` asks for ``<think> ... </think> answer`` and
is the system message of the CoT cold start and of GRPO (except 3D detection, which the release
trains without a thinking prompt).
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = [
    "PLAIN_SYSTEM_PROMPT",
    "THINK_SYSTEM_PROMPT",
    "SystemPrompt",
    "system_prompt",
    "with_system",
]

PLAIN_SYSTEM_PROMPT = "You are a helpful assistant."

THINK_SYSTEM_PROMPT = (
    "You are a helpful assistant. You should first think about the reasoning process in the mind "
    "and then provide the user with the answer. The reasoning process is enclosed within "
    "<think> </think> tags, i.e. <think> reasoning process here </think> answer here."
)

SystemPrompt = Literal["plain", "think"]


def system_prompt(kind: SystemPrompt | str) -> str:
    """The text of system prompt ``kind`` (``"plain"`` or ``"think"``)."""
    if kind == "plain":
        return PLAIN_SYSTEM_PROMPT
    if kind == "think":
        return THINK_SYSTEM_PROMPT
    raise ValueError(f"unknown system prompt {kind!r} (plain or think)")


def with_system(messages: list[dict[str, Any]], system: str | None) -> list[dict[str, Any]]:
    """``messages`` starting with a system turn: unchanged if the first turn is already a system
    turn or ``system`` is None (the chat template then adds the plain prompt), else with
    ``{"role": "system", "content": [{"type": "text", "text": system}]}`` put first."""
    if system is None or (messages and messages[0].get("role") == "system"):
        return list(messages)
    return [{"role": "system", "content": [{"type": "text", "text": system}]}, *messages]
