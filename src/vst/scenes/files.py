"""Reading untrusted dataset files at the boundary: JSON, image headers and pixels, npy/npz.

Every helper raises :class:`~vst.scenes.errors.UnreadableFileError` (a
:class:`~vst.scenes.errors.SceneFormatError`) naming the file for anything a hostile or broken
file can do: unparsable or too deeply nested JSON (``RecursionError``), truncated or garbage
images and archives, pickled npy members, and decompression bombs. Callers turn that into a
per-scene or per-frame skip, so one bad file never aborts a run.

Policy for images: at most :data:`MAX_IMAGE_PIXELS` pixels (width x height, read from the
header before any decode); PIL's own decompression-bomb warning is an error here as well.

Paths: :func:`resolve_inside` refuses a path that resolves (after ``..`` and symlinks) outside
the scene or dataset root, unless the caller opts in (``allow_outside_root``).
"""

from __future__ import annotations

import io
import json
import os
import re
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vst.scenes.errors import UnreadableFileError

__all__ = [
    "MAX_IMAGE_PIXELS",
    "array_header",
    "decode_image_bytes",
    "image_size",
    "load_array",
    "open_image",
    "read_json",
    "resolve_inside",
]

MAX_IMAGE_PIXELS = 64_000_000
"""Largest image vst reads (width x height; 8000 x 8000). Frames of the supported datasets are
at most a few megapixels; anything larger is refused as a likely decompression bomb."""

_FILE_ERRORS = (
    OSError,
    ValueError,
    EOFError,
    KeyError,
    RecursionError,
    MemoryError,
    zipfile.BadZipFile,
    Image.DecompressionBombError,
    Image.DecompressionBombWarning,
    SyntaxError,  # PIL raises it for some malformed headers
)


def read_json(path: Path) -> Any:
    """Parse a UTF-8 JSON file; UnreadableFileError naming ``path`` on any failure (including
    nesting too deep for the parser)."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (*_FILE_ERRORS, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"{path}: cannot parse JSON: {_describe(exc)}") from None


def _describe(exc: BaseException) -> str:
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    # PIL names in-memory files by their repr ("<_io.BytesIO object at 0x...>"): not a name
    text = re.sub(r" ?<_io\.\w+ object at 0x[0-9a-f]+>", "", str(exc)).strip()
    text = text or type(exc).__name__
    return text if len(text) <= 200 else text[:200] + "..."


@contextmanager
def open_image(path: Path) -> Iterator[Image.Image]:
    """``Image.open`` with the size policy applied on the header (no pixels decoded yet) and
    every decode error of the ``with`` body re-raised as UnreadableFileError naming ``path``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise UnreadableFileError(
                        f"{path}: image of {w}x{h} pixels exceeds the limit of "
                        f"{MAX_IMAGE_PIXELS} pixels (decompression bomb?)"
                    )
                yield im
    except UnreadableFileError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise UnreadableFileError(
            f"{path}: image exceeds the limit of {MAX_IMAGE_PIXELS} pixels (decompression bomb?)"
        ) from None
    except _FILE_ERRORS as exc:
        raise UnreadableFileError(f"cannot read image {path}: {_describe(exc)}") from None


