"""An OpenAI-compatible chat server over any :class:`~vst.models.backends.base.Backend`.

``create_app(backend, model_name)`` is a Starlette app with

* ``GET /health`` -> ``{"status": "ok"}``;
* ``GET /v1/models`` -> the one model it serves, named ``model_name``;
* ``POST /v1/chat/completions`` -> ``n`` choices with finish reasons and token usage, or, with
  ``"stream": true``, the same as server-sent ``chat.completion.chunk`` events ending with
  ``data: [DONE]`` (the text is generated first, then streamed).

Bodies are read by :mod:`vst.models.openai_format` (base64 data URIs only, decoded sizes
capped). Errors are ``{"error": {"message", "type", "code"}}``: 400 naming the bad field, 404
for another model's name, 413 for a body over ``max_body_bytes``, 500 when the backend could
not answer. The backend is not assumed thread-safe: one worker thread runs its ``generate``
calls one at a time, and requests waiting meanwhile with equal sampling settings are batched
into the next call (up to ``max_batch``).

``serve(backend)`` runs the app with uvicorn on loopback (127.0.0.1) unless told otherwise;
:class:`ServerThread` runs it on a background thread (tests, benchmarks, notebooks).
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from vst.models.backends.base import Backend, Completion, Sampling
from vst.models.openai_format import (
    DEFAULT_WIRE_LIMITS,
    WireError,
    WireLimits,
    from_openai_messages,
    sampling_from_body,
    video_fps_from_body,
)
from vst.models.requests import Request

__all__ = ["ServerThread", "create_app", "serve"]

DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024


class _ReplyError(Exception):
    """An error reply: status, message, OpenAI error type and code."""

    def __init__(self, status: int, message: str, kind: str, code: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.code = status, kind, code


def _error(status: int, message: str, kind: str, code: str) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "code": code}}, status_code=status
    )


def _bad(message: str) -> _ReplyError:
    return _ReplyError(400, message, "invalid_request_error", "invalid_request")


@dataclass
class _Job:
    request: Request
    sampling: Sampling
    future: asyncio.Future[Completion] = field(repr=False)


class _Worker:
    """Runs ``backend.generate`` on one thread, one call at a time, batching waiting jobs
    that share sampling settings."""

    def __init__(self, backend: Backend, max_batch: int) -> None:
        self.backend = backend
        self.max_batch = max_batch
        self._pending: deque[_Job] = deque()
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vst-serve")

    async def submit(self, request: Request, sampling: Sampling) -> Completion:
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._wake = asyncio.Event()
            self._task = loop.create_task(self._run())
        job = _Job(request, sampling, loop.create_future())
        self._pending.append(job)
        assert self._wake is not None
        self._wake.set()
        return await job.future

    def _next_batch(self) -> list[_Job]:
        first = self._pending.popleft()
        batch, others = [first], []
        while self._pending and len(batch) < self.max_batch:
            job = self._pending.popleft()
            (batch if job.sampling == first.sampling else others).append(job)
        self._pending.extendleft(reversed(others))
        return [job for job in batch if not job.future.done()]

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            batch = self._next_batch()
            if not batch:
                continue
            requests = [job.request for job in batch]
            try:
                results = await loop.run_in_executor(
                    self._executor, self.backend.generate, requests, batch[0].sampling
                )
                if len(results) != len(batch):
                    raise RuntimeError(f"backend returned {len(results)} for {len(batch)}")
            except Exception as exc:  # the backend broke: every waiting request hears of it
                for job in batch:
                    if not job.future.done():
                        job.future.set_exception(exc)
                continue
            for job, result in zip(batch, results, strict=True):
                if not job.future.done():
                    job.future.set_result(result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with suppress(asyncio.CancelledError):
                await self._task
        self._executor.shutdown(wait=False, cancel_futures=True)


async def _read_body(http: HTTPRequest, limit: int) -> bytes:
    declared = http.headers.get("content-length")
    too_big = _ReplyError(
        413, f"request body exceeds {limit} bytes", "invalid_request_error", "body_too_large"
    )
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise too_big
    chunks, size = [], 0
    async for chunk in http.stream():
        size += len(chunk)
        if size > limit:
            raise too_big
        chunks.append(chunk)
    return b"".join(chunks)


_UNSUPPORTED = ("tools", "functions", "logit_bias")


def _check_unsupported(body: dict[str, Any]) -> None:
    """Refuse options this server would otherwise silently ignore."""
    for name in _UNSUPPORTED:
        if body.get(name):
            raise _bad(f"{name}: not supported by this server")
    if body.get("logprobs"):
        raise _bad("logprobs: not supported by this server")
    for name in ("presence_penalty", "frequency_penalty"):
        if body.get(name) not in (None, 0, 0.0):
            raise _bad(f"{name}: not supported by this server (use repetition_penalty)")
    fmt = body.get("response_format")
    if fmt is not None and not (isinstance(fmt, dict) and fmt.get("type") == "text"):
        raise _bad("response_format: only {'type': 'text'} is supported")


def _parse(body: dict[str, Any], limits: WireLimits) -> tuple[Request, Sampling]:
    """The request and sampling of a chat-completions body (run off the event loop: it
    decodes pictures)."""
    try:
        if "messages" not in body:
            raise WireError("messages: required")
        _check_unsupported(body)
        sampling = sampling_from_body(body)
        request = from_openai_messages(body["messages"], limits, video_fps_from_body(body))
    except WireError as exc:
        raise _bad(str(exc)) from None
    except ValueError as exc:  # Request's own checks (e.g. no messages)
        raise _bad(f"messages: {exc}") from None
    return request, sampling


def _reply(completion: Completion, model: str, reply_id: str, created: int) -> dict[str, Any]:
    prompt, generated = completion.prompt_tokens, completion.completion_tokens
    return {
        "id": reply_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": k,
                "message": {"role": "assistant", "content": choice.text},
                "finish_reason": choice.finish_reason,
                "logprobs": None,
            }
            for k, choice in enumerate(completion.choices)
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": generated,
            "total_tokens": prompt + generated,
        },
    }


def _sse(reply: dict[str, Any], include_usage: bool) -> list[bytes]:
    """The server-sent events of a finished ``reply``: per choice a role chunk, a content
    chunk and a finish chunk, then the usage chunk when asked for, then ``[DONE]``."""
    head = {k: reply[k] for k in ("id", "created", "model")} | {"object": "chat.completion.chunk"}

    def event(choices: list[dict[str, Any]], **extra: Any) -> bytes:
        payload = head | {"choices": choices} | extra
        return b"data: " + json.dumps(payload, ensure_ascii=False).encode() + b"\n\n"

    events = []
    for choice in reply["choices"]:
        k = choice["index"]
        text = choice["message"]["content"]
        events.append(
            event(
                [{"index": k, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]
            )
        )
        events.append(event([{"index": k, "delta": {"content": text}, "finish_reason": None}]))
        events.append(event([{"index": k, "delta": {}, "finish_reason": choice["finish_reason"]}]))
    if include_usage:
        events.append(event([], usage=reply["usage"]))
    events.append(b"data: [DONE]\n\n")
    return events


def create_app(
    backend: Backend,
    model_name: str,
    *,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    limits: WireLimits = DEFAULT_WIRE_LIMITS,
    max_batch: int = 16,
    max_n: int = 64,
) -> Starlette:
    """The chat server over ``backend``, serving it as ``model_name`` (see the module
    docstring)."""
    worker = _Worker(backend, max_batch)
    started = int(time.time())

    async def health(_: HTTPRequest) -> Response:
        return JSONResponse({"status": "ok"})

    async def models(_: HTTPRequest) -> Response:
        card = {"id": model_name, "object": "model", "created": started, "owned_by": "vst"}
        return JSONResponse({"object": "list", "data": [card]})

    async def chat(http: HTTPRequest) -> Response:
        try:
            raw = await _read_body(http, max_body_bytes)
            try:
                body = json.loads(raw)
            except (ValueError, RecursionError):
                raise _bad("body: not valid JSON") from None
            if not isinstance(body, dict):
                raise _bad("body: expected a JSON object")
            asked = body.get("model")
            if asked is not None and asked != model_name:
                raise _ReplyError(
                    404,
                    f"model: {str(asked)[:80]!r} is not served here (this server serves "
                    f"{model_name!r})",
                    "invalid_request_error",
                    "model_not_found",
                )
            stream = body.get("stream", False)
            if not isinstance(stream, bool):
                raise _bad("stream: expected true or false")
            options = body.get("stream_options") or {}
            if not isinstance(options, dict):
                raise _bad("stream_options: expected an object")
            request, sampling = await asyncio.to_thread(_parse, body, limits)
            if sampling.n > max_n:
                raise _bad(f"n: at most {max_n}, got {sampling.n}")
            try:
                completion = await worker.submit(request, sampling)
            except Exception as exc:
                raise _ReplyError(
                    500, f"backend error: {type(exc).__name__}: {exc}", "server_error", "backend"
                ) from None
            if not completion.ok:
                message = f"generation failed: {completion.error or 'no choices'}"
                raise _ReplyError(500, message, "server_error", "generation_failed")
        except _ReplyError as fault:
            return _error(fault.status, " ".join(str(fault).split()), fault.kind, fault.code)
        reply = _reply(completion, model_name, f"chatcmpl-{uuid.uuid4().hex}", int(time.time()))
        if not stream:
            return JSONResponse(reply)
        events = _sse(reply, bool(options.get("include_usage")))

        async def send() -> AsyncIterator[bytes]:
            for chunk in events:
                yield chunk

        return StreamingResponse(send(), media_type="text/event-stream")

    async def http_error(_: HTTPRequest, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return _error(exc.status_code, str(exc.detail), "invalid_request_error", code)

    async def server_error(_: HTTPRequest, exc: Exception) -> Response:
        message = " ".join(f"{type(exc).__name__}: {exc}".split())[:300]
        return _error(500, message, "server_error", "internal_error")

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            await worker.close()

    return Starlette(
        routes=[
            Route("/health", health, methods=["GET"]),
            Route("/v1/models", models, methods=["GET"]),
            Route("/v1/chat/completions", chat, methods=["POST"]),
        ],
        exception_handlers={HTTPException: http_error, Exception: server_error},
        lifespan=lifespan,
    )


def _uvicorn_config(app: Starlette, host: str, port: int, quiet: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning" if quiet else "info",
        access_log=not quiet,
        timeout_graceful_shutdown=5,
    )


def serve(
    backend: Backend,
    host: str = "127.0.0.1",
    port: int = 8000,
    *,
    model_name: str | None = None,
    **app_options: Any,
) -> None:
    """Serve ``backend`` until interrupted (uvicorn; loopback unless ``host`` says
    otherwise). ``model_name`` defaults to the backend's ``model_id``."""
    app = create_app(backend, model_name or backend.model_id, **app_options)
    with suppress(KeyboardInterrupt):  # Ctrl-C: uvicorn has shut down gracefully already
        uvicorn.Server(_uvicorn_config(app, host, port, quiet=False)).run()


class ServerThread:
    """``app`` served by uvicorn on a background thread (``port=0``: a free port), as a
    context manager; :attr:`url` is its base URL once started."""

    def __init__(self, app: Starlette, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self._server = uvicorn.Server(_uvicorn_config(app, host, port, quiet=True))
        self._thread = threading.Thread(target=self._server.run, name="vst-serve", daemon=True)
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, wait: float = 20.0) -> ServerThread:
        self._thread.start()
        deadline = time.monotonic() + wait
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start on {self.host}")
            time.sleep(0.01)
        sockets: Sequence[Any] = self._server.servers[0].sockets
        self.port = sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
