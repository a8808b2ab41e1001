"""Fast path of the 3D box parser for answers in the engine's own layout; exact or nothing.

:func:`canonical_boxes3d` reads, in one compiled pass over the bytes, an ASCII answer that is
exactly a JSON list of ``{"bbox_3d": [9 numbers], "label": "..."}`` objects (keys in that order,
JSON whitespace anywhere between tokens), bare or inside one ```json (or untagged) fence with
nothing but whitespace around it: the text :func:`vst.geometry.text.box3d_to_text` writes and a
trained model copies. Anything else gives ``None`` and the caller takes the general path
(:func:`vst.rewards.parsing.parse_boxes3d`), so on every text it accepts the result is the
general path's, bit for bit:

* numbers: JSON integers or decimals (no exponent, no leading zeros) of at most 15 digits; the
  value is ``digits / 10**k`` (both exact in float64, so the one division is correctly rounded,
  as ``float(text)`` is); an integer ``-0`` is ``0.0``, as JSON reads it as the int 0. Angles
  are multiplied by :data:`~vst.geometry.text.ANGLE_SCALE` as the general path does.
* labels: printable ASCII without ``"``, backslash or backtick (so no escapes to decode and no
  fence inside), with at least one non-space character (the general path drops blank labels).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from vst.geometry.text import ANGLE_SCALE

__all__ = ["canonical_boxes3d"]

_MAX_DIGITS = 15
"""Most digits of a number read here (10**15 < 2**53: the digits are an exact float64)."""

_POW10 = np.array([10.0**k for k in range(_MAX_DIGITS + 1)])

_BBOX_KEY = np.frombuffer(b'"bbox_3d"', dtype=np.uint8).copy()
_LABEL_KEY = np.frombuffer(b'"label"', dtype=np.uint8).copy()
_JSON_TAG = np.frombuffer(b"json", dtype=np.uint8).copy()


@njit(cache=True)
def _ws(buf, pos):  # pragma: no cover - compiled
    """First position at or after ``pos`` that is not JSON whitespace."""
    n = buf.shape[0]
    while pos < n and (buf[pos] == 32 or buf[pos] == 10 or buf[pos] == 9 or buf[pos] == 13):
        pos += 1
    return pos


@njit(cache=True)
def _word(buf, pos, word):  # pragma: no cover - compiled
    """Position after ``word`` when it starts at ``pos``, else -1."""
    if pos + word.shape[0] > buf.shape[0]:
        return -1
    for k in range(word.shape[0]):
        if buf[pos + k] != word[k]:
            return -1
    return pos + word.shape[0]


@njit(cache=True)
def _char(buf, pos, ch):  # pragma: no cover - compiled
    """Position after ``ch`` (whitespace before it skipped), else -1."""
    pos = _ws(buf, pos)
    if pos < buf.shape[0] and buf[pos] == ch:
        return pos + 1
    return -1


@njit(cache=True)
def _number(buf, pos, out, row, col, pow10):  # pragma: no cover - compiled
    """Read a number at ``pos`` into ``out[row, col]``; the position after it, or -1."""
    n = buf.shape[0]
    neg = pos < n and buf[pos] == 45  # '-'
    if neg:
        pos += 1
    if pos >= n or buf[pos] < 48 or buf[pos] > 57:
        return -1
    digits = 0
    w = 0
    if buf[pos] == 48:  # a leading 0 stands alone
        pos += 1
        digits = 1
        if pos < n and 48 <= buf[pos] <= 57:
            return -1
    else:
        while pos < n and 48 <= buf[pos] <= 57:
            w = w * 10 + (buf[pos] - 48)
            digits += 1
            pos += 1
            if digits > _MAX_DIGITS:
                return -1
    k = 0
    if pos < n and buf[pos] == 46:  # '.'
        pos += 1
        while pos < n and 48 <= buf[pos] <= 57:
            w = w * 10 + (buf[pos] - 48)
            digits += 1
            k += 1
            pos += 1
            if digits > _MAX_DIGITS:
                return -1
        if k == 0:
            return -1
    if pos < n and (buf[pos] == 101 or buf[pos] == 69):  # exponent: not this path's
        return -1
    if k == 0:
        v = float(w)  # a JSON int: "-0" is 0
        if neg and w != 0:
            v = -v
    else:
        v = float(w) / pow10[k]
        if neg:
            v = -v
    out[row, col] = v
    return pos


@njit(cache=True)
def _entry(buf, pos, out, spans, row, pow10, bbox_key, label_key, scale):  # pragma: no cover
    """Read one ``{"bbox_3d": [...], "label": "..."}`` at ``pos``; the position after it, or
    -1. The label's byte span goes to ``spans[row]``."""
    pos = _char(buf, pos, 123)  # '{'
    if pos < 0:
        return -1
    pos = _word(buf, _ws(buf, pos), bbox_key)
    if pos < 0:
        return -1
    pos = _char(buf, pos, 58)  # ':'
    if pos < 0:
        return -1
    pos = _char(buf, pos, 91)  # '['
    if pos < 0:
        return -1
    for col in range(9):
        if col > 0:
            pos = _char(buf, pos, 44)  # ','
            if pos < 0:
                return -1
        pos = _number(buf, _ws(buf, pos), out, row, col, pow10)
        if pos < 0:
            return -1
    for col in range(6, 9):
        out[row, col] *= scale
    pos = _char(buf, pos, 93)  # ']'
    if pos < 0:
        return -1
    pos = _char(buf, pos, 44)  # ','
    if pos < 0:
        return -1
    pos = _word(buf, _ws(buf, pos), label_key)
    if pos < 0:
        return -1
    pos = _char(buf, pos, 58)  # ':'
    if pos < 0:
        return -1
    pos = _char(buf, pos, 34)  # '"'
    if pos < 0:
        return -1
    start = pos
    blank = True
    n = buf.shape[0]
    while pos < n and buf[pos] != 34:
        c = buf[pos]
        if c < 32 or c > 126 or c == 92 or c == 96:  # control, non-ASCII, '\', '`'
            return -1
        if c != 32:
            blank = False
        pos += 1
    if pos >= n or blank:
        return -1
    spans[row, 0] = start
    spans[row, 1] = pos
    return _char(buf, pos + 1, 125)  # '}'


