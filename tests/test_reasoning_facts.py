"""vst.reasoning.facts: a sample's scene facts rebuilt from its meta and the scenes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vst.engine.verify import SceneIndex
from vst.engine.writer import iter_rows, list_shards
from vst.reasoning.facts import referred_objects, sample_facts


def _rows(run: Path, task: str) -> list[dict]:
    return [r for s in list_shards(run) for r in iter_rows(s) if r["task"] == task]


def test_camera_object_distance_and_names(all_tasks_run, engine_scene_dirs):
    scenes = SceneIndex(Path(engine_scene_dirs[0]).parent)
    rows = [r for r in _rows(all_tasks_run, "mi_camera_object") if "distance_m" in r["meta"]]
    assert rows
    for row in rows:
        meta = json.loads(row["meta"])
        facts = sample_facts(row, scenes, bev=True)
        (target,) = [f for f in facts.objects if f.object_id == meta["target_id"]]
        # the engine's own distance, from camera 1 to the object's box centre
        assert target.distance == pytest.approx(meta["distance_m"], abs=1e-6)
        mention = meta["refs"][0]["mention"]
        assert target.name == f"{target.label} ({mention})" and mention in facts.question
        assert facts.bev is not None and facts.bev.size[0] > 0
        assert len(facts.images) == len(meta["frame_ids"]) == 2
        assert facts.cameras[0].startswith("image 1: the reference camera")
        assert facts.labels <= facts.scene_labels and facts.reward == json.loads(row["reward"])


def test_object_object_refers_to_its_objects(all_tasks_run, engine_scene_dirs):
    scenes = SceneIndex(Path(engine_scene_dirs[0]).parent)
    for row in _rows(all_tasks_run, "mi_object_object"):
        meta = json.loads(row["meta"])
        ids, mentions = referred_objects(meta)
        facts = sample_facts(row, scenes)
        assert [f.object_id for f in facts.objects] == ids
        assert set(meta["object_ids"]) <= set(ids) and set(mentions) <= set(ids)
        scene = scenes.get(meta["scene_id"])
        for f in facts.objects:
            assert f.label == scene.object(f.object_id).label


def test_camera_motion_without_objects_uses_the_visible_ones(all_tasks_run, engine_scene_dirs):
    scenes = SceneIndex(Path(engine_scene_dirs[0]).parent)
    row = _rows(all_tasks_run, "mi_camera_motion")[0]
    facts = sample_facts(row, scenes)
    assert [f.object_id for f in facts.objects] == list(facts.mv.visible_any)
    assert len(facts.cameras) == 2 and facts.answer


def test_bad_rows_name_the_sample(all_tasks_run, engine_scene_dirs, tmp_path):
    scenes = SceneIndex(Path(engine_scene_dirs[0]).parent)
    row = _rows(all_tasks_run, "mi_camera_motion")[0]
    meta = json.loads(row["meta"])
    for change, message in (
        ({"scene_id": "nowhere"}, "is not under the scenes folder"),
        ({"frame_ids": ["nope"]}, "has no frame 'nope'"),
        ({"scene_id": None}, "no scene_id"),
    ):
        bad = {**row, "meta": json.dumps({**meta, **change})}
        with pytest.raises(ValueError, match=message) as err:
            sample_facts(bad, scenes)
        assert row["id"] in str(err.value)
