"""The vLLM backend without vLLM: request building against vLLM's documented offline input form,
and the whole generate path against a stand-in ``vllm`` module shaped like the real one."""

from __future__ import annotations

import json
import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.models.backends import BackendError, Sampling, request_seed
from vst.models.backends.cache import CachedBackend
from vst.models.backends.vllm import VLLMBackend, build_vllm_prompt, sampling_params_kwargs
from vst.models.chat import IMAGE_PAD, VIDEO_PAD, render_chat
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.models.requests import Request, Video
from vst.models.vision import PixelLimits

# A stand-in for the parts of vLLM the backend touches. Shapes follow vllm/outputs.py
# (RequestOutput: request_id, prompt, prompt_token_ids, outputs, finished; CompletionOutput:
# index, text, token_ids, cumulative_logprob, logprobs, finish_reason) and
# vllm/sampling_params.py (SamplingParams rejects unknown fields).
FAKE_VLLM = r"""
import json, os, re
from dataclasses import dataclass, field

SAMPLING_FIELDS = {"n", "temperature", "top_p", "top_k", "max_tokens", "seed", "stop",
                   "repetition_penalty"}


class SamplingParams:
    def __init__(self, **kwargs):
        unknown = set(kwargs) - SAMPLING_FIELDS
        if unknown:
            raise TypeError(f"unexpected SamplingParams fields {sorted(unknown)}")
        self.__dict__.update(kwargs)


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list
    cumulative_logprob: float | None
    logprobs: object
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str
    prompt_token_ids: list
    prompt_logprobs: object
    outputs: list
    finished: bool = True


class LLM:
    instances = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs
        self.calls = []
        LLM.instances.append(self)

    def generate(self, prompts, sampling_params=None, use_tqdm=True, lora_request=None):
        self.calls.append((list(prompts), list(sampling_params)))
        log = os.environ.get("FAKE_VLLM_LOG")
        if log:
            with open(os.path.join(log, f"{os.getpid()}.jsonl"), "a") as fh:
                devices = os.environ.get("CUDA_VISIBLE_DEVICES")
                fh.write(json.dumps({"devices": devices, "prompts": len(prompts)}) + "\n")
        for p in prompts:
            if "TOO LONG" in p["prompt"]:
                raise ValueError("The decoder prompt (length 99999) is longer than the "
                                 "maximum\nmodel length of 64.")
        outs = []
        for i, (p, sp) in enumerate(zip(prompts, sampling_params)):
            tags = re.findall(r"\bq\d+\b", p["prompt"])
            text = f"{tags[-1] if tags else '?'}|seed={sp.seed}"
            tokens = list(range(min(sp.max_tokens, 4)))
            reason = "length" if sp.max_tokens <= 4 else "stop"
            if "ABORT" in p["prompt"]:
                reason = "abort"
            media = p.get("multi_modal_data", {})
            prompt_ids = list(range(len(p["prompt"]) + 100 * len(media.get("image", []))))
            outs.append(RequestOutput(str(i), p["prompt"], prompt_ids, None,
                                      [CompletionOutput(0, text, tokens, None, None, reason)]))
        return outs
"""


def _fake_module() -> types.ModuleType:
    module = types.ModuleType("vllm")
    exec(compile(FAKE_VLLM, "fake_vllm", "exec", dont_inherit=True), module.__dict__)
    return module


@pytest.fixture
def fake_vllm(monkeypatch) -> types.ModuleType:
    module = _fake_module()
    monkeypatch.setitem(sys.modules, "vllm", module)
    return module


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    d = tmp_path / "model"
    d.mkdir()
    return d


def ask(tag: str) -> Request:
    return Request([{"role": "user", "content": f"{tag}: how far apart?"}])


def picture(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), "RGB")


# --- request building (no vLLM needed) ---


