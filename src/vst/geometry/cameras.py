"""Pinhole cameras, FoV unification, projection, rigid poses and camera-motion angles.

Conventions (FACTS.md):

* Camera frame: X right, Y down, Z forward (optical axis), metres, origin at the optical centre.
* Pixels follow OpenCV: ``u`` is the column, ``v`` the row, and the CENTRE of pixel
  ``(row r, col c)`` is at ``(u, v) = (c, r)``. The image spans ``u`` in ``[-0.5, W - 0.5]``;
  its geometric centre is ``((W - 1) / 2, (H - 1) / 2)``.
* ``K = [[fx, 0, cx], [0, fy, cy], [0, 0, 1]]``; ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
* Fields of view are in DEGREES: ``hfov = 2 atan(W / 2 fx)`` and ``vfov = 2 atan(H / 2 fy)``,
  each axis with its own focal length (the public VST release wrongly used ``fx`` for both).
* Poses are 4x4 CAMERA-TO-WORLD matrices ``T = [[R, t], [0, 1]]``: a point ``p_cam`` maps to
  ``R @ p_cam + t`` in the world; ``t`` is the camera centre in the world and the columns of ``R``
  are the camera's X, Y, Z axes in the world.
* Depth maps hold metric Z-DEPTH (distance along the optical axis), not ray length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeVar

import numpy as np
from numpy.typing import ArrayLike
from PIL import Image
from scipy.spatial.transform import Rotation

__all__ = [
    "DEFAULT_UNIFIED_FOCAL",
    "MOTION_EULER_ORDER",
    "UNIFIED_FOCAL",
    "FovUnified",
    "Intrinsics",
    "depth_to_points",
    "focal_from_fov",
    "fov_from_focal",
    "fov_unify",
    "invert_pose",
    "is_rigid",
    "make_pose",
    "pan_tilt_roll_to_rotation",
    "project_points",
    "relative_pose",
    "resize_to_unified",
    "rotation_to_pan_tilt_roll",
    "transform_points",
    "unproject_points",
]

UNIFIED_FOCAL: float = 960.0 / (2.0 * math.tan(math.radians(69.16 / 2.0)))
"""Exact unified focal length of the VST release, ``960 / (2 tan(69.16 deg / 2))`` = 696.3195 px
(a 960 px wide image with a 69.16 degree hfov)."""

DEFAULT_UNIFIED_FOCAL: float = 696.3
"""Default ``focal`` of :func:`fov_unify`: :data:`UNIFIED_FOCAL` rounded to 0.1 px, as used by the
release (with it, the paper's 69.16 x 53.17 degree example floors to a 959 x 696 image)."""

_EYE3 = np.eye(3)

MOTION_EULER_ORDER = "YXZ"
"""scipy Euler order of camera motion: intrinsic pan (Y), tilt (X'), roll (Z'')."""


def _finite_positive(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")
    return v


def _positive_int(value: float, name: str) -> int:
    v = _finite_positive(value, name)
    if v != int(v):
        raise ValueError(f"{name} must be a whole number of pixels, got {value!r}")
    return int(v)


def _finite(value: float, name: str) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number, got {value!r}") from exc
    if not math.isfinite(v):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return v


def fov_from_focal(size_px: float, focal_px: float) -> float:
    """Field of view in degrees of an image side of ``size_px`` pixels: ``2 atan(size / 2f)``."""
    size = _finite_positive(size_px, "size_px")
    focal = _finite_positive(focal_px, "focal_px")
    return math.degrees(2.0 * math.atan(size / (2.0 * focal)))


def focal_from_fov(size_px: float, fov_deg: float) -> float:
    """Focal length in pixels giving ``fov_deg`` degrees over ``size_px`` pixels.

    ``focal = size / (2 tan(fov / 2))``; ``fov_deg`` must lie in (0, 180).
    """
    size = _finite_positive(size_px, "size_px")
    fov = _finite_positive(fov_deg, "fov_deg")
    if fov >= 180.0:
        raise ValueError(f"fov_deg must be < 180, got {fov_deg!r}")
    return size / (2.0 * math.tan(math.radians(fov) / 2.0))


def _scale_principal(c: float, scale: float) -> float:
    """Principal point after resizing by ``scale`` (pixel-centre convention, as Pillow resizes)."""
    return (c + 0.5) * scale - 0.5


@dataclass(frozen=True)
class Intrinsics:
    """Pinhole intrinsics in pixels (OpenCV pixel-centre convention, no skew) and image size.

    ``width``/``height`` are whole pixels; focal lengths must be finite and > 0, the principal
    point finite (it may lie outside the image). Invalid values raise :class:`ValueError`.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "fx", _finite_positive(self.fx, "fx"))
        object.__setattr__(self, "fy", _finite_positive(self.fy, "fy"))
        object.__setattr__(self, "cx", _finite(self.cx, "cx"))
        object.__setattr__(self, "cy", _finite(self.cy, "cy"))
        object.__setattr__(self, "width", _positive_int(self.width, "width"))
        object.__setattr__(self, "height", _positive_int(self.height, "height"))

    @classmethod
    def from_K(cls, K: ArrayLike, width: int, height: int) -> Intrinsics:  # noqa: N802
        """Build from a 3x3 matrix ``[[fx, 0, cx], [0, fy, cy], [0, 0, 1]]`` (no skew allowed)."""
        K = np.asarray(K, dtype=np.float64)
        if K.shape != (3, 3):
            raise ValueError(f"K must have shape (3, 3), got {K.shape}")
        if not np.all(np.isfinite(K)):
            raise ValueError("K must be finite")
        if not np.allclose(K[2], [0.0, 0.0, 1.0]) or abs(K[1, 0]) > 1e-9:
            raise ValueError(f"K's last row must be [0, 0, 1] and K[1, 0] 0, got {K.tolist()}")
        if abs(K[0, 1]) > 1e-9 * max(abs(K[0, 0]), 1.0):
            raise ValueError(f"skewed intrinsics are not supported (K[0, 1] = {K[0, 1]})")
        return cls(fx=K[0, 0], fy=K[1, 1], cx=K[0, 2], cy=K[1, 2], width=width, height=height)

    @classmethod
    def from_fov(
        cls, width: int, height: int, hfov: float, vfov: float | None = None
    ) -> Intrinsics:
        """Centred intrinsics with the given FoVs in degrees (``vfov`` None: square pixels)."""
        fx = focal_from_fov(width, hfov)
        fy = fx if vfov is None else focal_from_fov(height, vfov)
        return cls(fx, fy, (width - 1) / 2.0, (height - 1) / 2.0, width, height)

    @property
    def K(self) -> np.ndarray:  # noqa: N802
        """The 3x3 intrinsic matrix (float64)."""
        return np.array(
            [[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]], dtype=np.float64
        )

    @property
    def hfov(self) -> float:
        """Horizontal FoV in degrees, ``2 atan(width / 2 fx)``."""
        return fov_from_focal(self.width, self.fx)

    @property
    def vfov(self) -> float:
        """Vertical FoV in degrees, ``2 atan(height / 2 fy)`` (uses ``fy``, not ``fx``)."""
        return fov_from_focal(self.height, self.fy)

    def scaled(self, new_width: int, new_height: int) -> Intrinsics:
        """Intrinsics of this camera's image resized to ``new_width`` x ``new_height``.

        Each axis scales independently (``sx = new_width / width``): ``fx' = sx fx`` and
        ``cx' = (cx + 0.5) sx - 0.5`` (pixel centres at integers, image edges mapped to image
        edges, which is how Pillow and OpenCV resize). The FoVs are unchanged.
        """
        w = _positive_int(new_width, "new_width")
        h = _positive_int(new_height, "new_height")
        sx, sy = w / self.width, h / self.height
        return Intrinsics(
            fx=self.fx * sx,
            fy=self.fy * sy,
            cx=_scale_principal(self.cx, sx),
            cy=_scale_principal(self.cy, sy),
            width=w,
            height=h,
        )


@dataclass(frozen=True)
class FovUnified:
    """Result of :func:`fov_unify`: the new image size and the camera to state in prompts.

    * ``width``, ``height``: the resized image size (pixels).
    * ``hfov``, ``vfov``: degrees, recomputed from the integer size and ``focal`` so that the
      prompt's FoV, size and the unified focal agree exactly (``hfov = 2 atan(width / 2 focal)``).
    * ``intrinsics``: nominal intrinsics of the resized image, ``fx = fy = focal``.
    * ``exact_intrinsics``: ``source.scaled(width, height)``; the true intrinsics of the resized
      pixels (focal ``fx * scale_x``, which differs from ``focal`` by the rounding of the size,
      at most half a pixel at the image border). Use these to project ground truth exactly.
    * ``scale_x = width / source.width``, ``scale_y = height / source.height``.
    * ``source``: the original camera; ``source_hfov``/``source_vfov`` its FoVs (the true FoV of
      the resized image too, since resizing does not change the FoV).
    """

    width: int
    height: int
    hfov: float
    vfov: float
    focal: float
    intrinsics: Intrinsics
    exact_intrinsics: Intrinsics
    scale_x: float
    scale_y: float
    source: Intrinsics

    @property
    def source_hfov(self) -> float:
        """Horizontal FoV of the original camera (degrees)."""
        return self.source.hfov

    @property
    def source_vfov(self) -> float:
        """Vertical FoV of the original camera (degrees)."""
        return self.source.vfov

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)`` as Pillow expects it."""
        return (self.width, self.height)


def fov_unify(
    width: int,
    height: int,
    fx: float,
    fy: float,
    focal: float = DEFAULT_UNIFIED_FOCAL,
    cx: float | None = None,
    cy: float | None = None,
    *,
    rounding: Literal["round", "floor"] = "floor",
) -> FovUnified:
    """FoV unification (paper Algorithm 1), per axis: resize so the focal length becomes ``focal``.

    ``hfov = 2 atan(W / 2 fx)``, ``vfov = 2 atan(H / 2 fy)``; ``W' = 2 focal tan(hfov / 2)``
    (= ``W focal / fx``) and ``H' = 2 focal tan(vfov / 2)`` (= ``H focal / fy``), made whole
    pixels by ``rounding``: ``"floor"`` (default: ``int()`` truncation, as the VST release does;
    it reproduces the paper's 959 x 696 example) or ``"round"`` (half up). The principal point
    defaults to the image centre ``((W - 1) / 2, (H - 1) / 2)`` and is scaled with
    :meth:`Intrinsics.scaled`. Prompts should state ``source_hfov``/``source_vfov`` as the paper
    does (its 959 x 696 example is SUN RGB-D's Kinect v2 camera: 69.16 x 53.17 degrees).
    """
    if rounding not in ("round", "floor"):
        raise ValueError(f"rounding must be 'round' or 'floor', got {rounding!r}")
    w = _positive_int(width, "width")
    h = _positive_int(height, "height")
    f_new = _finite_positive(focal, "focal")
    source = Intrinsics(
        fx=fx,
        fy=fy,
        cx=(w - 1) / 2.0 if cx is None else cx,
        cy=(h - 1) / 2.0 if cy is None else cy,
        width=w,
        height=h,
    )
    w_float = 2.0 * f_new * math.tan(math.radians(source.hfov) / 2.0)
    h_float = 2.0 * f_new * math.tan(math.radians(source.vfov) / 2.0)
    if rounding == "round":
        new_w, new_h = math.floor(w_float + 0.5), math.floor(h_float + 0.5)
    else:
        # tolerate float noise: 2 f tan(atan(W / 2f)) may come out as W - 1e-13
        new_w, new_h = math.floor(w_float + 1e-9), math.floor(h_float + 1e-9)
    new_w, new_h = max(new_w, 1), max(new_h, 1)
    exact = source.scaled(new_w, new_h)
    nominal = Intrinsics(f_new, f_new, exact.cx, exact.cy, new_w, new_h)
    return FovUnified(
        width=new_w,
        height=new_h,
        hfov=fov_from_focal(new_w, f_new),
        vfov=fov_from_focal(new_h, f_new),
        focal=f_new,
        intrinsics=nominal,
        exact_intrinsics=exact,
        scale_x=new_w / w,
        scale_y=new_h / h,
        source=source,
    )


ImageT = TypeVar("ImageT", Image.Image, np.ndarray)

_NEAREST_MODES = {"1", "P", "I", "I;16", "I;16B", "I;16L", "F"}


def resize_to_unified(
    image: ImageT,
    unified: FovUnified,
    resample: Image.Resampling | None = None,
) -> ImageT:
    """Resize ``image`` (Pillow image or ``(H, W)`` / ``(H, W, C)`` array) to ``unified.size``.

    Returns the same type (arrays keep their dtype). ``resample`` defaults to BICUBIC for
    colour / grey images (``uint8`` arrays, modes L/LA/RGB/RGBA) and to NEAREST for masks,
    label maps and depth (``bool``, integer other than ``uint8``, and float arrays; modes
    1/P/I/F). Pass ``resample=Image.Resampling.NEAREST`` explicitly for ``uint8`` masks:
    interpolating a mask or a depth map invents values that are not in the input.
    The input must have the source size ``unified.source.width x unified.source.height``.
    """
    src = (unified.source.width, unified.source.height)
    if isinstance(image, Image.Image):
        if image.size != src:
            raise ValueError(f"image size {image.size} != the unified source size {src}")
        if resample is None:
            nearest = image.mode in _NEAREST_MODES
            resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC
        return image.resize(unified.size, resample=resample)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.shape[1], arr.shape[0]) != src:
        raise ValueError(f"array shape {arr.shape} does not match the unified source size {src}")
    if resample is None:
        nearest = arr.dtype != np.uint8
        resample = Image.Resampling.NEAREST if nearest else Image.Resampling.BICUBIC
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(arr).resize(unified.size, resample=resample))
    # other dtypes / channel counts: resize each channel as a float32 ("F") image
    chans = arr[..., None] if arr.ndim == 2 else arr
    out = np.stack(
        [
            np.asarray(
                Image.fromarray(np.ascontiguousarray(chans[..., k], dtype=np.float32)).resize(
                    unified.size, resample=resample
                )
            )
            for k in range(chans.shape[2])
        ],
        axis=-1,
    )
    if arr.ndim == 2:
        out = out[..., 0]
    if arr.dtype == np.bool_:
        return out >= 0.5
    if np.issubdtype(arr.dtype, np.integer):
        info = np.iinfo(arr.dtype)
        return np.clip(np.rint(out), info.min, info.max).astype(arr.dtype)
    return out.astype(arr.dtype)


