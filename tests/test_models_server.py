"""The OpenAI-compatible server over any backend: a scripted backend served on 127.0.0.1 and
answered through the ``openai`` backend, streaming, bad requests, one generate call at a time,
and the ``vst models serve`` command's wiring."""

from __future__ import annotations

import json
import threading
import time

import httpx2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.models import Request, Video
from vst.models.backends import BackendError, Sampling, ScriptedBackend, request_seed
from vst.models.backends.openai import OpenAIBackend
from vst.models.openai_format import to_openai_messages
from vst.models.server import ServerThread, create_app
from vst.models.vision import PixelLimits, fit_request


def text_of(request: Request) -> str:
    return " ".join(c["text"] for m in request.messages for c in m["content"] if "text" in c)


class RecordingBackend(ScriptedBackend):
    """A scripted backend that records each call's sampling and how many calls overlapped."""

    def __init__(self, answer, delay: float = 0.0) -> None:
        super().__init__(answer, model_id="recording")
        self.samplings: list[Sampling] = []
        self.delay = delay
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def generate(self, requests, sampling, progress=None):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.delay)
            self.samplings.append(sampling)
            return super().generate(requests, sampling, progress)
        finally:
            with self._lock:
                self.active -= 1


def answer(request: Request, index: int) -> str:
    text = text_of(request)
    if "fail" in text:
        raise RuntimeError("scripted failure")
    sizes = ",".join(f"{im.width}x{im.height}" for im in request.images)
    fps = ",".join(f"{v.fps:g}/{len(v.frames)}" for v in request.videos)
    return f"{text}|{index}|{sizes}|{fps}"


@pytest.fixture(scope="module")
def served():
    backend = RecordingBackend(answer)
    with ServerThread(create_app(backend, "tiny-vl", max_body_bytes=2_000_000)) as server:
        yield backend, server


def post(server: ServerThread, body, **kwargs) -> httpx2.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx2.post(
        f"{server.url}/v1/chat/completions",
        content=content,
        headers={"Content-Type": "application/json"},
        timeout=10,
        **kwargs,
    )


def test_openai_backend_through_the_server(served):
    backend, server = served
    rng = np.random.default_rng(4)
    image = Image.fromarray(rng.integers(0, 256, (300, 500, 3), dtype=np.uint8), "RGB")
    frames = tuple(Image.new("RGB", (112, 84), (10 * k, 50, 90)) for k in range(4))
    content = [{"type": "image"}, {"type": "video"}, {"type": "text", "text": "where?"}]
    request = Request(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": content}],
        [image],
        [Video(frames, 1.5)],
    )
    sampling = Sampling(
        temperature=0.9,
        top_p=0.8,
        top_k=7,
        max_tokens=33,
        n=3,
        seed=42,
        repetition_penalty=1.1,
        stop=("END",),
    )
    with OpenAIBackend(server.url) as client:
        assert client.model == "tiny-vl"
        before = len(backend.calls)
        (completion,) = client.generate([request], sampling)
    assert [c.text for c in completion.choices] == [
        f"sys where?|{k}|504x308|1.5/4" for k in range(3)
    ]
    assert all(c.finish_reason == "stop" for c in completion.choices)
    assert completion.prompt_tokens == 2
    (received,) = backend.calls[before]
    assert backend.samplings[-1] == sampling  # every field, the seed included
    assert received.images[0].tobytes() == fit_request(request, PixelLimits()).images[0].tobytes()


def test_same_request_same_seed_through_the_server(served):
    """An image request reaches the served backend with the pixels a local backend fits, so
    its per-request seed (and with it a sampled answer) is the same on both paths."""
    backend, server = served
    rng = np.random.default_rng(5)
    image = Image.fromarray(rng.integers(0, 256, (200, 260, 3), dtype=np.uint8), "RGB")
    request = Request(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "seed?"}]}],
        [image],
    )
    sampling = Sampling(temperature=1.0, seed=7)
    with OpenAIBackend(server.url) as client:
        before = len(backend.calls)
        client.generate([request], sampling)
    (received,) = backend.calls[before]
    local = fit_request(request, PixelLimits())
    assert received.fingerprint() == local.fingerprint()
    assert request_seed(sampling, received, 0) == request_seed(sampling, local, 0)


