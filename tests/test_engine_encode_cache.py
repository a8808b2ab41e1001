"""The encoded-image cache (vst.engine.encode_cache) and the end-to-end path it speeds up:
bytes equal the uncached encoder's, different pixels never share bytes, shards stay
byte-deterministic with the cache on or off and with 1 or 2 workers."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image, ImageDraw

from vst.engine.config import parse_config
from vst.engine.encode_cache import EncodedImageCache, pixel_digest
from vst.engine.imaging import decode_image, encode_image
from vst.engine.registry import get_task
from vst.engine.runner import UnitRunner, plan_units, run
from vst.engine.visual_prompts import PALETTE, PointMark, draw_marks
from vst.engine.writer import SHARD_FORMAT_VERSION, iter_rows, list_shards, shard_meta


def _frame(seed: int = 0, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A smooth RGB picture (JPEG-friendly) with some texture."""
    w, h = size
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(seed)
    arr = np.stack([(xx * 2 + seed) % 256, (yy * 3) % 256, (xx + yy) % 256], axis=-1)
    arr = (arr + rng.integers(0, 8, arr.shape)).clip(0, 255).astype(np.uint8)
    return Image.fromarray(arr, "RGB")


def test_cached_bytes_equal_the_encoder_and_decode_to_the_source():
    cache = EncodedImageCache()
    img = _frame()
    for fmt, q in (("JPEG", 95), ("PNG", 95)):
        first = cache.encode(img, fmt, q)
        assert first == encode_image(img, fmt, q)
        assert cache.encode(img.copy(), fmt, q) is first  # equal pixels: served from the cache
    assert (cache.hits, cache.misses, len(cache)) == (2, 2, 2)
    src = np.asarray(img).astype(int)
    png = np.asarray(decode_image(cache.encode(img, "PNG")))
    assert np.array_equal(png, src)  # PNG: exact
    jpg = np.asarray(decode_image(cache.encode(img, "JPEG", 95))).astype(int)
    assert jpg.shape == src.shape
    assert np.abs(jpg - src).mean() < 2.0 and np.abs(jpg - src).max() <= 24  # JPEG q95


def test_marks_size_format_and_quality_give_other_bytes():
    cache = EncodedImageCache()
    plain = _frame(1)
    plain_jpg = cache.encode(plain, "JPEG", 95)
    marked = draw_marks(plain, [PointMark((40.0, 30.0), next(iter(PALETTE)), "A")])
    marked_jpg = cache.encode(marked, "JPEG", 95)
    # a key that missed the marks would serve the plain frame's bytes here
    assert marked_jpg != plain_jpg and marked_jpg == encode_image(marked, "JPEG", 95)

    one_pixel = plain.copy()
    one_pixel.putpixel((50, 30), (0, 0, 0))
    assert cache.encode(one_pixel, "PNG") == encode_image(one_pixel, "PNG")
    assert cache.encode(one_pixel, "PNG") != cache.encode(plain, "PNG")

    assert cache.encode(plain, "JPEG", 80) == encode_image(plain, "JPEG", 80) != plain_jpg
    assert cache.encode(plain, "JPG", 95) is plain_jpg  # JPG is JPEG
    cropped = plain.crop((0, 0, 96, 63))
    assert cache.encode(cropped, "JPEG", 95) == encode_image(cropped, "JPEG", 95)
    assert (cache.misses, cache.hits) == (6, 2)


def test_an_image_drawn_on_in_place_is_encoded_again():
    """The key is the pixels, not the object: the same image object, changed after its first
    encoding, gets the bytes of its new pixels."""
    cache = EncodedImageCache()
    img = _frame(2)
    before = cache.encode(img, "JPEG", 95)
    ImageDraw.Draw(img).ellipse([5, 5, 40, 40], fill=(0, 255, 0))
    after = cache.encode(img, "JPEG", 95)
    assert after != before and after == encode_image(img, "JPEG", 95)