# --------------------------------------------------------------------------- projection


def _as_matrix(K: ArrayLike | Intrinsics) -> np.ndarray:
    mat = K.K if isinstance(K, Intrinsics) else np.asarray(K, dtype=np.float64)
    if mat.shape != (3, 3):
        raise ValueError(f"K must have shape (3, 3), got {mat.shape}")
    if not np.allclose(mat[2], [0.0, 0.0, 1.0]):
        raise ValueError(f"K's last row must be [0, 0, 1], got {mat[2].tolist()}")
    return mat


def _as_points(points: ArrayLike, name: str = "points") -> np.ndarray:
    arr = np.asarray(points, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] != 3:
        raise ValueError(f"{name} must have shape (N, 3), got {arr.shape}")
    return arr


def project_points(points: ArrayLike, K: ArrayLike | Intrinsics) -> tuple[np.ndarray, np.ndarray]:
    """Project camera-frame points ``(N, 3)`` (metres) to pixels.

    Returns ``uv`` ``(N, 2)`` as ``(u = column, v = row)`` in the OpenCV convention (the centre
    of pixel ``(r, c)`` is ``(c, r)``) and the depth ``z`` ``(N,)``. Points with ``z <= 0``
    (behind or on the camera plane) get ``uv = nan``; visibility in the image is
    ``-0.5 <= u < W - 0.5`` and ``-0.5 <= v < H - 0.5`` (``np.rint(uv)`` gives the pixel).
    """
    pts = _as_points(points)
    mat = _as_matrix(K)
    z = pts[:, 2].copy()
    uv = np.full((pts.shape[0], 2), np.nan)
    front = z > 0
    proj = pts[front] @ mat.T
    uv[front] = proj[:, :2] / proj[:, 2:3]
    return uv, z


