"""A backend that answers from a function: for tests, demos and dry runs without a model.

``ScriptedBackend(answer)`` calls ``answer(request, index)`` for each choice; it may return a
string (the text) or raise, which makes that request fail with the exception's message, as a
real backend reports a request it could not serve. Token counts are whitespace word counts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from vst.models.backends.base import Choice, Completion, ProgressCallback, Sampling
from vst.models.requests import Request

__all__ = ["ScriptedBackend"]


class ScriptedBackend:
    """Answers ``answer(request, choice_index)``; records every request it was sent in
    :attr:`calls` (one entry per ``generate`` call)."""

    def __init__(self, answer: Callable[[Request, int], str], model_id: str = "scripted") -> None:
        self._answer = answer
        self.model_id = model_id
        self.calls: list[list[Request]] = []

    @property
    def settings(self) -> dict[str, Any]:
        return {}

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]:
        self.calls.append(list(requests))
        out: list[Completion] = []
        for request in requests:
            try:
                texts = [self._answer(request, i) for i in range(sampling.n)]
            except Exception as exc:  # a scripted failure stands for a failed request
                out.append(Completion.failed(f"{type(exc).__name__}: {exc}"))
            else:
                prompt = " ".join(
                    c["text"] for m in request.messages for c in m["content"] if "text" in c
                )
                out.append(
                    Completion(
                        choices=tuple(Choice(t, "stop", max(1, len(t.split()))) for t in texts),
                        prompt_tokens=len(prompt.split()),
                    )
                )
            if progress is not None:
                progress(1)
        return out

    def close(self) -> None:
        pass