def test_reply_shape_and_usage(served):
    _, server = served
    body = {"model": "tiny-vl", "messages": [{"role": "user", "content": "hello there"}], "n": 2}
    reply = post(server, body)
    assert reply.status_code == 200
    data = reply.json()
    assert data["object"] == "chat.completion" and data["model"] == "tiny-vl"
    assert data["id"].startswith("chatcmpl-")
    assert [c["index"] for c in data["choices"]] == [0, 1]
    assert data["choices"][1]["message"] == {"role": "assistant", "content": "hello there|1||"}
    assert data["usage"] == {"prompt_tokens": 2, "completion_tokens": 4, "total_tokens": 6}


def test_stream_sends_chunks_ending_with_done(served):
    _, server = served
    body = {
        "messages": [{"role": "user", "content": "stream me"}],
        "n": 2,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    reply = post(server, body)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/event-stream")
    events = [e for e in reply.text.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    texts = {0: "", 1: ""}
    finish = {}
    for chunk in chunks:
        for choice in chunk["choices"]:
            texts[choice["index"]] += choice["delta"].get("content", "")
            if choice["finish_reason"] is not None:
                finish[choice["index"]] = choice["finish_reason"]
    assert texts == {0: "stream me|0||", 1: "stream me|1||"}
    assert finish == {0: "stop", 1: "stop"}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_health_models_and_unknown_routes(served):
    _, server = served
    assert httpx2.get(f"{server.url}/health").json() == {"status": "ok"}
    models = httpx2.get(f"{server.url}/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["tiny-vl"]
    missing = httpx2.get(f"{server.url}/v1/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    wrong_method = httpx2.get(f"{server.url}/v1/chat/completions")
    assert wrong_method.status_code == 405 and "error" in wrong_method.json()


def _user(*items) -> dict:
    return {"messages": [{"role": "user", "content": list(items)}]}


TEXT = {"type": "text", "text": "q"}


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        (_user(TEXT, {"type": "input_audio"}), 400, "messages[0].content[1].type"),
        (
            _user(TEXT, {"type": "image_url", "image_url": {"url": "http://evil/x.png"}}),
            400,
            "messages[0].content[1].image_url.url: only base64 data: URIs",
        ),
        ({"model": "tiny-vl"}, 400, "messages: required"),
        ({"messages": []}, 400, "messages: expected a non-empty list"),
        (b"{not json", 400, "body: not valid JSON"),
        (b"[1, 2]", 400, "body: expected a JSON object"),
        ({**_user(TEXT), "temperature": "hot"}, 400, "temperature: expected a number"),
        ({**_user(TEXT), "n": 65}, 400, "n: at most 64"),
        ({**_user(TEXT), "stream": "yes"}, 400, "stream: expected true or false"),
        ({**_user(TEXT), "tools": [{"type": "function"}]}, 400, "tools: not supported"),
        ({**_user(TEXT), "model": "gpt-x"}, 404, "model: 'gpt-x' is not served here"),
        (_user({"type": "text", "text": "x" * 2_100_000}), 413, "request body exceeds 2000000"),
    ],
)
def test_bad_requests_name_the_field(served, body, status, field):
    _, server = served
    reply = post(server, body)
    assert reply.status_code == status
    error = reply.json()["error"]
    assert error["message"].startswith(field), error
    assert set(error) == {"message", "type", "code"}
    assert "\n" not in error["message"]


def test_a_body_without_content_length_is_still_capped(served):
    _, server = served

    def chunks():
        for _ in range(30):
            yield b"x" * 100_000

    reply = httpx2.post(f"{server.url}/v1/chat/completions", content=chunks(), timeout=10)
    assert reply.status_code == 413


def test_generate_runs_one_call_at_a_time_and_batches_waiting_requests():
    backend = RecordingBackend(answer, delay=0.05)
    with (
        ServerThread(create_app(backend, "m")) as server,
        OpenAIBackend(server.url, concurrency=12) as client,
    ):
        requests = [Request([{"role": "user", "content": f"q{k}"}]) for k in range(12)]
        out = client.generate(requests, Sampling())
    assert [c.text for c in out] == [f"q{k}|0||" for k in range(12)]
    assert backend.max_active == 1
    assert sum(len(call) for call in backend.calls) == 12
    assert len(backend.calls) < 12  # requests that waited were served together


def test_a_failed_generation_is_a_500_and_the_client_reports_it():
    backend = RecordingBackend(answer)
    with (
        ServerThread(create_app(backend, "m")) as server,
        OpenAIBackend(server.url, max_retries=1, backoff=0.01) as client,
    ):
        out = client.generate(
            [Request([{"role": "user", "content": t}]) for t in ("a", "please fail", "b")],
            Sampling(),
        )
        direct = post(server, {"messages": [{"role": "user", "content": "fail now"}]})
    assert [c.text for c in out] == ["a|0||", "", "b|0||"]
    assert out[1].error == (
        "HTTP 500: generation failed: RuntimeError: scripted failure (after 2 attempts)"
    )
    assert direct.status_code == 500 and direct.json()["error"]["code"] == "generation_failed"


def test_serve_command_opens_the_backend_and_serves_it(monkeypatch, tmp_path):
    import vst.models.backends as backends
    import vst.models.server as server_module
    from vst.cli import app

    model_dir = tmp_path / "tiny-model"
    model_dir.mkdir()
    opened, served_with = [], []
    fake = ScriptedBackend(lambda r, i: "x")
    closed = []
    fake.close = lambda: closed.append(True)  # type: ignore[method-assign]

    def fake_open(model, kind="auto", cache_dir=None, **options):
        opened.append((str(model), kind))
        return fake

    monkeypatch.setattr(backends, "open_backend", fake_open)
    monkeypatch.setattr(server_module, "serve", lambda *a, **k: served_with.append((a, k)))
    runner = CliRunner()
    result = runner.invoke(app, ["models", "serve", str(model_dir), "--port", "8123"])
    assert result.exit_code == 0, result.output
    assert opened == [(str(model_dir), "transformers")]
    assert served_with == [
        ((fake,), {"host": "127.0.0.1", "port": 8123, "model_name": "tiny-model"})
    ]
    assert closed == [True]

    # a non-loopback host is passed on with a warning (serve is faked here: nothing binds)
    result = runner.invoke(
        app,
        ["models", "serve", str(model_dir), "--port", "1", "--host", "lab.example", "--name", "n"],
    )
    assert result.exit_code == 0
    assert served_with[-1][1] == {"host": "lab.example", "port": 1, "model_name": "n"}
    assert "reachable from other hosts" in result.output

    def broken_open(model, kind="auto", cache_dir=None, **options):
        raise BackendError(f"model directory not found: {model}")

    monkeypatch.setattr(backends, "open_backend", broken_open)
    result = runner.invoke(app, ["models", "serve", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "model directory not found" in result.output
    assert "Traceback" not in result.output


def test_messages_from_the_client_are_what_the_server_decodes(served):
    """The wire messages of a request with a video reach the backend with their fps."""
    _, server = served
    frames = tuple(Image.new("RGB", (56, 56), (k, k, k)) for k in range(2))
    request = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "v"}]}],
        videos=[Video(frames, 0.25)],
    )
    body = {"messages": to_openai_messages(request), "mm_processor_kwargs": {"fps": 0.25}}
    reply = post(server, body)
    assert reply.json()["choices"][0]["message"]["content"] == "v|0||0.25/2"