def unproject_points(uv: ArrayLike, depth: ArrayLike, K: ArrayLike | Intrinsics) -> np.ndarray:
    """Camera-frame points ``(N, 3)`` of pixels ``uv`` ``(N, 2)`` (``u`` column, ``v`` row) at
    Z-depth ``depth`` (``(N,)`` or a scalar, metres along the optical axis, not ray length)."""
    pix = np.asarray(uv, dtype=np.float64)
    if pix.ndim == 1:
        pix = pix[None, :]
    if pix.ndim != 2 or pix.shape[1] != 2:
        raise ValueError(f"uv must have shape (N, 2), got {pix.shape}")
    d = np.broadcast_to(np.asarray(depth, dtype=np.float64), (pix.shape[0],))
    mat = _as_matrix(K)
    rays = np.concatenate([pix, np.ones((pix.shape[0], 1))], axis=1) @ np.linalg.inv(mat).T
    return rays * d[:, None]


def depth_to_points(
    depth: ArrayLike,
    K: ArrayLike | Intrinsics,
    mask: ArrayLike | None = None,
    stride: int = 1,
) -> tuple[np.ndarray, np.ndarray]:
    """Back-project a Z-depth map ``(H, W)`` (metres along the optical axis, NOT ray length).

    Pixels with non-finite or non-positive depth, or outside ``mask`` (``(H, W)`` bool), are
    skipped; ``stride`` keeps every ``stride``-th row and column starting at 0. Returns camera-
    frame ``points`` ``(M, 3)`` and their ``pixels`` ``(M, 2)`` as integer ``(row, col)``, in
    row-major order; pixel ``(r, c)`` is unprojected at ``(u, v) = (c, r)``.
    """
    d = np.asarray(depth, dtype=np.float64)
    if d.ndim != 2:
        raise ValueError(f"depth must have shape (H, W), got {d.shape}")
    if int(stride) != stride or stride < 1:
        raise ValueError(f"stride must be a positive integer, got {stride!r}")
    stride = int(stride)
    valid = np.isfinite(d) & (d > 0)
    if mask is not None:
        m = np.asarray(mask)
        if m.shape != d.shape:
            raise ValueError(f"mask shape {m.shape} != depth shape {d.shape}")
        valid &= m.astype(bool)
    sub = np.zeros_like(valid)
    sub[::stride, ::stride] = True
    rows, cols = np.nonzero(valid & sub)
    uv = np.stack([cols, rows], axis=1).astype(np.float64)
    points = unproject_points(uv, d[rows, cols], K)
    return points, np.stack([rows, cols], axis=1)


