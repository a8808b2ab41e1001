"""`vst demo`: the whole loop on the built-in default, end to end, on a CPU in a few minutes.

It synthesises MuJoCo rooms (3 for training and 1 held out, ``split: test``), runs the data engine
over them with every registered task (Parquet shards + a report; each sample's ``meta["split"]``
names its room's split), re-derives every answer from the scenes' ground truth, audits the
dataset's quality (``vst data audit``: audit.md), writes VST-R chain-of-thought samples from
ground truth (offline ``num`` and ``rt`` CoT, no teacher needed) and draws a contact sheet per
scene. Then it builds the tiny random Qwen2.5-VL, fine-tunes it briefly on the train split's
samples (``vst train sft``'s library path), runs a few GRPO steps on it with online filtering
(``vst train grpo``'s library path), evaluates the resulting model with ``vst eval run``'s library
path on ``vstp`` (the held-out room's samples) and on benchmark fixtures written in the
benchmarks' real formats, and writes the run's report. Everything is written under ``out``; the
same seed gives the same files, and a rerun reuses what is already there.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.table import Table

from vst.engine.audit import audit_shards, write_report
from vst.engine.config import parse_config
from vst.engine.runner import run
from vst.engine.verify import SceneIndex, verify_shards
from vst.engine.writer import list_shards
from vst.geometry import fov_unify
from vst.scenes import load_scene
from vst.scenes.io import find_scene_dirs
from vst.scenes.sources.synthetic.sheet import write_contact_sheet

# Typical colour cameras of the datasets VST trains on: (name, width, height, fx, fy).
DATASET_CAMERAS: list[tuple[str, int, int, float, float]] = [
    ("SUN RGB-D (Kinect v2)", 730, 530, 529.5, 529.5),
    ("ScanNet (colour)", 1296, 968, 1169.6, 1167.1),
    ("ARKitScenes (wide)", 1920, 1440, 1440.0, 1440.0),
    ("Hypersim", 1024, 768, 886.8, 886.8),
    ("vst synthetic", 640, 480, 554.3, 554.3),
]


def _fov_table(console: Console) -> None:
    table = Table(title="FoV unification of common cameras (paper Algorithm 1, f = 696.3 px)")
    for col in ("camera", "size", "hfov", "vfov", "unified size"):
        table.add_column(col)
    for name, w, h, fx, fy in DATASET_CAMERAS:
        u = fov_unify(w, h, fx, fy)
        table.add_row(
            name,
            f"{w}x{h}",
            f"{u.source_hfov:.2f}",
            f"{u.source_vfov:.2f}",
            f"{u.width}x{u.height}",
        )
    console.print(table)


TEST_SCENES = 1
"""Held-out rooms (``split: test``) the demo generates beside the training rooms: ``vstp``."""


def demo_config(
    out: Path, seed: int, num_scenes: int, workers: int, test_scenes: int = TEST_SCENES
) -> dict:
    """The demo's engine config: ``num_scenes`` synthetic training rooms and ``test_scenes``
    held-out ones (``split: test``, the next scene indices), every registered task."""
    room = {
        "kind": "synthetic",
        "width": 640,
        "height": 480,
        "single_views": 3,
        "multiview_sets": 1,
        "video_frames": 16,
    }
    sources = [{**room, "num_scenes": num_scenes}]
    if test_scenes:
        sources.append(
            {**room, "num_scenes": test_scenes, "start_index": num_scenes, "split": "test"}
        )
    return {
        "output": str(out),
        "seed": seed,
        "sources": sources,
        "tasks": [{"name": "*", "per_scene": 6}],
        "scenes_per_shard": 1,
        "workers": workers,
    }


@dataclass(frozen=True)
class DemoResult:
    """What the demo wrote (``outputs``: name -> path) and what it found wrong (``problems``:
    answer mismatches, unverifiable samples and audit thresholds crossed; empty on success)."""

    outputs: dict[str, Path]
    problems: list[str]


def run_demo(
    out: Path, seed: int = 0, console: Console | None = None, num_scenes: int = 3
) -> DemoResult:
    """Run the demo into ``out``; return the written outputs by name and the problems found."""
    console = console or Console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    workers = max(1, min(2, os.cpu_count() or 1))
    config = parse_config(demo_config(out, seed, num_scenes, workers), "vst demo")
    report = run(config, console=console)

    table = Table(title=f"{report.samples_total} samples from {report.scenes_used} scene(s)")
    table.add_column("task")
    table.add_column("samples", justify="right")
    for task, n in sorted(report.samples_per_task.items()):
        table.add_row(task, str(n))
    console.print(table)

    scenes_dir = out / "scenes"
    check = verify_shards(list_shards(out / "data"), SceneIndex(scenes_dir))
    console.print(
        f"verified {check.checked} answers against the scenes' ground truth: "
        f"{len(check.mismatches)} mismatch(es), {len(check.failures)} unverifiable"
    )

    audit = audit_shards(list_shards(out / "data"), scenes=scenes_dir)
    audit_md = write_report(audit, out)
    console.print(
        f"audited the dataset ({audit_md}): "
        + ("every quality threshold holds" if audit.ok else f"{len(audit.failures)} finding(s)")
    )
    for line in audit.failures:
        console.print(f"  audit: {line}", markup=False)

    from vst.reasoning.offline_run import run_offline_cot

    cot = run_offline_cot(out, scenes_dir, out / "cot", kinds=("num", "rt"))
    for line in cot.lines():
        console.print(line, markup=False, highlight=False)
    problems_cot = [] if cot.kept + cot.resumed else ["cot: no offline CoT sample was written"]

    sheets = out / "sheets"
    for scene_dir in find_scene_dirs(scenes_dir):
        scene = load_scene(scene_dir)
        write_contact_sheet(scene, sheets / f"{scene.id}.png")
    _fov_table(console)
    problems = [f"verify: {m}" for m in check.mismatches + check.failures]
    problems += [f"audit: {line}" for line in audit.failures] + problems_cot
    outputs = {
        "dataset": out / "data",
        "CoT data (VST-R, offline)": out / "cot" / "data",
        "report": out / "report.md",
        "audit": audit_md,
        "scenes": scenes_dir,
        "sheets": sheets,
    }
    model_outputs, model_problems = _model_step(out, console)
    outputs.update(model_outputs)
    outputs["viewer"] = _viewer_step(out, console)
    return DemoResult(outputs, problems + model_problems)


def _viewer_step(out: Path, console: Console) -> Path:
    """The HTML viewer of the demo dataset (``vst data view``), with the trained model's
    ``vstp`` answers when the model step ran: its index page."""
    from vst.viz import build_site

    predictions = out / "eval" / "vstp.predictions.jsonl"
    site = build_site(
        out, out / "site", predictions if predictions.is_file() else None, console=console
    )
    with_predictions = (
        f", {site.predictions_matched} with the model's answer" if (site.predictions) else ""
    )
    console.print(f"viewer: {site.samples} samples{with_predictions} -> {site.index}")
    return site.index


TRAIN_STEPS = 20
"""Optimizer steps of the demo's SFT (one packed row per step, small pictures, CPU)."""

