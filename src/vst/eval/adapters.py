"""Read other harnesses' per-sample outputs so ``vst eval score`` can re-score them.

Three formats, detected from the file (:func:`detect_format`):

- ``vst``: vst's predictions JSONL (``{"id": ..., "text": ...}`` per line).
- ``lmms_eval``: lmms-eval's ``--log_samples`` output (``{date}_samples_{task}.jsonl``), one
  JSON object per line with ``doc_id``, ``target``, ``filtered_resps`` (after the task's
  filter, ``[text]``), ``resps`` (the raw generations, ``[[text]]``; dropped by newer versions
  when equal to the filtered ones), hashes, ``input`` and one entry per metric holding what
  the task's ``process_results`` logged (CV-Bench and BLINK: ``{"id": idx, ...}``,
  MMSI-Bench: ``{"question_id": id, ...}``, VSI-Bench: the whole row with ``id`` and
  ``prediction``). Older versions also kept ``doc`` (the dataset
  row, images dropped) and ``arguments``, or wrote one JSON object whose ``logs`` list holds
  the records. The raw ``resps`` reply is re-scored (the filtered one only when ``resps`` is
  absent), so vst's extraction rules see what the model said.
- ``vlmevalkit``: VLMEvalKit's ``{model}_{dataset}.xlsx`` / ``.tsv`` / ``.csv`` result table,
  the dataset's columns plus ``prediction``. TSV/CSV are read with the standard library;
  ``.xlsx`` needs pandas with openpyxl.

Each row is mapped to a benchmark item id the way the benchmark module builds it
(:data:`ID_RULES`): CV-Bench ``"{type}-{idx}"``, 3DSRBench ``index``, BLINK ``idx``, MMSI-Bench
``id``, VSI-Bench ``id``. Rows whose id is not among the benchmark's items are counted as
unmatched, never guessed: ``doc_id`` (a position in the split lmms-eval loaded, which
its tasks may shuffle or filter) is not used.

UNVERIFIED: VLMEvalKit's CV-Bench tables (``CV-Bench-2D`` / ``CV-Bench-3D``) carry the
2D/3D ``split`` column and an ``index``; that ``index`` equals CV-Bench's ``idx`` is assumed
(an ``idx`` column is preferred when present). VLMEvalKit's BLINK table has no ``idx`` column,
so its rows match only when ``idx`` is present. For MMSI-Bench and VSI-Bench, VLMEvalKit's
``index`` is assumed to equal the dataset ``id`` when no ``id`` column is present.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["AdapterError", "Replies", "detect_format", "read_replies"]

FORMATS = ("vst", "lmms_eval", "vlmevalkit")
_TABLE_SUFFIXES = (".xlsx", ".tsv", ".csv")


class AdapterError(ValueError):
    """The predictions file cannot be read: one line naming the file."""


@dataclass
class Replies:
    """What a predictions file gave: ``pairs`` (item id, reply) in file order, the first reply
    per item kept; ``rows`` read, ``unmatched`` rows (no item of the benchmark),
    ``duplicates`` (a second row for an item) and ``no_reply`` rows (vst failures)."""

    format: str
    pairs: list[tuple[str, str]] = field(default_factory=list)
    rows: int = 0
    unmatched: int = 0
    duplicates: int = 0
    no_reply: int = 0


def _scalar(value: Any) -> str | None:
    """A cell as an id string (``3``, ``3.0`` and ``"3"`` all give ``"3"``); None if empty."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if value != value:
            return None
        if value.is_integer():
            return str(int(value))
    text = str(value).strip()
    if text.endswith(".0") and text[:-2].lstrip("-").isdigit():
        text = text[:-2]
    return text or None


def _cvbench_id(row: Mapping[str, Any], dataset: str) -> str | None:
    kind = _scalar(row.get("type")) or _scalar(row.get("split"))
    if kind not in ("2D", "3D"):
        name = dataset.upper()
        kind = "2D" if "2D" in name else "3D" if "3D" in name else None
    idx = _first("idx", "id", "index")(row, dataset)
    return f"{kind}-{idx}" if kind and idx is not None else None


def _first(*keys: str) -> Callable[[Mapping[str, Any], str], str | None]:
    def rule(row: Mapping[str, Any], dataset: str) -> str | None:
        for key in keys:
            value = _scalar(row.get(key))
            if value is not None:
                return value
        return None

    return rule


ID_RULES: dict[str, Callable[[Mapping[str, Any], str], str | None]] = {
    "cvbench": _cvbench_id,
    "3dsrbench": _first("index"),
    "blink": _first("idx", "id"),
    "mmsi": _first("id", "question_id", "index"),
    "vsibench": _first("id", "index"),
}
"""Benchmark name -> (row, dataset name from the file name) -> item id."""


def _first_record(path: Path, text: str) -> Any:
    stripped = text.lstrip()
    if stripped.startswith("{") and not path.name.endswith(".jsonl"):
        try:
            return json.loads(stripped)
        except ValueError:
            pass
    for line in text.splitlines():
        if line.strip():
            try:
                return json.loads(line)
            except ValueError:
                raise AdapterError(f"{path}: first line is not JSON") from None
    raise AdapterError(f"{path}: empty file")


def detect_format(path: Path, text: str | None = None) -> str:
    """``vst``, ``lmms_eval`` or ``vlmevalkit``, from the suffix and the first record."""
    if path.suffix.lower() in _TABLE_SUFFIXES:
        return "vlmevalkit"
    if text is None:
        text = _read_text(path)
    first = _first_record(path, text)
    if isinstance(first, dict):
        if "doc_id" in first or isinstance(first.get("logs"), list):
            return "lmms_eval"
        if "id" in first and "text" in first:
            return "vst"
    raise AdapterError(
        f"{path}: not a vst predictions JSONL, an lmms-eval samples JSONL or a VLMEvalKit "
        "table (.xlsx/.tsv/.csv)"
    )


