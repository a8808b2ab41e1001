"""The rule-checkable RL set: balance caps, SFT dedup, general data rows, exports read back."""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from vst.engine.config import ConfigError
from vst.engine.export_release import export_release
from vst.engine.sample import canonical_json
from vst.engine.writer import ShardWriter, iter_rows, list_shards
from vst.models.prompts import THINK_SYSTEM_PROMPT
from vst.reasoning.rlset import RLSetConfig, build_rl_set, load_rl_set_config
from vst.rewards import load_reward_spec
from vst.train.sources import ReleaseRLParquet, VstShards


def _mode(row):
    return load_reward_spec(row["reward"])["mode"]


def _usable(run: Path) -> list[dict]:
    """VST-P rows an RL sample can be: not caption, no video, one user turn and no earlier
    assistant turn (recomputed here from the rows, independently of the builder)."""
    out = []
    for shard in list_shards(run):
        for row in iter_rows(shard):
            roles = [m["role"] for m in row["messages"]]
            one_question = roles == ["user", "assistant"]
            if _mode(row) != "caption" and not row["videos"] and one_question:
                out.append(row)
    return out


def _png(path: Path, value: int) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (24, 16), (value, 40, 200 - value)).save(path, format="PNG")
    return path.read_bytes()


def _jsonl(path: Path, records: list) -> Path:
    lines = [r if isinstance(r, str) else json.dumps(r) for r in records]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path


def _out_rows(out: Path) -> list[dict]:
    return [r for s in list_shards(out / "data") for r in iter_rows(s)]


@pytest.fixture
def math_file(tmp_path) -> Path:
    return _jsonl(
        tmp_path / "general" / "math.jsonl",
        [
            {"question": f"What is {a} + {a}?", "answer": str(2 * a), "mode": "math"}
            for a in range(5)
        ],
    )


def test_caps_per_task_and_mode_hold_exactly(all_tasks_run, math_file, tmp_path):
    usable = _usable(all_tasks_run)
    available = Counter((r["task"], _mode(r)) for r in usable)
    caps = {"mi_correspondence": 5, "si_depth_order:order": 2, "si_distance": 0, "math": 3}

    def cap(task, mode):
        return caps.get(f"{task}:{mode}", caps.get(task, 3))

    config = RLSetConfig(
        output=tmp_path / "a",
        vst=[all_tasks_run],
        general=[{"path": math_file, "task": "math"}],
        per_task_mode=3,
        caps=caps,
        seed=1,
    )
    report = build_rl_set(config)
    available[("math", "math")] = 5
    rows = _out_rows(tmp_path / "a")
    got = Counter((r["task"], _mode(r)) for r in rows)
    expected = {g: min(n, cap(*g)) for g, n in available.items() if min(n, cap(*g))}
    assert dict(got) == expected
    for group, n in available.items():
        stats = report.groups[group]
        assert (stats.available, stats.selected) == (n, min(n, cap(*group)))
    assert report.selected == len(rows) == sum(expected.values())
    # VST-P rows are copied unchanged
    by_id = {r["id"]: r for r in usable}
    for row in rows:
        if row["task"] != "math":
            assert row == by_id[row["id"]]
    # multi-turn, caption and video rows are reported with their reasons
    assert report.groups[("mi_scene_caption", "caption")].skipped == {
        "caption mode (not rule-checkable)": 24
    }
    assert sum(report.groups[("video_count", "mcq")].skipped.values()) == 12
    md = (tmp_path / "a" / "report.md").read_text()
    assert "| mi_correspondence | mcq | 24 | 0 | 0 | 5 |" in md
    assert json.loads((tmp_path / "a" / "report.json").read_text())["totals"]["selected"] == len(
        rows
    )

    # seeded: the same seed picks the same rows, another seed other rows
    same = build_rl_set(config.model_copy(update={"output": tmp_path / "b"}))
    assert sorted(r["id"] for r in _out_rows(tmp_path / "b")) == sorted(r["id"] for r in rows)
    assert same.selected == report.selected
    build_rl_set(config.model_copy(update={"output": tmp_path / "c", "seed": 2}))
    assert sorted(r["id"] for r in _out_rows(tmp_path / "c")) != sorted(r["id"] for r in rows)


