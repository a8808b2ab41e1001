"""`vst eval score` on other harnesses' outputs: lmms-eval ``--log_samples`` JSONL and
VLMEvalKit result tables, mapped to item ids and re-scored (scores worked out by hand)."""

from __future__ import annotations

import csv
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vst.cli import app
from vst.eval.adapters import AdapterError, detect_format, read_replies
from vst.eval.benchmarks.cvbench import CVBench
from vst.eval.benchmarks.threedsr import ThreeDSRBench
from vst.testing.bench_fixtures_3dsr import ROWS, write_3dsr_tsv
from vst.testing.bench_fixtures_blink import BLINK_ROWS, write_blink
from vst.testing.bench_fixtures_cvbench import CVBENCH_ROWS, write_cvbench
from vst.testing.bench_fixtures_mmsi import ROWS as MMSI_ROWS
from vst.testing.bench_fixtures_mmsi import write_mmsi_parquet

# CV-Bench id -> reply; by hand (see tests/test_bench_cvbench.py): official / lmms_eval hits
# 2D-0 1/0, 2D-1 1/0, 2D-2 0/0, 3D-0 1/1, 3D-1 0/0 -> official (mean(ADE 2/2, COCO 0/1) + 1/2)/2
CV_REPLIES = {"2D-0": "2", "2D-1": "The answer is (A).", "2D-2": "A", "3D-0": "B", "3D-1": ""}

# 3DSRBench qid -> reply; hits by hand in tests/test_bench_3dsr.py
SR_REPLIES = {
    "h0000001": "A",
    "h0000001-1": "B",
    "h0000001-flip": "The answer is B.",
    "h0000001-flip-1": "B",
    "l0000002": "C",
    "l0000002-1": "<<garbage>>",
    "o0000003": "Answer: B, because A is wrong",
    "o0000003-1": "yes",
    "m0000004": "(A)",
    "m0000004-1": "B.",
}
SR_VARIANTS = {
    "official": 2 / 5,
    "vanilla": 7 / 10,
    "flip_eval": 5 / 8,
    "flip_circ_eval": 1 / 4,
    "lmms_eval": 7 / 10,
    "lmms_eval_circular": 2 / 5,
}


def _score(tmp_path: Path, bench: str, data_root: Path, predictions: Path) -> Any:
    return CliRunner().invoke(
        app,
        [
            "eval",
            "score",
            bench,
            "--predictions",
            str(predictions),
            "--data-root",
            str(data_root),
        ],
    )


def _lmms_line(doc_id: int, doc: dict[str, Any], target: str, reply: str) -> str:
    """One lmms-eval ``--log_samples`` record: raw ``resps`` and the filtered reply."""
    return json.dumps(
        {
            "doc_id": doc_id,
            "doc": doc,
            "target": target,
            "arguments": [[doc.get("prompt", ""), {"max_new_tokens": 16}]],
            "resps": [[reply]],
            "filtered_resps": [reply.strip()[:1]],  # a filter's output, ignored when resps exist
            "doc_hash": f"{doc_id:064x}",
            "prompt_hash": f"{doc_id + 1:064x}",
            "target_hash": f"{doc_id + 2:064x}",
            "exact_match": 0.0,
        }
    )


@pytest.fixture(scope="module")
def cv_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_cvbench(tmp_path_factory.mktemp("cvb") / "CV-Bench", "split")


@pytest.fixture(scope="module")
def sr_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("sr") / "3DSRBench"
    write_3dsr_tsv(root)
    return root