# --------------------------------------------------------------------------- poses


def _as_pose(T: ArrayLike, name: str = "T") -> np.ndarray:
    mat = np.asarray(T, dtype=np.float64)
    if mat.shape[-2:] != (4, 4):
        raise ValueError(f"{name} must have shape (..., 4, 4), got {mat.shape}")
    return mat


def make_pose(R: ArrayLike, t: ArrayLike) -> np.ndarray:
    """4x4 rigid transform ``[[R, t], [0, 0, 0, 1]]`` from a 3x3 rotation and a 3-vector."""
    rot = np.asarray(R, dtype=np.float64)
    trans = np.asarray(t, dtype=np.float64).reshape(-1)
    if rot.shape != (3, 3) or trans.shape != (3,):
        raise ValueError(f"R must be (3, 3) and t (3,), got {rot.shape} and {trans.shape}")
    T = np.eye(4)
    T[:3, :3] = rot
    T[:3, 3] = trans
    return T


def invert_pose(T: ArrayLike) -> np.ndarray:
    """Inverse of rigid transforms ``(..., 4, 4)`` in closed form: ``[[R^T, -R^T t], [0, 1]]``."""
    mat = _as_pose(T)
    R = mat[..., :3, :3]
    t = mat[..., :3, 3]
    Rt = np.swapaxes(R, -1, -2)
    out = np.zeros_like(mat)
    out[..., :3, :3] = Rt
    out[..., :3, 3] = -np.einsum("...ij,...j->...i", Rt, t)
    out[..., 3, 3] = 1.0
    return out


