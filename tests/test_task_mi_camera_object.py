"""mi_camera_object: directions from a camera on constructed poses, answers against bearings and
distances recomputed here (atan2 of the camera's optical axis and of the floor vectors), the
"only in image 2" rule, margins, derive_answer, letter balance, determinism, phrasing."""

from __future__ import annotations

import math
import re
from collections import Counter
from functools import partial
from types import SimpleNamespace

import numpy as np
import pytest

from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.multi_image._compass import COMPASS, sector
from vst.engine.tasks.multi_image.camera_object import (
    DISTANCE_TEMPLATES,
    FACING_TEMPLATES,
    OBJECT_NORTH_TEMPLATES,
    CameraObject,
    camera_bearing,
)
from vst.testing.tasks import generate_samples

PER_SCENE = 250
CTX = EngineContext()


generate = partial(generate_samples, ctx=CTX)
"""``(scene, sample)`` pairs of a task over scenes (:func:`vst.testing.tasks.generate_samples`)."""


@pytest.fixture(scope="module")
def samples(engine_scenes):
    return generate(get_task("mi_camera_object"), engine_scenes, PER_SCENE)


_MASKS: dict = {}


def mask(scene, frame_id):
    key = (scene.id, frame_id)
    if key not in _MASKS:
        _MASKS[key] = scene.frame(frame_id).load_mask()
    return _MASKS[key]


def clockwise(north_xy, target_xy):
    """Clockwise angle seen from above (Z up) from north to target, by atan2 of each."""
    return (
        math.degrees(math.atan2(north_xy[1], north_xy[0]) - math.atan2(target_xy[1], target_xy[0]))
        % 360.0
    )


def margin(angle):
    return 22.5 - abs(((angle + 22.5) % 45.0) - 22.5)


def option_lines(text):
    return dict(re.findall(r"^([A-J])\. (.+)$", text, flags=re.M))


def upright_pose(eye, yaw_deg, tilt_deg=0.0):
    """Camera-to-world pose built by hand: optical axis at ``yaw_deg`` counter-clockwise from
    world +X (seen from above), tilted down by ``tilt_deg``; image X stays horizontal."""
    y, t = math.radians(yaw_deg), math.radians(tilt_deg)
    forward = np.array([math.cos(y) * math.cos(t), math.sin(y) * math.cos(t), -math.sin(t)])
    right = np.array([math.sin(y), -math.cos(y), 0.0])  # forward rotated -90 deg about +Z
    down = np.cross(forward, right)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, forward], axis=1)
    T[:3, 3] = eye
    return T


class StubScene:
    def __init__(self, centres, poses):
        self.centres, self.poses = centres, poses

    def object(self, oid):
        return SimpleNamespace(box=np.array([*self.centres[oid], 1, 1, 1, 0, 0, 0], float))

    def frame(self, fid):
        return SimpleNamespace(cam_to_world=self.poses[fid])


def test_directions_from_constructed_cameras():
    # camera at the origin looking along +Y (tilted down a little): +X is its right = east
    pose = upright_pose([0, 0, 1.5], 90.0, tilt_deg=20.0)
    assert np.allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3))
    assert np.linalg.det(pose[:3, :3]) == pytest.approx(1.0)
    # the image's right (camera X) is world +X when looking along +Y
    assert np.allclose(pose[:3, 0], [1, 0, 0])
    scene = StubScene(
        {
            "E": (2, 0, 0.5),
            "NW": (-1, 1, 0.2),
            "S": (0.1, -3, 1),
            "N": (0, 4, 2),
            "BEHIND": (0, -2, 0),
        },
        {"f": pose},
    )
    want = {"E": "east", "NW": "northwest", "S": "south", "N": "north"}
    for oid, word in want.items():
        assert COMPASS[sector(camera_bearing(scene, "f", oid, None))] == word
    # north = towards an object behind the camera (-Y): then +X is west
    assert COMPASS[sector(camera_bearing(scene, "f", "E", "BEHIND"))] == "west"
    assert COMPASS[sector(camera_bearing(scene, "f", "N", "BEHIND"))] == "south"
    # camera looking along +X: its right is -Y, so an object at -Y is east
    scene.poses["g"] = upright_pose([1, 1, 1.4], 0.0)
    scene.centres["R"] = (1.2, -2, 0.3)
    assert COMPASS[sector(camera_bearing(scene, "g", "R", None))] == "east"


