"""Multi-frame helpers on the shared synthetic scenes."""

from __future__ import annotations

import numpy as np

from vst.engine.context import EngineContext
from vst.engine.multiview import MultiView, frame_pairs, video_fps, video_frames
from vst.geometry.boxes import box3d_corners


def test_video_frames_and_fps(engine_scenes):
    scene = engine_scenes[0]
    frames = video_frames(scene)
    assert [f.id for f in frames] == [f"video_{k:03d}" for k in range(16)]
    assert video_fps(frames) == 2.0  # the synthetic default: timestamps 0.5 s apart


def test_multiview_reference_frame(engine_scenes):
    scene = engine_scenes[0]
    ctx = EngineContext()
    pairs = frame_pairs(ctx, scene, min_shared=1, min_unique=1)
    assert pairs, "the synthetic multi-view set shares objects and has unique ones"
    f1, f2 = pairs[0]
    mv = MultiView(scene, [f1, f2], ctx)
    # camera 1 sits at the origin of its own frame; camera 2's pose maps its points into it
    np.testing.assert_allclose(mv.camera_pose(0), np.eye(4), atol=1e-12)
    T = mv.camera_pose(1)
    for oid in mv.shared():
        # the same box, seen from camera 2 and moved into camera 1's frame, has the same corners
        in_2 = ctx.view(scene, f2).box_cam(oid)
        c2 = box3d_corners(in_2)[0] @ T[:3, :3].T + T[:3, 3]
        c1 = box3d_corners(mv.box_ref(oid))[0]
        d = np.linalg.norm(c2[:, None] - c1[None], axis=-1)
        assert d.min(axis=1).max() < 1e-9
        assert oid in mv.visible(0) and oid in mv.visible(1)
    for oid in mv.unique_to(0):
        assert ctx.view(scene, f2).pixel_counts.get(oid, 0) == 0
    assert set(mv.visible_any) == mv.visible(0) | mv.visible(1)
