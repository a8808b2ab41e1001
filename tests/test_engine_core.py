"""Engine core: sample records, choices, image sizing, frame views, visual prompts."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vst.engine.choices import LETTERS, format_options, letter_of, shuffle_options
from vst.engine.context import EngineContext
from vst.engine.imaging import decode_image, encode_image, smart_resize
from vst.engine.sample import Sample, assistant, user
from vst.engine.visual_prompts import BoxMark, PointMark, draw_marks, pick_colors


def test_smart_resize_matches_qwen_rule():
    # 640x480: 480/28 = 17.14 -> 476, 640/28 = 22.86 -> 644; 644*476 < 1003520
    assert smart_resize(480, 640) == (476, 644)
    # too large: 1920x1440 scaled into 1280*28*28 pixels, both sides multiples of 28
    h, w = smart_resize(1440, 1920)
    assert h % 28 == 0 and w % 28 == 0 and h * w <= 1280 * 28 * 28
    assert abs(w / h - 1920 / 1440) < 0.05
    # too small: scaled up to at least 56*56 pixels
    h, w = smart_resize(20, 30)
    assert h * w >= 56 * 56 and h % 28 == 0 and w % 28 == 0
    with pytest.raises(ValueError):
        smart_resize(0, 10)


def test_sample_counts_image_slots_and_hashes_content():
    img = Image.new("RGB", (28, 28))
    s = Sample(
        task="t",
        scenario="single_image",
        messages=[user(img, "q?"), assistant("A")],
        images=[img],
        answer="A",
        reward={"mode": "mcq", "ground_truth": "A"},
        meta={"x": np.float64(1.5), "ids": np.array([1, 2])},
    )
    assert s.meta == {"x": 1.5, "ids": [1, 2]}
    assert len(s.id) == 16
    same = Sample(
        task="t",
        scenario="single_image",
        messages=[user(img, "q?"), assistant("A")],
        images=[img],
        answer="A",
        reward={"mode": "mcq", "ground_truth": "A"},
        meta={"x": 1.5, "ids": [1, 2]},
    )
    assert same.id == s.id
    other = Sample(
        task="t",
        scenario="single_image",
        messages=[user(img, "q?"), assistant("B")],
        images=[img],
        answer="B",
        reward={"mode": "mcq", "ground_truth": "B"},
        meta={"x": 1.5, "ids": [1, 2]},
    )
    assert other.id != s.id
    with pytest.raises(ValueError, match="image slots"):
        Sample(
            task="t",
            scenario="single_image",
            messages=[user("q?")],
            images=[img],
            answer="A",
            reward={"mode": "mcq"},
        )
    with pytest.raises(ValueError, match="reward mode"):
        Sample(
            task="t",
            scenario="single_image",
            messages=[user("q?")],
            images=[],
            answer="A",
            reward={"mode": "nope"},
        )


def test_shuffle_is_uniform_over_letters():
    rng = np.random.default_rng(0)
    counts = dict.fromkeys("ABCD", 0)
    for _ in range(4000):
        shuffled, letter, order = shuffle_options(["w", "x", "y", "z"], 2, rng)
        assert shuffled[LETTERS.index(letter)] == "y"
        assert letter_of(order, 2) == letter
        counts[letter] += 1
    for c in counts.values():
        assert abs(c / 4000 - 0.25) < 0.03
    assert format_options(["a", "b"]) == "A. a\nB. b"


def test_encode_is_deterministic_and_decodes():
    rng = np.random.default_rng(1)
    img = Image.fromarray(rng.integers(0, 255, (30, 40, 3), dtype=np.uint8))
    assert encode_image(img) == encode_image(img)
    png = encode_image(img, "PNG")
    np.testing.assert_array_equal(np.asarray(decode_image(png)), np.asarray(img))


def test_visual_marks_keep_the_inside_visible():
    img = Image.new("RGB", (200, 150), (128, 128, 128))
    out = draw_marks(
        img, [BoxMark((50, 60, 120, 120), "red", "red box"), PointMark((160, 40), "blue", "A")]
    )
    arr = np.asarray(out)
    assert tuple(arr[60, 80]) == (230, 25, 45)  # the outline
    assert tuple(arr[90, 85]) == (128, 128, 128)  # inside untouched
    assert tuple(arr[40, 160]) == (30, 90, 230)  # the point's centre dot
    assert np.asarray(img).max() == 128  # the original is not drawn on
    with pytest.raises(ValueError, match="unknown mark colour"):
        draw_marks(img, [BoxMark((0, 0, 5, 5), "mauve")])
    assert len(set(pick_colors(np.random.default_rng(0), 8))) == 8


def test_frame_view_on_synthetic_scene(engine_scenes):
    scene = engine_scenes[0]
    ctx = EngineContext()
    frame = scene.frames[0]
    view = ctx.view(scene, frame)
    assert view is ctx.view(scene, frame)
    assert view.visible_ids, "a single view shows objects"
    for oid in view.visible_ids:
        x1, y1, x2, y2 = view.bbox2d(oid)
        u, v = view.inner_pixel(oid)
        assert x1 <= u <= x2 and y1 <= v <= y2
        assert view.mask[v, u] == oid
        assert view.pixel_counts[oid] >= ctx.settings.min_object_pixels
        # median visible depth lies within the object's box depth range (+ margin)
        box = view.box_cam(oid)
        half = np.linalg.norm(box[3:6]) / 2
        assert box[2] - half - 0.05 <= view.object_depth(oid) <= box[2] + half + 0.05
        mx1, my1, mx2, my2 = view.model_bbox2d(oid)
        w, h = view.model_size
        assert 0 <= mx1 <= mx2 < w and 0 <= my1 <= my2 < h
    assert view.model_image().size == view.model_size
    assert view.model_size == (308, 252)  # 320/28 = 11.4 -> 11*28; 240/28 = 8.6 -> 9*28


def test_point_tag_at_right_edge_does_not_cover_the_point():
    img = Image.new("RGB", (120, 80), (128, 128, 128))
    out = np.asarray(draw_marks(img, [PointMark((114, 40), "blue", "point-A")]))
    assert tuple(out[40, 114]) == (30, 90, 230)  # the centre dot is still visible
    # the tag went to the left of the point
    tag_cols = np.nonzero((out[:, :100] == (30, 90, 230)).all(axis=2).any(axis=0))[0]
    assert tag_cols.size and tag_cols.max() < 114 - 4


def test_round_robin_takes_one_item_per_entry_per_round_until_budget():
    from vst.engine.scheduling import round_robin

    def run(budget):
        pending = [("a", [1, 2, 3]), ("b", [4]), ("c", [])]
        return [(e[0], item) for e, item in round_robin(pending, budget, np.random.default_rng(0))]

    every = run(10)
    assert sorted(item for _, item in every) == [1, 2, 3, 4]  # all, then it stops
    first_round = every[:2]
    assert {name for name, _ in first_round} == {"a", "b"}  # one from each non-empty entry
    assert [item for name, item in every if name == "a"] == [3, 2, 1]  # popped from the end
    assert run(2) == every[:2] and run(0) == []
