"""CV-Bench: reader on the real layouts, the Cambrian / lmms-eval / VLMEvalKit rules on scripted
replies, and the source-balanced aggregation, all computed by hand."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.cvbench import CAMBRIAN_SUFFIX, CVBench, cambrian_extract, lmms_pre_prompt
from vst.eval.benchmarks.harness_mcq import lmms_first_letter, vlmevalkit_can_infer
from vst.testing.bench_fixtures_cvbench import _records, write_cvbench, write_parquet

IDS = ["2D-0", "2D-1", "2D-2", "3D-0", "3D-1"]

# reply -> (official, lmms_eval, vlmevalkit) scores, worked out by hand in the comments
SCRIPT = {
    # GT C = "2": Cambrian's first char "2" equals the option text; lmms finds no letter;
    # VLMEvalKit: no letter token, "2" is a substring of the short reply -> C
    "2D-0": ("2", (1.0, 0.0, 1.0)),
    # GT A: Cambrian keeps " (a)." after "answer is" -> "a"; lmms takes "T"; VLMEvalKit: the
    # only letter token "A" is the last of 4 tokens
    "2D-1": ("The answer is (A).", (1.0, 0.0, 1.0)),
    "2D-2": ("A", (0.0, 0.0, 0.0)),  # wrong (GT B)
    "3D-0": ("B", (1.0, 1.0, 1.0)),  # right
    "3D-1": ("", (0.0, 0.0, 0.0)),  # malformed: empty
}


@pytest.fixture(scope="module")
def split_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cvbench(tmp_path_factory.mktemp("cvb") / "CV-Bench", "split")


def test_read_split_layout(split_root: Path) -> None:
    items = list(CVBench().read(split_root))
    assert [i.id for i in items] == IDS
    first = items[0]
    assert first.truth == "C"
    assert first.fields == {
        "type": "2D",
        "task": "Count",
        "source": "ADE20K",
        "choices": ["3", "0", "2", "1"],
    }
    msg = first.request.messages[0]
    assert msg["role"] == "user"
    assert [c["type"] for c in msg["content"]] == ["image", "text"]
    assert msg["content"][1]["text"] == (
        "How many chairs are in the image? Select from the following choices.\n"
        "(A) 3\n(B) 0\n(C) 2\n(D) 1\n"
        "Answer with the option's letter from the given choices directly."
    )
    assert first.request.images[0].size == (8, 6) and first.request.images[0].mode == "RGB"
    assert CVBench.sampling.greedy and CVBench.sampling.max_tokens == 512
    # the parent folder works as data root too (data_root/CV-Bench)
    assert [i.id for i in CVBench().read(split_root.parent)] == IDS


@pytest.mark.parametrize("layout", ["single", "jsonl"])
def test_read_other_layouts_same_items(tmp_path: Path, split_root: Path, layout: str) -> None:
    root = write_cvbench(tmp_path, layout)
    got = list(CVBench().read(root))
    ref = list(CVBench().read(split_root))
    assert [i.id for i in got] == IDS
    for a, b in zip(got, ref, strict=True):
        assert a.request.fingerprint() == b.request.fingerprint()
        assert (a.truth, dict(a.fields)) == (b.truth, dict(b.fields))


def test_lmms_prompt_style(split_root: Path) -> None:
    item = next(iter(CVBench(prompt_style="lmms_eval").read(split_root)))
    assert item.request.messages[0]["content"][1]["text"] == (
        "Note: You only need to respond with A, B, C, D without providing any additional "
        "information.\n\nHow many chairs are in the image? Select from the following choices.\n"
        "(A) 3\n(B) 0\n(C) 2\n(D) 1"
    )
    with pytest.raises(ValueError):
        CVBench(prompt_style="vlm")


def test_judge_and_aggregate_by_hand(split_root: Path) -> None:
    bench = CVBench()
    items = {i.id: i for i in bench.read(split_root)}
    judged = []
    for item_id, (reply, want) in SCRIPT.items():
        j = bench.judge(items[item_id], reply)
        assert (j.scores["official"], j.scores["lmms_eval"], j.scores["vlmevalkit"]) == want, reply
        judged.append(j)
    # re-judging a judged item (vst eval score) gives the same scores
    assert bench.judge(judged[1], SCRIPT["2D-1"][0]).scores == judged[1].scores
    score = bench.aggregate(judged)
    # official: ADE20K 2/2, COCO 0/1 -> 2D 0.5; Omni3D 1/2 -> 3D 0.5; (0.5 + 0.5) / 2
    assert score.official == pytest.approx(0.5)
    assert score.variants["official"] == pytest.approx(0.5)
    assert score.variants["lmms_eval"] == pytest.approx(1 / 5)  # micro: only 3D-0
    assert score.variants["vlmevalkit_2d"] == pytest.approx((1.0 + 0.0) / 2)
    assert score.variants["vlmevalkit_3d"] == pytest.approx(1 / 2)
    assert score.variants["vlmevalkit"] == pytest.approx(0.5)
    assert score.breakdown["type"] == {"2D": 0.5, "3D": 0.5}
    assert score.breakdown["source"] == {"ADE20K": 1.0, "COCO": 0.0, "Omni3D": 0.5}
    assert score.breakdown["task"] == {"Count": 0.5, "Relation": 1.0, "Depth": 1.0, "Distance": 0.0}
    assert score.breakdown["task.lmms_eval"]["Depth"] == 1.0
    assert score.items == 5


def test_official_is_source_balanced_not_micro(split_root: Path) -> None:
    bench = CVBench()
    items = list(bench.read(split_root))
    # everything right except the COCO question: micro 4/5, official ((1 + 0)/2 + 1)/2 = 0.75
    judged = [bench.judge(i, "Z" if i.id == "2D-2" else f"({i.truth})") for i in items]
    score = bench.aggregate(judged)
    assert score.official == pytest.approx(0.75)
    assert score.variants["lmms_eval"] == pytest.approx(0.8)


def test_aggregate_missing_source_gives_none(split_root: Path) -> None:
    bench = CVBench()
    judged = [bench.judge(i, "B") for i in bench.read(split_root) if i.fields["type"] == "3D"]
    score = bench.aggregate(judged)
    assert score.official is None and score.variants["vlmevalkit"] is None
    assert score.variants["vlmevalkit_3d"] == pytest.approx(0.5)
    assert any("missing" in n for n in score.notes)
    empty = bench.aggregate([])
    assert empty.official is None and empty.variants["lmms_eval"] is None


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("(B)", "b"),
        ("B) below", "b"),
        ("  answer: (c), because", "c"),
        ("The answer is: C", ":"),  # Cambrian quirk: "answer is" is split first, ':' remains
        ("I think the answer is b.", "b"),
        ("", ""),
        (None, ""),
    ],
)
def test_cambrian_extract(reply: object, want: str) -> None:
    assert cambrian_extract(reply) == want


@pytest.mark.parametrize(
    ("reply", "want"),
    [("(b) below", "B"), ("  c.", "C"), ("The answer is B", "T"), ("42", ""), ("", ""), (3, "")],
)
def test_lmms_first_letter(reply: object, want: str) -> None:
    assert lmms_first_letter(reply) == want


@pytest.mark.parametrize(
    ("reply", "want"),
    [
        ("The answer is **B**", "B"),
        ("B", "B"),
        ("B. below", "B"),
        ("I choose B here because of this long reasoning", None),  # B not in the last tokens
        ("Cannot determine the answer", "Z"),
        ("below", "B"),  # option text in a short reply
        ("below" + " " * 40, "B"),  # the reply is stripped before the length check
        ("above or below", None),  # two option texts
        ("A and B", None),  # two letters
        (None, None),
    ],
)
def test_vlmevalkit_can_infer(reply: object, want: str | None) -> None:
    assert vlmevalkit_can_infer(reply, {"A": "above", "B": "below"}) == want


def test_hostile_replies_never_raise(split_root: Path) -> None:
    bench = CVBench()
    item = next(iter(bench.read(split_root)))
    for reply in (None, 7, "\x00" * 10, "(" * 5000, "answer is" * 1000, "ÄÖ\u202e", "Z"):
        j = bench.judge(item, reply)  # type: ignore[arg-type]
        assert set(j.scores) == {"official", "lmms_eval", "vlmevalkit"}
        assert all(s in (0.0, 1.0) for s in j.scores.values())


# ------------------------------------------------------------------ bad files
def test_no_files_names_root(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match=re.escape(str(tmp_path))):
        list(CVBench().read(tmp_path))


def test_half_of_split_layout_names_missing_file(tmp_path: Path) -> None:
    write_cvbench(tmp_path, "split")
    (tmp_path / "test_3d.parquet").unlink()
    with pytest.raises(BenchmarkDataError, match=r"test_3d\.parquet"):
        list(CVBench().read(tmp_path))


def test_garbage_parquet_names_file(tmp_path: Path) -> None:
    (tmp_path / "test.parquet").write_bytes(b"not a parquet file at all")
    with pytest.raises(BenchmarkDataError, match=r"test\.parquet"):
        list(CVBench().read(tmp_path))


def test_missing_column_names_file(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    recs = [{k: v for k, v in r.items() if k != "prompt"} for r in _records()]
    pq.write_table(pa.Table.from_pylist(recs), tmp_path / "test.parquet")
    with pytest.raises(BenchmarkDataError, match=r"test.parquet.*prompt"):
        list(CVBench().read(tmp_path))


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("answer", "(Q)", "row 1: bad answer"),
        ("answer", "B", "row 1: bad answer"),
        ("choices", [], "row 1: 'choices'"),
        ("type", "4D", "row 1: type"),
        ("image", {"bytes": b"\x89PNG broken", "path": "x.png"}, "row 1: cannot decode"),
        ("image", {"bytes": None, "path": None}, "row 1: no image"),
    ],
)
def test_bad_row_names_file_and_row(
    tmp_path: Path, field: str, value: object, pattern: str
) -> None:
    recs = _records()
    recs[1][field] = value
    write_parquet(tmp_path / "test.parquet", recs)
    with pytest.raises(BenchmarkDataError, match=f"test.parquet {pattern}"):
        list(CVBench().read(tmp_path))


def test_jsonl_image_outside_root_refused(tmp_path: Path) -> None:
    root = write_cvbench(tmp_path / "cvb", "jsonl")
    lines = (root / "test.jsonl").read_text().splitlines()
    row = json.loads(lines[0])
    row["filename"] = "../outside.png"
    (tmp_path / "outside.png").write_bytes(b"")
    lines[0] = json.dumps(row)
    (root / "test.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(BenchmarkDataError, match=r"test\.jsonl row 0"):
        list(CVBench().read(root))


def test_jsonl_bad_line_names_line(tmp_path: Path) -> None:
    root = write_cvbench(tmp_path, "jsonl")
    with open(root / "test.jsonl", "a") as fh:
        fh.write("{not json\n")
    with pytest.raises(BenchmarkDataError, match=r"test.jsonl:6: bad JSON"):
        list(CVBench().read(root))


def test_describe_states_protocol() -> None:
    d = CVBench().describe()
    assert d["name"] == "cvbench" and CAMBRIAN_SUFFIX in d["prompt"]
    assert "vlmevalkit_2d" in d["variants"]


def test_lmms_pre_prompt_caps_at_five_letters() -> None:
    # lmms-eval labels only A-E, so a six-option Count question still lists five
    assert lmms_pre_prompt(6) == (
        "Note: You only need to respond with A, B, C, D, E without providing any additional "
        "information.\n"
    )
