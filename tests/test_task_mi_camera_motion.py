"""mi_camera_motion: sign conventions on hand-built poses (pan right is "right", tilt up is "up",
roll clockwise is "clockwise", translations along each axis), the levelled-frame rule, labels
against the synthetic source's recorded multi-view motions, every generated answer against
motion recomputed here with scipy, derive_answer, letter and answer balance, determinism,
phrasing variety."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from vst.engine.choices import LETTERS, MCQ_INSTRUCTIONS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.multi_image.camera_motion import (
    FAMILIES,
    FRAME_NOTES,
    INTROS,
    ROLL_NOTES,
    SHORT_HINTS,
    TEMPLATES,
    CameraMotionTask,
    answer_of,
)
from vst.geometry.motion import camera_motion
from vst.scenes.model import Frame, Object3D, Scene

CTX = EngineContext()


# --------------------------------------------------------------------------- hand-built poses


def pose(eye, heading=0.0, pitch=0.0, roll=0.0) -> np.ndarray:
    """Camera-to-world pose at ``eye`` (world Z up) facing ``heading`` degrees right of world +Y,
    ``pitch`` degrees up, rolled ``roll`` degrees clockwise seen from behind (its X axis turned
    toward its Y axis, i.e. toward the ground)."""
    h, p, r = (math.radians(v) for v in (heading, pitch, roll))
    fwd = np.array([math.sin(h) * math.cos(p), math.cos(h) * math.cos(p), math.sin(p)])
    right = np.array([math.cos(h), -math.sin(h), 0.0])
    down = -np.cross(right, fwd)
    x = math.cos(r) * right + math.sin(r) * down
    y = -math.sin(r) * right + math.cos(r) * down
    T = np.eye(4)
    T[:3, :3] = np.stack([x, y, fwd], axis=1)
    T[:3, 3] = eye
    return T


def two_frame_scene(T1: np.ndarray, T2: np.ndarray) -> Scene:
    """Two 64 x 48 frames (no masks: the task falls back to box centres) and one object 4 m
    from the first camera, between the two optical axes (so both views show it)."""
    K = np.array([[50.0, 0, 31.5], [0, 50.0, 23.5], [0, 0, 1]])
    img = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    frames = [
        Frame(id=f"f{k}", K=K, width=64, height=48, cam_to_world=T, image=img)
        for k, T in enumerate((T1, T2))
    ]
    mid = T1[:3, 2] + T2[:3, 2]
    target = T1[:3, 3] + 4.0 * mid / np.linalg.norm(mid)
    obj = Object3D(1, "table", [*target, 0.5, 0.5, 0.5, 0, 0, 0])
    return Scene(id="hand_motion", source="test", frames=frames, objects=[obj])


def option_lines(text: str) -> dict[str, str]:
    return dict(re.findall(r"^([A-J])\. (.+)$", text, flags=re.M))


def stated(sample) -> str:
    """The answer as words: the chosen option's text for mcq, else the answer itself."""
    if sample.meta["style"] == "mcq":
        return option_lines(sample.last_user_text)[sample.answer]
    return sample.answer


def asked(T1, T2) -> dict[tuple[str, str | None, str], set[str]]:
    """(family, axis, style) -> stated answers of every question on the pair (frame 1 first)."""
    scene = two_frame_scene(T1, T2)
    task = get_task("mi_camera_motion")
    out: dict = {}
    for seed in range(24):  # every slot, with both answer styles
        for s in task.generate(scene, np.random.default_rng(seed), 1000, EngineContext()):
            if s.meta["frame_ids"] == ["f0", "f1"]:
                key = (s.meta["family"], s.meta["axis"], s.meta["style"])
                out.setdefault(key, set()).add(stated(s))
                assert task.derive_answer(scene, s.meta) == s.answer
    return out


EYE = np.array([0.0, 0.0, 1.5])
BASE = pose(EYE)

ROTATION_CASES = [
    ("pan", dict(heading=30.0), "right", "panning to the right"),
    ("pan", dict(heading=-30.0), "left", "panning to the left"),
    ("tilt", dict(pitch=20.0), "up", "tilting upward"),
    ("tilt", dict(pitch=-20.0), "down", "tilting downward"),
    ("roll", dict(roll=20.0), "clockwise", "rolling clockwise"),
    ("roll", dict(roll=-20.0), "counter-clockwise", "rolling counter-clockwise"),
]


