"""Shared fixtures: small synthetic scenes rendered once per test session."""

from __future__ import annotations

from pathlib import Path

import pytest

ENGINE_SYNTH = dict(
    num_scenes=3,
    seed=5,
    width=320,
    height=240,
    single_views=3,
    multiview_sets=1,
    views_per_set=2,
    video_frames=16,
)
"""Synthetic scenes the engine tests share: 3 rooms, 320x240 frames (single views, one
two-view set, a 16-frame video each: room scans that show most of the floor)."""


@pytest.fixture(scope="session")
def engine_scene_dirs(tmp_path_factory) -> list[Path]:
    """Directories of the shared synthetic scenes (rendered once per session)."""
    from vst.scenes.sources.synthetic import SynthConfig, write_scenes

    out = tmp_path_factory.mktemp("engine_scenes")
    return write_scenes(SynthConfig(**ENGINE_SYNTH), out)


@pytest.fixture(scope="session")
def engine_scenes(engine_scene_dirs):
    """The shared synthetic scenes, loaded (pixels stay on disk until asked for)."""
    from vst.scenes import load_scene

    return [load_scene(p) for p in engine_scene_dirs]


@pytest.fixture(scope="module")
def tiny_task():
    """Register the engine tests' tiny task (``test_engine_runner.TinyTask``) for one module's
    tests, then remove it again; yields its name."""
    from test_engine_runner import TINY, TinyTask
    from vst.engine import registry

    registry.register(TinyTask)
    yield TINY
    registry._REGISTRY.pop(TINY, None)


@pytest.fixture(scope="session")
def all_tasks_run(engine_scene_dirs, tmp_path_factory) -> Path:
    """Output folder of one engine run of every registered task over the shared scenes (seed 3,
    8 samples asked per scene and task), made once per session."""
    from vst.engine.config import parse_config
    from vst.engine.runner import run

    out = tmp_path_factory.mktemp("all_tasks_run")
    config = parse_config(
        {
            "output": str(out),
            "seed": 3,
            "sources": [{"kind": "scenes", "path": str(Path(engine_scene_dirs[0]).parent)}],
            "tasks": [{"name": "*", "per_scene": 8}],
            "workers": 1,
        },
        "all-tasks test run",
    )
    run(config, progress=False)
    return out


@pytest.fixture(scope="session")
def clear_in_frame(engine_scenes) -> dict[tuple[str, str], set[int]]:
    """(scene id, frame id) -> ids of the objects *clearly* seen there by the engine's default
    rules: >= ``min_object_pixels`` mask pixels (counted from the mask file) and a visible
    fraction >= ``min_visible_fraction`` (``FrameView.visible_fraction``, tested on its own in
    test_visibility). The video tasks' tests recompute their truths from this."""
    import numpy as np

    from vst.engine.context import EngineContext, EngineSettings

    settings = EngineSettings()
    ctx = EngineContext(settings)
    out = {}
    for scene in engine_scenes:
        for frame in scene.frames:
            mask = frame.load_mask()
            ids, counts = np.unique(mask[mask > 0], return_counts=True)
            big = [
                int(o) for o, c in zip(ids, counts, strict=True) if c >= settings.min_object_pixels
            ]
            view = ctx.view(scene, frame)
            out[scene.id, frame.id] = {
                o for o in big if view.visible_fraction(o) >= settings.min_visible_fraction
            }
        ctx.reset()
    return out


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """The tiny random Qwen2.5-VL checkpoint (``vst models tiny``), built once per session."""
    from vst.models.tiny import build_tiny

    return build_tiny(tmp_path_factory.mktemp("tiny_model") / "tiny").path
