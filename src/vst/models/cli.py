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


@app.command("serve")
def serve_command(
    model_dir: Path = typer.Argument(..., help="A model directory (e.g. from `vst models tiny`)."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (loopback by default; 0.0.0.0 exposes it)."
    ),
    name: str | None = typer.Option(
        None, "--name", help="Model name the server answers to (default: the directory name)."
    ),
) -> None:
    """Serve a local model as an OpenAI-compatible chat endpoint (/v1/chat/completions)."""
    from vst.models.backends import BackendError, open_backend
    from vst.models.server import serve

    try:
        backend = open_backend(model_dir, "transformers")
    except BackendError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    model_name = name or model_dir.resolve().name
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/yellow] listening on {host}: reachable from other hosts")
    console.print(f"serving {model_name!r} at http://{host}:{port}/v1 (Ctrl-C stops)")
    try:
        serve(backend, host=host, port=port, model_name=model_name)
    finally:
        backend.close()
