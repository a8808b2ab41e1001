"""One geometry layer under everything: 9-DoF boxes, exact 3D IoU, cameras, FoV unification,
dataset box converters, the VST box answer format and bird's-eye-view renders.

Conventions: boxes ``[x, y, z, x_size, y_size, z_size, pitch, yaw, roll]`` in metres and degrees,
rotation ``Rotation.from_euler("xyz", [pitch, yaw, roll], degrees=True)``; camera frame X right,
Y down, Z forward (see :mod:`vst.geometry.boxes` and :mod:`vst.geometry.cameras`).

Names are loaded on first use, so ``import vst.geometry`` stays cheap (the IoU kernel pulls in
numba, the BEV renderer matplotlib).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # boxes
    "Box3D": "boxes",
    "BOX_EDGES": "boxes",
    "CORNER_SIGNS": "boxes",
    "as_boxes": "boxes",
    "box3d_corners": "boxes",
    "box3d_volume": "boxes",
    "box_rotations": "boxes",
    "euler_to_matrix": "boxes",
    "make_boxes": "boxes",
    "matrix_to_euler": "boxes",
    "transform_boxes": "boxes",
    # iou
    "bev_iou": "iou",
    "box3d_intersection_volume": "iou",
    "box3d_iou": "iou",
    # text
    "box3d_from_text": "text",
    "box3d_to_text": "text",
    # cameras
    "DEFAULT_UNIFIED_FOCAL": "cameras",
    "UNIFIED_FOCAL": "cameras",
    "FovUnified": "cameras",
    "Intrinsics": "cameras",
    "depth_to_points": "cameras",
    "focal_from_fov": "cameras",
    "fov_from_focal": "cameras",
    "fov_unify": "cameras",
    "invert_pose": "cameras",
    "is_rigid": "cameras",
    "make_pose": "cameras",
    "pan_tilt_roll_to_rotation": "cameras",
    "project_points": "cameras",
    "relative_pose": "cameras",
    "resize_to_unified": "cameras",
    "rotation_to_pan_tilt_roll": "cameras",
    "transform_points": "cameras",
    "unproject_points": "cameras",
    # conventions
    "from_aabb": "conventions",
    "from_corners": "conventions",
    "from_embodiedscan": "conventions",
    "from_omni3d": "conventions",
    "from_vsibench": "conventions",
    "to_embodiedscan": "conventions",
    "to_omni3d": "conventions",
    # bev
    "render_bev": "bev",
    "render_bev_with_layout": "bev",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'vst.geometry' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"vst.geometry.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
