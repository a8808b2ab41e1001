"""The answer logic of the tasks that need no pixels, run on the 288 real VSI-Bench scans
(ScanNet, ScanNet++, ARKitScenes; shared/data/vsibench-meta) and checked against values computed
independently from the raw metadata JSON: object sizes, closest-point and centre distances,
relative direction, relative (closest-point) distance, object counts, and the rounding of the
stated values (VSI-Bench's ground truths: whole centimetres, metres and square metres to 1
decimal)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import minimize

from vst.engine.tasks.single_image.measurement import round_half_up
from vst.engine.tasks.video.count import format_answer as count_answer
from vst.engine.tasks.video.metric import metric_value
from vst.engine.tasks.video.rel_direction import direction_of
from vst.engine.tasks.video.rel_distance import gap_matrix
from vst.scenes.model import Room
from vst.scenes.sources.vsibench_meta import read_vsibench_meta
from vst.scenes.splits import vsibench_meta_dir

META = vsibench_meta_dir()
pytestmark = pytest.mark.skipif(META is None, reason="shared/data/vsibench-meta not found")


@pytest.fixture(scope="module")
def scans():
    """``(scene, raw entry)`` for every scan: the vst scene and its JSON entry."""
    scenes, report = read_vsibench_meta(META)
    raw = {}
    for path in sorted(META.glob("*_meta_info_val.json")):
        raw.update(json.loads(path.read_text()))
    return [(s, raw[s.id]) for s in scenes], report


def _raw_box(entry: dict, obj) -> dict:
    return entry["object_bbox"][obj.label][obj.attributes["source_index"]]


def test_real_scans_are_all_there(scans):
    pairs, _ = scans
    assert len(pairs) == 288
    assert sum(len(s.objects) for s, _ in pairs) == 3197
    assert {s.source for s, _ in pairs} == {"scannet", "scannetpp", "arkitscenes"}


def test_object_size_answers_match_the_raw_axes_lengths(scans):
    pairs, _ = scans
    checked = 0
    for scene, entry in pairs:
        for obj in scene.objects:
            expected_cm = max(_raw_box(entry, obj)["axesLengths"]) * 100.0
            exact, stated, text = metric_value(scene, "size", [obj.id])
            assert exact == pytest.approx(expected_cm, abs=1e-9), (scene.id, obj.id)
            assert text == f"{stated} cm" and abs(stated - expected_cm) <= 0.5 + 1e-9
            checked += 1
    assert checked == 3197


def test_centre_distance_answers_match_raw_centroids(scans):
    pairs, _ = scans
    checked = 0
    for scene, entry in pairs:
        objs = scene.objects[:12]
        for i, a in enumerate(objs):
            for b in objs[i + 1 :]:
                ca = np.array(_raw_box(entry, a)["centroid"])
                cb = np.array(_raw_box(entry, b)["centroid"])
                expected = math.dist(ca, cb)
                exact, stated, text = metric_value(scene, "center_distance", [a.id, b.id])
                assert exact == pytest.approx(expected, abs=1e-12)
                assert stated == round_half_up(expected, 1) and text == f"{stated:.1f} m"
                checked += 1
    assert checked > 8_000


def _raw_gap(ra: dict, rb: dict) -> float:
    """Closest-point distance of two raw metadata boxes by bounded minimisation: points
    ``centroid + sum_k t_k * axesLengths[k] / 2 * axis_k`` with ``t`` in [-1, 1]^3 per box (a
    convex problem; SLSQP), independent of vst's box conversion and of its edge/face tests."""

    def frame(r):
        axes = np.array(r["normalizedAxes"], float).reshape(3, 3)
        return np.array(r["centroid"], float), axes * (np.array(r["axesLengths"]) / 2)[:, None]

    (ca, ma), (cb, mb) = frame(ra), frame(rb)

    def f(x):
        d = ca + x[:3] @ ma - cb - x[3:] @ mb
        return d @ d, 2 * np.concatenate([ma @ d, -(mb @ d)])

    res = minimize(
        f,
        np.zeros(6),
        jac=True,
        method="SLSQP",
        bounds=[(-1, 1)] * 6,
        options={"ftol": 1e-14, "maxiter": 500},
    )
    return math.sqrt(max(res.fun, 0.0))


def test_closest_point_distance_answers_match_a_bounded_minimisation(scans):
    """The default distance kind (VSI-Bench "Measuring from the closest point of each object")
    on the real boxes: equal to the minimised point-to-point distance, never above the centre
    distance, stated half-up to 1 decimal as VSI-Bench's ground truths."""
    pairs, _ = scans
    checked = below = 0
    for scene, entry in pairs[::3]:
        objs = scene.objects[:8]
        for i, a in enumerate(objs):
            for b in objs[i + 1 :]:
                expected = _raw_gap(_raw_box(entry, a), _raw_box(entry, b))
                exact, stated, text = metric_value(scene, "distance", [a.id, b.id])
                assert exact == pytest.approx(expected, abs=2e-4), (scene.id, a.id, b.id)
                centre = metric_value(scene, "center_distance", [a.id, b.id])[0]
                assert exact <= centre + 1e-9
                below += centre - exact > 0.1
                assert stated == round_half_up(exact, 1) and text == f"{stated:.1f} m"
                checked += 1
    assert checked > 1_500 and below > 0.8 * checked  # the two kinds differ on real scans


