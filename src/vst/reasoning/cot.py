"""``run_cot``: chain-of-thought samples from a VST-P run, written by a teacher or offline.

Config (:class:`CotConfig`, YAML; see :func:`load_cot_config`)::

    data: runs/vstp            # a VST-P engine run (its shards)
    scenes: data/scenes        # the scenes it was generated from
    tasks: [mi_object_object, mi_camera_object, mi_camera_camera, mi_camera_motion]
    kind: rt_bev               # num | rt | rt_bev
    limit: 1000                # samples to try (seeded choice); null = all
    seed: 0
    output_dir: runs/cot
    teacher:                   # absent = offline CoT (vst.reasoning.offline; num / rt only)
      url: http://127.0.0.1:8000
      model: Qwen2.5-VL-72B-Instruct
      api_key_env: OPENAI_API_KEY
      max_tokens: 2048
      temperature: 0.7
      concurrency: 8
      timeout: 120
      price_per_1k_prompt: 0.0004      # optional: the report then gives the cost
      price_per_1k_completion: 0.0012
    max_attempts: 3
    rewrite: {repetition: 0.3}  # optional: condense reasoning this repetitive (see below)

Per sample: the teacher request (:func:`vst.reasoning.prompts.cot_request`) goes through
``open_backend(url, kind="openai", cache_dir=output_dir/cache)`` (the backend does concurrency,
retries and backoff on 429 / 5xx / timeouts; the cache makes a rerun call nothing). The reply is
parsed (:func:`~vst.reasoning.parse.parse_triplet`), ``<think>reasoning</think> answer`` must
score accuracy 1.0 and format 1.0 by :func:`vst.rewards.compute_reward` with the sample's own
reward spec (numeric answers: the MRA of the engine's numeric mode, so within 5 %), and the
reasoning must name no object category of the vocabulary (every label of the samples' scenes
plus ``vocabulary``, less ``ignore_words``: default ``GENERIC_WORDS`` such as "box") that the
sample's facts do not hold. A rejected, malformed or failed reply
is asked again with the next seed (``seed + attempt``), up to ``max_attempts``; the last
attempt's reason is the sample's. ``rewrite``: a kept reasoning whose word-trigram repetition
(1 - distinct / all trigrams) is at least ``repetition`` is sent back to be condensed; the
condensed text replaces it only if it passes the same checks.

Output (deterministic, resumable): samples are taken in a seeded order and cut into chunks of
``chunk_size``; chunk ``i`` writes ``output_dir/data/shard-{i:05d}-{key}.parquet`` (its kept
samples; ``key`` hashes the chunk's sample ids and every setting that changes its result) and
then ``output_dir/chunks/{i:05d}-{key}.json`` (every sample's outcome). A rerun skips chunks
whose record is complete; a chunk with a sample that failed on the network is redone (the cache
answers the rest). Records and shards of other settings are removed. Finally ``report.md`` and
``report.json`` (:class:`CotReport`).

A kept sample (the contract of :mod:`vst.reasoning`): the original task, scenario, images (the
row's own bytes) and reward spec; messages ``[system THINK_SYSTEM_PROMPT, the original user
turn, assistant "<think>{reasoning}</think> {answer}"]`` (the teacher's revised question
replaces the user text with ``revised_question: true``); meta = the original meta plus ``cot``:
``{source, kind, teacher, prompt_version, attempts, tokens: {prompt, completion}, parent_id,
revised_question, rewritten, rewrite_version}`` (``teacher``: the served model's name).
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from vst.atomic import atomic_write_bytes
from vst.engine.config import ConfigError, load_yaml
from vst.engine.sample import canonical_json
from vst.engine.verify import SceneIndex
from vst.engine.writer import (
    SHARD_GLOB,
    ShardWriter,
    iter_rows,
    list_shards,
    sample_row,
    shard_meta,
)
from vst.models import Request
from vst.models.backends import Backend, BackendError, CachedBackend, Completion, Sampling
from vst.models.backends.factory import open_backend, resolve_kind
from vst.reasoning.cot_report import REASONS, CotReport, summarise
from vst.reasoning.facts import SampleFacts, sample_facts
from vst.reasoning.parse import (
    GENERIC_WORDS,
    Malformed,
    Triplet,
    Vocabulary,
    hallucinated,
    parse_triplet,
)
from vst.reasoning.prompts import cot_request, prompt_version, question_text, rewrite_request
from vst.reasoning.samples import cot_sample
from vst.rewards import compute_reward
from vst.train.config import apply_overrides, validate_preset

__all__ = [
    "DEFAULT_COT_TASKS",
    "REASONS",
    "CotConfig",
    "CotReport",
    "RewriteConfig",
    "TeacherConfig",
    "load_cot_config",
    "parse_cot_config",
    "repetition",
    "run_cot",
    "select_samples",
]

DEFAULT_COT_TASKS = ("mi_object_object", "mi_camera_object", "mi_camera_camera", "mi_camera_motion")
PosInt = Annotated[int, Field(strict=True, gt=0)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
PosFloat = Annotated[float, Field(gt=0)]
NonNegFloat = Annotated[float, Field(ge=0)]
_TEXT_EXAMPLE = 600


class TeacherConfig(BaseModel):
    """The teacher endpoint (OpenAI-compatible) and its decoding settings."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    url: str
    model: str | None = None
    api_key_env: str | None = "OPENAI_API_KEY"
    max_tokens: PosInt = 2048
    temperature: NonNegFloat = 0.7
    concurrency: PosInt = 8
    timeout: PosFloat = 120.0
    max_retries: NonNegInt = 5
    backoff: NonNegFloat = 0.5
    price_per_1k_prompt: NonNegFloat | None = None
    price_per_1k_completion: NonNegFloat | None = None


