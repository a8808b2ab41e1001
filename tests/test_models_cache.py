"""The disk cache: reruns cost nothing, every change of model, settings, request or sampling is a
miss, unusable entries are ignored and rewritten, failures are never stored."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from vst.models.backends import Completion, Sampling, ScriptedBackend
from vst.models.backends.cache import CACHE_FORMAT, MAX_ENTRY_BYTES, CachedBackend, cache_key
from vst.models.requests import Request


class Counting(ScriptedBackend):
    """A scripted backend with settings, counting the requests it is sent."""

    def __init__(self, answer=None, model_id: str = "m1", settings: dict | None = None) -> None:
        super().__init__(answer or (lambda r, i: f"{r.messages[-1]['content'][-1]['text']}#{i}"))
        self.model_id = model_id
        self._settings = settings if settings is not None else {"dtype": "bf16"}

    @property
    def settings(self) -> dict[str, Any]:
        return self._settings

    @property
    def sent(self) -> int:
        return sum(len(c) for c in self.calls)


def text_request(text: str) -> Request:
    return Request([{"role": "user", "content": text}])


def image_request(pixel: tuple[int, int, int] = (10, 20, 30)) -> Request:
    img = Image.new("RGB", (56, 56), (0, 0, 0))
    img.putpixel((3, 4), pixel)
    return Request(
        [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what?"}]}],
        images=[img],
    )


def only_entry(cache_dir: Path) -> Path:
    files = sorted(p for p in cache_dir.rglob("*.json"))
    assert len(files) == 1, files
    return files[0]


def test_second_run_sends_nothing_and_returns_identical_texts(tmp_path: Path) -> None:
    requests = [text_request(f"q{i}") for i in range(5)]
    inner = Counting()
    first = CachedBackend(inner, tmp_path).generate(requests, Sampling())
    assert [c.text for c in first] == [f"q{i}#0" for i in range(5)]
    assert not any(c.cached for c in first)
    assert inner.sent == 5

    again = Counting()  # a fresh process: new backend, same directory
    cached = CachedBackend(again, tmp_path)
    second = cached.generate(requests, Sampling())
    assert again.sent == 0
    assert [c.text for c in second] == [c.text for c in first]
    assert [c.choices for c in second] == [c.choices for c in first]
    assert [c.prompt_tokens for c in second] == [c.prompt_tokens for c in first]
    assert all(c.cached for c in second)
    assert (cached.stats.hits, cached.stats.misses, cached.stats.writes) == (5, 0, 0)


def test_entries_live_under_two_hex_chars_and_record_key_model_and_format(tmp_path: Path) -> None:
    request = text_request("hello")
    inner = Counting()
    CachedBackend(inner, tmp_path).generate([request], Sampling())
    key = cache_key("m1", {"dtype": "bf16"}, request, Sampling())
    path = only_entry(tmp_path)
    assert path == tmp_path / key[:2] / f"{key}.json"
    entry = json.loads(path.read_text())
    assert entry["key"] == key
    assert entry["model_id"] == "m1"
    assert entry["format"] == CACHE_FORMAT
    assert entry["choices"] == [
        {"text": "hello#0", "finish_reason": "stop", "completion_tokens": 1}
    ]
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]  # no temp files left


@pytest.mark.parametrize(
    "change",
    ["sampling", "seed", "model_id", "settings", "pixel", "text"],
)
def test_any_change_that_can_change_the_answer_is_a_miss(tmp_path: Path, change: str) -> None:
    base_request, base_sampling = image_request(), Sampling(temperature=0.7, seed=1)
    CachedBackend(Counting(), tmp_path).generate([base_request], base_sampling)

    request, sampling = base_request, base_sampling
    inner = Counting()
    if change == "sampling":
        sampling = Sampling(temperature=0.7, seed=1, max_tokens=7)
    elif change == "seed":
        sampling = Sampling(temperature=0.7, seed=2)
    elif change == "model_id":
        inner = Counting(model_id="m2")
    elif change == "settings":
        inner = Counting(settings={"dtype": "fp32"})
    elif change == "pixel":
        request = image_request(pixel=(10, 20, 31))
    else:
        request = Request(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "what!"}]}],
            images=base_request.images,
        )
    cached = CachedBackend(inner, tmp_path)
    cached.generate([request], sampling)
    assert inner.sent == 1
    assert (cached.stats.hits, cached.stats.misses) == (0, 1)
    # and the unchanged request still hits
    same = Counting()
    CachedBackend(same, tmp_path).generate([base_request], base_sampling)
    assert same.sent == 0


def _seed_entry(tmp_path: Path) -> tuple[Request, Path, bytes]:
    request = text_request("seed me")
    CachedBackend(Counting(), tmp_path).generate([request], Sampling())
    path = only_entry(tmp_path)
    return request, path, path.read_bytes()


def _wrong_key(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["key"] = "0" * 64
    return json.dumps(entry).encode()


def _wrong_choice_count(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["choices"] = entry["choices"] * 2
    return json.dumps(entry).encode()


def _bad_choice(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["choices"][0]["completion_tokens"] = "many"
    return json.dumps(entry).encode()


def _bad_reason(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["choices"][0]["finish_reason"] = "abort"
    return json.dumps(entry).encode()


def _bool_tokens(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["prompt_tokens"] = True
    return json.dumps(entry).encode()


def _other_model(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["model_id"] = "someone-else"
    return json.dumps(entry).encode()


def _old_format(good: bytes) -> bytes:
    entry = json.loads(good)
    entry["format"] = CACHE_FORMAT + 1
    return json.dumps(entry).encode()


CORRUPTIONS = {
    "truncated": lambda good: good[: len(good) // 2],
    "empty": lambda good: b"",
    "garbage": lambda good: b"\x00\xff\xfe not json at all",
    "not utf-8": lambda good: good.replace(b"seed me", b"seed \xff"),
    "a list": lambda good: b"[1, 2, 3]",
    "deeply nested": lambda good: b"[" * 100_000 + b"]" * 100_000,
    "wrong key": _wrong_key,
    "wrong choice count": _wrong_choice_count,
    "bad choice": _bad_choice,
    "bad finish reason": _bad_reason,
    "bool token count": _bool_tokens,
    "other model": _other_model,
    "other format": _old_format,
}


@pytest.mark.parametrize("name", sorted(CORRUPTIONS))
def test_corrupt_entry_is_ignored_and_rewritten(tmp_path: Path, name: str) -> None:
    request, path, good = _seed_entry(tmp_path)
    path.write_bytes(CORRUPTIONS[name](good))
    inner = Counting()
    cached = CachedBackend(inner, tmp_path)
    [answer] = cached.generate([request], Sampling())
    assert answer.text == "seed me#0" and not answer.cached
    assert inner.sent == 1
    assert (cached.stats.corrupt, cached.stats.writes) == (1, 1)
    assert path.read_bytes() == good  # rewritten with the same answer
    # and now it is trusted again
    after = Counting()
    assert CachedBackend(after, tmp_path).generate([request], Sampling())[0].cached
    assert after.sent == 0


def test_hostile_files_in_place_of_entries_never_crash_nor_leave_the_cache(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    outside = tmp_path / "outside.json"
    requests = [text_request(f"h{i}") for i in range(4)]
    CachedBackend(Counting(), cache).generate(requests, Sampling())
    paths = [
        CachedBackend(Counting(), cache).entry_path(
            cache_key("m1", {"dtype": "bf16"}, r, Sampling())
        )
        for r in requests
    ]
    # 0: a symlink to a valid entry that lives outside the cache
    outside.write_bytes(paths[0].read_bytes())
    paths[0].unlink()
    paths[0].symlink_to(outside)
    # 1: a directory; 2: a FIFO (reading it would block); 3: an oversized file
    paths[1].unlink()
    paths[1].mkdir()
    paths[2].unlink()
    os.mkfifo(paths[2])
    paths[3].write_bytes(b" " * (MAX_ENTRY_BYTES + 10))
    inner = Counting()
    cached = CachedBackend(inner, cache)
    answers = cached.generate(requests, Sampling())
    assert [a.text for a in answers] == [f"h{i}#0" for i in range(4)]
    assert inner.sent == 4 and cached.stats.corrupt == 4
    assert outside.read_bytes().startswith(b"{")  # the outside file was not touched
    assert not paths[0].is_symlink()  # the link itself was replaced by a real entry
    assert cached.stats.writes == 3 and cached.stats.write_errors == 1  # the directory stays


def test_symlinked_shard_folder_is_neither_read_nor_written(tmp_path: Path) -> None:
    cache, elsewhere = tmp_path / "cache", tmp_path / "elsewhere"
    request = text_request("shard")
    key = cache_key("m1", {"dtype": "bf16"}, request, Sampling())
    elsewhere.mkdir()
    cache.mkdir()
    (cache / key[:2]).symlink_to(elsewhere, target_is_directory=True)
    cached = CachedBackend(Counting(), cache)
    assert cached.generate([request], Sampling())[0].text == "shard#0"
    assert list(elsewhere.iterdir()) == []
    assert cached.stats.write_errors == 1


def test_failures_are_not_stored_and_are_retried_next_time(tmp_path: Path) -> None:
    broken = {"yes": True}

    def answer(request: Request, index: int) -> str:
        text = request.messages[-1]["content"][-1]["text"]
        if text == "flaky" and broken["yes"]:
            raise TimeoutError("took too long")
        return text.upper()

    requests = [text_request("fine"), text_request("flaky")]
    inner = Counting(answer)
    first = CachedBackend(inner, tmp_path).generate(requests, Sampling())
    assert first[0].text == "FINE"
    assert first[1].error == "TimeoutError: took too long"
    assert len(list(tmp_path.rglob("*.json"))) == 1

    broken["yes"] = False
    retry = Counting(answer)
    second = CachedBackend(retry, tmp_path).generate(requests, Sampling())
    assert [len(c) for c in retry.calls] == [1]  # only the failed one went out again
    assert retry.calls[0][0].messages == requests[1].messages
    assert [c.text for c in second] == ["FINE", "FLAKY"]
    assert [c.cached for c in second] == [True, False]


def test_n_choices_round_trip(tmp_path: Path) -> None:
    sampling = Sampling(temperature=1.0, n=3, seed=9)
    request = text_request("many")
    first = CachedBackend(Counting(), tmp_path).generate([request], sampling)[0]
    inner = Counting()
    second = CachedBackend(inner, tmp_path).generate([request], sampling)[0]
    assert inner.sent == 0
    assert [c.text for c in second.choices] == ["many#0", "many#1", "many#2"]
    assert second.choices == first.choices
    # n=2 is another question
    other = Counting()
    CachedBackend(other, tmp_path).generate([request], Sampling(temperature=1.0, n=2, seed=9))
    assert other.sent == 1


def test_mixed_hits_and_misses_keep_order_send_duplicates_once_and_count_progress(
    tmp_path: Path,
) -> None:
    CachedBackend(Counting(), tmp_path).generate([text_request("b"), text_request("d")], Sampling())
    inner = Counting()
    cached = CachedBackend(inner, tmp_path)
    ticks: list[int] = []
    names = ["a", "b", "c", "d", "a"]
    answers = cached.generate([text_request(x) for x in names], Sampling(), ticks.append)
    assert [a.text for a in answers] == [f"{x}#0" for x in names]
    assert [a.cached for a in answers] == [False, True, False, True, False]
    assert [[r.messages[-1]["content"][-1]["text"] for r in call] for call in inner.calls] == [
        ["a", "c"]
    ]
    assert sum(ticks) == 5
    assert (cached.stats.hits, cached.stats.misses, cached.stats.writes) == (2, 3, 2)


def test_a_backend_returning_the_wrong_number_of_answers_fails_those_requests(
    tmp_path: Path,
) -> None:
    class Short(Counting):
        def generate(self, requests, sampling, progress=None):
            return super().generate(requests, sampling, progress)[:-1]

    answers = CachedBackend(Short(), tmp_path).generate(
        [text_request("x"), text_request("y")], Sampling()
    )
    assert [a.ok for a in answers] == [False, False]
    assert answers[0].error == "backend returned 1 completions for 2 requests"
    assert list(tmp_path.rglob("*.json")) == []


def test_two_backends_sharing_a_directory_write_identical_entries(tmp_path: Path) -> None:
    request = text_request("shared")
    CachedBackend(Counting(), tmp_path).generate([request], Sampling())
    first = only_entry(tmp_path).read_bytes()
    # another process missing the same key (say it started before the first finished)
    other = CachedBackend(Counting(), tmp_path)
    other._store(other.key(request, Sampling()), Completion(**_completion_fields(first)))
    assert only_entry(tmp_path).read_bytes() == first


def _completion_fields(entry_bytes: bytes) -> dict[str, Any]:
    from vst.models.backends import Choice

    entry = json.loads(entry_bytes)
    return {
        "choices": tuple(Choice(**c) for c in entry["choices"]),
        "prompt_tokens": entry["prompt_tokens"],
    }


def test_model_id_and_settings_are_the_inner_backends(tmp_path: Path) -> None:
    inner = Counting(model_id="qwen-tiny", settings={"max_pixels": 1024})
    cached = CachedBackend(inner, tmp_path)
    assert cached.model_id == "qwen-tiny"
    assert cached.settings == {"max_pixels": 1024}
    with pytest.raises(ValueError, match="not a cache key"):
        cached.entry_path("../../etc/passwd")


def _share_worker(cache_dir: str, count: int) -> None:
    """One process of the sharing test: answer ``count`` requests through the shared cache."""
    CachedBackend(Counting(), cache_dir).generate(
        [text_request(f"p{i}") for i in range(count)], Sampling()
    )


def test_two_processes_filling_one_cache_at_once_leave_only_whole_entries(tmp_path: Path) -> None:
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_share_worker, args=(str(tmp_path), 60)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=60)
    assert [p.exitcode for p in procs] == [0, 0]
    assert len(list(tmp_path.rglob("*.json"))) == 60
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(".")]
    inner = Counting()
    cached = CachedBackend(inner, tmp_path)
    answers = cached.generate([text_request(f"p{i}") for i in range(60)], Sampling())
    assert inner.sent == 0 and cached.stats.corrupt == 0
    assert [a.text for a in answers] == [f"p{i}#0" for i in range(60)]