def test_prompt_text_is_render_chat_with_one_pad_per_image_and_video() -> None:
    messages = [
        {"role": "system", "content": THINK_SYSTEM_PROMPT},
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "text", "text": "and"},
                {"type": "image"},
                {"type": "video"},
                {"type": "text", "text": "Which is closer?"},
            ],
        },
    ]
    video = Video([picture(84, 56, s) for s in range(4)], fps=2.0)
    request = Request(messages, images=[picture(56, 56), picture(84, 56, 1)], videos=[video])
    prompt = build_vllm_prompt(request)
    assert prompt["prompt"] == render_chat(messages)
    assert prompt["prompt"].count(IMAGE_PAD) == 2
    assert prompt["prompt"].count(VIDEO_PAD) == 1
    assert prompt["prompt"].startswith(f"<|im_start|>system\n{THINK_SYSTEM_PROMPT}<|im_end|>\n")
    assert prompt["prompt"].endswith("Which is closer?<|im_end|>\n<|im_start|>assistant\n")
    assert set(prompt) == {"prompt", "multi_modal_data", "mm_processor_kwargs"}
    assert [im.size for im in prompt["multi_modal_data"]["image"]] == [(56, 56), (84, 56)]


def test_text_only_request_is_a_bare_text_prompt() -> None:
    prompt = build_vllm_prompt(ask("q1"))
    assert prompt == {"prompt": render_chat(ask("q1").messages)}


def test_images_are_fitted_to_the_limits_once() -> None:
    big = picture(1000, 700)
    already = picture(280, 224)
    request = Request(
        [{"role": "user", "content": [{"type": "image"}, {"type": "image"}]}],
        images=[big, already],
    )
    limits = PixelLimits(max_pixels=256 * 28 * 28)
    fitted, kept = build_vllm_prompt(request, limits)["multi_modal_data"]["image"]
    # smart_resize by hand: 1000 x 700 is over 200704 px, scale sqrt(700000 / 200704) = 1.8676,
    # floor to multiples of 28: 19 * 28 = 532 wide, 13 * 28 = 364 high.
    assert fitted.size == (532, 364)
    assert fitted.mode == "RGB"
    assert kept is already  # already at its model size: passed through untouched


def test_video_goes_as_frames_with_metadata_and_fps() -> None:
    frames = [picture(100, 60, s) for s in range(4)]
    request = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]}],
        videos=[Video(frames, fps=2.0)],
    )
    prompt = build_vllm_prompt(request)
    [(array, metadata)] = prompt["multi_modal_data"]["video"]
    assert "image" not in prompt["multi_modal_data"]
    # 100 x 60 -> smart_resize -> 112 x 56 (multiples of 28, 6272 px within the limits)
    assert array.shape == (4, 56, 112, 3) and array.dtype == np.uint8
    expected = np.asarray(frames[2].resize((112, 56), Image.Resampling.BICUBIC))
    assert np.array_equal(array[2], expected)
    assert metadata == {
        "fps": 2.0,
        "duration": 2.0,
        "total_num_frames": 4,
        "frames_indices": [0, 1, 2, 3],
        "do_sample_frames": False,
    }
    assert prompt["mm_processor_kwargs"] == {"fps": 2.0}


def test_videos_at_different_rates_get_one_fps_each() -> None:
    request = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "video"}]}],
        videos=[Video([picture(56, 56)] * 2, fps=1.0), Video([picture(56, 56)] * 2, fps=4.0)],
    )
    prompt = build_vllm_prompt(request)
    assert prompt["mm_processor_kwargs"] == {"fps": [1.0, 4.0]}
    assert [m["fps"] for _, m in prompt["multi_modal_data"]["video"]] == [1.0, 4.0]


def test_sampling_params_kwargs() -> None:
    request = ask("q1")
    greedy = sampling_params_kwargs(Sampling(), request)
    assert greedy == {
        "n": 1,
        "temperature": 0.0,
        "top_p": 1.0,
        "top_k": -1,
        "max_tokens": 512,
        "seed": request_seed(Sampling(), request, 0),
        "stop": [],
        "repetition_penalty": 1.0,
    }
    s = Sampling(temperature=0.7, top_p=0.9, top_k=20, max_tokens=64, n=4, seed=3, stop=("\n",))
    kw = sampling_params_kwargs(s, request, 2)
    assert (kw["top_k"], kw["n"], kw["stop"], kw["temperature"]) == (20, 1, ["\n"], 0.7)
    assert kw["seed"] == request_seed(s, request, 2)


def test_seeds_differ_per_request_and_per_choice() -> None:
    s = Sampling(temperature=1.0, n=3, seed=11)
    seeds = {
        (tag, i): sampling_params_kwargs(s, ask(tag), i)["seed"]
        for tag in ("q1", "q2")
        for i in range(3)
    }
    assert len(set(seeds.values())) == 6
    assert all(0 <= v < 2**63 for v in seeds.values())
    assert (
        sampling_params_kwargs(Sampling(temperature=1.0, n=3, seed=12), ask("q1"), 0)["seed"]
        != seeds[("q1", 0)]
    )


