"""Images stored inside benchmark files (base64 TSV cells, parquet bytes or HF ``Image``
structs, paths under the data root), decoded safely.

Every failure is a :class:`BenchmarkDataError` naming the file and the row. Images larger than
:data:`vst.scenes.files.MAX_IMAGE_PIXELS` are refused before their pixels are decoded.
"""

from __future__ import annotations

import base64
import binascii
from pathlib import Path
from typing import Any

from PIL import Image

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.scenes.errors import SceneFormatError, UnreadableFileError
from vst.scenes.files import decode_image_bytes, open_image, resolve_inside

__all__ = ["decode_b64_image", "image_from_bytes", "image_from_cell"]


def image_from_bytes(data: bytes, where: str) -> Image.Image:
    """An RGB image from encoded bytes (JPEG, PNG, ...); ``where`` names file and row in
    errors."""
    try:
        return decode_image_bytes(data, where)
    except UnreadableFileError as exc:
        raise BenchmarkDataError(str(exc)) from None


def decode_b64_image(text: object, where: str) -> Image.Image:
    """An RGB image from a base64 string (VLMEvalKit TSV cells)."""
    if not isinstance(text, str) or not text.strip():
        raise BenchmarkDataError(f"{where}: empty image cell")
    try:
        data = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise BenchmarkDataError(f"{where}: image cell is not valid base64") from None
    return image_from_bytes(data, where)


def image_from_cell(cell: Any, where: str, root: Path | None = None) -> Image.Image:
    """An RGB image from a parquet cell: raw bytes, an HF ``Image`` struct
    (``{"bytes": ..., "path": ...}``) or, with ``root``, a path relative to ``root`` (refused
    when it resolves outside it)."""
    if isinstance(cell, dict):
        if cell.get("bytes"):
            return image_from_bytes(bytes(cell["bytes"]), where)
        cell = cell.get("path")
    if isinstance(cell, bytes | bytearray | memoryview):
        return image_from_bytes(bytes(cell), where)
    if isinstance(cell, str) and cell and root is not None:
        try:
            path = resolve_inside(Path(cell), root)
            with open_image(path) as im:
                return im.convert("RGB")
        except SceneFormatError as exc:
            raise BenchmarkDataError(f"{where}: {exc}") from None
        except OSError as exc:
            raise BenchmarkDataError(f"{where}: cannot open image {cell!r}: {exc}") from None
    raise BenchmarkDataError(f"{where}: no image bytes in the cell")