@pytest.mark.parametrize(("axis", "kw", "word", "phrase"), ROTATION_CASES)
def test_rotation_labels_on_constructed_poses(axis, kw, word, phrase):
    got = asked(BASE, pose(EYE, **kw))
    assert got[("rotation_binary", axis, "short")] == {word}
    assert got[("rotation_binary", axis, "mcq")] == {phrase}
    assert got[("rotation_main", None, "mcq")] == {phrase}
    deg = int(next(iter(kw.values())).__abs__())
    assert got[("rotation_angle", axis, "numeric")] == {f"{deg} degrees"}
    # a pure rotation: no translation question, no other rotation axis
    assert {k[0] for k in got} == {"rotation_binary", "rotation_main", "rotation_angle"}
    assert {k[1] for k in got} == {axis, None}


TRANSLATION_CASES = [
    ("x", [0.6, 0.0, 0.0], "right", "moving rightward"),
    ("x", [-0.6, 0.0, 0.0], "left", "moving leftward"),
    ("y", [0.0, 0.0, 0.5], "up", "moving upward"),
    ("y", [0.0, 0.0, -0.5], "down", "moving downward"),
    ("z", [0.0, 0.8, 0.0], "forward", "moving forward"),
    ("z", [0.0, -0.8, 0.0], "backward", "moving backward"),
]


@pytest.mark.parametrize(("axis", "move", "word", "phrase"), TRANSLATION_CASES)
def test_translation_labels_on_constructed_poses(axis, move, word, phrase):
    got = asked(BASE, pose(EYE + np.array(move)))
    assert got[("translation_binary", axis, "short")] == {word}
    assert got[("translation_binary", axis, "mcq")] == {phrase}
    assert got[("translation_direction", None, "mcq")] == {phrase}
    assert got[("translation_distance", None, "numeric")] == {f"{np.linalg.norm(move):.2f} m"}
    assert {k[0] for k in got} == {
        "translation_binary",
        "translation_direction",
        "translation_distance",
    }


def test_combined_motion_and_turned_camera():
    # camera 1 faces world +X (heading 90): moving along world +X is forward, along -Y right
    T1 = pose(EYE, heading=90.0)
    got = asked(T1, pose(EYE + np.array([0.7, -0.6, 0.0]), heading=90.0))
    assert got[("translation_direction", None, "mcq")] == {"moving rightward and forward"}
    assert got[("translation_binary", "x", "short")] == {"right"}
    assert got[("translation_binary", "z", "short")] == {"forward"}
    # pan right while moving left: both are asked, each with its own sign
    got = asked(T1, pose(EYE + np.array([0.0, 0.8, 0.0]), heading=120.0))
    assert got[("rotation_binary", "pan", "short")] == {"right"}
    assert got[("translation_binary", "x", "short")] == {"left"}


def test_looking_down_while_walking_forward_is_forward_not_up():
    """A camera pitched 30 degrees down that walks 1 m forward (horizontally) moves 0.5 m along
    its own -Y: against gravity it only moved forward, and that is what is asked."""
    T1 = pose(EYE, pitch=-30.0)
    T2 = pose(EYE + np.array([0.0, 1.0, 0.0]), pitch=-30.0)
    m = camera_motion(T1, T2)
    np.testing.assert_allclose(m.translation, [0.0, 0.0, 1.0], atol=1e-9)
    np.testing.assert_allclose(m.angles, [0.0, 0.0, 0.0], atol=1e-9)
    got = asked(T1, T2)
    assert got[("translation_binary", "z", "short")] == {"forward"}
    assert got[("translation_direction", None, "mcq")] == {"moving forward"}
    assert {k[0] for k in got} == {
        "translation_binary",
        "translation_direction",
        "translation_distance",
    }
    assert {k[1] for k in got} == {"z", None}


