"""3DSRBench (ccvl/3DSRBench): 3D spatial reasoning on MS-COCO images, 2- or 4-option MCQ.

Files (under ``data_root`` or ``data_root/3DSRBench``; the first found wins):

* ``3dsrbench_v1_vlmevalkit_circular.tsv`` -- the file the HF card says reproduces the paper
  (flip-augmented, circular option shifts); then ``3DSRBench.tsv`` (VLMEvalKit's own copy; name
  UNVERIFIED) and ``3dsrbench_v1_vlmevalkit.tsv`` (flips, no circular shifts).
  Tab-separated, columns ``index, qid, question, A, B, C, D, answer, category, image``
  (base64), ``image_source``, ``image_url``; ``C``/``D`` empty for 2-option questions.
* ``3dsrbench_v1-00000-of-00001.parquet`` + images: the same columns with ``image`` as bytes,
  an HF Image struct, or a path under the data root (e.g. from ``coco_images.zip``). The
  parquet's real columns are UNVERIFIED (BENCHMARKS.md only documents the TSV).

Empty option cells are skipped (VLMEvalKit reads the TSV with pandas' default NA strings, so
an option whose text is literally ``NA`` or ``None`` would vanish there; vst keeps such texts).
A malformed row (no such option letter as the answer, no image, duplicate ``index``) is a
:class:`BenchmarkDataError` naming the file and the row: the official script skips nothing.

Prompt: VLMEvalKit's Qwen2.5-VL custom prompt, which is what the VST paper ran (``use_custom_
prompt``): the image, then ``[Hint: {hint}\\n]Question: {question}\\nOptions:\\nA. {A}\\n...
Please select the correct answer from the options above.`` (rstripped). lmms-eval sends the
same text followed by `` \\n``.

Rules (per item, :meth:`ThreeDSRBench.judge`):

* ``official``: the hit VLMEvalKit's ``exact_matching`` extraction gives
  (:func:`~vst.eval.benchmarks.vlmevalkit_rules.vlmevalkit_choice`); the official scorer reads
  these hits from VLMEvalKit's result file. VLMEvalKit's default gpt-4o-mini judge would rescue
  some replies the rules cannot parse; vst calls no LLM judge (those score 0).
* ``lmms_eval``: lmms-eval's regexes (:func:`lmms_eval_choice`; checked against a copy of
  ``lmms_eval/tasks/3dsrbench/utils.py`` in the code index, commit not pinned), tried in order;
  upper-case letters only, so "the answer is b" gives nothing.

Aggregation (:meth:`ThreeDSRBench.aggregate`), fractions (the script prints x100, 1 decimal):

* ``official``: CircularEval with flipped questions as separate groups: the group key is the
  qid with a trailing ``-N`` removed; a group scores 1 only if every row in it is right; the
  mean over groups. Types/categories are means over their groups. (= VLMEvalKit ``circ_eval``.)
* ``vanilla``: mean over rows (pre-2025-06 VLMEvalKit's "Overall"; probably VST's "3DSR"
  column, an inference, UNVERIFIED).
* ``flip_eval``: groups keyed by the qid with ``-flip`` removed (circular rows separate).
* ``flip_circ_eval``: groups keyed by the 8-character base qid (every variant must be right).
* ``lmms_eval`` (row mean of lmms-eval hits) and ``lmms_eval_circular`` (official grouping).
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.eval.benchmarks.encoded_images import decode_b64_image, image_from_cell
from vst.eval.benchmarks.tables import iter_parquet_rows, iter_tsv_rows
from vst.eval.benchmarks.vlmevalkit_rules import vlmevalkit_choice
from vst.models.backends.base import Sampling
from vst.models.requests import Request

__all__ = [
    "CATEGORY_TYPES",
    "FILES",
    "ThreeDSRBench",
    "circular_key",
    "flip_circular_key",
    "flip_key",
    "lmms_eval_choice",
    "qwen_mcq_prompt",
]

FILES: tuple[str, ...] = (
    "3dsrbench_v1_vlmevalkit_circular.tsv",
    "3DSRBench.tsv",
    "3dsrbench_v1_vlmevalkit.tsv",
    "3dsrbench_v1-00000-of-00001.parquet",
)
"""Files looked for, in order of preference."""

CATEGORY_TYPES: dict[str, str] = {
    "height_higher": "height",
    "location_above": "location",
    "location_closer_to_camera": "location",
    "location_next_to": "location",
    "orientation_in_front_of": "orientation",
    "orientation_on_the_left": "orientation",
    "orientation_viewpoint": "orientation",
    "multi_object_closer_to": "multi_object",
    "multi_object_facing": "multi_object",
    "multi_object_parallel": "multi_object",
    "multi_object_same_direction": "multi_object",
    "multi_object_viewpoint_towards_object": "multi_object",
}
"""The 12 categories and their main type (lmms-eval ``CATEGORY_MAPPING``)."""

LETTERS = "ABCD"
_REQUIRED = ("index", "qid", "question", "A", "B", "answer", "category", "image")


def qwen_mcq_prompt(question: str, options: Mapping[str, str], hint: str | None = None) -> str:
    """VLMEvalKit's Qwen2.5-VL MCQ prompt: optional hint line, the question, the lettered
    options, the instruction; rstripped."""
    text = f"Hint: {hint}\n" if hint else ""
    text += f"Question: {question}\n"
    if options:
        text += "Options:\n" + "".join(f"{k}. {v}\n" for k, v in options.items())
        text += "Please select the correct answer from the options above. \n"
    return text.rstrip()


def circular_key(qid: str) -> str:
    """The official group: the qid without a trailing ``-N`` (circular shift); flips stay
    separate (``X-flip-2`` -> ``X-flip``)."""
    return qid[:-2] if len(qid) >= 2 and qid[-2] == "-" else qid


def flip_key(qid: str) -> str:
    """VLMEvalKit ``flip_eval``'s group: the qid with ``-flip`` removed."""
    return qid.replace("-flip", "")


