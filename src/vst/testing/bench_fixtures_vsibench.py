"""A small VSI-Bench in its real on-disk format, for tests and the demo.

``write_vsibench(root, fmt)`` writes ``test-00000-of-00001.parquet`` (or ``test.jsonl``) with
the dataset's columns and dtypes (``id`` int64, strings, ``options`` list<string> or null) and
two mp4 videos at ``{dataset}/{scene_name}.mp4`` (PyAV, mpeg4): :data:`VIDEO_FRAMES` frames at
:data:`VIDEO_RATE` fps, frame ``i`` a solid :data:`COLOURS` ``[i]``, so the frames a reader
samples can be recognised by colour.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from PIL import Image

__all__ = ["COLOURS", "ROWS", "VIDEO_FRAMES", "VIDEO_RATE", "write_video", "write_vsibench"]

VIDEO_FRAMES = 10
VIDEO_RATE = 5
COLOURS: tuple[tuple[int, int, int], ...] = tuple(
    (min(255, 25 * i), 255 - 25 * i, 128 if i % 2 else 32) for i in range(VIDEO_FRAMES)
)

_DIR4 = ["A. front-left", "B. front-right", "C. back-left", "D. back-right"]
ROWS: tuple[dict[str, Any], ...] = (
    {"id": 0, "dataset": "arkitscenes", "scene_name": "41069025",
     "question_type": "obj_appearance_order",
     "question": "What will be the first-time appearance order of the following categories "
     "in the video: chair, table, sofa?",
     "options": ["A. chair, table, sofa", "B. table, chair, sofa", "C. sofa, chair, table",
                 "D. table, sofa, chair"], "ground_truth": "A"},
    {"id": 1, "dataset": "arkitscenes", "scene_name": "41069025",
     "question_type": "object_abs_distance",
     "question": "Measuring from the closest point of each object, what is the direct distance "
     "between the chair and the sofa (in meters)?", "options": None, "ground_truth": "2.0"},
    {"id": 2, "dataset": "arkitscenes", "scene_name": "41069025",
     "question_type": "object_counting", "question": "How many chair(s) are in this room?",
     "options": None, "ground_truth": "5"},
    {"id": 3, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "object_rel_direction_easy",
     "question": "If I am standing by the sofa and facing the tv, is the lamp to my left or "
     "the right?", "options": ["A. left", "B. right"], "ground_truth": "B"},
    {"id": 4, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "object_rel_direction_medium",
     "question": "If I am standing by the sofa and facing the tv, is the lamp to my left, "
     "right, or back?", "options": ["A. left", "B. right", "C. back"], "ground_truth": "C"},
    {"id": 5, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "object_rel_direction_hard",
     "question": "If I am standing by the sofa and facing the tv, is the lamp to my "
     "front-left, front-right, back-left, or back-right?", "options": _DIR4,
     "ground_truth": "A"},
    {"id": 6, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "object_rel_distance",
     "question": "Which of these objects (bed, desk, lamp, door) is the closest to the tv?",
     "options": ["A. bed", "B. desk", "C. lamp", "D. door"], "ground_truth": "D"},
    {"id": 7, "dataset": "arkitscenes", "scene_name": "41069025",
     "question_type": "object_size_estimation",
     "question": "What is the length of the longest dimension (length, width, or height) of "
     "the table, measured in centimeters?", "options": None, "ground_truth": "80"},
    {"id": 8, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "room_size_estimation",
     "question": "What is the size of this room (in square meters)?", "options": None,
     "ground_truth": "30.9"},
    {"id": 9, "dataset": "scannet", "scene_name": "scene0011_00",
     "question_type": "route_planning",
     "question": "You are a robot beginning at the door. You want to navigate to the bed. "
     "1. Go forward until the desk 2. [please fill in] 3. Go forward until the bed.",
     "options": ["A. Turn Left", "B. Turn Right", "C. Turn Back"], "ground_truth": "B"},
    {"id": 10, "dataset": "arkitscenes", "scene_name": "41069025",
     "question_type": "object_counting", "question": "How many table(s) are in this room?",
     "options": None, "ground_truth": "10"},
)  # fmt: skip
"""One question per type (two countings), on two scenes of two source datasets."""


def write_video(path: Path, colours: tuple[tuple[int, int, int], ...] = COLOURS) -> None:
    """A short mp4 (mpeg4, 64x48, :data:`VIDEO_RATE` fps), one solid colour per frame."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("mpeg4", rate=VIDEO_RATE)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for colour in colours:
            frame = av.VideoFrame.from_image(Image.new("RGB", (64, 48), colour))
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)


def write_vsibench(
    root: Path, fmt: str = "parquet", rows: tuple[dict[str, Any], ...] = ROWS
) -> Path:
    """Write the question table (``fmt`` "parquet" or "jsonl") and every scene's video under
    ``root``; returns the table's path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    root.mkdir(parents=True, exist_ok=True)
    for dataset, scene in sorted({(r["dataset"], r["scene_name"]) for r in rows}):
        write_video(root / dataset / f"{scene}.mp4")
    if fmt == "jsonl":
        path = root / "test.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        return path
    schema = pa.schema(
        [
            ("id", pa.int64()),
            ("dataset", pa.string()),
            ("scene_name", pa.string()),
            ("question_type", pa.string()),
            ("question", pa.string()),
            ("options", pa.list_(pa.string())),
            ("ground_truth", pa.string()),
        ]
    )
    path = root / "test-00000-of-00001.parquet"
    pq.write_table(pa.Table.from_pylist(list(rows), schema=schema), path)
    return path
