"""Pictures of untrusted training data: encoded bytes, image files and video files to PIL.

Every failure is a ``ValueError`` with one line naming what could not be read. Images are held
to :data:`vst.scenes.files.MAX_IMAGE_PIXELS` (checked on the header, before any decode). Video
files (mp4 and the like, as the VST release stores them) are decoded with PyAV when it is
installed (``pip install av``); without it they are refused with that reason.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from PIL import Image

from vst.engine.writer import image_extension
from vst.models.requests import Video
from vst.scenes.errors import UnreadableFileError
from vst.scenes.files import MAX_IMAGE_PIXELS, decode_image_bytes, open_image
from vst.train.sources.base import one_line

__all__ = [
    "decode_picture",
    "decode_video",
    "entry_bytes",
    "is_image_bytes",
    "load_picture",
    "picture_entries",
]


def decode_picture(data: bytes, what: str) -> Image.Image:
    """RGB image from encoded bytes (``what`` names it in the ``ValueError``), under the
    project's image size policy (:func:`vst.scenes.files.decode_image_bytes`)."""
    try:
        return decode_image_bytes(data, what)
    except UnreadableFileError as exc:
        raise ValueError(str(exc)) from None


def load_picture(path: Path) -> Image.Image:
    """RGB image from a file (already resolved inside its root)."""
    try:
        with open_image(path) as im:
            return im.convert("RGB")
    except UnreadableFileError as exc:
        raise ValueError(str(exc)) from None


def entry_bytes(entry: Any, what: str) -> bytes:
    """The bytes of a picture entry: raw bytes or a ``{"bytes", "path"}`` struct (the release's
    typo key ``byres`` accepted). The ``path`` is never opened: it names the file the bytes
    came from on another machine."""
    if isinstance(entry, Mapping):
        entry = entry.get("bytes", entry.get("byres"))
    if not isinstance(entry, bytes | bytearray) or not entry:
        raise ValueError(f"{what} has no bytes")
    return bytes(entry)


def picture_entries(value: Any) -> list[Any]:
    """A row's pictures as a list: None -> [], one entry (bytes or a struct) -> [entry]."""
    if value is None:
        return []
    if isinstance(value, bytes | bytearray | Mapping):
        return [value]
    if not isinstance(value, list | tuple):
        raise ValueError("images is not a list of pictures")
    return list(value)


def is_image_bytes(data: bytes) -> bool:
    """Whether ``data`` is a JPEG or PNG file (else: a video file or garbage)."""
    return image_extension(data) != "bin"


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return None


def decode_video(data: bytes, fps: float, max_frames: int, what: str) -> Video:
    """Frames of a video file at ``fps`` frames per second: the first frame at or after each of
    the times 0, 1/fps, 2/fps, ... before the clip's end; with more than ``max_frames`` such
    times, ``max_frames`` frames evenly spread over the clip (a lower rate, which the returned
    :class:`Video` states). Decoded with PyAV; only the kept frames are held."""
    try:
        import av  # optional dependency
    except ImportError:
        raise ValueError(
            f"{what} is a video file; decoding it needs PyAV (pip install av)"
        ) from None
    try:
        with av.open(io.BytesIO(data)) as container:
            stream = container.streams.video[0]
            duration = _duration(container, stream)
            if duration is None or duration <= 0:
                raise ValueError("unknown duration")
            n = max(1, math.ceil(duration * fps - 1e-9))  # times 0, 1/fps, ... before the end
            step, rate = 1 / fps, fps
            if n > max_frames:  # fewer frames, evenly over the clip, at a lower rate
                n = max_frames
                step = duration / n
                rate = 1 / step
            kept: list[Image.Image] = []
            for frame in container.decode(stream):
                t = float(frame.time) if frame.time is not None else 0.0
                if len(kept) < n and t + 1e-6 >= len(kept) * step:
                    image = frame.to_image()
                    if image.width * image.height > MAX_IMAGE_PIXELS:
                        raise ValueError(f"frames of {image.width}x{image.height} pixels")
                    kept.append(image.convert("RGB"))
                if len(kept) == n:
                    break
    except Exception as exc:  # PyAV raises its own error types on broken files
        raise ValueError(f"{what} cannot be decoded ({one_line(exc)})") from None
    if not kept:
        raise ValueError(f"{what} has no frames")
    return Video(tuple(kept), rate)
