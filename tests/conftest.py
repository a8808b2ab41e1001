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


VIEWER_PAGE_SIZE = 10
"""Samples per page of the viewer site the viewer tests share (small, so tasks have pages)."""


def write_hand_predictions(run: Path, path: Path) -> list[dict]:
    """A hand-written predictions JSONL (the line format of ``vst predict``) for the first three
    samples of every task of ``run``: choice 0 right (score 1), one wrong (score 0; for
    ``det3d`` a chair box 3 m ahead), one half right (score 0.5). Returns the records."""
    import json

    from vst.engine.writer import iter_rows, list_shards

    seen: dict[str, int] = {}
    records = []
    for shard in list_shards(run):
        for row in iter_rows(shard, ["id", "task", "answer", "reward"]):
            k = seen[row["task"]] = seen.get(row["task"], -1) + 1
            if k > 2:
                continue
            det3d = json.loads(row["reward"])["mode"] == "det3d"
            wrong = '[{"bbox_3d": [0, 0, 3, 1, 1, 1, 0, 0, 0], "label": "chair"}]' if det3d else "Z"
            text, score = [(row["answer"], 1.0), (wrong, 0.0), (row["answer"], 0.5)][k]
            records.append(
                {
                    "dataset": run.name,
                    "id": row["id"],
                    "task": row["task"],
                    "index": 0,
                    "request": f"hand-{k}",
                    "model": "hand-written",
                    "sampling": {"temperature": 0.0},
                    "system": None,
                    "text": text,
                    "answer": text,
                    "reward": {
                        "overall": score,
                        "accuracy": score,
                        "format": 1.0,
                        "checkable": True,
                    },
                    "reference": row["answer"],
                    "finish_reason": "stop",
                    "prompt_tokens": 100,
                    "completion_tokens": 5,
                }
            )
    path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
    return records


@pytest.fixture(scope="session")
def viewer_site(all_tasks_run, tmp_path_factory) -> tuple[Path, Path, list[dict]]:
    """``(site folder, predictions file, prediction records)``: the viewer site of
    ``all_tasks_run`` with hand-written predictions, ``VIEWER_PAGE_SIZE`` samples a page."""
    from vst.viz import build_site

    root = tmp_path_factory.mktemp("viewer")
    preds = root / "preds.jsonl"
    records = write_hand_predictions(all_tasks_run, preds)
    build_site(all_tasks_run, root / "site", preds, page_size=VIEWER_PAGE_SIZE)
    return root / "site", preds, records