class RewriteConfig(BaseModel):
    """The optional second pass: reasoning at least ``repetition`` repetitive is condensed."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    repetition: Annotated[float, Field(ge=0, le=1)] = 0.3


class CotConfig(BaseModel):
    """A ``vst reason cot`` run (module docstring)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, frozen=True)

    data: Path
    scenes: Path
    output_dir: Path
    tasks: list[str] = Field(default_factory=lambda: list(DEFAULT_COT_TASKS), min_length=1)
    kind: Literal["num", "rt", "rt_bev"] = "rt_bev"
    limit: PosInt | None = None
    seed: NonNegInt = 0
    teacher: TeacherConfig | None = None
    max_attempts: PosInt = 3
    rewrite: RewriteConfig | None = None
    revised_question: bool = False
    vocabulary: list[str] = Field(default_factory=list)
    ignore_words: list[str] = Field(default_factory=lambda: list(GENERIC_WORDS))
    chunk_size: PosInt = 64
    cache_dir: Path | None = None

    @model_validator(mode="after")
    def _check(self) -> CotConfig:
        if self.teacher is None and self.kind not in ("num", "rt"):
            raise ValueError(f"kind {self.kind} needs a teacher (offline CoT: num or rt)")
        if self.teacher is None and self.rewrite is not None:
            raise ValueError("rewrite needs a teacher")
        return self

    @property
    def cache(self) -> Path:
        return self.cache_dir or self.output_dir / "cache"


def parse_cot_config(data: Any, where: str = "config") -> CotConfig:
    """Validate a CoT config mapping; :class:`ConfigError` naming ``where`` and each bad field."""
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping of options, got {type(data).__name__}")
    return validate_preset(CotConfig, {}, data, where)


def load_cot_config(path: str | Path, overrides: list[str] | None = None) -> CotConfig:
    """Read, override (``key=value``, dotted keys) and validate a CoT config; the data and
    scenes folders must exist (relative paths are taken as given, from the working folder)."""

    p = Path(path)
    data = load_yaml(p)
    where = str(p)
    if overrides:
        if not isinstance(data, dict):
            raise ConfigError(f"{where}: expected a mapping of options")
        data, where = apply_overrides(data, overrides), f"{p} with overrides"
    config = parse_cot_config(data, where)
    for name in ("data", "scenes"):
        if not getattr(config, name).is_dir():
            raise ConfigError(f"{where}: {name}: {getattr(config, name)} is not a directory")
    return config


# ----------------------------------------------------------------------------- judging


