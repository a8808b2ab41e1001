"""video_count: counts recomputed from the instance masks, ambiguity skip, balance, clips."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest

from vst.engine.choices import LETTERS, MCQ_INSTRUCTIONS
from vst.engine.context import EngineContext
from vst.engine.registry import get_task
from vst.engine.tasks.video import count as vc
from vst.engine.tasks.video._clips import (
    candidate_clips,
    clip_windows,
    effective_fps,
    make_clip,
    scene_clip,
    subsample_indices,
)

SEED = 11
CLEAR, FAINT = 400, 50  # EngineSettings().min_object_pixels and 1/8 of it, rounded up


def _generate(scenes, seed=SEED, budget=1000, ctx=None):
    task = get_task("video_count")
    ctx = ctx or EngineContext()
    out = []
    for scene in scenes:
        out += list(task.generate(scene, np.random.default_rng(seed), budget, ctx))
    return out


@pytest.fixture(scope="module")
def samples(engine_scenes):
    out = _generate(engine_scenes)
    assert len(out) >= 20
    return out


@pytest.fixture(scope="module")
def mask_pixels(engine_scenes):
    """(scene id, frame id) -> {object id: mask pixels}, counted from the mask files."""
    out = {}
    for scene in engine_scenes:
        for frame in scene.frames:
            mask = frame.load_mask()
            ids, counts = np.unique(mask[mask > 0], return_counts=True)
            out[scene.id, frame.id] = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    return out


def _truth(scene, frame_ids, mask_pixels, clear_in_frame):
    """label -> (instances clearly seen in some frame: >= CLEAR px and visible enough, instances
    peaking >= FAINT px but never clear)."""
    peak: dict[int, int] = {}
    sharp: set[int] = set()
    for fid in frame_ids:
        for oid, c in mask_pixels[scene.id, fid].items():
            peak[oid] = max(peak.get(oid, 0), c)
        sharp |= clear_in_frame[scene.id, fid]
    out: dict[str, tuple[set, set]] = {}
    for oid, p in peak.items():
        if p < FAINT:
            continue
        clear, faint = out.setdefault(scene.object(oid).label, (set(), set()))
        (clear if oid in sharp else faint).add(oid)
    return out


def test_counts_match_masks(samples, engine_scenes, mask_pixels, clear_in_frame):
    scenes = {s.id: s for s in engine_scenes}
    for s in samples:
        scene = scenes[s.meta["scene_id"]]
        clear, faint = _truth(scene, s.meta["frame_ids"], mask_pixels, clear_in_frame)[
            s.meta["label"]
        ]
        assert not faint, "categories with glimpsed instances are skipped"
        assert len(clear) >= 1 and s.meta["count"] == len(clear)
        assert sorted(s.meta["object_ids"]) == sorted(clear)
        if s.meta["style"] == "numeric":
            assert s.answer == str(len(clear))
            assert s.reward == {"mode": "numeric", "ground_truth": len(clear)}
        else:
            opts = s.meta["options"]
            assert len(set(opts)) == 4 and len(clear) in opts and min(opts) >= 0
            assert s.answer == LETTERS[opts.index(len(clear))]
            assert s.reward == {"mode": "mcq", "ground_truth": s.answer}
            text = s.messages[0]["content"][1]["text"]
            for k, v in enumerate(opts):
                assert f"\n{LETTERS[k]}. {v}\n" in text
        text = s.messages[0]["content"][1]["text"]
        if s.meta["phrasing"][0] == len(vc.QUESTIONS):  # VSI-Bench's: the room's whole count
            assert text.startswith(f"How many {s.meta['label']}(s) are in this room?")
            assert s.meta["frame_ids"] == [f.id for f in scene_clip(scene).frames]
            assert s.meta["count"] == scene.categories()[s.meta["label"]]
        else:
            assert vc.plural(s.meta["label"]) in text


def test_every_clear_category_of_the_whole_video_is_asked(
    samples, engine_scenes, mask_pixels, clear_in_frame
):
    for scene in engine_scenes:
        ids = [f"video_{k:03d}" for k in range(16)]  # the fixture's whole 16-frame video
        truth = _truth(scene, ids, mask_pixels, clear_in_frame)
        asked = {
            s.meta["label"]
            for s in samples
            if s.meta["scene_id"] == scene.id and s.meta["frame_ids"] == ids
        }
        expected = {k for k, (clear, faint) in truth.items() if clear and not faint}
        assert asked == expected
        assert any(faint for _, faint in truth.values()), "the fixture has ambiguous categories"
    # the occlusion rule bites here: some instance has CLEAR pixels in a frame yet is too hidden
    hidden = [
        (key, oid)
        for key, counts in mask_pixels.items()
        for oid, c in counts.items()
        if c >= CLEAR and oid not in clear_in_frame[key]
    ]
    assert hidden, "the fixture has an object with enough pixels but mostly hidden"


def test_video_record_and_clip(samples, engine_scenes):
    scenes = {s.id: s for s in engine_scenes}
    for s in samples:
        scene = scenes[s.meta["scene_id"]]
        fids = s.meta["frame_ids"]
        assert s.messages[0]["content"][0] == {"type": "video"} and s.images == []
        assert len(s.videos) == 1 and len(s.videos[0]) == len(fids) >= 4
        frames = [scene.frame(f) for f in fids]
        times = [f.timestamp for f in frames]
        assert times == sorted(times) and len(set(times)) == len(times)
        # contiguous run of the trajectory (16 frames <= 16: no subsampling)
        nums = [int(f.split("_")[1]) for f in fids]
        assert nums == list(range(nums[0], nums[0] + len(nums)))
        assert s.meta["video_fps"] == pytest.approx((len(fids) - 1) / (times[-1] - times[0]))
        size = EngineContext().view(scene, frames[0]).model_size  # Qwen2.5-VL smart size
        assert all(im.size == size for im in s.videos[0])
    for s in samples[:3]:  # the video shows the listed frames, in order
        scene = scenes[s.meta["scene_id"]]
        ctx = EngineContext()
        for im, fid in zip(s.videos[0], s.meta["frame_ids"], strict=True):
            expected = np.asarray(ctx.view(scene, scene.frame(fid)).model_image())
            assert np.array_equal(np.asarray(im), expected)


def test_derive_answer_determinism_and_phrasing(samples, engine_scenes):
    task = get_task("video_count")
    scenes = {s.id: s for s in engine_scenes}
    for s in samples:
        assert task.derive_answer(scenes[s.meta["scene_id"]], s.meta) == s.answer
    assert [s.id for s in _generate(engine_scenes)] == [s.id for s in samples]
    assert [s.id for s in _generate(engine_scenes, seed=SEED + 1)] != [s.id for s in samples]
    for kind in (vc.QUESTIONS, vc.NUMERIC_SUFFIXES, *MCQ_INSTRUCTIONS.values()):
        assert len(set(kind)) >= 5
    assert len({s.meta["phrasing"][0] for s in samples}) >= 5
    styles = Counter(s.meta["style"] for s in samples)
    assert set(styles) == {"numeric", "mcq"}


def test_each_fact_asked_once_per_clip(samples):
    """One sample per (clip, category), in one style (it used to come in both)."""
    facts = Counter(
        (s.meta["scene_id"], tuple(s.meta["frame_ids"]), s.meta["label"]) for s in samples
    )
    assert max(facts.values()) == 1


def test_vsibench_question_only_when_the_video_shows_the_whole_room(engine_scenes):
    asked = Counter()
    for seed in range(20):
        for s in _generate(engine_scenes, seed=100 + seed):
            vsi = s.meta["phrasing"][0] == len(vc.QUESTIONS)
            scene = next(x for x in engine_scenes if x.id == s.meta["scene_id"])
            whole = s.meta["frame_ids"] == [f.id for f in scene_clip(scene).frames]
            all_seen = s.meta["count"] == scene.categories()[s.meta["label"]]
            assert not vsi or (whole and all_seen)
            asked[vsi, whole and all_seen] += 1
    assert asked[True, True] > 0 and asked[False, True] > asked[True, True]


def test_letters_balanced_and_counts_spread(engine_scenes):
    ctx = EngineContext()
    letters: Counter[str] = Counter()
    small_budget: Counter[int] = Counter()
    seed = 0
    while sum(letters.values()) < 1000:
        for s in _generate(engine_scenes, seed=1000 + seed, ctx=ctx):
            if s.meta["style"] == "mcq":
                letters[s.answer] += 1
        seed += 1
    n = sum(letters.values())
    for letter in "ABCD":
        assert abs(letters[letter] / n - 0.25) <= 0.05, letters
    # small budgets: draws weighted against frequent counts, so count 1 is not dominant
    full = Counter(s.meta["count"] for s in _generate(engine_scenes, ctx=ctx))
    for seed in range(60):
        for s in _generate(engine_scenes, seed=seed, budget=3, ctx=ctx):
            small_budget[s.meta["count"]] += 1
    share_full = full[1] / sum(full.values())
    share_small = small_budget[1] / sum(small_budget.values())
    assert len(full) >= 3 and share_full > 0.5
    assert share_small < share_full - 0.1, (full, small_budget)


def test_count_options():
    rng = np.random.default_rng(0)
    for c in (1, 2, 5, 12):
        for _ in range(50):
            opts = vc.count_options(c, rng)
            assert len(set(opts)) == 4 and c in opts
            assert all(max(0, c - 3) <= v <= c + 3 for v in opts)


def test_clip_helpers(engine_scenes):
    scene = engine_scenes[0]
    assert subsample_indices(5, 16) == [0, 1, 2, 3, 4]
    idx = subsample_indices(100, 16)
    assert len(idx) == 16 and idx[0] == 0 and idx[-1] == 99 and idx == sorted(set(idx))
    assert max(np.diff(idx)) - min(np.diff(idx)) <= 1
    full = scene_clip(scene)
    assert full.frame_ids == [f"video_{k:03d}" for k in range(16)] and full.fps == 2.0
    assert full.meta() == {"frame_ids": full.frame_ids, "video_fps": 2.0}
    short = make_clip(scene, list(full.frames), max_frames=4)
    assert short.frame_ids == ["video_000", "video_005", "video_010", "video_015"]
    assert short.fps == pytest.approx(3 / 7.5) == effective_fps(short.frames)
    rng = np.random.default_rng(0)
    wins = clip_windows(scene, rng, 20)
    assert wins and all(4 <= len(w) <= 15 for w in wins)
    assert len({tuple(w.frame_ids) for w in wins}) == len(wins)
    clips = candidate_clips(scene, np.random.default_rng(0), windows=3)
    assert clips[0].frame_ids == full.frame_ids and len(clips) <= 4
    ctx = EngineContext()
    pairs = zip(full.images(ctx), full.views(ctx), strict=True)
    assert all(im is v.shared_model_image() for im, v in pairs)
    assert set(full.visible_any(ctx)) == set().union(*(v.visible_ids for v in full.views(ctx)))
    assert re.fullmatch(r"video_\d{3}", wins[0].frame_ids[0])