@njit(cache=True)
def _scan(buf, pow10, bbox_key, label_key, json_tag, scale):  # pragma: no cover - compiled
    """``(count, values, label spans)`` of a canonical answer; count -1 when it is not one."""
    cap = 0
    for c in buf:
        if c == 123:  # '{': at most one entry each
            cap += 1
    out = np.empty((cap, 9))
    spans = np.empty((cap, 2), dtype=np.int64)
    n = buf.shape[0]
    pos = _ws(buf, 0)
    fenced = pos + 3 <= n and buf[pos] == 96 and buf[pos + 1] == 96 and buf[pos + 2] == 96
    if fenced:
        pos += 3
        after_tag = _word(buf, pos, json_tag)
        if after_tag >= 0:
            pos = after_tag
        if pos >= n or buf[pos] != 10:  # the tag line ends right after "json" (or the fence)
            return -1, out, spans
        pos += 1
    pos = _char(buf, pos, 91)  # '['
    if pos < 0:
        return -1, out, spans
    rows = 0
    after = _char(buf, pos, 93)  # ']': the empty list
    if after >= 0:
        pos = after
    else:
        while True:
            if rows >= cap:
                return -1, out, spans
            pos = _entry(buf, pos, out, spans, rows, pow10, bbox_key, label_key, scale)
            if pos < 0:
                return -1, out, spans
            rows += 1
            after = _char(buf, pos, 93)
            if after >= 0:
                pos = after
                break
            pos = _char(buf, pos, 44)
            if pos < 0:
                return -1, out, spans
    pos = _ws(buf, pos)
    if fenced:
        if pos + 3 > n or buf[pos] != 96 or buf[pos + 1] != 96 or buf[pos + 2] != 96:
            return -1, out, spans
        pos = _ws(buf, pos + 3)
    if pos != n:
        return -1, out, spans
    return rows, out, spans


def canonical_boxes3d(text: str) -> tuple[np.ndarray, list[str]] | None:
    """Boxes ``(N, 9)`` (DEGREES) and labels of an answer in the engine's layout (see the
    module docstring), exactly as :func:`vst.rewards.parsing.parse_boxes3d` reads it; ``None``
    for any other text."""
    if not text.isascii():
        return None
    rows, out, spans = _scan(
        np.frombuffer(text.encode("ascii"), dtype=np.uint8),
        _POW10,
        _BBOX_KEY,
        _LABEL_KEY,
        _JSON_TAG,
        ANGLE_SCALE,
    )
    if rows < 0:
        return None
    if rows == 0:
        return np.zeros((0, 9)), []
    return out[:rows], [text[s:e] for s, e in spans[:rows].tolist()]
