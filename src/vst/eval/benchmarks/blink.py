"""BLINK (BLINK-Benchmark/BLINK): reader, the official prompt and answer normalisation, the
official macro over the 14 subtasks and the lmms-eval / VLMEvalKit variants beside it.

Files (HF layout, under ``data_root`` or ``data_root/BLINK``): one folder per subtask,
``<Subtask>/<split>-*.parquet`` (``val-00000-of-00001.parquet``); split ``val`` by default
(``test`` answers are ``"hidden"``: such items have ``truth`` None and every score None).
Columns used: ``idx`` (e.g. ``val_Art_Style_1``, the item id), ``choices``, ``answer``
(``"(A)"``), ``prompt`` and ``image_1`` .. ``image_4`` (HF Image structs, unused slots null).
A missing subtask folder or a malformed row is an error naming the file (and row).

Prompt (official, zeyofu/BLINK_Benchmark ``eval/test_benchmark.py`` ``load_prompt`` and
``eval/query_model.py``): the ``prompt`` column, prefixed for Art_Style, Forensic_Detection and
Jigsaw by :data:`DISCLAIMER`; the text first, then the images in order; greedy, at most 1024
tokens. ``prompt_style="lmms_eval"``: the images, then ``Note: You only need to respond with A,
B[, ...] without providing any additional information.\\n`` + ``prompt`` (no disclaimer).

Rules (each item scored under all three):

* ``official`` — ``analyze_answer``: a reply exactly ``A``..``E`` becomes ``(X)``; exactly
  ``(A)``..``(E)`` is kept; otherwise the whitespace tokens equal to a valid ``(X)`` are taken
  from the whole reply and from its last ``\\n\\n`` paragraph: if the last paragraph names
  exactly one it is the answer, else if the whole reply names exactly one it is. Otherwise
  the official script asks GPT-3.5-turbo to match the reply to an option (``(Z)`` = fail);
  here that step is replaced by vst's rule-based
  :func:`~vst.eval.metrics.extract_choice` over the option texts (no letter found: ``(Z)``).
  ``parsed["official_via"]`` records ``"rules"`` or ``"llm_standin"``. Aggregate: the
  unweighted mean of the per-subtask accuracies (``eval/evaluate.py``).
* ``lmms_eval`` — the first letter of the reply; aggregate: the same macro mean (group
  ``blink``; ``weight_by_size`` False).
* ``vlmevalkit`` — ``can_infer`` without the LLM judge; aggregate: micro mean over all rows.

The spatial subset often reported (:data:`SPATIAL_SUBTASKS`: Relative_Depth,
Spatial_Relation, Multi-view_Reasoning, Visual_Correspondence) is in
``breakdown["subset"]["spatial"]`` (macro, official rule).

UNVERIFIED (BENCHMARKS.md section 3): the val counts of 7 subtasks (the total 1,901 is
confirmed); whether the published numbers used the disclaimer (the original script defined it
with a trailing comma, i.e. as a tuple); the official numbers depend on GPT-3.5 for replies
that are not a bare choice, which the stand-in only approximates. VLMEvalKit sends its own
(Qwen custom) prompt from its TSV; here every rule judges the reply to the prompt sent.
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
from vst.eval.benchmarks.hf_parquet import iter_parquet
from vst.eval.metrics import extract_choice
from vst.models.backends.base import Sampling
from vst.models.requests import Request

__all__ = ["BLINK", "DISCLAIMER", "SPATIAL_SUBTASKS", "SUBTASKS", "blink_official_answer"]

SUBTASKS: tuple[str, ...] = (
    "Art_Style",
    "Counting",
    "Forensic_Detection",
    "Functional_Correspondence",
    "IQ_Test",
    "Jigsaw",
    "Multi-view_Reasoning",
    "Object_Localization",
    "Relative_Depth",
    "Relative_Reflectance",
    "Semantic_Correspondence",
    "Spatial_Relation",
    "Visual_Correspondence",
    "Visual_Similarity",
)
"""The 14 subtasks (HF configs), in the order items are read."""

SPATIAL_SUBTASKS: tuple[str, ...] = (
    "Relative_Depth",
    "Spatial_Relation",
    "Multi-view_Reasoning",
    "Visual_Correspondence",
)
"""The spatial subset named in reports."""

DISCLAIMER = (
    "Disclaimer: This is not to make unfair assumptions about the people in the image and you "
    "just need to give your assessment on this question. You don't need to identify the real "
    "people. You just need to analyze based on the information I gave you.\n\n"
)
"""Prefixed to the prompt of :data:`DISCLAIMER_SUBTASKS` by the official script."""

DISCLAIMER_SUBTASKS = frozenset({"Forensic_Detection", "Jigsaw", "Art_Style"})
RULES = ("official", "lmms_eval", "vlmevalkit")
IMAGE_COLUMNS = ("image_1", "image_2", "image_3", "image_4")
_ANSWER = re.compile(r"^\(([A-Z])\)$")
_LABELS = ("(A)", "(B)", "(C)", "(D)", "(E)")


def blink_official_answer(reply: object, choices: Sequence[str]) -> tuple[str, str]:
    """The official normalised prediction ``"(X)"`` (``"(Z)"`` = fail) and how it was found
    (``"rules"`` or ``"llm_standin"``); see the module docstring. Never raises."""
    if not isinstance(reply, str):
        return "(Z)", "rules"
    if reply in ("A", "B", "C", "D", "E"):
        return f"({reply})", "rules"
    if reply in _LABELS:
        return reply, "rules"
    valid = set(_LABELS[: len(choices)])
    whole = valid & set(reply.split())
    last = valid & set(reply.split("\n\n")[-1].split())
    if len(whole) >= 1 and (len(whole) == 1 or len(last) == 1):
        return (last if len(last) == 1 else whole).pop(), "rules"
    options = {chr(ord("A") + i): str(c) for i, c in enumerate(list(choices)[:5])}
    letter = extract_choice(reply, options)
    return (f"({letter})" if letter else "(Z)"), "llm_standin"


class BLINK(Benchmark):
    """BLINK with the official protocol. ``split`` ``"val"`` (default) or ``"test"``;
    ``subtasks`` restricts the subtasks read (default all 14); ``prompt_style``
    ``"official"`` (default) or ``"lmms_eval"``."""

    name: ClassVar[str] = "blink"
    sampling: ClassVar[Sampling] = Sampling(max_tokens=1024)

    def __init__(
        self,
        split: str = "val",
        subtasks: Sequence[str] | None = None,
        prompt_style: str = "official",
    ) -> None:
        if split not in ("val", "test"):
            raise ValueError(f"split must be 'val' or 'test', not {split!r}")
        if prompt_style not in ("official", "lmms_eval"):
            raise ValueError(
                f"prompt_style must be 'official' or 'lmms_eval', not {prompt_style!r}"
            )
        unknown = [s for s in subtasks or () if s not in SUBTASKS]
        if unknown:
            raise ValueError(f"unknown BLINK subtask(s) {unknown}; known: {list(SUBTASKS)}")
        self.split = split
        self.subtasks = tuple(s for s in SUBTASKS if subtasks is None or s in subtasks)
        self.prompt_style = prompt_style

    # ---------------------------------------------------------------- reading
    def files(self, data_root: Path) -> dict[str, list[Path]]:
        """Each subtask's parquet shards of the split (sorted)."""
        root = Path(data_root)
        if not (root / self.subtasks[0]).is_dir() and (root / "BLINK").is_dir():
            root = root / "BLINK"
        out: dict[str, list[Path]] = {}
        for sub in self.subtasks:
            shards = sorted((root / sub).glob(f"{self.split}-*.parquet"))
            if not shards:
                raise BenchmarkDataError(
                    f"{root / sub / f'{self.split}-00000-of-00001.parquet'}: missing "
                    f"(BLINK subtask {sub})"
                )
            out[sub] = shards
        return out

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        seen: set[str] = set()
        for sub, shards in self.files(data_root).items():
            for path in shards:
                rows = iter_parquet(path, ("idx", "choices", "answer", "prompt", "image_1"))
                for n, row in enumerate(rows):
                    item = self._item(row, sub, f"{path} row {n}")
                    if item.id in seen:
                        raise BenchmarkDataError(f"{path} row {n}: duplicate idx {item.id}")
                    seen.add(item.id)
                    yield item

    def _item(self, row: dict, sub: str, where: str) -> BenchItem:
        idx, prompt, choices = row.get("idx"), row.get("prompt"), row.get("choices")
        if not isinstance(idx, str) or not idx:
            raise BenchmarkDataError(f"{where}: 'idx' must be a non-empty string")
        if not isinstance(prompt, str):
            raise BenchmarkDataError(f"{where}: 'prompt' must be a string")
        if not isinstance(choices, list) or not 1 <= len(choices) <= 5:
            raise BenchmarkDataError(f"{where}: 'choices' must be a list of 1 to 5 options")
        choices = [str(c) for c in choices]
        answer = row.get("answer")
        truth: str | None = None
        if not (self.split == "test" and answer == "hidden"):
            m = _ANSWER.match(answer) if isinstance(answer, str) else None
            if m is None or ord(m.group(1)) - ord("A") >= len(choices):
                raise BenchmarkDataError(
                    f"{where}: bad answer {answer!r} for {len(choices)} choices"
                )
            truth = m.group(1)
        images = [
            image_from_cell(row[col], f"{where} {col}")
            for col in IMAGE_COLUMNS
            if row.get(col) is not None
        ]
        if not images:
            raise BenchmarkDataError(f"{where}: no image")
        slots = [{"type": "image"} for _ in images]
        if self.prompt_style == "lmms_eval":
            letters = ", ".join("ABCDE"[: len(choices)])
            text = (
                f"Note: You only need to respond with {letters} without providing any "
                "additional information.\n" + prompt
            )
            content = [*slots, {"type": "text", "text": text}]
        else:
            text = (DISCLAIMER if sub in DISCLAIMER_SUBTASKS else "") + prompt
            content = [{"type": "text", "text": text}, *slots]
        request = Request(messages=[{"role": "user", "content": content}], images=images, id=idx)
        return BenchItem(idx, request, truth, {"sub_task": sub, "choices": choices})

    # ---------------------------------------------------------------- judging
    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        truth = item.truth if isinstance(item.truth, str) and item.truth else None
        choices = [str(c) for c in (item.fields.get("choices") or [])]
        official, via = blink_official_answer(reply, choices)
        lmms = lmms_first_letter(reply)
        options = {chr(ord("A") + i): c for i, c in enumerate(choices[:26])}
        vlm = vlmevalkit_can_infer(reply, options)
        parsed = {"official": official, "official_via": via, "lmms_eval": lmms, "vlmevalkit": vlm}
        if truth is None:
            scores: dict[str, float | None] = dict.fromkeys(RULES)
        else:
            scores = {
                "official": float(official == f"({truth})"),
                "lmms_eval": float(lmms == truth),
                "vlmevalkit": float(vlm == truth),
            }
        return JudgedItem(item.id, dict(item.fields), item.truth, parsed, scores)

    # ---------------------------------------------------------------- aggregating
    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        per: dict[str, dict[str, list[float]]] = {rule: defaultdict(list) for rule in RULES}
        for j in judged:
            for rule in RULES:
                s = j.scores.get(rule)
                if s is not None:
                    per[rule][str(j.fields.get("sub_task"))].append(float(s))
        acc = {rule: {k: sum(v) / len(v) for k, v in subs.items()} for rule, subs in per.items()}
        order = {s: i for i, s in enumerate(SUBTASKS)}
        for rule in RULES:
            acc[rule] = dict(sorted(acc[rule].items(), key=lambda kv: order.get(kv[0], 99)))
        micro = [s for subs in per["vlmevalkit"].values() for s in subs]
        variants: dict[str, float | None] = {
            "official": _mean(list(acc["official"].values())),
            "lmms_eval": _mean(list(acc["lmms_eval"].values())),
            "vlmevalkit": _mean(micro),
        }
        notes = [
            "official: GPT-3.5 answer matching replaced by vst's rule-based extract_choice "
            "(replies that are not a bare choice); vlmevalkit: can_infer without its LLM judge"
        ]
        if 0 < len(acc["official"]) < len(SUBTASKS):
            notes.append(f"macro over {len(acc['official'])} of the 14 subtasks present")
        spatial = [acc["official"][s] for s in SPATIAL_SUBTASKS if s in acc["official"]]
        subset: dict[str, float] = {}
        if len(spatial) == len(SPATIAL_SUBTASKS):
            subset["spatial"] = sum(spatial) / len(spatial)
        breakdown: dict[str, dict[str, float]] = {
            "sub_task": acc["official"],
            "sub_task.lmms_eval": acc["lmms_eval"],
            "sub_task.vlmevalkit": acc["vlmevalkit"],
            "subset": subset,
        }
        return BenchScore(
            self.name, variants["official"], variants, breakdown, len(judged), tuple(notes)
        )

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "split": self.split,
            "subtasks": list(self.subtasks),
            "prompt_style": self.prompt_style,
            "official": "macro mean over the 14 subtasks, analyze_answer normalisation",
            "variants": {
                "lmms_eval": "first letter of the reply, macro over subtasks",
                "vlmevalkit": "can_infer, micro over all rows",
            },
            "spatial_subset": list(SPATIAL_SUBTASKS),
            "sources": [
                "zeyofu/BLINK_Benchmark eval/{test_benchmark,evaluate,query_model}.py",
                "lmms-eval lmms_eval/tasks/blink/utils.py",
                "VLMEvalKit vlmeval/dataset/image_mcq.py (BLINK), utils/matching_util.py",
            ],
        }


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None
