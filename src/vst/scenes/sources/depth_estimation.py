"""Pseudo-label depth for plain images with a monocular depth model (Depth Anything family).

The VST paper pseudo-labels COCO images with a depth expert model to make depth-based
single-image samples. This module runs such a model through the ``transformers``
``"depth-estimation"`` pipeline, loading it ONLY from a local directory (``local_files_only``:
nothing is fetched from a hub; the directory holds ``config.json``, the weights and
``preprocessor_config.json`` as written by ``save_pretrained``).

Output: per image ``<stem>.npy``, float32 (H, W) at the image's own size, metric z-depth in
metres, 0 where unknown (the vst depth convention, :mod:`vst.scenes.model`).

Conversion of the pipeline's ``predicted_depth`` (``kind``):

* ``"metric"`` (metric models, e.g. Depth Anything metric indoor/outdoor): the prediction is
  depth in metres; written as ``scale * predicted`` (``scale`` 1 by default).
* ``"relative-inverse"`` (the relative Depth Anything models, MiDaS / DPT): the prediction is a
  relative INVERSE depth (disparity-like, larger = nearer, known only up to an unknown scale and
  shift). Written as ``scale / predicted`` where the prediction exceeds
  :data:`MIN_RELATIVE_INVERSE` times its image maximum, else 0 (sky / far background). The
  result orders pixels by depth correctly but is NOT metric: ``scale`` only fixes its units
  (pick it so a known reference depth comes out right). Tasks that state metres (distances,
  sizes) made from such depth are pseudo labels in arbitrary units.

``transformers`` is an optional dependency (``pip install 'vst[depth]'``); importing this module
does not need it, using it does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from PIL import Image

__all__ = [
    "IMAGE_SUFFIXES",
    "MIN_RELATIVE_INVERSE",
    "DepthEstimator",
    "DepthKind",
    "estimate_depth",
    "prediction_to_depth",
]

DepthKind = Literal["metric", "relative-inverse"]

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""Image files (case-insensitive) :func:`estimate_depth` processes."""

MIN_RELATIVE_INVERSE = 1e-3
"""Relative inverse depth below this fraction of the image's maximum becomes unknown (0)."""


def prediction_to_depth(
    predicted: np.ndarray, kind: DepthKind = "relative-inverse", scale: float = 1.0
) -> np.ndarray:
    """Float32 z-depth in metres (0 = unknown) from a model's raw prediction (see module doc)."""
    pred = np.asarray(predicted, dtype=np.float64)
    if not (np.isfinite(scale) and scale > 0):
        raise ValueError(f"scale must be finite and > 0, got {scale!r}")
    finite = np.isfinite(pred)
    out = np.zeros(pred.shape, dtype=np.float64)
    if kind == "metric":
        ok = finite & (pred > 0)
        out[ok] = scale * pred[ok]
    elif kind == "relative-inverse":
        peak = float(pred[finite].max()) if finite.any() else 0.0
        ok = finite & (pred > max(peak * MIN_RELATIVE_INVERSE, 0.0)) & (pred > 0)
        out[ok] = scale / pred[ok]
    else:
        raise ValueError(f"kind must be 'metric' or 'relative-inverse', got {kind!r}")
    out[~np.isfinite(out)] = 0.0
    return out.astype(np.float32)


def _resize_float(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize of a float map to (height, width)."""
    im = Image.fromarray(np.ascontiguousarray(arr, dtype=np.float32))
    return np.asarray(im.resize((width, height), Image.BILINEAR), dtype=np.float32)


class DepthEstimator:
    """A local depth model behind the ``transformers`` depth-estimation pipeline.

    ``model_dir`` must be an existing directory (never a hub id); ``kind`` / ``scale`` convert
    the prediction (:func:`prediction_to_depth`); ``device`` is passed to the pipeline."""

    def __init__(
        self,
        model_dir: str | Path,
        kind: DepthKind = "relative-inverse",
        scale: float = 1.0,
        device: str | int = "cpu",
    ):
        self.model_dir = Path(model_dir)
        if not self.model_dir.is_dir():
            raise FileNotFoundError(
                f"depth model directory {self.model_dir} does not exist (only local model "
                f"directories are loaded, never a hub id)"
            )
        if kind not in ("metric", "relative-inverse"):
            raise ValueError(f"kind must be 'metric' or 'relative-inverse', got {kind!r}")
        self.kind: DepthKind = kind
        self.scale = float(scale)
        try:
            import transformers
            from transformers import AutoImageProcessor, AutoModelForDepthEstimation, pipeline
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError(
                "depth estimation needs the optional dependency transformers: "
                "pip install 'vst[depth]' (or 'transformers>=4.50')"
            ) from exc
        proc_kwargs: dict[str, Any] = {"local_files_only": True}
        if int(transformers.__version__.split(".")[0]) < 5:
            # v4: the slow (PIL / numpy) processor needs no torchvision. v5 falls back to its
            # PIL backend by itself when torchvision is missing.
            proc_kwargs["use_fast"] = False
        processor = AutoImageProcessor.from_pretrained(str(self.model_dir), **proc_kwargs)
        model = AutoModelForDepthEstimation.from_pretrained(
            str(self.model_dir), local_files_only=True
        )
        model.eval()
        self.pipe = pipeline(
            "depth-estimation", model=model, image_processor=processor, device=device
        )

    def predict(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """The pipeline's raw ``predicted_depth`` as float32 (H, W) at the image's size."""
        im = image if isinstance(image, Image.Image) else Image.fromarray(np.asarray(image))
        im = im.convert("RGB")
        out = self.pipe(im)
        pred = out["predicted_depth"]
        pred = pred.detach().cpu().float().numpy() if hasattr(pred, "detach") else np.asarray(pred)
        pred = np.squeeze(pred)
        if pred.ndim != 2:
            raise ValueError(f"depth model returned a prediction of shape {pred.shape}")
        if pred.shape != (im.height, im.width):  # older pipelines: model resolution
            pred = _resize_float(pred, im.width, im.height)
        return pred.astype(np.float32)

    def __call__(self, image: Image.Image | np.ndarray) -> np.ndarray:
        """Float32 z-depth (H, W) in metres (0 unknown) of one image, converted per ``kind``."""
        return prediction_to_depth(self.predict(image), self.kind, self.scale)


def estimate_depth(
    images_dir: str | Path,
    out_depth_dir: str | Path,
    model_dir: str | Path,
    *,
    kind: DepthKind = "relative-inverse",
    scale: float = 1.0,
    overwrite: bool = False,
    device: str | int = "cpu",
    estimator: DepthEstimator | None = None,
) -> list[Path]:
    """Write ``out_depth_dir/<stem>.npy`` (float32 metres, 0 unknown) for every image in
    ``images_dir`` (jpg / jpeg / png, sorted by name) with the local model in ``model_dir``.

    Existing outputs are kept unless ``overwrite``. Returns the files written."""
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise FileNotFoundError(f"images directory {images_dir} does not exist")
    out_dir = Path(out_depth_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files = sorted(
        p for p in images_dir.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
    )
    todo = [p for p in files if overwrite or not (out_dir / f"{p.stem}.npy").exists()]
    if not todo:
        return []
    est = estimator or DepthEstimator(model_dir, kind=kind, scale=scale, device=device)
    from vst.scenes.files import open_image

    written = []
    for path in todo:
        with open_image(path) as im:
            depth = est(im)
        target = out_dir / f"{path.stem}.npy"
        tmp = target.with_name(f".{target.stem}.tmp.npy")
        np.save(tmp, depth)
        tmp.replace(target)
        written.append(target)
    return written