def test_digest_covers_every_pixel_and_both_read_paths():
    a, b = _frame(3), _frame(3)
    assert pixel_digest(a) == pixel_digest(b) and len(pixel_digest(a)) == 16
    b.putpixel((95, 63), (1, 2, 3))  # the last pixel
    assert pixel_digest(a) != pixel_digest(b)
    gray = a.convert("L")  # not RGB: read with tobytes()
    assert (
        pixel_digest(gray)
        == pixel_digest(gray.copy())
        != pixel_digest(a.convert("L").point(lambda v: v ^ 1))
    )
    # arrays are accepted like by encode_image
    cache = EncodedImageCache()
    assert cache.encode(np.asarray(a), "PNG") == encode_image(a, "PNG")


def test_cache_is_bounded_and_clears():
    img = [_frame(i) for i in range(4)]
    size = len(encode_image(img[0], "PNG"))
    cache = EncodedImageCache(max_bytes=int(size * 2.5))
    for im in img:
        cache.encode(im, "PNG")
    assert len(cache) == 2 and cache.nbytes <= cache.max_bytes  # least recently used left
    cache.encode(img[0], "PNG")
    assert cache.misses == 5  # img[0] had been evicted
    cache.clear()
    assert len(cache) == 0 and cache.nbytes == 0
    with pytest.raises(ValueError, match="max_bytes"):
        EncodedImageCache(max_bytes=-1)


# -- whole runs ---------------------------------------------------------------------------
TASKS = ["video_appearance_order", "si_depth_point"]
"""A video task (every sample carries the scene's clip) and a task that draws marks."""


def _config(out: Path, scenes: Path, workers: int = 1):
    return parse_config(
        {
            "output": str(out),
            "seed": 11,
            "sources": [{"kind": "scenes", "path": str(scenes)}],
            "tasks": [{"name": t, "per_scene": 3} for t in TASKS],
            "image_format": "JPEG",
            "jpeg_quality": 95,
            "scenes_per_shard": 2,
            "workers": workers,
        }
    )


def _digests(out: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in list_shards(out)}


def test_runs_are_byte_identical_with_the_cache_on_or_off_and_any_worker_count(
    engine_scene_dirs, tmp_path, monkeypatch
):
    scenes = engine_scene_dirs[0].parent
    cached = run(_config(tmp_path / "a", scenes), progress=False)
    assert cached.samples_total > 0 and set(cached.samples_per_task) == set(TASKS)
    ref = _digests(tmp_path / "a")
    assert len(ref) == 2
    # the same config again, in parallel
    run(_config(tmp_path / "b", scenes, workers=2), progress=False)
    assert _digests(tmp_path / "b") == ref
    # every picture of every sample encoded (no cache): the same bytes
    monkeypatch.setattr(UnitRunner, "cache_images", False)
    run(_config(tmp_path / "c", scenes), progress=False)
    assert _digests(tmp_path / "c") == ref

    shard = list_shards(tmp_path / "a")[0]
    assert shard_meta(shard)["format_version"] == SHARD_FORMAT_VERSION == 3
    # the video column stores each distinct frame once (dictionary) and reads back whole
    md = pq.ParquetFile(shard).metadata
    cols = {
        md.row_group(0).column(i).path_in_schema: md.row_group(0).column(i)
        for i in range(md.num_columns)
    }
    video = cols["videos.list.element.list.element.bytes"]
    assert "RLE_DICTIONARY" in video.encodings or "PLAIN_DICTIONARY" in video.encodings
    rows = [r for r in iter_rows(shard) if r["videos"]]
    assert rows and all(len(r["videos"][0]) >= 8 for r in rows)
    frame = decode_image(rows[0]["videos"][0][0]["bytes"])
    assert frame.mode == "RGB" and min(frame.size) > 0


def test_one_worker_encodes_a_shared_clip_once(engine_scene_dirs, tmp_path):
    """The runner's cache serves a scene's clip to every video sample after the first."""
    config = _config(tmp_path, engine_scene_dirs[0].parent)
    runner = UnitRunner(config, [type(get_task("video_appearance_order"))])
    config.data_dir.mkdir(parents=True, exist_ok=True)
    unit = plan_units(config, engine_scene_dirs[:1])[0]
    res = runner.run_unit(unit)
    assert res.rows >= 2
    frames = [f["bytes"] for r in iter_rows(config.data_dir / unit.shard) for f in r["videos"][0]]
    assert runner.images is not None
    assert runner.images.misses == len(set(frames)) < len(frames)
    assert runner.images.hits == len(frames) - runner.images.misses
