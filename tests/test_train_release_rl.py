"""``kind: vst_release_rl``: the release's RL Parquet read as TrainExamples with reward specs, on
a fixture written in the release's exact layout (pyarrow, its columns and types)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.engine.imaging import encode_image
from vst.models.samples import prompt_turns
from vst.rewards import compute_reward
from vst.train.data import DataSource, mix, open_source, source_from_dict

RL_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("images", pa.list_(pa.struct([("bytes", pa.binary()), ("path", pa.string())]))),
        ("question", pa.string()),
        ("answer", pa.string()),
        ("meta_info", pa.string()),
        ("data_source", pa.string()),
    ]
)
FLAG = "<|image_pad|>"
BOXES = '```json\n[\n  {"bbox_3d": [0, 0, 3, 1, 1, 1, 0.5, 0, 0], "label": "sofa"}\n]\n```'


def _pic(seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (20, 30, 3), dtype=np.uint8), "RGB")


def _entry(seed: int) -> dict:
    return {"bytes": encode_image(_pic(seed), "PNG"), "path": f"/data/{seed}.png"}


def _row(rid, images, question, answer, mode, **info) -> dict:
    meta = {"mode": mode, **info}
    return {
        "id": rid,
        "images": images,
        "question": question,
        "answer": answer,
        "meta_info": json.dumps(meta),
        "data_source": "vstr_" + rid,
    }


@pytest.fixture
def rl_dir(tmp_path: Path) -> Path:
    rows = [
        _row(
            "mc",
            [_entry(1), _entry(2)],
            f"{FLAG}{FLAG}Which is closer?\nA. lamp\nB. desk",
            "B",
            ["multi_choices_score"],
            question_type="depth",
        ),
        _row(
            "multi",
            [_entry(3)],
            f"Look: {FLAG} How far is the desk, in metres?",
            "2.5",
            ["vqa_score", "relaxed_score"],
        ),
        _row("box", [_entry(4)], "Detect the sofa.", BOXES, ["bbox3d"]),  # no flag: prepended
        _row("two_flags", [_entry(5)], f"{FLAG}{FLAG}Same?", "yes", ["vqa_score"]),
        _row("bad_mode", [_entry(6)], f"{FLAG}Q", "1", ["exp_rate"]),
        _row(
            "bad_bytes", [{"bytes": b"not a picture", "path": "x"}], f"{FLAG}Q", "1", ["vqa_score"]
        ),
        _row("no_question", [_entry(7)], "  ", "1", ["vqa_score"]),
    ]
    out = tmp_path / "rl"
    (out / "sub").mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=RL_SCHEMA), out / "part-0.parquet")
    # a second file, deeper, without the optional data_source column and without ids
    other = pa.schema([f for f in RL_SCHEMA if f.name not in ("data_source",)])
    row = _row("", [_entry(8)], f"{FLAG}Answer?", "The answer is B", ["anls_score"])
    del row["data_source"]
    pq.write_table(pa.Table.from_pylist([row], schema=other), out / "sub" / "part-1.parquet")
    return out


def test_reads_rows_as_prompt_and_reference_answer(rl_dir):
    src = open_source(DataSource(kind="vst_release_rl", path=rl_dir))
    assert len(src) == 6  # bad_mode and no_question are left out while indexing
    got = {ex.id: ex for ex in src.examples()}
    assert sorted(got) == ["box", "mc", "multi", "part-1.parquet:0"]
    reasons = {s.id: s.reason for s in src.skipped}
    assert sorted(reasons) == ["bad_bytes", "bad_mode", "no_question", "two_flags"]
    assert "unknown release reward mode 'exp_rate'" in reasons["bad_mode"]
    assert reasons["no_question"].endswith("part-0.parquet row 6: no question")
    assert "image 0" in reasons["bad_bytes"]
    assert (
        "media markers (2 <|image_pad|>) do not match the media (1 image(s))"
        in (reasons["two_flags"])
    )

    mc = got["mc"]
    assert mc.messages == [
        {
            "role": "user",
            "content": [
                {"type": "image"},
                {"type": "image"},
                {"type": "text", "text": "Which is closer?\nA. lamp\nB. desk"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "B"}]},
    ]
    assert prompt_turns(mc.messages) == mc.messages[:1]
    assert [np.asarray(im).tolist() for im in mc.images] == [
        np.asarray(_pic(1)).tolist(),
        np.asarray(_pic(2)).tolist(),
    ]
    assert mc.meta == {
        "task": "vstr_mc",
        # the release's first step (case-insensitive whole answer) as an exact spec
        "reward": [{"mode": "mcq", "ground_truth": "B"}, {"mode": "exact", "ground_truth": ["B"]}],
        "modes": ["multi_choices_score"],
        "question_type": "depth",
        "file": "part-0.parquet",
    }
    assert compute_reward("<think>near</think> B. desk", mc.meta["reward"])["overall"] == 1.0
    assert compute_reward("<think>near</think> b", mc.meta["reward"])["accuracy"] == 1.0

    multi = got["multi"]
    assert [c["type"] for c in multi.messages[0]["content"]] == ["text", "image", "text"]
    assert multi.meta["reward"] == [
        {"mode": "exact", "ground_truth": "2.5"},
        {"mode": "numeric", "ground_truth": "2.5", "tolerance": 0.05},
    ]
    assert compute_reward("<think>x</think> 2.6", multi.meta["reward"])["accuracy"] == 1.0  # 4%
    assert compute_reward("<think>x</think> 2.7", multi.meta["reward"])["accuracy"] == 0.0  # 8%

    box = got["box"]
    assert [c["type"] for c in box.messages[0]["content"]] == ["image", "text"]
    assert box.meta["det3d"] is True and "det3d" not in mc.meta
    assert box.meta["reward"] == {
        "mode": "det3d",
        "ground_truth": [
            {"bbox_3d": [0.0, 0.0, 3.0, 1.0, 1.0, 1.0, 90.0, 0.0, 0.0], "label": "sofa"}
        ],
    }
    assert compute_reward(f"<think>x</think>{BOXES}", box.meta["reward"])["accuracy"] == 1.0

    anon = got["part-1.parquet:0"]
    assert anon.meta["task"] == "vst_release_rl"  # no data_source column
    assert anon.meta["reward"][1] == {"mode": "exact", "ground_truth": ["The answer is B", "B"]}
    assert compute_reward("<think>x</think>the answer is b", anon.meta["reward"])["accuracy"] == 1


def test_mix_replaces_rows_that_fail_to_load(rl_dir):
    cfg = source_from_dict(
        {"kind": "vst_release_rl", "path": "rl", "name": "r"}, "c", rl_dir.parent
    )
    mixed, report = mix([cfg], seed=1)
    assert report.sources[0].available == 6
    ids = sorted(ex.id for ex in mixed)
    assert len(ids) == 6 and set(ids) <= {"box", "mc", "multi", "part-1.parquet:0"}
    assert {s.id for s in report.sources[0].skipped} >= {"bad_mode", "no_question"}


def test_config_refuses_a_system_prompt_and_reads_specs_from_meta_info(tmp_path):
    with pytest.raises(ValueError, match=r"^c: system: applies to kind vst / llava"):
        source_from_dict({"kind": "vst_release_rl", "path": "x", "system": "think"}, "c")
    spec = {"mode": "numeric", "ground_truth": 81, "unit": "cm"}
    rows = [
        _row("a", [], "How tall?", "81", ["relaxed_score"], reward=spec),
        _row("b", [], "How tall?", "81", ["relaxed_score"], reward={"mode": "numeric"}),
        _row("c", [], "Where?", "x", "vqa_score"),  # a bare mode name is accepted
        _row("d", [], "Where?", "x", []),
    ]
    pq.write_table(pa.Table.from_pylist(rows, schema=RL_SCHEMA), tmp_path / "s.parquet")
    src = open_source(DataSource(kind="vst_release_rl", path=tmp_path / "s.parquet"))
    got = {ex.id: ex for ex in src.examples()}
    assert got["a"].meta["reward"] == spec  # exact, no relaxed/exact-step rewrite
    assert compute_reward("<think>x</think> 0.73 m", spec)["accuracy"] == pytest.approx(
        0.9
    )  # MRA, cm
    assert got["c"].meta["modes"] == ["vqa_score"]
    reasons = {s.id: s.reason for s in src.skipped}
    assert "meta_info.reward: reward spec for mode 'numeric' has no ground_truth" in reasons["b"]
    assert "meta_info.mode is not a non-empty list" in reasons["d"]
