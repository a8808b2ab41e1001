"""The one interface every model runner implements.

``Backend.generate(requests, sampling) -> list[Completion]``: one :class:`Completion` per
:class:`~vst.models.requests.Request`, in order. A completion carries ``sampling.n`` choices
(text, finish reason, tokens) and the prompt's token count, or an ``error`` when that request
failed for good (after the backend's retries): one failed request never fails the others, and
the caller decides what to do with it (``vst predict`` leaves it for the next run).

Seeds: with ``temperature == 0`` decoding is greedy and the seed is unused. With sampling, each
request's randomness comes from ``Sampling.seed`` and the request's fingerprint
(:func:`request_seed`), so the same request gets the same text whatever batch it is in, where
the backend allows it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

from vst.models.requests import Request

__all__ = [
    "Backend",
    "BackendError",
    "Choice",
    "Completion",
    "FinishReason",
    "ProgressCallback",
    "Sampling",
    "request_seed",
]

FinishReason = Literal["stop", "length"]
ProgressCallback = Callable[[int], None]
"""Called with the number of requests just finished (for progress bars)."""


class BackendError(RuntimeError):
    """A backend cannot run at all (missing extra, unreadable model directory, bad option):
    one line naming what is wrong."""


@dataclass(frozen=True)
class Sampling:
    """Decoding settings. ``temperature`` 0 means greedy; ``top_k`` 0 means no top-k cut;
    ``stop`` strings end a choice (not included in its text); ``seed`` makes sampling
    reproducible (see :func:`request_seed`)."""

    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    max_tokens: int = 512
    n: int = 1
    seed: int = 0
    repetition_penalty: float = 1.0
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "stop", tuple(self.stop))
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.n < 1:
            raise ValueError(f"n must be >= 1, got {self.n}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def key(self) -> dict[str, Any]:
        """The settings as a JSON-able dict (cache keys, prediction records)."""
        d = asdict(self)
        d["stop"] = list(self.stop)
        return d


def request_seed(sampling: Sampling, request: Request, index: int = 0) -> int:
    """The seed of choice ``index`` of ``request``: a 63-bit hash of ``sampling.seed``, the
    request's fingerprint and ``index`` (independent of batching and worker count)."""
    digest = hashlib.sha256(f"{sampling.seed}:{request.fingerprint()}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


@dataclass(frozen=True)
class Choice:
    """One generated answer: its text (special tokens removed), why it ended and its length."""

    text: str
    finish_reason: FinishReason
    completion_tokens: int


@dataclass(frozen=True)
class Completion:
    """The answer to one request: ``choices`` (``sampling.n`` of them) and the prompt's token
    count, or ``error`` (a one-line reason) and no choices. ``cached`` marks a completion read
    from the disk cache."""

    choices: tuple[Choice, ...] = ()
    prompt_tokens: int = 0
    error: str | None = None
    cached: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.error is None and bool(self.choices)

    @property
    def text(self) -> str:
        """The first choice's text ("" for a failed request)."""
        return self.choices[0].text if self.choices else ""

    @property
    def completion_tokens(self) -> int:
        return sum(c.completion_tokens for c in self.choices)

    @classmethod
    def failed(cls, reason: str) -> Completion:
        return cls(error=reason)


@runtime_checkable
class Backend(Protocol):
    """A model runner. ``model_id`` names the model (part of cache keys); ``settings`` holds
    whatever else changes its outputs for the same request (pixel limits, dtype) and is part of
    cache keys too."""

    model_id: str

    @property
    def settings(self) -> dict[str, Any]: ...

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]: ...

    def close(self) -> None: ...
