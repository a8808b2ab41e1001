"""video_rel_direction: directions recomputed here with atan2 on the world boxes, hand-built
layouts (A at the origin facing B on +X: C on +Y is left), boundary and distance margins,
unique-category objects, answer balance, letter balance, determinism, phrasing variety.

Also defines :func:`make_video_scene` (an in-memory scene with a panning video), shared by the
other video task tests."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from vst.engine.choices import LETTERS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.video.rel_direction import ASKS, STANCES, WORD_ORDER, VideoRelDirection
from vst.scenes.model import Frame, Object3D, Room, Scene

CTX = EngineContext()

# -- an in-memory video scene ------------------------------------------------------------------


def _camera(heading_deg: float, height: float = 1.4) -> np.ndarray:
    """cam_to_world of a level camera at (0, 0, height) looking along ``heading`` in world X-Y
    (camera X right, Y down, Z forward)."""
    h = math.radians(heading_deg)
    fwd = np.array([math.cos(h), math.sin(h), 0.0])
    down = np.array([0.0, 0.0, -1.0])
    right = np.cross(down, fwd)
    T = np.eye(4)
    T[:3, :3] = np.stack([right, down, fwd], axis=1)
    T[:3, 3] = [0.0, 0.0, height]
    return T


def make_video_scene(
    objects: list[tuple[str, list[float]]],
    n_frames: int = 8,
    scene_id: str = "hand",
    hidden: tuple[int, ...] = (),
    room: Room | None = None,
    pixels: int = 1000,
) -> Scene:
    """A scene whose video pans a full turn from the origin (``n_frames`` frames, 2 fps).
    ``objects``: (label, world box) with ids 1, 2, ...; each frame annotates ``pixels`` mask
    pixels for every object whose centre is in front of the camera (z > 0.2 m) and within 50
    degrees of its axis, except the ids in ``hidden`` (never seen). Give every scene its own
    ``scene_id``: engine contexts cache views by scene and frame id."""
    objs = [Object3D(i + 1, label, np.array(box, float)) for i, (label, box) in enumerate(objects)]
    K = np.array([[50.0, 0, 28], [0, 50.0, 28], [0, 0, 1]])
    frames = []
    for k in range(n_frames):
        pose = _camera(360.0 * k / n_frames)
        w2c = np.linalg.inv(pose)
        counts = {}
        for o in objs:
            p = w2c[:3, :3] @ o.box[:3] + w2c[:3, 3]
            if o.id not in hidden and p[2] > 0.2 and abs(math.atan2(p[0], p[2])) < math.radians(50):
                counts[o.id] = pixels
        frames.append(
            Frame(
                id=f"video_{k:03d}",
                K=K,
                width=56,
                height=56,
                cam_to_world=pose,
                timestamp=0.5 * k,
                image=np.full((56, 56, 3), (20 * k) % 256, np.uint8),
                mask=np.zeros((56, 56), np.int32),
                visible_pixels=counts,
            )
        )
    return Scene(id=scene_id, source="test", frames=frames, objects=objs, room=room)


def random_layout(seed: int, n: int = 10, dup: int = 2) -> list[tuple[str, list[float]]]:
    """``n`` objects with distinct labels at random floor positions (plus ``dup`` pairs of
    a repeated label, which no question may name)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x, y = rng.uniform(-4, 4, 2)
        out.append((f"thing{i}", [x, y, 0.4, 0.5, 0.4, 0.8, 0, 0, float(rng.uniform(-90, 90))]))
    for i in range(dup):
        for _ in range(2):
            x, y = rng.uniform(-4, 4, 2)
            out.append((f"twin{i}", [x, y, 0.4, 0.5, 0.5, 0.8, 0, 0, 0]))
    return out


# -- independent ground truth -------------------------------------------------------------------


def theta_deg(scene, a, b, c) -> float:
    """Angle of C standing at A facing B, counter-clockwise (left) positive, via atan2."""
    pa, pb, pc = (scene.object(o).box[:2] for o in (a, b, c))
    f, v = pb - pa, pc - pa
    return math.degrees(math.atan2(f[0] * v[1] - f[1] * v[0], f[0] * v[0] + f[1] * v[1]))


