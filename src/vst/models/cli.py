"""``vst models ...``: build, serve and inspect models."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vst.fserrors import exit_code_of, os_error_line

app = typer.Typer(help="Models: the tiny offline checkpoint, a local OpenAI-compatible server.")
console = Console()


@app.command()
def tiny(
    out: Path = typer.Option(..., "--out", help="Folder to write the checkpoint into."),
    seed: int = typer.Option(0, help="Seed of the random weights."),
) -> None:
    """Build the tiny random Qwen2.5-VL checkpoint offline (for tests, demos and CPU smokes)."""
    from vst.models.tiny import build_tiny

    try:
        info = build_tiny(out, seed=seed)
    except OSError as exc:
        console.print(f"[red]error:[/red] {os_error_line(exc)}")
        raise typer.Exit(exit_code_of(exc)) from None
    console.print(
        f"tiny Qwen2.5-VL: {info.parameters:,} parameters ({info.vision_parameters:,} vision), "
        f"vocabulary {info.vocab_size:,} -> {info.path}"
    )
