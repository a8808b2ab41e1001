"""The tiny checkpoint end to end over HTTP: `vst models serve`'s app in front of the
transformers backend, asked through the `openai` backend, gives the same text as asking the
transformers backend directly (same seed, same pictures: PNG on the wire is lossless)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from vst.models import Request, Video
from vst.models.backends import Sampling, open_backend
from vst.models.backends.openai import OpenAIBackend
from vst.models.predict import run_predict
from vst.models.server import ServerThread, create_app


def _image(seed: int, w: int, h: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _requests() -> list[Request]:
    one = Request(
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Depth?"}]},
        ],
        images=[_image(1, 308, 224)],
        id="one",
    )
    two = Request(
        [
            {
                "role": "user",
                "content": [
                    {"type": "image"},
                    {"type": "image"},
                    {"type": "text", "text": "How did the camera move?"},
                ],
            }
        ],
        images=[_image(2, 224, 168), _image(3, 224, 168)],
        id="two",
    )
    return [one, two]


@pytest.fixture(scope="module")
def local(tiny_model_dir):
    backend = open_backend(tiny_model_dir, batch_size=4)
    yield backend
    backend.close()


@pytest.fixture(scope="module")
def served(local):
    with ServerThread(create_app(local, "tiny")) as server:
        client = OpenAIBackend(server.url, concurrency=4, timeout=120.0)
        yield client
        client.close()


@pytest.mark.parametrize(
    "sampling",
    [Sampling(max_tokens=10), Sampling(temperature=1.0, top_p=0.9, max_tokens=10, n=3, seed=11)],
    ids=["greedy", "sampled"],
)
def test_same_seed_same_text_locally_and_over_http(local, served, sampling):
    direct = local.generate(_requests(), sampling)
    remote = served.generate(_requests(), sampling)
    assert all(c.ok for c in direct + remote), [c.error for c in direct + remote]
    for a, b in zip(direct, remote, strict=True):
        assert [c.text for c in a.choices] == [c.text for c in b.choices]
        assert [c.finish_reason for c in a.choices] == [c.finish_reason for c in b.choices]
        assert a.completion_tokens == b.completion_tokens
        assert a.prompt_tokens == b.prompt_tokens
    if not sampling.greedy:
        assert len({c.text for c in direct[0].choices}) > 1
    assert served.model_id.endswith("#tiny")


def test_video_over_http(local, served):
    frames = [_image(20 + t, 112, 84) for t in range(4)]
    clip = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Count."}]}],
        videos=[Video(frames, fps=2.0)],
    )
    [remote] = served.generate([clip], Sampling(max_tokens=6))
    [direct] = local.generate([clip], Sampling(max_tokens=6))
    assert remote.ok and remote.completion_tokens == 6
    # JPEG frames on the wire (vLLM's video form): same grid and prompt length, pixels differ
    assert remote.prompt_tokens == direct.prompt_tokens


@pytest.mark.slow
def test_predict_locally_and_through_the_server_agree(all_tasks_run, local, served, tmp_path):
    tasks = ["si_distance", "mi_camera_motion"]
    a = run_predict(local, all_tasks_run, tmp_path / "local.jsonl", tasks=tasks, per_task=2)
    b = run_predict(served, all_tasks_run, tmp_path / "served.jsonl", tasks=tasks, per_task=2)
    assert a.per_task["all"]["n"] == b.per_task["all"]["n"] == 4
    lines_a = [json.loads(x) for x in (tmp_path / "local.jsonl").read_text().splitlines()]
    lines_b = [json.loads(x) for x in (tmp_path / "served.jsonl").read_text().splitlines()]
    for x, y in zip(lines_a, lines_b, strict=True):
        assert (x["id"], x["text"], x["reward"]) == (y["id"], y["text"], y["reward"])
        assert x["request"] == y["request"]
