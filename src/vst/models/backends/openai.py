"""``OpenAIBackend``: any OpenAI-compatible chat endpoint (``vllm serve``, SGLang,
``vst models serve``, hosted APIs) as a :class:`~vst.models.backends.base.Backend`.

Each request is one ``POST {base}/chat/completions`` carrying all ``sampling.n`` choices, its
pictures inlined as data URIs (:mod:`vst.models.openai_format`). Up to ``concurrency`` requests
are in flight at once over a keep-alive pool of as many connections, driven by one asyncio event
loop on a background thread (so ``generate`` also works where the caller already runs a loop).

Faults are retried per request with exponential backoff and jitter (a ``Retry-After`` header
wins): 408, 429 and 5xx replies, timeouts (``timeout`` seconds per attempt), connection errors,
connections dropped mid-reply, and replies that are not valid completions JSON. Other 4xx
replies are final. A request that still fails becomes ``Completion.failed`` with one line (the
status and the server's message, truncated); the other requests are unaffected.

The API key is read from the environment variable ``api_key_env`` and sent as
``Authorization: Bearer``; it is kept only inside the HTTP client (never in ``repr``,
``model_id``, ``settings`` or error text: a server echoing it back gets it masked).

Token accounting: :attr:`OpenAIBackend.usage` sums requests, retries, failures and tokens over
the backend's life. A reply's completion tokens are spread over its choices (the API reports
one total); prompt tokens are the server's count.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import json
import os
import queue
import random
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import asdict, dataclass
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx2

from vst.models.backends.base import (
    BackendError,
    Choice,
    Completion,
    FinishReason,
    ProgressCallback,
    Sampling,
)
from vst.models.openai_format import (
    DEFAULT_PIXEL_LIMITS,
    ImageFormat,
    sampling_to_body,
    to_openai_messages,
    video_processor_kwargs,
)
from vst.models.requests import Request
from vst.models.vision import PixelLimits

__all__ = ["OpenAIBackend", "Usage", "normalize_base_url"]

T = TypeVar("T")
_MESSAGE_CHARS = 200
_RETRY_STATUSES = frozenset({408, 429})


@dataclass
class Usage:
    """Running totals of one backend: HTTP ``requests`` sent (retries included), ``retries``,
    ``failures`` (requests given up on) and the tokens the server reported."""

    requests: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class _RetryableError(Exception):
    """An attempt failed in a way worth retrying; ``wait`` is the server's Retry-After."""

    def __init__(self, reason: str, wait: float | None = None) -> None:
        super().__init__(reason)
        self.wait = wait


class _FinalError(Exception):
    """An attempt failed in a way retrying cannot fix."""


def normalize_base_url(base_url: str) -> str:
    """``base_url`` without a trailing slash, ``/v1`` added when it has no path (so both
    ``http://host:8000`` and ``http://host:8000/v1`` work). Credentials in the URL are refused:
    they would end up in ``model_id`` and logs."""
    parts = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BackendError(f"not an http(s) URL: {base_url!r}")
    if parts.username or parts.password:
        raise BackendError("put credentials in the API key variable, not in the URL")
    if parts.query or parts.fragment:
        raise BackendError(f"the endpoint URL must not have a query or fragment: {base_url!r}")
    url = base_url.rstrip("/")
    return url if parts.path.strip("/") else url + "/v1"


def _retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


def _one_line(text: str, limit: int = _MESSAGE_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _json(content: bytes) -> Any:
    """Parsed JSON, or ``ValueError`` (also for nesting too deep to parse)."""
    try:
        return json.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def _server_message(content: bytes) -> str:
    """The error message of a reply body: ``error.message`` of a JSON error, else its text."""
    try:
        body = _json(content)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return error["message"]
        if isinstance(error, str):
            return error
        if isinstance(body.get("message"), str):
            return body["message"]
    return content[:4096].decode("utf-8", errors="replace")


def _finish_reason(value: Any) -> FinishReason:
    return "length" if value == "length" else "stop"


def _spread(total: int, parts: int) -> list[int]:
    """``total`` split into ``parts`` integers that differ by at most one."""
    base, extra = divmod(max(0, total), parts)
    return [base + (1 if k < extra else 0) for k in range(parts)]


def _parse_completion(data: Any, n: int) -> Completion:
    """A :class:`Completion` from a chat-completions reply body; raises :class:`_RetryableError` on
    a malformed body and :class:`_FinalError` when the server returned the wrong number of
    choices."""
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise _RetryableError("invalid reply: no 'choices' list")
    raw = data["choices"]
    texts: list[tuple[int, str, FinishReason]] = []
    for k, choice in enumerate(raw):
        if not isinstance(choice, dict) or not isinstance(choice.get("message"), dict):
            raise _RetryableError(f"invalid reply: choice {k} has no 'message'")
        content = choice["message"].get("content")
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise _RetryableError(f"invalid reply: choice {k} content is not a string")
        index = choice.get("index", k)
        if isinstance(index, bool) or not isinstance(index, int):
            raise _RetryableError(f"invalid reply: choice {k} index is not an integer")
        texts.append((index, content, _finish_reason(choice.get("finish_reason"))))
    if len(texts) != n or sorted(t[0] for t in texts) != list(range(n)):
        raise _FinalError(f"the server returned {len(texts)} choice(s) for n={n}")
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}

    def count(name: str) -> int:
        value = usage.get(name)
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 0
        return value if ok else 0

    tokens = _spread(count("completion_tokens"), n)
    texts.sort(key=lambda t: t[0])
    choices = tuple(Choice(text, reason, tokens[k]) for k, (_, text, reason) in enumerate(texts))
    return Completion(choices=choices, prompt_tokens=count("prompt_tokens"))


