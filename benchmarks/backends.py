"""Throughput of the ``openai`` backend against a local instant-answer server, and the cost of
building a request per image.

Run: ``.venv/bin/python benchmarks/backends.py``.

(a) Requests per second of :class:`vst.models.backends.openai.OpenAIBackend` at concurrency 1,
    8 and 32, text-only and with one 448x448 image (PNG, the default, and JPEG), against
    ``python -m vst.testing.openai_fake`` (an asyncio HTTP/1.1 server that answers at once
    without reading bodies), started in its own process and pinned to the other core when there
    are two, so it does not share the client's core; then text-only again against the same
    server answering after 20 ms (a model's latency), where concurrency pays. Each figure is the
    best of 3 timed runs after a warm-up; concurrency 1 is the baseline in the same run.
    Budget: >= 500 requests/s at concurrency 32, text-only, instant server.
(b) Request building per image: :func:`vst.models.openai_format.to_openai_messages` on a
    448x448 image already at model size, and on a 640x480 one (fitted to 644x476 first), PNG and
    JPEG (median of 30, ms), and one 4-frame video of 448x448 frames (JPEG).

The images are a smooth synthetic scene with mild sensor noise (what a camera frame compresses
like), seeded. Prints a table and a PASS/FAIL line; exits non-zero on FAIL.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vst.models import Request, Video
from vst.models.backends import Sampling
from vst.models.backends.openai import OpenAIBackend
from vst.models.openai_format import to_openai_messages

BUDGET_RPS = 500.0
"""Text-only requests per second at concurrency 32."""

CONCURRENCIES = (1, 8, 32)
LATENCY_S = 0.020
"""The second server's answer delay (a model's latency), where concurrency pays."""
RUNS = 3


def scene(width: int, height: int, seed: int = 0) -> Image.Image:
    """A smooth synthetic frame (gradients, a few boxes) with mild noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    img = np.stack([x / width * 200, y / height * 180 + 30, (x + y) / (width + height) * 150], -1)
    for _ in range(6):
        x0, y0 = rng.integers(0, width - 60), rng.integers(0, height - 60)
        w, h = rng.integers(30, 120), rng.integers(30, 120)
        img[y0 : y0 + h, x0 : x0 + w] = rng.integers(0, 256, 3)
    img += rng.normal(0, 3, img.shape)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def start_server(delay: float = 0.0) -> tuple[subprocess.Popen[str], str]:
    """The fake server in its own process (on core 1 when there are two), answering after
    ``delay`` seconds."""
    env = dict(os.environ)
    src = str(Path(__file__).resolve().parents[1] / "src")
    env["PYTHONPATH"] = src + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.Popen(
        [sys.executable, "-m", "vst.testing.openai_fake", "0", str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline().split()
    if line[:1] != ["PORT"]:
        proc.kill()
        raise SystemExit("the fake server did not start")
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) >= 2:
        os.sched_setaffinity(proc.pid, {cores[1]})
        os.sched_setaffinity(0, {cores[0]})
    return proc, f"http://127.0.0.1:{line[1]}"


def rate(url: str, concurrency: int, request: Request, count: int, image_format: str) -> float:
    """Best requests/s of ``RUNS`` runs of ``count`` requests (after a warm-up)."""
    sampling = Sampling(max_tokens=16)
    best = 0.0
    with OpenAIBackend(
        url, model="fake", concurrency=concurrency, max_retries=0, image_format=image_format
    ) as backend:
        backend.generate([request] * min(count, 4 * concurrency), sampling)
        for _ in range(RUNS):
            t0 = time.perf_counter()
            out = backend.generate([request] * count, sampling)
            elapsed = time.perf_counter() - t0
            if not all(c.ok for c in out):
                raise SystemExit(f"failed requests: {[c.error for c in out if not c.ok][:3]}")
            best = max(best, count / elapsed)
    return best


def build_ms(request: Request, image_format: str, repeats: int = 30) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        to_openai_messages(request, image_format)  # type: ignore[arg-type]
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


def main() -> int:
    text = Request([{"role": "user", "content": "How far is the chair from the table?"}])
    image_item = [{"type": "image"}, {"type": "text", "text": "How far is the chair?"}]
    with_image = Request([{"role": "user", "content": image_item}], [scene(448, 448)])

    rows = []
    for delay, cases in (
        (
            0.0,
            (
                ("text only", text, {1: 300, 8: 1500, 32: 3000}, "png"),
                ("one 448x448 image (PNG)", with_image, {1: 100, 8: 200, 32: 300}, "png"),
                ("one 448x448 image (JPEG)", with_image, {1: 300, 8: 600, 32: 1000}, "jpeg"),
            ),
        ),
        (LATENCY_S, (("text only, 20 ms latency", text, {1: 50, 8: 400, 32: 1500}, "png"),)),
    ):
        proc, url = start_server(delay)
        try:
            for name, request, counts, fmt in cases:
                base = None
                for c in CONCURRENCIES:
                    rps = rate(url, c, request, counts[c], fmt)
                    base = base or rps
                    rows.append((name, c, rps, rps / base))
        finally:
            proc.terminate()
            proc.wait(timeout=10)

    print("(a) OpenAIBackend against a local instant-answer server (separate process)")
    print(f"{'request':<28} {'concurrency':>11} {'requests/s':>11} {'vs c=1':>7}")
    for name, c, rps, speedup in rows:
        print(f"{name:<28} {c:>11} {rps:>11.0f} {speedup:>6.1f}x")

    print("\n(b) request building per image (to_openai_messages: fit + encode + base64), ms")
    cases = [
        ("448x448, at model size", Request(with_image.messages, [scene(448, 448)])),
        ("640x480, fitted to 644x476", Request(with_image.messages, [scene(640, 480, 1)])),
    ]
    print(f"{'image':<28} {'PNG':>7} {'JPEG':>7}")
    for name, request in cases:
        print(f"{name:<28} {build_ms(request, 'png'):>7.2f} {build_ms(request, 'jpeg'):>7.2f}")
    frames = tuple(scene(448, 448, k) for k in range(4))
    video = Request(
        [{"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "q"}]}],
        videos=[Video(frames, 2.0)],
    )
    print(f"{'4-frame 448x448 video':<28} {'':>7} {build_ms(video, 'png', 10):>7.2f}")

    top = max(rps for name, c, rps, _ in rows if name == "text only" and c == 32)
    verdict = "PASS" if top >= BUDGET_RPS else "FAIL"
    print(f"\n{verdict}: {top:.0f} text requests/s at concurrency 32 (budget >= {BUDGET_RPS:.0f})")
    return 0 if verdict == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
