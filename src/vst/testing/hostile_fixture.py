"""Hostile files for tests of the file-reading boundary: a decompression-bomb PNG and JSON
nested too deeply for the parser."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

__all__ = ["NESTED_JSON", "write_bomb_png"]

NESTED_JSON = "[" * 200_000 + "]" * 200_000
"""Valid JSON (400 kB) that ``json.loads`` cannot parse without a RecursionError."""


def write_bomb_png(path: Path, width: int = 100_000, height: int = 100_000) -> Path:
    """Write a PNG of a few dozen bytes whose header declares ``width`` x ``height`` RGB pixels
    (a decompression bomb: decoding it would need width * height * 3 bytes)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        crc = struct.pack(">I", zlib.crc32(tag + data))
        return struct.pack(">I", len(data)) + tag + data + crc

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    Path(path).write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    )
    return Path(path)
