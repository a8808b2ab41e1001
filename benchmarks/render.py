"""Synthetic rendering speed: frames (RGB + z-depth + instance mask, 640x480) per second per core.

Run: ``.venv/bin/python benchmarks/render.py [--frames 30] [--width 640 --height 480]``.

One furnished room (seed 0, scene 0 of the default config) is loaded once; camera poses are
sampled before timing. "Per core" = frames / CPU seconds of the whole process (Mesa's llvmpipe
rasterises on several threads; ``time.process_time`` counts all of them), so the figure does
not depend on how many cores the machine has. Wall-clock fps is printed too.

Measured paths, all on the same poses:

* ``vst``: :class:`MujocoRenderer.render`, one GL context and model reused, two passes per frame
  (shaded RGB; segmentation read together with depth);
* baseline ``rgb only``: the shaded pass alone (what an RGB-only dataset would cost);
* baseline ``naive``: ``mujoco.Renderer`` re-created per frame with three passes (RGB, depth,
  segmentation), the straightforward way to use MuJoCo's Python API;
* ``end to end``: :func:`generate_scene` for a whole default scene (camera search, rendering,
  annotation) plus writing it (PNG / npz encoding).

Budget: ``vst`` >= 2 frames per second per core; prints PASS/FAIL and exits 1 on FAIL.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

BUDGET = 2.0
"""Required frames (RGB + depth + mask, 640x480) per second per core."""


def _timed(fn, n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of ``n`` calls of ``fn(i)``."""
    w0, c0 = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return time.perf_counter() - w0, time.process_time() - c0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--naive-frames", type=int, default=8)
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    args = ap.parse_args()

    from vst.scenes.io import save_scene
    from vst.scenes.sources.synthetic.cameras import CameraSampler
    from vst.scenes.sources.synthetic.config import SynthConfig
    from vst.scenes.sources.synthetic.generate import (
        _probe,
        generate_scene,
        make_layout,
    )
    from vst.scenes.sources.synthetic.mjcf import build_mjcf, sample_style
    from vst.scenes.sources.synthetic.render import (
        MujocoRenderer,
        import_mujoco,
        intrinsics_matrix,
    )

    W, H = args.width, args.height
    cfg = SynthConfig(seed=0, width=W, height=H)
    layout, rngs = make_layout(cfg, 0)
    xml = build_mjcf(layout.room, layout.objects, sample_style(rngs["style"], layout.room), W, H)
    fovy = 55.0
    K = intrinsics_matrix(W, H, fovy)
    mj = import_mujoco()
    print(
        f"MUJOCO_GL={os.environ.get('MUJOCO_GL')}  mujoco {mj.__version__}  "
        f"{W}x{H}  room {layout.room_type} ({layout.room.kind}, {layout.room.area:.1f} m2), "
        f"{len(layout.objects)} objects  cpus={os.cpu_count()}"
    )

    rows: list[tuple[str, int, float, float]] = []
    with MujocoRenderer(W, H) as r:
        t0 = time.perf_counter()
        r.load(xml)
        load_s = time.perf_counter() - t0
        sampler = CameraSampler(np.random.default_rng(0), layout, _probe(r, K, W, H))
        poses = [sampler.single_view()[0] for _ in range(args.frames)]
        r.render(poses[0], fovy)  # warm-up (shader compilation)
        wall, cpu = _timed(lambda i: r.render(poses[i], fovy), args.frames)
        rows.append(("vst: RGB + depth + mask", args.frames, wall, cpu))
        wall, cpu = _timed(lambda i: r.render_rgb(poses[i], fovy), args.frames)
        rows.append(("baseline: RGB only", args.frames, wall, cpu))

    model = mj.MjModel.from_xml_string(xml)
    data = mj.MjData(model)
    mj.mj_forward(model, data)
    cam_id = mj.mj_name2id(model, mj.mjtObj.mjOBJ_CAMERA, "cam")
    model.cam_fovy[cam_id] = fovy
    cv_to_mj = np.diag([1.0, -1.0, -1.0])

    def naive(i: int) -> None:
        T = poses[i % len(poses)]
        data.cam_xpos[cam_id] = T[:3, 3]
        data.cam_xmat[cam_id] = (T[:3, :3] @ cv_to_mj).ravel()
        with mj.Renderer(model, H, W) as rr:
            rr.update_scene(data, cam_id)
            rr.render()
            rr.enable_depth_rendering()
            rr.render()
            rr.enable_segmentation_rendering()
            rr.render()

    wall, cpu = _timed(naive, args.naive_frames)
    rows.append(("baseline: naive mujoco.Renderer per frame", args.naive_frames, wall, cpu))

    end_cfg = SynthConfig(seed=0, width=W, height=H)
    with MujocoRenderer(W, H) as r, tempfile.TemporaryDirectory() as tmp:
        w0, c0 = time.perf_counter(), time.process_time()
        scene = generate_scene(end_cfg, 0, r)
        save_scene(scene, os.path.join(tmp, scene.id))
        rows.append(
            (
                "end to end: generate + write a scene",
                len(scene.frames),
                time.perf_counter() - w0,
                time.process_time() - c0,
            )
        )

    print(f"model load (compile + GL upload): {load_s * 1000:.0f} ms")
    print(f"{'path':<44}{'frames':>7}{'wall fps':>10}{'fps/core':>10}{'ms CPU/frame':>14}")
    for name, n, wall, cpu in rows:
        print(f"{name:<44}{n:>7}{n / wall:>10.2f}{n / cpu:>10.2f}{1000 * cpu / n:>14.1f}")
    ours = rows[0][1] / rows[0][3]
    naive_fps = rows[2][1] / rows[2][3]
    rgb_fps = rows[1][1] / rows[1][3]
    print(
        f"vst vs naive: {ours / naive_fps:.1f}x faster per core; depth + mask cost "
        f"{100 * (rgb_fps / ours - 1):.0f}% over RGB only"
    )
    ok = ours >= BUDGET
    print(
        f"{'PASS' if ok else 'FAIL'}: {ours:.2f} frames/s/core (RGB + depth + mask, {W}x{H}) "
        f"vs budget >= {BUDGET}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