def flip_circular_key(qid: str) -> str:
    """VLMEvalKit ``flip_circ_eval``'s group: the 8-character base question id."""
    return qid[:8]


_LMMS_PATTERNS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^([A-D])[.\s)]"),
    re.compile(r"^([A-D])$"),
    re.compile(r"[Aa]nswer[:\s]+([A-D])"),
    re.compile(r"[Tt]he answer is[:\s]+([A-D])"),
    re.compile(r"[Mm]y answer is[:\s]+([A-D])"),
    re.compile(r"\(([A-D])\)"),
    re.compile(r"([A-D])\."),
    re.compile(r"\b([A-D])\b"),
)


def lmms_eval_choice(reply: object) -> str | None:
    """The letter lmms-eval's 3DSRBench ``extract_answer`` takes from ``reply``: on the stripped
    reply, the first of these that matches (letters case-sensitive): a leading letter followed
    by ``.``, white space or ``)``; the letter alone; ``Answer: X`` / ``answer X``; ``The answer
    is X``; ``My answer is X``; ``(X)``; ``X.``; any stand-alone ``A``-``D``. Else None. Never
    raises."""
    if not isinstance(reply, str):
        return None
    text = reply.strip()
    for pattern in _LMMS_PATTERNS:
        m = pattern.search(text)
        if m:
            return m.group(1)
    return None


