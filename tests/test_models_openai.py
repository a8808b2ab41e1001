"""The OpenAI wire format (both directions) and the ``openai`` backend against a fake server
that misbehaves on purpose (429, 500, slow replies, bad JSON, dropped connections)."""

from __future__ import annotations

import base64
import io
import json
import logging
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from vst.engine.imaging import smart_resize
from vst.models import Request, Video
from vst.models.backends import BackendError, Sampling
from vst.models.backends.openai import OpenAIBackend, normalize_base_url
from vst.models.openai_format import (
    WireError,
    WireLimits,
    from_openai_messages,
    sampling_from_body,
    sampling_to_body,
    to_openai_messages,
    video_fps_from_body,
    video_processor_kwargs,
)
from vst.models.vision import PixelLimits, fit_request
from vst.testing.openai_fake import FakeCall, FakeOpenAIServer, FakeReply, completion_body


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def smooth(width: int, height: int, shift: int = 0) -> Image.Image:
    """A gradient (JPEG keeps it almost exactly)."""
    y, x = np.mgrid[0:height, 0:width]
    arr = np.stack([(x + shift) % 256, (y * 2) % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def chat(text: str, images: int = 0, videos: int = 0) -> list[dict]:
    items = [{"type": "image"}] * images + [{"type": "video"}] * videos
    return [
        {"role": "system", "content": "You are a spatial assistant."},
        {"role": "user", "content": [*items, {"type": "text", "text": text}]},
    ]


def text_request(text: str) -> Request:
    return Request([{"role": "user", "content": text}], id=text)


def data_uri(image: Image.Image, fmt: str = "PNG") -> str:
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    kind = "png" if fmt == "PNG" else "jpeg"
    return f"data:image/{kind};base64," + base64.b64encode(buf.getvalue()).decode()


# ------------------------------------------------------------------------- format, client side


def test_images_round_trip_as_png_with_the_same_fingerprint():
    fitted = noise(448, 448, seed=1)  # already a model size: sent untouched
    raw = noise(500, 300, seed=2)  # not a model size: fitted once, then sent
    request = Request(chat("Which is closer?", images=2), [fitted, raw])
    messages = json.loads(json.dumps(to_openai_messages(request)))  # survives JSON

    assert messages[0] == {"role": "system", "content": "You are a spatial assistant."}
    content = messages[1]["content"]
    assert [c["type"] for c in content] == ["image_url", "image_url", "text"]
    assert content[2] == {"type": "text", "text": "Which is closer?"}
    assert all(c["image_url"]["url"].startswith("data:image/png;base64,") for c in content[:2])

    back = from_openai_messages(messages)
    assert back.fingerprint() == fit_request(request, PixelLimits()).fingerprint()
    assert back.images[0].tobytes() == fitted.tobytes()
    h, w = smart_resize(300, 500)
    assert back.images[1].size == (w, h) == (504, 308)


def test_image_limits_and_jpeg_option():
    image = noise(1000, 1000, seed=3)
    limits = PixelLimits(max_pixels=224 * 224)
    request = Request(chat("q", images=1), [image])
    png = from_openai_messages(to_openai_messages(request, "png", limits))
    jpeg_messages = to_openai_messages(request, "jpeg", limits)
    url = jpeg_messages[1]["content"][0]["image_url"]["url"]
    assert url.startswith("data:image/jpeg;base64,")
    jpeg = from_openai_messages(jpeg_messages)
    assert png.images[0].size == jpeg.images[0].size == (224, 224)
    # JPEG is lossy: same size, different pixels; PNG is exact
    assert png.images[0].tobytes() == fit_request(request, limits).images[0].tobytes()
    assert jpeg.images[0].tobytes() != png.images[0].tobytes()
    # without limits the picture is sent as it is
    unfitted = from_openai_messages(to_openai_messages(request, "png", None))
    assert unfitted.images[0].size == (1000, 1000)
    with pytest.raises(ValueError, match="image_format"):
        to_openai_messages(request, "gif")  # type: ignore[arg-type]


def test_video_frames_survive_as_a_jpeg_frame_list_with_their_fps():
    frames = tuple(smooth(224, 168, shift=10 * k) for k in range(4))
    request = Request(chat("How many chairs?", videos=1), videos=[Video(frames, 3.0)])
    messages = to_openai_messages(request)
    url = messages[1]["content"][0]["video_url"]["url"]
    assert url.startswith("data:video/jpeg;base64,")
    parts = url.removeprefix("data:video/jpeg;base64,").split(",")
    assert len(parts) == 4
    assert all(Image.open(io.BytesIO(base64.b64decode(p))).format == "JPEG" for p in parts)

    body = {"messages": messages, "mm_processor_kwargs": video_processor_kwargs(request)}
    assert body["mm_processor_kwargs"] == {"fps": 3.0}
    back = from_openai_messages(body["messages"], fps=video_fps_from_body(body))
    (video,) = back.videos
    assert video.fps == 3.0 and len(video.frames) == 4
    for got, sent in zip(video.frames, frames, strict=True):
        assert got.size == sent.size == (224, 168)
        diff = np.abs(np.asarray(got, np.int16) - np.asarray(sent, np.int16))
        assert diff.mean() < 2.0  # JPEG q95 of a gradient


def test_two_videos_at_different_rates_send_one_rate_each():
    a = Video((smooth(56, 56),) * 2, 2.0)
    b = Video((smooth(56, 56, 5),) * 2, 0.5)
    request = Request(chat("q", videos=2), videos=[a, b])
    kwargs = video_processor_kwargs(request)
    assert kwargs == {"fps": [2.0, 0.5]}
    body = {"mm_processor_kwargs": kwargs}
    back = from_openai_messages(to_openai_messages(request), fps=video_fps_from_body(body))
    assert [v.fps for v in back.videos] == [2.0, 0.5]
    assert video_processor_kwargs(text_request("x")) == {}
    sent = to_openai_messages(request)
    with pytest.raises(WireError, match=r"1 rate\(s\) but messages\[1\].content\[1\] is video 2"):
        from_openai_messages(sent, fps=[1.0])
    with pytest.raises(WireError, match=r"mm_processor_kwargs.fps: 3 rate\(s\) for 2 video\(s\)"):
        from_openai_messages(sent, fps=[1.0, 1.0, 1.0])


# ------------------------------------------------------------------------- format, server side


def _bomb_png(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` pixels (its data is a few bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


def _with_item(item: dict) -> list[dict]:
    return [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "q"}, item]},
    ]


def _image_item(url: str) -> dict:
    return {"type": "image_url", "image_url": {"url": url}}


SMALL_PNG = data_uri(noise(20, 20))


@pytest.mark.parametrize(
    ("item", "limits", "expected"),
    [
        (_image_item("http://example.com/a.png"), None, r"http:// URLs are refused"),
        (_image_item("https://example.com/a.png"), None, r"https:// URLs are refused"),
        (_image_item("file:///etc/passwd"), None, r"file:// URLs are refused"),
        (_image_item("/etc/passwd"), None, r"not data: URIs"),
        (_image_item("data:image/png,rawbytes"), None, r"must be base64"),
        (_image_item("data:image/png;base64,@@@"), None, r"invalid base64"),
        (_image_item("data:image/gif;base64,R0lG"), None, r"unsupported image type 'image/gif'"),
        (
            _image_item("data:image/png;base64," + base64.b64encode(b"not a png").decode()),
            None,
            r"cannot decode the picture",
        ),
        ({"type": "input_audio", "input_audio": {}}, None, r"unsupported content type"),
        ({"type": "image_url"}, None, r"expected a string URL"),
        ({"type": "text", "text": 3}, None, r"content\[1\].text: expected a string"),
        (_image_item(SMALL_PNG), WireLimits(max_image_pixels=399), r"20x20 picture exceeds 399"),
        (_image_item(SMALL_PNG), WireLimits(max_item_bytes=64), r"larger than 64 bytes"),
        (_image_item(SMALL_PNG), WireLimits(max_request_pixels=300), r"exceed 300 pixels"),
        (
            {"type": "video_url", "video_url": {"url": "data:video/jpeg;base64,QQ==,QQ==,QQ=="}},
            WireLimits(max_video_frames=2),
            r"3 frames exceed 2",
        ),
        (
            {"type": "video_url", "video_url": {"url": "data:video/mp4;base64,AAAA"}},
            None,
            r"only frame lists",
        ),
    ],
)
def test_hostile_items_are_refused_naming_the_item(item, limits, expected):
    with pytest.raises(WireError, match=expected) as info:
        from_openai_messages(_with_item(item), limits or WireLimits())
    message = str(info.value)
    assert message.startswith("messages[1].content[1]")
    assert "\n" not in message


def test_a_decompression_bomb_header_is_refused_before_decoding():
    url = "data:image/png;base64," + base64.b64encode(_bomb_png(8000, 8000)).decode()
    expected = r"messages\[1\].content\[1\].image_url.url: 8000x8000 picture exceeds"
    with pytest.raises(WireError, match=expected):
        from_openai_messages(_with_item(_image_item(url)))
    # past PIL's own hard limit PIL refuses in Image.open; still one line naming the item
    url = "data:image/png;base64," + base64.b64encode(_bomb_png(60000, 60000)).decode()
    with pytest.raises(WireError, match=r"content\[1\].image_url.url: .*decompression-bomb"):
        from_openai_messages(_with_item(_image_item(url)))


def test_malformed_messages_are_refused_naming_the_message():
    cases = [
        ([], r"messages: expected a non-empty list"),
        ("hi", r"messages: expected a non-empty list"),
        ([{"role": "user"}], r"messages\[0\].content: expected a string or a list"),
        ([{"role": "tool", "content": "x"}], r"messages\[0\].role"),
        ([{"role": "user", "content": ["x"]}], r"messages\[0\].content\[0\].type"),
        (["x"], r"messages\[0\]: expected an object"),
    ]
    for messages, expected in cases:
        with pytest.raises(WireError, match=expected):
            from_openai_messages(messages)


def test_text_and_many_images_are_capped_per_request():
    items = [_image_item(SMALL_PNG)] * 3
    messages = [{"role": "user", "content": items}]
    assert len(from_openai_messages(messages).images) == 3
    with pytest.raises(WireError, match=r"content\[2\].image_url.url: more than 2 images"):
        from_openai_messages(messages, WireLimits(max_items=2))


def test_sampling_round_trips_through_the_body():
    sampling = Sampling(
        temperature=0.7,
        top_p=0.9,
        top_k=20,
        max_tokens=64,
        n=3,
        seed=11,
        repetition_penalty=1.05,
        stop=("\n", "</answer>"),
    )
    body = json.loads(json.dumps(sampling_to_body(sampling)))
    assert body["seed"] == 11 and body["n"] == 3 and body["stop"] == ["\n", "</answer>"]
    assert sampling_from_body(body) == sampling
    plain = sampling_to_body(Sampling())
    assert "top_k" not in plain and "repetition_penalty" not in plain and "stop" not in plain
    assert sampling_from_body(plain) == Sampling()
    assert sampling_from_body({}) == Sampling()
    assert sampling_from_body({"stop": "x", "top_k": -1, "max_completion_tokens": 9}) == Sampling(
        stop=("x",), max_tokens=9
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"temperature": "hot"}, "temperature: expected a number"),
        ({"temperature": -1}, "temperature: must be >= 0"),
        ({"top_p": 0}, "top_p: must be in"),
        ({"n": 0}, "n: must be >= 1"),
        ({"n": 2.5}, "n: expected an integer"),
        ({"max_tokens": True}, "max_tokens: expected an integer"),
        ({"max_tokens": 5, "max_completion_tokens": 6}, "max_tokens: differs"),
        ({"stop": [1]}, "stop: expected a string or a list"),
        ({"seed": "1"}, "seed: expected an integer"),
        ({"repetition_penalty": float("nan")}, "repetition_penalty: expected a number"),
    ],
)
def test_bad_sampling_fields_are_named(body, field):
    with pytest.raises(WireError) as info:
        sampling_from_body(body)
    assert str(info.value).startswith(field)


# ------------------------------------------------------------------------- the backend


def prompt_of(call: FakeCall) -> str:
    return call.body["messages"][-1]["content"]


def echo(call: FakeCall) -> FakeReply:
    if call.path.endswith("/models"):
        return FakeReply(body={"object": "list", "data": [{"id": "fake-model"}]})
    n = call.body.get("n", 1)
    return FakeReply(body=completion_body([f"{prompt_of(call)}#{k}" for k in range(n)]))


def attempts(server: FakeOpenAIServer, text: str) -> list[FakeCall]:
    return [c for c in server.calls if c.body and prompt_of(c) == text]


def test_faults_are_retried_or_reported_per_request_and_nothing_is_lost():
    seen: dict[str, int] = {}

    def behave(call: FakeCall) -> FakeReply:
        text = prompt_of(call)
        k = seen[text] = seen.get(text, 0) + 1
        if text == "r429" and k == 1:
            return FakeReply(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
        if text == "r500":
            return FakeReply(500, {"error": {"message": "engine\noverloaded " + "x" * 500}})
        if text == "rslow":
            return FakeReply(delay=1.5, body=completion_body(["late"]))
        if text == "rjson" and k == 1:
            return FakeReply(body=b'{"choices": [ oops')
        if text == "rshape" and k == 1:
            return FakeReply(body={"choices": "none"})
        if text == "rdrop" and k == 1:
            return FakeReply(body=completion_body(["x" * 2000]), drop=True)
        if text == "r400":
            return FakeReply(400, {"error": {"message": "prompt too long"}})
        return echo(call)

    names = ["r0", "r429", "r500", "rslow", "rjson", "rshape", "rdrop", "r400", "r9"]
    with FakeOpenAIServer(behave) as server:
        backend = OpenAIBackend(
            server.url, model="m", concurrency=4, timeout=0.4, max_retries=2, backoff=0.01
        )
        with backend:
            steps: list[int] = []
            out = backend.generate([text_request(t) for t in names], Sampling(), steps.append)
        by_name = dict(zip(names, out, strict=True))

        assert len(out) == len(names) and sum(steps) == len(names)
        for name in ("r0", "r429", "rjson", "rshape", "rdrop", "r9"):
            assert by_name[name].ok and by_name[name].text == f"{name}#0", name
        # Retry-After: 1 was honoured (the backoff alone would wait 10 ms)
        first, second = attempts(server, "r429")
        assert second.at - first.at >= 0.95
        # 500s: three attempts, then the status and the server's message, one line, truncated
        assert len(attempts(server, "r500")) == 3
        error = by_name["r500"].error
        assert error.startswith("HTTP 500: engine overloaded xxx") and "(after 3 attempts)" in error
        assert "\n" not in error and len(error) < 260
        assert len(attempts(server, "rslow")) == 3
        assert by_name["rslow"].error == "timed out after 0.4 s (after 3 attempts)"
        # a 400 is final: one attempt
        assert len(attempts(server, "r400")) == 1
        assert by_name["r400"].error == "HTTP 400: prompt too long"
        for name in ("rjson", "rshape", "rdrop", "r429"):
            assert len(attempts(server, name)) == 2, name

    usage = backend.usage
    assert usage.failures == 3
    assert usage.retries == 1 + 2 + 2 + 1 + 1 + 1  # r429, r500, rslow, rjson, rshape, rdrop
    assert usage.requests == len(names) + usage.retries
    assert usage.completion_tokens == 6 and usage.prompt_tokens == 6 * 3


def test_concurrency_limit_is_respected():
    def slow_echo(call: FakeCall) -> FakeReply:
        reply = echo(call)
        return FakeReply(body=reply.body, delay=0.03)

    with (
        FakeOpenAIServer(slow_echo) as server,
        OpenAIBackend(server.url, model="m", concurrency=3) as backend,
    ):
        out = backend.generate([text_request(f"q{k}") for k in range(20)], Sampling())
    assert [c.text for c in out] == [f"q{k}#0" for k in range(20)]
    assert server.max_in_flight == 3


def test_request_body_seed_video_fps_and_model_discovery():
    frames = tuple(smooth(56, 56, k) for k in range(2))
    request = Request(chat("describe", images=1, videos=1), [noise(60, 60)], [Video(frames, 4.0)])
    sampling = Sampling(temperature=0.8, n=2, seed=123, top_k=5, max_tokens=7)

    def reply(call: FakeCall) -> FakeReply:
        if call.path.endswith("/models"):
            return echo(call)
        body = completion_body(["a", "b"])
        body["choices"][0]["finish_reason"] = "length"
        body["choices"][1]["finish_reason"] = None
        body["choices"].reverse()  # out of order: sorted back by index
        body["usage"]["completion_tokens"] = 5
        return FakeReply(body=body)

    with FakeOpenAIServer(reply) as server, OpenAIBackend(server.url + "/") as backend:
        assert backend.model == "fake-model"
        assert backend.model_id == f"openai:{server.url}/v1#fake-model"
        assert backend.settings == {"limits": PixelLimits().key(), "image_format": "png"}
        (completion,) = backend.generate([request], sampling)
    body = server.calls[-1].body
    assert server.calls[0].path == "/v1/models"
    assert server.calls[-1].path == "/v1/chat/completions"
    assert body["model"] == "fake-model"
    assert body["seed"] == 123 and body["n"] == 2 and body["top_k"] == 5
    assert body["max_tokens"] == 7 and body["temperature"] == 0.8
    assert body["mm_processor_kwargs"] == {"fps": 4.0}
    kinds = [c["type"] for c in body["messages"][1]["content"]]
    assert kinds == ["image_url", "video_url", "text"]
    assert [(c.text, c.finish_reason, c.completion_tokens) for c in completion.choices] == [
        ("a", "length", 3),
        ("b", "stop", 2),
    ]


def test_wrong_number_of_choices_is_final():
    one = FakeReply(body=completion_body(["only one"]))
    with (
        FakeOpenAIServer(lambda call: one) as server,
        OpenAIBackend(server.url, model="m", backoff=0.01) as backend,
    ):
        (completion,) = backend.generate([text_request("x")], Sampling(n=3))
    assert completion.error == "the server returned 1 choice(s) for n=3"
    assert len(server.calls) == 1


def test_api_key_is_sent_as_bearer_and_never_shown(monkeypatch, caplog, capsys):
    secret = "sk-test-5f3a9c0d1e"
    monkeypatch.setenv("VST_TEST_API_KEY", secret)

    def behave(call: FakeCall) -> FakeReply:
        if call.body and prompt_of(call) == "leak":
            return FakeReply(401, {"error": {"message": f"bad key {secret} for this org"}})
        return echo(call)

    caplog.set_level(logging.DEBUG)
    with FakeOpenAIServer(behave) as server:
        backend = OpenAIBackend(server.url, api_key_env="VST_TEST_API_KEY", backoff=0.01)
        with backend:
            out = backend.generate([text_request("ok"), text_request("leak")], Sampling())
            shown = [repr(backend), backend.model_id, json.dumps(backend.settings)]
            shown += [str(backend.usage), out[1].error or ""]
        assert all(c.headers["authorization"] == f"Bearer {secret}" for c in server.calls)
    assert out[0].text == "ok#0"
    assert out[1].error == "HTTP 401: bad key *** for this org"
    printed = capsys.readouterr()
    for text in [*shown, caplog.text, printed.out, printed.err]:
        assert secret not in text
    # without the variable no Authorization header is sent
    monkeypatch.delenv("VST_TEST_API_KEY")
    with FakeOpenAIServer(echo) as server:
        with OpenAIBackend(server.url, model="m", api_key_env="VST_TEST_API_KEY") as backend:
            backend.generate([text_request("a")], Sampling())
        assert "authorization" not in server.calls[0].headers


def test_unreachable_server_fails_each_request_or_the_backend():
    with FakeOpenAIServer(echo) as server:
        url = server.url  # a port that is closed once the server stops
    with OpenAIBackend(url, model="m", max_retries=1, backoff=0.01) as backend:
        out = backend.generate([text_request("a"), text_request("b")], Sampling())
    assert [c.ok for c in out] == [False, False]
    assert out[0].error.startswith("connection error (ConnectError")
    assert out[0].error.endswith("(after 2 attempts)")
    with pytest.raises(BackendError, match=r"cannot list the models of http://127\.0\.0\.1"):
        OpenAIBackend(url, max_retries=0)


def test_base_urls_are_normalised_and_credentials_refused():
    assert normalize_base_url("http://h:8000") == "http://h:8000/v1"
    assert normalize_base_url("http://h:8000/v1/") == "http://h:8000/v1"
    assert normalize_base_url("https://api.x.com/openai/v1") == "https://api.x.com/openai/v1"
    with pytest.raises(BackendError, match="credentials"):
        normalize_base_url("http://user:pw@h:8000")
    with pytest.raises(BackendError, match="not an http"):
        normalize_base_url("ftp://h")
    with pytest.raises(BackendError, match="concurrency"):
        OpenAIBackend("http://127.0.0.1:9", model="m", concurrency=0)


def test_hostile_replies_fail_their_request_only():
    def behave(call: FakeCall) -> FakeReply:
        text = prompt_of(call)
        if text == "huge":
            return FakeReply(body=b'{"choices": ["' + b"x" * 50_000 + b'"]}')
        if text == "deep":
            return FakeReply(body=b"[" * 4000 + b"]" * 4000)
        if text == "weird":
            body = completion_body(["x"])
            body["choices"][0]["message"]["content"] = {"not": "text"}
            return FakeReply(body=body)
        return echo(call)

    names = ["a", "huge", "deep", "weird", "b"]
    with (
        FakeOpenAIServer(behave) as server,
        OpenAIBackend(
            server.url, model="m", max_retries=1, backoff=0.01, max_reply_bytes=10_000
        ) as backend,
    ):
        out = backend.generate([text_request(t) for t in names], Sampling())
    errors = dict(zip(names, (c.error for c in out), strict=True))
    assert out[0].text == "a#0" and out[4].text == "b#0"
    assert errors["huge"] == "reply larger than 10000 bytes"
    assert len(attempts(server, "huge")) == 1
    assert errors["deep"] == "invalid JSON reply (HTTP 200) (after 2 attempts)"
    assert errors["weird"] == "invalid reply: choice 0 content is not a string (after 2 attempts)"


def test_a_key_a_header_cannot_hold_is_refused_without_showing_it(monkeypatch):
    monkeypatch.setenv("VST_TEST_API_KEY", "sk-abc\x01def")
    with pytest.raises(BackendError) as info:
        OpenAIBackend("http://127.0.0.1:9", model="m", api_key_env="VST_TEST_API_KEY")
    assert str(info.value) == "the API key in $VST_TEST_API_KEY has characters a header cannot hold"