BOUNDARIES = {
    "easy": [0, 180],
    "medium": [0, 135, -135],
    "quadrant": [0, 90, 180, -90],
    "octant": [22.5 + 45 * k for k in range(8)],
}


def expected_direction(theta: float, variant: str) -> str:
    side = "left" if theta > 0 else "right"
    if variant == "easy":
        return side
    if variant == "medium":
        return "back" if abs(theta) >= 135 else side
    if variant == "quadrant":
        return ("front-" if abs(theta) < 90 else "back-") + side
    names = ["front", "front-left", "left", "back-left", "back", "back-right", "right"]
    names.append("front-right")
    return names[round(theta / 45.0) % 8]


def boundary_gap(theta: float, variant: str) -> float:
    return min(abs((theta - b + 180) % 360 - 180) for b in BOUNDARIES[variant])


def unique_visible(scene, frame_ids, min_pixels=400):
    """Objects with >= min_pixels in some clip frame whose label no other object shows."""
    frames = [scene.frame(f) for f in frame_ids]
    seen = {o for f in frames for o, c in f.visible_pixels.items() if c > 0}
    visible = {o for f in frames for o, c in f.visible_pixels.items() if c >= min_pixels}
    labels = Counter(scene.object(o).label for o in seen)
    return {o for o in visible if labels[scene.object(o).label] == 1}


# -- fixtures -----------------------------------------------------------------------------------

HAND_SCENES = [make_video_scene(random_layout(s), scene_id=f"hand{s}") for s in range(3)]


def generate(task, scenes, per_scene, seed=0, ctx=CTX):
    out = []
    for k, scene in enumerate(scenes):
        rng = np.random.default_rng([seed, k])
        out += [(scene, s) for s in task.generate(scene, rng, per_scene, ctx)]
    return out


@pytest.fixture(scope="module")
def samples():
    return generate(get_task("video_rel_direction"), HAND_SCENES, 800)


def turns(samples):
    return [(scene, s, t) for scene, s in samples for t in s.meta["turns"]]


# -- tests --------------------------------------------------------------------------------------


def test_hand_layout_left_right_back():
    """A at the origin facing B at +X: +Y is left, -Y right, -X behind."""
    objs = [
        ("lamp", [0, 0, 0.5, 0.3, 0.3, 1.0, 0, 0, 0]),
        ("sofa", [2, 0, 0.4, 0.8, 1.8, 0.8, 0, 0, 90]),
        ("plant", [0, 2, 0.4, 0.4, 0.4, 0.8, 0, 0, 0]),
        ("desk", [0, -2, 0.4, 0.6, 1.2, 0.8, 0, 0, 0]),
        ("bin", [-2, 0.3, 0.2, 0.3, 0.3, 0.4, 0, 0, 0]),
        ("chair", [1.5, 1.5, 0.4, 0.5, 0.5, 0.9, 0, 0, 0]),
    ]
    scene = make_video_scene(objs, scene_id="hand_layout")
    task = VideoRelDirection()
    cases = {
        (3, "easy"): "left",
        (4, "easy"): "right",
        (3, "octant"): "left",
        (4, "octant"): "right",
        (5, "medium"): "back",
        (5, "octant"): "back",
        (6, "quadrant"): "front-left",
        (6, "octant"): "front-left",
        (5, "quadrant"): "back-left",  # theta = atan2(0.6, -4) = 171.5 degrees
        (4, "medium"): "right",
    }
    for (c, variant), want in cases.items():
        meta = {"style": "exact", "turns": [{"ids": [1, 2, c], "variant": variant}]}
        assert task.derive_answer(scene, meta) == want, (c, variant)
    meta = {"style": "mcq", "turns": [{"ids": [1, 2, 3], "variant": "easy"}]}
    meta["turns"][0]["options"] = ["right", "left"]
    assert task.derive_answer(scene, meta) == "B"
    # generated questions on this layout agree with atan2 and skip boundary cases
    out = generate(task, [scene], 300)
    assert len(out) >= 60  # until the clip's questions run out (each asked once)
    for _, _, t in turns(out):
        th = theta_deg(scene, *t["ids"])
        assert boundary_gap(th, t["variant"]) >= 10.0
        assert t["direction"] == expected_direction(th, t["variant"])
        if t["ids"] == [1, 2, 3]:
            assert t["direction"] == "left"
        if t["ids"] == [1, 2, 4]:
            assert t["direction"] == "right"