@pytest.mark.parametrize("pitch", [0.0, -20.0, 15.0])
@pytest.mark.parametrize("turn", [60.0, -35.0, 23.0])
def test_pure_pan_is_a_pan_of_exactly_its_angle(pitch, turn):
    """Two cameras at one height and one pitch, the second turned about the world vertical:
    only the pan is asked, and its angle is the turn (the camera-frame Euler split gave 57
    degrees and a roll for a 60 degree turn of a camera pitched 20 degrees down)."""
    T1 = pose(EYE, heading=10.0, pitch=pitch)
    T2 = pose(EYE, heading=10.0 + turn, pitch=pitch)
    m = camera_motion(T1, T2)
    np.testing.assert_allclose(m.angles, [turn, 0.0, 0.0], atol=1e-9)
    np.testing.assert_allclose(m.translation, [0.0, 0.0, 0.0], atol=1e-12)
    got = asked(T1, T2)
    word = "right" if turn > 0 else "left"
    assert got[("rotation_angle", "pan", "numeric")] == {f"{abs(turn):.0f} degrees"}
    assert got[("rotation_binary", "pan", "short")] == {word}
    assert got[("rotation_main", None, "mcq")] == {f"panning to the {word}"}
    assert {k[1] for k in got} == {"pan", None}


def test_pitched_camera_pan_with_roll_and_translation_by_hand():
    """Camera 1 faces 30 degrees right of world +Y, pitched 20 degrees down; camera 2 faces 90
    degrees, same pitch, rolled 10 degrees clockwise, moved by world (1, 0, 0.5): pan 60, tilt
    0, roll 10; on camera 1's floor axes the move is 1 * cos 30 = 0.866 m right, 1 * sin 30 =
    0.5 m forward and 0.5 m up (y = -0.5)."""
    T1 = pose(EYE, heading=30.0, pitch=-20.0)
    T2 = pose(EYE + np.array([1.0, 0.0, 0.5]), heading=90.0, pitch=-20.0, roll=10.0)
    m = camera_motion(T1, T2)
    np.testing.assert_allclose(m.angles, [60.0, 0.0, 10.0], atol=1e-9)
    np.testing.assert_allclose(m.translation, [math.sqrt(3) / 2, -0.5, 0.5], atol=1e-12)
    assert m.distance == pytest.approx(math.sqrt(1.25))
    # tilting from 20 degrees down to 5 degrees up is a 25 degree tilt up, nothing else
    m = camera_motion(T1, pose(EYE, heading=30.0, pitch=5.0))
    np.testing.assert_allclose(m.angles, [0.0, 25.0, 0.0], atol=1e-9)
    # a camera looking straight down has no heading: no rotation, no levelled translation
    m = camera_motion(pose(EYE, pitch=-90.0), pose(EYE + np.array([0.5, 0, 0]), pitch=-90.0))
    assert m.angles is None and m.translation is None and m.distance == pytest.approx(0.5)
    slots = CameraMotionTask().slots(m)
    assert slots["translation_distance"] == [None]
    assert not any(slots[f] for f in FAMILIES if f != "translation_distance")


def test_level_points_by_hand():
    """A camera facing world +X, pitched 20 degrees down and rolled: a point 2 m further
    along +X, 1 m toward -Y and 0.5 m lower is 2 m ahead, 1 m right and 0.5 m down."""
    from vst.geometry.motion import level_points

    T = pose(EYE, heading=90.0, pitch=-20.0, roll=7.0)
    got = level_points(T, [EYE + np.array([2.0, -1.0, -0.5]), EYE])
    np.testing.assert_allclose(got, [[1.0, 0.5, 2.0], [0.0, 0.0, 0.0]], atol=1e-12)
    assert level_points(pose(EYE, pitch=-89.0), [EYE]) is None


def test_small_or_mixed_rotations_are_not_asked():
    task = CameraMotionTask()
    assert task.slots(camera_motion(BASE, pose(EYE, heading=8.0)))["rotation_binary"] == []
    # 20 degrees of pan with 15 of tilt: neither dominates
    mixed = task.slots(camera_motion(BASE, pose(EYE, heading=20.0, pitch=15.0)))
    assert mixed["rotation_binary"] == [] and mixed["rotation_main"] == []
    # 0.2 m is under the 0.3 m minimum
    slots = task.slots(camera_motion(BASE, pose(EYE + np.array([0.2, 0.0, 0.0]))))
    assert slots["translation_binary"] == [] and slots["translation_distance"] == []
    # 0.28 m sideways next to 1 m forward: sideways is neither clear nor still
    slots = task.slots(camera_motion(BASE, pose(EYE + np.array([0.28, 1.0, 0.0]))))
    assert slots["translation_binary"] == ["z"] and slots["translation_direction"] == []