def _text(value: Any) -> str | None:
    """A cell as text; None for empty / missing cells."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    text = str(value)
    return text if text.strip() else None


class ThreeDSRBench(Benchmark):
    """3DSRBench with the official CircularEval (flips as separate groups) and the VLMEvalKit /
    lmms-eval variants (see the module docstring)."""

    name = "3dsrbench"
    sampling = Sampling(max_tokens=2048)  # greedy; VLMEvalKit Qwen2.5-VL default, UNVERIFIED

    def find_file(self, data_root: Path) -> Path:
        """The benchmark file under ``data_root`` (see :data:`FILES`)."""
        root = Path(data_root)
        for folder in (root, root / "3DSRBench", root / "3dsrbench"):
            for name in FILES:
                if (folder / name).is_file():
                    return folder / name
        raise BenchmarkDataError(
            f"{root}: no 3DSRBench file found (expected one of {', '.join(FILES)})"
        )

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        """Items in file order; ``id`` is the ``index`` column, ``truth`` the answer letter,
        ``fields``: qid, category, type, options (letter -> text), group (official key)."""
        path = self.find_file(data_root)
        if path.suffix == ".tsv":
            rows = iter_tsv_rows(path, _REQUIRED)
        else:
            rows = iter_parquet_rows(path, _REQUIRED)
        seen: set[str] = set()
        for n, row in rows:
            where = f"{path} row {n}"
            yield self._item(row, where, path.suffix == ".tsv", path.parent, seen)

    def _item(
        self, row: Mapping[str, Any], where: str, b64: bool, root: Path, seen: set[str]
    ) -> BenchItem:
        index, qid = _text(row.get("index")), _text(row.get("qid"))
        question, category = _text(row.get("question")), _text(row.get("category"))
        if index is None or qid is None or question is None or category is None:
            raise BenchmarkDataError(f"{where}: empty index, qid, question or category")
        if index in seen:
            raise BenchmarkDataError(f"{where}: duplicate index {index!r}")
        seen.add(index)
        options: dict[str, str] = {}
        for letter in LETTERS:
            value = _text(row.get(letter))
            if value is not None:  # empty letters are skipped, as VLMEvalKit does
                options[letter] = value
        answer = (_text(row.get("answer")) or "").strip()
        if len(options) < 2 or answer not in options:
            raise BenchmarkDataError(
                f"{where}: answer {answer!r} is not one of the options {''.join(options)}"
            )
        cell = row.get("image")
        image = decode_b64_image(cell, where) if b64 else image_from_cell(cell, where, root)
        prompt = qwen_mcq_prompt(question, options, _text(row.get("hint")))
        request = Request(
            messages=[
                {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": prompt}]}
            ],
            images=(image,),
            id=index,
        )
        fields = {
            "qid": qid,
            "category": category,
            "type": CATEGORY_TYPES.get(category, "other"),
            "options": options,
            "group": circular_key(qid),
        }
        return BenchItem(id=index, request=request, truth=answer, fields=fields)

    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        """``parsed`` = the official (VLMEvalKit) letter, ``"Z"`` when none; scores
        ``official`` and ``lmms_eval`` are 1.0 for the right letter, else 0.0."""
        options = item.fields.get("options") or {}
        truth = str(item.truth)
        official = vlmevalkit_choice(reply, options)
        lmms = lmms_eval_choice(reply)
        return JudgedItem(
            id=item.id,
            fields=item.fields,
            truth=item.truth,
            parsed=official,
            scores={"official": float(official == truth), "lmms_eval": float(lmms == truth)},
        )

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        """Official CircularEval (flips separate) with per-type and per-category breakdowns,
        and the variants of the module docstring."""
        variants: dict[str, float | None] = {
            "official": _grouped(judged, "official", circular_key),
            "vanilla": _grouped(judged, "official", None),
            "flip_eval": _grouped(judged, "official", flip_key),
            "flip_circ_eval": _grouped(judged, "official", flip_circular_key),
            "lmms_eval": _grouped(judged, "lmms_eval", None),
            "lmms_eval_circular": _grouped(judged, "lmms_eval", circular_key),
        }
        breakdown = {
            "type": _grouped_by(judged, "type", circular_key),
            "category": _grouped_by(judged, "category", circular_key),
            "vanilla_type": _grouped_by(judged, "type", None),
        }
        return BenchScore(
            benchmark=self.name,
            official=variants["official"],
            variants=variants,
            breakdown=breakdown,
            items=len(judged),
            notes=(
                "official = CircularEval with flipped questions as separate groups "
                "(compute_3drbench_results_circular.py); the script prints x100 rounded to 1 "
                "decimal",
                "extraction = VLMEvalKit exact_matching rules without an LLM judge",
                "vanilla (row accuracy) is what VLMEvalKit printed before 2025-06 and probably "
                "the VST paper's 3DSR column (UNVERIFIED)",
            ),
        )

    def describe(self) -> dict[str, Any]:
        """Protocol facts for the report."""
        return {
            **super().describe(),
            "prompt": "VLMEvalKit Qwen2.5-VL custom MCQ prompt (image first)",
            "extraction": "VLMEvalKit can_infer (exact_matching, no LLM judge)",
            "aggregation": "CircularEval, flips as separate groups; mean over groups",
            "sources": [
                "ccvl/3DSRBench HF card + compute_3drbench_results_circular.py",
                "VLMEvalKit image_mcq.py _3DSRBench",
                "lmms-eval tasks/3dsrbench",
            ],
        }


def _group_means(
    judged: Sequence[JudgedItem], rule: str, key: Callable[[str], str] | None
) -> dict[str, tuple[float, JudgedItem]]:
    """Group -> (all-right score, a member); ``key`` None keeps every row its own group. Items
    the rule does not score (None) are left out."""
    groups: dict[str, list[float]] = defaultdict(list)
    first: dict[str, JudgedItem] = {}
    for j in judged:
        score = j.scores.get(rule)
        if score is None:
            continue
        qid = str(j.fields.get("qid", j.id))
        g = j.id if key is None else key(qid)
        groups[g].append(float(score))
        first.setdefault(g, j)
    return {g: (float(all(s >= 1.0 for s in v)), first[g]) for g, v in groups.items()}


def _grouped(
    judged: Sequence[JudgedItem], rule: str, key: Callable[[str], str] | None
) -> float | None:
    """Mean over groups (None when nothing is scored)."""
    groups = _group_means(judged, rule, key)
    if not groups:
        return None
    return sum(s for s, _ in groups.values()) / len(groups)


def _grouped_by(
    judged: Sequence[JudgedItem], field_name: str, key: Callable[[str], str] | None
) -> dict[str, float]:
    """Official-rule group scores averaged per ``fields[field_name]`` (over groups, not a mean
    of sub-means)."""
    acc: dict[str, list[float]] = defaultdict(list)
    for score, member in _group_means(judged, "official", key).values():
        acc[str(member.fields.get(field_name, ""))].append(score)
    return {k: sum(v) / len(v) for k, v in sorted(acc.items())}
