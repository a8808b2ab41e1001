"""`vst data audit`: each check on hand-made rows and shards that cross (and keep) its threshold,
the CLI's report files and exit codes, and the audit of a real small engine run."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from vst.engine.audit import (
    NOT_RECORDED,
    Thresholds,
    answer_style,
    audit_rows,
    instruction_violations,
    render_markdown,
)


def msg(role: str, text: str) -> dict:
    return {"role": role, "content": [{"type": "text", "text": text}]}


def row(
    i: int,
    task: str = "si_depth_point",
    question: str | None = None,
    target: str = "B",
    reward: dict | None = None,
    scene: str = "s0",
    frames: list | None = None,
    **meta,
) -> dict:
    question = question if question is not None else f"Question {i}?\nA. x\nB. y"
    return {
        "id": f"{i:016x}",
        "task": task,
        "answer": target,
        "reward": json.dumps(reward or {"mode": "exact", "ground_truth": target}),
        "meta": json.dumps({"scene_id": scene, "frame_ids": frames or [f"f{i}"], **meta}),
        "messages": [msg("user", question), msg("assistant", target)],
    }


def failing(report) -> str:
    return "\n".join(report.failures)


# --------------------------------------------------------------------------------------------
# visibility
# --------------------------------------------------------------------------------------------


def test_visibility_share_below_threshold_fails():
    rows = [row(i, visible_fraction={"1": 0.9, "2": 0.9}) for i in range(9)]
    rows.append(row(9, visible_fraction={"1": 0.9, "2": 0.12}))  # 1 of 20 referents: 5%
    report = audit_rows(rows)
    v = report.tasks["si_depth_point"]["visibility"]
    assert v["referents"] == 20 and v["below_threshold"] == 1 and v["share_below"] == 0.05
    assert v["min"] == 0.12 and v["fail"] is True
    assert "si_depth_point: visibility 5.0% of referents below 0.5" in failing(report)
    relaxed = audit_rows(rows, Thresholds(max_low_visible_share=0.05))
    assert relaxed.ok


def test_visibility_not_recorded_is_not_a_failure():
    report = audit_rows([row(i) for i in range(5)])
    assert report.tasks["si_depth_point"]["visibility"] == {"status": NOT_RECORDED}
    assert report.ok


# --------------------------------------------------------------------------------------------
# floor coverage
# --------------------------------------------------------------------------------------------


def _metric(i: int, coverage: float | None, kind: str = "room") -> dict:
    meta = {"turns": [{"kind": kind, "ids": [] if kind == "room" else [i]}]}
    if coverage is not None:
        meta["floor_coverage"] = coverage
    return row(i, task="video_metric", target="20.5", scene=f"s{i}", **meta)


def test_floor_coverage_below_threshold_fails():
    rows = [_metric(0, 0.93), _metric(1, 0.45), _metric(2, None, kind="size")]
    report = audit_rows(rows)
    cov = report.tasks["video_metric"]["floor_coverage"]
    assert cov["room_samples"] == 2 and cov["below_threshold"] == 1 and cov["min"] == 0.45
    assert "video_metric: floor_coverage 50.0% of room-area samples below 0.8" in failing(report)
    assert audit_rows(rows, Thresholds(min_floor_coverage=0.4)).ok


def test_floor_coverage_not_recorded_on_older_shards():
    report = audit_rows([_metric(0, None), _metric(1, None)])
    cov = report.tasks["video_metric"]["floor_coverage"]
    assert cov == {"status": NOT_RECORDED, "room_samples": 2}
    assert report.ok
    assert "floor_coverage" not in audit_rows([row(0)]).tasks["si_depth_point"]


# --------------------------------------------------------------------------------------------
# letter balance
# --------------------------------------------------------------------------------------------

FOUR = "Which one?\nA. a\nB. b\nC. c\nD. d\nReply with the letter only."


def _mcq(i: int, letter: str, question: str = FOUR) -> dict:
    return row(i, question=question, target=letter, reward={"mode": "mcq", "ground_truth": letter})


def test_letter_balance_skewed_answers_fail():
    rows = [_mcq(i, "A") for i in range(40)] + [_mcq(40 + i, "B") for i in range(4)]
    report = audit_rows(rows)
    lb = report.tasks["si_depth_point"]["letter_balance"]
    assert lb["samples"] == 44 and lb["counts"] == {"A": 40, "B": 4}
    assert lb["expected"] == {"0": 11.0, "1": 11.0, "2": 11.0, "3": 11.0}
    assert lb["p_value"] < 1e-9 and lb["fail"] is True
    assert "si_depth_point: letter_balance unbalanced answer labels" in failing(report)


def test_letter_balance_uniform_passes_and_small_sets_are_not_judged():
    rows = [_mcq(i, "ABCD"[i % 4]) for i in range(40)]
    lb = audit_rows(rows).tasks["si_depth_point"]["letter_balance"]
    assert lb["p_value"] == 1.0 and lb["fail"] is False
    few = audit_rows([_mcq(i, "A") for i in range(10)])
    assert few.tasks["si_depth_point"]["letter_balance"]["status"].startswith("fewer than 30")
    assert few.ok


def test_letter_balance_expects_per_sample_option_counts():
    """Two-option questions answered A/B evenly and four-option ones evenly: balanced."""
    two = "Which?\nA. a\nB. b"
    rows = [_mcq(i, "AB"[i % 2], two) for i in range(40)]
    rows += [_mcq(100 + i, "ABCD"[i % 4], FOUR) for i in range(40)]
    lb = audit_rows(rows).tasks["si_depth_point"]["letter_balance"]
    assert lb["expected"] == {"0": 30.0, "1": 30.0, "2": 10.0, "3": 10.0}
    assert lb["fail"] is False


# --------------------------------------------------------------------------------------------
# repetition
# --------------------------------------------------------------------------------------------


def test_duplicate_questions_on_the_same_input_fail():
    rows = [row(i, question="How many chairs?", frames=["v0", "v1"]) for i in range(3)]
    rows.append(row(3, question="How many chairs?", frames=["v2"]))  # another clip: not a dup
    rep = audit_rows(rows).tasks["si_depth_point"]["repetition"]
    assert rep["duplicate_questions"] == 2 and rep["duplicate_question_share"] == 0.5
    assert rep["fail"] is True


def test_repeated_facts_per_turn_fail():
    clip = ["v0", "v1", "v2"]
    size = {"kind": "size", "ids": [3]}
    rows = [
        row(0, task="video_metric", frames=clip, turns=[size, {"kind": "room", "ids": []}]),
        row(1, task="video_metric", frames=clip, turns=[size, {"kind": "distance", "ids": [3, 4]}]),
        row(2, task="video_metric", frames=clip, turns=[{"kind": "distance", "ids": [4, 3]}]),
    ]
    rep = audit_rows(rows).tasks["video_metric"]["repetition"]
    # 5 facts; the size of object 3 in the same clip is asked twice (ordered ids: 3-4 != 4-3)
    assert rep["facts"] == 5 and rep["repeated_facts"] == 1 and rep["repeated_fact_share"] == 0.2
    assert rep["fail"] is False
    rows.append(row(3, task="video_metric", frames=clip, turns=[{"kind": "room", "ids": []}]))
    rep = audit_rows(rows).tasks["video_metric"]["repetition"]
    assert rep["repeated_facts"] == 2 and rep["fail"] is True  # 2 of 6 > 25%


# --------------------------------------------------------------------------------------------
# instructions and targets
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "target", "broken"),
    [
        ("Which?\nA. x\nB. y\nReply with the option letter only.", "B", []),
        ("Which?\nA. x\nB. y\nReply with the option letter only.", "B. y", ["letter only"]),
        (  # the ada9e82481cb0631: distances listed before the letter
            "Which candidate lies farthest from box-C?\nA. box-B\nB. box-A\n"
            "Reply with the option letter only.",
            "Distance[box-C, box-B]=1.2m\nDistance[box-C, box-A]=2.0m\nTherefore, the answer is B.",
            ["letter only"],
        ),
        ("Which?\n1. box-B\n2. box-A\nGive only the number.", "2", []),
        ("Which?\n1. box-B\n2. box-A\nGive only the number.", "2. box-A", ["number only"]),
        ("How long is it in metres? Give the number only.", "3.5", []),
        ("What is it? Reply with a single word or phrase.", "cabinet", []),
        (
            "What is it? Reply with a single word or phrase.",
            "a tall grey metal cabinet door",
            ["single word or phrase"],
        ),
        ("How many? Answer the question using a single number.", "3", []),
        (
            "How many? Answer the question using a single number.",
            "three chairs, I think 3",
            ["single number"],
        ),
        ("Give a single number in degrees.", "22 degrees", []),
        ("How tall is it, in centimeters?", "81 cm", []),
        ("How tall is it, in centimeters?", "0.81 m", ["unit cm"]),
        ("How far apart are they, in metres?", "2.97 m", []),
        ("How far apart are they, in meters?", "297 cm", ["unit m"]),
        ("What is the area in square meters?", "34.8 square meters", []),
        ("What is the area in square meters?", "34.8 m", ["unit m2"]),
        ("Where? Reply with one of these words: left, right, back.", "back", []),
        ("Where? Reply with one of these words: left, right, back.", "front", ["listed words"]),
        ("Reply with a single direction (north, east, south, west).", "east", []),
        ("Reply with a single direction (north, east, south, west).", "up", ["listed words"]),
        ("Output the boxes in JSON.", '```json\n[{"bbox_3d": [1], "label": "a"}]\n```', []),
        ("Output the boxes in JSON.", "a chair at the back", ["json"]),
    ],
)
def test_instruction_rules(question, target, broken):
    assert instruction_violations(question, target) == broken


def test_instruction_violations_fail_the_task_and_name_samples():
    rows = [_mcq(0, "B")]
    rows.append(row(1, question=FOUR, target="The lamp is nearer, so B"))
    report = audit_rows(rows)
    ins = report.tasks["si_depth_point"]["instructions"]
    assert ins["violating_samples"] == 1 and ins["rules"] == {"letter only": 1}
    assert ins["examples"] == [{"id": f"{1:016x}", "rules": "letter only"}]
    assert f"(e.g. {1:016x})" in failing(report)


# --------------------------------------------------------------------------------------------
# answer styles and scenes
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "style"),
    [
        ("B", "letter"),
        ("(B)", "letter"),
        ("2", "letter"),
        ("B. northwest", "letter. text"),
        ("B: point-B", "letter. text"),
        ("2. box-A", "letter. text"),
        ("Distance[a, b]=1m\nTherefore, the answer is B.", "letter"),
        ("Distance[a, b]=1m\nTherefore, the answer is B. the lamp (red box).", "letter. text"),
        ("northwest", None),
    ],
)
def test_answer_style(target, style):
    assert answer_style(target) == style


def test_mixed_answer_styles_fail_unless_allowed():
    rows = [_mcq(0, "B"), _mcq(1, "A")]
    compass = row(2, task="mi_object_object", target="B. northwest")
    compass["reward"] = json.dumps({"mode": "mcq", "ground_truth": "B"})
    report = audit_rows([*rows, compass])
    assert report.checks["answer_styles"] == {
        "letter": {"si_depth_point": 2},
        "letter. text": {"mi_object_object": 1},
    }
    assert (
        "answer styles mixed: 'letter' in si_depth_point; 'letter. text' in mi_object_object"
        in (failing(report))
    )
    assert audit_rows([*rows, compass], Thresholds(allow_mixed_styles=True)).ok
    assert audit_rows(rows).ok


def test_samples_without_their_scene_fail():
    report = audit_rows([row(0, scene="s0"), row(1, scene="gone")], scene_ids={"s0"})
    assert report.checks["scenes"] == {"samples_without_scene": {"si_depth_point": 1}}
    assert "si_depth_point: 1 sample(s) whose scene is not under --scenes" in failing(report)


# --------------------------------------------------------------------------------------------
# CLI on hand-made shards
# --------------------------------------------------------------------------------------------


def write_shard(folder: Path, rows: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "shard-00000-000000000000.parquet"
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def _cli(*args: str):
    from vst.cli import app

    return CliRunner().invoke(app, ["data", "audit", *args])


def test_cli_writes_reports_and_exits_1_listing_crossed_thresholds(tmp_path):
    rows = [row(i, visible_fraction={"7": 0.2}) for i in range(3)]
    write_shard(tmp_path / "run" / "data", rows)
    result = _cli(str(tmp_path / "run"))
    assert result.exit_code == 1, result.output
    assert "FAIL si_depth_point: visibility 100.0% of referents below 0.5" in result.output
    data = json.loads((tmp_path / "run" / "audit.json").read_text())
    assert data["ok"] is False and data["samples"] == 3
    assert data["tasks"]["si_depth_point"]["visibility"]["min"] == 0.2
    md = (tmp_path / "run" / "audit.md").read_text()
    assert "**FAIL**" in md and "| si_depth_point | 3 | FAIL: below 1.0, min 0.2 |" in md
    # the threshold is an option
    out = tmp_path / "elsewhere"
    result = _cli(str(tmp_path / "run"), "--min-visible-fraction", "0.1", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert json.loads((out / "audit.json").read_text())["ok"] is True


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    result = _cli(str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output
    write_shard(tmp_path / "run", [row(0)])
    result = _cli(str(tmp_path / "run"), "--scenes", str(tmp_path / "nope"))
    assert result.exit_code == 2 and "--scenes" in result.output
    result = _cli(str(tmp_path / "run"), "--max-repeated-fact-share", "1.5")
    assert result.exit_code == 2 and "--max-repeated-fact-share must be in [0, 1]" in result.output


# --------------------------------------------------------------------------------------------
# a real (small) engine run
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def engine_run(all_tasks_run) -> Path:
    return all_tasks_run


def test_audit_of_an_engine_run(engine_run, engine_scene_dirs):
    from vst.engine.audit import audit_shards
    from vst.engine.registry import task_names
    from vst.engine.writer import list_shards

    report = audit_shards(list_shards(engine_run), scenes=Path(engine_scene_dirs[0]).parent)
    assert set(report.tasks) == set(task_names())
    assert report.checks["scenes"] == {"samples_without_scene": {}}
    for task, checks in report.tasks.items():
        # the engine's targets keep their prompts' promises
        assert checks["instructions"]["violating_samples"] == 0, (task, checks["instructions"])
        vis = checks["visibility"]
        if task in ("mi_camera_camera", "mi_camera_motion"):  # no object referents
            assert vis == {"status": NOT_RECORDED}, task
        else:  # every referent is at least as visible as the engine's default requires
            assert 0.5 <= vis["min"] <= 1.0 and vis["share_below"] == 0.0, (task, vis)
    assert "floor_coverage" in report.tasks["video_metric"]
    md = render_markdown(report)
    assert md.count("\n| ") == len(report.tasks) + 1  # header + one row per task
