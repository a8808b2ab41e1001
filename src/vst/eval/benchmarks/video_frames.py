"""Uniform frame sampling from a video file with PyAV, for video benchmarks.

Convention (lmms-eval's video readers): ``k`` frames at indices
``numpy.linspace(0, n - 1, k)`` truncated to integers, where ``n`` is the number of decoded
frames; with ``n <= k`` every frame is kept. The returned :class:`~vst.models.requests.Video`
states ``fps = len(frames) / duration`` (the rate the kept frames stand for, which is how
Qwen2.5-VL reads the timing of sampled frames). The duration is the stream's (or container's)
duration, else ``n`` over the stream's average rate.

Only the kept frames are held in memory. The frame count comes from the container when it
states one and is checked against the decode: a container that over-states it is decoded a
second time with the real count.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from vst.models.requests import Video
from vst.scenes.files import MAX_IMAGE_PIXELS

__all__ = ["VideoReadError", "sample_indices", "sample_video"]


class VideoReadError(ValueError):
    """A video file cannot be opened or decoded (one line naming the file)."""


def sample_indices(n: int, k: int) -> list[int]:
    """``k`` frame indices spread uniformly over ``n`` frames (first and last included):
    ``linspace(0, n - 1, k)`` truncated; every index when ``n <= k``."""
    if n <= 0 or k <= 0:
        return []
    if n <= k:
        return list(range(n))
    return [int(i) for i in np.linspace(0, n - 1, k, dtype=int)]


def _duration(container: Any, stream: Any, n: int) -> float | None:
    if stream.duration is not None and stream.time_base is not None:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration is not None and container.duration > 0:
        return container.duration / 1_000_000
    rate = stream.average_rate
    if rate is not None and float(rate) > 0 and n > 0:
        return n / float(rate)
    return None


def _count_packets(path: Path) -> int:
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sum(1 for p in container.demux(stream) if p.size > 0)


def _decode(path: Path, indices: list[int]) -> tuple[list[Image.Image], int, float | None]:
    """The frames at ``indices``, the number of frames decoded, and the duration."""
    import av

    wanted = set(indices)
    kept: list[Image.Image] = []
    count = 0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame-parallel decoding; frames still come in order
        for frame in container.decode(stream):
            if count in wanted:
                image = frame.to_image()
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise ValueError(f"frames of {image.width}x{image.height} pixels")
                kept.append(image.convert("RGB"))
            count += 1
        duration = _duration(container, stream, count)
    return kept, count, duration


def sample_video(path: Path, num_frames: int) -> Video:
    """``num_frames`` frames sampled uniformly from the video at ``path`` (see the module
    docstring). Raises :class:`VideoReadError` naming the file when PyAV is missing or the
    file has no decodable video stream."""
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    try:
        import av  # noqa: F401  (optional dependency)
    except ImportError:
        raise VideoReadError(f"{path}: decoding video needs PyAV (pip install av)") from None
    try:
        n = _count_packets(path)
        frames, count, duration = _decode(path, sample_indices(n, num_frames))
        if count != n:  # the container's count was wrong: sample again over the real count
            frames, count, duration = _decode(path, sample_indices(count, num_frames))
    except Exception as exc:  # PyAV raises its own error types on broken files
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise VideoReadError(f"{path}: cannot decode the video ({detail})") from None
    if not frames:
        raise VideoReadError(f"{path}: the video has no frames")
    if duration is None or duration <= 0:
        raise VideoReadError(f"{path}: the video's duration is unknown")
    return Video(tuple(frames), len(frames) / duration)
