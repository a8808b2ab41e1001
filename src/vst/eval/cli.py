"""``vst eval run | score | report``: benchmarks through any backend, re-scoring, reports."""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from vst.models.cli_options import API_KEY_ENV, SERVED_MODEL

app = typer.Typer(help="Evaluation: spatial benchmarks with their official scoring, reports.")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False)
    raise typer.Exit(code)


def _names(value: str) -> list[str]:
    return [n.strip() for n in value.split(",") if n.strip()]


@app.command("run")
def run_command(
    model: str = typer.Option(..., "--model", help="A model directory or an endpoint URL."),
    benchmarks: str = typer.Option(..., "--benchmarks", help="Comma-separated benchmark names."),
    data_root: Path = typer.Option(
        ..., "--data-root", help="Folder of the benchmarks' files (DATA_ROOT/<benchmark>/...)."
    ),
    out: Path = typer.Option(..., "--out", help="Run folder (resumed if it exists)."),
    backend: str = typer.Option("auto", "--backend", help="auto, transformers, vllm or openai."),
    cache: Path | None = typer.Option(None, "--cache", help="Disk cache of answers."),
    limit: int | None = typer.Option(None, "--limit", min=1, help="First N items of each."),
    served_model: str | None = SERVED_MODEL,
    api_key_env: str | None = API_KEY_ENV,
) -> None:
    """Run benchmarks on a model: per benchmark a predictions JSONL and a score file, then the
    run's report (markdown, JSON, PNG). Resumable; failed requests are retried by a rerun."""
    from vst.eval.harness import EvalError, run_benchmark
    from vst.eval.registry import get_benchmark
    from vst.eval.report import write_report
    from vst.models.backends import BackendError, open_backend
    from vst.models.backends.factory import backend_options
    from vst.models.predictions import PredictionsLockedError

    try:
        benches = [get_benchmark(n) for n in _names(benchmarks)]
    except KeyError as exc:
        _fail(f"--benchmarks: {exc.args[0]}")
    if not benches:
        _fail("--benchmarks: give at least one name")
    if not data_root.is_dir():
        _fail(f"--data-root: {data_root} is not a folder")
    try:
        options = backend_options(
            model, backend, served_model=served_model, api_key_env=api_key_env
        )  # type: ignore[arg-type]
        runner = open_backend(model, backend, cache, **options)  # type: ignore[arg-type]
    except BackendError as exc:
        _fail(str(exc))
    failed = 0
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn())
    try:
        for bench in benches:
            with Progress(
                *columns, TimeElapsedColumn(), console=err_console, transient=True
            ) as bar:
                job = bar.add_task(bench.name, total=None)
                try:
                    result = run_benchmark(
                        bench,
                        runner,
                        data_root,
                        out,
                        limit=limit,
                        progress=lambda d, t, j=job: bar.update(j, completed=d, total=t),
                        model_dir=Path(model) if Path(model).is_dir() else None,
                    )
                except (EvalError, ValueError, PredictionsLockedError) as exc:
                    _fail(f"{bench.name}: {exc}")
            failed += len(result.failed)
            official = result.score.official
            console.print(
                f"{bench.name}: {result.items} items ({result.asked} asked, {result.reused} "
                f"reused, {len(result.failed)} failed), official "
                + ("-" if official is None else f"{100 * official:.1f}")
            )
    finally:
        runner.close()
    md, _, png = write_report(out)
    console.print(f"report: {md}" + (f" (chart {png})" if png else ""))
    if failed:
        raise typer.Exit(1)


@app.command("score")
def score_command(
    benchmark: str = typer.Argument(..., help="Benchmark name."),
    predictions: Path = typer.Option(
        ...,
        "--predictions",
        help="A vst predictions JSONL, an lmms-eval --log_samples JSONL or a VLMEvalKit "
        "result table (.xlsx/.tsv/.csv).",
    ),
    data_root: Path = typer.Option(..., "--data-root", help="Folder of the benchmark's files."),
) -> None:
    """Re-judge a predictions file's replies (vst, lmms-eval or VLMEvalKit) with the
    benchmark's official rule and variants."""
    from vst.eval.adapters import AdapterError, read_replies
    from vst.eval.benchmarks.base import BenchmarkDataError
    from vst.eval.harness import benchmark_root
    from vst.eval.registry import get_benchmark

    try:
        bench = get_benchmark(benchmark)
    except KeyError as exc:
        _fail(str(exc.args[0]))
    try:
        items = {it.id: it for it in bench.read(benchmark_root(data_root, bench.name))}
    except BenchmarkDataError as exc:
        _fail(str(exc))
    try:
        got = read_replies(predictions, bench.name, items)
    except AdapterError as exc:
        _fail(f"--predictions: {exc}")
    judged = [bench.judge(items[item_id], reply) for item_id, reply in got.pairs]
    score = bench.aggregate(judged)
    console.print(
        f"{bench.name} ({got.format} file): {got.rows} rows, {len(got.pairs)} matched "
        f"{len(items)} items; {got.unmatched} unmatched, {got.duplicates} duplicate, "
        f"{got.no_reply} without reply",
        markup=False,
        soft_wrap=True,
    )
    for rule, value in sorted(score.variants.items(), key=lambda kv: (kv[0] != "official", kv[0])):
        console.print(
            f"  {rule:<14} " + ("-" if value is None else f"{100 * value:.1f}"), markup=False
        )


@app.command("report")
def report_command(
    runs: list[Path] = typer.Argument(..., help="Run folders (several: side-by-side table)."),
) -> None:
    """Write each run's report (markdown, JSON, PNG) and print a comparison of the runs."""
    from vst.eval.report import compare_runs, write_report

    for run in runs:
        if not run.is_dir():
            _fail(f"{run} is not a run folder")
        md, _, png = write_report(run)
        console.print(f"{run}: {md}" + (f", {png}" if png else ""))
    console.print(compare_runs(runs), markup=False)
