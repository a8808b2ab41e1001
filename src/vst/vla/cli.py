"""``vst vla ...``: VLA data conversion, fine-tuning, the policy server and LIBERO rollouts.

* ``vst vla convert --libero-hdf5 DIR | --lerobot DIR --suite NAME --out DIR``: episodes ->
  ``norm_stats.json`` + the release's LIBERO parquet with normalised actions;
* ``vst vla train CONFIG [--resume] [-o key=value]``: fine-tune on action tokens;
* ``vst vla serve CHECKPOINT``: the policy behind an HTTP server on loopback;
* ``vst vla eval-libero --suite S --policy URL --out DIR``: LIBERO rollouts of a served policy
  (the simulator in the ``.venv-libero`` environment), resumable.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from vst.train.cli import OVERRIDE, RESUME

vla_app = typer.Typer(
    help="Vision-language-action: convert data, fine-tune, serve a policy, run LIBERO rollouts."
)
console = Console()


@vla_app.callback()
def main() -> None:
    """Vision-language-action commands (a group, so ``serve`` is named even when alone)."""


@vla_app.command("convert")
def convert_command(
    out: Path = typer.Option(..., "--out", help="Output folder (parquet shards, norm_stats.json)."),
    suite: str = typer.Option(..., "--suite", help="Suite / dataset name (ids, data_source)."),
    libero_hdf5: Path | None = typer.Option(
        None, "--libero-hdf5", help="A LIBERO HDF5 file or a folder of them."
    ),
    lerobot: Path | None = typer.Option(
        None, "--lerobot", help="A LeRobot dataset folder (format v3.0 or v2.1)."
    ),
    image_key: str = typer.Option(
        "observation.images.image", "--image-key", help="LeRobot: the third-person camera."
    ),
    action_key: str = typer.Option("action", "--action-key", help="LeRobot: the action feature."),
    gripper: str = typer.Option(
        "pm1", "--gripper", help="The data's gripper convention: pm1 (-1/+1) or 01 (0/1)."
    ),
) -> None:
    """Convert episodes as the release does (failed demos and no-op steps dropped, images
    rotated 180 degrees, the training prompt) into OUT: norm_stats.json over the kept steps and
    the LIBERO parquet with normalised actions."""
    from vst.vla.dataset import convert_dataset
    from vst.vla.norm_stats import GripperConvention
    from vst.vla.readers import read_lerobot, read_libero_folder, read_libero_hdf5

    err = Console(stderr=True)
    if (libero_hdf5 is None) == (lerobot is None):
        err.print("[red]error:[/red] give one of --libero-hdf5 and --lerobot")
        raise typer.Exit(2)

    def episodes():  # called twice: statistics, then the records
        if libero_hdf5 is not None:
            if libero_hdf5.is_dir():
                return read_libero_folder(libero_hdf5)
            return read_libero_hdf5(libero_hdf5)
        return read_lerobot(lerobot, image_key=image_key, action_key=action_key)

    try:
        done = convert_dataset(episodes, out, suite, gripper=GripperConvention(gripper))
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(2) from None
    r = done.report
    console.print(
        f"{r.episodes_read} episode(s) read, {r.failed_dropped} failed dropped, "
        f"{r.noop_steps_dropped} no-op step(s) dropped, {r.records_written} record(s) written"
    )
    console.print(f"[bold]parquet[/bold] {out} ({len(r.files)} shard(s))")
    console.print(f"[bold]norm stats[/bold] {done.stats_path}")


@vla_app.command("train")
def train_command(
    config: Path = typer.Argument(..., help="VLA config (YAML), e.g. configs/vla/tiny_cpu.yaml."),
    resume: bool = RESUME,
    override: list[str] = OVERRIDE,
) -> None:
    """Fine-tune a checkpoint on action tokens (stage: vla; the release's settings as preset)
    and save it with its processor, norm_stats.json, vla.json, metrics and the held-out
    action-token accuracy / L1 (vla_eval.jsonl, vla_eval.png) into output_dir."""
    from vst.train.cli import (
        load_run_config_or_fail,
        main_process,
        print_outputs,
        rich_progress,
        run_summary,
        train_on_every_process,
    )
    from vst.vla.train_config import load_vla_config

    cfg, where = load_run_config_or_fail(
        config, override, load_vla_config, lambda cfg, where, world: cfg.accumulation(world)
    )
    from vst.vla.train import run_vla_training

    main = main_process()
    if main:
        console.print(run_summary(cfg, where, resume, "vst vla train"))
        console.print(
            f"actions: vocabulary {cfg.vocabulary}, {cfg.bins} bins, {cfg.action_dim} dims; "
            f"held out {cfg.held_out:g} of episodes; scored every {cfg.eval_every} steps"
        )
    progress = [rich_progress(console)] if main else []
    result = train_on_every_process(run_vla_training, cfg, where, resume, progress)
    if result is None:
        return
    console.print(f"[bold]examples[/bold] {result.examples} drawn, {result.held_out} held out")
    for split, scores in (result.scores or {}).items():
        acc, l1 = scores.get("token_accuracy"), scores.get("l1_normalised")
        if acc is not None:
            console.print(
                f"[bold]{split}[/bold] action-token accuracy {acc:.3f}, L1 {l1:.4f} "
                f"(normalised), {scores['samples']} samples"
            )
    print_outputs(result, resume)
    console.print(f"[bold]action scores[/bold] {result.eval_file}")


@vla_app.command("serve")
def serve_command(
    checkpoint: Path = typer.Argument(..., help="A VLA checkpoint directory."),
    norm_stats: Path | None = typer.Option(
        None, "--norm-stats", help="norm_stats.json (default: CHECKPOINT/norm_stats.json)."
    ),
    vocabulary: str | None = typer.Option(
        None, "--vocabulary", help="Action tokens: added or last (default: CHECKPOINT/vla.json)."
    ),
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
    if vocabulary not in (None, "added", "last"):
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


def _task_list(text: str | None) -> list[int] | None:
    """``"0,3"`` -> ``[0, 3]``; None -> None (all tasks)."""
    if text is None or not text.strip():
        return None
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"expected task numbers like 0,3, got {text!r}") from None


@vla_app.command("eval-libero")
def eval_libero_command(
    suite: str = typer.Option(
        ..., "--suite", help="libero_spatial, libero_object, libero_goal or libero_10."
    ),
    policy: str = typer.Option(
        ..., "--policy", help="The policy server's URL (vst vla serve), e.g. http://127.0.0.1:8000."
    ),
    out: Path = typer.Option(..., "--out", help="Output folder (episodes.jsonl, report, videos)."),
    tasks: str | None = typer.Option(None, "--tasks", help="Task numbers, e.g. 0,3 (default all)."),
    episodes: int = typer.Option(50, "--episodes", min=1, help="Episodes per task (init states)."),
    video: bool = typer.Option(False, "--video", help="Write an MP4 per episode."),
    max_steps: int | None = typer.Option(
        None, "--max-steps", min=1, help="Policy steps per episode (default: the suite's limit)."
    ),
    sim_python: Path | None = typer.Option(
        None, "--sim-python", help="The LIBERO venv's python (default: .venv-libero/bin/python)."
    ),
) -> None:
    """Roll the policy at --policy out on a LIBERO suite, the paper's protocol; a rerun with the
    same --out resumes (finished episodes are skipped)."""
    from vst.vla.libero_eval import run_libero_eval
    from vst.vla.libero_process import LiberoProcess, SimulatorError, default_sim_python
    from vst.vla.rollout_policy import PolicyUnavailableError

    err = Console(stderr=True)
    task_list = _task_list(tasks)
    python = sim_python or default_sim_python()
    if not python.exists():
        err.print(f"[red]error:[/red] {python}: no LIBERO python (run `make libero-env`)")
        raise typer.Exit(2)
    try:
        with LiberoProcess(python) as sim:
            report = run_libero_eval(
                suite,
                tasks=task_list,
                episodes=episodes,
                policy=policy,
                out=out,
                video=video,
                max_steps=max_steps,
                simulator=sim,
            )
    except ValueError as exc:
        err.print(f"[red]error:[/red] {exc}", markup=False)
        raise typer.Exit(2) from None
    except (SimulatorError, PolicyUnavailableError) as exc:
        err.print(f"[red]error:[/red] {exc}", markup=False)
        err.print("episodes finished so far are kept; rerun the same command to resume")
        raise typer.Exit(1) from None
    rate = "n/a" if report.success_rate is None else f"{100 * report.success_rate:.1f}%"
    console.print(
        f"{suite}: success {rate} ({report.successes}/{report.episodes}); "
        f"{report.episodes_run} run, {report.episodes_skipped} skipped"
    )
    console.print(f"[bold]report[/bold] {out / 'report.md'}")
    if report.simulator_errors:
        for line in report.simulator_errors:
            err.print(f"[yellow]simulator error:[/yellow] {line}", markup=False)
        err.print("rerun the same command to retry those episodes")
        raise typer.Exit(1)
