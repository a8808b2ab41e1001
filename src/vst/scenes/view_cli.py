"""`vst scenes view SCENE_DIR --out scene.rrd`: write a scene as a Rerun recording.

Registered on the ``vst scenes`` app in :mod:`vst.scenes.cli`. Exit codes: 0 written, 1 a scene
or frame file is unreadable, 2 bad input (not one scene directory, unknown frame ids, bad
options, ``--out`` a folder) or the ``vst[rerun]`` extra is missing.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from vst.scenes.errors import SceneError
from vst.scenes.io import find_scene_dirs, load_scene
from vst.scenes.rerun_view import (
    DEFAULT_MAX_POINTS,
    DEFAULT_STRIDE,
    RerunMissingError,
    select_frames,
    write_scene_recording,
)

console = Console()


def _fail(message: str, code: int) -> typer.Exit:
    console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    return typer.Exit(code)


def _one_scene_dir(path: Path) -> Path:
    if not path.exists():
        raise _fail(f"{path} does not exist", 2)
    if not path.is_dir():
        raise _fail(f"{path} is not a folder (give a scene directory holding scene.json)", 2)
    dirs = find_scene_dirs(path)
    if not dirs:
        raise _fail(f"{path} is not a scene directory (no scene.json at or below it)", 2)
    if len(dirs) > 1:
        raise _fail(f"{path} holds {len(dirs)} scenes; pass one scene directory, e.g. {dirs[0]}", 2)
    return dirs[0]


def view_cmd(
    scene_dir: Path = typer.Argument(..., help="One scene directory (holding scene.json)."),
    out: Path = typer.Option(..., "--out", help="Rerun recording to write (.rrd)."),
    frames: str | None = typer.Option(
        None, "--frames", help="Comma-separated frame ids to log (default: all frames)."
    ),
    max_points: int = typer.Option(
        DEFAULT_MAX_POINTS, "--max-points", help="At most this many depth points per frame."
    ),
    stride: int = typer.Option(
        DEFAULT_STRIDE, "--stride", help="Use every N-th pixel row and column for the points."
    ),
) -> None:
    """Write a scene as a Rerun recording: RGB frames, depth as world-frame point clouds,
    camera poses and frusta, labelled oriented 3D boxes. Open it with `rerun scene.rrd`.
    Needs the optional extra: pip install 'vst[rerun]'."""
    if max_points < 1 or stride < 1:
        raise _fail("--max-points and --stride must be >= 1", 2)
    if out.is_dir():
        raise _fail(f"--out: {out} is a folder; give a file name such as {out / 'scene.rrd'}", 2)
    directory = _one_scene_dir(scene_dir)
    try:
        scene = load_scene(directory)
    except SceneError as exc:
        raise _fail(str(exc), 1) from None
    frame_ids = None
    if frames is not None:
        frame_ids = [f.strip() for f in frames.split(",") if f.strip()]
    try:
        total = len(select_frames(scene, frame_ids))
    except ValueError as exc:
        raise _fail(f"--frames: {exc}", 2) from None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=True) as progress:
        bar = progress.add_task(f"logging {scene.id}", total=total)
        try:
            summary = write_scene_recording(
                scene,
                out,
                stride=stride,
                max_points=max_points,
                frames=frame_ids,
                on_frame=lambda _fid: progress.advance(bar),
            )
        except RerunMissingError as exc:
            progress.stop()
            raise _fail(str(exc), 2) from None
        except SceneError as exc:
            progress.stop()
            raise _fail(str(exc), 1) from None
        except OSError as exc:
            progress.stop()
            raise _fail(f"--out {out}: {exc.strerror or exc}", 2) from None
    console.print(
        f"wrote {summary.path}: scene {summary.scene_id}, {summary.frames} frame(s), "
        f"{summary.points} point(s), {summary.objects} object(s); open it with: rerun {out}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )
