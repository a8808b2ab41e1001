"""`vst generate` and `vst data info|verify|export` on a small run of the tiny test task."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from PIL import Image
from typer.testing import CliRunner

from test_engine_runner import TINY
from vst.engine.cli import data_app, generate_app
from vst.engine.writer import list_shards

# the two lines the `vst` app registers these commands with
app = typer.Typer()
app.add_typer(generate_app)
app.add_typer(data_app, name="data")

runner = CliRunner()


@pytest.fixture(scope="module")
def generated(tiny_task, engine_scene_dirs, tmp_path_factory) -> tuple[Path, Path]:
    """A run folder made by `vst generate` (with overrides), and its scenes folder."""
    tmp = tmp_path_factory.mktemp("cli_run")
    scenes = engine_scene_dirs[0].parent
    cfg = tmp / "run.yaml"
    cfg.write_text(
        f"output: {tmp / 'ignored'}\nseed: 1\n"
        f"sources: [{{kind: scenes, path: {scenes}}}]\n"
        f"tasks: [{{name: {TINY}, per_scene: 3}}]\nscenes_per_shard: 2\n"
    )
    out = tmp / "run"
    result = runner.invoke(
        app,
        ["generate", str(cfg), "--out", str(out), "--seed", "2", "--workers", "1", "--quiet"],
    )
    assert result.exit_code == 0, result.output
    assert TINY in result.output and "2 written" in result.output
    assert not (tmp / "ignored").exists()
    return out, scenes


def test_generate_rejects_bad_configs(tiny_task, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("output: out\nsources: [{kind: scenes, path: x}]\ntasks: [{name: nope}]\n")
    result = runner.invoke(app, ["generate", str(cfg)])
    assert result.exit_code == 2
    assert "bad.yaml" in result.output and "unknown task 'nope'" in result.output
    result = runner.invoke(app, ["generate", str(tmp_path / "none.yaml")])
    assert result.exit_code == 2 and "does not exist" in result.output
    cfg.write_text(
        f"output: {tmp_path / 'o'}\nsources: [{{kind: scenes, path: {tmp_path / 'nowhere'}}}]\n"
        f"tasks: [{{name: {TINY}, per_scene: 1}}]\n"
    )
    result = runner.invoke(app, ["generate", str(cfg), "--quiet"])
    assert result.exit_code == 2 and "bad.yaml: sources.0.path" in result.output
    assert "nowhere" in result.output and "does not exist" in result.output
    cfg.write_text(cfg.read_text().replace(str(tmp_path / "nowhere"), str(tmp_path)))
    result = runner.invoke(app, ["generate", str(cfg), "--tasks", "nope", "--quiet"])
    assert result.exit_code == 2 and "unknown task 'nope'" in result.output


def test_generate_strict_fails_on_invalid_scene(tiny_task, tmp_path, engine_scene_dirs):
    src = tmp_path / "scenes"
    shutil.copytree(engine_scene_dirs[0], src / engine_scene_dirs[0].name)
    (src / engine_scene_dirs[0].name / "masks").rename(src / "gone")
    cfg = tmp_path / "run.yaml"
    cfg.write_text(
        f"output: {tmp_path / 'out'}\nsources: [{{kind: scenes, path: {src}}}]\n"
        f"tasks: [{{name: {TINY}, per_scene: 1}}]\n"
    )
    lenient = runner.invoke(app, ["generate", str(cfg), "--quiet"])
    assert lenient.exit_code == 0, lenient.output
    assert "skipped scene" in lenient.output and "does not exist" in lenient.output
    strict = runner.invoke(app, ["generate", str(cfg), "--strict", "--quiet"])
    assert strict.exit_code == 1 and "invalid scene" in strict.output


def test_data_info(generated):
    out, _ = generated
    result = runner.invoke(app, ["data", "info", str(out)])
    assert result.exit_code == 0, result.output
    assert "9 samples in 2 shard(s)" in result.output
    assert TINY in result.output and "single_image" in result.output
    assert "Which is closer to the camera?" in result.output  # the example
    missing = runner.invoke(app, ["data", "info", str(out / "nope")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    empty = runner.invoke(app, ["data", "info", str(out.parent)])
    assert empty.exit_code == 2 and "no shards" in empty.output


def test_data_verify_finds_no_mismatch_then_planted_ones(generated, tmp_path):
    out, scenes = generated
    ok = runner.invoke(app, ["data", "verify", str(out), "--scenes", str(scenes)])
    assert ok.exit_code == 0, ok.output
    assert "checked 9 samples: 0 mismatch(es), 0 could not be verified" in ok.output

    # plant a mismatch: flip the stored answer of one sample in a copy of the shards
    bad = tmp_path / "bad"
    shutil.copytree(out / "data", bad)
    shard = list_shards(bad)[1]
    table = pq.read_table(shard)
    answers = table.column("answer").to_pylist()
    ids = table.column("id").to_pylist()
    answers[0] = {"A": "B", "B": "A"}[answers[0]]
    table = table.set_column(
        table.schema.get_field_index("answer"), "answer", pa.array(answers, pa.string())
    )
    pq.write_table(table, shard)
    result = runner.invoke(app, ["data", "verify", str(bad), "--scenes", str(scenes)])
    assert result.exit_code == 1
    assert "1 mismatch(es)" in result.output and ids[0][:8] in result.output
    assert TINY[:8] in result.output

    # a scenes folder without the scenes: every sample is reported as not verifiable
    empty = tmp_path / "other_scenes"
    shutil.copytree(scenes / sorted(p.name for p in scenes.iterdir())[0], empty / "only_one")
    result = runner.invoke(app, ["data", "verify", str(out), "--scenes", str(empty)])
    assert result.exit_code == 1 and "could not be verified" in result.output
    assert "is not under the scenes folder" in result.output


def test_data_export_llava(generated, tmp_path):
    out, _ = generated
    dest = tmp_path / "llava"
    result = runner.invoke(
        app, ["data", "export", str(out), "--format", "llava", "--out", str(dest)]
    )
    assert result.exit_code == 0, result.output
    records = json.loads((dest / "data.json").read_text())
    assert len(records) == 9 and len({r["id"] for r in records}) == 9
    rows = [r for p in list_shards(out) for r in pq.read_table(p).to_pylist()]
    by_id = {r["id"]: r for r in rows}
    for rec in records:
        images = rec["image"] if isinstance(rec["image"], list) else [rec["image"]]
        human = [c["value"] for c in rec["conversations"] if c["from"] == "human"]
        gpt = [c["value"] for c in rec["conversations"] if c["from"] == "gpt"]
        assert sum(v.count("<image>") for v in human) == len(images) == 1
        assert human[0].startswith("<image>\n") and "closer to the camera" in human[0]
        assert gpt[-1] == by_id[rec["id"]]["answer"]
        with Image.open(dest / images[0]) as im:
            assert im.size == (308, 252)
        assert (dest / images[0]).read_bytes() == by_id[rec["id"]]["images"][0]["bytes"]
    bad = runner.invoke(app, ["data", "export", str(out), "--format", "sharegpt", "--out", "x"])
    assert bad.exit_code == 2 and "unknown format 'sharegpt'" in bad.output


def test_llava_record_places_one_token_per_image():
    from vst.engine.cli import llava_record

    row = {
        "id": "abc",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "text": None},
                    {"type": "image", "text": None},
                    {"type": "text", "text": "Where did the camera move?"},
                ],
            },
            {"role": "assistant", "content": [{"type": "text", "text": "Left."}]},
            {"role": "user", "content": [{"type": "text", "text": "And then?"}]},
            {"role": "assistant", "content": [{"type": "text", "text": "Forward."}]},
        ],
    }
    rec = llava_record(row, ["images/ab/abc_0.jpg", "images/ab/abc_1.jpg"])
    assert rec["image"] == ["images/ab/abc_0.jpg", "images/ab/abc_1.jpg"]
    assert [c["from"] for c in rec["conversations"]] == ["human", "gpt", "human", "gpt"]
    assert rec["conversations"][0]["value"] == "<image>\n<image>\nWhere did the camera move?"
    assert rec["conversations"][2]["value"] == "And then?"
    assert "image" not in llava_record({"id": "x", "messages": row["messages"][2:]}, [])


def test_data_export_to_a_file_is_one_line(generated, tmp_path):
    out, _ = generated
    (tmp_path / "afile").write_text("x")
    result = runner.invoke(
        app, ["data", "export", str(out), "--out", str(tmp_path / "afile" / "llava")]
    )
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.strip() == f"error: {tmp_path / 'afile' / 'llava'}: Not a directory"