def repetition(text: str) -> float:
    """1 - distinct / all word trigrams of ``text`` (0 for under 10 words)."""
    words = text.lower().split()
    if len(words) < 10:
        return 0.0
    grams = [tuple(words[i : i + 3]) for i in range(len(words) - 2)]
    return 1.0 - len(set(grams)) / len(grams)


def _judge(triplet: Triplet | Malformed, facts: SampleFacts, vocab: Vocabulary) -> tuple[str, str]:
    """``("kept", "")`` or ``(reason, detail)`` for a parsed reply."""
    if isinstance(triplet, Malformed):
        return "malformed", triplet.reason
    score = compute_reward(f"<think>{triplet.reasoning}</think> {triplet.answer}", facts.reward)
    if score["format"] != 1.0:
        return "malformed", "the response fails the format check"
    if score["accuracy"] != 1.0:
        return "wrong_answer", f"answer {triplet.answer[:80]!r}, expected {facts.answer[:80]!r}"
    bad = hallucinated(triplet.reasoning, facts.labels, vocab)
    if bad:
        return "hallucination", "names " + ", ".join(bad) + " (not among " + ", ".join(
            sorted(facts.labels)
        ) + ")"
    return "kept", ""


def _failure(completion: Completion) -> tuple[str, str]:
    error = completion.error or "no choices"
    return ("timeout" if "timed out" in error else "error"), error


# ----------------------------------------------------------------------------- samples


def _cot_sample(
    row: Mapping[str, Any],
    facts: SampleFacts,
    triplet: Triplet,
    cot: dict[str, Any],
    revised: bool,
) -> dict[str, Any]:
    """The shard row of a kept CoT sample (:func:`vst.reasoning.samples.cot_sample`, with the
    teacher's revised question when ``revised``); images keep the row's encoded bytes."""
    sample = cot_sample(
        row, triplet.reasoning, triplet.answer, cot, question=triplet.question if revised else None
    )
    out = sample_row(sample)
    out["images"] = [{"bytes": im["bytes"], "path": None} for im in row.get("images") or []]
    return out


# ----------------------------------------------------------------------------- the run


def select_samples(config: CotConfig) -> list[dict[str, Any]]:
    """Rows of ``config.tasks`` (first copy of each id), in a seeded order, up to ``limit``."""
    shards = list_shards(config.data)
    if not shards:
        raise ConfigError(f"data: no shards in {config.data}")
    wanted = set(config.tasks)
    index: list[tuple[str, int, int]] = []
    seen: set[str] = set()
    for s, shard in enumerate(shards):
        for k, row in enumerate(iter_rows(shard, columns=["id", "task"])):
            if row["task"] in wanted and row["id"] not in seen:
                seen.add(row["id"])
                index.append((row["id"], s, k))
    index.sort()
    random.Random(config.seed).shuffle(index)
    if config.limit is not None:
        index = index[: config.limit]
    where = {(s, k): i for i, (_, s, k) in enumerate(index)}
    rows: list[dict[str, Any] | None] = [None] * len(index)
    for s in sorted({s for _, s, _ in index}):
        for k, row in enumerate(iter_rows(shards[s])):
            if (s, k) in where:
                rows[where[(s, k)]] = row
    return [r for r in rows if r is not None]


def _settings_key(config: CotConfig) -> dict[str, Any]:
    t = config.teacher
    return {
        "kind": config.kind,
        "prompts": [prompt_version(config.kind, m) for m in (False, True)],
        "rewrite": None
        if config.rewrite is None
        else [config.rewrite.repetition, prompt_version("rewrite")],
        "teacher": None if t is None else [t.url, t.model, t.max_tokens, t.temperature],
        "seed": config.seed,
        "max_attempts": config.max_attempts,
        "revised_question": config.revised_question,
        "vocabulary": sorted(config.vocabulary),
        "ignore_words": sorted(config.ignore_words),
    }


def _chunk_key(settings: dict[str, Any], ids: Sequence[str]) -> str:
    payload = canonical_json({"settings": settings, "ids": list(ids)})
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


