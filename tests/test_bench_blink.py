"""BLINK: reader on the per-subtask parquet layout, the official / lmms-eval / VLMEvalKit rules
on scripted replies, and the macro (official, lmms-eval) and micro (VLMEvalKit) means, all
computed by hand."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.blink import (
    BLINK,
    DISCLAIMER,
    SPATIAL_SUBTASKS,
    SUBTASKS,
    blink_official_answer,
)
from vst.testing.bench_fixtures_blink import blink_record, write_blink, write_blink_parquet

# item id -> (reply, (official, lmms_eval, vlmevalkit)); every other item is answered "(X)"
SCRIPT = {
    "val_Relative_Depth_1": ("B", (1.0, 1.0, 1.0)),
    # official: the one "(A)" token -> (A), wrong; lmms "A"; VLMEvalKit: "A" is not in the
    # last tokens, then the text "point a" is in the short reply -> A, wrong
    "val_Relative_Depth_2": ("(A) point A is closer", (0.0, 0.0, 0.0)),
    # official: no exact "(C)" token ("(C)." has a dot) -> the stand-in finds "answer is (C)";
    # lmms "T"; VLMEvalKit: "C" is the last token
    "val_Counting_1": ("The answer is (C).", (1.0, 0.0, 1.0)),
    # official: stand-in matches the option text; lmms "Y"; VLMEvalKit: text "yes" only
    "val_Spatial_Relation_1": ("yes", (1.0, 0.0, 1.0)),
    "val_Visual_Correspondence_1": ("", (0.0, 0.0, 0.0)),  # malformed
    "val_Multi-view_Reasoning_1": ("A", (1.0, 1.0, 1.0)),
    # official: two labels in the reply, one in the last paragraph -> (B); lmms "I";
    # VLMEvalKit: two letters, and the reply is too long for the text rule
    "val_IQ_Test_1": ("I think (A) or (B).\n\n(B)", (1.0, 0.0, 0.0)),
    "val_Jigsaw_1": ("B", (0.0, 0.0, 0.0)),  # wrong (GT A)
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_blink(tmp_path_factory.mktemp("blink") / "BLINK")


def test_read_layout_prompt_and_images(root: Path) -> None:
    items = list(BLINK().read(root))
    assert len(items) == 15
    assert [i.fields["sub_task"] for i in items][:3] == list(SUBTASKS[:3])
    assert items[8].id == "val_Relative_Depth_1" and items[9].id == "val_Relative_Depth_2"
    art = items[0]
    assert art.truth == "A" and art.fields["choices"] == ["image 2", "image 3"]
    content = art.request.messages[0]["content"]
    assert [c["type"] for c in content] == ["text", "image", "image", "image"]
    assert content[0]["text"] == DISCLAIMER + (
        "Which image shares the style of the reference?\nSelect from the following choices.\n"
        "(A) image 2\n(B) image 3"
    )
    assert len(art.request.images) == 3
    counting = items[1]
    assert counting.request.messages[0]["content"][0]["text"].startswith("How many blue")
    assert len(items[2].request.images) == 4  # Forensic_Detection: all four slots
    assert BLINK.sampling.greedy and BLINK.sampling.max_tokens == 1024
    assert [i.id for i in BLINK().read(root.parent)] == [i.id for i in items]  # data_root/BLINK


def test_lmms_prompt_style(root: Path) -> None:
    art = next(iter(BLINK(prompt_style="lmms_eval").read(root)))
    content = art.request.messages[0]["content"]
    assert [c["type"] for c in content] == ["image", "image", "image", "text"]
    assert content[-1]["text"] == (
        "Note: You only need to respond with A, B without providing any additional "
        "information.\nWhich image shares the style of the reference?\n"
        "Select from the following choices.\n(A) image 2\n(B) image 3"
    )


def _judge_all(bench: BLINK, root: Path) -> list:
    out = []
    for item in bench.read(root):
        reply, want = SCRIPT.get(item.id, (f"({item.truth})", (1.0, 1.0, 1.0)))
        j = bench.judge(item, reply)
        got = (j.scores["official"], j.scores["lmms_eval"], j.scores["vlmevalkit"])
        assert got == want, (item.id, reply)
        out.append(j)
    return out


def test_judge_and_aggregate_by_hand(root: Path) -> None:
    bench = BLINK()
    judged = _judge_all(bench, root)
    by_id = {j.id: j for j in judged}
    assert by_id["val_Counting_1"].parsed["official_via"] == "llm_standin"
    assert by_id["val_IQ_Test_1"].parsed["official"] == "(B)"
    assert by_id["val_IQ_Test_1"].parsed["official_via"] == "rules"
    score = bench.aggregate(judged)
    # official per subtask: Jigsaw 0, Visual_Correspondence 0, Relative_Depth 1/2, the other
    # 11 subtasks 1 -> 11.5 / 14 (the micro mean would be 12 / 15 = 0.8)
    assert score.official == pytest.approx(11.5 / 14)
    assert score.variants["official"] == pytest.approx(11.5 / 14)
    # lmms: 0 for Counting, IQ_Test, Jigsaw, Spatial_Relation, Visual_Correspondence;
    # Relative_Depth 1/2 -> 8.5 / 14
    assert score.variants["lmms_eval"] == pytest.approx(8.5 / 14)
    # VLMEvalKit micro: wrong on IQ_Test, Jigsaw, Relative_Depth_2, Visual_Corr. -> 11 / 15
    assert score.variants["vlmevalkit"] == pytest.approx(11 / 15)
    assert score.breakdown["sub_task"]["Relative_Depth"] == 0.5
    assert list(score.breakdown["sub_task"]) == list(SUBTASKS)
    assert score.breakdown["sub_task.lmms_eval"]["Counting"] == 0.0
    # spatial subset: Relative_Depth 0.5, Spatial_Relation 1, Multi-view 1, Visual_Corr. 0
    assert score.breakdown["subset"]["spatial"] == pytest.approx(2.5 / 4)
    assert score.items == 15
    assert set(SPATIAL_SUBTASKS) <= set(SUBTASKS)


def test_subset_of_subtasks_noted(root: Path) -> None:
    bench = BLINK(subtasks=["Relative_Depth", "Counting"])
    items = list(bench.read(root))
    assert [i.id for i in items] == [
        "val_Counting_1",
        "val_Relative_Depth_1",
        "val_Relative_Depth_2",
    ]
    score = bench.aggregate([bench.judge(i, "B") for i in items])
    # Counting (GT C) 0, Relative_Depth 1 -> macro 0.5; micro 2/3
    assert score.official == pytest.approx(0.5)
    assert score.variants["vlmevalkit"] == pytest.approx(2 / 3)
    assert "spatial" not in score.breakdown["subset"]
    assert any("2 of the 14" in n for n in score.notes)
    with pytest.raises(ValueError, match="Depth_Order"):
        BLINK(subtasks=["Depth_Order"])


def test_test_split_hidden_answers(tmp_path: Path) -> None:
    write_blink(tmp_path, split="test")
    bench = BLINK(split="test")
    items = list(bench.read(tmp_path))
    assert len(items) == 15 and all(i.truth is None for i in items)
    j = bench.judge(items[0], "A")
    assert j.scores == {"official": None, "lmms_eval": None, "vlmevalkit": None}
    score = bench.aggregate([j])
    assert score.official is None and score.variants["vlmevalkit"] is None


@pytest.mark.parametrize(
    ("reply", "n", "want"),
    [
        ("A", 2, ("(A)", "rules")),
        ("(C)", 4, ("(C)", "rules")),
        ("E", 2, ("(E)", "rules")),  # the bare-letter rule does not check the option count
        ("(B) point B", 2, ("(B)", "rules")),
        (" A", 2, ("(A)", "llm_standin")),  # not exactly "A": falls to the matcher
        ("(A) and (B)", 2, ("(Z)", "llm_standin")),
        ("(F)", 2, ("(Z)", "llm_standin")),
        (None, 2, ("(Z)", "rules")),
    ],
)
def test_official_normalisation(reply: object, n: int, want: tuple[str, str]) -> None:
    choices = ["point A", "point B", "point C", "point D"][:n]
    assert blink_official_answer(reply, choices) == want


def test_hostile_replies_never_raise(root: Path) -> None:
    bench = BLINK(subtasks=["Counting"])
    item = next(iter(bench.read(root)))
    for reply in (None, 3.5, "(" * 4000, "\n\n" * 500, "(A)" * 300, "\x00\u202e", "(Z)"):
        j = bench.judge(item, reply)  # type: ignore[arg-type]
        assert all(s in (0.0, 1.0) for s in j.scores.values())


# ------------------------------------------------------------------ bad files
def test_missing_subtask_names_file(tmp_path: Path) -> None:
    write_blink(tmp_path)
    (tmp_path / "Jigsaw" / "val-00000-of-00001.parquet").unlink()
    with pytest.raises(BenchmarkDataError, match=r"Jigsaw/val-00000-of-00001\.parquet: missing"):
        list(BLINK().read(tmp_path))


def test_garbage_parquet_names_file(tmp_path: Path) -> None:
    path = tmp_path / "Counting" / "val-00000-of-00001.parquet"
    path.parent.mkdir()
    path.write_bytes(b"PAR1 garbage")
    with pytest.raises(BenchmarkDataError, match=re.escape(str(path))):
        list(BLINK(subtasks=["Counting"]).read(tmp_path))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("answer", "(C)", r"row 1: bad answer '\(C\)' for 2 choices"),
        ("answer", "hidden", "row 1: bad answer"),  # hidden only in the test split
        ("idx", "", "row 1: 'idx'"),
        ("image_1", None, "row 1: no image"),
        ("image_1", {"bytes": b"garbage", "path": "x.png"}, "row 1 image_1: cannot decode"),
        ("choices", ["a"] * 6, "row 1: 'choices'"),
    ],
)
def test_bad_row_names_file_and_row(
    tmp_path: Path, field: str, value: object, pattern: str
) -> None:
    recs = [
        blink_record(n, "Relative_Depth", "Which is closer?", ["point A", "point B"], "B", 1)
        for n in (1, 2)
    ]
    recs[1][field] = value
    write_blink_parquet(tmp_path / "Relative_Depth" / "val-00000-of-00001.parquet", recs)
    with pytest.raises(BenchmarkDataError, match=r"val-00000-of-00001\.parquet " + pattern):
        list(BLINK(subtasks=["Relative_Depth"]).read(tmp_path))


def test_duplicate_idx_refused(tmp_path: Path) -> None:
    rec = blink_record(1, "Counting", "How many?", ["1", "2"], "A", 1)
    write_blink_parquet(tmp_path / "Counting" / "val-00000-of-00001.parquet", [rec, rec])
    with pytest.raises(BenchmarkDataError, match="duplicate idx val_Counting_1"):
        list(BLINK(subtasks=["Counting"]).read(tmp_path))


def test_describe_names_spatial_subset() -> None:
    d = BLINK().describe()
    assert d["name"] == "blink" and d["spatial_subset"] == list(SPATIAL_SUBTASKS)