def test_answers_follow_atan2_ground_truth(samples):
    assert len(samples) == 3 * 800
    for scene, s, t in turns(samples):
        a, b, c = t["ids"]
        th = theta_deg(scene, a, b, c)
        assert t["theta_deg"] == pytest.approx(th, abs=1e-9)
        assert t["direction"] == expected_direction(th, t["variant"])
        if s.meta["style"] == "mcq":
            assert t["options"][LETTERS.index(t["answer"])] == t["direction"]
            assert t["direction"] in t["options"]
            assert len(t["options"]) == {"easy": 2, "medium": 3}.get(t["variant"], 4)
            assert len(set(t["options"])) == len(t["options"])
        else:
            assert t["answer"] == t["direction"]
    for scene, s in samples:
        task = get_task("video_rel_direction")
        assert task.derive_answer(scene, s.meta) == s.answer
        assert s.reward == {"mode": s.meta["style"], "ground_truth": s.answer}
        # default answer style "paper": mcq replies are the letter and the option's text
        last = s.meta["turns"][-1]
        reply = f"{s.answer}. {last['direction']}" if s.meta["style"] == "mcq" else s.answer
        assert s.messages[-1]["content"][0]["text"] == reply


def test_margins_and_unique_objects(samples):
    for scene, _, t in turns(samples):
        a, b, c = t["ids"]
        th = theta_deg(scene, a, b, c)
        assert boundary_gap(th, t["variant"]) >= VideoRelDirection.MIN_BOUNDARY_DEG
        xy = {o: scene.object(o).box[:2] for o in (a, b, c)}
        assert np.linalg.norm(xy[b] - xy[a]) >= VideoRelDirection.MIN_SEPARATION_M
        assert np.linalg.norm(xy[c] - xy[a]) >= VideoRelDirection.MIN_SEPARATION_M
        assert len({a, b, c}) == 3
    for scene, s in samples:
        allowed = unique_visible(scene, s.meta["frame_ids"])
        assert set(s.meta["object_ids"]) <= allowed
        assert not any(scene.object(o).label.startswith("twin") for o in s.meta["object_ids"])


def test_message_structure(samples):
    for _, s in samples[:200]:
        m = s.messages
        assert len(m) == 2 * len(s.meta["turns"])
        assert m[0]["content"][0] == {"type": "video"}
        assert all(c["type"] == "text" for turn in m[1:] for c in turn["content"])
        assert len(s.videos) == 1 and len(s.videos[0]) == len(s.meta["frame_ids"]) == 8
        assert s.meta["video_fps"] == pytest.approx(2.0)
        for k, t in enumerate(s.meta["turns"]):
            q = m[2 * k]["content"][-1]["text"]
            for label in t["labels"]:
                assert label in q


