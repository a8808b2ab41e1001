"""``vst data export --format verl``: RL Parquet in the release's form, read back by kind
``vst_release_rl`` and scored by vst and its EasyR1 / verl adapters like the shards."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.engine.export_verl import VERL_COLUMNS, export_verl
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import iter_rows, list_shards, write_shard
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.rewards import compute_reward
from vst.rewards.adapters import easyr1_compute_score, verl_compute_score
from vst.rewards.release import release_reward
from vst.train.data import DataSource, load_source

BOX = [{"bbox_3d": [0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 90.0, 0.0, 0.0], "label": "sofa"}]
BOX_TEXT = (
    '```json\n[\n  {"bbox_3d": [0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0], '
    '"label": "sofa"}\n]\n```'
)


def _pic(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (24, 32, 3), dtype=np.uint8), "RGB")


def _text(t: str) -> dict:
    return {"type": "text", "text": t}


def _samples() -> dict[str, Sample]:
    think = {"role": "system", "content": [_text(THINK_SYSTEM_PROMPT)]}
    frames = [_pic(20 + t) for t in range(2)]
    out = {
        "mcq": Sample(
            "mi_camera_object",
            "multi_image",
            [user("Image 1:", None, "Image 2:", None, "Which?"), assistant("B. east")],
            [_pic(1), _pic(2)],
            "B. east",
            {"mode": "mcq", "ground_truth": "B"},
        ),
        "numeric": Sample(
            "si_distance",
            "single_image",
            [think, user(None, "How far?"), assistant("<think>r</think> 2.35 m")],
            [_pic(3)],
            "2.35 m",
            {"mode": "numeric", "ground_truth": 2.35},
        ),
        "det3d": Sample(
            "si_det3d",
            "single_image",
            [user(None, "Find the sofa."), assistant(BOX_TEXT)],
            [_pic(4)],
            BOX_TEXT,
            {"mode": "det3d", "ground_truth": BOX},
        ),
        "caption": Sample(
            "si_scene_caption",
            "single_image",
            [user(None, "Describe."), assistant("A room.")],
            [_pic(5)],
            "A room.",
            {"mode": "caption", "ground_truth": "A room."},
        ),
        "video": Sample(
            "video_count",
            "video",
            [user(frames, "How many?"), assistant("3")],
            [],
            "3",
            {"mode": "numeric", "ground_truth": 3},
            {"video_fps": 2.0},
            videos=[frames],
        ),
        "turns": Sample(
            "si_measurement",
            "single_image",
            [user(None, "Q1?"), assistant("A1"), user("Q2?"), assistant("81 cm")],
            [_pic(6)],
            "81 cm",
            {"mode": "numeric", "ground_truth": 81},
        ),
        "custom": Sample(
            "si_distance",
            "single_image",
            [{"role": "system", "content": [_text("Be terse.")]}, user(None, "Q"), assistant("1")],
            [_pic(7)],
            "1",
            {"mode": "exact", "ground_truth": "1"},
        ),
    }
    return out


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("verl") / "data"
    out.mkdir()
    write_shard(out / "shard-00000-aaaaaaaaaaaa.parquet", list(_samples().values()))
    return out


def test_columns_rows_and_skips(data_dir, tmp_path):
    samples = _samples()
    result = export_verl(list_shards(data_dir), tmp_path / "out")
    assert [f.name for f in result.files] == ["shard-00000-aaaaaaaaaaaa.parquet"]
    assert (result.rows, result.pictures) == (3, 4)
    reasons = {sid: reason for _, sid, reason in result.skipped}
    assert reasons == {
        samples["caption"].id: "caption mode (not rule-checkable)",
        samples["video"].id: "a video (the RL form carries images only)",
        samples["turns"].id: "a multi-turn prompt with earlier assistant turns (one question only)",
        samples["custom"].id: "a custom system prompt (the RL form has no system field)",
    }
    table = pq.read_table(result.files[0])
    assert tuple(table.column_names) == VERL_COLUMNS
    rows = {r["id"]: r for r in table.to_pylist()}
    mcq = rows[samples["mcq"].id]
    assert mcq["question"] == "Image 1:\n<|image_pad|>\nImage 2:\n<|image_pad|>\nWhich?"
    assert mcq["answer"] == "B" and mcq["data_source"] == "mi_camera_object"
    assert json.loads(mcq["meta_info"]) == {
        "mode": ["multi_choices_score"],
        "reward": {"mode": "mcq", "ground_truth": "B"},
        "task": "mi_camera_object",
    }
    assert [im["path"] for im in mcq["images"]] == [
        f"{mcq['id']}_0.jpg",
        f"{mcq['id']}_1.jpg",
    ]  # shard: JPEG
    num = rows[samples["numeric"].id]  # the think system prompt is left out of the question
    assert (num["question"], num["answer"]) == ("<|image_pad|>\nHow far?", "2.35")
    assert json.loads(num["meta_info"])["mode"] == ["relaxed_score"]
    det = rows[samples["det3d"].id]
    assert det["answer"] == BOX_TEXT and json.loads(det["meta_info"])["mode"] == ["bbox3d"]


def test_reads_back_and_scores_like_the_shard(data_dir, tmp_path):
    export_verl(list_shards(data_dir), tmp_path / "out")
    back = {
        ex.id: ex for ex in load_source(DataSource(kind="vst_release_rl", path=tmp_path / "out"))
    }
    shard = {r["id"]: r for r in iter_rows(list_shards(data_dir)[0])}
    assert len(back) == 3
    for sid, ex in back.items():
        assert ex.meta["reward"] == json.loads(shard[sid]["reward"])
        assert ex.messages[-1]["role"] == "assistant" and len(ex.messages) == 2
    det = back[_samples()["det3d"].id]
    assert det.meta["det3d"] is True and det.meta["modes"] == ["bbox3d"]
    num = _samples()["numeric"].id
    assert back[num].messages[0]["content"] == [{"type": "image"}, _text("How far?")]
    # MRA as in vst (2.2 against 2.35: 6.4% off, thresholds 0.50..0.90 pass -> 0.9), where the
    # release's relaxed_score would pass/fail it at 5%
    assert compute_reward("<think>r</think>2.2", back[num].meta["reward"])["accuracy"] == (
        pytest.approx(0.9)
    )


def test_cli_verl(data_dir, tmp_path):
    from vst.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(
        app, ["data", "export", str(data_dir), "--format", "verl", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "wrote 3 samples" in res.output and "4 skipped" in res.output
    assert "caption mode (not rule-checkable)" in res.output
    assert sorted(p.name for p in out.iterdir()) == ["shard-00000-aaaaaaaaaaaa.parquet"]


@pytest.mark.slow
def test_engine_run_round_trip(all_tasks_run, tmp_path):
    """Every rule-checkable single-question sample of a real engine run: exported, read back
    with kind vst_release_rl, its spec scores the engine's own answer as the shard's spec does
    (1.0 except det3d, whose 2-decimal answer text is not the exact boxes), the adapters give
    the same from the row's meta_info, and the images are byte-identical."""
    out = tmp_path / "verl"
    result = export_verl(list_shards(all_tasks_run), out)
    shard = {r["id"]: r for p in list_shards(all_tasks_run) for r in iter_rows(p)}
    rows = {r["id"]: r for f in result.files for r in pq.read_table(f).to_pylist()}
    back = {ex.id: ex for ex in load_source(DataSource(kind="vst_release_rl", path=out))}
    assert set(back) == set(rows) and len(rows) == result.rows > 100
    kept = {sid for _, sid, _ in result.skipped}
    assert kept.isdisjoint(rows) and len(kept) + len(rows) == len(shard)
    modes = set()
    for sid, ex in back.items():
        src = shard[sid]
        answer = "".join(c["text"] for c in src["messages"][-1]["content"] if c["type"] == "text")
        response = f"<think>r</think> {answer}"
        mine = compute_reward(response, ex.meta["reward"])
        assert mine == compute_reward(response, src["reward"])
        mode = json.loads(src["reward"])["mode"]
        modes.add(mode)
        assert mine["accuracy"] == 1.0 or (mode == "det3d" and mine["accuracy"] > 0.8), sid
        row = rows[sid]
        [batch] = easyr1_compute_score([{"response": response, "ground_truth": row["meta_info"]}])
        assert batch == {k: mine[k] for k in ("overall", "format", "accuracy")}
        score = verl_compute_score(row["data_source"], response, row["meta_info"])
        assert score == mine["overall"]
        assert [im["bytes"] for im in row["images"]] == [im["bytes"] for im in src["images"]]
        assert [im.tobytes() for im in ex.images] == [
            np.asarray(Image.open(io.BytesIO(im["bytes"])).convert("RGB")).tobytes()
            for im in src["images"]
        ]
        # without the vst spec, the release's modes on the answer column: every mode but order
        # (its JSON-list answers are not the joined items the release's exact match reads)
        if mode != "order":
            info = json.loads(row["meta_info"])
            specs, _ = release_reward(info["mode"], row["answer"])
            assert compute_reward(response, specs)["accuracy"] >= min(mine["accuracy"], 1.0)
    assert modes == {"mcq", "exact", "numeric", "order", "det3d"}
