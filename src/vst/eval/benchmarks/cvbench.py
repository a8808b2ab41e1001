"""CV-Bench (nyu-visionx/CV-Bench, Cambrian-1): reader, the Cambrian prompt and extraction, the
official source-balanced score and the lmms-eval / VLMEvalKit variants beside it.

Files (any one layout, looked up in ``data_root`` or ``data_root/CV-Bench``, first found wins):
``test_2d.parquet`` + ``test_3d.parquet`` (current HF ``main``), ``test.parquet`` (original),
``test_2d.jsonl`` + ``test_3d.jsonl`` or ``test.jsonl`` with images at ``filename`` (e.g.
``img/2D/count/ade20k_10.png``) under the same folder. Columns used: ``idx``, ``type``
(2D|3D), ``task``, ``source`` (ADE20K|COCO|Omni3D), ``choices``, ``answer`` (``"(C)"``),
``prompt`` and ``image`` (parquet) or ``filename`` (JSONL). A malformed row is an error naming
the file and row (the official script skips nothing). Item ids are ``"{type}-{idx}"``.

Prompt (official, Cambrian ``eval/eval/omni/omni_eval.py``): the image, then ``prompt`` +
``"\\n"`` + ``"Answer with the option's letter from the given choices directly."``; greedy,
at most 512 new tokens. ``prompt_style="lmms_eval"`` sends lmms-eval's prompt instead (``Note:
You only need to respond with A, B, ... without providing any additional information.`` +
blank line + ``prompt``).

Rules (each item scored under all three, whatever prompt was sent):

* ``official`` — Cambrian ``omni_test.py``: reply lower-cased and stripped; for each of
  ``answer is``, ``answer is:``, ``answer:`` in turn, keep the text after its last occurrence;
  strip, ``rstrip(".:,")``, ``lstrip("(")``, ``rstrip(")")``; keep the first character.
  Correct when it equals the ground-truth letter (lower case) or the ground-truth option text
  (only possible for one-character options such as counts). Aggregate:
  ``((acc_ADE20K + acc_COCO) / 2 + acc_Omni3D) / 2`` (HF card).
* ``lmms_eval`` — the first letter of the reply
  (:func:`~vst.eval.benchmarks.harness_mcq.lmms_first_letter`); aggregate: micro accuracy
  over all rows (lmms-eval's ``cv_bench_aggregate_results``, the one its yaml wires).
* ``vlmevalkit`` — :func:`~vst.eval.benchmarks.harness_mcq.vlmevalkit_can_infer` (no LLM
  judge); ``vlmevalkit_2d`` = mean of the per-source accuracies of the 2D sources,
  ``vlmevalkit_3d`` = micro accuracy over 3D rows. VLMEvalKit prints no combined number;
  ``vlmevalkit`` here is ``(2D + 3D) / 2`` (the official-style combination).

UNVERIFIED (BENCHMARKS.md section 1): the per-task counts (Count 788, Relation 650, Depth 600,
Distance 600); whether VST's README "CV" column is this official number. VLMEvalKit sends its
own prompt (the Qwen custom prompt) from its TSVs; here every rule judges the reply to the
prompt actually sent.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.eval.benchmarks.encoded_images import image_from_cell
from vst.eval.benchmarks.harness_mcq import lmms_first_letter, vlmevalkit_can_infer
from vst.eval.benchmarks.hf_parquet import iter_jsonl, iter_parquet
from vst.models.backends.base import Sampling
from vst.models.requests import Request

__all__ = ["CAMBRIAN_SUFFIX", "CVBench", "cambrian_extract", "lmms_pre_prompt"]

CAMBRIAN_SUFFIX = "Answer with the option's letter from the given choices directly."
"""Cambrian's ``--question_extension``, appended to ``prompt`` after a newline."""

SOURCES_2D = ("ADE20K", "COCO")
SOURCE_3D = "Omni3D"
RULES = ("official", "lmms_eval", "vlmevalkit")
_ANSWER = re.compile(r"^\s*\(([A-Z])\)\s*$")
_LAYOUTS: tuple[tuple[str, ...], ...] = (
    ("test_2d.parquet", "test_3d.parquet"),
    ("test.parquet",),
    ("test_2d.jsonl", "test_3d.jsonl"),
    ("test.jsonl",),
)
_COLUMNS = ("idx", "type", "task", "source", "choices", "answer", "prompt")