# --------------------------------------------------------------------------- synthetic sets


@pytest.fixture(scope="module")
def multiview_scenes(tmp_path_factory):
    """Synthetic rooms with many multi-view sets (small frames: only the poses matter)."""
    from vst.scenes import load_scene
    from vst.scenes.sources.synthetic import SynthConfig, write_scenes

    cfg = SynthConfig(
        num_scenes=3,
        seed=11,
        width=96,
        height=72,
        single_views=0,
        multiview_sets=8,
        views_per_set=3,
        video_frames=0,
        shadows=False,
    )
    return [load_scene(d) for d in write_scenes(cfg, tmp_path_factory.mktemp("mv_motion"))]


RECORDED = {
    ("rotation_binary", "pan"): ("pan", "pan_deg", "right"),
    ("rotation_binary", "tilt"): ("tilt", "tilt_deg", "up"),
    ("rotation_binary", "roll"): ("roll", "roll_deg", "clockwise"),
    ("translation_binary", "x"): ("right", "right_m", "right"),
    ("translation_binary", "y"): ("up", "up_m", "up"),
    ("translation_binary", "z"): ("forward", "forward_m", "forward"),
}


def test_labels_agree_with_recorded_synthetic_motions(multiview_scenes, engine_scenes):
    task = CameraMotionTask()
    checked = Counter()
    for scene in [*multiview_scenes, *engine_scenes]:
        for group in scene.attributes["synthetic"]["frames"]["multiview"]:
            ids = group["frames"]
            for rec, (a, b) in zip(group["motions"], itertools.pairwise(ids), strict=True):
                parts = rec["kind"].split("+")
                m = camera_motion(scene.frame(a).cam_to_world, scene.frame(b).cam_to_world)
                slots = task.slots(m)
                for fam in ("rotation_binary", "translation_binary"):
                    for axis in slots[fam]:
                        part, field, positive = RECORDED[(fam, axis)]
                        assert part in parts, (rec, fam, axis)
                        meta = {"family": fam, "axis": axis, "style": "short"}
                        word = answer_of(meta, m)[0]
                        assert (word == positive) == (rec[field] > 0), (rec, word)
                        checked[part] += 1
                # a clear single motion is always asked, a pan with its recorded angle
                if rec["kind"] == "pan" and abs(rec["pan_deg"]) >= 15:
                    assert "pan" in slots["rotation_binary"], rec
                    meta = {"family": "rotation_angle", "axis": "pan", "style": "numeric"}
                    assert answer_of(meta, m)[1] == int(abs(rec["pan_deg"]) + 0.5), rec
                    np.testing.assert_allclose(m.angles, [rec["pan_deg"], 0, 0], atol=1e-4)
                if rec["kind"] == "right" and abs(rec["right_m"]) >= 0.35:
                    assert "x" in slots["translation_binary"], rec
                    assert slots["translation_direction"] == [None], rec
    assert checked["pan"] >= 8 and checked["right"] >= 5
    assert checked["roll"] + checked["tilt"] + checked["forward"] >= 3


# --------------------------------------------------------------------------- fixture scenes


def generate(scenes, seed=0, budget=10_000):
    task = get_task("mi_camera_motion")
    out = []
    for k, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, k])
        out += [(scene, s) for s in task.generate(scene, rng, budget, CTX)]
    return out


@pytest.fixture(scope="module")
def samples(engine_scenes):
    return [p for seed in range(3) for p in generate(engine_scenes, seed)]


def _attitude(T):
    """(heading from world +Y toward +X, pitch up, roll clockwise) degrees of a camera, by
    scipy: its axes in a levelled frame (world X, world down, world Y) as "YXZ" Euler angles."""
    W = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, -1.0], [0.0, 1.0, 0.0]]).T
    return Rotation.from_matrix(W.T @ T[:3, :3]).as_euler("YXZ", degrees=True)


