"""The teacher CoT pipeline (vst.reasoning.prompts / parse / cot) against a local scripted
OpenAI-compatible server on 127.0.0.1: right answers kept; wrong, malformed, hallucinated,
rate-limited and timed-out replies retried with another seed, then kept or counted; the images
and the BEV travel as image parts; reruns call nothing; the tiny checkpoint is mostly rejected."""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vst.engine.config import ConfigError
from vst.engine.teacher import render_object_facts
from vst.engine.verify import SceneIndex
from vst.engine.writer import ShardWriter, iter_rows, list_shards
from vst.models import THINK_SYSTEM_PROMPT
from vst.models.backends import ScriptedBackend
from vst.reasoning import prompts
from vst.reasoning.cot import (
    load_cot_config,
    parse_cot_config,
    repetition,
    run_cot,
    select_samples,
)
from vst.reasoning.facts import sample_facts
from vst.reasoning.parse import (
    GENERIC_WORDS,
    Malformed,
    Triplet,
    Vocabulary,
    hallucinated,
    parse_triplet,
)
from vst.reasoning.prompts import (
    COMPASS,
    cot_request,
    orientation_text,
    prompt_version,
    question_text,
    sector,
)
from vst.rewards import compute_reward
from vst.testing.openai_fake import FakeCall, FakeOpenAIServer, FakeReply, completion_body

TASKS = ("mi_object_object", "mi_camera_object", "mi_camera_camera", "mi_camera_motion")


def _rows(run: Path, task: str | None = None) -> list[dict]:
    return [r for s in list_shards(run) for r in iter_rows(s) if task in (None, r["task"])]


@pytest.fixture(scope="module")
def scenes(engine_scene_dirs) -> SceneIndex:
    return SceneIndex(Path(engine_scene_dirs[0]).parent)


def _config(run: Path, engine_scene_dirs, out: Path, **extra) -> dict:
    return {
        "data": str(run),
        "scenes": str(Path(engine_scene_dirs[0]).parent),
        "output_dir": str(out),
        **extra,
    }


# ----------------------------------------------------------------------------- prompts


def test_requests_carry_images_bev_facts_question_and_answer(all_tasks_run, scenes):
    row = _rows(all_tasks_run, "mi_object_object")[0]
    facts = sample_facts(row, scenes, bev=True)
    req, version = cot_request(facts, "rt_bev")
    (turn,) = req.messages
    kinds = [c["type"] for c in turn["content"]]
    assert kinds == ["text", "image", "text", "image", "text", "image", "text"]
    assert [c["text"] for c in turn["content"] if c["type"] == "text"][:3] == [
        "Image 1:",
        "Image 2:",
        "Top view:",
    ]
    assert len(req.images) == 3 and req.images[-1] is facts.bev
    assert [im.tobytes() for im in req.images[:2]] == [im.tobytes() for im in facts.images]
    text = turn["content"][-1]["text"]
    assert render_object_facts(facts.objects, multi_view=True) in text
    assert f"Reference answer: {facts.answer}" in text
    assert "\nImage 1:" not in text and question_text(facts) in text
    assert question_text(facts).startswith(("Suppose", "If", "Looking", "Let", "How", "Across"))
    assert all(line in text for line in facts.cameras)
    assert re.fullmatch(r"[0-9a-f]{12}", version) and version == prompt_version("rt_bev")
    # num: no top view, other instructions, another version
    req_num, v_num = cot_request(facts, "num")
    assert len(req_num.images) == 2 and v_num != version
    with pytest.raises(ValueError, match=facts.id):
        cot_request(sample_facts(row, scenes), "rt_bev")


def test_prompt_version_follows_the_wording(monkeypatch):
    versions = {(k, m): prompt_version(k, m) for k in ("num", "rt", "rt_bev") for m in (0, 1)}
    assert len(set(versions.values())) == 6
    assert prompt_version("num") == versions[("num", 0)]  # stable
    monkeypatch.setitem(prompts.TEMPLATES, "rules", prompts.TEMPLATES["rules"] + " Be brief.")
    assert prompt_version("num") != versions[("num", 0)]
    monkeypatch.setitem(prompts.TEMPLATES, "motion", "changed")
    assert prompt_version("rt", True) != versions[("rt", 1)]
    assert prompt_version("rt", False) != versions[("rt", 0)]  # rules changed too


