"""VSI-Bench (nyu-visionx/VSI-Bench): reader, official prompts, first-token scoring, MRA.

Files under the data root (the HF dataset as downloaded, zips unpacked): the question table
``test-00000-of-00001.parquet`` (also looked for under ``data/``, or ``test.parquet``), else
``test.jsonl``; videos at ``{dataset}/{scene_name}.mp4``. Columns: ``id`` int, ``dataset``,
``scene_name``, ``question_type``, ``question``, ``options`` (lettered strings such as
``"A. left"``; null for numerical questions), ``ground_truth`` (a letter, or a number as a
string). A missing or malformed file, column, unknown question type, non-numeric (or zero)
numerical truth, or missing video is a :class:`BenchmarkDataError` naming the file (and row);
no row is skipped (the official script fails on most of these; it would score a non-numeric
truth 0).
Items come grouped by video (videos in order of first appearance, rows in table order within
a video) so that each video is decoded once; scores do not depend on the order.

Request: one user turn, the video then the official prompt text
(``These are frames of a video.\\n{question}\\n`` + for MCA ``Options:\\n{options joined by
\\n}\\nAnswer with the option's letter from the given choices directly.``, for NA
``Please answer the question using a single word or phrase.``). No system turn: Qwen2.5-VL's
chat template adds "You are a helpful assistant.", as lmms-eval's Qwen2.5-VL model does.
Frames: ``num_frames`` (default 32, lmms-eval's Qwen2.5-VL ``max_num_frames``) sampled
uniformly with PyAV (:mod:`vst.eval.benchmarks.video_frames`), ``fps`` = frames / duration;
both recorded in each item's fields and in :meth:`VSIBench.describe`. Decoding: greedy,
16 new tokens (the official yaml).

Scoring (:mod:`vst.eval.benchmarks.vsibench_scoring`): ``official``, ``lmms_eval`` and
``vlmevalkit`` per question. Aggregation, for each rule: mean per question type; relative
direction = the mean of the easy / medium / hard accuracies (a difficulty absent from the
judged set counts as 0, as in the official script, and a note says so); overall = the
unweighted mean of the task scores present (8 on the full benchmark).

Frames versus the harnesses: TIS and VLMEvalKit take ``linspace(0, n - 1, k)`` over the
video's frames, as here; lmms-eval's Qwen2.5-VL model first reads the video at qwen_vl_utils'
2 fps and takes ``linspace`` over those frames (plus the last one), so its frame times can
differ from ours by up to half a 2-fps step, and it tells the processor 2 fps rather than
frames / duration.

UNVERIFIED: the treatment of videos shorter than ``num_frames`` (here: every frame once);
the lmms-eval NA parse's exact word list; the ``debiased`` config's files
are not read. Not reproduced: VST's own script feeds video at 4 fps (qwen_vl_utils) rather than
a fixed frame count (pass ``num_frames`` to match a given setup) and samples at temperature
0.1; VLMEvalKit sends its own prompt (no ``Options:`` line, NA post-prompt "Answer briefly and
directly in one float number.") and merges relative direction only when all three
difficulties are present. Only the official prompt is sent; the variants differ in
extraction only.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from vst.eval.benchmarks.base import (
    BenchItem,
    Benchmark,
    BenchmarkDataError,
    BenchScore,
    JudgedItem,
)
from vst.eval.benchmarks.video_frames import VideoReadError, sample_video
from vst.eval.benchmarks.vsibench_scoring import MCA_TYPES, NA_TYPES, RULES, score_reply
from vst.models.backends.base import Sampling
from vst.models.requests import Request, Video
from vst.scenes.errors import UnreadableFileError
from vst.scenes.files import resolve_inside

__all__ = ["DEFAULT_NUM_FRAMES", "PRE_PROMPT", "VSIBench", "build_prompt"]

DEFAULT_NUM_FRAMES = 32
PRE_PROMPT = "These are frames of a video."
MCA_POST_PROMPT = "Answer with the option's letter from the given choices directly."
NA_POST_PROMPT = "Please answer the question using a single word or phrase."
TABLE_FILES = (
    "test-00000-of-00001.parquet",
    "data/test-00000-of-00001.parquet",
    "test.parquet",
    "test.jsonl",
)
COLUMNS = ("id", "dataset", "scene_name", "question_type", "question", "ground_truth")
REL_DIRECTION = (
    "object_rel_direction_easy",
    "object_rel_direction_medium",
    "object_rel_direction_hard",
)
TASKS = (
    "obj_appearance_order",
    "object_abs_distance",
    "object_counting",
    "object_rel_direction",
    "object_rel_distance",
    "object_size_estimation",
    "room_size_estimation",
    "route_planning",
)
"""The 8 tasks the overall averages (the three relative-direction difficulties are one)."""


def task_of(question_type: str) -> str:
    """The task a question type counts under (relative direction's difficulties merge)."""
    return "object_rel_direction" if question_type in REL_DIRECTION else question_type


def build_prompt(question_type: str, question: str, options: Sequence[str] | None) -> str:
    """The official prompt text for one question."""
    if question_type in NA_TYPES:
        return f"{PRE_PROMPT}\n{question}\n{NA_POST_PROMPT}"
    opts = "Options:\n" + "\n".join(options or [])
    return "\n".join([PRE_PROMPT, question, opts, MCA_POST_PROMPT])


def _read_rows(path: Path) -> list[dict[str, Any]]:
    try:
        if path.suffix == ".jsonl":
            rows = []
            with path.open(encoding="utf-8") as f:
                for n, line in enumerate(f, 1):
                    if line.strip():
                        row = json.loads(line)
                        if not isinstance(row, dict):
                            raise ValueError(f"line {n} is not a JSON object")
                        rows.append(row)
            return rows
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    except Exception as exc:  # OSError, JSON errors, pyarrow's own types on garbage files
        detail = " ".join(str(exc).split())[:200] or type(exc).__name__
        raise BenchmarkDataError(f"{path}: cannot read the question table ({detail})") from None


class VSIBench(Benchmark):
    """VSI-Bench with ``num_frames`` frames per video (default 32; see the module docstring)."""

    name = "vsibench"
    sampling = Sampling(max_tokens=16)

    def __init__(self, num_frames: int = DEFAULT_NUM_FRAMES) -> None:
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        self.num_frames = num_frames

    # ---------------------------------------------------------------- reading
    def table_path(self, data_root: Path) -> Path:
        """The question table under ``data_root`` (first of :data:`TABLE_FILES` present)."""
        for name in TABLE_FILES:
            path = Path(data_root) / name
            if path.is_file():
                return path
        raise BenchmarkDataError(
            f"{data_root}: no VSI-Bench question table (looked for {', '.join(TABLE_FILES)})"
        )

    def _video_path(self, data_root: Path, row: dict[str, Any], where: str) -> Path:
        try:
            path = resolve_inside(Path(row["dataset"]) / f"{row['scene_name']}.mp4", data_root)
        except UnreadableFileError as exc:
            raise BenchmarkDataError(f"{where}: {exc}") from None
        if not path.is_file():
            raise BenchmarkDataError(f"{path}: video not found ({where})")
        return path

    def _video(self, path: Path) -> Video:
        try:
            return sample_video(path, self.num_frames)
        except VideoReadError as exc:
            raise BenchmarkDataError(str(exc)) from None

    def _check_row(self, row: dict[str, Any], where: str) -> None:
        for col in COLUMNS:
            if col not in row or row[col] is None:
                raise BenchmarkDataError(f"{where}: column {col!r} is missing")
        for col in COLUMNS[1:]:
            if not isinstance(row[col], str):
                raise BenchmarkDataError(f"{where}: {col!r} is not a string")
        qtype = row["question_type"]
        if qtype in MCA_TYPES:
            options = row.get("options")
            if not isinstance(options, list) or not all(isinstance(o, str) for o in options):
                raise BenchmarkDataError(f"{where}: 'options' is not a list of strings")
        elif qtype in NA_TYPES:
            try:
                gt = float(row["ground_truth"])
            except ValueError:
                gt = math.nan
            if not math.isfinite(gt) or gt == 0:
                raise BenchmarkDataError(
                    f"{where}: ground_truth {row['ground_truth']!r} is not a non-zero number"
                )
        else:
            raise BenchmarkDataError(f"{where}: unknown question_type {qtype!r}")

    def read(self, data_root: Path) -> Iterator[BenchItem]:
        """Every row checked first (a bad table fails before any video is decoded); then the
        items grouped by video, videos in order of first appearance in the table and rows in
        table order within each, so each video is decoded once and only one is held at a time.
        Ids are the ``id`` column as strings."""
        data_root = Path(data_root)
        table = self.table_path(data_root)
        groups: dict[Path, list[dict[str, Any]]] = {}
        seen: set[str] = set()
        for i, row in enumerate(_read_rows(table)):
            where = f"{table} row {i}"
            self._check_row(row, where)
            if str(row["id"]) in seen:
                raise BenchmarkDataError(f"{where}: duplicate id {row['id']}")
            seen.add(str(row["id"]))
            groups.setdefault(self._video_path(data_root, row, where), []).append(row)
        for path, rows in groups.items():
            video = self._video(path)
            for row in rows:
                yield self._item(row, video)

    def _item(self, row: dict[str, Any], video: Video) -> BenchItem:
        qtype = row["question_type"]
        options = list(row["options"]) if qtype in MCA_TYPES else None
        text = build_prompt(qtype, row["question"], options)
        content = [{"type": "video"}, {"type": "text", "text": text}]
        messages = [{"role": "user", "content": content}]
        fields = {
            "question_type": qtype,
            "task": task_of(qtype),
            "kind": "MCA" if qtype in MCA_TYPES else "NA",
            "dataset": row["dataset"],
            "scene_name": row["scene_name"],
            "options": options,
            "num_frames": len(video.frames),
            "fps": video.fps,
        }
        item_id = str(row["id"])
        return BenchItem(
            id=item_id,
            request=Request(messages, videos=(video,), id=item_id),
            truth=row["ground_truth"],
            fields=fields,
        )

    # ---------------------------------------------------------------- scoring
    def judge(self, item: BenchItem | JudgedItem, reply: str) -> JudgedItem:
        """Scores under ``official``, ``lmms_eval`` and ``vlmevalkit`` (never raises: an item
        whose fields or truth cannot be scored gets None under every rule)."""
        fields = dict(item.fields)
        try:
            parsed, scores = score_reply(str(fields.get("question_type")), str(item.truth), reply)
        except (TypeError, ValueError, AttributeError):
            parsed, scores = None, dict.fromkeys(RULES)
        return JudgedItem(item.id, fields, item.truth, parsed, scores)

    def aggregate(self, judged: Sequence[JudgedItem]) -> BenchScore:
        """Per rule: per-question-type means, relative direction over its three difficulties,
        overall = mean of the task scores present."""
        notes: list[str] = []
        by_type: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
        for j in judged:
            qtype = str(j.fields.get("question_type"))
            for rule in RULES:
                score = j.scores.get(rule)
                if score is not None:
                    by_type[rule][qtype].append(float(score))
        breakdown: dict[str, dict[str, float]] = {}
        variants: dict[str, float | None] = {}
        present = {str(j.fields.get("question_type")) for j in judged}
        if present & set(REL_DIRECTION) and not set(REL_DIRECTION) <= present:
            missing = sorted(set(REL_DIRECTION) - present)
            notes.append(f"relative direction: {', '.join(missing)} absent, counted as 0")
        for rule in RULES:
            type_means = {t: sum(v) / len(v) for t, v in sorted(by_type[rule].items()) if v}
            tasks = {t: s for t, s in type_means.items() if t not in REL_DIRECTION}
            if any(t in type_means for t in REL_DIRECTION):
                tasks["object_rel_direction"] = sum(type_means.get(t, 0.0) for t in REL_DIRECTION)
                tasks["object_rel_direction"] /= 3
            tasks = dict(sorted(tasks.items()))
            variants[rule] = sum(tasks.values()) / len(tasks) if tasks else None
            suffix = "" if rule == "official" else f"/{rule}"
            breakdown[f"task{suffix}"] = tasks
            breakdown[f"question_type{suffix}"] = type_means
        if variants["official"] is not None and len(breakdown["task"]) < len(TASKS):
            notes.append(f"overall over {len(breakdown['task'])} of the 8 tasks")
        notes.append(f"{self.num_frames} frames per video, sampled uniformly")
        return BenchScore(
            benchmark=self.name,
            official=variants["official"],
            variants=variants,
            breakdown=breakdown,
            items=len(judged),
            notes=tuple(notes),
        )

    def describe(self) -> dict[str, Any]:
        """The protocol: frames, prompts, extraction rules, aggregation."""
        return {
            **super().describe(),
            "num_frames": self.num_frames,
            "frame_sampling": "uniform, linspace(0, n-1, k) truncated; fps = frames / duration",
            "pre_prompt": PRE_PROMPT,
            "mca_post_prompt": MCA_POST_PROMPT,
            "na_post_prompt": NA_POST_PROMPT,
            "rules": {
                "official": "first space-separated token; MCA exact letter, NA float() + MRA",
                "lmms_eval": "MCA as official; NA first number or number word anywhere + MRA",
                "vlmevalkit": "MCA can_match_option letter; NA can_match_na last number + MRA",
            },
            "aggregation": "mean per question type; rel. direction = mean of easy/medium/hard; "
            "overall = mean of the 8 tasks",
        }