def decode_image_bytes(
    data: bytes,
    where: str,
    max_pixels: int = MAX_IMAGE_PIXELS,
    formats: tuple[str, ...] | None = None,
) -> Image.Image:
    """An RGB image from encoded bytes (a parquet cell, a data URI payload) under the same size
    policy as :func:`open_image` (or a lower ``max_pixels``), optionally only of PIL
    ``formats`` (e.g. ``("PNG", "JPEG")``); any failure is an :class:`UnreadableFileError`
    whose message starts with ``where``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:
                w, h = im.size
                if formats is not None and im.format not in formats:
                    raise UnreadableFileError(
                        f"{where}: a {im.format} image, not {' or '.join(formats)}"
                    )
                if w * h > max_pixels:
                    raise UnreadableFileError(
                        f"{where}: image of {w}x{h} pixels exceeds the limit of "
                        f"{max_pixels} pixels (decompression bomb?)"
                    )
                return im.convert("RGB")
    except UnreadableFileError:
        raise
    except Exception as exc:  # PIL raises OSError, ValueError, SyntaxError, bomb errors...
        raise UnreadableFileError(f"{where}: cannot decode image ({_describe(exc)})") from None


def image_size(path: Path) -> tuple[int, int]:
    """``(width, height)`` of an image from its header (no decode); UnreadableFileError
    otherwise."""
    with open_image(path) as im:
        return im.size


def _npz_member(zf: zipfile.ZipFile, key: str, path: Path) -> str:
    name = f"{key}.npy"
    if name not in zf.namelist():
        raise UnreadableFileError(f"{path}: no array {key!r} (has {sorted(zf.namelist())[:5]})")
    return name


def array_header(path: Path, key: str) -> tuple[tuple[int, ...], np.dtype]:
    """Shape and dtype of an ``.npy`` file or of member ``key`` of an ``.npz``, from the npy
    header only; refuses object (pickled) arrays."""
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as zf, zf.open(_npz_member(zf, key, path)) as fh:
                shape, dtype = _read_npy_header(fh)
        else:
            with open(path, "rb") as fh:
                shape, dtype = _read_npy_header(fh)
    except UnreadableFileError:
        raise
    except _FILE_ERRORS as exc:
        raise UnreadableFileError(f"cannot read array file {path}: {_describe(exc)}") from None
    if dtype.hasobject:
        raise UnreadableFileError(f"{path}: array {key!r} holds Python objects (refused)")
    return shape, dtype


def _read_npy_header(fh: Any) -> tuple[tuple[int, ...], np.dtype]:
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        shape, _, dtype = np.lib.format.read_array_header_1_0(fh)
    else:
        shape, _, dtype = np.lib.format.read_array_header_2_0(fh)
    return tuple(shape), dtype


def load_array(path: Path, key: str) -> np.ndarray:
    """An ``.npy`` array, or member ``key`` of an ``.npz``, never unpickling;
    UnreadableFileError naming ``path`` on a broken file."""
    try:
        if path.suffix == ".npz":
            with np.load(path, allow_pickle=False) as data:
                if key not in data.files:
                    raise UnreadableFileError(f"{path}: no array {key!r}")
                return data[key]
        return np.load(path, allow_pickle=False)
    except UnreadableFileError:
        raise
    except _FILE_ERRORS as exc:
        raise UnreadableFileError(f"cannot read array file {path}: {_describe(exc)}") from None


def resolve_inside(path: Path, root: Path, allow_outside_root: bool = False) -> Path:
    """``path`` (relative paths are taken under ``root``), checked to resolve inside ``root``
    after ``..`` and symlinks; UnreadableFileError naming both otherwise. With
    ``allow_outside_root`` any path is accepted (for datasets that store absolute paths)."""
    path = Path(path)
    full = path if path.is_absolute() else Path(root) / path
    if allow_outside_root:
        return full
    try:
        real = os.path.realpath(full, strict=False)
        real_root = _real_root(os.fspath(root))
    except (OSError, RuntimeError, ValueError) as exc:  # symlink loops, NUL bytes
        raise UnreadableFileError(f"{full}: cannot resolve the path: {exc}") from None
    if real != real_root and not real.startswith(real_root.rstrip(os.sep) + os.sep):
        raise UnreadableFileError(
            f"{path} resolves outside {root} (absolute, '..' or symlinked paths are refused; "
            "opt in with allow_outside_root)"
        )
    return full


@lru_cache(maxsize=256)
def _real_root(root: str) -> str:
    """The real path of a scene or dataset root (cached: checked once per file otherwise)."""
    return os.path.realpath(root)