def _bearing(origin: np.ndarray, north: np.ndarray, target: np.ndarray) -> float:
    """Degrees clockwise seen from above (world Z up) from origin->north to origin->target."""
    n, v = (north - origin)[:2], (target - origin)[:2]
    ccw = math.degrees(math.atan2(n[0] * v[1] - n[1] * v[0], n @ v))
    return (-ccw) % 360.0


def test_orientation_lines_match_the_scene_and_the_answer(all_tasks_run, scenes):
    checked = Counter()
    for row in _rows(all_tasks_run):
        meta = json.loads(row["meta"])
        facts = sample_facts(row, scenes)
        text = orientation_text(facts)
        if row["task"] == "mi_object_object" and meta["kind"] == "direction":
            scene = scenes.get(meta["scene_id"])
            o, n, t = (
                scene.object(meta[k]).box[:3] for k in ("origin_id", "north_id", "target_id")
            )
            stated = float(re.search(r"bearing of ([\d.]+) degrees", text).group(1))
            assert stated == pytest.approx(_bearing(o, n, t), abs=0.1)
            word = re.search(r"that is (\w+)\.", text).group(1)
            assert word == meta["direction"] == sector(_bearing(o, n, t))
            dist = float(re.search(rf"to {re.escape(facts.objects[0].name)} ([\d.]+) m", text)[1])
            assert dist == pytest.approx(float(np.linalg.norm((n - o)[:2])), abs=0.006)
            checked["object_direction"] += 1
        elif row["task"] == "mi_camera_camera" and meta["kind"] == "heading":
            end = (45 * COMPASS.index(meta["base"]) + meta["turn_deg"]) % 360
            assert f"= {end:.1f} degrees" in text and text.endswith(f"{meta['direction']}.")
            checked["heading"] += 1
        elif row["task"] == "mi_camera_camera" and meta["kind"] == "position":
            assert text.endswith(f"that is {meta['direction']}.")
            checked["position"] += 1
        elif row["task"] == "mi_camera_object" and meta["kind"] in ("facing", "object_north"):
            assert text.endswith(f"that is {meta['direction']}.")
            checked["camera_object"] += 1
        elif row["task"] == "mi_camera_motion":
            x, y, z = meta["translation_m"]
            assert f"x {x:+.2f} m, y {y:+.2f} m, z {z:+.2f} m" in text
            assert f"{math.sqrt(x * x + y * y + z * z):.2f} m in all" in text
            assert f"pan {meta['pan_tilt_roll_deg'][0]:+.1f} degrees" in text
            if meta["family"] == "translation_distance":
                assert f"{meta['distance_m']:.2f} m in all" in text
            checked["motion"] += 1
    assert all(checked[k] > 0 for k in ("object_direction", "heading", "position", "motion"))


def test_camera_motion_requests_ask_for_parallax(all_tasks_run, scenes):
    facts = sample_facts(_rows(all_tasks_run, "mi_camera_motion")[0], scenes)
    text = cot_request(facts, "num")[0].messages[0]["content"][-1]["text"]
    assert "parallax" in text and prompts.TEMPLATES["motion_num"] in text
    other = sample_facts(_rows(all_tasks_run, "mi_camera_object")[0], scenes)
    assert "parallax" not in cot_request(other, "num")[0].messages[0]["content"][-1]["text"]


# ----------------------------------------------------------------------------- parsing


def test_triplets_are_found_anywhere_and_bad_ones_named():
    good = {"question": "Q?", "reasoning": "The chair {is} left.", "answer": "A. left"}
    fenced = "Sure, here it is:\n```json\n" + json.dumps(good) + "\n```\nHope it helps."
    bare = "Answer follows " + json.dumps(good, indent=2) + " done"
    for reply in (fenced, bare, json.dumps(good)):
        assert parse_triplet(reply) == Triplet("Q?", "The chair {is} left.", "A. left")
    cases = {
        "": "empty reply",
        "no json here": "no JSON object",
        '{"question": "q", "answer": "a"}': "missing key 'reasoning'",
        '{"question": "q", "reasoning": 3, "answer": "a"}': "'reasoning' is not a string (int)",
        '{"question": "q", "reasoning": " ", "answer": "a"}': "'reasoning' is empty",
        '{"question": "q", "reasoning": "x </think> y", "answer": "a"}': "think tags",
        '{"unrelated": 1} {"question": [1], "reasoning": "r", "answer": "a"}': "'question' is not",
    }
    for reply, reason in cases.items():
        got = parse_triplet(reply)
        assert isinstance(got, Malformed) and reason in got.reason, (reply, got)
    assert isinstance(parse_triplet(None), Malformed)
    hostile = "{" * 100_000 + '"'
    assert isinstance(parse_triplet(hostile), Malformed)


