"""MMSI-Bench (RunsenXu/MMSI-Bench): multi-image spatial reasoning, 1,000 four-option MCQs.

File: ``MMSI_Bench.parquet`` under ``data_root`` (or ``data_root/MMSI-Bench``,
``data_root/MMSI_Bench``), columns ``id``, ``images`` (a list of encoded images, 2+ per item:
raw bytes or HF Image structs), ``question_type``, ``question`` (the options are embedded in the
question text), ``answer`` (a letter), ``thought`` (unused); newer copies add
``mean_normed_duration_seconds`` and ``difficulty`` (kept in ``fields``). ``images`` may be null
(the README's loader allows it: the item is sent without images). A row with an empty
question or an answer that is not one capital letter is a :class:`BenchmarkDataError` naming
the file and the row (the official scorer skips nothing). Category names are normalised to the
EN DASH the card uses (``Cam.-Obj.`` -> ``Cam.–Obj.``), as lmms-eval does.

Prompt (MMSI README; the fork's ``MMSIBenchDataset``): every image, then
``{question}\\nAnswer with the option's letter from the given choices directly. Enclose the
option's letter within ``.`` (lmms-eval strips the question first; same text for the released
questions).

Rules (per item):

* ``official`` (the function in the MMSI README, checked there): three narrowings applied IN
  SEQUENCE, each to the previous result when it matches: the text inside the first pair of
  double backticks (no backtick inside), then inside the first pair of single backticks, then
  inside the first pair of braces; then the first match of
  ``\\b[A-D]\\b(?!\\s[a-zA-Z])`` (case-sensitive; a letter followed by a space and a word,
  like "A bike", is skipped); right when it equals the answer (compared lower-cased); no
  match is wrong. (BENCHMARKS.md words the narrowings as alternatives; the README code chains
  them.) The README names an LLM fallback that the fork's code leaves commented out
  (UNVERIFIED here); vst has none.
* ``lmms_eval``: the same pipeline with ``[A-F]`` and IGNORECASE (more lenient); the matched
  letter upper-cased and compared case-insensitively (checked against a copy of lmms-eval's
  ``tasks/mmsi_bench/utils.py`` in the code index, commit not pinned).

The scorers' further checks (a prediction starting ``(``, ``option `` or ``the answer is ``) run
on the single extracted letter, so they never change a score; vst leaves them out.

Aggregation: exact-match accuracy over all items (micro) for each rule, per-category accuracy
for both. Not done: upstream VLMEvalKit's
``MMSIBench_wo_circular`` (options in letter columns) and the circular variant (OpenCompass
leaderboard; not comparable), and the VLMEvalKit TSV ``MMSI_bench.tsv``.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.eval.benchmarks.encoded_images import image_from_cell
from vst.eval.benchmarks.tables import iter_parquet_rows
from vst.models.backends.base import Sampling
from vst.models.requests import Request

__all__ = ["FILE", "POST_PROMPT", "MMSIBench", "mmsi_choice", "normalize_category"]

FILE = "MMSI_Bench.parquet"
POST_PROMPT = (
    "Answer with the option's letter from the given choices directly. "
    "Enclose the option's letter within ``."
)
"""The official post-prompt, appended after a newline."""

_REQUIRED = ("id", "images", "question_type", "question", "answer")
_NARROW = (re.compile(r"``([^`]*)``"), re.compile(r"`([^`]*)`"))
_OFFICIAL = re.compile(r"\b[A-D]\b(?!\s[a-zA-Z])")
_LENIENT = re.compile(r"\b[A-F]\b(?!\s[a-zA-Z])", re.IGNORECASE)
_DASH = re.compile(r"(?<=\.)\s*[-‐‑‒—]\s*(?=[A-Z])")


def normalize_category(name: str) -> str:
    """A category name with hyphen-like dashes between abbreviations made EN DASH."""
    return _DASH.sub("–", name.strip())


def _inside_braces(text: str) -> str:
    """What ``re.search(r"\\{([^}]*)\\}", text)`` narrows to (the text between the first ``{``
    and the first ``}`` after it; ``text`` unchanged when there is none), in linear time: the
    regex rescans to the end from every ``{`` of a reply with no ``}`` (quadratic)."""
    start = text.find("{")
    if start < 0:
        return text
    end = text.find("}", start + 1)
    return text if end < 0 else text[start + 1 : end]


def mmsi_choice(reply: object, lenient: bool = False) -> str | None:
    """The letter MMSI's official extraction takes from ``reply`` (the three narrowings in
    sequence, then the letter regex; ``lenient``: lmms-eval's ``[A-F]`` case-insensitive
    version, upper-cased), or None. Never raises."""
    if not isinstance(reply, str):
        return None
    text = reply
    for pattern in _NARROW:
        m = pattern.search(text)
        if m:
            text = m.group(1)
    text = _inside_braces(text)
    m = (_LENIENT if lenient else _OFFICIAL).search(text)
    if not m:
        return None
    return m.group(0).upper() if lenient else m.group(0)


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value)
    return text if text.strip() else None


class MMSIBench(Benchmark):
    """MMSI-Bench with the official backtick + regex extraction and lmms-eval's lenient one."""

    name = "mmsi"
    sampling = Sampling(max_tokens=2048)  # greedy, lmms-eval's max_new_tokens

    def find_file(self, data_root: Path) -> Path:
        """``MMSI_Bench.parquet`` under ``data_root`` (or its MMSI folder)."""
        root = Path(data_root)
        for folder in (root, root / "MMSI-Bench", root / "MMSI_Bench"):
            if (folder / FILE).is_file():
                return folder / FILE
        raise BenchmarkDataError(f"{root}: no MMSI-Bench file found (expected {FILE})")

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        """Items in file order; ``id`` = the ``id`` column, ``truth`` the answer letter,
        ``fields``: category (normalised question_type)."""
        path = self.find_file(data_root)
        seen: set[str] = set()
        for n, row in iter_parquet_rows(path, _REQUIRED):
            yield self._item(row, f"{path} row {n}", path.parent, seen)

    def _item(self, row: Mapping[str, Any], where: str, root: Path, seen: set[str]) -> BenchItem:
        qid, question = _text(row.get("id")), _text(row.get("question"))
        category = _text(row.get("question_type"))
        answer = (_text(row.get("answer")) or "").strip()
        if qid is None or question is None or category is None:
            raise BenchmarkDataError(f"{where}: empty id, question or question_type")
        if qid in seen:
            raise BenchmarkDataError(f"{where}: duplicate id {qid!r}")
        seen.add(qid)
        if len(answer) != 1 or not ("A" <= answer <= "Z"):
            raise BenchmarkDataError(f"{where}: answer {answer!r} is not an option letter")
        cells = row.get("images")
        if cells is None:
            cells = []  # the README's loader allows a row without images
        if not isinstance(cells, list):
            raise BenchmarkDataError(f"{where}: 'images' is not a list")
        images = tuple(image_from_cell(c, f"{where} image {k}", root) for k, c in enumerate(cells))
        content: list[dict[str, Any]] = [{"type": "image"} for _ in images]
        content.append({"type": "text", "text": f"{question}\n{POST_PROMPT}"})
        request = Request(messages=[{"role": "user", "content": content}], images=images, id=qid)
        fields: dict[str, Any] = {"category": normalize_category(category), "images": len(images)}
        if _text(row.get("difficulty")) is not None:
            fields["difficulty"] = str(row["difficulty"])
        return BenchItem(id=qid, request=request, truth=answer, fields=fields)

    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        """``parsed`` = the official letter (None when none); ``official`` and ``lmms_eval``
        scores are 1.0 for the right letter, else 0.0."""
        truth = str(item.truth)
        official = mmsi_choice(reply)
        lenient = mmsi_choice(reply, lenient=True)
        return JudgedItem(
            id=item.id,
            fields=item.fields,
            truth=item.truth,
            parsed=official,
            scores={"official": float(official == truth), "lmms_eval": float(lenient == truth)},
        )

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        """Micro accuracy per rule, per-category accuracy for each."""
        variants = {rule: _mean(judged, rule) for rule in ("official", "lmms_eval")}
        breakdown = {
            "category": _per_category(judged, "official"),
            "lmms_eval_category": _per_category(judged, "lmms_eval"),
        }
        return BenchScore(
            benchmark=self.name,
            official=variants["official"],
            variants=variants,
            breakdown=breakdown,
            items=len(judged),
            notes=(
                "official = exact-match accuracy over all items with the backtick + "
                "case-sensitive [A-D] regex extraction (MMSI README), non-circular",
                "lmms_eval = the same with [A-F] case-insensitive (more lenient)",
                "the OpenCompass leaderboard's circular number is not comparable",
            ),
        )

    def describe(self) -> dict[str, Any]:
        """Protocol facts for the report."""
        return {
            **super().describe(),
            "prompt": "images, then the question + '\\n' + the official post-prompt",
            "post_prompt": POST_PROMPT,
            "extraction": "backtick/brace narrowing, then \\b[A-D]\\b(?!\\s[a-zA-Z])",
            "aggregation": "micro accuracy; per question_type",
            "sources": ["InternRobotics/MMSI-Bench README", "lmms-eval tasks/mmsi_bench"],
        }


def _mean(judged: Sequence[JudgedItem], rule: str) -> float | None:
    scores = [j.scores[rule] for j in judged if j.scores.get(rule) is not None]
    return sum(scores) / len(scores) if scores else None


def _per_category(judged: Sequence[JudgedItem], rule: str) -> dict[str, float]:
    acc: dict[str, list[float]] = defaultdict(list)
    for j in judged:
        score = j.scores.get(rule)
        if score is not None:
            acc[str(j.fields.get("category", ""))].append(float(score))
    return {k: sum(v) / len(v) for k, v in sorted(acc.items())}
