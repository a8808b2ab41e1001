"""Offscreen MuJoCo rendering: RGB, metric z-depth and instance masks of a room model.

``mujoco`` is imported lazily (importing vst never imports it). The OpenGL backend comes from
``MUJOCO_GL``; when it is unset this module picks ``egl`` if libEGL loads, else ``osmesa`` if
libOSMesa loads. Failures raise :class:`RenderBackendError`, whose message names the environment
variable and the Debian packages that fix it.

One GL context serves every scene (creating contexts is slow); :meth:`MujocoRenderer.load`
switches the model. A frame is two passes: a shaded pass read as RGB, then a segmentation pass
read as geom ids and depth together.

Depth: MuJoCo's depth buffer holds OpenGL window depth, which is a function of the eye-space Z
coordinate only; it is converted back to metric Z-DEPTH (distance along the optical axis, not
ray length), 0 where nothing was hit. Camera frame X right, Y down, Z forward (MuJoCo cameras
look along their -Z with Y up: ``R_mujoco = R_cv @ diag(1, -1, -1)``). Intrinsics: square pixels,
``fy = fx = (H / 2) / tan(fovy / 2)``, principal point at the image centre ``((W-1)/2, (H-1)/2)``
(OpenCV pixel-centre convention).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import sys
from typing import Any

import numpy as np

from vst.scenes.sources.synthetic.mjcf import CAMERA_NAME, geom_object_ids

GL_FIX = (
    "Set the environment variable MUJOCO_GL=egl and install the Debian packages libegl1 and "
    "libegl-mesa0 (apt-get install libegl1 libegl-mesa0), or set MUJOCO_GL=osmesa and install "
    "libosmesa6 (apt-get install libosmesa6)."
)


class RenderBackendError(RuntimeError):
    """No usable OpenGL backend for offscreen rendering (the message says how to fix it)."""


def _loadable(name: str) -> bool:
    path = ctypes.util.find_library(name)
    if path is None:
        return False
    try:
        ctypes.CDLL(path)
    except OSError:
        return False
    return True


def select_gl_backend() -> str:
    """Set ``MUJOCO_GL`` (if unset and mujoco not yet imported) to ``egl`` or ``osmesa``,
    whichever library loads; return the value in effect."""
    current = os.environ.get("MUJOCO_GL", "")
    if current or "mujoco" in sys.modules:
        return current
    if _loadable("EGL"):
        os.environ["MUJOCO_GL"] = "egl"
    elif _loadable("OSMesa"):
        os.environ["MUJOCO_GL"] = "osmesa"
    else:
        os.environ["MUJOCO_GL"] = "egl"  # fails below with the fix in the message
    return os.environ["MUJOCO_GL"]


def backend_error(exc: BaseException | str) -> RenderBackendError:
    """A :class:`RenderBackendError` for ``exc`` that names MUJOCO_GL and the packages."""
    backend = os.environ.get("MUJOCO_GL") or "<unset>"
    return RenderBackendError(
        f"offscreen OpenGL rendering is not available (MUJOCO_GL={backend}): {exc}. {GL_FIX}"
    )


def import_mujoco() -> Any:
    """Import mujoco after choosing the GL backend; RenderBackendError if that fails."""
    select_gl_backend()
    try:
        import mujoco
    except (ImportError, RuntimeError, OSError, AttributeError) as exc:
        raise backend_error(exc) from exc
    return mujoco


def intrinsics_matrix(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """The K of a MuJoCo camera with vertical field of view ``fovy_deg`` (square pixels,
    centred principal point)."""
    f = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return np.array([[f, 0.0, (width - 1) / 2.0], [0.0, f, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


_CV_TO_MJ = np.diag([1.0, -1.0, -1.0])


class MujocoRenderer:
    """Renders RGB, z-depth and instance masks of room models at ``width`` x ``height``.

    Use as a context manager or call :meth:`close`. ``shadows`` toggles shadow mapping.
    """

    def __init__(self, width: int, height: int, shadows: bool = True):
        self.mj = import_mujoco()
        self.width = int(width)
        self.height = int(height)
        self.shadows = shadows
        try:
            self._gl = self.mj.GLContext(self.width, self.height)
            self._gl.make_current()
        except Exception as exc:  # any backend failure: missing library, no display, ...
            raise backend_error(exc) from exc
        self.backend = os.environ.get("MUJOCO_GL", "")
        self._ctx = None
        self.model = None
        self.data = None
        self.geom_objects = np.zeros(0, dtype=np.int32)

    # -- model ------------------------------------------------------------------------------
    def load(self, xml: str) -> None:
        """Compile ``xml`` (see :mod:`.mjcf`) and make it the model to render."""
        mj = self.mj
        model = mj.MjModel.from_xml_string(xml)
        data = mj.MjData(model)
        mj.mj_forward(model, data)
        self.geom_objects = geom_object_ids([model.geom(i).name for i in range(model.ngeom)])
        self._gl.make_current()
        if self._ctx is not None:
            self._ctx.free()
        self._ctx = mj.MjrContext(model, mj.mjtFontScale.mjFONTSCALE_50.value)
        mj.mjr_setBuffer(mj.mjtFramebuffer.mjFB_OFFSCREEN.value, self._ctx)
        self._ctx.readDepthMap = mj.mjtDepthMap.mjDEPTH_ZEROFAR
        self.model, self.data = model, data
        self._scene = mj.MjvScene(model, maxgeom=model.ngeom + 64)
        self._opt = mj.MjvOption()
        self._cam_id = mj.mj_name2id(model, mj.mjtObj.mjOBJ_CAMERA.value, CAMERA_NAME)
        self._cam = mj.MjvCamera()
        self._cam.type = mj.mjtCamera.mjCAMERA_FIXED
        self._cam.fixedcamid = self._cam_id
        self._rect = mj.MjrRect(0, 0, self.width, self.height)
        extent = float(model.stat.extent)
        self._near = np.float32(model.vis.map.znear * extent)
        self._far = np.float32(model.vis.map.zfar * extent)
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._seg = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._depth = np.empty((self.height, self.width), dtype=np.float32)

    def _set_camera(self, cam_to_world: np.ndarray, fovy_deg: float) -> None:
        T = np.asarray(cam_to_world, dtype=np.float64)
        self.model.cam_fovy[self._cam_id] = fovy_deg
        self.data.cam_xpos[self._cam_id] = T[:3, 3]
        self.data.cam_xmat[self._cam_id] = (T[:3, :3] @ _CV_TO_MJ).reshape(-1)
        self.mj.mjv_updateScene(
            self.model,
            self.data,
            self._opt,
            None,
            self._cam,
            self.mj.mjtCatBit.mjCAT_ALL.value,
            self._scene,
        )
        self._scene.flags[self.mj.mjtRndFlag.mjRND_SHADOW] = self.shadows

    # -- passes -----------------------------------------------------------------------------
    def _rgb_pass(self) -> np.ndarray:
        mj = self.mj
        mj.mjr_render(self._rect, self._scene, self._ctx)
        mj.mjr_readPixels(self._rgb, None, self._rect, self._ctx)
        return np.flipud(self._rgb).copy()

    def _seg_depth_pass(self) -> tuple[np.ndarray, np.ndarray]:
        mj = self.mj
        flags = self._scene.flags
        saved = flags.copy()
        flags[mj.mjtRndFlag.mjRND_SEGMENT] = True
        flags[mj.mjtRndFlag.mjRND_IDCOLOR] = True
        flags[mj.mjtRndFlag.mjRND_SHADOW] = False
        try:
            mj.mjr_render(self._rect, self._scene, self._ctx)
            mj.mjr_readPixels(self._seg, self._depth, self._rect, self._ctx)
        finally:
            np.copyto(flags, saved)
        seg = np.flipud(self._seg)
        code = (
            seg[..., 0].astype(np.int32)
            | (seg[..., 1].astype(np.int32) << 8)
            | (seg[..., 2].astype(np.int32) << 16)
        )
        lut = np.zeros(self._scene.ngeom + 2, dtype=np.int32)
        geom_type = mj.mjtObj.mjOBJ_GEOM
        for i in range(self._scene.ngeom):
            g = self._scene.geoms[i]
            if g.objtype == geom_type and 0 <= g.objid < len(self.geom_objects):
                lut[g.segid + 1] = self.geom_objects[g.objid]
        mask = lut[np.clip(code, 0, len(lut) - 1)]
        return self._linear_depth(np.flipud(self._depth)), mask

    def _linear_depth(self, buf: np.ndarray) -> np.ndarray:
        """Reverse-Z window depth (1 at near, 0 at far) to metric z-depth, 0 where empty."""
        near, far = self._near, self._far
        c_coef = -(far + near) / (far - near)
        d_coef = -(np.float32(2) * far * near) / (far - near)
        c_coef = np.float32(-0.5) * c_coef - np.float32(0.5)
        d_coef = np.float32(-0.5) * d_coef
        b64 = buf.astype(np.float64)
        with np.errstate(divide="ignore"):
            z = d_coef / (b64 + c_coef)
        z = np.where(b64 > 0, z, 0.0)
        return z.astype(np.float32)

    def render(
        self, cam_to_world: np.ndarray, fovy_deg: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """RGB uint8 (H, W, 3), z-depth float32 (H, W) metres and instance mask int32 (H, W)
        of object ids (0 = room / nothing), for a camera-to-world pose (X right, Y down,
        Z forward) and vertical FoV in degrees."""
        self._set_camera(cam_to_world, fovy_deg)
        rgb = self._rgb_pass()
        depth, mask = self._seg_depth_pass()
        return rgb, depth, mask

    def render_rgb(self, cam_to_world: np.ndarray, fovy_deg: float) -> np.ndarray:
        """The RGB pass only."""
        self._set_camera(cam_to_world, fovy_deg)
        return self._rgb_pass()

    # -- ray casting ------------------------------------------------------------------------
    def raycast(
        self, cam_to_world: np.ndarray, K: np.ndarray, uv: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cast rays through pixel positions ``uv`` (N, 2) (u column, v row; OpenCV centres):
        object id hit (0 = room / nothing) and z-depth (0 = nothing) per ray, no GL needed."""
        mj = self.mj
        T = np.asarray(cam_to_world, dtype=np.float64)
        uv = np.asarray(uv, dtype=np.float64).reshape(-1, 2)
        rays_cam = np.concatenate([uv, np.ones((len(uv), 1))], axis=1) @ np.linalg.inv(K).T
        norms = np.linalg.norm(rays_cam, axis=1)
        dirs = (rays_cam / norms[:, None]) @ T[:3, :3].T
        n = len(uv)
        geomid = np.full(n, -1, dtype=np.int32)
        dist = np.full(n, -1.0, dtype=np.float64)
        mj.mj_multiRay(
            self.model,
            self.data,
            T[:3, 3].copy(),
            np.ascontiguousarray(dirs).ravel(),
            None,
            1,
            -1,
            geomid,
            dist,
            None,
            n,
            1e3,
        )
        hit = (geomid >= 0) & (dist >= 0)
        ids = np.where(hit, self.geom_objects[np.clip(geomid, 0, None)], 0).astype(np.int32)
        z = np.where(hit, dist / norms, 0.0)  # ray length along a unit ray -> z-depth
        return ids, z

    # -- lifetime ---------------------------------------------------------------------------
    def close(self) -> None:
        """Free the GL resources (idempotent)."""
        if getattr(self, "_ctx", None) is not None:
            self._gl.make_current()
            self._ctx.free()
            self._ctx = None
        if getattr(self, "_gl", None) is not None:
            self._gl.free()
            self._gl = None

    def __enter__(self) -> MujocoRenderer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
