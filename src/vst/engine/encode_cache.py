"""Encode each distinct image once: a cache of encoded JPEG/PNG bytes keyed by pixel content.

The samples of one scene share pictures: every sample of a video task carries the same clip
(8-16 frames), and single-image tasks reuse the same model-size frame. The runner keeps one
:class:`EncodedImageCache` per worker, cleared at every scene, and encodes a sample's images
through it, so a picture seen again is not encoded again.

Key: ``(format, quality, mode, width, height, digest of the pixels)``, the digest being the
128-bit XXH3 hash of the image's pixel memory (:func:`pixel_digest`): two images share bytes
only when their pixels are equal (a collision of distinct pixels has odds of about 2**-128 per
pair); marks drawn on a frame, another size, format or quality all give another key. The cache
only changes how often the encoder runs, never its output: bytes served from it are the bytes
:func:`vst.engine.imaging.encode_image` returns for that image.
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pyarrow as pa
import xxhash
from PIL import Image

from vst.engine.imaging import encode_image, to_pil

DEFAULT_MAX_BYTES = 256 * 1024 * 1024
"""Encoded bytes the cache holds at most (least recently used entries leave first)."""


def pixel_digest(image: Image.Image) -> bytes:
    """16-byte XXH3-128 digest of ``image``'s pixels.

    An RGB image is read without a copy through Pillow's Arrow export (Pillow stores it as 4
    bytes per pixel, one of them padding; the digest covers all four: padding that differs can
    only cost a cache hit, never share bytes between different pixels); other modes, older
    Pillow versions and images not held in one block are read with ``tobytes()``.
    """
    if image.mode == "RGB":
        try:
            arr = pa.array(image)
        except (AttributeError, TypeError, ValueError, pa.ArrowException):
            arr = None
        if arr is not None and arr.offset == 0:
            buf = arr.buffers()[-1]
            if buf is not None and buf.size == image.width * image.height * 4:
                return xxhash.xxh3_128_digest(memoryview(buf))
    return xxhash.xxh3_128_digest(image.tobytes())


class EncodedImageCache:
    """Encoded bytes by ``(format, quality, pixels)``; :meth:`encode` is a drop-in for
    :func:`vst.engine.imaging.encode_image`. Not thread-safe (one per worker)."""

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES):
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[tuple, bytes] = OrderedDict()
        self._size = 0
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def nbytes(self) -> int:
        """Encoded bytes held."""
        return self._size

    def encode(
        self, image: Image.Image | np.ndarray, fmt: str = "JPEG", quality: int = 95
    ) -> bytes:
        """``encode_image(image, fmt, quality)``, from the cache when these pixels were encoded
        with these settings before."""
        pil = to_pil(image)
        kind = fmt.upper()
        key = (
            "JPEG" if kind == "JPG" else kind,
            quality if kind in ("JPEG", "JPG") else 0,
            pil.mode,
            pil.size,
            pixel_digest(pil),
        )
        data = self._entries.get(key)
        if data is not None:
            self.hits += 1
            self._entries.move_to_end(key)
            return data
        data = encode_image(pil, fmt, quality)
        self.misses += 1
        if len(data) <= self.max_bytes:
            self._entries[key] = data
            self._size += len(data)
            while self._size > self.max_bytes:
                _, old = self._entries.popitem(last=False)
                self._size -= len(old)
        return data

    def clear(self) -> None:
        """Forget every entry (the runner calls this at each scene); counters are kept."""
        self._entries.clear()
        self._size = 0
