"""The `vst` command: one entry point with a subcommand per job."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

import vst
from vst.engine.cli import data_app, generate_app
from vst.eval.cli import app as eval_app
from vst.models.cli import app as models_app
from vst.models.detect_cli import detect_command
from vst.models.predict_cli import predict_command
from vst.reasoning.cli import reason_app
from vst.scenes.cli import app as scenes_app
from vst.train.cli import train_app
from vst.vla.cli import vla_app

app = typer.Typer(
    help="vst: Visual Spatial Tuning toolkit (3D scenes -> spatial data -> tuned VLMs).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(scenes_app, name="scenes")
app.add_typer(generate_app)  # `vst generate CONFIG`
app.add_typer(data_app, name="data")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(train_app, name="train")  # `vst train sft|grpo CONFIG`
app.add_typer(reason_app, name="reason")  # `vst reason cot|rl-set|filter`
app.add_typer(vla_app, name="vla")  # `vst vla convert|serve`
app.command("predict")(predict_command)  # `vst predict --model .. --data .. --out ..`
app.command("detect")(detect_command)  # `vst detect IMAGE --model ... --category ...`
console = Console()


@app.command()
def version() -> None:
    """Print the vst version."""
    console.print(f"vst {vst.__version__}")


@app.command()
def demo(
    out: Path = typer.Option(Path("outputs/demo"), "--out", help="Where to write the outputs."),
    seed: int = typer.Option(0, help="Seed of every random choice."),
    num_scenes: int = typer.Option(3, "--num-scenes", min=1, help="Synthetic scenes to make."),
) -> None:
    """Run the main job on the built-in synthetic default and print where its outputs are."""
    from vst.demo import run_demo

    result = run_demo(out, seed=seed, console=console, num_scenes=num_scenes)
    console.print("\n[bold]outputs[/bold]")
    width = max((len(name) for name in result.outputs), default=0)
    for name, path in result.outputs.items():
        console.print(f"  {name:<{width}}  {path}")
    if result.problems:  # the demo's data must pass its own verification and audit
        console.print(f"[red]demo data has {len(result.problems)} problem(s)[/red]")
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
