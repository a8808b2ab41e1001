"""Synthetic source without rendering: catalog, rooms, placement, configs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from vst.scenes.sources.synthetic.catalog import CATEGORIES, VARIANTS, build_object
from vst.scenes.sources.synthetic.config import SynthConfig, format_validation_error
from vst.scenes.sources.synthetic.generate import make_layout, scene_id
from vst.scenes.sources.synthetic.layout import (
    polygons_overlap,
    rect_corners,
    sample_room,
)

REQUIRED = {
    "table", "chair", "sofa", "bed", "cabinet", "shelf", "desk", "nightstand", "lamp", "monitor",
    "tv", "plant", "box", "trash can", "toilet", "sink", "refrigerator", "door", "window",
    "picture", "pillow", "bottle", "cup", "book",
}  # fmt: skip


def test_catalog_has_the_required_categories():
    assert set(CATEGORIES) >= REQUIRED
    assert len(CATEGORIES) >= 20


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: f"{v.category}-{v.name}")
def test_models_are_multi_part_and_fill_their_size_prior(variant):
    rng = np.random.default_rng(0)
    for _ in range(5):
        obj = build_object(rng, variant)
        parts = obj.model.parts
        assert len(parts) >= 2, "every model is built from several primitives"
        lo, hi = obj.model.extent()
        size = hi - lo
        L, W, H = obj.dims
        # the tight box is the sampled size (the object frame is centred on the footprint)
        np.testing.assert_allclose(size, [L, W, H], atol=1e-9)
        np.testing.assert_allclose([lo[0] + hi[0], lo[1] + hi[1], lo[2]], 0.0, atol=1e-9)
        for p in parts:
            assert np.all(np.asarray(p.lo) <= np.asarray(p.hi))
            if p.shape == "cylinder":
                ax = "xyz".index(p.axis)
                d = np.asarray(p.hi) - np.asarray(p.lo)
                others = [d[i] for i in range(3) if i != ax]
                assert math.isclose(others[0], others[1], rel_tol=1e-9)
        for s in obj.model.surfaces:
            assert s.x[0] < s.x[1] and s.y[0] < s.y[1] and 0 < s.z <= H + 1e-9


def _room_polygon_area(room):
    x, y = room.polygon[:, 0], room.polygon[:, 1]
    return (np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2


@pytest.mark.parametrize("seed", range(12))
def test_rooms_rect_and_l_shaped(seed):
    rng = np.random.default_rng(seed)
    room = sample_room(rng, (3.0, 9.0), (2.4, 3.2), "l" if seed % 2 else "rect")
    x0, y0, x1, y1 = room.bbox
    assert 3.0 <= x1 - x0 <= 9.0 and 3.0 <= y1 - y0 <= 9.0
    assert 2.4 <= room.height <= 3.2
    assert _room_polygon_area(room) > 0, "floor polygon must be counter-clockwise"
    if room.kind == "l_shaped":
        assert len(room.polygon) == 6
        nx0, ny0, nx1, ny1 = room.notch
        expected = (x1 - x0) * (y1 - y0) - (nx1 - nx0) * (ny1 - ny0)
        assert math.isclose(room.area, expected, rel_tol=1e-9)
        assert not room.contains_point(((nx0 + nx1) / 2, (ny0 + ny1) / 2))
    else:
        assert len(room.polygon) == 4
    # both kinds appear with "l"/"rect" requests (sides >= 3.6 m allow an L)
    if seed % 2 and min(x1 - x0, y1 - y0) >= 3.6:
        assert room.kind == "l_shaped"


def _boxes_overlap(a, b, margin=0.0) -> bool:
    za = (a[2] - a[5] / 2, a[2] + a[5] / 2)
    zb = (b[2] - b[5] / 2, b[2] + b[5] / 2)
    if za[1] <= zb[0] + 1e-6 or zb[1] <= za[0] + 1e-6:
        return False
    fa = rect_corners(a[0], a[1], a[3] / 2, a[4] / 2, math.radians(a[8]))
    fb = rect_corners(b[0], b[1], b[3] / 2, b[4] / 2, math.radians(b[8]))
    return polygons_overlap(fa, fb, margin)


@pytest.mark.parametrize("seed", range(8))
def test_layout_no_interpenetration_and_inside_room(seed):
    cfg = SynthConfig(seed=seed)
    layout, _ = make_layout(cfg, 0)
    objs = layout.objects
    assert len(objs) >= 5
    ids = [o.id for o in objs]
    assert ids == list(range(1, len(objs) + 1))
    counts: dict[str, int] = {}
    for o in objs:
        counts[o.category] = counts.get(o.category, 0) + 1
    assert max(counts.values()) >= 2, "several instances of some category"
    for i, a in enumerate(objs):
        box = a.box()
        assert box[6] == 0 and box[7] == 0, "upright: pitch = yaw slot = 0, rotation about Z"
        assert layout.room.contains_polygon(a.footprint(), -0.011)
        assert box[2] - box[5] / 2 >= -1e-9 and box[2] + box[5] / 2 <= layout.room.height
        for b in objs[i + 1 :]:
            if a.support == b.id or b.support == a.id:
                continue
            assert not _boxes_overlap(box, b.box()), (a.category, b.category)
        if a.support is not None:
            sup = objs[a.support - 1]
            assert a.category != sup.category
            # small objects stand on the supporter's surface, inside its footprint
            assert polygons_overlap(a.footprint(), sup.footprint())


def test_layout_is_deterministic_and_independent_of_num_scenes():
    a, _ = make_layout(SynthConfig(seed=3, num_scenes=1, start_index=2), 2)
    b, _ = make_layout(SynthConfig(seed=3, num_scenes=5), 2)
    c, _ = make_layout(SynthConfig(seed=4, num_scenes=5), 2)
    assert [o.box().tolist() for o in a.objects] == [o.box().tolist() for o in b.objects]
    assert [o.box().tolist() for o in a.objects] != [o.box().tolist() for o in c.objects]
    assert scene_id(3, 2) == "synth_s3_00002"


def test_category_filter():
    layout, _ = make_layout(SynthConfig(seed=1, categories=["table", "cup", "chair"]), 0)
    assert {o.category for o in layout.objects} <= {"table", "cup", "chair"}
    assert "table" in {o.category for o in layout.objects}


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"num_scenes": 0}, "num_scenes"),
        ({"categories": ["unicorn"]}, "unknown category 'unicorn'"),
        ({"categories": ["cup"]}, "only stands on"),
        ({"room_side": (6.0, 4.0)}, "impossible room"),
        ({"room_side": (1.0, 2.0)}, "impossible room"),
        ({"room_height": (1.5, 1.8)}, "impossible room"),
        ({"room_shape": "l", "room_side": (3.0, 3.2)}, "L-shaped"),
        ({"single_views": 0, "multiview_sets": 0, "video_frames": 0}, "nothing to render"),
        ({"room_types": ["garage"]}, "unknown room type"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_options_fail_clearly(kwargs, needle):
    with pytest.raises(ValidationError) as info:
        SynthConfig(**kwargs)
    assert needle in format_validation_error(info.value)
