"""``vst vla ...``: the VLA policy server (training and rollouts come later, issue 17)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

vla_app = typer.Typer(help="Vision-language-action: serve a fine-tuned policy.")
console = Console()


@vla_app.callback()
def main() -> None:
    """Vision-language-action commands (a group, so ``serve`` is named even when alone)."""


@vla_app.command("serve")
def serve_command(
    checkpoint: Path = typer.Argument(..., help="A VLA checkpoint directory."),
    norm_stats: Path | None = typer.Option(
        None, "--norm-stats", help="norm_stats.json (default: CHECKPOINT/norm_stats.json)."
    ),
    vocabulary: str = typer.Option("added", "--vocabulary", help="Action tokens: added or last."),
    rotate: bool = typer.Option(True, "--rotate/--no-rotate", help="Rotate images 180 degrees."),
    device: str = typer.Option("cpu", "--device", help="torch device (cpu, cuda, cuda:1...)."),
    dtype: str = typer.Option("float32", "--dtype", help="Weights: float32, bfloat16, float16."),
    port: int = typer.Option(8000, "--port", min=0, max=65535, help="Port to listen on."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to bind (loopback by default; 0.0.0.0 exposes it)."
    ),
) -> None:
    """Serve CHECKPOINT as a policy: POST /act {image, instruction} -> {action}."""
    from vst.vla.policy import VLAPolicy
    from vst.vla.server import serve_policy

    stats = norm_stats or checkpoint / "norm_stats.json"
    if vocabulary not in ("added", "last"):
        console.print(f"[red]error:[/red] --vocabulary must be added or last, not {vocabulary!r}")
        raise typer.Exit(2)
    if not stats.is_file():
        console.print(f"[red]error:[/red] {stats}: no norm stats (pass --norm-stats)")
        raise typer.Exit(2)
    try:
        policy = VLAPolicy(
            checkpoint,
            stats,
            vocabulary=vocabulary,  # type: ignore[arg-type]
            rotate=rotate,
            device=device,
            dtype=dtype,  # type: ignore[arg-type]
        )
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if host not in ("127.0.0.1", "localhost", "::1"):
        console.print(f"[yellow]warning:[/yellow] listening on {host}: reachable from other hosts")
    console.print(f"serving policy {policy.model_id!r} at http://{host}:{port}/act (Ctrl-C stops)")
    serve_policy(policy, host=host, port=port)