def _cv_lmms(path: Path) -> Path:
    """lmms-eval cv_bench samples (the HF ``test`` split, images dropped from ``doc``), plus a
    row of an idx the fixture lacks and a second row for 2D-0."""
    lines = []
    for n, (idx, typ, task, source, question, choices, letter) in enumerate(CVBENCH_ROWS):
        doc = {"idx": idx, "type": typ, "task": task, "source": source, "question": question}
        doc |= {"choices": choices, "answer": f"({letter})", "prompt": question}
        lines.append(_lmms_line(n, doc, f"({letter})", CV_REPLIES[f"{typ}-{idx}"]))
    lines.append(_lmms_line(5, {"idx": 99, "type": "2D"}, "(A)", "A"))
    lines.append(_lmms_line(6, {"idx": 0, "type": "2D"}, "(C)", "A"))  # duplicate: ignored
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_lmms_eval_cvbench_rescored(tmp_path: Path, cv_root: Path) -> None:
    path = _cv_lmms(tmp_path / "cv_bench_samples_2025-01-01T00-00-00.jsonl")
    got = read_replies(path, "cvbench", {i.id for i in CVBench().read(cv_root)})
    assert got.format == "lmms_eval"
    assert dict(got.pairs) == CV_REPLIES  # raw resps, not the filtered reply
    assert (got.rows, got.unmatched, got.duplicates, got.no_reply) == (7, 1, 1, 0)
    result = _score(tmp_path, "cvbench", cv_root, path)
    assert result.exit_code == 0, result.output
    assert "cvbench (lmms_eval file): 7 rows, 5 matched 5 items; 1 unmatched, 1 duplicate" in (
        result.output
    )
    lines = result.output.splitlines()
    assert lines[1].split() == ["official", "50.0"]  # official first
    assert "  lmms_eval      20.0" in lines  # micro: only 3D-0
    assert "  vlmevalkit_2d  50.0" in lines
    assert "  vlmevalkit_3d  50.0" in lines


