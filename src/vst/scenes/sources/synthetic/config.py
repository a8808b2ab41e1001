"""Configuration of the synthetic source (pydantic; bad options fail with a clear message)."""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from vst.scenes.sources.synthetic.catalog import CATEGORIES, VARIANTS
from vst.scenes.sources.synthetic.layout import ROOM_TYPES

MIN_SIDE, MAX_SIDE = 2.5, 20.0
MIN_HEIGHT, MAX_HEIGHT = 2.1, 6.0
L_MIN_SIDE = 3.6
"""An L-shaped room needs a bounding side of at least this (two 1.8 m arms)."""


class SynthConfig(BaseModel):
    """Options of ``vst scenes synth``. Every random choice of scene ``k`` flows from
    ``numpy.random.SeedSequence([seed, k])``, so scene ``k`` is the same whatever
    ``num_scenes`` is. Lengths in metres, angles in degrees."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    num_scenes: int = Field(1, ge=1, description="Number of scenes (>= 1).")
    seed: int = Field(0, ge=0, description="Seed of every random choice (>= 0).")
    start_index: int = Field(0, ge=0, description="Index of the first scene.")
    width: int = Field(640, ge=16, le=4096, description="Image width in pixels.")
    height: int = Field(480, ge=16, le=4096, description="Image height in pixels.")
    vfov: tuple[float, float] = Field((45.0, 60.0), description="Vertical FoV range, degrees.")
    single_views: int = Field(2, ge=0, le=64, description="Single views per scene.")
    multiview_sets: int = Field(1, ge=0, le=32, description="Multi-view sets per scene.")
    views_per_set: int = Field(2, ge=2, le=8, description="Views in each multi-view set.")
    min_shared: int = Field(1, ge=0, description="Objects two consecutive views must share.")
    min_unique: int = Field(1, ge=0, description="Objects seen by only one of the two views.")
    video_frames: int = Field(16, ge=0, le=256, description="Frames of the video (0: none).")
    video_fps: float = Field(2.0, gt=0, description="Frame rate of the video timestamps.")
    min_visible: int = Field(3, ge=0, description="Objects a single view should show.")
    room_side: tuple[float, float] = Field((3.0, 9.0), description="Room side range, metres.")
    room_height: tuple[float, float] = Field((2.4, 3.2), description="Ceiling height range.")
    room_shape: Literal["any", "rect", "l"] = "any"
    room_types: list[str] | None = Field(None, description="Room types to draw from.")
    categories: list[str] | None = Field(None, description="Only these categories.")
    shadows: bool = True
    split: str = "train"

    @field_validator("vfov")
    @classmethod
    def _vfov(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if not (10.0 <= lo <= hi <= 120.0):
            raise ValueError(
                f"vertical FoV range must satisfy 10 <= min <= max <= 120 degrees, got {lo}..{hi}"
            )
        return v

    @field_validator("room_side")
    @classmethod
    def _side(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if lo > hi:
            raise ValueError(f"impossible room: side range {lo}..{hi} m has min > max")
        if lo < MIN_SIDE or hi > MAX_SIDE:
            raise ValueError(
                f"impossible room: sides must lie in {MIN_SIDE}..{MAX_SIDE} m "
                f"(furniture and a camera must fit), got {lo}..{hi}"
            )
        return v

    @field_validator("room_height")
    @classmethod
    def _height(cls, v: tuple[float, float]) -> tuple[float, float]:
        lo, hi = v
        if lo > hi:
            raise ValueError(f"impossible room: height range {lo}..{hi} m has min > max")
        if lo < MIN_HEIGHT or hi > MAX_HEIGHT:
            raise ValueError(
                f"impossible room: ceiling height must lie in {MIN_HEIGHT}.."
                f"{MAX_HEIGHT} m (doors are 2.1 m high), got {lo}..{hi}"
            )
        return v

    @field_validator("room_types")
    @classmethod
    def _room_types(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("room_types is empty; omit it to use every room type")
        bad = [t for t in v if t not in ROOM_TYPES]
        if bad:
            raise ValueError(f"unknown room type(s) {bad}; known: {', '.join(sorted(ROOM_TYPES))}")
        return v

    @field_validator("categories")
    @classmethod
    def _categories(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if not v:
            raise ValueError("categories is empty; omit it to use every category")
        bad = [c for c in v if c not in CATEGORIES]
        if bad:
            raise ValueError(
                f"unknown category {bad[0]!r}" if len(bad) == 1 else f"unknown categories {bad}"
            )
        for c in v:
            variants = [x for x in VARIANTS if x.category == c]
            if all(x.placement == "surface" for x in variants):
                sup = sorted({s for x in variants for s in x.supporters})
                if not set(sup) & set(v):
                    raise ValueError(
                        f"category {c!r} only stands on {', '.join(sup)}; add one "
                        f"of them to the categories"
                    )
        return v

    @model_validator(mode="after")
    def _whole(self) -> SynthConfig:
        if self.room_shape == "l" and self.room_side[1] < L_MIN_SIDE:
            raise ValueError(
                f"impossible room: L-shaped rooms need sides up to at least "
                f"{L_MIN_SIDE} m, got room_side max {self.room_side[1]}"
            )
        if self.single_views + self.multiview_sets + self.video_frames == 0:
            raise ValueError(
                "nothing to render: single_views, multiview_sets and video_frames are all 0"
            )
        if self.video_frames == 1:
            raise ValueError("video_frames must be 0 (no video) or >= 2")
        return self

    def scene_hash(self) -> str:
        """Hash of the options that shape a scene (not num_scenes / start_index)."""
        d = self.model_dump(exclude={"num_scenes", "start_index"})
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def format_validation_error(exc: Exception) -> str:
    """One line per problem of a pydantic ValidationError (field: message)."""
    errors = getattr(exc, "errors", None)
    if errors is None:
        return str(exc)
    lines = []
    for err in errors():
        loc = ".".join(str(x) for x in err.get("loc", ())) or "options"
        msg = str(err.get("msg", "")).removeprefix("Value error, ")
        lines.append(f"{loc}: {msg}")
    return "\n".join(lines)
