"""si_grounding3d: the stated box encloses the named object, 2D boxes match the mask scaled
to the stored image (FoV-unified, then at Qwen2.5-VL's size), overlapping boxes are skipped,
answers re-derive."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from PIL import Image

from vst.engine.context import EngineContext, EngineSettings
from vst.engine.imaging import smart_resize
from vst.engine.registry import get_task
from vst.engine.tasks.single_image.grounding3d import (
    format_grounding_answer,
    parse_grounding_answer,
)
from vst.geometry.cameras import fov_unify
from vst.geometry.iou import box3d_iou
from vst.scenes.model import Frame, Object3D, Scene

SETTINGS = EngineSettings()
BOX_RE = re.compile(r"\[(-?\d+(?:\.\d+)?(?:, -?\d+(?:\.\d+)?){8})\]")


def generate(scenes, seeds=range(3)):
    task = get_task("si_grounding3d")
    ctx = EngineContext()
    out = []
    for seed in seeds:
        for scene in scenes:
            out += [(scene, s) for s in task.generate(scene, np.random.default_rng(seed), 500, ctx)]
    return out


@pytest.fixture(scope="module")
def samples(engine_scenes):
    return generate(engine_scenes)


def stated_box(sample) -> np.ndarray:
    """The 9-number box of the question, angles back in degrees."""
    text = sample.messages[0]["content"][1]["text"]
    (match,) = BOX_RE.findall(text)
    box = np.array(json.loads(f"[{match}]"))
    box[6:] *= 180.0
    return box


def unified_of(frame: Frame, focal: float = 696.3):
    K = frame.K
    return fov_unify(frame.width, frame.height, K[0, 0], K[1, 1], focal, K[0, 2], K[1, 2])


def stored_size(frame: Frame, focal: float = 696.3) -> tuple[int, int]:
    """``(width, height)`` of the stored image: the FoV-unified size at Qwen2.5-VL's size."""
    u = unified_of(frame, focal)
    h, w = smart_resize(u.height, u.width)
    return w, h


def test_the_stated_box_encloses_the_named_visible_object(samples):
    assert len(samples) > 200
    for scene, s in samples:
        frame = scene.frame(s.meta["frame_ids"][0])
        cam = scene.boxes_in_camera(frame)
        box = stated_box(s)
        # the object whose camera-frame box is nearest to the stated box
        err = np.abs(cam[:, :6] - box[:6]).max(axis=1)
        k = int(np.argmin(err))
        assert err[k] <= 0.005 + 1e-9
        diff = np.abs((cam[k, 6:] - box[6:] + 180) % 360 - 180)
        assert diff.max() <= 0.9 + 1e-6
        obj = scene.objects[k]
        assert obj.id == s.meta["object_id"]
        label, _ = parse_grounding_answer(s.answer)
        assert label == obj.label
        # the object is visible enough in the frame (recomputed from the mask)
        mask = frame.load_mask()
        assert (mask == obj.id).sum() >= SETTINGS.min_object_pixels
        assert frame.truncation.get(obj.id, 0.0) <= SETTINGS.max_truncation
        # the box singles the object out
        others = np.delete(cam, k, axis=0)
        assert box3d_iou(cam[k], others).max() < 0.5


def test_2d_boxes_are_the_mask_box_on_the_unified_image(samples):
    n_box = 0
    for scene, s in samples:
        label, bbox = parse_grounding_answer(s.answer)
        if s.meta["variant"] == "label":
            assert bbox is None and s.answer == label
            assert s.reward == {"mode": "exact", "ground_truth": label}
            continue
        n_box += 1
        frame = scene.frame(s.meta["frame_ids"][0])
        size = stored_size(frame)
        assert s.images[0].size == size
        mask = frame.load_mask()
        ys, xs = np.nonzero(mask == s.meta["object_id"])
        sx, sy = size[0] / frame.width, size[1] / frame.height
        expect = (
            int(np.floor(xs.min() * sx + 0.5)),
            int(np.floor(ys.min() * sy + 0.5)),
            int(np.floor((xs.max() + 1) * sx + 0.5)) - 1,
            int(np.floor((ys.max() + 1) * sy + 0.5)) - 1,
        )
        assert bbox == expect
        # and agrees (within a pixel or two) with the box of the mask resized to that image
        big = np.asarray(Image.fromarray(mask).resize(size, Image.Resampling.NEAREST))
        bys, bxs = np.nonzero(big == s.meta["object_id"])
        near = (bxs.min(), bys.min(), bxs.max(), bys.max())
        assert max(abs(a - b) for a, b in zip(bbox, near, strict=True)) <= 2
        assert s.reward == {
            "mode": "exact",
            "ground_truth": {"label": label, "bbox_2d": list(bbox)},
        }
    assert 0.4 < n_box / len(samples) < 0.6


def test_prompt_states_the_unified_camera(samples):
    for scene, s in samples[:50]:
        frame = scene.frame(s.meta["frame_ids"][0])
        u, (w, h) = unified_of(frame), stored_size(frame)
        text = s.messages[0]["content"][1]["text"]
        assert s.images[0].size == (w, h) and len(s.images) == 1
        assert f"hfov={u.source_hfov:.2f}" in text and f"vfov={u.source_vfov:.2f}" in text
        assert f"width={w}" in text and f"height={h}" in text
        assert s.meta["unified"]["fov_size"] == [u.width, u.height]
        assert [m["role"] for m in s.messages] == ["user", "assistant"]