def test_answer_and_letter_balance():
    """Over many clips at a budget that leaves questions unasked (each is asked once per clip,
    so a clip's rare directions run out first when nearly all are asked)."""
    scenes = [make_video_scene(random_layout(s), scene_id=f"bal{s}") for s in range(10, 26)]
    samples = generate(get_task("video_rel_direction"), scenes, 120)
    ts = turns(samples)
    # every variant is asked, and each one's directions come out evenly
    by_variant = Counter(t["variant"] for _, _, t in ts)
    assert set(by_variant) == {"easy", "medium", "quadrant", "octant"}
    for variant in by_variant:
        dirs = Counter(t["direction"] for _, _, t in ts if t["variant"] == variant)
        k = {"easy": 2, "medium": 3, "quadrant": 4, "octant": 8}[variant]
        assert len(dirs) == k
        share = np.array(list(dirs.values())) / sum(dirs.values())
        assert np.all(np.abs(share - 1 / k) <= 0.05), (variant, dirs)
    # mcq letters uniform per number of options (2: easy, 3: medium, 4: quadrant / octant)
    mcq = [t for _, s, t in ts if s.meta["style"] == "mcq"]
    assert len(mcq) >= 2000
    for n_opt in (2, 3, 4):
        letters = Counter(t["answer"] for t in mcq if len(t["options"]) == n_opt)
        total = sum(letters.values())
        assert total >= 500
        share = np.array([letters[x] for x in LETTERS[:n_opt]]) / total
        assert np.all(np.abs(share - 1 / n_opt) <= 0.05), (n_opt, letters)
    styles = Counter(s.meta["style"] for _, s in samples)
    assert abs(styles["mcq"] / len(samples) - 0.5) < 0.05


def test_fixture_scenes(engine_scenes):
    """On the rendered scenes: objects unique and visible per the instance masks."""
    task = get_task("video_rel_direction")
    out = generate(task, engine_scenes, 40, ctx=EngineContext())
    assert len(out) >= 20  # small scenes run out of questions (each asked once per clip)
    for scene, s in out:
        assert task.derive_answer(scene, s.meta) == s.answer
        counts: dict[int, int] = Counter()
        for fid in s.meta["frame_ids"]:
            ids, n = np.unique(scene.frame(fid).load_mask(), return_counts=True)
            for i, c in zip(ids, n, strict=True):
                counts[int(i)] = max(counts[int(i)], int(c))
        for oid in s.meta["object_ids"]:
            assert counts[oid] >= 400
            label = scene.object(oid).label
            assert not any(scene.object(o).label == label for o in counts if o not in (0, oid)), (
                label
            )
        for t in s.meta["turns"]:
            th = theta_deg(scene, *t["ids"])
            assert t["direction"] == expected_direction(th, t["variant"])


def test_determinism():
    task = get_task("video_rel_direction")
    a = [s.id for _, s in generate(task, HAND_SCENES, 30, seed=3)]
    b = [s.id for _, s in generate(task, HAND_SCENES, 30, seed=3, ctx=EngineContext())]
    c = [s.id for _, s in generate(task, HAND_SCENES, 30, seed=4)]
    assert a == b and len(set(a)) == len(a) == 90
    assert a != c


def test_phrasing_variety(samples):
    assert len(STANCES) >= 5
    assert all(len(v) >= 5 for v in ASKS.values())
    for variant in ASKS:
        used = {
            (t["phrasing"][0], t["phrasing"][1])
            for _, _, t in turns(samples)
            if t["variant"] == variant
        }
        assert len({u[1] for u in used}) == len(ASKS[variant])
        # the last stance opens VSI-Bench's questions, which have no octant form
        assert len({u[0] for u in used}) == len(STANCES) - (variant == "octant")
    texts = {s.messages[0]["content"][1]["text"] for _, s in samples}
    assert len(texts) > 0.9 * len(samples)


def test_too_few_unique_objects_gives_nothing():
    objs = [("sofa", [0, 2, 0.4, 1, 1, 0.8, 0, 0, 0]), ("lamp", [2, 0, 0.4, 0.3, 0.3, 1, 0, 0, 0])]
    objs += [
        ("chair", [-2, 0, 0.4, 0.5, 0.5, 0.9, 0, 0, 0]),
        ("chair", [0, -2, 0.4, 0.5, 0.5, 1, 0, 0, 0]),
    ]
    scene = make_video_scene(objs, scene_id="hand_few")
    assert list(VideoRelDirection().generate(scene, np.random.default_rng(0), 5, CTX)) == []


def test_exact_questions_name_the_allowed_words(samples):
    for _, s in samples[:400]:
        for k, t in enumerate(s.meta["turns"]):
            q = s.messages[2 * k]["content"][-1]["text"]
            if s.meta["style"] == "exact":
                assert ", ".join(WORD_ORDER[t["variant"]]) in q
                assert t["answer"] in WORD_ORDER[t["variant"]]
            else:
                assert q.count("\nA. ") == 1