class _LoopThread:
    """An asyncio event loop on a daemon thread, for running coroutines from sync code."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._run, name="vst-openai-loop", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        if not self._thread.is_alive():
            self.loop.close()


class OpenAIBackend:
    """A chat-completions endpoint at ``base_url`` (``model=None``: the first model the
    server lists). See the module docstring for retries, keys and accounting. ``backoff`` is
    the first retry's delay in seconds (doubling, with jitter, up to ``max_backoff``, which also
    caps a server's ``Retry-After``); a reply over ``max_reply_bytes`` fails its request."""

    def __init__(
        self,
        base_url: str,
        *,
        model: str | None = None,
        api_key_env: str | None = "OPENAI_API_KEY",
        concurrency: int = 8,
        timeout: float = 60.0,
        max_retries: int = 5,
        limits: PixelLimits = DEFAULT_PIXEL_LIMITS,
        image_format: ImageFormat = "png",
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        max_reply_bytes: int = 64 * 1024 * 1024,
    ) -> None:
        if concurrency < 1:
            raise BackendError(f"concurrency must be >= 1, got {concurrency}")
        if not timeout > 0:
            raise BackendError(f"timeout must be > 0, got {timeout}")
        if max_retries < 0:
            raise BackendError(f"max_retries must be >= 0, got {max_retries}")
        if image_format not in ("png", "jpeg"):
            raise BackendError(f"image_format must be 'png' or 'jpeg', got {image_format!r}")
        self.base_url = normalize_base_url(base_url)
        self.concurrency = concurrency
        self.timeout = float(timeout)
        self.max_retries = max_retries
        self.limits = limits
        self.image_format: ImageFormat = image_format
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_reply_bytes = max_reply_bytes
        self.usage = Usage()
        self._jitter = random.Random(0)  # timing only; never affects outputs
        key = os.environ.get(api_key_env, "") if api_key_env else ""
        self._secret = key.strip()
        if self._secret and not (self._secret.isascii() and self._secret.isprintable()):
            raise BackendError(f"the API key in ${api_key_env} has characters a header cannot hold")
        headers = {"Authorization": f"Bearer {self._secret}"} if self._secret else {}
        self._semaphore: asyncio.Semaphore | None = None
        self._closed = False
        self._loop = _LoopThread()
        self._client = self._run(self._make_client(headers))
        try:
            self.model = model if model is not None else self._run(self._first_model())
        except BaseException:
            self.close()
            raise
        self.model_id = f"openai:{self.base_url}#{self.model}"

    # ------------------------------------------------------------------ public interface

    @property
    def settings(self) -> dict[str, Any]:
        return {"limits": self.limits.key(), "image_format": self.image_format}

    def __repr__(self) -> str:
        return (
            f"OpenAIBackend(base_url={self.base_url!r}, model={self.model!r}, "
            f"concurrency={self.concurrency})"
        )

    def generate(
        self,
        requests: Sequence[Request],
        sampling: Sampling,
        progress: ProgressCallback | None = None,
    ) -> list[Completion]:
        """One completion per request, in order (see the module docstring)."""
        if self._closed:
            raise BackendError("the backend is closed")
        if not requests:
            return []
        done: queue.SimpleQueue[int | None] = queue.SimpleQueue()
        future = self._loop.submit(self._generate_all(list(requests), sampling, done))
        try:
            while (step := done.get()) is not None:  # progress runs on the caller's thread
                if progress is not None:
                    progress(step)
        except BaseException:
            future.cancel()
            raise
        return future.result()

    def close(self) -> None:
        """Close the connection pool and stop the loop thread (idempotent)."""
        if self._closed:
            return
        self._closed = True
        client = getattr(self, "_client", None)
        if client is not None:
            with contextlib.suppress(Exception):  # a broken pool must not hide the caller's error
                self._run(client.aclose())
        self._loop.stop()

    def __enter__(self) -> OpenAIBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ internals

    def _run(self, coro: Awaitable[T]) -> T:
        return self._loop.submit(coro).result()

    async def _make_client(self, headers: dict[str, str]) -> httpx2.AsyncClient:
        self._semaphore = asyncio.Semaphore(self.concurrency)
        return httpx2.AsyncClient(
            headers=headers,
            timeout=httpx2.Timeout(self.timeout),
            limits=httpx2.Limits(
                max_connections=self.concurrency, max_keepalive_connections=self.concurrency
            ),
        )

    def _clean(self, text: str, limit: int = _MESSAGE_CHARS) -> str:
        """``text`` on one line, truncated to ``limit`` characters, with the API key masked."""
        if self._secret:
            text = text.replace(self._secret, "***")
        return _one_line(text, limit)

    def _delay(self, attempt: int, wait: float | None) -> float:
        if wait is not None:
            return min(wait, self.max_backoff)
        cap = min(self.max_backoff, self.backoff * 2**attempt)
        return cap / 2 + self._jitter.uniform(0, cap / 2)

    async def _with_retries(self, attempt_once: Callable[[], Awaitable[T]]) -> T:
        """``attempt_once()`` until it succeeds, fails finally, or retries run out; raises
        :class:`_FinalError` with the last reason."""
        for attempt in range(self.max_retries + 1):
            try:
                self.usage.requests += 1
                async with asyncio.timeout(self.timeout):
                    return await attempt_once()
            except _RetryableError as exc:
                reason, wait = str(exc), exc.wait
            except (TimeoutError, httpx2.TimeoutException):
                reason, wait = f"timed out after {self.timeout:g} s", None
            except httpx2.RequestError as exc:
                reason = f"connection error ({type(exc).__name__}: {exc})"
                wait = None
            if attempt == self.max_retries:
                tries = self.max_retries + 1
                raise _FinalError(f"{reason} (after {tries} attempt{'s' if tries > 1 else ''})")
            self.usage.retries += 1
            await asyncio.sleep(self._delay(attempt, wait))
        raise AssertionError("unreachable")

    async def _post_json(self, url: str, body: bytes | None) -> Any:
        """One attempt (GET without ``body``): the reply's JSON, or :class:`_RetryableError` /
        :class:`_FinalError`. A reply over ``max_reply_bytes`` is refused unread."""
        if body is None:
            stream = self._client.stream("GET", url)
        else:
            headers = {"Content-Type": "application/json"}
            stream = self._client.stream("POST", url, content=body, headers=headers)
        async with stream as response:
            chunks, size = [], 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > self.max_reply_bytes:
                    raise _FinalError(f"reply larger than {self.max_reply_bytes} bytes")
                chunks.append(chunk)
        content = b"".join(chunks)
        status = response.status_code
        if status >= 400:
            message = f"HTTP {status}: {self._clean(_server_message(content))}"
            if status in _RETRY_STATUSES or status >= 500:
                raise _RetryableError(message, _retry_after(response.headers.get("retry-after")))
            raise _FinalError(message)
        try:
            return _json(content)
        except ValueError:
            raise _RetryableError(f"invalid JSON reply (HTTP {status})") from None

    async def _first_model(self) -> str:
        url = f"{self.base_url}/models"
        try:
            data = await self._with_retries(lambda: self._post_json(url, None))
        except _FinalError as exc:
            raise BackendError(f"cannot list the models of {self.base_url}: {exc}") from None
        models = data.get("data") if isinstance(data, dict) else None
        first = models[0] if isinstance(models, list) and models else None
        if not isinstance(first, dict) or not isinstance(first.get("id"), str):
            raise BackendError(f"{self.base_url}/models lists no model; pass model=...")
        return first["id"]

    def _body(self, request: Request, sampling: Sampling) -> bytes:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": to_openai_messages(request, self.image_format, self.limits),
            **sampling_to_body(sampling),
        }
        kwargs = video_processor_kwargs(request)
        if kwargs:
            body["mm_processor_kwargs"] = kwargs
        return json.dumps(body, ensure_ascii=False).encode()

    async def _one(self, request: Request, sampling: Sampling) -> Completion:
        assert self._semaphore is not None
        async with self._semaphore:
            try:
                body = await asyncio.to_thread(self._body, request, sampling)
            except Exception as exc:  # a request that cannot be encoded fails alone
                self.usage.failures += 1
                return Completion.failed(self._clean(f"cannot encode the request: {exc}"))
            url = f"{self.base_url}/chat/completions"

            async def attempt() -> Completion:
                return _parse_completion(await self._post_json(url, body), sampling.n)

            try:
                completion = await self._with_retries(attempt)
            except _FinalError as exc:
                self.usage.failures += 1
                return Completion.failed(self._clean(str(exc), 2 * _MESSAGE_CHARS))
            except Exception as exc:  # anything unforeseen fails this request only
                self.usage.failures += 1
                return Completion.failed(self._clean(f"{type(exc).__name__}: {exc}"))
        self.usage.prompt_tokens += completion.prompt_tokens
        self.usage.completion_tokens += completion.completion_tokens
        return completion

    async def _generate_all(
        self,
        requests: list[Request],
        sampling: Sampling,
        done: queue.SimpleQueue[int | None],
    ) -> list[Completion]:
        async def tracked(request: Request) -> Completion:
            try:
                return await self._one(request, sampling)
            finally:
                done.put(1)

        try:
            return list(await asyncio.gather(*(tracked(r) for r in requests)))
        finally:
            done.put(None)
