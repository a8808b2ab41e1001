"""3D detection at inference: a user's image asked about as the engine's ``si_det3d`` asks.

**The request.** :func:`detection_frame` FoV-unifies the image with the engine's own code
(:func:`vst.engine.fov.unify_camera` to the unified focal, 696.3 px by default, then
:func:`~vst.engine.fov.model_sized` to Qwen2.5-VL's size, then
:func:`~vst.engine.fov.unified_image`: one bicubic resize), and :func:`detection_request` asks
for each category with the engine's first-turn text
(:func:`vst.engine.tasks.single_image.det3d.first_turn_text`: the camera preamble stating the
original camera's hfov / vfov and the model image's width / height, the output instruction and
the request), one single-turn request per category, as the engine's single-turn samples do.

**The camera.** Give ``intrinsics`` (fx, fy, cx, cy in pixels of the image as passed), or
``hfov`` (degrees; square pixels, principal point at the image centre), or neither: then the
camera is assumed to have :data:`ASSUMED_HFOV` degrees of horizontal FoV (the VST release's
unified camera, 960 px at :data:`~vst.geometry.cameras.UNIFIED_FOCAL`), with square pixels and a
centred principal point, and :attr:`DetectionFrame.assumed_intrinsics` is True.

**The answer.** :func:`parse_detections` reads the model's text with
:func:`vst.rewards.parsing.parse_boxes3d` (lenient: garbage gives no boxes, never an exception)
after dropping a ``<think>`` block. Each box is a 9-DoF box in the camera frame (X right, Y
down, Z forward, metres; :mod:`vst.geometry.boxes`): the model writes angles as degrees / 180,
:class:`Detection` keeps those 9 numbers as given (``given``) and the box in vst's convention
(``box``: angles in degrees; :attr:`Detection.angles_rad` in radians).

**Original vs unified camera.** FoV unification resizes the IMAGE (per axis, by
``unified.scale_x`` / ``scale_y``); it does not move or turn the camera: its centre and X/Y/Z
axes stay, and so does every 3D point. So a metric box means the same in the original camera
as in the unified one, and ``to_original`` changes no 3D number. It changes the 2D side only:
``corners_2d`` are projected with the original intrinsics (pixels of the original image)
instead of the exact intrinsics of the model's image (``unified.exact_intrinsics``: the source
camera scaled to the model size, ``fx * scale_x``, ``(cx + 0.5) * scale_x - 0.5``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from vst.engine.fov import model_sized, unified_image, unified_meta, unify_camera
from vst.engine.tasks.single_image.det3d import OUTPUT_LINES, REQUESTS, first_turn_text
from vst.geometry.boxes import box3d_corners, euler_to_matrix
from vst.geometry.cameras import (
    DEFAULT_UNIFIED_FOCAL,
    FovUnified,
    Intrinsics,
    project_points,
)
from vst.geometry.text import ANGLE_SCALE
from vst.models.prompts import system_prompt
from vst.models.requests import Request
from vst.models.vision import PixelLimits
from vst.rewards.parsing import box_list_is_valid, parse_boxes3d, split_think

__all__ = [
    "ASSUMED_HFOV",
    "MAX_EXTENT_M",
    "Detection",
    "DetectionFrame",
    "Detections",
    "camera_json",
    "detection_frame",
    "detection_request",
    "parse_detections",
]

ASSUMED_HFOV = 69.16
"""Horizontal FoV (degrees) assumed for an image given without intrinsics: the camera the
engine's FoV unification is modelled on (the VST release's 960 px wide image at
:data:`~vst.geometry.cameras.UNIFIED_FOCAL` = 960 / (2 tan(69.16 / 2)) px)."""

MAX_EXTENT_M = 1000.0
"""A parsed box with a centre coordinate or a size beyond this many metres (or a size <= 0, or
an angle that overflows when multiplied by 180) is not a box of anything in an image: it is
skipped, with a note."""


def camera_json(camera: Intrinsics) -> dict[str, Any]:
    """A camera as JSON: intrinsics (px), image size and FoVs (degrees)."""
    return {
        "fx": camera.fx,
        "fy": camera.fy,
        "cx": camera.cx,
        "cy": camera.cy,
        "width": camera.width,
        "height": camera.height,
        "hfov": camera.hfov,
        "vfov": camera.vfov,
    }


@dataclass(frozen=True)
class DetectionFrame:
    """A user's image ready for the model.

    ``image``: the FoV-unified RGB image at the model's size (what the model sees).
    ``camera``: the original camera (intrinsics of the image as given, its size).
    ``unified``: the unification geometry at the model size (``unified.source`` is ``camera``;
    ``unified.exact_intrinsics`` is the true camera of ``image``). ``fov_size``: the
    FoV-unified size before the model-size resize. ``assumed_intrinsics``: no intrinsics were
    given and :data:`ASSUMED_HFOV` was assumed.
    """

    image: Image.Image
    camera: Intrinsics
    unified: FovUnified
    fov_size: tuple[int, int]
    assumed_intrinsics: bool = False

    def request(
        self,
        category: str,
        *,
        system: str | None = "plain",
        preamble: int = 0,
        output_line: int = 0,
        phrasing: int = 0,
    ) -> Request:
        """The single-turn request for one ``category``: system prompt ``system`` (``"plain"``,
        ``"think"`` or None for none), then the engine's first user turn (the image, then
        :func:`~vst.engine.tasks.single_image.det3d.first_turn_text` with wordings
        ``preamble`` / ``output_line`` / ``phrasing``). The request's id is the category."""
        if not isinstance(category, str) or not category.strip():
            raise ValueError(f"a category must be a non-empty string, got {category!r}")
        for name, value, count in (
            ("output_line", output_line, len(OUTPUT_LINES)),
            ("phrasing", phrasing, len(REQUESTS)),
        ):
            if not 0 <= value < count:
                raise ValueError(f"{name} must be in [0, {count}), got {value}")
        text = first_turn_text(self.unified, category.strip(), preamble, output_line, phrasing)
        messages: list[dict[str, Any]] = []
        if system is not None:
            messages.append({"role": "system", "content": system_prompt(system)})
        messages.append(
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}
        )
        return Request(messages, images=(self.image,), id=category.strip())

    def meta(self) -> dict[str, Any]:
        """JSON record of both cameras: ``camera`` (the original), ``assumed_intrinsics`` and
        ``model`` (the engine's ``meta["unified"]`` record: the size the model sees, the stated
        FoV, the focal, plus the exact intrinsics of the model's image)."""
        model = unified_meta(self.unified, self.fov_size)
        model["intrinsics"] = camera_json(self.unified.exact_intrinsics)
        return {
            "camera": camera_json(self.camera),
            "assumed_intrinsics": self.assumed_intrinsics,
            "model": model,
        }


