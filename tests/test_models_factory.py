"""open_backend's choice of backend and the command-line options each backend takes."""

from __future__ import annotations

import pytest

from vst.models.backends import BackendError
from vst.models.backends.factory import backend_options, resolve_kind


def test_auto_picks_openai_for_urls_and_transformers_for_folders():
    assert resolve_kind("http://127.0.0.1:8000/v1", "auto") == "openai"
    assert resolve_kind("https://api.example.com/v1", "auto") == "openai"
    assert resolve_kind("outputs/tiny-model", "auto") == "transformers"
    assert resolve_kind("outputs/tiny-model", "vllm") == "vllm"
    with pytest.raises(BackendError, match="needs an http"):
        resolve_kind("outputs/tiny-model", "openai")


def test_options_go_to_the_backend_that_takes_them():
    url = "http://127.0.0.1:8000/v1"
    assert backend_options(
        url, "auto", served_model="qwen", api_key_env="MY_KEY", batch_size=None
    ) == {
        "model": "qwen",
        "api_key_env": "MY_KEY",
    }
    assert backend_options("m", "auto", batch_size=4, concurrency=None) == {"batch_size": 4}
    with pytest.raises(BackendError, match="--served-model applies to the openai backend, not"):
        backend_options("m", "auto", served_model="qwen")
    with pytest.raises(BackendError, match="--batch-size applies to the transformers backend"):
        backend_options(url, "auto", batch_size=2)
    with pytest.raises(BackendError, match="--concurrency applies to the openai backend, not vllm"):
        backend_options("m", "vllm", concurrency=2)


def test_served_model_option_reaches_the_openai_backend():
    """``--served-model`` becomes the constructor keyword ``model``: open_backend's own first
    argument must not collide with it (it did: TypeError, multiple values for 'model')."""
    from vst.models.backends import open_backend

    url = "http://127.0.0.1:9/v1"  # never contacted: the name is given, nothing is listed
    options = backend_options(url, "auto", served_model="qwen", api_key_env="NO_SUCH_KEY_VAR")
    backend = open_backend(url, "auto", None, **options)
    try:
        assert backend.model_id.endswith("qwen")
    finally:
        backend.close()
