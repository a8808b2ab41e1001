"""Cost of the model-backend disk cache and of vLLM request building, without a model.

Run: ``.venv/bin/python benchmarks/model_cache.py``. On a seeded set of 1000 requests (one
448 x 448 image and a question each) behind an instant scripted backend, prints requests per
second of a cold run (key, miss, inner call, atomic write), of a warm run (key, read, validate)
on fresh ``Request`` objects (so image fingerprints are recomputed, as in a new process), and of
the key alone; then milliseconds per image of :func:`build_vllm_prompt` for a 1000 x 700 image
(resized) and for a 448 x 448 one (already at model size), and per 8-frame video. Budget: reading
and checking entries adds <= 0.5 ms per request to computing the keys (a key's cost is the
request's pixel fingerprint, which every backend pays anyway); prints a PASS/FAIL line and exits
non-zero on FAIL.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vst.models.backends import Sampling, ScriptedBackend
from vst.models.backends.cache import CachedBackend
from vst.models.backends.vllm import build_vllm_prompt
from vst.models.requests import Request, Video

READ_BUDGET_MS = 0.5
"""Allowed warm-run cost per request beyond computing its key, milliseconds."""

N = 1000


def _images(n: int, size: tuple[int, int], seed: int) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8), "RGB")
        for _ in range(n)
    ]


def _requests(images: list[Image.Image]) -> list[Request]:
    return [
        Request(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": f"q{i}"}]}],
            images=[im],
        )
        for i, im in enumerate(images)
    ]


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def main() -> int:
    images = _images(N, (448, 448), seed=0)
    sampling = Sampling()
    with tempfile.TemporaryDirectory() as tmp:
        inner = ScriptedBackend(lambda r, i: "a short answer", model_id="bench")
        t0 = time.perf_counter()
        CachedBackend(inner, Path(tmp)).generate(_requests(images), sampling)
        cold = time.perf_counter() - t0

        fresh = _requests(images)
        warm_backend = CachedBackend(ScriptedBackend(lambda r, i: "x", model_id="bench"), tmp)
        t0 = time.perf_counter()
        answers = warm_backend.generate(fresh, sampling)
        warm = time.perf_counter() - t0
        assert all(a.cached for a in answers), "warm run missed"

        keys_only = _requests(images)
        t0 = time.perf_counter()
        for r in keys_only:
            warm_backend.key(r, sampling)
        keys = time.perf_counter() - t0

    print(f"cache cold run   : {_rate(N, cold):8.0f} requests/s ({N} requests, 448x448 image each)")
    print(f"cache warm run   : {_rate(N, warm):8.0f} requests/s (fresh Request objects)")
    print(f"cache key alone  : {_rate(N, keys):8.0f} requests/s (fingerprint + sha256)")

    for label, size in (("1000x700 (resized)", (1000, 700)), ("448x448 (as is)  ", (448, 448))):
        reqs = _requests(_images(50, size, seed=1))
        t0 = time.perf_counter()
        for r in reqs:
            build_vllm_prompt(r)
        print(f"vLLM prompt {label}: {1000 * (time.perf_counter() - t0) / len(reqs):6.2f} ms/image")
    frames = _images(8, (640, 480), seed=2)
    video_reqs = [
        Request([{"role": "user", "content": [{"type": "video"}]}], videos=[Video(frames, 2.0)])
        for _ in range(10)
    ]
    t0 = time.perf_counter()
    for r in video_reqs:
        build_vllm_prompt(r)
    print(f"vLLM prompt 8-frame 640x480 video: {1000 * (time.perf_counter() - t0) / 10:6.2f} ms")

    extra_ms = 1000 * (warm - keys) / N
    ok = extra_ms <= READ_BUDGET_MS
    print(f"{'PASS' if ok else 'FAIL'}: reads add {extra_ms:.3f} ms/request (<= {READ_BUDGET_MS})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
