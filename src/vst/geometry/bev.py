"""Bird's-eye-view (top view) images of 9-DoF boxes and cameras, for BEV-annotated prompting.

Two frames are supported, both seen from ABOVE and both a proper (unmirrored) view:

* ``frame="camera"`` (default): a camera frame, X right, Y down (gravity, for a level camera),
  Z forward. The page shows the X-Z plane: X to the right, Z (forward) up the page, Y pointing
  into the page (X x Z = -Y, toward the viewer above). "North" = +Z.
* ``frame="world_z_up"``: a scene world frame with Z up. The page shows the X-Y plane: X to the
  right, Y up the page, Z out of the page toward the viewer. "North" = +Y.

Boxes are drawn as their footprint (the convex hull of all 8 corners of
:func:`~vst.geometry.boxes.box3d_corners` projected onto the plane, so tilted boxes are right)
with a marker on their front (+local X) side. Cameras are 4x4 camera-to-frame poses drawn as
frustum triangles spanning their horizontal FoV. Units are metres.

Rendering uses ``matplotlib.figure.Figure`` with the Agg canvas directly, so importing or using
this module never changes the user's matplotlib backend or pyplot state.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from matplotlib.artist import Artist
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import FancyArrow, Patch, Polygon
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from numpy.typing import ArrayLike
from PIL import Image

from vst.geometry.boxes import as_boxes, box3d_corners, box_rotations
from vst.geometry.cameras import Intrinsics
from vst.geometry.polygons import convex_hull

__all__ = [
    "BEV_COLORS",
    "BevFrame",
    "BevLayout",
    "display_labels",
    "footprint",
    "plane_coords",
    "render_bev",
    "render_bev_with_layout",
]

BevFrame = Literal["camera", "world_z_up"]

BEV_COLORS: tuple[str, ...] = (
    "#1f77b4",
    "#d62728",
    "#2ca02c",
    "#ff7f0e",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#17becf",
    "#bcbd22",
    "#7f7f7f",
    "#393b79",
    "#ad494a",
    "#637939",
    "#e7969c",
    "#7b4173",
    "#3182bd",
)
"""Default box colours (distinct, colour-blind friendly first ten); cycled when exhausted."""

_CAMERA_COLOR = "#222222"
_DEFAULT_HFOV = 60.0

_FRAME_INFO: dict[str, dict[str, str]] = {
    "camera": {
        "xlabel": "X (right) [m]",
        "ylabel": "Z (forward) [m]",
        "north": "N\n(+Z)",
        "caption": "Top view of the camera frame, seen from above: X right, Z (forward) up the "
        "page,\nY (down) into the page. Arrows on boxes mark their front (+X) side. Units: m.",
    },
    "world_z_up": {
        "xlabel": "X [m]",
        "ylabel": "Y [m]",
        "north": "N\n(+Y)",
        "caption": "Top view of the world frame (Z up), seen from above: X right, Y up the page,"
        "\nZ (up) out of the page. Arrows on boxes mark their front (+X) side. Units: m.",
    },
}


def _check_frame(frame: str) -> None:
    if frame not in _FRAME_INFO:
        raise ValueError(f"frame must be 'camera' or 'world_z_up', got {frame!r}")


def plane_coords(points: ArrayLike, frame: BevFrame = "camera") -> np.ndarray:
    """Page coordinates ``(..., 2)`` (right, up) in metres of 3D points ``(..., 3)``.

    ``frame="camera"``: ``(x, z)``; ``frame="world_z_up"``: ``(x, y)``.
    """
    _check_frame(frame)
    pts = np.asarray(points, dtype=np.float64)
    if pts.shape[-1] != 3:
        raise ValueError(f"points must have shape (..., 3), got {pts.shape}")
    return pts[..., [0, 2]] if frame == "camera" else pts[..., [0, 1]]


def footprint(box: ArrayLike, frame: BevFrame = "camera") -> np.ndarray:
    """Footprint polygon ``(K, 2)`` (counter-clockwise on the page) of one box: the convex hull
    of its 8 corners projected onto the top-view plane."""
    corners = box3d_corners(as_boxes(box)[:1])[0]
    return convex_hull(plane_coords(corners, frame))


def display_labels(labels: Sequence[str]) -> list[str]:
    """Labels numbered when they repeat, in order: ``["chair", "table", "chair"]`` ->
    ``["chair 1", "table", "chair 2"]``."""
    counts = Counter(labels)
    seen: Counter[str] = Counter()
    out = []
    for lab in labels:
        if counts[lab] > 1:
            seen[lab] += 1
            out.append(f"{lab} {seen[lab]}")
        else:
            out.append(str(lab))
    return out


@dataclass(frozen=True)
class BevLayout:
    """Where things landed in a rendered BEV image, for tests and for placing annotations.

    ``data_to_pixel`` is a 3x3 affine map from page coordinates (metres, see
    :func:`plane_coords`) to image pixels ``(col, row)`` (row 0 at the top of the PNG).
    ``plot_area`` is the axes box in pixels ``(col0, row0, col1, row1)``.
    """

    frame: BevFrame
    width: int
    height: int
    data_to_pixel: np.ndarray
    plot_area: tuple[float, float, float, float]
    xlim: tuple[float, float]
    ylim: tuple[float, float]
    colors: tuple[tuple[float, float, float], ...]
    labels: tuple[str, ...]

    def pixel_of(self, points: ArrayLike) -> np.ndarray:
        """Image pixel ``(col, row)`` of 3D points ``(N, 3)`` (or ``(3,)``) in this frame."""
        uv = plane_coords(np.atleast_2d(np.asarray(points, dtype=np.float64)), self.frame)
        hom = np.concatenate([uv, np.ones((uv.shape[0], 1))], axis=1) @ self.data_to_pixel.T
        return hom[:, :2]


def _as_poses(cameras: ArrayLike | Sequence[ArrayLike] | None) -> np.ndarray:
    if cameras is None:
        return np.zeros((0, 4, 4))
    poses = np.asarray(cameras, dtype=np.float64)
    if poses.shape == (4, 4):
        poses = poses[None]
    if poses.ndim != 3 or poses.shape[1:] != (4, 4):
        raise ValueError(f"cameras must be 4x4 camera-to-frame poses, got shape {poses.shape}")
    return poses


def _hfovs(intrinsics: Intrinsics | Sequence[Intrinsics] | None, n: int) -> list[float]:
    if intrinsics is None:
        return [_DEFAULT_HFOV] * n
    if isinstance(intrinsics, Intrinsics):
        return [intrinsics.hfov] * n
    intr = list(intrinsics)
    if len(intr) != n:
        raise ValueError(f"got {len(intr)} intrinsics for {n} cameras")
    return [i.hfov for i in intr]


def _frustum(pose: np.ndarray, hfov: float, length: float, frame: BevFrame) -> np.ndarray:
    """Page polygon (3, 2) of a camera's horizontal FoV: centre and two far corners at
    ``length`` metres along the optical axis."""
    half = math.tan(math.radians(min(hfov, 170.0)) / 2.0)
    local = np.array([[0.0, 0.0, 0.0], [-half * length, 0.0, length], [half * length, 0.0, length]])
    pts = local @ pose[:3, :3].T + pose[:3, 3]
    return plane_coords(pts, frame)


def _nice_step(span: float) -> float:
    raw = span / 8.0
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 5.0, 10.0):
        if raw <= m * mag:
            return m * mag
    return 10.0 * mag


def _place_labels(
    ax: Axes,
    canvas: FigureCanvasAgg,
    items: list[tuple[Text, np.ndarray]],
    fixed: list[Text],
    pad: float,
) -> None:
    """Greedy label placement: put each box label above, below, right or left of its footprint
    (then further above / below), taking the first spot that overlaps no earlier label and stays
    inside the axes; fall back to the first candidate."""
    ax.apply_aspect()
    renderer = canvas.get_renderer()
    axes_box = ax.get_window_extent(renderer)
    placed: list[Bbox] = [t.get_window_extent(renderer).padded(2) for t in fixed]
    for text, foot in items:
        (x0, y0), (x1, y1) = foot.min(axis=0), foot.max(axis=0)
        cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
        text.set_position((cx, y1 + pad))
        text.set_ha("center")
        text.set_va("bottom")
        height = text.get_window_extent(renderer).height
        per_px = 1.0 / max(abs(ax.transData.get_affine().get_matrix()[1, 1]), 1e-12)
        line = height * per_px * 1.1
        candidates = [
            ((cx, y1 + pad), "center", "bottom"),
            ((cx, y0 - pad), "center", "top"),
            ((x1 + pad, cy), "left", "center"),
            ((x0 - pad, cy), "right", "center"),
            ((cx, y1 + pad + line), "center", "bottom"),
            ((cx, y0 - pad - line), "center", "top"),
            ((cx, y1 + pad + 2 * line), "center", "bottom"),
            ((cx, y0 - pad - 2 * line), "center", "top"),
            ((cx, cy), "center", "center"),
        ]
        chosen = candidates[0]
        for cand in candidates:
            text.set_position(cand[0])
            text.set_ha(cand[1])
            text.set_va(cand[2])
            ext = text.get_window_extent(renderer).padded(2)
            inside = (
                ext.x0 >= axes_box.x0
                and ext.x1 <= axes_box.x1
                and ext.y0 >= axes_box.y0
                and ext.y1 <= axes_box.y1
            )
            if inside and not any(ext.overlaps(b) for b in placed):
                chosen = cand
                break
        text.set_position(chosen[0])
        text.set_ha(chosen[1])
        text.set_va(chosen[2])
        placed.append(text.get_window_extent(renderer).padded(2))


def render_bev_with_layout(
    boxes: ArrayLike,
    labels: Sequence[str],
    cameras: ArrayLike | Sequence[ArrayLike] | None = None,
    path: str | Path | None = None,
    *,
    frame: BevFrame = "camera",
    title: str | None = None,
    intrinsics: Intrinsics | Sequence[Intrinsics] | None = None,
    colors: Sequence[str | tuple[float, float, float]] | None = None,
    figsize: tuple[float, float] = (8.0, 8.0),
    dpi: int = 100,
    frustum_length: float | None = None,
    room: ArrayLike | None = None,
) -> tuple[Image.Image, BevLayout]:
    """Like :func:`render_bev`, also returning the :class:`BevLayout` (data -> pixel map)."""
    _check_frame(frame)
    arr = as_boxes(boxes) if np.size(boxes) else np.zeros((0, 9))
    labels = [str(lab) for lab in labels]
    if len(labels) != len(arr):
        raise ValueError(f"got {len(labels)} labels for {len(arr)} boxes")
    if not np.all(np.isfinite(arr)):
        raise ValueError("boxes must be finite")
    poses = _as_poses(cameras)
    hfovs = _hfovs(intrinsics, len(poses))
    if colors is None:
        cols = [to_rgb(BEV_COLORS[i % len(BEV_COLORS)]) for i in range(len(arr))]
    else:
        if len(colors) != len(arr):
            raise ValueError(f"got {len(colors)} colors for {len(arr)} boxes")
        cols = [to_rgb(c) for c in colors]
    names = display_labels(labels)
    info = _FRAME_INFO[frame]

    feet = [footprint(b, frame) for b in arr]
    centers = plane_coords(arr[:, 0:3], frame) if len(arr) else np.zeros((0, 2))
    cam_xy = plane_coords(poses[:, :3, 3], frame) if len(poses) else np.zeros((0, 2))
    room_xy = np.zeros((0, 2)) if room is None else np.asarray(room, dtype=np.float64)
    if room_xy.ndim != 2 or room_xy.shape[1] != 2 or not np.all(np.isfinite(room_xy)):
        raise ValueError(
            f"room must be a finite (K, 2) polygon in the view plane, got {room_xy.shape}"
        )
    pts = np.concatenate([*feet, cam_xy, room_xy], axis=0)
    if len(pts) == 0:
        pts = np.array([[-1.0, -1.0], [1.0, 1.0]])
    lo, hi = pts.min(axis=0), pts.max(axis=0)
    extent = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0))
    if frustum_length is None:
        frustum_length = float(np.clip(0.15 * extent, 0.4, 3.0))
    frusta = [_frustum(p, h, frustum_length, frame) for p, h in zip(poses, hfovs, strict=True)]
    if frusta:
        allpts = np.concatenate([pts, *frusta], axis=0)
        lo, hi = allpts.min(axis=0), allpts.max(axis=0)
    span = float(max(hi[0] - lo[0], hi[1] - lo[1], 1.0)) * 1.2 + 0.5
    mid = (lo + hi) / 2.0
    xlim = (mid[0] - span / 2.0, mid[0] + span / 2.0)
    ylim = (mid[1] - span / 2.0, mid[1] + span / 2.0)

    fig = Figure(figsize=figsize, dpi=dpi, facecolor="white")
    canvas = FigureCanvasAgg(fig)
    ax = fig.add_axes((0.10, 0.17, 0.80, 0.75))
    ax.set_xlim(*xlim)
    ax.set_ylim(*ylim)
    ax.set_aspect("equal", adjustable="box")
    step = _nice_step(span)
    ax.set_xticks(np.arange(math.ceil(xlim[0] / step), math.floor(xlim[1] / step) + 1) * step)
    ax.set_yticks(np.arange(math.ceil(ylim[0] / step), math.floor(ylim[1] / step) + 1) * step)
    ax.grid(True, color="#d0d0d0", linewidth=0.8, zorder=0)
    ax.set_axisbelow(True)
    ax.tick_params(labelsize=10)
    ax.set_xlabel(info["xlabel"], fontsize=12)
    ax.set_ylabel(info["ylabel"], fontsize=12)
    ax.set_title(title or f"Bird's-eye view ({frame} frame)", fontsize=14)
    ax.axhline(0.0, color="#9a9a9a", linewidth=1.0, zorder=0.5)
    ax.axvline(0.0, color="#9a9a9a", linewidth=1.0, zorder=0.5)

    if len(room_xy) >= 3:  # the room's floor: drawn under everything
        ax.add_patch(
            Polygon(
                room_xy,
                closed=True,
                facecolor="#f3efe6",
                edgecolor="#555555",
                linewidth=2.0,
                zorder=0.8,
                label="room floor",
            )
        )

    # boxes: footprint, front arrow, label
    rots = box_rotations(arr) if len(arr) else np.zeros((0, 3, 3))
    label_fs = 11 if len(arr) <= 12 else 9
    box_texts: list[tuple[Text, np.ndarray]] = []
    for i, (foot, col, name) in enumerate(zip(feet, cols, names, strict=True)):
        ax.add_patch(
            Polygon(
                foot, closed=True, facecolor=(*col, 0.30), edgecolor=col, linewidth=2.5, zorder=2
            )
        )
        c3 = arr[i, 0:3]
        front3 = c3 + rots[i] @ np.array([arr[i, 3] / 2.0, 0.0, 0.0])
        c2, f2 = centers[i], plane_coords(front3, frame)
        if np.linalg.norm(f2 - c2) > 1e-3 * extent:
            ax.annotate(
                "",
                xy=tuple(f2),
                xytext=tuple(c2),
                arrowprops={
                    "arrowstyle": "-|>",
                    "color": col,
                    "lw": 2.0,
                    "mutation_scale": 14,
                    "shrinkA": 0,
                    "shrinkB": 0,
                },
                zorder=3,
            )
        ax.plot([c2[0]], [c2[1]], marker="o", markersize=4, color=col, zorder=3)
        text = ax.text(
            float(c2[0]),
            float(c2[1]),
            name,
            fontsize=label_fs,
            color="black",
            zorder=5,
            bbox={
                "boxstyle": "round,pad=0.2",
                "facecolor": "white",
                "edgecolor": col,
                "alpha": 0.85,
                "linewidth": 1.2,
            },
        )
        box_texts.append((text, foot if len(foot) else c2[None, :]))

    # cameras: FoV triangle, optical axis, index label
    cam_texts: list[Text] = []
    for k, (poly, pose) in enumerate(zip(frusta, poses, strict=True)):
        ax.add_patch(
            Polygon(
                poly,
                closed=True,
                facecolor=(0.2, 0.2, 0.2, 0.08),
                edgecolor=_CAMERA_COLOR,
                linewidth=1.6,
                linestyle="--",
                zorder=4,
            )
        )
        ax.plot([poly[0, 0]], [poly[0, 1]], marker="s", markersize=7, color=_CAMERA_COLOR, zorder=4)
        # label behind the camera (opposite its optical axis), or below it when looking down
        back = plane_coords(pose[:3, 3] - pose[:3, 2], frame) - poly[0]
        if np.linalg.norm(back) < 0.2:
            back = np.array([0.0, -1.0])
        offset = back / np.linalg.norm(back) * 0.045 * span
        cam_texts.append(
            ax.text(
                float(poly[0, 0] + offset[0]),
                float(poly[0, 1] + offset[1]),
                f"cam {k + 1}",
                ha="center",
                va="center",
                fontsize=11,
                fontweight="bold",
                color=_CAMERA_COLOR,
                zorder=6,
                bbox={
                    "boxstyle": "round,pad=0.15",
                    "facecolor": "white",
                    "edgecolor": "none",
                    "alpha": 0.8,
                },
            )
        )
    _place_labels(ax, canvas, box_texts, cam_texts, pad=0.012 * span)

    # north arrow, in the right margin so it never hides data
    fig.patches.append(
        FancyArrow(
            0.945,
            0.78,
            0.0,
            0.10,
            width=0.006,
            head_width=0.025,
            head_length=0.03,
            length_includes_head=True,
            color="black",
            transform=fig.transFigure,
            figure=fig,
        )
    )
    fig.text(0.945, 0.765, info["north"], ha="center", va="top", fontsize=11, fontweight="bold")

    handles: list[Artist] = [
        Line2D(
            [],
            [],
            color="#555555",
            marker=r"$\rightarrow$",
            linestyle="none",
            markersize=14,
            label="box front (+X)",
        ),
    ]
    if len(poses):
        hf = sorted({round(h, 1) for h in hfovs})
        hf_txt = ", ".join(f"{h:g}" for h in hf)
        handles.append(
            Patch(
                facecolor=(0.2, 0.2, 0.2, 0.08),
                edgecolor=_CAMERA_COLOR,
                linestyle="--",
                label=f"camera FoV (hfov {hf_txt}°)",
            )
        )
    fig.legend(
        handles=handles,
        loc="center",
        bbox_to_anchor=(0.5, 0.095),
        ncol=len(handles),
        fontsize=10,
        frameon=False,
    )
    fig.text(0.5, 0.015, info["caption"], ha="center", va="bottom", fontsize=10, color="#333333")

    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    image = Image.fromarray(rgba[..., :3].copy(), mode="RGB")
    height = rgba.shape[0]
    # display coords have their origin at the bottom-left; PNG rows grow downwards
    flip = np.array([[1.0, 0.0, 0.0], [0.0, -1.0, float(height)], [0.0, 0.0, 1.0]])
    data_to_pixel = flip @ ax.transData.get_affine().get_matrix()
    x0, y0, x1, y1 = ax.get_window_extent().extents
    layout = BevLayout(
        frame=frame,
        width=rgba.shape[1],
        height=height,
        data_to_pixel=data_to_pixel,
        plot_area=(float(x0), float(height - y1), float(x1), float(height - y0)),
        xlim=tuple(float(v) for v in ax.get_xlim()),  # type: ignore[arg-type]
        ylim=tuple(float(v) for v in ax.get_ylim()),  # type: ignore[arg-type]
        colors=tuple(tuple(float(v) for v in c) for c in cols),  # type: ignore[misc]
        labels=tuple(names),
    )
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        image.save(path, format="PNG")
    return image, layout


def render_bev(
    boxes: ArrayLike,
    labels: Sequence[str],
    cameras: ArrayLike | Sequence[ArrayLike] | None = None,
    path: str | Path | None = None,
    *,
    frame: BevFrame = "camera",
    title: str | None = None,
    intrinsics: Intrinsics | Sequence[Intrinsics] | None = None,
    colors: Sequence[str | tuple[float, float, float]] | None = None,
    room: ArrayLike | None = None,
) -> Image.Image:
    """Render a top view of ``boxes`` ``(N, 9)`` and camera poses; save a PNG to ``path``.

    ``labels`` (N,) name the boxes (repeats are numbered, "chair 1", "chair 2"). ``cameras`` are
    4x4 camera-to-``frame`` poses (e.g. from :func:`~vst.geometry.cameras.relative_pose` with
    the first camera as the frame), drawn as FoV triangles labelled "cam 1", "cam 2", ... using
    the hfov of ``intrinsics`` (one :class:`~vst.geometry.cameras.Intrinsics` for all cameras or
    one per camera; 60 degrees if None). ``frame`` picks the view plane (see the module
    docstring): ``"camera"`` X right / Z up the page, ``"world_z_up"`` X right / Y up the page.
    ``colors`` overrides the box colours (any matplotlib colour). ``room`` is an optional floor
    polygon ``(K, 2)`` in the view plane's coordinates (e.g. ``Room.floor_polygon`` for
    ``"world_z_up"``), drawn under the boxes. Returns an 800x800 RGB image.
    """
    image, _ = render_bev_with_layout(
        boxes,
        labels,
        cameras,
        path,
        frame=frame,
        title=title,
        intrinsics=intrinsics,
        colors=colors,
        room=room,
    )
    return image
