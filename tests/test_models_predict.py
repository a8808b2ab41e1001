"""`vst predict`: samples -> requests, the predictions JSONL (rewards, resume after a kill,
retries, skips) and the command.

Most tests write small shards directly (a few samples of four tasks: mcq, numeric, a
multi-turn numeric one and a video one); one runs the real engine on the shared synthetic
scenes and checks that answering the ground truth scores 1.0 on every rule-checkable task.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from vst.cli import app
from vst.engine.sample import Sample, assistant, user
from vst.engine.writer import ShardWriter, sample_row, shard_name, write_shard
from vst.models import predict_cli
from vst.models.backends import Sampling, ScriptedBackend
from vst.models.predict import PredictError, report_paths, run_predict
from vst.models.predictions import PredictionsLockedError, PredictionStore
from vst.models.prompts import PLAIN_SYSTEM_PROMPT, THINK_SYSTEM_PROMPT
from vst.models.requests import image_fingerprint
from vst.models.samples import sample_request

# -- a small dataset, written directly -------------------------------------------------------


def _image(seed: int, size: tuple[int, int] = (56, 84)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8), "RGB")


def _mcq(k: int) -> Sample:
    letter = "AB"[k % 2]
    return Sample(
        task="t_mcq",
        scenario="single_image",
        messages=[user(None, f"Q{k}: which is closer?\nA. chair\nB. table"), assistant(letter)],
        images=[_image(k)],
        answer=letter,
        reward={"mode": "mcq", "ground_truth": letter},
        meta={"split": "train" if k % 2 else "val"},
    )


def _numeric(k: int) -> Sample:
    value = f"{1.5 + k}"
    return Sample(
        task="t_numeric",
        scenario="single_image",
        messages=[user(None, f"Q{k}: how far is the lamp (m)?"), assistant(value)],
        images=[_image(100 + k)],
        answer=value,
        reward={"mode": "numeric", "ground_truth": float(value)},
        meta={"split": "val"},
    )


def _multi_turn(k: int) -> Sample:
    return Sample(
        task="t_multi",
        scenario="single_image",
        messages=[
            user(None, f"Q{k}: how tall is the chair (cm)?"),
            assistant("80"),
            user("And the table?"),
            assistant(f"{70 + k}"),
        ],
        images=[_image(200 + k)],
        answer=f"{70 + k}",
        reward={"mode": "numeric", "ground_truth": 70.0 + k},
        meta={"split": "val"},
    )


def _video(k: int) -> Sample:
    frames = [_image(300 + 10 * k + f) for f in range(4)]
    return Sample(
        task="t_video",
        scenario="video",
        messages=[user(frames, f"Q{k}: how many chairs?"), assistant(f"{k + 2}")],
        images=[],
        videos=[frames],
        answer=f"{k + 2}",
        reward={"mode": "numeric", "ground_truth": float(k + 2)},
        meta={"split": "val", "video_fps": 2.5},
    )


def _samples() -> list[Sample]:
    out = []
    for k in range(3):
        out += [_mcq(k), _numeric(k), _multi_turn(k), _video(k)]
    return out


def _write_dataset(folder: Path, samples: list[Sample], per_shard: int = 5) -> Path:
    data = folder / "data"
    data.mkdir(parents=True)
    for i in range(0, len(samples), per_shard):
        key = hashlib.sha256(str(i).encode()).hexdigest()
        write_shard(data / shard_name(i // per_shard, key), samples[i : i + per_shard], "PNG")
    return folder


@pytest.fixture
def dataset(tmp_path) -> Path:
    return _write_dataset(tmp_path / "ds", _samples())


def _truth(request, index) -> str:
    """The sample's reference answer (requests carry the sample id)."""
    return TRUTH[request.id]


TRUTH = {s.id: s.answer for s in _samples()}
BY_ID = {s.id: s for s in _samples()}


def _sent(backend: ScriptedBackend) -> list[str]:
    return [r.id for call in backend.calls for r in call]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


# -- samples -> requests ---------------------------------------------------------------------


def _rows(folder: Path) -> list[tuple[str, dict]]:
    from vst.engine.writer import iter_rows, list_shards

    return [(p.name, row) for p in list_shards(folder) for row in iter_rows(p)]