# --- the generate path against the stand-in ---


def test_missing_extra_names_it(monkeypatch, model_dir: Path) -> None:
    monkeypatch.setitem(sys.modules, "vllm", None)  # makes `import vllm` fail
    with pytest.raises(BackendError) as info:
        VLLMBackend(model_dir)
    message = str(info.value)
    assert "pip install 'vst[vllm]'" in message
    assert "\n" not in message


def test_bad_options_and_missing_directory_are_one_line_errors(fake_vllm, tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="tensor_parallel_size must be a positive integer"):
        VLLMBackend(tmp_path, tensor_parallel_size=0)
    with pytest.raises(BackendError, match="gpu_memory_utilization"):
        VLLMBackend(tmp_path, gpu_memory_utilization=1.5)
    with pytest.raises(BackendError, match="model directory not found"):
        VLLMBackend(tmp_path / "nope")


def test_engine_is_built_once_with_the_options(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(
        model_dir, tensor_parallel_size=2, max_model_len=4096, dtype="bfloat16", enforce_eager=True
    )
    [llm] = fake_vllm.LLM.instances
    assert llm.kwargs == {
        "model": str(model_dir),
        "tensor_parallel_size": 2,
        "gpu_memory_utilization": 0.9,
        "max_model_len": 4096,
        "dtype": "bfloat16",
        "enforce_eager": True,
    }
    assert backend.model_id == str(model_dir.resolve())
    assert backend.settings == {
        "backend": "vllm",
        "limits": PixelLimits().key(),
        "max_model_len": 4096,
        "engine": {"dtype": "bfloat16", "enforce_eager": True},
    }


def test_generate_reads_outputs_in_order_with_token_counts(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(model_dir)
    requests = [ask(f"q{i}") for i in range(5)]
    ticks: list[int] = []
    backend.chunk_requests = 2
    answers = backend.generate(requests, Sampling(max_tokens=32), ticks.append)
    assert ticks == [2, 2, 1]
    assert [a.text.split("|")[0] for a in answers] == [f"q{i}" for i in range(5)]
    for request, answer in zip(requests, answers, strict=True):
        assert answer.ok and not answer.cached
        [choice] = answer.choices
        assert (
            choice.text == f"{choice.text.split('|')[0]}|seed={request_seed(Sampling(), request)}"
        )
        assert (choice.finish_reason, choice.completion_tokens) == ("stop", 4)
        assert answer.prompt_tokens == len(render_chat(request.messages))
    [llm] = fake_vllm.LLM.instances
    assert [len(prompts) for prompts, _ in llm.calls] == [2, 2, 1]


def test_images_reach_the_engine_fitted(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(model_dir, limits=PixelLimits(max_pixels=256 * 28 * 28))
    request = Request(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "q7"}]}],
        images=[picture(1000, 700)],
    )
    [answer] = backend.generate([request], Sampling())
    [llm] = fake_vllm.LLM.instances
    [[prompt], _] = llm.calls[0]
    assert [im.size for im in prompt["multi_modal_data"]["image"]] == [(532, 364)]
    assert answer.prompt_tokens == len(prompt["prompt"]) + 100