def test_answers_follow_ground_truth(samples):
    kinds = Counter()
    for scene, s in samples:
        m = s.meta
        kinds[m["kind"]] += 1
        f1, f2 = m["frame_ids"]
        pose = scene.frame(f1).cam_to_world
        cam = pose[:3, 3]
        target = scene.object(m["target_id"]).box[:3]
        seen1 = [bool((mask(scene, f1) == o).any()) for o in m["object_ids"]]
        if m["kind"] == "distance":
            assert not seen1[0], "the object is shown only by image 2"
            assert (mask(scene, f2) == m["target_id"]).sum() >= 400
            d = float(np.sqrt(((target - cam) ** 2).sum()))
            assert s.answer == f"{math.floor(d * 100 + 0.5) / 100:.2f} m"
            assert s.reward["mode"] == "numeric"
            assert s.reward["ground_truth"] == pytest.approx(d, abs=0.0051)
            continue
        if m["kind"] == "facing":
            axis = pose[:3, 2]
            assert math.hypot(axis[0], axis[1]) >= 0.5
            north = axis[:2]
            assert not seen1[0]
        else:
            north = scene.object(m["north_id"]).box[:2] - cam[:2]
            assert not all(seen1), "one of the two objects is shown only by image 2"
            assert np.linalg.norm(north) >= 0.3
        assert np.linalg.norm(target[:2] - cam[:2]) >= 0.3
        angle = clockwise(north, target[:2] - cam[:2])
        word = COMPASS[round(angle / 45.0) % 8]
        assert margin(angle) >= 10.0
        assert m["direction"] == word
        if m["style"] == "mcq":
            opts = option_lines(s.last_user_text)
            assert len(opts) == 4 and opts[s.answer] == word
            assert s.reward == {"mode": "mcq", "ground_truth": s.answer}
        else:
            assert s.answer == word and s.reward == {"mode": "exact", "ground_truth": word}
        for r in m["refs"]:
            assert r["mention"] in s.last_user_text
    assert set(kinds) == {"facing", "object_north", "distance"}


def test_derive_answer_recomputes_every_answer(samples):
    task = get_task("mi_camera_object")
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
    scene, s = next(
        (sc, x)
        for sc, x in samples
        if x.meta["kind"] == "object_north"
        and x.meta["style"] == "exact"
        and x.meta["direction"] != "north"
    )
    assert task.derive_answer(scene, dict(s.meta, target_id=s.meta["north_id"])) == "north"


def test_direction_answers_are_balanced_per_scene(samples):
    """Each scene asks every direction it can about equally often (a direction first, then a
    question); together the scenes cover the compass."""
    by_scene: dict[str, Counter] = {}
    for scene, s in samples:
        if s.meta["kind"] != "distance":
            by_scene.setdefault(scene.id, Counter())[s.meta["direction"]] += 1
    covered = set()
    for words in by_scene.values():
        covered |= set(words)
        mean = sum(words.values()) / len(words)
        assert len(words) >= 5
        assert min(words.values()) >= 0.5 * mean and max(words.values()) <= 1.5 * mean
    assert covered == set(COMPASS)


def test_letters_are_balanced(engine_scenes):
    class Mcq(CameraObject):
        KIND_WEIGHTS = (0.5, 0.5, 0.0)
        STYLES = ("mcq",)

    out = generate(Mcq(), engine_scenes, 400, seed=3)
    letters = Counter(s.answer for _, s in out)
    assert sum(letters.values()) >= 1000
    for letter in "ABCD":
        assert abs(letters[letter] / sum(letters.values()) - 0.25) <= 0.05


def test_deterministic(engine_scenes):
    task = get_task("mi_camera_object")
    a = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=7)]
    b = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=7)]
    c = [s.id for _, s in generate(task, engine_scenes[:1], 40, seed=8)]
    assert a == b and len(set(a)) == 40
    assert a != c


def test_phrasing_variety(samples):
    templates = {
        "facing": FACING_TEMPLATES,
        "object_north": OBJECT_NORTH_TEMPLATES,
        "distance": DISTANCE_TEMPLATES,
    }
    used = {k: set() for k in templates}
    for _, s in samples:
        used[s.meta["kind"]].add(s.meta["phrasing"][0])
    for kind, phrasings in templates.items():
        assert len(phrasings) >= 5 and len(set(phrasings)) == len(phrasings)
        assert used[kind] == set(range(len(phrasings)))
    assert len({s.last_user_text for _, s in samples}) >= 0.9 * len(samples)


def test_object_north_needs_a_one_metre_baseline(samples):
    """North from camera 1 to an object needs the two 1 m apart on the floor (``baseline_m``);
    ``facing`` takes north from the camera's heading (no baseline)."""
    assert CameraObject.MIN_BASELINE == 1.0
    n = 0
    for scene, s in samples:
        m = s.meta
        if m["kind"] == "facing":
            assert m["baseline_m"] is None
        if m["kind"] != "object_north":
            continue
        n += 1
        cam = scene.frame(m["frame_ids"][0]).cam_to_world[:2, 3]
        baseline = math.hypot(*(scene.object(m["north_id"]).box[:2] - cam))
        assert baseline >= 1.0, (s.id, baseline)
        assert m["baseline_m"] == pytest.approx(baseline, abs=1e-9)
    assert n >= 20