def test_dedup_against_sft_drops_exactly_those(all_tasks_run, tmp_path):
    usable = sorted(_usable(all_tasks_run), key=lambda r: r["id"])
    in_vst_sft = usable[::9]  # some of every kind
    in_release_sft = usable[4:7]
    cot_parent = usable[8]  # a CoT sample whose question the teacher rewrote
    assert len({r["id"] for r in in_vst_sft + in_release_sft + [cot_parent]}) == len(in_vst_sft) + 4

    cot = dict(cot_parent)
    cot["id"] = "c" * 16
    cot["messages"] = [
        {
            "role": "user",
            "content": [
                *cot_parent["messages"][0]["content"][:-1],
                {"type": "text", "text": "A rewritten question?"},
            ],
        },
        {"role": "assistant", "content": [{"type": "text", "text": "<think>x</think> A"}]},
    ]
    cot["meta"] = canonical_json({"cot": {"parent_id": cot_parent["id"], "source": "teacher"}})
    with ShardWriter(tmp_path / "sft" / "data" / "shard-00000-aaaaaaaaaaaa.parquet") as w:
        for row in [*in_vst_sft, cot]:
            w.write(row)
        w.close()
    with ShardWriter(tmp_path / "tmp" / "shard-00000-bbbbbbbbbbbb.parquet") as w:
        for row in in_release_sft:
            w.write(row)
        w.close()
    export_release(list_shards(tmp_path / "tmp"), tmp_path / "release_sft")

    gen = tmp_path / "general"
    _png(gen / "img" / "a.png", 10)
    twice = {"question": "Read the sign.", "answer": "EXIT", "mode": "ocr", "images": ["img/a.png"]}
    general = _jsonl(gen / "ocr.jsonl", [twice, {**twice, "id": "other"}])

    report = build_rl_set(
        RLSetConfig(
            output=tmp_path / "out",
            vst=[all_tasks_run],
            general=[{"path": general, "task": "ocr"}],
            sft=[tmp_path / "sft", tmp_path / "release_sft"],
            per_task_mode=None,
        )
    )
    dropped = {r["id"] for r in [*in_vst_sft, *in_release_sft, cot_parent]}
    kept = {r["id"] for r in _out_rows(tmp_path / "out") if r["task"] != "ocr"}
    assert kept == {r["id"] for r in usable} - dropped
    assert report.totals()["sft_duplicates"] == len(dropped)
    per_group = Counter((r["task"], _mode(r)) for r in [*in_vst_sft, *in_release_sft, cot_parent])
    for group, n in per_group.items():
        assert report.groups[group].sft_duplicates == n
    assert report.sft_rows == len(in_vst_sft) + 1 + len(in_release_sft)
    assert report.sft_bad == []
    # duplicates within the set: the second identical general row
    assert report.groups[("ocr", "ocr")].self_duplicates == 1
    assert report.groups[("ocr", "ocr")].selected == 1


