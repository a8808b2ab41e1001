"""Visual prompts: coloured boxes and labelled points drawn onto images (Pillow).

Marks come from a palette of named colours, so the text can say "the orange box" or
"point A". Marks never hide what they refer to: boxes are outlines only (the inside stays
visible), their label tag sits outside the box (above it, or below when there is no room), and
points are small rings with a dot in the centre whose label sits beside them.

Coordinates are pixels of the image being drawn on (OpenCV convention, pixel centres at
integers); boxes are ``(x1, y1, x2, y2)`` inclusive.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from PIL import Image, ImageDraw, ImageFont

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (230, 25, 45),
    "green": (40, 180, 60),
    "blue": (30, 90, 230),
    "yellow": (255, 215, 0),
    "orange": (255, 130, 20),
    "purple": (150, 50, 190),
    "cyan": (20, 200, 220),
    "magenta": (240, 50, 230),
    "white": (255, 255, 255),
    "black": (0, 0, 0),
}
"""Named mark colours, distinct from each other; the names are what prompts say."""

COLOR_NAMES: tuple[str, ...] = tuple(PALETTE)


@dataclass(frozen=True)
class BoxMark:
    """A box outline ``(x1, y1, x2, y2)`` in colour ``color`` (a :data:`PALETTE` name) with an
    optional text tag."""

    box: tuple[float, float, float, float]
    color: str
    label: str | None = None


@dataclass(frozen=True)
class PointMark:
    """A point ``(x, y)`` drawn as a ring in colour ``color`` with an optional text tag."""

    xy: tuple[float, float]
    color: str
    label: str | None = None


@lru_cache(maxsize=8)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType sizes
        return ImageFont.load_default()


@lru_cache(maxsize=4096)
def _text_box(text: str, size: int) -> tuple[int, int, int, int]:
    """``textbbox`` of ``text`` at font ``size``, origin (0, 0) (cached: labels repeat)."""
    return ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((0, 0), text, font=_font(size))


def _rgb(color: str) -> tuple[int, int, int]:
    if color not in PALETTE:
        raise ValueError(f"unknown mark colour {color!r}; choose from {', '.join(PALETTE)}")
    return PALETTE[color]


def _text_color(fill: tuple[int, int, int]) -> tuple[int, int, int]:
    luminance = 0.299 * fill[0] + 0.587 * fill[1] + 0.114 * fill[2]
    return (0, 0, 0) if luminance > 140 else (255, 255, 255)


@lru_cache(maxsize=4096)
def _tag_image(text: str, fill: tuple[int, int, int], font_size: int) -> Image.Image:
    """A label tag: ``text`` on a filled rectangle (cached: the same tags recur on thousands of
    images, and pasting a small bitmap is far cheaper than rendering glyphs each time)."""
    left, top, right, bottom = _text_box(text, font_size)
    tag = Image.new("RGB", (right - left + 7, bottom - top + 5), fill)
    ImageDraw.Draw(tag).text(
        (3 - left, 2 - top), text, fill=_text_color(fill), font=_font(font_size)
    )
    return tag


def _tag(
    img: Image.Image,
    xy: tuple[float, float],
    text: str,
    fill: tuple[int, int, int],
    font_size: int,
) -> None:
    """Paste a filled label tag with its top-left corner at ``xy``, kept inside the image."""
    tag = _tag_image(text, fill, font_size)
    x = min(max(0, round(xy[0])), img.size[0] - tag.size[0])
    y = min(max(0, round(xy[1])), img.size[1] - tag.size[1])
    img.paste(tag, (max(0, x), max(0, y)))


def mark_sizes(image_size: tuple[int, int]) -> tuple[int, int, int]:
    """``(line_width, point_radius, font_size)`` scaled to the image (about 1/320 of the
    shorter side for lines)."""
    short = min(image_size)
    return max(2, round(short / 240)), max(4, round(short / 80)), max(11, round(short / 28))


def draw_marks(
    image: Image.Image, marks: Sequence[BoxMark | PointMark], copy: bool = True
) -> Image.Image:
    """Draw ``marks`` onto ``image`` (a copy unless ``copy=False``) and return it."""
    img = image.copy() if copy else image
    img = img.convert("RGB") if img.mode != "RGB" else img
    draw = ImageDraw.Draw(img)
    line, radius, font_size = mark_sizes(img.size)
    for mark in marks:
        fill = _rgb(mark.color)
        if isinstance(mark, BoxMark):
            x1, y1, x2, y2 = mark.box
            draw.rectangle((x1, y1, x2, y2), outline=fill, width=line)
            if mark.label:
                _, t, _, b = _text_box(mark.label, font_size)
                tag_h = b - t + 4
                above = y1 - tag_h - 1
                _tag(img, (x1, above if above >= 0 else y2 + 2), mark.label, fill, font_size)
        elif isinstance(mark, PointMark):
            x, y = mark.xy
            contrast = _text_color(fill)
            draw.ellipse(
                (x - radius, y - radius, x + radius, y + radius), outline=contrast, width=line + 2
            )
            draw.ellipse((x - radius, y - radius, x + radius, y + radius), outline=fill, width=line)
            draw.ellipse((x - 1, y - 1, x + 1, y + 1), fill=fill)
            if mark.label:
                # right of the point; flipped to its left where the image edge would push the
                # tag back over the point
                left, _, right, _ = _text_box(mark.label, font_size)
                tag_w = right - left + 6
                tx = x + radius + 2
                if tx + tag_w > img.size[0]:
                    tx = x - radius - 2 - tag_w
                _tag(img, (tx, y - radius - 2), mark.label, fill, font_size)
        else:
            raise TypeError(f"not a mark: {mark!r}")
    return img


def pick_colors(
    rng: np.random.Generator, n: int, exclude: Sequence[str] = ("white", "black")
) -> list[str]:
    """``n`` distinct palette colour names, chosen with ``rng`` (white/black left out by
    default: they vanish on bright walls or dark furniture)."""
    names = [c for c in COLOR_NAMES if c not in exclude]
    if n > len(names):
        raise ValueError(f"asked for {n} distinct colours, the palette has {len(names)}")
    return [names[i] for i in rng.choice(len(names), size=n, replace=False)]
