"""Labels of relative camera motion (used by ``mi_camera_motion`` and ``mi_scene_caption``).

The motion itself (:class:`~vst.geometry.motion.Motion`: pan / tilt / roll against gravity,
translation on camera 1's levelled axes, x right, y down, z forward) comes from
:mod:`vst.geometry.motion`, the engine's one gravity-levelled decomposition. This module
turns it into words: signs with minimum sizes and dominance rules, option texts and direction
phrases.
"""

from __future__ import annotations

import math

from vst.geometry.motion import ROTATION_AXES

TRANSLATION_AXES: tuple[str, ...] = ("x", "y", "z")

ROTATION_WORDS: dict[str, tuple[str, str]] = {
    "pan": ("left", "right"),
    "tilt": ("down", "up"),
    "roll": ("counter-clockwise", "clockwise"),
}
"""``(negative, positive)`` one-word answers per rotation axis."""

TRANSLATION_WORDS: dict[str, tuple[str, str]] = {
    "x": ("left", "right"),
    "y": ("up", "down"),
    "z": ("backward", "forward"),
}
"""``(negative, positive)`` one-word answers per translation axis (camera axes: +Y is down)."""

ROTATION_PHRASES: dict[str, tuple[str, str]] = {
    "pan": ("panning to the left", "panning to the right"),
    "tilt": ("tilting downward", "tilting upward"),
    "roll": ("rolling counter-clockwise", "rolling clockwise"),
}
"""``(negative, positive)`` option texts per rotation axis."""

TRANSLATION_ADVERBS: dict[str, tuple[str, str]] = {
    "x": ("leftward", "rightward"),
    "y": ("upward", "downward"),
    "z": ("backward", "forward"),
}
"""``(negative, positive)`` direction words per translation axis, joined into option texts."""


def round_half_up(value: float, decimals: int = 0) -> float:
    """``value`` rounded half away from zero to ``decimals`` places (not banker's rounding)."""
    scale = 10.0**decimals
    return math.copysign(math.floor(abs(value) * scale + 0.5) / scale, value)


def rotation_sign(
    angles: tuple[float, ...] | None, axis: str, min_angle: float, dominance: float
) -> int:
    """+1 / -1 when rotation ``axis`` is clear: at least ``min_angle`` degrees and every other
    axis at most ``dominance`` times it; 0 otherwise (also when ``angles`` is None)."""
    if angles is None:
        return 0
    k = ROTATION_AXES.index(axis)
    a = abs(angles[k])
    if a < min_angle:
        return 0
    if any(abs(v) > dominance * a for j, v in enumerate(angles) if j != k):
        return 0
    return 1 if angles[k] > 0 else -1


def translation_signs(
    t: tuple[float, ...], min_m: float, include_rel: float, still_m: float, still_rel: float
) -> tuple[int | None, ...]:
    """Per axis: +1 / -1 when the component is clear (>= ``min_m`` and >= ``include_rel`` of the
    largest component), 0 when it is still (<= ``still_m`` or <= ``still_rel`` of the largest),
    None in between (ambiguous)."""
    main = max(abs(v) for v in t)
    out: list[int | None] = []
    for v in t:
        a = abs(v)
        if a >= min_m and a >= include_rel * main:
            out.append(1 if v > 0 else -1)
        elif a <= still_m or a <= still_rel * main:
            out.append(0)
        else:
            out.append(None)
    return tuple(out)


def direction_text(signs: tuple[int, ...]) -> str:
    """``moving rightward and forward`` from per-axis signs (x, y, z order)."""
    words = [
        TRANSLATION_ADVERBS[axis][1 if s > 0 else 0]
        for axis, s in zip(TRANSLATION_AXES, signs, strict=True)
        if s
    ]
    if not words:
        raise ValueError("no motion to describe")
    if len(words) == 1:
        return f"moving {words[0]}"
    return "moving " + ", ".join(words[:-1]) + " and " + words[-1]


def all_directions(max_axes: int = 2) -> list[tuple[int, int, int]]:
    """Every sign triple with 1..``max_axes`` non-zero axes, in a fixed order."""
    out = []
    for sx in (0, 1, -1):
        for sy in (0, 1, -1):
            for sz in (0, 1, -1):
                n = (sx != 0) + (sy != 0) + (sz != 0)
                if 1 <= n <= max_axes:
                    out.append((sx, sy, sz))
    return out