def test_multi_turn_row_keeps_earlier_turns_and_drops_the_answer(dataset):
    shard, row = next((s, r) for s, r in _rows(dataset) if r["task"] == "t_multi")
    item = sample_request(row, system="think", where=shard)
    sample = BY_ID[row["id"]]
    assert item.id == sample.id and item.request.id == sample.id
    assert (
        item.answer == sample.answer
        and item.reward["ground_truth"] == sample.reward["ground_truth"]
    )
    roles = [m["role"] for m in item.request.messages]
    assert roles == ["system", "user", "assistant", "user"]
    assert item.request.messages[0]["content"] == [{"type": "text", "text": THINK_SYSTEM_PROMPT}]
    assert item.request.messages[2]["content"] == [{"type": "text", "text": "80"}]
    assert item.request.messages[3]["content"] == [{"type": "text", "text": "And the table?"}]
    # the image decoded from the shard's PNG bytes has the original pixels
    assert image_fingerprint(item.request.images[0]) == image_fingerprint(sample.images[0])
    # a Sample object and its shard row make the same request
    assert sample_request(sample, system="think").request.fingerprint() == (
        item.request.fingerprint()
    )
    plain = sample_request(row, system="plain").request
    assert plain.messages[0]["content"][0]["text"] == PLAIN_SYSTEM_PROMPT
    assert [m["role"] for m in sample_request(row).request.messages] == [
        "user",
        "assistant",
        "user",
    ]


def test_video_row_carries_frames_and_fps(dataset):
    shard, row = next((s, r) for s, r in _rows(dataset) if r["task"] == "t_video")
    request = sample_request(row, where=shard).request
    assert len(request.videos) == 1 and request.images == ()
    video = request.videos[0]
    assert video.fps == 2.5 and len(video.frames) == 4
    frames = BY_ID[row["id"]].videos[0]
    assert [image_fingerprint(f) for f in video.frames] == [image_fingerprint(f) for f in frames]
    # the fps is part of what the model sees, so of the fingerprint
    faster = dict(row, meta=json.dumps({"video_fps": 5.0}))
    assert sample_request(faster).request.fingerprint() != request.fingerprint()


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"meta": "{}"}, "meta.video_fps is missing"),
        ({"meta": '{"video_fps": 0}'}, "video_fps must be a positive number"),
        ({"meta": '{"video_fps": "fast"}'}, "video_fps is 'fast'"),
        ({"videos": []}, "messages have 1 video item(s) but the sample has 0"),
    ],
)
def test_bad_video_rows_name_shard_and_id(dataset, change, reason):
    shard, row = next((s, r) for s, r in _rows(dataset) if r["task"] == "t_video")
    with pytest.raises(ValueError) as err:
        sample_request(dict(row, **change), where=shard)
    message = str(err.value)
    assert message.startswith(f"{shard}: sample {row['id']}: ") and reason in message
    assert "\n" not in message


def test_bad_image_rows_name_shard_and_id(dataset):
    shard, row = next((s, r) for s, r in _rows(dataset) if r["task"] == "t_mcq")
    bad = dict(row, images=[{"bytes": b"\x89PNG\r\n\x1a\nnot really", "path": None}])
    with pytest.raises(ValueError, match=rf"^{shard}: sample {row['id']}: image 0 cannot be"):
        sample_request(bad, where=shard)
    pathonly = dict(row, images=[{"bytes": None, "path": "/etc/passwd"}])
    with pytest.raises(ValueError, match="image 0 has no image bytes"):
        sample_request(pathonly, where=shard)
    extra = dict(row, images=row["images"] * 2)
    with pytest.raises(ValueError, match=r"1 image item\(s\) but the sample has 2"):
        sample_request(extra, where=shard)
    with pytest.raises(ValueError, match="unknown reward mode"):
        sample_request(dict(row, reward='{"mode": "vibes", "ground_truth": 1}'), where=shard)
    with pytest.raises(ValueError, match="no user turn"):
        sample_request(dict(row, messages=[row["messages"][1]], images=[]), where=shard)


# -- predictions -----------------------------------------------------------------------------


