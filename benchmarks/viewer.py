"""The viewer (``vst data view``) streams: pages per second and peak memory at two dataset sizes.

Run: ``.venv/bin/python benchmarks/viewer.py [--sizes 10000,100000]``. For each size a synthetic
dataset is written (one shard per 10,000 samples; 19 task names, 50 scenes, one distinct 64 x 48
JPEG and ~600 characters of conversation per sample, so every sample writes one media file),
then the site is built in a fresh child process, which reports its wall time and peak RSS:
once with ``--no-audit`` (the streamed path) and once computing the audit (which holds the text
columns of every row: :func:`vst.engine.audit.audit_rows`). Det3D figures are not part of this
run (no ``det3d`` rewards): it measures the streaming path (reading, pages, media files, index).
Budget: without the audit, the largest size's peak RSS is at most ``RSS_RATIO`` times the
smallest's plus ``RSS_SLACK_MB`` (memory flat in the dataset size); prints a PASS/FAIL line and
exits non-zero on FAIL.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from vst.engine.writer import ShardWriter, shard_name

RSS_RATIO = 1.25
RSS_SLACK_MB = 50.0
PER_SHARD = 10_000


def _jpeg(k: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 48), (k % 251, (k // 251) % 251, (k // 63001) % 251)).save(
        buf, format="JPEG", quality=80
    )
    return buf.getvalue()


def write_dataset(folder: Path, n: int) -> Path:
    """``n`` synthetic samples in shards of :data:`PER_SHARD` under ``folder/data``."""
    data = folder / "data"
    data.mkdir(parents=True)
    for s in range(0, n, PER_SHARD):
        with ShardWriter(data / shard_name(s // PER_SHARD, f"{s:012x}")) as writer:
            for k in range(s, min(n, s + PER_SHARD)):
                question = f"Sample {k}: which object is closer to the camera, A or B? " * 8
                writer.write(
                    {
                        "id": f"{k:016x}",
                        "task": f"task_{k % 19:02d}",
                        "scenario": "single_image",
                        "messages": [
                            {
                                "role": "user",
                                "content": [
                                    {"type": "image", "text": None},
                                    {"type": "text", "text": question},
                                ],
                            },
                            {
                                "role": "assistant",
                                "content": [{"type": "text", "text": "AB"[k % 2]}],
                            },
                        ],
                        "images": [{"bytes": _jpeg(k), "path": None}],
                        "videos": [],
                        "answer": "AB"[k % 2],
                        "reward": json.dumps({"ground_truth": "AB"[k % 2], "mode": "mcq"}),
                        "meta": json.dumps({"scene_id": f"scene_{k % 50:03d}", "split": "train"}),
                    }
                )
            writer.close()
    return folder


def _child(dataset: str, site: str, audit: str) -> None:
    from vst.viz import build_site

    t0 = time.perf_counter()
    report = build_site(dataset, site, audit=audit == "audit")
    seconds = time.perf_counter() - t0
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"samples": report.samples, "seconds": seconds, "rss_mb": rss_mb, "mode": audit})
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return 0
    sizes = [int(s) for s in args.sizes.split(",")]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sizes:
            ds = write_dataset(Path(tmp) / f"ds{n}", n)
            for mode in ("no-audit", "audit"):
                site = Path(tmp) / f"site{n}-{mode}"
                out = subprocess.run(
                    [sys.executable, __file__, "--child", str(ds), str(site), mode],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{'samples':>8} {'audit':>9} {'seconds':>8} {'samples/s':>10} {'peak RSS MB':>12}")
    for r in rows:
        print(
            f"{r['samples']:>8} {r['mode']:>9} {r['seconds']:>8.1f} "
            f"{r['samples'] / r['seconds']:>10.0f} {r['rss_mb']:>12.0f}"
        )
    streamed = [r for r in rows if r["mode"] == "no-audit"]
    small, large = streamed[0]["rss_mb"], streamed[-1]["rss_mb"]
    ok = large <= RSS_RATIO * small + RSS_SLACK_MB
    print(
        f"{'PASS' if ok else 'FAIL'}: peak RSS {large:.0f} MB at {streamed[-1]['samples']} "
        f"samples vs {small:.0f} MB at {streamed[0]['samples']} without the audit (budget "
        f"{RSS_RATIO} x + {RSS_SLACK_MB:.0f} MB); with --audit the audit's own rows add to it"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