def test_large_scenes_use_a_capped_object_subset():
    scene = make_video_scene(random_layout(11, n=22, dup=0), n_frames=24, scene_id="hand_big")
    task = VideoRelDirection()
    out = generate(task, [scene], 25)
    assert len(out) == 25
    assert len(out[0][1].meta["frame_ids"]) == 16  # 24 frames subsampled
    used = {o for _, s in out for o in s.meta["object_ids"]}
    assert len(used) == task.MAX_OBJECTS == 16  # one call: a random subset of the 22 objects
    for _, s in out:
        assert task.derive_answer(scene, s.meta) == s.answer


def test_facing_needs_a_one_metre_baseline():
    """The audit's 0.57 m: standing at A facing B needs A-B >= 1 m on the floor (recorded as
    ``dist_ab_m``); a B 0.6 m from A never defines the facing, one 1.2 m away does."""
    assert VideoRelDirection.MIN_FACING_BASELINE_M == 1.0
    objs = [
        ("lamp", [0, 0, 0.5, 0.3, 0.3, 1.0, 0, 0, 0]),
        ("stool", [0.6, 0, 0.3, 0.3, 0.3, 0.6, 0, 0, 0]),
        ("sofa", [1.2, 1.2, 0.4, 0.8, 1.8, 0.8, 0, 0, 90]),
        ("plant", [-2, 2, 0.4, 0.4, 0.4, 0.8, 0, 0, 0]),
        ("desk", [0, -2, 0.4, 0.6, 1.2, 0.8, 0, 0, 0]),
    ]
    scene = make_video_scene(objs, scene_id="hand_baseline")
    triples = VideoRelDirection()._triples(scene, [1, 2, 3, 4, 5])
    pairs = {(int(a), int(b)) for a, b, _ in triples.abc}
    assert (0, 1) not in pairs and (1, 0) not in pairs  # lamp and stool: 0.6 m
    assert (0, 2) in pairs  # lamp -> sofa: 1.70 m
    assert triples.d_ab.min() >= 1.0
    for _, _, t in turns(generate(VideoRelDirection(), [scene], 100)):
        a, b, _ = t["ids"]
        d = float(np.linalg.norm(scene.object(b).box[:2] - scene.object(a).box[:2]))
        assert d >= 1.0 and t["dist_ab_m"] == pytest.approx(d, abs=1e-9)


def test_vsibench_questions_verbatim(samples):
    want = {
        "easy": "If I am standing by the {a} and facing the {b}, is the {c} to the left or the "
        "right of the {b}?",
        "medium": "If I am standing by the {a} and facing the {b}, is the {c} to my left, right, "
        "or back? An object is to my back if I would have to turn at least 135 degrees in order "
        "to face it.",
        "quadrant": "If I am standing by the {a} and facing the {b}, is the {c} to my "
        "front-left, front-right, back-left, or back-right? The directions refer to the "
        "quadrants of a Cartesian plane (if I am standing at the origin and facing along the "
        "positive y-axis).",
    }
    seen = Counter()
    for _, s in samples:
        for k, t in enumerate(s.meta["turns"]):
            if t["phrasing"][0] != len(STANCES) - 1:
                continue
            a, b, c = t["labels"]
            text = s.messages[2 * k]["content"][-1]["text"]
            assert text.startswith(want[t["variant"]].format(a=a, b=b, c=c)), text
            seen[t["variant"]] += 1
    assert set(seen) == set(want) and min(seen.values()) > 20


def test_no_question_repeated_across_the_samples_of_a_clip(samples):
    asked: dict[str, list] = {}
    for scene, s in samples:
        asked.setdefault(scene.id, []).extend(
            (tuple(t["ids"]), t["variant"]) for t in s.meta["turns"]
        )
    for scene_id, keys in asked.items():
        assert len(keys) == len(set(keys)), scene_id
