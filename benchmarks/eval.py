"""Evaluation-harness overhead (issue 14): reading, prompting, judging, writing predictions and
caching, against an instant scripted backend, on a 5,000-question multiple-choice fixture.

Baseline: a model that takes 50 ms per question (the harness must add < 5 % to such a run).
(a) fresh run with an instant backend: harness seconds per question, as a share of 50 ms;
(b) rerun of the same run folder: every line found on disk, nothing asked;
(c) rerun into a new folder through the disk cache: every answer a cache hit.
Budget: (a) < 5 %, (c) a few seconds.
"""

from __future__ import annotations

import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from vst.eval.benchmarks.base import BenchItem, Benchmark, BenchScore, JudgedItem
from vst.eval.harness import run_benchmark
from vst.eval.metrics import extract_choice
from vst.models import Request
from vst.models.backends import CachedBackend, ScriptedBackend

N = 5000
MODEL_SECONDS = 0.05


class Fixture(Benchmark):
    """N four-option questions, each with its own 56x56 picture."""

    name = "fixture"

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        rng = np.random.default_rng(0)
        for i in range(N):
            image = Image.fromarray(rng.integers(0, 255, (56, 56, 3), dtype=np.uint8))
            text = f"Question {i}: which is closer?\nA. chair\nB. table\nC. sofa\nD. lamp"
            content = [{"type": "image"}, {"type": "text", "text": text}]
            yield BenchItem(
                f"q{i}",
                Request([{"role": "user", "content": content}], [image]),
                "ABCD"[i % 4],
                {"category": f"c{i % 7}"},
            )

    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        letter = extract_choice(reply, {"A": "chair", "B": "table", "C": "sofa", "D": "lamp"})
        return JudgedItem(
            item.id, item.fields, item.truth, letter, {"official": float(letter == item.truth)}
        )

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        acc = sum(j.scores["official"] for j in judged) / max(1, len(judged))
        return BenchScore(self.name, acc, {"official": acc}, {}, len(judged))


def answer(request: Request, index: int) -> str:
    i = int(request.messages[0]["content"][1]["text"].split(":")[0].split()[1])
    return f"The answer is {'ABCD'[(i * 7) % 4]}."


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        cache = root / "cache"
        t = time.perf_counter()
        backend = CachedBackend(ScriptedBackend(answer, model_id="instant"), cache)
        first = run_benchmark(Fixture(), backend, root, root / "run")
        fresh = time.perf_counter() - t
        t = time.perf_counter()
        again = run_benchmark(
            Fixture(), ScriptedBackend(answer, model_id="instant"), root, root / "run"
        )
        resumed = time.perf_counter() - t
        inner = ScriptedBackend(answer, model_id="instant")
        t = time.perf_counter()
        cached = run_benchmark(Fixture(), CachedBackend(inner, cache), root, root / "run2")
        rerun = time.perf_counter() - t
    per_q = fresh / N
    share = per_q / MODEL_SECONDS
    print(
        f"{N} questions, accuracy {first.score.official:.3f} (same in every run: "
        f"{again.score.official == cached.score.official == first.score.official})"
    )
    print(
        f"(a) fresh run, instant backend: {fresh:6.2f} s = {1000 * per_q:.2f} ms/question "
        f"= {100 * share:.1f} % of a 50 ms/question model"
    )
    print(f"(b) rerun, same folder        : {resumed:6.2f} s (asked {again.asked})")
    calls = sum(len(c) for c in inner.calls)
    print(f"(c) rerun, new folder + cache : {rerun:6.2f} s (model calls: {calls})")
    ok = share < 0.05
    print(("PASS" if ok else "FAIL") + f": harness overhead {100 * share:.1f} % (budget < 5 %)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