def truth(scene, ids):
    """(pan, tilt, roll) degrees against gravity and the translation on camera 1's floor
    axes (right, world down, forward), recomputed."""
    T1, T2 = (scene.frame(f).cam_to_world for f in ids)
    diff = _attitude(T2) - _attitude(T1)
    angles = (diff + 180.0) % 360.0 - 180.0
    angles[1] = diff[1]
    d = T2[:3, 3] - T1[:3, 3]
    f = np.array([T1[0, 2], T1[1, 2], 0.0])
    f /= np.linalg.norm(f)
    right = np.array([f[1], -f[0], 0.0])
    level = np.array([d @ right, -d[2], d @ f])
    return angles, level


WORDS = {
    "pan": ("left", "right"),
    "tilt": ("down", "up"),
    "roll": ("counter-clockwise", "clockwise"),
    "x": ("left", "right"),
    "y": ("up", "down"),
    "z": ("backward", "forward"),
}
"""One-word answers (negative, positive) per axis (camera +Y is down)."""

PHRASES = {
    "pan": ("panning to the left", "panning to the right"),
    "tilt": ("tilting downward", "tilting upward"),
    "roll": ("rolling counter-clockwise", "rolling clockwise"),
    "x": ("moving leftward", "moving rightward"),
    "y": ("moving upward", "moving downward"),
    "z": ("moving backward", "moving forward"),
}
ADVERBS = {
    "x": ("leftward", "rightward"),
    "y": ("upward", "downward"),
    "z": ("backward", "forward"),
}


def classify(t):
    """Per axis: +-1 clear (>= 0.3 m and >= half the largest), 0 still (<= 0.15 m or <= a
    quarter of the largest), None in between."""
    main = np.abs(t).max()
    out = []
    for v in t:
        if abs(v) >= 0.3 and abs(v) >= 0.5 * main:
            out.append(int(np.sign(v)))
        elif abs(v) <= 0.15 or abs(v) <= 0.25 * main:
            out.append(0)
        else:
            out.append(None)
    return out


def expected_direction(signs):
    words = [ADVERBS[a][s > 0] for a, s in zip("xyz", signs, strict=True) if s]
    if len(words) == 1:
        return f"moving {words[0]}"
    return "moving " + ", ".join(words[:-1]) + " and " + words[-1]


def test_answers_follow_recomputed_motion(samples):
    assert len(samples) > 3000
    fams = Counter()
    for scene, s in samples:
        m = s.meta
        fams[m["family"]] += 1
        angles, level = truth(scene, m["frame_ids"])
        if m["pan_tilt_roll_deg"] is not None:
            np.testing.assert_allclose(m["pan_tilt_roll_deg"], angles, atol=1e-6)
        np.testing.assert_allclose(m["translation_m"], level, atol=1e-9)
        fam, axis, style = m["family"], m["axis"], m["style"]
        said = stated(s)
        if fam.startswith("rotation"):
            if fam == "rotation_main":
                axis = ("pan", "tilt", "roll")[int(np.argmax(np.abs(angles)))]
            k = ("pan", "tilt", "roll").index(axis)
            a = angles[k]
            assert abs(a) >= 10.0
            assert all(abs(v) <= 0.5 * abs(a) for j, v in enumerate(angles) if j != k)
            if fam == "rotation_angle":
                assert s.reward == {"mode": "numeric", "ground_truth": int(abs(a) + 0.5)}
                assert said == f"{int(abs(a) + 0.5)} degrees"
            else:
                assert said == (WORDS if style == "short" else PHRASES)[axis][int(a > 0)]
        elif fam == "translation_distance":
            dist = float(np.linalg.norm(level))
            assert dist >= 0.3
            assert s.reward["ground_truth"] == pytest.approx(math.floor(dist * 100 + 0.5) / 100)
        else:
            cam = classify(level)
            if fam == "translation_binary":
                k = "xyz".index(axis)
                assert cam[k]
                assert said == (WORDS if style == "short" else PHRASES)[axis][cam[k] > 0]
            else:
                assert None not in cam and any(cam)
                assert said == expected_direction(cam)
                for key in m["option_keys"]:  # no option is a part of the answer
                    assert key == cam or any(v and v != c for v, c in zip(key, cam, strict=True))
        reply = s.answer
        if style == "mcq":
            assert s.reward == {"mode": "mcq", "ground_truth": s.answer}
            assert len(option_lines(s.last_user_text)) in (2, 4)
            assert len(set(option_lines(s.last_user_text).values())) == len(m["option_keys"])
            # default answer style "paper": the letter and the option's text
            reply = f"{s.answer}. {option_lines(s.last_user_text)[s.answer]}"
        elif style == "short":
            assert s.reward == {"mode": "exact", "ground_truth": s.answer}
        assert len(s.images) == 2 and s.messages[-1]["content"][0]["text"] == reply
    assert set(fams) == set(FAMILIES)