def cambrian_extract(reply: object) -> str:
    """Cambrian's ``extract_mcq_answer`` (see the module docstring): a lower-case character,
    or ``""``; a non-string reply gives ``""``."""
    if not isinstance(reply, str):
        return ""
    text = reply.lower().strip()
    for key in ("answer is", "answer is:", "answer:"):
        if key in text:
            text = text.split(key)[-1]
    text = text.strip().rstrip(".:,").lstrip("(").rstrip(")")
    return text[:1]


def lmms_pre_prompt(n_choices: int) -> str:
    """lmms-eval's pre-prompt for ``n_choices`` options (letters A-E)."""
    letters = ", ".join("ABCDE"[: max(0, min(n_choices, 5))])
    return (
        f"Note: You only need to respond with {letters} without providing any additional "
        "information.\n"
    )


class CVBench(Benchmark):
    """CV-Bench with the official Cambrian protocol; ``prompt_style`` ``"official"`` (default)
    or ``"lmms_eval"`` selects the prompt sent."""

    name: ClassVar[str] = "cvbench"
    sampling: ClassVar[Sampling] = Sampling(max_tokens=512)

    def __init__(self, prompt_style: str = "official") -> None:
        if prompt_style not in ("official", "lmms_eval"):
            raise ValueError(
                f"prompt_style must be 'official' or 'lmms_eval', not {prompt_style!r}"
            )
        self.prompt_style = prompt_style

    # ---------------------------------------------------------------- reading
    def files(self, data_root: Path) -> list[Path]:
        """The files of the first layout found (see the module docstring)."""
        for folder in (Path(data_root), Path(data_root) / "CV-Bench"):
            for layout in _LAYOUTS:
                found = [folder / name for name in layout]
                if any(p.is_file() for p in found):
                    missing = [p for p in found if not p.is_file()]
                    if missing:
                        raise BenchmarkDataError(f"{missing[0]}: missing (found {found[0].name})")
                    return found
        raise BenchmarkDataError(
            f"{data_root}: no CV-Bench files (test_2d.parquet + test_3d.parquet, test.parquet, "
            "or the .jsonl equivalents)"
        )

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        seen: set[str] = set()
        for path in self.files(data_root):
            parquet = path.suffix == ".parquet"
            required = (*_COLUMNS, "image" if parquet else "filename")
            rows = iter_parquet(path, required) if parquet else iter_jsonl(path, required)
            for n, row in enumerate(rows):
                item = self._item(row, f"{path} row {n}", path.parent, parquet)
                if item.id in seen:
                    raise BenchmarkDataError(f"{path} row {n}: duplicate item {item.id}")
                seen.add(item.id)
                yield item

    def _item(self, row: dict, where: str, root: Path, parquet: bool) -> BenchItem:
        choices = row.get("choices")
        if not isinstance(choices, list) or not choices or len(choices) > 26:
            raise BenchmarkDataError(f"{where}: 'choices' must be a non-empty list")
        choices = [str(c) for c in choices]
        answer = row.get("answer")
        m = _ANSWER.match(answer) if isinstance(answer, str) else None
        if m is None or ord(m.group(1)) - ord("A") >= len(choices):
            raise BenchmarkDataError(f"{where}: bad answer {answer!r} for {len(choices)} choices")
        for key in ("type", "task", "source", "prompt"):
            if not isinstance(row.get(key), str):
                raise BenchmarkDataError(f"{where}: {key!r} must be a string")
        if row["type"] not in ("2D", "3D"):
            raise BenchmarkDataError(f"{where}: type must be 2D or 3D, got {row['type']!r}")
        idx = row.get("idx")
        if isinstance(idx, bool) or not isinstance(idx, int | str):
            raise BenchmarkDataError(f"{where}: bad idx {idx!r}")
        image = image_from_cell(row["image"] if parquet else row["filename"], where, root)
        item_id = f"{row['type']}-{idx}"
        request = Request(
            messages=[
                {
                    "role": "user",
                    "content": [{"type": "image"}, {"type": "text", "text": self._text(row)}],
                }
            ],
            images=(image,),
            id=item_id,
        )
        fields = {
            "type": row["type"],
            "task": row["task"],
            "source": row["source"],
            "choices": choices,
        }
        return BenchItem(id=item_id, request=request, truth=m.group(1), fields=fields)

    def _text(self, row: dict) -> str:
        if self.prompt_style == "lmms_eval":
            return lmms_pre_prompt(len(row["choices"])) + "\n" + row["prompt"]
        return row["prompt"] + "\n" + CAMBRIAN_SUFFIX

    # ---------------------------------------------------------------- judging
    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        truth = item.truth if isinstance(item.truth, str) else ""
        choices = [str(c) for c in (item.fields.get("choices") or [])]
        options = {chr(ord("A") + i): c for i, c in enumerate(choices[:26])}
        gt_text = options.get(truth)
        official = cambrian_extract(reply)
        lmms = lmms_first_letter(reply)
        vlm = vlmevalkit_can_infer(reply, options)
        scores = {
            "official": float(bool(truth) and (official == truth.lower() or official == gt_text)),
            "lmms_eval": float(bool(truth) and lmms == truth),
            "vlmevalkit": float(bool(truth) and vlm == truth),
        }
        parsed = {"official": official, "lmms_eval": lmms, "vlmevalkit": vlm}
        return JudgedItem(item.id, dict(item.fields), item.truth, parsed, scores)

    # ---------------------------------------------------------------- aggregating
    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        notes: list[str] = []
        by: dict[str, dict[str, dict[str, list[float]]]] = {
            rule: {
                "source": defaultdict(list),
                "task": defaultdict(list),
                "type": defaultdict(list),
            }
            for rule in RULES
        }
        for j in judged:
            for rule in RULES:
                s = j.scores.get(rule)
                if s is None:
                    continue
                for key in ("source", "task", "type"):
                    by[rule][key][str(j.fields.get(key))].append(float(s))
        acc = {
            rule: {key: {k: _mean(v) for k, v in groups.items()} for key, groups in keys.items()}
            for rule, keys in by.items()
        }
        src = acc["official"]["source"]
        official_2d = _mean_of([src.get(s) for s in SOURCES_2D])
        official_3d = src.get(SOURCE_3D)
        official = (
            None if official_2d is None or official_3d is None else (official_2d + official_3d) / 2
        )
        if official is None:
            notes.append("official CV-Bench needs ADE20K, COCO and Omni3D items; some are missing")
        vsrc = acc["vlmevalkit"]["source"]
        vlm_2d = _mean_of([vsrc[s] for s in vsrc if s in SOURCES_2D] or [None])
        vlm_3d = acc["vlmevalkit"]["type"].get("3D")
        variants: dict[str, float | None] = {
            "official": official,
            "lmms_eval": _mean([s for v in by["lmms_eval"]["type"].values() for s in v]),
            "vlmevalkit_2d": vlm_2d,
            "vlmevalkit_3d": vlm_3d,
            "vlmevalkit": None if vlm_2d is None or vlm_3d is None else (vlm_2d + vlm_3d) / 2,
        }
        notes.append(
            "vlmevalkit = (vlmevalkit_2d + vlmevalkit_3d) / 2: VLMEvalKit itself prints only the "
            "2D and 3D numbers; rules are applied without any LLM judge"
        )
        breakdown: dict[str, dict[str, float]] = {
            "type": {k: v for k, v in (("2D", official_2d), ("3D", official_3d)) if v is not None},
            "source": dict(src),
            "task": dict(acc["official"]["task"]),
            "task.lmms_eval": dict(acc["lmms_eval"]["task"]),
            "task.vlmevalkit": dict(acc["vlmevalkit"]["task"]),
        }
        return BenchScore(self.name, official, variants, breakdown, len(judged), tuple(notes))

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "prompt_style": self.prompt_style,
            "prompt": "image, then prompt + '\\n' + " + repr(CAMBRIAN_SUFFIX)
            if self.prompt_style == "official"
            else "image, then lmms-eval pre-prompt + '\\n' + prompt",
            "official": "((acc_ADE20K + acc_COCO) / 2 + acc_Omni3D) / 2, Cambrian extraction",
            "variants": {
                "lmms_eval": "first letter of the reply, micro accuracy",
                "vlmevalkit_2d": "can_infer, mean of per-source accuracy (ADE20K, COCO)",
                "vlmevalkit_3d": "can_infer, micro accuracy over 3D rows",
                "vlmevalkit": "(vlmevalkit_2d + vlmevalkit_3d) / 2",
            },
            "sources": [
                "cambrian-mllm/cambrian eval/eval/omni/{omni_eval,omni_test}.py",
                "nyu-visionx/CV-Bench dataset card (Evaluation)",
                "lmms-eval lmms_eval/tasks/cv_bench/utils.py",
                "VLMEvalKit vlmeval/dataset/image_mcq.py CVBench",
            ],
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _mean_of(values: Sequence[float | None]) -> float | None:
    """Mean of the values, None if any is None (a missing group)."""
    if not values or any(v is None for v in values):
        return None
    return sum(v for v in values if v is not None) / len(values)
