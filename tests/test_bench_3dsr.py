"""3DSRBench: reader (TSV base64 + parquet), prompt, VLMEvalKit / lmms-eval extraction,
official CircularEval with flips as separate groups, and the variants (scores by hand)."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.threedsr import (
    ThreeDSRBench,
    circular_key,
    flip_circular_key,
    flip_key,
    lmms_eval_choice,
    qwen_mcq_prompt,
)
from vst.eval.benchmarks.vlmevalkit_rules import vlmevalkit_choice
from vst.testing.bench_fixtures_3dsr import ROWS, write_3dsr_parquet, write_3dsr_tsv

# qid -> scripted reply; official (VLMEvalKit) and lmms-eval hits worked out by hand
REPLIES = {
    "h0000001": ("A", 1, 1),
    "h0000001-1": ("B", 1, 1),
    "h0000001-flip": ("The answer is B.", 1, 1),  # verbose, right
    "h0000001-flip-1": ("B", 0, 0),  # wrong (truth A)
    "l0000002": ("C", 1, 1),
    "l0000002-1": ("<<garbage>>", 0, 0),  # malformed
    # A and B both tokens -> no 'answer is', too long for text: official Z; lmms 'Answer: B'
    "o0000003": ("Answer: B, because A is wrong", 0, 1),
    # option text: official (text match 'yes' = A); lmms-eval has no letter
    "o0000003-1": ("yes", 1, 0),
    "m0000004": ("(A)", 1, 1),
    "m0000004-1": ("B.", 1, 1),
}


def _items(tmp_path: Path):
    write_3dsr_tsv(tmp_path)
    return list(ThreeDSRBench().read(tmp_path))


def test_read_tsv_items_prompt_and_fields(tmp_path: Path) -> None:
    items = _items(tmp_path)
    assert [i.fields["qid"] for i in items] == [r[0] for r in ROWS]
    assert [i.id for i in items] == [str(k) for k in range(len(ROWS))]
    first = items[0]
    assert first.truth == "A"
    assert first.fields["options"] == {"A": "yes", "B": "no"}
    assert first.fields["type"] == "height" and first.fields["group"] == "h0000001"
    assert items[2].fields["group"] == "h0000001-flip"
    assert items[4].fields["options"]["D"] == "NA"  # a literal NA option stays text
    content = first.request.messages[0]["content"]
    assert content[0] == {"type": "image"}
    assert content[1]["text"] == (
        "Question: Is the lamp higher than the cup?\nOptions:\nA. yes\nB. no\n"
        "Please select the correct answer from the options above."
    )
    assert first.request.images[0].size == (8, 6)
    assert first.request.images[0].mode == "RGB"


def test_read_parquet_variant_matches_tsv(tmp_path: Path) -> None:
    tsv = _items(tmp_path / "a")
    write_3dsr_parquet(tmp_path / "b")
    pq = list(ThreeDSRBench().read(tmp_path / "b"))
    assert [(i.id, i.truth, dict(i.fields)) for i in pq] == [
        (i.id, i.truth, dict(i.fields)) for i in tsv
    ]
    assert pq[0].request.messages == tsv[0].request.messages


def test_prompt_with_hint() -> None:
    assert qwen_mcq_prompt("Q?", {"A": "x", "B": "y"}, "look") == (
        "Hint: look\nQuestion: Q?\nOptions:\nA. x\nB. y\n"
        "Please select the correct answer from the options above."
    )


def test_group_keys() -> None:
    assert circular_key("abcdefgh") == "abcdefgh"
    assert circular_key("abcdefgh-2") == "abcdefgh"
    assert circular_key("abcdefgh-flip") == "abcdefgh-flip"
    assert circular_key("abcdefgh-flip-3") == "abcdefgh-flip"
    assert flip_key("abcdefgh-flip-3") == "abcdefgh-3"
    assert flip_circular_key("abcdefgh-flip-3") == "abcdefgh"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("The answer is B.", "B"),
        ("A is the answer to this question clearly", "Z"),  # A too early, no text match
        ("The correct answer is **B**, not A", "B"),  # two letters, then 'answer is'
        ("no", "B"),  # option text
        ("yes or no", "Z"),  # two option texts
        ("Z", "Z"),
        ("Cannot determine the answer: A", "Z"),  # refusal phrase
        ("", "Z"),
        ("C", "Z"),  # not an option of a 2-option question
    ],
)
def test_vlmevalkit_choice(reply: str, expected: str) -> None:
    assert vlmevalkit_choice(reply, {"A": "yes", "B": "no"}) == expected


def test_vlmevalkit_choice_hostile() -> None:
    assert vlmevalkit_choice(None, {"A": "x"}) == "Z"
    assert vlmevalkit_choice("A" * 100_000, {"A": "x", "B": "y"}) == "Z"
    assert vlmevalkit_choice("\x00 B \ud800", {"A": "x", "B": "y"}) == "B"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("A bike is left of it", "A"),  # leading letter wins (lmms-eval quirk)
        ("Answer: (C)", "C"),
        ("I think the answer is d", None),  # letters are case-sensitive
        ("My answer is C", "C"),
        ("  D  ", "D"),
        ("B) yes", "B"),
        ("", None),
        ("pick (B) here", "B"),
        ("so D. final", "D"),
        ("between B and", "B"),
        ("none", None),
        (None, None),
    ],
)
def test_lmms_eval_choice(reply: str | None, expected: str | None) -> None:
    assert lmms_eval_choice(reply) == expected


def test_judge_scripted_replies(tmp_path: Path) -> None:
    bench = ThreeDSRBench()
    for item in _items(tmp_path):
        reply, official, lmms = REPLIES[item.fields["qid"]]
        j = bench.judge(item, reply)
        assert j.scores == {"official": official, "lmms_eval": lmms}, item.fields["qid"]
        # judging again from the judged item (what `vst eval score` does) gives the same
        assert bench.judge(j, reply).scores == j.scores


def test_aggregate_by_hand(tmp_path: Path) -> None:
    bench = ThreeDSRBench()
    judged = [bench.judge(i, REPLIES[i.fields["qid"]][0]) for i in _items(tmp_path)]
    score = bench.aggregate(judged)
    # official groups: h 1, h-flip 0, l 0, o 0, m 1
    assert score.official == pytest.approx(2 / 5)
    assert score.variants == pytest.approx(
        {
            "official": 2 / 5,
            "vanilla": 7 / 10,
            # h 1, h-1 0, l 1, l-1 0, o 0, o-1 1, m 1, m-1 1
            "flip_eval": 5 / 8,
            # h 0, l 0, o 0, m 1
            "flip_circ_eval": 1 / 4,
            "lmms_eval": 7 / 10,
            # h 1, h-flip 0, l 0, o 0, m 1
            "lmms_eval_circular": 2 / 5,
        }
    )
    assert score.breakdown["type"] == pytest.approx(
        {"height": 0.5, "location": 0.0, "multi_object": 1.0, "orientation": 0.0}
    )
    assert score.breakdown["category"]["height_higher"] == pytest.approx(0.5)
    assert score.breakdown["vanilla_type"] == pytest.approx(
        {"height": 0.75, "location": 0.5, "multi_object": 1.0, "orientation": 0.5}
    )
    assert score.items == 10
    assert bench.aggregate([]).official is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="no 3DSRBench file"):
        list(ThreeDSRBench().read(tmp_path))


def test_missing_column_names_file(tmp_path: Path) -> None:
    path = tmp_path / "3dsrbench_v1_vlmevalkit_circular.tsv"
    path.write_text("index\tqid\tquestion\n0\tq\tQ?\n")
    with pytest.raises(BenchmarkDataError, match=r"circular\.tsv: missing column"):
        list(ThreeDSRBench().read(tmp_path))


def test_bad_rows_name_file_and_row(tmp_path: Path) -> None:
    import pandas as pd

    path = write_3dsr_tsv(tmp_path)
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    bad = df.copy()
    bad.loc[1, "answer"] = "C"  # a 2-option question
    bad.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkDataError, match=r"circular\.tsv row 1: answer 'C'"):
        list(ThreeDSRBench().read(tmp_path))
    bad = df.copy()
    bad.loc[2, "image"] = base64.b64encode(b"not an image").decode()
    bad.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkDataError, match=r"row 2: cannot decode image"):
        list(ThreeDSRBench().read(tmp_path))
    bad = df.copy()
    bad.loc[3, "image"] = "%%%not base64"
    bad.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkDataError, match=r"row 3: image cell is not valid base64"):
        list(ThreeDSRBench().read(tmp_path))
    bad = df.copy()
    bad.loc[4, "index"] = "0"
    bad.to_csv(path, sep="\t", index=False)
    with pytest.raises(BenchmarkDataError, match=r"row 4: duplicate index"):
        list(ThreeDSRBench().read(tmp_path))


def test_garbage_parquet_names_file(tmp_path: Path) -> None:
    (tmp_path / "3dsrbench_v1-00000-of-00001.parquet").write_bytes(b"PAR1 garbage")
    with pytest.raises(BenchmarkDataError, match=r"parquet: cannot read"):
        list(ThreeDSRBench().read(tmp_path))


def test_parquet_image_paths_stay_inside_root(tmp_path: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from vst.testing.bench_fixtures_3dsr import _jpeg

    path = write_3dsr_parquet(tmp_path)
    (tmp_path / "coco_images").mkdir()
    (tmp_path / "coco_images" / "0.jpg").write_bytes(_jpeg(0))
    table = pq.read_table(path)
    idx = table.schema.get_field_index("image")
    cells = [{"bytes": None, "path": "coco_images/0.jpg"}] * table.num_rows
    pq.write_table(
        table.set_column(idx, "image", pa.array(cells, table.schema.field(idx).type)), path
    )
    items = list(ThreeDSRBench().read(tmp_path))
    assert items[0].request.images[0].size == (8, 6)
    cells = [{"bytes": None, "path": "../outside.jpg"}] * table.num_rows
    pq.write_table(
        table.set_column(idx, "image", pa.array(cells, table.schema.field(idx).type)), path
    )
    with pytest.raises(BenchmarkDataError, match=r"row 0: .*outside"):
        list(ThreeDSRBench().read(tmp_path))


def test_non_utf8_tsv_names_file(tmp_path: Path) -> None:
    path = write_3dsr_tsv(tmp_path)
    path.write_bytes(path.read_bytes().replace(b"lamp", b"l\xffmp"))
    with pytest.raises(BenchmarkDataError, match=r"circular\.tsv: cannot read the TSV"):
        list(ThreeDSRBench().read(tmp_path))


def test_hostile_replies_never_raise(tmp_path: Path) -> None:
    import time

    from vst.testing.hostile_text import hostile_answers

    bench = ThreeDSRBench()
    item = _items(tmp_path)[0]
    start = time.perf_counter()
    for name, reply in hostile_answers(200_000).items():
        scores = bench.judge(item, reply).scores
        assert set(scores.values()) <= {0.0, 1.0}, name
    assert bench.judge(item, None).scores == {"official": 0.0, "lmms_eval": 0.0}  # type: ignore[arg-type]
    assert time.perf_counter() - start < 5.0


def test_describe_and_sampling() -> None:
    info = ThreeDSRBench().describe()
    assert info["name"] == "3dsrbench" and "CircularEval" in info["aggregation"]
    assert ThreeDSRBench.sampling.greedy


def test_empty_option_cells_are_skipped(tmp_path: Path) -> None:
    import pandas as pd

    path = write_3dsr_tsv(tmp_path)
    df = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    df.loc[4, "B"] = ""  # l0000002: options A, C, D remain (answer C)
    df.to_csv(path, sep="\t", index=False)
    item = list(ThreeDSRBench().read(tmp_path))[4]
    assert list(item.fields["options"]) == ["A", "C", "D"]
    assert "B. " not in item.request.messages[0]["content"][1]["text"]
    assert ThreeDSRBench().judge(item, "B").scores["official"] == 0.0
