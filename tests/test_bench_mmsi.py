"""MMSI-Bench: parquet reader (image bytes), prompt, official backtick + regex extraction,
lmms-eval's lenient variant, micro and per-category accuracy (scores by hand)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.mmsi import POST_PROMPT, MMSIBench, mmsi_choice, normalize_category
from vst.testing.bench_fixtures_mmsi import ROWS, write_mmsi_parquet

PRC = "Positional Relationship (Cam.–Obj.)"

# id -> (reply, official hit, lmms-eval hit), worked out by hand
REPLIES = {
    "0": ("`B`", 1, 1),
    "1": ("``C``", 1, 1),
    "2": ("The answer is {D}.", 1, 1),
    "3": ("b", 0, 1),  # lower case: only the lenient rule
    "4": ("e.g. B", 1, 0),  # lenient reads the 'e' of e.g. as option E
    "5": ("<<garbage>>", 0, 0),
    "6": ("`A` or maybe `B`", 0, 0),  # first backtick pair wins: A, wrong
    "7": ("", 0, 0),
    "8": ("I choose d.", 0, 1),
}


def _items(tmp_path: Path, structs: bool = False):
    write_mmsi_parquet(tmp_path, structs=structs)
    return list(MMSIBench().read(tmp_path))


def test_read_items_prompt_and_images(tmp_path: Path) -> None:
    items = _items(tmp_path)
    assert [i.id for i in items] == [str(r[0]) for r in ROWS]
    assert [i.truth for i in items] == [r[2] for r in ROWS]
    first = items[0]
    assert len(first.request.images) == 2 and first.request.images[0].size == (10, 7)
    assert len(items[2].request.images) == 3
    content = first.request.messages[0]["content"]
    assert content[:2] == [{"type": "image"}, {"type": "image"}]
    assert content[2]["text"] == (
        "Question 0: where is the chair from the camera?\n"
        "Options: A: left, B: right, C: front, D: behind\n"
        "Answer with the option's letter from the given choices directly. "
        "Enclose the option's letter within ``."
    )
    assert content[2]["text"].endswith(POST_PROMPT)
    assert first.fields["category"] == PRC
    assert items[1].fields["category"] == PRC  # hyphen normalised to EN DASH


def test_read_hf_image_structs(tmp_path: Path) -> None:
    a = _items(tmp_path / "a")
    b = _items(tmp_path / "b", structs=True)
    assert [i.request.fingerprint() for i in a] == [i.request.fingerprint() for i in b]


def test_normalize_category() -> None:
    assert normalize_category("Positional Relationship (Obj. - Reg.)") == (
        "Positional Relationship (Obj.–Reg.)"
    )
    assert normalize_category("MSR") == "MSR"


@pytest.mark.parametrize(
    ("reply", "official", "lenient"),
    [
        ("B", "B", "B"),
        ("A bike is to the left, so C", "C", "C"),  # 'A bike' skipped
        ("A bike", None, None),
        ("```B```", "B", "B"),
        ("The answer is `(C)`.", "C", "C"),
        ("{A}", "A", "A"),
        ("``{B} or C``", "B", "B"),  # narrowings chain: backticks, then braces
        ("`x` {C}", None, None),  # backticks narrow to 'x'; the braces are gone
        ("line\n``\nD\n``", "D", "D"),  # narrowing crosses newlines
        ("a", None, "A"),
        ("E", None, "E"),
        ("`` `` D", None, None),  # empty backticks narrow to nothing
        (None, None, None),
        ("\ud800\x00" * 1000, None, None),
    ],
)
def test_mmsi_choice(reply: str | None, official: str | None, lenient: str | None) -> None:
    assert mmsi_choice(reply) == official
    assert mmsi_choice(reply, lenient=True) == lenient


def test_judge_scripted_replies(tmp_path: Path) -> None:
    bench = MMSIBench()
    for item in _items(tmp_path):
        reply, official, lmms = REPLIES[item.id]
        j = bench.judge(item, reply)
        assert j.scores == {"official": official, "lmms_eval": lmms}, item.id
        assert bench.judge(j, reply).scores == j.scores


def test_aggregate_by_hand(tmp_path: Path) -> None:
    bench = MMSIBench()
    judged = [bench.judge(i, REPLIES[i.id][0]) for i in _items(tmp_path)]
    score = bench.aggregate(judged)
    assert score.official == pytest.approx(4 / 9)
    assert score.variants == pytest.approx({"official": 4 / 9, "lmms_eval": 5 / 9})
    assert score.breakdown["category"] == pytest.approx(
        {PRC: 1.0, "Attribute (Meas.)": 0.5, "Motion (Cam.)": 0.0, "MSR": 1 / 3}
    )
    assert score.breakdown["lmms_eval_category"] == pytest.approx(
        {PRC: 1.0, "Attribute (Meas.)": 0.5, "Motion (Cam.)": 0.5, "MSR": 1 / 3}
    )
    assert score.items == 9
    assert bench.aggregate([]).official is None


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="no MMSI-Bench file"):
        list(MMSIBench().read(tmp_path))


def _rewrite(path: Path, column: str, row: int, value: object) -> None:
    table = pq.read_table(path)
    values = table.column(column).to_pylist()
    values[row] = value
    idx = table.schema.get_field_index(column)
    table = table.set_column(idx, column, pa.array(values, type=table.schema.field(idx).type))
    pq.write_table(table, path)


def test_bad_rows_name_file_and_row(tmp_path: Path) -> None:
    path = write_mmsi_parquet(tmp_path)
    _rewrite(path, "answer", 2, "AB")
    with pytest.raises(BenchmarkDataError, match=r"MMSI_Bench\.parquet row 2: answer 'AB'"):
        list(MMSIBench().read(tmp_path))
    path = write_mmsi_parquet(tmp_path)
    _rewrite(path, "images", 4, [b"garbage"])
    with pytest.raises(BenchmarkDataError, match=r"row 4 image 0: cannot decode image"):
        list(MMSIBench().read(tmp_path))
    path = write_mmsi_parquet(tmp_path)
    _rewrite(path, "id", 5, 0)
    with pytest.raises(BenchmarkDataError, match=r"row 5: duplicate id"):
        list(MMSIBench().read(tmp_path))


def test_missing_column_and_garbage(tmp_path: Path) -> None:
    pq.write_table(pa.table({"id": [1], "question": ["q"]}), tmp_path / "MMSI_Bench.parquet")
    with pytest.raises(BenchmarkDataError, match=r"MMSI_Bench\.parquet: missing column"):
        list(MMSIBench().read(tmp_path))
    (tmp_path / "MMSI_Bench.parquet").write_bytes(b"not parquet")
    with pytest.raises(BenchmarkDataError, match=r"MMSI_Bench\.parquet: cannot read"):
        list(MMSIBench().read(tmp_path))


def test_row_without_images_is_sent_text_only(tmp_path: Path) -> None:
    path = write_mmsi_parquet(tmp_path)
    _rewrite(path, "images", 3, None)
    item = list(MMSIBench().read(tmp_path))[3]
    assert item.request.images == ()
    assert item.request.messages[0]["content"][0]["type"] == "text"
    assert item.fields["images"] == 0


def test_hostile_replies_are_fast_and_score_zero_or_one(tmp_path: Path) -> None:
    import time

    from vst.testing.hostile_text import hostile_answers

    bench = MMSIBench()
    item = _items(tmp_path)[0]
    replies = {**hostile_answers(200_000), "open_braces": "{" * 200_000}
    start = time.perf_counter()
    for name, reply in replies.items():
        scores = bench.judge(item, reply).scores
        assert set(scores.values()) <= {0.0, 1.0}, name
    assert bench.judge(item, None).scores == {"official": 0.0, "lmms_eval": 0.0}  # type: ignore[arg-type]
    assert time.perf_counter() - start < 5.0  # linear: the brace regex was quadratic


def test_describe_and_sampling() -> None:
    info = MMSIBench().describe()
    assert info["name"] == "mmsi" and info["post_prompt"] == POST_PROMPT
    assert MMSIBench.sampling.greedy