def test_hallucinations_are_whole_words_plural_and_longest_first():
    vocab = Vocabulary(["chair", "coffee table", "table", "shelf", "sofa", "lamp", "trash can"])
    allowed = {"chair", "coffee table"}
    assert hallucinated("Two chairs stand by the Coffee  Table.", allowed, vocab) == []
    assert hallucinated("The shelves and a table.", allowed, vocab) == ["shelf", "table"]
    assert hallucinated("A tablet, a sofabed and lampshade.", allowed, vocab) == []
    assert hallucinated("the trash cans near the sofa", allowed, vocab) == ["trash can", "sofa"]
    assert vocab.mentions("sofa, chair, sofas") == ["sofa", "chair"]
    # "box" and "picture" are categories and ordinary words: not checked unless asked
    generic = Vocabulary(["box", "picture", "chair"])
    assert hallucinated("The 3D boxes in the first picture.", {"chair"}, generic) == []
    strict = Vocabulary(["box", "picture", "chair"], ignore=())
    assert hallucinated("The 3D boxes in the first picture.", {"chair"}, strict) == [
        "box",
        "picture",
    ]


def test_config_is_strict_and_named(tmp_path, all_tasks_run, engine_scene_dirs):
    base = _config(all_tasks_run, engine_scene_dirs, tmp_path / "o")
    with pytest.raises(ConfigError, match="cfg: kind"):
        parse_cot_config({**base, "kind": "fancy"}, "cfg")
    with pytest.raises(ConfigError, match="needs a teacher"):
        parse_cot_config({**base, "kind": "rt_bev"}, "cfg")
    with pytest.raises(ConfigError, match=r"teacher\.temprature"):
        parse_cot_config({**base, "teacher": {"url": "http://x", "temprature": 1}}, "cfg")
    with pytest.raises(ConfigError, match="limit"):
        parse_cot_config({**base, "kind": "num", "limit": True}, "cfg")
    path = tmp_path / "cot.yaml"
    path.write_text(json.dumps({**base, "kind": "num"}))
    config = load_cot_config(path, ["limit=5", "teacher.url=http://127.0.0.1:9"])
    assert config.limit == 5 and config.tasks == list(TASKS) and config.max_attempts == 3
    assert config.teacher.url == "http://127.0.0.1:9" and config.cache == tmp_path / "o" / "cache"
    path.write_text(json.dumps({**base, "scenes": str(tmp_path / "none"), "kind": "num"}))
    with pytest.raises(ConfigError, match=r"scenes: .* is not a directory"):
        load_cot_config(path)


# ----------------------------------------------------------------------------- the server


_PROMPT = re.compile(r"Question:\n(.*?)\n\nReference answer: (.*?)\n\n", re.DOTALL)
POLICIES = ("right", "retry_right", "wrong", "malformed", "halluc", "r429", "timeout")


def _wrong(reward: dict, answer: str) -> str:
    gt = reward["ground_truth"]
    if reward["mode"] == "numeric":
        return f"{float(gt) * 2 + 1:.2f}"
    if reward["mode"] == "mcq":
        return "Z. none of these" if gt != "Z" else "A."
    return "upside down"


