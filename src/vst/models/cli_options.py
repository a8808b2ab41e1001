"""Command-line options shared by the commands that open a backend (``vst predict``,
``vst detect``)."""

from __future__ import annotations

import typer

__all__ = ["API_KEY_ENV", "SERVED_MODEL"]

SERVED_MODEL = typer.Option(
    None,
    "--served-model",
    help="Model name to ask the endpoint for (openai backend; default: the first it lists).",
)
API_KEY_ENV = typer.Option(
    None,
    "--api-key-env",
    help="Environment variable holding the API key (openai backend; default OPENAI_API_KEY).",
)
