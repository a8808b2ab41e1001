"""``vst detect IMAGE --model DIR|URL --category chair ...``: 3D boxes on a user's image.

Reads the image, FoV-unifies it and asks the model once per category as the engine's
``si_det3d`` asks (:mod:`vst.models.detect`), parses the answers into boxes in the original
camera and writes ``detections.json``, ``overlay.png`` and ``bev.png`` into ``--out``
(:mod:`vst.models.detect_output`). The image is read upright, as a viewer shows it (EXIF
orientation applied); intrinsics are those of that upright image.

Exit codes: 0 done; 2 bad input (image missing or unreadable, bad intrinsics, no usable
category, a model that cannot be opened, an output folder that cannot be written), one line on
stderr; 1 when the outputs were written but a category's request failed (its error is in the
JSON and printed).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import NoReturn

import typer
from PIL import Image, ImageOps
from rich.console import Console
from rich.markup import escape

from vst.fserrors import exit_code_of, os_error_line
from vst.models.cli_options import API_KEY_ENV, SERVED_MODEL

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

__all__ = ["detect_command"]


def _fail(message: str, code: int = 2) -> NoReturn:
    err_console.print(f"[red]error:[/red] {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _read_image(path: Path) -> Image.Image:
    """The image as RGB, upright as a viewer shows it (EXIF orientation applied)."""
    from vst.scenes.errors import UnreadableFileError
    from vst.scenes.files import open_image

    if not path.is_file():
        _fail(f"image not found: {path}" if not path.exists() else f"not a file: {path}")
    try:
        with open_image(path) as im:
            return ImageOps.exif_transpose(im).convert("RGB")
    except UnreadableFileError as exc:
        _fail(str(exc))


def _intrinsics(
    fx: float | None,
    fy: float | None,
    cx: float | None,
    cy: float | None,
    hfov: float | None,
    width: int,
    height: int,
) -> tuple[float, float, float, float] | None:
    """``(fx, fy, cx, cy)`` from the options (cx, cy default to the image centre), None when
    none is given; exits 2 on a bad combination or value."""
    given = {k: v for k, v in (("fx", fx), ("fy", fy), ("cx", cx), ("cy", cy)) if v is not None}
    if hfov is not None and given:
        _fail(f"give --hfov or --fx/--fy/--cx/--cy, not both (got --hfov and --{min(given)})")
    if not given:
        return None
    if fx is None or fy is None:
        _fail("--fx and --fy are both needed with intrinsics (--cx/--cy default to the centre)")
    for name, value in given.items():
        if not math.isfinite(value):
            _fail(f"--{name} must be a finite number of pixels, got {value}")
    for name in ("fx", "fy"):
        if given[name] <= 0:
            _fail(f"--{name} must be > 0 pixels, got {given[name]}")
    return (
        fx,
        fy,
        (width - 1) / 2.0 if cx is None else cx,
        (height - 1) / 2.0 if cy is None else cy,
    )


def detect_command(
    image: Path = typer.Argument(..., help="The image (any format Pillow reads)."),
    model: str = typer.Option(
        ..., "--model", help="A model directory or an OpenAI-compatible URL."
    ),
    backend: str = typer.Option(
        "auto", "--backend", help="auto, transformers, vllm or openai (auto: URL -> openai)."
    ),
    category: list[str] = typer.Option(
        ..., "--category", help="A category to detect (repeat for more: --category chair ...)."
    ),
    fx: float | None = typer.Option(None, "--fx", help="Focal length along x (pixels)."),
    fy: float | None = typer.Option(None, "--fy", help="Focal length along y (pixels)."),
    cx: float | None = typer.Option(
        None, "--cx", help="Principal point x (pixels; default centre)."
    ),
    cy: float | None = typer.Option(
        None, "--cy", help="Principal point y (pixels; default centre)."
    ),
    hfov: float | None = typer.Option(
        None, "--hfov", help="Horizontal FoV in degrees (square pixels, centred principal point)."
    ),
    out: Path = typer.Option(Path("outputs/detect"), "--out", help="Folder for the outputs."),
    system: str = typer.Option("plain", "--system", help="System prompt: plain or think."),
    max_tokens: int = typer.Option(1024, "--max-tokens", min=1, help="Most tokens per answer."),
    served_model: str | None = SERVED_MODEL,
    api_key_env: str | None = API_KEY_ENV,
) -> None:
    """Detect 3D boxes of the given categories in IMAGE: writes detections.json, overlay.png
    (boxes drawn on the image) and bev.png (top view) into --out. Without --fx/--fy or --hfov
    the camera's hfov is assumed (a warning says which)."""
    from vst.models.backends.base import BackendError, Sampling
    from vst.models.backends.factory import backend_options, open_backend
    from vst.models.detect import ASSUMED_HFOV, detection_request, parse_detections
    from vst.models.detect_output import CategoryResult, write_outputs
    from vst.models.vision import PixelLimits

    if system not in ("plain", "think"):
        _fail(f"--system must be plain or think, got {system!r}")
    if backend not in ("auto", "transformers", "vllm", "openai"):
        _fail(f"--backend must be auto, transformers, vllm or openai, got {backend!r}")
    original = _read_image(image)
    intr = _intrinsics(fx, fy, cx, cy, hfov, original.width, original.height)
    limits = PixelLimits()
    try:
        requests, frame = detection_request(
            original,
            categories=category,
            intrinsics=intr,
            hfov=hfov,
            limits=limits,
            system=system,
        )
    except ValueError as exc:
        _fail(f"{image}: {exc}")
    if frame.assumed_intrinsics:
        err_console.print(
            f"[yellow]warning:[/yellow] no intrinsics given: assumed hfov={ASSUMED_HFOV} degrees"
            f" (fx=fy={frame.camera.fx:.1f} px, principal point at the centre); pass --hfov or"
            " --fx/--fy for metric boxes",
            highlight=False,
        )
    try:
        options = backend_options(
            model,
            backend,  # type: ignore[arg-type]
            served_model=served_model,
            api_key_env=api_key_env,
        )
        runner = open_backend(model, backend, limits=limits, **options)  # type: ignore[arg-type]
    except BackendError as exc:
        _fail(str(exc))
    sampling = Sampling(max_tokens=max_tokens)
    try:
        with console.status(f"asking {model} about {len(requests)} categor(y/ies)"):
            completions = runner.generate(requests, sampling)
    finally:
        runner.close()
    results = []
    for request, completion in zip(requests, completions, strict=True):
        parsed = parse_detections(completion.text, frame, to_original=True)
        prompt = request.messages[-1]["content"][-1]["text"]
        results.append(
            CategoryResult(request.id, prompt, completion.text, completion.error, parsed)
        )
    extra = {
        "image": str(image),
        "model": model,
        "backend": backend,
        "system": system,
        "sampling": sampling.key(),
    }
    try:
        paths = write_outputs(out, original, frame, results, extra)
    except OSError as exc:
        _fail(f"cannot write the outputs: {os_error_line(exc)}", exit_code_of(exc))
    failed = 0
    for r in results:
        if r.error is not None:
            failed += 1
            err_console.print(
                f"[red]failed[/red] {escape(r.category)}: {escape(r.error)}", highlight=False
            )
            continue
        console.print(f"{escape(r.category)}: {len(r.parsed.detections)} box(es)", highlight=False)
        for note in r.parsed.notes:
            console.print(f"  note: {escape(note)}", highlight=False)
    for name, path in paths.items():
        console.print(f"  {name:<11} {escape(str(path))}", highlight=False)
    if failed:
        raise typer.Exit(1)
