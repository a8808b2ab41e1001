"""Video samples: frame lists through the record, the shard writer, `datasets` and LLaVA export."""

from __future__ import annotations

import json

import datasets
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app
from vst.engine.sample import VIDEO, Sample, assistant, user
from vst.engine.writer import write_shard


def _video_sample(n_frames: int = 3) -> Sample:
    frames = [Image.new("RGB", (56, 28), (40 * t, 10, 200)) for t in range(n_frames)]
    return Sample(
        task="test_video",
        scenario="video",
        messages=[user(VIDEO, "How many frames?"), assistant(str(n_frames))],
        images=[],
        videos=[frames],
        answer=str(n_frames),
        reward={"mode": "numeric", "ground_truth": n_frames},
        meta={"video_fps": 2.0, "frame_ids": [f"video_{t:03d}" for t in range(n_frames)]},
    )


def test_video_slots_are_counted():
    s = _video_sample()
    assert s.messages[0]["content"][0] == {"type": "video"}
    with pytest.raises(ValueError, match="video slots"):
        Sample(
            task="t",
            scenario="video",
            messages=[user(VIDEO, "q")],
            images=[],
            videos=[],
            answer="1",
            reward={"mode": "numeric", "ground_truth": 1},
        )
    with pytest.raises(ValueError, match="no frames"):
        Sample(
            task="t",
            scenario="video",
            messages=[user(VIDEO, "q")],
            images=[],
            videos=[[]],
            answer="1",
            reward={"mode": "numeric", "ground_truth": 1},
        )


def test_video_round_trip_through_shard_and_datasets(tmp_path):
    shard = tmp_path / "data" / "shard-00000-0123456789ab.parquet"
    shard.parent.mkdir()
    write_shard(shard, [_video_sample(3)], image_format="PNG")
    ds = datasets.load_dataset("parquet", data_files=str(shard), split="train")
    row = ds[0]
    assert row["images"] == []
    assert len(row["videos"]) == 1 and len(row["videos"][0]) == 3
    frame = row["videos"][0][2]
    assert isinstance(frame, Image.Image) and frame.size == (56, 28)
    assert tuple(np.asarray(frame)[0, 0]) == (80, 10, 200)  # lossless PNG: the third frame
    assert row["messages"][0]["content"][0]["type"] == "video"

    out = tmp_path / "llava"
    result = CliRunner().invoke(app, ["data", "export", str(tmp_path), "--out", str(out)])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "data.json").read_text())[0]
    assert record["conversations"][0]["value"].startswith("<video>\n")
    assert len(record["video"]) == 3 and "image" not in record
    assert all((out / p).is_file() for p in record["video"])
