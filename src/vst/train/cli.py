"""``vst train sft CONFIG``: stage 1 (SFT) or stage 2 (CoT cold start) from a YAML config;
``vst train grpo CONFIG``: stage 3 (GRPO with online filtering).

Register in ``vst/cli.py``::

    app.add_typer(train_app, name="train")   # adds `vst train sft` and `vst train grpo`

Multi-GPU: ``accelerate launch --config_file configs/accelerate/zero2.yaml -m vst.cli train sft
CONFIG`` (every process runs the command; process 0 prints and writes the metrics).
Exit codes: 0 done; 2 bad input (the config, an override, a data source, an output folder
holding checkpoints without ``--resume``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

train_app = typer.Typer(
    help="Training stages 1 and 2 (SFT, CoT cold start) on transformers, stage 3 (GRPO) on TRL.",
    no_args_is_help=True,
)
console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

RESUME = typer.Option(False, "--resume", help="Continue from the last checkpoint-N in output_dir.")
OVERRIDE = typer.Option(
    [], "--override", "-o", help="key=value (dotted keys, YAML values); repeatable."
)
"""Options of every command that runs a YAML config (``--override`` also for `vst reason`)."""


def main_process() -> bool:
    """Whether this is process 0 of a (possibly multi-process) run."""
    return int(os.environ.get("RANK", "0")) == 0


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as an error and exit with ``code``."""
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def load_run_config_or_fail(
    config: Path, override: list[str], load: Any, check: Any
) -> tuple[Any, str]:
    """``(config, where)``: the run config ``load(config, override)`` after ``check(cfg, where,
    world_size)`` (batch arithmetic, data sources), or an error and exit 2 naming the file and
    field; transformers' per-file loading / saving bars are turned off (one training bar)."""
    from transformers.utils import logging as hf_logging

    from vst.engine.config import ConfigError

    where = f"{config} with overrides" if override else str(config)
    try:
        cfg = load(config, override)
        check(cfg, where, int(os.environ.get("WORLD_SIZE", "1")))
    except ConfigError as exc:
        fail(str(exc))
    hf_logging.disable_progress_bar()
    return cfg, where


