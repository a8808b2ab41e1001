"""Pictures at the size the model sees them, resized once, by vst, the way the engine does.

Qwen2.5-VL needs both sides of a picture to be multiples of 28 (14 px patches merged 2 x 2) and
its pixel count within ``[min_pixels, max_pixels]``. vst resizes every picture to that size
itself (:func:`vst.engine.imaging.smart_resize`, bicubic, as the engine stores its samples), so
the processors downstream (transformers with or without torchvision, vLLM, a served model) get
pictures that need no resizing and all produce the same patches. A picture the engine stored is
already at its size and passes through untouched.

The limits default to the engine's (``min_pixels`` 56 x 56, ``max_pixels`` 1280 x 28 x 28);
video frames use the same limits per frame, and every frame of a video takes the first frame's
size.
"""

from __future__ import annotations

from dataclasses import dataclass

from PIL import Image

from vst.engine.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, PATCH_FACTOR, smart_resize
from vst.models.requests import Request, Video

__all__ = ["PixelLimits", "fit_image", "fit_request", "fit_video"]


@dataclass(frozen=True)
class PixelLimits:
    """Pixel budget per image and per video frame (pixels, both sides multiples of 28)."""

    min_pixels: int = DEFAULT_MIN_PIXELS
    max_pixels: int = DEFAULT_MAX_PIXELS
    video_min_pixels: int = DEFAULT_MIN_PIXELS
    video_max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        for lo, hi in (("min_pixels", "max_pixels"), ("video_min_pixels", "video_max_pixels")):
            a, b = getattr(self, lo), getattr(self, hi)
            if a < PATCH_FACTOR**2 or b < a:
                raise ValueError(f"need {PATCH_FACTOR**2} <= {lo} ({a}) <= {hi} ({b})")

    def key(self) -> dict[str, int]:
        return {
            "min_pixels": self.min_pixels,
            "max_pixels": self.max_pixels,
            "video_min_pixels": self.video_min_pixels,
            "video_max_pixels": self.video_max_pixels,
        }


def _resized(image: Image.Image, size: tuple[int, int]) -> Image.Image:
    image = image.convert("RGB") if image.mode != "RGB" else image
    if image.size != size:
        image = image.resize(size, Image.Resampling.BICUBIC)
    return image


def fit_image(image: Image.Image, min_pixels: int, max_pixels: int) -> Image.Image:
    """``image`` in RGB at its model size (the same object if it already is one)."""
    h, w = smart_resize(image.height, image.width, PATCH_FACTOR, min_pixels, max_pixels)
    return _resized(image, (w, h))


def fit_video(video: Video, min_pixels: int, max_pixels: int) -> Video:
    """``video`` with every frame in RGB at the model size of its first frame."""
    first = video.frames[0]
    h, w = smart_resize(first.height, first.width, PATCH_FACTOR, min_pixels, max_pixels)
    frames = tuple(_resized(f, (w, h)) for f in video.frames)
    if all(a is b for a, b in zip(frames, video.frames, strict=True)):
        return video
    return Video(frames, video.fps)


def fit_request(request: Request, limits: PixelLimits) -> Request:
    """``request`` with its images and video frames at their model sizes (the same object when
    nothing needs resizing)."""
    images = tuple(fit_image(im, limits.min_pixels, limits.max_pixels) for im in request.images)
    videos = tuple(
        fit_video(v, limits.video_min_pixels, limits.video_max_pixels) for v in request.videos
    )
    same = all(a is b for a, b in zip(images, request.images, strict=True)) and all(
        a is b for a, b in zip(videos, request.videos, strict=True)
    )
    if same:
        return request
    return Request(request.messages, images, videos, id=request.id)
