"""`vst generate` (run the data engine from a YAML config) and `vst data ...` (inspect, verify
and export the shards it writes).

Register in ``vst/cli.py``::

    app.add_typer(generate_app)              # adds the `generate` command
    app.add_typer(data_app, name="data")     # adds `data info|verify|audit|export|view`
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from vst.atomic import commit, temp_file
from vst.engine.verify import SceneIndex, verify_shards
from vst.engine.writer import image_extension, iter_rows, list_shards
from vst.fserrors import exit_code_of, os_error_line

generate_app = typer.Typer(no_args_is_help=True)
data_app = typer.Typer(
    help="Generated datasets (folders of Parquet shards): info, verify, audit, export, view.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _split(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    return names or None


# -- generate --------------------------------------------------------------------------------
@generate_app.command("generate")
def generate_cmd(
    config: Path = typer.Argument(..., help="Run configuration (YAML), e.g. configs/demo.yaml."),
    out: Path | None = typer.Option(None, "--out", help="Override `output` (the run folder)."),
    seed: int | None = typer.Option(None, "--seed", help="Override `seed`."),
    workers: int | None = typer.Option(None, "--workers", help="Override `workers`."),
    strict: bool | None = typer.Option(
        None, "--strict/--no-strict", help="Fail on an invalid scene instead of skipping it."
    ),
    tasks: str | None = typer.Option(
        None, "--tasks", help="Only these tasks (comma-separated names or globs)."
    ),
    allow_benchmark_scenes: bool = typer.Option(
        False,
        "--allow-benchmark-scenes",
        help="Include scenes of evaluation benchmarks (excluded by default: they leak into "
        "the benchmark).",
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    executor: str = typer.Option(
        "local",
        "--executor",
        help="local (this machine: in-process or `workers` processes) or ray (one Ray task per "
        "shard; pip install 'vst[ray]'). Same shards and report either way.",
    ),
    address: str | None = typer.Option(
        None,
        "--address",
        help="With --executor ray: the cluster (auto, ray://host:10001); default: a local Ray "
        "with `workers` CPUs. Scenes and output must be on a file system all nodes share.",
    ),
) -> None:
    """Generate VST samples from scenes into Parquet shards (resumable: rerun to continue).

    Exit codes: 0 done; 1 the run failed on the way (a task error, disk full, an invalid scene
    with --strict); 2 bad input (the config or an option, a path that cannot be used, an output
    folder that is a file, not writable, or held by another run)."""
    from vst.distributed import RayUnavailableError
    from vst.engine.config import ConfigError, load_config
    from vst.engine.executors import make_executor
    from vst.engine.runner import EngineError, run

    if tasks is not None and _split(tasks) is None:
        _fail(f"--tasks: no task names in {tasks!r} (give comma-separated names or globs)")
    try:
        cfg = load_config(config)
        allow = True if allow_benchmark_scenes else None
        if any(v is not None for v in (out, seed, workers, strict, tasks, allow)):
            cfg = cfg.with_overrides(
                allow_benchmark_scenes=allow,
                output=out,
                seed=seed,
                workers=workers,
                strict=strict,
                tasks=_split(tasks),
                where=f"{config} with command-line overrides",
            )
    except ConfigError as exc:
        _fail(str(exc))
    try:
        runner = make_executor(executor, workers=cfg.workers, address=address)
    except (ValueError, RayUnavailableError) as exc:
        _fail(f"--executor {executor}: {exc}")
    try:
        report = run(cfg, progress=not quiet, console=err_console, executor=runner)
    except EngineError as exc:
        _fail(str(exc), exc.exit_code)
    except RayUnavailableError as exc:
        _fail(str(exc))

    table = Table(title=f"{report.samples_total} samples in {cfg.data_dir}")
    table.add_column("task")
    table.add_column("scenario")
    table.add_column("samples", justify="right")
    for task, n in report.samples_per_task.items():
        table.add_row(task, report.scenario_of_task.get(task, ""), str(n))
    console.print(table)
    console.print(
        f"shards: {report.shards_written} written, {report.shards_reused} reused; "
        f"scenes: {report.scenes_used} of {report.scenes_total} used"
    )
    if report.excluded_benchmark_scenes:
        console.print(
            f"[yellow]leakage guard[/yellow]: {len(report.excluded_benchmark_scenes)} benchmark "
            "scene(s) excluded (listed in the report; --allow-benchmark-scenes includes them)",
            highlight=False,
        )
    if report.included_benchmark_scenes:
        console.print(
            f"[red]leakage guard overridden[/red]: {len(report.included_benchmark_scenes)} "
            "benchmark scene(s) included",
            highlight=False,
        )
    for imp in report.imports:
        console.print(f"import: {imp['summary']}", markup=False, highlight=False)
    for s in report.skipped_scenes:
        console.print(f"[yellow]skipped scene[/yellow] {s['dir']}:", highlight=False)
        for r in s["reasons"][:5]:
            console.print(f"  - {r}", markup=False, highlight=False)
    for e in report.task_errors:
        console.print(
            f"[red]task error[/red] {e['task']} on {e['scene_id']}: {e['error']}", highlight=False
        )
    for u in report.failed_units:
        console.print(
            f"[red]unit failed[/red] {u['shard']} ({u['attempts']} attempts): {u['error']} "
            "(no shard written; rerun to try again)",
            highlight=False,
        )
    console.print(f"report: {cfg.output / 'report.md'}")
    if report.task_errors or report.failed_units:
        raise typer.Exit(1)


# -- data info -------------------------------------------------------------------------------
def _shards_or_exit(folder: Path) -> list[Path]:
    if not folder.exists():
        _fail(f"{folder} does not exist")
    shards = list_shards(folder)
    if not shards:
        _fail(f"no shards (shard-*.parquet) in {folder} or {folder / 'data'}")
    return shards


def _short(text: str, n: int = 240) -> str:
    text = text.replace("\n", " / ")
    return text if len(text) <= n else text[: n - 3] + "..."


@data_app.command("info")
def info_cmd(
    folder: Path = typer.Argument(..., help="A run folder or its data/ folder of shards."),
) -> None:
    """Samples per task and scenario, shards and sizes, and one example of each task."""
    shards = _shards_or_exit(folder)
    per_task: Counter[str] = Counter()
    per_scenario: Counter[str] = Counter()
    first_shard: dict[str, Path] = {}
    sizes = [p.stat().st_size for p in shards]
    total_bytes = sum(sizes)
    for p in shards:
        t = pq.read_table(p, columns=["task", "scenario"]).to_pydict()
        per_task.update(t["task"])
        per_scenario.update(t["scenario"])
        for name in t["task"]:
            first_shard.setdefault(name, p)
    n = sum(per_task.values())
    console.print(
        f"{n} samples in {len(shards)} shard(s), {total_bytes / 1e6:.1f} MB "
        f"({total_bytes / max(n, 1) / 1e3:.1f} kB per sample; shards "
        f"{min(sizes) / 1e6:.2f}-{max(sizes) / 1e6:.2f} MB)"
    )
    table = Table(title="samples per task")
    table.add_column("task")
    table.add_column("samples", justify="right")
    for k, v in sorted(per_task.items()):
        table.add_row(k, str(v))
    console.print(table)
    table = Table(title="samples per scenario")
    table.add_column("scenario")
    table.add_column("samples", justify="right")
    for k, v in sorted(per_scenario.items()):
        table.add_row(k, str(v))
    console.print(table)
    for name in sorted(first_shard):
        row = next(
            r
            for r in iter_rows(first_shard[name], ["id", "task", "messages", "answer", "images"])
            if r["task"] == name
        )
        console.print(f"\n[bold]{name}[/bold] (id {row['id']}, {len(row['images'])} image(s))")
        for m in row["messages"]:
            parts = ["<image>" if c["type"] == "image" else (c["text"] or "") for c in m["content"]]
            console.print(f"  {m['role']}: {_short(' '.join(parts))}", markup=False)
        console.print(f"  answer: {_short(row['answer'], 120)}", markup=False)


# -- data verify -----------------------------------------------------------------------------
@data_app.command("verify")
def verify_cmd(
    folder: Path = typer.Argument(..., help="A run folder or its data/ folder of shards."),
    scenes: Path = typer.Option(..., "--scenes", help="Folder holding the scene directories."),
    show: int = typer.Option(20, "--show", help="Mismatches to list."),
) -> None:
    """Recompute every answer from the scenes' ground truth (`derive_answer(scene, meta)`) and
    compare with the stored one; exit 1 on any mismatch or failure."""
    shards = _shards_or_exit(folder)
    if not scenes.exists():
        _fail(f"--scenes: {scenes} does not exist")
    index = SceneIndex(scenes)
    if not index.dirs:
        _fail(f"--scenes: no scene directories (folders with scene.json) under {scenes}")
    total = sum(pq.ParquetFile(p).metadata.num_rows for p in shards)
    with Progress(console=err_console, transient=True) as bar:
        job = bar.add_task("verifying", total=total)
        result = verify_shards(shards, index, on_sample=lambda: bar.advance(job))
    checked, mismatches, failures = result.checked, result.mismatches, result.failures
    if mismatches:
        table = Table(title=f"{len(mismatches)} mismatch(es)")
        for col in ("sample id", "task", "scene", "stored", "derived"):
            table.add_column(col, overflow="fold")
        for m in mismatches[:show]:
            table.add_row(
                m["id"], m["task"], m["scene"], _short(m["stored"], 80), _short(m["derived"], 80)
            )
        console.print(table)
    for f in failures[:show]:
        console.print(
            f"[red]cannot verify[/red] sample {f['id']} ({f['task']}, {f['shard']}): {f['error']}",
            highlight=False,
        )
    console.print(
        f"checked {checked} samples: {len(mismatches)} mismatch(es), "
        f"{len(failures)} could not be verified"
    )
    if mismatches or failures:
        raise typer.Exit(1)


# -- data audit ------------------------------------------------------------------------------
@data_app.command("audit")
def audit_cmd(
    folder: Path = typer.Argument(..., help="A run folder or its data/ folder of shards."),
    scenes: Path | None = typer.Option(
        None, "--scenes", help="Folder of the scene directories (checks every sample's scene)."
    ),
    out: Path | None = typer.Option(
        None, "--out", help="Folder for audit.md and audit.json (default: FOLDER)."
    ),
    min_visible_fraction: float = typer.Option(0.5, help="A referent below this is unseen."),
    max_low_visible_share: float = typer.Option(0.02, help="Max share of unseen referents."),
    min_floor_coverage: float = typer.Option(0.8, help="Room-area clips must show this much."),
    max_low_coverage_share: float = typer.Option(0.0, help="Max share of low-coverage rooms."),
    min_mcq_samples: int = typer.Option(30, help="Judge letter balance from this many."),
    min_balance_p: float = typer.Option(0.001, help="Chi-square p below this: unbalanced."),
    max_duplicate_question_share: float = typer.Option(0.25, help="Same question, same input."),
    max_repeated_fact_share: float = typer.Option(0.25, help="Same fact, same input."),
    max_instruction_violation_share: float = typer.Option(0.0, help="Targets off their prompt."),
    allow_mixed_styles: bool = typer.Option(False, help="Accept mixed MCQ answer styles."),
) -> None:
    """Quality report per task (visible fractions of referents, clip floor coverage, answer
    label balance, question and fact repetition, instruction/target agreement, answer styles)
    written as audit.md + audit.json; exit 1 listing every threshold crossed."""
    from vst.engine.audit import Thresholds, audit_shards, write_report

    shards = _shards_or_exit(folder)
    if scenes is not None and not scenes.is_dir():
        _fail(f"--scenes: {scenes} is not a folder")
    shares = {
        "--max-low-visible-share": max_low_visible_share,
        "--max-low-coverage-share": max_low_coverage_share,
        "--max-duplicate-question-share": max_duplicate_question_share,
        "--max-repeated-fact-share": max_repeated_fact_share,
        "--max-instruction-violation-share": max_instruction_violation_share,
        "--min-visible-fraction": min_visible_fraction,
        "--min-floor-coverage": min_floor_coverage,
        "--min-balance-p": min_balance_p,
    }
    for name, value in shares.items():
        if not 0.0 <= value <= 1.0:
            _fail(f"{name} must be in [0, 1], got {value}")
    thresholds = Thresholds(
        min_visible_fraction=min_visible_fraction,
        max_low_visible_share=max_low_visible_share,
        min_floor_coverage=min_floor_coverage,
        max_low_coverage_share=max_low_coverage_share,
        min_mcq_samples=max(1, min_mcq_samples),
        min_balance_p=min_balance_p,
        max_duplicate_question_share=max_duplicate_question_share,
        max_repeated_fact_share=max_repeated_fact_share,
        max_instruction_violation_share=max_instruction_violation_share,
        allow_mixed_styles=allow_mixed_styles,
    )
    report = audit_shards(shards, thresholds, scenes)
    out = out or folder
    try:
        write_report(report, out)
    except OSError as exc:
        _fail(f"cannot write the audit report into {out}: {exc.strerror or exc}")
    for line in report.failures:
        console.print(f"[red]FAIL[/red] {line}", highlight=False, markup=True)
    console.print(
        f"audited {report.samples} samples of {len(report.tasks)} task(s): "
        f"{len(report.failures)} threshold(s) crossed; report: {out / 'audit.md'}",
        highlight=False,
    )
    if not report.ok:
        raise typer.Exit(1)


# -- data export -----------------------------------------------------------------------------
EXPORT_FORMATS = ("llava", "vst-release", "verl")


def llava_record(
    row: dict[str, Any], image_paths: list[str], video_paths: list[list[str]] | None = None
) -> dict[str, Any]:
    """The LLaVA ``conversations`` record of a shard row: user -> ``human``, assistant ->
    ``gpt``; each image item becomes an ``<image>`` token in place (one per image), each video
    item a ``<video>`` token, its frames listed under ``video`` (one frame list per video)."""
    tokens = {"image": "<image>", "video": "<video>"}
    conversations = []
    for m in row["messages"]:
        parts = [tokens.get(c["type"]) or (c["text"] or "") for c in m["content"]]
        role = {"user": "human", "assistant": "gpt"}.get(m["role"], m["role"])
        conversations.append({"from": role, "value": "\n".join(parts)})
    record: dict[str, Any] = {"id": row["id"]}
    if len(image_paths) == 1:
        record["image"] = image_paths[0]
    elif image_paths:
        record["image"] = image_paths
    if video_paths:
        record["video"] = video_paths[0] if len(video_paths) == 1 else video_paths
    record["conversations"] = conversations
    return record


def _export_image(out: Path, stem: str, image: dict[str, Any]) -> str:
    """Write one encoded image under ``out`` as ``stem.<ext>``; return the relative path."""
    rel = f"{stem}.{image_extension(image['bytes'])}"
    target = out / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(image["bytes"])
    return rel


@data_app.command("export")
def export_cmd(
    folder: Path = typer.Argument(..., help="A run folder or its data/ folder of shards."),
    fmt: str = typer.Option("llava", "--format", help=f"One of: {', '.join(EXPORT_FORMATS)}."),
    out: Path = typer.Option(..., "--out", help="Folder to write into."),
) -> None:
    """Export to the LLaVA form: OUT/data.json (a list of {id, image, conversations}) and the
    images under OUT/images/ (paths in data.json are relative to OUT); or with --format
    vst-release to the VST release's SFT Parquet (one OUT/<shard>.parquet per shard; see
    vst.engine.export_release); or with --format verl to RL Parquet in the release's form
    for EasyR1/verl (id, images, question, answer, meta_info, data_source; rule-checkable
    single-question samples only; see vst.engine.export_verl)."""
    if fmt not in EXPORT_FORMATS:
        _fail(f"--format: unknown format {fmt!r}; supported: {', '.join(EXPORT_FORMATS)}")
    shards = _shards_or_exit(folder)
    if fmt in ("vst-release", "verl"):
        _export_release_cmd(shards, out, fmt)
        return
    try:
        n, n_images = _export_llava(shards, out)
    except OSError as exc:  # the output cannot be written
        _fail(os_error_line(exc), exit_code_of(exc))
    console.print(
        f"wrote {n} samples and {n_images} images/frames to {out} (data.json, images/, videos/)"
    )


def _export_release_cmd(shards: list[Path], out: Path, fmt: str) -> None:
    from vst.engine.export_release import export_release
    from vst.engine.export_verl import export_verl

    try:
        result = (export_verl if fmt == "verl" else export_release)(shards, out)
    except OSError as exc:  # the output cannot be written
        _fail(os_error_line(exc), exit_code_of(exc))
    for shard, sid, reason in result.skipped:
        console.print(f"[yellow]skipped[/yellow] {escape(f'{sid} ({shard}): {reason}')}")
    console.print(
        f"wrote {result.rows} samples with {result.pictures} images/frames to {out} "
        f"({len(result.files)} Parquet file(s)); {len(result.skipped)} skipped",
        highlight=False,
    )


def _export_llava(shards: list[Path], out: Path) -> tuple[int, int]:
    """Write ``out/data.json`` and the images; return (samples, images and frames)."""
    out.mkdir(parents=True, exist_ok=True)
    tmp = temp_file(out / "data.json")
    n = n_images = 0
    try:
        with tmp.open("w", encoding="utf-8") as fh:
            fh.write("[")
            for p in shards:
                for row in iter_rows(p, ["id", "messages", "images", "videos"], batch_size=32):
                    paths = [
                        _export_image(out, f"images/{row['id'][:2]}/{row['id']}_{k}", img)
                        for k, img in enumerate(row["images"])
                    ]
                    videos = [
                        [
                            _export_image(out, f"videos/{row['id'][:2]}/{row['id']}_{v}/{t:04d}", f)
                            for t, f in enumerate(frames)
                        ]
                        for v, frames in enumerate(row.get("videos") or [])
                    ]
                    fh.write(",\n" if n else "\n")
                    fh.write(json.dumps(llava_record(row, paths, videos), ensure_ascii=False))
                    n += 1
                    n_images += len(paths) + sum(len(v) for v in videos)
            fh.write("\n]\n")
        commit(tmp, out / "data.json")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return n, n_images


# -- data view -------------------------------------------------------------------------------
@data_app.command("view")
def view_cmd(
    folder: Path = typer.Argument(..., help="A run folder or its data/ folder of shards."),
    out: Path = typer.Option(..., "--out", help="Folder of the site (open OUT/index.html)."),
    predictions: Path | None = typer.Option(
        None, "--predictions", help="Predictions JSONL of `vst predict` on this dataset."
    ),
    page_size: int = typer.Option(100, "--page-size", help="Samples per page."),
    audit: bool = typer.Option(
        True, "--audit/--no-audit", help="Compute the audit when FOLDER has no audit.json."
    ),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """A static HTML site of the dataset (and of a model's predictions on it): charts, pages
    of samples per task, a failures-first view. Rerun to update: images are written once."""
    from vst.viz import ViewerError, build_site

    try:
        report = build_site(
            folder,
            out,
            predictions,
            page_size=page_size,
            audit=audit,
            progress=not quiet,
            console=err_console,
        )
    except ViewerError as exc:
        _fail(str(exc))
    except OSError as exc:
        _fail(os_error_line(exc), exit_code_of(exc))
    console.print(
        f"{report.samples} samples on {sum(report.pages.values())} page(s); media: "
        f"{report.media_written} written, {report.media_reused} reused",
        highlight=False,
    )
    if report.failures is not None:
        console.print(
            f"predictions: {report.predictions_matched} of {report.predictions} shown;"
            f" failures first: {report.failures}",
            markup=False,
            highlight=False,
        )
    console.print(f"index: {report.index}", markup=False, highlight=False)