class Teacher:
    """The scripted teacher: per sample (question + reference answer), a policy."""

    def __init__(self, plan: dict[tuple[str, str], dict], timeout_delay: float = 0.0) -> None:
        self.plan = plan
        self.seen: Counter[tuple[str, str]] = Counter()
        self.ok_replies = 0
        self.timeout_delay = timeout_delay
        self.chat_calls = 0

    def reply(self, key, seed: int) -> FakeReply:
        entry = self.plan[key]
        policy, answer = entry["policy"], key[1]
        self.seen[key] += 1
        reasoning = "From image 1 to image 2 I compare positions; the geometry gives the result."
        if policy == "timeout":
            return FakeReply(delay=self.timeout_delay, body=completion_body(["late"]))
        if policy == "r429" and self.seen[key] == 1:
            return FakeReply(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if policy == "malformed":
            text = f"I think the answer is {answer}."
        else:
            if policy == "wrong" or (policy == "retry_right" and seed == 0):
                answer = _wrong(entry["reward"], answer)
            if policy == "halluc":
                reasoning += f" The {entry['absent']} next to it confirms this."
            triplet = {"question": "Revised: " + key[0], "reasoning": reasoning, "answer": answer}
            text = "Here you go:\n```json\n" + json.dumps(triplet) + "\n```"
        self.ok_replies += 1
        return FakeReply(body=completion_body([text], prompt_tokens=100))

    def __call__(self, call: FakeCall) -> FakeReply:
        if call.path.endswith("/models"):
            return FakeReply(body={"object": "list", "data": [{"id": "teacher-x"}]})
        self.chat_calls += 1
        text = call.body["messages"][-1]["content"][-1]["text"]
        question, answer = _PROMPT.search(text).groups()
        return self.reply((question, answer), call.body["seed"])


def _plan(config, scenes, policies=POLICIES) -> tuple[dict, dict[str, str]]:
    """Policy per prompt key (round robin over the selected samples) and per sample id."""
    plan, by_id = {}, {}
    for k, row in enumerate(select_samples(config)):
        facts = sample_facts(row, scenes)
        key = (question_text(facts), facts.answer)
        absent = sorted(facts.scene_labels - facts.labels - set(GENERIC_WORDS))
        policy = policies[k % len(policies)]
        if policy == "halluc" and not absent:
            policy = "right"
        plan.setdefault(key, {"policy": policy, "reward": facts.reward, "absent": absent[:1]})
        plan[key]["absent"] = (absent or ["?"])[0]
        by_id[row["id"]] = plan[key]["policy"]
    return plan, by_id


EXPECTED = {
    "right": ("kept", 1),
    "retry_right": ("kept", 2),
    "r429": ("kept", 1),
    "wrong": ("wrong_answer", 2),
    "malformed": ("malformed", 2),
    "halluc": ("hallucination", 2),
    "timeout": ("timeout", 2),
}


def _records(out: Path) -> dict[str, dict]:
    return {
        o["id"]: o
        for p in sorted((out / "chunks").glob("*.json"))
        for o in json.loads(p.read_text())["samples"]
    }


def _decode(url: str) -> Image.Image:
    return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))


