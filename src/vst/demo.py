"""`vst demo`: the main job on the built-in default, end to end, on a CPU in a minute or two.

It synthesises MuJoCo rooms (the built-in default source), runs the data engine over them with
every registered task (Parquet shards + a report), re-derives every answer from the scenes'
ground truth, audits the dataset's quality (``vst data audit``: audit.md) and draws a contact
sheet per scene. Everything is written under ``out``; the same seed gives the same files, and a
rerun reuses what is already there.
"""

from __future__ import annotations

import os
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


def demo_config(out: Path, seed: int, num_scenes: int, workers: int) -> dict:
    """The demo's engine config: ``num_scenes`` synthetic rooms, every registered task."""
    return {
        "output": str(out),
        "seed": seed,
        "sources": [
            {
                "kind": "synthetic",
                "num_scenes": num_scenes,
                "width": 640,
                "height": 480,
                "single_views": 3,
                "multiview_sets": 1,
                "video_frames": 16,
            }
        ],
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

    sheets = out / "sheets"
    for scene_dir in find_scene_dirs(scenes_dir):
        scene = load_scene(scene_dir)
        write_contact_sheet(scene, sheets / f"{scene.id}.png")
    _fov_table(console)
    problems = [f"verify: {m}" for m in check.mismatches + check.failures]
    problems += [f"audit: {line}" for line in audit.failures]
    outputs = {
        "dataset": out / "data",
        "report": out / "report.md",
        "audit": audit_md,
        "scenes": scenes_dir,
        "sheets": sheets,
    }
    model_outputs, model_problems = _model_step(out, console)
    outputs.update(model_outputs)
    return DemoResult(outputs, problems + model_problems)


DEMO_PER_TASK = 3
"""Samples per task the demo's tiny model answers (the first of each task, in shard order)."""


def _model_step(out: Path, console: Console) -> tuple[dict[str, Path], list[str]]:
    """Build the tiny random Qwen2.5-VL (kept across reruns) and run it on every sample with
    ``vst predict``'s library call on the first :data:`DEMO_PER_TASK` samples of each task:
    predictions with rewards and a per-task table. A random
    model scores near zero; the step shows the model path works end to end. Skipped, and
    said so, when the ``models`` extra (torch, transformers) is not installed."""
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        console.print("model step skipped: install the models extra (pip install 'vst[models]')")
        return {}, []
    from vst.models.backends import Sampling, open_backend
    from vst.models.predict import report_paths, run_predict
    from vst.models.tiny import build_tiny

    model_dir = out / "tiny-model"
    if not (model_dir / "model.safetensors").is_file():  # rebuilt only when missing
        build_tiny(model_dir)
    backend = open_backend(model_dir, batch_size=8)
    predictions = out / "predictions.jsonl"
    try:
        report = run_predict(
            backend,
            out / "data",
            predictions,
            per_task=DEMO_PER_TASK,
            sampling=Sampling(max_tokens=24),
        )
    finally:
        backend.close()
    _, md = report_paths(predictions)
    overall = report.per_task.get("all", {})
    console.print(
        f"tiny model ({backend.model_id}) answered {overall.get('n', 0)} of {report.samples} "
        f"samples, mean accuracy {overall.get('accuracy') or 0.0:.3f} (random weights: near 0 is "
        f"expected) -> {predictions}"
    )
    problems = [f"predict: {f['id']} ({f['task']}): {f['error']}" for f in report.failed]
    problems += [f"predict: skipped {s['id']} ({s['task']}): {s['error']}" for s in report.skipped]
    return {"tiny model": model_dir, "predictions": predictions, "predict report": md}, problems