def test_ground_truth_scores_one_and_wrong_answers_zero(dataset, tmp_path):
    out = tmp_path / "truth.jsonl"
    backend = ScriptedBackend(_truth, model_id="oracle")
    report = run_predict(backend, dataset, out, chunk_size=5)
    lines = _lines(out)
    assert len(lines) == 12 and report.written == 12 and not report.failed
    assert [ln["id"] for ln in lines] == [s.id for s in _samples()]  # plan order
    for task in ("t_mcq", "t_numeric", "t_multi", "t_video"):
        stats = report.per_task[task]
        assert (stats["samples"], stats["n"], stats["accuracy"]) == (3, 3, 1.0)
        assert stats["format"] == 0.0  # plain answers, no <think> block
    assert report.per_task["all"]["accuracy"] == 1.0
    first = lines[0]
    sample = _samples()[0]
    assert first == {
        "dataset": "ds",
        "id": sample.id,
        "task": "t_mcq",
        "index": 0,
        "request": sample_request(sample).request.fingerprint(),
        "model": "oracle",
        "sampling": Sampling().key(),
        "system": None,
        "text": "A",
        "answer": "A",
        "reward": {"overall": 0.5, "format": 0.0, "accuracy": 1.0, "checkable": True},
        "reference": "A",
        "finish_reason": "stop",
        "prompt_tokens": 8,
        "completion_tokens": 1,
    }
    summary = json.loads(report_paths(out)[0].read_text())
    assert summary["per_task"]["t_video"]["accuracy"] == 1.0 and summary["model"] == "oracle"
    assert "| t_multi | 3 | 3 | 1.000 | 0.000 | 0 | 0 |" in report_paths(out)[1].read_text()

    wrong = ScriptedBackend(lambda r, i: "<think>hm</think>zzz 12345", model_id="wrong")
    report = run_predict(wrong, dataset, tmp_path / "wrong.jsonl", system="think")
    for task in ("t_mcq", "t_numeric", "t_multi", "t_video"):
        assert (report.per_task[task]["accuracy"], report.per_task[task]["format"]) == (0.0, 1.0)
    sent = wrong.calls[0][0]
    assert sent.messages[0]["content"][0]["text"] == THINK_SYSTEM_PROMPT


def test_n_choices_write_one_line_each_and_filters_apply(dataset, tmp_path):
    out = tmp_path / "p.jsonl"
    backend = ScriptedBackend(lambda r, i: TRUTH[r.id] if i == 0 else "no idea", model_id="m")
    sampling = Sampling(temperature=0.7, n=2, seed=3)
    report = run_predict(
        backend, dataset, out, tasks=["t_m*"], splits=["val"], limit=3, sampling=sampling
    )
    planned = [s for s in _samples() if s.task in ("t_mcq", "t_multi") and s.meta["split"] == "val"]
    assert [r.id for r in backend.calls[0]] == [s.id for s in planned[:3]]
    lines = _lines(out)
    assert [(ln["id"], ln["index"]) for ln in lines] == [
        (s.id, i) for s in planned[:3] for i in (0, 1)
    ]
    assert [ln["reward"]["accuracy"] for ln in lines] == [1.0, 0.0] * 3
    assert report.per_task["all"]["accuracy"] == 0.5
    assert lines[0]["sampling"] == {**Sampling().key(), "temperature": 0.7, "n": 2, "seed": 3}
    with pytest.raises(PredictError, match=r"--task nope: no such task .*t_mcq, t_multi"):
        run_predict(backend, dataset, tmp_path / "q.jsonl", tasks=["nope"])


def test_per_task_keeps_the_first_n_of_each_task(dataset, tmp_path):
    backend = ScriptedBackend(lambda r, i: TRUTH[r.id], model_id="m")
    run_predict(backend, dataset, tmp_path / "p.jsonl", per_task=1)
    first: dict[str, str] = {}
    for s in _samples():
        first.setdefault(s.task, s.id)
    assert [r.id for r in backend.calls[0]] == list(first.values())
    with pytest.raises(PredictError, match="--per-task must be >= 0"):
        run_predict(backend, dataset, tmp_path / "q.jsonl", per_task=-1)


