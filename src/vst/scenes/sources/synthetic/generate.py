"""Orchestration: config -> rooms -> objects -> cameras -> renders -> scene directories.

Scene ``k`` of seed ``s`` is ``synth_s{s}_{k:05d}``; all its random choices come from
``SeedSequence([s, k])`` (spawned into independent streams for the room, the objects, the
appearance and the cameras), so it is the same bytes whether 1 or 100 scenes are generated.

Frames of a scene (ids): ``single_000``..., multi-view sets ``mv00_0``, ``mv00_1``..., and the
video ``video_000``... with timestamps ``i / video_fps``. ``Scene.attributes["synthetic"]``
records the room type and shape, the frame groups, each multi-view motion and the config hash.

Object boxes are world boxes ``[x, y, z, L, W, H, 0, 0, yaw]`` with local X = the object's front,
local Z = up (see :mod:`.layout`); each object's ``attributes`` says so (``"axes"``) and holds
its colour, variant, placement and supporter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vst.scenes.annotate import truncation, visible_pixels
from vst.scenes.floor_coverage import clip_floor_coverage
from vst.scenes.io import SCENE_FILE, save_scene
from vst.scenes.model import Frame, Object3D, Room, Scene
from vst.scenes.sources.synthetic.cameras import CameraSampler, ScanScore
from vst.scenes.sources.synthetic.config import SynthConfig
from vst.scenes.sources.synthetic.layout import Layout, place_objects, sample_counts, sample_room
from vst.scenes.sources.synthetic.mjcf import build_mjcf, sample_style
from vst.scenes.sources.synthetic.render import MujocoRenderer, intrinsics_matrix

GENERATOR = "vst.synthetic"
GENERATOR_VERSION = 2
"""2: videos are room scans (:mod:`.cameras`). Scenes made by another version are remade."""
OBJECT_AXES = "x=front, y=left, z=up"
PROBE_GRID = (32, 24)
"""Rays across the image (columns, rows) used to choose views."""
SCAN_CELL_M = 0.2
"""Floor grid cell (metres) when scoring candidate video scans (the engine's is finer)."""


class GenerationError(RuntimeError):
    """A scene could not be generated (e.g. no object fits in the room)."""


def scene_id(seed: int, index: int) -> str:
    """The id (and directory name) of scene ``index`` of ``seed``."""
    return f"synth_s{seed}_{index:05d}"


def scene_rngs(seed: int, index: int) -> dict[str, np.random.Generator]:
    """Independent generators for the parts of scene ``index``, from ``SeedSequence``."""
    names = ("room", "objects", "style", "cameras")
    children = np.random.SeedSequence([seed, index]).spawn(len(names))
    return {n: np.random.default_rng(c) for n, c in zip(names, children, strict=True)}


def make_layout(cfg: SynthConfig, index: int) -> tuple[Layout, dict[str, np.random.Generator]]:
    """Room and placed objects of scene ``index`` (no rendering)."""
    rngs = scene_rngs(cfg.seed, index)
    room = sample_room(rngs["room"], cfg.room_side, cfg.room_height, cfg.room_shape)
    room_type = None
    if cfg.room_types:
        room_type = cfg.room_types[int(rngs["room"].integers(len(cfg.room_types)))]
    room_type, counts = sample_counts(rngs["objects"], room_type, cfg.categories, room.area)
    layout = place_objects(rngs["objects"], room, counts, room_type)
    if not layout.objects:
        raise GenerationError(
            f"scene {scene_id(cfg.seed, index)}: no object fits in the {room.kind} room of "
            f"{room.area:.1f} m2 (tried {', '.join(sorted(set(layout.skipped)))}); use larger "
            f"rooms (room_side) or other categories"
        )
    return layout, rngs


def _probe_uv(width: int, height: int) -> np.ndarray:
    """Pixel centres (rows * cols, 2) of the :data:`PROBE_GRID` rays, row-major."""
    cols, rows = PROBE_GRID
    us = (np.arange(cols) + 0.5) * width / cols - 0.5
    vs = (np.arange(rows) + 0.5) * height / rows - 0.5
    uu, vv = np.meshgrid(us, vs)
    return np.stack([uu.ravel(), vv.ravel()], axis=1)


def _scan_score(
    renderer: MujocoRenderer, K: np.ndarray, width: int, height: int, layout: Layout
) -> ScanScore:
    """Scores a candidate video by the floor coverage ``video_metric`` uses
    (:func:`vst.scenes.floor_coverage.clip_floor_coverage`) on z-depth ray-cast at
    the :data:`PROBE_GRID` pixels (nothing rendered), cells of :data:`SCAN_CELL_M`."""
    cols, rows = PROBE_GRID
    uv = _probe_uv(width, height)
    room = Room(floor_polygon=layout.room.polygon, floor_z=0.0, ceiling_z=layout.room.height)
    boxes = np.stack([o.box() for o in layout.objects])

    def score(poses: list[np.ndarray]) -> tuple[float, float]:
        depths = [renderer.raycast(T, K, uv)[1].reshape(rows, cols) for T in poses]
        frames = [
            Frame(id=f"scan_{i}", K=K, width=width, height=height, cam_to_world=T)
            for i, T in enumerate(poses)
        ]
        near = min(float(np.median(z[z > 0])) if (z > 0).any() else 0.0 for z in depths)
        return clip_floor_coverage(room, boxes, frames, depths, SCAN_CELL_M), near

    return score


def _probe(renderer: MujocoRenderer, K: np.ndarray, width: int, height: int):
    uv = _probe_uv(width, height)

    def probe(T: np.ndarray) -> tuple[dict[int, int], float]:
        ids, z = renderer.raycast(T, K, uv)
        counts = np.bincount(ids, minlength=1)
        hits = z[z > 0]
        return (
            {int(i): int(c) for i, c in enumerate(counts) if i > 0 and c > 0},
            float(np.median(hits)) if len(hits) else 0.0,
        )

    return probe


def _objects(layout: Layout) -> list[Object3D]:
    out = []
    for o in layout.objects:
        attrs: dict[str, Any] = {
            "axes": OBJECT_AXES,
            "variant": o.built.variant.name,
            "color": o.built.color,
            "placement": o.placement,
            "parts": len(o.built.model.parts),
        }
        if o.support is not None:
            attrs["supported_by"] = o.support
        out.append(Object3D(id=o.id, label=o.category, box=o.box(), attributes=attrs))
    return out


def generate_scene(cfg: SynthConfig, index: int, renderer: MujocoRenderer) -> Scene:
    """Build, render and annotate scene ``index`` (pixels in memory; see :func:`write_scenes`)."""
    if (renderer.width, renderer.height) != (cfg.width, cfg.height):
        raise ValueError(
            f"renderer is {renderer.width}x{renderer.height}, config wants {cfg.width}x{cfg.height}"
        )
    sid = scene_id(cfg.seed, index)
    layout, rngs = make_layout(cfg, index)
    style = sample_style(rngs["style"], layout.room)
    renderer.load(
        build_mjcf(layout.room, layout.objects, style, cfg.width, cfg.height, shadows=cfg.shadows)
    )
    cam_rng = rngs["cameras"]
    fovy = float(cam_rng.uniform(*cfg.vfov))
    K = intrinsics_matrix(cfg.width, cfg.height, fovy)
    sampler = CameraSampler(
        cam_rng,
        layout,
        _probe(renderer, K, cfg.width, cfg.height),
        min_visible=cfg.min_visible,
        scan_score=(
            _scan_score(renderer, K, cfg.width, cfg.height, layout) if cfg.video_frames else None
        ),
    )
    poses: list[tuple[str, np.ndarray, float | None]] = []
    groups: dict[str, Any] = {"single": [], "multiview": [], "video": None}
    try:
        for i in range(cfg.single_views):
            T, _ = sampler.single_view()
            poses.append((f"single_{i:03d}", T, None))
            groups["single"].append(f"single_{i:03d}")
        for s in range(cfg.multiview_sets):
            Ts, motions = sampler.multi_view(cfg.views_per_set, cfg.min_shared, cfg.min_unique)
            ids = [f"mv{s:02d}_{v}" for v in range(len(Ts))]
            poses += [(fid, T, None) for fid, T in zip(ids, Ts, strict=True)]
            groups["multiview"].append({"frames": ids, "motions": motions})
        if cfg.video_frames:
            Ts, kind = sampler.video(cfg.video_frames)
            ids = [f"video_{i:03d}" for i in range(len(Ts))]
            poses += [
                (fid, T, i / cfg.video_fps) for i, (fid, T) in enumerate(zip(ids, Ts, strict=True))
            ]
            groups["video"] = {"frames": ids, "kind": kind, "fps": cfg.video_fps}
    except RuntimeError as exc:
        raise GenerationError(f"scene {sid}: {exc}") from exc

    objects = _objects(layout)
    boxes = {o.id: o.box for o in objects}
    frames = []
    for fid, T, ts in poses:
        rgb, depth, mask = renderer.render(T, fovy)
        vis = visible_pixels(mask)
        world_to_cam = np.linalg.inv(T)
        trunc = {
            k: round(truncation(boxes[k], world_to_cam, K, cfg.width, cfg.height), 6) for k in vis
        }
        frames.append(
            Frame(
                id=fid,
                K=K,
                width=cfg.width,
                height=cfg.height,
                cam_to_world=T,
                timestamp=ts,
                image=rgb,
                depth=depth,
                mask=mask.astype(np.uint16),
                visible_pixels=vis,
                truncation=trunc,
            )
        )
    # record which objects each multi-view pair really shares (from the masks)
    by_id = {f.id: f for f in frames}
    for g in groups["multiview"]:
        for m, (a, b) in zip(
            g["motions"], zip(g["frames"], g["frames"][1:], strict=False), strict=True
        ):
            va, vb = set(by_id[a].visible_pixels), set(by_id[b].visible_pixels)
            m["shared"] = sorted(va & vb)
            m["unique"] = sorted(va ^ vb)
    room = layout.room
    attributes = {
        "synthetic": {
            "generator": GENERATOR,
            "version": GENERATOR_VERSION,
            "seed": cfg.seed,
            "index": index,
            "config_hash": cfg.scene_hash(),
            "room_type": layout.room_type,
            "room_shape": room.kind,
            "room_size_m": [
                round(room.bbox[2] - room.bbox[0], 4),
                round(room.bbox[3] - room.bbox[1], 4),
            ],
            "floor": style.floor,
            "lights": len(style.lights),
            "vfov_deg": fovy,
            "skipped_categories": layout.skipped,
            "frames": groups,
            "object_axes": OBJECT_AXES,
        }
    }
    return Scene(
        id=sid,
        source="synthetic",
        split=cfg.split,
        frames=frames,
        objects=objects,
        room=Room(floor_polygon=room.polygon, floor_z=0.0, ceiling_z=room.height),
        attributes=attributes,
    )


def _done(path: Path, cfg: SynthConfig) -> bool:
    """True if ``path`` already holds this scene made with the same options."""
    f = path / SCENE_FILE
    if not f.is_file():
        return False
    try:
        import json

        rec = json.loads(f.read_text(encoding="utf-8"))
        made = rec["attributes"]["synthetic"]
        return made["config_hash"] == cfg.scene_hash() and made["version"] == GENERATOR_VERSION
    except (OSError, ValueError, KeyError, TypeError):
        return False


def iter_scenes(cfg: SynthConfig) -> Iterator[Scene]:
    """Generate the configured scenes one at a time (one renderer for all of them)."""
    with MujocoRenderer(cfg.width, cfg.height, shadows=cfg.shadows) as renderer:
        for k in range(cfg.start_index, cfg.start_index + cfg.num_scenes):
            yield generate_scene(cfg, k, renderer)


def write_scenes(
    cfg: SynthConfig,
    out_dir: str | Path,
    overwrite: bool = False,
    on_scene: Callable[[Path, bool], None] | None = None,
) -> list[Path]:
    """Generate and save the configured scenes under ``out_dir/<scene id>``; return their
    directories. Scenes already there with the same options are skipped unless ``overwrite``
    (so an interrupted run resumes). ``on_scene(path, skipped)`` is called after each one."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    renderer: MujocoRenderer | None = None
    try:
        for k in range(cfg.start_index, cfg.start_index + cfg.num_scenes):
            path = out / scene_id(cfg.seed, k)
            skipped = not overwrite and _done(path, cfg)
            if not skipped:
                if renderer is None:
                    renderer = MujocoRenderer(cfg.width, cfg.height, shadows=cfg.shadows)
                save_scene(generate_scene(cfg, k, renderer), path)
            paths.append(path)
            if on_scene is not None:
                on_scene(path, skipped)
    finally:
        if renderer is not None:
            renderer.close()
    return paths