def test_each_choice_has_its_own_seed_independent_of_the_batch(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(model_dir)
    s = Sampling(temperature=1.0, n=3, seed=5)
    together = backend.generate([ask("q1"), ask("q2")], s)
    alone = backend.generate([ask("q2")], s)
    assert together[1].choices == alone[0].choices
    texts = [c.text for a in together for c in a.choices]
    assert len(set(texts)) == 6
    assert [c.text for c in alone[0].choices] == [
        f"q2|seed={request_seed(s, ask('q2'), i)}" for i in range(3)
    ]
    [llm] = fake_vllm.LLM.instances
    assert all(p.n == 1 for _, params in llm.calls for p in params)


def test_greedy_asks_once_per_request_and_repeats_the_choice(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(model_dir)
    [answer] = backend.generate([ask("q3")], Sampling(n=3, max_tokens=2))
    assert len(answer.choices) == 3 and len(set(answer.choices)) == 1
    assert answer.choices[0].finish_reason == "length"
    [llm] = fake_vllm.LLM.instances
    assert [len(p) for p, _ in llm.calls] == [1]


def test_a_prompt_the_engine_refuses_fails_alone(fake_vllm, model_dir: Path) -> None:
    backend = VLLMBackend(model_dir)
    requests = [ask("q1"), ask("q2 TOO LONG"), ask("q3 ABORT"), ask("q4")]
    answers = backend.generate(requests, Sampling())
    assert [a.ok for a in answers] == [True, False, False, True]
    assert answers[1].error == (
        "ValueError: The decoder prompt (length 99999) is longer than the maximum model length "
        "of 64."
    )
    assert answers[2].error == "vLLM ended choice 0 with reason 'abort'"
    assert answers[3].text.startswith("q4|")


def test_cached_vllm_backend_reruns_without_the_engine(fake_vllm, model_dir, tmp_path) -> None:
    requests = [ask("q1"), ask("q2")]
    first = CachedBackend(VLLMBackend(model_dir), tmp_path / "cache").generate(requests, Sampling())
    second = CachedBackend(VLLMBackend(model_dir), tmp_path / "cache").generate(
        requests, Sampling()
    )
    assert [a.text for a in second] == [a.text for a in first]
    assert all(a.cached for a in second)
    assert len(fake_vllm.LLM.instances[1].calls) == 0
    other = CachedBackend(VLLMBackend(model_dir, dtype="float32"), tmp_path / "cache")
    other.generate(requests, Sampling())
    assert other.stats.misses == 2  # another engine setting is another answer


def test_data_parallel_ranks_split_the_work_and_match_one_engine(
    monkeypatch, model_dir: Path, tmp_path: Path
) -> None:
    package = tmp_path / "fake" / "vllm"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_VLLM)
    logs = tmp_path / "logs"
    logs.mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "fake"))
    monkeypatch.delitem(sys.modules, "vllm", raising=False)
    monkeypatch.setenv("FAKE_VLLM_LOG", str(logs))
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "4,5,6,7")
    requests = [ask(f"q{i}") for i in range(5)]
    s = Sampling(temperature=0.8, n=2, seed=1)

    single = VLLMBackend(model_dir).generate(requests, s)
    backend = VLLMBackend(model_dir, data_parallel_size=2, tensor_parallel_size=2)
    try:
        parallel = backend.generate(requests, s)
    finally:
        backend.close()
    assert [a.choices for a in parallel] == [a.choices for a in single]
    ranks = [
        json.loads(line)
        for f in sorted(logs.iterdir())
        for line in f.read_text().split("\n")
        if line
    ]
    # the in-process engine logged nothing to another pid; the two ranks split 10 prompts
    child = [r for r in ranks if r["devices"] in ("4,5", "6,7")]
    assert sorted(r["devices"] for r in child) == ["4,5", "6,7"]
    assert sum(r["prompts"] for r in child) == 10
    with pytest.raises(BackendError, match="needs 8 GPUs but CUDA_VISIBLE_DEVICES lists 4"):
        VLLMBackend(model_dir, data_parallel_size=4, tensor_parallel_size=2)


def test_fake_matches_the_documented_output_shape() -> None:
    """Guard the stand-in itself: the fields the backend reads exist with vLLM's names."""
    module = _fake_module()
    out = module.LLM().generate([{"prompt": "q9"}], [module.SamplingParams(max_tokens=8, seed=1)])
    [request_output] = out
    assert {"request_id", "prompt", "prompt_token_ids", "outputs", "finished"} <= set(
        vars(request_output)
    )
    assert {"index", "text", "token_ids", "finish_reason"} <= set(vars(request_output.outputs[0]))
    with pytest.raises(TypeError, match="unexpected SamplingParams fields"):
        module.SamplingParams(best_of=2)
    assert re.fullmatch(r"q9\|seed=1", request_output.outputs[0].text)


def test_open_backend_builds_a_cached_vllm_backend(fake_vllm, model_dir, tmp_path) -> None:
    from vst.models.backends import open_backend

    backend = open_backend(model_dir, kind="vllm", cache_dir=tmp_path / "c", max_model_len=2048)
    assert isinstance(backend, CachedBackend)
    assert isinstance(backend.inner, VLLMBackend)
    assert fake_vllm.LLM.instances[0].kwargs["max_model_len"] == 2048
    assert backend.generate([ask("q5")], Sampling())[0].text.startswith("q5|seed=")
    backend.close()