def transform_points(points: ArrayLike, T: ArrayLike) -> np.ndarray:
    """Apply a 4x4 transform to points ``(N, 3)``: ``R @ p + t`` (e.g. camera -> world)."""
    pts = _as_points(points)
    mat = _as_pose(T)
    if mat.shape != (4, 4):
        raise ValueError(f"T must have shape (4, 4), got {mat.shape}")
    return pts @ mat[:3, :3].T + mat[:3, 3]


def relative_pose(cam_to_world_a: ArrayLike, cam_to_world_b: ArrayLike) -> np.ndarray:
    """Camera b's pose in camera a's frame, ``inv(T_a) @ T_b`` (maps b's points to a's frame).

    Its translation is b's centre in a's frame; its rotation's columns are b's axes in a's frame.
    """
    return invert_pose(_as_pose(cam_to_world_a, "cam_to_world_a")) @ _as_pose(
        cam_to_world_b, "cam_to_world_b"
    )


def is_rigid(T: ArrayLike, atol: float = 1e-6) -> bool:
    """True if ``T`` is a finite 4x4 proper rigid transform (``R R^T = I``, ``det R = +1``,
    last row ``[0, 0, 0, 1]``) within ``atol``."""
    mat = np.asarray(T, dtype=np.float64)
    if mat.shape != (4, 4) or not np.all(np.isfinite(mat)):
        return False
    R = mat[:3, :3]
    return bool(
        np.allclose(mat[3], [0.0, 0.0, 0.0, 1.0], atol=atol)
        and np.allclose(R @ R.T, np.eye(3), atol=atol)
        and abs(np.linalg.det(R) - 1.0) <= atol * 3
    )