def test_derive_answer_recomputes_every_answer(samples):
    task = get_task("mi_camera_motion")
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer


def test_letters_and_answers_are_balanced(samples):
    by_n: dict[int, Counter] = {}
    signs: dict[str, Counter] = {}
    for _, s in samples:
        if s.meta["style"] == "mcq":
            n = len(s.meta["option_keys"])
            by_n.setdefault(n, Counter())[s.answer] += 1
        if s.meta["family"] in ("rotation_binary", "translation_binary"):
            signs.setdefault(s.meta["family"], Counter())[stated(s)] += 1
    assert set(by_n) == {2, 4}
    for n, counts in by_n.items():
        total = sum(counts.values())
        assert total >= 1000, (n, total)
        for letter in LETTERS[:n]:
            assert abs(counts[letter] / total - 1 / n) <= 0.05, (n, counts)
    # both orders of every pair are used, so opposite answers come in similar numbers
    pans = signs["rotation_binary"]
    left = pans["left"] + pans["panning to the left"]
    right = pans["right"] + pans["panning to the right"]
    assert 0.35 <= left / (left + right) <= 0.65


def test_deterministic(engine_scenes):
    a = [s.id for _, s in generate(engine_scenes[:1], 5, 60)]
    b = [s.id for _, s in generate(engine_scenes[:1], 5, 60)]
    c = [s.id for _, s in generate(engine_scenes[:1], 6, 60)]
    assert a == b and a != c


def test_phrasing_variety(samples):
    for fam in FAMILIES:
        assert len(set(TEMPLATES[fam])) >= 5
        used = {s.meta["phrasing"][1] for _, s in samples if s.meta["family"] == fam}
        assert used == set(range(len(TEMPLATES[fam]))), fam
    for pool in (INTROS, ROLL_NOTES, FRAME_NOTES, SHORT_HINTS, *MCQ_INSTRUCTIONS.values()):
        assert len(set(pool)) >= 5
    assert {s.meta["phrasing"][0] for _, s in samples} == set(range(len(INTROS)))
    assert {s.meta["layout"] for _, s in samples} == {0, 1}
    styles = Counter(s.meta["style"] for _, s in samples)
    assert set(styles) == {"mcq", "short", "numeric"}


def test_batched_motions_equal_one_by_one_and_ignore_world_heading():
    from vst.geometry.cameras import make_pose, pan_tilt_roll_to_rotation
    from vst.geometry.motion import camera_motion, camera_motions

    rng = np.random.default_rng(3)
    poses = [
        make_pose(pan_tilt_roll_to_rotation(*rng.uniform(-80, 80, 3)), rng.uniform(-2, 2, 3))
        for _ in range(6)
    ]
    spin = np.eye(4)
    spin[:3, :3] = Rotation.from_euler("z", 37.0, degrees=True).as_matrix()
    pairs = [(a, b) for a in poses for b in poses]
    for batched, (a, b) in zip(camera_motions(pairs), pairs, strict=True):
        single = camera_motion(a, b)
        turned = camera_motion(spin @ a, spin @ b)  # the same motion in a turned room
        for other in (single, turned):
            np.testing.assert_allclose(batched.angles, other.angles, atol=1e-9)
            np.testing.assert_allclose(batched.translation, other.translation, atol=1e-12)
            # arccos near 1 (identical poses) amplifies float noise to ~1e-6 degrees
            assert abs(batched.rotation_deg - other.rotation_deg) < 1e-5