class _Runner:
    """One run's state: backend, vocabulary, counters of requests sent."""

    def __init__(self, config: CotConfig, backend: Backend | None, vocab: Vocabulary) -> None:
        self.config = config
        self.backend = backend
        self.vocab = vocab
        self.calls = 0
        self.cached = 0
        self.failures: Counter[str] = Counter()
        inner = getattr(backend, "inner", backend)
        t = config.teacher
        self.teacher_name: str | None = (
            None if t is None else str(t.model or getattr(inner, "model", None) or t.url)
        )

    def _generate(self, requests: list[Request], sampling: Sampling) -> list[Completion]:
        assert self.backend is not None
        out = self.backend.generate(requests, sampling)
        self.cached += sum(c.cached for c in out)
        self.calls += sum(not c.cached for c in out)
        return out

    def _sampling(self, seed: int) -> Sampling:
        t = self.config.teacher
        assert t is not None
        return Sampling(temperature=t.temperature, max_tokens=t.max_tokens, seed=seed)

    def _facts(self, row: Mapping[str, Any], rec: dict[str, Any]) -> SampleFacts | None:
        """The row's facts, or None with ``rec["detail"]`` saying why it cannot be asked about
        (unreadable row or scene, an answer no rule checks, no top view for ``rt_bev``)."""
        kind = self.config.kind
        try:
            facts = sample_facts(row, _scenes(self.config), bev=kind == "rt_bev")
            checkable = compute_reward("", facts.reward)["checkable"]
        except Exception as exc:  # an unreadable row or scene skips that sample only
            rec["detail"] = f"sample {rec['id']}: {type(exc).__name__}: {exc}"
            return None
        if not checkable:
            rec["detail"] = f"reward mode {facts.reward.get('mode')!r} is not rule-checkable"
        elif kind == "rt_bev" and facts.bev is None:
            rec["detail"] = "no objects to draw a top view of"
        else:
            return facts
        return None

    def chunk(self, rows: Sequence[dict[str, Any]]) -> tuple[list[dict], list[dict]]:
        """``(kept shard rows, outcome records)`` of one chunk, in row order."""
        cfg = self.config
        facts: list[SampleFacts | None] = []
        outcomes: list[dict[str, Any]] = []
        for row in rows:
            rec = {"id": str(row.get("id")), "task": str(row.get("task")), "status": "skipped"}
            rec.update(detail="", attempts=0, tokens={"prompt": 0, "completion": 0})
            facts.append(self._facts(row, rec))
            outcomes.append(rec)
        triplets: dict[int, Triplet] = {}
        versions: dict[int, str] = {}
        if cfg.teacher is None:
            self._offline(facts, outcomes, triplets, versions)
        else:
            self._teacher(facts, outcomes, triplets, versions)
            if cfg.rewrite is not None:
                self._rewrite(facts, outcomes, triplets)
        kept_rows = []
        for i, (row, f, rec) in enumerate(zip(rows, facts, outcomes, strict=True)):
            if i not in triplets or f is None:
                continue
            t = triplets[i]
            cot = {
                "source": "offline" if cfg.teacher is None else "teacher",
                "kind": cfg.kind,
                "teacher": self.teacher_name,
                "prompt_version": versions[i],
                "attempts": rec["attempts"],
                "tokens": rec["tokens"],
                "parent_id": rec["id"],
                "revised_question": t.question,
                "rewritten": bool(rec.get("rewritten")),
                "rewrite_version": rec.get("rewritten") or None,
            }
            kept_rows.append(_cot_sample(row, f, t, cot, cfg.revised_question))
            rec.update(words=len(t.reasoning.split()), reasoning=t.reasoning[:_TEXT_EXAMPLE])
            rec["answer"] = t.answer
        return kept_rows, outcomes

    def _offline(self, facts, outcomes, triplets, versions) -> None:
        from vst.reasoning.offline import offline_cot
        from vst.reasoning.offline_run import offline_prompt_version

        for i, (f, rec) in enumerate(zip(facts, outcomes, strict=True)):
            if f is None:
                continue
            cot = offline_cot(f, self.config.kind)
            rec["attempts"] = 1
            if cot is None:
                rec["detail"] = "no offline CoT for this question form"
                continue
            triplet = Triplet(question_text(f), cot.reasoning, cot.answer)
            rec["status"], rec["detail"] = _judge(triplet, f, self.vocab)
            if rec["status"] == "kept":
                triplets[i] = triplet
                versions[i] = offline_prompt_version(self.config.kind)

    def _teacher(self, facts, outcomes, triplets, versions) -> None:
        cfg = self.config
        built: dict[int, tuple[Request, str]] = {}
        for i, f in enumerate(facts):
            if f is None:
                continue
            try:
                built[i] = cot_request(f, cfg.kind, request_id=outcomes[i]["id"])
            except Exception as exc:  # odd meta values skip that sample only
                outcomes[i]["detail"] = f"cannot build the request: {type(exc).__name__}: {exc}"
        pending = sorted(built)
        for attempt in range(cfg.max_attempts):
            if not pending:
                break
            answers = self._generate(
                [built[i][0] for i in pending], self._sampling(cfg.seed + attempt)
            )
            retry = []
            for i, completion in zip(pending, answers, strict=True):
                rec = outcomes[i]
                rec["attempts"] = attempt + 1
                rec["tokens"]["prompt"] += completion.prompt_tokens
                rec["tokens"]["completion"] += completion.completion_tokens
                if completion.ok:
                    triplet = parse_triplet(completion.text)
                    status, detail = _judge(triplet, facts[i], self.vocab)
                else:
                    triplet, (status, detail) = Malformed(""), _failure(completion)
                rec["status"], rec["detail"] = status, detail
                if status == "kept":
                    assert isinstance(triplet, Triplet)
                    triplets[i], versions[i] = triplet, built[i][1]
                else:
                    self.failures[status] += 1
                    rec["reply"] = completion.text[:_TEXT_EXAMPLE]
                    retry.append(i)
            pending = retry

    def _rewrite(self, facts, outcomes, triplets) -> None:
        threshold = self.config.rewrite.repetition  # type: ignore[union-attr]
        todo = [i for i, t in sorted(triplets.items()) if repetition(t.reasoning) >= threshold]
        if not todo:
            return
        requests = [
            rewrite_request(
                triplets[i].question,
                triplets[i].reasoning,
                triplets[i].answer,
                request_id=outcomes[i]["id"],
            )
            for i in todo
        ]
        answers = self._generate(requests, self._sampling(self.config.seed))
        for i, completion in zip(todo, answers, strict=True):
            rec = outcomes[i]
            rec["tokens"]["prompt"] += completion.prompt_tokens
            rec["tokens"]["completion"] += completion.completion_tokens
            if not completion.ok:
                continue
            new = parse_triplet(completion.text)
            if (
                isinstance(new, Triplet)
                and _judge(new, facts[i], self.vocab)[0] == "kept"
                and len(new.reasoning.split()) < len(triplets[i].reasoning.split())
            ):
                triplets[i] = Triplet(triplets[i].question, new.reasoning, new.answer)
                rec["rewritten"] = prompt_version("rewrite")


