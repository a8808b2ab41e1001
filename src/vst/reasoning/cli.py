"""``vst reason``: VST-R from the command line.

* ``vst reason cot CONFIG``: chain-of-thought samples from a VST-P run, written by a teacher
  model (``teacher:`` in the config) or offline from ground truth (no ``teacher:``);
* ``vst reason rl-set CONFIG``: the rule-checkable RL set (VST-P + general data, balanced per
  task and mode, deduplicated against an SFT set; TRL and release RL parquet exports);
* ``vst reason filter --model DIR|URL --k 4 DATA --out DIR``: the pass@k difficulty filter.

Register in ``vst/cli.py``::

    app.add_typer(reason_app, name="reason")

Exit codes: 0 done; 2 bad input (config, data, model).
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from vst.models.cli_options import API_KEY_ENV, SERVED_MODEL
from vst.train.cli import OVERRIDE

reason_app = typer.Typer(
    help="VST-R: chain-of-thought data, the RL set and the pass@k filter.", no_args_is_help=True
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


@reason_app.command("cot")
def cot_command(
    config: Path = typer.Argument(
        ..., help="CoT config (YAML), e.g. configs/reason/cot_offline_demo.yaml."
    ),
    override: list[str] = OVERRIDE,
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
) -> None:
    """Write chain-of-thought samples (`<think>reasoning</think> answer`, thinking system
    prompt) for VST-P samples: with `teacher:` a teacher model behind an OpenAI-compatible
    endpoint writes them and every answer is checked by the sample's reward; without it they
    are written from ground truth (offline `num` / `rt`). Shards in OUTPUT_DIR/data, the report
    in OUTPUT_DIR/report.md. Resumable and cached: a rerun asks the teacher nothing new."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from vst.engine.config import ConfigError
    from vst.models.backends import BackendError
    from vst.reasoning.cot import load_cot_config, run_cot

    try:
        cfg = load_cot_config(config, override)
    except ConfigError as exc:
        _fail(str(exc))
    columns = (TextColumn("[bold]cot chunks"), BarColumn(), MofNCompleteColumn())
    try:
        with Progress(*columns, console=err_console, disable=quiet, transient=True) as bar:
            job = bar.add_task("cot", total=None)

            def show(done: int, total: int) -> None:
                bar.update(job, completed=done, total=total)

            report = run_cot(cfg, progress=show)
    except (BackendError, ValueError) as exc:
        _fail(str(exc))
    console.print(escape(report.to_markdown()), highlight=False)
    console.print(f"[bold]CoT data[/bold] {cfg.output_dir / 'data'}")
    console.print(f"[bold]report[/bold] {cfg.output_dir / 'report.md'}")


@reason_app.command("rl-set")
def rl_set_command(
    config: Path = typer.Argument(
        ..., help="RL set config (YAML), e.g. configs/reason/rl_set.yaml."
    ),
) -> None:
    """Build the rule-checkable RL set: vst shards in OUT/data (for `vst train grpo`), the TRL
    GRPO parquet in OUT/trl, the release's RL parquet in OUT/verl, OUT/report.md."""
    from vst.engine.config import ConfigError
    from vst.reasoning.rlset import build_rl_set, load_rl_set_config

    try:
        cfg = load_rl_set_config(config)
        report = build_rl_set(cfg)
    except (ConfigError, ValueError) as exc:
        _fail(str(exc))
    console.print(escape(report.to_markdown()), highlight=False)
    console.print(f"[bold]RL set[/bold] {Path(cfg.output) / 'data'}")


@reason_app.command("filter")
def filter_command(
    data: Path = typer.Argument(..., help="A vst run or RL set folder (its shards)."),
    model: str = typer.Option(..., "--model", help="Model directory or endpoint URL."),
    out: Path = typer.Option(..., "--out", help="Output folder (kept shards, pass rates)."),
    k: int = typer.Option(4, "--k", min=2, help="Answers per prompt."),
    temperature: float = typer.Option(1.0, "--temperature", min=0.0),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Tokens per answer."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed (per request)."),
    threshold: float = typer.Option(
        1.0, "--threshold", help="Accuracy that counts as right (det3d: --det3d-threshold)."
    ),
    det3d_threshold: float = typer.Option(0.5, "--det3d-threshold"),
    served_model: str | None = SERVED_MODEL,
    api_key_env: str | None = API_KEY_ENV,
    concurrency: int | None = typer.Option(
        None, "--concurrency", min=1, help="Requests in flight (openai backend)."
    ),
    price: tuple[float, float] | None = typer.Option(
        None, "--price", help="Prompt and completion price per million tokens (for the cost)."
    ),
) -> None:
    """Answer each rule-checkable prompt k times and keep those the model gets sometimes right
    and sometimes wrong (the paper's difficulty filter); pass rates per sample, a histogram,
    a report. Resumable: answers are cached in OUT/cache."""
    from vst.models.backends import BackendError, Sampling, open_backend
    from vst.models.backends.factory import backend_options
    from vst.reasoning.passk import run_pass_k

    try:
        sampling = Sampling(temperature=temperature, max_tokens=max_tokens, seed=seed)
        options = backend_options(
            model,
            "auto",
            concurrency=concurrency,
            served_model=served_model,
            api_key_env=api_key_env,
        )
        backend = open_backend(model, "auto", out / "cache", **options)
    except (BackendError, ValueError) as exc:
        _fail(str(exc))
    try:
        report = run_pass_k(
            data,
            backend,
            k=k,
            out=out,
            sampling=sampling,
            threshold=threshold,
            det3d_threshold=det3d_threshold,
            prices=price,
        )
    except ValueError as exc:
        _fail(str(exc))
    finally:
        backend.close()
    console.print(escape(report.to_markdown()), highlight=False)
    console.print(f"[bold]kept[/bold] {out / 'data'}")
    console.print(f"[bold]pass rates[/bold] {out / 'pass_rates.jsonl'}")
    console.print(f"[bold]histogram[/bold] {out / 'pass_rates.png'}")