def test_general_rows_and_bad_rows_with_file_and_line(tmp_path):
    gen = tmp_path / "general"
    seven = _png(gen / "img" / "seven.png", 70)
    _png(tmp_path / "outside.png", 5)
    (gen / "img" / "notes.txt").write_text("not a picture")
    path = _jsonl(
        gen / "mixed.jsonl",
        [
            {
                "question": "<image> What number is shown?",
                "answer": "7",
                "mode": "ocr",
                "images": ["img/seven.png"],
            },
            {"question": "Compute 12*3.", "answer": 36, "mode": "math"},
            '{"question": ',
            "",
            {"question": "No answer here"},
            {"question": "Q", "answer": "A", "mode": "poetry"},
            {"question": "Q", "answer": "A", "mode": "exact", "images": ["../outside.png"]},
            {
                "question": "<image> <image> two?",
                "answer": "A",
                "mode": "exact",
                "images": ["img/seven.png"],
            },
            {"question": "Q", "answer": "A", "mode": "exact", "images": ["img/notes.txt"]},
            {
                "question": "Which one? A. cat B. dog",
                "answer": "B",
                "mode": "multi_choices_score",
                "images": ["img/seven.png"],
            },
            {"question": "Describe.", "answer": "A room.", "mode": "caption"},
            ["not", "an", "object"],
            '{"question": "Q", "answer": NaN, "mode": "numeric"}',
            {"question": "Q", "answer": "A", "mode": "mcq", "options": {"A": ["x"], "B": 3}},
        ],
    )
    table = pa.table(
        {
            "question": ["<image>Read it.", "Empty answer"],
            "answer": ["7", None],
            "mode": ["anls_score", "ocr"],
            "images": [[{"bytes": seven, "path": "x.png"}], []],
        }
    )
    pq_path = gen / "ocr.parquet"
    pq.write_table(table, pq_path)
    report = build_rl_set(
        RLSetConfig(
            output=tmp_path / "out",
            general=[{"path": path, "task": "mix"}, {"path": pq_path}],
            export_verl=False,
        )
    )
    bad = report.bad_rows
    assert [b.split(": ")[0] for b in bad] == [
        f"{path}:{n}" for n in (3, 5, 6, 7, 8, 9, 11, 12, 13, 14)
    ] + [f"{pq_path}:2"]
    words = [
        "not valid JSON",
        "answer is missing",
        "unknown mode 'poetry'",
        "outside",
        "2 <image> marker(s) for 1 image(s)",
        "cannot decode image",
        "unknown mode 'caption'",
        "not a JSON object",
        "not a finite number",
        "options must be",
        "answer is missing",
    ]
    for line, word in zip(bad, words, strict=True):
        assert word in line, (line, word)

    rows = {(r["task"], r["answer"]): r for r in _out_rows(tmp_path / "out")}
    assert set(rows) == {("mix", "7"), ("mix", "36"), ("mix", "B"), ("general", "7")}
    ocr = rows[("mix", "7")]
    assert ocr["messages"][0]["content"] == [
        {"type": "image", "text": None},
        {"type": "text", "text": "What number is shown?"},
    ]
    assert ocr["images"][0]["bytes"] == seven
    assert json.loads(ocr["reward"]) == {"mode": "ocr", "ground_truth": "7"}
    assert json.loads(ocr["meta"])["line"] == 1
    assert json.loads(rows[("mix", "36")]["reward"]) == {"mode": "math", "ground_truth": 36}
    assert rows[("mix", "36")]["images"] == []
    mcq = rows[("mix", "B")]
    assert json.loads(mcq["reward"]) == {"mode": "mcq", "ground_truth": "B"}
    assert [c["type"] for c in mcq["messages"][0]["content"]] == ["image", "text"]
    assert json.loads(rows[("general", "7")]["reward"])["mode"] == "ocr"
    assert report.groups[("mix", "ocr")].selected == 1