DEMO_PER_TASK = 2
"""``vstp`` items per task the trained model answers (the first of each task in shard order)."""

BENCH_LIMIT = 6
"""Items of each benchmark fixture the trained model answers (the first ones)."""

DEMO_MAX_TOKENS = 48
"""Reply cap of the demo's eval (benchmarks allow up to 2048 tokens, which a barely trained model
fills on a CPU for minutes; the cap is recorded in every predictions line's ``sampling``)."""

FIXTURE_BENCHMARKS = ("cvbench", "blink", "3dsrbench", "mmsi", "vsibench", "det3d-sunrgbd")
"""The public benchmarks run on fixtures in their real on-disk formats."""


def train_config(out: Path) -> dict:
    """The demo's SFT: the tiny model on the train split's samples of the demo dataset."""
    return {
        "stage": "sft",
        "model": str(out / "tiny-model"),
        "output_dir": str(out / "trained-model"),
        "seed": 0,
        "learning_rate": 2.0e-3,
        "vision_learning_rate": 2.0e-4,
        "global_batch_size": 1,
        "rows_per_device": 1,
        "max_length": 2048,
        "max_steps": TRAIN_STEPS,
        "packing": True,
        "bf16": False,
        "gradient_checkpointing": False,
        "attn_implementation": "sdpa",
        "use_cpu": True,
        "save_steps": 10,
        "min_pixels": 3136,
        "max_pixels": 12544,  # 112 x 112: small pictures keep CPU steps short
        "video_min_pixels": 784,
        "video_max_pixels": 3136,
        "data": [{"kind": "vst", "path": str(out / "data"), "splits": ["train"]}],
    }