class _Killer:
    """Answers the truth, then raises KeyboardInterrupt (a kill) at request ``at``."""

    def __init__(self, at: int):
        self.at, self.seen = at, 0

    def __call__(self, request, index):
        self.seen += 1
        if self.seen > self.at:
            raise KeyboardInterrupt
        return TRUTH[request.id]


def test_killed_run_resumes_to_the_same_bytes_sending_only_the_missing(dataset, tmp_path):
    ref = tmp_path / "ref" / "p.jsonl"
    run_predict(ScriptedBackend(_truth), dataset, ref, chunk_size=4)
    out = tmp_path / "out" / "p.jsonl"
    with pytest.raises(KeyboardInterrupt):
        run_predict(ScriptedBackend(_Killer(at=6)), dataset, out, chunk_size=4)
    done = [ln["id"] for ln in _lines(out)]
    assert len(done) == 4  # the first chunk; the second was in flight
    again = ScriptedBackend(_truth)
    report = run_predict(again, dataset, out, chunk_size=4)
    assert sorted(_sent(again)) == sorted(set(TRUTH) - set(done))
    assert (report.reused, report.written) == (4, 8)
    assert out.read_bytes() == ref.read_bytes()
    assert report_paths(out)[0].read_bytes() == report_paths(ref)[0].read_bytes()
    # a third run has nothing to do
    idle = ScriptedBackend(_truth)
    run_predict(idle, dataset, out)
    assert idle.calls == [] and out.read_bytes() == ref.read_bytes()


_KILLABLE = """
import json, sys, time
from vst.models.backends import ScriptedBackend
from vst.models.predict import run_predict
truth = json.loads(sys.argv[3])
def answer(request, index):
    time.sleep(0.1)
    return truth[request.id]
run_predict(ScriptedBackend(answer), sys.argv[1], sys.argv[2], chunk_size=2)
"""