def _read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AdapterError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise AdapterError(f"{path}: not UTF-8 text") from None


def _json_lines(path: Path, text: str) -> Iterator[Any]:
    for n, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                raise AdapterError(f"{path} line {n}: not JSON") from None


def _lmms_records(path: Path, text: str) -> Iterator[Any]:
    stripped = text.lstrip()
    if stripped.startswith("{") and not path.name.endswith(".jsonl"):
        try:
            whole = json.loads(stripped)
        except ValueError:
            whole = None
        if isinstance(whole, dict) and isinstance(whole.get("logs"), list):
            yield from whole["logs"]
            return
    yield from _json_lines(path, text)


def _lmms_reply(record: Mapping[str, Any]) -> str | None:
    """The raw generation (``resps[0][0]``), else the filtered one (``filtered_resps[0]``)."""
    for key in ("resps", "filtered_resps"):
        value = record.get(key)
        while isinstance(value, list) and value:
            value = value[0]
        if isinstance(value, str):
            return value
    return None


_LMMS_BOOKKEEPING = ("doc", "arguments", "resps", "filtered_resps", "target", "input")


def _lmms_id(
    record: Mapping[str, Any], rule: Callable[[Mapping[str, Any], str], str | None], dataset: str
) -> str | None:
    """The item id from ``doc`` (older lmms-eval) or else from the metric entries the task's
    ``process_results`` logs (newer lmms-eval drops ``doc``: e.g. CV-Bench / BLINK log
    ``{"id": idx, "type": ...}``, MMSI-Bench ``{"question_id": id, ...}``)."""
    doc = record.get("doc")
    sources = [doc] if isinstance(doc, dict) else []
    sources += [v for k, v in record.items() if k not in _LMMS_BOOKKEEPING and isinstance(v, dict)]
    for source in sources:
        item_id = rule(source, dataset)
        if item_id is not None:
            return item_id
    return None


def _table_rows(path: Path) -> list[dict[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".xlsx":
        for package in ("pandas", "openpyxl"):
            if importlib.util.find_spec(package) is None:
                raise AdapterError(
                    f"{path}: reading .xlsx needs the {package} package (pip install "
                    f"{package}); or give the .tsv/.csv VLMEvalKit also writes"
                )
        import pandas as pd

        try:
            frame = pd.read_excel(path, dtype=object)
        except Exception as exc:  # any reader failure is one line
            raise AdapterError(f"{path}: not a readable .xlsx ({exc})") from None
        return [dict(r) for r in frame.to_dict(orient="records")]
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # base64 image cells
    delimiter = "\t" if suffix == ".tsv" else ","
    try:
        with path.open(encoding="utf-8-sig", newline="") as fh:
            return list(csv.DictReader(fh, delimiter=delimiter))
    except OSError as exc:
        raise AdapterError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise AdapterError(f"{path}: not a readable {suffix[1:]} table ({exc})") from None


def _dataset_name(path: Path) -> str:
    return path.stem


def read_replies(path: Path, benchmark: str, item_ids: set[str] | Mapping[str, Any]) -> Replies:
    """The (item id, reply) pairs of ``path`` for ``benchmark``, whose items are ``item_ids``.

    Raises :class:`AdapterError` (one line naming the file) when the file is unreadable, of
    no known format, or lacks the columns its format needs.
    """
    path = Path(path)
    if not path.is_file():
        raise AdapterError(f"{path}: no such file")
    text = None if path.suffix.lower() in _TABLE_SUFFIXES else _read_text(path)
    fmt = detect_format(path, text)
    out = Replies(format=fmt)
    kept: dict[str, str] = {}

    def add(item_id: str | None, reply: str | None, last_wins: bool = False) -> None:
        out.rows += 1
        if item_id is None or item_id not in item_ids:
            out.unmatched += 1
        elif reply is None:
            out.no_reply += 1
        elif item_id in kept:
            out.duplicates += 1
            if last_wins:
                kept[item_id] = reply
        else:
            kept[item_id] = reply

    if fmt == "vst":  # a resumed run appends: the last line of an item wins, as on resume
        assert text is not None
        for line in text.splitlines():
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:  # a killed run's torn last line
                record = None
            if not isinstance(record, dict):
                add(None, None)
                continue
            item_id, reply = record.get("id"), record.get("text")
            add(
                item_id if isinstance(item_id, str) else None,
                reply if isinstance(reply, str) else None,
                last_wins=True,
            )
        out.pairs = list(kept.items())
        return out
    rule = ID_RULES.get(benchmark)
    if rule is None:
        raise AdapterError(
            f"{path}: {fmt} files can be re-scored for {', '.join(ID_RULES)}, not {benchmark}"
        )
    dataset = _dataset_name(path)
    if fmt == "lmms_eval":
        assert text is not None
        for record in _lmms_records(path, text):
            if not isinstance(record, dict) or "doc_id" not in record:
                raise AdapterError(f"{path}: a record has no doc_id (not lmms-eval samples)")
            add(_lmms_id(record, rule, dataset), _lmms_reply(record))
        out.pairs = list(kept.items())
        return out
    rows = _table_rows(path)
    if rows and "prediction" not in rows[0]:
        raise AdapterError(f"{path}: no 'prediction' column (not a VLMEvalKit result table)")
    for row in rows:
        prediction = row.get("prediction")
        if prediction is None or (isinstance(prediction, float) and prediction != prediction):
            prediction = ""
        add(rule(row, dataset), str(prediction))
    out.pairs = list(kept.items())
    return out
