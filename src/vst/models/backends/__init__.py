"""Model backends: one ``generate(requests, sampling) -> completions`` interface over local
transformers models, vLLM's offline engine and OpenAI-compatible HTTP endpoints, with a disk
cache in front of any of them."""

from vst.models.backends.base import (
    Backend,
    BackendError,
    Choice,
    Completion,
    Sampling,
    request_seed,
)
from vst.models.backends.cache import CachedBackend
from vst.models.backends.factory import BackendKind, open_backend
from vst.models.backends.scripted import ScriptedBackend

__all__ = [
    "Backend",
    "BackendError",
    "BackendKind",
    "CachedBackend",
    "Choice",
    "Completion",
    "Sampling",
    "ScriptedBackend",
    "open_backend",
    "request_seed",
]