def test_kill_9_mid_run_then_rerun_gives_the_same_bytes(dataset, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    ref = tmp_path / "ref" / "p.jsonl"
    run_predict(ScriptedBackend(_truth), dataset, ref)
    out = tmp_path / "out" / "p.jsonl"
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    args = [sys.executable, "-c", _KILLABLE, str(dataset), str(out), json.dumps(TRUTH)]
    proc = subprocess.Popen(args, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (out.exists() and out.read_bytes().count(b"\n") >= 4):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    done = out.read_bytes().count(b"\n")
    assert 4 <= done < 12
    again = ScriptedBackend(_truth)
    run_predict(again, dataset, out)  # the dead run's lock went with it
    assert len(_sent(again)) == 12 - done
    assert out.read_bytes() == ref.read_bytes()


def test_truncated_last_line_is_recovered(dataset, tmp_path):
    ref = tmp_path / "ref.jsonl"
    run_predict(ScriptedBackend(_truth), dataset, ref)
    data = ref.read_bytes()
    out = tmp_path / "out.jsonl"
    cut = data.rfind(b"\n", 0, len(data) - 1) + 25  # 24 bytes into the last line
    out.write_bytes(data[:cut])
    again = ScriptedBackend(_truth)
    report = run_predict(again, dataset, out)
    assert report.truncated and _sent(again) == [_samples()[-1].id]
    assert out.read_bytes() == data
    # an unreadable line in the middle is dropped and predicted again
    lines = data.splitlines(keepends=True)
    out.write_bytes(b"".join(lines[:3]) + b'{"id": 5}\n' + b"".join(lines[4:]))
    again = ScriptedBackend(_truth)
    report = run_predict(again, dataset, out)
    assert report.dropped == 1 and _sent(again) == [json.loads(lines[3])["id"]]
    assert out.read_bytes() == data


def test_failed_requests_are_reported_not_written_and_retried(dataset, tmp_path):
    ref = tmp_path / "ref.jsonl"
    run_predict(ScriptedBackend(_truth), dataset, ref)
    flaky_ids = {s.id for s in _samples() if s.task == "t_numeric"}

    long_id = sorted(flaky_ids)[0]

    def flaky(request, index):
        if request.id == long_id:  # an error page as the reason: kept to one bounded line
            raise ConnectionError("HTTP 502\n<html>\n" + "bad gateway " * 200)
        if request.id in flaky_ids:
            raise ConnectionError("HTTP 503 after 5 retries")
        return TRUTH[request.id]

    out = tmp_path / "out.jsonl"
    report = run_predict(ScriptedBackend(flaky), dataset, out)
    assert {f["id"] for f in report.failed} == flaky_ids
    by_id = {f["id"]: f for f in report.failed}
    assert by_id[sorted(flaky_ids)[1]] == {
        "id": sorted(flaky_ids)[1],
        "task": "t_numeric",
        "error": "ConnectionError: HTTP 503 after 5 retries",
    }
    long_error = by_id[long_id]["error"]
    assert long_error.startswith("ConnectionError: HTTP 502 <html> bad gateway bad gateway")
    assert len(long_error) == 500 and long_error.endswith("...")
    assert report.per_task["t_numeric"]["failed"] == 3 and report.per_task["t_numeric"]["n"] == 0
    assert flaky_ids.isdisjoint(ln["id"] for ln in _lines(out))
    assert "## Failed requests (3)" in report_paths(out)[1].read_text()
    again = ScriptedBackend(_truth)
    report = run_predict(again, dataset, out)
    assert set(_sent(again)) == flaky_ids and not report.failed
    assert out.read_bytes() == ref.read_bytes()


def test_bad_rows_are_skipped_and_reported(tmp_path):
    samples = _samples()[:4]
    folder = _write_dataset(tmp_path / "ds", samples, per_shard=4)
    # a second shard: one good row, one with corrupt image bytes, one duplicate id
    extra = [_mcq(7), _mcq(8)]
    rows = [sample_row(s, "PNG") for s in extra]
    rows[1]["images"] = [{"bytes": b"\xff\xd8\xffnot a jpeg", "path": None}]
    shard = folder / "data" / shard_name(1, "b" * 12)
    with ShardWriter(shard) as writer:
        for row in [*rows, sample_row(samples[0], "PNG")]:
            writer.write(row)
        writer.close()
    answers = {**TRUTH, extra[0].id: extra[0].answer}
    backend = ScriptedBackend(lambda r, i: answers[r.id])
    report = run_predict(backend, folder, tmp_path / "p.jsonl")
    assert extra[1].id not in _sent(backend)
    assert [(s["id"], s["shard"]) for s in report.skipped] == [
        (samples[0].id, shard.name),
        (extra[1].id, shard.name),
    ]
    assert report.skipped[0]["error"].startswith("duplicate id (first in shard-00000-")
    assert report.skipped[1]["error"].startswith(f"{shard.name}: sample {extra[1].id}: image 0")
    assert report.per_task["t_mcq"]["skipped"] == 2 and report.per_task["t_mcq"]["n"] == 2
    assert len(_lines(tmp_path / "p.jsonl")) == 5 and not report.failed


def test_a_file_of_another_model_or_a_locked_file_is_refused(dataset, tmp_path):
    out = tmp_path / "p.jsonl"
    run_predict(ScriptedBackend(_truth, model_id="a"), dataset, out, limit=2)
    with pytest.raises(PredictError, match="another model"):
        run_predict(ScriptedBackend(_truth, model_id="b"), dataset, out)
    with pytest.raises(PredictError, match="another sampling"):
        run_predict(ScriptedBackend(_truth, model_id="a"), dataset, out, sampling=Sampling(n=2))
    with PredictionStore.open(out):
        with pytest.raises(PredictionsLockedError, match="another run is writing"):
            PredictionStore.open(out)
        with pytest.raises(PredictError, match="another run is writing"):
            run_predict(ScriptedBackend(_truth, model_id="a"), dataset, out)
    # lines outside this run's plan are kept, after the planned ones
    report = run_predict(ScriptedBackend(_truth, model_id="a"), dataset, out, tasks=["t_video"])
    ids = [ln["id"] for ln in _lines(out)]
    assert ids[:3] == [s.id for s in _samples() if s.task == "t_video"]
    assert sorted(ids[3:]) == sorted(s.id for s in _samples()[:2])
    assert report.per_task["all"]["samples"] == 3


# -- the command -----------------------------------------------------------------------------


def test_predict_command(dataset, tmp_path, monkeypatch):
    opened = []

    def fake_open(model, kind="auto", cache_dir=None, **options):
        opened.append((model, kind, cache_dir, options))
        if "kill" in model:
            return ScriptedBackend(_Killer(at=3), model_id=model)
        return ScriptedBackend(_truth if "good" in model else lambda r, i: 1 / 0, model_id=model)

    monkeypatch.setattr(predict_cli, "open_backend", fake_open)
    runner = CliRunner()
    out = tmp_path / "p.jsonl"
    args = ["predict", "--data", str(dataset), "--out", str(out), "--quiet"]
    result = runner.invoke(app, [*args, "--model", "http://x/good", "--concurrency", "4"])
    assert result.exit_code == 0, result.output
    assert opened == [("http://x/good", "auto", None, {"concurrency": 4})]
    assert "t_video" in result.output and "1.000" in result.output
    assert "12 new prediction(s), 0 reused" in result.output
    assert report_paths(out)[1].exists()

    bad = tmp_path / "bad.jsonl"
    result = runner.invoke(
        app, ["predict", "--data", str(dataset), "--out", str(bad), "--model", "http://x/down"]
    )
    assert result.exit_code == 1 and "12 request(s) failed" in result.output
    assert "ZeroDivisionError: division by zero" in result.output

    killed = tmp_path / "killed.jsonl"
    kill_args = ["predict", "--data", str(dataset), "--out", str(killed), "--quiet"]
    result = runner.invoke(app, [*kill_args, "--model", "http://x/kill"])
    assert result.exit_code == 130 and "interrupted; answers so far are saved" in result.output

    result = runner.invoke(app, [*args, "--model", "http://x/good", "--batch-size", "2"])
    assert result.exit_code == 2 and "--batch-size applies to the transformers backend" in (
        result.output
    )
    result = runner.invoke(
        app, ["predict", "--data", str(tmp_path / "none"), "--out", str(out), "--model", "x"]
    )
    assert result.exit_code == 2 and "is not a folder" in result.output
    assert "Traceback" not in result.output


# -- on engine data --------------------------------------------------------------------------


@pytest.mark.slow
def test_engine_dataset_ground_truth_scores_one(engine_scene_dirs, tmp_path):
    """Real samples of five tasks (mcq, numeric, multi-turn, det3d, video): the reference answer
    of every sample scores accuracy 1.0 (det3d: near 1, its answer text rounds the boxes); the
    requests keep every turn but the answer, and video requests carry the sample's fps."""
    from vst.engine.config import parse_config
    from vst.engine.runner import run

    tasks = ["si_depth_order", "si_measurement", "si_det3d", "video_count", "mi_camera_motion"]
    config = parse_config(
        {
            "output": str(tmp_path / "run"),
            "seed": 1,
            "sources": [{"kind": "scenes", "path": str(Path(engine_scene_dirs[0]).parent)}],
            "tasks": [{"name": t, "per_scene": 2} for t in tasks],
            "workers": 1,
        }
    )
    run(config, progress=False)
    seen: dict[str, object] = {}

    def oracle(request, index):
        seen[request.id] = request
        return answers[request.id]

    from vst.engine.writer import iter_rows, list_shards

    rows = [r for p in list_shards(tmp_path / "run") for r in iter_rows(p)]
    answers = {r["id"]: r["answer"] for r in rows}
    report = run_predict(ScriptedBackend(oracle), tmp_path / "run", tmp_path / "p.jsonl")
    assert not report.skipped and not report.failed
    assert set(report.per_task) == {*tasks, "all"}
    for task in tasks:
        stats = report.per_task[task]
        assert stats["n"] == stats["samples"] >= 1, task
        if task == "si_det3d":  # answers state boxes to 2 decimals, the truth is full precision
            assert 0.9 < stats["accuracy"] < 1.0
        else:
            assert stats["accuracy"] == 1.0, task
    assert any(len(r["messages"]) > 2 for r in rows)  # multi-turn samples were predicted
    for row in rows:
        request = seen[row["id"]]
        n_turns = len(row["messages"]) - 1
        assert len(request.messages) == n_turns  # the answer turn only is left out
        if row["videos"]:
            assert request.videos[0].fps == json.loads(row["meta"])["video_fps"]
            assert len(request.videos[0].frames) == len(row["videos"][0])