# --------------------------------------------------------------------------- camera motion


def rotation_to_pan_tilt_roll(R_rel: ArrayLike) -> tuple[float, float, float]:
    """Decompose a relative camera rotation into ``(pan, tilt, roll)`` degrees.

    ``R_rel`` is camera 2's orientation in camera 1's frame (3x3, or the rotation block of a 4x4
    such as ``relative_pose(T1, T2)``); camera frame X right, Y down, Z forward. It is split as
    intrinsic ``"YXZ"``: ``R_rel = Ry(pan) @ Rx(tilt) @ Rz(roll)`` (right-handed rotations about
    the camera axes), so camera 2's optical axis in camera 1's frame is
    ``(cos(tilt) sin(pan), -sin(tilt), cos(tilt) cos(pan))``:

    * ``pan`` > 0: the camera turns RIGHT (a positive rotation about Y, which points down, swings
      the optical axis +Z toward +X). Range (-180, 180].
    * ``tilt`` > 0: the camera tilts UP (a positive rotation about X moves +Z toward -Y, and -Y
      is up). Range [-90, 90].
    * ``roll`` > 0: the camera rolls CLOCKWISE as seen from behind it (its X axis turns toward
      +Y, down; the image content then appears rotated counter-clockwise). Range (-180, 180].

    Angles are applied pan first, then tilt about the panned X axis, then roll about the new
    optical axis. At ``|tilt| = 90`` (gimbal lock) roll is set to 0 and pan absorbs the rest.
    """
    R = np.asarray(R_rel, dtype=np.float64)
    if R.shape == (4, 4):
        R = R[:3, :3]
    if R.shape != (3, 3) or not np.all(np.isfinite(R)):
        raise ValueError(f"R_rel must be a finite (3, 3) rotation, got shape {R.shape}")
    if float(np.abs(R @ R.T - _EYE3).max()) > 1e-4 or np.linalg.det(R) <= 0:
        raise ValueError("R_rel is not a proper rotation matrix")
    # Closed form of R = Ry(pan) Rx(tilt) Rz(roll) (scipy's "YXZ" gives the same angles; this
    # is ~20x cheaper per call, and tasks decompose thousands of frame pairs):
    # R[1, 2] = -sin(tilt); R[0, 2] / R[2, 2] = tan(pan); R[1, 0] / R[1, 1] = tan(roll).
    s_tilt = -R[1, 2]
    tilt = math.degrees(math.asin(max(-1.0, min(1.0, s_tilt))))
    if abs(s_tilt) < 1.0 - 1e-12:
        pan = math.degrees(math.atan2(R[0, 2], R[2, 2]))
        roll = math.degrees(math.atan2(R[1, 0], R[1, 1]))
    else:  # gimbal lock: roll := 0 and pan absorbs the rest (scipy's convention)
        pan = math.degrees(math.atan2(-R[2, 0], R[0, 0]))
        roll = 0.0
    return float(pan) + 0.0, float(tilt) + 0.0, float(roll) + 0.0


def pan_tilt_roll_to_rotation(pan: float, tilt: float, roll: float) -> np.ndarray:
    """Inverse of :func:`rotation_to_pan_tilt_roll`: ``Ry(pan) @ Rx(tilt) @ Rz(roll)`` (3x3).

    Degrees; positive pan = turn right, positive tilt = tilt up, positive roll = clockwise seen
    from behind the camera (camera frame X right, Y down, Z forward).
    """
    angles = [_finite(pan, "pan"), _finite(tilt, "tilt"), _finite(roll, "roll")]
    return Rotation.from_euler(MOTION_EULER_ORDER, angles, degrees=True).as_matrix()