def test_a_published_absolute_distance_is_a_closest_point_distance(scans):
    """VSI-Bench row 956 (arkitscenes 47430468, object_abs_distance) has ground truth "1.9"
    (quoted in a public preprocessing docstring; the question text is elided there). Among the
    scene's uniquely named pairs, two closest-point distances state 1.9 and no centre distance
    does."""
    pairs, _ = scans
    scene = next(s for s, _ in pairs if s.id == "47430468")
    labels = [o.label for o in scene.objects]
    unique = [o.id for o in scene.objects if labels.count(o.label) == 1]
    gap = {metric_value(scene, "distance", [a, b])[2] for a in unique for b in unique if a < b}
    centre = {
        metric_value(scene, "center_distance", [a, b])[2] for a in unique for b in unique if a < b
    }
    assert "1.9 m" in gap and "1.9 m" not in centre


def test_room_sizes_round_to_one_decimal(scans):
    """VSI-Bench states room sizes with 1 decimal (e.g. "30.9"; arkitscenes 41125700 has
    room_size 30.878): the room answer for a floor of each scan's room_size area."""
    pairs, _ = scans
    checked = 0
    for scene, entry in pairs:
        size = float(entry["room_size"])
        scene.room = Room([[0, 0], [size, 0], [size, 1], [0, 1]])
        try:
            exact, stated, text = metric_value(scene, "room", [])
        finally:
            scene.room = None
        assert exact == pytest.approx(size, rel=1e-12)
        assert stated == round_half_up(size, 1) and text == f"{stated:.1f} square meters"
        checked += 1
    assert checked == 288
    scene = next(s for s, _ in pairs if s.id == "41125700")
    assert scene.attributes["room_size_m2"] == pytest.approx(30.878, abs=1e-3)


def _direction_by_hand(a, b, c, variant: str) -> str:
    """Independent classifier: the angle of C from A facing B via complex division."""
    ab = complex(b[0] - a[0], b[1] - a[1])
    ac = complex(c[0] - a[0], c[1] - a[1])
    theta = math.degrees(np.angle(ac / ab))  # (-180, 180], counter-clockwise = left
    if variant == "easy":
        return "left" if 0 <= theta < 180 else "right"
    if variant == "medium":
        if abs(theta) >= 135 and theta != 135:
            return "back"
        return "left" if theta >= 0 else "right"
    front = abs(theta) < 90
    side = "left" if theta >= 0 else "right"
    return f"{'front' if front else 'back'}-{side}"


def test_relative_direction_matches_an_independent_classifier(scans):
    pairs, _ = scans
    rng = np.random.default_rng(7)
    checked = {v: 0 for v in ("easy", "medium", "quadrant")}
    for scene, entry in pairs:
        objs = scene.objects
        if len(objs) < 3:
            continue
        for _ in range(20):
            a, b, c = (objs[k] for k in rng.choice(len(objs), 3, replace=False))
            pa, pb, pc = (_raw_box(entry, o)["centroid"][:2] for o in (a, b, c))
            if math.dist(pa, pb) < 1e-6 or math.dist(pa, pc) < 1e-6:
                continue
            for variant in checked:
                got, theta = direction_of(scene, a.id, b.id, c.id, variant)
                edges = {"easy": (0, 180), "medium": (0, 135), "quadrant": (0, 90, 180)}[variant]
                if min(abs(abs(theta) - e) for e in edges) < 1e-6:
                    continue  # exactly on a boundary: either side is a convention
                assert got == _direction_by_hand(pa, pb, pc, variant), (scene.id, variant, theta)
                checked[variant] += 1
    assert min(checked.values()) > 4000


def _surface_points(box: np.ndarray, n: int = 12) -> np.ndarray:
    """Points on a grid over the 6 faces of a world box (n x n per face)."""
    from vst.geometry.boxes import euler_to_matrix

    R = euler_to_matrix(box[None, 6:9])[0]
    half = box[3:6] / 2
    t = np.linspace(-1, 1, n)
    u, v = np.meshgrid(t, t)
    pts = []
    for axis in range(3):
        o1, o2 = [k for k in range(3) if k != axis]
        for sign in (-1, 1):
            local = np.zeros((n * n, 3))
            local[:, axis] = sign
            local[:, o1], local[:, o2] = u.ravel(), v.ravel()
            pts.append(local * half)
    return np.concatenate(pts) @ R.T + box[:3]


def test_closest_point_distances_agree_with_dense_surface_sampling(scans):
    """The gap between two boxes is at most the sampled surface distance, and within the sampling
    resolution of it (grid spacing bound); overlapping boxes give 0."""
    pairs, _ = scans
    rng = np.random.default_rng(3)
    checked = 0
    for scene, _ in pairs[::4]:
        boxes = scene.boxes
        if len(boxes) < 2:
            continue
        gaps = gap_matrix(boxes)
        for _ in range(6):
            i, j = rng.choice(len(boxes), 2, replace=False)
            pa, pb = _surface_points(boxes[i]), _surface_points(boxes[j])
            sampled = np.min(np.linalg.norm(pa[:, None] - pb[None], axis=2))
            spacing = max(boxes[i][3:6].max(), boxes[j][3:6].max()) / 11
            assert gaps[i, j] <= sampled + 1e-9, (scene.id, i, j)
            if gaps[i, j] > 0:
                assert sampled - gaps[i, j] <= spacing * math.sqrt(2) + 1e-9, (scene.id, i, j)
            checked += 1
    assert checked > 300


def test_counts_follow_the_scans_object_lists(scans):
    pairs, report = scans
    mismatched = {(m["scene_id"], m["category"]) for m in report.count_mismatches}
    agreed = 0
    for scene, entry in pairs:
        cats = scene.categories()
        for label, n in entry["object_counts"].items():
            if (scene.id, label) in mismatched:
                continue
            assert cats.get(label, 0) == n, (scene.id, label)
            assert count_answer("numeric", n, None)[0] == str(n)
            agreed += 1
    assert agreed > 1500 and len(mismatched) == 12