def _camera_of(
    width: int,
    height: int,
    intrinsics: Intrinsics | Sequence[float] | None,
    hfov: float | None,
) -> tuple[Intrinsics, bool]:
    if intrinsics is not None and hfov is not None:
        raise ValueError("give intrinsics (fx, fy, cx, cy) or hfov, not both")
    if intrinsics is None:
        if hfov is None:
            return Intrinsics.from_fov(width, height, ASSUMED_HFOV), True
        try:
            value = float(hfov)
        except (TypeError, ValueError):
            raise ValueError(f"hfov must be a number of degrees, got {hfov!r}") from None
        if not (math.isfinite(value) and 0.0 < value < 180.0):
            raise ValueError(f"hfov must be in (0, 180) degrees, got {hfov!r}")
        return Intrinsics.from_fov(width, height, value), False
    if isinstance(intrinsics, Intrinsics):
        if (intrinsics.width, intrinsics.height) != (width, height):
            raise ValueError(
                f"intrinsics are for a {intrinsics.width}x{intrinsics.height} image, "
                f"the image is {width}x{height}"
            )
        return intrinsics, False
    values = list(intrinsics)
    if len(values) != 4:
        raise ValueError(f"intrinsics must be (fx, fy, cx, cy), got {len(values)} values")
    fx, fy, cx, cy = values
    return Intrinsics(fx, fy, cx, cy, width, height), False


