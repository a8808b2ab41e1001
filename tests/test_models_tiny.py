"""The tiny offline checkpoint and the transformers backend running it."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app
from vst.models import Request, Video
from vst.models.backends import BackendError, Sampling, open_backend
from vst.models.chat import SPECIAL_TOKENS
from vst.models.tiny import build_tiny, prompt_corpus


def _image(seed: int, w: int = 64, h: int = 48) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))


def _ask(text: str, seed: int = 0, rid: str = "") -> Request:
    content = [{"type": "image"}, {"type": "text", "text": text}]
    return Request([{"role": "user", "content": content}], images=[_image(seed)], id=rid)


@pytest.fixture(scope="module")
def backend(tiny_model_dir):
    b = open_backend(tiny_model_dir, batch_size=4)
    yield b
    b.close()


def test_corpus_is_vst_prompt_text():
    corpus = prompt_corpus()
    assert corpus == sorted(set(corpus))
    joined = "\n".join(corpus)
    # engine phrasings and the answer syntax are in it
    assert "bbox_3d" in joined and "<think>" in joined
    assert len(corpus) > 200


def test_tiny_checkpoint_is_small_complete_and_reloads(tiny_model_dir):
    from transformers import AutoModelForImageTextToText

    names = {p.name for p in tiny_model_dir.iterdir()}
    assert {
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "chat_template.jinja",
        "processor_config.json",
        "generation_config.json",
    } <= names
    model = AutoModelForImageTextToText.from_pretrained(str(tiny_model_dir))
    n = sum(p.numel() for p in model.parameters())
    assert 100_000 < n < 1_000_000
    cfg = json.loads((tiny_model_dir / "processor_config.json").read_text())
    assert cfg["processor_class"] == "Qwen2_5_VLProcessor"
    assert cfg["video_processor"]["video_processor_type"] == "Qwen2VLVideoProcessor"
    from vst.models.processor import load_processor

    tok = load_processor(tiny_model_dir, use_torchvision=False).tokenizer
    ids = [tok.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS]
    assert len(set(ids)) == len(SPECIAL_TOKENS) and tok.unk_token_id not in ids[1:]
    assert model.config.image_token_id == tok.convert_tokens_to_ids("<|image_pad|>")
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>"


def test_same_command_same_bytes(tiny_model_dir, tmp_path):
    again = build_tiny(tmp_path / "again").path
    for path in sorted(tiny_model_dir.iterdir()):
        assert (again / path.name).read_bytes() == path.read_bytes(), path.name
    other = build_tiny(tmp_path / "other", seed=1).path
    assert (other / "model.safetensors").read_bytes() != (
        tiny_model_dir / "model.safetensors"
    ).read_bytes()


def test_cli_builds_the_checkpoint(tmp_path):
    result = CliRunner().invoke(app, ["models", "tiny", "--out", str(tmp_path / "m")])
    assert result.exit_code == 0, result.output
    assert "parameters" in result.output and (tmp_path / "m" / "config.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging left


def test_greedy_generation_is_batch_independent(backend):
    requests = [_ask("Which object is closer?", i, f"r{i}") for i in range(5)]
    together = backend.generate(requests, Sampling(max_tokens=6))
    alone = [backend.generate([r], Sampling(max_tokens=6))[0] for r in requests]
    assert [c.text for c in together] == [c.text for c in alone]
    assert all(c.ok and c.choices[0].finish_reason == "length" for c in together)
    assert all(c.choices[0].completion_tokens == 6 for c in together)
    assert all(c.prompt_tokens > 10 for c in together)


def test_pictures_reach_the_model(backend):
    """Different pictures give different next-token logits. (Their greedy texts usually differ
    too, but a random tiny model can answer five pictures with the same six tokens.)"""
    import torch

    from vst.models.processor import model_inputs

    requests = [_ask("Which object is closer?", i) for i in range(3)]
    batch = model_inputs(backend.processor, requests, backend.limits)
    with torch.no_grad():
        logits = backend.model(**batch).logits[:, -1].float()
    for i in range(1, 3):
        assert not torch.allclose(logits[0], logits[i], atol=1e-6), i


def test_sampling_seeds_are_per_request(backend):
    r = _ask("How far is the chair?", 1)
    s = Sampling(temperature=1.0, max_tokens=8, n=3, seed=7)
    first = backend.generate([r], s)[0]
    again = backend.generate([_ask("other", 2), r], s)[1]
    assert [c.text for c in first.choices] == [c.text for c in again.choices]
    assert len({c.text for c in first.choices}) > 1  # the n choices differ
    other_seed = backend.generate([r], Sampling(temperature=1.0, max_tokens=8, n=3, seed=8))[0]
    assert [c.text for c in other_seed.choices] != [c.text for c in first.choices]


def test_stop_strings_and_video(backend):
    frames = [_image(10 + t, 56, 56) for t in range(4)]
    video = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "Count."}]}],
        videos=[Video(frames, 2.0)],
    )
    full = backend.generate([video], Sampling(max_tokens=10))[0]
    assert full.ok and full.text
    stop = full.text[2:4]
    cut = backend.generate([video], Sampling(max_tokens=10, stop=(stop,)))[0]
    assert cut.choices[0].finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]


def test_a_bad_request_fails_alone(backend):
    sliver = Request(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "?"}]}],
        images=[Image.new("RGB", (3000, 10))],  # aspect ratio 300: no model size exists
        id="sliver",
    )
    good = _ask("Which is larger?", 3, "good")
    out = backend.generate([good, sliver, good], Sampling(max_tokens=4))
    assert out[0].ok and out[2].ok and out[0].text == out[2].text
    assert not out[1].ok and "sliver" in out[1].error and "aspect ratio" in out[1].error


def test_open_backend_errors_are_one_line(tmp_path):
    with pytest.raises(BackendError, match="model directory not found"):
        open_backend(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BackendError, match=r"no config\.json"):
        open_backend(tmp_path / "empty")
    with pytest.raises(BackendError, match="needs a model directory"):
        open_backend("http://127.0.0.1:1/v1", kind="transformers")