_SCENES: dict[str, SceneIndex] = {}


def _scenes(config: CotConfig) -> SceneIndex:
    key = str(config.scenes.resolve())
    if key not in _SCENES:
        _SCENES.clear()
        _SCENES[key] = SceneIndex(config.scenes)
    return _SCENES[key]


def _vocabulary(config: CotConfig, rows: Sequence[Mapping[str, Any]]) -> Vocabulary:
    """Labels of every scene the rows come from, plus ``config.vocabulary``."""
    labels = set(config.vocabulary)
    ids = set()
    for row in rows:
        try:
            ids.add(str(json.loads(row["meta"]).get("scene_id")))
        except (ValueError, TypeError, AttributeError):
            continue
    for sid in sorted(ids):
        try:
            labels.update(o.label for o in _scenes(config).get(sid).objects)
        except (KeyError, OSError, ValueError):
            continue  # the sample itself is reported as skipped
    return Vocabulary(labels, ignore=config.ignore_words)


def _open_teacher(t: TeacherConfig, cache: Path) -> Backend:
    """The teacher's ``openai`` backend behind the disk cache."""
    if resolve_kind(t.url, "openai") != "openai":  # raises BackendError for a non-URL
        raise BackendError(f"teacher.url: not an http(s) URL: {t.url!r}")
    return open_backend(
        t.url, "openai", cache,
        model=t.model, api_key_env=t.api_key_env, concurrency=t.concurrency,
        timeout=t.timeout, max_retries=t.max_retries, backoff=t.backoff,
    )  # fmt: skip