def detection_frame(
    image: Image.Image,
    *,
    intrinsics: Intrinsics | Sequence[float] | None = None,
    hfov: float | None = None,
    focal: float = DEFAULT_UNIFIED_FOCAL,
    limits: PixelLimits = PixelLimits(),  # noqa: B008 - frozen, shared default
) -> DetectionFrame:
    """FoV-unify ``image`` as the engine does (see the module docstring). ``intrinsics``:
    an :class:`~vst.geometry.cameras.Intrinsics` of the image's size or ``(fx, fy, cx, cy)``
    in pixels; ``hfov``: degrees (square pixels, centred principal point); neither: assume
    :data:`ASSUMED_HFOV`. ``limits``: the model's pixel budget (the engine's by default).
    Raises ValueError (one line) on bad intrinsics or an unusable image size."""
    camera, assumed = _camera_of(image.width, image.height, intrinsics, hfov)
    fov = unify_camera(camera, focal)
    unified = model_sized(fov, min_pixels=limits.min_pixels, max_pixels=limits.max_pixels)
    return DetectionFrame(
        image=unified_image(image, unified),
        camera=camera,
        unified=unified,
        fov_size=fov.size,
        assumed_intrinsics=assumed,
    )


def detection_request(
    image: Image.Image,
    *,
    categories: Sequence[str] | str,
    intrinsics: Intrinsics | Sequence[float] | None = None,
    hfov: float | None = None,
    focal: float = DEFAULT_UNIFIED_FOCAL,
    limits: PixelLimits = PixelLimits(),  # noqa: B008 - frozen, shared default
    system: str | None = "plain",
    preamble: int = 0,
    output_line: int = 0,
    phrasing: int = 0,
) -> tuple[list[Request], DetectionFrame]:
    """One request per category (in order, duplicates dropped; each request's id is its
    category) for ``image``, and the :class:`DetectionFrame` to parse the answers with.

    The engine asks for one category per turn, so several categories are several single-turn
    requests (they run as one batch and none depends on another's answer). Camera arguments as
    in :func:`detection_frame`, wording and system prompt as in :meth:`DetectionFrame.request`.
    """
    names = [categories] if isinstance(categories, str) else list(categories)
    names = list(dict.fromkeys(c.strip() if isinstance(c, str) else c for c in names))
    if not names:
        raise ValueError("give at least one category")
    frame = detection_frame(image, intrinsics=intrinsics, hfov=hfov, focal=focal, limits=limits)
    requests = [
        frame.request(
            c, system=system, preamble=preamble, output_line=output_line, phrasing=phrasing
        )
        for c in names
    ]
    return requests, frame


@dataclass(frozen=True)
class Detection:
    """One parsed box. ``given``: the 9 numbers as the model wrote them (angles / 180);
    ``box``: the same box in vst's convention (camera frame, metres, angles in degrees);
    ``corners_2d``: its 8 corners (:func:`~vst.geometry.boxes.box3d_corners` order) projected
    to the pixels of the camera the result is expressed in (NaN for corners behind it)."""

    label: str
    given: tuple[float, ...]
    box: np.ndarray
    corners_2d: np.ndarray

    @property
    def center(self) -> np.ndarray:
        """Box centre (3,), metres, camera frame."""
        return self.box[0:3]

    @property
    def size(self) -> np.ndarray:
        """Extents (3,) along the box's local X, Y, Z axes, metres."""
        return self.box[3:6]

    @property
    def angles_deg(self) -> np.ndarray:
        """``[pitch, yaw, roll]`` in degrees (extrinsic X, Y, Z: ``R = Rz Ry Rx``)."""
        return self.box[6:9]

    @property
    def angles_rad(self) -> np.ndarray:
        """``[pitch, yaw, roll]`` in radians."""
        return np.radians(self.box[6:9])

    @property
    def rotation(self) -> np.ndarray:
        """Box-to-camera rotation matrix (3, 3)."""
        return euler_to_matrix(self.box[6:9])

    def to_json(self) -> dict[str, Any]:
        """The given numbers, the metric box (centre, size, rotation) and the 2D corners."""
        corners = [
            None if not np.all(np.isfinite(c)) else [float(v) for v in c] for c in self.corners_2d
        ]
        return {
            "label": self.label,
            "bbox_3d": list(self.given),
            "center_m": [float(v) for v in self.center],
            "size_m": [float(v) for v in self.size],
            "rotation": {
                "euler_xyz_deg": [float(v) for v in self.angles_deg],
                "euler_xyz_rad": [float(v) for v in self.angles_rad],
                "matrix": self.rotation.tolist(),
            },
            "corners_2d": corners,
        }