def overlap_scene() -> Scene:
    """One 400 x 300 frame looking along world +Y: a 'cabinet' and a 'shelf' with nearly the
    same box (IoU > 0.5), a 'chair' on its own, all fully visible in the mask."""
    w, h, f = 400, 300, 300.0
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    pose = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 1.0], [0, 0, 0, 1]])
    objects = [
        Object3D(1, "cabinet", [-0.6, 3.0, 0.5, 0.5, 0.8, 1.0, 0, 0, 0]),
        Object3D(2, "shelf", [-0.6, 3.0, 0.55, 0.5, 0.8, 1.1, 0, 0, 0]),
        Object3D(3, "chair", [0.8, 3.0, 0.45, 0.5, 0.5, 0.9, 0, 0, 0]),
    ]
    mask = np.zeros((h, w), np.int32)
    mask[120:260, 60:150] = 1
    mask[60:120, 60:150] = 2
    mask[130:250, 240:320] = 3
    frame = Frame(id="f0", K=K, width=w, height=h, cam_to_world=pose)
    frame.image = np.full((h, w, 3), 90, np.uint8)
    frame.mask = mask
    return Scene(id="overlap", source="test", objects=objects, frames=[frame])


def test_boxes_that_do_not_single_out_an_object_are_skipped():
    scene = overlap_scene()
    cam = scene.boxes_in_camera(scene.frames[0])
    assert box3d_iou(cam[0], cam[1])[0, 0] > 0.5
    task = get_task("si_grounding3d")
    out = list(task.generate(scene, np.random.default_rng(0), 50, EngineContext()))
    assert [s.meta["object_id"] for s in out] == [3]
    assert parse_grounding_answer(out[0].answer)[0] == "chair"
    assert out[0].images[0].size == stored_size(scene.frames[0])


def test_answer_format_round_trips():
    assert format_grounding_answer("trash can") == "trash can"
    text = format_grounding_answer("trash can", (3, 40, 120, 333))
    assert text == "trash can: [3, 40, 120, 333]"
    assert parse_grounding_answer(text) == ("trash can", (3, 40, 120, 333))
    assert parse_grounding_answer(" chair.") == ("chair", None)
    assert parse_grounding_answer("chair:[1,2, 3 ,4]") == ("chair", (1, 2, 3, 4))
    assert parse_grounding_answer("no idea [1, 2]")[1] is None


def test_derive_answer_determinism_and_phrasings(samples, engine_scenes):
    task = get_task("si_grounding3d")
    for scene, s in samples:
        assert task.derive_answer(scene, s.meta) == s.answer
    again = generate(engine_scenes)
    assert [s.id for _, s in again] == [s.id for _, s in samples]
    other = generate(engine_scenes, seeds=[9])
    assert [s.id for _, s in other] != [s.id for _, s in samples[: len(other)]]
    assert {s.meta["phrasing"] for _, s in samples} == set(range(6))
    assert {s.meta["preamble"] for _, s in samples} == {0, 1, 2}
    # each (frame, object) is asked at most once per scene and seed
    keys = [(s.meta["scene_id"], s.meta["frame_ids"][0], s.meta["object_id"]) for _, s in samples]
    assert len(set(keys)) == len(keys) // 3


def test_2d_boxes_are_pixels_of_the_image_the_model_gets():
    """The audit's shape: a frame whose FoV-unified size, 875 x 656, is no multiple of 28. The
    stored image is already at Qwen2.5-VL's size (868 x 644, so the processor keeps it), the
    prompt states that size and the 2D box is in its pixels (was: 875 x 656 stored, boxes in
    875 x 656 pixels, the model fed 868 x 644)."""
    w, h, f = 875, 656, 696.3  # focal = the unified focal: FoV unification keeps 875 x 656
    K = np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]])
    pose = np.array([[1.0, 0, 0, 0], [0, 0, 1, 0], [0, -1, 0, 1.0], [0, 0, 0, 1]])
    mask = np.zeros((h, w), np.int32)
    mask[100:400, 500:870] = 1  # columns 500..869, rows 100..399
    frame = Frame(id="f0", K=K, width=w, height=h, cam_to_world=pose)
    frame.image = np.full((h, w, 3), 90, np.uint8)
    frame.mask = mask
    scene = Scene(
        id="audit_shape",
        source="test",
        objects=[Object3D(1, "cabinet", [0.9, 3.0, 0.5, 0.8, 0.5, 1.2, 0, 0, 0])],
        frames=[frame],
    )
    assert unified_of(frame).size == (875, 656)
    assert smart_resize(644, 868) == (644, 868)  # the processor leaves 868 x 644 as it is
    task = get_task("si_grounding3d")
    for seed in range(12):
        (s,) = task.generate(scene, np.random.default_rng(seed), 1, EngineContext())
        assert s.images[0].size == (868, 644)
        text = s.messages[0]["content"][1]["text"]
        assert "width=868" in text and "height=644" in text
        assert s.meta["unified"]["width"] == 868 and s.meta["unified"]["height"] == 644
        assert s.meta["unified"]["fov_size"] == [875, 656]
        if s.meta["variant"] == "label_bbox2d":
            break
    else:
        raise AssertionError("no 2D-box sample in 12 seeds")
    # outer edges scaled by 868 / 875 and 644 / 656, rounded half up, inclusive bounds:
    # x1 = 500 * 0.992 = 496.0, x2 + 1 = 870 * 0.992 = 863.04 -> 862,
    # y1 = 100 * 0.98171 = 98.17 -> 98, y2 + 1 = 400 * 0.98171 = 392.68 -> 392
    assert parse_grounding_answer(s.answer) == ("cabinet", (496, 98, 862, 392))
    assert s.reward["ground_truth"]["bbox_2d"] == [496, 98, 862, 392]
    assert task.derive_answer(scene, s.meta) == s.answer