def write_bench_fixtures(root: Path) -> Path:
    """Write the benchmark fixtures (real on-disk formats, made up content) under ``root``,
    one folder per benchmark; folders already there are kept."""
    from vst.testing.bench_fixtures_3dsr import write_3dsr_tsv
    from vst.testing.bench_fixtures_blink import write_blink
    from vst.testing.bench_fixtures_cvbench import write_cvbench
    from vst.testing.bench_fixtures_mmsi import write_mmsi_parquet
    from vst.testing.bench_fixtures_vsibench import write_vsibench
    from vst.testing.omni3d_fixture import write_omni3d_fixture

    writers: dict[str, Callable[[Path], object]] = {
        "cvbench": write_cvbench,
        "blink": write_blink,
        "3dsrbench": write_3dsr_tsv,
        "mmsi": write_mmsi_parquet,
        "vsibench": write_vsibench,
    }
    root.mkdir(parents=True, exist_ok=True)
    for name, write in writers.items():
        if not (root / name).is_dir():
            partial = root / f".{name}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            write(partial)
            partial.rename(root / name)
    det = root / "det3d-sunrgbd"
    if not det.is_dir():
        partial = root / ".omni3d.partial"
        shutil.rmtree(partial, ignore_errors=True)
        fx = write_omni3d_fixture(partial)
        shutil.rmtree(root / "omni3d", ignore_errors=True)
        partial.rename(root / "omni3d")
        det.unlink(missing_ok=True)
        det.symlink_to(Path("omni3d") / fx.image_root.relative_to(partial))
    return root


RL_STEPS = 3
"""GRPO steps of the demo (4 prompts x 4 completions each, online filtering on)."""


def rl_config(out: Path) -> dict:
    """The demo's GRPO: the SFT model on the train split's rule-checkable image samples."""
    return {
        "stage": "grpo",
        "model": str(out / "trained-model"),
        "output_dir": str(out / "rl-model"),
        "seed": 0,
        "learning_rate": 1.0e-4,
        "global_batch_size": 4,
        "num_generations": 4,
        "per_device_batch_size": 16,
        "max_completion_length": 32,
        "max_length": 2048,
        "max_steps": RL_STEPS,
        "save_steps": 10,
        "bf16": False,
        "gradient_checkpointing": False,
        "attn_implementation": "sdpa",
        "use_cpu": True,
        "min_pixels": 3136,
        "max_pixels": 12544,
        "filter": {"max_rounds": 1},
        "data": [{"kind": "vst", "path": str(out / "data"), "splits": ["train"]}],
    }


def _rl_step(out: Path, console: Console) -> Path:
    """A few GRPO steps on the SFT model (kept once saved); returns the model folder."""
    from vst.train.grpo import run_grpo
    from vst.train.grpo_config import parse_grpo_config

    config = parse_grpo_config(rl_config(out), "vst demo grpo")
    if (config.output_dir / "model.safetensors").is_file():
        console.print(f"GRPO model found, kept: {config.output_dir}")
        return config.output_dir
    result = run_grpo(config, resume=True, where="vst demo grpo")
    rows = [json.loads(line) for line in result.metrics.read_text().splitlines() if line]
    acc = [r["vst/accuracy"] for r in rows if "vst/accuracy" in r]
    kept = sum(r.get("vst/groups_kept", 0) for r in rows)
    drawn = sum(r.get("vst/groups_drawn", 0) for r in rows)
    curve = f", accuracy reward {acc[0]:.2f} -> {acc[-1]:.2f}" if acc else ""
    console.print(
        f"GRPO: {result.steps} steps{curve}; the online filter kept {kept:g} of {drawn:g} "
        f"prompt groups (a barely trained model is mostly all wrong) -> {config.output_dir}"
    )
    return config.output_dir