@dataclass(frozen=True)
class Detections:
    """The boxes parsed from one answer, the camera their 2D corners are in (``camera_name``
    ``"original"`` or ``"model"``, and its intrinsics) and notes on what was skipped."""

    detections: list[Detection]
    camera_name: str
    camera: Intrinsics
    notes: list[str] = field(default_factory=list)

    @property
    def boxes(self) -> np.ndarray:
        """All boxes (N, 9), degrees."""
        if not self.detections:
            return np.zeros((0, 9))
        return np.stack([d.box for d in self.detections])

    @property
    def labels(self) -> list[str]:
        return [d.label for d in self.detections]


def parse_detections(text: str, frame: DetectionFrame, to_original: bool = False) -> Detections:
    """The boxes of a model's answer ``text`` to a request of ``frame``.

    Never raises on any text: unparsable answers give no boxes and a note; malformed entries
    and implausible boxes (see :data:`MAX_EXTENT_M`) are skipped with a note. The metric boxes
    are the same either way; ``to_original`` projects ``corners_2d`` with the original camera
    instead of the model image's (see the module docstring).
    """
    notes: list[str] = []
    answer = split_think(text if isinstance(text, str) else "").answer
    with np.errstate(over="ignore"):  # a huge angle * 180 overflows: skipped below
        boxes, labels = parse_boxes3d(answer)
        clean = box_list_is_valid(answer)
    if not clean:
        if len(boxes):
            notes.append(
                f"the answer is not a clean box list; {len(boxes)} well-formed box(es) kept"
            )
        else:
            snippet = " ".join(answer.split())[:80]
            notes.append(f"no box list found in the model's answer ({snippet!r})")
    camera = frame.camera if to_original else frame.unified.exact_intrinsics
    out: list[Detection] = []
    for k, (box, label) in enumerate(zip(boxes, labels, strict=True)):
        size_ok = bool(np.all(box[3:6] > 0))
        extent_ok = bool(np.all(np.abs(box[0:6]) <= MAX_EXTENT_M))
        angles_ok = bool(np.all(np.isfinite(box[6:9])))  # a huge given angle * 180 overflows
        if not (size_ok and extent_ok and angles_ok):
            why = (
                "a size <= 0"
                if not size_ok
                else f"a value beyond {MAX_EXTENT_M:g} m"
                if not extent_ok
                else "an angle too large"
            )
            notes.append(f"box {k} ({label!r}) skipped: {why}")
            continue
        # the parser multiplied the angles by 180; undo it to the 15 significant digits a
        # model writes (x * 180 / 180 can be off by one ulp: 0.89 would come back 0.8900000001)
        given = [*box[:6], *(float(f"{a / ANGLE_SCALE:.15g}") for a in box[6:9])]
        uv, _ = project_points(box3d_corners(box)[0], camera)
        out.append(
            Detection(
                label=label,
                given=tuple(float(v) for v in given),
                box=box.copy(),
                corners_2d=uv,
            )
        )
    return Detections(out, "original" if to_original else "model", camera, notes)