def test_exports_read_back(all_tasks_run, math_file, tmp_path):
    out = tmp_path / "out"
    report = build_rl_set(
        RLSetConfig(output=out, vst=[all_tasks_run], general=[{"path": math_file}], per_task_mode=4)
    )
    rows = {r["id"]: r for r in _out_rows(out)}
    assert len(rows) == report.selected > 40

    table = pq.read_table(out / "trl" / "train.parquet")
    assert table.column_names == ["id", "task", "prompt", "images", "reward"]
    trl = table.to_pylist()
    assert report.trl_rows == len(trl) == len(rows)
    for t in trl:
        row = rows[t["id"]]
        assert t["task"] == row["task"] and t["reward"] == row["reward"]
        assert [im["bytes"] for im in t["images"]] == [im["bytes"] for im in row["images"]]
        user = row["messages"][0]
        if _mode(row) == "det3d":
            assert t["prompt"] == [user]
        else:
            system = {"role": "system", "content": [{"type": "text", "text": THINK_SYSTEM_PROMPT}]}
            assert t["prompt"] == [system, user]

    import datasets

    ds = datasets.load_dataset(
        "parquet",
        data_files=str(out / "trl" / "train.parquet"),
        split="train",
        cache_dir=str(tmp_path / "hf"),
    )
    assert len(ds) == len(rows)
    first = next(r for r in ds if r["images"])
    assert isinstance(first["images"][0], Image.Image)
    assert (
        first["images"][0].size
        == Image.open(io.BytesIO(rows[first["id"]]["images"][0]["bytes"])).size
    )

    release = ReleaseRLParquet("rl", out / "verl")
    assert report.verl_rows == len(release) == len(rows) and release.skipped == []
    for i in range(len(release)):
        ex = release.load(i)
        row = rows[ex.id]
        assert ex.meta["reward"] == load_reward_spec(row["reward"])
        assert ex.meta["task"] == row["task"]
        assert len(ex.images) == len(row["images"])

    shards = VstShards("vst", out, rl=True)
    assert len(shards) == len(rows) and shards.skipped == []
    assert {shards.load(i).meta["reward"]["mode"] for i in range(len(shards))} >= {
        "mcq",
        "exact",
        "numeric",
        "order",
        "det3d",
        "math",
    }
    digest = hashlib.sha256((out / "trl" / "train.parquet").read_bytes()).hexdigest()
    build_rl_set(
        RLSetConfig(output=out, vst=[all_tasks_run], general=[{"path": math_file}], per_task_mode=4)
    )
    assert hashlib.sha256((out / "trl" / "train.parquet").read_bytes()).hexdigest() == digest
    assert len(list_shards(out / "data")) == len(report.shards)


def test_config_yaml(tmp_path, all_tasks_run):
    good = tmp_path / "rl.yaml"
    good.write_text(f"output: {tmp_path / 'o'}\nvst: [{all_tasks_run}]\ncaps: {{mi_det3d: 2}}\n")
    config = load_rl_set_config(good)
    assert config.cap("mi_det3d", "det3d") == 2 and config.cap("x", "mcq") == 1000
    bad = tmp_path / "bad.yaml"
    bad.write_text("output: o\nper_task_mod: 3\n")
    with pytest.raises(ConfigError, match="per_task_mod"):
        load_rl_set_config(bad)
    bad.write_text("output: o\nper_task_mode: 2.5\n")
    with pytest.raises(ConfigError, match="per_task_mode"):
        load_rl_set_config(bad)
    with pytest.raises(ValueError, match="no vst shards"):
        build_rl_set(RLSetConfig(output=tmp_path / "o", vst=[tmp_path]))


def test_broken_inputs_are_reported_not_raised(all_tasks_run, tmp_path):
    import shutil

    run = tmp_path / "run" / "data"
    run.mkdir(parents=True)
    first = list_shards(all_tasks_run)[0]
    shutil.copy(first, run / first.name)
    (run / "shard-00099-abcdefabcdef.parquet").write_bytes(b"PAR1 not really")
    report = build_rl_set(RLSetConfig(output=tmp_path / "out", vst=[tmp_path / "run"]))
    assert (
        len(report.bad_rows) == 1
        and "shard-00099-abcdefabcdef.parquet: cannot read" in (report.bad_rows[0])
    )
    usable = [r for r in iter_rows(first) if r in _usable(all_tasks_run)]
    assert report.selected == len(usable) > 0
    with pytest.raises(ValueError, match="is also the input"):
        build_rl_set(RLSetConfig(output=tmp_path / "run", vst=[tmp_path / "run"]))
    assert len(list_shards(tmp_path / "run")) == 2  # untouched