def rich_progress(out: Console, key: str = "loss", label: str = "loss") -> Any:
    """A ``TrainerCallback`` drawing a rich progress bar over optimizer steps, with the last
    logged value of ``key`` shown as ``label`` (transformers is imported only when training)."""
    from transformers import TrainerCallback

    class RichProgress(TrainerCallback):
        def __init__(self) -> None:
            self.progress: Progress | None = None
            self.task: Any = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if not state.is_world_process_zero:
                return
            self.progress = Progress(
                TextColumn("[bold]train[/bold] {task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=out,
            )
            self.progress.start()
            self.task = self.progress.add_task(
                "", total=state.max_steps, completed=state.global_step
            )

        def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.update(self.task, completed=state.global_step)

        def on_log(self, args: Any, state: Any, control: Any, logs: Any = None, **kw: Any) -> None:
            if self.progress is not None and logs and key in logs:
                self.progress.update(self.task, description=f"{label} {float(logs[key]):.4f}")

        def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
            if self.progress is not None:
                self.progress.stop()
                self.progress = None

    return RichProgress()


def run_summary(cfg: Any, where: str, resume: bool, command: str = "vst train sft") -> Table:
    """The table printed before an SFT-style run (SFT, CoT, VLA) starts."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    table = Table(title=f"{command}: {where}", show_header=False)
    parts = (
        ("vision", cfg.freeze_vision),
        ("merger", cfg.freeze_merger),
        ("language model", cfg.freeze_language_model),
    )
    freeze = [name for name, frozen in parts if frozen]
    length = f"{cfg.epochs:g} epoch(s)"
    if cfg.max_steps > 0:
        length += f", at most {cfg.max_steps} steps"
    unit = f"packed rows of {cfg.max_length} tokens" if cfg.packing else "examples"
    batch = (
        f"{cfg.global_batch_size} = {cfg.micro_batch()[1]} per device x "
        f"{cfg.accumulation(world)} accumulation x {world} process(es) ({unit})"
    )
    precision = (
        f"{'bf16' if cfg.bf16 else 'fp32'}, attention {cfg.attention()}, "
        f"checkpointing {'on' if cfg.gradient_checkpointing else 'off'}"
    )
    packing = "off"
    if cfg.packing:
        over = f"windows of {cfg.plan_window}" if cfg.plan_window else "the whole mix"
        packing = f"on (rows planned over {over})"
    data = "; ".join(
        f"{d.get('kind', 'vla_libero')}: {d.get('path')} (weight {d.get('weight', 1)})"
        for d in cfg.data
    )
    rows = [
        ("stage", f"{cfg.stage} (system prompt: {cfg.system})"),
        ("model", str(cfg.model)),
        ("output", f"{cfg.output_dir}{' (resume)' if resume else ''}"),
        ("learning rate", f"{cfg.learning_rate:g} (vision + merger {cfg.vision_learning_rate:g})"),
        ("schedule", f"{cfg.lr_scheduler}, warmup {cfg.warmup_ratio:g}"),
        ("length", length),
        ("batch", batch),
        ("sequence", f"{cfg.max_length} tokens, packing {packing}"),
        ("precision", precision),
        ("frozen", ", ".join(freeze) or "nothing"),
        ("data", data),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


def close_process_group() -> None:
    """Leave a finished multi-process run cleanly: every process waits for the others, then
    the process group is destroyed, so that no communication thread still runs when the
    interpreter exits (gloo aborted with "terminate called without an active exception" now
    and then). Not on a failure: the launcher stops the other processes then."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def train_on_every_process(
    train: Any, cfg: Any, where: str, resume: bool, progress: list[Any]
) -> Any:
    """``train(cfg, resume=, where=, callbacks=progress)`` on this process (a bad config or data
    source is an error and exit 2), then the process group closed; the result on process 0,
    None on the others (they print nothing)."""
    from vst.engine.config import ConfigError

    try:
        result = train(cfg, resume=resume, where=where, callbacks=progress)
    except ConfigError as exc:
        fail(str(exc))
    close_process_group()
    return result if main_process() else None


def print_outputs(result: Any, resume: bool) -> None:
    """Where a finished run resumed from and what it wrote (either stage's result)."""
    if result.resumed_from is not None:
        console.print(f"resumed from {result.resumed_from}")
    elif resume:
        console.print("no checkpoint to resume from: trained from the start")
    console.print(f"[bold]steps[/bold] {result.steps}")
    console.print(f"[bold]model[/bold] {result.output_dir}")
    console.print(f"[bold]metrics[/bold] {result.metrics}")
    console.print(f"[bold]plot[/bold] {result.plot}")


@train_app.command("sft")
def sft_command(
    config: Path = typer.Argument(
        ..., help="Training config (YAML), e.g. configs/train/tiny_cpu_demo.yaml."
    ),
    resume: bool = RESUME,
    override: list[str] = OVERRIDE,
) -> None:
    """Train stage 1 (stage: sft) or stage 2 (stage: cot) and save a Hugging Face checkpoint,
    metrics.jsonl and metrics.png into output_dir."""
    from vst.train.config import load_train_config
    from vst.train.trainer import data_sources, run_training

    def check(cfg: Any, where: str, world: int) -> None:
        data_sources(cfg, where)
        cfg.accumulation(world)

    cfg, where = load_run_config_or_fail(config, override, load_train_config, check)
    main = main_process()
    if main:
        console.print(run_summary(cfg, where, resume))
    progress = [rich_progress(console)] if main else []
    result = train_on_every_process(run_training, cfg, where, resume, progress)
    if result is None:
        return
    report = result.mix_report
    console.print(f"[bold]examples[/bold] {result.examples} drawn")
    if hasattr(report, "to_markdown"):  # per source: weight, available, drawn, skipped
        console.print(escape(report.to_markdown()), highlight=False)
    elif getattr(report, "drawn", None):
        console.print(escape(str(report.drawn)), highlight=False)
    print_outputs(result, resume)