def test_teacher_run_keeps_right_answers_and_counts_every_rejection(
    tmp_path, all_tasks_run, engine_scene_dirs, scenes
):
    out = tmp_path / "cot"
    teacher_cfg = {
        "url": "http://127.0.0.1:1",
        "model": "teacher-x",
        "timeout": 0.5,
        "max_retries": 1,
        "backoff": 0.01,
        "concurrency": 4,
        "price_per_1k_prompt": 1.0,
        "price_per_1k_completion": 2.0,
    }
    raw = _config(all_tasks_run, engine_scene_dirs, out, kind="rt_bev", limit=21, seed=0)
    raw.update(max_attempts=2, chunk_size=8, teacher=teacher_cfg)
    plan, by_id = _plan(parse_cot_config(raw), scenes)
    assert set(by_id.values()) == set(POLICIES)
    teacher = Teacher(plan, timeout_delay=1.0)
    server = FakeOpenAIServer(teacher).__enter__()
    try:
        raw["teacher"]["url"] = server.url
        config = parse_cot_config(raw)
        report = run_cot(config)
        calls = [c for c in server.calls if c.path.endswith("/chat/completions")]
        assert 1 < server.max_in_flight <= 4  # the teacher's concurrency
        _check_first_run(report, config, calls, teacher, plan, by_id, scenes, all_tasks_run, out)
        # rerun on the same folder (the cache keys hold the endpoint, so the same server):
        # complete chunks are skipped; chunks with a timed-out sample are redone, from the cache
        # except the timed-out requests (answered now)
        for key in plan:
            if plan[key]["policy"] == "timeout":
                plan[key]["policy"] = "right"
        shards_before = {p.name for p in list_shards(out)}
        before = len(server.calls)
        again = run_cot(config)
        calls = server.calls[before:]
    finally:
        server.__exit__(None, None, None)
    n = Counter(by_id.values())
    assert len(calls) == n["timeout"] and again.calls == n["timeout"]
    assert again.kept == report.kept + n["timeout"] and "timeout" not in again.rejected
    redone = {i // 8 for i, r in enumerate(select_samples(config)) if by_id[r["id"]] == "timeout"}
    assert again.chunks_resumed == again.chunks_done - len(redone)
    assert {p.name for p in list_shards(out)} >= shards_before


def _check_first_run(report, config, calls, teacher, plan, by_id, scenes, all_tasks_run, out):

    # every sample's outcome is the one its policy calls for, with its attempts
    records = _records(out)
    assert set(records) == set(by_id)
    for sid, policy in by_id.items():
        status, attempts = EXPECTED[policy]
        assert (records[sid]["status"], records[sid]["attempts"]) == (status, attempts), policy
    expected = Counter(EXPECTED[p][0] for p in by_id.values())
    assert report.kept == expected["kept"] and report.selected == 21
    assert report.rejected == {k: v for k, v in expected.items() if k != "kept"}
    per_task = Counter()
    for counts in report.per_task.values():
        per_task.update(counts)
    assert per_task == expected
    assert set(report.per_task) <= set(TASKS)
    # failed attempts: retry_right 1, wrong/malformed/halluc/timeout 2 each
    n = Counter(by_id.values())
    assert report.attempt_failures == {
        "wrong_answer": n["retry_right"] + 2 * n["wrong"],
        "malformed": 2 * n["malformed"],
        "hallucination": 2 * n["halluc"],
        "timeout": 2 * n["timeout"],
    }
    assert all("429" not in r["detail"] for r in records.values())
    # 429s retried by the backend (two HTTP calls, one attempt); timeouts: 2 attempts x 2 tries
    assert sum(v for k, v in teacher.seen.items() if plan[k]["policy"] == "r429") == 2 * n["r429"]
    assert (
        sum(v for k, v in teacher.seen.items() if plan[k]["policy"] == "timeout")
        == 4 * n["timeout"]
    )
    # tokens: 100 prompt tokens per good reply; completion = words; cost at the given prices
    assert report.tokens["prompt"] == 100 * teacher.ok_replies
    assert report.cost == pytest.approx(
        report.tokens["prompt"] / 1000 + 2 * report.tokens["completion"] / 1000
    )
    # the request carries both pictures and then the BEV as image parts
    first = calls[0].body["messages"][-1]["content"]
    urls = [c["image_url"]["url"] for c in first if c["type"] == "image_url"]
    assert len(urls) == 3 and [c["type"] for c in first][-3:] == ["text", "image_url", "text"]
    text = first[-1]["text"]
    question, answer = _PROMPT.search(text).groups()
    row = next(r for r in select_samples(config) if r["id"] in records)
    facts = {
        (question_text(f), f.answer): f
        for f in (sample_facts(r, scenes, bev=True) for r in select_samples(config))
    }[(question, answer)]
    sent = [_decode(u).convert("RGB") for u in urls]
    assert [s.size for s in sent[:2]] == [im.size for im in facts.images]
    assert np.array_equal(np.asarray(sent[0]), np.asarray(facts.images[0].convert("RGB")))
    bev = facts.bev.convert("RGB").resize(sent[2].size)
    assert sent[2].size[0] == sent[2].size[1]
    assert np.abs(np.asarray(bev, float) - np.asarray(sent[2], float)).mean() < 12
    assert row is not None

    # kept samples: the CoT contract, and compute_reward 100 %
    originals = {r["id"]: r for r in _rows(all_tasks_run)}
    kept = [r for s in list_shards(out) for r in iter_rows(s)]
    assert len(kept) == report.kept
    for r in kept:
        meta, reward = json.loads(r["meta"]), json.loads(r["reward"])
        text = r["messages"][-1]["content"][0]["text"]
        score = compute_reward(text, reward)
        assert score["accuracy"] == 1.0 and score["format"] == 1.0
        assert r["messages"][0]["content"][0]["text"] == THINK_SYSTEM_PROMPT
        cot = meta["cot"]
        parent = originals[cot["parent_id"]]
        assert by_id[cot["parent_id"]] in ("right", "retry_right", "r429")
        assert cot["source"] == "teacher" and cot["teacher"] == "teacher-x"
        assert cot["kind"] == "rt_bev" and cot["attempts"] == EXPECTED[by_id[parent["id"]]][1]
        motion = r["task"] == "mi_camera_motion"
        assert cot["prompt_version"] == prompt_version("rt_bev", motion)
        assert cot["tokens"]["prompt"] == 100 * cot["attempts"]
        assert cot["revised_question"].startswith("Revised: ")
        assert r["messages"][1] == parent["messages"][0]  # the original user turn
        assert [im["bytes"] for im in r["images"]] == [im["bytes"] for im in parent["images"]]
        assert r["reward"] == parent["reward"] and r["task"] == parent["task"]
        assert {k: v for k, v in meta.items() if k != "cot"} == json.loads(parent["meta"])
        assert text.startswith("<think>From image 1") and r["answer"] in text
    words = [records[i]["words"] for i in records if records[i]["status"] == "kept"]
    assert report.words == {"min": min(words), "median": float(np.median(words)), "max": max(words)}
    written = json.loads((out / "report.json").read_text())
    assert written["kept"] == report.kept and written["rejected"] == report.rejected
    md = (out / "report.md").read_text()
    assert f"kept {report.kept} of 21" in md and "| mi_" in md and "## Rejected examples" in md


def test_a_cached_rerun_calls_nothing_and_resumes_and_cleans(
    tmp_path, all_tasks_run, engine_scene_dirs, scenes
):
    raw = _config(all_tasks_run, engine_scene_dirs, tmp_path / "a", kind="num", limit=10)
    raw.update(chunk_size=4, cache_dir=str(tmp_path / "cache"))
    raw["teacher"] = {"url": "http://127.0.0.1:1", "model": "m", "backoff": 0.01}
    plan, by_id = _plan(parse_cot_config(raw), scenes, ("right", "wrong", "malformed", "halluc"))
    with FakeOpenAIServer(Teacher(plan)) as server:
        raw["teacher"]["url"] = server.url
        first = run_cot(parse_cot_config(raw))
        n_first = len(server.calls)
        assert n_first > 0 and first.calls == n_first
        # same output folder: every chunk resumes, nothing is asked
        resumed = run_cot(parse_cot_config(raw))
        assert resumed.chunks_resumed == 3 and len(server.calls) == n_first
        # a new output folder sharing the cache: all answers from disk, zero calls
        fresh = run_cot(parse_cot_config({**raw, "output_dir": str(tmp_path / "b")}))
        assert len(server.calls) == n_first and fresh.calls == 0 and fresh.cached == n_first
    assert (first.kept, first.rejected, first.per_task) == (
        fresh.kept,
        fresh.rejected,
        fresh.per_task,
    )
    assert first.kept == sum(p == "right" for p in by_id.values()) > 0
    rows_a = [r["id"] for s in list_shards(tmp_path / "a") for r in iter_rows(s)]
    rows_b = [r["id"] for s in list_shards(tmp_path / "b") for r in iter_rows(s)]
    assert rows_a == rows_b  # deterministic ids and order
    # other settings (another seed) in the same folder: the old shards and records go, a
    # shard that is not a CoT shard stays
    foreign = tmp_path / "a" / "data" / "shard-00099-abcdefabcdef.parquet"
    shutil.copy(list_shards(all_tasks_run)[0], foreign)
    old_shards = set(list_shards(tmp_path / "a")) - {foreign}
    assert old_shards
    with FakeOpenAIServer(Teacher(plan)) as server:
        raw["teacher"]["url"] = server.url
        other = run_cot(parse_cot_config({**raw, "seed": 1, "output_dir": str(tmp_path / "a")}))
    assert other.removed_stale == 3 and other.chunks_resumed == 0
    assert len(list((tmp_path / "a" / "chunks").glob("*.json"))) == 3
    assert foreign.exists() and not (old_shards & set(list_shards(tmp_path / "a")))


def test_rewrite_condenses_repetitive_reasoning_only_when_it_still_checks(
    tmp_path, all_tasks_run, engine_scene_dirs, scenes
):
    raw = _config(all_tasks_run, engine_scene_dirs, tmp_path / "o", kind="rt", limit=6)
    raw.update(teacher={"url": "http://127.0.0.1:1", "model": "s"}, rewrite={"repetition": 0.3})
    config = parse_cot_config(raw)
    answers = {}
    for k, row in enumerate(select_samples(config)):
        facts = sample_facts(row, scenes)
        answers[question_text(facts)] = (facts.answer, k % 2 == 0, facts.reward)
    loop = "the first view shows it on the left and the second view shows it again. " * 6

    def reply(request, _index):
        text = request.messages[-1]["content"][-1]["text"]
        if "repeats itself" in text:
            question = re.search(r"Question:\n(.*?)\n\nReasoning:", text, re.DOTALL)[1]
            answer, good, reward = answers[question]
            answer = answer if good else _wrong(reward, answer)
            short = "It is on the left in both views, so the answer follows."
            return json.dumps({"question": question, "reasoning": short, "answer": answer})
        question, answer = _PROMPT.search(text).groups()
        return json.dumps({"question": question, "reasoning": loop, "answer": answer})

    assert repetition(loop) > 0.5 and repetition("a b c d e f g h i j k") == 0.0
    report = run_cot(config, backend=ScriptedBackend(reply))
    assert report.kept == 6 and report.rewritten == 3
    for r in (r for s in list_shards(tmp_path / "o") for r in iter_rows(s)):
        cot = json.loads(r["meta"])["cot"]
        text = r["messages"][-1]["content"][0]["text"]
        good = cot["rewritten"]
        assert ("It is on the left" in text) == good and (loop.strip() in text) != good
        assert compute_reward(text, json.loads(r["reward"]))["accuracy"] == 1.0


def test_offline_runs_call_offline_cot(tmp_path, all_tasks_run, engine_scene_dirs, monkeypatch):
    from vst.reasoning import offline

    def fake(facts, kind):
        if facts.task == "mi_camera_motion":
            return None
        return offline.OfflineCot(f"{kind}: from the boxes the answer follows.", facts.answer)

    monkeypatch.setattr(offline, "offline_cot", fake)
    raw = _config(all_tasks_run, engine_scene_dirs, tmp_path / "o", kind="num", limit=12)
    report = run_cot(parse_cot_config(raw))
    motion = sum(r["task"] == "mi_camera_motion" for r in select_samples(parse_cot_config(raw)))
    assert report.kept == 12 - motion and report.rejected == ({"skipped": motion} if motion else {})
    assert report.calls == 0 and report.teacher is None
    for r in (r for s in list_shards(tmp_path / "o") for r in iter_rows(s)):
        cot = json.loads(r["meta"])["cot"]
        assert cot["source"] == "offline" and cot["teacher"] is None and cot["attempts"] == 1
        assert r["messages"][-1]["content"][0]["text"].startswith("<think>num: from the boxes")


def test_bad_rows_are_skipped_with_their_reason(tmp_path, all_tasks_run, engine_scene_dirs):
    """Rows whose scene is gone or whose meta holds odd values do not stop the run: they are
    reported as skipped, with the reason."""
    data = tmp_path / "data"
    data.mkdir()
    odd = None
    for shard in list_shards(all_tasks_run):
        rows = list(iter_rows(shard))
        for row in rows:
            meta = json.loads(row["meta"])
            if odd is None and meta.get("kind") == "direction" and "floor_dists" in meta:
                row["meta"] = json.dumps({**meta, "floor_dists": ["far", "near"]})
                odd = row["id"]
        with ShardWriter(data / shard.name) as writer:
            for row in rows:
                writer.write(row)
            writer.close()
    assert odd is not None
    scenes_dir = tmp_path / "scenes"
    for d in engine_scene_dirs[:2]:
        shutil.copytree(d, scenes_dir / Path(d).name)
    raw = _config(data, engine_scene_dirs, tmp_path / "o", kind="num", limit=12)
    raw.update(scenes=str(scenes_dir), teacher={"url": "http://127.0.0.1:1", "model": "s"})
    raw.update(limit=None, tasks=["mi_object_object"])
    config = parse_cot_config(raw)

    def reply(request, _index):
        question, answer = _PROMPT.search(request.messages[-1]["content"][-1]["text"]).groups()
        return json.dumps({"question": question, "reasoning": "It follows.", "answer": answer})

    report = run_cot(config, backend=ScriptedBackend(reply))
    gone = Path(engine_scene_dirs[2]).name
    rows = select_samples(config)
    lost = {r["id"] for r in rows if json.loads(r["meta"])["scene_id"] == gone}
    assert lost and odd not in lost and report.selected == len(rows) == 24
    assert report.rejected == {"skipped": len(lost) + 1} and report.kept == 24 - len(lost) - 1
    records = _records(tmp_path / "o")
    assert {i for i, o in records.items() if o["status"] == "skipped"} == lost | {odd}
    for i in lost:
        assert records[i]["detail"].endswith(f"scene '{gone}' is not under the scenes folder")
    assert records[odd]["detail"].startswith("cannot build the request: ValueError")


def test_revised_questions_and_unchecked_modes(tmp_path, all_tasks_run, engine_scene_dirs):
    raw = _config(all_tasks_run, engine_scene_dirs, tmp_path / "o", kind="rt", limit=6)
    raw.update(tasks=["mi_camera_object", "mi_scene_caption"], revised_question=True)
    raw["teacher"] = {"url": "http://127.0.0.1:1", "model": "s"}
    config = parse_cot_config(raw)

    def reply(request, _index):
        question, answer = _PROMPT.search(request.messages[-1]["content"][-1]["text"]).groups()
        triplet = {"question": "In other words: " + question, "reasoning": "So.", "answer": answer}
        return json.dumps(triplet)

    rows = select_samples(config)
    captions = sum(r["task"] == "mi_scene_caption" for r in rows)
    assert 0 < captions < 6
    report = run_cot(config, backend=ScriptedBackend(reply))
    assert report.kept == 6 - captions and report.rejected == {"skipped": captions}
    skipped = [o for o in _records(tmp_path / "o").values() if o["status"] == "skipped"]
    assert {o["detail"] for o in skipped} == {"reward mode 'caption' is not rule-checkable"}
    originals = {r["id"]: r for r in rows}
    for r in (r for s in list_shards(tmp_path / "o") for r in iter_rows(s)):
        parent = originals[json.loads(r["meta"])["cot"]["parent_id"]]["messages"][0]["content"]
        user = r["messages"][1]["content"]
        # the pictures and their labels stay in place; the revised question replaces the text
        assert user[:-1] == [c for c in parent if c["type"] == "image" or c["text"] in LABELS]
        assert user[-1]["text"].startswith("In other words: ")
        assert user[-1]["text"].removeprefix("In other words: ") == parent[-1]["text"]


LABELS = ("Image 1:", "Image 2:")


# ----------------------------------------------------------------------------- tiny model


@pytest.mark.slow
def test_tiny_checkpoint_behind_the_server_is_mostly_rejected(
    tmp_path, tiny_model_dir, all_tasks_run, engine_scene_dirs
):
    from vst.models.backends import open_backend
    from vst.models.server import ServerThread, create_app

    local = open_backend(tiny_model_dir, batch_size=4)
    try:
        with ServerThread(create_app(local, "tiny")) as server:
            raw = _config(all_tasks_run, engine_scene_dirs, tmp_path / "o", kind="num", limit=4)
            raw.update(max_attempts=1)
            raw["teacher"] = {"url": server.url, "max_tokens": 16, "temperature": 0.0}
            report = run_cot(parse_cot_config(raw))
    finally:
        local.close()
    assert report.selected == 4 and report.calls == 4 and report.teacher == "tiny"
    assert report.kept <= 1 and sum(report.rejected.values()) == 4 - report.kept
    assert report.rejected.get("malformed", 0) >= 3
    md = (tmp_path / "o" / "report.md").read_text()
    assert f"malformed {report.rejected['malformed']}" in md
    assert report.tokens["prompt"] > 0 and report.tokens["completion"] > 0
