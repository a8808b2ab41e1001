"""FoV-unified frames for the 3D-detection family of tasks (paper Algorithm 1).

A frame is resized so that its focal length becomes the run's unified focal
(``EngineSettings.unified_focal``, 696.3 px by default; sizes floored as the VST release does),
then, as the VST release does, to the size Qwen2.5-VL's processor gives that image
(:func:`~vst.engine.imaging.smart_resize`: both sides multiples of 28, pixel count within the
run's ``min_pixels``/``max_pixels``; e.g. 875 x 656 -> 868 x 644). That is the image stored in
samples, so the processor does not resize it again: the width and height the prompt states and
every 2D coordinate (``si_grounding3d`` boxes) are pixels of the stored image. The second resize
moves each side by at most 14 px (half a patch) and changes neither the FoV nor any 3D answer.

The prompt states the camera's true FoV (``FovUnified.source_hfov/source_vfov``, as the paper
does: its 959 x 696 example states the SUN RGB-D camera's 69.16 / 53.17 degrees), the unified
image's width and height, the camera axes (X right, Y down, Z forward, origin at the camera)
and the 9-DoF box format (centre and sizes in metres, Euler angles in degrees / 180).

API:

* :func:`unify_frame` / :func:`unify_camera` -> :class:`~vst.geometry.cameras.FovUnified` of a
  frame or of a camera (geometry only); :func:`unified_image` -> the image at that geometry.
* :func:`model_sized` / :func:`resize_unified` -> the same geometry at the stored (model) size.
* :func:`unified_view` -> :class:`UnifiedView` of a :class:`~vst.engine.context.FrameView`
  (cached on the view): the unified PIL image, 2D boxes scaled to it, meta dicts, the preamble.
* :func:`camera_preamble` -> the camera / axes / box-format text block (``N_PREAMBLES``
  wordings); ``world_note`` replaces the sentence naming the world frame (multi-image tasks).

Pixel convention: OpenCV (centre of pixel row r, column c at u = c, v = r); 2D boxes are
``[x1, y1, x2, y2]`` inclusive integer pixel bounds.
"""

from __future__ import annotations

import dataclasses
import math
from functools import cached_property
from typing import TYPE_CHECKING, Any

from PIL import Image

from vst.engine.imaging import DEFAULT_MAX_PIXELS, DEFAULT_MIN_PIXELS, PATCH_FACTOR, smart_resize
from vst.geometry.cameras import (
    DEFAULT_UNIFIED_FOCAL,
    FovUnified,
    Intrinsics,
    fov_from_focal,
    fov_unify,
    resize_to_unified,
)

if TYPE_CHECKING:
    from vst.engine.context import FrameView
    from vst.scenes.model import Frame

__all__ = [
    "N_PREAMBLES",
    "SINGLE_IMAGE_WORLD_NOTE",
    "UnifiedView",
    "camera_preamble",
    "intrinsics_meta",
    "model_sized",
    "resize_unified",
    "scale_bbox2d",
    "unified_image",
    "unified_meta",
    "unified_view",
    "unify_camera",
    "unify_frame",
]


def unify_camera(camera: Intrinsics, focal: float = DEFAULT_UNIFIED_FOCAL) -> FovUnified:
    """FoV unification of a camera (its fx, fy, cx, cy and image size) to ``focal`` px, sizes
    floored: what every frame of the 3D-detection tasks gets (:func:`unify_frame`), and what
    inference on a user's image must get (:mod:`vst.models.detect`)."""
    return fov_unify(
        camera.width,
        camera.height,
        camera.fx,
        camera.fy,
        focal,
        cx=camera.cx,
        cy=camera.cy,
        rounding="floor",
    )


def unify_frame(frame: Frame, focal: float = DEFAULT_UNIFIED_FOCAL) -> FovUnified:
    """FoV unification of ``frame`` (its own fx, fy, cx, cy) to ``focal`` px, sizes floored."""
    K = frame.K
    camera = Intrinsics(
        float(K[0, 0]), float(K[1, 1]), float(K[0, 2]), float(K[1, 2]), frame.width, frame.height
    )
    return unify_camera(camera, focal)


def unified_image(image: Image.Image, unified: FovUnified) -> Image.Image:
    """The RGB image the model is shown: ``image`` (at ``unified``'s source size) converted to
    RGB and resized once (bicubic, :func:`resize_to_unified`) to ``unified``'s size."""
    rgb = image if image.mode == "RGB" else image.convert("RGB")
    return resize_to_unified(rgb, unified)


