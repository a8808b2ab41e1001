"""``open_backend``: a backend from what a user types (a model directory or an endpoint URL).

* ``http://`` / ``https://`` -> :class:`~vst.models.backends.openai.OpenAIBackend`
  (any OpenAI-compatible endpoint: ``vllm serve``, SGLang, ``vst models serve``, hosted APIs);
* a directory -> :class:`~vst.models.backends.transformers.TransformersBackend`, or
  :class:`~vst.models.backends.vllm.VLLMBackend` with ``kind="vllm"`` (extra ``vst[vllm]``).

With ``cache_dir`` the backend is wrapped in a
:class:`~vst.models.backends.cache.CachedBackend`, so a rerun of the same requests costs nothing.
Each implementation is imported only when asked for (torch, transformers and vLLM are heavy, and
vLLM is optional).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from vst.models.backends.base import Backend, BackendError

__all__ = ["BackendKind", "backend_options", "open_backend", "resolve_kind"]

BackendKind = Literal["auto", "transformers", "vllm", "openai"]


def resolve_kind(model: str, kind: BackendKind) -> str:
    """The backend ``open_backend`` would use for ``model`` (``auto``: a URL is ``openai``, a
    folder ``transformers``); raises :class:`BackendError` when ``kind`` cannot take ``model``."""
    is_url = model.startswith(("http://", "https://"))
    if kind == "auto":
        return "openai" if is_url else "transformers"
    if kind == "openai" and not is_url:
        raise BackendError(f"the openai backend needs an http(s) URL, got {model!r}")
    if kind in ("transformers", "vllm") and is_url:
        raise BackendError(f"the {kind} backend needs a model directory, got the URL {model!r}")
    return kind


_CLI_OPTIONS = {
    # command-line name: (backends that take it, constructor keyword)
    "batch_size": (("transformers",), "batch_size"),
    "concurrency": (("openai",), "concurrency"),
    "served_model": (("openai",), "model"),
    "api_key_env": (("openai",), "api_key_env"),
}


def backend_options(model: str, kind: BackendKind, **given: Any) -> dict[str, Any]:
    """Constructor options from command-line values (``None`` = not given): each one is checked
    against the backend ``model`` opens as and renamed to its keyword (``served_model`` ->
    ``model``). Raises :class:`BackendError` naming an option the backend does not take."""
    chosen = resolve_kind(model, kind)
    options: dict[str, Any] = {}
    for name, value in given.items():
        if value is None:
            continue
        takers, keyword = _CLI_OPTIONS[name]
        if chosen not in takers:
            flag = "--" + name.replace("_", "-")
            raise BackendError(f"{flag} applies to the {' or '.join(takers)} backend, not {chosen}")
        options[keyword] = value
    return options


def open_backend(
    model: str | Path,
    /,
    kind: BackendKind = "auto",
    cache_dir: str | Path | None = None,
    **options: Any,
) -> Backend:
    """The backend for ``model`` (a local model directory or an endpoint URL); ``options`` go to
    its constructor (``model=`` among them is the served model name of an endpoint, as
    :func:`backend_options` renames ``--served-model``: so ``model`` here is positional only).
    Raises :class:`BackendError` (one line) when it cannot be opened."""
    model = str(model)
    chosen = resolve_kind(model, kind)
    backend: Backend
    if chosen == "openai":
        from vst.models.backends.openai import OpenAIBackend

        backend = OpenAIBackend(model, **options)
    else:
        if not Path(model).is_dir():
            raise BackendError(f"model directory not found: {model}")
        if chosen == "vllm":
            from vst.models.backends.vllm import VLLMBackend

            backend = VLLMBackend(model, **options)
        elif chosen == "transformers":
            from vst.models.backends.transformers import TransformersBackend

            backend = TransformersBackend(model, **options)
        else:
            raise BackendError(f"unknown backend {kind!r} (auto, transformers, vllm or openai)")
    if cache_dir is not None:
        from vst.models.backends.cache import CachedBackend

        backend = CachedBackend(backend, cache_dir)
    return backend
