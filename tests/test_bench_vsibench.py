"""VSI-Bench: reader (parquet / jsonl + mp4 via PyAV), official prompts, the official rule and
the lmms-eval / VLMEvalKit variants, aggregation, bad files. Expected scores computed by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from vst.eval.benchmarks.base import BenchmarkDataError
from vst.eval.benchmarks.video_frames import sample_indices
from vst.eval.benchmarks.vlmevalkit_match import vlmevalkit_number, vlmevalkit_option
from vst.eval.benchmarks.vsibench import VSIBench, build_prompt
from vst.eval.benchmarks.vsibench_scoring import first_number, official_mra, official_number
from vst.eval.metrics import mra
from vst.testing.bench_fixtures_vsibench import COLOURS, ROWS, write_video, write_vsibench

pytest.importorskip("av")

# reply, then hand-computed (official, lmms_eval, vlmevalkit) scores, per fixture row id
REPLIES: dict[str, tuple[object, tuple[float, float, float]]] = {
    # MCA exact letter with a dot: every rule takes A
    "0": ("A.", (1.0, 1.0, 1.0)),
    # NA verbose, gt 2.0: official token "The" is no number; lmms-eval first number 2.13
    # (rel .065 <= 1-t for t <= .90: 9/10); VLMEvalKit last number 3 (rel .5: t = .5 only)
    "1": ("The distance is about 2.13 meters, not 3.", (0.0, 0.9, 0.1)),
    # NA, gt 5, reply 4: rel 0.2 and 1-0.8 = 0.19999999999999996 in float64 -> 6/10
    "2": ("4", (0.6, 0.6, 0.6)),
    # MCA option text: no rule matches option texts
    "3": ("right", (0.0, 0.0, 0.0)),
    "4": ("C", (1.0, 1.0, 1.0)),
    # wrong letter
    "5": ("B. front-right", (0.0, 0.0, 0.0)),
    # malformed: empty
    "6": ("", (0.0, 0.0, 0.0)),
    # NA with unit, gt 80: token "75" -> rel .0625 -> 9/10 for every rule
    "7": ("75 cm", (0.9, 0.9, 0.9)),
    # NA thinking reply, gt 30.9: lmms-eval first number 20 (rel .353: t <= .6 -> 3/10);
    # VLMEvalKit takes the <answer> number 31 (rel .003 -> 10/10)
    "8": ("<think>about 20 or 25</think><answer>31</answer>", (0.0, 0.3, 1.0)),
    # MCA verbose: first token "The"; VLMEvalKit finds the one stand-alone capital B
    "9": ("The answer is B.", (0.0, 0.0, 1.0)),
    # NA number word, gt 10: seven -> rel .3 <= 1-.7 (= .30000000000000004): 5/10
    "10": ("seven", (0.0, 0.5, 0.5)),
}
RULES = ("official", "lmms_eval", "vlmevalkit")


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("vsibench")
    write_vsibench(root)
    return root


@pytest.fixture(scope="module")
def items(root: Path) -> list:
    return list(VSIBench(num_frames=4).read(root))


def test_reads_items_in_order_with_fields(items: list) -> None:
    # grouped by video: arkitscenes rows first (first seen), then scannet, table order within
    order = ["0", "1", "2", "7", "10", "3", "4", "5", "6", "8", "9"]
    assert [i.id for i in items] == order
    truth = {str(r["id"]): r["ground_truth"] for r in ROWS}
    assert [i.truth for i in items] == [truth[i] for i in order]
    f = items[7].fields
    assert f["question_type"] == "object_rel_direction_hard"
    assert f["task"] == "object_rel_direction" and f["kind"] == "MCA"
    assert (f["dataset"], f["scene_name"]) == ("scannet", "scene0011_00")
    assert items[1].fields["kind"] == "NA" and items[1].fields["options"] is None
    assert items[0].fields["num_frames"] == 4 and items[0].fields["fps"] == pytest.approx(2.0)
    json.dumps([dict(i.fields) for i in items])  # JSON-able


def test_frames_sampled_uniformly_by_colour(items: list) -> None:
    video = items[0].request.videos[0]
    # 10 frames over 2 s, 4 asked: indices linspace(0, 9, 4) -> 0, 3, 6, 9; fps = 4 / 2 s
    assert sample_indices(10, 4) == [0, 3, 6, 9]
    assert len(video.frames) == 4 and video.fps == pytest.approx(2.0)
    for frame, i in zip(video.frames, (0, 3, 6, 9), strict=True):
        got = frame.convert("RGB").getpixel((32, 24))
        assert all(abs(a - b) <= 12 for a, b in zip(got, COLOURS[i], strict=True)), (i, got)


def test_default_frames_and_short_video(root: Path) -> None:
    bench = VSIBench()
    assert bench.num_frames == 32 and bench.describe()["num_frames"] == 32
    video = next(bench.read(root)).request.videos[0]
    assert len(video.frames) == 10 and video.fps == pytest.approx(5.0)  # every frame
    assert sample_indices(100, 5) == [0, 24, 49, 74, 99]
    assert sample_indices(3, 5) == [0, 1, 2] and sample_indices(0, 5) == []


def test_official_prompts_exact(items: list) -> None:
    mca = items[5].request.messages
    assert mca == [
        {
            "role": "user",
            "content": [
                {"type": "video"},
                {
                    "type": "text",
                    "text": "These are frames of a video.\nIf I am standing by the sofa and "
                    "facing the tv, is the lamp to my left or the right?\nOptions:\nA. left\n"
                    "B. right\nAnswer with the option's letter from the given choices directly.",
                },
            ],
        }
    ]
    na = items[2].request.messages[0]["content"][1]["text"]
    assert na == (
        "These are frames of a video.\nHow many chair(s) are in this room?\n"
        "Please answer the question using a single word or phrase."
    )
    assert build_prompt("object_counting", "Q?", None) == (
        "These are frames of a video.\nQ?\nPlease answer the question using a single word or "
        "phrase."
    )
    assert VSIBench.sampling.greedy and VSIBench.sampling.max_tokens == 16


def test_jsonl_reads_the_same(tmp_path: Path, items: list) -> None:
    write_vsibench(tmp_path, fmt="jsonl")
    got = list(VSIBench(num_frames=4).read(tmp_path))
    assert [(i.id, i.truth, dict(i.fields)) for i in got] == [
        (i.id, i.truth, dict(i.fields)) for i in items
    ]
    assert got[0].request.fingerprint() == items[0].request.fingerprint()


@pytest.mark.parametrize("item_id", list(REPLIES))
def test_scripted_replies(items: list, item_id: str) -> None:
    item = next(i for i in items if i.id == item_id)
    reply, expected = REPLIES[item_id]
    judged = VSIBench().judge(item, reply)
    assert judged.id == item_id and judged.truth == item.truth
    assert tuple(judged.scores[r] for r in RULES) == pytest.approx(expected), judged.parsed
    json.dumps(judged.parsed)


def test_official_mra_matches_the_script_on_boundaries() -> None:
    # the official numpy arithmetic: 4 vs 5 is 0.2 off, 1 - 0.8 < 0.2 in float64
    assert official_mra(4.0, 5.0) == pytest.approx(0.6)
    assert mra(4.0, 5.0) == pytest.approx(0.7)  # vst's tolerant MRA counts the boundary
    assert official_mra(3.0, 2.0) == pytest.approx(0.1)  # 0.5 <= 1 - 0.5
    assert official_mra(5.0, 5.0) == 1.0
    assert official_mra(None, 5.0) == 0.0 and official_mra(float("nan"), 5.0) == 0.0
    assert official_mra(float("inf"), 5.0) == 0.0 and official_mra(-1e308, 5.0) == 0.0


def test_number_parsers() -> None:
    assert official_number("3.5.") == 3.5 and official_number("3.5 m") == 3.5
    assert official_number("3.5m") is None and official_number(" 3") is None  # leading space
    assert official_number("1e1") == 10.0 and official_number("two") is None
    assert first_number("I count two, maybe 3") == 2.0 and first_number("none") is None
    assert first_number("about -1.5e1 units") == -15.0
    assert vlmevalkit_number("between 2 and 3") == 3.0 and vlmevalkit_number("x") is None
    assert vlmevalkit_number("<think>7</think> so four") == 4.0
    assert vlmevalkit_number("<answer>2.5 m</answer> 9") == 2.5
    assert vlmevalkit_number("[3, 4]") == 3.0 and vlmevalkit_number("[[[") is None
    assert vlmevalkit_number(None) is None


@pytest.mark.parametrize(
    ("reply", "letter"),
    [
        ("<answer>c) sofa</answer>", "C"),  # 1: answer block, any case
        ("I think (b)</think>", "B"),  # 2: letter right before </think>
        ("C", "C"),  # 3: a line that is one letter
        ("**d**", "D"),  # markdown around it
        ("a. left\nb. right", "B"),  # labeled lines, scanned from the bottom
        ("A.", "A"),  # stand-alone capital followed by punctuation
        ("Options:\nA. x\nB. y\nI pick B", "B"),
        ("the answer is b", "B"),  # 5: phrase, case-insensitive letter
        ("A bike is near the door", "A"),  # VLMEvalKit reads the article as an option
        ("A or B", None),  # two letters
        ("option A: chair\noption B: sofa", None),  # option lines are skipped
        ("G", None),  # outside A-F
        ("", None),
        (None, None),
    ],
)
def test_vlmevalkit_option(reply: object, letter: str | None) -> None:
    assert vlmevalkit_option(reply) == letter


@pytest.mark.parametrize(
    "reply", [None, 42, "nan", "inf", "1e999", "-0", "9" * 5000, "A " * 20000, "\x00\ud800"]
)
def test_hostile_replies_never_raise(items: list, reply: object) -> None:
    for item in items:
        judged = VSIBench().judge(item, reply)  # type: ignore[arg-type]
        for rule in RULES:
            assert 0.0 <= judged.scores[rule] <= 1.0
        json.dumps(judged.parsed, allow_nan=False)


def test_judge_on_a_judged_item_rescores(items: list) -> None:
    bench = VSIBench()
    first = bench.judge(items[0], "B")
    assert bench.judge(first, "A").scores["official"] == 1.0


def test_aggregate_by_hand(items: list) -> None:
    bench = VSIBench(num_frames=4)
    score = bench.aggregate([bench.judge(i, REPLIES[i.id][0]) for i in items])
    # official task scores: order 1, abs 0, count (0.6+0)/2, rel_dir (0+1+0)/3, rel_dist 0,
    # size 0.9, room 0, route 0
    official = (1 + 0 + 0.3 + 1 / 3 + 0 + 0.9 + 0 + 0) / 8
    # lmms-eval: order 1, abs 0.9, count (0.6+0.5)/2, rel_dir 1/3, rel_dist 0, size 0.9,
    # room 0.3, route 0
    lmms = (1 + 0.9 + 0.55 + 1 / 3 + 0 + 0.9 + 0.3 + 0) / 8
    # VLMEvalKit: order 1, abs 0.1, count 0.55, rel_dir (0+1+0)/3, rel_dist 0, size 0.9,
    # room 1, route 1
    vlm = (1 + 0.1 + 0.55 + 1 / 3 + 0 + 0.9 + 1 + 1) / 8
    assert score.benchmark == "vsibench" and score.items == 11
    assert score.official == pytest.approx(official)
    assert dict(score.variants) == pytest.approx(
        {"official": official, "lmms_eval": lmms, "vlmevalkit": vlm}
    )
    tasks = score.breakdown["task"]
    assert len(tasks) == 8 and tasks["object_rel_direction"] == pytest.approx(1 / 3)
    assert tasks["object_counting"] == pytest.approx(0.3)
    assert score.breakdown["question_type"]["object_rel_direction_medium"] == 1.0
    assert score.breakdown["task/vlmevalkit"]["room_size_estimation"] == 1.0
    assert not any("absent" in n for n in score.notes)


def test_aggregate_partial_rel_direction_counts_missing_as_zero(items: list) -> None:
    bench = VSIBench()
    medium = next(i for i in items if i.id == "4")
    score = bench.aggregate([bench.judge(medium, "C")])
    assert score.official == pytest.approx(1 / 3)  # (0 + 1 + 0) / 3, as the official script
    assert any("absent" in n for n in score.notes)
    assert any("1 of the 8 tasks" in n for n in score.notes)
    assert bench.aggregate([]).official is None


# ------------------------------------------------------------------- bad files


def _table_rows(root: Path) -> list[dict]:
    return pq.read_table(root / "test-00000-of-00001.parquet").to_pylist()


def _rewrite(tmp_path: Path, change) -> Path:
    write_vsibench(tmp_path, fmt="jsonl")
    rows = [json.loads(x) for x in (tmp_path / "test.jsonl").read_text().splitlines()]
    change(rows)
    (tmp_path / "test.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_no_table(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkDataError, match="no VSI-Bench question table"):
        list(VSIBench().read(tmp_path))


def test_garbage_parquet_names_file(tmp_path: Path) -> None:
    (tmp_path / "test-00000-of-00001.parquet").write_bytes(b"PAR1 not really")
    with pytest.raises(BenchmarkDataError, match=r"test-00000-of-00001\.parquet"):
        list(VSIBench().read(tmp_path))


def test_garbage_jsonl_names_file(tmp_path: Path) -> None:
    (tmp_path / "test.jsonl").write_text('{"id": 1}\n[1, 2]\n')
    with pytest.raises(BenchmarkDataError, match=r"test\.jsonl"):
        list(VSIBench().read(tmp_path))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda rows: rows[2].pop("ground_truth"), "row 2: column 'ground_truth' is missing"),
        (lambda rows: rows[3].update(question_type="nope"), "unknown question_type 'nope'"),
        (lambda rows: rows[1].update(ground_truth="far"), "not a non-zero number"),
        (lambda rows: rows[2].update(ground_truth="0"), "not a non-zero number"),
        (lambda rows: rows[0].update(options=None), "'options' is not a list"),
        (lambda rows: rows[4].update(id=0), "duplicate id 0"),
        (lambda rows: rows[0].update(scene_name="missing"), r"missing\.mp4: video not found"),
        (lambda rows: rows[0].update(dataset="../.."), "resolves outside"),
    ],
)
def test_bad_rows_name_file_and_row(tmp_path: Path, change, message: str) -> None:
    root = _rewrite(tmp_path, change)
    with pytest.raises(BenchmarkDataError, match=message) as info:
        list(VSIBench(num_frames=2).read(root))
    assert "test.jsonl" in str(info.value) or ".mp4" in str(info.value)


def test_broken_video_names_file(tmp_path: Path) -> None:
    write_vsibench(tmp_path)
    (tmp_path / "scannet" / "scene0011_00.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42 junk")
    with pytest.raises(BenchmarkDataError, match=r"scene0011_00\.mp4: cannot decode"):
        list(VSIBench(num_frames=2).read(tmp_path))


def test_each_video_decoded_once(items: list, root: Path) -> None:
    by_scene: dict[str, set[int]] = {}
    for item in items:
        by_scene.setdefault(item.fields["scene_name"], set()).add(id(item.request.videos[0]))
    assert {k: len(v) for k, v in by_scene.items()} == {"41069025": 1, "scene0011_00": 1}
    assert len(_table_rows(root)) == len(ROWS)


def test_one_frame_video(tmp_path: Path) -> None:
    write_vsibench(tmp_path)
    write_video(tmp_path / "arkitscenes" / "41069025.mp4", colours=COLOURS[:1])
    item = next(VSIBench(num_frames=8).read(tmp_path))
    assert len(item.request.videos[0].frames) == 1 and item.request.videos[0].fps > 0