def _model_step(out: Path, console: Console) -> tuple[dict[str, Path], list[str]]:
    """Build the tiny random Qwen2.5-VL (kept across reruns), fine-tune it briefly on the
    train split (``vst train sft``'s library call; kept once saved), and evaluate the trained
    model with ``vst eval run``'s library call on ``vstp`` (the held-out test split) and on
    the benchmark fixtures, then write the run's report. A few minutes of CPU training moves
    the scores little; the step shows the whole loop works. Skipped, and said so, when the
    ``models`` extra (torch, transformers) is not installed."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        console.print("model step skipped: install the models extra (pip install 'vst[models]')")
        return {}, []
    from vst.eval.benchmarks.vstp import VstP
    from vst.eval.harness import EvalError, run_benchmark
    from vst.eval.registry import get_benchmark
    from vst.eval.report import write_report
    from vst.models.backends import open_backend
    from vst.models.tiny import build_tiny
    from vst.train.config import parse_train_config
    from vst.train.trainer import run_training

    model_dir = out / "tiny-model"
    if not (model_dir / "model.safetensors").is_file():  # rebuilt only when missing
        build_tiny(model_dir)
    config = parse_train_config(train_config(out), "vst demo train")
    trained = config.output_dir
    if (trained / "model.safetensors").is_file():
        console.print(f"trained model found, kept: {trained}")
    else:
        result = run_training(config, resume=True, where="vst demo train")
        losses = [
            rec["loss"]
            for rec in map(json.loads, result.metrics.read_text().splitlines())
            if isinstance(rec.get("loss"), int | float)
        ]
        drop = f", loss {losses[0]:.2f} -> {losses[-1]:.2f}" if losses else ""
        console.print(
            f"trained the tiny model for {result.steps} steps on {result.examples} "
            f"train-split example(s){drop} -> {trained}"
        )

    sft_model, trained = trained, _rl_step(out, console)
    bench_data = write_bench_fixtures(out / "bench-data")
    run_dir = out / "eval"
    problems: list[str] = []
    table = Table(title=f"trained tiny model (SFT + GRPO) on the benchmarks ({run_dir})")
    for col in ("benchmark", "items", "asked", "reused", "official"):
        table.add_column(col, justify="left" if col == "benchmark" else "right")
    backend = open_backend(trained, limits=config.pixel_limits(), batch_size=8)
    try:
        jobs = [(VstP(split="test", per_task=DEMO_PER_TASK), out, None)]
        jobs += [(get_benchmark(n), bench_data, BENCH_LIMIT) for n in FIXTURE_BENCHMARKS]
        for bench, root, limit in jobs:
            cap = min(bench.sampling.max_tokens, DEMO_MAX_TOKENS)
            bench.sampling = dataclasses.replace(bench.sampling, max_tokens=cap)  # type: ignore[misc]
            try:
                run = run_benchmark(bench, backend, root, run_dir, limit=limit, model_dir=trained)
            except (EvalError, ValueError) as exc:
                problems.append(f"eval: {bench.name}: {exc}")
                continue
            problems += [f"eval: {bench.name}: {f['id']}: {f['error']}" for f in run.failed]
            official = run.score.official
            table.add_row(
                bench.name,
                str(run.items),
                str(run.asked),
                str(run.reused),
                "-" if official is None else f"{official:.3f}",
            )
    finally:
        backend.close()
    console.print(table)
    md, js, png = write_report(run_dir)
    outputs = {
        "tiny model": model_dir,
        "trained model": sft_model,
        "GRPO model": trained,
        "benchmark fixtures": bench_data,
        "eval run": run_dir,
        "eval report": md,
        "eval report json": js,
    }
    if png is not None:
        outputs["eval chart"] = png
    return outputs, problems