def resize_unified(unified: FovUnified, width: int, height: int) -> FovUnified:
    """``unified`` with its image resized to ``width`` x ``height``: size, scales and exact
    intrinsics follow the new size (:meth:`Intrinsics.scaled` of the source camera), ``focal``
    stays the unified focal the frame was unified to and ``hfov``/``vfov`` are the FoV the new
    size implies at that focal, as in :func:`fov_unify`. The true FoV (``source_hfov``) does not
    change."""
    if (width, height) == (unified.width, unified.height):
        return unified
    exact = unified.source.scaled(width, height)
    return dataclasses.replace(
        unified,
        width=width,
        height=height,
        hfov=fov_from_focal(width, unified.focal),
        vfov=fov_from_focal(height, unified.focal),
        intrinsics=Intrinsics(unified.focal, unified.focal, exact.cx, exact.cy, width, height),
        exact_intrinsics=exact,
        scale_x=width / unified.source.width,
        scale_y=height / unified.source.height,
    )


def model_sized(
    unified: FovUnified,
    factor: int = PATCH_FACTOR,
    min_pixels: int = DEFAULT_MIN_PIXELS,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> FovUnified:
    """``unified`` at the size Qwen2.5-VL's processor resizes its image to
    (:func:`~vst.engine.imaging.smart_resize` of the FoV-unified size), via
    :func:`resize_unified`."""
    h, w = smart_resize(unified.height, unified.width, factor, min_pixels, max_pixels)
    return resize_unified(unified, w, h)


def _half_up(x: float) -> int:
    return math.floor(x + 0.5)


def scale_bbox2d(
    bbox: tuple[int, int, int, int] | list[int], unified: FovUnified
) -> tuple[int, int, int, int]:
    """Inclusive frame-pixel box ``[x1, y1, x2, y2]`` -> inclusive pixel box of the unified image.

    The box's outer edges (``x1`` and ``x2 + 1``) are scaled by ``unified.scale_x`` (y alike)
    and rounded half up; the result is clipped to the image and kept non-empty.
    """
    x1, y1, x2, y2 = (int(v) for v in bbox)
    sx, sy = unified.scale_x, unified.scale_y
    w, h = unified.width, unified.height
    nx1 = min(max(_half_up(x1 * sx), 0), w - 1)
    ny1 = min(max(_half_up(y1 * sy), 0), h - 1)
    nx2 = min(max(_half_up((x2 + 1) * sx) - 1, nx1), w - 1)
    ny2 = min(max(_half_up((y2 + 1) * sy) - 1, ny1), h - 1)
    return nx1, ny1, nx2, ny2


def unified_meta(unified: FovUnified, fov_size: tuple[int, int] | None = None) -> dict[str, Any]:
    """What a sample's ``meta["unified"]`` records: the stored image size, the stated FoV
    (``hfov``/``vfov``: the source camera's, degrees), the unified focal (px), the FoV the
    stored size implies at that focal (``unified_hfov``/``unified_vfov``) and ``fov_size``,
    the FoV-unified size before the model-size resize (default: the stored size)."""
    return {
        "width": unified.width,
        "height": unified.height,
        "fov_size": list(fov_size or unified.size),
        "hfov": unified.source_hfov,
        "vfov": unified.source_vfov,
        "focal": unified.focal,
        "unified_hfov": unified.hfov,
        "unified_vfov": unified.vfov,
    }


def intrinsics_meta(unified: FovUnified) -> dict[str, Any]:
    """The source camera's intrinsics (px) and size, for ``meta["intrinsics"]``."""
    s = unified.source
    return {"fx": s.fx, "fy": s.fy, "cx": s.cx, "cy": s.cy, "width": s.width, "height": s.height}


# --------------------------------------------------------------------------- prompt text

SINGLE_IMAGE_WORLD_NOTE = "This camera frame is also the world frame."

_BOX_FORMAT = "[x_center, y_center, z_center, x_size, y_size, z_size, pitch, yaw, roll]"

_PREAMBLES = (
    (
        "Camera details for this image.\n"
        "Intrinsics: horizontal field of view hfov={hfov}, vertical field of view vfov={vfov} "
        "(degrees); image width={width} and height={height} pixels. Lens distortion is "
        "ignored.\n"
        "Coordinates: the origin is at the camera, the X axis points right, the Y axis points "
        "down and the Z axis points forward, away from the camera. {world}\n"
        "3D box format: " + _BOX_FORMAT + "\n"
        "- x_center, y_center, z_center: the object's centre in camera coordinates, in metres; "
        "z_center is how deep the object is.\n"
        "- x_size, y_size, z_size: the object's extent along the X, Y and Z axes in metres, "
        "measured with all three angles at zero.\n"
        "- pitch, yaw, roll: Euler rotations about the fixed X, Y and Z axes (applied in that "
        "order), each written as degrees divided by 180, so between -1 and 1."
    ),
    (
        "The camera of this picture has hfov={hfov} and vfov={vfov} degrees of horizontal and "
        "vertical field of view, and the picture is width={width} by height={height} pixels; "
        "assume no distortion.\n"
        "Axes: X to the right, Y downward, Z forward along the viewing direction, with the "
        "origin at the camera centre. {world}\n"
        "A 3D bounding box is written as " + _BOX_FORMAT + ": the centre in metres (z_center "
        "is the depth), the sizes in metres along X, Y and Z of the unrotated box, and pitch, "
        "yaw and roll, the rotation angles about the X, Y and Z axes, given in degrees divided "
        "by 180 (range -1 to 1; multiply by 180 for degrees)."
    ),
    (
        "Camera parameters\n"
        "- field of view: hfov={hfov}, vfov={vfov} (degrees)\n"
        "- image size: width={width}, height={height} (pixels)\n"
        "- distortion: none\n"
        "Coordinate frame: centred on the camera; +X right, +Y down, +Z forward. {world}\n"
        "Box = " + _BOX_FORMAT + "\n"
        "- (x_center, y_center, z_center): centre position in metres; z_center is the distance "
        "along the viewing axis\n"
        "- (x_size, y_size, z_size): size in metres along X, Y, Z before any rotation\n"
        "- (pitch, yaw, roll): rotation about X, Y, Z (extrinsic, in this order) in degrees, "
        "divided by 180 so each lies in [-1, 1]"
    ),
)

N_PREAMBLES = len(_PREAMBLES)
"""Number of preamble wordings :func:`camera_preamble` knows."""


def camera_preamble(
    unified: FovUnified, variant: int = 0, *, world_note: str = SINGLE_IMAGE_WORLD_NOTE
) -> str:
    """The camera / axes / box-format block stated before a 3D question.

    States ``hfov``/``vfov`` of the source camera (2 decimals, degrees) and the unified image's
    ``width``/``height`` (as ``hfov=69.16``, ``width=959`` ...), the camera axes and the 9-DoF
    box format with the angle normalisation. ``variant`` picks one of :data:`N_PREAMBLES`
    wordings; ``world_note`` is the sentence saying which frame is the world frame.
    """
    if not 0 <= variant < N_PREAMBLES:
        raise ValueError(f"variant must be in [0, {N_PREAMBLES}), got {variant}")
    return _PREAMBLES[variant].format(
        hfov=f"{unified.source_hfov:.2f}",
        vfov=f"{unified.source_vfov:.2f}",
        width=unified.width,
        height=unified.height,
        world=world_note,
    )


# --------------------------------------------------------------------------- frame views


class UnifiedView:
    """The FoV-unified version of one :class:`~vst.engine.context.FrameView`.

    ``fov`` is the FoV-unified geometry (floored size), ``unified`` the same at the stored size
    (:func:`model_sized` with the view's settings); :attr:`image` the RGB image at the stored
    size (one bicubic resize of the frame, built once and shared by every sample of the frame:
    do not draw on it, copy it first).
    """

    def __init__(self, view: FrameView, focal: float):
        self.view = view
        self.fov = unify_frame(view.frame, focal)
        s = view.settings
        self.unified = model_sized(self.fov, s.image_factor, s.min_pixels, s.max_pixels)

    @property
    def width(self) -> int:
        return self.unified.width

    @property
    def height(self) -> int:
        return self.unified.height

    @property
    def hfov(self) -> float:
        """Stated horizontal FoV: the source camera's (degrees)."""
        return self.unified.source_hfov

    @property
    def vfov(self) -> float:
        """Stated vertical FoV: the source camera's (degrees)."""
        return self.unified.source_vfov

    @cached_property
    def image(self) -> Image.Image:
        """RGB PIL image of size ``(width, height)``, resized with :func:`resize_to_unified`."""
        return unified_image(Image.fromarray(self.view.image, "RGB"), self.unified)

    def bbox2d(self, object_id: int) -> tuple[int, int, int, int]:
        """Tight mask box of the object (``FrameView.bbox2d``) in unified-image pixels."""
        return scale_bbox2d(self.view.bbox2d(object_id), self.unified)

    def meta(self) -> dict[str, Any]:
        """:func:`unified_meta` of this view."""
        return unified_meta(self.unified, self.fov.size)

    def intrinsics(self) -> dict[str, Any]:
        """:func:`intrinsics_meta` of this view."""
        return intrinsics_meta(self.unified)

    def preamble(self, variant: int = 0, *, world_note: str = SINGLE_IMAGE_WORLD_NOTE) -> str:
        """:func:`camera_preamble` of this view."""
        return camera_preamble(self.unified, variant, world_note=world_note)


_CACHE_ATTR = "_vst_unified_views"


def unified_view(view: FrameView, focal: float | None = None) -> UnifiedView:
    """The (cached) :class:`UnifiedView` of ``view`` at ``focal`` px (default: the view's
    ``settings.unified_focal``). The cache is stored on the view itself, so it lives exactly as
    long as the view (``EngineContext.reset`` frees both)."""
    f = float(view.settings.unified_focal if focal is None else focal)
    per_view: dict[float, UnifiedView] = view.__dict__.setdefault(_CACHE_ATTR, {})
    if f not in per_view:
        per_view[f] = UnifiedView(view, f)
    return per_view[f]
