"""Contact sheets of scenes (any source): frame thumbnails with projected 3D boxes, and a BEV.

Each thumbnail shows a frame's RGB image with the 12 edges of every visible object's 3D box
(clipped to ``z >= 0.05 m`` in front of the camera, then projected with the frame's K) and the
object's id and label. The BEV panel (``vst.geometry.bev.render_bev`` in the world frame, Z up)
shows every object footprint and the cameras of the frames on the sheet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from vst.geometry.boxes import BOX_EDGES, box3d_corners
from vst.geometry.overlay import clip_segment_front as _clip_segment
from vst.geometry.overlay import clip_segment_to_rect as _clip_2d
from vst.geometry.overlay import label_font as _font
from vst.scenes.model import Frame, Scene

PALETTE = [
    (230, 25, 75),
    (60, 180, 75),
    (255, 225, 25),
    (0, 130, 200),
    (245, 130, 48),
    (145, 30, 180),
    (70, 240, 240),
    (240, 50, 230),
    (210, 245, 60),
    (250, 190, 212),
    (0, 128, 128),
    (220, 190, 255),
    (170, 110, 40),
    (255, 250, 200),
    (128, 0, 0),
    (170, 255, 195),
    (128, 128, 0),
    (255, 215, 180),
    (0, 0, 128),
    (255, 255, 255),
]


def color_of(object_id: int) -> tuple[int, int, int]:
    """A stable colour per object id."""
    return PALETTE[(object_id - 1) % len(PALETTE)]


def draw_frame(scene: Scene, frame: Frame, width: int = 320, min_pixels: int = 1) -> Image.Image:
    """The frame's RGB image resized to ``width`` with projected boxes and labels of every
    object with at least ``min_pixels`` visible pixels (all objects if the frame has no
    visibility record)."""
    img = Image.fromarray(frame.load_image())
    scale = width / frame.width
    img = img.resize((width, round(frame.height * scale)), Image.Resampling.BILINEAR)
    draw = ImageDraw.Draw(img)
    font = _font(11)
    K = frame.K
    w2c = frame.world_to_cam
    ids = [o.id for o in scene.objects]
    if frame.visible_pixels:
        ids = [i for i in ids if frame.visible_pixels.get(i, 0) >= min_pixels]
    labels = []
    for oid in ids:
        obj = scene.object(oid)
        corners = box3d_corners(obj.box)[0] @ w2c[:3, :3].T + w2c[:3, 3]
        color = color_of(oid)
        pts2d = []
        for a, b in BOX_EDGES:
            seg = _clip_segment(corners[a], corners[b])
            if seg is None:
                continue
            uv = [((K @ p)[:2] / p[2] + 0.5) * scale for p in seg]
            clipped = _clip_2d(uv[0], uv[1], img.width, img.height)
            if clipped is None:
                continue
            draw.line(clipped, fill=color, width=2)
            pts2d += list(clipped)
        if pts2d:
            arr = np.array(pts2d)
            top = arr[np.argmin(arr[:, 1])]
            labels.append((top, f"{oid} {obj.label}", color))
    for top, text, color in labels:
        x = float(np.clip(top[0] - 15, 1, img.width - 60))
        y = float(np.clip(top[1] - 13, 1, img.height - 13))
        box = draw.textbbox((x, y), text, font=font)
        draw.rectangle(box, fill=(0, 0, 0))
        draw.text((x, y), text, fill=color, font=font)
    return img


def _pick_frames(scene: Scene, max_frames: int) -> list[Frame]:
    frames = scene.frames
    if len(frames) <= max_frames:
        return list(frames)
    idx = np.unique(np.linspace(0, len(frames) - 1, max_frames).round().astype(int))
    return [frames[i] for i in idx]


def contact_sheet(
    scene: Scene, max_frames: int = 12, columns: int = 4, thumb_width: int = 320, bev: bool = True
) -> Image.Image:
    """A grid of frame thumbnails with projected boxes, then the BEV of the scene."""
    frames = _pick_frames(scene, max_frames)
    thumbs = [draw_frame(scene, f, thumb_width) for f in frames]
    font = _font(14)
    th = max((t.height for t in thumbs), default=0) + 18
    cols = max(1, min(columns, len(thumbs)))
    rows = (len(thumbs) + cols - 1) // cols
    grid_w = cols * (thumb_width + 6) + 6
    grid_h = rows * (th + 6) + 6
    bev_img = None
    if bev and scene.objects:
        bev_img = _bev(scene, frames)
        if bev_img is not None:
            side = max(grid_h, 400)
            bev_img = bev_img.resize((side, side), Image.Resampling.LANCZOS)
    header = 30
    total_w = grid_w + (bev_img.width + 6 if bev_img is not None else 0)
    total_h = header + max(grid_h, bev_img.height + 6 if bev_img is not None else 0)
    sheet = Image.new("RGB", (total_w, total_h), (245, 245, 245))
    draw = ImageDraw.Draw(sheet)
    syn = scene.attributes.get("synthetic", {})
    room = ""
    if scene.room is not None:
        room = f", room {scene.room.area:.1f} sq m"
        if scene.room.height is not None:
            room += f" x {scene.room.height:.2f} m"
    kind = f" {syn['room_type']}" if "room_type" in syn else ""
    title = (
        f"{scene.id} ({scene.source}{kind}{room}): {len(scene.objects)} objects, "
        f"{len(scene.frames)} frames, showing {len(frames)}"
    )
    draw.text((8, 7), title, fill=(0, 0, 0), font=font)
    small = _font(12)
    for i, (f, t) in enumerate(zip(frames, thumbs, strict=True)):
        x = 6 + (i % cols) * (thumb_width + 6)
        y = header + 6 + (i // cols) * (th + 6)
        sheet.paste(t, (x, y))
        n_vis = len(f.visible_pixels)
        draw.text(
            (x + 2, y + t.height + 2),
            f"{f.id}  ({n_vis} objects visible)",
            fill=(0, 0, 0),
            font=small,
        )
    if bev_img is not None:
        sheet.paste(bev_img, (grid_w, header + 3))
    return sheet


def _bev(scene: Scene, frames: list[Frame]) -> Image.Image | None:
    try:
        from vst.geometry.bev import render_bev
        from vst.geometry.cameras import Intrinsics
    except ImportError:  # the BEV module is optional for this sheet
        return None
    cams = [f.cam_to_world for f in frames]
    intr = [Intrinsics.from_K(f.K, f.width, f.height) for f in frames]
    return render_bev(
        scene.boxes,
        scene.labels,
        cameras=cams,
        frame="world_z_up",
        title=f"{scene.id}: top view (world, Z up)",
        intrinsics=intr,
        colors=[tuple(c / 255 for c in color_of(o.id)) for o in scene.objects],
        room=None if scene.room is None else scene.room.floor_polygon,
    )


def write_contact_sheet(scene: Scene, out: str | Path, **kwargs) -> Path:
    """Save :func:`contact_sheet` as a PNG; return the path."""
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    contact_sheet(scene, **kwargs).save(path, format="PNG")
    return path
