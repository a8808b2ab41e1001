"""What every dataset reader shares: scene references, the skip report, the reader base class.

A reader turns one dataset, in its own on-disk layout, into :class:`~vst.scenes.Scene` objects
in the vst conventions (world Z up, metres, 9-DoF boxes with local Z up, OpenCV cameras, metric
z-depth; see :mod:`vst.scenes.model`). It works in two steps so that the leakage guard and a
resumed import can decide before any pixel is read:

1. :meth:`SceneReader.scene_refs` lists the scenes cheaply: for each a :class:`SceneRef` with the
   vst scene id (a safe directory name), the dataset and the dataset's own id of the scene (the
   id benchmark lists use, e.g. ``scene0011_00`` or ARKitScenes video ``41069025``).
2. :meth:`SceneReader.read_scene` reads one scene. Anything it cannot use (a frame without a pose,
   a missing or broken image, an invalid box) is skipped and recorded with a reason in the
   :class:`SourceReport`, never dropped silently; a scene that cannot be read at all raises
   :class:`~vst.scenes.errors.SceneFormatError` naming the file, and the importer records it.

Readers register under a format name in :mod:`vst.scenes.sources.formats`.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vst.scenes.files import resolve_inside
from vst.scenes.model import Scene

__all__ = [
    "ReaderOptions",
    "SceneReader",
    "SceneRef",
    "SkippedItem",
    "SourceReport",
    "safe_scene_id",
]

SkipKind = Literal["scene", "frame", "object", "file"]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_scene_id(native_id: str) -> str:
    """A directory-safe scene id: runs of characters other than letters, digits, ``.``, ``_``
    and ``-`` become ``__`` (``kv1/NYUdata/NYU0001`` -> ``kv1__NYUdata__NYU0001``)."""
    out = _UNSAFE.sub("__", str(native_id).strip()).strip("_") or "scene"
    return out if not out.startswith(".") else "_" + out


@dataclass(frozen=True)
class SceneRef:
    """One scene of a source, before it is read.

    ``id`` is the vst scene id (directory name), ``dataset`` the dataset it comes from
    (``scannet``, ``arkitscenes``, ``sunrgbd``, ...), ``native_id`` the dataset's own id of the
    scene as benchmark lists spell it (ARKitScenes video id, ScanNet scan id, SUN RGB-D image
    folder ``kv1/NYUdata/NYU0001``). ``locator`` is reader-private (a path, an index).
    ``benchmarks`` names evaluation benchmarks the reader itself knows the scene belongs to
    (e.g. an image of Omni3D's ``SUNRGBD_test.json``); the leakage guard adds them to what its
    registry says."""

    id: str
    dataset: str
    native_id: str
    locator: Any = None
    benchmarks: tuple[str, ...] = ()


@dataclass(frozen=True)
class SkippedItem:
    """Something a reader could not use: ``kind`` (scene / frame / object / file), ``item``
    naming it (``scene 41069025, frame 41069025_3250.120``), and the ``reason``."""

    kind: SkipKind
    item: str
    reason: str


@dataclass
class SourceReport:
    """What reading a source produced and what it skipped, with reasons."""

    format: str
    path: str
    scenes_read: list[str] = field(default_factory=list)
    skipped: list[SkippedItem] = field(default_factory=list)

    def skip(self, kind: SkipKind, item: str, reason: str) -> None:
        """Record one skipped item."""
        self.skipped.append(SkippedItem(kind, item, reason))

    def skipped_of(self, kind: SkipKind) -> list[SkippedItem]:
        return [s for s in self.skipped if s.kind == kind]

    def summary(self) -> str:
        """One line: scenes read and skipped items per kind."""
        counts: dict[str, int] = {}
        for s in self.skipped:
            counts[s.kind] = counts.get(s.kind, 0) + 1
        parts = [f"{n} {k}(s) skipped" for k, n in sorted(counts.items())]
        return f"{self.format} {self.path}: {len(self.scenes_read)} scene(s) read" + (
            "; " + ", ".join(parts) if parts else ""
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "path": self.path,
            "scenes_read": list(self.scenes_read),
            "skipped": [asdict(s) for s in self.skipped],
        }


class ReaderOptions(BaseModel):
    """Options every reader accepts (readers subclass this to add their own).

    ``frame_stride`` keeps every k-th frame of a sequence and ``max_frames`` caps the frames per
    scene (evenly spread over the kept ones); single-image formats ignore both.
    ``allow_outside_root`` lets annotation file paths leave the dataset folder (for datasets
    that store absolute paths); by default such files are skipped with the reason."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    frame_stride: int = Field(1, ge=1, description="Keep every k-th frame of a sequence.")
    max_frames: int | None = Field(None, ge=1, description="At most this many frames per scene.")
    allow_outside_root: bool = Field(
        False,
        description="Follow file paths in annotations that resolve outside the dataset root "
        "(absolute, '..' or symlinked); refused and skipped by default.",
    )


def format_option_errors(exc: Exception) -> str:
    """One ``field: message`` per problem of a pydantic ValidationError, joined by ``; ``
    (:func:`vst.scenes.sources.synthetic.config.format_validation_error` on one line)."""
    from vst.scenes.sources.synthetic.config import format_validation_error

    return format_validation_error(exc).replace("\n", "; ")


class SceneReader(ABC):
    """Base class of dataset readers. Subclasses set ``format`` (the name users type),
    ``description`` (one line), ``Options`` (a :class:`ReaderOptions` subclass), and implement
    :meth:`scene_refs` and :meth:`read_scene`.

    ``path`` is what the user points at (a dataset root, an annotation file); the constructor
    checks that it exists and validates the options, raising ``ValueError`` naming the bad
    option or ``FileNotFoundError`` naming the path."""

    format: ClassVar[str]
    description: ClassVar[str] = ""
    Options: ClassVar[type[ReaderOptions]] = ReaderOptions
    version: ClassVar[int] = 1
    """Bump when a reader change changes the scenes it makes (resumed imports rewrite them)."""

    def __init__(self, path: str | Path, options: dict[str, Any] | ReaderOptions | None = None):
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"{self.format}: {self.path} does not exist")
        if isinstance(options, ReaderOptions):
            self.options = options
        else:
            try:
                self.options = self.Options(**(options or {}))
            except ValidationError as exc:
                raise ValueError(
                    f"{self.format}: invalid option(s): {format_option_errors(exc)}"
                ) from None

    def new_report(self) -> SourceReport:
        return SourceReport(self.format, str(self.path))

    @abstractmethod
    def scene_refs(self, report: SourceReport) -> list[SceneRef]:
        """Every scene of the source, sorted by id, without reading pixels. Entries that
        cannot even be listed are recorded in ``report``."""

    @abstractmethod
    def read_scene(self, ref: SceneRef, report: SourceReport) -> Scene | None:
        """Read one scene (None if nothing of it is usable, with the reason in ``report``)."""

    def read_all(self, report: SourceReport | None = None) -> tuple[list[Scene], SourceReport]:
        """Every scene (convenience for small sources and tests)."""
        report = report or self.new_report()
        scenes = []
        for ref in self.scene_refs(report):
            scene = self.read_scene(ref, report)
            if scene is not None:
                scenes.append(scene)
                report.scenes_read.append(scene.id)
        return scenes, report

    # -- helpers for subclasses ---------------------------------------------------------------
    def inside(self, path: str | Path, root: Path) -> Path:
        """``path`` (relative to ``root``) checked to resolve inside the dataset ``root``;
        :class:`~vst.scenes.errors.UnreadableFileError` naming it otherwise (unless the
        ``allow_outside_root`` option is set)."""
        return resolve_inside(Path(path), root, self.options.allow_outside_root)

    def select_frames(self, items: Iterable[Any]) -> list[Any]:
        """Apply ``frame_stride`` then ``max_frames`` (evenly spaced, first and last kept)."""
        kept = list(items)[:: self.options.frame_stride]
        cap = self.options.max_frames
        if cap is None or len(kept) <= cap:
            return kept
        if cap == 1:
            return kept[:1]
        step = (len(kept) - 1) / (cap - 1)
        return [kept[round(i * step)] for i in range(cap)]
