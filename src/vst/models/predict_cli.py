"""``vst predict``: the command over :func:`vst.models.predict.run_predict` (registered as a
top-level command in ``vst/cli.py``).

Exit codes: 0 every planned sample has its predictions (skipped bad rows aside); 1 some requests
failed (rerun to retry them) or the backend stopped; 2 bad input (options, data folder,
predictions file, a model that cannot be opened); 130 interrupted (rerun to resume).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from vst.fserrors import exit_code_of, os_error_line
from vst.models.backends import BackendError, Sampling, open_backend
from vst.models.backends.factory import BackendKind, backend_options
from vst.models.cli_options import API_KEY_ENV, SERVED_MODEL

__all__ = ["predict_command"]

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _names(values: list[str] | None) -> list[str] | None:
    """Repeated options, each possibly comma-separated."""
    names = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return names or None


def predict_command(
    model: str = typer.Option(..., "--model", help="A model directory or an endpoint URL."),
    data: Path = typer.Option(..., "--data", help="A dataset: a run folder or a shard folder."),
    out: Path = typer.Option(..., "--out", help="Predictions JSONL (resumed if it exists)."),
    backend: str = typer.Option(
        "auto", "--backend", help="auto, transformers, vllm or openai (auto: URL -> openai)."
    ),
    split: list[str] | None = typer.Option(
        None, "--split", help="Only samples of this scene split (repeatable, or a,b)."
    ),
    task: list[str] | None = typer.Option(
        None, "--task", help="Only this task (name or glob; repeatable, or a,b)."
    ),
    limit: int | None = typer.Option(None, "--limit", min=0, help="The first N samples only."),
    per_task: int | None = typer.Option(
        None, "--per-task", min=0, help="The first N samples of each task only."
    ),
    system: str | None = typer.Option(
        None, "--system", help="Put this system prompt first: plain or think (default: none)."
    ),
    temperature: float = typer.Option(0.0, "--temperature", min=0.0, help="0 = greedy."),
    top_p: float = typer.Option(1.0, "--top-p", help="Nucleus sampling mass, in (0, 1]."),
    max_tokens: int = typer.Option(512, "--max-tokens", min=1, help="Tokens per answer."),
    n: int = typer.Option(1, "--n", min=1, help="Answers per sample (one line each)."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (per request, batch-independent)."),
    batch_size: int | None = typer.Option(
        None, "--batch-size", min=1, help="Batch size of the transformers backend."
    ),
    cache: Path | None = typer.Option(
        None, "--cache", help="Disk cache of answers (a rerun of the same requests is free)."
    ),
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Requests in flight (openai backend)."
    ),
    served_model: str | None = SERVED_MODEL,
    api_key_env: str | None = API_KEY_ENV,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Run a model on a vst dataset: predictions JSONL with the reward of every answer, and a
    per-task accuracy table (also in FILE.report.json / FILE.report.md). Resumable: rerun the
    same command after a kill, or to retry failed requests."""
    from vst.models.predict import PredictError, report_paths, run_predict

    if backend not in ("auto", "transformers", "vllm", "openai"):
        _fail(f"--backend: unknown backend {backend!r} (auto, transformers, vllm or openai)")
    if system is not None and system not in ("plain", "think"):
        _fail(f"--system: unknown system prompt {system!r} (plain or think)")
    try:
        sampling = Sampling(
            temperature=temperature, top_p=top_p, max_tokens=max_tokens, n=n, seed=seed
        )
    except ValueError as exc:
        _fail(str(exc))
    kind: BackendKind = backend  # type: ignore[assignment]
    try:
        options = backend_options(
            model,
            kind,
            batch_size=batch_size,
            concurrency=concurrency,
            served_model=served_model,
            api_key_env=api_key_env,
        )
        runner = open_backend(model, kind, cache, **options)
    except BackendError as exc:
        _fail(str(exc))
    columns = (
        TextColumn("[bold]predict"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, console=err_console, disable=quiet, transient=True) as bar:
            job = bar.add_task("predict", total=None)

            def show(done: int, total: int) -> None:
                bar.update(job, completed=done, total=total)

            report = run_predict(
                runner,
                data,
                out,
                tasks=_names(task),
                splits=_names(split),
                limit=limit,
                per_task=per_task,
                system=system,
                sampling=sampling,
                progress=show,
            )
    except PredictError as exc:
        _fail(str(exc))
    except BackendError as exc:
        _fail(f"{exc} (answers so far are saved in {out}; rerun to resume)", 1)
    except KeyboardInterrupt:
        _fail(f"interrupted; answers so far are saved in {out}; rerun to resume", 130)
    except OSError as exc:
        _fail(os_error_line(exc), exit_code_of(exc))
    finally:
        runner.close()

    table = Table(title=f"{report.model} on {report.dataset}")
    for col in ("task", "samples", "n", "accuracy", "format", "failed", "skipped"):
        table.add_column(col, justify="left" if col == "task" else "right")
    for name, s in report.per_task.items():
        table.add_row(
            name,
            str(s["samples"]),
            str(s["n"]),
            "-" if s["accuracy"] is None else f"{s['accuracy']:.3f}",
            "-" if s["format"] is None else f"{s['format']:.3f}",
            str(s["failed"]),
            str(s["skipped"]),
        )
    console.print(table)
    for row in report.skipped[:20]:
        console.print(
            f"[yellow]skipped[/yellow] {escape(row['id'] or '-')}: {escape(row['error'])}",
            highlight=False,
        )
    for row in report.failed[:20]:
        console.print(
            f"[red]failed[/red] {escape(row['id'])}: {escape(row['error'])}", highlight=False
        )
    if report.dropped or report.truncated:
        console.print(
            f"resume: {'a truncated last line was cut; ' if report.truncated else ''}"
            f"{report.dropped} unreadable line(s) dropped (their samples were predicted again)",
            highlight=False,
        )
    json_path, md_path = report_paths(out)
    console.print(
        f"{report.written} new prediction(s), {report.reused} reused -> {out}\n"
        f"report: {md_path} ({json_path.name})",
        highlight=False,
    )
    if report.failed:
        console.print(
            f"[red]{len(report.failed)} request(s) failed[/red]: rerun the command to retry them",
            highlight=False,
        )
        raise typer.Exit(1)