def _vlmevalkit_table(path: Path, rows: list[dict[str, Any]], delimiter: str) -> Path:
    """A VLMEvalKit result table as pandas writes it (index=False), ``image`` dropped."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _cv_rows(kind: str) -> list[dict[str, Any]]:
    rows = []
    for idx, typ, task, source, question, choices, letter in CVBENCH_ROWS:
        if typ != kind:
            continue
        row: dict[str, Any] = {"index": idx, "question": question}
        row |= {chr(65 + k): c for k, c in enumerate(choices)}
        row |= {"answer": letter, "split": typ, "source": source, "task": task}
        row |= {"prompt": question, "prediction": CV_REPLIES[f"{typ}-{idx}"]}
        rows.append(row)
    return rows


def test_vlmevalkit_cvbench_2d_tsv_and_3d_csv(tmp_path: Path, cv_root: Path) -> None:
    two = _vlmevalkit_table(tmp_path / "Qwen2.5-VL-3B_CV-Bench-2D.tsv", _cv_rows("2D"), "\t")
    result = _score(tmp_path, "cvbench", cv_root, two)
    assert result.exit_code == 0, result.output
    assert "(vlmevalkit file): 3 rows, 3 matched 5 items; 0 unmatched" in result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["official", "-"]  # no 3D half
    assert "  vlmevalkit_2d  50.0" in lines  # mean(ADE20K 2/2, COCO 0/1)
    three = _vlmevalkit_table(tmp_path / "Qwen2.5-VL-3B_CV-Bench-3D.csv", _cv_rows("3D"), ",")
    got = read_replies(three, "cvbench", {i.id for i in CVBench().read(cv_root)})
    assert dict(got.pairs) == {"3D-0": "B", "3D-1": ""}  # empty cell -> empty reply
    result = _score(tmp_path, "cvbench", cv_root, three)
    assert "  vlmevalkit_3d  50.0" in result.output.splitlines()


def _sr_rows(with_prediction: bool = True) -> list[dict[str, Any]]:
    rows = []
    for k, (qid, category, question, options, answer) in enumerate(ROWS):
        row: dict[str, Any] = {"index": k, "qid": qid, "question": question}
        row |= {letter: text for letter, text in zip("ABCD", (*options, "", ""), strict=False)}
        row |= {"answer": answer, "category": category}
        if with_prediction:
            row["prediction"] = SR_REPLIES[qid]
        rows.append(row)
    return rows


def _variants(output: str) -> dict[str, float]:
    out = {}
    for line in output.splitlines()[1:]:
        name, value = line.split()
        out[name] = float(value) / 100
    return out


def test_vlmevalkit_3dsrbench_tsv(tmp_path: Path, sr_root: Path) -> None:
    rows = _sr_rows()
    rows.append({**rows[0], "index": 77})  # not in the benchmark
    rows[3]["prediction"] = 'A\tthen\n"B"'  # tabs, newlines, quotes survive the TSV
    path = _vlmevalkit_table(tmp_path / "Qwen2.5-VL-3B_3DSRBench.tsv", rows, "\t")
    got = read_replies(path, "3dsrbench", {i.id for i in ThreeDSRBench().read(sr_root)})
    assert got.pairs[3] == ("3", 'A\tthen\n"B"')
    rows[3]["prediction"] = SR_REPLIES["h0000001-flip-1"]
    path = _vlmevalkit_table(path, rows, "\t")
    result = _score(tmp_path, "3dsrbench", sr_root, path)
    assert result.exit_code == 0, result.output
    assert "3dsrbench (vlmevalkit file): 11 rows, 10 matched 10 items; 1 unmatched" in (
        result.output
    )
    assert _variants(result.output) == pytest.approx(SR_VARIANTS, abs=5e-4)


@pytest.mark.parametrize("old_layout", [False, True])
def test_lmms_eval_3dsrbench(tmp_path: Path, sr_root: Path, old_layout: bool) -> None:
    records = [
        json.loads(_lmms_line(k, {**row, "index": str(row["index"])}, row["answer"], reply))
        for k, row in enumerate(_sr_rows(with_prediction=False))
        for reply in [SR_REPLIES[row["qid"]]]
    ]
    if old_layout:  # older lmms-eval: one JSON object with the records under "logs"
        path = tmp_path / "threedsrbench.json"
        path.write_text(json.dumps({"args": {}, "logs": records}), encoding="utf-8")
    else:
        path = tmp_path / "threedsrbench_samples.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    assert detect_format(path) == "lmms_eval"
    result = _score(tmp_path, "3dsrbench", sr_root, path)
    assert result.exit_code == 0, result.output
    assert "10 rows, 10 matched 10 items; 0 unmatched" in result.output
    assert _variants(result.output) == pytest.approx(SR_VARIANTS, abs=5e-4)


def test_vst_predictions_still_scored(tmp_path: Path, sr_root: Path) -> None:
    lines = [json.dumps({"id": str(k), "text": SR_REPLIES[r[0]]}) for k, r in enumerate(ROWS)]
    lines.insert(0, json.dumps({"id": "0", "text": None, "error": "timeout"}))  # failed, retried
    lines.append('{"id": "3", "te')  # a killed run's torn last line
    path = tmp_path / "3dsrbench.predictions.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_replies(path, "3dsrbench", {str(k) for k in range(len(ROWS))})
    assert (got.format, len(got.pairs), got.no_reply, got.unmatched) == ("vst", 10, 1, 1)
    result = _score(tmp_path, "3dsrbench", sr_root, path)
    assert result.exit_code == 0, result.output
    assert _variants(result.output)["official"] == pytest.approx(0.4)


@pytest.mark.skipif(importlib.util.find_spec("openpyxl") is not None, reason="openpyxl present")
def test_xlsx_without_openpyxl_names_file_and_package(tmp_path: Path, sr_root: Path) -> None:
    path = tmp_path / "Qwen2.5-VL-3B_3DSRBench.xlsx"
    path.write_bytes(b"PK\x03\x04 not really")
    result = _score(tmp_path, "3dsrbench", sr_root, path)
    assert result.exit_code == 2
    message = "".join(result.output.split())  # rich wraps long lines
    assert "Qwen2.5-VL-3B_3DSRBench.xlsx:reading.xlsxneedstheopenpyxlpackage" in message


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("out.jsonl", "this is not json\n", "first line is not JSON"),
        ("out.jsonl", '{"foo": 1}\n', "not a vst predictions JSONL"),
        ("out.jsonl", "", "empty file"),
        ("s.jsonl", '{"doc_id": 0, "doc": {"index": 0}}\n[1]\n', "a record has no doc_id"),
        ("s.jsonl", '{"doc_id": 0, "doc": {}}\nnot json\n', "line 2: not JSON"),
        ("m_3DSRBench.tsv", "index\tquestion\n0\tQ?\n", "no 'prediction' column"),
    ],
)
def test_bad_files_one_line_naming_file(
    tmp_path: Path, sr_root: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(AdapterError, match=message) as info:
        read_replies(path, "3dsrbench", {"0"})
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    result = _score(tmp_path, "3dsrbench", sr_root, path)
    assert result.exit_code == 2 and "--predictions" in result.output


def test_missing_file_and_unsupported_benchmark(tmp_path: Path) -> None:
    with pytest.raises(AdapterError, match="no such file"):
        read_replies(tmp_path / "nope.jsonl", "3dsrbench", {"0"})
    path = tmp_path / "m_VSTP.tsv"
    path.write_text("index\tprediction\n0\tA\n", encoding="utf-8")
    with pytest.raises(AdapterError, match="not vstp"):
        read_replies(path, "vstp", {"0"})


def test_ids_from_numbers_in_any_spelling(tmp_path: Path) -> None:
    path = tmp_path / "m_MMSI_Bench.csv"
    path.write_text("index,prediction\n3.0,A\n4,B\n,C\n", encoding="utf-8")
    got = read_replies(path, "mmsi", {"3", "4"})
    assert got.pairs == [("3", "A"), ("4", "B")] and got.unmatched == 1


def _lmms_new(doc_id: int, reply: str, target: str, metrics: dict[str, Any]) -> str:
    """A record as current lmms-eval writes it: ``doc`` and ``arguments`` dropped, ``resps``
    dropped because it equals ``filtered_resps``, the metric entries kept."""
    record = {"doc_id": doc_id, "target": target, "filtered_resps": [reply]}
    record |= {"doc_hash": "0" * 64, "prompt_hash": "1" * 64, "target_hash": "2" * 64}
    record |= {"input": "<image>question", **metrics}
    return json.dumps(record)


def test_lmms_eval_current_layout_cvbench(tmp_path: Path, cv_root: Path) -> None:
    lines = []
    for n, (idx, typ, task, source, _q, _c, letter) in enumerate(CVBENCH_ROWS):
        reply = CV_REPLIES[f"{typ}-{idx}"]
        entry = {"id": idx, "gt_content": letter, "pred_parsed": reply[:1], "pred": reply}
        entry |= {"type": typ, "task": task, "source": source, "is_correct": False}
        lines.append(_lmms_new(n, reply, f"({letter})", {"cv_bench_acc": entry}))
    lines.append(_lmms_new(9, "A", "(A)", {"cv_bench_acc": {"score": 1}}))  # no id: unmatched
    path = tmp_path / "20250101_000000_samples_cv_bench.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _score(tmp_path, "cvbench", cv_root, path)
    assert result.exit_code == 0, result.output
    assert "6 rows, 5 matched 5 items; 1 unmatched" in result.output
    assert result.output.splitlines()[1].split() == ["official", "50.0"]


# MMSI-Bench id -> reply; hits by hand in tests/test_bench_mmsi.py: official 4/9, lmms-eval 5/9
MMSI_REPLIES = {
    "0": "`B`",
    "1": "``C``",
    "2": "The answer is {D}.",
    "3": "b",
    "4": "e.g. B",
    "5": "<<garbage>>",
    "6": "`A` or maybe `B`",
    "7": "",
    "8": "I choose d.",
}


def test_lmms_eval_mmsi_question_id(tmp_path: Path) -> None:
    write_mmsi_parquet(tmp_path / "mmsi")
    lines = []
    for qid, qtype, answer, _n in MMSI_ROWS:
        entry = {"question_id": qid, "l2_category": qtype, "score": 0}
        reply = MMSI_REPLIES[str(qid)]
        lines.append(_lmms_new(qid, reply, answer, {qtype: entry, "average": entry}))
    path = tmp_path / "samples_msr.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _score(tmp_path, "mmsi", tmp_path / "mmsi", path)
    assert result.exit_code == 0, result.output
    assert "9 rows, 9 matched 9 items; 0 unmatched" in result.output
    assert _variants(result.output) == pytest.approx(
        {"official": 4 / 9, "lmms_eval": 5 / 9}, abs=5e-4
    )


# BLINK id -> reply (tests/test_bench_blink.py); every other item answered right, "(X)"
BLINK_REPLIES = {
    "val_Relative_Depth_1": "B",
    "val_Relative_Depth_2": "(A) point A is closer",
    "val_Counting_1": "The answer is (C).",
    "val_Spatial_Relation_1": "yes",
    "val_Visual_Correspondence_1": "",
    "val_Multi-view_Reasoning_1": "A",
    "val_IQ_Test_1": "I think (A) or (B).\n\n(B)",
    "val_Jigsaw_1": "B",
}


def test_lmms_eval_blink_all_subtasks_concatenated(tmp_path: Path) -> None:
    root = write_blink(tmp_path / "BLINK")
    lines, counts = [], {}
    for sub, _q, _c, letter, _k in BLINK_ROWS:  # lmms-eval logs one file per subtask task;
        counts[sub] = counts.get(sub, 0) + 1  # the user concatenates them
        idx = f"val_{sub}_{counts[sub]}"
        reply = BLINK_REPLIES.get(idx, f"({letter})")
        entry = {"id": idx, "gt_content": letter, "pred": reply, "sub_task": sub}
        lines.append(_lmms_new(counts[sub] - 1, reply, f"({letter})", {"blink_acc": entry}))
    path = tmp_path / "blink_samples.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = _score(tmp_path, "blink", root, path)
    assert result.exit_code == 0, result.output
    assert "15 rows, 15 matched 15 items" in result.output
    got = _variants(result.output)
    # official 11.5 / 14 (macro), lmms-eval 8.5 / 14 (macro), VLMEvalKit 11 / 15 (micro)
    assert got["official"] == pytest.approx(11.5 / 14, abs=5e-4)
    assert got["lmms_eval"] == pytest.approx(8.5 / 14, abs=5e-4)
    assert got["vlmevalkit"] == pytest.approx(11 / 15, abs=5e-4)


def test_lmms_record_without_any_id_is_unmatched(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    path.write_text('{"doc_id": 0, "resps": [["A"]], "acc": 1.0}\n', encoding="utf-8")
    got = read_replies(path, "3dsrbench", {"0"})
    assert (got.rows, got.unmatched, got.pairs) == (1, 1, [])


def test_lmms_eval_vsibench_row_logged_whole(tmp_path: Path) -> None:
    # VSI-Bench's process_results logs the whole row (with ``prediction``) as the metric entry
    row = {"id": 12, "dataset": "arkitscenes", "scene_name": "41069025", "question": "Q?"}
    row |= {"question_type": "object_counting", "ground_truth": "3", "prediction": "3"}
    lines = [_lmms_new(0, "3", "3", {"vsibench_score": row})]
    lines.append(_lmms_new(1, "4", "4", {"vsibench_score": {**row, "id": 13}}))
    path = tmp_path / "samples_vsibench.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    got = read_replies(path, "vsibench", {"12"})
    assert (got.pairs, got.unmatched) == ([("12", "3")], 1)