def _is_cot_shard(path: Path) -> bool:
    """Whether ``path`` is a shard this module wrote (its metadata has the ``cot`` settings)."""
    try:
        return "cot" in shard_meta(path)
    except Exception:  # unreadable: not ours to delete
        return False


def _load_record(path: Path) -> dict[str, Any] | None:
    try:
        rec = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return rec if isinstance(rec, dict) and isinstance(rec.get("samples"), list) else None


def run_cot(
    config: CotConfig,
    *,
    backend: Backend | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> CotReport:
    """Run ``config`` (module docstring) and write ``report.{md,json}``; ``backend`` overrides
    the teacher endpoint's (tests, scripted dry runs); ``progress(done, total)`` per chunk."""
    out = config.output_dir
    data_dir, chunk_dir = out / "data", out / "chunks"
    data_dir.mkdir(parents=True, exist_ok=True)
    chunk_dir.mkdir(parents=True, exist_ok=True)
    rows = select_samples(config)
    settings = _settings_key(config)
    size = config.chunk_size
    plan = []
    for c in range(0, len(rows), size):
        part = rows[c : c + size]
        plan.append((c // size, _chunk_key(settings, [str(r["id"]) for r in part]), part))
    names = {f"{i:05d}-{key}" for i, key, _ in plan}
    report = CotReport(
        kind=config.kind,
        teacher=None if config.teacher is None else (config.teacher.model or config.teacher.url),
        prompt_version=prompt_version(config.kind),
        selected=len(rows),
        output_dir=str(out),
    )
    for stale in sorted(chunk_dir.glob("*.json")):
        if stale.stem not in names:
            stale.unlink(missing_ok=True)
            report.removed_stale += 1
    for shard in sorted(data_dir.glob(SHARD_GLOB)):
        if shard.stem.removeprefix("shard-") not in names and _is_cot_shard(shard):
            shard.unlink(missing_ok=True)  # ours (a CoT shard) from other settings
    own_backend = backend is None and config.teacher is not None
    if own_backend:
        t = config.teacher
        backend = _open_teacher(t, config.cache)
    elif backend is not None and not hasattr(backend, "stats"):
        backend = CachedBackend(backend, config.cache)
    records: list[dict[str, Any]] = []
    try:
        runner = _Runner(config, backend, _vocabulary(config, rows))
        for n, (index, key, part) in enumerate(plan, 1):
            record_path = chunk_dir / f"{index:05d}-{key}.json"
            record = _load_record(record_path)
            if record is not None and record.get("complete"):
                report.chunks_resumed += 1
            else:
                kept, outcomes = runner.chunk(part)
                shard = data_dir / f"shard-{index:05d}-{key}.parquet"
                if kept:
                    with ShardWriter(shard) as writer:
                        for r in kept:
                            writer.write(r)
                        writer.close({"cot": settings})
                else:
                    shard.unlink(missing_ok=True)
                complete = not any(o["status"] in ("timeout", "error") for o in outcomes)
                record = {"index": index, "key": key, "complete": complete, "samples": outcomes}
                atomic_write_bytes(record_path, json.dumps(record, indent=1).encode() + b"\n")
            records.append(record)
            report.chunks_done += 1
            if progress is not None:
                progress(n, len(plan))
        report.calls, report.cached = runner.calls, runner.cached
        report.teacher = runner.teacher_name
        report.attempt_failures = dict(sorted(runner.failures.items()))
    finally:
        if own_backend and backend is not None:
            backend.close()
    t = config.teacher
    prices = None if t is None else (t.price_per_1k_prompt, t.price_per_1k_completion)
    summarise(report, records, prices)
    atomic_write_bytes(out / "report.json", json.dumps(report.to_dict(), indent=1).encode())
    atomic_write_bytes(out / "report.md", report.to_markdown().encode())
    return report
