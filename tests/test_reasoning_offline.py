"""vst.reasoning.offline / samples / offline_run: offline CoT from ground truth, CoT samples and
their shards. The numbers and directions stated in the texts are parsed back out and compared
with values recomputed here from the scenes (world boxes and camera poses) and the engine's meta.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from vst.engine.tasks.single_image._refer import ground_truth_view
from vst.engine.verify import SceneIndex
from vst.engine.writer import iter_rows, list_shards
from vst.reasoning.facts import sample_facts
from vst.reasoning.offline import (
    COVERED_TASKS,
    explain_offline_cot,
    floor_angle,
    offline_cot,
)
from vst.reasoning.offline_run import DEFAULT_TASKS, offline_prompt_version, run_offline_cot
from vst.reasoning.samples import CotShardWriter, cot_sample
from vst.rewards import compute_reward

NUM = r"(-?\d+\.\d+)"
OBJ_LINE = re.compile(
    rf"^- (?P<name>.+): centre \(x, y, z\) = \({NUM}, {NUM}, {NUM}\), "
    rf"size {NUM} x {NUM} x {NUM} m$",
    re.M,
)
ATAN = re.compile(rf"atan2\({NUM}, {NUM}\) = {NUM} deg")
BEARING = re.compile(rf"clockwise from north: {NUM} - {NUM} = {NUM} deg \(mod 360\)")
DIST = re.compile(rf"= {NUM} m, i\.e\. {NUM} m\.")
LAYOUT = re.compile(
    rf"The (?P<name>.+) is about {NUM} m (ahead of|behind) (?:camera 1|the camera) and {NUM} m "
    rf"to its "
    rf"(left|right), {NUM} m (above|below) the camera's height\."
)


@pytest.fixture(scope="module")
def scenes(engine_scene_dirs) -> SceneIndex:
    return SceneIndex(Path(engine_scene_dirs[0]).parent)


@pytest.fixture(scope="module")
def covered(all_tasks_run, scenes) -> list[tuple[dict, object]]:
    """(row, facts) of every sample of the covered tasks."""
    out = []
    for shard in list_shards(all_tasks_run):
        for row in iter_rows(shard):
            if row["task"] in COVERED_TASKS:
                out.append((row, sample_facts(row, scenes)))
    assert {r["task"] for r, _ in out} == set(COVERED_TASKS)
    return out


def levelled(pose: np.ndarray, points: np.ndarray) -> np.ndarray:
    """World points on a camera's levelled axes, computed here from scratch: z = the optical
    axis projected on the floor, x = z turned 90 degrees clockwise seen from above (the
    camera's right), y = down."""
    fwd = pose[:2, 2] / np.linalg.norm(pose[:2, 2])
    right = np.array([fwd[1], -fwd[0]])
    d = np.atleast_2d(points) - pose[:3, 3]
    return np.stack([d[:, :2] @ right, -d[:, 2], d[:, :2] @ fwd], axis=1)


def world_centre(facts, oid: int) -> np.ndarray:
    return np.asarray(facts.mv.scene.object(oid).box[:3], dtype=float)


def test_floor_angle_by_hand():
    assert floor_angle(0.0, 1.0) == pytest.approx(0.0)
    assert floor_angle(1.0, 0.0) == pytest.approx(90.0)  # the right is clockwise of ahead
    assert floor_angle(0.0, -2.0) == pytest.approx(180.0)
    assert floor_angle(-1.0, 1.0) == pytest.approx(315.0)


def _check_objects(text: str, facts) -> dict[str, np.ndarray]:
    """Every stated object line matches the scene: centre (levelled, recomputed) and size."""
    by_name = {f.name: f for f in facts.objects}
    pose = facts.mv.frames[0].cam_to_world
    stated = {}
    lines = OBJ_LINE.findall(text)
    assert lines, text
    for name, *nums in lines:
        f = by_name[name]
        x, y, z, w, h, ln = (float(v) for v in nums)
        truth = levelled(pose, world_centre(facts, f.object_id))[0]
        assert np.allclose([x, y, z], truth, atol=0.0051), (facts.id, name)
        box = facts.mv.scene.object(f.object_id).box
        assert sorted([w, h, ln]) == pytest.approx(sorted(box[3:6]), abs=0.0051)
        stated[name] = truth
    return stated


def _check_si_distance(text: str, facts) -> None:
    """si_distance: the objects (named with the question's handles), their centres and the
    candidates' distances to the anchor, recomputed from the world boxes."""
    meta = facts.meta
    handle_of = {r["id"]: r["handle"] for r in meta["refs"]}
    pose = facts.mv.frames[0].cam_to_world
    lines = OBJ_LINE.findall(text)
    ids = [meta["anchor_id"], *meta["candidate_ids"]]
    assert len(lines) == len(ids)
    for (name, *nums), oid in zip(lines, ids, strict=True):
        assert handle_of[oid] in name and facts.mv.scene.object(oid).label in name
        truth = levelled(pose, world_centre(facts, oid))[0]
        assert np.allclose([float(v) for v in nums[:3]], truth, atol=0.0051)
    anchor = world_centre(facts, meta["anchor_id"])
    truth = [np.linalg.norm(world_centre(facts, c) - anchor) for c in meta["candidate_ids"]]
    assert [float(d) for d, _ in DIST.findall(text)] == pytest.approx(truth, abs=0.0011)


def test_num_states_the_scene_and_computes(covered):
    counts = dict.fromkeys(COVERED_TASKS, 0)
    for _, facts in covered:
        cot = offline_cot(facts, "num")
        assert cot is not None, explain_offline_cot(facts, "num")
        text, meta = cot.reasoning, facts.meta
        counts[facts.task] += 1
        if facts.task == "mi_object_object":
            centres = _check_objects(text, facts)
            ids = {f.name: f.object_id for f in facts.objects}
            if meta["kind"] == "direction":
                ((_, _, bearing),) = BEARING.findall(text)
                assert float(bearing) == pytest.approx(meta["bearing_deg"], abs=0.051)
                (dx1, dz1, _), (dx2, dz2, a2) = ATAN.findall(text)
                n, o, t = (
                    world_centre(facts, meta[k]) for k in ("north_id", "origin_id", "target_id")
                )
                pose = facts.mv.frames[0].cam_to_world
                ln, lo, lt = levelled(pose, np.stack([n, o, t]))
                assert [float(dx1), float(dz1)] == pytest.approx(
                    [ln[0] - lo[0], ln[2] - lo[2]], abs=0.0051
                )
                assert [float(dx2), float(dz2)] == pytest.approx(
                    [lt[0] - lo[0], lt[2] - lo[2]], abs=0.0051
                )
                want = math.degrees(math.atan2(lt[0] - lo[0], lt[2] - lo[2])) % 360
                assert float(a2) == pytest.approx(want, abs=0.051)
                assert (
                    text.rstrip(".").endswith(meta["direction"])
                    or f"{meta['direction']} is option" in text
                )
            elif meta["kind"] == "distance":
                ((d3, d2),) = DIST.findall(text)
                a, b = meta["object_ids"]
                truth = float(np.linalg.norm(world_centre(facts, a) - world_centre(facts, b)))
                assert float(d3) == pytest.approx(truth, abs=0.0011)
                assert float(d2) == pytest.approx(meta["distance_m"], abs=0.0051)
                assert f"{float(d2):.2f} m" == facts.answer
            else:  # closer: the two distances to the anchor
                stated = [float(d) for d, _ in DIST.findall(text)]
                anchor = world_centre(facts, meta["anchor_id"])
                truth = [
                    np.linalg.norm(world_centre(facts, c) - anchor) for c in meta["candidate_ids"]
                ]
                assert stated == pytest.approx(meta["distances"], abs=0.0011)
                assert stated == pytest.approx(truth, abs=0.0011)
            assert set(centres) <= set(ids)
        elif facts.task == "mi_camera_object":
            _check_objects(text, facts)
            if meta["kind"] == "distance":
                ((d3, _),) = DIST.findall(text)
                assert float(d3) == pytest.approx(meta["distance_m"], abs=0.0011)
            else:
                ((_, _, bearing),) = BEARING.findall(text)
                assert float(bearing) == pytest.approx(meta["bearing_deg"], abs=0.051)
        elif facts.task == "mi_camera_camera":
            poses = [f.cam_to_world for f in facts.mv.frames]
            m = re.search(rf"Camera 2: centre \(x, y, z\) = \({NUM}, {NUM}, {NUM}\)", text)
            c2 = levelled(poses[0], poses[1][:3, 3])[0]
            assert [float(v) for v in m.groups()] == pytest.approx(list(c2), abs=0.0051)
            if meta["kind"] == "position":
                ((_, _, angle),) = ATAN.findall(text)
                assert float(angle) == pytest.approx(meta["angle_deg"], abs=0.051)
            else:
                turn = re.search(rf"mod 360 = {NUM} deg", text).group(1)
                assert float(turn) == pytest.approx(meta["turn_deg"], abs=0.051)
        elif facts.task == "si_distance":
            _check_si_distance(text, facts)
        elif facts.task == "si_depth_point":
            depth = ground_truth_view(facts.mv.scene, meta["frame_ids"][0]).depth
            stated = re.findall(
                rf"Point ([A-D]) at \((\d+), (\d+)\) in the image: depth {NUM} m", text
            )
            assert [p for p, *_ in stated] == [p["label"] for p in meta["points"]]
            for (_, u, v, d), p in zip(stated, meta["points"], strict=True):
                assert [int(u), int(v)] == p["xy"]
                assert float(d) == pytest.approx(
                    float(depth[p["pixel"][1], p["pixel"][0]]), abs=0.0051
                )
        else:  # mi_camera_motion
            pan, tilt, roll = meta["pan_tilt_roll_deg"]
            m = re.search(
                rf"pan {NUM} deg \(> 0 right\), tilt {NUM} deg \(> 0 up\), roll {NUM}", text
            )
            assert [float(v) for v in m.groups()] == pytest.approx([pan, tilt, roll], abs=0.051)
            m = re.search(rf"levelled frame: \(x, y, z\) = \({NUM}, {NUM}, {NUM}\) m", text)
            poses = [f.cam_to_world for f in facts.mv.frames]
            c2 = levelled(poses[0], poses[1][:3, 3])[0]
            assert [float(v) for v in m.groups()] == pytest.approx(
                meta["translation_m"], abs=0.0051
            )
            assert [float(v) for v in m.groups()] == pytest.approx(list(c2), abs=0.0051)
            if meta["family"] == "translation_distance":
                ((d3, _),) = DIST.findall(text)
                assert float(d3) == pytest.approx(meta["distance_m"], abs=0.0011)
            assert "Parallax check" in text
    assert all(counts.values()), counts


def test_rt_layout_sentences_match_the_scene(covered):
    checked = 0
    for _, facts in covered:
        cot = offline_cot(facts, "rt")
        assert cot is not None
        text, meta = cot.reasoning, facts.meta
        assert "centre (x, y, z)" not in text  # rt: sentences, not coordinates
        pose = facts.mv.frames[0].cam_to_world
        by_name = {f.name: f for f in facts.objects}
        if facts.task == "si_distance":
            handle_of = {r["id"]: r["handle"] for r in meta["refs"]}
            for f in facts.objects:
                h = handle_of.get(f.object_id)
                by_name[f.label if h in (None, f.label) else f"{f.label} ({h})"] = f
        if facts.task == "si_depth_point":
            depth = ground_truth_view(facts.mv.scene, meta["frame_ids"][0]).depth
            d = [float(depth[p["pixel"][1], p["pixel"][0]]) for p in meta["points"]]
            near_to_far = ", ".join(meta["points"][k]["label"] for k in np.argsort(d))
            assert f"From near to far the points are {near_to_far}." in text
        for name, depth, ahead, side_m, side, height, updown in LAYOUT.findall(text):
            x, y, z = levelled(pose, world_centre(facts, by_name[name].object_id))[0]
            assert float(depth) == pytest.approx(abs(z), abs=0.051)
            assert float(side_m) == pytest.approx(abs(x), abs=0.051)
            assert float(height) == pytest.approx(abs(y), abs=0.051)
            if abs(z) > 0.05:
                assert (ahead == "ahead of") == (z > 0), (facts.id, name)
            if abs(x) > 0.05:
                assert (side == "right") == (x > 0), (facts.id, name)
            if abs(y) > 0.05:
                assert (updown == "below") == (y > 0)
            checked += 1
        if facts.task in ("mi_object_object", "mi_camera_object") and "direction" in meta:
            assert f"it lies to the {meta['direction']}" in text
        if facts.task == "mi_camera_camera":
            poses = [f.cam_to_world for f in facts.mv.frames]
            x, _, z = levelled(poses[0], poses[1][:3, 3])[0]
            m = re.search(
                r"Camera 2 stands about (\S+) m (ahead of|behind) camera 1 and (\S+) m to its "
                r"(left|right)",
                text,
            )
            assert float(m.group(1)) == pytest.approx(abs(z), abs=0.051)
            assert (m.group(2) == "ahead of") == (z >= 0) and (m.group(4) == "right") == (x >= 0)
            if meta["kind"] == "position":
                assert f"so it is at the {meta['direction']}" in text
            else:
                assert f"so it faces {meta['direction']}" in text
        if facts.task == "mi_camera_motion":
            pan = meta["pan_tilt_roll_deg"][0]
            if round(abs(pan)):
                side = "right" if pan > 0 else "left"
                assert f"turned {round(abs(pan))} degrees to the {side}" in text
            tx = meta["translation_m"][0]
            assert f"m to the {'right' if tx >= 0 else 'left'}," in text
    assert checked > 50


def test_no_invented_objects(covered):
    """Apart from the objects' own names (as the question words them), the texts name no
    scene category that the sample's facts do not hold."""
    vocab = set().union(*(f.scene_labels for _, f in covered))
    for _, facts in covered:
        for kind in ("num", "rt"):
            text = offline_cot(facts, kind).reasoning
            for f in sorted(facts.objects, key=lambda f: -len(f.name)):
                text = text.replace(f.name, "")
            for label in vocab - facts.labels:
                assert not re.search(rf"(?<![\w-]){re.escape(label)}(e?s)?(?![\w-])", text, re.I), (
                    facts.id,
                    kind,
                    label,
                )


@pytest.mark.parametrize("kind", ["num", "rt"])
def test_every_cot_ends_in_the_right_answer(covered, kind):
    n = 0
    for row, facts in covered:
        cot = offline_cot(facts, kind)
        assert cot is not None
        assert cot.answer == row["messages"][-1]["content"][0]["text"]  # the reference reply
        score = compute_reward(f"<think>{cot.reasoning}</think> {cot.answer}", facts.reward)
        assert (score["accuracy"], score["format"]) == (1.0, 1.0), (facts.id, cot)
        n += 1
    assert n == len(covered) >= 80


def test_deterministic_and_uncovered(covered, all_tasks_run, scenes):
    row, facts = covered[0]
    again = sample_facts(row, scenes)
    for kind in ("num", "rt"):
        assert offline_cot(facts, kind) == offline_cot(again, kind)
    with pytest.raises(ValueError, match="unknown offline CoT kind"):
        offline_cot(facts, "rt_bev")
    other = next(
        r for s in list_shards(all_tasks_run) for r in iter_rows(s) if r["task"] == "si_depth_order"
    )
    f = sample_facts(other, scenes)
    assert offline_cot(f, "num") is None
    assert explain_offline_cot(f, "num") == "no offline CoT for task 'si_depth_order'"
    # a meta whose answer disagrees with the scene is skipped, never explained wrongly
    bad = type(facts)(**{**facts.__dict__, "meta": {**facts.meta, "direction": "nowhere"}})
    if "direction" in facts.meta:
        assert offline_cot(bad, "num") is None


PROV = {"source": "offline", "kind": "num", "prompt_version": "0123456789ab"}


def test_cot_sample_contract(covered):
    row, facts = next((r, f) for r, f in covered if f.task == "mi_object_object")
    cot = offline_cot(facts, "num")
    s = cot_sample(row, cot.reasoning, cot.answer, PROV)
    assert s.messages[0]["role"] == "system" and "<think>" in s.messages[0]["content"][0]["text"]
    assert s.messages[1]["content"] == [
        {"type": c["type"], "text": c["text"]} if c["type"] == "text" else {"type": c["type"]}
        for c in row["messages"][0]["content"]
    ]
    assert s.messages[-1]["content"][0]["text"] == f"<think>{cot.reasoning}</think> {cot.answer}"
    assert s.meta["cot"] == {
        **PROV,
        "teacher": None,
        "attempts": 1,
        "tokens": {"prompt": 0, "completion": 0},
        "parent_id": row["id"],
    }
    assert s.meta["scene_id"] == facts.meta["scene_id"] and s.answer == cot.answer
    assert len(s.images) == 2 and s.id != row["id"]
    # from the facts: the same images, labelled, then the question
    sf = cot_sample(facts, cot.reasoning, cot.answer, PROV)
    assert [c.get("text") for c in sf.messages[1]["content"]] == [
        "Image 1:",
        None,
        "Image 2:",
        None,
        facts.question,
    ]
    # a revised question replaces the question text only
    sq = cot_sample(row, cot.reasoning, cot.answer, PROV, question="Where is it?")
    assert sq.messages[1]["content"][-1] == {"type": "text", "text": "Where is it?"}
    assert [c["type"] for c in sq.messages[1]["content"]] == [
        c["type"] for c in s.messages[1]["content"]
    ]
    wrong = "Z" if facts.reward["mode"] == "mcq" else "nowhere"
    with pytest.raises(ValueError, match=f"sample {row['id']}: answer .* accuracy 0"):
        cot_sample(row, cot.reasoning, wrong, PROV)
    with pytest.raises(ValueError, match="think tags"):
        cot_sample(row, "a </think> b", cot.answer, PROV)
    for bad, msg in (
        ({**PROV, "kind": "deep"}, "provenance kind"),
        ({**PROV, "prompt_version": "xyz"}, "12 hex"),
        ({**PROV, "attempts": 0}, "attempts"),
        ({**PROV, "source": "magic"}, "provenance source"),
    ):
        with pytest.raises(ValueError, match=msg):
            cot_sample(row, cot.reasoning, cot.answer, bad)


def test_run_offline_cot_shards_train_and_resume(all_tasks_run, engine_scene_dirs, tmp_path):
    from vst.train.data import open_source, source_from_dict

    scenes_dir = Path(engine_scene_dirs[0]).parent
    out = tmp_path / "cot"
    rep = run_offline_cot(all_tasks_run, scenes_dir, out, limit=3, shard_size=5)
    assert set(rep.tasks) == set(DEFAULT_TASKS)
    for t in rep.tasks.values():
        assert t.seen == 3 and dict(t.kept) == {"num": 3, "rt": 3} and not t.skipped
        assert t.length_stats()["min"] > 20
    assert rep.kept == 24 and len(rep.shards) == 5  # 24 samples, 5 per shard
    assert json.loads((out / "offline_report.json").read_text())["kept"] == 24
    assert rep.lines()[0].startswith("offline CoT (num, rt)")
    src = open_source(
        source_from_dict({"kind": "vst", "path": str(out / "data"), "system": "think"}, "t")
    )
    examples = list(src.examples())
    assert len(examples) == 24 and not src.skipped
    originals = {r["id"] for s in list_shards(all_tasks_run) for r in iter_rows(s)}
    for shard in list_shards(out):
        for r in iter_rows(shard):
            cot = json.loads(r["meta"])["cot"]
            assert cot["source"] == "offline" and cot["parent_id"] in originals
            assert cot["prompt_version"] == offline_prompt_version(cot["kind"])
    # a rerun resumes: nothing new, everything counted as resumed
    again = run_offline_cot(all_tasks_run, scenes_dir, out, limit=3, shard_size=5)
    assert again.kept == 0 and again.resumed == 24 and again.shards == []
    assert len(list_shards(out)) == 5
    # the same input gives the same shard names
    other = run_offline_cot(all_tasks_run, scenes_dir, tmp_path / "cot2", limit=3, shard_size=5)
    assert [p.name for p in other.shards] == [p.name for p in rep.shards]
    # an interrupted run (a shard lost) is completed by the rerun
    list_shards(out)[-1].unlink()
    done = run_offline_cot(all_tasks_run, scenes_dir, out, limit=3, shard_size=5)
    assert done.kept == 4 and done.resumed == 20
    assert (
        len(
            list(
                open_source(
                    source_from_dict(
                        {"kind": "vst", "path": str(out / "data"), "system": "think"}, "t"
                    )
                ).examples()
            )
        )
        == 24
    )


def test_writer_rejects_non_cot_and_bad_settings(tmp_path):
    with pytest.raises(ValueError, match="shard_size"):
        CotShardWriter(tmp_path, shard_size=0)
    with pytest.raises(ValueError, match="image_format"):
        CotShardWriter(tmp_path, image_format="GIF")
    from vst.engine.sample import Sample, assistant, user

    plain = Sample(
        "t",
        "single_image",
        [user("q"), assistant("a")],
        [],
        "a",
        {"mode": "exact", "ground_truth": "a"},
    )
    with pytest.raises(ValueError, match="not a CoT sample"):
        CotShardWriter(tmp_path).add(plain)
    with pytest.raises(ValueError, match="kinds must be"):
        run_offline_cot(tmp_path, tmp_path, tmp_path / "o", kinds=("rt_bev",))


def test_run_counts_hostile_rows_and_goes_on(all_tasks_run, engine_scene_dirs, tmp_path):
    from vst.engine.writer import ShardWriter

    rows = [
        r
        for s in list_shards(all_tasks_run)
        for r in iter_rows(s)
        if r["task"] == "mi_camera_camera"
    ][:3]
    meta = json.loads(rows[1]["meta"])
    hostile = [
        {**rows[0], "meta": "{not json"},
        {**rows[1], "meta": json.dumps({**meta, "scene_id": "nowhere"})},
        {**rows[2], "meta": json.dumps({**meta, "kind": "sideways"}), "id": "odd0000000000000"},
        rows[2],
    ]
    run = tmp_path / "run" / "data"
    run.mkdir(parents=True)
    with ShardWriter(run / "shard-00000-000000000000.parquet") as w:
        for r in hostile:
            w.write(r)
        w.close()
    rep = run_offline_cot(tmp_path / "run", Path(engine_scene_dirs[0]).parent, tmp_path / "o")
    t = rep.tasks["mi_camera_camera"]
    assert t.seen == 4 and dict(t.kept) == {"num": 1, "rt": 1}
    assert t.skipped["no scene facts: meta is not valid JSON"] == 2
    assert sum(n for r, n in t.skipped.items() if "is not under the scenes folder" in r) == 2
    assert t.skipped["mi_camera_camera question kind 'sideways' is not covered"] == 2
    assert any("skipped 2: no scene facts: meta is not valid JSON" in x for x in rep.lines())
