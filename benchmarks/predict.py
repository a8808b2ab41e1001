"""`vst predict` overhead: what the run costs around the model (reading shards, decoding
pictures, fingerprints, rewards, fsync'd appends, the final sort and report), against a backend
that answers instantly.

Run: ``.venv/bin/python benchmarks/predict.py [--samples 2000] [--video-share 0.1]``

The dataset is written once into a temporary folder: single-image samples at an engine size
(308 x 252 JPEG) and a share of 16-frame video samples (same frame size), mcq and numeric
rewards. Printed: samples per second of a fresh run (CPU time of this process, one thread), of
a rerun with every line present (the resume path: plan, read the file, nothing sent) and the
time per sample split into request building and the rest.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import iter_rows, list_shards, shard_name, write_shard
from vst.models.backends import ScriptedBackend
from vst.models.predict import run_predict
from vst.models.samples import sample_request


def _samples(n: int, video_share: float, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    # smooth shading plus mild noise: JPEG sizes like rendered rooms (pure noise decodes ~4x
    # slower)
    yy, xx = np.mgrid[0:252, 0:308]
    shade = np.stack([xx * 0.8, yy * 0.9, (xx + yy) * 0.4], axis=-1)
    base = np.clip(shade + rng.normal(0, 6, shade.shape), 0, 255).astype(np.uint8)
    out = []
    for k in range(n):
        image = Image.fromarray(np.roll(base, k, axis=1), "RGB")
        if rng.random() < video_share:
            frames = [Image.fromarray(np.roll(base, k + f, axis=0), "RGB") for f in range(16)]
            out.append(
                Sample(
                    task="video_count",
                    scenario="video",
                    messages=[user(frames, f"How many chairs? ({k})"), assistant("3")],
                    images=[],
                    videos=[frames],
                    answer="3",
                    reward={"mode": "numeric", "ground_truth": 3.0},
                    meta={"video_fps": 2.0},
                )
            )
        else:
            out.append(
                Sample(
                    task="si_depth_order",
                    scenario="single_image",
                    messages=[user(image, f"Which is closer? ({k})\nA. x\nB. y"), assistant("A")],
                    images=[image],
                    answer="A",
                    reward={"mode": "mcq", "ground_truth": "A"},
                )
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--video-share", type=float, default=0.1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "ds" / "data"
        data.mkdir(parents=True)
        samples = _samples(args.samples, args.video_share)
        for i in range(0, len(samples), 500):
            write_shard(data / shard_name(i // 500, f"{i:012x}"), samples[i : i + 500])
        backend = ScriptedBackend(lambda request, index: "<think>ok</think>A")
        out = Path(tmp) / "p.jsonl"

        t0 = time.process_time()
        report = run_predict(backend, data.parent, out)
        fresh = time.process_time() - t0
        t0 = time.process_time()
        rerun = run_predict(backend, data.parent, out)
        resumed = time.process_time() - t0
        t0 = time.process_time()
        for shard in list_shards(data):
            for row in iter_rows(shard):
                sample_request(row).request.fingerprint()
        build = time.process_time() - t0

    n = report.samples
    videos = sum(1 for s in samples if s.videos)
    print(f"{n} samples ({videos} 16-frame videos), lines written {report.written}")
    print(f"fresh run:   {n / fresh:8.0f} samples/s  ({1e3 * fresh / n:.2f} ms per sample)")
    print(
        f"  of which request building (read + decode + fingerprint): "
        f"{1e3 * build / n:.2f} ms per sample"
    )
    print(f"resumed run: {n / resumed:8.0f} samples/s  (nothing sent, {rerun.reused} lines read)")


if __name__ == "__main__":
    main()
