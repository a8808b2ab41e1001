"""A small OpenAI-compatible HTTP server that misbehaves on request, for tests and benchmarks.

:class:`FakeOpenAIServer` speaks just enough HTTP/1.1 (keep-alive, ``Content-Length`` bodies)
on 127.0.0.1 to answer ``GET /v1/models`` and ``POST /v1/chat/completions``. What it replies is
decided per request by a ``behave(call)`` function returning a :class:`FakeReply`: any status and
headers, a delay before replying (to exceed client timeouts), a body cut short by closing the
connection, or bytes that are not JSON. It records every call (path, headers, parsed body, time)
and the most requests it ever had in flight at once.

Run ``python -m vst.testing.openai_fake`` for an instant-answer server in its own process (the
benchmark does): it prints ``PORT <n>`` once listening and serves until killed.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["FakeCall", "FakeOpenAIServer", "FakeReply", "completion_body", "instant"]

_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class FakeCall:
    """One HTTP request the server received: ``body`` is the parsed JSON (``None`` if the
    body was empty or not JSON); ``at`` is ``time.monotonic()`` on arrival."""

    method: str
    path: str
    headers: dict[str, str]
    body: Any
    at: float


@dataclass(frozen=True)
class FakeReply:
    """What to answer: ``status``, ``body`` (bytes, or a JSON-able object), extra ``headers``,
    a ``delay`` in seconds before answering, and ``drop``: send the headers and half the body,
    then close the connection."""

    status: int = 200
    body: Any = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False


def completion_body(texts: list[str], prompt_tokens: int = 3, model: str = "fake") -> dict:
    """A chat-completions reply with one choice per text (each 1 token per word)."""
    choices = [
        {"index": k, "message": {"role": "assistant", "content": t}, "finish_reason": "stop"}
        for k, t in enumerate(texts)
    ]
    generated = sum(len(t.split()) for t in texts)
    usage = {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": generated,
        "total_tokens": prompt_tokens + generated,
    }
    return {
        "id": "fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": choices,
        "usage": usage,
    }


def instant(call: FakeCall) -> FakeReply:
    """Answer ``n`` choices of ``"ok"`` at once (``/v1/models`` lists ``fake``)."""
    if call.path.endswith("/models"):
        return FakeReply(body={"object": "list", "data": [{"id": "fake", "object": "model"}]})
    n = call.body.get("n", 1) if isinstance(call.body, dict) else 1
    return FakeReply(body=completion_body(["ok"] * n))


class FakeOpenAIServer:
    """The fake server on ``127.0.0.1`` (``port=0``: a free port) on a background thread, as a
    context manager. ``parse_json=False`` skips parsing bodies and ``record=False`` keeps no
    :attr:`calls` (the benchmark's lean mode)."""

    def __init__(
        self,
        behave: Callable[[FakeCall], FakeReply] = instant,
        port: int = 0,
        parse_json: bool = True,
        record: bool = True,
    ) -> None:
        self.behave = behave
        self.parse_json = parse_json
        self.record = record
        self.calls: list[FakeCall] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.Server | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _reply(self, writer: asyncio.StreamWriter, reply: FakeReply) -> bool:
        """Write ``reply``; ``False`` when the connection must close."""
        body = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
        head = [
            f"HTTP/1.1 {reply.status} {_REASONS.get(reply.status, 'Status')}",
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        ]
        head += [f"{k}: {v}" for k, v in reply.headers.items()]
        data = ("\r\n".join(head) + "\r\n\r\n").encode()
        if reply.drop:
            writer.write(data + body[: len(body) // 2])
            await writer.drain()
            return False
        writer.write(data + body)
        await writer.drain()
        return True

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                try:
                    head = await reader.readuntil(b"\r\n\r\n")
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                raw = await reader.readexactly(int(headers.get("content-length", "0")))
                body = None
                if self.parse_json and raw:
                    try:
                        body = json.loads(raw)
                    except ValueError:
                        body = None
                call = FakeCall(method, path, headers, body, time.monotonic())
                if self.record:
                    self.calls.append(call)
                self.in_flight += 1
                self.max_in_flight = max(self.max_in_flight, self.in_flight)
                try:
                    reply = self.behave(call)
                    if reply.delay:
                        await asyncio.sleep(reply.delay)
                    keep = await self._reply(writer, reply)
                finally:
                    self.in_flight -= 1
                if not keep:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a client gone, or the server stopping mid-reply
        finally:
            writer.close()

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _shutdown(self) -> None:
        assert self._server is not None
        self._server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        asyncio.get_running_loop().stop()

    def _run(self) -> None:
        loop = self._loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(self._open())
            self._ready.set()
            loop.run_forever()
        finally:
            self._ready.set()
            loop.close()

    def start(self) -> FakeOpenAIServer:
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        if not self._ready.wait(10) or self._server is None:
            raise RuntimeError("the fake server did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._server is not None and not self._loop.is_closed():
            asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop)
        if self._thread is not None:
            self._thread.join(timeout=10)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def main() -> None:
    """Serve :func:`instant_lean` answers in the foreground and print the port. Arguments:
    ``[PORT [DELAY_SECONDS]]`` (a delay stands for a model's latency)."""
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    delay = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
    behave = instant_lean
    if delay > 0:
        slow = {k: replace(v, delay=delay) for k, v in _LEAN.items()}

        def behave(call: FakeCall) -> FakeReply:
            return slow[call.path.endswith("/models")]

    server = FakeOpenAIServer(behave, port=port, parse_json=False, record=False)
    server.start()
    print(f"PORT {server.port}", flush=True)
    try:
        assert server._thread is not None
        server._thread.join()
    except KeyboardInterrupt:
        server.stop()


_LEAN = {
    False: FakeReply(body=json.dumps(completion_body(["ok"])).encode()),
    True: FakeReply(body=b'{"object":"list","data":[{"id":"fake","object":"model"}]}'),
}


def instant_lean(call: FakeCall) -> FakeReply:
    """:func:`instant` for ``n=1`` without reading the body (prebuilt replies)."""
    return _LEAN[call.path.endswith("/models")]


if __name__ == "__main__":
    main()
