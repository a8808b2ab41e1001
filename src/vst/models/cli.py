"""``vst models ...``: build, serve and inspect models."""

from __future__ import annotations

import typer
from rich.console import Console

app = typer.Typer(help="Models: the tiny offline checkpoint, a local OpenAI-compatible server.")
console = Console()
