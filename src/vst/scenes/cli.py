"""`vst scenes ...`: inspect and check scene directories (and, from sources, create them)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from vst.scenes.errors import SceneError
from vst.scenes.io import find_scene_dirs, load_scene
from vst.scenes.validation import scene_problems

app = typer.Typer(
    help="Scene directories: validate, summarise, synthesise, import datasets, show.",
    no_args_is_help=True,
)
console = Console()


def _scene_dirs_or_exit(root: Path) -> list[Path]:
    if not root.exists():
        console.print(f"[red]error:[/red] {root} does not exist")
        raise typer.Exit(2)
    dirs = find_scene_dirs(root)
    if not dirs:
        console.print(
            f"[red]error:[/red] no scene directories (folders with scene.json) under {root}"
        )
        raise typer.Exit(2)
    return dirs


@app.command("validate")
def validate_cmd(
    root: Path = typer.Argument(..., help="A scene directory or a folder of scene directories."),
    files: bool = typer.Option(True, "--files/--no-files", help="Also open images, depth, masks."),
    allow_outside_root: bool = typer.Option(
        False,
        "--allow-outside-root",
        help="Accept pixel paths that resolve outside the scene directory (refused by default).",
    ),
) -> None:
    """Check every scene under ROOT; list each problem with its scene, frame and field."""
    dirs = _scene_dirs_or_exit(root)
    bad = 0
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("validating", total=len(dirs))
        for d in dirs:
            try:
                scene = load_scene(d, allow_outside_root=allow_outside_root)
                problems = scene_problems(scene, check_files=files)
            except SceneError as exc:
                problems = [str(exc)]
            if problems:
                bad += 1
                console.print(f"[red]{d}[/red]: {len(problems)} problem(s)")
                for p in problems:
                    console.print(f"  - {p}", markup=False)
            progress.advance(task)
    console.print(f"{len(dirs) - bad} of {len(dirs)} scene(s) valid")
    if bad:
        raise typer.Exit(1)


@app.command("info")
def info_cmd(
    root: Path = typer.Argument(..., help="A scene directory or a folder of scene directories."),
) -> None:
    """Summarise scenes: sources, frames, objects and categories."""
    dirs = _scene_dirs_or_exit(root)
    table = Table(title=f"{len(dirs)} scene(s) under {root}")
    table.add_column("scene", no_wrap=True, min_width=max(len(d.name) for d in dirs))
    for col in ("source", "split", "frames", "objects", "room m²", "vis/frame"):
        table.add_column(col, justify="left" if col in ("source", "split") else "right")
    totals: dict[str, int] = {}
    kinds: dict[str, int] = {}
    sizes: dict[str, int] = {}
    n_frames = n_objects = n_depth = n_mask = n_vis_frames = n_vis = 0
    for d in dirs:
        try:
            scene = load_scene(d)
        except SceneError as exc:
            console.print(f"[red]skipped[/red] {exc}", markup=False)
            continue
        for label, count in scene.categories().items():
            totals[label] = totals.get(label, 0) + count
        n_frames += len(scene.frames)
        n_objects += len(scene.objects)
        vis = []
        for f in scene.frames:
            kind = f.id.rsplit("_", 1)[0] if "_" in f.id else "frame"
            kind = "multiview" if kind.startswith("mv") else kind
            kinds[kind] = kinds.get(kind, 0) + 1
            size = f"{f.width}x{f.height}"
            sizes[size] = sizes.get(size, 0) + 1
            n_depth += f.depth is not None
            n_mask += f.mask is not None
            if f.visible_pixels:
                vis.append(len(f.visible_pixels))
        n_vis_frames += len(vis)
        n_vis += sum(vis)
        area = f"{scene.room.area:.1f}" if scene.room is not None else "-"
        mean_vis = f"{sum(vis) / len(vis):.1f}" if vis else "-"
        table.add_row(
            scene.id,
            scene.source,
            scene.split,
            str(len(scene.frames)),
            str(len(scene.objects)),
            area,
            mean_vis,
        )
    console.print(table)
    cats = Table(title=f"{len(totals)} categories, {n_objects} objects")
    cats.add_column("category")
    cats.add_column("objects", justify="right")
    for label, count in sorted(totals.items(), key=lambda kv: (-kv[1], kv[0])):
        cats.add_row(label, str(count))
    console.print(cats)
    frames = Table(title=f"{n_frames} frames")
    frames.add_column("frames")
    frames.add_column("count", justify="right")
    for kind, count in sorted(kinds.items()):
        frames.add_row(f"kind: {kind}", str(count))
    for size, count in sorted(sizes.items()):
        frames.add_row(f"size: {size}", str(count))
    frames.add_row("with depth", str(n_depth))
    frames.add_row("with instance mask", str(n_mask))
    if n_vis_frames:
        frames.add_row("objects visible per frame (mean)", f"{n_vis / n_vis_frames:.1f}")
    console.print(frames)


def _split_list(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


@app.command("synth")
def synth_cmd(
    out: Path = typer.Option(..., "--out", help="Folder to write scene directories into."),
    num_scenes: int = typer.Option(1, "--num-scenes", help="How many scenes."),
    seed: int = typer.Option(0, "--seed", help="Seed of every random choice (>= 0)."),
    start_index: int = typer.Option(0, "--start-index", help="Index of the first scene."),
    width: int = typer.Option(640, "--width", help="Image width (pixels)."),
    height: int = typer.Option(480, "--height", help="Image height (pixels)."),
    single_views: int = typer.Option(2, "--single-views", help="Single views per scene."),
    multiview_sets: int = typer.Option(1, "--multiview-sets", help="Multi-view sets per scene."),
    views_per_set: int = typer.Option(2, "--views-per-set", help="Views per multi-view set."),
    video_frames: int = typer.Option(
        16, "--video-frames", help="Frames of the walk-through video (0: none)."
    ),
    categories: str | None = typer.Option(
        None, "--categories", help="Comma-separated categories to use (default all)."
    ),
    room_types: str | None = typer.Option(
        None, "--room-types", help="Comma-separated room types (default all)."
    ),
    room_shape: str = typer.Option("any", "--room-shape", help="any, rect or l."),
    min_side: float = typer.Option(3.0, "--min-side", help="Smallest room side (m)."),
    max_side: float = typer.Option(9.0, "--max-side", help="Largest room side (m)."),
    shadows: bool = typer.Option(True, "--shadows/--no-shadows", help="Render shadows."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Regenerate scenes already in OUT (default: skip them)."
    ),
) -> None:
    """Synthesise indoor scenes (MuJoCo, offscreen) with exact 3D ground truth."""
    from pydantic import ValidationError

    from vst.scenes.sources.synthetic.config import SynthConfig, format_validation_error

    try:
        cfg = SynthConfig(
            num_scenes=num_scenes,
            seed=seed,
            start_index=start_index,
            width=width,
            height=height,
            single_views=single_views,
            multiview_sets=multiview_sets,
            views_per_set=views_per_set,
            video_frames=video_frames,
            categories=_split_list(categories),
            room_types=_split_list(room_types),
            room_shape=room_shape,
            room_side=(min_side, max_side),
            shadows=shadows,
        )
    except ValidationError as exc:
        console.print("[red]error:[/red] bad options:")
        for line in format_validation_error(exc).splitlines():
            console.print(f"  {line}", markup=False)
        raise typer.Exit(2) from None

    from vst.scenes.sources.synthetic.generate import GenerationError, write_scenes
    from vst.scenes.sources.synthetic.render import RenderBackendError

    done = {"made": 0, "skipped": 0}
    with Progress(console=console) as progress:
        task = progress.add_task("synthesising scenes", total=cfg.num_scenes)

        def on_scene(path: Path, skipped: bool) -> None:
            done["skipped" if skipped else "made"] += 1
            progress.advance(task)

        try:
            write_scenes(cfg, out, overwrite=overwrite, on_scene=on_scene)
        except RenderBackendError as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}", markup=False)
            raise typer.Exit(3) from None
        except GenerationError as exc:
            progress.stop()
            console.print(f"[red]error:[/red] {exc}", markup=False)
            raise typer.Exit(1) from None
        except OSError as exc:  # the output cannot be written
            from vst.fserrors import exit_code_of, os_error_line

            progress.stop()
            _error(ValueError(os_error_line(exc)))
            raise typer.Exit(exit_code_of(exc)) from None
    console.print(f"{done['made']} scene(s) written, {done['skipped']} already there, in {out}")


def _error(exc: Exception) -> None:
    """One line (never wrapped): ``error: <message>``."""
    console.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False, soft_wrap=True)


def _parse_options(pairs: list[str]) -> dict:
    """``key=value`` pairs; values are parsed as JSON when they parse (numbers, true, lists),
    else kept as strings."""
    import json

    options: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--option {pair!r}: expected key=value")
        try:
            options[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            options[key.strip()] = value
    return options


@app.command("import")
def import_cmd(
    format: str = typer.Argument(..., help="Dataset format (see --help of each in the docs)."),
    path: Path = typer.Argument(..., help="The dataset (root folder or annotation file)."),
    out: Path = typer.Option(..., "--out", help="Folder to write scene directories into."),
    option: list[str] = typer.Option(
        [], "--option", "-o", help="Reader option key=value (repeatable), e.g. frame_stride=10."
    ),
    scenes: str | None = typer.Option(
        None, "--scenes", help="Only these scenes (comma-separated ids): an explicit choice."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="At most N scenes."),
    workers: int = typer.Option(
        1, "--workers", min=1, help="Processes reading scenes (CPUs of a local Ray)."
    ),
    allow_benchmark_scenes: bool = typer.Option(
        False,
        "--allow-benchmark-scenes",
        help="Import scenes of evaluation benchmarks too (excluded by default).",
    ),
    executor: str = typer.Option(
        "local", "--executor", help="local (processes) or ray (Ray tasks; pip install vst[ray])."
    ),
    address: str | None = typer.Option(
        None, "--address", help="Ray cluster to use (auto, ray://host:10001); default: a local Ray."
    ),
) -> None:
    """Import a public dataset, in its own on-disk format, into vst scene directories.

    Formats: omni3d, embodiedscan, arkitscenes, scannetpp, hypersim, images, vsibench-meta.
    Resumable: scenes already imported with the same options are kept. Skipped frames,
    objects and scenes are listed with their reasons in OUT/import_report.json. Exit codes:
    2 bad input (options, paths, OUT not writable or held by another import), 1 nothing
    imported or the output filled up (the report of the scenes done so far is kept)."""
    from vst.distributed import RayUnavailableError
    from vst.fserrors import exit_code_of
    from vst.lock import OutputLockedError
    from vst.scenes.guard import BenchmarkGuard, BenchmarkSceneError
    from vst.scenes.sources.formats import get_reader_class
    from vst.scenes.sources.importer import IMPORT_REPORT, ImportWriteError, import_scenes

    if executor not in ("local", "ray"):
        _error(ValueError(f"--executor: unknown executor {executor!r}; choose local or ray"))
        raise typer.Exit(2)
    if address is not None and executor != "ray":
        _error(ValueError("--address is only for --executor ray"))
        raise typer.Exit(2)
    try:
        reader = get_reader_class(format)(path, _parse_options(option))
    except (ValueError, FileNotFoundError) as exc:
        _error(exc)
        raise typer.Exit(2) from None
    if out.exists() and not out.is_dir():
        _error(ValueError(f"--out: {out} is a file, not a folder"))
        raise typer.Exit(2)
    guard = BenchmarkGuard.default(allow=allow_benchmark_scenes)
    with Progress(console=console) as progress:
        bar = progress.add_task(f"importing {reader.format}", total=None)
        try:
            result = import_scenes(
                reader,
                out,
                scenes=_split_list(scenes),
                limit=limit,
                guard=guard,
                on_plan=lambda n: progress.update(bar, total=n),
                on_scene=lambda sid, status: progress.advance(bar),
                workers=workers,
                executor=executor,
                address=address,
            )
        except ImportWriteError as exc:
            progress.stop()
            _error(exc)
            raise typer.Exit(exit_code_of(exc.error)) from None
        except (BenchmarkSceneError, ValueError, OutputLockedError, RayUnavailableError) as exc:
            progress.stop()
            _error(exc)
            raise typer.Exit(2) from None
        except SceneError as exc:
            progress.stop()
            _error(exc)
            raise typer.Exit(1) from None
    console.print(result.summary(), markup=False, highlight=False)
    if result.excluded:
        console.print(
            f"[yellow]leakage guard[/yellow]: {guard.summary()}; "
            "--allow-benchmark-scenes imports them",
            highlight=False,
        )
    for f in result.failed[:20]:
        console.print(f"  failed {f['scene_id']}: {f['reason']}", markup=False, highlight=False)
    skipped = result.report.skipped if result.report else []
    for s in skipped[:20]:
        console.print(f"  skipped {s.kind} {s.item}: {s.reason}", markup=False, highlight=False)
    if len(skipped) > 20:
        console.print(f"  ... {len(skipped) - 20} more skipped items", highlight=False)
    console.print(f"report: {out / IMPORT_REPORT}", markup=False, highlight=False)
    if not result.scene_ids:
        raise typer.Exit(1)


@app.command("show")
def show_cmd(
    scene_dir: Path = typer.Argument(..., help="One scene directory."),
    out: Path = typer.Option(..., "--out", help="PNG file to write."),
    max_frames: int = typer.Option(12, "--max-frames", help="Frames on the sheet (spread out)."),
    columns: int = typer.Option(4, "--columns", help="Thumbnails per row."),
    bev: bool = typer.Option(True, "--bev/--no-bev", help="Add the top view (BEV)."),
) -> None:
    """Write a contact sheet: frames with projected 3D boxes and labels, plus the BEV."""
    from vst.scenes.sources.synthetic.sheet import write_contact_sheet

    dirs = _scene_dirs_or_exit(scene_dir)
    if len(dirs) != 1:
        console.print(
            f"[red]error:[/red] {scene_dir} holds {len(dirs)} scenes; pass one scene "
            f"directory, e.g. {dirs[0]}"
        )
        raise typer.Exit(2)
    if max_frames < 1 or columns < 1:
        console.print("[red]error:[/red] --max-frames and --columns must be >= 1")
        raise typer.Exit(2)
    try:
        scene = load_scene(dirs[0])
        path = write_contact_sheet(scene, out, max_frames=max_frames, columns=columns, bev=bev)
    except SceneError as exc:
        console.print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(1) from None
    console.print(f"wrote {path}")


from vst.scenes.view_cli import view_cmd  # noqa: E402  (rerun itself is imported lazily)

app.command("view")(view_cmd)
