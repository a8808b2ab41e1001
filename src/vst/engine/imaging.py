"""Image sizes as Qwen2.5-VL sees them, and deterministic image encoding for shards.

Qwen2.5-VL's processor resizes every image so both sides are multiples of 28 (14 px patches
merged 2x2) and the pixel count lies in ``[min_pixels, max_pixels]``. The engine resizes images
to exactly that size itself, so the processor leaves them as they are and every 2D coordinate a
sample states (absolute pixels, as Qwen2.5-VL grounds) refers to the pixels the model gets.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image

PATCH_FACTOR = 28
DEFAULT_MIN_PIXELS = 56 * 56
DEFAULT_MAX_PIXELS = 1280 * 28 * 28


def smart_resize(
    height: int,
    width: int,
    factor: int = PATCH_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> tuple[int, int]:
    """``(height, width)`` the Qwen2.5-VL processor resizes an image to: each side rounded to a
    multiple of ``factor``, then scaled (keeping the aspect ratio) into the pixel budget.

    Re-implemented (same rule as the processor's ``smart_resize``) so the engine needs no
    transformers import to size images.
    """
    if height < 1 or width < 1:
        raise ValueError(f"image size must be positive, got {width}x{height}")
    if max(height, width) / min(height, width) > 200:
        raise ValueError(f"aspect ratio of {width}x{height} exceeds 200")
    h_bar = max(factor, round(height / factor) * factor)
    w_bar = max(factor, round(width / factor) * factor)
    if h_bar * w_bar > max_pixels:
        beta = math.sqrt((height * width) / max_pixels)
        h_bar = max(factor, math.floor(height / beta / factor) * factor)
        w_bar = max(factor, math.floor(width / beta / factor) * factor)
    elif h_bar * w_bar < min_pixels:
        beta = math.sqrt(min_pixels / (height * width))
        h_bar = math.ceil(height * beta / factor) * factor
        w_bar = math.ceil(width * beta / factor) * factor
    return h_bar, w_bar


def to_pil(image: Image.Image | np.ndarray) -> Image.Image:
    """An RGB PIL image from a PIL image or a uint8 (H, W, 3) array."""
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3:
        raise ValueError(f"expected a uint8 (H, W, 3) RGB array, got {arr.dtype} {arr.shape}")
    return Image.fromarray(arr, "RGB")


def encode_image(image: Image.Image, fmt: str = "JPEG", quality: int = 95) -> bytes:
    """Encode deterministically (no metadata, fixed settings): JPEG (default) or PNG."""
    buf = io.BytesIO()
    image = to_pil(image)
    if fmt.upper() in ("JPEG", "JPG"):
        image.save(
            buf, format="JPEG", quality=quality, optimize=False, progressive=False, subsampling=0
        )
    elif fmt.upper() == "PNG":
        image.save(buf, format="PNG", compress_level=6)
    else:
        raise ValueError(f"unsupported image format {fmt!r} (JPEG or PNG)")
    return buf.getvalue()


def decode_image(data: bytes) -> Image.Image:
    """RGB PIL image from encoded bytes."""
    with Image.open(io.BytesIO(data)) as im:
        return im.convert("RGB")