def _grporun_summary(cfg: Any, where: str, resume: bool) -> Table:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    accumulation, per_generation = cfg.batch_plan(world)
    table = Table(title=f"vst train grpo: {where}", show_header=False)
    f = cfg.filter
    filt = (
        f"on accuracy: keep groups with {f.low:g} < mean < {f.high:g}, up to {f.max_rounds} "
        "refill rounds"
        if f.enabled
        else "off"
    )
    length = f"{cfg.epochs:g} epoch(s)"
    if cfg.max_steps > 0:
        length += f", at most {cfg.max_steps} steps"
    lr = f"{cfg.learning_rate:g} ({cfg.lr_scheduler})"
    if cfg.vision_learning_rate is not None:
        lr += f", vision + merger {cfg.vision_learning_rate:g}"
    generation = "vLLM " + cfg.vllm_mode if cfg.use_vllm else "transformers"
    rows = [
        ("model", str(cfg.model)),
        ("output", f"{cfg.output_dir}{' (resume)' if resume else ''}"),
        ("learning rate", lr),
        ("length", length),
        (
            "batch",
            f"{cfg.global_batch_size} prompts x {cfg.num_generations} completions per step "
            f"({cfg.per_device_batch_size} per device x {accumulation} accumulation x {world} "
            f"process(es)); rollouts of {cfg.rollout()} prompts ({per_generation} micro-steps)",
        ),
        (
            "sampling",
            f"temperature {cfg.temperature:g}, top-p {cfg.top_p:g}, {generation}, completions "
            f"<= {cfg.max_completion_length} tokens, prompt + completion <= {cfg.max_length}",
        ),
        (
            "objective",
            f"{cfg.loss_type}, clip {cfg.epsilon_low:g} / {cfg.epsilon_high:g}, KL {cfg.beta:g}, "
            f"reward {cfg.w_acc:g} x accuracy + {cfg.w_fmt:g} x format, truncated: "
            f"{cfg.truncated}",
        ),
        ("online filter", filt),
        ("system prompt", f"{cfg.system} (3D detection: none)"),
        (
            "data",
            "; ".join(
                f"{d.get('kind')}: {d.get('path')} (weight {d.get('weight', 1)})" for d in cfg.data
            ),
        ),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))
    return table


@train_app.command("grpo")
def grpo_command(
    config: Path = typer.Argument(
        ..., help="GRPO config (YAML, stage: grpo), e.g. configs/train/grpo_tiny_cpu.yaml."
    ),
    resume: bool = RESUME,
    override: list[str] = OVERRIDE,
) -> None:
    """Train stage 3 (GRPO/DAPO with vst's rewards and online filtering) and save a Hugging Face
    checkpoint, metrics.jsonl and metrics.png into output_dir."""
    from vst.train.grpo_config import load_grpo_config

    cfg, where = load_run_config_or_fail(
        config, override, load_grpo_config, lambda cfg, where, world: cfg.batch_plan(world)
    )
    from vst.train.grpo import run_grpo

    main = main_process()
    if main:
        console.print(_grporun_summary(cfg, where, resume))
    progress = [rich_progress(console, "vst/accuracy", "accuracy")] if main else []
    result = train_on_every_process(run_grpo, cfg, where, resume, progress)
    if result is None:
        return
    report = result.mix_report
    if hasattr(report, "to_markdown"):
        console.print(escape(report.to_markdown()), highlight=False)
    if result.skipped:
        console.print(
            f"[yellow]{len(result.skipped)} prompt(s) skipped[/yellow] (first: "
            f"{escape(result.skipped[0][0])}: {escape(result.skipped[0][1])})"
        )
    print_outputs(result, resume)
